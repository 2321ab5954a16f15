/* SPDX-License-Identifier: MIT */

#include "db-access.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db-sqlite.h"
#include "macro.h"

/* Schema history: append only, never edit a released entry. Each runs once,
 * in order, inside the transaction that bumps PRAGMA user_version. */
static const char *const migrations[] = {
        /* 1: tokens, by their SHA-256 only. Times in microseconds since
         * the epoch; expires and last_used 0 for never. */
        "CREATE TABLE tokens (\n"
        "        id TEXT PRIMARY KEY NOT NULL,\n"
        "        name TEXT NOT NULL UNIQUE,\n"
        "        role TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),\n"
        "        hash BLOB NOT NULL CHECK (length(hash) = 32),\n"
        "        created INTEGER NOT NULL,\n"
        "        expires INTEGER NOT NULL DEFAULT 0,\n"
        "        last_used INTEGER NOT NULL DEFAULT 0\n"
        ") STRICT;\n",
};

typedef enum Statement {
        STMT_LIST,
        STMT_INSERT,
        STMT_DELETE,
        STMT_TOUCH,
        _STMT_MAX,
} Statement;

static const char *const statement_sql[_STMT_MAX] = {
        [STMT_LIST] = "SELECT id, name, role, hash, created, expires, last_used FROM tokens",
        /* One literal: clang takes two in a row for a missing comma. */
        [STMT_INSERT] = "INSERT INTO tokens (id, name, role, hash, created, expires, last_used) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [STMT_DELETE] = "DELETE FROM tokens WHERE id = ?1",
        [STMT_TOUCH] = "UPDATE tokens SET last_used = ?2 WHERE id = ?1",
};

struct AccessDb {
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        int schema_version;
        char error[256];
};

/* The error text goes to db->error (db-sqlite.h). */
#define fail(c, rc) db_fail((c)->db, (rc), (c)->error, sizeof (c)->error)
#define fail_msg(c, err, ...) db_failf((c)->error, sizeof (c)->error, (err), __VA_ARGS__)

AccessDb *db_access_free(AccessDb *db) {
        if (!db)
                return NULL;
        db_release(db->db, db->stmt, _STMT_MAX);
        free(db);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(AccessDb *, db_access_free);

int db_access_open(const char *path, AccessDb **ret, char **ret_error) {
        /* A revoked token must stay revoked after a power cut: durable.
         * The table is written only when tokens are made, used or revoked. */
        static const DbSpec spec = {
                .flags = DB_PRIVATE | DB_DURABLE,
                .migrations = migrations,
                .n_migrations = ELEMENTSOF(migrations),
                .statements = statement_sql,
                .n_statements = _STMT_MAX,
        };
        _cleanup_(db_access_freep) AccessDb *db = calloc(1, sizeof(AccessDb));
        int r;

        if (!db)
                return -ENOMEM;
        r = db_open(path, &spec, &db->db, db->stmt, ret_error);
        if (r < 0)
                return r;
        db->schema_version = r;
        *ret = TAKE_PTR(db);
        return 0;
}

const char *db_access_last_error(const AccessDb *db) {
        return db->error;
}

int db_access_schema_version(const AccessDb *db) {
        return db->schema_version;
}

int db_access_load(AccessDb *db, Access *a) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_LIST];
        int rc, r;

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                _cleanup_(access_token_freep) AccessToken *t = calloc(1, sizeof(AccessToken));
                const char *id = (const char *) sqlite3_column_text(s, 0);
                const char *name = (const char *) sqlite3_column_text(s, 1);

                if (!t)
                        return -ENOMEM;
                if (!id || !access_id_is_valid(id) || !name || sqlite3_column_bytes(s, 3) != ACCESS_HASH_SIZE)
                        return fail_msg(db, -EBADMSG, "malformed token row '%s'", id ?: "(null)");
                snprintf(t->id, sizeof t->id, "%s", id);
                t->name = strdup(name);
                if (!t->name)
                        return -ENOMEM;
                t->role = access_role_from_string((const char *) sqlite3_column_text(s, 2));
                memcpy(t->hash, sqlite3_column_blob(s, 3), ACCESS_HASH_SIZE);
                t->created_usec = sqlite3_column_int64(s, 4);
                t->expires_usec = sqlite3_column_int64(s, 5);
                t->last_used_usec = sqlite3_column_int64(s, 6);
                r = access_add(a, TAKE_PTR(t));
                if (r < 0)
                        return fail_msg(db, r, "token '%s' cannot be loaded: %s", id, strerror(-r));
        }
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}

int db_access_insert(AccessDb *db, const AccessToken *t) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_INSERT];
        int rc;

        if (sqlite3_bind_text(s, 1, t->id, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 2, t->name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 3, access_role_to_string(t->role), -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_blob(s, 4, t->hash, ACCESS_HASH_SIZE, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(s, 5, t->created_usec) != SQLITE_OK ||
            sqlite3_bind_int64(s, 6, t->expires_usec) != SQLITE_OK ||
            sqlite3_bind_int64(s, 7, t->last_used_usec) != SQLITE_OK)
                return fail(db, sqlite3_errcode(db->db));
        rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}

static int exec_id(AccessDb *db, Statement which, const char *id, int64_t value) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[which];
        int rc;

        if (sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC) != SQLITE_OK ||
            (which == STMT_TOUCH && sqlite3_bind_int64(s, 2, value) != SQLITE_OK))
                return fail(db, sqlite3_errcode(db->db));
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(db, rc);
        if (sqlite3_changes(db->db) == 0)
                return fail_msg(db, -ENOENT, "no token '%s'", id);
        return 0;
}

int db_access_delete(AccessDb *db, const char *id) {
        return exec_id(db, STMT_DELETE, id, 0);
}

int db_access_touch(AccessDb *db, const char *id, int64_t last_used_usec) {
        return exec_id(db, STMT_TOUCH, id, last_used_usec);
}
