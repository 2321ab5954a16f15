/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Schedules in SQLite (schedules.sqlite in the state directory), a schema
 * of its own with its own PRAGMA user_version. Rows are stored as given:
 * schedule.c validates before it stores. Functions return negative errno;
 * the SQLite message of the last failure is in db_schedule_last_error(). */

typedef struct DbSchedule DbSchedule;

typedef struct ScheduleRecord {
        uint32_t id;              /* assigned by db_schedule_insert(), never reused */
        char **devices;           /* NULL-terminated device ids */
        char *action;             /* "on", "off", "toggle" */
        char *calendar;           /* OnCalendar= expression; NULL for a sun schedule */
        char *sun_event;          /* "sunrise" ...; NULL for a calendar schedule */
        int64_t sun_offset_usec;
        uint64_t random_delay_usec;
        bool persistent;
        bool enabled;
        uint64_t valid_from_usec;  /* 0: no bound */
        uint64_t valid_until_usec; /* 0: no bound */
        uint64_t last_run_usec;    /* 0: never */
        char *last_result;         /* "" before the first run */
} ScheduleRecord;

void schedule_record_done(ScheduleRecord *r);

int db_schedule_open(const char *path, DbSchedule **ret, char **ret_error);
DbSchedule *db_schedule_free(DbSchedule *db);
const char *db_schedule_last_error(const DbSchedule *db);

/* Every schedule by id; free with schedule_record_done() each and free(). */
int db_schedule_list(DbSchedule *db, ScheduleRecord **ret, size_t *ret_n);
/* Sets rec->id. */
int db_schedule_insert(DbSchedule *db, ScheduleRecord *rec);
int db_schedule_set_enabled(DbSchedule *db, uint32_t id, bool enabled);
int db_schedule_set_result(DbSchedule *db, uint32_t id, uint64_t run_usec, const char *result);
/* -ENOENT if there is no such schedule. */
int db_schedule_remove(DbSchedule *db, uint32_t id);

/* A transaction around an insert and what must succeed with it. */
int db_schedule_begin(DbSchedule *db);
int db_schedule_commit(DbSchedule *db);
void db_schedule_rollback(DbSchedule *db);
