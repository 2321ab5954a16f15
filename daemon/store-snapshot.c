/* SPDX-License-Identifier: MIT */

#include <lmdb.h>

#include "store-internal.h"

/* For backups: LMDB's own consistent copy (one read transaction), with
 * free pages left out. Safe from another thread while the store's loop
 * and writer go on: it only reads. Call store_checkpoint() before, so
 * that the log's rounds are in it. */
int store_copy_compact(Store *s, int fd) {
        return store_errno(mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
}
