/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What schedules need from the service manager, behind an ops table: the
 * daemon uses systemd1_ops (org.freedesktop.systemd1 on the bus kasamond is
 * on, systemd-analyze for calendar expressions, and the file that
 * kasamond-schedule-generator makes the units from), tests/daemon/
 * test-schedule.c a fake. No StartTransientUnit: systemd 252 names no
 * unit to polkit for it, so allowing it would allow any unit
 * (kasamond(8), SECURITY).
 *
 * Calls are synchronous, on kasamond's loop, and kept so because each is
 * bounded and rare rather than because it is free:
 * - bounded: systemd answers them from its own loop without calling back
 *   into kasamond (the timers' service that does call kasamond is only
 *   started by a job, never waited for), sd-bus gives up on one after its
 *   method timeout (25 s), and systemd-analyze calendar is a parser that
 *   opens nothing and exits;
 * - rare: they run when an administrator (manage-schedules) adds,
 *   enables, disables or removes a schedule, once a day per sun schedule
 *   (its next event), at start, and when a timer's NextElapse or
 *   LastTrigger is read; none runs per poll. The longest is Reload, which
 *   systemd answers once its daemon-reload is done: a fraction of a
 *   second on a small system, polls waiting meanwhile. Making them
 *   asynchronous would turn every schedule method into a chain of
 *   continuations for that.
 * kasamond(8) says so (Schedules). Fire's caller check, which anyone can
 * trigger, is asynchronous (fire-caller.h).
 *
 * Errors are negative errno with a message for the user in *ret_error
 * (free()) where given.
 */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "schedule-units.h"

typedef struct Systemd1Ops {
        /* 0 if there is a service manager to make timers with, else a
         * negative errno and why not. */
        int (*available)(void *userdata, char **ret_error);
        /* systemd's own check of an OnCalendar= expression: 0 and its
         * normalized form, or -EINVAL and systemd's message. */
        int (*check_calendar)(void *userdata, const char *expr, char **ret_normalized, char **ret_error);
        /* Writes the units to make (schedule-units.h): 1 if that changed
         * the file, 0 if it said so already. */
        int (*write_units)(void *userdata, const ScheduleUnit *units, size_t n, char **ret_error);
        /* daemon-reload: the generator makes the units written. */
        int (*reload)(void *userdata, char **ret_error);
        /* Starts a unit; -ENOENT if systemd has no such unit. */
        int (*start_unit)(void *userdata, const char *unit, char **ret_error);
        /* Stops (and so unloads) a unit; 0 if it is not loaded. */
        int (*stop_unit)(void *userdata, const char *unit);
        /* Names of the loaded units that start with prefix (NULL-terminated, g_strfreev()). */
        int (*list_units)(void *userdata, const char *prefix, char ***ret_units);
        /* NextElapseUSecRealtime and LastTriggerUSec of a timer; -ENOENT if not loaded. */
        int (*timer_times)(void *userdata, const char *timer, uint64_t *ret_next, uint64_t *ret_last);
} Systemd1Ops;

typedef struct Systemd1 {
        sd_bus *bus;
        const char *analyze;      /* systemd-analyze */
        char units_path[PATH_MAX]; /* where write_units writes */
} Systemd1;

extern const Systemd1Ops systemd1_ops; /* userdata: a Systemd1 */
