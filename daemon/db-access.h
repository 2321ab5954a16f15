/* SPDX-License-Identifier: MIT */
#pragma once

/* The API tokens in SQLite: access.sqlite in the state directory, a file
 * of its own rather than a table of devices.sqlite, for three reasons: it
 * is created readable by the daemon only (mode 0600) while the device
 * registry is not secret; a copy of the device database (a backup, a bug
 * report) carries no credentials; and its schema versions (PRAGMA
 * user_version, one per file) move independently of the registry's.
 *
 * A token is stored with its SHA-256 only; the secret never reaches the
 * file. Functions return negative errno; the SQLite message of the last
 * failure is in db_access_last_error(), for the caller to log once. */

#include "access.h"

typedef struct AccessDb AccessDb;

/* Opens (creating with mode 0600 if needed) and migrates the database. On
 * failure a message is returned in *ret_error (free()) if given. */
int db_access_open(const char *path, AccessDb **ret, char **ret_error);
AccessDb *db_access_free(AccessDb *db);
const char *db_access_last_error(const AccessDb *db);
int db_access_schema_version(const AccessDb *db);

/* Every stored token into a (access_add()). */
int db_access_load(AccessDb *db, Access *a);
/* -EEXIST if its id or name is taken. */
int db_access_insert(AccessDb *db, const AccessToken *t);
/* -ENOENT if unknown. */
int db_access_delete(AccessDb *db, const char *id);
int db_access_touch(AccessDb *db, const char *id, int64_t last_used_usec);
