/* SPDX-License-Identifier: MIT */
#pragma once

/* The scheduler's state, shared by schedule.c and schedule-describe.c. */

#include <glib.h>
#include <math.h>
#include <stdbool.h>

#include "db-schedule.h"
#include "schedule.h"

struct Scheduler {
        SchedulerConfig config;
        DbSchedule *db;
        GHashTable *by_id;       /* GUINT_TO_POINTER(id) -> Schedule*, owns them */
        GPtrArray *list;         /* by id */
};

static inline bool scheduler_have_location(const Scheduler *s) {
        return !isnan(s->config.latitude) && !isnan(s->config.longitude);
}
