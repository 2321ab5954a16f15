/* SPDX-License-Identifier: MIT */

#include "time-util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kasa-time.h"
#include "macro.h"

uint64_t now_usec(void) {
        return realtime_usec();
}

static uint64_t usec_from_local(struct tm *tm) {
        time_t t;

        tm->tm_isdst = -1;
        t = mktime(tm);
        return t < 0 ? 0 : (uint64_t) t * USEC_PER_SEC;
}

uint64_t local_day_start(uint64_t t, int days) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        localtime_r(&s, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday += days; /* mktime normalises, across DST changes too */
        return usec_from_local(&tm);
}

uint64_t local_month_start(uint64_t t, int months) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        localtime_r(&s, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday = 1;
        tm.tm_mon += months;
        return usec_from_local(&tm);
}

static int parse_relative(const char *s, uint64_t now, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                /* Longest first, so "min" is not read as "m" + garbage. */
                { "weeks", 7 * USEC_PER_DAY }, { "week", 7 * USEC_PER_DAY }, { "days", USEC_PER_DAY },
                { "day", USEC_PER_DAY },       { "hours", USEC_PER_HOUR },   { "hour", USEC_PER_HOUR },
                { "min", USEC_PER_MINUTE },    { "sec", USEC_PER_SEC },      { "w", 7 * USEC_PER_DAY },
                { "d", USEC_PER_DAY },         { "h", USEC_PER_HOUR },       { "m", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC },
        };
        bool minus = s[0] == '-';
        uint64_t span = 0;

        s++;
        if (!*s)
                return -EINVAL;
        while (*s) {
                char *end;
                unsigned long long n;
                size_t i;

                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                errno = 0;
                n = strtoull(s, &end, 10);
                if (errno != 0 || n > UINT32_MAX)
                        return -ERANGE;
                for (i = 0; i < ELEMENTSOF(units); i++)
                        if (strncmp(end, units[i].suffix, strlen(units[i].suffix)) == 0)
                                break;
                if (i == ELEMENTSOF(units))
                        return -EINVAL;
                if (n > (UINT64_MAX - span) / units[i].usec)
                        return -ERANGE;
                span += n * units[i].usec;
                s = end + strlen(units[i].suffix);
        }
        if (minus && span > now)
                return -ERANGE;
        *ret = minus ? now - span : now + span;
        return 0;
}

int parse_span(const char *s, int64_t *ret) {
        _cleanup_free_ char *buf = NULL;
        bool minus = s[0] == '-';
        uint64_t span;
        char *end;
        int r;

        if (s[0] == '+' || s[0] == '-')
                s++;
        /* A bare number is seconds, as systemd reads it. */
        errno = 0;
        unsigned long long n = strtoull(s, &end, 10);
        if (isdigit((unsigned char) s[0]) && *end == 0) {
                if (errno != 0 || n > INT64_MAX / USEC_PER_SEC)
                        return -ERANGE;
                span = n * USEC_PER_SEC;
        } else {
                if (asprintf(&buf, "+%s", s) < 0)
                        return -ENOMEM;
                r = parse_relative(buf, 0, &span);
                if (r < 0)
                        return r;
                if (span > INT64_MAX)
                        return -ERANGE;
        }
        *ret = minus ? -(int64_t) span : (int64_t) span;
        return 0;
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *ret) {
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char) (*p)[i]))
                        return -EINVAL;
                v = v * 10 + ((*p)[i] - '0');
        }
        *p += n;
        *ret = v;
        return 0;
}

static int parse_iso(const char *s, uint64_t *ret) {
        struct tm tm = {};
        int year, mon, day, offset = 0;
        bool has_offset = false;
        uint64_t frac = 0;
        const char *p = s;

        if (digits(&p, 4, &year) < 0 || *p++ != '-' || digits(&p, 2, &mon) < 0 || *p++ != '-' ||
            digits(&p, 2, &day) < 0)
                return -EINVAL;
        if (mon < 1 || mon > 12 || day < 1 || day > 31)
                return -EINVAL;
        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        if (*p == 'T' || *p == ' ') {
                p++;
                if (digits(&p, 2, &tm.tm_hour) < 0 || *p++ != ':' || digits(&p, 2, &tm.tm_min) < 0)
                        return -EINVAL;
                if (*p == ':') {
                        p++;
                        if (digits(&p, 2, &tm.tm_sec) < 0)
                                return -EINVAL;
                        if (*p == '.' || *p == ',') {
                                uint64_t scale = USEC_PER_SEC / 10;

                                if (!isdigit((unsigned char) *++p))
                                        return -EINVAL;
                                for (; isdigit((unsigned char) *p); p++, scale /= 10)
                                        frac += (uint64_t) (*p - '0') * scale;
                        }
                }
                if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
                        return -EINVAL;
                if (*p == 'Z') {
                        p++;
                        has_offset = true;
                } else if (*p == '+' || *p == '-') {
                        int sign = *p++ == '-' ? -1 : 1, oh, om;

                        if (digits(&p, 2, &oh) < 0)
                                return -EINVAL;
                        if (*p == ':')
                                p++;
                        if (digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
                                return -EINVAL;
                        offset = sign * (oh * 3600 + om * 60);
                        has_offset = true;
                }
        }
        if (*p)
                return -EINVAL;

        if (has_offset) {
                time_t t = timegm(&tm);

                if (t == (time_t) -1 || t - offset < 0)
                        return -ERANGE;
                *ret = (uint64_t) (t - offset) * USEC_PER_SEC + frac;
        } else {
                uint64_t t = usec_from_local(&tm);

                if (t == 0)
                        return -ERANGE;
                *ret = t + frac;
        }
        return 0;
}

int parse_time(const char *s, uint64_t now, uint64_t *ret) {
        if (strcmp(s, "now") == 0)
                *ret = now;
        else if (strcmp(s, "today") == 0)
                *ret = local_day_start(now, 0);
        else if (strcmp(s, "yesterday") == 0)
                *ret = local_day_start(now, -1);
        else if (strcmp(s, "tomorrow") == 0)
                *ret = local_day_start(now, 1);
        else if (s[0] == '-' || s[0] == '+')
                return parse_relative(s, now, ret);
        else if (s[0] == '@') {
                char *end;
                unsigned long long v;

                errno = 0;
                v = strtoull(s + 1, &end, 10);
                if (errno != 0 || end == s + 1 || *end || v > UINT64_MAX / USEC_PER_SEC)
                        return -EINVAL;
                *ret = v * USEC_PER_SEC;
        } else
                return parse_iso(s, ret);
        return 0;
}

char *format_time(char *buf, size_t size, uint64_t t, bool iso) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;
        size_t n;

        if (!localtime_r(&s, &tm) ||
            (n = strftime(buf, size, iso ? "%Y-%m-%dT%H:%M:%S%z" : "%Y-%m-%d %H:%M:%S", &tm)) == 0) {
                snprintf(buf, size, "@%" PRIu64, t / USEC_PER_SEC);
                return buf;
        }
        /* RFC 3339 wants the offset as +HH:MM; strftime gives +HHMM. */
        if (iso && n + 2 <= size && n >= 5) {
                memmove(buf + n - 1, buf + n - 2, 3);
                buf[n - 2] = ':';
        }
        return buf;
}
