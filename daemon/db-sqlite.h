/* SPDX-License-Identifier: MIT */
#pragma once

/* What every SQLite concern (registry.c, db-*.c) does the same way: the
 * file opened in WAL mode, errno from SQLite's result codes, cached
 * statements reset after each use, and the schema brought up to date by
 * migrations counted in PRAGMA user_version (one chain per database file). */

#include <sqlite3.h>
#include <stddef.h>

#include "macro.h"

int db_errno(int rc);

/* The last error's text, which every concern keeps for its caller:
 * db_fail() takes SQLite's message and returns db_errno(rc); db_failf()
 * formats one and returns err. */
int db_fail(sqlite3 *db, int rc, char *error, size_t size);
_printf_(4, 5) int db_failf(char *error, size_t size, int err, const char *fmt, ...);

/* Finalizes the cached statements and closes the connection. */
void db_release(sqlite3 *db, sqlite3_stmt **stmts, size_t n);

/* Cached statements: each use ends with a reset that also drops the
 * bindings (a bound string must not outlive the caller's buffer). */
void db_stmt_resetp(sqlite3_stmt **s);
#define _cleanup_stmt_ _cleanup_(db_stmt_resetp)

/* Runs migrations[user_version..n-1] and sets user_version to n, in one
 * transaction. Returns n, or a negative errno with why in error
 * (-EPROTONOSUPPORT: the file is of a newer schema, left untouched). */
int db_migrate(sqlite3 *db, const char *const *migrations, size_t n, char *error, size_t size);

typedef enum DbFlags {
        /* Holds secrets (tokens): the file is made 0600 before SQLite
         * opens it, since SQLite would create it as the umask allows and
         * its WAL files take the main file's mode; deleted rows are
         * overwritten. */
        DB_PRIVATE = 1 << 0,
        /* synchronous=FULL: for tables written a few times a day whose
         * last change must survive a power cut (a revoked token, an
         * alert). Otherwise NORMAL, which WAL keeps corruption-safe. */
        DB_DURABLE = 1 << 1,
        DB_FOREIGN_KEYS = 1 << 2,
} DbFlags;

typedef struct DbSpec {
        DbFlags flags;
        const char *const *migrations;
        size_t n_migrations;
        /* Prepared once, persistent, into the caller's array of as many. */
        const char *const *statements;
        size_t n_statements;
} DbSpec;

/* Opens path (creating it) the way every concern does. Returns the schema
 * version, or a negative errno with "path: why" in *ret_error (if given);
 * on failure nothing is left open. */
int db_open(const char *path, const DbSpec *spec, sqlite3 **ret_db, sqlite3_stmt **ret_stmts, char **ret_error);
