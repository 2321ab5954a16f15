/* SPDX-License-Identifier: MIT */

/*
 * The LMDB side of the store. On-disk format, version 3 (meta key
 * "format" = le32 3); stores of versions 1 and 2 are read as they are and
 * marked version 3 at open, new values being written the version 3 way
 * from then on (every value carries its own version byte), so that an
 * older reader refuses them rather than miss what it cannot read. The
 * keys' codecs are in store-keys.c.
 *
 * One LMDB environment (data.mdb, lock.mdb) beside the write-ahead log
 * (store-log.h) in the store's directory, with these named databases.
 * Keys are big-endian, so that byte order is numeric order; times are UTC
 * milliseconds >= 0.
 *
 *   meta    "format" -> le32 format version; "checkpoint" -> le64 seq of
 *           the newest log record whose round is in LMDB, written in the
 *           checkpoint's transaction: replay and readers skip up to it
 *   last    be32 device -> u8 1, uvarint ts, zz power, zz voltage,
 *           zz current, zz energy: the device's newest checkpointed
 *           sample, kept apart so that retention never loses the base of
 *           the cumulative energy
 *   counter be32 device -> u8 2, uvarint ts, zz cumulative, zz counter,
 *           zz lo, zz hi, zz power: the energy account's state (energy.h)
 *           as of the newest round checkpointed for the device
 *   first   be32 device -> be64 time of its first checkpointed sample
 *   cseg    be64 hour || be64 generation || be32 device || be32 (t0 -
 *           hour) -> BLOCK2: samples of one device in one UTC hour (t0 =
 *           the first), with the minute rollups of the poll intervals they
 *           end, written by the checkpoint of that generation (the seq of
 *           the newest round it holds). Hour and checkpoint first, so that
 *           a checkpoint's blocks of all devices land side by side at the
 *           end of the tree, in a few pages, not one page per device; a
 *           device's blocks of an hour are found by skipping from
 *           generation to generation. Each checkpoint writes new blocks
 *           (several per hour when checkpoints fall inside hours); a
 *           minute cut by a checkpoint is in two blocks, and readers add
 *           the two parts up.
 *   seg     be64 hour || be32 device || be64 t0 -> BLOCK2: version 2's
 *           blocks, keyed without the generation, so that a checkpoint
 *           within an hour put each device's block beside its earlier ones
 *           of the hour (one leaf page per device); read, expired, never
 *           written
 *   hours, days
 *           be64 period_start || be32 device -> ROLLUP, time first for
 *           the same reason, added up by each checkpoint
 *   minutes be32 device || be64 t0 -> u8 2, MINUTES2 (base floor(t0,
 *           minute)) or u8 1, MINUTES1: the minute rollups of a block whose
 *           samples retention removed
 *   imported
 *           be32 device || be64 day_start -> u8 1, zz energy: a local day
 *           the device counted before kasamond recorded it, taken from
 *           its own statistics (store-import.c). Kept apart from the
 *           rollups, which stay kasamond's own count; a store without
 *           this database (written before it existed) gets it empty at
 *           open, and a reader that does not know it never opens it (it
 *           came within version 2)
 *   block, hour, day, raw, minute
 *           version 1 only, device first (be32 device || be64 time): blocks
 *           (BLOCK1), hour and day rollups, raw rows (u8 1, zz power, zz
 *           voltage, zz current, zz energy) and the loose minute rollups
 *           of their hours; read, expired, never written
 *
 *   BLOCK2 = u8 2, uvarint count, MINUTES2 with base floor(t0, minute),
 *           SAMPLES; BLOCK1 (t0 = the hour) = u8 1, MINUTES1, uvarint
 *           count, SAMPLES
 *   SAMPLES = per sample: zz(dt - previous dt), zz(dpower), zz(dvoltage),
 *           zz(dcurrent), zz(denergy), dt being the step from the previous
 *           sample's ts (from t0 for the first, with a previous dt of 0) and
 *           the other deltas starting from 0
 *   ROLLUP = u8 2, uvarint count, zz energy, uvarint covered_ms, zz
 *           power_min, zz power_max, zz power_sum, and when count > 0
 *           uvarint (first_ts - start), uvarint (last_ts - first_ts);
 *           version 1 had no covered_ms and always first/last
 *   MINUTES2 = uvarint n, then per minute, in order: zz index from base
 *           (the first; a block's first interval can reach back before
 *           t0) or uvarint step from the previous index, uvarint count,
 *           zz energy, uvarint covered_ms, zz(power_min - previous
 *           minute's), zz(power_max - previous minute's), zz(power_sum -
 *           count * power_min), and when count > 0 uvarint (first_ts -
 *           start), uvarint (last_ts - first_ts)
 *   MINUTES1 = uvarint n (<= 60), then per minute uvarint index in the
 *           hour and the version 1 fields (no covered_ms)
 *
 * Rollups follow the rule in store.h: an interval's energy is split over
 * the periods it crosses, by time; a gap's (longer than the gap limit)
 * goes whole to the period of its end sample, and covers no time. Version
 * 1 rollups counted each interval whole in its end sample's period and
 * averaged the samples' powers; they are read as they are (covered 0, so
 * their average stays the mean).
 *
 * uvarint is LEB128; zz is zigzag then uvarint. Arithmetic on deltas wraps
 * modulo 2^64, so any int64 round-trips. Minute and hour periods are
 * aligned to UTC; a day is the local day given by the caller's day_start
 * function (23 or 25 hours across DST changes).
 *
 * Per device, the in-memory tail is newer than LMDB; in LMDB, blocks may
 * come after the raw rows of a version 1 store, which readers sort.
 */

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include "macro.h"
#include "store-internal.h"

#define STORE_FORMAT_VERSION 3u

static const char *const db_names[_DB_MAX] = {
        [DB_META] = "meta",
        [DB_LAST] = "last",
        [DB_RAW] = "raw",
        [DB_BLOCK] = "block",
        [DB_MINUTE] = "minute",
        [DB_HOUR] = "hour",
        [DB_DAY] = "day",
        [DB_MINUTES] = "minutes",
        [DB_COUNTER] = "counter",
        [DB_SEG] = "seg",
        [DB_HOURS] = "hours",
        [DB_DAYS] = "days",
        [DB_FIRST] = "first",
        [DB_IMPORTED] = "imported",
        [DB_CSEG] = "cseg",
};

const unsigned rollup_db[_STORE_RESOLUTION_MAX] = {
        [STORE_MINUTE] = DB_MINUTE,
        [STORE_HOUR] = DB_HOUR,
        [STORE_DAY] = DB_DAY,
};

const unsigned rollup_tdb[_STORE_RESOLUTION_MAX] = {
        [STORE_HOUR] = DB_HOURS,
        [STORE_DAY] = DB_DAYS,
};

/* The one place LMDB return codes become errno values. A full map is
 * -ENOBUFS here (grown by store_write()) and -EFBIG once at its cap; a
 * full disk is LMDB's ENOSPC. */
int store_errno(int rc) {
        switch (rc) {
        case MDB_SUCCESS:
                return 0;
        case MDB_NOTFOUND:
                return -ENOENT;
        case MDB_KEYEXIST:
                return -EEXIST;
        case MDB_MAP_FULL:
                return -ENOBUFS;
        case MDB_MAP_RESIZED:
                return -EAGAIN;
        case MDB_DBS_FULL:
        case MDB_READERS_FULL:
        case MDB_TLS_FULL:
        case MDB_TXN_FULL:
        case MDB_CURSOR_FULL:
        case MDB_PAGE_FULL:
                return -ENOMEM;
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

void cursor_closep(MDB_cursor **c) {
        if (*c)
                mdb_cursor_close(*c);
}

static Reader reader_val(const MDB_val *v) {
        return reader_make(v->mv_data, v->mv_size);
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

int raw_decode(const MDB_val *k, const MDB_val *v, StoreSample *ret) {
        Reader r = reader_val(v);
        StoreSample x = {};
        int e;

        e = key_parse(k, &x.device, &x.ts_ms);
        if (e < 0)
                return e;
        if (r.p >= r.end || *r.p++ != 1)
                return -EBADMSG;
        get_fields(&r, &x);
        if (!reader_done(&r))
                return -EBADMSG;
        *ret = x;
        return 0;
}

/* ---- blocks ---- */


/* Reads a block's header, and its minutes starting in [from, to) into
 * minutes if given. */
int block_open(int64_t t0, const MDB_val *v, int64_t from_ms, int64_t to_ms, PeriodArray *minutes,
                      BlockInfo *ret) {
        Reader r = reader_val(v);
        int e;

        if (r.p >= r.end)
                return -EBADMSG;
        ret->version = *r.p++;
        if (ret->version == 2) {
                ret->count = get_uvarint(&r);
                e = minutes_decode(&r, 2, floor_to(t0, MINUTE_MS), from_ms, to_ms, minutes);
        } else if (ret->version == 1) {
                e = minutes_decode(&r, 1, t0, from_ms, to_ms, minutes);
                if (e >= 0)
                        ret->count = get_uvarint(&r);
        } else
                return -EBADMSG;
        if (e < 0)
                return e;
        /* Each sample takes at least 5 bytes; refuses absurd counts early. */
        if (r.bad || ret->count > (uint64_t) (r.end - r.p) / 5)
                return -EBADMSG;
        ret->minutes_end = (size_t) (r.p - (const uint8_t *) v->mv_data);
        ret->samples = r;
        return 0;
}

int block_samples(uint32_t device, int64_t t0, BlockInfo *b, int64_t from_ms, int64_t to_ms, SampleArray *out) {
        StoreSample x = { .device = device, .ts_ms = t0 };
        int64_t prev_dt = 0;
        int e;

        for (uint64_t i = 0; i < b->count; i++) {
                e = samples_decode_one(&b->samples, &x, &prev_dt);
                if (e < 0)
                        return e;
                if (out && x.ts_ms >= from_ms && x.ts_ms < to_ms) {
                        e = sample_array_push(out, &x);
                        if (e < 0)
                                return e;
                }
        }
        return reader_done(&b->samples) ? 0 : -EBADMSG;
}

int packed_minutes_decode(const MDB_val *k, const MDB_val *v, int64_t from_ms, int64_t to_ms,
                                 PeriodArray *out) {
        Reader r = reader_val(v);
        uint32_t device;
        unsigned version;
        int64_t t0;
        int e;

        e = key_parse(k, &device, &t0);
        if (e < 0)
                return e;
        if (r.p >= r.end)
                return -EBADMSG;
        version = *r.p++;
        if (version != 1 && version != 2)
                return -EBADMSG;
        e = minutes_decode(&r, version, version == 1 ? t0 : floor_to(t0, MINUTE_MS), from_ms, to_ms, out);
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
        if (info.me_mapsize >= s->o.map_max_bytes)
                return -EFBIG;
        size = info.me_mapsize + MIN((uint64_t) info.me_mapsize, UINT64_C(1) << 30);
        size = MIN(size, s->o.map_max_bytes);
        size = size / st.ms_psize * st.ms_psize;
        if (size <= info.me_mapsize)
                return -EFBIG;
        pthread_rwlock_wrlock(&s->map_lock);
        r = store_errno(mdb_env_set_mapsize(s->env, size));
        pthread_rwlock_unlock(&s->map_lock);
        return r;
}


/* Runs f in a write transaction and commits it, growing the map and running
 * f again from scratch when the map (and only the map) is full. Returns f's
 * non-negative result. */
int store_write(Store *s, WriteFunc f, void *userdata) {
        for (;;) {
                MDB_txn *txn;
                int r, k;

                pthread_rwlock_rdlock(&s->map_lock);
                r = store_errno(mdb_txn_begin(s->env, NULL, 0, &txn));
                if (r >= 0) {
                        r = f(s, txn, userdata);
                        if (r >= 0) {
                                /* Commit frees the transaction whatever it returns. */
                                k = store_errno(mdb_txn_commit(txn));
                                if (k < 0)
                                        r = k;
                        } else
                                mdb_txn_abort(txn);
                }
                pthread_rwlock_unlock(&s->map_lock);
                if (r != -ENOBUFS)
                        return r;
                k = store_grow(s);
                if (k < 0)
                        return k;
        }
}

/* The caller's thread reuses one read transaction handle: renewing it is
 * cheaper than a new one, which with MDB_NOTLS takes a reader slot each
 * time. A reader on another thread (the cost queries' workers) while it is
 * in use gets one of its own, MDB_NOTLS letting threads read at once. */
int db_read_begin(Store *s, MDB_txn **ret) {
        MDB_txn *t;
        int r;

        pthread_rwlock_rdlock(&s->map_lock);
        if (__atomic_exchange_n(&s->rtxn_busy, true, __ATOMIC_ACQUIRE)) {
                r = store_errno(mdb_txn_begin(s->env, NULL, MDB_RDONLY, ret));
                if (r < 0)
                        pthread_rwlock_unlock(&s->map_lock);
                return r;
        }
        /* Only the holder of rtxn_busy writes rtxn; others compare it. */
        t = __atomic_load_n(&s->rtxn, __ATOMIC_RELAXED);
        if (t) {
                r = store_errno(mdb_txn_renew(t));
                if (r >= 0) {
                        *ret = t;
                        return 0;
                }
                /* Unpublished first: a reader's own could get its address. */
                __atomic_store_n(&s->rtxn, NULL, __ATOMIC_RELAXED);
                mdb_txn_abort(t);
                t = NULL;
        }
        r = store_errno(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t));
        __atomic_store_n(&s->rtxn, r < 0 ? NULL : t, __ATOMIC_RELAXED);
        if (r < 0) {
                __atomic_store_n(&s->rtxn_busy, false, __ATOMIC_RELEASE);
                pthread_rwlock_unlock(&s->map_lock);
                return r;
        }
        *ret = t;
        return 0;
}

void db_read_end(Store *s, MDB_txn *txn) {
        if (txn == __atomic_load_n(&s->rtxn, __ATOMIC_RELAXED)) {
                mdb_txn_reset(txn);
                __atomic_store_n(&s->rtxn_busy, false, __ATOMIC_RELEASE);
        } else
                mdb_txn_abort(txn);
        pthread_rwlock_unlock(&s->map_lock);
}

int cursor_open(Store *s, MDB_txn *txn, unsigned db, MDB_cursor **ret) {
        return store_errno(mdb_cursor_open(txn, s->dbi[db], ret));
}

/* Positions c on the first key >= (device, t). -ENOENT past the end. */
int cursor_seek(MDB_cursor *c, uint32_t device, int64_t t, MDB_val *k, MDB_val *v) {
        uint8_t kb[KEY_SIZE];

        key_make(kb, device, MAX(t, INT64_C(0)));
        *k = (MDB_val) { .mv_size = sizeof kb, .mv_data = kb };
        return store_errno(mdb_cursor_get(c, k, v, MDB_SET_RANGE));
}

int cursor_next_device(MDB_cursor *c, uint32_t device, MDB_val *k, MDB_val *v) {
        if (device == UINT32_MAX)
                return -ENOENT;
        return cursor_seek(c, device + 1, 0, k, v);
}

int db_put(Store *s, MDB_txn *txn, unsigned db, void *key, size_t key_size, void *data, size_t size) {
        MDB_val k = { .mv_size = key_size, .mv_data = key };
        MDB_val v = { .mv_size = size, .mv_data = data };

        return store_errno(mdb_put(txn, s->dbi[db], &k, &v, 0));
}

/* ---- open and close ---- */

static const MDB_val format_key = { .mv_size = 6, .mv_data = (void *) "format" };
static const MDB_val ckpt_key = { .mv_size = 10, .mv_data = (void *) "checkpoint" };

static int open_txn(Store *s, MDB_txn *txn, void *userdata) {
        uint8_t version[4] = { STORE_FORMAT_VERSION, 0, 0, 0 };
        MDB_val k = format_key, v;
        int r;

        for (unsigned i = 0; i < _DB_MAX; i++) {
                r = store_errno(mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]));
                if (r < 0)
                        return r;
        }
        r = store_errno(mdb_get(txn, s->dbi[DB_META], &k, &v));
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                const uint8_t *p = v.mv_data;
                if (v.mv_size != 4 || p[1] || p[2] || p[3] || p[0] < 1 || p[0] > STORE_FORMAT_VERSION)
                        return -EPROTONOSUPPORT;
                if (p[0] == STORE_FORMAT_VERSION)
                        return 0;
        }
        /* New, or an older version: from now on it holds values an older
         * reader would misread (version 2 ones for version 1) or not see
         * (version 3 blocks for version 2), so those refuse to open it. */
        v = (MDB_val) { .mv_size = sizeof version, .mv_data = version };
        return store_errno(mdb_put(txn, s->dbi[DB_META], &k, &v, 0));
}

int store_db_open(Store *s, const char *path) {
        int dead, r;

        r = store_errno(mdb_env_create(&s->env));
        if (r < 0)
                return r;
        r = store_errno(mdb_env_set_maxdbs(s->env, _DB_MAX));
        if (r < 0)
                return r;
        /* Read transactions live on the caller's thread, the writes on the
         * writer's. */
        r = store_errno(mdb_env_open(s->env, path, MDB_NOTLS, 0600));
        if (r < 0)
                return r;
        /* Reader slots of processes that died (a crash, a kill) would
         * otherwise pin old pages and grow the file forever. */
        r = store_errno(mdb_reader_check(s->env, &dead));
        if (r < 0)
                return r;
        return store_write(s, open_txn, NULL);
}

void db_close(Store *s) {
        if (s->rtxn)
                mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
        if (s->env)
                mdb_env_close(s->env);
        s->env = NULL;
}

int db_ckpt_seq(Store *s, MDB_txn *txn, uint64_t *ret) {
        MDB_val k = ckpt_key, v;
        uint64_t seq = 0;
        int r;

        r = store_errno(mdb_get(txn, s->dbi[DB_META], &k, &v));
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        if (v.mv_size != 8)
                return -EBADMSG;
        for (unsigned i = 0; i < 8; i++)
                seq |= (uint64_t) ((const uint8_t *) v.mv_data)[i] << (8 * i);
        *ret = seq;
        return 0;
}

int db_get_last(Store *s, MDB_txn *txn, uint32_t device, StoreSample *ret) {
        uint8_t kb[4];
        MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
        StoreSample x = { .device = device };
        Reader rd;
        int r;

        device_key(kb, device);
        r = store_errno(mdb_get(txn, s->dbi[DB_LAST], &k, &v));
        if (r < 0)
                return r;
        rd = reader_val(&v);
        if (rd.p >= rd.end || *rd.p++ != 1)
                return -EBADMSG;
        x.ts_ms = (int64_t) get_uvarint(&rd);
        get_fields(&rd, &x);
        if (!reader_done(&rd) || x.ts_ms < 0)
                return -EBADMSG;
        *ret = x;
        return 0;
}

int db_get_counter(Store *s, MDB_txn *txn, uint32_t device, StoreCounter *ret) {
        uint8_t kb[4];
        MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
        StoreCounter c = { .device = device };
        Reader rd;
        int r;

        device_key(kb, device);
        r = store_errno(mdb_get(txn, s->dbi[DB_COUNTER], &k, &v));
        if (r < 0)
                return r;
        rd = reader_val(&v);
        if (rd.p >= rd.end || *rd.p++ != 2)
                return -EBADMSG;
        c.ts_ms = (int64_t) get_uvarint(&rd);
        c.cumulative_mwh = get_zz(&rd);
        c.counter_mwh = get_zz(&rd);
        c.lo_mwh = get_zz(&rd);
        c.hi_mwh = get_zz(&rd);
        c.power_mw = get_zz(&rd);
        if (!reader_done(&rd))
                return -EBADMSG;
        *ret = c;
        return 0;
}

/* ---- checkpoint ---- */

/* Time-first keys: a checkpoint's rollups of all devices land in a few
 * neighbouring pages, not one page per device. */
static int rollup_put(Store *s, MDB_txn *txn, StoreResolution res, uint32_t device, const Period *p) {
        uint8_t kb[SEG_KEY_SIZE], vb[AGG_VALUE_MAX];
        MDB_val k = { .mv_size = KEY_SIZE, .mv_data = kb }, v;
        Agg a = p->a;
        int r;

        tkey_make(kb, p->start, device, 0);
        r = store_errno(mdb_get(txn, s->dbi[rollup_tdb[res]], &k, &v));
        if (r >= 0) {
                Agg old;
                r = agg_decode(p->start, v.mv_data, v.mv_size, &old);
                if (r < 0)
                        return r;
                agg_merge(&old, &a);
                a = old;
        } else if (r != -ENOENT)
                return r;
        return db_put(s, txn, rollup_tdb[res], kb, KEY_SIZE, vb, agg_encode(p->start, &a, vb));
}

/* One block: samples x[0..n) of one hour, prev the sample before them,
 * checkpointed by generation gen. */
static int block_put(Store *s, MDB_txn *txn, uint64_t gen, const StoreSample *prev, const StoreSample *x,
                     size_t n) {
        _cleanup_(period_array_done) PeriodArray m = {};
        _cleanup_free_ uint8_t *buf = NULL;
        StoreSample base = { .ts_ms = x[0].ts_ms };
        uint8_t kb[CSEG_KEY_SIZE], *p;
        int64_t prev_dt = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                r = periods_add(&s->periods[STORE_MINUTE], i == 0 ? prev : &x[i - 1], &x[i], &m);
                if (r < 0)
                        return r;
        }
        buf = malloc(1 + 2 * VARINT_MAX + m.n * MINUTE_FIELDS_MAX + n * SAMPLE_FIELDS_MAX);
        if (!buf)
                return -ENOMEM;
        p = buf;
        *p++ = 2;
        p = put_uvarint(p, n);
        p = minutes_encode_v2(p, floor_to(x[0].ts_ms, MINUTE_MS), m.items, m.n);
        for (size_t i = 0; i < n; i++)
                p = samples_encode_one(p, &base, &prev_dt, &x[i]);
        ckey_make(kb, floor_to(x[0].ts_ms, HOUR_MS), gen, x[0].device, x[0].ts_ms);
        return db_put(s, txn, DB_CSEG, kb, sizeof kb, buf, (size_t) (p - buf));
}

static int checkpoint_device(Store *s, MDB_txn *txn, uint64_t gen, const TailDev *td) {
        _cleanup_(sample_array_done) SampleArray a = {};
        Reader r = reader_make(td->buf.data, td->buf.size);
        const StoreSample *prev = td->have_base ? &td->base : NULL;
        StoreSample x = td->base;
        uint8_t lk[4], vb[1 + 6 * VARINT_MAX];
        int64_t prev_dt = 0;
        uint64_t seq = 0;
        uint8_t *p;
        int e;

        x.device = td->device;
        if (!td->have_base)
                x = (StoreSample) { .device = td->device };
        for (uint32_t i = 0; i < td->n; i++) {
                e = tail_decode_one(&r, &x, &prev_dt, &seq);
                if (e < 0)
                        return e;
                e = sample_array_push(&a, &x);
                if (e < 0)
                        return e;
        }

        for (StoreResolution res = STORE_HOUR; res <= STORE_DAY; res++) {
                _cleanup_(period_array_done) PeriodArray pa = {};
                for (size_t i = 0; i < a.n; i++) {
                        e = periods_add(&s->periods[res], i == 0 ? prev : &a.items[i - 1], &a.items[i], &pa);
                        if (e < 0)
                                return e;
                }
                for (size_t i = 0; i < pa.n; i++) {
                        e = rollup_put(s, txn, res, td->device, &pa.items[i]);
                        if (e < 0)
                                return e;
                }
        }

        for (size_t i = 0, j; i < a.n; i = j) {
                int64_t hour = floor_to(a.items[i].ts_ms, HOUR_MS);
                for (j = i + 1; j < a.n && floor_to(a.items[j].ts_ms, HOUR_MS) == hour; j++)
                        ;
                e = block_put(s, txn, gen, i == 0 ? prev : &a.items[i - 1], &a.items[i], j - i);
                if (e < 0)
                        return e;
        }

        device_key(lk, td->device);
        if (a.n > 0) {
                MDB_val fk = { .mv_size = sizeof lk, .mv_data = lk }, fv;
                e = store_errno(mdb_get(txn, s->dbi[DB_FIRST], &fk, &fv));
                if (e == -ENOENT) {
                        uint8_t fb[8];
                        put_be(fb, (uint64_t) a.items[0].ts_ms, 8);
                        e = db_put(s, txn, DB_FIRST, lk, sizeof lk, fb, sizeof fb);
                }
                if (e < 0)
                        return e;
        }
        if (a.n > 0) {
                const StoreSample *l = &a.items[a.n - 1];
                p = vb;
                *p++ = 1;
                p = put_uvarint(p, (uint64_t) l->ts_ms);
                p = put_fields(p, l);
                e = db_put(s, txn, DB_LAST, lk, sizeof lk, vb, (size_t) (p - vb));
                if (e < 0)
                        return e;
        }
        if (td->have_counter) {
                const StoreCounter *c = &td->counter;
                p = vb;
                *p++ = 2;
                p = put_uvarint(p, (uint64_t) c->ts_ms);
                p = put_zz(p, c->cumulative_mwh);
                p = put_zz(p, c->counter_mwh);
                p = put_zz(p, c->lo_mwh);
                p = put_zz(p, c->hi_mwh);
                p = put_zz(p, c->power_mw);
                e = db_put(s, txn, DB_COUNTER, lk, sizeof lk, vb, (size_t) (p - vb));
                if (e < 0)
                        return e;
        }
        return 0;
}

static void map_release_locked(Store *s);

/* The map pages a checkpoint reads (the hour and day rollups of every
 * device, and with version 2 blocks keyed (hour, device, time) one leaf
 * page per device across the hour's blocks: 9.7 MB at 1000 plugs, half an
 * hour into it) are given back every this many devices, so they stay a
 * few hundred kilobytes of the resident set. */
#define CHECKPOINT_RELEASE_DEVICES 128

static int uint_cmp(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return (x > y) - (x < y);
}

static int checkpoint_txn(Store *s, MDB_txn *txn, void *userdata) {
        const Tail *t = userdata;
        guint n = 0;
        gpointer *keys = g_hash_table_get_keys_as_array(t->devs, &n);
        _cleanup_free_ uint32_t *devs = calloc(MAX(n, 1u), sizeof(uint32_t));
        uint8_t seq[8];
        int r = 0;

        if (!devs) {
                g_free(keys);
                return -ENOMEM;
        }
        for (guint i = 0; i < n; i++)
                devs[i] = GPOINTER_TO_UINT(keys[i]);
        g_free(keys);
        /* Key order: neighbouring puts share pages. */
        qsort(devs, n, sizeof(uint32_t), uint_cmp);
        for (guint i = 0; i < n && r >= 0; i++) {
                r = checkpoint_device(s, txn, t->last_seq, g_hash_table_lookup(t->devs, GUINT_TO_POINTER(devs[i])));
                /* store_write() holds the map lock: the map stays put. */
                if ((i + 1) % CHECKPOINT_RELEASE_DEVICES == 0)
                        map_release_locked(s);
        }
        if (r < 0)
                return r;
        for (unsigned i = 0; i < 8; i++)
                seq[i] = (uint8_t) (t->last_seq >> (8 * i));
        MDB_val k = ckpt_key, v = { .mv_size = 8, .mv_data = seq };
        return store_errno(mdb_put(txn, s->dbi[DB_META], &k, &v, 0));
}

/* LMDB reports a short write as EIO, which is what a full disk gives. */
int disk_error(Store *s, int r) {
        struct statvfs st;

        if (r == -EIO && fstatvfs(s->dir_fd, &st) >= 0 && (uint64_t) st.f_bavail * st.f_frsize < (UINT64_C(1) << 20))
                return -ENOSPC;
        return r;
}

/* Pages of LMDB's map that a checkpoint read (and the cached pages the
 * kernel maps around each fault) stay in the process, counted in its
 * memory, until the kernel needs them. This gives them back; the page
 * cache keeps them and readers fault them in again. LMDB does not say
 * where its map is: /proc/self/maps does. */
static void map_release_locked(Store *s) {
        struct stat st;
        char line[512];
        FILE *f;

        if (fstatat(s->dir_fd, "data.mdb", &st, 0) < 0)
                return;
        f = fopen("/proc/self/maps", "re");
        if (!f)
                return;
        while (fgets(line, sizeof line, f)) {
                unsigned long lo, hi, ino;
                unsigned maj, min;

                if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj, &min, &ino) == 5 &&
                    ino == st.st_ino && makedev(maj, min) == st.st_dev)
                        (void) madvise((void *) lo, hi - lo, MADV_DONTNEED);
        }
        fclose(f);
}

static void map_release(Store *s) {
        pthread_rwlock_rdlock(&s->map_lock);
        map_release_locked(s);
        pthread_rwlock_unlock(&s->map_lock);
}

int db_checkpoint(Store *s, const Tail *t) {
        int r;

        r = disk_error(s, store_write(s, checkpoint_txn, (void *) t));
        if (r >= 0)
                map_release(s);
        return r;
}


