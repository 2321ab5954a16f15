/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "manager.h"

/* Manager.Export: the devices at paths (none: every metered device; a
 * strip: its metered outlets) from from_ms to to_ms, streamed into a pipe
 * whose read end is returned. -EINVAL (a bad resolution, format or field)
 * or -ENOENT/-ENOTTY (no such device, no meter) with a message in
 * *ret_error (free()). */
int manager_export(Manager *m, const char *const *paths, size_t n_paths, int64_t from_ms, int64_t to_ms,
                   const char *resolution, const char *format, const char *const *fields, size_t n_fields, int *ret_fd,
                   char **ret_error);
