/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who calls a schedule's Fire, asked without blocking the loop, the way
 * polkit.h asks polkit: the first time the method runs, the questions are
 * sent and the method returns without replying; once the answer is here
 * the call is queued again (sd_bus_enqueue_for_read) and the method runs a
 * second time, finding it.
 *
 * Two questions, each an asynchronous call: the bus names the caller's uid
 * and process (GetConnectionCredentials: UnixUserID, the effective uid it
 * connected with, and ProcessID); for kasamond's own user, systemd names
 * the unit that process runs in (GetUnitByPID): no /proc, which kasamond's
 * unit hides. The caller waits for its answer, so its PID cannot be reused
 * meanwhile. Which uid and unit count is the caller's business
 * (FireCallerOps), asked as the answers come.
 */

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

typedef struct FireCallers FireCallers;

typedef struct FireCallerOps {
        /* Whether uid is the user the schedules' services run as. */
        bool (*is_service_user)(void *userdata, uid_t uid);
        /* Whether unit is the own service of the schedule call is for;
         * unit NULL and error < 0 when systemd could not say. */
        bool (*is_own_unit)(void *userdata, sd_bus_message *call, const char *unit, int error);
} FireCallerOps;

FireCallers *fire_callers_new(const FireCallerOps *ops, void *userdata);
FireCallers *fire_callers_free(FireCallers *c);

/* 1 when the answer is here, *ret_own whether the call comes from its
 * schedule's own service; kept until fire_caller_forget() (the method may
 * run again for polkit). 0 while it is pending: the method returns 1
 * without replying and runs again. A negative errno when the question
 * could not be asked: the caller then counts as anyone. */
int fire_caller_check(FireCallers *c, sd_bus_message *call, bool *ret_own);

/* Drops the answer kept for call: once the method is done with it, or its
 * object went away before the re-run. One still being asked stays. */
void fire_caller_forget(FireCallers *c, sd_bus_message *call);
