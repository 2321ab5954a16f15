/* SPDX-License-Identifier: MIT */

/*
 * Cost benchmark (run through tools/bench-cost): GetCost of 100 plugs over
 * a year of hourly energy. A store is filled directly with a year of
 * readings of PLUGS plugs, then the daemon's cost path is timed without
 * D-Bus: cost-query.c with the daemon's store source
 * (manager_cost_store_energy(), the store's rollups) and the cost engine,
 * and the JSON GetCost would send. Measures and prints markdown; asserts
 * nothing.
 *
 *   bench-cost-helper DIR [PLUGS [DAYS]]
 */

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"
#include "cost-query.h"
#include "manager-tariff.h"
#include "store.h"

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
/* 2025-01-01T00:00:00+01:00 */
#define T0 INT64_C(1735686000000)
#define ZONE "Europe/Berlin"
#define SAMPLE_MS (10 * MINUTE_MS)
#define RUNS 5

static double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint64_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static int fail(const char *what, int r) {
        fprintf(stderr, "%s: %s\n", what, strerror(-r));
        return EXIT_FAILURE;
}

static int64_t day_start(int64_t ts, void *userdata) {
        return calendar_day_start(userdata, ts);
}

/* A year of readings every 10 minutes: a load switching on and off. */
static int fill(Store *st, unsigned plugs, unsigned days, double *ret_s) {
        size_t per_day = (size_t) (DAY_MS / SAMPLE_MS);
        StoreSample *buf = calloc(per_day * plugs, sizeof(StoreSample));
        int64_t *energy = calloc(plugs, sizeof(int64_t)), *load = calloc(plugs, sizeof(int64_t));
        double t = now_s();
        int r;

        if (!buf || !energy || !load)
                return -ENOMEM;
        for (unsigned i = 0; i < plugs; i++)
                load[i] = 20000 + (int64_t) (rnd() % 2000000);
        for (unsigned d = 0; d < days; d++) {
                size_t m = 0;
                for (size_t k = 0; k < per_day; k++)
                        for (unsigned i = 0; i < plugs; i++) {
                                int64_t p = rnd() % 4 == 0 ? load[i] : load[i] / 20;
                                energy[i] += p * SAMPLE_MS / HOUR_MS;
                                buf[m++] = (StoreSample) {
                                        .device = i,
                                        .ts_ms = T0 + (int64_t) d * DAY_MS + (int64_t) k * SAMPLE_MS,
                                        .power_mw = p,
                                        .voltage_mv = 230000,
                                        .current_ma = p / 230,
                                        .energy_mwh = energy[i],
                                };
                        }
                r = store_append(st, buf, m);
                if (r >= 0)
                        r = store_sync(st);
                if (r >= 0 && d % 7 == 6)
                        r = store_checkpoint(st);
                if (r < 0)
                        return r;
        }
        r = store_checkpoint(st);
        *ret_s = now_s() - t;
        free(buf);
        free(energy);
        free(load);
        return r;
}

typedef struct Source {
        Store *st;
        const Calendar *cal;
        int64_t now;
        double seconds;
        size_t intervals;
} Source;

static int source_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to,
                         CostInterval **ret, size_t *ret_n) {
        Source *s = userdata;
        double t = now_s();
        int r = manager_cost_store_energy(s->st, (uint32_t) strtoul(device + 1, NULL, 10), minutes, from, to, s->now,
                                          ret, ret_n);
        s->seconds += now_s() - t;
        if (r >= 0)
                s->intervals += *ret_n;
        return r;
}

static int source_days(void *userdata, const char *device, int64_t from, int64_t to, CostInterval **ret,
                       size_t *ret_n) {
        Source *s = userdata;
        double t = now_s();
        int r = manager_cost_store_days(s->st, s->cal, (uint32_t) strtoul(device + 1, NULL, 10), from, to, ret, ret_n);
        s->seconds += now_s() - t;
        if (r >= 0)
                s->intervals += *ret_n;
        return r;
}

static const CostSourceOps source_ops = { .energy = source_energy, .days = source_days };

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

typedef struct Scenario {
        const char *what;
        const char *tariff;
        CostBucket bucket;
        int64_t from, to;
} Scenario;

static int run(Store *st, const Calendar *cal, unsigned plugs, const Scenario *sc) {
        char *err = NULL;
        Tariff *t = NULL;
        int r = tariff_file_parse(sc->tariff, strlen(sc->tariff), "bench", &t, &err);
        if (r < 0) {
                fprintf(stderr, "tariff: %s\n", err);
                return r;
        }
        char (*ids)[16] = calloc(plugs, sizeof *ids);
        CostQueryDevice *devs = calloc(plugs, sizeof *devs);
        if (!ids || !devs)
                return -ENOMEM;
        for (unsigned i = 0; i < plugs; i++) {
                snprintf(ids[i], sizeof ids[i], "p%u", i);
                devs[i] = (CostQueryDevice) { ids[i], NULL };
        }
        CostQueryTariff ts = { 1, t };
        TariffAssignment as = { .id = 1, .tariff = 1, .since_ms = 0 };
        double total[RUNS], fetch[RUNS], json[RUNS];
        size_t intervals = 0;
        _cleanup_free_ char *amount = NULL;
        for (unsigned k = 0; k < RUNS; k++) {
                Source src = { .st = st, .cal = cal, .now = sc->to + 1 };
                CostQuery q = {
                        .tariffs = &ts, .n_tariffs = 1, .assignments = &as, .n_assignments = 1,
                        .devices = devs, .n_devices = plugs, .ops = &source_ops, .userdata = &src,
                        .time_zone = ZONE, .from_ms = sc->from, .to_ms = sc->to, .bucket = sc->bucket,
                };
                CostQueryResult *res = NULL;
                double a = now_s();
                r = cost_query_run(&q, &res, &err);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", sc->what, err ?: strerror(-r));
                        return r;
                }
                double b = now_s();
                json_t *j = cost_query_to_json(&q, res);
                char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
                double c = now_s();
                if (!s)
                        return -ENOMEM;
                if (k == 0) {
                        free(amount);
                        amount = strdup(json_string_value(json_object_get(j, "total")));
                }
                free(s);
                json_decref(j);
                cost_query_result_free(res);
                total[k] = b - a;
                fetch[k] = src.seconds;
                json[k] = c - b;
                intervals = src.intervals;
        }
        qsort(total, RUNS, sizeof(double), cmp_double);
        qsort(fetch, RUNS, sizeof(double), cmp_double);
        qsort(json, RUNS, sizeof(double), cmp_double);
        printf("| %s | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %zu | %s EUR |\n", sc->what, total[RUNS / 2] * 1e3,
               fetch[RUNS / 2] * 1e3, (total[RUNS / 2] - fetch[RUNS / 2]) * 1e3, json[RUNS / 2] * 1e3, intervals,
               amount ?: "?");
        free(ids);
        free(devs);
        tariff_free(t);
        return 0;
}

/* The peer: what tools that price a day's energy at one rate do, from the
 * store's day rollups: the floor of any query of a year of 100 plugs. */
static void run_daily(Store *st, unsigned plugs, int64_t from, int64_t to) {
        double best[RUNS];
        for (unsigned k = 0; k < RUNS; k++) {
                double a = now_s();
                int64_t sum = 0;
                for (unsigned i = 0; i < plugs; i++) {
                        StoreRollup *rows = NULL;
                        size_t n = 0;
                        if (store_query_rollup(st, i, STORE_DAY, from, to, 1000, &rows, &n) >= 0)
                                for (size_t d = 0; d < n; d++)
                                        sum += rows[d].energy_mwh;
                        free(rows);
                }
                best[k] = now_s() - a;
                if (k == 0)
                        printf("<!-- %" PRId64 " kWh -->\n", sum / 1000000);
        }
        qsort(best, RUNS, sizeof(double), cmp_double);
        printf("| peer: day rollups x one rate (the seed's way, wrong for TOU and tiers) | %.1f ms | | | | %u days x %u | |\n",
               best[RUNS / 2] * 1e3, (unsigned) ((to - from) / DAY_MS), plugs);
}

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: bench-cost-helper DIR [PLUGS [DAYS]]\n");
                return 2;
        }
        unsigned plugs = argc > 2 ? (unsigned) atoi(argv[2]) : 100, days = argc > 3 ? (unsigned) atoi(argv[3]) : 365;
        Calendar *cal = calendar_new(ZONE);
        Store *st = NULL;
        double fill_s;
        int r;

        StoreOptions o = {
                .day_start = day_start,
                .userdata = cal,
                .gap_ms = HOUR_MS,
                .checkpoint_interval_ms = 7 * DAY_MS,
                .tail_max_bytes = 256u << 20,
                .pending_max_bytes = 256u << 20,
        };
        r = cal ? store_open_with(argv[1], &o, &st) : -ENOMEM;
        if (r < 0)
                return fail("open", r);
        r = fill(st, plugs, days, &fill_s);
        if (r < 0)
                return fail("fill", r);
        int64_t end = T0 + (int64_t) days * DAY_MS;
        printf("Store: %u plugs x %u days, a reading every %" PRId64 " min (%.1f s to fill).\n\n", plugs, days,
               SAMPLE_MS / MINUTE_MS, fill_s);
        printf("| query (Europe/Berlin) | cost-query + engine | of which store reads | pricing | JSON | intervals read | total |\n");
        printf("| --- | --- | --- | --- | --- | --- | --- |\n");

        static const char flat[] =
                "{\"format\":\"kasamond-tariff/1\",\"name\":\"flat\",\"currency\":\"EUR\","
                "\"periods\":[{\"name\":\"energy\",\"rate\":0.3215}],"
                "\"fixed\":[{\"name\":\"standing charge\",\"amount\":11.90,\"per\":\"month\"}],"
                "\"taxes\":[{\"name\":\"VAT\",\"percent\":19}]}";
        static const char tou[] =
                "{\"format\":\"kasamond-tariff/1\",\"name\":\"tou\",\"currency\":\"EUR\","
                "\"seasons\":[{\"name\":\"summer\",\"months\":\"6-9\"},{\"name\":\"winter\",\"months\":\"10-5\"}],"
                "\"periods\":[{\"name\":\"night\",\"hours\":\"23:00-06:00\",\"rate\":0.09},"
                "{\"name\":\"peak\",\"days\":[\"weekdays\"],\"hours\":\"16:00-19:00\",\"rate\":0.38},"
                "{\"name\":\"summer\",\"season\":\"summer\",\"tiers\":[{\"up_to_kwh\":600,\"rate\":0.12},{\"rate\":0.16}]},"
                "{\"name\":\"winter\",\"season\":\"winter\",\"tiers\":[{\"up_to_kwh\":800,\"rate\":0.10},{\"rate\":0.13}]}],"
                "\"fixed\":[{\"name\":\"standing charge\",\"amount\":0.53,\"per\":\"day\"}],"
                "\"taxes\":[{\"name\":\"VAT\",\"percent\":19}]}";
        static const char demand[] =
                "{\"format\":\"kasamond-tariff/1\",\"name\":\"demand\",\"currency\":\"EUR\","
                "\"periods\":[{\"name\":\"high\",\"days\":[\"weekdays\"],\"hours\":\"07:00-20:00\",\"rate\":0.24},"
                "{\"name\":\"low\",\"rate\":0.17}],"
                "\"demand\":{\"charges\":[{\"name\":\"demand\",\"rate\":8.50}]}}";
        int64_t last_month = calendar_month_start(cal, end - 1);
        const Scenario scenarios[] = {
                { "flat + fixed + VAT, all days, one bill", flat, COST_BUCKET_NONE, T0, end },
                { "flat + fixed + VAT, all days, by month", flat, COST_BUCKET_MONTH, T0, end },
                { "flat + fixed + VAT, all days, by day", flat, COST_BUCKET_DAY, T0, end },
                { "seasonal TOU with tiers, all days, by month", tou, COST_BUCKET_MONTH, T0, end },
                { "seasonal TOU with tiers, all days, by day", tou, COST_BUCKET_DAY, T0, end },
                { "a poll round's CostToday: TOU with tiers, the last day (its month's days fill the tiers)", tou,
                  COST_BUCKET_NONE, end - DAY_MS, end },
                { "the daily base of CostMonth: TOU with tiers, the last month", tou, COST_BUCKET_NONE, last_month, end },
                { "demand (minute rollups), the last month", demand, COST_BUCKET_NONE, last_month, end },
        };
        for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
                r = run(st, cal, plugs, &scenarios[i]);
                if (r < 0)
                        return fail(scenarios[i].what, r);
        }
        run_daily(st, plugs, T0, end);
        store_free(st);
        calendar_free(cal);
        return 0;
}
