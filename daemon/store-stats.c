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

static void tail_stats(const Tail *t, StoreStats *st) {
        GHashTableIter it;
        gpointer v;

        if (!t)
                return;
        st->tail_bytes += t->bytes;
        g_hash_table_iter_init(&it, t->devs);
        while (g_hash_table_iter_next(&it, NULL, &v))
                st->tail_samples += ((const TailDev *) v)->n;
}

int store_stats(Store *s, StoreStats *ret) {
        StoreStats st = {};
        MDB_txn *txn;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = db_read_begin(s, &txn);
        if (r < 0)
                return r;
        r = db_stats(s, txn, &st);
        db_read_end(s, txn);
        if (r < 0)
                return r;
        pthread_mutex_lock(&s->lock);
        tail_stats(s->active, &st);
        for (const Tail *t = s->frozen; t; t = t->next)
                tail_stats(t, &st);
        pthread_mutex_unlock(&s->lock);
        *ret = st;
        return 0;
}
