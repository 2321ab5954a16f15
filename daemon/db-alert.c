/* SPDX-License-Identifier: MIT */
#include "db-alert.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db-sqlite.h"

/* Schema history: append only, never edit a released entry. */
static const char *const migrations[] = {
        /* 1: AUTOINCREMENT, so that a removed rule's id never names a new
         * rule in the history of alerts. Times in microseconds since the
         * epoch; hook a JSON array of strings or NULL. */
        "CREATE TABLE rules (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        name TEXT NOT NULL UNIQUE,\n"
        "        kind TEXT NOT NULL,\n"
        "        scope TEXT NOT NULL DEFAULT '',\n"
        "        threshold REAL NOT NULL DEFAULT 0,\n"
        "        duration_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        cooldown_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        hook TEXT\n"
        ") STRICT;\n"
        "CREATE TABLE alerts (\n"
        "        id INTEGER PRIMARY KEY,\n"
        "        rule INTEGER NOT NULL,\n"
        "        device TEXT NOT NULL,\n"
        "        state TEXT NOT NULL CHECK (state IN ('active', 'acknowledged', 'resolved')),\n"
        "        since_usec INTEGER NOT NULL,\n"
        "        resolved_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        value REAL NOT NULL\n"
        ") STRICT;\n"
        "CREATE INDEX alerts_open ON alerts (state) WHERE state != 'resolved';\n",
};

typedef enum Statement {
        STMT_RULES,
        STMT_OPEN,
        STMT_MAX_ID,
        STMT_INSERT_RULE,
        STMT_REMOVE_RULE,
        STMT_SAVE,
        _STMT_MAX,
} Statement;

static const char *const statement_sql[_STMT_MAX] = {
        [STMT_RULES] = "SELECT id, name, kind, scope, threshold, duration_usec, cooldown_usec, hook FROM rules ORDER BY id",
        [STMT_OPEN] = "SELECT id, rule, device, state, since_usec, value FROM alerts WHERE state != 'resolved' ORDER BY id",
        [STMT_MAX_ID] = "SELECT COALESCE(MAX(id), 0) FROM alerts",
        [STMT_INSERT_RULE] = "INSERT INTO rules (name, kind, scope, threshold, duration_usec, cooldown_usec, hook) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        [STMT_REMOVE_RULE] = "DELETE FROM rules WHERE id = ?1",
        [STMT_SAVE] = "INSERT OR REPLACE INTO alerts (id, rule, device, state, since_usec, resolved_usec, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
};

struct AlertDb {
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        char error[256];
};

/* The error text goes to db->error (db-sqlite.h). */
#define fail(c, rc) db_fail((c)->db, (rc), (c)->error, sizeof (c)->error)
#define fail_msg(c, err, ...) db_failf((c)->error, sizeof (c)->error, (err), __VA_ARGS__)

const char *db_alert_last_error(const AlertDb *db) {
        return db->error;
}

AlertDb *db_alert_free(AlertDb *db) {
        if (!db)
                return NULL;
        db_release(db->db, db->stmt, _STMT_MAX);
        free(db);
        return NULL;
}

int db_alert_open(const char *path, AlertDb **ret, char **ret_error) {
        /* Alerts are written when they fire or change, a few a day: the
         * cost of a durable commit is nothing, and an alert never vanishes
         * in a crash. */
        static const DbSpec spec = {
                .flags = DB_DURABLE,
                .migrations = migrations,
                .n_migrations = ELEMENTSOF(migrations),
                .statements = statement_sql,
                .n_statements = _STMT_MAX,
        };
        _cleanup_(db_alert_freep) AlertDb *db = calloc(1, sizeof(AlertDb));
        int r;

        if (!db)
                return -ENOMEM;
        r = db_open(path, &spec, &db->db, db->stmt, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(db);
        return 0;
}

static int hook_from_json(const char *text, char ***ret) {
        json_t *j, *v;
        size_t i;
        char **l;

        *ret = NULL;
        if (!text)
                return 0;
        j = json_loads(text, 0, NULL);
        if (!json_is_array(j)) {
                json_decref(j);
                return -EBADMSG;
        }
        l = g_new0(char *, json_array_size(j) + 1);
        json_array_foreach(j, i, v) {
                if (!json_is_string(v)) {
                        g_strfreev(l);
                        json_decref(j);
                        return -EBADMSG;
                }
                l[i] = g_strdup(json_string_value(v));
        }
        json_decref(j);
        *ret = l;
        return 0;
}

static char *hook_to_json(char **hook) {
        json_t *j = json_array();
        char *s;

        for (char **p = hook; p && *p; p++)
                json_array_append_new(j, json_string(*p));
        s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        return s;
}

static int load_rules(AlertDb *db, AlertEngine *e) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_RULES];
        int rc, r;

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                AlertRule rule = {
                        .id = (uint32_t) sqlite3_column_int64(s, 0),
                        .name = (char *) sqlite3_column_text(s, 1),
                        .kind = alert_kind_from_string((const char *) sqlite3_column_text(s, 2)),
                        .scope = (char *) sqlite3_column_text(s, 3),
                        .threshold = sqlite3_column_double(s, 4),
                        .duration_usec = (uint64_t) sqlite3_column_int64(s, 5),
                        .cooldown_usec = (uint64_t) sqlite3_column_int64(s, 6),
                };
                g_auto(GStrv) hook = NULL;

                r = hook_from_json((const char *) sqlite3_column_text(s, 7), &hook);
                rule.hook = hook;
                if (r < 0 || alert_rule_validate(&rule, NULL) < 0)
                        return fail_msg(db, -EBADMSG, "malformed rule %" PRIu32, rule.id);
                r = alert_engine_add_rule(e, &rule);
                if (r < 0)
                        return fail_msg(db, r, "rule %" PRIu32 " cannot be loaded: %s", rule.id, strerror(-r));
        }
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}

static int load_alerts(AlertDb *db, AlertEngine *e) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_OPEN];
        int rc, r;

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                Alert a = {
                        .id = (uint32_t) sqlite3_column_int64(s, 0),
                        .rule = (uint32_t) sqlite3_column_int64(s, 1),
                        .state = alert_state_from_string((const char *) sqlite3_column_text(s, 3)),
                        .since_usec = (uint64_t) sqlite3_column_int64(s, 4),
                        .value = sqlite3_column_double(s, 5),
                };
                snprintf(a.device, sizeof a.device, "%s", (const char *) sqlite3_column_text(s, 2) ?: "");
                r = alert_engine_restore(e, &a);
                /* A rule removed while it was open cannot happen through
                 * kasamond (removal resolves); by hand, the alert stays
                 * closed in the history. */
                if (r < 0 && r != -ENOENT && r != -EEXIST)
                        return fail_msg(db, r, "alert %" PRIu32 " cannot be loaded: %s", a.id, strerror(-r));
        }
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}

int db_alert_load(AlertDb *db, AlertEngine *e) {
        int r, rc;

        r = load_rules(db, e);
        if (r < 0)
                return r;
        r = load_alerts(db, e);
        if (r < 0)
                return r;

        /* Ids of resolved alerts are not reused either. */
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_MAX_ID];
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return fail(db, rc);
        alert_engine_set_next_id(e, (uint32_t) sqlite3_column_int64(s, 0) + 1);
        return 0;
}

int db_alert_insert_rule(AlertDb *db, AlertRule *r) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_INSERT_RULE];
        _cleanup_free_ char *hook = r->hook ? hook_to_json(r->hook) : NULL;
        int rc;

        if (r->hook && !hook)
                return -ENOMEM;
        if (sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 2, alert_kind_to_string(r->kind), -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 3, r->scope, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_double(s, 4, r->threshold) != SQLITE_OK ||
            sqlite3_bind_int64(s, 5, (int64_t) r->duration_usec) != SQLITE_OK ||
            sqlite3_bind_int64(s, 6, (int64_t) r->cooldown_usec) != SQLITE_OK ||
            (hook ? sqlite3_bind_text(s, 7, hook, -1, SQLITE_STATIC) : sqlite3_bind_null(s, 7)) != SQLITE_OK)
                return fail(db, sqlite3_errcode(db->db));
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return fail(db, rc);
        r->id = (uint32_t) sqlite3_column_int64(s, 0);
        rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}

int db_alert_remove_rule(AlertDb *db, uint32_t id) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_REMOVE_RULE];
        int rc;

        if (sqlite3_bind_int64(s, 1, id) != SQLITE_OK)
                return fail(db, sqlite3_errcode(db->db));
        rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(db, rc);
        return sqlite3_changes(db->db) > 0 ? 0 : fail_msg(db, -ENOENT, "no rule %" PRIu32, id);
}

int db_alert_save(AlertDb *db, const Alert *a) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_SAVE];
        int rc;

        if (sqlite3_bind_int64(s, 1, a->id) != SQLITE_OK || sqlite3_bind_int64(s, 2, a->rule) != SQLITE_OK ||
            sqlite3_bind_text(s, 3, a->device, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_text(s, 4, alert_state_to_string(a->state), -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_bind_int64(s, 5, (int64_t) a->since_usec) != SQLITE_OK ||
            sqlite3_bind_int64(s, 6, (int64_t) a->resolved_usec) != SQLITE_OK ||
            sqlite3_bind_double(s, 7, a->value) != SQLITE_OK)
                return fail(db, sqlite3_errcode(db->db));
        rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}
