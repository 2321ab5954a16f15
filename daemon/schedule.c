/* SPDX-License-Identifier: MIT */

/* Schedules: validation, the list the unit generator reads, arming and
 * firing (sun schedules a day at a time). The list's format is in
 * schedule-units.c, what a schedule reads as in schedule-describe.c, the
 * bus in bus-schedule.c. */

#include "schedule.h"
#include "schedule-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kasa-dbus.h"
#include "kasa-time.h"
#include "log.h"
#include "macro.h"

/* A sun event is armed only when it is at least this far ahead, so that a
 * re-arm right after an event fired never picks that same event again. */
#define SUN_ARM_MARGIN_USEC (2 * USEC_PER_SEC)

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static int set_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return 0;
        free(*ret_error);
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return 0;
}

static Schedule *schedule_free(Schedule *sch) {
        if (!sch)
                return NULL;
        schedule_record_done(&sch->rec);
        free(sch->path);
        free(sch->armed_timer);
        free(sch->armed_service);
        free(sch->sun_remark);
        free(sch);
        return NULL;
}

static void schedule_free_void(void *p) {
        schedule_free(p);
}

static uint64_t now_usec(Scheduler *s) {
        return s->config.host->now_usec(s->config.host_userdata);
}

int scheduler_new(const SchedulerConfig *config, DbSchedule *db, Scheduler **ret) {
        Scheduler *s = calloc(1, sizeof(Scheduler));

        if (!s)
                return -ENOMEM;
        s->config = *config;
        s->db = db;
        s->by_id = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, schedule_free_void);
        s->list = g_ptr_array_new();
        *ret = s;
        return 0;
}

Scheduler *scheduler_free(Scheduler *s) {
        if (!s)
                return NULL;
        g_ptr_array_free(s->list, TRUE);
        g_hash_table_destroy(s->by_id);
        db_schedule_free(s->db);
        free(s);
        return NULL;
}

int scheduler_available(Scheduler *s, char **ret_error) {
        return s->config.systemd->available(s->config.systemd_userdata, ret_error);
}

void *scheduler_host(Scheduler *s) {
        return s->config.host_userdata;
}

Schedule *scheduler_find(Scheduler *s, uint32_t id) {
        return g_hash_table_lookup(s->by_id, GUINT_TO_POINTER(id));
}

Schedule *scheduler_find_path(Scheduler *s, const char *path) {
        const char *prefix = KASA_SCHEDULE_PREFIX "/";
        char *end;

        if (strncmp(path, prefix, strlen(prefix)) != 0)
                return NULL;
        path += strlen(prefix);
        if (!g_ascii_isdigit(*path))
                return NULL;
        unsigned long id = strtoul(path, &end, 10);
        if (*end || id > UINT32_MAX)
                return NULL;
        return scheduler_find(s, (uint32_t) id);
}

GPtrArray *scheduler_list(Scheduler *s) {
        return s->list;
}

/* ---- unit names ---- */

/* The schedule id of one of our unit names, or 0 (ids start at 1). */
static uint32_t unit_schedule_id(const char *unit) {
        const char *p = unit + strlen(SCHEDULE_UNITS_PREFIX);
        char *end;

        if (strncmp(unit, SCHEDULE_UNITS_PREFIX, strlen(SCHEDULE_UNITS_PREFIX)) != 0 || !g_ascii_isdigit(*p))
                return 0;
        unsigned long id = strtoul(p, &end, 10);
        if ((*end != '.' && *end != '-') || id > UINT32_MAX)
                return 0;
        return (uint32_t) id;
}

bool schedule_is_own_service(const Schedule *sch, const char *unit) {
        return unit && unit_schedule_id(unit) == sch->rec.id && g_str_has_suffix(unit, ".service");
}

/* ---- arming ---- */

/* Units are made by kasamond-schedule-generator from the list that
 * write_units writes, at systemd's daemon-reload; kasamond then starts
 * and stops them by name. An armed schedule is one in that list. A unit
 * is stopped before it leaves the list: a timer still running when a
 * reload takes its file away fails, and a failed unit stays loaded. */

static void set_armed(Schedule *sch, char *timer, char *service, const ScheduleUnit *unit) {
        free(sch->armed_timer);
        free(sch->armed_service);
        sch->armed_timer = timer;
        sch->armed_service = service;
        sch->armed_unit = unit ? *unit : (ScheduleUnit) {};
}

static void disarm(Schedule *sch) {
        set_armed(sch, NULL, NULL, NULL);
        sch->sun_next_usec = 0;
}

/* The next event of a sun schedule after "after", with its offset. */
static int sun_next(Scheduler *s, Schedule *sch, uint64_t after, uint64_t *ret, char **ret_remark) {
        uint64_t now = now_usec(s);

        if (!scheduler_have_location(s)) {
                *ret_remark = strdup("no [Location] Latitude= and Longitude= in kasamond.conf");
                return -ENODATA;
        }
        *ret_remark = NULL;
        /* From yesterday: a negative offset can bring tomorrow's event into
         * today, a positive one yesterday's. */
        for (int d = -1; d <= 370; d++) {
                int64_t noon = s->config.host->local_noon(s->config.host_userdata, now, d), t;
                int r = sun_event_time(s->config.latitude, s->config.longitude, noon, sch->sun_event, &t);

                if (r < 0)
                        return r;
                if (r != SUN_OK) {
                        if (d == 0 && !*ret_remark)
                                *ret_remark = strdup(sun_result_to_string(sch->sun_event, r));
                        continue;
                }
                t += sch->rec.sun_offset_usec;
                if (t > 0 && (uint64_t) t > after) {
                        *ret = (uint64_t) t;
                        return 0;
                }
        }
        free(*ret_remark);
        *ret_remark = strdup("no such event within a year");
        return -ENODATA;
}

/* Decides the units of an enabled schedule (for a sun schedule, of its
 * next event), without telling systemd. */
static int plan(Scheduler *s, Schedule *sch, char **ret_error) {
        _cleanup_free_ char *timer = NULL, *service = NULL, *calendar = NULL;
        ScheduleUnit u;
        char day[16] = "", name[64];
        const char *why = NULL;
        int r;

        if (sch->sun_event >= 0) {
                _cleanup_free_ char *remark = NULL;
                uint64_t t = 0;
                time_t secs;
                struct tm tm;
                char buf[64];

                r = sun_next(s, sch, now_usec(s) + SUN_ARM_MARGIN_USEC, &t, &remark);
                free(sch->sun_remark);
                sch->sun_remark = TAKE_PTR(remark);
                sch->sun_next_usec = r < 0 ? 0 : t;
                if (r < 0) {
                        set_error(ret_error, "Schedule %" PRIu32 " has no %s to arm: %s", sch->rec.id,
                                  sun_event_to_string(sch->sun_event), sch->sun_remark ?: strerror(-r));
                        return r;
                }
                /* Rounded up: systemd's calendar has whole seconds. */
                secs = (time_t) ((t + USEC_PER_SEC - 1) / USEC_PER_SEC);
                gmtime_r(&secs, &tm);
                strftime(day, sizeof day, "%Y%m%d", &tm);
                strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
                calendar = strdup(buf);
        } else
                calendar = strdup(sch->rec.calendar);
        if (!calendar)
                return -ENOMEM;
        /* The generator's own check, here first: what it would refuse is
         * refused before anything is stored. */
        r = schedule_unit_init(&u, sch->rec.id, day, sch->rec.action, sch->rec.persistent,
                               sch->rec.random_delay_usec, calendar, &why);
        if (r < 0) {
                set_error(ret_error, "Schedule %" PRIu32 " cannot be made a timer: %s.", sch->rec.id, why);
                return r;
        }
        schedule_unit_name(&u, "timer", name);
        timer = strdup(name);
        schedule_unit_name(&u, "service", name);
        service = strdup(name);
        if (!timer || !service)
                return -ENOMEM;
        set_armed(sch, TAKE_PTR(timer), TAKE_PTR(service), &u);
        return 0;
}

/* Writes the list of every armed schedule; reloads systemd if that
 * changed it. *ret_reloaded (may be NULL): whether it did. */
static int sync_units(Scheduler *s, bool *ret_reloaded, char **ret_error) {
        _cleanup_free_ ScheduleUnit *units = calloc(s->list->len + 1, sizeof(ScheduleUnit));
        size_t n = 0;
        int r;

        if (ret_reloaded)
                *ret_reloaded = false;
        if (!units)
                return -ENOMEM;
        for (guint i = 0; i < s->list->len; i++) {
                Schedule *sch = s->list->pdata[i];
                if (sch->armed_timer)
                        units[n++] = sch->armed_unit;
        }
        r = s->config.systemd->write_units(s->config.systemd_userdata, units, n, ret_error);
        if (r < 0)
                return r;
        if (r == 0)
                return 0;
        r = s->config.systemd->reload(s->config.systemd_userdata, ret_error);
        if (r < 0)
                return r;
        if (ret_reloaded)
                *ret_reloaded = true;
        return 0;
}

static int start_armed(Scheduler *s, Schedule *sch, char **ret_error) {
        int r = s->config.systemd->start_unit(s->config.systemd_userdata, sch->armed_timer, ret_error);

        if (r == -ENOENT)
                set_error(ret_error, "systemd has no %s after a reload: kasamond-schedule-generator makes it from "
                                     SCHEDULE_UNITS_PATH ", so kasamond's state directory must be "
                                     SCHEDULE_UNITS_DIR "; the generator's own messages are in the journal.",
                          sch->armed_timer);
        return r;
}

/* Plans, lists and starts the units of an enabled schedule. */
static int arm(Scheduler *s, Schedule *sch, char **ret_error) {
        int r = plan(s, sch, ret_error);

        if (r >= 0)
                r = sync_units(s, NULL, ret_error);
        if (r >= 0)
                r = start_armed(s, sch, ret_error);
        return r;
}

/* Stops the timers (and with services, the services) of schedule id,
 * from the list of loaded units. keep: a timer to leave alone. */
static int stop_units(Scheduler *s, uint32_t id, bool services, const char *keep, char **ret_error) {
        g_auto(GStrv) units = NULL;
        int r, ret = 0;

        r = s->config.systemd->list_units(s->config.systemd_userdata, SCHEDULE_UNITS_PREFIX, &units);
        if (r < 0) {
                set_error(ret_error, "Failed to list the units of schedule %" PRIu32 ": %s", id, strerror(-r));
                return r;
        }
        for (char **u = units; u && *u; u++) {
                if (unit_schedule_id(*u) != id || (keep && streq(*u, keep)))
                        continue;
                if (!services && !g_str_has_suffix(*u, ".timer"))
                        continue;
                r = s->config.systemd->stop_unit(s->config.systemd_userdata, *u);
                if (r < 0 && ret == 0) {
                        set_error(ret_error, "Failed to stop %s: %s", *u, strerror(-r));
                        ret = r;
                }
        }
        return ret;
}

/* Takes a schedule off the lists without freeing it. */
static void unlist(Scheduler *s, Schedule *sch) {
        g_ptr_array_remove(s->list, sch);
        g_hash_table_steal(s->by_id, GUINT_TO_POINTER(sch->rec.id));
}

/* ---- loading ---- */

static int schedule_from_record(Scheduler *s, ScheduleRecord *rec, Schedule **ret) {
        Schedule *sch = calloc(1, sizeof(Schedule));

        if (!sch)
                return -ENOMEM;
        sch->scheduler = s;
        sch->rec = *rec;
        *rec = (ScheduleRecord) {};
        sch->action = device_action_from_string(sch->rec.action);
        sch->sun_event = sch->rec.sun_event ? sun_event_from_string(sch->rec.sun_event) : _SUN_EVENT_INVALID;
        if (asprintf(&sch->path, KASA_SCHEDULE_PREFIX "/%" PRIu32, sch->rec.id) < 0) {
                sch->path = NULL;
                schedule_free(sch);
                return -ENOMEM;
        }
        *ret = sch;
        return 0;
}

static void insert(Scheduler *s, Schedule *sch) {
        guint i = s->list->len;

        while (i > 0 && ((Schedule *) s->list->pdata[i - 1])->rec.id > sch->rec.id)
                i--;
        g_hash_table_insert(s->by_id, GUINT_TO_POINTER(sch->rec.id), sch);
        g_ptr_array_insert(s->list, (gint) i, sch);
}

int scheduler_start(Scheduler *s) {
        g_auto(GStrv) units = NULL;
        ScheduleRecord *recs = NULL;
        size_t n = 0;
        int r;

        r = db_schedule_list(s->db, &recs, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to read the schedules: %s", db_schedule_last_error(s->db));
        for (size_t i = 0; i < n; i++) {
                Schedule *sch;

                r = schedule_from_record(s, &recs[i], &sch);
                if (r < 0) {
                        for (size_t j = i; j < n; j++)
                                schedule_record_done(&recs[j]);
                        free(recs);
                        return log_oom();
                }
                if (sch->action < 0 || (sch->rec.sun_event && sch->sun_event < 0))
                        log_warning("Schedule %" PRIu32 " has an unknown action or event, it will not run, ignoring",
                                    sch->rec.id);
                insert(s, sch);
        }
        free(recs);

        if (scheduler_available(s, NULL) < 0) {
                if (n > 0)
                        log_notice("No service manager to run schedules with: %zu schedules stay idle", n);
                return 0;
        }

        /* Units of schedules that are gone or disabled (a crash, or a
         * removal while systemd was unreachable) go, before the list drops
         * them; the units of enabled schedules come back after a reboot
         * (kasamond.service wants their timers, from the generator; and if
         * /var was not mounted when it ran at boot, after the reload
         * here). */
        for (guint i = 0; i < s->list->len; i++) {
                Schedule *sch = s->list->pdata[i];
                _cleanup_free_ char *error = NULL;

                if (!sch->rec.enabled || sch->action < 0 || (sch->rec.sun_event && sch->sun_event < 0))
                        continue;
                r = plan(s, sch, &error);
                if (r < 0)
                        log_warning("Failed to arm schedule %" PRIu32 ", ignoring: %s", sch->rec.id,
                                    error ?: strerror(-r));
        }
        r = s->config.systemd->list_units(s->config.systemd_userdata, SCHEDULE_UNITS_PREFIX, &units);
        if (r < 0) {
                log_warning_errno(r, "Failed to list the schedules' units, schedules stay idle: %m");
                return 0;
        }
        for (char **u = units; u && *u; u++) {
                Schedule *sch = scheduler_find(s, unit_schedule_id(*u));

                /* A sun schedule keeps the day armed now, not older ones. */
                if (sch && sch->armed_timer &&
                    (streq(*u, sch->armed_timer) || streq(*u, sch->armed_service) || sch->sun_event < 0))
                        continue;
                log_info("Stopping %s, left from a schedule that is %s", *u,
                         !sch ? "gone" : !sch->rec.enabled ? "disabled" : "armed for another time");
                r = s->config.systemd->stop_unit(s->config.systemd_userdata, *u);
                if (r < 0)
                        log_warning_errno(r, "Failed to stop %s, ignoring: %m", *u);
        }
        _cleanup_free_ char *error = NULL;
        bool reloaded;
        /* Not fatal: everything but schedules works without their units. */
        r = sync_units(s, &reloaded, &error);
        if (r < 0) {
                log_warning("Failed to make the schedules' units, schedules stay idle: %s", error ?: strerror(-r));
                return 0;
        }
        for (guint i = 0; i < s->list->len; i++) {
                Schedule *sch = s->list->pdata[i];

                if (!sch->armed_timer)
                        continue;
                error = mfree(error);
                r = s->config.systemd->start_unit(s->config.systemd_userdata, sch->armed_timer, NULL);
                /* Listed before but not made (no /var at boot, or a crash
                 * before the reload): one reload makes them all. */
                if (r == -ENOENT && !reloaded) {
                        r = s->config.systemd->reload(s->config.systemd_userdata, &error);
                        if (r < 0) {
                                log_warning("Schedules stay idle: %s", error ?: strerror(-r));
                                return 0;
                        }
                        reloaded = true;
                        error = mfree(error);
                        r = -ENOENT;
                }
                if (r == -ENOENT)
                        r = start_armed(s, sch, &error);
                if (r < 0) {
                        log_warning("Failed to start the timer of schedule %" PRIu32 ", ignoring: %s", sch->rec.id,
                                    error ?: strerror(-r));
                        disarm(sch);
                }
        }
        return 0;
}

/* ---- changes ---- */

static int check_spec(Scheduler *s, const ScheduleSpec *spec, ScheduleRecord *rec, char **ret_error) {
        _cleanup_free_ char *normalized = NULL;
        size_t n = 0;
        int r;

        for (char **d = spec->devices; d && *d; d++, n++) {
                if (!s->config.host->device_exists(s->config.host_userdata, *d))
                        return set_error(ret_error, "No device '%s'.", *d), -ENXIO;
                for (char **e = spec->devices; e < d; e++)
                        if (streq(*e, *d))
                                return set_error(ret_error, "Device '%s' is named twice.", *d), -EINVAL;
        }
        if (n == 0 || n > SCHEDULE_DEVICES_MAX)
                return set_error(ret_error, "A schedule needs 1 to %d devices, not %zu.", SCHEDULE_DEVICES_MAX, n),
                       -EINVAL;
        if (device_action_from_string(spec->action) < 0)
                return set_error(ret_error, "Invalid action '%s': expected on, off or toggle.", spec->action), -EINVAL;
        if (spec->random_delay_usec > SCHEDULE_RANDOM_MAX_USEC)
                return set_error(ret_error, "Randomized delay too long: at most a day."), -EINVAL;
        if (spec->valid_until_usec && spec->valid_until_usec <= spec->valid_from_usec)
                return set_error(ret_error, "Valid until must come after valid from."), -EINVAL;

        SunEvent e = sun_event_from_string(spec->when);
        if (e >= 0) {
                if (!scheduler_have_location(s))
                        return set_error(ret_error, "Sun schedules need [Location] Latitude= and Longitude= in "
                                                    "kasamond.conf."), -EINVAL;
                if (llabs(spec->sun_offset_usec) > SCHEDULE_OFFSET_MAX_USEC)
                        return set_error(ret_error, "Offset from the %s too large: at most 12 hours.", spec->when),
                               -EINVAL;
                rec->sun_event = strdup(spec->when);
                if (!rec->sun_event)
                        return -ENOMEM;
        } else {
                if (spec->sun_offset_usec != 0)
                        return set_error(ret_error, "An offset applies to sun events only."), -EINVAL;
                /* sd-bus cannot check a calendar expression; systemd's own
                 * parser does, and says what is wrong in its own words. */
                r = s->config.systemd->check_calendar(s->config.systemd_userdata, spec->when, &normalized,
                                                      ret_error);
                if (r < 0)
                        return r;
                rec->calendar = TAKE_PTR(normalized);
        }
        rec->devices = g_strdupv(spec->devices);
        rec->action = strdup(spec->action);
        rec->last_result = strdup("");
        if (!rec->devices || !rec->action || !rec->last_result)
                return -ENOMEM;
        rec->random_delay_usec = spec->random_delay_usec;
        rec->sun_offset_usec = spec->sun_offset_usec;
        rec->persistent = spec->persistent;
        rec->enabled = true;
        rec->valid_from_usec = spec->valid_from_usec;
        rec->valid_until_usec = spec->valid_until_usec;
        return 0;
}

int scheduler_add(Scheduler *s, const ScheduleSpec *spec, Schedule **ret, char **ret_error) {
        ScheduleRecord rec = {};
        Schedule *sch = NULL;
        int r;

        r = scheduler_available(s, ret_error);
        if (r < 0)
                return r;
        r = check_spec(s, spec, &rec, ret_error);
        if (r < 0)
                goto fail;
        r = db_schedule_begin(s->db);
        if (r >= 0)
                r = db_schedule_insert(s->db, &rec);
        if (r < 0) {
                set_error(ret_error, "Failed to store the schedule: %s", db_schedule_last_error(s->db));
                goto fail;
        }
        r = schedule_from_record(s, &rec, &sch);
        if (r < 0)
                goto fail;
        /* Stored only once its timer runs: what systemd refuses is not kept. */
        insert(s, sch);
        r = arm(s, sch, ret_error);
        if (r >= 0)
                r = db_schedule_commit(s->db);
        if (r < 0) {
                if (sch->armed_timer)
                        (void) stop_units(s, sch->rec.id, true, NULL, NULL);
                unlist(s, sch);
                if (sch->armed_timer)
                        (void) sync_units(s, NULL, NULL);
                goto fail;
        }
        *ret = sch;
        return 0;

fail:
        db_schedule_rollback(s->db);
        schedule_free(sch);
        schedule_record_done(&rec);
        return r;
}

int scheduler_set_enabled(Scheduler *s, Schedule *sch, bool enabled, char **ret_error) {
        int r;

        r = scheduler_available(s, ret_error);
        if (r < 0)
                return r;
        if (sch->rec.enabled == enabled)
                return 0;
        if (enabled)
                r = arm(s, sch, ret_error);
        else {
                r = stop_units(s, sch->rec.id, false, NULL, ret_error);
                if (r >= 0) {
                        disarm(sch);
                        r = sync_units(s, NULL, ret_error);
                }
        }
        if (r >= 0) {
                r = db_schedule_set_enabled(s->db, sch->rec.id, enabled);
                if (r < 0)
                        set_error(ret_error, "Failed to store the change: %s", db_schedule_last_error(s->db));
        }
        if (r < 0) {
                /* Back to what is stored, as far as systemd lets us. */
                if (enabled) {
                        (void) stop_units(s, sch->rec.id, false, NULL, NULL);
                        disarm(sch);
                        (void) sync_units(s, NULL, NULL);
                } else
                        (void) arm(s, sch, NULL);
                return r;
        }
        sch->rec.enabled = enabled;
        s->config.host->changed(s->config.host_userdata, sch);
        return 0;
}

int scheduler_remove(Scheduler *s, Schedule *sch, char **ret_error) {
        int r;

        r = scheduler_available(s, ret_error);
        if (r < 0)
                return r;
        r = stop_units(s, sch->rec.id, true, NULL, ret_error);
        if (r < 0)
                return r;
        unlist(s, sch);
        r = sync_units(s, NULL, ret_error);
        if (r >= 0) {
                r = db_schedule_remove(s->db, sch->rec.id);
                if (r < 0)
                        set_error(ret_error, "Failed to delete the schedule: %s", db_schedule_last_error(s->db));
        }
        if (r < 0) {
                insert(s, sch);
                if (sch->rec.enabled)
                        (void) arm(s, sch, NULL);
                return r;
        }
        schedule_free(sch);
        return 0;
}

/* ---- firing ---- */

typedef struct FireRun {
        Scheduler *scheduler;
        uint32_t id;
        unsigned pending;
        bool failed;
        GString *done, *errors;
        ScheduleFireDone cb;
        void *userdata;
        uint64_t started;
} FireRun;

static void fire_finish(FireRun *run) {
        Scheduler *s = run->scheduler;
        Schedule *sch = scheduler_find(s, run->id);
        g_autoptr(GString) result = g_string_new(NULL);

        if (run->done->len > 0)
                g_string_append_printf(result, "%s", run->done->str);
        if (run->errors->len > 0)
                g_string_append_printf(result, "%sfailed: %s", result->len ? "; " : "", run->errors->str);
        if (sch) {
                int r = db_schedule_set_result(s->db, run->id, run->started, result->str);
                if (r < 0)
                        log_warning_errno(r, "Failed to store the result of schedule %" PRIu32 ", ignoring: %s",
                                          run->id, db_schedule_last_error(s->db));
                free(sch->rec.last_result);
                sch->rec.last_result = strdup(result->str);
                sch->rec.last_run_usec = run->started;
                s->config.host->changed(s->config.host_userdata, sch);
        }
        if (run->failed)
                log_warning("Schedule %" PRIu32 ": %s", run->id, result->str);
        else
                log_info("Schedule %" PRIu32 ": %s", run->id, result->str);
        run->cb(run->id, !run->failed, result->str, run->userdata);
        g_string_free(run->done, TRUE);
        g_string_free(run->errors, TRUE);
        free(run);
}

typedef struct FirePart {
        FireRun *run;
        char *device;
} FirePart;

static void on_part_done(void *userdata, const char *error) {
        FirePart *part = userdata;
        FireRun *run = part->run;
        Schedule *sch = scheduler_find(run->scheduler, run->id);

        if (error) {
                run->failed = true;
                g_string_append_printf(run->errors, "%s%s (%s)", run->errors->len ? ", " : "", part->device, error);
        } else
                g_string_append_printf(run->done, "%s%s %s", run->done->len ? ", " : "", part->device,
                                       sch ? sch->rec.action : "done");
        free(part->device);
        free(part);
        if (--run->pending == 0)
                fire_finish(run);
}

/* After its timer fired, a sun schedule stops that timer (not its
 * service: that is the caller, waiting for the answer), then arms its
 * next event in units of that day. */
static void rearm_sun(Scheduler *s, Schedule *sch) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = stop_units(s, sch->rec.id, false, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to stop the elapsed timers of schedule %" PRIu32 ", ignoring: %m",
                                  sch->rec.id);
        r = arm(s, sch, &error);
        if (r < 0) {
                log_warning("Failed to arm the next %s of schedule %" PRIu32 ", ignoring: %s",
                            sun_event_to_string(sch->sun_event), sch->rec.id, error ?: strerror(-r));
                disarm(sch);
                (void) sync_units(s, NULL, NULL);
        }
        s->config.host->changed(s->config.host_userdata, sch);
}

int scheduler_fire(Scheduler *s, Schedule *sch, bool from_timer, ScheduleFireDone done, void *userdata) {
        FireRun *run;
        uint64_t now = now_usec(s);

        if (sch->action < 0)
                return -EINVAL;
        if (from_timer && sch->sun_event >= 0 && sch->rec.enabled)
                rearm_sun(s, sch);
        run = calloc(1, sizeof(FireRun));
        if (!run)
                return -ENOMEM;
        *run = (FireRun) {
                .scheduler = s,
                .id = sch->rec.id,
                .pending = 1,
                .done = g_string_new(NULL),
                .errors = g_string_new(NULL),
                .cb = done,
                .userdata = userdata,
                .started = now,
        };
        if (from_timer && ((sch->rec.valid_from_usec && now < sch->rec.valid_from_usec) ||
                           (sch->rec.valid_until_usec && now >= sch->rec.valid_until_usec))) {
                g_string_append(run->done, "not run: outside the time it is valid");
                fire_finish(run);
                return 0;
        }
        for (char **d = sch->rec.devices; *d; d++) {
                FirePart *part = calloc(1, sizeof(FirePart));
                int r;

                if (!part || !(part->device = strdup(*d))) {
                        free(part);
                        run->failed = true;
                        g_string_append_printf(run->errors, "%s%s (out of memory)", run->errors->len ? ", " : "", *d);
                        continue;
                }
                part->run = run;
                run->pending++;
                if (!s->config.host->device_exists(s->config.host_userdata, *d)) {
                        on_part_done(part, "no such device");
                        continue;
                }
                r = s->config.host->apply(s->config.host_userdata, *d, sch->action, on_part_done, part);
                if (r < 0)
                        on_part_done(part, strerror(-r));
        }
        if (--run->pending == 0)
                fire_finish(run);
        return 0;
}
