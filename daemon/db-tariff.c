/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db-sqlite.h"
#include "db-tariff.h"

/* A file of its own rather than tables in devices.sqlite: each SQLite
 * concern numbers its migrations in its own PRAGMA user_version, so the
 * registry, tariffs, schedules and tokens evolve without sharing one list
 * (and a broken tariff file can be set aside without losing the devices).
 * Nothing needs a transaction across the two: assignments name devices by
 * their id, and an assignment of a device removed since stays, as history.
 *
 * Schema history: append only, never edit a released entry. Each runs once,
 * in order, inside the transaction that bumps PRAGMA user_version. */
static const char *const migrations[] = {
        /* 1: tariffs as their text, assignments only ever added. AUTOINCREMENT:
         * a removed tariff's id (and D-Bus path) is never handed out again. */
        "CREATE TABLE tariffs (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        format TEXT NOT NULL CHECK (format IN ('file', 'urdb')),\n"
        "        text TEXT NOT NULL,\n"
        "        name TEXT NOT NULL,\n"
        "        utility TEXT,\n"
        "        currency TEXT NOT NULL,\n"
        "        valid_from INTEGER,\n"
        "        valid_until INTEGER,\n"
        "        added INTEGER NOT NULL\n"
        ") STRICT;\n"
        "CREATE TABLE tariff_assignments (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        device TEXT,\n"
        "        tariff INTEGER REFERENCES tariffs (id),\n"
        "        since INTEGER NOT NULL,\n"
        "        CHECK (device IS NOT NULL OR tariff IS NOT NULL)\n"
        ") STRICT;\n"
        "CREATE INDEX tariff_assignments_tariff ON tariff_assignments (tariff);\n"
        "CREATE INDEX tariff_assignments_since ON tariff_assignments (since, id);\n",
};

static const char *const format_names[_TARIFF_FORMAT_MAX] = {
        [TARIFF_FORMAT_FILE] = "file",
        [TARIFF_FORMAT_URDB] = "urdb",
};

const char *tariff_format_to_string(TariffFormat f) {
        return f >= 0 && f < _TARIFF_FORMAT_MAX ? format_names[f] : NULL;
}

struct TariffDb {
        sqlite3 *db;
        int schema_version;
        char error[256];
};

/* The error text goes to db->error (db-sqlite.h). */
#define tariff_fail(c, rc) db_fail((c)->db, (rc), (c)->error, sizeof (c)->error)
#define db_refuse(c, err, ...) db_failf((c)->error, sizeof (c)->error, (err), __VA_ARGS__)

static void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_finalize_ _cleanup_(finalizep)

/* Tariff changes are rare: statements are prepared per call. */
static int prepare(TariffDb *db, const char *sql, sqlite3_stmt **ret) {
        int rc = sqlite3_prepare_v2(db->db, sql, -1, ret, NULL);
        return rc == SQLITE_OK ? 0 : tariff_fail(db, rc);
}

static int exec(TariffDb *db, const char *sql) {
        int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : tariff_fail(db, rc);
}

static void rollback(TariffDb *db) {
        if (!sqlite3_get_autocommit(db->db))
                (void) sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

TariffDb *tariff_db_free(TariffDb *db) {
        if (!db)
                return NULL;
        sqlite3_close(db->db);
        free(db);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(TariffDb *, tariff_db_free);

int tariff_db_open(const char *path, TariffDb **ret, char **ret_error) {
        /* As the registry: a power cut may lose the very last change. No
         * cached statements: tariffs change rarely, each query is
         * prepared where it is used. */
        static const DbSpec spec = {
                .flags = DB_FOREIGN_KEYS,
                .migrations = migrations,
                .n_migrations = ELEMENTSOF(migrations),
        };
        _cleanup_(tariff_db_freep) TariffDb *db = calloc(1, sizeof(TariffDb));
        int r;

        if (!db)
                return -ENOMEM;
        r = db_open(path, &spec, &db->db, NULL, ret_error);
        if (r < 0)
                return r;
        db->schema_version = r;
        *ret = TAKE_PTR(db);
        return 0;
}

const char *tariff_db_last_error(const TariffDb *db) {
        return db->error;
}

int tariff_db_schema_version(const TariffDb *db) {
        return db->schema_version;
}

static int bind_time(sqlite3_stmt *s, int i, int64_t ms, int64_t open) {
        return ms == open ? sqlite3_bind_null(s, i) : sqlite3_bind_int64(s, i, ms);
}

int tariff_db_add(TariffDb *db, const TariffRow *row, int64_t *ret_id) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        const char *format = tariff_format_to_string(row->format);
        int r;

        if (!format || !row->text || !row->name || !row->currency)
                return db_refuse(db, -EINVAL, "tariff without format, text, name or currency");
        r = prepare(db,
                    "INSERT INTO tariffs (format, text, name, utility, currency, valid_from, valid_until, added) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                    &s);
        if (r < 0)
                return r;
        if (sqlite3_bind_text(s, 1, format, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 2, row->text, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 3, row->name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 4, row->utility, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 5, row->currency, -1, SQLITE_STATIC) != SQLITE_OK ||
            bind_time(s, 6, row->valid_from_ms, INT64_MIN) != SQLITE_OK ||
            bind_time(s, 7, row->valid_until_ms, INT64_MAX) != SQLITE_OK ||
            sqlite3_bind_int64(s, 8, row->added_ms) != SQLITE_OK)
                return tariff_fail(db, SQLITE_NOMEM);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return tariff_fail(db, rc);
        *ret_id = sqlite3_column_int64(s, 0);
        rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : tariff_fail(db, rc);
}

static int column_strdup(sqlite3_stmt *s, int col, char **ret) {
        const unsigned char *t = sqlite3_column_text(s, col);
        *ret = t ? strdup((const char *) t) : NULL;
        return t && !*ret ? -ENOMEM : 0;
}

void tariff_row_done(TariffRow *r) {
        if (!r)
                return;
        free(r->text);
        free(r->name);
        free(r->utility);
        free(r->currency);
        *r = (TariffRow) {};
}

void tariff_row_array_free(TariffRow *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                tariff_row_done(&a[i]);
        free(a);
}

void tariff_assignment_array_free(TariffAssignment *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(a[i].device);
        free(a);
}

/* Grows *a by one zeroed element of size. */
static void *grow(void **a, size_t *n, size_t size) {
        void *p = reallocarray(*a, *n + 1, size);
        if (!p)
                return NULL;
        *a = p;
        p = (char *) p + *n * size;
        memset(p, 0, size);
        (*n)++;
        return p;
}

int tariff_db_list(TariffDb *db, TariffRow **ret, size_t *ret_n) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        TariffRow *a = NULL;
        size_t n = 0;
        int r, rc;

        r = prepare(db,
                    "SELECT id, format, text, name, utility, currency, valid_from, valid_until, added "
                    "FROM tariffs ORDER BY id",
                    &s);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                TariffRow *t = grow((void **) &a, &n, sizeof *a);
                const char *format = (const char *) sqlite3_column_text(s, 1);
                if (!t) {
                        r = -ENOMEM;
                        goto fail;
                }
                t->id = sqlite3_column_int64(s, 0);
                t->format = format && strcmp(format, "urdb") == 0 ? TARIFF_FORMAT_URDB : TARIFF_FORMAT_FILE;
                t->valid_from_ms = sqlite3_column_type(s, 6) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(s, 6);
                t->valid_until_ms = sqlite3_column_type(s, 7) == SQLITE_NULL ? INT64_MAX : sqlite3_column_int64(s, 7);
                t->added_ms = sqlite3_column_int64(s, 8);
                if (column_strdup(s, 2, &t->text) < 0 || column_strdup(s, 3, &t->name) < 0 ||
                    column_strdup(s, 4, &t->utility) < 0 || column_strdup(s, 5, &t->currency) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (rc != SQLITE_DONE) {
                r = tariff_fail(db, rc);
                goto fail;
        }
        *ret = a;
        *ret_n = n;
        return 0;
fail:
        tariff_row_array_free(a, n);
        return r;
}

static int tariff_exists(TariffDb *db, int64_t id) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int r = prepare(db, "SELECT count(*) FROM tariffs WHERE id = ?1", &s);
        if (r < 0)
                return r;
        sqlite3_bind_int64(s, 1, id);
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return tariff_fail(db, rc);
        return sqlite3_column_int64(s, 0) > 0;
}

int tariff_db_remove(TariffDb *db, int64_t id) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int r, rc;

        r = exec(db, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = tariff_exists(db, id);
        if (r == 0)
                r = db_refuse(db, -ENOENT, "no tariff %" PRId64, id);
        if (r < 0)
                goto fail;
        r = prepare(db, "SELECT count(*) FROM tariff_assignments WHERE tariff = ?1", &s);
        if (r < 0)
                goto fail;
        sqlite3_bind_int64(s, 1, id);
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
                r = tariff_fail(db, rc);
                goto fail;
        }
        if (sqlite3_column_int64(s, 0) > 0) {
                r = db_refuse(db, -EBUSY, "tariff %" PRId64 " is or was assigned: past periods are priced with it", id);
                goto fail;
        }
        sqlite3_finalize(TAKE_PTR(s));
        r = prepare(db, "DELETE FROM tariffs WHERE id = ?1", &s);
        if (r < 0)
                goto fail;
        sqlite3_bind_int64(s, 1, id);
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
                r = tariff_fail(db, rc);
                goto fail;
        }
        r = exec(db, "COMMIT");
        if (r < 0)
                goto fail;
        return 0;
fail:
        rollback(db);
        return r;
}

int tariff_db_assign(TariffDb *db, const char *const *devices, size_t n_devices, int64_t tariff,
                     int64_t since_ms) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int r;

        if (tariff == 0 && n_devices == 0)
                return db_refuse(db, -EINVAL, "the home needs a tariff");
        r = exec(db, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        if (tariff != 0) {
                r = tariff_exists(db, tariff);
                if (r == 0)
                        r = db_refuse(db, -ENOENT, "no tariff %" PRId64, tariff);
                if (r < 0)
                        goto fail;
        }
        r = prepare(db, "INSERT INTO tariff_assignments (device, tariff, since) VALUES (?1, ?2, ?3)", &s);
        if (r < 0)
                goto fail;
        for (size_t i = 0; i < MAX(n_devices, (size_t) 1); i++) {
                if (sqlite3_bind_text(s, 1, n_devices > 0 ? devices[i] : NULL, -1, SQLITE_STATIC) != SQLITE_OK ||
                    (tariff != 0 ? sqlite3_bind_int64(s, 2, tariff) : sqlite3_bind_null(s, 2)) != SQLITE_OK ||
                    sqlite3_bind_int64(s, 3, since_ms) != SQLITE_OK) {
                        r = tariff_fail(db, SQLITE_NOMEM);
                        goto fail;
                }
                int rc = sqlite3_step(s);
                if (rc != SQLITE_DONE) {
                        r = tariff_fail(db, rc);
                        goto fail;
                }
                sqlite3_reset(s);
        }
        r = exec(db, "COMMIT");
        if (r < 0)
                goto fail;
        return 0;
fail:
        rollback(db);
        return r;
}

int tariff_db_assignments(TariffDb *db, TariffAssignment **ret, size_t *ret_n) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        TariffAssignment *a = NULL;
        size_t n = 0;
        int r, rc;

        r = prepare(db, "SELECT id, device, tariff, since FROM tariff_assignments ORDER BY since, id", &s);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                TariffAssignment *x = grow((void **) &a, &n, sizeof *a);
                if (!x || column_strdup(s, 1, &x->device) < 0) {
                        tariff_assignment_array_free(a, n);
                        return -ENOMEM;
                }
                x->id = sqlite3_column_int64(s, 0);
                x->tariff = sqlite3_column_int64(s, 2); /* NULL reads as 0 */
                x->since_ms = sqlite3_column_int64(s, 3);
        }
        if (rc != SQLITE_DONE) {
                tariff_assignment_array_free(a, n);
                return tariff_fail(db, rc);
        }
        *ret = a;
        *ret_n = n;
        return 0;
}
