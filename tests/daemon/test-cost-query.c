/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cost-query.h"
#include "tap.h"

#define HOUR INT64_C(3600000)
#define MINUTE INT64_C(60000)
#define DAY (24 * HOUR)
/* 2024-03-10T00:00:00Z, a Sunday */
#define T0 INT64_C(1710028800000)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif
/* 2024-03-01T00:00:00Z */
#define MARCH INT64_C(1709251200000)

/* A fake store: each device draws a constant power from `since` on, and
 * the source hands out minute or hour rollups of it. */
typedef struct FakeDevice {
        const char *id;
        int64_t power_mw;
        int64_t since;
        int64_t until; /* 0: on and on */
        bool open;     /* the period holding until ends there, as the store's still open does */
} FakeDevice;

/* The energy of d over [a, b). */
static int64_t fake_mwh(const FakeDevice *d, int64_t a, int64_t b) {
        a = a > d->since ? a : d->since;
        if (d->until > 0 && b > d->until)
                b = d->until;
        /* 6 kW x ms since the epoch passes 2^63: the product in 128 bits. */
        return b > a ? (int64_t) ((__int128) d->power_mw * b / HOUR - (__int128) d->power_mw * a / HOUR) : 0;
}

typedef struct Fake {
        const FakeDevice *devices;
        size_t n;
        unsigned minute_calls, hour_calls, day_calls;
        int64_t earliest; /* the earliest time asked for */
        int fail;
} Fake;

static int fake_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to,
                       CostInterval **ret, size_t *ret_n) {
        Fake *f = userdata;
        const FakeDevice *d = NULL;
        int64_t step = minutes ? MINUTE : HOUR;

        if (f->fail)
                return f->fail;
        minutes ? f->minute_calls++ : f->hour_calls++;
        if (f->earliest == 0 || from < f->earliest)
                f->earliest = from;
        for (size_t i = 0; i < f->n; i++)
                if (strcmp(f->devices[i].id, device) == 0)
                        d = &f->devices[i];
        *ret = NULL;
        *ret_n = 0;
        if (!d)
                return 0;
        /* Nothing before the device was there: a long range asks for no
         * more cells than it has. */
        int64_t first = from > d->since ? from : d->since - d->since % step;
        int64_t start = (first + step - 1) / step * step;
        size_t n = 0, cap = (size_t) ((to - start) / step + 1);
        CostInterval *v = calloc(cap, sizeof(CostInterval));
        if (!v)
                return -ENOMEM;
        for (int64_t t = start; t < to; t += step) {
                int64_t end = d->open && d->until > t && d->until < t + step ? d->until : t + step;
                if (fake_mwh(d, t, end) > 0)
                        v[n++] = (CostInterval) { t, end, fake_mwh(d, t, end) };
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int fake_days(void *userdata, const char *device, int64_t from, int64_t to, CostInterval **ret,
                     size_t *ret_n) {
        Fake *f = userdata;
        int r = fake_energy(userdata, device, false, from, to, ret, ret_n);
        size_t m = 0;
        f->day_calls++;
        f->hour_calls--;
        /* UTC days of the hours, as the tests price in UTC. */
        for (size_t i = 0; r >= 0 && i < *ret_n; i++) {
                CostInterval iv = (*ret)[i];
                int64_t d = iv.start_ms / DAY * DAY;
                if (m > 0 && (*ret)[m - 1].start_ms == d)
                        (*ret)[m - 1].energy_mwh += iv.energy_mwh;
                else
                        (*ret)[m++] = (CostInterval) { d, d + DAY, iv.energy_mwh };
        }
        if (r >= 0)
                *ret_n = m;
        return r;
}

static const CostSourceOps fake_ops = { .energy = fake_energy, .days = fake_days };

static Tariff *tariff(const char *body) {
        char *json = NULL, *err = NULL;
        Tariff *t = NULL;
        if (asprintf(&json, "{\"format\":\"kasamond-tariff/1\",%s}", body) < 0)
                return NULL;
        if (tariff_file_parse(json, strlen(json), "test.json", &t, &err) < 0)
                diag("tariff refused: %s", err);
        free(json);
        free(err);
        return t;
}

static const FakeDevice two[] = { { "a", 100000, 0 }, { "b", 50000, 0 } };
static const CostQueryDevice two_ids[] = { { "a", "Freezer" }, { "b", NULL } };

typedef struct Run {
        int r;
        char *error;
        CostQueryResult *res;
        json_t *json;
        Fake fake;
} Run;

static Run run(const CostQueryTariff *tariffs, size_t n_tariffs, const TariffAssignment *a, size_t n_a,
               const Tariff *what_if, const FakeDevice *devs, size_t n_devs, int64_t from, int64_t to,
               CostBucket bucket, const char *tz) {
        Run x = { .fake = { .devices = devs, .n = n_devs } };
        CostQueryDevice ids[8];
        for (size_t i = 0; i < n_devs; i++)
                ids[i] = (CostQueryDevice) { devs[i].id, i < 2 ? two_ids[i].alias : NULL };
        CostQuery q = {
                .tariffs = tariffs, .n_tariffs = n_tariffs,
                .assignments = a, .n_assignments = n_a,
                .what_if = what_if,
                .devices = ids, .n_devices = n_devs,
                .ops = &fake_ops, .userdata = &x.fake,
                .time_zone = tz ?: "UTC",
                .from_ms = from, .to_ms = to, .bucket = bucket,
        };
        x.r = cost_query_run(&q, &x.res, &x.error);
        if (x.r >= 0)
                x.json = cost_query_to_json(&q, x.res);
        else
                diag("refused: %s", x.error ?: "(no message)");
        return x;
}

static void run_done(Run *x) {
        cost_query_result_free(x->res);
        json_decref(x->json);
        free(x->error);
}

static const char *jstr(json_t *o, const char *path) {
        /* "key" or "key.N.key" */
        char buf[128], *save = NULL;
        snprintf(buf, sizeof buf, "%s", path);
        for (char *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save))
                o = json_is_array(o) ? json_array_get(o, strtoul(p, NULL, 10)) : json_object_get(o, p);
        return json_string_value(o);
}

static void test_flat(void) {
        Tariff *t = tariff("\"name\":\"flat\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.30}]");
        CostQueryTariff ts[] = { { 1, t } };
        TariffAssignment as[] = { { .id = 1, .device = NULL, .tariff = 1, .since_ms = 0 } };

        Run x = run(ts, 1, as, 1, NULL, two, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.r, 0, "flat: priced");
        is_str(jstr(x.json, "total"), "1.08", "flat: 3.6 kWh at 0.30");
        is_str(jstr(x.json, "currency"), "EUR", "flat: currency");
        is_str(jstr(x.json, "energy_kwh"), "3.600", "flat: energy");
        is_str(jstr(x.json, "devices.0.total"), "0.72", "flat: the first device's share");
        is_str(jstr(x.json, "devices.0.alias"), "Freezer", "flat: alias");
        is_str(jstr(x.json, "devices.1.total"), "0.36", "flat: the second device's share");
        is_int(x.fake.minute_calls, 0, "flat: whole hours need no minutes");
        ok(x.fake.earliest == T0, "flat: no energy before the range is read (no tiers to fill)");
        int64_t total = 0, dev = 0;
        ok(cost_query_total(x.res, &total) == 0 && total == 108, "flat: total in cents");
        ok(cost_query_device_total(x.res, 1, &dev) == 0 && dev == 36, "flat: device total in cents");
        run_done(&x);

        /* Partial hours at both ends come from minutes: 11.75 h of 100 W. */
        x = run(ts, 1, as, 1, NULL, two, 1, T0 + 30 * MINUTE, T0 + 12 * HOUR + 15 * MINUTE, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "energy_kwh"), "1.175", "partial hours: energy to the minute");
        is_str(jstr(x.json, "total"), "0.35", "partial hours: 1.175 kWh at 0.30, rounded");
        ok(x.fake.minute_calls > 0 && x.fake.hour_calls > 0, "partial hours: minutes and hours asked for");
        run_done(&x);

        /* Buckets by day: the top level has per-bucket totals. */
        x = run(ts, 1, as, 1, NULL, two, 2, T0, T0 + 2 * DAY, COST_BUCKET_DAY, NULL);
        is_int(json_array_size(json_object_get(x.json, "buckets")), 2, "two days, two buckets");
        is_str(jstr(x.json, "buckets.1.total"), "1.08", "the second day's total");
        is_str(jstr(x.json, "total"), "2.16", "two days' total");
        run_done(&x);
        tariff_free(t);
}

static void test_change(void) {
        Tariff *a = tariff("\"name\":\"old\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.30}]");
        Tariff *b = tariff("\"name\":\"new\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.50}]");
        CostQueryTariff ts[] = { { 1, a }, { 2, b } };
        TariffAssignment as[] = {
                { .id = 1, .tariff = 1, .since_ms = 0 },
                { .id = 2, .tariff = 2, .since_ms = T0 + 12 * HOUR },
        };

        Run x = run(ts, 2, as, 2, NULL, two, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "0.96", "change: 1.2 kWh at 0.30 and 1.2 kWh at 0.50");
        run_done(&x);
        x = run(ts, 2, as, 2, NULL, two, 1, T0, T0 + 12 * HOUR, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "0.36", "change: the range before it keeps the old tariff");
        run_done(&x);

        /* What-if ignores the assignments. */
        x = run(ts, 2, as, 2, b, two, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "1.20", "what-if: all of it at 0.50");
        run_done(&x);

        /* Before any assignment nothing is priced. */
        TariffAssignment late[] = { { .id = 1, .tariff = 1, .since_ms = T0 + 6 * HOUR } };
        x = run(ts, 2, late, 1, NULL, two, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "0.54", "late: 1.8 kWh priced");
        is_str(jstr(x.json, "unpriced_kwh"), "0.600", "late: 0.6 kWh before it unpriced");
        run_done(&x);
        tariff_free(a);
        tariff_free(b);
}

/* A change inside an hour that ended: its hour rollup spreads the energy
 * evenly over the hour, so read whole it would price energy used before
 * the change with the new tariff (or with none before the first). The
 * bus test saw CostToday drop once the hour of an ActivateTariff passed. */
static void test_change_within_hour(void) {
        Tariff *a = tariff("\"name\":\"A\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":1}]");
        Tariff *b = tariff("\"name\":\"B\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":3}]");
        CostQueryTariff ts[] = { { 1, a }, { 2, b } };
        /* A from 12:58, B from 13:00: 6 kW from 12:59 to 13:05 is 0.1 kWh
         * at 1 and 0.5 kWh at 3. */
        TariffAssignment as[] = {
                { .id = 1, .tariff = 1, .since_ms = T0 + 12 * HOUR + 58 * MINUTE },
                { .id = 2, .tariff = 2, .since_ms = T0 + 13 * HOUR },
        };
        FakeDevice burst[] = { { "a", 6000000, T0 + 12 * HOUR + 59 * MINUTE, T0 + 13 * HOUR + 5 * MINUTE } };

        Run x = run(ts, 2, as, 2, NULL, burst, 1, T0, T0 + 14 * HOUR, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "1.60", "first tariff from 12:58: its energy priced with it");
        is_str(jstr(x.json, "unpriced_kwh"), "0.000", "first tariff from 12:58: nothing unpriced");
        is_str(jstr(x.json, "devices.0.total"), "1.60", "first tariff from 12:58: the device's bill too");
        run_done(&x);

        /* B from 12:15, 6 kW from 12:10 to 12:20: 0.5 kWh each side. */
        as[0].since_ms = 0;
        as[1].since_ms = T0 + 12 * HOUR + 15 * MINUTE;
        burst[0].since = T0 + 12 * HOUR + 10 * MINUTE;
        burst[0].until = T0 + 12 * HOUR + 20 * MINUTE;
        x = run(ts, 2, as, 2, NULL, burst, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "2.00", "change at 12:15: each side with its tariff");
        ok(x.fake.hour_calls > 0, "change at 12:15: the other hours still as hours");
        run_done(&x);

        /* The same with a device's own tariff from 12:15: the home's sum
         * is cut there too. Home A, the device on B from 12:15. */
        TariffAssignment own[] = {
                { .id = 1, .tariff = 1, .since_ms = 0 },
                { .id = 2, .device = (char *) "a", .tariff = 2, .since_ms = T0 + 12 * HOUR + 15 * MINUTE },
        };
        x = run(ts, 2, own, 2, NULL, burst, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "home.energy"), "0.50", "own tariff from 12:15: the home prices what came before");
        is_str(jstr(x.json, "total"), "2.00", "own tariff from 12:15: and the device's tariff the rest");
        run_done(&x);

        /* A demand tariff makes the home read minutes; the device's own
         * bill, summed back into hours, keeps the hour of the change in
         * minutes. */
        Tariff *d = tariff("\"name\":\"D\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":1}],"
                           "\"demand\":{\"charges\":[{\"name\":\"peak\",\"rate\":0}]}");
        CostQueryTariff tsd[] = { { 1, d }, { 2, b } };
        x = run(tsd, 2, own, 2, NULL, burst, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "devices.0.total"), "2.00", "own tariff from 12:15, home on demand: the device's bill");
        run_done(&x);

        /* A range past now: the minute still open ends at its last sample,
         * and its hour is not summed over it. 6 kW from 12:10 to 12:20:30
         * is 1.05 kWh. */
        TariffAssignment home_d[] = { { .id = 1, .tariff = 1, .since_ms = 0 } };
        burst[0].until = T0 + 12 * HOUR + 20 * MINUTE + 30000;
        burst[0].open = true;
        x = run(tsd, 2, home_d, 1, NULL, burst, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.r, 0, "open minute, home on demand: priced");
        is_str(jstr(x.json, "devices.0.total"), "1.05", "open minute, home on demand: the device's bill");
        run_done(&x);
        tariff_free(a);
        tariff_free(b);
        tariff_free(d);
}

static void test_home_charges(void) {
        Tariff *h = tariff("\"name\":\"home\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.30}],"
                           "\"fixed\":[{\"name\":\"daily\",\"amount\":1.00,\"per\":\"day\"}]");
        Tariff *c = tariff("\"name\":\"sub\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.10}],"
                           "\"fixed\":[{\"name\":\"meter\",\"amount\":0.50,\"per\":\"day\"}]");
        CostQueryTariff ts[] = { { 1, h }, { 2, c } };
        TariffAssignment as[] = {
                { .id = 1, .tariff = 1, .since_ms = 0 },
                { .id = 2, .device = (char *) "b", .tariff = 2, .since_ms = 0 },
                { .id = 3, .device = (char *) "b", .tariff = 0, .since_ms = T0 + 12 * HOUR },
        };

        Run x = run(ts, 1, as, 1, NULL, two, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "2.08", "home: energy 1.08 and the fixed charge once");
        is_str(jstr(x.json, "fixed"), "1.00", "home: fixed once");
        is_str(jstr(x.json, "home.fixed"), "1.00", "home: on the home's bill");
        is_str(jstr(x.json, "devices.0.fixed"), "0.00", "home: not on a device's");
        is_str(jstr(x.json, "devices.0.total"), "0.72", "home: a device's share is its energy");
        run_done(&x);

        /* b on its own tariff for the first half of the day, then the
         * home's again: 0.6 kWh at 0.10 plus half a day of 0.50 on its own
         * bill, the rest on the home's. */
        x = run(ts, 2, as, 3, NULL, two, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "home.energy"), "0.90", "own: the home prices 3.0 kWh");
        is_str(jstr(x.json, "devices.1.total"), "0.49", "own: b's bill, 0.06 + 0.25 + 0.18 as the home's share");
        is_str(jstr(x.json, "total"), "2.21", "own: 0.90 + 1.00 + 0.06 + 0.25");
        is_str(jstr(x.json, "fixed"), "1.25", "own: both meters' fixed charges");
        run_done(&x);

        Tariff *usd = tariff("\"name\":\"usd\",\"currency\":\"USD\",\"periods\":[{\"name\":\"all\",\"rate\":0.10}]");
        CostQueryTariff mixed[] = { { 1, h }, { 2, usd } };
        x = run(mixed, 2, as, 2, NULL, two, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.r, -EINVAL, "two currencies are refused");
        ok(x.error && strstr(x.error, "EUR") && strstr(x.error, "USD"), "saying which: %s", x.error ?: "(null)");
        run_done(&x);

        x = run(ts, 2, NULL, 0, NULL, two, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.r, -ENODATA, "no assignment: nothing to price with");
        run_done(&x);

        x = run(ts, 2, as, 1, NULL, two, 2, T0 + DAY, T0, COST_BUCKET_NONE, NULL);
        is_int(x.r, -EINVAL, "an empty range is refused");
        run_done(&x);

        TariffAssignment dangling[] = { { .id = 1, .tariff = 9, .since_ms = 0 } };
        x = run(ts, 2, dangling, 1, NULL, two, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.r, -EINVAL, "an assignment of an unknown tariff is refused");
        run_done(&x);
        tariff_free(h);
        tariff_free(c);
        tariff_free(usd);
}

static void test_tiers(void) {
        Tariff *t = tariff("\"name\":\"tiers\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"tiers\":"
                           "[{\"up_to_kwh\":2,\"rate\":0.10},{\"rate\":0.20}]}]");
        CostQueryTariff ts[] = { { 1, t } };
        TariffAssignment as[] = { { .id = 1, .tariff = 1, .since_ms = 0 } };
        FakeDevice fresh[] = { { "a", 100000, T0 }, { "b", 50000, T0 } };

        /* The home's 3.6 kWh cross the tier, neither device alone does so
         * as much: tiers count the home's energy. */
        Run x = run(ts, 1, as, 1, NULL, fresh, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "0.52", "tiers: 2 kWh at 0.10, 1.6 kWh at 0.20");
        is_str(jstr(x.json, "devices.0.total"), "0.28", "tiers: the first device alone");
        run_done(&x);

        /* 100 W since March 1st: by the 15th the cycle's 24 kWh tier is full,
         * so the 15th is priced at the upper tier. */
        Tariff *m = tariff("\"name\":\"month\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"tiers\":"
                           "[{\"up_to_kwh\":24,\"rate\":0.10},{\"rate\":0.20}]}]");
        CostQueryTariff ms[] = { { 1, m } };
        FakeDevice march[] = { { "a", 100000, MARCH } };
        x = run(ms, 1, as, 1, NULL, march, 1, MARCH + 14 * DAY, MARCH + 15 * DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "0.48", "lookback: energy before the range fills the tier");
        ok(x.fake.earliest == MARCH, "lookback: read from the cycle's start");
        ok(x.fake.day_calls == 1, "lookback: its whole days as day rollups");
        run_done(&x);

        /* A tariff starting inside the lookback: its days must not blur
         * where tiers restart. 100 W from the 1st, a new tiered tariff
         * from the 10th at noon: by the 15th 4.5 days = 10.8 kWh of its
         * 24 kWh tier are used, the 15th's 2.4 kWh are all in it. */
        Tariff *m2 = tariff("\"name\":\"month2\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"tiers\":"
                            "[{\"up_to_kwh\":24,\"rate\":0.10},{\"rate\":0.20}]}]");
        CostQueryTariff ms2[] = { { 1, m }, { 2, m2 } };
        TariffAssignment change[] = { { .id = 1, .tariff = 1, .since_ms = 0 },
                                      { .id = 2, .tariff = 2, .since_ms = MARCH + 9 * DAY + 12 * HOUR } };
        x = run(ms2, 2, change, 2, NULL, march, 1, MARCH + 14 * DAY, MARCH + 15 * DAY, COST_BUCKET_NONE, NULL);
        is_str(jstr(x.json, "total"), "0.24", "lookback across a tariff change: tiers restart at the change");
        ok(x.fake.day_calls == 0, "lookback across a tariff change: no day rollups");
        run_done(&x);
        tariff_free(t);
        tariff_free(m);
        tariff_free(m2);
}

static void test_resolution(void) {
        Tariff *d = tariff("\"name\":\"demand\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.30}],"
                           "\"demand\":{\"charges\":[{\"name\":\"peak\",\"rate\":10}]}");
        Tariff *half = tariff("\"name\":\"half\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"night\",\"hours\":"
                              "\"22:30-06:00\",\"rate\":0.10},{\"name\":\"day\",\"rate\":0.30}]");
        Tariff *flat = tariff("\"name\":\"flat\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.30}]");
        CostQueryTariff ts[] = { { 1, d }, { 2, half }, { 3, flat } };
        TariffAssignment as[] = { { .id = 1, .tariff = 1, .since_ms = 0 } };

        Run x = run(ts, 3, as, 1, NULL, two, 2, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.fake.hour_calls, 0, "demand: minutes only");
        ok(strcmp(jstr(x.json, "demand") ?: "", "0.00") != 0, "demand: charged on the home (%s)", jstr(x.json, "demand"));
        is_str(jstr(x.json, "devices.0.demand"), "0.00", "demand: not on a device");
        is_str(jstr(x.json, "devices.0.total"), "0.72", "demand: a device's energy in hours summed from minutes");
        is_str(jstr(x.json, "home.energy"), "1.08", "demand: the home's energy");
        run_done(&x);

        as[0].tariff = 2;
        x = run(ts, 3, as, 1, NULL, two, 1, T0, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.fake.hour_calls, 0, "a period starting at half past: minutes only");
        /* 7.5 h at 0.10 and 16.5 h at 0.30 of 100 W: 0.075 and 0.495,
         * each line rounded */
        is_str(jstr(x.json, "total"), "0.58", "half past: priced to the minute");
        run_done(&x);

        as[0].tariff = 3;
        x = run(ts, 3, as, 1, NULL, two, 1, T0, T0 + DAY, COST_BUCKET_NONE, "Asia/Kolkata");
        is_int(x.fake.hour_calls, 0, "a zone half an hour off UTC: minutes only");
        run_done(&x);
        x = run(ts, 3, as, 1, NULL, two, 1, T0, T0 + DAY, COST_BUCKET_DAY, "Europe/Berlin");
        ok(x.fake.hour_calls > 0, "Europe/Berlin: hours");
        is_int(json_array_size(json_object_get(x.json, "buckets")), 2, "Europe/Berlin: a UTC day meets two local days");
        run_done(&x);

        Fake f = { .fail = -EIO };
        CostQueryDevice id = { "a", NULL };
        CostQueryResult *res = NULL;
        CostQuery q = { .tariffs = ts, .n_tariffs = 3, .assignments = as, .n_assignments = 1, .devices = &id,
                        .n_devices = 1, .ops = &fake_ops, .userdata = &f, .time_zone = "UTC", .from_ms = T0,
                        .to_ms = T0 + DAY };
        is_int(cost_query_run(&q, &res, NULL), -EIO, "the source's error is passed on");
        tariff_free(d);
        tariff_free(half);
        tariff_free(flat);
}

/* A bill over centuries for devices that have a day of data: the work and
 * memory follow the data, not the range (a minute grid over the range
 * was 4 GiB here). The address space is capped to make that an error
 * rather than a slow success; AddressSanitizer's shadow needs more, so
 * there the range is priced uncapped. */
static void test_long_range(void) {
        static const FakeDevice late[] = { { "a", 100000, T0 }, { "b", 50000, T0 } };
        Tariff *t = tariff("\"name\":\"flat\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.30}]");
        CostQueryTariff ts[] = { { 1, t } };
        TariffAssignment as[] = { { .id = 1, .device = NULL, .tariff = 1, .since_ms = 0 } };
        struct rlimit old = {};
        if (!UNDER_ASAN) {
                getrlimit(RLIMIT_AS, &old);
                ok(setrlimit(RLIMIT_AS, &(struct rlimit) { 2ULL << 30, old.rlim_max }) == 0,
                   "long range: address space capped at 2 GiB");
        }
        Run x = run(ts, 1, as, 1, NULL, late, 2, T0 - 1000 * 365 * DAY, T0 + DAY, COST_BUCKET_NONE, NULL);
        is_int(x.r, 0, "long range: priced");
        is_str(jstr(x.json, "total"), "1.08", "long range: the day of data, and nothing else");
        run_done(&x);
        if (!UNDER_ASAN)
                setrlimit(RLIMIT_AS, &old);
        tariff_free(t);
}

int main(void) {
        test_flat();
        test_long_range();
        test_change();
        test_change_within_hour();
        test_home_charges();
        test_tiers();
        test_resolution();
        return done_testing();
}
