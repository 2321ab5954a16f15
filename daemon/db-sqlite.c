/* SPDX-License-Identifier: MIT */

#include "db-sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int db_fail(sqlite3 *db, int rc, char *error, size_t size) {
        snprintf(error, size, "%s", sqlite3_errmsg(db));
        return db_errno(rc);
}

int db_failf(char *error, size_t size, int err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(error, size, fmt, ap);
        va_end(ap);
        return err;
}

void db_release(sqlite3 *db, sqlite3_stmt **stmts, size_t n) {
        for (size_t i = 0; i < n; i++)
                sqlite3_finalize(stmts[i]);
        sqlite3_close(db);
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

static int make_private(const char *path, char *error, size_t size) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0 || fchmod(fd, 0600) < 0) {
                int r = -errno;
                snprintf(error, size, "%s%s", fd < 0 ? "" : "Failed to restrict the file's mode: ", strerror(-r));
                return r;
        }
        return 0;
}

static int open_and_prepare(const char *path, const DbSpec *spec, sqlite3 **db, sqlite3_stmt **stmts, char *error,
                            size_t size) {
        char pragmas[160];
        int rc, version;

        if (spec->flags & DB_PRIVATE) {
                int r = make_private(path, error, size);
                if (r < 0)
                        return r;
        }
        rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK) {
                snprintf(error, size, "%s", *db ? sqlite3_errmsg(*db) : "out of memory");
                return *db ? db_errno(rc) : -ENOMEM;
        }
        /* Other processes (the sqlite3 CLI, a backup) may hold the lock
         * briefly. */
        sqlite3_busy_timeout(*db, 5000);
        snprintf(pragmas, sizeof pragmas, "PRAGMA journal_mode = WAL; PRAGMA synchronous = %s%s%s",
                 spec->flags & DB_DURABLE ? "FULL" : "NORMAL",
                 spec->flags & DB_PRIVATE ? "; PRAGMA secure_delete = ON" : "",
                 spec->flags & DB_FOREIGN_KEYS ? "; PRAGMA foreign_keys = ON" : "");
        rc = sqlite3_exec(*db, pragmas, NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                goto fail;
        version = db_migrate(*db, spec->migrations, spec->n_migrations, error, size);
        if (version < 0)
                return version;
        for (size_t i = 0; i < spec->n_statements; i++) {
                rc = sqlite3_prepare_v3(*db, spec->statements[i], -1, SQLITE_PREPARE_PERSISTENT, &stmts[i], NULL);
                if (rc != SQLITE_OK)
                        goto fail;
        }
        return version;

fail:
        snprintf(error, size, "%s", sqlite3_errmsg(*db));
        return db_errno(rc);
}

int db_open(const char *path, const DbSpec *spec, sqlite3 **ret_db, sqlite3_stmt **ret_stmts, char **ret_error) {
        char error[256] = "";
        sqlite3 *db = NULL;
        int r;

        for (size_t i = 0; i < spec->n_statements; i++)
                ret_stmts[i] = NULL;
        r = open_and_prepare(path, spec, &db, ret_stmts, error, sizeof error);
        if (r < 0) {
                for (size_t i = 0; i < spec->n_statements; i++) {
                        sqlite3_finalize(ret_stmts[i]);
                        ret_stmts[i] = NULL;
                }
                sqlite3_close(db);
                if (ret_error && asprintf(ret_error, "%s: %s", path, error) < 0)
                        *ret_error = NULL;
                return r;
        }
        *ret_db = db;
        return r;
}
