/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "export-manager.h"
#include "export-pipe.h"
#include "manager-tariff.h"

int manager_export(Manager *m, const char *const *paths, size_t n_paths, int64_t from_ms, int64_t to_ms,
                   const char *resolution, const char *format, const char *const *fields, size_t n_fields, int *ret_fd,
                   char **ret_error) {
        _cleanup_free_ Device **devices = NULL;
        _cleanup_free_ ExportDevice *list = NULL;
        Export *e = NULL;
        ExportResolution res;
        ExportFormat fmt;
        size_t n = 0;
        int r;

        *ret_error = NULL;
        if (export_resolution_from_string(resolution, &res) < 0)
                return asprintf(ret_error, "Invalid resolution '%s': use raw, minute, hour or day.", resolution) < 0
                               ? -ENOMEM : -EINVAL;
        if (export_format_from_string(format, &fmt) < 0)
                return asprintf(ret_error, "Invalid format '%s': use csv or json.", format) < 0 ? -ENOMEM : -EINVAL;
        r = manager_cost_devices(m, paths, n_paths, &devices, &n, ret_error);
        if (r < 0)
                return r;
        list = calloc(MAX(n, (size_t) 1), sizeof(ExportDevice));
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                list[i] = (ExportDevice) { .id = devices[i]->id, .number = devices[i]->number };
        r = export_new(m->store, m->calendar, list, n, from_ms, to_ms, res, fmt, fields, n_fields, &e, ret_error);
        if (r < 0)
                return r;
        return export_pipe_start(m->event, e, ret_fd);
}
