/* SPDX-License-Identifier: MIT */

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int max_level = LOG_INFO;
static int use_prefix = -1;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_parse_environment(void) {
        static const char *const names[] = {
                "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
        };
        const char *e = getenv("KASA_LOG_LEVEL");

        if (!e)
                return;
        for (int i = 0; i < (int) ELEMENTSOF(names); i++)
                if (strcmp(e, names[i]) == 0 || (e[0] == '0' + i && !e[1]))
                        max_level = i;
}

int log_internal(int level, int error, const char *fmt, ...) {
        int saved = errno;

        if (error < 0)
                error = -error;
        if (level <= max_level) {
                char buf[1024];
                va_list ap;

                if (use_prefix < 0)
                        use_prefix = getenv("JOURNAL_STREAM") != NULL;
                errno = error;
                va_start(ap, fmt);
                vsnprintf(buf, sizeof(buf), fmt, ap);
                va_end(ap);
                if (use_prefix)
                        fprintf(stderr, "<%d>%s\n", level, buf);
                else
                        fprintf(stderr, "%s\n", buf);
        }
        errno = saved;
        return -error;
}

int error_set(char **ret_error, int err, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return err;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return err;
}
