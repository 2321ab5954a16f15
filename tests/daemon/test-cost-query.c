/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
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

/* ---- priced on from a part (cost_query_run_from) ---- */

/* Energy that changes every minute, so that lines round differently in
 * parts than whole: minute m of device k draws 0 to 4 Wh; an hour's or a
 * day's rollup is the sum of its minutes, as the store's are. */
typedef struct Wavy {
        size_t n;
        int64_t earliest; /* the earliest energy asked for (not days) */
} Wavy;

static int64_t wavy_minute(size_t k, int64_t m) {
        uint64_t h = (uint64_t) m * UINT64_C(2654435761) + k * UINT64_C(40503);
        return (int64_t) ((h >> 7) % 4001);
}

static int wavy_cells(Wavy *w, const char *device, int64_t step, int64_t from, int64_t to, CostInterval **ret,
                      size_t *ret_n) {
        size_t k = (size_t) (device[0] - 'a');
        int64_t start = (from + step - 1) / step * step;
        size_t n = 0, cap = to > start ? (size_t) ((to - start) / step + 1) : 1;
        CostInterval *v = calloc(cap, sizeof(CostInterval));
        if (!v)
                return -ENOMEM;
        for (int64_t t = start; t < to; t += step) {
                int64_t e = 0;
                for (int64_t m = t / MINUTE; m < (t + step) / MINUTE; m++)
                        e += wavy_minute(k, m);
                if (e > 0)
                        v[n++] = (CostInterval) { t, t + step, e };
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int wavy_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to, CostInterval **ret,
                       size_t *ret_n) {
        Wavy *w = userdata;
        if (w->earliest == 0 || from < w->earliest)
                w->earliest = from;
        return wavy_cells(w, device, minutes ? MINUTE : HOUR, from, to, ret, ret_n);
}

static int wavy_days(void *userdata, const char *device, int64_t from, int64_t to, CostInterval **ret,
                     size_t *ret_n) {
        return wavy_cells(userdata, device, DAY, from, to, ret, ret_n);
}

static const CostSourceOps wavy_ops = { .energy = wavy_energy, .days = wavy_days };

/* Cases where the parts' bills, each rounded, would not add up to the
 * whole: the comparison below can tell a sum of rounded bills apart. */
static unsigned rounded_parts_off;

/* Whole, and on from the part before split: the same totals to the cent,
 * the home's and each device's. */
static void check_from(const char *what, const CostQueryTariff *ts, size_t n_ts, const TariffAssignment *as,
                       size_t n_as, int64_t from, int64_t split, int64_t to, bool reads_after_split) {
        static const CostQueryDevice ids[] = { { "a", NULL }, { "b", NULL }, { "c", NULL } };
        Wavy w_whole = { 3 }, w_part = { 3 }, w_from = { 3 };
        CostQuery q = {
                .tariffs = ts, .n_tariffs = n_ts, .assignments = as, .n_assignments = n_as,
                .devices = ids, .n_devices = 3, .ops = &wavy_ops, .userdata = &w_whole,
                .time_zone = "UTC", .from_ms = from, .to_ms = to,
        };
        CostQueryResult *whole = NULL, *part = NULL, *after = NULL;
        char *e1 = NULL, *e2 = NULL, *e3 = NULL;
        int r1 = cost_query_run(&q, &whole, &e1);
        CostQuery qp = q;
        qp.to_ms = split;
        qp.userdata = &w_part;
        int r2 = cost_query_run(&qp, &part, &e2);
        q.userdata = &w_from;
        int r3 = r2 >= 0 ? cost_query_run_from(&q, part, split, &after, &e3) : r2;
        ok(r1 >= 0 && r2 >= 0 && r3 >= 0, "%s: priced (%s %s %s)", what, e1 ?: "", e2 ?: "", e3 ?: "");
        if (r1 >= 0 && r3 >= 0) {
                int64_t a = 0, b = 0;
                bool same = cost_query_total(whole, &a) >= 0 && cost_query_total(after, &b) >= 0 && a == b;
                for (size_t i = 0; i < 3; i++) {
                        int64_t x = 0, y = 0;
                        int k1 = cost_query_device_total(whole, i, &x), k2 = cost_query_device_total(after, i, &y);
                        same = same && k1 == k2 && x == y;
                }
                ok(same, "%s: the same total and device totals on from the part (%" PRId64 " and %" PRId64 ")", what,
                   a, b);
                if (reads_after_split)
                        ok(w_from.earliest >= split, "%s: only the energy after the split is read", what);
                CostQuery qa = q;
                CostQueryResult *rest = NULL;
                int64_t p = 0, o = 0;
                qa.from_ms = split;
                if (cost_query_run(&qa, &rest, NULL) >= 0 && cost_query_total(part, &p) >= 0 &&
                    cost_query_total(rest, &o) >= 0 && p + o != a)
                        rounded_parts_off++;
                cost_query_result_free(rest);
        }
        cost_query_result_free(whole);
        cost_query_result_free(part);
        cost_query_result_free(after);
        free(e1);
        free(e2);
        free(e3);
}

static void test_from(void) {
        Tariff *flat = tariff("\"name\":\"flat\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.3037}],"
                              "\"fixed\":[{\"name\":\"standing\",\"amount\":0.53,\"per\":\"day\"},"
                              "{\"name\":\"meter\",\"amount\":11.9,\"per\":\"month\"}],"
                              "\"adders\":[{\"name\":\"fuel\",\"rate\":0.0125}],"
                              "\"taxes\":[{\"name\":\"VAT\",\"percent\":19}]");
        Tariff *tou = tariff("\"name\":\"tou\",\"currency\":\"EUR\",\"periods\":["
                             "{\"name\":\"night\",\"hours\":\"23:30-06:30\",\"rate\":0.0917},"
                             "{\"name\":\"peak\",\"days\":[\"weekdays\"],\"hours\":\"16:00-19:00\",\"rate\":0.3811},"
                             "{\"name\":\"day\",\"rate\":0.2743}],"
                             "\"taxes\":[{\"name\":\"levy\",\"percent\":2.3,\"on\":[\"energy\"]}]");
        Tariff *tiers = tariff("\"name\":\"tiers\",\"currency\":\"EUR\",\"billing_cycle_start_day\":15,"
                               "\"periods\":[{\"name\":\"all\",\"tiers\":[{\"up_to_kwh\":2,\"rate\":0.1111},"
                               "{\"up_to_kwh\":3,\"rate\":0.1733},{\"rate\":0.2291}]}],"
                               "\"fixed\":[{\"name\":\"daily\",\"amount\":0.31,\"per\":\"day\"}],"
                               "\"taxes\":[{\"name\":\"VAT\",\"percent\":7.7}]");
        Tariff *daily = tariff("\"name\":\"daily\",\"currency\":\"EUR\",\"tiers_reset\":\"daily\","
                               "\"periods\":[{\"name\":\"all\",\"tiers\":[{\"up_to_kwh\":4,\"rate\":0.1009},"
                               "{\"rate\":0.3001}]}],\"adders\":[{\"name\":\"grid\",\"rate\":0.0137}]");
        Tariff *demand = tariff("\"name\":\"demand\",\"currency\":\"EUR\",\"periods\":[{\"name\":\"all\",\"rate\":0.3}],"
                                "\"demand\":{\"charges\":[{\"name\":\"peak\",\"rate\":10}]}");
        CostQueryTariff ts[] = { { 1, flat }, { 2, tou }, { 3, tiers }, { 4, daily }, { 5, demand } };
        int64_t day = T0 + 5 * DAY; /* 2024-03-15, the tiers' cycle begins */
        int64_t day2 = T0 + 9 * DAY; /* 2024-03-19: four days of the cycle before it */
        int64_t split = day + 13 * HOUR, to = day + 17 * HOUR + 23 * MINUTE + 17123;

        for (int64_t t = 1; t <= 4; t++) {
                TariffAssignment as[] = { { .id = 1, .tariff = t, .since_ms = 0 } };
                const char *names[] = { "", "flat, fixed, adder, VAT", "time of use within hours",
                                        "cycle tiers", "daily tiers with an adder" };
                char what[96];
                snprintf(what, sizeof what, "%s, the cycle's first day", names[t]);
                check_from(what, ts, 5, as, 1, day, split, to, t <= 2);
                snprintf(what, sizeof what, "%s, days into the cycle", names[t]);
                check_from(what, ts, 5, as, 1, day2, day2 + 13 * HOUR, day2 + 20 * HOUR + 59 * MINUTE + 1, t <= 2);
        }
        /* Round after round: the same part, later and later ends. */
        for (int k = 1; k <= 6; k++) {
                TariffAssignment as[] = { { .id = 1, .tariff = 3, .since_ms = 0 } };
                char what[96];
                int64_t end = day2 + 13 * HOUR + k * 37 * MINUTE + k * 1013;
                snprintf(what, sizeof what, "cycle tiers, round %d", k);
                check_from(what, ts, 5, as, 1, day2, day2 + 13 * HOUR, end, false);
        }
        /* The home on one tariff, a device on its own with tiers. */
        TariffAssignment own[] = { { .id = 1, .tariff = 1, .since_ms = 0 },
                                   { .id = 2, .device = (char *) "b", .tariff = 3, .since_ms = 0 } };
        check_from("a device on a tariff of its own", ts, 5, own, 2, day2, day2 + 13 * HOUR, to + 4 * DAY, false);
        /* A change before the split today: priced whole, the same. */
        TariffAssignment change[] = { { .id = 1, .tariff = 1, .since_ms = 0 },
                                      { .id = 2, .tariff = 3, .since_ms = day2 + 7 * HOUR + 30 * MINUTE } };
        check_from("an assignment between from and split", ts, 5, change, 2, day2, day2 + 13 * HOUR,
                   day2 + 18 * HOUR, false);
        /* Demand: a peak is no sum of parts, priced whole. */
        TariffAssignment dem[] = { { .id = 1, .tariff = 5, .since_ms = 0 } };
        check_from("demand charges", ts, 5, dem, 1, day2, day2 + 13 * HOUR, day2 + 18 * HOUR, false);
        ok(rounded_parts_off > 0, "in %u of the cases the two parts' bills, rounded, add up to another total",
           rounded_parts_off);
        tariff_free(flat);
        tariff_free(tou);
        tariff_free(tiers);
        tariff_free(daily);
        tariff_free(demand);
}

int main(void) {
        test_flat();
        test_long_range();
        test_change();
        test_change_within_hour();
        test_home_charges();
        test_tiers();
        test_resolution();
        test_from();
        return done_testing();
}
