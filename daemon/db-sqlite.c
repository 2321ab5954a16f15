/* SPDX-License-Identifier: MIT */

#include "db-sqlite.h"

#include <errno.h>
#include <stdio.h>

int db_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        default:
                return -EIO;
        }
}

void db_stmt_resetp(sqlite3_stmt **s) {
        if (*s) {
                sqlite3_reset(*s);
                sqlite3_clear_bindings(*s);
        }
}

int db_migrate(sqlite3 *db, const char *const *migrations, size_t n, char *error, size_t size) {
        sqlite3_stmt *s;
        int rc, version;

        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail;
        rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
        if (rc != SQLITE_OK)
                goto fail;
        rc = sqlite3_step(s);
        version = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW)
                goto fail;

        if (version < 0 || (size_t) version > n) {
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
                snprintf(error, size, "database schema version %d is newer than this kasamond (%zu)", version, n);
                return -EPROTONOSUPPORT;
        }
        for (size_t i = (size_t) version; i < n; i++) {
                rc = sqlite3_exec(db, migrations[i], NULL, NULL, NULL);
                if (rc != SQLITE_OK)
                        goto fail;
        }

        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %zu", n);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail;
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail;
        return (int) n;

fail:
        snprintf(error, size, "%s", sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db))
                sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return db_errno(rc);
}
