/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db-schedule.h"
#include "db-sqlite.h"

/* Schema history: append only, never edit a released entry. Each runs once,
 * in order, inside the transaction that bumps PRAGMA user_version. */
static const char *const migrations[] = {
        /* 1: AUTOINCREMENT, so that a removed schedule's id (and with it its
         * unit names and object path) is never handed out again. */
        "CREATE TABLE schedules (\n"
        "        id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
        "        devices TEXT NOT NULL,\n"
        "        action TEXT NOT NULL,\n"
        "        calendar TEXT,\n"
        "        sun_event TEXT,\n"
        "        sun_offset_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        random_delay_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        persistent INTEGER NOT NULL DEFAULT 0,\n"
        "        enabled INTEGER NOT NULL DEFAULT 1,\n"
        "        valid_from_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        valid_until_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        last_run_usec INTEGER NOT NULL DEFAULT 0,\n"
        "        last_result TEXT NOT NULL DEFAULT '',\n"
        "        CHECK ((calendar IS NULL) != (sun_event IS NULL))\n"
        ") STRICT;\n",
};

#define COLUMNS "id, devices, action, calendar, sun_event, sun_offset_usec, random_delay_usec, persistent, " \
                "enabled, valid_from_usec, valid_until_usec, last_run_usec, last_result"

typedef enum Statement {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_LIST,
        STMT_INSERT,
        STMT_SET_ENABLED,
        STMT_SET_RESULT,
        STMT_REMOVE,
        _STMT_MAX,
} Statement;

static const char *const statement_sql[_STMT_MAX] = {
        [STMT_BEGIN]       = "BEGIN IMMEDIATE",
        [STMT_COMMIT]      = "COMMIT",
        [STMT_ROLLBACK]    = "ROLLBACK",
        [STMT_LIST]        = "SELECT " COLUMNS " FROM schedules ORDER BY id",
        [STMT_INSERT]      = "INSERT INTO schedules (devices, action, calendar, sun_event, sun_offset_usec, "
                             "random_delay_usec, persistent, enabled, valid_from_usec, valid_until_usec) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        [STMT_SET_ENABLED] = "UPDATE schedules SET enabled = ?2 WHERE id = ?1",
        [STMT_SET_RESULT]  = "UPDATE schedules SET last_run_usec = ?2, last_result = ?3 WHERE id = ?1",
        [STMT_REMOVE]      = "DELETE FROM schedules WHERE id = ?1",
};

struct DbSchedule {
        sqlite3 *db;
        sqlite3_stmt *stmt[_STMT_MAX];
        char error[256];
};

/* The error text goes to db->error (db-sqlite.h). */
#define fail(c, rc) db_fail((c)->db, (rc), (c)->error, sizeof (c)->error)
#define fail_msg(c, err, ...) db_failf((c)->error, sizeof (c)->error, (err), __VA_ARGS__)

const char *db_schedule_last_error(const DbSchedule *db) {
        return db->error;
}

static int exec_simple(DbSchedule *db, Statement which) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[which];
        int rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}

DbSchedule *db_schedule_free(DbSchedule *db) {
        if (!db)
                return NULL;
        db_release(db->db, db->stmt, _STMT_MAX);
        free(db);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(DbSchedule *, db_schedule_free);

int db_schedule_open(const char *path, DbSchedule **ret, char **ret_error) {
        /* As the registry: a change lost at a power cut is one a user made
         * a moment before, not silent corruption. */
        static const DbSpec spec = {
                .migrations = migrations,
                .n_migrations = ELEMENTSOF(migrations),
                .statements = statement_sql,
                .n_statements = _STMT_MAX,
        };
        _cleanup_(db_schedule_freep) DbSchedule *db = calloc(1, sizeof(DbSchedule));
        int r;

        if (!db)
                return -ENOMEM;
        r = db_open(path, &spec, &db->db, db->stmt, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(db);
        return 0;
}

void schedule_record_done(ScheduleRecord *r) {
        g_strfreev(r->devices);
        free(r->action);
        free(r->calendar);
        free(r->sun_event);
        free(r->last_result);
        *r = (ScheduleRecord) {};
}

static char *column_strdup(sqlite3_stmt *s, int i) {
        const unsigned char *t = sqlite3_column_text(s, i);
        return t ? strdup((const char *) t) : NULL;
}

int db_schedule_list(DbSchedule *db, ScheduleRecord **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_LIST];
        ScheduleRecord *list = NULL;
        size_t n = 0;
        int rc;

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                ScheduleRecord *l = realloc(list, (n + 1) * sizeof(ScheduleRecord));
                if (!l)
                        goto oom;
                list = l;
                ScheduleRecord *r = &list[n++];
                *r = (ScheduleRecord) {
                        .id = (uint32_t) sqlite3_column_int64(s, 0),
                        .devices = g_strsplit((const char *) sqlite3_column_text(s, 1), " ", -1),
                        .action = column_strdup(s, 2),
                        .calendar = column_strdup(s, 3),
                        .sun_event = column_strdup(s, 4),
                        .sun_offset_usec = sqlite3_column_int64(s, 5),
                        .random_delay_usec = (uint64_t) sqlite3_column_int64(s, 6),
                        .persistent = sqlite3_column_int(s, 7),
                        .enabled = sqlite3_column_int(s, 8),
                        .valid_from_usec = (uint64_t) sqlite3_column_int64(s, 9),
                        .valid_until_usec = (uint64_t) sqlite3_column_int64(s, 10),
                        .last_run_usec = (uint64_t) sqlite3_column_int64(s, 11),
                        .last_result = column_strdup(s, 12),
                };
                if (!r->action || !r->last_result || (!r->calendar && !r->sun_event))
                        goto oom;
        }
        if (rc != SQLITE_DONE) {
                int q = fail(db, rc);
                for (size_t i = 0; i < n; i++)
                        schedule_record_done(&list[i]);
                free(list);
                return q;
        }
        *ret = list;
        *ret_n = n;
        return 0;

oom:
        for (size_t i = 0; i < n; i++)
                schedule_record_done(&list[i]);
        free(list);
        return fail_msg(db, -ENOMEM, "out of memory");
}

int db_schedule_insert(DbSchedule *db, ScheduleRecord *rec) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_INSERT];
        g_autofree char *devices = g_strjoinv(" ", rec->devices);
        int rc;

        sqlite3_bind_text(s, 1, devices, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, rec->action, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, rec->calendar, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, rec->sun_event, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, rec->sun_offset_usec);
        sqlite3_bind_int64(s, 6, (int64_t) rec->random_delay_usec);
        sqlite3_bind_int(s, 7, rec->persistent);
        sqlite3_bind_int(s, 8, rec->enabled);
        sqlite3_bind_int64(s, 9, (int64_t) rec->valid_from_usec);
        sqlite3_bind_int64(s, 10, (int64_t) rec->valid_until_usec);
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return fail(db, rc);
        rec->id = (uint32_t) sqlite3_column_int64(s, 0);
        rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : fail(db, rc);
}

static int changed_one(DbSchedule *db, sqlite3_stmt *s) {
        int rc = sqlite3_step(s);
        if (rc != SQLITE_DONE)
                return fail(db, rc);
        return sqlite3_changes(db->db) > 0 ? 0 : fail_msg(db, -ENOENT, "no such schedule");
}

int db_schedule_set_enabled(DbSchedule *db, uint32_t id, bool enabled) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_SET_ENABLED];

        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int(s, 2, enabled);
        return changed_one(db, s);
}

int db_schedule_set_result(DbSchedule *db, uint32_t id, uint64_t run_usec, const char *result) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_SET_RESULT];

        sqlite3_bind_int64(s, 1, id);
        sqlite3_bind_int64(s, 2, (int64_t) run_usec);
        sqlite3_bind_text(s, 3, result, -1, SQLITE_STATIC);
        return changed_one(db, s);
}

int db_schedule_remove(DbSchedule *db, uint32_t id) {
        _cleanup_stmt_ sqlite3_stmt *s = db->stmt[STMT_REMOVE];

        sqlite3_bind_int64(s, 1, id);
        return changed_one(db, s);
}

int db_schedule_begin(DbSchedule *db) {
        return exec_simple(db, STMT_BEGIN);
}

int db_schedule_commit(DbSchedule *db) {
        return exec_simple(db, STMT_COMMIT);
}

void db_schedule_rollback(DbSchedule *db) {
        if (!sqlite3_get_autocommit(db->db))
                (void) exec_simple(db, STMT_ROLLBACK);
}
