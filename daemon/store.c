/* SPDX-License-Identifier: MIT */

/*
 * On-disk format, version 1 (meta key "format" = le32 1).
 *
 * One LMDB environment (a directory holding data.mdb and lock.mdb) with
 * these named databases. Keys are big-endian so that byte order is
 * (device, time) order; times are UTC milliseconds >= 0.
 *
 *   meta    "format" -> le32 format version
 *   last    be32 device -> u8 1, uvarint ts, zz power, zz voltage,
 *           zz current, zz energy: the device's newest sample, kept apart
 *           so that retention never loses the base of the cumulative energy
 *   raw     be32 device || be64 ts -> u8 1, zz power, zz voltage,
 *           zz current, zz energy
 *   minute, hour, day
 *           be32 device || be64 period_start -> u8 1, uvarint count,
 *           zz energy, zz power_min, zz power_max, zz power_sum,
 *           uvarint (first_ts - period_start), uvarint (last_ts - first_ts);
 *           "minute" holds only the minutes of hours not yet packed
 *   block   be32 device || be64 hour_start -> u8 1, MINUTES, uvarint count,
 *           then per sample: zz(dt - previous dt), zz(dpower), zz(dvoltage),
 *           zz(dcurrent), zz(denergy), where dt is the step from the previous
 *           sample's ts (from hour_start for the first, with a previous dt of
 *           0) and the other deltas start from 0
 *   minutes be32 device || be64 hour_start -> u8 1, MINUTES: the minute
 *           rollups of a block whose samples retention removed
 *
 *   MINUTES = uvarint n (<= 60), then per minute, in order: uvarint index
 *           in the hour, uvarint count, zz energy, zz(power_min - previous
 *           minute's), zz(power_max - previous minute's),
 *           zz(power_sum - count * power_min), uvarint (first_ts - start),
 *           uvarint (last_ts - first_ts)
 *
 * Packing an hour's minute rollups into its block (rather than one row per
 * minute) is what keeps disk per reading low at 10 s polls: minute rows
 * were ~40 B each on half-full pages, since every device's new keys land
 * mid-tree and LMDB splits those pages in the middle.
 *
 * uvarint is LEB128 (7 bits per byte, low first); zz is zigzag then uvarint.
 * Arithmetic on deltas wraps modulo 2^64, so any int64 round-trips.
 *
 * Minute and hour periods are aligned to UTC; a day is the local day given
 * by the caller's day_start function (23 or 25 hours across DST changes).
 *
 * Energy: each sample's delta from the previous sample of the same device
 * (0 for a device's first sample) is counted in the periods containing that
 * sample, so the sum over any set of adjacent periods is exactly the
 * difference of the cumulative counter across them. A missed poll is simply
 * absent; power averages are over the samples present.
 *
 * Invariant used by the readers: a device's raw rows are all newer than
 * its block samples (appends are strictly increasing in time and only
 * closed hours are packed), so blocks followed by raw rows are in order.
 */

#include <errno.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store.h"

#define STORE_FORMAT_VERSION 1u
#define VALUE_VERSION 1u

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
/* One step past the next local midnight from any midnight, for day lengths
 * of 18 to 36 hours (DST shifts are at most a couple of hours). */
#define NEXT_DAY_PROBE_MS (36 * HOUR_MS)

#define KEY_SIZE 12
#define VARINT_MAX 10
#define SAMPLE_FIELDS_MAX (5 * VARINT_MAX)

/* Bounded work per compact/expire call, so that the daemon's loop never
 * waits long on one write transaction (an hour of 1 s polls is 3600 rows). */
#define COMPACT_ROWS_PER_CALL 16384
#define EXPIRE_ROWS_PER_CALL 16384

/* A full disk reports ENOSPC like a full map does; the attempts are bounded
 * so that case fails after a few cheap retries. */
#define GROW_ATTEMPTS_MAX 12
#define GROW_STEP_MAX (UINT64_C(1) << 30)

enum {
        DB_META,
        DB_LAST,
        DB_RAW,
        DB_BLOCK,
        DB_MINUTE,
        DB_HOUR,
        DB_DAY,
        DB_MINUTES,
        _DB_MAX,
};

static const char *const db_names[_DB_MAX] = {
        [DB_META] = "meta",
        [DB_LAST] = "last",
        [DB_RAW] = "raw",
        [DB_BLOCK] = "block",
        [DB_MINUTE] = "minute",
        [DB_HOUR] = "hour",
        [DB_DAY] = "day",
        [DB_MINUTES] = "minutes",
};

static const unsigned rollup_db[_STORE_RESOLUTION_MAX] = {
        [STORE_MINUTE] = DB_MINUTE,
        [STORE_HOUR] = DB_HOUR,
        [STORE_DAY] = DB_DAY,
};

struct Store {
        MDB_env *env;
        MDB_dbi dbi[_DB_MAX];
        StoreDayStartFunc day_start;
        void *userdata;
        dev_t dev;
        ino_t ino;
        Store *next;
};

/* LMDB forbids opening one environment twice in a process. */
static Store *open_stores;

/* The one place LMDB return codes become errno values. */
static int store_errno(int rc) {
        switch (rc) {
        case MDB_SUCCESS:
                return 0;
        case MDB_NOTFOUND:
                return -ENOENT;
        case MDB_KEYEXIST:
                return -EEXIST;
        case MDB_MAP_FULL:
                return -ENOSPC;
        case MDB_MAP_RESIZED:
                return -EAGAIN;
        case MDB_DBS_FULL:
        case MDB_READERS_FULL:
        case MDB_TLS_FULL:
        case MDB_TXN_FULL:
        case MDB_CURSOR_FULL:
        case MDB_PAGE_FULL:
                return -ENOBUFS;
        case MDB_PAGE_NOTFOUND:
        case MDB_CORRUPTED:
        case MDB_PANIC:
                return -EUCLEAN;
        case MDB_VERSION_MISMATCH:
        case MDB_INVALID:
        case MDB_INCOMPATIBLE:
                return -EPROTONOSUPPORT;
        case MDB_BAD_RSLOT:
        case MDB_BAD_TXN:
        case MDB_BAD_VALSIZE:
        case MDB_BAD_DBI:
                return -EINVAL;
        default:
                return rc > 0 ? -rc : -EIO;
        }
}

static void txn_abortp(MDB_txn **txn) {
        if (*txn)
                mdb_txn_abort(*txn);
}

static void cursor_closep(MDB_cursor **c) {
        if (*c)
                mdb_cursor_close(*c);
}

#define _cleanup_txn_ _cleanup_(txn_abortp)
#define _cleanup_cursor_ _cleanup_(cursor_closep)

/* ---- encoding ---- */

static uint64_t zigzag(int64_t v) {
        return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

static int64_t unzigzag(uint64_t v) {
        return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}

static int64_t wrap_sub(int64_t a, int64_t b) {
        return (int64_t) ((uint64_t) a - (uint64_t) b);
}

static int64_t wrap_add(int64_t a, int64_t b) {
        return (int64_t) ((uint64_t) a + (uint64_t) b);
}

static uint8_t *put_uvarint(uint8_t *p, uint64_t v) {
        while (v >= 0x80) {
                *p++ = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t) v;
        return p;
}

static uint8_t *put_zz(uint8_t *p, int64_t v) {
        return put_uvarint(p, zigzag(v));
}

typedef struct Reader {
        const uint8_t *p, *end;
        bool bad;
} Reader;

static Reader reader_init(const MDB_val *v) {
        return (Reader) { .p = v->mv_data, .end = (const uint8_t *) v->mv_data + v->mv_size };
}

static uint64_t get_uvarint(Reader *r) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (r->p >= r->end)
                        break;
                uint8_t b = *r->p++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80))
                        return v;
        }
        r->bad = true;
        return 0;
}

static int64_t get_zz(Reader *r) {
        return unzigzag(get_uvarint(r));
}

static bool reader_version_ok(Reader *r) {
        return r->p < r->end && *r->p++ == VALUE_VERSION;
}

/* Whole value consumed and well formed. */
static bool reader_done(const Reader *r) {
        return !r->bad && r->p == r->end;
}

static void key_make(uint8_t k[static KEY_SIZE], uint32_t device, int64_t t) {
        uint64_t u = (uint64_t) t;

        for (unsigned i = 0; i < 4; i++)
                k[i] = (uint8_t) (device >> (24 - 8 * i));
        for (unsigned i = 0; i < 8; i++)
                k[4 + i] = (uint8_t) (u >> (56 - 8 * i));
}

static int key_parse(const MDB_val *k, uint32_t *ret_device, int64_t *ret_t) {
        const uint8_t *b = k->mv_data;
        uint32_t d = 0;
        uint64_t u = 0;

        if (k->mv_size != KEY_SIZE)
                return -EBADMSG;
        for (unsigned i = 0; i < 4; i++)
                d = d << 8 | b[i];
        for (unsigned i = 0; i < 8; i++)
                u = u << 8 | b[4 + i];
        *ret_device = d;
        *ret_t = (int64_t) u;
        return 0;
}

static int64_t floor_to(int64_t t, int64_t unit) {
        int64_t q = t / unit;

        if (t % unit < 0)
                q--;
        return q * unit;
}

static uint8_t *put_fields(uint8_t *p, const StoreSample *x) {
        p = put_zz(p, x->power_mw);
        p = put_zz(p, x->voltage_mv);
        p = put_zz(p, x->current_ma);
        return put_zz(p, x->energy_mwh);
}

static void get_fields(Reader *r, StoreSample *x) {
        x->power_mw = get_zz(r);
        x->voltage_mv = get_zz(r);
        x->current_ma = get_zz(r);
        x->energy_mwh = get_zz(r);
}

static size_t raw_encode(const StoreSample *x, uint8_t buf[static 1 + SAMPLE_FIELDS_MAX]) {
        uint8_t *p = buf;

        *p++ = VALUE_VERSION;
        p = put_fields(p, x);
        return (size_t) (p - buf);
}

static int raw_decode(const MDB_val *k, const MDB_val *v, StoreSample *ret) {
        Reader r = reader_init(v);
        StoreSample x = {};
        int e;

        e = key_parse(k, &x.device, &x.ts_ms);
        if (e < 0)
                return e;
        if (!reader_version_ok(&r))
                return -EBADMSG;
        get_fields(&r, &x);
        if (!reader_done(&r))
                return -EBADMSG;
        *ret = x;
        return 0;
}

static size_t last_encode(const StoreSample *x, uint8_t buf[static 1 + VARINT_MAX + SAMPLE_FIELDS_MAX]) {
        uint8_t *p = buf;

        *p++ = VALUE_VERSION;
        p = put_uvarint(p, (uint64_t) x->ts_ms);
        p = put_fields(p, x);
        return (size_t) (p - buf);
}

static int last_decode(uint32_t device, const MDB_val *v, StoreSample *ret) {
        Reader r = reader_init(v);
        StoreSample x = { .device = device };

        if (!reader_version_ok(&r))
                return -EBADMSG;
        x.ts_ms = (int64_t) get_uvarint(&r);
        get_fields(&r, &x);
        if (!reader_done(&r) || x.ts_ms < 0)
                return -EBADMSG;
        *ret = x;
        return 0;
}

typedef struct SampleArray {
        StoreSample *items;
        size_t n, allocated;
} SampleArray;

static int sample_array_push(SampleArray *a, const StoreSample *x) {
        if (a->n == a->allocated) {
                size_t m = MAX(a->allocated * 2, (size_t) 64);
                StoreSample *t = reallocarray(a->items, m, sizeof(StoreSample));
                if (!t)
                        return -ENOMEM;
                a->items = t;
                a->allocated = m;
        }
        a->items[a->n++] = *x;
        return 0;
}

static void sample_array_done(SampleArray *a) {
        free(a->items);
}

typedef struct Agg {
        uint64_t count;
        int64_t energy, pmin, pmax, psum, first, last;
} Agg;

static void agg_merge(Agg *into, const Agg *x) {
        into->count += x->count;
        into->energy += x->energy;
        into->pmin = MIN(into->pmin, x->pmin);
        into->pmax = MAX(into->pmax, x->pmax);
        into->psum = wrap_add(into->psum, x->psum);
        into->first = MIN(into->first, x->first);
        into->last = MAX(into->last, x->last);
}

static size_t agg_encode(int64_t start, const Agg *a, uint8_t buf[static 1 + 7 * VARINT_MAX]) {
        uint8_t *p = buf;

        *p++ = VALUE_VERSION;
        p = put_uvarint(p, a->count);
        p = put_zz(p, a->energy);
        p = put_zz(p, a->pmin);
        p = put_zz(p, a->pmax);
        p = put_zz(p, a->psum);
        p = put_uvarint(p, (uint64_t) (a->first - start));
        p = put_uvarint(p, (uint64_t) (a->last - a->first));
        return (size_t) (p - buf);
}

static int agg_decode(int64_t start, const MDB_val *v, Agg *ret) {
        Reader r = reader_init(v);
        Agg a;

        if (!reader_version_ok(&r))
                return -EBADMSG;
        a.count = get_uvarint(&r);
        a.energy = get_zz(&r);
        a.pmin = get_zz(&r);
        a.pmax = get_zz(&r);
        a.psum = get_zz(&r);
        a.first = wrap_add(start, (int64_t) get_uvarint(&r));
        a.last = wrap_add(a.first, (int64_t) get_uvarint(&r));
        if (!reader_done(&r) || a.count == 0)
                return -EBADMSG;
        *ret = a;
        return 0;
}

typedef struct Period {
        int64_t start;
        Agg a;
} Period;

typedef struct PeriodArray {
        Period *items;
        size_t n, allocated;
} PeriodArray;

static int period_array_push(PeriodArray *a, int64_t start, const Agg *g) {
        if (a->n == a->allocated) {
                size_t m = MAX(a->allocated * 2, (size_t) 64);
                Period *t = reallocarray(a->items, m, sizeof(Period));
                if (!t)
                        return -ENOMEM;
                a->items = t;
                a->allocated = m;
        }
        a->items[a->n++] = (Period) { .start = start, .a = *g };
        return 0;
}

static void period_array_done(PeriodArray *a) {
        free(a->items);
}

static int period_cmp(const void *x, const void *y) {
        const Period *a = x, *b = y;
        return (a->start > b->start) - (a->start < b->start);
}

/* Sorts by start and folds periods that appear twice (a minute both packed
 * and still loose, after the clock stepped back over a packed hour). */
static void period_array_normalize(PeriodArray *a) {
        size_t j = 0;

        if (a->n == 0)
                return;
        qsort(a->items, a->n, sizeof(Period), period_cmp);
        for (size_t i = 0; i < a->n; i++) {
                if (j > 0 && a->items[j - 1].start == a->items[i].start)
                        agg_merge(&a->items[j - 1].a, &a->items[i].a);
                else
                        a->items[j++] = a->items[i];
        }
        a->n = j;
}

#define MINUTE_FIELDS_MAX (8 * VARINT_MAX)

/* The minute section of an hour: the minutes must be sorted, distinct and
 * inside the hour. Power fields are deltas from the previous minute, the
 * power sum is stored above count * min, which keeps it small. */
static uint8_t *minutes_encode(uint8_t *p, int64_t hour, const Period *m, size_t n) {
        Agg prev = {};

        p = put_uvarint(p, n);
        for (size_t i = 0; i < n; i++) {
                const Agg *a = &m[i].a;

                p = put_uvarint(p, (uint64_t) ((m[i].start - hour) / MINUTE_MS));
                p = put_uvarint(p, a->count);
                p = put_zz(p, a->energy);
                p = put_zz(p, wrap_sub(a->pmin, prev.pmin));
                p = put_zz(p, wrap_sub(a->pmax, prev.pmax));
                p = put_zz(p, wrap_sub(a->psum, (int64_t) ((uint64_t) a->pmin * a->count)));
                p = put_uvarint(p, (uint64_t) (a->first - m[i].start));
                p = put_uvarint(p, (uint64_t) (a->last - a->first));
                prev = *a;
        }
        return p;
}

/* Decodes a minute section, keeping minutes starting in [from_ms, to_ms)
 * when out is given. */
static int minutes_decode(Reader *r, int64_t hour, int64_t from_ms, int64_t to_ms, PeriodArray *out) {
        Agg prev = {};
        uint64_t n;

        n = get_uvarint(r);
        if (r->bad || n > 60)
                return -EBADMSG;
        for (uint64_t i = 0; i < n; i++) {
                uint64_t idx = get_uvarint(r);
                int64_t start = hour + (int64_t) MIN(idx, UINT64_C(59)) * MINUTE_MS;
                Agg a;

                a.count = get_uvarint(r);
                a.energy = get_zz(r);
                a.pmin = wrap_add(prev.pmin, get_zz(r));
                a.pmax = wrap_add(prev.pmax, get_zz(r));
                a.psum = wrap_add(get_zz(r), (int64_t) ((uint64_t) a.pmin * a.count));
                a.first = wrap_add(start, (int64_t) get_uvarint(r));
                a.last = wrap_add(a.first, (int64_t) get_uvarint(r));
                if (r->bad || idx >= 60 || a.count == 0)
                        return -EBADMSG;
                if (out && start >= from_ms && start < to_ms) {
                        int e = period_array_push(out, start, &a);
                        if (e < 0)
                                return e;
                }
                prev = a;
        }
        return 0;
}

/* Samples and minutes must be sorted and inside the hour at hour_start. */
static int block_encode(int64_t hour_start, const Period *m, size_t nm, const StoreSample *x, size_t n,
                        uint8_t **ret, size_t *ret_size) {
        StoreSample prev = { .ts_ms = hour_start };
        int64_t prev_dt = 0;
        uint8_t *buf, *p;

        buf = malloc(1 + 2 * VARINT_MAX + nm * MINUTE_FIELDS_MAX + n * (VARINT_MAX + SAMPLE_FIELDS_MAX));
        if (!buf)
                return -ENOMEM;
        p = buf;
        *p++ = VALUE_VERSION;
        p = minutes_encode(p, hour_start, m, nm);
        p = put_uvarint(p, n);
        for (size_t i = 0; i < n; i++) {
                int64_t dt = wrap_sub(x[i].ts_ms, prev.ts_ms);

                p = put_zz(p, wrap_sub(dt, prev_dt));
                p = put_zz(p, wrap_sub(x[i].power_mw, prev.power_mw));
                p = put_zz(p, wrap_sub(x[i].voltage_mv, prev.voltage_mv));
                p = put_zz(p, wrap_sub(x[i].current_ma, prev.current_ma));
                p = put_zz(p, wrap_sub(x[i].energy_mwh, prev.energy_mwh));
                prev = x[i];
                prev_dt = dt;
        }
        *ret = buf;
        *ret_size = (size_t) (p - buf);
        return 0;
}

/* Decodes a block: its minutes starting in [from_ms, to_ms) into
 * ret_minutes and its samples in that range into ret_samples, each if
 * given. ret_minutes_size is the size of the version byte plus minute
 * section, which is also a valid "minutes" value. */
static int block_decode(const MDB_val *k, const MDB_val *v, int64_t from_ms, int64_t to_ms,
                        PeriodArray *ret_minutes, SampleArray *ret_samples, size_t *ret_minutes_size) {
        Reader r = reader_init(v);
        StoreSample x = {};
        int64_t prev_dt = 0;
        uint64_t n;
        int e;

        e = key_parse(k, &x.device, &x.ts_ms);
        if (e < 0)
                return e;
        if (!reader_version_ok(&r))
                return -EBADMSG;
        e = minutes_decode(&r, x.ts_ms, from_ms, to_ms, ret_minutes);
        if (e < 0)
                return e;
        if (ret_minutes_size)
                *ret_minutes_size = (size_t) (r.p - (const uint8_t *) v->mv_data);
        if (!ret_samples)
                return 0;

        n = get_uvarint(&r);
        /* Each sample takes at least 5 bytes; refuses absurd counts early. */
        if (r.bad || n > (uint64_t) (r.end - r.p) / 5)
                return -EBADMSG;
        for (uint64_t i = 0; i < n; i++) {
                int64_t dt = wrap_add(prev_dt, get_zz(&r));

                x.ts_ms = wrap_add(x.ts_ms, dt);
                x.power_mw = wrap_add(x.power_mw, get_zz(&r));
                x.voltage_mv = wrap_add(x.voltage_mv, get_zz(&r));
                x.current_ma = wrap_add(x.current_ma, get_zz(&r));
                x.energy_mwh = wrap_add(x.energy_mwh, get_zz(&r));
                prev_dt = dt;
                if (r.bad)
                        return -EBADMSG;
                if (x.ts_ms >= from_ms && x.ts_ms < to_ms) {
                        e = sample_array_push(ret_samples, &x);
                        if (e < 0)
                                return e;
                }
        }
        return reader_done(&r) ? 0 : -EBADMSG;
}

/* A "minutes" value: an expired block's version byte and minute section. */
static int packed_minutes_decode(const MDB_val *k, const MDB_val *v, int64_t from_ms, int64_t to_ms, PeriodArray *out) {
        Reader r = reader_init(v);
        uint32_t device;
        int64_t hour;
        int e;

        e = key_parse(k, &device, &hour);
        if (e < 0)
                return e;
        if (!reader_version_ok(&r))
                return -EBADMSG;
        e = minutes_decode(&r, hour, from_ms, to_ms, out);
        if (e < 0)
                return e;
        return reader_done(&r) ? 0 : -EBADMSG;
}

/* ---- transactions ---- */

static int store_grow(Store *s) {
        MDB_envinfo info;
        MDB_stat st;
        uint64_t size;
        int r;

        r = store_errno(mdb_env_info(s->env, &info));
        if (r < 0)
                return r;
        r = store_errno(mdb_env_stat(s->env, &st));
        if (r < 0)
                return r;

        size = info.me_mapsize + MIN((uint64_t) info.me_mapsize, GROW_STEP_MAX);
        size = (size + st.ms_psize - 1) / st.ms_psize * st.ms_psize;
        return store_errno(mdb_env_set_mapsize(s->env, size));
}

typedef int (*WriteFunc)(Store *s, MDB_txn *txn, void *userdata);

/* Runs f in a write transaction and commits it, growing the map and running
 * f again from scratch when the map is full. f must not keep state across
 * attempts. Returns f's non-negative result. */
static int store_write(Store *s, WriteFunc f, void *userdata) {
        for (unsigned attempt = 0;; attempt++) {
                MDB_txn *txn;
                int r, k;

                r = store_errno(mdb_txn_begin(s->env, NULL, 0, &txn));
                if (r < 0)
                        return r;

                r = f(s, txn, userdata);
                if (r >= 0) {
                        /* Commit frees the transaction whatever it returns. */
                        k = store_errno(mdb_txn_commit(txn));
                        if (k == 0)
                                return r;
                        r = k;
                } else
                        mdb_txn_abort(txn);

                if (r != -ENOSPC || attempt >= GROW_ATTEMPTS_MAX)
                        return r;
                k = store_grow(s);
                if (k < 0)
                        return k;
        }
}

static int store_read(Store *s, MDB_txn **ret) {
        return store_errno(mdb_txn_begin(s->env, NULL, MDB_RDONLY, ret));
}

static int cursor_open(Store *s, MDB_txn *txn, unsigned db, MDB_cursor **ret) {
        return store_errno(mdb_cursor_open(txn, s->dbi[db], ret));
}

/* Positions c on the first key >= (device, t). -ENOENT past the end. */
static int cursor_seek(MDB_cursor *c, uint32_t device, int64_t t, MDB_val *k, MDB_val *v) {
        uint8_t kb[KEY_SIZE];

        key_make(kb, device, t);
        *k = (MDB_val) { .mv_size = sizeof kb, .mv_data = kb };
        return store_errno(mdb_cursor_get(c, k, v, MDB_SET_RANGE));
}

/* Positions c on the first key of the device after 'device'. */
static int cursor_next_device(MDB_cursor *c, uint32_t device, MDB_val *k, MDB_val *v) {
        if (device == UINT32_MAX)
                return -ENOENT;
        return cursor_seek(c, device + 1, 0, k, v);
}

static int db_put(Store *s, MDB_txn *txn, unsigned db, void *key, size_t key_size, void *data, size_t size) {
        MDB_val k = { .mv_size = key_size, .mv_data = key };
        MDB_val v = { .mv_size = size, .mv_data = data };

        return store_errno(mdb_put(txn, s->dbi[db], &k, &v, 0));
}

/* ---- open and close ---- */

static int open_txn(Store *s, MDB_txn *txn, void *userdata) {
        MDB_val k = { .mv_size = strlen("format"), .mv_data = (void *) "format" }, v;
        uint8_t version[4] = { STORE_FORMAT_VERSION & 0xff, 0, 0, 0 };
        int r;

        for (unsigned i = 0; i < _DB_MAX; i++) {
                r = store_errno(mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]));
                if (r < 0)
                        return r;
        }

        r = store_errno(mdb_get(txn, s->dbi[DB_META], &k, &v));
        if (r == -ENOENT) {
                v = (MDB_val) { .mv_size = sizeof version, .mv_data = version };
                return store_errno(mdb_put(txn, s->dbi[DB_META], &k, &v, 0));
        }
        if (r < 0)
                return r;
        if (v.mv_size != sizeof version || memcmp(v.mv_data, version, sizeof version) != 0)
                return -EPROTONOSUPPORT;
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;

        for (Store **p = &open_stores; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        if (s->env)
                mdb_env_close(s->env);
        free(s);
        return NULL;
}

int store_open(const char *path, StoreDayStartFunc day_start, void *userdata, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        struct stat st;
        int dead, r;

        if (!path || !day_start || !ret)
                return -EINVAL;

        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (stat(path, &st) < 0)
                return -errno;
        for (Store *i = open_stores; i; i = i->next)
                if (i->dev == st.st_dev && i->ino == st.st_ino)
                        return -EBUSY;

        s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        s->day_start = day_start;
        s->userdata = userdata;
        s->dev = st.st_dev;
        s->ino = st.st_ino;

        r = store_errno(mdb_env_create(&s->env));
        if (r < 0)
                return r;
        r = store_errno(mdb_env_set_maxdbs(s->env, _DB_MAX));
        if (r < 0)
                return r;
        r = store_errno(mdb_env_open(s->env, path, 0, 0600));
        if (r < 0)
                return r;
        /* Reader slots of processes that died (a crash, a kill) would
         * otherwise pin old pages and grow the file forever. */
        r = store_errno(mdb_reader_check(s->env, &dead));
        if (r < 0)
                return r;

        r = store_write(s, open_txn, NULL);
        if (r < 0)
                return r;

        s->next = open_stores;
        open_stores = s;
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- append ---- */

static int period_start(Store *s, StoreResolution res, int64_t ts, int64_t *ret) {
        int64_t start;

        switch (res) {
        case STORE_MINUTE:
                start = floor_to(ts, MINUTE_MS);
                break;
        case STORE_HOUR:
                start = floor_to(ts, HOUR_MS);
                break;
        default:
                start = s->day_start(ts, s->userdata);
                /* A wrong callback would silently corrupt every day rollup. */
                if (start > ts || ts - start >= NEXT_DAY_PROBE_MS)
                        return -ERANGE;
        }
        *ret = start;
        return 0;
}

static int get_last(Store *s, MDB_txn *txn, uint32_t device, StoreSample *ret) {
        uint8_t kb[4] = { device >> 24, device >> 16, device >> 8, device };
        MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
        int r;

        r = store_errno(mdb_get(txn, s->dbi[DB_LAST], &k, &v));
        if (r < 0)
                return r;
        return last_decode(device, &v, ret);
}

static int rollup_add(Store *s, MDB_txn *txn, StoreResolution res, const StoreSample *x, int64_t delta) {
        uint8_t kb[KEY_SIZE], vb[1 + 7 * VARINT_MAX];
        MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
        int64_t start;
        Agg a;
        int r;

        r = period_start(s, res, x->ts_ms, &start);
        if (r < 0)
                return r;
        key_make(kb, x->device, start);

        r = store_errno(mdb_get(txn, s->dbi[rollup_db[res]], &k, &v));
        if (r == -ENOENT)
                a = (Agg) { .pmin = x->power_mw, .pmax = x->power_mw, .first = x->ts_ms };
        else if (r < 0)
                return r;
        else {
                r = agg_decode(start, &v, &a);
                if (r < 0)
                        return r;
        }

        a.count++;
        a.energy += delta;
        a.pmin = MIN(a.pmin, x->power_mw);
        a.pmax = MAX(a.pmax, x->power_mw);
        a.psum = wrap_add(a.psum, x->power_mw);
        a.last = x->ts_ms;

        return db_put(s, txn, rollup_db[res], kb, sizeof kb, vb, agg_encode(start, &a, vb));
}

typedef struct AppendArgs {
        const StoreSample *samples;
        size_t n;
} AppendArgs;

static int append_one(Store *s, MDB_txn *txn, const StoreSample *x) {
        uint8_t kb[KEY_SIZE], vb[1 + VARINT_MAX + SAMPLE_FIELDS_MAX];
        uint8_t lk[4] = { x->device >> 24, x->device >> 16, x->device >> 8, x->device };
        StoreSample prev;
        int64_t delta = 0;
        int r;

        if (x->ts_ms < 0 || x->energy_mwh < 0)
                return -EINVAL;

        r = get_last(s, txn, x->device, &prev);
        if (r >= 0) {
                if (x->ts_ms <= prev.ts_ms || x->energy_mwh < prev.energy_mwh)
                        return -EINVAL;
                delta = x->energy_mwh - prev.energy_mwh;
        } else if (r != -ENOENT)
                return r;

        key_make(kb, x->device, x->ts_ms);
        r = db_put(s, txn, DB_RAW, kb, sizeof kb, vb, raw_encode(x, vb));
        if (r < 0)
                return r;
        r = db_put(s, txn, DB_LAST, lk, sizeof lk, vb, last_encode(x, vb));
        if (r < 0)
                return r;

        for (StoreResolution res = 0; res < _STORE_RESOLUTION_MAX; res++) {
                r = rollup_add(s, txn, res, x, delta);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int append_txn(Store *s, MDB_txn *txn, void *userdata) {
        const AppendArgs *a = userdata;
        int r;

        for (size_t i = 0; i < a->n; i++) {
                r = append_one(s, txn, &a->samples[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

int store_append(Store *s, const StoreSample *samples, size_t n) {
        AppendArgs a = { .samples = samples, .n = n };

        if (!s || (!samples && n > 0))
                return -EINVAL;
        if (n == 0)
                return 0;
        return store_write(s, append_txn, &a);
}

/* ---- compaction and retention ---- */

/* Loose rollups of one database with start in [from_ms, to_ms); with
 * take, they are deleted as they are read (compaction moves them). */
static int collect_rows(Store *s, MDB_txn *txn, unsigned db, uint32_t device, int64_t from_ms, int64_t to_ms,
                        bool take, PeriodArray *out) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        MDB_val k, v;
        int r;

        r = cursor_open(s, txn, db, &c);
        if (r < 0)
                return r;
        for (r = cursor_seek(c, device, from_ms, &k, &v); r >= 0;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                uint32_t d;
                int64_t start;
                Agg a;

                r = key_parse(&k, &d, &start);
                if (r < 0)
                        return r;
                if (d != device || start >= to_ms)
                        break;
                r = agg_decode(start, &v, &a);
                if (r < 0)
                        return r;
                r = period_array_push(out, start, &a);
                if (r < 0)
                        return r;
                if (take) {
                        r = store_errno(mdb_cursor_del(c, 0));
                        if (r < 0)
                                return r;
                }
        }
        return r == -ENOENT ? 0 : r;
}

/* Packs the raw rows of (device, hour) starting at the cursor position and
 * the hour's minute rollups into the hour's block (merging a block already
 * there), deleting them. Leaves the cursor on the first row after them. */
static int compact_hour(Store *s, MDB_txn *txn, MDB_cursor *c, uint32_t device, int64_t hour,
                        MDB_val *k, MDB_val *v, size_t *ret_rows) {
        _cleanup_(sample_array_done) SampleArray a = {};
        _cleanup_(period_array_done) PeriodArray m = {};
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t kb[KEY_SIZE];
        MDB_val bk = { .mv_size = sizeof kb, .mv_data = kb }, bv;
        size_t rows = 0, size;
        int r, walk;

        key_make(kb, device, hour);
        r = store_errno(mdb_get(txn, s->dbi[DB_BLOCK], &bk, &bv));
        if (r >= 0)
                r = block_decode(&bk, &bv, INT64_MIN, INT64_MAX, &m, &a, NULL);
        if (r < 0 && r != -ENOENT)
                return r;

        for (walk = 0; walk == 0;) {
                StoreSample x;

                r = raw_decode(k, v, &x);
                if (r < 0)
                        return r;
                if (x.device != device || x.ts_ms >= hour + HOUR_MS)
                        break;
                r = sample_array_push(&a, &x);
                if (r < 0)
                        return r;
                rows++;
                r = store_errno(mdb_cursor_del(c, 0));
                if (r < 0)
                        return r;
                /* After a delete the cursor already sits on the next row;
                 * MDB_NEXT returns that row rather than skipping it. */
                walk = store_errno(mdb_cursor_get(c, k, v, MDB_NEXT));
                if (walk < 0 && walk != -ENOENT)
                        return walk;
        }

        r = collect_rows(s, txn, DB_MINUTE, device, hour, hour + HOUR_MS, true, &m);
        if (r < 0)
                return r;
        period_array_normalize(&m);

        r = block_encode(hour, m.items, m.n, a.items, a.n, &buf, &size);
        if (r < 0)
                return r;
        r = db_put(s, txn, DB_BLOCK, kb, sizeof kb, buf, size);
        if (r < 0)
                return r;

        *ret_rows = rows;
        if (walk < 0)
                return walk;    /* -ENOENT: no rows left at all */
        /* The puts may have moved pages under k and v; read them again. */
        return store_errno(mdb_cursor_get(c, k, v, MDB_GET_CURRENT));
}

static int compact_txn(Store *s, MDB_txn *txn, void *userdata) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        int64_t now_ms = *(const int64_t *) userdata;
        size_t done = 0;
        MDB_val k, v;
        int r;

        r = cursor_open(s, txn, DB_RAW, &c);
        if (r < 0)
                return r;

        r = store_errno(mdb_cursor_get(c, &k, &v, MDB_FIRST));
        while (r >= 0) {
                uint32_t device;
                int64_t ts, hour;
                size_t rows = 0;

                r = key_parse(&k, &device, &ts);
                if (r < 0)
                        return r;
                hour = floor_to(ts, HOUR_MS);
                if (hour + HOUR_MS > now_ms) {
                        /* Rows are in time order: the rest of this device is open too. */
                        r = cursor_next_device(c, device, &k, &v);
                        continue;
                }
                if (done >= COMPACT_ROWS_PER_CALL)
                        return 1;
                r = compact_hour(s, txn, c, device, hour, &k, &v, &rows);
                done += rows;
        }
        return r == -ENOENT ? 0 : r;
}

int store_compact(Store *s, int64_t now_ms) {
        if (!s)
                return -EINVAL;
        return store_write(s, compact_txn, &now_ms);
}

/* Saves a block's minute rollups in "minutes" before the block goes. */
static int keep_minutes(Store *s, MDB_txn *txn, const MDB_val *k, const MDB_val *v) {
        _cleanup_(period_array_done) PeriodArray m = {};
        uint8_t kb[KEY_SIZE], buf[1 + VARINT_MAX + 60 * MINUTE_FIELDS_MAX], *p;
        MDB_val mk = { .mv_size = sizeof kb, .mv_data = kb }, mv;
        uint32_t device;
        int64_t hour;
        size_t size;
        int r;

        r = key_parse(k, &device, &hour);
        if (r < 0)
                return r;
        memcpy(kb, k->mv_data, sizeof kb);

        r = store_errno(mdb_get(txn, s->dbi[DB_MINUTES], &mk, &mv));
        if (r == -ENOENT) {
                /* The usual case: the block's own prefix is the value. */
                r = block_decode(k, v, 0, 0, NULL, NULL, &size);
                if (r < 0)
                        return r;
                return db_put(s, txn, DB_MINUTES, kb, sizeof kb, v->mv_data, size);
        }
        if (r < 0)
                return r;

        /* Only when the clock stepped back over an expired hour. */
        r = packed_minutes_decode(&mk, &mv, INT64_MIN, INT64_MAX, &m);
        if (r < 0)
                return r;
        r = block_decode(k, v, INT64_MIN, INT64_MAX, &m, NULL, NULL);
        if (r < 0)
                return r;
        period_array_normalize(&m);
        p = buf;
        *p++ = VALUE_VERSION;
        p = minutes_encode(p, hour, m.items, m.n);
        return db_put(s, txn, DB_MINUTES, kb, sizeof kb, buf, (size_t) (p - buf));
}

/* Deletes, device by device, the leading keys of db whose period (starting
 * at the key's time, 'span' long) ends at or before the cutoff; a block's
 * minute rollups move to the "minutes" database. */
static int expire_db(Store *s, MDB_txn *txn, unsigned db, int64_t span, int64_t cutoff, size_t *budget) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        MDB_val k, v;
        int r;

        r = cursor_open(s, txn, db, &c);
        if (r < 0)
                return r;

        r = store_errno(mdb_cursor_get(c, &k, &v, MDB_FIRST));
        while (r >= 0) {
                uint32_t device;
                int64_t t;

                r = key_parse(&k, &device, &t);
                if (r < 0)
                        return r;
                if (t > cutoff - span) {
                        r = cursor_next_device(c, device, &k, &v);
                        continue;
                }
                if (*budget == 0)
                        return 1;
                (*budget)--;
                if (db == DB_BLOCK) {
                        r = keep_minutes(s, txn, &k, &v);
                        if (r < 0)
                                return r;
                }
                r = store_errno(mdb_cursor_del(c, 0));
                if (r < 0)
                        return r;
                r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT));
        }
        return r == -ENOENT ? 0 : r;
}

static int expire_txn(Store *s, MDB_txn *txn, void *userdata) {
        int64_t cutoff = *(const int64_t *) userdata;
        size_t budget = EXPIRE_ROWS_PER_CALL;
        int r;

        /* A raw row is a point in time: it goes once it is older than the
         * cutoff, i.e. a span of 1 ms. */
        r = expire_db(s, txn, DB_RAW, 1, cutoff, &budget);
        if (r != 0)
                return r;
        return expire_db(s, txn, DB_BLOCK, HOUR_MS, cutoff, &budget);
}

int store_expire(Store *s, int64_t older_than_ms) {
        if (!s)
                return -EINVAL;
        return store_write(s, expire_txn, &older_than_ms);
}

static int delete_device_txn(Store *s, MDB_txn *txn, void *userdata) {
        uint32_t device = *(const uint32_t *) userdata;
        uint8_t lk[4] = { device >> 24, device >> 16, device >> 8, device };
        MDB_val k = { .mv_size = sizeof lk, .mv_data = lk };
        int r;

        r = store_errno(mdb_del(txn, s->dbi[DB_LAST], &k, NULL));
        if (r < 0 && r != -ENOENT)
                return r;

        for (unsigned db = DB_RAW; db < _DB_MAX; db++) {
                _cleanup_cursor_ MDB_cursor *c = NULL;
                MDB_val v;

                r = cursor_open(s, txn, db, &c);
                if (r < 0)
                        return r;
                for (r = cursor_seek(c, device, 0, &k, &v); r >= 0;
                     r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                        uint32_t d;
                        int64_t t;

                        r = key_parse(&k, &d, &t);
                        if (r < 0)
                                return r;
                        if (d != device)
                                break;
                        r = store_errno(mdb_cursor_del(c, 0));
                        if (r < 0)
                                return r;
                }
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

int store_delete_device(Store *s, uint32_t device) {
        if (!s)
                return -EINVAL;
        return store_write(s, delete_device_txn, &device);
}

/* ---- queries ---- */

int store_last_sample(Store *s, uint32_t device, StoreSample *ret) {
        _cleanup_txn_ MDB_txn *txn = NULL;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = store_read(s, &txn);
        if (r < 0)
                return r;
        return get_last(s, txn, device, ret);
}

int store_query_raw(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms,
                    StoreSample **ret, size_t *ret_n) {
        _cleanup_(sample_array_done) SampleArray a = {};
        _cleanup_txn_ MDB_txn *txn = NULL;
        MDB_val k, v;
        int r;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        from_ms = MAX(from_ms, INT64_C(0));

        r = store_read(s, &txn);
        if (r < 0)
                return r;

        for (unsigned db = DB_BLOCK;; db = DB_RAW) {
                _cleanup_cursor_ MDB_cursor *c = NULL;

                r = cursor_open(s, txn, db, &c);
                if (r < 0)
                        return r;
                for (r = cursor_seek(c, device, db == DB_BLOCK ? floor_to(from_ms, HOUR_MS) : from_ms, &k, &v);
                     r >= 0;
                     r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                        StoreSample x;

                        r = key_parse(&k, &x.device, &x.ts_ms);
                        if (r < 0)
                                return r;
                        if (x.device != device || x.ts_ms >= to_ms)
                                break;
                        if (db == DB_BLOCK)
                                r = block_decode(&k, &v, from_ms, to_ms, NULL, &a, NULL);
                        else {
                                r = raw_decode(&k, &v, &x);
                                if (r >= 0)
                                        r = sample_array_push(&a, &x);
                        }
                        if (r < 0)
                                return r;
                }
                if (r < 0 && r != -ENOENT)
                        return r;
                if (db == DB_RAW)
                        break;
        }

        *ret_n = a.n;
        *ret = TAKE_PTR(a.items);
        return 0;
}

/* Minute rollups live loose (open hours), in blocks (packed hours) and in
 * the "minutes" database (expired hours); this gathers all three. */
static int collect_minutes(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, PeriodArray *out) {
        int r;

        r = collect_rows(s, txn, DB_MINUTE, device, from_ms, to_ms, false, out);
        if (r < 0)
                return r;

        for (unsigned db = DB_BLOCK;; db = DB_MINUTES) {
                _cleanup_cursor_ MDB_cursor *c = NULL;
                MDB_val k, v;

                r = cursor_open(s, txn, db, &c);
                if (r < 0)
                        return r;
                for (r = cursor_seek(c, device, floor_to(from_ms, HOUR_MS), &k, &v); r >= 0;
                     r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                        uint32_t d;
                        int64_t hour;

                        r = key_parse(&k, &d, &hour);
                        if (r < 0)
                                return r;
                        if (d != device || hour >= to_ms)
                                break;
                        if (db == DB_BLOCK)
                                r = block_decode(&k, &v, from_ms, to_ms, out, NULL, NULL);
                        else
                                r = packed_minutes_decode(&k, &v, from_ms, to_ms, out);
                        if (r < 0)
                                return r;
                }
                if (r < 0 && r != -ENOENT)
                        return r;
                if (db == DB_MINUTES)
                        break;
        }

        period_array_normalize(out);
        return 0;
}

int store_query_rollup(Store *s, uint32_t device, StoreResolution res, int64_t from_ms, int64_t to_ms,
                       StoreRollup **ret, size_t *ret_n) {
        _cleanup_(period_array_done) PeriodArray p = {};
        _cleanup_txn_ MDB_txn *txn = NULL;
        StoreRollup *items;
        int r;

        if (!s || res < 0 || res >= _STORE_RESOLUTION_MAX || !ret || !ret_n)
                return -EINVAL;
        from_ms = MAX(from_ms, INT64_C(0));

        r = store_read(s, &txn);
        if (r < 0)
                return r;
        if (res == STORE_MINUTE)
                r = collect_minutes(s, txn, device, from_ms, to_ms, &p);
        else
                r = collect_rows(s, txn, rollup_db[res], device, from_ms, to_ms, false, &p);
        if (r < 0)
                return r;

        items = calloc(MAX(p.n, (size_t) 1), sizeof(StoreRollup));
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < p.n; i++) {
                const Agg *a = &p.items[i].a;

                items[i] = (StoreRollup) {
                        .period_start_ms = p.items[i].start,
                        .energy_mwh = a->energy,
                        .power_min_mw = a->pmin,
                        .power_avg_mw = a->psum / (int64_t) a->count,
                        .power_max_mw = a->pmax,
                        .count = a->count,
                        .first_ts_ms = a->first,
                        .last_ts_ms = a->last,
                };
        }

        *ret_n = p.n;
        *ret = items;
        return 0;
}

static int rollup_energy(Store *s, MDB_txn *txn, StoreResolution res, uint32_t device, int64_t start, int64_t *ret) {
        uint8_t kb[KEY_SIZE];
        MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
        Agg a;
        int r;

        key_make(kb, device, start);
        r = store_errno(mdb_get(txn, s->dbi[rollup_db[res]], &k, &v));
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        r = agg_decode(start, &v, &a);
        if (r < 0)
                return r;
        *ret = a.energy;
        return 0;
}

/* The device's span with data: [its first hour, end of its last minute). */
static int device_span(Store *s, MDB_txn *txn, uint32_t device, int64_t *ret_first, int64_t *ret_end) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        StoreSample last;
        MDB_val k, v;
        uint32_t d;
        int64_t t;
        int r;

        r = get_last(s, txn, device, &last);
        if (r < 0)
                return r;
        /* Hour rollups are never moved or expired. */
        r = cursor_open(s, txn, DB_HOUR, &c);
        if (r < 0)
                return r;
        r = cursor_seek(c, device, 0, &k, &v);
        if (r < 0)
                return r;
        r = key_parse(&k, &d, &t);
        if (r < 0)
                return r;
        if (d != device)
                return -ENOENT;

        *ret_first = t;
        *ret_end = floor_to(last.ts_ms, MINUTE_MS) + MINUTE_MS;
        return 0;
}

int store_energy(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, int64_t *ret_mwh) {
        _cleanup_txn_ MDB_txn *txn = NULL;
        int64_t t, end, first, last, sum = 0;
        int r;

        if (!s || !ret_mwh)
                return -EINVAL;

        t = floor_to(MAX(from_ms, INT64_C(0)) + MINUTE_MS - 1, MINUTE_MS);
        end = floor_to(MAX(to_ms, INT64_C(0)) + MINUTE_MS - 1, MINUTE_MS);

        r = store_read(s, &txn);
        if (r < 0)
                return r;

        /* Only the device's own span is walked, whatever range was asked. */
        r = device_span(s, txn, device, &first, &last);
        if (r == -ENOENT) {
                *ret_mwh = 0;
                return 0;
        }
        if (r < 0)
                return r;
        t = MAX(t, first);
        end = MIN(end, last);

        /* Covers [t, end) greedily with the coarsest period that starts at t
         * and ends inside the range: a local day, a UTC hour, or else a run
         * of minutes up to the next hour or local midnight. */
        while (t < end) {
                int64_t day = s->day_start(t, s->userdata);
                int64_t next_day = s->day_start(day + NEXT_DAY_PROBE_MS, s->userdata);
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
                        r = collect_minutes(s, txn, device, t, next, &m);
                        for (size_t i = 0; i < m.n; i++)
                                e += m.items[i].a.energy;
                }
                if (r < 0)
                        return r;
                sum += e;
                t = next;
        }

        *ret_mwh = sum;
        return 0;
}

int store_stats(Store *s, StoreStats *ret) {
        _cleanup_txn_ MDB_txn *txn = NULL;
        _cleanup_cursor_ MDB_cursor *c = NULL;
        StoreStats st = {};
        MDB_stat ms;
        MDB_val k, v;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = store_read(s, &txn);
        if (r < 0)
                return r;

        /* dbi 0 is LMDB's main database, which holds the named ones. */
        r = store_errno(mdb_stat(txn, 0, &ms));
        if (r < 0)
                return r;
        st.page_size = ms.ms_psize;
        st.used_bytes = (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * ms.ms_psize;

        for (unsigned db = 0; db < _DB_MAX; db++) {
                uint64_t bytes;

                r = store_errno(mdb_stat(txn, s->dbi[db], &ms));
                if (r < 0)
                        return r;
                bytes = (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * ms.ms_psize;
                st.used_bytes += bytes;
                if (db == DB_RAW)
                        st.raw_rows = ms.ms_entries;
                else if (db == DB_BLOCK)
                        st.blocks = ms.ms_entries;
                else if (db == DB_MINUTES)
                        st.rollup_bytes[STORE_MINUTE] += bytes;
                for (StoreResolution res = 0; res < _STORE_RESOLUTION_MAX; res++)
                        if (rollup_db[res] == db)
                                st.rollup_bytes[res] += bytes;
        }

        r = cursor_open(s, txn, DB_BLOCK, &c);
        if (r < 0)
                return r;
        for (r = store_errno(mdb_cursor_get(c, &k, &v, MDB_FIRST)); r >= 0;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                Reader rd = reader_init(&v);
                size_t minutes_size;
                uint64_t n;

                r = block_decode(&k, &v, 0, 0, NULL, NULL, &minutes_size);
                if (r < 0)
                        return r;
                rd.p += minutes_size;
                n = get_uvarint(&rd);
                if (rd.bad)
                        return -EBADMSG;
                st.block_bytes += v.mv_size;
                st.block_minute_bytes += minutes_size;
                st.block_samples += n;
        }
        if (r != -ENOENT)
                return r;

        *ret = st;
        return 0;
}
