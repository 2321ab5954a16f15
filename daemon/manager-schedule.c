/* SPDX-License-Identifier: MIT */

/* The manager's side of schedules: the scheduler's host (clock, local
 * days, devices) and its setup at start-up. */

#include <errno.h>
#include <glib.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "kasa-time.h"
#include "log.h"
#include "manager.h"
#include "readings.h"

static uint64_t host_now_usec(void *userdata) {
        return realtime_usec();
}

/* 12:00 of the local day, in the configured zone: the solar day whose
 * events belong to that civil day is the one around it. */
static int64_t host_local_noon(void *userdata, uint64_t t, int days) {
        Manager *m = userdata;
        GTimeZone *tz = m->config.time_zone && *m->config.time_zone ? g_time_zone_new_identifier(m->config.time_zone)
                                                                     : g_time_zone_new_local();
        GDateTime *now = g_date_time_new_from_unix_utc((gint64) (t / USEC_PER_SEC));
        GDateTime *local = now && tz ? g_date_time_to_timezone(now, tz) : NULL;
        GDateTime *day = local ? g_date_time_add_days(local, days) : NULL;
        GDateTime *noon = day ? g_date_time_new(tz, g_date_time_get_year(day), g_date_time_get_month(day),
                                                g_date_time_get_day_of_month(day), 12, 0, 0)
                              : NULL;
        int64_t r = noon ? g_date_time_to_unix(noon) * (int64_t) USEC_PER_SEC
                         : (int64_t) t + days * (int64_t) USEC_PER_DAY;

        if (noon)
                g_date_time_unref(noon);
        if (day)
                g_date_time_unref(day);
        if (local)
                g_date_time_unref(local);
        if (now)
                g_date_time_unref(now);
        if (tz)
                g_time_zone_unref(tz);
        return r;
}

static bool host_device_exists(void *userdata, const char *id) {
        return manager_find(userdata, id) != NULL;
}

typedef struct ApplyCall {
        ScheduleApplyDone done;
        void *userdata;
} ApplyCall;

static void on_applied(Device *d, const DeviceCommandResult *res, void *userdata) {
        ApplyCall *call = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (res->error < 0 || res->device_err != 0 || res->n_failed > 0) {
                /* The same words a SetOn caller would get. */
                if (res->n_failed > 0)
                        bus_set_device_error(&e, res->failed[0], res->error, res->device_err);
                else
                        bus_set_device_error(&e, d, res->error, res->device_err);
                call->done(call->userdata, e.message ?: "failed");
        } else
                call->done(call->userdata, NULL);
        free(call);
}

static int host_apply(void *userdata, const char *id, DeviceAction a, ScheduleApplyDone done, void *done_userdata) {
        Device *d = manager_find(userdata, id);
        ApplyCall *call;
        int r;

        if (!d)
                return -ENODEV;
        call = malloc(sizeof(ApplyCall));
        if (!call)
                return -ENOMEM;
        *call = (ApplyCall) { done, done_userdata };
        r = device_apply_action(d, a, on_applied, call);
        if (r < 0)
                free(call);
        return r;
}

static void host_changed(void *userdata, Schedule *s) {
        bus_schedule_emit_changed(userdata, s);
}

static const ScheduleHostOps manager_schedule_host_ops = {
        .now_usec = host_now_usec,
        .local_noon = host_local_noon,
        .device_exists = host_device_exists,
        .apply = host_apply,
        .changed = host_changed,
};

int manager_start_schedules(Manager *m) {
        _cleanup_free_ char *db_path = NULL;
        char *error = NULL;
        DbSchedule *db;
        int r;

        if (asprintf(&db_path, "%s/schedules.sqlite", m->state_dir) < 0)
                return log_oom();
        r = db_schedule_open(db_path, &db, &error);
        if (r < 0) {
                log_error_errno(r, "Failed to open %s: %s", db_path, error ?: strerror(-r));
                free(error);
                return r;
        }
        m->systemd1 = (Systemd1) { .bus = m->bus, .analyze = SYSTEMD_ANALYZE_PATH };
        snprintf(m->systemd1.units_path, sizeof m->systemd1.units_path, "%s/" SCHEDULE_UNITS_NAME, m->state_dir);
        SchedulerConfig c = {
                .systemd = &systemd1_ops,
                .systemd_userdata = &m->systemd1,
                .host = &manager_schedule_host_ops,
                .host_userdata = m,
                .latitude = m->config.latitude,
                .longitude = m->config.longitude,
        };
        r = scheduler_new(&c, db, &m->scheduler);
        if (r < 0) {
                db_schedule_free(db);
                return log_oom();
        }
        return scheduler_start(m->scheduler);
}

int manager_local_date(Manager *m, const char *date, uint64_t *ret) {
        GTimeZone *tz;
        GDateTime *noon;
        int y, mo, d;
        char end;

        if (!*date) {
                *ret = host_now_usec(m);
                return 0;
        }
        if (sscanf(date, "%4d-%2d-%2d%c", &y, &mo, &d, &end) != 3 || strlen(date) != 10)
                return -EINVAL;
        tz = m->config.time_zone && *m->config.time_zone ? g_time_zone_new_identifier(m->config.time_zone)
                                                         : g_time_zone_new_local();
        if (!tz)
                return -EINVAL;
        noon = g_date_time_new(tz, y, mo, d, 12, 0, 0);
        g_time_zone_unref(tz);
        /* GLib accepts 2026-02-30 as March the 2nd: refuse what it moved. */
        if (!noon || g_date_time_get_year(noon) != y || g_date_time_get_month(noon) != mo ||
            g_date_time_get_day_of_month(noon) != d || g_date_time_to_unix(noon) < 0) {
                if (noon)
                        g_date_time_unref(noon);
                return -EINVAL;
        }
        *ret = (uint64_t) g_date_time_to_unix(noon) * USEC_PER_SEC;
        g_date_time_unref(noon);
        return 0;
}
