/* SPDX-License-Identifier: MIT */
/* The cost engine against bills worked out by hand, to the cent; the
 * arithmetic is in the comments. Tariffs are written in the project's own
 * format (and one in URDB's), so the parsers are on the path too. */
#include <glib.h>
#include <stdlib.h>

#include "cost.h"
#include "tap.h"
#include "tariff.h"

#define HOUR_MS (3600 * INT64_C(1000))
#define KWH INT64_C(1000000) /* mWh */

static int64_t ms(const char *rfc3339) {
        int64_t t = 0;
        if (tariff_parse_rfc3339(rfc3339, &t) < 0) {
                diag("bad time in test: %s", rfc3339);
                abort();
        }
        return t;
}

static Tariff *tariff(const char *json) {
        Tariff *t = NULL;
        char *err = NULL;
        if (tariff_file_parse(json, strlen(json), "test.json", &t, &err) < 0) {
                diag("tariff refused: %s", err ? err : "?");
                abort();
        }
        return t;
}

/* n intervals of step_ms from `from`, each with mwh, or mwh * (i + 1). */
static CostInterval *series(const char *from, size_t n, int64_t step_ms, int64_t mwh, bool rising) {
        CostInterval *iv = calloc(n, sizeof(CostInterval));
        int64_t t = ms(from);
        for (size_t i = 0; i < n; i++, t += step_ms)
                iv[i] = (CostInterval) { t, t + step_ms, rising ? mwh * (int64_t) (i + 1) : mwh };
        return iv;
}

static CostBill *price(Tariff **t, size_t nt, const CostInterval *iv, size_t n, const char *tz, const char *from,
                       const char *to, CostBucket bucket) {
        CostRequest req = { .tariffs = (const Tariff *const *) t, .n_tariffs = nt, .intervals = iv, .n_intervals = n,
                            .time_zone = tz, .from_ms = ms(from), .to_ms = ms(to), .bucket = bucket };
        CostBill *b = NULL;
        char *err = NULL;
        if (cost_compute(&req, &b, &err) < 0) {
                diag("cost_compute: %s", err ? err : "?");
                free(err);
                return NULL;
        }
        return b;
}

/* The sum over buckets of the lines of that kind and name (NULL: any) and
 * tier (-1: any); *ret_quantity gets their quantities' sum. */
static int64_t amount(const CostBill *b, TariffLine kind, const char *name, int tier, int64_t *ret_quantity) {
        int64_t sum = 0, q = 0;
        for (size_t i = 0; b && i < b->n_buckets; i++)
                for (size_t l = 0; l < b->buckets[i].n_lines; l++) {
                        const CostLine *x = &b->buckets[i].lines[l];
                        if (x->kind == kind && (!name || strcmp(x->name, name) == 0) && (tier < 0 || x->tier == (unsigned) tier)) {
                                sum += x->amount;
                                q += x->quantity;
                        }
                }
        if (ret_quantity)
                *ret_quantity = q;
        return sum;
}

static int64_t total(const CostBill *b) {
        return b ? b->total : INT64_MIN;
}

static void test_tou_across_midnight(void) {
        Tariff *t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"night\",\"currency\":\"EUR\","
                           "\"periods\":[{\"name\":\"night\",\"hours\":\"22:00-06:00\",\"rate\":0.20},"
                           "{\"name\":\"day\",\"rate\":0.30}]}");
        /* 2-hour intervals of 2 kWh from 21:00, so [21:00, 23:00) and
         * [05:00, 07:00) straddle the night's edges and must be split.
         * night 22-06 = 8 h = 8 kWh * 0.20 = 1.60; day 16 kWh * 0.30 = 4.80 */
        CostInterval *iv = series("2024-01-15T21:00:00+01:00", 12, 2 * HOUR_MS, 2 * KWH, false);
        CostBill *b = price(&t, 1, iv, 12, "Europe/Berlin", "2024-01-15T21:00:00+01:00", "2024-01-16T21:00:00+01:00",
                            COST_BUCKET_NONE);
        int64_t q;
        is_int(amount(b, TARIFF_LINE_ENERGY, "night", -1, &q), 160, "TOU across midnight: night 8 kWh x 0.20 = 1.60");
        is_int(q, 8 * KWH, "TOU across midnight: the straddling intervals were split by time");
        is_int(amount(b, TARIFF_LINE_ENERGY, "day", -1, NULL), 480, "TOU across midnight: day 16 kWh x 0.30 = 4.80");
        is_int(total(b), 640, "TOU across midnight: total 6.40");
        cost_bill_free(b);

        /* From 22:00, inside [21:00, 23:00): only its second hour is in the
         * range. night 8 kWh = 1.60, day 06:00-21:00 15 kWh = 4.50; 6.10. */
        b = price(&t, 1, iv, 12, "Europe/Berlin", "2024-01-15T22:00:00+01:00", "2024-01-16T21:00:00+01:00",
                  COST_BUCKET_NONE);
        is_int(amount(b, TARIFF_LINE_ENERGY, "night", -1, &q), 160, "TOU: an interval cut by the range's start, night 1.60");
        is_int(total(b), 610, "TOU: range from inside an interval, total 6.10");
        is_int(b ? b->energy_mwh : -1, 23 * KWH, "TOU: 23 kWh in the range");
        /* The JSON says kWh: the bill's mWh divided by a million. */
        json_t *j = b ? cost_bill_to_json(b, "Europe/Berlin") : NULL;
        json_t *line = json_array_get(json_object_get(json_array_get(json_object_get(j, "buckets"), 0), "lines"), 0);
        is_str(json_string_value(json_object_get(j, "energy_kwh")), "23.000", "TOU: the JSON's energy_kwh");
        is_str(json_string_value(json_object_get(line, "quantity")), "8", "TOU: the night line's kWh in the JSON");
        json_decref(j);
        cost_bill_free(b);
        free(iv);
        tariff_free(t);
}

/* Interval i of a DST day has i + 1 kWh, so which local hour each
 * interval gets shows in the bill. */
static void test_dst(void) {
        Tariff *t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"peak\",\"currency\":\"EUR\","
                           "\"periods\":[{\"name\":\"peak\",\"hours\":\"08:00-20:00\",\"rate\":0.40},"
                           "{\"name\":\"off\",\"rate\":0.20}],\"fixed\":[{\"name\":\"daily\",\"amount\":0.50,\"per\":\"day\"}]}");
        /* Berlin, 2024-03-31: 23 hours. i = 0, 1 are 00:00 and 01:00 CET,
         * then 03:00 CEST: local hour i + 1 for i >= 2. Peak local 8..19 is
         * i = 7..18, energies 8..19 kWh = 162 kWh * 0.40 = 64.80; off-peak
         * (1+...+23 = 276) - 162 = 114 kWh * 0.20 = 22.80; one local day
         * of the daily charge 0.50 although it has 23 hours; 88.10. */
        CostInterval *iv = series("2024-03-31T00:00:00+01:00", 23, HOUR_MS, KWH, true);
        CostBill *b = price(&t, 1, iv, 23, "Europe/Berlin", "2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00",
                            COST_BUCKET_DAY);
        is_int(b ? (int64_t) b->n_buckets : -1, 1, "Berlin spring: one local day of 23 hours");
        is_int(amount(b, TARIFF_LINE_ENERGY, "peak", -1, NULL), 6480, "Berlin spring: peak 162 kWh x 0.40 = 64.80");
        is_int(amount(b, TARIFF_LINE_ENERGY, "off", -1, NULL), 2280, "Berlin spring: off-peak 114 kWh x 0.20 = 22.80");
        is_int(amount(b, TARIFF_LINE_FIXED, NULL, -1, NULL), 50, "Berlin spring: the 23-hour day pays one day, 0.50");
        is_int(total(b), 8810, "Berlin spring: total 88.10");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);

        /* Berlin, 2024-10-27: 25 hours; 02:00 comes twice (i = 2 CEST and
         * i = 3 CET), local hour i - 1 for i >= 3. The hour 02:00-03:00 at
         * 1.00: 3 + 4 = 7 kWh = 7.00; the rest 325 - 7 = 318 kWh * 0.10 =
         * 31.80; total 38.80. */
        t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"two\",\"currency\":\"EUR\","
                   "\"periods\":[{\"name\":\"two\",\"hours\":\"02:00-03:00\",\"rate\":1},{\"name\":\"rest\",\"rate\":0.1}]}");
        iv = series("2024-10-27T00:00:00+02:00", 25, HOUR_MS, KWH, true);
        b = price(&t, 1, iv, 25, "Europe/Berlin", "2024-10-27T00:00:00+02:00", "2024-10-28T00:00:00+01:00",
                  COST_BUCKET_DAY);
        int64_t q;
        is_int(b ? (int64_t) b->n_buckets : -1, 1, "Berlin autumn: one local day of 25 hours");
        is_int(amount(b, TARIFF_LINE_ENERGY, "two", -1, &q), 700, "Berlin autumn: the repeated 02:00 hour priced twice, 7.00");
        is_int(q, 7 * KWH, "Berlin autumn: 7 kWh in the repeated hour");
        is_int(total(b), 3880, "Berlin autumn: total 38.80");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);

        /* New York, 2024-03-10: 00:00 EST = 05:00Z, 02:00 EST jumps to
         * 03:00 EDT, local hour i + 1 for i >= 2. Peak 14:00-19:00 is
         * i = 13..17, energies 14..18 = 80 kWh * 0.30 = 24.00; the rest
         * 196 kWh * 0.10 = 19.60; total 43.60. */
        t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"ny\",\"currency\":\"USD\","
                   "\"periods\":[{\"name\":\"peak\",\"hours\":[\"14:00-19:00\"],\"rate\":0.3},{\"name\":\"off\",\"rate\":0.1}]}");
        iv = series("2024-03-10T00:00:00-05:00", 23, HOUR_MS, KWH, true);
        b = price(&t, 1, iv, 23, "America/New_York", "2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00",
                  COST_BUCKET_DAY);
        is_int(amount(b, TARIFF_LINE_ENERGY, "peak", -1, NULL), 2400, "New York spring: peak 80 kWh x 0.30 = 24.00");
        is_int(total(b), 4360, "New York spring: total 43.60");
        cost_bill_free(b);
        free(iv);

        /* New York, 2024-11-03: 01:00 comes twice (i = 1 EDT, i = 2 EST).
         * A period 01:00-02:00 at 1.00 gets 2 + 3 = 5 kWh = 5.00; the rest
         * 320 kWh * 0.10 = 32.00; total 37.00. */
        tariff_free(t);
        t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"ny\",\"currency\":\"USD\","
                   "\"periods\":[{\"name\":\"one\",\"hours\":\"01:00-02:00\",\"rate\":1},{\"name\":\"off\",\"rate\":0.1}]}");
        iv = series("2024-11-03T00:00:00-04:00", 25, HOUR_MS, KWH, true);
        b = price(&t, 1, iv, 25, "America/New_York", "2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00",
                  COST_BUCKET_DAY);
        is_int(b ? (int64_t) b->n_buckets : -1, 1, "New York autumn: one local day of 25 hours");
        is_int(amount(b, TARIFF_LINE_ENERGY, "one", -1, NULL), 500, "New York autumn: the repeated 01:00 hour, 5.00");
        is_int(total(b), 3700, "New York autumn: total 37.00");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);
}

static void test_tiers(void) {
        Tariff *t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"tiered\",\"currency\":\"EUR\","
                           "\"periods\":[{\"name\":\"all\",\"tiers\":[{\"up_to_kwh\":500,\"rate\":0.10},{\"rate\":0.20}]}]}");
        /* June 2024, 3-hour intervals of 3 kWh: 720 kWh. Marginal: the first
         * 500 kWh at 0.10 = 50.00, the other 220 at 0.20 = 44.00, 94.00 (not
         * 720 x 0.20 = 144.00). 500 kWh is reached inside the interval
         * [2024-06-21T18:00, 21:00) (166 2/3 intervals), which is split. */
        CostInterval *iv = series("2024-06-01T00:00:00+02:00", 240, 3 * HOUR_MS, 3 * KWH, false);
        CostBill *b = price(&t, 1, iv, 240, "Europe/Berlin", "2024-06-01T00:00:00+02:00", "2024-07-01T00:00:00+02:00",
                            COST_BUCKET_DAY);
        int64_t q;
        is_int(amount(b, TARIFF_LINE_ENERGY, NULL, 0, &q), 5000, "tiers: first 500 kWh x 0.10 = 50.00");
        is_int(q, 500 * KWH, "tiers: tier 1 holds exactly 500 kWh");
        is_int(amount(b, TARIFF_LINE_ENERGY, NULL, 1, &q), 4400, "tiers: the other 220 kWh x 0.20 = 44.00");
        is_int(total(b), 9400, "tiers: 720 kWh = 500 A + 220 B = 94.00");
        /* 2024-06-21 (day 21): 18 h = 6 intervals, so 480 kWh before it;
         * that day 20 kWh at 0.10 = 2.00 and 4 kWh at 0.20 = 0.80. */
        if (b && b->n_buckets == 30)
                is_int(b->buckets[20].total, 280, "tiers: the day the limit is reached, 2.00 + 0.80");
        else
                ok(false, "tiers: 30 day buckets");
        cost_bill_free(b);

        /* Pricing only the last 10 days still counts the month's first 20
         * days (480 kWh) towards the tiers: of the 240 kWh, 20 at 0.10 =
         * 2.00 and 220 at 0.20 = 44.00, 46.00. */
        b = price(&t, 1, iv, 240, "Europe/Berlin", "2024-06-21T00:00:00+02:00", "2024-07-01T00:00:00+02:00",
                  COST_BUCKET_NONE);
        is_int(amount(b, TARIFF_LINE_ENERGY, NULL, 0, NULL), 200, "tiers: a part of the cycle sees the energy before it");
        is_int(total(b), 4600, "tiers: last 10 days 20 x 0.10 + 220 x 0.20 = 46.00");
        cost_bill_free(b);
        free(iv);

        /* The same with 3-hour intervals from 05-31 22:00: the first one
         * straddles the cycle's start and only its last hour fills June's
         * tiers, so again 480 kWh before the 21st and 46.00. */
        iv = series("2024-05-31T22:00:00+02:00", 241, 3 * HOUR_MS, 3 * KWH, false);
        b = price(&t, 1, iv, 241, "Europe/Berlin", "2024-06-21T00:00:00+02:00", "2024-07-01T00:00:00+02:00",
                  COST_BUCKET_NONE);
        is_int(total(b), 4600, "tiers: an interval across the cycle's start fills the tiers by its time in the cycle");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);

        /* Daily tiers: 10 kWh at 0.10 then 0.20; two days of 15 kWh:
         * each 10 x 0.10 + 5 x 0.20 = 2.00, so 4.00. */
        t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"daily\",\"currency\":\"EUR\",\"tiers_reset\":\"daily\","
                   "\"periods\":[{\"name\":\"all\",\"tiers\":[{\"up_to_kwh\":10,\"rate\":0.10},{\"rate\":0.20}]}]}");
        iv = series("2024-06-01T00:00:00+02:00", 48, HOUR_MS, 625000, false);
        b = price(&t, 1, iv, 48, "Europe/Berlin", "2024-06-01T00:00:00+02:00", "2024-06-03T00:00:00+02:00",
                  COST_BUCKET_NONE);
        is_int(total(b), 400, "daily tiers: 2 x (10 x 0.10 + 5 x 0.20) = 4.00");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);
}

static void test_season_in_cycle(void) {
        Tariff *t = tariff(
                "{\"format\":\"kasamond-tariff/1\",\"name\":\"seasons\",\"currency\":\"EUR\",\"billing_cycle_start_day\":15,"
                "\"seasons\":[{\"name\":\"summer\",\"months\":\"6-9\"},{\"name\":\"winter\",\"months\":\"10-5\"}],"
                "\"periods\":[{\"name\":\"summer\",\"season\":\"summer\",\"tiers\":[{\"up_to_kwh\":300,\"rate\":0.2},{\"rate\":0.3}]},"
                "{\"name\":\"winter\",\"season\":\"winter\",\"tiers\":[{\"up_to_kwh\":300,\"rate\":0.15},{\"rate\":0.25}]}],"
                "\"fixed\":[{\"name\":\"meter\",\"amount\":10,\"per\":\"month\"}]}");
        /* The cycle 2024-09-15 to 10-15 (30 days), 1 kWh an hour: summer
         * Sep 15-30 = 384 kWh, winter Oct 1-14 = 336 kWh. The tiers count
         * the cycle across seasons: summer 300 x 0.20 = 60.00 and 84 x 0.30
         * = 25.20; winter is past 300 already: 336 x 0.25 = 84.00. The
         * cycle's fixed 10.00 splits by month bucket into 16/30 = 5.33 and
         * 14/30 = 4.67. Sep 90.53, Oct 88.67, total 179.20. */
        CostInterval *iv = series("2024-09-15T00:00:00+02:00", 720, HOUR_MS, KWH, false);
        CostBill *b = price(&t, 1, iv, 720, "Europe/Berlin", "2024-09-15T00:00:00+02:00", "2024-10-15T00:00:00+02:00",
                            COST_BUCKET_MONTH);
        is_int(amount(b, TARIFF_LINE_ENERGY, "summer", 0, NULL), 6000, "season change: summer tier 1, 300 x 0.20");
        is_int(amount(b, TARIFF_LINE_ENERGY, "summer", 1, NULL), 2520, "season change: summer tier 2, 84 x 0.30");
        is_int(amount(b, TARIFF_LINE_ENERGY, "winter", 0, NULL), 0, "season change: winter tier 1 used up in summer");
        is_int(amount(b, TARIFF_LINE_ENERGY, "winter", 1, NULL), 8400, "season change: winter tier 2, 336 x 0.25");
        if (b && b->n_buckets == 2) {
                is_int(b->buckets[0].total, 9053, "season change: September bucket 60.00 + 25.20 + 5.33");
                is_int(b->buckets[1].total, 8867, "season change: October bucket 84.00 + 4.67");
        } else
                ok(false, "season change: two month buckets");
        is_int(total(b), 17920, "season change: total 179.20");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);
}

static void test_fixed_prorated(void) {
        Tariff *t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"fixed\",\"currency\":\"EUR\","
                           "\"periods\":[{\"name\":\"all\",\"rate\":0.1}],\"fixed\":["
                           "{\"name\":\"month\",\"amount\":9,\"per\":\"month\"},{\"name\":\"day\",\"amount\":0.1,\"per\":\"day\"},"
                           "{\"name\":\"year\",\"amount\":36.6,\"per\":\"year\"}]}");
        /* 10 days of April 2024 (30 days): 9.00 x 10/30 = 3.00; 0.10 x 10 =
         * 1.00; 36.60 x 10/366 (a leap year) = 1.00. No energy. */
        CostBill *b = price(&t, 1, NULL, 0, "Europe/Berlin", "2024-04-01T00:00:00+02:00", "2024-04-11T00:00:00+02:00",
                            COST_BUCKET_NONE);
        is_int(amount(b, TARIFF_LINE_FIXED, "month", -1, NULL), 300, "fixed: 10/30 of 9.00 a month = 3.00");
        is_int(amount(b, TARIFF_LINE_FIXED, "day", -1, NULL), 100, "fixed: 10 x 0.10 a day = 1.00");
        is_int(amount(b, TARIFF_LINE_FIXED, "year", -1, NULL), 100, "fixed: 10/366 of 36.60 a year = 1.00");
        is_int(total(b), 500, "fixed: total 5.00");
        cost_bill_free(b);
        /* A whole calendar month pays the monthly charge whole: May, 31
         * days, 9.00; plus 3.10 and 36.60 x 31/366 = 3.10; 15.20. */
        b = price(&t, 1, NULL, 0, "Europe/Berlin", "2024-05-01T00:00:00+02:00", "2024-06-01T00:00:00+02:00",
                  COST_BUCKET_NONE);
        is_int(amount(b, TARIFF_LINE_FIXED, "month", -1, NULL), 900, "fixed: a whole month pays 9.00");
        is_int(total(b), 1520, "fixed: May total 15.20");
        cost_bill_free(b);
        tariff_free(t);
}

static void test_demand(void) {
        Tariff *t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"demand\",\"currency\":\"EUR\","
                           "\"periods\":[{\"name\":\"all\",\"rate\":0.1}],"
                           "\"demand\":{\"window_minutes\":15,\"charges\":[{\"name\":\"peak\",\"rate\":10}]}}");
        /* June 2024 at 1 kW (hourly 1 kWh), except 2024-06-10 12:00-13:00 in
         * 5-minute steps: 500, 250, 250, 500 Wh (6, 3, 3, 6 kW), then 40
         * minutes of nothing. Any 15 minutes starting in [12:00, 12:05]
         * hold 1000 Wh: 4 kW, the highest (an instantaneous peak says 6,
         * the hour's average 1.5). Demand 4 kW x 10.00 = 40.00; energy
         * 719 + 1.5 = 720.5 kWh x 0.10 = 72.05; total 112.05. */
        size_t n = 0;
        CostInterval iv[800];
        int64_t t0 = ms("2024-06-01T00:00:00+02:00"), spike = ms("2024-06-10T12:00:00+02:00");
        for (int64_t s = t0; s < t0 + 720 * HOUR_MS; s += HOUR_MS) {
                if (s != spike) {
                        iv[n++] = (CostInterval) { s, s + HOUR_MS, KWH };
                        continue;
                }
                static const int64_t wh[] = { 500, 250, 250, 500 };
                for (int k = 0; k < 4; k++)
                        iv[n++] = (CostInterval) { s + k * 300000, s + (k + 1) * 300000, wh[k] * 1000 };
                iv[n++] = (CostInterval) { s + 4 * 300000, s + HOUR_MS, 0 };
        }
        CostBill *b = price(&t, 1, iv, n, "Europe/Berlin", "2024-06-01T00:00:00+02:00", "2024-07-01T00:00:00+02:00",
                            COST_BUCKET_NONE);
        int64_t q;
        is_int(amount(b, TARIFF_LINE_DEMAND, "peak", -1, &q), 4000, "demand: 4 kW x 10.00 = 40.00");
        is_int(q, 4000000, "demand: the highest 15-minute average is 4 kW");
        is_int(total(b), 11205, "demand: total 112.05");
        cost_bill_free(b);
        tariff_free(t);
}

static void test_effective_dates(void) {
        Tariff *t[2] = {
                tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"new\",\"currency\":\"EUR\","
                       "\"valid_from\":\"2024-07-16T00:00:00+02:00\","
                       "\"periods\":[{\"name\":\"all\",\"rate\":0.3}],\"fixed\":[{\"name\":\"m\",\"amount\":3,\"per\":\"month\"}]}"),
                tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"old\",\"currency\":\"EUR\","
                       "\"valid_until\":\"2024-07-16T00:00:00+02:00\","
                       "\"periods\":[{\"name\":\"all\",\"rate\":0.2}],\"fixed\":[{\"name\":\"m\",\"amount\":3,\"per\":\"month\"}]}"),
        };
        /* July 2024, 1 kWh an hour; the old tariff until the 16th: 15 days,
         * 360 kWh x 0.20 = 72.00 and 3.00 x 15/31 = 1.45; the new one 16
         * days, 384 kWh x 0.30 = 115.20 and 3.00 x 16/31 = 1.55; 190.20. */
        CostInterval *iv = series("2024-07-01T00:00:00+02:00", 744, HOUR_MS, KWH, false);
        CostBill *b = price(t, 2, iv, 744, "Europe/Berlin", "2024-07-01T00:00:00+02:00", "2024-08-01T00:00:00+02:00",
                            COST_BUCKET_NONE);
        int64_t old = 0, new = 0;
        for (size_t l = 0; b && b->n_buckets == 1 && l < b->buckets[0].n_lines; l++) {
                const CostLine *x = &b->buckets[0].lines[l];
                *(x->tariff == t[1] ? &old : &new) += x->amount;
        }
        is_int(old, 7345, "effective dates: the old tariff's part 72.00 + 1.45");
        is_int(new, 11675, "effective dates: the new tariff's part 115.20 + 1.55");
        is_int(total(b), 19020, "effective dates: total 190.20");
        cost_bill_free(b);

        /* Before the first tariff: energy left unpriced, not guessed. */
        CostBill *u = price(&t[0], 1, iv, 744, "Europe/Berlin", "2024-07-01T00:00:00+02:00",
                            "2024-08-01T00:00:00+02:00", COST_BUCKET_NONE);
        is_int(u ? u->unpriced_mwh : -1, 360 * KWH, "effective dates: 360 kWh before any tariff are unpriced");
        cost_bill_free(u);
        free(iv);
        tariff_free(t[0]);
        tariff_free(t[1]);
}

static void test_minimum_taxes(void) {
        Tariff *t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"min\",\"currency\":\"EUR\","
                           "\"periods\":[{\"name\":\"all\",\"rate\":0.1}],\"fixed\":[{\"name\":\"m\",\"amount\":5,\"per\":\"month\"}],"
                           "\"minimum\":{\"amount\":15,\"per\":\"month\"}}");
        /* June 2024, 1 kWh a day: 30 x 0.10 = 3.00 + 5.00 = 8.00 < 15.00:
         * topped up by 7.00 to the floor, 15.00. */
        CostInterval *iv = series("2024-06-01T00:00:00+02:00", 30, 24 * HOUR_MS, KWH, false);
        CostBill *b = price(&t, 1, iv, 30, "Europe/Berlin", "2024-06-01T00:00:00+02:00", "2024-07-01T00:00:00+02:00",
                            COST_BUCKET_NONE);
        is_int(amount(b, TARIFF_LINE_MINIMUM, NULL, -1, NULL), 700, "minimum: 15.00 - 8.00 = 7.00 top-up");
        is_int(total(b), 1500, "minimum: the bill is the floor, 15.00");
        cost_bill_free(b);
        free(iv);
        /* 200 kWh: 20.00 + 5.00 = 25.00, above the floor: nothing added. */
        iv = series("2024-06-01T00:00:00+02:00", 30, 24 * HOUR_MS, 200 * KWH / 30, false);
        iv[0].energy_mwh += 200 * KWH - 30 * (200 * KWH / 30);
        b = price(&t, 1, iv, 30, "Europe/Berlin", "2024-06-01T00:00:00+02:00", "2024-07-01T00:00:00+02:00",
                  COST_BUCKET_NONE);
        is_int(amount(b, TARIFF_LINE_MINIMUM, NULL, -1, NULL), 0, "minimum: a floor, not added on top");
        is_int(total(b), 2500, "minimum: 25.00");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);

        t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"taxed\",\"currency\":\"EUR\","
                   "\"periods\":[{\"name\":\"all\",\"rate\":0.3}],\"adders\":[{\"name\":\"grid\",\"rate\":0.05}],"
                   "\"fixed\":[{\"name\":\"m\",\"amount\":10,\"per\":\"month\"}],"
                   "\"taxes\":[{\"name\":\"VAT\",\"percent\":19},{\"name\":\"levy\",\"percent\":5,\"on\":[\"energy\"]}]}");
        /* June, 100 kWh: energy 30.00, adder 5.00, fixed 10.00; VAT 19 %
         * of 45.00 = 8.55; levy 5 % of 30.00 = 1.50; total 55.05. */
        iv = series("2024-06-01T00:00:00+02:00", 10, 72 * HOUR_MS, 10 * KWH, false);
        b = price(&t, 1, iv, 10, "Europe/Berlin", "2024-06-01T00:00:00+02:00", "2024-07-01T00:00:00+02:00",
                  COST_BUCKET_NONE);
        is_int(amount(b, TARIFF_LINE_ADDER, "grid", -1, NULL), 500, "taxes: adder 100 kWh x 0.05 = 5.00");
        is_int(amount(b, TARIFF_LINE_TAX, "VAT", -1, NULL), 855, "taxes: VAT 19 %% of 45.00 = 8.55");
        is_int(amount(b, TARIFF_LINE_TAX, "levy", -1, NULL), 150, "taxes: 5 %% on energy only = 1.50");
        is_int(total(b), 5505, "taxes: total 55.05");
        json_t *j = b ? cost_bill_to_json(b, "Europe/Berlin") : NULL;
        is_str(json_string_value(json_object_get(j, "total")), "55.05", "JSON: total as a decimal string");
        is_str(json_string_value(json_object_get(j, "tax")), "10.05", "JSON: tax sum");
        is_str(json_string_value(json_object_get(j, "currency")), "EUR", "JSON: currency");
        json_decref(j);
        cost_bill_free(b);
        free(iv);
        tariff_free(t);

        /* Yen have no minor unit: 10.5 kWh x 31.5 = 330.75 -> 331. */
        t = tariff("{\"format\":\"kasamond-tariff/1\",\"name\":\"jp\",\"currency\":\"JPY\",\"periods\":[{\"name\":\"all\",\"rate\":31.5}]}");
        iv = series("2024-06-01T00:00:00+09:00", 1, HOUR_MS, 10500000, false);
        b = price(&t, 1, iv, 1, "Asia/Tokyo", "2024-06-01T00:00:00+09:00", "2024-06-02T00:00:00+09:00", COST_BUCKET_NONE);
        is_int(total(b), 331, "JPY: rounded to whole yen, half away from zero");
        cost_bill_free(b);
        free(iv);
        tariff_free(t);
}

static void test_urdb(const char *path) {
        Tariff **list = NULL;
        size_t n = 0;
        char *err = NULL;
        int r = tariff_urdb_load(path, &list, &n, &err);
        if (!ok(r == 0 && n == 1, "URDB: the published item loads")) {
                diag("%s", err ? err : "?");
                return;
        }
        /* July 2024 in Denver (MDT), 1 kWh an hour = 744 kWh; 23 weekdays
         * with on-peak 14:00-19:00 = 115 kWh, off-peak 629 kWh. The tier
         * limit 500 kWh is reached on Sunday 07-21 at 20:00, after 15
         * weekdays = 75 on-peak kWh: tier 1 on 75 x 0.15 = 11.25, off 425 x
         * 0.09 = 38.25; tier 2 on 40 x 0.18 = 7.20, off 204 x 0.11 = 22.44;
         * energy 79.14. adj 0.01 x 744 = 7.44 in four lines (0.75 + 4.25 +
         * 0.40 + 2.04). Fixed 12.50 a month. Demand: on-peak 1 kW x 5.00 =
         * 5.00, off-peak 1 kW x 0; flat 1 kW x 2.00. Total 106.08. */
        CostInterval *iv = series("2024-07-01T00:00:00-06:00", 744, HOUR_MS, KWH, false);
        CostBill *b = price(list, 1, iv, 744, "America/Denver", "2024-07-01T00:00:00-06:00", "2024-08-01T00:00:00-06:00",
                            COST_BUCKET_NONE);
        int64_t q;
        is_int(amount(b, TARIFF_LINE_ENERGY, "period 1", 0, &q), 1125, "URDB: on-peak tier 1, 75 kWh x 0.15");
        is_int(q, 75 * KWH, "URDB: 75 on-peak kWh before the tier limit");
        is_int(amount(b, TARIFF_LINE_ENERGY, "period 2", 0, NULL), 3825, "URDB: off-peak tier 1, 425 kWh x 0.09");
        is_int(amount(b, TARIFF_LINE_ENERGY, "period 1", 1, NULL), 720, "URDB: on-peak tier 2, 40 kWh x 0.18");
        is_int(amount(b, TARIFF_LINE_ENERGY, "period 2", 1, NULL), 2244, "URDB: off-peak tier 2, 204 kWh x 0.11");
        is_int(b ? b->sum[TARIFF_LINE_ADDER] : -1, 744, "URDB: adj 744 kWh x 0.01 = 7.44");
        is_int(b ? b->sum[TARIFF_LINE_FIXED] : -1, 1250, "URDB: fixed 12.50 $/month");
        is_int(b ? b->sum[TARIFF_LINE_DEMAND] : -1, 700, "URDB: demand 5.00 on-peak + 2.00 flat");
        is_int(total(b), 10608, "URDB: total 106.08");
        cost_bill_free(b);
        free(iv);
        tariff_list_free(list, n);
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: test-cost URDB-ITEM.json\n");
                return 2;
        }
        test_tou_across_midnight();
        test_dst();
        test_tiers();
        test_season_in_cycle();
        test_fixed_prorated();
        test_demand();
        test_effective_dates();
        test_minimum_taxes();
        test_urdb(argv[1]);
        return done_testing();
}
