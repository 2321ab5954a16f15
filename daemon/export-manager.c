/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost-snapshot.h"
#include "export-cost.h"
#include "export-manager.h"
#include "export-pipe.h"
#include "log.h"
#include "manager-tariff.h"

/* The cost columns' source: a copy of the manager's cost inputs, priced on
 * the export's thread. Freed on the loop (the export is). */
typedef struct ExportCostSource {
        CostSnapshot snap;
        CostSnapshotQuery query;
        ExportPricer *pricer;
} ExportCostSource;

static void cost_source_free(void *userdata) {
        ExportCostSource *s = userdata;
        if (!s)
                return;
        export_pricer_free(s->pricer);
        cost_snapshot_query_done(&s->query);
        cost_snapshot_done(&s->snap);
        free(s);
}

static int cost_source_price(void *userdata, size_t device, const ExportPeriod *rows, size_t n, ExportCost *ret,
                             char **ret_error) {
        ExportCostSource *s = userdata;
        return export_pricer_price(s->pricer, device, rows, n, ret, ret_error);
}

static int cost_source_new(Manager *m, Device **devices, size_t n, int64_t from_ms, int64_t to_ms,
                           ExportResolution res, ExportCosts *ret, char **ret_error) {
        ExportCostSource *s = calloc(1, sizeof(ExportCostSource));
        int r;

        if (!s)
                return -ENOMEM;
        r = cost_snapshot_init(&s->snap, m, devices, n, NULL, NULL);
        if (r >= 0)
                r = cost_snapshot_query_init(&s->query, &s->snap);
        if (r >= 0)
                r = export_pricer_new(&s->query.q, res == EXPORT_MINUTE, &s->pricer);
        if (r < 0) {
                cost_source_free(s);
                return r;
        }
        *ret = (ExportCosts) { .price = cost_source_price, .free = cost_source_free, .userdata = s };
        /* The columns are named after the currency, before any row. */
        r = export_pricer_currency(s->pricer, from_ms, to_ms, ret->currency, &ret->digits, ret_error);
        if (r < 0) {
                cost_source_free(s);
                return r;
        }
        return 0;
}

int manager_export(Manager *m, const char *const *paths, size_t n_paths, int64_t from_ms, int64_t to_ms,
                   const char *resolution, const char *format, const char *const *fields, size_t n_fields,
                   bool costs, int *ret_fd, char **ret_error) {
        _cleanup_free_ Device **devices = NULL;
        _cleanup_free_ ExportDevice *list = NULL;
        ExportCosts cost_source;
        Export *e = NULL;
        ExportResolution res;
        ExportFormat fmt;
        size_t n = 0;
        int r;

        *ret_error = NULL;
        if (export_resolution_from_string(resolution, &res) < 0)
                return error_set(ret_error, -EINVAL, "Invalid resolution '%s': use raw, minute, hour or day.",
                                 resolution);
        if (export_format_from_string(format, &fmt) < 0)
                return error_set(ret_error, -EINVAL, "Invalid format '%s': use csv or json.", format);
        if (m->exports && export_pipes_running(m->exports) >= EXPORTS_MAX)
                return error_set(ret_error, -EAGAIN, "%u exports are running already: try again once one is done.",
                                 EXPORTS_MAX);
        r = manager_cost_devices(m, paths, n_paths, &devices, &n, ret_error);
        if (r < 0)
                return r;
        list = calloc(MAX(n, (size_t) 1), sizeof(ExportDevice));
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                list[i] = (ExportDevice) { .id = devices[i]->id, .number = devices[i]->number };
        if (costs) {
                r = export_check_costs(res, ret_error);
                if (r >= 0)
                        r = cost_source_new(m, devices, n, from_ms, to_ms, res, &cost_source, ret_error);
                if (r < 0)
                        return r;
        }
        r = export_new(m->store, m->calendar, list, n, from_ms, to_ms, res, fmt, fields, n_fields,
                       costs ? &cost_source : NULL, &e, ret_error);
        if (r < 0)
                return r;
        if (!m->exports) {
                r = export_pipes_new(m->event, EXPORTS_MAX, &m->exports);
                if (r < 0) {
                        export_free(e);
                        return r;
                }
        }
        return export_pipes_start(m->exports, e, ret_fd);
}

void manager_export_stop(Manager *m) {
        m->exports = export_pipes_free(m->exports);
}
