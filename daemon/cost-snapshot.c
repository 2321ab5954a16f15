/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cost-snapshot.h"

static int copy_assignments(const ManagerTariffs *mt, CostSnapshot *s) {
        s->assignments = calloc(MAX(mt->n_assignments, (size_t) 1), sizeof(TariffAssignment));
        if (!s->assignments)
                return -ENOMEM;
        for (size_t i = 0; i < mt->n_assignments; i++) {
                s->assignments[i] = mt->assignments[i];
                s->assignments[i].device = NULL;
                s->n_assignments++;
                if (mt->assignments[i].device && !(s->assignments[i].device = strdup(mt->assignments[i].device)))
                        return -ENOMEM;
        }
        return 0;
}

int cost_snapshot_init(CostSnapshot *s, Manager *m, Device **devices, size_t n, LoadedTariff *what_if_ref,
                       Tariff *what_if_owned) {
        ManagerTariffs *mt = m->tariffs;
        int r;

        *s = (CostSnapshot) {
                .what_if_owned = what_if_owned,
                .what_if_ref = what_if_ref ? loaded_ref(what_if_ref) : NULL,
                .store = m->store,
                .now_ms = manager_now_ms(m),
        };
        s->tariffs = calloc(MAX(mt->list->len, 1u), sizeof(LoadedTariff *));
        s->devices = calloc(MAX(n, (size_t) 1), sizeof(CostSnapshotDevice));
        s->time_zone = m->config.time_zone ? strdup(m->config.time_zone) : NULL;
        r = s->tariffs && s->devices && (s->time_zone || !m->config.time_zone) ? copy_assignments(mt, s) : -ENOMEM;
        for (guint i = 0; r >= 0 && i < mt->list->len; i++) {
                LoadedTariff *t = mt->list->pdata[i];
                if (t->tariff)
                        s->tariffs[s->n_tariffs++] = loaded_ref(t);
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                CostSnapshotDevice *d = &s->devices[s->n_devices++];
                d->number = devices[i]->number;
                d->id = strdup(devices[i]->id);
                d->alias = devices[i]->alias[0] ? strdup(devices[i]->alias) : NULL;
                if (!d->id || (devices[i]->alias[0] && !d->alias))
                        r = -ENOMEM;
        }
        if (r < 0)
                cost_snapshot_done(s);
        return r;
}

void cost_snapshot_done(CostSnapshot *s) {
        for (size_t i = 0; i < s->n_tariffs; i++)
                loaded_unref(s->tariffs[i]);
        free(s->tariffs);
        loaded_unref(s->what_if_ref);
        tariff_free(s->what_if_owned);
        tariff_assignment_array_free(s->assignments, s->n_assignments);
        for (size_t i = 0; i < s->n_devices; i++) {
                free(s->devices[i].id);
                free(s->devices[i].alias);
        }
        free(s->devices);
        free(s->time_zone);
        *s = (CostSnapshot) {};
}

static int snapshot_rollups(const CostSnapshotQuery *sq, const char *device, StoreResolution res, int64_t from,
                            int64_t to, CostInterval **ret, size_t *ret_n) {
        const CostSnapshot *s = sq->snapshot;
        for (size_t i = 0; i < s->n_devices; i++)
                if (strcmp(s->devices[i].id, device) == 0)
                        return manager_cost_store_rollups(s->store, sq->cal, s->devices[i].number, res, from, to,
                                                          s->now_ms, ret, ret_n);
        *ret = NULL;
        *ret_n = 0;
        return 0;
}

static int source_days(void *userdata, const char *device, int64_t from, int64_t to, CostInterval **ret,
                       size_t *ret_n) {
        return snapshot_rollups(userdata, device, STORE_DAY, from, to, ret, ret_n);
}

static int source_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to,
                         CostInterval **ret, size_t *ret_n) {
        return snapshot_rollups(userdata, device, minutes ? STORE_MINUTE : STORE_HOUR, from, to, ret, ret_n);
}

static const CostSourceOps source_ops = { .energy = source_energy, .days = source_days };

int cost_snapshot_query_init(CostSnapshotQuery *sq, const CostSnapshot *s) {
        *sq = (CostSnapshotQuery) {
                .tariffs = calloc(MAX(s->n_tariffs, (size_t) 1), sizeof(CostQueryTariff)),
                .devices = calloc(MAX(s->n_devices, (size_t) 1), sizeof(CostQueryDevice)),
                .snapshot = s,
                .cal = calendar_new(s->time_zone),
        };
        if (!sq->tariffs || !sq->devices || !sq->cal) {
                cost_snapshot_query_done(sq);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_tariffs; i++)
                sq->tariffs[i] = (CostQueryTariff) { s->tariffs[i]->row.id, s->tariffs[i]->tariff };
        for (size_t i = 0; i < s->n_devices; i++)
                sq->devices[i] = (CostQueryDevice) { s->devices[i].id, s->devices[i].alias };
        sq->q = (CostQuery) {
                .tariffs = sq->tariffs,
                .n_tariffs = s->n_tariffs,
                .assignments = s->assignments,
                .n_assignments = s->n_assignments,
                .what_if = s->what_if_owned ?: s->what_if_ref ? s->what_if_ref->tariff : NULL,
                .devices = sq->devices,
                .n_devices = s->n_devices,
                .ops = &source_ops,
                .userdata = sq,
                .time_zone = s->time_zone,
        };
        return 0;
}

void cost_snapshot_query_done(CostSnapshotQuery *sq) {
        free(sq->tariffs);
        free(sq->devices);
        calendar_free(sq->cal);
        *sq = (CostSnapshotQuery) {};
}
