/* SPDX-License-Identifier: MIT */

/* The store's unit tests, one binary as DESIGN.md's test levels ask (one
 * per module). Past 800 lines because each case builds its own series
 * and reference sums; they share the helpers at the top and nothing else,
 * so the file reads case by case. */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "store.h"
#include "tap.h"
#include "v2-fixture.h"

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
/* 2026-01-05 00:00 UTC, a Monday. */
#define T0 INT64_C(1767571200000)

static int64_t floor_to(int64_t t, int64_t unit) {
        return t / unit * unit;
}

static int64_t day_utc(int64_t ts, void *userdata) {
        return floor_to(ts, DAY_MS);
}

/* A fixed offset that is not a whole hour, so local days and UTC hours do
 * not line up. */
static int64_t day_plus_0530(int64_t ts, void *userdata) {
        const int64_t off = 5 * HOUR_MS + 30 * MINUTE_MS;
        return floor_to(ts + off, DAY_MS) - off;
}

/* A zone at UTC+1 that moves to UTC+2 at SPRING and back at FALL, both
 * in the middle of a local night, giving one 23 h and one 25 h day. */
#define SPRING (T0 + 1 * DAY_MS + 1 * HOUR_MS)
#define FALL (T0 + 3 * DAY_MS + 1 * HOUR_MS)

static int64_t dst_offset(int64_t ts) {
        return ts >= SPRING && ts < FALL ? 2 * HOUR_MS : HOUR_MS;
}

static int64_t day_dst(int64_t ts, void *userdata) {
        int64_t local_midnight = floor_to(ts + dst_offset(ts), DAY_MS);
        /* Transitions are not near midnight, so the offset at the midnight
         * is the offset an hour before the transition point could change. */
        int64_t guess = local_midnight - dst_offset(ts);
        return local_midnight - dst_offset(guess);
}

/* ---- helpers ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *dir) {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void) {
        /* xorshift64: repeatable noise. */
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        return rng_state;
}

typedef struct Series {
        StoreSample *s;
        size_t n;
} Series;

/* n samples of a device starting at t, step apart, with random gaps
 * (a missed poll leaves no row) when gaps is set. */
static Series series_make(uint32_t device, int64_t t, int64_t step, size_t n, bool gaps) {
        Series x = { .s = calloc(n, sizeof(StoreSample)), .n = n };
        int64_t energy = 1000000 + device;

        for (size_t i = 0; i < n; i++) {
                int64_t power = 50000 + (int64_t) (rnd() % 4000000);
                energy += power * step / HOUR_MS + (int64_t) (rnd() % 3);
                x.s[i] = (StoreSample) {
                        .device = device,
                        .ts_ms = t + (int64_t) (rnd() % 1000),
                        .power_mw = power,
                        .voltage_mv = 229000 + (int64_t) (rnd() % 4000),
                        .current_ma = power / 230 + (int64_t) (rnd() % 10),
                        .energy_mwh = energy,
                };
                t += step;
                if (gaps && rnd() % 50 == 0)
                        t += step * (int64_t) (1 + rnd() % 300);
        }
        return x;
}

/* Appends several series interleaved, one sample of each per round as the
 * daemon does per poll, 'rounds' rounds per call (one transaction). */
static int append_rounds(Store *st, Series *sv, size_t k, size_t rounds) {
        size_t longest = 0, m = 0;
        StoreSample *buf = calloc(k * rounds, sizeof(StoreSample));
        int r = 0;

        if (!buf)
                return -ENOMEM;
        for (size_t j = 0; j < k; j++)
                longest = MAX(longest, sv[j].n);
        for (size_t i = 0; i < longest && r >= 0; i++) {
                for (size_t j = 0; j < k; j++)
                        if (i < sv[j].n)
                                buf[m++] = sv[j].s[i];
                if ((i + 1) % rounds == 0 || i + 1 == longest) {
                        r = store_append(st, buf, m);
                        m = 0;
                }
        }
        free(buf);
        /* Queries show what is durable. */
        return r < 0 ? r : store_sync(st);
}

static int append_sync(Store *st, const StoreSample *x, size_t n) {
        int r = store_append(st, x, n);
        int k = store_sync(st);
        return r < 0 ? r : k < 0 ? k : r;
}

static bool sample_eq(const StoreSample *a, const StoreSample *b) {
        return a->device == b->device && a->ts_ms == b->ts_ms && a->power_mw == b->power_mw &&
               a->voltage_mv == b->voltage_mv && a->current_ma == b->current_ma &&
               a->energy_mwh == b->energy_mwh;
}

/* The store's samples in [from, to) equal the reference's. */
static bool query_matches(Store *st, const Series *ref, int64_t from, int64_t to) {
        StoreSample *got = NULL;
        size_t n = 0, j = 0;
        bool same = true;

        if (store_query_raw(st, ref->s[0].device, from, to, SIZE_MAX, &got, &n) < 0)
                return false;
        for (size_t i = 0; i < ref->n; i++) {
                if (ref->s[i].ts_ms < from || ref->s[i].ts_ms >= to)
                        continue;
                if (j >= n || !sample_eq(&got[j], &ref->s[i])) {
                        same = false;
                        break;
                }
                j++;
        }
        if (j != n)
                same = false;
        free(got);
        return same;
}

typedef int64_t (*DayFunc)(int64_t, void *);

static int64_t ref_period(StoreResolution res, DayFunc day, int64_t ts) {
        return res == STORE_MINUTE ? floor_to(ts, MINUTE_MS) : res == STORE_HOUR ? floor_to(ts, HOUR_MS) : day(ts, NULL);
}

#define GAP_MS (5 * MINUTE_MS)

static int64_t share(int64_t e, int64_t dt, int64_t u) {
        return (int64_t) ((__int128) e * u / dt);
}

/* Energy the store must report for [from, to) (both taken up to whole
 * minutes): each interval's energy spread over its time, a gap's at its
 * end sample. */
static int64_t ref_energy(const Series *x, int64_t from, int64_t to) {
        int64_t a = floor_to(from + MINUTE_MS - 1, MINUTE_MS), b = floor_to(to + MINUTE_MS - 1, MINUTE_MS), e = 0;
        for (size_t i = 1; i < x->n; i++) {
                const StoreSample *p = &x->s[i - 1], *c = &x->s[i];
                int64_t de = c->energy_mwh - p->energy_mwh, dt = c->ts_ms - p->ts_ms;
                if (dt > GAP_MS) {
                        if (c->ts_ms >= a && c->ts_ms < b)
                                e += de;
                        continue;
                }
                int64_t lo = MIN(MAX(a, p->ts_ms), c->ts_ms) - p->ts_ms, hi = MIN(MAX(b, p->ts_ms), c->ts_ms) - p->ts_ms;
                if (hi > lo)
                        e += share(de, dt, hi) - share(de, dt, lo);
        }
        return e;
}

typedef struct RefPeriod {
        int64_t start, energy, covered, pmin, pmax, psum, first, last;
        uint64_t count;
} RefPeriod;

static int64_t ref_next(StoreResolution res, DayFunc day, int64_t start) {
        return res == STORE_MINUTE ? start + MINUTE_MS : res == STORE_HOUR ? start + HOUR_MS : day(start + 36 * HOUR_MS, NULL);
}

static RefPeriod *ref_at(RefPeriod *p, size_t *n, int64_t start, int64_t power) {
        if (*n == 0 || p[*n - 1].start != start) {
                p[(*n)++] = (RefPeriod) { .start = start, .pmin = power, .pmax = power };
        }
        RefPeriod *q = &p[*n - 1];
        q->pmin = MIN(q->pmin, power);
        q->pmax = MAX(q->pmax, power);
        return q;
}

/* Every rollup of the resolution matches one recomputed from the samples
 * by the rule of store.h, and there is none for a period without data. */
static bool rollups_match(Store *st, const Series *x, StoreResolution res, DayFunc day) {
        StoreRollup *r = NULL;
        size_t n = 0, k = 0;
        RefPeriod *want = calloc(x->n * 8 + 16, sizeof(RefPeriod));
        bool same = true;

        if (store_query_rollup(st, x->s[0].device, res, 0, INT64_MAX, SIZE_MAX, &r, &n) < 0)
                return false;
        for (size_t i = 0; i < x->n; i++) {
                const StoreSample *c = &x->s[i], *p = i > 0 ? &x->s[i - 1] : NULL;
                int64_t de = p ? c->energy_mwh - p->energy_mwh : 0;
                bool gap = p && c->ts_ms - p->ts_ms > GAP_MS;
                if (p && !gap) {
                        int64_t dt = c->ts_ms - p->ts_ms, start = ref_period(res, day, p->ts_ms);
                        for (int64_t t = p->ts_ms; t < c->ts_ms;) {
                                int64_t next = ref_next(res, day, start), end = MIN(next, c->ts_ms);
                                RefPeriod *q = ref_at(want, &k, start, c->power_mw);
                                q->energy += share(de, dt, end - p->ts_ms) - share(de, dt, t - p->ts_ms);
                                q->covered += end - t;
                                t = end;
                                start = next;
                        }
                }
                RefPeriod *q = ref_at(want, &k, ref_period(res, day, c->ts_ms), c->power_mw);
                if (q->count == 0)
                        q->first = c->ts_ms;
                q->count++;
                q->last = c->ts_ms;
                q->psum += c->power_mw;
                if (gap)
                        q->energy += de;
        }
        for (size_t i = 0; i < k && same; i++) {
                const RefPeriod *q = &want[i];
                StoreRollup w = {
                        .period_start_ms = q->start,
                        .energy_mwh = q->energy,
                        .power_min_mw = q->pmin,
                        .power_avg_mw = q->covered > 0 ? (int64_t) ((__int128) q->energy * HOUR_MS / q->covered)
                                                       : q->psum / (int64_t) q->count,
                        .power_max_mw = q->pmax,
                        .count = q->count,
                        .covered_ms = q->covered,
                        .first_ts_ms = q->count > 0 ? q->first : q->start,
                        .last_ts_ms = q->count > 0 ? q->last : q->start,
                };
                if (i >= n || memcmp(&r[i], &w, sizeof w) != 0) {
                        diag("rollup %zu of resolution %d differs (period %" PRId64 ")", i, res, q->start);
                        if (i < n)
                                diag("got e=%" PRId64 " cov=%" PRId64 " avg=%" PRId64 " n=%" PRIu64 ", want e=%" PRId64 " cov=%" PRId64 " avg=%" PRId64 " n=%" PRIu64,
                                     r[i].energy_mwh, r[i].covered_ms, r[i].power_avg_mw, r[i].count, w.energy_mwh,
                                     w.covered_ms, w.power_avg_mw, w.count);
                        same = false;
                }
        }
        if (k != n)
                same = false;
        free(want);
        free(r);
        return same;
}

static int64_t rollup_energy_sum(Store *st, uint32_t device, StoreResolution res) {
        StoreRollup *r = NULL;
        size_t n = 0;
        int64_t e = 0;

        if (store_query_rollup(st, device, res, 0, INT64_MAX, SIZE_MAX, &r, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                e += r[i].energy_mwh;
        free(r);
        return e;
}

static int compact_all(Store *st, int64_t now) {
        return store_checkpoint(st);
}

static char *make_tmpdir(void) {
        char *d = strdup("/tmp/test-store-XXXXXX");
        return mkdtemp(d) ? d : NULL;
}

/* ---- tests ---- */

static void test_roundtrip(const char *dir) {
        Store *st = NULL;
        Series sv[3];
        StoreSample last, *got = NULL;
        size_t n;

        ok(store_open(dir, day_utc, NULL, &st) == 0, "open a new store");
        is_int(store_open(dir, day_utc, NULL, &(Store *) { NULL }), -EBUSY, "a second open in one process is refused");
        for (uint32_t d = 0; d < 3; d++)
                sv[d] = series_make(d + 1, T0 + d, 10000, 400, false);
        ok(append_rounds(st, sv, 3, 1) == 0, "append 400 rounds of 3 devices, one call each");
        for (uint32_t d = 0; d < 3; d++)
                ok(query_matches(st, &sv[d], 0, INT64_MAX), "device %u reads back whole", d + 1);
        ok(query_matches(st, &sv[1], sv[1].s[17].ts_ms, sv[1].s[203].ts_ms), "a sub-range reads back, end excluded");
        ok(store_last_sample(st, 3, &last) == 0 && sample_eq(&last, &sv[2].s[399]), "last sample");
        is_int(store_last_sample(st, 9, &last), -ENOENT, "no last sample for an unknown device");
        ok(store_query_raw(st, 9, 0, INT64_MAX, SIZE_MAX, &got, &n) == 0 && n == 0, "an unknown device has no samples");
        free(got);

        StoreSample bad[2] = { sv[0].s[399], sv[0].s[399] };
        bad[0].device = 7;
        bad[1].ts_ms -= 1;
        is_int(append_sync(st, bad, 2), 1, "a sample older than the stored one is dropped alone");
        ok(store_last_sample(st, 7, &last) == 0 && sample_eq(&last, &bad[0]), "and the rest of its round is kept");
        ok(store_last_sample(st, 1, &last) == 0 && sample_eq(&last, &sv[0].s[399]), "the device keeps its newer sample");
        bad[1].ts_ms += 2;
        bad[1].energy_mwh -= 1;
        is_int(append_sync(st, &bad[1], 1), 1, "a decreasing cumulative energy is dropped");
        bad[1].energy_mwh += 1;
        bad[1].power_mw = INT64_C(1) << 50;
        is_int(append_sync(st, &bad[1], 1), 1, "an absurd power is dropped");
        ok(query_matches(st, &sv[0], 0, INT64_MAX), "device 1 unchanged by its bad samples");

        store_free(st);
        for (uint32_t d = 0; d < 3; d++)
                free(sv[d].s);
}

static void test_compaction_and_rollups(const char *dir, DayFunc day, const char *what) {
        Store *st = NULL;
        Series sv[2];
        StoreStats stats;

        /* Checkpoints only when asked. */
        ok(store_open_with(dir, &(StoreOptions) { .day_start = day, .checkpoint_interval_ms = 3650 * DAY_MS }, &st) == 0,
           "%s: open", what);
        sv[0] = series_make(1, T0 + 123, 7000, 4000, true);
        sv[1] = series_make(2, T0 + 40000, 13000, 3000, true);
        Series half[2] = { { sv[0].s, 2000 }, { sv[1].s, 1500 } }, rest[2] = { { sv[0].s + 2000, 2000 }, { sv[1].s + 1500, 1500 } };
        ok(append_rounds(st, half, 2, 10) == 0, "%s: append with gaps", what);
        ok(store_checkpoint(st) == 0, "%s: checkpoint the first half", what);
        ok(append_rounds(st, rest, 2, 10) == 0, "%s: append the rest", what);
        ok(store_stats(st, &stats) == 0 && stats.blocks > 0 && stats.tail_samples > 0,
           "%s: blocks and tail both present", what);
        for (uint32_t d = 0; d < 2; d++)
                ok(query_matches(st, &sv[d], 0, INT64_MAX), "%s: device %u identical across blocks and tail", what, d + 1);

        bool ranges = true;
        for (unsigned i = 0; i < 200 && ranges; i++) {
                const Series *x = &sv[i % 2];
                int64_t a = x->s[0].ts_ms - HOUR_MS + (int64_t) (rnd() % (uint64_t) (x->s[x->n - 1].ts_ms - x->s[0].ts_ms + 2 * HOUR_MS));
                int64_t b = a + (int64_t) (rnd() % (6 * HOUR_MS));
                ranges = query_matches(st, x, a, b);
        }
        ok(ranges, "%s: 200 random ranges read the same as the reference", what);

        for (StoreResolution res = 0; res < _STORE_RESOLUTION_MAX; res++)
                for (uint32_t d = 0; d < 2; d++) {
                        const Series *x = &sv[d];
                        ok(rollups_match(st, x, res, day), "%s: device %u resolution %d rollups match the samples", what, d + 1, res);
                        is_int(rollup_energy_sum(st, d + 1, res), x->s[x->n - 1].energy_mwh - x->s[0].energy_mwh,
                               "%s: device %u resolution %d energy sums to the cumulative delta", what, d + 1, res);
                }

        bool energy = true;
        for (unsigned i = 0; i < 300 && energy; i++) {
                const Series *x = &sv[i % 2];
                int64_t span = x->s[x->n - 1].ts_ms - x->s[0].ts_ms;
                int64_t a = x->s[0].ts_ms - HOUR_MS + (int64_t) (rnd() % (uint64_t) span);
                int64_t b = a + (int64_t) (rnd() % (uint64_t) span);
                /* Every third range starts on a local midnight, to use day rollups. */
                if (i % 3 == 0)
                        a = day(a, NULL);
                int64_t got = -1;
                energy = store_energy(st, x->s[0].device, a, b, &got) == 0 && got == ref_energy(x, a, b);
                if (!energy)
                        diag("range [%" PRId64 ", %" PRId64 "): got %" PRId64 " want %" PRId64, a, b, got, ref_energy(x, a, b));
        }
        ok(energy, "%s: energy of 300 random ranges equals the cumulative delta", what);

        int64_t end = MAX(sv[0].s[3999].ts_ms, sv[1].s[2999].ts_ms) + 2 * HOUR_MS;
        ok(compact_all(st, end) == 0 && store_stats(st, &stats) == 0 && stats.tail_samples == 0,
           "%s: a checkpoint of everything leaves no tail", what);
        is_int(stats.block_samples, 7000, "%s: blocks hold every sample", what);
        for (uint32_t d = 0; d < 2; d++)
                ok(query_matches(st, &sv[d], 0, INT64_MAX), "%s: device %u identical from blocks only", what, d + 1);

        /* A device coming back after its last hour was packed. */
        StoreSample more = sv[1].s[2999];
        more.ts_ms = end + 1000;
        more.energy_mwh += 5;
        ok(append_sync(st, &more, 1) == 0, "%s: append after full compaction", what);
        int64_t e = -1;
        ok(store_energy(st, 2, floor_to(more.ts_ms, MINUTE_MS), more.ts_ms + 1, &e) == 0 && e == 5,
           "%s: the delta from a packed sample lands in the new period", what);

        store_free(st);
        free(sv[0].s);
        free(sv[1].s);
}

static void test_gaps(const char *dir) {
        Store *st = NULL;
        StoreSample x[3] = {
                { .device = 4, .ts_ms = T0 + 10 * MINUTE_MS, .power_mw = 1000, .energy_mwh = 100 },
                { .device = 4, .ts_ms = T0 + 11 * MINUTE_MS, .power_mw = 3000, .energy_mwh = 110 },
                /* Two hours missed: no rows, no zeros; the whole delta since
                 * the last sample belongs to the period of this one. */
                { .device = 4, .ts_ms = T0 + 191 * MINUTE_MS, .power_mw = 2000, .energy_mwh = 500 },
        };
        StoreRollup *r = NULL;
        size_t n = 0;

        ok(store_open(dir, day_utc, NULL, &st) == 0, "gaps: open");
        for (size_t i = 0; i < 3; i++)
                ok(append_sync(st, &x[i], 1) == 0, "gaps: append %zu", i);
        ok(store_query_rollup(st, 4, STORE_HOUR, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 2, "gaps: two hour rollups, none for the gap");
        if (n == 2) {
                is_int(r[0].energy_mwh, 10, "gaps: first hour energy");
                is_int(r[0].power_avg_mw, 600, "gaps: average = energy over the covered minute");
                is_int(r[1].covered_ms, 0, "gaps: a gap covers no time");
                is_int(r[1].power_avg_mw, 2000, "gaps: without covered time, the sample's power");
                is_int(r[1].period_start_ms, T0 + 3 * HOUR_MS, "gaps: second hour after the gap");
                is_int(r[1].energy_mwh, 390, "gaps: the delta across the gap counts once, in the later period");
        }
        free(r);
        ok(store_query_rollup(st, 4, STORE_MINUTE, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 3, "gaps: three minute rollups");
        free(r);
        int64_t e = -1;
        ok(store_energy(st, 4, T0, T0 + DAY_MS, &e) == 0 && e == 400, "gaps: day energy");
        store_free(st);
}

static void test_dst(const char *dir) {
        Store *st = NULL;
        Series x = series_make(5, T0 - 2 * HOUR_MS, 5 * MINUTE_MS, 5 * 24 * 12, false);
        StoreRollup *r = NULL, *h = NULL;
        size_t n = 0, nh = 0;

        ok(store_open(dir, day_dst, NULL, &st) == 0, "dst: open");
        ok(append_rounds(st, &x, 1, 10) == 0, "dst: append five days of 5-minute samples");
        ok(store_query_rollup(st, 5, STORE_DAY, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 6, "dst: six local days touched");
        if (n == 6) {
                /* Days in the local zone: the spring day is 23 h, the fall day 25 h. */
                is_int(r[3].period_start_ms - r[2].period_start_ms, 23 * HOUR_MS, "dst: the spring day is 23 h");
                is_int(r[5].period_start_ms - r[4].period_start_ms, 25 * HOUR_MS, "dst: the fall day is 25 h");
                is_int(r[2].count, 23 * 12, "dst: the spring day holds 23 h of samples");
                is_int(r[4].count, 25 * 12, "dst: the fall day holds 25 h of samples");
                ok(store_query_rollup(st, 5, STORE_HOUR, r[2].period_start_ms, r[3].period_start_ms, SIZE_MAX, &h, &nh) == 0 && nh == 23,
                   "dst: 23 hour rollups in the spring day");
                free(h);
                bool each = true;
                for (size_t i = 0; i + 1 < n; i++) {
                        int64_t e = -1;
                        each = each && store_energy(st, 5, r[i].period_start_ms, r[i + 1].period_start_ms, &e) == 0 &&
                               e == r[i].energy_mwh && e == ref_energy(&x, r[i].period_start_ms, r[i + 1].period_start_ms);
                }
                ok(each, "dst: energy of each local day equals its rollup and the reference");
        }
        ok(rollups_match(st, &x, STORE_DAY, day_dst), "dst: day rollups match the samples");
        int64_t e = -1;
        ok(store_energy(st, 5, 0, INT64_MAX / 2, &e) == 0 && e == x.s[x.n - 1].energy_mwh - x.s[0].energy_mwh,
           "dst: total energy is the cumulative delta");
        free(r);
        store_free(st);
        free(x.s);
}

static void test_retention_delete_reopen(const char *dir) {
        Store *st = NULL;
        Series sv[2] = { series_make(1, T0, 10000, 3000, false), series_make(2, T0, 10000, 3000, false) };
        StoreRollup *before[3], *after = NULL;
        size_t nb[3], na = 0;
        StoreSample *got = NULL, last;
        size_t n = 0;
        int r;

        ok(store_open(dir, day_utc, NULL, &st) == 0, "retention: open");
        ok(append_rounds(st, sv, 2, 10) == 0, "retention: append");
        ok(compact_all(st, T0 + 5 * HOUR_MS) == 0, "retention: compact five hours");
        for (StoreResolution res = 0; res < _STORE_RESOLUTION_MAX; res++)
                store_query_rollup(st, 1, res, 0, INT64_MAX, SIZE_MAX, &before[res], &nb[res]);

        int64_t ranges[40][3];
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++) {
                ranges[i][0] = T0 + (int64_t) (rnd() % (9 * HOUR_MS));
                ranges[i][1] = ranges[i][0] + (int64_t) (rnd() % (3 * HOUR_MS));
                store_energy(st, 1, ranges[i][0], ranges[i][1], &ranges[i][2]);
        }

        int64_t cutoff = T0 + 5 * HOUR_MS + 30 * MINUTE_MS;
        while ((r = store_expire(st, cutoff)) > 0)
                ;
        is_int(r, 0, "retention: expire");
        ok(store_query_raw(st, 1, 0, INT64_MAX, SIZE_MAX, &got, &n) == 0 && n > 0 &&
           got[0].ts_ms >= floor_to(cutoff, HOUR_MS),
           "retention: no raw sample of an hour before the cutoff");
        free(got);
        Series tail = { .s = sv[0].s, .n = sv[0].n };
        ok(query_matches(st, &tail, cutoff, INT64_MAX), "retention: samples after the cutoff intact");
        for (StoreResolution res = 0; res < _STORE_RESOLUTION_MAX; res++) {
                ok(store_query_rollup(st, 1, res, 0, INT64_MAX, SIZE_MAX, &after, &na) == 0 && na == nb[res] &&
                   memcmp(after, before[res], na * sizeof(StoreRollup)) == 0,
                   "retention: resolution %d rollups kept", res);
                free(after);
                free(before[res]);
        }

        bool same = true;
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++) {
                int64_t e = -1;
                same = same && store_energy(st, 1, ranges[i][0], ranges[i][1], &e) == 0 && e == ranges[i][2] &&
                       e == ref_energy(&sv[0], ranges[i][0], ranges[i][1]);
        }
        ok(same, "retention: energy of 40 random ranges unchanged");

        /* Expire everything: the newest sample still anchors the energy. */
        while (store_expire(st, INT64_MAX / 2) > 0)
                ;
        ok(store_query_raw(st, 1, 0, INT64_MAX, SIZE_MAX, &got, &n) == 0 && n == 0, "retention: all raw data expired");
        free(got);
        ok(store_last_sample(st, 1, &last) == 0 && sample_eq(&last, &sv[0].s[2999]), "retention: last sample kept");

        ok(store_delete_device(st, 2) == 0, "delete device 2");
        is_int(store_last_sample(st, 2, &last), -ENOENT, "delete: no last sample");
        ok(store_query_rollup(st, 2, STORE_MINUTE, 0, INT64_MAX, SIZE_MAX, &after, &na) == 0 && na == 0, "delete: no rollups");
        free(after);
        ok(rollup_energy_sum(st, 1, STORE_HOUR) == sv[0].s[2999].energy_mwh - sv[0].s[0].energy_mwh,
           "delete: device 1 untouched");

        store_free(st);
        st = NULL;
        ok(store_open(dir, day_utc, NULL, &st) == 0, "reopen after close");
        ok(store_last_sample(st, 1, &last) == 0 && sample_eq(&last, &sv[0].s[2999]), "reopen: last sample");
        ok(rollups_match(st, &sv[0], STORE_MINUTE, day_utc), "reopen: minute rollups intact");
        is_int(store_last_sample(st, 2, &last), -ENOENT, "reopen: deleted device stays deleted");
        store_free(st);
        free(sv[0].s);
        free(sv[1].s);
}

static void test_map_growth(const char *dir) {
        Store *st = NULL;
        Series sv[8];
        char path[512];
        struct stat s;

        /* A new environment starts with LMDB's 1 MiB map; this data needs
         * several times that. */
        ok(store_open(dir, day_utc, NULL, &st) == 0, "growth: open");
        for (uint32_t d = 0; d < 8; d++)
                sv[d] = series_make(d, T0, 1000, 20000, false);
        int r = append_rounds(st, sv, 8, 50);
        is_int(r, 0, "growth: 160000 samples appended");
        is_int(store_checkpoint(st), 0, "growth: they fit after growing the map");
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        ok(stat(path, &s) == 0 && s.st_size > 1024 * 1024, "growth: data file beyond the initial map");
        bool all = true;
        for (uint32_t d = 0; d < 8; d++)
                all = all && query_matches(st, &sv[d], 0, INT64_MAX);
        ok(all, "growth: everything reads back");
        ok(compact_all(st, INT64_MAX / 2) == 0, "growth: compaction");
        all = true;
        for (uint32_t d = 0; d < 8; d++) {
                all = all && query_matches(st, &sv[d], 0, INT64_MAX);
                free(sv[d].s);
        }
        ok(all, "growth: everything reads back after compaction");
        store_free(st);
}


/* The example: the load changes inside a minute; a minute's
 * average must be its energy over the time covered, and the energy of
 * the interval crossing the minute's end split by time. */
static void test_time_split(const char *dir) {
        Store *st = NULL;
        const int64_t m = T0 + 7 * MINUTE_MS;
        StoreSample x[3] = {
                { .device = 3, .ts_ms = m, .power_mw = 0, .energy_mwh = 1000 },
                { .device = 3, .ts_ms = m + 30000, .power_mw = 0, .energy_mwh = 1000 },
                /* 72 W for 60 s: 1.2 Wh, half of it in each minute. */
                { .device = 3, .ts_ms = m + 90000, .power_mw = 72000, .energy_mwh = 2200 },
        };
        StoreRollup *r = NULL;
        size_t n = 0;

        ok(store_open(dir, day_utc, NULL, &st) == 0, "split: open");
        ok(append_sync(st, x, 3) == 0, "split: append");
        ok(store_query_rollup(st, 3, STORE_MINUTE, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 2, "split: two minutes");
        if (n == 2) {
                is_int(r[0].energy_mwh, 600, "split: the first minute has its half of the crossing interval");
                is_int(r[0].covered_ms, 60000, "split: the first minute is covered whole");
                is_int(r[0].power_avg_mw, 36000, "split: its average is its energy over its time (36 W)");
                is_int(r[1].energy_mwh, 600, "split: the second minute has the other half");
                is_int(r[1].covered_ms, 30000, "split: the second minute is covered 30 s");
                is_int(r[1].power_avg_mw, 72000, "split: its average is 72 W");
        }
        free(r);
        int64_t e = -1;
        ok(store_energy(st, 3, m, m + MINUTE_MS, &e) == 0 && e == 600, "split: energy of the first minute alone");
        /* The same after a checkpoint, from LMDB. */
        ok(store_checkpoint(st) == 0, "split: checkpoint");
        ok(store_query_rollup(st, 3, STORE_MINUTE, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 2 &&
           r[0].energy_mwh == 600 && r[0].power_avg_mw == 36000 && r[1].power_avg_mw == 72000,
           "split: the same from the database");
        free(r);
        ok(store_query_rollup(st, 3, STORE_HOUR, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 1 &&
           r[0].energy_mwh == 1200 && r[0].covered_ms == 90000 && r[0].power_avg_mw == 48000,
           "split: the hour: 1.2 Wh over 90 s is 48 W");
        free(r);
        store_free(st);
}

/* A query whose answer passes the caller's maximum fails before it is
 * decoded. */
static void test_limits(const char *dir) {
        Store *st = NULL;
        Series x = series_make(6, T0, 1000, 20000, false);
        StoreSample *got = NULL;
        StoreRollup *r = NULL;
        size_t n = 0;

        ok(store_open(dir, day_utc, NULL, &st) == 0, "limits: open");
        ok(append_rounds(st, &x, 1, 100) == 0 && store_checkpoint(st) == 0, "limits: 20000 samples packed");
        is_int(store_query_raw(st, 6, 0, INT64_MAX, 1000, &got, &n), -E2BIG, "limits: raw over the maximum is E2BIG");
        ok(store_query_raw(st, 6, x.s[100].ts_ms, x.s[1100].ts_ms, 1000, &got, &n) == 0 && n == 1000,
           "limits: exactly the maximum is answered");
        free(got);
        is_int(store_query_rollup(st, 6, STORE_MINUTE, 0, INT64_MAX, 100, &r, &n), -E2BIG,
               "limits: minute rollups over the maximum are E2BIG");
        ok(store_query_rollup(st, 6, STORE_HOUR, 0, INT64_MAX, 100, &r, &n) == 0 && n == 6,
           "limits: six hours fit in 100");
        free(r);
        is_int(store_query_rollup(st, 6, STORE_HOUR, 0, INT64_MAX, 5, &r, &n), -E2BIG, "limits: but not in 5");
        store_free(st);
        free(x.s);
}

static char *log_segment(const char *dir) {
        char cmd[600], *path = NULL;
        size_t size = 0;
        snprintf(cmd, sizeof cmd, "ls %s/log.* | tail -1", dir);
        FILE *f = popen(cmd, "r");
        if (f && getline(&path, &size, f) > 0)
                path[strcspn(path, "\n")] = 0;
        if (f)
                pclose(f);
        return path;
}

/* A record torn by a crash is discarded at open, and only it. */
static void test_torn_tail(const char *dir) {
        StoreOptions o = { .day_start = day_utc, .checkpoint_interval_ms = 3650 * DAY_MS };
        Series x = series_make(8, T0, 10000, 50, false);
        int status = -1;
        pid_t pid = fork();

        if (pid == 0) {
                Store *st = NULL;
                if (store_open_with(dir, &o, &st) < 0)
                        _exit(2);
                for (size_t i = 0; i < x.n; i++)
                        if (append_sync(st, &x.s[i], 1) != 0)
                                _exit(3);
                raise(SIGKILL);
        }
        waitpid(pid, &status, 0);
        ok(WIFSIGNALED(status), "torn: the writer was killed");

        /* Tear the last record: flip a byte of its payload. */
        _cleanup_free_ char *seg = log_segment(dir);
        uint8_t *data = malloc(4u << 20);
        int fd = seg ? open(seg, O_RDWR) : -1;
        ssize_t size = fd >= 0 ? pread(fd, data, 4u << 20, 0) : -1;
        size_t off = 0, last = 0, end = 0;
        while (size > 0 && off + 16 <= (size_t) size) {
                uint32_t len = data[off] | data[off + 1] << 8 | data[off + 2] << 16 | (uint32_t) data[off + 3] << 24;
                if (len == 0 && off % 4096 != 0) {
                        /* After a sync the next record starts on the next page. */
                        off = (off + 4095) / 4096 * 4096;
                        continue;
                }
                if (len == 0)
                        break;
                last = off;
                off += 16 + len;
                end = off;
        }
        ok(fd >= 0 && end > 0, "torn: found the log's records");
        if (fd >= 0 && end > 0) {
                uint8_t b = data[end - 1] ^ 0x5a;
                ok(pwrite(fd, &b, 1, (off_t) end - 1) == 1, "torn: corrupt the last record (at %zu)", last);
        }
        if (fd >= 0)
                close(fd);
        free(data);

        Store *st = NULL;
        Series kept = { x.s, x.n - 1 };
        StoreSample last_s;
        ok(store_open_with(dir, &o, &st) == 0, "torn: reopen");
        ok(query_matches(st, &kept, 0, INT64_MAX), "torn: every record before the torn one replayed");
        ok(store_last_sample(st, 8, &last_s) == 0 && sample_eq(&last_s, &x.s[x.n - 2]), "torn: the torn one is gone");
        ok(append_sync(st, &x.s[x.n - 1], 1) == 0, "torn: appending goes on over it");
        store_free(st);
        st = NULL;
        ok(store_open_with(dir, &o, &st) == 0 && query_matches(st, &x, 0, INT64_MAX), "torn: and survives a reopen");
        store_free(st);
        free(x.s);
}

/* Checkpoints run on the writer thread while queries run here: no sample
 * is missed or counted twice across one. */
static void test_concurrent(const char *dir) {
        /* A small tail: a checkpoint every few rounds. */
        StoreOptions o = { .day_start = day_utc, .tail_max_bytes = 2048 };
        Series sv[4];
        Store *st = NULL;
        bool good = true;
        size_t i;

        ok(store_open_with(dir, &o, &st) == 0, "concurrent: open");
        for (uint32_t d = 0; d < 4; d++)
                sv[d] = series_make(20 + d, T0, 5000, 1500, false);
        for (i = 0; i < 1500 && good; i++) {
                StoreSample round[4];
                for (uint32_t d = 0; d < 4; d++)
                        round[d] = sv[d].s[i];
                good = append_sync(st, round, 4) == 0;
                const Series *x = &sv[i % 4];
                Series upto = { x->s, i + 1 };
                StoreSample *got = NULL;
                size_t n = 0;
                int64_t e = -1;
                good = good && store_query_raw(st, x->s[0].device, 0, INT64_MAX, SIZE_MAX, &got, &n) == 0 && n == i + 1;
                free(got);
                good = good && store_energy(st, x->s[0].device, 0, INT64_MAX / 2, &e) == 0 &&
                       e == ref_energy(&upto, 0, INT64_MAX / 2);
                if (i % 100 == 99)
                        good = good && rollups_match(st, &upto, STORE_MINUTE, day_utc) &&
                               rollups_match(st, &upto, STORE_HOUR, day_utc);
        }
        StoreStats stats;
        ok(good, "concurrent: every query saw every sample once (%zu rounds)", i);
        ok(store_stats(st, &stats) == 0 && stats.blocks > 100, "concurrent: checkpoints happened meanwhile (%" PRIu64 " blocks)", stats.blocks);
        store_free(st);
        for (uint32_t d = 0; d < 4; d++)
                free(sv[d].s);
}

/* The map grows on MDB_MAP_FULL up to its cap, then the store says so and
 * keeps the readings in its log. */
static void test_map_cap(const char *dir) {
        StoreOptions o = { .day_start = day_utc, .map_max_bytes = 2u << 20 };
        Series sv[8];
        Store *st = NULL;
        int r = 0;

        ok(store_open_with(dir, &o, &st) == 0, "cap: open with a 2 MiB cap");
        for (uint32_t d = 0; d < 8; d++)
                sv[d] = series_make(d, T0, 1000, 30000, false);
        r = append_rounds(st, sv, 8, 100);
        is_int(r, 0, "cap: 240000 samples appended");
        is_int(store_checkpoint(st), -EFBIG, "cap: the checkpoint fails with EFBIG at the cap");
        is_int(store_state(st), -EFBIG, "cap: and the store says so");
        ok(query_matches(st, &sv[3], 0, INT64_MAX), "cap: the readings are still all there");
        store_free(st);
        st = NULL;
        o.map_max_bytes = 0;
        ok(store_open_with(dir, &o, &st) == 0, "cap: reopen without the cap");
        is_int(store_checkpoint(st), 0, "cap: the log replays and checkpoints");
        bool all = true;
        for (uint32_t d = 0; d < 8; d++) {
                all = all && query_matches(st, &sv[d], 0, INT64_MAX);
                free(sv[d].s);
        }
        ok(all, "cap: nothing lost");
        store_free(st);
}

/* The energy account's state goes with the samples and comes back. */
static void test_counters(const char *dir) {
        Store *st = NULL;
        StoreSample x = { .device = 9, .ts_ms = T0, .power_mw = 5000, .energy_mwh = 77 };
        StoreCounter c = { .device = 9, .ts_ms = T0, .cumulative_mwh = 77, .counter_mwh = 12000, .lo_mwh = 12100,
                           .hi_mwh = 12400, .power_mw = 5000 }, got;
        int status = -1;
        pid_t pid = fork();

        if (pid == 0) {
                if (store_open(dir, day_utc, NULL, &st) < 0 || store_append_round(st, &x, 1, &c, 1) != 0 ||
                    store_sync(st) < 0)
                        _exit(2);
                raise(SIGKILL);
        }
        waitpid(pid, &status, 0);
        ok(WIFSIGNALED(status) && store_open(dir, day_utc, NULL, &st) == 0, "counters: reopen after a kill");
        ok(store_counter(st, 9, &got) == 0 && memcmp(&got, &c, sizeof c) == 0, "counters: the state is replayed");
        ok(store_checkpoint(st) == 0, "counters: checkpoint");
        store_free(st);
        st = NULL;
        ok(store_open(dir, day_utc, NULL, &st) == 0 && store_counter(st, 9, &got) == 0 && memcmp(&got, &c, sizeof c) == 0,
           "counters: and read back from the database");
        is_int(store_counter(st, 10, &got), -ENOENT, "counters: none for another device");
        store_free(st);
}


/* A full disk: the store says so, keeps the rounds it can in memory,
 * refuses the rest, never loses what it took, and goes on by itself when
 * space comes back. On a 4 MiB tmpfs in a private mount namespace. */
enum {
        ENOSPC_SETUP = 1 << 0,
        ENOSPC_SEEN = 1 << 1,
        ENOSPC_REFUSED = 1 << 2,
        ENOSPC_RECOVERED = 1 << 3,
        ENOSPC_INTACT = 1 << 4,
        ENOSPC_REOPEN = 1 << 5,
};

static int enospc_child(const char *dir) {
        char path[512], fill[512];
        StoreOptions o = { .day_start = day_utc, .tail_max_bytes = 8192, .pending_max_bytes = 65536,
                           .log_segment_bytes = 128 * 1024 };
        /* More than the space left holds however the writer keeps up (40000
         * fitted now and then, with LMDB reusing the pages it freed). */
        Series x = series_make(30, T0, 1000, 150000, false);
        Store *st = NULL;
        size_t accepted = 0;
        int result = 0, r, last_r = 0, last_state = 0;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", dir, "tmpfs", 0, "size=4m") < 0)
                return 0;
        snprintf(path, sizeof path, "%s/store", dir);
        snprintf(fill, sizeof fill, "%s/fill", dir);
        if (store_open_with(path, &o, &st) < 0)
                return 0;
        /* Leaves about 300 KiB. */
        int fd = open(fill, O_WRONLY | O_CREAT, 0600);
        static uint8_t junk[4096];
        for (size_t done = 0; fd >= 0 && done < 3500 * 1024; done += sizeof junk)
                if (write(fd, junk, sizeof junk) != sizeof junk)
                        break;
        if (fd < 0)
                return 0;
        result |= ENOSPC_SETUP;

        for (size_t i = 0; i < x.n; i++) {
                r = store_append(st, &x.s[i], 1);
                if (r == 0 && accepted == i)
                        accepted++;
                if (store_state(st) == -ENOSPC)
                        result |= ENOSPC_SEEN;
                last_r = r;
                last_state = store_state(st);
                if (r == -ENOSPC) {
                        result |= ENOSPC_REFUSED;
                        break;
                }
                if (r < 0)
                        break;
        }
        close(fd);
        unlink(fill);
        for (unsigned k = 0; k < 40; k++) {
                if (store_checkpoint(st) == 0 && store_state(st) == 0) {
                        result |= ENOSPC_RECOVERED;
                        break;
                }
                usleep(250 * 1000);
        }
        Series kept = { x.s, accepted };
        if (accepted > 0 && query_matches(st, &kept, 0, INT64_MAX))
                result |= ENOSPC_INTACT;
        store_free(st);
        st = NULL;
        if (store_open_with(path, &o, &st) == 0 && query_matches(st, &kept, 0, INT64_MAX))
                result |= ENOSPC_REOPEN;
        store_free(st);
        free(x.s);
        printf("# %zu samples taken before the store refused more (%d, state %d)\n", accepted, last_r, last_state);
        fflush(stdout);
        return result;
}

static void test_enospc(const char *dir) {
        int status = -1, res;
        pid_t pid = fork();

        if (pid == 0)
                _exit(enospc_child(dir));
        waitpid(pid, &status, 0);
        res = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
        ok(res & ENOSPC_SETUP, "enospc: a nearly full 4 MiB tmpfs");
        ok(res & ENOSPC_SEEN, "enospc: the store reports ENOSPC");
        ok(res & ENOSPC_REFUSED, "enospc: past its memory bound it refuses rounds, without crashing");
        ok(res & ENOSPC_RECOVERED, "enospc: it writes again by itself once space is freed");
        ok(res & ENOSPC_INTACT, "enospc: every round it took is there");
        ok(res & ENOSPC_REOPEN, "enospc: and after a reopen");
}


/* ---- a version 1 store, written as the previous format did ---- */

static uint8_t *v1_uv(uint8_t *p, uint64_t v) {
        while (v >= 0x80) {
                *p++ = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t) v;
        return p;
}

static uint8_t *v1_zz(uint8_t *p, int64_t v) {
        return v1_uv(p, ((uint64_t) v << 1) ^ (uint64_t) (v >> 63));
}

static void v1_key(uint8_t k[12], uint32_t d, int64_t t) {
        for (unsigned i = 0; i < 4; i++)
                k[i] = (uint8_t) (d >> (24 - 8 * i));
        for (unsigned i = 0; i < 8; i++)
                k[4 + i] = (uint8_t) ((uint64_t) t >> (56 - 8 * i));
}

static int v1_put(MDB_txn *txn, MDB_dbi db, const void *k, size_t ks, const uint8_t *v, const uint8_t *end) {
        MDB_val key = { .mv_size = ks, .mv_data = (void *) k }, val = { .mv_size = (size_t) (end - v), .mv_data = (void *) v };
        return mdb_put(txn, db, &key, &val, 0);
}

static uint8_t *v1_agg(uint8_t *p, int64_t start, uint64_t count, int64_t e, int64_t pmin, int64_t pmax, int64_t psum,
                       int64_t first, int64_t last) {
        *p++ = 1;
        p = v1_uv(p, count);
        p = v1_zz(p, e);
        p = v1_zz(p, pmin);
        p = v1_zz(p, pmax);
        p = v1_zz(p, psum);
        p = v1_uv(p, (uint64_t) (first - start));
        return v1_uv(p, (uint64_t) (last - first));
}

/* Device 5: hour 0 packed in a block (samples at 10 and 20 min), hour 1
 * still raw rows (at 70 and 80 min), with their rollups. */
static const StoreSample v1_samples[4] = {
        { 5, T0 + 10 * MINUTE_MS, 1000, 230000, 5, 100 },
        { 5, T0 + 20 * MINUTE_MS, 3000, 231000, 13, 110 },
        { 5, T0 + 70 * MINUTE_MS, 2000, 229000, 9, 150 },
        { 5, T0 + 80 * MINUTE_MS, 4000, 232000, 17, 170 },
};

static int write_v1(const char *dir) {
        const char *names[] = { "meta", "last", "raw", "block", "minute", "hour", "day", "minutes" };
        MDB_dbi dbi[8];
        MDB_env *env;
        MDB_txn *txn;
        uint8_t k[12], v[256], *p;
        const StoreSample *x = v1_samples;
        int r;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) || mdb_env_open(env, dir, 0, 0600))
                return -EIO;
        r = mdb_txn_begin(env, NULL, 0, &txn);
        for (unsigned i = 0; r == 0 && i < 8; i++)
                r = mdb_dbi_open(txn, names[i], MDB_CREATE, &dbi[i]);
        uint8_t one[4] = { 1, 0, 0, 0 };
        if (r == 0)
                r = v1_put(txn, dbi[0], "format", 6, one, one + 4);
        /* The block of hour 0: two minutes, then the samples as deltas. */
        p = v;
        *p++ = 1;
        p = v1_uv(p, 2);
        p = v1_uv(p, 10), p = v1_uv(p, 1), p = v1_zz(p, 0), p = v1_zz(p, 1000), p = v1_zz(p, 1000), p = v1_zz(p, 0);
        p = v1_uv(p, 0), p = v1_uv(p, 0);
        p = v1_uv(p, 20), p = v1_uv(p, 1), p = v1_zz(p, 10), p = v1_zz(p, 2000), p = v1_zz(p, 2000), p = v1_zz(p, 0);
        p = v1_uv(p, 0), p = v1_uv(p, 0);
        p = v1_uv(p, 2);
        StoreSample prev = { .ts_ms = T0 };
        int64_t prev_dt = 0;
        for (unsigned i = 0; i < 2; i++) {
                int64_t dt = x[i].ts_ms - prev.ts_ms;
                p = v1_zz(p, dt - prev_dt);
                p = v1_zz(p, x[i].power_mw - prev.power_mw);
                p = v1_zz(p, x[i].voltage_mv - prev.voltage_mv);
                p = v1_zz(p, x[i].current_ma - prev.current_ma);
                p = v1_zz(p, x[i].energy_mwh - prev.energy_mwh);
                prev = x[i];
                prev_dt = dt;
        }
        v1_key(k, 5, T0);
        if (r == 0)
                r = v1_put(txn, dbi[3], k, 12, v, p);
        for (unsigned i = 2; r == 0 && i < 4; i++) {
                p = v;
                *p++ = 1;
                p = v1_zz(p, x[i].power_mw), p = v1_zz(p, x[i].voltage_mv), p = v1_zz(p, x[i].current_ma);
                p = v1_zz(p, x[i].energy_mwh);
                v1_key(k, 5, x[i].ts_ms);
                r = v1_put(txn, dbi[2], k, 12, v, p);
                /* Their loose minute rollups. */
                int64_t m = floor_to(x[i].ts_ms, MINUTE_MS);
                p = v1_agg(v, m, 1, x[i].energy_mwh - x[i - 1].energy_mwh, x[i].power_mw, x[i].power_mw, x[i].power_mw,
                           x[i].ts_ms, x[i].ts_ms);
                v1_key(k, 5, m);
                if (r == 0)
                        r = v1_put(txn, dbi[4], k, 12, v, p);
        }
        p = v1_agg(v, T0, 2, 10, 1000, 3000, 4000, x[0].ts_ms, x[1].ts_ms);
        v1_key(k, 5, T0);
        if (r == 0)
                r = v1_put(txn, dbi[5], k, 12, v, p);
        p = v1_agg(v, T0 + HOUR_MS, 2, 60, 2000, 4000, 6000, x[2].ts_ms, x[3].ts_ms);
        v1_key(k, 5, T0 + HOUR_MS);
        if (r == 0)
                r = v1_put(txn, dbi[5], k, 12, v, p);
        p = v1_agg(v, T0, 4, 70, 1000, 4000, 10000, x[0].ts_ms, x[3].ts_ms);
        v1_key(k, 5, T0);
        if (r == 0)
                r = v1_put(txn, dbi[6], k, 12, v, p);
        p = v;
        *p++ = 1;
        p = v1_uv(p, (uint64_t) x[3].ts_ms), p = v1_zz(p, x[3].power_mw), p = v1_zz(p, x[3].voltage_mv);
        p = v1_zz(p, x[3].current_ma), p = v1_zz(p, x[3].energy_mwh);
        uint8_t lk[4] = { 0, 0, 0, 5 };
        if (r == 0)
                r = v1_put(txn, dbi[1], lk, 4, v, p);
        r = r == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), r);
        mdb_env_close(env);
        return r == 0 ? 0 : -EIO;
}

static void test_v1(const char *dir) {
        Series old = { (StoreSample *) v1_samples, 4 };
        StoreSample more = { 5, T0 + 81 * MINUTE_MS, 6000, 230000, 26, 270 }, all[5];
        Series both = { all, 5 };
        StoreRollup *r = NULL;
        Store *st = NULL;
        size_t n = 0;
        int64_t e = -1;

        memcpy(all, v1_samples, sizeof v1_samples);
        all[4] = more;
        ok(write_v1(dir) == 0, "v1: a version 1 store written");
        ok(store_open(dir, day_utc, NULL, &st) == 0, "v1: opens");
        ok(query_matches(st, &old, 0, INT64_MAX), "v1: its block and raw rows read back");
        ok(store_query_rollup(st, 5, STORE_HOUR, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 2 &&
           r[0].energy_mwh == 10 && r[0].power_avg_mw == 2000 && r[1].energy_mwh == 60 && r[1].count == 2,
           "v1: its hour rollups as they were");
        free(r);
        ok(store_query_rollup(st, 5, STORE_MINUTE, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 4,
           "v1: its minute rollups, packed and loose");
        free(r);
        ok(store_energy(st, 5, T0, T0 + DAY_MS, &e) == 0 && e == 70, "v1: its energy");
        ok(append_sync(st, &more, 1) == 0 && store_checkpoint(st) == 0, "v1: appending after it, and a checkpoint");
        store_free(st);
        st = NULL;
        ok(store_open(dir, day_utc, NULL, &st) == 0 && query_matches(st, &both, 0, INT64_MAX), "v1: old and new read back");
        ok(store_energy(st, 5, T0, T0 + DAY_MS, &e) == 0 && e == 170, "v1: energy old and new");
        ok(store_query_rollup(st, 5, STORE_HOUR, 0, INT64_MAX, SIZE_MAX, &r, &n) == 0 && n == 2 &&
           r[1].energy_mwh == 160 && r[1].count == 3, "v1: the new interval adds to the old hour");
        free(r);
        store_free(st);
}


/* A format 2 store (tests/store/data/v2, blocks keyed hour, device, time)
 * opened by today's code: its blocks read back, and new ones (format 3,
 * keyed hour, checkpoint, device) join them in the same hour. */
static void test_v2(const char *dir) {
        char src[4096], dst[4096];
        Series want[V2_DEVICES];
        StoreStats stats = {};
        Store *st = NULL;
        bool copied;

        snprintf(src, sizeof src, "%s/data/v2/data.mdb", SOURCE_DIR);
        snprintf(dst, sizeof dst, "%s/data.mdb", dir);
        FILE *in = fopen(src, "re"), *out = fopen(dst, "we");
        char buf[8192];
        size_t n;
        copied = in && out;
        while (copied && (n = fread(buf, 1, sizeof buf, in)) > 0)
                copied = fwrite(buf, 1, n, out) == n;
        copied = copied && !ferror(in);
        if (in)
                fclose(in);
        if (out)
                copied = fclose(out) == 0 && copied;
        if (!ok(copied, "v2: the fixture copied (%s)", src))
                return;
        for (unsigned d = 0; d < V2_DEVICES; d++) {
                want[d] = (Series) { calloc(V2_ALL, sizeof(StoreSample)), V2_ALL };
                for (unsigned i = 0; i < V2_ALL; i++)
                        want[d].s[i] = v2_sample(V2_FIRST_DEVICE + d, i);
        }

        ok(store_open(dir, day_utc, NULL, &st) == 0, "v2: opens");
        ok(store_stats(st, &stats) == 0, "v2: stats");
        is_int(stats.blocks, 6, "v2: its six blocks");
        want[0].n = want[1].n = V2_WRITTEN;
        for (unsigned d = 0; d < V2_DEVICES; d++)
                ok(query_matches(st, &want[d], 0, INT64_MAX), "v2: device %u's samples read back", d + 1);
        /* The rest of the third hour: format 3 blocks beside the format 2
         * ones of the same hour. */
        for (unsigned i = V2_WRITTEN; i < V2_ALL; i++) {
                StoreSample round[V2_DEVICES] = { want[0].s[i], want[1].s[i] };
                if (append_sync(st, round, V2_DEVICES) < 0)
                        break;
        }
        ok(store_checkpoint(st) == 0, "v2: appended after it, and a checkpoint");
        want[0].n = want[1].n = V2_ALL;
        store_free(st);
        st = NULL;
        ok(store_open(dir, day_utc, NULL, &st) == 0 && store_stats(st, &stats) == 0, "v2: reopened");
        is_int(stats.blocks, 8, "v2: two more blocks");
        is_int(stats.tail_samples, 0, "v2: nothing left in the log");
        for (unsigned d = 0; d < V2_DEVICES; d++) {
                StoreRollup *r = NULL;
                size_t nr = 0;
                int64_t e = -1;
                const StoreSample *a = want[d].s;

                ok(query_matches(st, &want[d], 0, INT64_MAX), "v2: device %u, old and new blocks read back", d + 1);
                ok(query_matches(st, &want[d], a[140].ts_ms, a[170].ts_ms),
                   "v2: device %u, a range across both kinds of block in one hour", d + 1);
                ok(store_energy(st, a[0].device, V2_T0, V2_T0 + 86400000, &e) == 0, "v2: device %u's energy", d + 1);
                is_int(e, a[V2_ALL - 1].energy_mwh - a[0].energy_mwh, "v2: device %u's energy over both", d + 1);
                ok(store_query_rollup(st, a[0].device, STORE_HOUR, 0, INT64_MAX, SIZE_MAX, &r, &nr) == 0 && nr == 3 &&
                   r[2].count == 60, "v2: device %u's third hour has all its 60 samples", d + 1);
                free(r);
                free(want[d].s);
        }
        store_free(st);

        /* A format from after this one is refused, not half read. */
        MDB_env *env = NULL;
        MDB_txn *txn = NULL;
        MDB_dbi meta;
        uint8_t four[4] = { 4, 0, 0, 0 };
        int rc = mdb_env_create(&env);
        if (rc == 0)
                rc = mdb_env_set_maxdbs(env, 32);
        if (rc == 0)
                rc = mdb_env_open(env, dir, 0, 0600);
        if (rc == 0)
                rc = mdb_txn_begin(env, NULL, 0, &txn);
        if (rc == 0)
                rc = mdb_dbi_open(txn, "meta", 0, &meta);
        if (rc == 0)
                rc = v1_put(txn, meta, "format", 6, four, four + 4);
        rc = rc == 0 ? mdb_txn_commit(txn) : (txn ? (mdb_txn_abort(txn), rc) : rc);
        mdb_env_close(env);
        ok(rc == 0, "v2: marked as format 4");
        st = NULL;
        is_int(store_open(dir, day_utc, NULL, &st), -EPROTONOSUPPORT, "v2: a newer format is refused");
        store_free(st);
}

/* CompactAfter=: the tail goes into LMDB when the samples' time reaches
 * the next multiple of the interval, one block per device and hour. */
static void test_interval(const char *dir) {
        StoreOptions o = { .day_start = day_utc, .checkpoint_interval_ms = HOUR_MS };
        Series x = series_make(40, T0, 10000, 3 * 360, false);
        StoreStats stats = {};
        Store *st = NULL;

        ok(store_open_with(dir, &o, &st) == 0, "interval: open");
        for (size_t i = 0; i < x.n; i++)
                x.s[i].ts_ms = T0 + (int64_t) i * 10000;
        ok(append_rounds(st, &x, 1, 1) == 0, "interval: three hours of 10 s rounds");
        for (unsigned k = 0; k < 100; k++) {
                if (store_stats(st, &stats) < 0 || stats.blocks == 2)
                        break;
                usleep(50 * 1000);
        }
        is_int(stats.blocks, 2, "interval: the two closed hours are packed, one block each");
        is_int(stats.tail_samples, 360, "interval: the open hour waits in the log");
        ok(query_matches(st, &x, 0, INT64_MAX), "interval: all of it reads back");
        store_free(st);
        free(x.s);
}

/* ---- crash test ---- */

#define CRASH_DEVICES 4
#define CRASH_STEP_MS INT64_C(30000)

static StoreSample crash_sample(uint32_t device, int64_t ts) {
        int64_t i = (ts - T0) / CRASH_STEP_MS;
        return (StoreSample) {
                .device = device,
                .ts_ms = ts,
                .power_mw = (i * 7919 + device * 104729) % 3000000,
                .voltage_mv = 230000 + i % 1000,
                .current_ma = i % 13000,
                .energy_mwh = i * 25 + (i * i) % 7 + device,
        };
}

/* Keeps appending rounds and reports each committed timestamp; never
 * returns. */
static _Noreturn void crash_child(const char *dir, int fd) {
        Store *st = NULL;
        StoreSample last;
        int64_t ts = T0;

        if (store_open(dir, day_utc, NULL, &st) < 0)
                _exit(2);
        if (store_last_sample(st, CRASH_DEVICES - 1, &last) == 0)
                ts = last.ts_ms + CRASH_STEP_MS;
        for (unsigned round = 0;; round++, ts += CRASH_STEP_MS) {
                StoreSample x[CRASH_DEVICES];
                for (uint32_t d = 0; d < CRASH_DEVICES; d++)
                        x[d] = crash_sample(d, ts);
                if (store_append(st, x, CRASH_DEVICES) != 0 || store_sync(st) < 0)
                        _exit(3);
                if (write(fd, &ts, sizeof ts) != sizeof ts)
                        _exit(4);
                if (round % 20 == 19 && compact_all(st, ts) < 0)
                        _exit(5);
        }
}

/* Everything committed is there, in order, without holes, matching the
 * generator, and the rollups agree with it. */
static bool crash_check(const char *dir, int64_t committed) {
        Store *st = NULL;
        bool good = true;

        if (store_open(dir, day_utc, NULL, &st) < 0)
                return false;
        for (uint32_t d = 0; d < CRASH_DEVICES && good; d++) {
                StoreSample *x = NULL;
                size_t n = 0;

                good = store_query_raw(st, d, 0, INT64_MAX, SIZE_MAX, &x, &n) == 0 && n > 0 &&
                       x[n - 1].ts_ms >= committed;
                for (size_t i = 0; i < n && good; i++) {
                        StoreSample want = crash_sample(d, T0 + (int64_t) i * CRASH_STEP_MS);
                        good = sample_eq(&x[i], &want);
                }
                if (good) {
                        Series s = { .s = x, .n = n };
                        good = rollups_match(st, &s, STORE_MINUTE, day_utc) && rollups_match(st, &s, STORE_HOUR, day_utc);
                }
                /* A round is one transaction: all devices end together. */
                StoreSample last, last0;
                good = good && store_last_sample(st, d, &last) == 0 && store_last_sample(st, 0, &last0) == 0 &&
                       last.ts_ms == last0.ts_ms && last.ts_ms == x[n - 1].ts_ms;
                free(x);
        }
        store_free(st);
        return good;
}

static void test_crash(const char *dir) {
        int64_t committed = INT64_MIN;
        unsigned good = 0, kills = 30;

        for (unsigned k = 0; k < kills; k++) {
                int fds[2];
                pid_t pid;
                int status;

                if (pipe(fds) < 0)
                        break;
                pid = fork();
                if (pid == 0) {
                        close(fds[0]);
                        crash_child(dir, fds[1]);
                }
                close(fds[1]);
                if (pid < 0) {
                        close(fds[0]);
                        break;
                }

                /* Let it commit a random number of rounds, then kill it
                 * wherever it happens to be. */
                unsigned want = 1 + (unsigned) (rnd() % 150), got = 0;
                int64_t ts;
                while (got < want && read(fds[0], &ts, sizeof ts) == sizeof ts) {
                        committed = MAX(committed, ts);
                        got++;
                }
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                while (read(fds[0], &ts, sizeof ts) == sizeof ts)
                        committed = MAX(committed, ts);
                close(fds[0]);

                if (!WIFSIGNALED(status)) {
                        diag("child %u exited with %d before the kill", k, WEXITSTATUS(status));
                        break;
                }
                if (!crash_check(dir, committed)) {
                        diag("inconsistent after kill %u", k);
                        break;
                }
                good++;
        }
        is_int(good, kills, "crash: consistent after each of %u SIGKILLs, nothing committed lost", kills);
}

/* store_stats() while the writer checkpoints: each sample counted once,
 * packed or in the tail. Stats read LMDB, then the tail: a generation
 * committed before the read and freed after it counted twice (CI: "the
 * open hour waits in the log", 720 of 360), one committed and freed
 * between the two not at all. */
static void test_stats_once(const char *dir) {
        StoreOptions o = { .day_start = day_utc, .tail_max_bytes = 2048 };
        Series x = series_make(7, T0, 1000, 20000, false);
        StoreStats stats;
        Store *st = NULL;
        unsigned wrong = 0, calls = 0, packed = 0;

        ok(store_open_with(dir, &o, &st) == 0, "stats: open");
        for (size_t i = 0; i < x.n; i++) {
                x.s[i].ts_ms = T0 + (int64_t) i * 1000;
                if (store_append(st, &x.s[i], 1) < 0)
                        break;
                if (store_stats(st, &stats) < 0)
                        break;
                calls++;
                if (stats.block_samples + stats.tail_samples != i + 1) {
                        if (wrong++ < 3)
                                diag("after %zu samples: %" PRIu64 " packed + %" PRIu64 " in the tail", i + 1,
                                     stats.block_samples, stats.tail_samples);
                }
                packed = (unsigned) stats.block_samples;
        }
        is_int(calls, 20000, "stats: read after each of 20000 samples");
        ok(packed > 0, "stats: the writer packed meanwhile (%u samples)", packed);
        is_int(wrong, 0, "stats: each sample counted once, packed or in the tail");
        store_free(st);
        free(x.s);
}

int main(void) {
        struct {
                const char *name;
                void (*run)(const char *dir);
        } tests[] = {
                { "roundtrip", test_roundtrip },
                { "gaps", test_gaps },
                { "dst", test_dst },
                { "retention", test_retention_delete_reopen },
                { "growth", test_map_growth },
                { "crash", test_crash },
                { "split", test_time_split },
                { "limits", test_limits },
                { "torn", test_torn_tail },
                { "concurrent", test_concurrent },
                { "cap", test_map_cap },
                { "counters", test_counters },
                { "enospc", test_enospc },
                { "v1", test_v1 },
                { "v2", test_v2 },
                { "interval", test_interval },
                { "stats", test_stats_once },
        };

        for (size_t i = 0; i < ELEMENTSOF(tests); i++) {
                char *dir = make_tmpdir();
                if (!ok(dir, "%s: temp dir", tests[i].name))
                        continue;
                tests[i].run(dir);
                rm_rf(dir);
                free(dir);
        }

        DayFunc days[] = { day_utc, day_plus_0530 };
        const char *names[] = { "utc", "+05:30" };
        for (size_t i = 0; i < ELEMENTSOF(days); i++) {
                char *dir = make_tmpdir();
                if (!ok(dir, "compaction %s: temp dir", names[i]))
                        continue;
                test_compaction_and_rollups(dir, days[i], names[i]);
                rm_rf(dir);
                free(dir);
        }

        return done_testing();
}
