/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tariff-json.h"
#include "tariff.h"

int tj_refusev(char **ret_error, const char *file, const char *sep, const char *where, const char *fmt,
               va_list ap) {
        _cleanup_free_ char *what = NULL;

        if (vasprintf(&what, fmt, ap) < 0)
                return -ENOMEM;
        if (ret_error && asprintf(ret_error, "%s%s%s: %s", file, where ? sep : "", where ? where : "", what) < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EBADMSG;
}

int tj_refuse(const TariffJson *j, const char *path, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = tj_refusev(j->ret_error, j->file, ": ", path, fmt, ap);
        va_end(ap);
        return r;
}

char *tj_path(char buf[static TARIFF_PATH_MAX], const char *parent, const char *fmt, ...) {
        va_list ap;
        int n = parent && parent[0] ? snprintf(buf, TARIFF_PATH_MAX, "%s", parent) : 0;
        if (n < 0 || n >= TARIFF_PATH_MAX)
                return buf;
        va_start(ap, fmt);
        vsnprintf(buf + n, TARIFF_PATH_MAX - (size_t) n, fmt, ap);
        va_end(ap);
        return buf;
}

int tj_load(const TariffJson *j, const char *data, size_t size, size_t max, json_t **ret) {
        json_error_t e;

        if (size > max)
                return tj_refuse(j, NULL, "expected at most %zu bytes, got %zu", max, size);
        json_t *v = json_loadb(data, size, JSON_REJECT_DUPLICATES, &e);
        if (!v)
                return tj_refuse(j, NULL, "line %d, column %d: expected JSON: %s", e.line, e.column, e.text);
        *ret = v;
        return 0;
}

int tj_read_file(const char *path, size_t max, char **ret_data, size_t *ret_size, char **ret_error) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        int r;

        if (fd < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
                r = -EINVAL;
                goto fail;
        }
        if ((uint64_t) st.st_size > max) {
                r = -EFBIG;
                if (ret_error && asprintf(ret_error, "%s: expected at most %zu bytes", path, max) < 0)
                        *ret_error = NULL;
                return r;
        }
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        size_t n = 0;
        while (n <= (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > (size_t) st.st_size) { /* grew while read */
                r = -EFBIG;
                goto fail;
        }
        buf[n] = 0;
        *ret_data = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
fail:
        if (ret_error && asprintf(ret_error, "%s: %s", path, strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

int tj_array(const TariffJson *j, const char *path, json_t *v, size_t min, size_t max) {
        if (!json_is_array(v))
                return tj_refuse(j, path, "expected an array");
        size_t n = json_array_size(v);
        if (n < min || n > max)
                return tj_refuse(j, path, "expected %zu to %zu entries, got %zu", min, max, n);
        return (int) n;
}

int tj_array_new(const TariffJson *j, const char *path, json_t *v, size_t min, size_t max, size_t size, void **ret) {
        int n = tj_array(j, path, v, min, max);
        if (n < 0)
                return n;
        *ret = calloc((size_t) n + 1, size);
        if (!*ret)
                return -ENOMEM;
        return n;
}

int tj_string(const TariffJson *j, const char *path, json_t *v, char **ret) {
        if (!json_is_string(v))
                return tj_refuse(j, path, "expected a string");
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        if (n > TARIFF_TEXT_MAX || strlen(s) != n)
                return tj_refuse(j, path, "expected at most %d bytes of text without NUL", TARIFF_TEXT_MAX);
        char *c = strdup(s);
        if (!c)
                return -ENOMEM;
        free(*ret);
        *ret = c;
        return 0;
}

int tj_int(const TariffJson *j, const char *path, json_t *v, int64_t min, int64_t max, int64_t *ret) {
        int64_t x;
        if (json_is_integer(v))
                x = json_integer_value(v);
        else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                 fabs(json_real_value(v)) < 9e15)
                x = (int64_t) json_real_value(v);
        else
                return tj_refuse(j, path, "expected an integer from %" PRId64 " to %" PRId64, min, max);
        if (x < min || x > max)
                return tj_refuse(j, path, "expected an integer from %" PRId64 " to %" PRId64, min, max);
        *ret = x;
        return 0;
}

/* JSON numbers arrive as doubles; a decimal with at most `digits`
 * fractional digits and well inside 2^53 comes back exactly by rounding.
 * More digits than that would be silently rounded, so they are refused. */
static int scaled(const TariffJson *j, const char *path, json_t *v, double scale, int digits, double max,
                  int64_t *ret) {
        double x;
        if (json_is_integer(v))
                x = (double) json_integer_value(v);
        else if (json_is_real(v))
                x = json_real_value(v);
        else
                return tj_refuse(j, path, "expected a number");
        if (!isfinite(x) || fabs(x) > max)
                return tj_refuse(j, path, "expected a number from %g to %g", -max, max);
        double s = x * scale;
        double r = round(s);
        if (fabs(s - r) > 1e-3 * fmax(1.0, fabs(s) * 1e-12))
                return tj_refuse(j, path, "expected at most %d decimals", digits);
        *ret = (int64_t) r;
        return 0;
}

int tj_nano(const TariffJson *j, const char *path, json_t *v, int64_t max_units, int64_t *ret) {
        return scaled(j, path, v, 1e9, 9, (double) max_units, ret);
}

int tj_milli(const TariffJson *j, const char *path, json_t *v, int64_t *ret) {
        int r = scaled(j, path, v, 1e6, 6, 1e9, ret);
        if (r < 0)
                return r;
        if (*ret <= 0)
                return tj_refuse(j, path, "expected a positive number");
        return 0;
}

int tj_keys(const TariffJson *j, const char *path, json_t *obj, const char *const *allowed) {
        const char *key;
        json_t *v;

        if (!json_is_object(obj))
                return tj_refuse(j, path, "expected an object");
        json_object_foreach(obj, key, v) {
                bool known = false;
                for (const char *const *a = allowed; *a; a++)
                        if (strcmp(*a, key) == 0)
                                known = true;
                if (!known) {
                        char p[TARIFF_PATH_MAX];
                        return tj_refuse(j, tj_path(p, path, "%s%.64s", path && path[0] ? "." : "", key),
                                         "unknown field");
                }
        }
        return 0;
}
