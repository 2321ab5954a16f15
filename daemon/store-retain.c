/* SPDX-License-Identifier: MIT */

/*
 * Retention and deletion in LMDB: raw samples go once their block's hour
 * is older than the cutoff (their minute rollups move to "minutes"),
 * rollups stay; formats in store-db.c.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "store-internal.h"

#define EXPIRE_ROWS_PER_CALL 16384


/* Saves a block's minute rollups in "minutes" before the block goes. */
static int keep_minutes(Store *s, MDB_txn *txn, uint32_t device, int64_t t0, const MDB_val *v) {
        _cleanup_(period_array_done) PeriodArray m = {};
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t kb[KEY_SIZE], *p;
        MDB_val mk = { .mv_size = sizeof kb, .mv_data = kb }, mv;
        BlockInfo b;
        int r;

        key_make(kb, device, t0);
        r = block_open(t0, v, INT64_MIN, INT64_MAX, &m, &b);
        if (r < 0)
                return r;
        /* Only when the clock stepped back over an expired hour. */
        r = store_errno(mdb_get(txn, s->dbi[DB_MINUTES], &mk, &mv));
        if (r >= 0)
                r = packed_minutes_decode(&mk, &mv, INT64_MIN, INT64_MAX, &m);
        if (r < 0 && r != -ENOENT)
                return r;
        period_array_normalize(&m);
        buf = malloc(1 + VARINT_MAX + m.n * MINUTE_FIELDS_MAX);
        if (!buf)
                return -ENOMEM;
        p = buf;
        *p++ = 2;
        p = minutes_encode_v2(p, floor_to(t0, MINUTE_MS), m.items, m.n);
        return db_put(s, txn, DB_MINUTES, kb, sizeof kb, buf, (size_t) (p - buf));
}

/* Deletes, device by device, the leading keys of db whose samples all lie
 * before the cutoff (a raw row: its time; a block: the end of its hour);
 * a block's minute rollups move to the "minutes" database. */
static int expire_db(Store *s, MDB_txn *txn, unsigned db, int64_t cutoff, size_t *budget) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        MDB_val k, v;
        int r;

        r = cursor_open(s, txn, db, &c);
        if (r < 0)
                return r;

        r = store_errno(mdb_cursor_get(c, &k, &v, MDB_FIRST));
        while (r >= 0) {
                uint32_t device;
                int64_t t, end;

                r = key_parse(&k, &device, &t);
                if (r < 0)
                        return r;
                end = db == DB_BLOCK ? floor_to(t, HOUR_MS) + HOUR_MS : t + 1;
                if (end > cutoff) {
                        r = cursor_next_device(c, device, &k, &v);
                        continue;
                }
                if (*budget == 0)
                        return 1;
                (*budget)--;
                if (db == DB_BLOCK) {
                        r = keep_minutes(s, txn, device, t, &v);
                        if (r < 0)
                                return r;
                }
                r = store_errno(mdb_cursor_del(c, 0));
                if (r < 0)
                        return r;
                /* After a delete the cursor already sits on the next row;
                 * MDB_NEXT returns that row rather than skipping it. */
                r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT));
        }
        return r == -ENOENT ? 0 : r;
}

/* Time-first blocks: the oldest of all devices come first. */
static int expire_seg(Store *s, MDB_txn *txn, unsigned db, int64_t cutoff, size_t *budget) {
        _cleanup_cursor_ MDB_cursor *c = NULL;
        MDB_val k, v;
        int r;

        r = cursor_open(s, txn, db, &c);
        if (r < 0)
                return r;
        for (r = store_errno(mdb_cursor_get(c, &k, &v, MDB_FIRST)); r >= 0;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                uint32_t device;
                int64_t hour, t0;

                r = time_key_parse(db, &k, &hour, &device, &t0);
                if (r < 0)
                        return r;
                if (hour + HOUR_MS > cutoff)
                        break;
                if (*budget == 0)
                        return 1;
                (*budget)--;
                r = keep_minutes(s, txn, device, t0, &v);
                if (r >= 0)
                        r = store_errno(mdb_cursor_del(c, 0));
                if (r < 0)
                        return r;
        }
        return r == -ENOENT ? 0 : r;
}

static int expire_txn(Store *s, MDB_txn *txn, void *userdata) {
        int64_t cutoff = *(const int64_t *) userdata;
        size_t budget = EXPIRE_ROWS_PER_CALL;
        int r;

        r = expire_db(s, txn, DB_RAW, cutoff, &budget);
        if (r == 0)
                r = expire_db(s, txn, DB_BLOCK, cutoff, &budget);
        if (r == 0)
                r = expire_seg(s, txn, DB_SEG, cutoff, &budget);
        if (r == 0)
                r = expire_seg(s, txn, DB_CSEG, cutoff, &budget);
        return r;
}

int db_expire(Store *s, int64_t older_than_ms) {
        return disk_error(s, store_write(s, expire_txn, &older_than_ms));
}

static int delete_device_txn(Store *s, MDB_txn *txn, void *userdata) {
        uint32_t device = *(const uint32_t *) userdata;
        uint8_t lk[4];
        MDB_val k = { .mv_size = sizeof lk, .mv_data = lk };
        int r;

        device_key(lk, device);
        for (unsigned i = 0; i < 3; i++) {
                static const unsigned dbs[] = { DB_LAST, DB_COUNTER, DB_FIRST };
                r = store_errno(mdb_del(txn, s->dbi[dbs[i]], &k, NULL));
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        /* Time-first: a walk over every device's keys, but a deletion is
         * rare. */
        static const unsigned time_first[] = { DB_SEG, DB_CSEG, DB_HOURS, DB_DAYS };
        for (size_t i = 0; i < ELEMENTSOF(time_first); i++) {
                unsigned db = time_first[i];
                _cleanup_cursor_ MDB_cursor *c = NULL;
                MDB_val tk, v;

                r = cursor_open(s, txn, db, &c);
                if (r < 0)
                        return r;
                for (r = store_errno(mdb_cursor_get(c, &tk, &v, MDB_FIRST)); r >= 0;) {
                        uint32_t d;
                        int64_t t;

                        r = time_key_parse(db, &tk, &t, &d, NULL);
                        if (r < 0)
                                return r;
                        if (d == device) {
                                r = store_errno(mdb_cursor_del(c, 0));
                                if (r < 0)
                                        return r;
                        }
                        r = store_errno(mdb_cursor_get(c, &tk, &v, MDB_NEXT));
                }
                if (r < 0 && r != -ENOENT)
                        return r;
        }

        /* Device first: the version 1 ones, the minutes of expired blocks
         * and the imported days. */
        static const unsigned device_first[] = { DB_RAW,    DB_BLOCK,   DB_MINUTE,  DB_HOUR,
                                                 DB_DAY,    DB_MINUTES, DB_IMPORTED };
        for (size_t i = 0; i < ELEMENTSOF(device_first); i++) {
                _cleanup_cursor_ MDB_cursor *c = NULL;
                MDB_val v;

                r = cursor_open(s, txn, device_first[i], &c);
                if (r < 0)
                        return r;
                for (r = cursor_seek(c, device, 0, &k, &v); r >= 0;) {
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
                        r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT));
                }
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

int db_delete_device(Store *s, uint32_t device) {
        return store_write(s, delete_device_txn, &device);
}
