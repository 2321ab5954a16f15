/* SPDX-License-Identifier: MIT */

#include <lmdb.h>
#include <pthread.h>

#include "store-internal.h"

/* For backups: LMDB's own consistent copy (one read transaction), with
 * free pages left out. Safe from another thread while the store's loop
 * and writer go on: it only reads, and holds the map lock as every reader
 * does, so the writer's map growth waits for it (rounds queue in memory
 * meanwhile, up to the pending bound). Call store_checkpoint() before, so
 * that the log's rounds are in it. */
int store_copy_compact(Store *s, int fd) {
        pthread_rwlock_rdlock(&s->map_lock);
        int r = store_errno(mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
        pthread_rwlock_unlock(&s->map_lock);
        return r;
}
