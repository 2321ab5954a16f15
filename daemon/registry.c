/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "db-sqlite.h"
#include "registry.h"

/* Schema history: append only, never edit a released entry. Each runs once,
 * in order, inside the transaction that bumps PRAGMA user_version. */
static const char *const migrations[] = {
        /* 1: devices, and the counter behind their never-reused numbers
         * (max(number)+1 would hand out a removed device's number again and
         * mix its old readings into the new device's history). */
        "CREATE TABLE devices (\n"
        "        id TEXT PRIMARY KEY NOT NULL,\n"
        "        number INTEGER NOT NULL UNIQUE,\n"
        "        parent TEXT,\n"
        "        mac TEXT,\n"
        "        outlet_index INTEGER,\n"
        "        alias TEXT,\n"
        "        model TEXT,\n"
        "        hw_ver TEXT,\n"
        "        sw_ver TEXT,\n"
        "        address TEXT,\n"
        "        device_id TEXT,\n"
        "        child_id TEXT,\n"
        "        has_emeter INTEGER NOT NULL DEFAULT 0,\n"
        "        first_seen INTEGER NOT NULL,\n"
        "        last_seen INTEGER NOT NULL,\n"
        "        monitored INTEGER NOT NULL DEFAULT 1\n"
        ") STRICT;\n"
        "CREATE INDEX devices_parent ON devices (parent);\n"
        "CREATE TABLE sequences (\n"
        "        name TEXT PRIMARY KEY NOT NULL,\n"
        "        value INTEGER NOT NULL\n"
        ") STRICT;\n"
        "INSERT INTO sequences VALUES ('device_number', 1);\n",
};

#define COLUMNS "id, number, parent, mac, outlet_index, alias, model, hw_ver, sw_ver, " \
                "address, device_id, child_id, has_emeter, first_seen, last_seen, monitored"

typedef enum Statement {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_SAVEPOINT,
        STMT_RELEASE,
        STMT_ROLLBACK_TO,
        STMT_GET,
        STMT_LIST,
        STMT_NEXT_NUMBER,
        STMT_INSERT,
        STMT_UPDATE,
        STMT_REMOVE,
        STMT_SET_ALIAS,
        STMT_SET_MONITORED,
        STMT_TOUCH,
        _STMT_MAX,
} Statement;

/* STMT_INSERT and STMT_UPDATE share the parameter numbering of bind_device(). */
static const char *const statement_sql[_STMT_MAX] = {
        [STMT_BEGIN]         = "BEGIN IMMEDIATE",
        [STMT_COMMIT]        = "COMMIT",
        [STMT_ROLLBACK]      = "ROLLBACK",
        [STMT_SAVEPOINT]     = "SAVEPOINT upsert",
        [STMT_RELEASE]       = "RELEASE upsert",
        [STMT_ROLLBACK_TO]   = "ROLLBACK TO upsert",
        [STMT_GET]           = "SELECT " COLUMNS " FROM devices WHERE id = ?1",
        [STMT_LIST]          = "SELECT " COLUMNS " FROM devices ORDER BY number",
        [STMT_NEXT_NUMBER]   = "UPDATE sequences SET value = value + 1 WHERE name = 'device_number' RETURNING value - 1",
        [STMT_INSERT]        = "INSERT INTO devices (" COLUMNS ") VALUES "
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, 1)",
        /* Fields the device did not report keep their value; last_seen
         * never goes back. */
        [STMT_UPDATE]        = "UPDATE devices SET parent = COALESCE(?3, parent), mac = COALESCE(?4, mac), "
                               "outlet_index = COALESCE(?5, outlet_index), alias = COALESCE(?6, alias), "
                               "model = COALESCE(?7, model), hw_ver = COALESCE(?8, hw_ver), "
                               "sw_ver = COALESCE(?9, sw_ver), address = COALESCE(?10, address), "
                               "device_id = COALESCE(?11, device_id), child_id = COALESCE(?12, child_id), "
                               "has_emeter = ?13, last_seen = MAX(last_seen, ?15) "
                               "WHERE id = ?1",
        [STMT_REMOVE]        = "DELETE FROM devices WHERE id = ?1 OR parent = ?1",
        [STMT_SET_ALIAS]     = "UPDATE devices SET alias = ?2 WHERE id = ?1",
        [STMT_SET_MONITORED] = "UPDATE devices SET monitored = ?2 WHERE id = ?1",
        [STMT_TOUCH]         = "UPDATE devices SET last_seen = MAX(last_seen, ?2) WHERE id = ?1",
};

struct Registry {
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        int schema_version;
        bool batch;             /* inside registry_begin() ... registry_commit() */
        unsigned commits;
        char error[256];
};

static int on_commit(void *userdata) {
        Registry *r = userdata;
        r->commits++;
        return 0; /* let it commit */
}

/* The error text goes to db->error (db-sqlite.h). */
#define fail(c, rc) db_fail((c)->db, (rc), (c)->error, sizeof (c)->error)
#define fail_msg(c, err, ...) db_failf((c)->error, sizeof (c)->error, (err), __VA_ARGS__)

static int exec_simple(Registry *r, Statement which) {
        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[which];
        int rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : fail(r, rc);
}

static void rollback(Registry *r) {
        if (!sqlite3_get_autocommit(r->db))
                (void) exec_simple(r, STMT_ROLLBACK);
}

int registry_make_id(const char *mac, int outlet, char ret[static REGISTRY_ID_MAX]) {
        char hex[13];
        size_t n = 0;
        char sep = 0;

        if (!mac || outlet < -1 || outlet > 99)
                return -EINVAL;

        for (const char *p = mac; *p; p++) {
                if (*p == ':' || *p == '-') {
                        /* one kind of separator, only between byte pairs */
                        if ((sep && *p != sep) || n == 0 || n % 2 != 0 || p[1] == 0)
                                return -EINVAL;
                        sep = *p;
                        continue;
                }
                if (n >= 12 || !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
                        return -EINVAL;
                hex[n++] = (char) (*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
        }
        if (n != 12)
                return -EINVAL;
        hex[n] = 0;

        if (outlet < 0)
                snprintf(ret, REGISTRY_ID_MAX, "%s", hex);
        else
                snprintf(ret, REGISTRY_ID_MAX, "%s_%02d", hex, outlet);
        return 0;
}

/* Ids become D-Bus object path elements: keep them to [0-9a-z_]. */
static bool id_is_valid(const char *id) {
        if (!id || !*id || strlen(id) >= REGISTRY_ID_MAX)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || *p == '_'))
                        return false;
        return true;
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        db_release(r->db, r->stmt, _STMT_MAX);
        free(r);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Registry *, registry_free);

int registry_open(const char *path, Registry **ret, char **ret_error) {
        /* synchronous=NORMAL: at worst the last changes before a power cut
         * are lost, and the next poll or discovery writes them again. */
        static const DbSpec spec = {
                .migrations = migrations,
                .n_migrations = ELEMENTSOF(migrations),
                .statements = statement_sql,
                .n_statements = _STMT_MAX,
        };
        _cleanup_(registry_freep) Registry *r = calloc(1, sizeof(Registry));
        int q;

        if (!r)
                return -ENOMEM;
        q = db_open(path, &spec, &r->db, r->stmt, ret_error);
        if (q < 0)
                return q;
        r->schema_version = q;
        /* After the migrations: they are not the registry's writes. */
        sqlite3_commit_hook(r->db, on_commit, r);
        *ret = TAKE_PTR(r);
        return 0;
}

const char *registry_last_error(const Registry *r) {
        return r->error;
}

int registry_schema_version(Registry *r) {
        return r->schema_version;
}

unsigned registry_commits(const Registry *r) {
        return r->commits;
}

int64_t registry_total_changes(const Registry *r) {
        return sqlite3_total_changes64(r->db);
}

int registry_begin(Registry *r) {
        int q;

        if (r->batch)
                return fail_msg(r, -EBUSY, "a batch is open already");
        q = exec_simple(r, STMT_BEGIN);
        if (q >= 0)
                r->batch = true;
        return q;
}

int registry_commit(Registry *r) {
        int q;

        if (!r->batch)
                return fail_msg(r, -EINVAL, "no batch is open");
        q = exec_simple(r, STMT_COMMIT);
        if (q < 0)
                rollback(r);
        r->batch = false;
        return q;
}

void registry_device_done(RegistryDevice *d) {
        if (!d)
                return;
        free(d->id);
        free(d->parent);
        free(d->mac);
        free(d->alias);
        free(d->model);
        free(d->hw_ver);
        free(d->sw_ver);
        free(d->address);
        free(d->device_id);
        free(d->child_id);
        *d = (RegistryDevice) { .outlet_index = -1 };
}

void registry_device_array_free(RegistryDevice *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                registry_device_done(&a[i]);
        free(a);
}

static int column_strdup(sqlite3_stmt *s, int col, char **ret) {
        const unsigned char *t = sqlite3_column_text(s, col);
        if (!t) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup((const char *) t);
        return *ret ? 0 : -ENOMEM;
}

/* Columns in the order of COLUMNS. */
static int read_device(sqlite3_stmt *s, RegistryDevice *ret) {
        RegistryDevice d = {
                .number = (uint32_t) sqlite3_column_int64(s, 1),
                .outlet_index = sqlite3_column_type(s, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(s, 4),
                .has_emeter = sqlite3_column_int(s, 12) != 0,
                .first_seen_ms = sqlite3_column_int64(s, 13),
                .last_seen_ms = sqlite3_column_int64(s, 14),
                .monitored = sqlite3_column_int(s, 15) != 0,
        };

        if (column_strdup(s, 0, &d.id) < 0 ||
            column_strdup(s, 2, &d.parent) < 0 ||
            column_strdup(s, 3, &d.mac) < 0 ||
            column_strdup(s, 5, &d.alias) < 0 ||
            column_strdup(s, 6, &d.model) < 0 ||
            column_strdup(s, 7, &d.hw_ver) < 0 ||
            column_strdup(s, 8, &d.sw_ver) < 0 ||
            column_strdup(s, 9, &d.address) < 0 ||
            column_strdup(s, 10, &d.device_id) < 0 ||
            column_strdup(s, 11, &d.child_id) < 0) {
                registry_device_done(&d);
                return -ENOMEM;
        }

        *ret = d;
        return 0;
}

static int bind_text(sqlite3_stmt *s, int i, const char *t) {
        return t ? sqlite3_bind_text(s, i, t, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

/* ?2 (number) and ?14 (first_seen) are only used by STMT_INSERT, so an
 * update can change neither. */
static int bind_device(sqlite3_stmt *s, const RegistryDevice *d, int64_t number) {
        int rc = SQLITE_OK;

        rc = rc ?: bind_text(s, 1, d->id);
        rc = rc ?: (number > 0 ? sqlite3_bind_int64(s, 2, number) : sqlite3_bind_null(s, 2));
        rc = rc ?: bind_text(s, 3, d->parent);
        rc = rc ?: bind_text(s, 4, d->mac);
        rc = rc ?: (d->outlet_index >= 0 ? sqlite3_bind_int(s, 5, d->outlet_index) : sqlite3_bind_null(s, 5));
        rc = rc ?: bind_text(s, 6, d->alias);
        rc = rc ?: bind_text(s, 7, d->model);
        rc = rc ?: bind_text(s, 8, d->hw_ver);
        rc = rc ?: bind_text(s, 9, d->sw_ver);
        rc = rc ?: bind_text(s, 10, d->address);
        rc = rc ?: bind_text(s, 11, d->device_id);
        rc = rc ?: bind_text(s, 12, d->child_id);
        rc = rc ?: sqlite3_bind_int(s, 13, d->has_emeter);
        rc = rc ?: sqlite3_bind_int64(s, 14, d->first_seen_ms > 0 ? d->first_seen_ms : d->last_seen_ms);
        rc = rc ?: sqlite3_bind_int64(s, 15, d->last_seen_ms);
        return rc;
}

static int upsert_locked(Registry *r, RegistryDevice *dev) {
        int rc;

        {
                _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_UPDATE];
                rc = bind_device(s, dev, 0);
                if (rc == SQLITE_OK)
                        rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return fail(r, rc);
        }

        if (sqlite3_changes(r->db) == 0) {
                int64_t number;
                {
                        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_NEXT_NUMBER];
                        rc = sqlite3_step(s);
                        if (rc != SQLITE_ROW)
                                return rc == SQLITE_DONE ? fail_msg(r, -EBADMSG, "device number sequence missing") : fail(r, rc);
                        number = sqlite3_column_int64(s, 0);
                        rc = sqlite3_step(s);
                        if (rc != SQLITE_DONE)
                                return fail(r, rc);
                }
                if (number <= 0 || number > UINT32_MAX)
                        return fail_msg(r, -ERANGE, "device numbers exhausted");

                _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_INSERT];
                rc = bind_device(s, dev, number);
                if (rc == SQLITE_OK)
                        rc = sqlite3_step(s);
                if (rc != SQLITE_DONE)
                        return fail(r, rc);
        }

        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_GET];
        rc = bind_text(s, 1, dev->id);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return fail(r, rc);

        dev->number = (uint32_t) sqlite3_column_int64(s, 1);
        dev->first_seen_ms = sqlite3_column_int64(s, 13);
        dev->monitored = sqlite3_column_int(s, 15) != 0;
        return 0;
}

static bool same_string(const char *stored, const char *given) {
        /* NULL given: the stored value is kept (COALESCE in STMT_UPDATE). */
        return !given || (stored && strcmp(stored, given) == 0);
}

/* 1 if the stored row already says what *dev says (then *dev gets the
 * row's number, first_seen and monitored), 0 if not or if there is none. */
static int upsert_unchanged(Registry *r, RegistryDevice *dev) {
        _cleanup_(registry_device_done) RegistryDevice old = { .outlet_index = -1 };
        int q;

        q = registry_get(r, dev->id, &old);
        if (q == -ENOENT)
                return 0;
        if (q < 0)
                return q;
        if (!same_string(old.parent, dev->parent) || !same_string(old.mac, dev->mac) ||
            (dev->outlet_index >= 0 && old.outlet_index != dev->outlet_index) ||
            !same_string(old.alias, dev->alias) || !same_string(old.model, dev->model) ||
            !same_string(old.hw_ver, dev->hw_ver) || !same_string(old.sw_ver, dev->sw_ver) ||
            !same_string(old.address, dev->address) || !same_string(old.device_id, dev->device_id) ||
            !same_string(old.child_id, dev->child_id) || old.has_emeter != dev->has_emeter ||
            old.last_seen_ms < dev->last_seen_ms)
                return 0;
        dev->number = old.number;
        dev->first_seen_ms = old.first_seen_ms;
        dev->monitored = old.monitored;
        return 1;
}

int registry_upsert(Registry *r, RegistryDevice *dev) {
        int q;

        if (!id_is_valid(dev->id) || (dev->parent && !id_is_valid(dev->parent)))
                return fail_msg(r, -EINVAL, "invalid device id");

        /* A device seen again as it was writes nothing. */
        q = upsert_unchanged(r, dev);
        if (q != 0)
                return q < 0 ? q : 0;

        /* Inside a batch, a savepoint keeps a failed upsert from leaving
         * half of itself in the batch. */
        q = exec_simple(r, r->batch ? STMT_SAVEPOINT : STMT_BEGIN);
        if (q < 0)
                return q;

        q = upsert_locked(r, dev);
        if (q >= 0)
                q = exec_simple(r, r->batch ? STMT_RELEASE : STMT_COMMIT);
        if (q < 0) {
                if (r->batch) {
                        (void) exec_simple(r, STMT_ROLLBACK_TO);
                        (void) exec_simple(r, STMT_RELEASE);
                } else
                        rollback(r);
        }
        return q;
}

int registry_get(Registry *r, const char *id, RegistryDevice *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_GET];
        int rc;

        rc = bind_text(s, 1, id);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return fail_msg(r, -ENOENT, "no device '%s'", id ?: "");
        if (rc != SQLITE_ROW)
                return fail(r, rc);

        return read_device(s, ret);
}

int registry_list(Registry *r, RegistryDevice **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_LIST];
        RegistryDevice *a = NULL;
        size_t n = 0, allocated = 0;
        int rc, q = 0;

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                if (n == allocated) {
                        size_t m = allocated ? allocated * 2 : 16;
                        RegistryDevice *b = reallocarray(a, m, sizeof(RegistryDevice));
                        if (!b) {
                                q = -ENOMEM;
                                break;
                        }
                        a = b;
                        allocated = m;
                }
                q = read_device(s, &a[n]);
                if (q < 0)
                        break;
                n++;
        }
        if (q == 0 && rc != SQLITE_DONE)
                q = fail(r, rc);
        if (q < 0) {
                registry_device_array_free(a, n);
                return q;
        }

        *ret = a;
        *ret_n = n;
        return 0;
}

/* Runs a bound single-row UPDATE/DELETE; -ENOENT if it matched nothing. */
static int step_change(Registry *r, sqlite3_stmt *s, int rc, const char *id) {
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(r, rc);
        if (sqlite3_changes(r->db) == 0)
                return fail_msg(r, -ENOENT, "no device '%s'", id ?: "");
        return 0;
}

int registry_remove(Registry *r, const char *id) {
        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_REMOVE];
        return step_change(r, s, bind_text(s, 1, id), id);
}

int registry_set_alias(Registry *r, const char *id, const char *alias) {
        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_SET_ALIAS];
        int rc = bind_text(s, 1, id);
        rc = rc ?: bind_text(s, 2, alias);
        return step_change(r, s, rc, id);
}

int registry_set_monitored(Registry *r, const char *id, bool monitored) {
        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_SET_MONITORED];
        int rc = bind_text(s, 1, id);
        rc = rc ?: sqlite3_bind_int(s, 2, monitored);
        return step_change(r, s, rc, id);
}

int registry_touch(Registry *r, const char *id, int64_t last_seen_ms) {
        _cleanup_stmt_ sqlite3_stmt *s = r->stmt[STMT_TOUCH];
        int rc = bind_text(s, 1, id);
        rc = rc ?: sqlite3_bind_int64(s, 2, last_seen_ms);
        return step_change(r, s, rc, id);
}
