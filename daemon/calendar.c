/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <glib.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "calendar.h"

struct Calendar {
        GTimeZone *tz;
};

/* Civil date <-> days since 1970-01-01 in the proleptic Gregorian calendar
 * (H. Hinnant's algorithms): pure arithmetic, valid for any int64 day. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned) (y - era * 400);
        unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d) {
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        unsigned doe = (unsigned) (z - era * 146097);
        unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        unsigned mp = (5 * doy + 2) / 153;
        unsigned m = mp < 10 ? mp + 3 : mp - 9;

        *ret_y = (int64_t) yoe + era * 400 + (m <= 2);
        *ret_m = m;
        *ret_d = doy - (153 * mp + 2) / 5 + 1;
}

static int64_t floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t floor_mod(int64_t a, int64_t b) {
        return a - floor_div(a, b) * b;
}

/* IANA names only: no paths (GLib would open any file given an absolute
 * path) and no POSIX TZ strings (GLib would accept "XYZ5" as a made-up zone,
 * hiding a typo), so the name must be a file in the tz database. */
static bool zone_name_is_known(const char *name) {
        if (!g_ascii_isalpha(name[0]) || strstr(name, ".."))
                return false;
        for (const char *p = name; *p; p++)
                if (!g_ascii_isalnum(*p) && !strchr("/_+-", *p))
                        return false;

        const char *dir = getenv("TZDIR");
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name) < 0)
                return false;

        struct stat st;
        return stat(path, &st) >= 0 && S_ISREG(st.st_mode);
}

Calendar *calendar_new(const char *tz) {
        GTimeZone *zone;

        if (!tz || !*tz)
                zone = g_time_zone_new_local();
        else if (!zone_name_is_known(tz))
                return NULL;
        else
                zone = g_time_zone_new_identifier(tz);
        if (!zone)
                return NULL;

        Calendar *c = malloc(sizeof(Calendar));
        if (!c) {
                g_time_zone_unref(zone);
                return NULL;
        }
        c->tz = zone;
        return c;
}

Calendar *calendar_free(Calendar *c) {
        if (!c)
                return NULL;
        g_time_zone_unref(c->tz);
        free(c);
        return NULL;
}

static int32_t offset_at(const Calendar *c, int64_t t) {
        return g_time_zone_get_offset(c->tz, g_time_zone_find_interval(c->tz, G_TIME_TYPE_UNIVERSAL, t));
}

typedef enum Period {
        PERIOD_DAY,
        PERIOD_MONTH,
} Period;

/* A number that grows with the local civil day or month containing t. */
static int64_t period_key(const Calendar *c, Period p, int64_t t) {
        int64_t day = floor_div(t + offset_at(c, t), 86400);
        if (p == PERIOD_DAY)
                return day;

        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);
        return y * 12 + (m - 1);
}

/* The first second whose period key is >= key. The local wall time
 * wall_start (seconds, as if UTC) is where that period should begin; the
 * guess from the offsets around it is right unless local midnight falls into
 * a DST gap or repeats, and then a bisection over [lo, hi] finds it, given
 * key(lo) < key <= key(hi). */
static int64_t period_first(const Calendar *c, Period p, int64_t key, int64_t wall_start, int64_t lo, int64_t hi) {
        int64_t g = wall_start - offset_at(c, hi);
        g = wall_start - offset_at(c, g);
        if (g > lo && g <= hi && period_key(c, p, g) >= key && period_key(c, p, g - 1) < key)
                return g;

        while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (period_key(c, p, mid) >= key)
                        hi = mid;
                else
                        lo = mid;
        }
        return hi;
}

/* Two days is more than any UTC offset, so these bounds always bracket. */
#define BRACKET (2 * 86400)

int64_t calendar_day_start(const Calendar *c, int64_t ts_ms) {
        int64_t t = floor_div(ts_ms, 1000);
        int64_t key = period_key(c, PERIOD_DAY, t);
        return period_first(c, PERIOD_DAY, key, key * 86400, key * 86400 - BRACKET, t) * 1000;
}

int calendar_month_days(int year, int month) {
        static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

        if (month < 1 || month > 12)
                return 0;
        return days[month - 1] + (month == 2 && leap);
}

int64_t calendar_date_start(const Calendar *c, int year, int month, int day) {
        int64_t key, t;

        if (day < 1 || day > calendar_month_days(year, month))
                return INT64_MIN;
        key = days_from_civil(year, (unsigned) month, (unsigned) day);
        t = period_first(c, PERIOD_DAY, key, key * 86400, key * 86400 - BRACKET, key * 86400 + BRACKET);
        /* A date the zone skipped (Samoa's 2011-12-30) has no start. */
        return period_key(c, PERIOD_DAY, t) == key ? t * 1000 : INT64_MIN;
}

void calendar_date(const Calendar *c, int64_t ts_ms, int *ret_year, int *ret_month, int *ret_day) {
        int64_t y;
        unsigned m, d;

        civil_from_days(period_key(c, PERIOD_DAY, floor_div(ts_ms, 1000)), &y, &m, &d);
        *ret_year = (int) y;
        *ret_month = (int) m;
        *ret_day = (int) d;
}

int64_t calendar_next_day(const Calendar *c, int64_t ts_ms) {
        int64_t t = floor_div(ts_ms, 1000);
        int64_t key = period_key(c, PERIOD_DAY, t) + 1;
        return period_first(c, PERIOD_DAY, key, key * 86400, t, key * 86400 + BRACKET) * 1000;
}

static int64_t month_wall_start(int64_t key) {
        return days_from_civil(floor_div(key, 12), (unsigned) floor_mod(key, 12) + 1, 1) * 86400;
}

int64_t calendar_month_start(const Calendar *c, int64_t ts_ms) {
        int64_t t = floor_div(ts_ms, 1000);
        int64_t key = period_key(c, PERIOD_MONTH, t);
        int64_t wall = month_wall_start(key);
        return period_first(c, PERIOD_MONTH, key, wall, wall - BRACKET, t) * 1000;
}

int64_t calendar_next_month(const Calendar *c, int64_t ts_ms) {
        int64_t t = floor_div(ts_ms, 1000);
        int64_t key = period_key(c, PERIOD_MONTH, t) + 1;
        int64_t wall = month_wall_start(key);
        return period_first(c, PERIOD_MONTH, key, wall, t, wall + BRACKET) * 1000;
}

/* The first second of (lo, hi] whose offset differs from lo's
 * (offset(lo) != offset(hi) and at most one transition in between). */
static int64_t transition_between(const Calendar *c, int64_t lo, int64_t hi) {
        int32_t before = offset_at(c, lo);
        while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (offset_at(c, mid) != before)
                        hi = mid;
                else
                        lo = mid;
        }
        return hi;
}

/* An hour bucket starts at a local full hour or at an offset change,
 * whichever is later, so buckets never overlap even when the offset moves
 * by 30 minutes. */
static int64_t hour_start(const Calendar *c, int64_t t) {
        int32_t off = offset_at(c, t);
        int64_t full = t - floor_mod(t + off, 3600);
        if (offset_at(c, full) == off)
                return full;
        return transition_between(c, full, t);
}

int64_t calendar_hour_start(const Calendar *c, int64_t ts_ms) {
        return hour_start(c, floor_div(ts_ms, 1000)) * 1000;
}

int64_t calendar_next_hour(const Calendar *c, int64_t ts_ms) {
        int64_t t = floor_div(ts_ms, 1000);
        int64_t s = hour_start(c, t);
        int32_t off = offset_at(c, s);
        int64_t next = s + 3600 - floor_mod(s + off, 3600);
        if (offset_at(c, next) == off)
                return next * 1000;
        return transition_between(c, t, next) * 1000;
}

char *calendar_format_iso8601(const Calendar *c, int64_t ts_ms, char buf[static CALENDAR_ISO8601_MAX]) {
        int64_t t = floor_div(ts_ms, 1000);
        int ms = (int) (ts_ms - t * 1000);
        int32_t off = offset_at(c, t);
        int64_t wall = t + off;
        int64_t day = floor_div(wall, 86400);
        int secs = (int) (wall - day * 86400);
        int64_t y;
        unsigned m, d;
        civil_from_days(day, &y, &m, &d);

        char frac[8] = "", zone[16];
        if (ms != 0)
                snprintf(frac, sizeof frac, ".%03d", ms);

        unsigned aoff = (unsigned) (off < 0 ? -off : off);
        int n = snprintf(zone, sizeof zone, "%c%02u:%02u", off < 0 ? '-' : '+', aoff / 3600, aoff / 60 % 60);
        if (aoff % 60 != 0) /* local mean time of old dates has seconds */
                snprintf(zone + n, sizeof zone - (size_t) n, ":%02u", aoff % 60);

        snprintf(buf, CALENDAR_ISO8601_MAX, "%04" PRId64 "-%02u-%02uT%02d:%02d:%02d%s%s",
                 y, m, d, secs / 3600, secs / 60 % 60, secs % 60, frac, zone);
        return buf;
}
