/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager.h"

/* Exports running at once; more are refused (-EAGAIN). */
#define EXPORTS_MAX 32u

/* Manager.Export: the devices at paths (none: every metered device; a
 * strip: its metered outlets) from from_ms to to_ms, streamed into a pipe
 * whose read end is returned. costs: the cost columns, priced with the
 * tariffs and assignments of now (export-cost.h). -EINVAL (a bad
 * resolution, format or field, costs of raw samples, tariffs in two
 * currencies), -ENOENT/-ENOTTY (no such device, no meter), -ENODATA
 * (costs, and no tariff) or -EAGAIN (too many exports) with a message in
 * *ret_error (free()). */
int manager_export(Manager *m, const char *const *paths, size_t n_paths, int64_t from_ms, int64_t to_ms,
                   const char *resolution, const char *format, const char *const *fields, size_t n_fields,
                   bool costs, int *ret_fd, char **ret_error);
/* Ends the exports: before the store goes. */
void manager_export_stop(Manager *m);
