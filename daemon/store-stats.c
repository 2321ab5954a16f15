/* SPDX-License-Identifier: MIT */

/* store_stats(): what the store holds, in LMDB (every database's pages,
 * and the blocks walked for their sizes) and in the tail. */

#include <errno.h>
#include <pthread.h>

#include "macro.h"
#include "store-internal.h"

static int db_stats(Store *s, MDB_txn *txn, StoreStats *st) {
        MDB_envinfo info;
        MDB_stat ms;
        MDB_val k, v;
        int r;

        r = store_errno(mdb_env_info(s->env, &info));
        if (r < 0)
                return r;
        st->map_bytes = info.me_mapsize;
        /* dbi 0 is LMDB's main database, which holds the named ones. */
        r = store_errno(mdb_stat(txn, 0, &ms));
        if (r < 0)
                return r;
        st->page_size = ms.ms_psize;
        st->used_bytes = (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * ms.ms_psize;

        for (unsigned db = 0; db < _DB_MAX; db++) {
                uint64_t bytes;

                r = store_errno(mdb_stat(txn, s->dbi[db], &ms));
                if (r < 0)
                        return r;
                bytes = (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * ms.ms_psize;
                st->used_bytes += bytes;
                if (db == DB_RAW)
                        st->raw_rows = ms.ms_entries;
                else if (db == DB_BLOCK || db == DB_SEG || db == DB_CSEG)
                        st->blocks += ms.ms_entries;
                else if (db == DB_MINUTES)
                        st->rollup_bytes[STORE_MINUTE] += bytes;
                for (StoreResolution res = 0; res < _STORE_RESOLUTION_MAX; res++)
                        if (rollup_db[res] == db || (res != STORE_MINUTE && rollup_tdb[res] == db))
                                st->rollup_bytes[res] += bytes;
        }

        static const unsigned block_dbs[] = { DB_BLOCK, DB_SEG, DB_CSEG };
        for (size_t i = 0; i < ELEMENTSOF(block_dbs); i++) {
                unsigned db = block_dbs[i];
                _cleanup_cursor_ MDB_cursor *c = NULL;

                r = cursor_open(s, txn, db, &c);
                if (r < 0)
                        return r;
                for (r = store_errno(mdb_cursor_get(c, &k, &v, MDB_FIRST)); r >= 0;
                     r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                        uint32_t d;
                        int64_t t, t0;
                        BlockInfo b;

                        r = db == DB_BLOCK ? key_parse(&k, &d, &t0) : time_key_parse(db, &k, &t, &d, &t0);
                        if (r >= 0)
                                r = block_open(t0, &v, 0, 0, NULL, &b);
                        if (r < 0)
                                return r;
                        st->block_bytes += v.mv_size;
                        st->block_minute_bytes += b.minutes_end;
                        st->block_samples += b.count;
                }
                if (r != -ENOENT)
                        return r;
        }
        return 0;
}

typedef struct TailCount {
        uint64_t last_seq, samples, bytes;
} TailCount;

static TailCount tail_count(const Tail *t) {
        TailCount c = { .last_seq = t->last_seq, .bytes = t->bytes };
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, t->devs);
        while (g_hash_table_iter_next(&it, NULL, &v))
                c.samples += ((const TailDev *) v)->n;
        return c;
}

int store_stats(Store *s, StoreStats *ret) {
        _cleanup_free_ TailCount *frozen = NULL;
        StoreStats st = {};
        TailCount active;
        size_t n = 0;
        uint64_t ckpt = 0;
        MDB_txn *txn;
        int r;

        if (!s || !ret)
                return -EINVAL;
        /* The tail first, then LMDB, as queries do: a frozen generation
         * the snapshot already holds (its checkpoint committed between
         * the two) is counted there, not twice; one freed meanwhile was
         * counted here. */
        pthread_mutex_lock(&s->lock);
        for (const Tail *t = s->frozen; t; t = t->next)
                n++;
        frozen = calloc(MAX(n, (size_t) 1), sizeof(TailCount));
        n = 0;
        for (const Tail *t = s->frozen; frozen && t; t = t->next)
                frozen[n++] = tail_count(t);
        active = tail_count(s->active);
        pthread_mutex_unlock(&s->lock);
        if (!frozen)
                return -ENOMEM;

        r = db_read_begin(s, &txn);
        if (r < 0)
                return r;
        r = db_stats(s, txn, &st);
        if (r >= 0)
                r = db_ckpt_seq(s, txn, &ckpt);
        db_read_end(s, txn);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (frozen[i].last_seq > ckpt) {
                        st.tail_samples += frozen[i].samples;
                        st.tail_bytes += frozen[i].bytes;
                }
        st.tail_samples += active.samples;
        st.tail_bytes += active.bytes;
        *ret = st;
        return 0;
}
