/* SPDX-License-Identifier: MIT */
#pragma once

#include <syslog.h>

#include "macro.h"

/* Logging to stderr. Under systemd (JOURNAL_STREAM set) lines carry the
 * "<N>" priority prefix the journal understands; on a terminal they do not.
 * The *_errno variants set errno for "%m" and return -|error|, so a caller
 * can log and propagate in one statement. */

void log_set_max_level(int level);
int log_get_max_level(void);
void log_parse_environment(void);

_printf_(3, 4) int log_internal(int level, int error, const char *fmt, ...);

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...) log_internal(LOG_INFO, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), __VA_ARGS__)

#define log_oom() log_internal(LOG_ERR, ENOMEM, "Out of memory.")

/* An error that goes back to a caller as text: *ret_error (when asked
 * for) gets the message, or NULL when out of memory; returns err. */
_printf_(3, 4) int error_set(char **ret_error, int err, const char *fmt, ...);
