/* SPDX-License-Identifier: MIT */

/* The backfill's rules: which months are asked, which statistics replies
 * are refused and why, local dates to day starts; and the store's import:
 * only days before the first recorded one and before today, a second
 * import replaces (never adds), bad input taken whole or not at all,
 * kept across a reopen, erased with the device. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "calendar.h"
#include "macro.h"
#include "store.h"
#include "tap.h"

#define HOUR_MS INT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)

static int64_t day_start(int64_t ts, void *userdata) {
        return calendar_day_start(userdata, ts);
}

static void test_calendar(const Calendar *cal) {
        int y, m, d;

        /* Berlin: 2024-03-31 is the spring DST day (23 h). */
        is_int(calendar_date_start(cal, 2024, 3, 31), INT64_C(1711839600000), "2024-03-31 starts at 23:00 UTC");
        is_int(calendar_date_start(cal, 2024, 4, 1) - calendar_date_start(cal, 2024, 3, 31), 23 * HOUR_MS,
               "and lasts 23 hours");
        is_int(calendar_date_start(cal, 2023, 2, 29), INT64_MIN, "2023-02-29 does not exist");
        ok(calendar_date_start(cal, 2024, 2, 29) != INT64_MIN, "2024-02-29 does");
        calendar_date(cal, INT64_C(1711839600000), &y, &m, &d);
        ok(y == 2024 && m == 3 && d == 31, "the date of a local midnight is its own");
        calendar_date(cal, INT64_C(1711839600000) - 1, &y, &m, &d);
        ok(y == 2024 && m == 3 && d == 30, "a millisecond before is the day before");
        is_int(calendar_month_days(1900, 2), 28, "1900 was no leap year");
        is_int(calendar_month_days(2000, 2), 29, "2000 was");
}

static void test_months(void) {
        KasaStat s[] = {
                { 2024, 1, 0, 5000 }, { 2024, 3, 0, 0 }, { 2024, 5, 0, 7000 }, { 2024, 11, 0, 1000 },
        };
        BackfillMonth out[12];
        BackfillError err;
        size_t n = 0;

        ok(backfill_months(s, 4, 2024, 2024, 5, out, &n, &err) == 0 && n == 2 && out[0].month == 1 &&
                   out[1].month == 5,
           "months with energy, up to this one, oldest first (got %zu)", n);
        ok(backfill_months(s, 4, 2024, 2026, 6, out, &n, &err) == 0 && n == 1 && out[0].month == 11,
           "not more than %d months back", BACKFILL_MONTHS_MAX);

        KasaStat twice[] = { { 2024, 2, 0, 1 }, { 2024, 2, 0, 2 } };
        is_int(backfill_months(twice, 2, 2024, 2024, 5, out, &n, &err), -EBADMSG, "a month twice is refused");
        is_str(err.message, "month_list[1]: month 2 of 2024 twice", "saying which");
        KasaStat other[] = { { 2023, 2, 0, 1 } };
        is_int(backfill_months(other, 1, 2024, 2024, 5, out, &n, &err), -EBADMSG, "another year is refused");
        is_str(err.message, "month_list[0]: year 2023 in the statistics of 2024", "saying which");
}

static void test_days(const Calendar *cal) {
        KasaStat s[] = { { 2024, 2, 1, 100000 }, { 2024, 2, 29, 0 }, { 2024, 2, 15, 2500 } };
        StoreImportedDay out[31];
        BackfillError err;
        size_t n = 0;

        ok(backfill_days(cal, s, 3, 2024, 2, out, &n, &err) == 0 && n == 3, "three days of February 2024");
        ok(out[0].day_start_ms == calendar_date_start(cal, 2024, 2, 1) && out[0].energy_mwh == 100000 &&
                   out[1].day_start_ms == calendar_date_start(cal, 2024, 2, 29) && out[1].energy_mwh == 0,
           "as local day starts, with their energy");

        KasaStat bad_day[] = { { 2023, 2, 29, 1 } };
        is_int(backfill_days(cal, bad_day, 1, 2023, 2, out, &n, &err), -EBADMSG, "2023-02-29 is refused");
        is_str(err.message, "day_list[0]: day 29 of 2023-02, which has 28", "saying why");
        KasaStat wrong_month[] = { { 2024, 3, 1, 1 } };
        is_int(backfill_days(cal, wrong_month, 1, 2024, 2, out, &n, &err), -EBADMSG, "another month is refused");
        is_str(err.message, "day_list[0]: 2024-03 in the statistics of 2024-02", "saying which");
        KasaStat twice[] = { { 2024, 2, 3, 1 }, { 2024, 2, 3, 1 } };
        is_int(backfill_days(cal, twice, 2, 2024, 2, out, &n, &err), -EBADMSG, "a day twice is refused");
        is_str(err.message, "day_list[1]: 2024-02-03 twice", "saying which");
        KasaStat many[32];
        for (int i = 0; i < 32; i++)
                many[i] = (KasaStat) { 2024, 1, i % 31 + 1, 1 };
        is_int(backfill_days(cal, many, 32, 2024, 1, out, &n, &err), -EBADMSG, "32 days in January are refused");
}

static void test_quarter(const Calendar *cal) {
        static KasaEnergyData e;
        StoreImportedDay out[KASA_ENERGY_DATA_MAX];
        BackfillError err;
        int64_t start = calendar_date_start(cal, 2024, 7, 1) / 1000;
        bool energy = true;
        size_t n = 0;

        is_int(backfill_quarter_month(8), 7, "August is in the quarter from July");
        e = (KasaEnergyData) { .start_s = start, .interval_min = 1440, .n = 92 };
        ok(backfill_quarter_days(cal, &e, 2024, 7, start, out, &n, &energy, &err) == 0 && n == 92 && !energy,
           "92 days of July to September, none with energy");
        ok(out[31].day_start_ms == calendar_date_start(cal, 2024, 8, 1) &&
                   out[91].day_start_ms == calendar_date_start(cal, 2024, 9, 30),
           "entry 31 is August 1, entry 91 September 30");
        e.energy_mwh[40] = 5000;
        ok(backfill_quarter_days(cal, &e, 2024, 7, start, out, &n, &energy, &err) == 0 && energy &&
                   out[40].energy_mwh == 5000,
           "a day with energy says so");
        e.n = 93;
        is_int(backfill_quarter_days(cal, &e, 2024, 7, start, out, &n, &energy, &err), -EBADMSG, "93 days: refused");
        is_str(err.message, "93 days in the quarter from 2024-07, which has 92", "saying why");
        e.n = 3;
        e.start_s = start + 86400;
        is_int(backfill_quarter_days(cal, &e, 2024, 7, start, out, &n, &energy, &err), -EBADMSG,
               "another start: refused");
        e.start_s = start;
        e.interval_min = 60;
        is_int(backfill_quarter_days(cal, &e, 2024, 7, start, out, &n, &energy, &err), -EBADMSG,
               "hours where days were asked: refused");
}

static void test_leading_zeros(void) {
        StoreImportedDay d[] = { { 3000, 0 }, { 1000, 0 }, { 4000, 7 }, { 2000, 0 }, { 5000, 0 }, { 6000, 1 } };
        size_t n = backfill_drop_leading_zeros(d, ELEMENTSOF(d));

        ok(n == 3 && d[0].day_start_ms == 4000 && d[1].day_start_ms == 5000 && d[1].energy_mwh == 0 &&
                   d[2].day_start_ms == 6000,
           "days sorted, those before the first with energy dropped, a zero day after it kept");
        is_int((int64_t) backfill_drop_leading_zeros(d, 0), 0, "none");
}

static int64_t imported_energy(Store *st, uint32_t device, int64_t from, int64_t to, size_t *ret_n) {
        StoreImportedDay *d = NULL;
        int64_t sum = 0;
        size_t n = 0;

        if (store_query_imported(st, device, from, to, 1000, &d, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                sum += d[i].energy_mwh;
        free(d);
        *ret_n = n;
        return sum;
}

static void test_store(const Calendar *cal) {
        char dir[] = "/tmp/test-backfill-XXXXXX";
        Store *st = NULL;
        int64_t d0 = calendar_date_start(cal, 2025, 1, 10), today = calendar_date_start(cal, 2025, 1, 20);
        StoreImportedDay days[12];
        size_t written = 99, n = 0;

        ok(mkdtemp(dir) && store_open(dir, day_start, (void *) cal, &st) == 0, "open a store");
        /* Device 1 recorded from 2025-01-10 12:00 on; device 2 never. */
        for (int i = 0; i < 3; i++) {
                StoreSample x = { .device = 1, .ts_ms = d0 + 12 * HOUR_MS + i * 60000, .power_mw = 60000,
                                  .energy_mwh = i * 1000 };
                ok(store_append(st, &x, 1) == 0, "sample %d", i);
        }
        for (int i = 0; i < 12; i++)
                days[i] = (StoreImportedDay) { calendar_date_start(cal, 2025, 1, 1 + i), 1000 * (i + 1) };

        ok(store_import_days(st, 1, days, 12, today, &written) == 0 && written == 9,
           "device 1: the 9 days before its first recorded one are written (%zu)", written);
        is_int(imported_energy(st, 1, 0, INT64_MAX, &n), 45000, "their energy");
        is_int((int64_t) n, 9, "nine days");
        ok(store_import_days(st, 1, days, 12, today, &written) == 0 && written == 0,
           "the same again writes nothing (%zu)", written);
        days[0].energy_mwh = 7000;
        ok(store_import_days(st, 1, days, 12, today, &written) == 0 && written == 1,
           "a day the device now says otherwise is written again");
        is_int(imported_energy(st, 1, 0, INT64_MAX, &n), 51000, "replaced, not added");
        ok(store_import_days(st, 2, days, 12, today, &written) == 0 && written == 12,
           "device 2, never recorded: every day before today (%zu)", written);
        ok(store_import_days(st, 4, days, 12, calendar_date_start(cal, 2025, 1, 12) + 1, &written) == 0 &&
                   written == 11,
           "a cutoff inside a day keeps that day out (%zu)", written);
        is_int(imported_energy(st, 2, days[2].day_start_ms, days[4].day_start_ms, &n), 3000 + 4000,
               "a range of imported days");

        StoreImportedDay bad[] = { days[0], days[1], days[0] };
        is_int(store_import_days(st, 3, bad, 3, today, &written), -EINVAL, "a day twice is refused");
        bad[2] = (StoreImportedDay) { days[3].day_start_ms + HOUR_MS, 1 };
        is_int(store_import_days(st, 3, bad, 3, today, &written), -EINVAL, "a start that is no midnight is refused");
        bad[2] = (StoreImportedDay) { days[3].day_start_ms, -1 };
        is_int(store_import_days(st, 3, bad, 3, today, &written), -EINVAL, "a negative energy is refused");
        is_int(imported_energy(st, 3, 0, INT64_MAX, &n), 0, "and nothing of those was taken");

        StoreRollup *r = NULL;
        ok(store_query_rollup(st, 1, STORE_DAY, 0, INT64_MAX, 100, &r, &n) == 0 && n == 1 &&
                   r[0].period_start_ms == d0 && r[0].energy_mwh == 2000,
           "the day rollups stay kasamond's own");
        free(r);
        int64_t e = -1;
        ok(store_energy(st, 1, 0, today, &e) == 0 && e == 2000, "and so does the energy the costs read");

        store_free(st);
        st = NULL;
        ok(store_open(dir, day_start, (void *) cal, &st) == 0, "reopen");
        is_int(imported_energy(st, 1, 0, INT64_MAX, &n), 51000, "the imported days are kept");
        ok(store_delete_device(st, 1) == 0, "delete device 1");
        is_int(imported_energy(st, 1, 0, INT64_MAX, &n), 0, "its imported days are gone");
        is_int((int64_t) n, 0, "all of them");
        ok(imported_energy(st, 2, 0, INT64_MAX, &n) > 0, "device 2's stay");
        store_free(st);

        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ok(system(cmd) == 0, "cleanup");
}

int main(void) {
        Calendar *cal = calendar_new("Europe/Berlin");

        ok(cal != NULL, "a calendar");
        test_calendar(cal);
        test_months();
        test_days(cal);
        test_quarter(cal);
        test_leading_zeros();
        test_store(cal);
        calendar_free(cal);
        return done_testing();
}
