/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "cost-query.h"
#include "energy-csv.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager-tariff-internal.h"
#include "readings.h"

/* Rollups one cost query may read of one device: a year of minutes. */
#define ROLLUPS_MAX (1u << 20)
#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)

static int64_t now_ms(Manager *m) {
        return manager_now_ms(m);
}


int manager_cost_bucket(const char *s, CostBucket *ret) {
        if (!s[0])
                *ret = COST_BUCKET_NONE;
        else if (strcmp(s, "day") == 0)
                *ret = COST_BUCKET_DAY;
        else if (strcmp(s, "month") == 0)
                *ret = COST_BUCKET_MONTH;
        else
                return -EINVAL;
        return 0;
}

static int add_device(GPtrArray *l, Device *d) {
        for (guint i = 0; i < l->len; i++)
                if (l->pdata[i] == d)
                        return 0;
        g_ptr_array_add(l, d);
        return 0;
}

void all_metered(Manager *m, GPtrArray *l) {
        for (guint i = 0; i < m->roots->len; i++) {
                Device *d = m->roots->pdata[i];
                if (d->metered)
                        add_device(l, d);
                for (size_t k = 0; k < d->n_outlets; k++)
                        if (d->outlets[k] && d->outlets[k]->metered)
                                add_device(l, d->outlets[k]);
        }
}

int manager_cost_devices(Manager *m, const char *const *paths, size_t n, Device ***ret, size_t *ret_n,
                         char **ret_error) {
        GPtrArray *l = g_ptr_array_new();

        if (n == 0)
                all_metered(m, l);
        for (size_t i = 0; i < n; i++) {
                Device *d = manager_find_path(m, paths[i]);
                if (!d) {
                        g_ptr_array_free(l, true);
                        (void) tariff_refuse(ret_error, "No device at %s.", paths[i]);
                        return -ENOENT;
                }
                if (!device_has_meter(d)) {
                        g_ptr_array_free(l, true);
                        (void) tariff_refuse(ret_error, "%s has no energy meter.", d->id);
                        return -ENOTTY;
                }
                if (d->metered)
                        add_device(l, d);
                for (size_t k = 0; k < d->n_outlets; k++)
                        if (d->outlets[k] && d->outlets[k]->metered)
                                add_device(l, d->outlets[k]);
        }
        *ret_n = l->len;
        *ret = (Device **) g_ptr_array_free(l, false);
        return 0;
}

int manager_cost_store_energy(Store *store, uint32_t number, bool minutes, int64_t from, int64_t to, int64_t now,
                              CostInterval **ret, size_t *ret_n) {
        _cleanup_free_ StoreRollup *rows = NULL;
        size_t n = 0, k = 0;
        int64_t len = minutes ? MINUTE_MS : HOUR_MS;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = store_query_rollup(store, number, minutes ? STORE_MINUTE : STORE_HOUR, from, to, ROLLUPS_MAX, &rows, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        CostInterval *v = calloc(MAX(n, (size_t) 1), sizeof(CostInterval));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int64_t start = rows[i].period_start_ms, end = start + len;
                if (rows[i].energy_mwh <= 0)
                        continue;
                /* The period still open holds the energy of the poll
                 * intervals up to its last sample only: spread over the
                 * whole period, a range ending now would cut some of it
                 * off. A gap's energy (no time covered) is the last
                 * sample's. */
                if (end > now) {
                        end = MAX(rows[i].last_ts_ms, start + 1);
                        start = MAX(start, MIN(end - rows[i].covered_ms, end - 1));
                }
                v[k++] = (CostInterval) { start, end, rows[i].energy_mwh };
        }
        *ret = v;
        *ret_n = k;
        return 0;
}

int manager_cost_store_days(Store *store, const Calendar *cal, uint32_t number, int64_t from, int64_t to,
                            CostInterval **ret, size_t *ret_n) {
        _cleanup_free_ StoreRollup *rows = NULL;
        size_t n = 0, k = 0;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = store_query_rollup(store, number, STORE_DAY, from, to, ROLLUPS_MAX, &rows, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        CostInterval *v = calloc(MAX(n, (size_t) 1), sizeof(CostInterval));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (rows[i].energy_mwh > 0)
                        v[k++] = (CostInterval) { rows[i].period_start_ms,
                                                  calendar_next_day(cal, rows[i].period_start_ms), rows[i].energy_mwh };
        *ret = v;
        *ret_n = k;
        return 0;
}

static int source_days(void *userdata, const char *device, int64_t from, int64_t to, CostInterval **ret,
                       size_t *ret_n) {
        Manager *m = userdata;
        Device *d = manager_find(m, device);

        if (!d) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        return manager_cost_store_days(m->store, m->calendar, d->number, from, to, ret, ret_n);
}

static int source_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to,
                         CostInterval **ret, size_t *ret_n) {
        Manager *m = userdata;
        Device *d = manager_find(m, device);

        if (!d) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        return manager_cost_store_energy(m->store, d->number, minutes, from, to, now_ms(m), ret, ret_n);
}

static const CostSourceOps source_ops = { .energy = source_energy, .days = source_days };

typedef struct Query {
        CostQuery q;
        CostQueryTariff *tariffs;
        CostQueryDevice *devices;
} Query;

static void query_done(Query *x) {
        free(x->tariffs);
        free(x->devices);
}

static int query_init(Manager *m, Query *x, Device **devices, size_t n, int64_t from, int64_t to, CostBucket bucket,
                      const Tariff *what_if) {
        ManagerTariffs *mt = m->tariffs;
        *x = (Query) {};
        x->tariffs = calloc(MAX(mt->list->len, 1u), sizeof(CostQueryTariff));
        x->devices = calloc(MAX(n, (size_t) 1), sizeof(CostQueryDevice));
        if (!x->tariffs || !x->devices) {
                query_done(x);
                return -ENOMEM;
        }
        size_t k = 0;
        for (guint i = 0; i < mt->list->len; i++) {
                LoadedTariff *t = mt->list->pdata[i];
                if (t->tariff)
                        x->tariffs[k++] = (CostQueryTariff) { t->row.id, t->tariff };
        }
        for (size_t i = 0; i < n; i++)
                x->devices[i] = (CostQueryDevice) { devices[i]->id, devices[i]->alias[0] ? devices[i]->alias : NULL };
        x->q = (CostQuery) {
                .tariffs = x->tariffs,
                .n_tariffs = k,
                .assignments = mt->assignments,
                .n_assignments = mt->n_assignments,
                .what_if = what_if,
                .devices = x->devices,
                .n_devices = n,
                .ops = &source_ops,
                .userdata = m,
                .time_zone = m->config.time_zone,
                .from_ms = from,
                .to_ms = to,
                .bucket = bucket,
        };
        return 0;
}

/* A what-if tariff: an object path or a tariff's text. *ret_owned is set
 * when the tariff is parsed here. */
static int what_if_tariff(Manager *m, const char *spec, const Tariff **ret, Tariff **ret_owned, char **ret_error) {
        Parsed *p = NULL;
        int n;

        *ret_owned = NULL;
        if (spec[0] == '/') {
                LoadedTariff *t = manager_tariff_find_path(m, spec);
                if (!t) {
                        (void) tariff_refuse(ret_error, "No tariff at %s.", spec);
                        return -ENOENT;
                }
                if (!t->tariff)
                        return tariff_refuse(ret_error, "Tariff %" PRId64 " does not parse any longer.", t->row.id);
                *ret = t->tariff;
                return 0;
        }
        n = parse_format(detect_format(spec), spec, &p, ret_error);
        if (n < 0)
                return n;
        if (n != 1) {
                parsed_free(p, (size_t) n);
                return tariff_refuse(ret_error, "urdb: items: expected one tariff to price with, got %d", n);
        }
        *ret = *ret_owned = TAKE_PTR(p[0].tariff);
        parsed_free(p, 1);
        return 0;
}

int manager_cost(Manager *m, Device **devices, size_t n, int64_t from_ms, int64_t to_ms, CostBucket bucket,
                 const char *what_if, char **ret_json, char **ret_error) {
        _cleanup_tariff_ Tariff *owned = NULL;
        _cleanup_cost_query_result_ CostQueryResult *res = NULL;
        const Tariff *wi = NULL;
        Query x;
        int r;

        if (what_if) {
                r = what_if_tariff(m, what_if, &wi, &owned, ret_error);
                if (r < 0)
                        return r;
        }
        r = query_init(m, &x, devices, n, from_ms, to_ms, bucket, wi);
        if (r < 0)
                return r;
        r = cost_query_run(&x.q, &res, ret_error);
        if (r >= 0) {
                json_t *j = cost_query_to_json(&x.q, res);
                *ret_json = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
                json_decref(j);
                r = *ret_json ? 0 : -ENOMEM;
        }
        query_done(&x);
        return r;
}

int manager_price_energy(Manager *m, const char *tariff, const char *csv, const char *time_zone,
                         CostBucket bucket, char **ret_json, char **ret_error) {
        _cleanup_tariff_ Tariff *owned = NULL;
        _cleanup_free_ CostInterval *iv = NULL;
        _cleanup_cost_bill_ CostBill *bill = NULL;
        const Tariff *t = NULL;
        size_t n = 0;
        int r;

        r = what_if_tariff(m, tariff, &t, &owned, ret_error);
        if (r < 0)
                return r;
        r = energy_csv_parse(csv, strlen(csv), "csv", &iv, &n, ret_error);
        if (r < 0)
                return r;
        const char *tz = time_zone[0] ? time_zone : m->config.time_zone;
        CostRequest req = {
                .tariffs = &t,
                .n_tariffs = 1,
                .intervals = iv,
                .n_intervals = n,
                .time_zone = tz,
                .from_ms = iv[0].start_ms,
                .to_ms = iv[n - 1].end_ms,
                .bucket = bucket,
        };
        r = cost_compute(&req, &bill, ret_error);
        if (r < 0)
                return r;
        json_t *j = cost_bill_to_json(bill, tz);
        if (j)
                json_object_set_new(j, "time_zone", json_string(tz && *tz ? tz : "local"));
        *ret_json = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
        json_decref(j);
        return *ret_json ? 0 : -ENOMEM;
}

/* ---- the cost properties ---- */

static double major(const ManagerTariffs *mt, bool known, int64_t minor) {
        if (!known)
                return NAN;
        double d = (double) minor;
        for (unsigned i = 0; i < mt->digits; i++)
                d /= 10;
        return d;
}

double manager_cost_today(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        return mt ? major(mt, mt->known, mt->today) : NAN;
}

double manager_cost_month(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        return mt ? major(mt, mt->known && mt->base_known, mt->base + mt->today) : NAN;
}

const char *manager_currency(Manager *m) {
        return m->tariffs ? m->tariffs->currency : "";
}

static bool device_cost(Manager *m, Device *d, bool month, int64_t *sum) {
        ManagerTariffs *mt = m->tariffs;
        bool any = false;
        if (d->metered) {
                DeviceCost *c = g_hash_table_lookup(mt->costs, d->id);
                if (!c || !c->known || (month && !c->base_known))
                        return false;
                *sum += month ? c->base + c->today : c->today;
                return true;
        }
        for (size_t k = 0; k < d->n_outlets; k++)
                if (d->outlets[k] && device_cost(m, d->outlets[k], month, sum))
                        any = true;
        return any;
}

double manager_device_cost(Manager *m, Device *d, bool month) {
        int64_t sum = 0;
        if (!m->tariffs)
                return NAN;
        bool known = device_cost(m, d, month, &sum);
        return major(m->tariffs, known, sum);
}

/* Totals of the home and of each device over [from, to); false when
 * nothing prices them. */
static int round_query(Manager *m, Device **devices, size_t n, int64_t from, int64_t to, int64_t *ret_total,
                       int64_t *ret_devices, bool *ret_known, char **ret_error) {
        _cleanup_cost_query_result_ CostQueryResult *res = NULL;
        Query x;
        int r = query_init(m, &x, devices, n, from, to, COST_BUCKET_NONE, NULL);
        if (r < 0)
                return r;
        r = cost_query_run(&x.q, &res, ret_error);
        query_done(&x);
        if (r < 0)
                return r;
        unsigned digits;
        const char *cur = cost_query_currency(res, &digits);
        memcpy(m->tariffs->currency, cur, sizeof m->tariffs->currency);
        m->tariffs->digits = digits;
        (void) cost_query_total(res, ret_total);
        for (size_t i = 0; i < n; i++)
                ret_known[i] = cost_query_device_total(res, i, &ret_devices[i]) >= 0;
        return 0;
}

static void emit_device_costs(Manager *m, Device *d) {
        int r;
        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, d->path, KASA_METER_IFACE, "CostToday", "CostMonth", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit the costs of %s, ignoring: %m", d->id);
}

void manager_tariffs_round(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        _cleanup_free_ Device **devices = NULL;
        _cleanup_free_ int64_t *today = NULL, *base = NULL;
        _cleanup_free_ bool *known = NULL, *base_known = NULL;
        _cleanup_free_ char *error = NULL;
        char old_currency[4];
        double old_today, old_month;
        bool found;
        int r = 0;

        if (!mt)
                return;
        int64_t now = now_ms(m);
        int64_t day = manager_day_start(m, now), month_start = calendar_month_start(m->calendar, now);
        int64_t home = current_assignment(m, NULL, now, &found);

        old_today = manager_cost_today(m);
        old_month = manager_cost_month(m);
        memcpy(old_currency, mt->currency, sizeof old_currency);

        GPtrArray *l = g_ptr_array_new();
        all_metered(m, l);
        size_t n = l->len;
        devices = (Device **) g_ptr_array_free(l, false);
        today = calloc(MAX(n, (size_t) 1), sizeof(int64_t));
        base = calloc(MAX(n, (size_t) 1), sizeof(int64_t));
        known = calloc(MAX(n, (size_t) 1), sizeof(bool));
        base_known = calloc(MAX(n, (size_t) 1), sizeof(bool));
        if (!today || !base || !known || !base_known) {
                log_oom();
                return;
        }

        bool was_known = mt->known;
        mt->known = false;
        if (mt->n_assignments == 0) {
                mt->currency[0] = 0;
                r = -ENODATA;
        }
        if (r >= 0 && mt->base_day != day) {
                mt->base_known = false;
                mt->base = 0;
                if (day > month_start)
                        r = round_query(m, devices, n, month_start, day, &mt->base, base, base_known, &error);
                else
                        memset(base_known, true, n * sizeof(bool));
                if (r == -ENODATA) {
                        /* Nothing priced the month before today: it cost nothing. */
                        memset(base_known, true, n * sizeof(bool));
                        r = 0;
                }
                if (r >= 0) {
                        mt->base_known = true;
                        mt->base_day = day;
                }
        } else if (r >= 0) {
                for (size_t i = 0; i < n; i++) {
                        DeviceCost *c = g_hash_table_lookup(mt->costs, devices[i]->id);
                        base[i] = c ? c->base : 0;
                        base_known[i] = c && c->base_known;
                }
        }
        if (r >= 0)
                r = round_query(m, devices, n, day, now + 1, &mt->today, today, known, &error);
        if (r >= 0)
                mt->known = true;
        if (r < 0 && r != -ENODATA && r != mt->last_error)
                log_warning_errno(r, "Failed to compute this month's costs, CostToday and CostMonth unknown, ignoring: %s",
                                  error ?: strerror(-r));
        mt->last_error = r < 0 ? r : 0;
        if (r < 0)
                mt->base_day = 0;

        for (size_t i = 0; i < n; i++) {
                Device *d = devices[i];
                DeviceCost *c = g_hash_table_lookup(mt->costs, d->id);
                if (!c) {
                        c = calloc(1, sizeof(DeviceCost));
                        char *id = strdup(d->id);
                        if (!c || !id) {
                                free(c);
                                free(id);
                                log_oom();
                                return;
                        }
                        g_hash_table_insert(mt->costs, id, c);
                }
                DeviceCost nc = {
                        .base = base[i],
                        .today = today[i],
                        .known = r >= 0 && known[i],
                        .base_known = r >= 0 && base_known[i],
                };
                if (nc.base == c->base && nc.today == c->today && nc.known == c->known && nc.base_known == c->base_known)
                        continue;
                *c = nc;
                emit_device_costs(m, d);
                if (d->parent)
                        emit_device_costs(m, d->parent);
        }

        double now_today = manager_cost_today(m), mo = manager_cost_month(m);
        bool changed = (was_known != mt->known) || memcmp(&now_today, &old_today, sizeof now_today) != 0 ||
                       memcmp(&mo, &old_month, sizeof mo) != 0;
        if (m->bus && (changed || strcmp(old_currency, mt->currency) != 0)) {
                r = sd_bus_emit_properties_changed(m->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "Currency",
                                                   "CostToday", "CostMonth", NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to emit the costs, ignoring: %m");
        }
        if (home != mt->active_home) {
                mt->active_home = home;
                emit_tariff_changes(m);
        }
}
