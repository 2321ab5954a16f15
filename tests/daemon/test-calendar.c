/* SPDX-License-Identifier: MIT */
#include <glib.h>
#include <stdlib.h>

#include "calendar.h"
#include "tap.h"

#define HOUR_MS (3600 * INT64_C(1000))

/* The expected values are written as UTC wall times, turned into
 * timestamps by GLib, independently of calendar.c's own arithmetic. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
        GDateTime *dt = g_date_time_new_utc(y, mo, d, h, mi, s);
        int64_t t = g_date_time_to_unix(dt) * 1000;
        g_date_time_unref(dt);
        return t;
}

static const char *fmt(const Calendar *c, int64_t ts) {
        static char buf[CALENDAR_ISO8601_MAX];
        return calendar_format_iso8601(c, ts, buf);
}

static unsigned count_hours(const Calendar *c, int64_t from, int64_t to, int64_t *ret_shortest) {
        unsigned n = 0;
        int64_t shortest = INT64_MAX;
        for (int64_t t = from; t < to; n++) {
                int64_t next = calendar_next_hour(c, t);
                if (next - t < shortest)
                        shortest = next - t;
                if (next <= t)
                        return 0;
                t = next;
        }
        *ret_shortest = shortest;
        return n;
}

static void test_berlin(void) {
        Calendar *c = calendar_new("Europe/Berlin");
        int64_t shortest;
        ok(c != NULL, "Europe/Berlin loads");

        /* 2024-03-31: 02:00 CET -> 03:00 CEST, a 23 h day */
        int64_t t = utc(2024, 3, 31, 12, 0, 0);
        is_int(calendar_day_start(c, t), utc(2024, 3, 30, 23, 0, 0), "Berlin spring day starts at 00:00+01");
        is_int(calendar_next_day(c, t), utc(2024, 3, 31, 22, 0, 0), "Berlin spring next day at 00:00+02");
        is_int(calendar_next_day(c, t) - calendar_day_start(c, t), 23 * HOUR_MS, "Berlin spring day lasts 23 h");
        is_str(fmt(c, utc(2024, 3, 31, 1, 0, 0)), "2024-03-31T03:00:00+02:00", "format after spring forward");
        is_str(fmt(c, utc(2024, 3, 31, 0, 59, 59) + 500), "2024-03-31T01:59:59.500+01:00", "format with ms before it");
        is_int(count_hours(c, calendar_day_start(c, t), calendar_next_day(c, t), &shortest), 23, "23 hour buckets");
        is_int(shortest, HOUR_MS, "all of them full hours");

        /* 2024-10-27: 03:00 CEST -> 02:00 CET, a 25 h day */
        t = utc(2024, 10, 27, 12, 0, 0);
        is_int(calendar_day_start(c, t), utc(2024, 10, 26, 22, 0, 0), "Berlin autumn day starts at 00:00+02");
        is_int(calendar_next_day(c, t) - calendar_day_start(c, t), 25 * HOUR_MS, "Berlin autumn day lasts 25 h");
        is_int(calendar_hour_start(c, utc(2024, 10, 27, 0, 30, 0)), utc(2024, 10, 27, 0, 0, 0), "first 02:xx (CEST) hour");
        is_int(calendar_hour_start(c, utc(2024, 10, 27, 1, 30, 0)), utc(2024, 10, 27, 1, 0, 0), "second 02:xx (CET) hour");
        is_str(fmt(c, utc(2024, 10, 27, 0, 30, 0)), "2024-10-27T02:30:00+02:00", "format of the first 02:30");
        is_str(fmt(c, utc(2024, 10, 27, 1, 30, 0)), "2024-10-27T02:30:00+01:00", "format of the second 02:30");
        is_int(count_hours(c, calendar_day_start(c, t), calendar_next_day(c, t), &shortest), 25, "25 hour buckets");

        /* months around DST */
        t = utc(2024, 3, 31, 12, 0, 0);
        is_int(calendar_month_start(c, t), utc(2024, 2, 29, 23, 0, 0), "March 2024 starts at 00:00+01");
        is_int(calendar_next_month(c, t), utc(2024, 3, 31, 22, 0, 0), "April 2024 starts at 00:00+02");
        is_int(calendar_next_month(c, utc(2024, 12, 31, 23, 30, 0)), utc(2025, 1, 31, 23, 0, 0), "next month across a year");
        is_int(calendar_month_start(c, utc(2024, 12, 31, 23, 30, 0)), utc(2024, 12, 31, 23, 0, 0), "month start just before midnight UTC");

        /* beyond the year 2037, where zones continue by rule */
        t = utc(2040, 3, 25, 12, 0, 0);
        is_int(calendar_next_day(c, t) - calendar_day_start(c, t), 23 * HOUR_MS, "Berlin 2040-03-25 lasts 23 h");
        calendar_free(c);
}

static void test_new_york(void) {
        Calendar *c = calendar_new("America/New_York");
        ok(c != NULL, "America/New_York loads");

        int64_t t = utc(2024, 3, 10, 15, 0, 0);
        is_int(calendar_day_start(c, t), utc(2024, 3, 10, 5, 0, 0), "NY spring day starts at 00:00-05");
        is_int(calendar_next_day(c, t), utc(2024, 3, 11, 4, 0, 0), "NY spring next day at 00:00-04");
        is_int(calendar_hour_start(c, utc(2024, 3, 10, 7, 10, 0)), utc(2024, 3, 10, 7, 0, 0), "NY 03:10 EDT hour starts at 03:00");

        t = utc(2024, 11, 3, 15, 0, 0);
        is_int(calendar_day_start(c, t), utc(2024, 11, 3, 4, 0, 0), "NY autumn day starts at 00:00-04");
        is_int(calendar_next_day(c, t) - calendar_day_start(c, t), 25 * HOUR_MS, "NY autumn day lasts 25 h");
        is_str(fmt(c, utc(2024, 11, 3, 6, 0, 0)), "2024-11-03T01:00:00-05:00", "NY format after fall back");
        calendar_free(c);
}

static void test_lord_howe(void) {
        Calendar *c = calendar_new("Australia/Lord_Howe");
        int64_t shortest;
        ok(c != NULL, "Australia/Lord_Howe loads");

        /* 2024-04-07 02:00 +11 -> 01:30 +10:30 */
        int64_t t = utc(2024, 4, 7, 0, 0, 0);
        is_int(calendar_day_start(c, t), utc(2024, 4, 6, 13, 0, 0), "Lord Howe day starts at 00:00+11");
        is_int(calendar_next_day(c, t), utc(2024, 4, 7, 13, 30, 0), "next day at 00:00+10:30");
        is_int(calendar_hour_start(c, utc(2024, 4, 6, 14, 45, 0)), utc(2024, 4, 6, 14, 0, 0), "01:45+11 hour starts 01:00+11");
        is_int(calendar_hour_start(c, utc(2024, 4, 6, 15, 15, 0)), utc(2024, 4, 6, 15, 0, 0), "01:45+10:30 bucket starts at the change");
        is_int(calendar_next_hour(c, utc(2024, 4, 6, 15, 0, 0)), utc(2024, 4, 6, 15, 30, 0), "and lasts 30 min");
        is_int(count_hours(c, calendar_day_start(c, t), calendar_next_day(c, t), &shortest), 25, "25 buckets in 24.5 h");
        is_int(shortest, HOUR_MS / 2, "the shortest is half an hour");
        is_str(fmt(c, utc(2024, 4, 6, 15, 0, 0)), "2024-04-07T01:30:00+10:30", "format after the change");

        /* 2024-10-06 02:00 +10:30 -> 02:30 +11 */
        t = utc(2024, 10, 6, 0, 0, 0);
        is_int(calendar_next_day(c, t) - calendar_day_start(c, t), 47 * HOUR_MS / 2, "spring day lasts 23.5 h");
        is_int(calendar_hour_start(c, utc(2024, 10, 5, 15, 45, 0)), utc(2024, 10, 5, 15, 30, 0), "02:45+11 bucket starts at 02:30");
        is_int(count_hours(c, calendar_day_start(c, t), calendar_next_day(c, t), &shortest), 24, "24 buckets in 23.5 h");
        calendar_free(c);
}

static void test_half_hour_zones(void) {
        Calendar *c = calendar_new("Asia/Kolkata");
        ok(c != NULL, "Asia/Kolkata loads");
        is_int(calendar_hour_start(c, utc(2024, 1, 1, 10, 10, 0)), utc(2024, 1, 1, 9, 30, 0), "Kolkata hours start at :30 UTC");
        is_int(calendar_next_hour(c, utc(2024, 1, 1, 10, 10, 0)), utc(2024, 1, 1, 10, 30, 0), "Kolkata next hour");
        is_int(calendar_day_start(c, utc(2024, 1, 1, 10, 10, 0)), utc(2023, 12, 31, 18, 30, 0), "Kolkata day starts 18:30 UTC");
        is_str(fmt(c, utc(2024, 1, 1, 10, 10, 0)), "2024-01-01T15:40:00+05:30", "Kolkata format");
        calendar_free(c);

        c = calendar_new("Asia/Kathmandu");
        ok(c != NULL, "Asia/Kathmandu loads");
        is_int(calendar_hour_start(c, utc(2024, 1, 1, 10, 10, 0)), utc(2024, 1, 1, 9, 15, 0), "Kathmandu hours start at :15 UTC");
        is_str(fmt(c, utc(2024, 1, 1, 10, 10, 0)), "2024-01-01T15:55:00+05:45", "Kathmandu format");
        calendar_free(c);
}

static void test_skipped_day(void) {
        /* Samoa skipped 2011-12-30: 23:59:59-10 was followed by 00:00+14 on the 31st. */
        Calendar *c = calendar_new("Pacific/Apia");
        ok(c != NULL, "Pacific/Apia loads");
        is_int(calendar_next_day(c, utc(2011, 12, 29, 20, 0, 0)), utc(2011, 12, 30, 10, 0, 0), "the day after 29 Dec 2011 is 31 Dec");
        is_int(calendar_day_start(c, utc(2011, 12, 30, 10, 0, 0)), utc(2011, 12, 30, 10, 0, 0), "31 Dec starts at the jump");
        calendar_free(c);
}

static void test_names(void) {
        static const char *const bad[] = { "Mars/Olympus", "/etc/passwd", "../../etc/passwd", "Europe/../UTC", "XYZ5", "+05:00", "Europe/Berlin\n" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                Calendar *c = calendar_new(bad[i]);
                ok(c == NULL, "zone name %zu refused", i);
                calendar_free(c);
        }
        Calendar *c = calendar_new(NULL);
        ok(c != NULL, "local zone loads");
        calendar_free(c);
        c = calendar_new("UTC");
        is_str(fmt(c, -1), "1969-12-31T23:59:59.999+00:00", "negative timestamps");
        calendar_free(c);
}

/* Invariants on random instants, and agreement with GLib's own local
 * midnight where midnight always exists. */
static void test_random(void) {
        static const char *const zones[] = { "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
                                             "America/Sao_Paulo", "Pacific/Chatham", "Europe/London", "Asia/Tehran" };
        GRand *rand = g_rand_new_with_seed(42);
        unsigned failures = 0, glib_mismatch = 0, n = 0;

        for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
                Calendar *c = calendar_new(zones[z]);
                GTimeZone *tz = g_time_zone_new_identifier(zones[z]);
                bool midnight_exists = z < 4;

                for (int i = 0; i < 2000; i++, n++) {
                        int64_t ts = (int64_t) g_rand_double_range(rand, 0, 2.2e9) * 1000 + g_rand_int_range(rand, 0, 1000);
                        int64_t ds = calendar_day_start(c, ts), nd = calendar_next_day(c, ts);
                        int64_t hs = calendar_hour_start(c, ts), nh = calendar_next_hour(c, ts);
                        int64_t ms = calendar_month_start(c, ts), nm = calendar_next_month(c, ts);

                        if (!(ds <= ts && ts < nd && nd - ds <= 25 * HOUR_MS && nd - ds >= 22 * HOUR_MS &&
                              calendar_day_start(c, ds) == ds && calendar_day_start(c, nd) == nd &&
                              calendar_day_start(c, nd - 1) == ds &&
                              hs <= ts && ts < nh && nh - hs <= HOUR_MS &&
                              calendar_hour_start(c, nh) == nh && calendar_hour_start(c, nh - 1) == hs &&
                              ms <= ds && nd <= nm && calendar_month_start(c, nm - 1) == ms &&
                              calendar_month_start(c, nm) == nm &&
                              strstr(fmt(c, ms), "-01T") != NULL)) {
                                if (failures++ < 5)
                                        diag("%s: invariant broken at %" PRId64, zones[z], ts);
                        }

                        if (midnight_exists) {
                                GDateTime *u = g_date_time_new_from_unix_utc(ts / 1000);
                                GDateTime *l = g_date_time_to_timezone(u, tz);
                                GDateTime *m = g_date_time_new(tz, g_date_time_get_year(l), g_date_time_get_month(l),
                                                               g_date_time_get_day_of_month(l), 0, 0, 0);
                                if (g_date_time_to_unix(m) * 1000 != ds && glib_mismatch++ < 5)
                                        diag("%s: day start %" PRId64 " but GLib says %" PRId64, zones[z], ds,
                                             (int64_t) g_date_time_to_unix(m) * 1000);
                                g_date_time_unref(m);
                                g_date_time_unref(l);
                                g_date_time_unref(u);
                        }
                }
                g_time_zone_unref(tz);
                calendar_free(c);
        }
        g_rand_free(rand);
        is_int(failures, 0, "invariants hold on %u random instants", n);
        is_int(glib_mismatch, 0, "day starts agree with GLib's local midnight");
}

int main(void) {
        test_berlin();
        test_new_york();
        test_lord_howe();
        test_half_hour_zones();
        test_skipped_day();
        test_names();
        test_random();
        return done_testing();
}
