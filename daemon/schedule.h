/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Schedules: each enabled one is a systemd timer with a service running
 * "kasactl schedule fire ID", made by kasamond-schedule-generator from the
 * list kasamond writes (schedule-units.h, systemd1.h), so systemd does the
 * calendar, missed runs, randomised delays and time-zone changes. Units are
 * named kasamond-schedule-ID.timer/.service; a sun schedule arms one event
 * at a time as a one-off calendar time, in units named after its day,
 * kasamond-schedule-ID-YYYYMMDD.timer/.service, and arms the next one when
 * it fires. No D-Bus here beyond the ops: bus-schedule.c is the glue.
 */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "db-schedule.h"
#include "schedule-units.h"
#include "device.h"
#include "sun.h"
#include "systemd1.h"

/* Longest randomized delay and sun offset accepted. */
#define SCHEDULE_RANDOM_MAX_USEC (24 * 3600 * UINT64_C(1000000))
#define SCHEDULE_OFFSET_MAX_USEC (12 * 3600 * INT64_C(1000000))
#define SCHEDULE_DEVICES_MAX 64

typedef struct Scheduler Scheduler;

typedef struct Schedule {
        Scheduler *scheduler;
        ScheduleRecord rec;
        DeviceAction action;
        SunEvent sun_event;        /* _SUN_EVENT_INVALID: a calendar schedule */
        char *path;                /* D-Bus object path */
        char *armed_timer;         /* the timer unit armed now, NULL if none */
        char *armed_service;
        ScheduleUnit armed_unit;   /* what the generator makes of it, when armed */
        uint64_t sun_next_usec;    /* a sun schedule: the event armed (with its offset), 0 if none */
        char *sun_remark;          /* a sun schedule not armed: why (polar night, no location) */
} Schedule;

/* What the scheduler needs from the daemon (manager-schedule.c), faked in
 * tests. apply switches one device and calls done once, later or at once,
 * with NULL or why it failed. */
typedef void (*ScheduleApplyDone)(void *userdata, const char *error);
typedef struct ScheduleHostOps {
        uint64_t (*now_usec)(void *userdata);
        /* Local noon of the day containing t, plus days, in UTC usec. */
        int64_t (*local_noon)(void *userdata, uint64_t t, int days);
        bool (*device_exists)(void *userdata, const char *id);
        int (*apply)(void *userdata, const char *id, DeviceAction a, ScheduleApplyDone done, void *done_userdata);
        /* A schedule's properties changed (LastResult, NextElapse, Enabled). */
        void (*changed)(void *userdata, Schedule *s);
} ScheduleHostOps;

typedef struct SchedulerConfig {
        const Systemd1Ops *systemd;
        void *systemd_userdata;
        const ScheduleHostOps *host;
        void *host_userdata;
        double latitude, longitude; /* NAN: none configured */
} SchedulerConfig;

/* What AddSchedule asks for. */
typedef struct ScheduleSpec {
        char **devices;
        const char *action;
        const char *when;          /* a calendar expression, or a sun event name */
        int64_t sun_offset_usec;   /* sun events only */
        uint64_t random_delay_usec;
        bool persistent;
        uint64_t valid_from_usec, valid_until_usec;
} ScheduleSpec;

/* Takes over db. */
int scheduler_new(const SchedulerConfig *config, DbSchedule *db, Scheduler **ret);
Scheduler *scheduler_free(Scheduler *s);

/* Loads the stored schedules and brings the units in line: arms enabled
 * schedules whose timer is missing (after a reboot), stops units of
 * schedules that are gone or disabled (left by a crash). Failures are
 * logged per schedule and do not stop the others. */
int scheduler_start(Scheduler *s);

/* 0, or why schedules cannot work here, for the caller to say. */
int scheduler_available(Scheduler *s, char **ret_error);
/* SchedulerConfig.host_userdata. */
void *scheduler_host(Scheduler *s);

Schedule *scheduler_find(Scheduler *s, uint32_t id);
Schedule *scheduler_find_path(Scheduler *s, const char *path);
/* All schedules by id (a GPtrArray of Schedule*, owned by the scheduler). */
GPtrArray *scheduler_list(Scheduler *s);

/* Validates, then stores and arms in one transaction: an invalid spec,
 * or one systemd refuses, leaves nothing behind. -EINVAL with a message
 * for the user. */
int scheduler_add(Scheduler *s, const ScheduleSpec *spec, Schedule **ret, char **ret_error);
int scheduler_set_enabled(Scheduler *s, Schedule *sch, bool enabled, char **ret_error);
/* Stops its units, deletes it and frees sch. */
int scheduler_remove(Scheduler *s, Schedule *sch, char **ret_error);

/* Whether unit is one of the services of sch, the only units whose calls
 * fire it as its timer. */
bool schedule_is_own_service(const Schedule *sch, const char *unit);

/* Runs the action on every device; done gets the result text (the new
 * LastResult) and whether every device did it, by id: the schedule may be
 * removed meanwhile. from_timer: a sun schedule
 * arms its next event, and a run outside valid from/until does nothing. */
typedef void (*ScheduleFireDone)(uint32_t id, bool success, const char *result, void *userdata);
int scheduler_fire(Scheduler *s, Schedule *sch, bool from_timer, ScheduleFireDone done, void *userdata);

/* NextElapse and LastTrigger, from the timer unit (0 when unknown). */
void scheduler_timer_times(Scheduler *s, Schedule *sch, uint64_t *ret_next, uint64_t *ret_last);

/* JSON of a schedule, for Describe() (free()). */
char *schedule_describe(Scheduler *s, Schedule *sch);

/* Sunrise, sunset, civil dawn and dusk of the local day containing t
 * (UTC usec): times[e] (0 when there is none) and remarks[e] (NULL, or
 * why there is none). lat/lon NAN: the configured location; -ENODATA if
 * there is none. */
int scheduler_sun_times(Scheduler *s, uint64_t t, double lat, double lon, uint64_t times[static _SUN_EVENT_MAX],
                        const char *remarks[static _SUN_EVENT_MAX]);
