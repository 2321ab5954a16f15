/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "energy-csv.h"
#include "tariff-json.h"
#include "tariff.h"

_printf_(4, 5) static int refuse(char **ret_error, const char *name, size_t line, const char *fmt, ...) {
        char where[24];
        va_list ap;

        snprintf(where, sizeof(where), "%zu", line);
        va_start(ap, fmt);
        int r = tj_refusev(ret_error, name, ":", where, fmt, ap);
        va_end(ap);
        return r;
}

/* Strips blanks and one pair of double quotes. */
static char *field(char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        char *e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                *--e = 0;
        if (e - s >= 2 && s[0] == '"' && e[-1] == '"') {
                e[-1] = 0;
                s++;
        }
        return s;
}

/* Wh with at most 3 decimals, >= 0, as mWh, without floating point. */
static int parse_wh(const char *s, int64_t *ret) {
        int64_t v = 0;
        int decimals = -1;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s == '.' && decimals < 0) {
                        decimals = 0;
                        continue;
                }
                if (*s < '0' || *s > '9' || decimals >= 3)
                        return -EINVAL;
                if (v > COST_ENERGY_MAX_MWH)
                        return -ERANGE;
                v = v * 10 + (*s - '0');
                if (decimals >= 0)
                        decimals++;
        }
        if (decimals == 0)
                return -EINVAL; /* "12." */
        for (int d = decimals < 0 ? 0 : decimals; d < 3; d++)
                v *= 10;
        if (v > COST_ENERGY_MAX_MWH)
                return -ERANGE;
        *ret = v;
        return 0;
}

int energy_csv_parse(const char *data, size_t size, const char *name, CostInterval **ret, size_t *ret_n,
                     char **ret_error) {
        _cleanup_free_ CostInterval *rows = NULL;
        size_t n = 0, allocated = 0, lineno = 0;

        if (ret_error)
                *ret_error = NULL;
        name = name ? name : "energy.csv";
        if (size > ENERGY_CSV_MAX)
                return refuse(ret_error, name, 0, "expected at most %d bytes", ENERGY_CSV_MAX);
        if (size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
                data += 3;
                size -= 3;
        }
        for (size_t pos = 0; pos < size;) {
                const char *nl = memchr(data + pos, '\n', size - pos);
                size_t len = (nl ? (size_t) (nl - data) : size) - pos;
                char line[ENERGY_CSV_LINE_MAX + 1];

                lineno++;
                if (len > ENERGY_CSV_LINE_MAX)
                        return refuse(ret_error, name, lineno, "expected a line of at most %d bytes", ENERGY_CSV_LINE_MAX);
                memcpy(line, data + pos, len);
                line[len] = 0;
                pos += len + 1;
                if (len > 0 && line[len - 1] == '\r')
                        line[--len] = 0;
                if (memchr(line, 0, len))
                        return refuse(ret_error, name, lineno, "expected text without NUL bytes");

                char *comma = strchr(line, ',');
                if (!comma) {
                        if (*field(line) == 0)
                                continue; /* blank line */
                        return refuse(ret_error, name, lineno, "expected two fields, start,energy_wh");
                }
                *comma = 0;
                char *start = field(line), *energy = field(comma + 1);
                if (strchr(energy, ','))
                        return refuse(ret_error, name, lineno, "expected two fields, start,energy_wh");
                if (n == 0 && lineno == 1 && strcmp(start, "start") == 0 && strcmp(energy, "energy_wh") == 0)
                        continue;

                CostInterval iv = {};
                if (tariff_parse_rfc3339(start, &iv.start_ms) < 0)
                        return refuse(ret_error, name, lineno, "start: expected an RFC 3339 time like 2024-03-31T02:00:00+01:00");
                int r = parse_wh(energy, &iv.energy_mwh);
                if (r < 0)
                        return refuse(ret_error, name, lineno,
                                      r == -ERANGE ? "energy_wh: expected at most 1 GWh"
                                                   : "energy_wh: expected a number of Wh >= 0 with at most 3 decimals");
                if (n > 0 && iv.start_ms <= rows[n - 1].start_ms)
                        return refuse(ret_error, name, lineno, "start: expected a time after the previous row's");
                if (n >= ENERGY_CSV_ROWS_MAX)
                        return refuse(ret_error, name, lineno, "expected at most %d rows", ENERGY_CSV_ROWS_MAX);
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 64;
                        void *p = realloc(rows, allocated * sizeof(CostInterval));
                        if (!p)
                                return -ENOMEM;
                        rows = p;
                }
                if (n > 0)
                        rows[n - 1].end_ms = iv.start_ms;
                rows[n++] = iv;
        }
        if (n < 2)
                return refuse(ret_error, name, lineno, "expected at least two rows (the last interval is as long as the one before)");
        rows[n - 1].end_ms = rows[n - 1].start_ms + (rows[n - 1].start_ms - rows[n - 2].start_ms);
        *ret = TAKE_PTR(rows);
        *ret_n = n;
        return 0;
}
