/* SPDX-License-Identifier: MIT */
#pragma once

/* What every SQLite concern (registry.c, db-*.c) does the same way: errno
 * from SQLite's result codes, cached statements reset after each use, and
 * the schema brought up to date by migrations counted in PRAGMA
 * user_version (one chain per database file). */

#include <sqlite3.h>
#include <stddef.h>

#include "macro.h"

int db_errno(int rc);

/* Cached statements: each use ends with a reset that also drops the
 * bindings (a bound string must not outlive the caller's buffer). */
void db_stmt_resetp(sqlite3_stmt **s);
#define _cleanup_stmt_ _cleanup_(db_stmt_resetp)

/* Runs migrations[user_version..n-1] and sets user_version to n, in one
 * transaction. Returns n, or a negative errno with why in error
 * (-EPROTONOSUPPORT: the file is of a newer schema, left untouched). */
int db_migrate(sqlite3 *db, const char *const *migrations, size_t n, char *error, size_t size);
