/* SPDX-License-Identifier: MIT */

/*
 * The store's queries: LMDB's part (blocks, rollups, a version 1 store's
 * raw rows) and the tail's, merged without double counting across a
 * checkpoint (see the top comment of store.c).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "store-internal.h"

/* ---- LMDB ---- */

/* 1 when k is the device's and before to_ms (its time in *ret_t), 0 past
 * them. */
static int key_in(const MDB_val *k, uint32_t device, int64_t to_ms, int64_t *ret_t) {
        uint32_t d;
        int r;

        r = key_parse(k, &d, ret_t);
        if (r < 0)
                return r;
        return d == device && *ret_t < to_ms;
}

/* The device's checkpointed span: its first and newest sample times.
 * -ENOENT without any. */
static int device_span(Store *s, MDB_txn *txn, uint32_t device, int64_t *ret_first, int64_t *ret_last) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        uint8_t kb[4] = { device >> 24, device >> 16, device >> 8, device };
        MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
        StoreSample last;
        int64_t first = INT64_MAX, t;
        int r;

        r = db_get_last(s, txn, device, &last);
        if (r < 0)
                return r;
        r = store_errno(mdb_get(txn, s->dbi[DB_FIRST], &k, &v));
        if (r >= 0 && v.mv_size == 8) {
                uint64_t u = 0;
                for (unsigned i = 0; i < 8; i++)
                        u = u << 8 | ((const uint8_t *) v.mv_data)[i];
                first = (int64_t) u;
        } else if (r < 0 && r != -ENOENT)
                return r;
        /* A version 1 store: its first hour rollup. */
        r = cursor_open(s, txn, DB_HOUR, &c);
        if (r >= 0)
                r = cursor_seek(c, device, 0, &k, &v);
        if (r >= 0 && key_in(&k, device, INT64_MAX, &t) > 0)
                first = MIN(first, t);
        if (r < 0 && r != -ENOENT)
                return r;
        *ret_first = MIN(first, last.ts_ms);
        *ret_last = last.ts_ms;
        return 0;
}

typedef int (*BlockFunc)(uint32_t device, int64_t t0, const MDB_val *v, void *userdata);

/* A device's version 3 blocks of hour h: one per checkpoint that held
 * samples of it, found by skipping from generation to generation (a seek
 * for each, and one more where the device has none). */
static int walk_cseg_hour(MDB_cursor *c, uint32_t device, int64_t h, BlockFunc f, void *userdata) {
        uint64_t gen = 0;
        int r;

        for (;;) {
                uint8_t kb[CSEG_KEY_SIZE];
                MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
                uint64_t g;
                uint32_t d;
                int64_t t, t0;

                ckey_make(kb, h, gen, device, h);
                r = store_errno(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE));
                if (r == -ENOENT)
                        return 0;
                if (r >= 0)
                        r = ckey_parse(&k, &t, &g, &d, &t0);
                if (r < 0)
                        return r;
                if (t != h)
                        return 0;
                if (g == gen && d == device) {
                        r = f(device, t0, &v, userdata);
                        if (r != 0)
                                return r;
                }
                /* Past this generation's entry for the device, or it has
                 * none: the next generation's, or the one the seek found. */
                if (g == gen) {
                        if (gen == UINT64_MAX)
                                return 0;
                        gen++;
                } else
                        gen = g;
        }
}

/* Calls f for the device's blocks keyed in [from_ms, to_ms) by their
 * hour: version 1 ones (device first), then version 2 ones (time first,
 * one seek per hour of the device's span), then version 3 ones (time and
 * checkpoint first, walk_cseg_hour()). f returns > 0 to stop. */
static int walk_blocks(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, BlockFunc f,
                       void *userdata) {
        _cleanup_cursor_ MDB_cursor *c = NULL, *tc = NULL, *cc = NULL;
        int64_t first, last;
        MDB_val k, v;
        int r;

        r = cursor_open(s, txn, DB_BLOCK, &c);
        if (r < 0)
                return r;
        for (r = cursor_seek(c, device, floor_to(from_ms, HOUR_MS), &k, &v); r >= 0;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                int64_t t;

                r = key_in(&k, device, to_ms, &t);
                if (r <= 0)
                        break;
                r = f(device, t, &v, userdata);
                if (r != 0)
                        return r;
        }
        if (r < 0 && r != -ENOENT)
                return r;

        r = device_span(s, txn, device, &first, &last);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = cursor_open(s, txn, DB_SEG, &tc);
        if (r >= 0)
                r = cursor_open(s, txn, DB_CSEG, &cc);
        if (r < 0)
                return r;
        for (int64_t h = MAX(floor_to(from_ms, HOUR_MS), floor_to(first, HOUR_MS)); h < to_ms && h <= last;
             h += HOUR_MS) {
                uint8_t kb[SEG_KEY_SIZE];

                r = walk_cseg_hour(cc, device, h, f, userdata);
                if (r != 0)
                        return r;

                tkey_make(kb, h, device, 0);
                k = (MDB_val) { .mv_size = sizeof kb, .mv_data = kb };
                for (r = store_errno(mdb_cursor_get(tc, &k, &v, MDB_SET_RANGE)); r >= 0;
                     r = store_errno(mdb_cursor_get(tc, &k, &v, MDB_NEXT))) {
                        uint32_t d;
                        int64_t t, t0;

                        r = tkey_parse(&k, &t, &d, &t0);
                        if (r < 0)
                                return r;
                        if (t != h || d != device)
                                break;
                        r = f(device, t0, &v, userdata);
                        if (r != 0)
                                return r;
                }
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

typedef struct RawWalk {
        int64_t from_ms, to_ms;
        size_t max, count;
        SampleArray *out;
} RawWalk;

/* Counts (out NULL: decoding only the blocks the range cuts) or decodes a
 * block's samples in range. */
static int raw_block(uint32_t device, int64_t t0, const MDB_val *v, void *userdata) {
        _cleanup_(sample_array_done) SampleArray tmp = {};
        RawWalk *w = userdata;
        SampleArray *dst = w->out ?: &tmp;
        size_t before = dst->n;
        BlockInfo b;
        int r;

        r = block_open(t0, v, 0, 0, NULL, &b);
        if (r < 0)
                return r;
        if (!w->out && t0 >= w->from_ms && floor_to(t0, HOUR_MS) + HOUR_MS <= w->to_ms)
                w->count += b.count;
        else {
                r = block_samples(device, t0, &b, w->from_ms, w->to_ms, dst);
                if (r < 0)
                        return r;
                w->count += dst->n - before;
        }
        return w->count > w->max;
}

/* The blocks and then a version 1 store's raw rows of a device that may
 * hold samples in [from, to); with out NULL only counts (up to past max). */
static int walk_raw(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max,
                    SampleArray *out, size_t *ret_count) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        RawWalk w = { .from_ms = from_ms, .to_ms = to_ms, .max = max, .out = out };
        MDB_val k, v;
        int r;

        r = walk_blocks(s, txn, device, from_ms, to_ms, raw_block, &w);
        if (r < 0)
                return r;
        r = cursor_open(s, txn, DB_RAW, &c);
        if (r < 0)
                return r;
        for (r = cursor_seek(c, device, from_ms, &k, &v); r >= 0 && w.count <= max;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                StoreSample x;
                int64_t t;

                r = key_in(&k, device, to_ms, &t);
                if (r <= 0)
                        break;
                w.count++;
                if (!out)
                        continue;
                r = raw_decode(&k, &v, &x);
                if (r >= 0)
                        r = sample_array_push(out, &x);
                if (r < 0)
                        return r;
        }
        if (r < 0 && r != -ENOENT)
                return r;
        if (ret_count)
                *ret_count = w.count;
        return 0;
}

int db_count_raw(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max, size_t *ret) {
        return walk_raw(s, txn, device, from_ms, to_ms, max, NULL, ret);
}

static int sample_cmp(const void *a, const void *b) {
        int64_t x = ((const StoreSample *) a)->ts_ms, y = ((const StoreSample *) b)->ts_ms;
        return (x > y) - (x < y);
}

int db_query_raw(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, SampleArray *out) {
        size_t first = out->n;
        int r;

        r = walk_raw(s, txn, device, from_ms, to_ms, SIZE_MAX - 1, out, NULL);
        if (r < 0)
                return r;
        /* A version 1 store's raw rows of its last open hour are older than
         * the blocks written since. */
        for (size_t i = first + 1; i < out->n; i++)
                if (out->items[i].ts_ms <= out->items[i - 1].ts_ms) {
                        qsort(out->items + first, out->n - first, sizeof(StoreSample), sample_cmp);
                        break;
                }
        return 0;
}

static int collect_rows(Store *s, MDB_txn *txn, unsigned db, uint32_t device, int64_t from_ms, int64_t to_ms,
                        size_t max, PeriodArray *out) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        MDB_val k, v;
        int r;

        r = cursor_open(s, txn, db, &c);
        if (r < 0)
                return r;
        for (r = cursor_seek(c, device, from_ms, &k, &v); r >= 0;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                int64_t start;
                Agg a;

                r = key_in(&k, device, to_ms, &start);
                if (r <= 0)
                        break;
                if (out->n >= max)
                        return -E2BIG;
                r = agg_decode(start, v.mv_data, v.mv_size, &a);
                if (r < 0)
                        return r;
                r = period_array_push(out, start, &a);
                if (r < 0)
                        return r;
        }
        return r == -ENOENT ? 0 : r;
}

/* A version 2 store's rollup rows (time first): one lookup per period
 * of the device's span. */
static int collect_tdb(Store *s, MDB_txn *txn, StoreResolution res, uint32_t device, int64_t from_ms, int64_t to_ms,
                       size_t max, PeriodArray *out) {
        int64_t first, last, t;
        int r;

        r = device_span(s, txn, device, &first, &last);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = periods_start(&s->periods[res], MAX(from_ms, first), &t);
        if (r >= 0 && t < from_ms)
                r = periods_next(&s->periods[res], t, &t);
        for (; r >= 0 && t < to_ms && t <= last; r = periods_next(&s->periods[res], t, &t)) {
                uint8_t kb[SEG_KEY_SIZE];
                MDB_val k = { .mv_size = KEY_SIZE, .mv_data = kb }, v;
                Agg a;

                tkey_make(kb, t, device, 0);
                r = store_errno(mdb_get(txn, s->dbi[rollup_tdb[res]], &k, &v));
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                if (out->n >= max)
                        return -E2BIG;
                r = agg_decode(t, v.mv_data, v.mv_size, &a);
                if (r >= 0)
                        r = period_array_push(out, t, &a);
        }
        return r;
}

typedef struct MinuteWalk {
        int64_t from_ms, to_ms;
        size_t max, blocks;
        PeriodArray *out;
} MinuteWalk;

/* Every block adds at most one repeated minute (cut by a checkpoint), so
 * more distinct minutes than max show as more than max plus blocks
 * entries. */
static int minute_block(uint32_t device, int64_t t0, const MDB_val *v, void *userdata) {
        MinuteWalk *w = userdata;
        BlockInfo b;
        int r;

        r = block_open(t0, v, w->from_ms, w->to_ms, w->out, &b);
        if (r < 0)
                return r;
        if (++w->blocks < w->out->n && w->out->n - w->blocks > w->max)
                return -E2BIG;
        return 0;
}

/* Minute rollups live in blocks, in "minutes" (expired blocks) and, in a
 * version 1 store, loose. A block's minutes reach back LEAD_MS before it. */
static int collect_minutes(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max,
                           PeriodArray *out) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        int64_t until = to_ms > INT64_MAX - LEAD_MS ? INT64_MAX : to_ms + LEAD_MS;
        MinuteWalk w = { .from_ms = from_ms, .to_ms = to_ms, .max = max, .out = out };
        MDB_val k, v;
        int r;

        r = collect_rows(s, txn, DB_MINUTE, device, from_ms, to_ms, max, out);
        if (r < 0)
                return r;
        r = walk_blocks(s, txn, device, floor_to(from_ms, HOUR_MS) - LEAD_MS, until, minute_block, &w);
        if (r < 0)
                return r;

        r = cursor_open(s, txn, DB_MINUTES, &c);
        if (r < 0)
                return r;
        for (r = cursor_seek(c, device, floor_to(from_ms, HOUR_MS) - LEAD_MS, &k, &v); r >= 0;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                int64_t t;

                r = key_in(&k, device, until, &t);
                if (r <= 0)
                        break;
                r = packed_minutes_decode(&k, &v, from_ms, to_ms, out);
                if (r < 0)
                        return r;
        }
        return r == -ENOENT ? 0 : r;
}

int db_collect(Store *s, MDB_txn *txn, uint32_t device, StoreResolution res, int64_t from_ms, int64_t to_ms,
               size_t max, PeriodArray *out) {
        int r;

        if (res == STORE_MINUTE)
                return collect_minutes(s, txn, device, from_ms, to_ms, max, out);
        r = collect_rows(s, txn, rollup_db[res], device, from_ms, to_ms, max, out);
        if (r >= 0)
                r = collect_tdb(s, txn, res, device, from_ms, to_ms, max, out);
        return r;
}

/* The energy of one rollup row, version 1 and 2 together. */
static int rollup_energy(Store *s, MDB_txn *txn, StoreResolution res, uint32_t device, int64_t start, int64_t *ret) {
        uint8_t kb[SEG_KEY_SIZE];
        int64_t e = 0;
        int r;

        for (unsigned i = 0; i < 2; i++) {
                MDB_val k = { .mv_size = KEY_SIZE, .mv_data = kb }, v;
                Agg a;

                if (i == 0)
                        key_make(kb, device, start);
                else
                        tkey_make(kb, start, device, 0);
                r = store_errno(mdb_get(txn, s->dbi[i == 0 ? rollup_db[res] : rollup_tdb[res]], &k, &v));
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                r = agg_decode(start, v.mv_data, v.mv_size, &a);
                if (r < 0)
                        return r;
                e += a.energy;
        }
        *ret = e;
        return 0;
}

int db_energy(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, int64_t *ret) {
        int64_t t = from_ms, end = to_ms, first, last, sum = 0;
        int r;

        /* Only the device's own span is walked, whatever range was asked. */
        r = device_span(s, txn, device, &first, &last);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        t = MAX(t, floor_to(first, HOUR_MS));
        end = MIN(end, floor_to(last, MINUTE_MS) + MINUTE_MS);

        /* Covers [t, end) greedily with the coarsest period that starts at t
         * and ends inside the range: a local day, a UTC hour, or else a run
         * of minutes up to the next hour or local midnight. */
        while (t < end) {
                int64_t day = s->o.day_start(t, s->o.userdata);
                int64_t next_day = s->o.day_start(day + NEXT_DAY_PROBE_MS, s->o.userdata);
                int64_t next, e = 0;

                if (day == t && next_day > t && next_day <= end) {
                        r = rollup_energy(s, txn, STORE_DAY, device, t, &e);
                        next = next_day;
                } else if (floor_to(t, HOUR_MS) == t && t + HOUR_MS <= end) {
                        r = rollup_energy(s, txn, STORE_HOUR, device, t, &e);
                        next = t + HOUR_MS;
                } else {
                        _cleanup_(period_array_done) PeriodArray m = {};

                        next = MIN(end, floor_to(t, HOUR_MS) + HOUR_MS);
                        if (next_day > t)
                                next = MIN(next, next_day);
                        r = collect_minutes(s, txn, device, t, next, SIZE_MAX / 2, &m);
                        for (size_t i = 0; i < m.n; i++)
                                e += m.items[i].a.energy;
                }
                if (r < 0)
                        return r;
                sum += e;
                t = next;
        }
        *ret = sum;
        return 0;
}

/* ---- the tail, and both merged ---- */

/* Copies out a device's part of a generation. */
typedef struct TailPart {
        uint64_t last_seq;
        bool have_base;
        StoreSample base;
        SampleArray x;
} TailPart;

/* Only the samples of rounds up to max_seq: what the log holds. */
static int tail_part(const Tail *t, uint32_t device, uint64_t max_seq, TailPart *ret) {
        const TailDev *td;
        int64_t prev_dt = 0;
        uint64_t seq = 0;
        StoreSample x;
        Reader r;
        int e;

        *ret = (TailPart) { .last_seq = t ? t->last_seq : 0 };
        td = t ? g_hash_table_lookup(t->devs, GUINT_TO_POINTER(device)) : NULL;
        if (!td)
                return 0;
        ret->have_base = td->have_base;
        ret->base = td->base;
        x = td->base;
        r = reader_make(td->buf.data, td->buf.size);
        for (uint32_t i = 0; i < td->n; i++) {
                e = tail_decode_one(&r, &x, &prev_dt, &seq);
                if (e >= 0 && seq > max_seq)
                        break;
                if (e >= 0)
                        e = sample_array_push(&ret->x, &x);
                if (e < 0)
                        return e;
        }
        return 0;
}



static void tail_parts_free(TailPart *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                sample_array_done(&p[i].x);
        free(p);
}

int store_wait_written(Store *s) {
        uint64_t target;
        int r;

        pthread_mutex_lock(&s->lock);
        r = store_frame_round(s);
        target = s->next_seq - 1;
        while (r >= 0 && s->written_seq < target && !s->log_error) {
                s->write_now = true;
                pthread_cond_signal(&s->wake);
                pthread_cond_wait(&s->done, &s->lock);
        }
        if (r >= 0 && s->written_seq < target)
                r = s->log_error;
        pthread_mutex_unlock(&s->lock);
        return r;
}

/* The device's tail parts not yet in the snapshot txn reads, oldest
 * first; see the top comment. Opens txn: the caller ends it with
 * db_read_end(). */
static int snapshot(Store *s, uint32_t device, TailPart **ret_parts, size_t *ret_n, MDB_txn **ret_txn) {
        TailPart *parts;
        size_t n = 1;
        uint64_t ckpt;
        int r = 0;

        pthread_mutex_lock(&s->lock);
        /* Samples show once the writer wrote them: what a reader saw is
         * never lost, even to a kill -9 right after. The writer writes a
         * round when it ends; a reader asks for the open round now, and
         * waits for that write to the page cache only while the writer is
         * not in an fdatasync or checkpoint, so a slow disk delays what
         * history shows, never the reader. */
        if (!s->disk_busy && !s->log_error && store_frame_round(s) >= 0 && s->queued.size > 0) {
                uint64_t target = s->next_seq - 1;

                s->write_now = true;
                pthread_cond_signal(&s->wake);
                while (s->written_seq < target && s->write_now && !s->disk_busy && !s->log_error)
                        pthread_cond_wait(&s->done, &s->lock);
        }
        /* Counted after the wait, which lets go of the lock: a checkpoint
         * may have frozen another generation meanwhile. */
        for (const Tail *t = s->frozen; t; t = t->next)
                n++;
        parts = calloc(n, sizeof(TailPart));
        if (!parts)
                r = -ENOMEM;
        n = 0;
        for (const Tail *t = s->frozen; r >= 0 && t; t = t->next)
                r = tail_part(t, device, s->written_seq, &parts[n++]);
        if (r >= 0)
                r = tail_part(s->active, device, s->written_seq, &parts[n++]);
        pthread_mutex_unlock(&s->lock);
        if (r >= 0)
                r = db_read_begin(s, ret_txn);
        if (r >= 0) {
                r = db_ckpt_seq(s, *ret_txn, &ckpt);
                if (r < 0)
                        db_read_end(s, *ret_txn);
        }
        if (r < 0) {
                tail_parts_free(parts, n);
                return r;
        }
        for (size_t i = 0; i < n; i++)
                if (parts[i].last_seq <= ckpt)
                        sample_array_done(&parts[i].x);
        *ret_parts = parts;
        *ret_n = n;
        return 0;
}

static size_t count_in(const SampleArray *a, int64_t from_ms, int64_t to_ms) {
        size_t n = 0;

        for (size_t i = 0; i < a->n; i++)
                n += a->items[i].ts_ms >= from_ms && a->items[i].ts_ms < to_ms;
        return n;
}

int store_query_raw(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max,
                    StoreSample **ret, size_t *ret_n) {
        _cleanup_(sample_array_done) SampleArray a = {};
        TailPart *parts = NULL;
        size_t np = 0;
        MDB_txn *txn;
        size_t count = 0, tail_count = 0;
        int r;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        from_ms = MAX(from_ms, INT64_C(0));

        r = snapshot(s, device, &parts, &np, &txn);
        if (r < 0)
                return r;
        for (size_t i = 0; i < np; i++)
                tail_count += count_in(&parts[i].x, from_ms, to_ms);
        /* Counted first, from the blocks' headers: only the blocks cut by
         * the range are decoded before the answer is known to fit. */
        if (tail_count > max)
                r = -E2BIG;
        else
                r = db_count_raw(s, txn, device, from_ms, to_ms, max - tail_count, &count);
        if (r >= 0 && count > max - tail_count)
                r = -E2BIG;
        if (r >= 0)
                r = db_query_raw(s, txn, device, from_ms, to_ms, &a);
        db_read_end(s, txn);
        for (size_t i = 0; r >= 0 && i < np; i++)
                for (size_t j = 0; r >= 0 && j < parts[i].x.n; j++)
                        if (parts[i].x.items[j].ts_ms >= from_ms && parts[i].x.items[j].ts_ms < to_ms)
                                r = sample_array_push(&a, &parts[i].x.items[j]);
        tail_parts_free(parts, np);
        if (r < 0)
                return r;
        *ret_n = a.n;
        *ret = a.items ?: calloc(1, sizeof(StoreSample));
        a.items = NULL;
        return *ret ? 0 : -ENOMEM;
}

static int tail_periods(Store *s, StoreResolution res, const TailPart *part, int64_t from_ms, int64_t to_ms,
                        PeriodArray *out) {
        _cleanup_(period_array_done) PeriodArray p = {};
        int r;

        for (size_t i = 0; i < part->x.n; i++) {
                const StoreSample *prev = i > 0 ? &part->x.items[i - 1] : part->have_base ? &part->base : NULL;
                r = periods_add(&s->periods[res], prev, &part->x.items[i], &p);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < p.n; i++)
                if (p.items[i].start >= from_ms && p.items[i].start < to_ms) {
                        r = period_array_push(out, p.items[i].start, &p.items[i].a);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int store_query_rollup(Store *s, uint32_t device, StoreResolution res, int64_t from_ms, int64_t to_ms,
                       size_t max, StoreRollup **ret, size_t *ret_n) {
        _cleanup_(period_array_done) PeriodArray p = {};
        TailPart *parts = NULL;
        size_t np = 0;
        StoreRollup *items;
        MDB_txn *txn;
        int r;

        if (!s || res < 0 || res >= _STORE_RESOLUTION_MAX || !ret || !ret_n)
                return -EINVAL;
        from_ms = MAX(from_ms, INT64_C(0));

        r = snapshot(s, device, &parts, &np, &txn);
        if (r < 0)
                return r;
        r = db_collect(s, txn, device, res, from_ms, to_ms, max, &p);
        db_read_end(s, txn);
        for (size_t i = 0; r >= 0 && i < np; i++)
                r = tail_periods(s, res, &parts[i], from_ms, to_ms, &p);
        tail_parts_free(parts, np);
        if (r < 0)
                return r;
        period_array_normalize(&p);
        if (p.n > max)
                return -E2BIG;

        items = calloc(MAX(p.n, (size_t) 1), sizeof(StoreRollup));
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < p.n; i++)
                agg_to_rollup(p.items[i].start, &p.items[i].a, &items[i]);
        *ret_n = p.n;
        *ret = items;
        return 0;
}

int store_energy(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, int64_t *ret_mwh) {
        TailPart *parts = NULL;
        size_t np = 0;
        int64_t a, b, e = 0;
        MDB_txn *txn;
        int r;

        if (!s || !ret_mwh)
                return -EINVAL;
        a = floor_to(MAX(from_ms, INT64_C(0)) + MINUTE_MS - 1, MINUTE_MS);
        b = floor_to(MAX(MIN(to_ms, INT64_MAX - MINUTE_MS), INT64_C(0)) + MINUTE_MS - 1, MINUTE_MS);

        r = snapshot(s, device, &parts, &np, &txn);
        if (r < 0)
                return r;
        r = db_energy(s, txn, device, a, b, &e);
        db_read_end(s, txn);
        for (size_t i = 0; r >= 0 && i < np; i++)
                for (size_t j = 0; j < parts[i].x.n; j++) {
                        const StoreSample *prev = j > 0 ? &parts[i].x.items[j - 1]
                                                        : parts[i].have_base ? &parts[i].base : NULL;
                        e += interval_energy(&s->periods[STORE_MINUTE], prev, &parts[i].x.items[j], a, b);
                }
        tail_parts_free(parts, np);
        if (r < 0)
                return r;
        *ret_mwh = e;
        return 0;
}
