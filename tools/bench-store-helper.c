/* SPDX-License-Identifier: MIT */

/*
 * Storage benchmark (run through tools/bench-store): ingest rate, disk per
 * reading after compaction, and the two history queries of the design's
 * performance table. Measures and prints markdown; asserts nothing.
 *
 *   bench-store-helper DIR
 *
 * DIR is an empty scratch directory; one store per scenario is made in it.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store.h"

#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
/* 2026-03-02 00:00 UTC, a Monday. */
#define T0 INT64_C(1772409600000)

static int64_t day_utc(int64_t ts, void *userdata) {
        return ts / DAY_MS * DAY_MS;
}

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

/* A plausible plug: an appliance switching between idle and a load, the
 * meter's noise on every reading, mains voltage wandering slowly. */
typedef struct Plug {
        int64_t load_mw, idle_mw, voltage_mv, energy_uwh;
        bool on;
} Plug;

static void plug_init(Plug *p) {
        p->load_mw = 5000 + (int64_t) (rnd() % 2000000);
        p->idle_mw = (int64_t) (rnd() % 2000);
        p->voltage_mv = 228000 + (int64_t) (rnd() % 6000);
        p->energy_uwh = 0;
        p->on = rnd() % 2;
}

static StoreSample plug_read(Plug *p, uint32_t device, int64_t ts, int64_t interval_ms) {
        if (rnd() % 360 == 0)
                p->on = !p->on;
        int64_t base = p->on ? p->load_mw : p->idle_mw;
        int64_t power = base + (int64_t) (rnd() % (uint64_t) (base / 100 + 1)) - base / 200;
        p->voltage_mv += (int64_t) (rnd() % 201) - 100;
        p->voltage_mv = MIN(MAX(p->voltage_mv, INT64_C(220000)), INT64_C(240000));
        p->energy_uwh += power * interval_ms / HOUR_MS * 1000 + (int64_t) (rnd() % 1000);
        return (StoreSample) {
                .device = device,
                .ts_ms = ts + (int64_t) (rnd() % 50),
                .power_mw = power,
                .voltage_mv = p->voltage_mv,
                .current_ma = power * 1000 / p->voltage_mv + (int64_t) (rnd() % 3),
                .energy_mwh = p->energy_uwh / 1000,
        };
}

static int open_sub(const char *dir, const char *name, Store **ret) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        return store_open(path, day_utc, NULL, ret);
}

static int fail(const char *what, int r) {
        fprintf(stderr, "%s: %s\n", what, strerror(-r));
        return EXIT_FAILURE;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Durable ingest as the daemon does it: one append per poll round. */
static int bench_rounds(const char *dir, const char *name, unsigned plugs, unsigned rounds) {
        _cleanup_(store_freep) Store *st = NULL;
        StoreSample *buf = calloc(plugs, sizeof(StoreSample));
        Plug *p = calloc(plugs, sizeof(Plug));
        double t;
        int r;

        if (!buf || !p)
                return fail("alloc", -ENOMEM);
        r = open_sub(dir, name, &st);
        if (r < 0)
                return fail("open", r);
        for (unsigned i = 0; i < plugs; i++)
                plug_init(&p[i]);

        double ta = 0;
        t = now_s();
        for (unsigned k = 0; k < rounds; k++) {
                for (unsigned i = 0; i < plugs; i++)
                        buf[i] = plug_read(&p[i], i, T0 + (int64_t) k * 1000, 1000);
                double a = now_s();
                r = store_append(st, buf, plugs);
                ta += now_s() - a;
                if (r < 0)
                        return fail("append", r);
                /* Waits for the writer's fdatasync, as a round a poll
                 * interval apart gets it. */
                r = store_sync(st);
                if (r < 0)
                        return fail("sync", r);
        }
        t = now_s() - t;
        printf("| durable ingest, %u plugs, one round per append + store_sync (one fdatasync of the log) | %.2f ms per round, %.0f rounds/s, %.2f us per reading, %.0f readings/s |\n",
               plugs, t / rounds * 1e3, rounds / t, t / rounds / plugs * 1e6, rounds * (double) plugs / t);
        printf("| of which on the caller's thread (store_append: validation, tail, queueing) | %.1f us per round, %.2f us per reading |\n",
               ta / rounds * 1e6, ta / rounds / plugs * 1e6);
        free(buf);
        free(p);
        return 0;
}

typedef struct History {
        Store *st;
        unsigned plugs, days;
        int64_t interval_ms;
        uint64_t readings;
} History;

/* Loads whole hours per transaction (a backfill), packing each hour once it
 * has closed, as the daemon's loop does, so freed pages get reused. */
static int load_history(const char *dir, const char *name, History *h) {
        size_t per_hour = (size_t) (HOUR_MS / h->interval_ms);
        StoreSample *buf = calloc(per_hour * h->plugs, sizeof(StoreSample));
        Plug *p = calloc(h->plugs, sizeof(Plug));
        double t, tc = 0;
        int r;

        if (!buf || !p)
                return fail("alloc", -ENOMEM);
        r = open_sub(dir, name, &h->st);
        if (r < 0)
                return fail("open", r);
        for (unsigned i = 0; i < h->plugs; i++)
                plug_init(&p[i]);

        t = now_s();
        for (int64_t hour = 0; hour <= (int64_t) h->days * 24; hour++) {
                double c = now_s();
                r = store_sync(h->st);
                if (r >= 0)
                        r = store_checkpoint(h->st);
                if (r < 0)
                        return fail("compact", r);
                tc += now_s() - c;
                if (hour == (int64_t) h->days * 24)
                        break;

                size_t m = 0;
                for (size_t k = 0; k < per_hour; k++)
                        for (unsigned i = 0; i < h->plugs; i++)
                                buf[m++] = plug_read(&p[i], i, T0 + hour * HOUR_MS + (int64_t) k * h->interval_ms,
                                                     h->interval_ms);
                r = store_append(h->st, buf, m);
                if (r < 0)
                        return fail("append", r);
                h->readings += m;
        }
        t = now_s() - t - tc;

        printf("| backfill, %u plugs x %u days every %" PRId64 " s, one append per hour (log write + checkpoint excluded) | %.2f us per reading, %.0f readings/s (%" PRIu64 " readings) |\n",
               h->plugs, h->days, h->interval_ms / 1000, t / (double) h->readings * 1e6, (double) h->readings / t, h->readings);
        printf("| log fdatasync + checkpoint of the same, hour by hour | %.2f s, %.2f us per reading |\n", tc, tc / (double) h->readings * 1e6);
        free(buf);
        free(p);
        return 0;
}

static int report_disk(const char *dir, const char *name, History *h) {
        StoreStats s;
        struct stat fst;
        char path[4096];
        int r;

        r = store_stats(h->st, &s);
        if (r < 0)
                return fail("stats", r);
        snprintf(path, sizeof path, "%s/%s/data.mdb", dir, name);
        if (stat(path, &fst) < 0)
                return fail("stat", -errno);

        double n = (double) h->readings;
        printf("| disk per reading, %u plugs every %" PRId64 " s for %u days, after checkpoints | "
               "**%.2f B** in used pages (all databases, rollups included; %" PRIu64 " B pages); "
               "%.2f B of packed block bytes; %.2f B in blocks' pages; minute/hour/day rollups %.2f/%.2f/%.2f B; data.mdb file %.2f B |\n",
               h->plugs, h->interval_ms / 1000, h->days, (double) s.used_bytes / n, s.page_size, (double) s.block_bytes / n,
               (double) (s.used_bytes - s.rollup_bytes[STORE_MINUTE] - s.rollup_bytes[STORE_HOUR] - s.rollup_bytes[STORE_DAY]) / n,
               (double) s.rollup_bytes[STORE_MINUTE] / n, (double) s.rollup_bytes[STORE_HOUR] / n,
               (double) s.rollup_bytes[STORE_DAY] / n, (double) fst.st_size / n);
        return 0;
}

#define QUERY_REPEAT 2000

static int bench_queries(History *h) {
        double *hourly = calloc(QUERY_REPEAT, sizeof(double)), *daily = calloc(QUERY_REPEAT / 10, sizeof(double)),
               *daily_r = calloc(QUERY_REPEAT / 10, sizeof(double));
        int64_t week_from = T0, week_to = T0 + 7 * DAY_MS, check = 0;
        unsigned nd = QUERY_REPEAT / 10;
        size_t n = 0;
        int r;

        if (!hourly || !daily || !daily_r)
                return fail("alloc", -ENOMEM);

        for (unsigned k = 0; k < QUERY_REPEAT; k++) {
                StoreRollup *ru = NULL;
                double t = now_s();
                r = store_query_rollup(h->st, k % h->plugs, STORE_HOUR, week_from, week_to, SIZE_MAX, &ru, &n);
                hourly[k] = now_s() - t;
                if (r < 0)
                        return fail("query_rollup", r);
                free(ru);
        }
        if (n != 7 * 24)
                fprintf(stderr, "warning: %zu hourly rollups, expected 168\n", n);

        /* As the daemon answers "energy per day": one store_energy per day. */
        for (unsigned k = 0; k < nd; k++) {
                double t = now_s();
                for (unsigned i = 0; i < 100 && i < h->plugs; i++)
                        for (int64_t d = 0; d < 7; d++) {
                                int64_t e;
                                r = store_energy(h->st, i, week_from + d * DAY_MS, week_from + (d + 1) * DAY_MS, &e);
                                if (r < 0)
                                        return fail("energy", r);
                                check += e;
                        }
                daily[k] = now_s() - t;
        }
        /* The same figures read as day rollups, one range query per plug. */
        for (unsigned k = 0; k < nd; k++) {
                double t = now_s();
                for (unsigned i = 0; i < 100 && i < h->plugs; i++) {
                        StoreRollup *ru = NULL;
                        r = store_query_rollup(h->st, i, STORE_DAY, week_from, week_to, SIZE_MAX, &ru, &n);
                        if (r < 0)
                                return fail("query_rollup", r);
                        for (size_t j = 0; j < n; j++)
                                check -= ru[j].energy_mwh;
                        free(ru);
                }
                daily_r[k] = now_s() - t;
        }
        if (check != 0)
                fprintf(stderr, "warning: store_energy and day rollups disagree by %" PRId64 " mWh\n", check);

        qsort(hourly, QUERY_REPEAT, sizeof(double), cmp_double);
        qsort(daily, nd, sizeof(double), cmp_double);
        qsort(daily_r, nd, sizeof(double), cmp_double);
        printf("| hourly history, one plug, one week (168 hour rollups, store_query_rollup) | median **%.1f us**, p99 %.1f us (%u runs) |\n",
               hourly[QUERY_REPEAT / 2] * 1e6, hourly[QUERY_REPEAT * 99 / 100] * 1e6, QUERY_REPEAT);
        printf("| daily energy, %u plugs, one week (700 store_energy calls) | median **%.3f ms**, p99 %.3f ms (%u runs) |\n",
               MIN(h->plugs, 100u), daily[nd / 2] * 1e3, daily[nd * 99 / 100] * 1e3, nd);
        printf("| daily energy, %u plugs, one week (100 store_query_rollup day calls) | median **%.3f ms**, p99 %.3f ms (%u runs) |\n",
               MIN(h->plugs, 100u), daily_r[nd / 2] * 1e3, daily_r[nd * 99 / 100] * 1e3, nd);
        free(hourly);
        free(daily);
        free(daily_r);
        return 0;
}

int main(int argc, char **argv) {
        History week = { .plugs = 100, .days = 7, .interval_ms = 10000 };
        History fast = { .plugs = 10, .days = 7, .interval_ms = 1000 };
        int r;

        if (argc != 2) {
                fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
                return EXIT_FAILURE;
        }

        printf("| figure | result |\n| --- | --- |\n");
        r = bench_rounds(argv[1], "rounds1000", 1000, 300);
        if (r != 0)
                return r;
        r = bench_rounds(argv[1], "rounds100", 100, 300);
        if (r != 0)
                return r;

        r = load_history(argv[1], "week", &week);
        if (r != 0)
                return r;
        r = report_disk(argv[1], "week", &week);
        if (r != 0)
                return r;
        r = bench_queries(&week);
        if (r != 0)
                return r;
        week.st = store_free(week.st);

        r = load_history(argv[1], "fast", &fast);
        if (r != 0)
                return r;
        r = report_disk(argv[1], "fast", &fast);
        fast.st = store_free(fast.st);
        return r;
}
