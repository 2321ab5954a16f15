/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "schedule.h"
#include "tap.h"

#define SEC INT64_C(1000000)
#define HOUR (3600 * SEC)

/* ---- a service manager in memory ---- */

typedef struct FakeUnit {
        char *calendar;
        uint64_t random;
        bool persistent;
        bool failed;
} FakeUnit;

/* The file kasamond writes, what the generator made of it at the last
 * reload (or boot), and the units loaded. */
static struct {
        bool unavailable;
        int start_error;         /* the next start_unit fails with it */
        ScheduleUnit *written;
        size_t n_written;
        GHashTable *generated;   /* name -> FakeUnit* (timers) or NULL (services) */
        GHashTable *units;       /* the same, loaded */
        unsigned writes, reloads, starts, stops;
} sd;

static void fake_unit_free(void *p) {
        FakeUnit *u = p;
        if (!u)
                return;
        g_free(u->calendar);
        g_free(u);
}

static GHashTable *unit_table(void) {
        return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, fake_unit_free);
}

static void generate(void) {
        g_hash_table_remove_all(sd.generated);
        for (size_t i = 0; i < sd.n_written; i++) {
                FakeUnit *u = g_new0(FakeUnit, 1);
                char name[64];

                u->calendar = g_strdup(sd.written[i].calendar);
                u->random = sd.written[i].random_delay_usec;
                u->persistent = sd.written[i].persistent;
                schedule_unit_name(&sd.written[i], "timer", name);
                g_hash_table_insert(sd.generated, g_strdup(name), u);
                schedule_unit_name(&sd.written[i], "service", name);
                g_hash_table_insert(sd.generated, g_strdup(name), NULL);
        }
}

static void sd_reset(void) {
        if (sd.units) {
                g_hash_table_destroy(sd.units);
                g_hash_table_destroy(sd.generated);
        }
        free(sd.written);
        memset(&sd, 0, sizeof sd);
        sd.units = unit_table();
        sd.generated = unit_table();
}

/* A new boot: the file stays; the generator ran at boot if it could read
 * /var. */
static void sd_reboot(bool var_at_boot) {
        g_hash_table_remove_all(sd.units);
        g_hash_table_remove_all(sd.generated);
        if (var_at_boot)
                generate();
        sd.writes = sd.reloads = sd.starts = sd.stops = 0;
}

static int f_available(void *userdata, char **ret_error) {
        if (!sd.unavailable)
                return 0;
        if (ret_error)
                *ret_error = strdup("no systemd here");
        return -EOPNOTSUPP;
}

static int f_check_calendar(void *userdata, const char *expr, char **ret_normalized, char **ret_error) {
        if (strstr(expr, "bogus")) {
                *ret_error = strdup("Failed to parse calendar specification 'bogus': Invalid argument");
                return -EINVAL;
        }
        *ret_normalized = g_strdup_printf("normalized %s", expr);
        return 0;
}

/* Compared as the file's text, as the daemon does. */
static int f_write_units(void *userdata, const ScheduleUnit *units, size_t n, char **ret_error) {
        char *old = NULL, *text = NULL;
        bool same;

        g_assert(schedule_units_format(sd.written, sd.n_written, &old) == 0);
        g_assert(schedule_units_format(units, n, &text) == 0);
        same = strcmp(old, text) == 0;
        free(old);
        free(text);
        if (same)
                return 0;
        free(sd.written);
        sd.written = n ? g_memdup2(units, n * sizeof(ScheduleUnit)) : NULL;
        sd.n_written = n;
        sd.writes++;
        return 1;
}

/* As systemd does: a timer still running when its file goes fails, and
 * a failed unit stays loaded, stopped or not. */
static int f_reload(void *userdata, char **ret_error) {
        GHashTableIter it;
        gpointer k, v;

        generate();
        g_hash_table_iter_init(&it, sd.units);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (v && !g_hash_table_contains(sd.generated, k))
                        ((FakeUnit *) v)->failed = true;
        sd.reloads++;
        return 0;
}

static int f_start_unit(void *userdata, const char *name, char **ret_error) {
        FakeUnit *u, *copy;
        char *service;

        if (sd.start_error) {
                int r = sd.start_error;
                sd.start_error = 0;
                *ret_error = strdup("systemd says no");
                return r;
        }
        if (g_hash_table_contains(sd.units, name))
                return 0;
        if (!g_hash_table_lookup_extended(sd.generated, name, NULL, (gpointer *) &u))
                return -ENOENT;
        copy = g_new0(FakeUnit, 1);
        *copy = (FakeUnit) { g_strdup(u->calendar), u->random, u->persistent, false };
        g_hash_table_insert(sd.units, g_strdup(name), copy);
        service = g_strdup_printf("%.*s.service", (int) (strrchr(name, '.') - name), name);
        g_hash_table_insert(sd.units, service, NULL);
        sd.starts++;
        return 0;
}

static int f_stop_unit(void *userdata, const char *unit) {
        FakeUnit *u = g_hash_table_lookup(sd.units, unit);

        if (!u || !u->failed)
                sd.stops += g_hash_table_remove(sd.units, unit);
        return 0;
}

static int f_list_units(void *userdata, const char *prefix, char ***ret_units) {
        GPtrArray *a = g_ptr_array_new();
        GHashTableIter it;
        gpointer k;

        g_hash_table_iter_init(&it, sd.units);
        while (g_hash_table_iter_next(&it, &k, NULL))
                if (g_str_has_prefix(k, prefix))
                        g_ptr_array_add(a, g_strdup(k));
        g_ptr_array_add(a, NULL);
        *ret_units = (char **) g_ptr_array_free(a, FALSE);
        return 0;
}

static int f_timer_times(void *userdata, const char *timer, uint64_t *ret_next, uint64_t *ret_last) {
        if (!g_hash_table_contains(sd.units, timer))
                return -ENOENT;
        *ret_next = 42;
        *ret_last = 7;
        return 0;
}

static const Systemd1Ops fake_systemd = {
        .available = f_available,
        .check_calendar = f_check_calendar,
        .write_units = f_write_units,
        .reload = f_reload,
        .start_unit = f_start_unit,
        .stop_unit = f_stop_unit,
        .list_units = f_list_units,
        .timer_times = f_timer_times,
};

static FakeUnit *timer(const char *name) {
        return g_hash_table_lookup(sd.units, name);
}

/* ---- the daemon around it ---- */

static struct {
        uint64_t now;
        GString *applied;    /* "id:action " for every apply */
        unsigned changed;
} host;

static uint64_t h_now(void *userdata) {
        return host.now;
}

/* The tests' zone is UTC. */
static int64_t h_local_noon(void *userdata, uint64_t t, int days) {
        int64_t day = (int64_t) (t / (24 * HOUR));
        return (day + days) * 24 * HOUR + 12 * HOUR;
}

static bool h_device_exists(void *userdata, const char *id) {
        return strcmp(id, "ghost") != 0;
}

static int h_apply(void *userdata, const char *id, DeviceAction a, ScheduleApplyDone done, void *done_userdata) {
        g_string_append_printf(host.applied, "%s:%s ", id, device_action_to_string(a));
        if (strcmp(id, "broken") == 0)
                return -EHOSTUNREACH;
        done(done_userdata, strcmp(id, "refusing") == 0 ? "the device refused" : NULL);
        return 0;
}

static void h_changed(void *userdata, Schedule *s) {
        host.changed++;
}

static const ScheduleHostOps fake_host = {
        .now_usec = h_now,
        .local_noon = h_local_noon,
        .device_exists = h_device_exists,
        .apply = h_apply,
        .changed = h_changed,
};

static char *db_path;

static Scheduler *new_scheduler(double lat, double lon) {
        SchedulerConfig c = {
                .systemd = &fake_systemd,
                .host = &fake_host,
                .latitude = lat,
                .longitude = lon,
        };
        DbSchedule *db;
        Scheduler *s;
        char *error = NULL;

        g_assert(db_schedule_open(db_path, &db, &error) == 0);
        g_assert(scheduler_new(&c, db, &s) == 0);
        g_assert(scheduler_start(s) == 0);
        return s;
}

static size_t stored(void) {
        DbSchedule *db;
        ScheduleRecord *recs;
        size_t n;
        char *error = NULL;

        g_assert(db_schedule_open(db_path, &db, &error) == 0);
        g_assert(db_schedule_list(db, &recs, &n) == 0);
        for (size_t i = 0; i < n; i++)
                schedule_record_done(&recs[i]);
        free(recs);
        db_schedule_free(db);
        return n;
}

static struct {
        unsigned calls;
        uint32_t id;
        bool success;
        char *result;
} fired;

static void on_fired(uint32_t id, bool success, const char *result, void *userdata) {
        fired.calls++;
        fired.id = id;
        fired.success = success;
        g_free(fired.result);
        fired.result = g_strdup(result);
}

static void test_calendar(void) {
        Scheduler *s = new_scheduler(NAN, NAN);
        char *devices[] = { (char *) "plug1", (char *) "strip_01", NULL };
        ScheduleSpec spec = { .devices = devices, .action = "off", .when = "Mon..Fri 07:00",
                              .random_delay_usec = 30 * 60 * SEC, .persistent = true };
        Schedule *sch = NULL;
        char *error = NULL;

        ok(scheduler_add(s, &spec, &sch, &error) == 0 && sch && sch->rec.id == 1, "a calendar schedule is added");
        FakeUnit *u = timer("kasamond-schedule-1.timer");
        ok(u && strcmp(u->calendar, "normalized Mon..Fri 07:00") == 0 && u->random == 30 * 60 * SEC &&
           u->persistent, "its timer has the calendar systemd normalized, the random delay and Persistent");
        ok(sd.n_written == 1 && sd.written[0].id == 1 && sd.reloads == 1 && sd.starts == 1,
           "it is listed for the generator, systemd reloaded, then the timer started by name");
        ok(g_hash_table_contains(sd.units, "kasamond-schedule-1.service"), "the service comes with it");
        ok(stored() == 1, "the schedule is stored");
        is_str(sch->path, "/org/kasamond/Kasa1/schedule/1", "object path");
        uint64_t next, last;
        scheduler_timer_times(s, sch, &next, &last);
        ok(next == 42 && last == 7, "NextElapse and LastTrigger are the timer's");

        spec.when = "bogus 07:00";
        ok(scheduler_add(s, &spec, &sch, &error) == -EINVAL && error && strstr(error, "Failed to parse calendar"),
           "an invalid calendar expression is refused with the service manager's message");
        free(error);
        error = NULL;
        ok(stored() == 1 && sd.starts == 1 && sd.writes == 1, "and nothing is stored, listed or started");

        spec.when = "daily";
        sd.start_error = -EPERM;
        ok(scheduler_add(s, &spec, &sch, &error) == -EPERM && error && strstr(error, "systemd says no"),
           "a timer systemd refuses fails the add");
        free(error);
        error = NULL;
        ok(stored() == 1, "and the schedule is not kept");
        ok(sd.n_written == 1 && sd.written[0].id == 1 && !g_hash_table_contains(sd.units, "kasamond-schedule-2.timer"),
           "nor listed for the generator");

        char *ghost[] = { (char *) "plug1", (char *) "ghost", NULL };
        spec.devices = ghost;
        ok(scheduler_add(s, &spec, &sch, &error) == -ENXIO && error && strstr(error, "ghost"),
           "an unknown device is refused");
        free(error);
        error = NULL;
        char *twice[] = { (char *) "plug1", (char *) "plug1", NULL };
        spec.devices = twice;
        ok(scheduler_add(s, &spec, &sch, &error) == -EINVAL, "a device named twice is refused");
        free(error);
        error = NULL;
        spec.devices = devices;
        spec.action = "dim";
        ok(scheduler_add(s, &spec, &sch, &error) == -EINVAL, "an unknown action is refused");
        free(error);
        error = NULL;
        spec.action = "on";
        spec.sun_offset_usec = 60 * SEC;
        ok(scheduler_add(s, &spec, &sch, &error) == -EINVAL, "an offset with a calendar expression is refused");
        free(error);
        error = NULL;
        spec.sun_offset_usec = 0;
        spec.when = "sunset";
        ok(scheduler_add(s, &spec, &sch, &error) == -EINVAL && error && strstr(error, "[Location]"),
           "a sun schedule without a location is refused, naming [Location]");
        free(error);
        error = NULL;

        sd.unavailable = true;
        spec.when = "daily";
        ok(scheduler_add(s, &spec, &sch, &error) == -EOPNOTSUPP && error && strcmp(error, "no systemd here") == 0,
           "without a service manager, adding fails saying why");
        free(error);
        error = NULL;
        sd.unavailable = false;
        ok(stored() == 1 && scheduler_list(s)->len == 1, "none of the refused ones is kept");

        /* Disable, enable. */
        sch = scheduler_find(s, 1);
        unsigned changed = host.changed;
        ok(scheduler_set_enabled(s, sch, false, &error) == 0 && !timer("kasamond-schedule-1.timer") &&
           !sch->rec.enabled && host.changed == changed + 1, "Disable stops the timer and announces it");
        ok(sd.n_written == 0 && !g_hash_table_contains(sd.generated, "kasamond-schedule-1.timer"),
           "and takes it off the generator's list");
        scheduler_timer_times(s, sch, &next, &last);
        ok(next == 0, "a disabled schedule has no next elapse");
        ok(scheduler_set_enabled(s, sch, true, &error) == 0 && timer("kasamond-schedule-1.timer"),
           "Enable starts it again");
        scheduler_free(s);

        /* A reboot: the loaded units are gone, the list and the schedule
         * are not, and the generator made the units at boot. A stale unit
         * of a removed schedule is stopped. */
        sd_reboot(true);
        g_hash_table_insert(sd.units, g_strdup("kasamond-schedule-99.timer"), g_new0(FakeUnit, 1));
        g_hash_table_insert(sd.units, g_strdup("kasamond-schedule-99.service"), NULL);
        s = new_scheduler(NAN, NAN);
        ok(timer("kasamond-schedule-1.timer") && sd.starts == 1 && sd.reloads == 0,
           "after a reboot the timer of an enabled schedule is started again, without a reload");
        ok(!g_hash_table_contains(sd.units, "kasamond-schedule-99.timer") &&
           !g_hash_table_contains(sd.units, "kasamond-schedule-99.service"), "and units of a gone schedule stopped");
        scheduler_free(s);
        /* A boot where the generator ran before /var was there. */
        sd_reboot(false);
        s = new_scheduler(NAN, NAN);
        ok(timer("kasamond-schedule-1.timer") && sd.reloads == 1 && sd.writes == 0,
           "a boot whose generator found no list: one reload at start, then the timer starts");
        scheduler_free(s);
        /* kasamond restarted without a reboot: the timer is kept. */
        sd.starts = sd.reloads = 0;
        s = new_scheduler(NAN, NAN);
        ok(timer("kasamond-schedule-1.timer") && sd.starts == 0 && sd.reloads == 0,
           "a timer still there at start is kept, and systemd not reloaded");

        /* Firing. */
        char *mixed[] = { (char *) "plug1", (char *) "broken", (char *) "refusing", NULL };
        spec = (ScheduleSpec) { .devices = mixed, .action = "toggle", .when = "hourly" };
        ok(scheduler_add(s, &spec, &sch, &error) == 0 && sch->rec.id == 2, "a second schedule gets id 2");
        g_string_truncate(host.applied, 0);
        host.now = 1000 * SEC;
        ok(scheduler_fire(s, sch, false, on_fired, NULL) == 0 && fired.calls == 1 && fired.id == 2 && !fired.success,
           "a run with failing devices reports failure");
        is_str(fired.result, "plug1 toggle; failed: broken (No route to host), refusing (the device refused)",
               "the result names what each device did");
        is_str(host.applied->str, "plug1:toggle broken:toggle refusing:toggle ", "every device was asked");
        ok(sch->rec.last_run_usec == 1000 * SEC && strcmp(sch->rec.last_result, fired.result) == 0,
           "LastRun and LastResult");
        ok(stored() == 2, "both stored");

        /* Validity. */
        scheduler_free(s);
        s = new_scheduler(NAN, NAN);
        sch = scheduler_find(s, 2);
        ok(sch && strcmp(sch->rec.last_result, fired.result) == 0 && sch->rec.last_run_usec == 1000 * SEC,
           "the last result is kept across restarts");
        spec = (ScheduleSpec) { .devices = devices, .action = "on", .when = "daily", .valid_from_usec = 2000 * SEC,
                                .valid_until_usec = 3000 * SEC };
        ok(scheduler_add(s, &spec, &sch, &error) == 0, "a schedule valid for a while");
        g_string_truncate(host.applied, 0);
        host.now = 3000 * SEC;
        ok(scheduler_fire(s, sch, true, on_fired, NULL) == 0 && fired.success && host.applied->len == 0 &&
           strstr(fired.result, "not run"), "the timer after ValidUntil switches nothing");
        host.now = 2500 * SEC;
        ok(scheduler_fire(s, sch, true, on_fired, NULL) == 0 && fired.success && host.applied->len > 0,
           "within the validity it runs");
        g_string_truncate(host.applied, 0);
        host.now = 1500 * SEC;
        ok(scheduler_fire(s, sch, false, on_fired, NULL) == 0 && host.applied->len > 0,
           "RunNow runs whatever the validity");
        spec.valid_until_usec = 1000 * SEC;
        ok(scheduler_add(s, &spec, &sch, &error) == -EINVAL, "ValidUntil before ValidFrom is refused");
        free(error);
        error = NULL;

        /* Removing. */
        sch = scheduler_find(s, 1);
        ok(scheduler_remove(s, sch, &error) == 0 && !scheduler_find(s, 1) &&
           !g_hash_table_contains(sd.units, "kasamond-schedule-1.timer") &&
           !g_hash_table_contains(sd.units, "kasamond-schedule-1.service"),
           "Remove stops the timer and the service and forgets the schedule");
        ok(timer("kasamond-schedule-2.timer"), "another schedule's timer stays");
        ok(stored() == 2, "the removed one is deleted");
        scheduler_free(s);
}

static void test_own_service(void) {
        Schedule sch = { .rec.id = 1 };

        ok(schedule_is_own_service(&sch, "kasamond-schedule-1.service"), "its calendar service");
        ok(schedule_is_own_service(&sch, "kasamond-schedule-1-20240621.service"), "its sun service");
        ok(!schedule_is_own_service(&sch, "kasamond-schedule-12.service"), "not schedule 12's");
        ok(!schedule_is_own_service(&sch, "kasamond-schedule-1.timer"), "not a timer");
        ok(!schedule_is_own_service(&sch, "kasamond.service"), "not kasamond's");
        ok(!schedule_is_own_service(&sch, "other-kasamond-schedule-1.service"), "not a lookalike");
        ok(!schedule_is_own_service(&sch, NULL), "not a caller outside any unit");
}

static int64_t utc(int y, int mo, int d, int h, int mi, int s) {
        GDateTime *dt = g_date_time_new_utc(y, mo, d, h, mi, s);
        int64_t t = g_date_time_to_unix(dt) * SEC;
        g_date_time_unref(dt);
        return t;
}

static void test_sun(void) {
        char *devices[] = { (char *) "plug1", NULL };
        ScheduleSpec spec = { .devices = devices, .action = "on", .when = "sunrise", .sun_offset_usec = 15 * 60 * SEC };
        char *error = NULL;
        Schedule *sch;
        Scheduler *s;

        g_unlink(db_path);
        sd_reset();
        /* Greenwich, 2024-06-21 at midnight UTC: sunrise 03:42:51 UTC
         * (tests/daemon/test-sun.c), +15 minutes. */
        host.now = (uint64_t) utc(2024, 6, 21, 0, 0, 0);
        s = new_scheduler(51.4769, -0.0005);
        ok(scheduler_add(s, &spec, &sch, &error) == 0, "a sun schedule is added");
        FakeUnit *u = timer("kasamond-schedule-1-20240621.timer");
        ok(u && g_str_has_prefix(u->calendar, "2024-06-21 03:5") && g_str_has_suffix(u->calendar, " UTC"),
           "the day's sunrise + 15 min is armed as a one-off UTC time in units named after the day (%s)",
           u ? u->calendar : "none");
        ok(sch->sun_next_usec > (uint64_t) utc(2024, 6, 21, 3, 56, 0) &&
           sch->sun_next_usec < (uint64_t) utc(2024, 6, 21, 3, 59, 0), "the event armed is known");

        /* The timer fires: the next day's event is armed, the elapsed timer stopped. */
        host.now = (uint64_t) utc(2024, 6, 21, 3, 58, 0);
        ok(scheduler_fire(s, sch, true, on_fired, NULL) == 0 && fired.success, "it fires");
        ok(timer("kasamond-schedule-1-20240622.timer") && !timer("kasamond-schedule-1-20240621.timer"),
           "and arms the next day's sunrise, stopping the elapsed timer");
        ok(g_hash_table_contains(sd.units, "kasamond-schedule-1-20240621.service"),
           "but not the service that called");
        is_str(sch->armed_timer, "kasamond-schedule-1-20240622.timer", "Timer names the new one");
        uint64_t next, last;
        scheduler_timer_times(s, sch, &next, &last);
        ok(last == 7, "LastTrigger is the timer's");
        /* RunNow does not re-arm. */
        sd.starts = 0;
        ok(scheduler_fire(s, sch, false, on_fired, NULL) == 0 && sd.starts == 0, "RunNow arms nothing");

        /* A restart the day after, late: today's event is armed, and older
         * timers are stopped. */
        scheduler_free(s);
        host.now = (uint64_t) utc(2024, 6, 23, 1, 0, 0);
        s = new_scheduler(51.4769, -0.0005);
        ok(timer("kasamond-schedule-1-20240623.timer") && !timer("kasamond-schedule-1-20240622.timer"),
           "at start the next event is armed, the day's timer that was missed stopped");
        scheduler_free(s);

        /* Polar night in Tromso: no sunrise on the 21st of December, the
         * next is in January, and Describe says why. */
        g_unlink(db_path);
        sd_reset();
        host.now = (uint64_t) utc(2024, 12, 21, 0, 0, 0);
        s = new_scheduler(69.6492, 18.9553);
        spec.sun_offset_usec = 0;
        ok(scheduler_add(s, &spec, &sch, &error) == 0, "a sunrise schedule in a polar night is added");
        ok(sch->armed_timer && g_str_has_prefix(sch->armed_timer, "kasamond-schedule-1-202501"),
           "the next sunrise armed is in January (%s)", sch->armed_timer ?: "none");
        is_str(sch->sun_remark, "polar night: the sun does not rise", "the remark says today has none");
        char *json = schedule_describe(s, sch);
        ok(json && strstr(json, "\"sun_remark\":\"polar night: the sun does not rise\"") &&
           strstr(json, "\"sun_event\":\"sunrise\"") && strstr(json, "\"calendar\":null"),
           "Describe shows it: %s", json);
        free(json);

        uint64_t times[_SUN_EVENT_MAX];
        const char *remarks[_SUN_EVENT_MAX];
        ok(scheduler_sun_times(s, host.now, NAN, NAN, times, remarks) == 0 && times[SUN_SUNRISE] == 0 &&
           remarks[SUN_SUNRISE] && times[SUN_CIVIL_DAWN] != 0 && !remarks[SUN_CIVIL_DAWN],
           "sun times of the configured place: no sunrise, but a civil dawn");
        ok(scheduler_sun_times(s, (uint64_t) utc(2024, 12, 21, 0, 0, 0), 64.1466, -21.9426, times, remarks) == 0 &&
           llabs((int64_t) times[SUN_SUNRISE] - utc(2024, 12, 21, 11, 22, 31)) < 120 * SEC,
           "sun times of another place (Reykjavik's sunrise)");
        ok(scheduler_sun_times(s, host.now, 95, 0, times, remarks) == -EINVAL, "a bad place is refused");
        scheduler_free(s);
        s = new_scheduler(NAN, NAN);
        ok(scheduler_sun_times(s, host.now, NAN, NAN, times, remarks) == -ENODATA, "no place configured: ENODATA");
        scheduler_free(s);
}

/* The real check, systemd-analyze, which works without a service manager. */
static void test_systemd_analyze(const char *analyze) {
        Systemd1 sd1 = { .analyze = analyze };
        char *normalized = NULL, *error = NULL;

        ok(systemd1_ops.check_calendar(&sd1, "Mon..Fri 07:00", &normalized, &error) == 0 &&
           normalized && strcmp(normalized, "Mon..Fri *-*-* 07:00:00") == 0,
           "systemd-analyze normalizes 'Mon..Fri 07:00' (%s)", normalized ? normalized : error ? error : "");
        free(normalized);
        normalized = NULL;
        ok(systemd1_ops.check_calendar(&sd1, "Mon..Fri 25:00", &normalized, &error) == -EINVAL && error &&
           strstr(error, "Failed to parse calendar specification"), "and refuses 'Mon..Fri 25:00' in its words (%s)",
           error ?: "");
        free(error);
        error = NULL;
        ok(systemd1_ops.check_calendar(&sd1, "daily\nhourly", &normalized, &error) == -EINVAL,
           "two lines are refused");
        free(error);
}

/* A schema version the file cannot have (negative) is refused, and the
 * file is left as it was, not stamped current with no table made. */
static void test_bad_schema_version(const char *dir) {
        char *path = g_build_filename(dir, "bad.sqlite", NULL);
        DbSchedule *db = NULL;
        sqlite3 *raw;
        sqlite3_stmt *st;
        char *error = NULL;
        int version = 0;

        g_assert(sqlite3_open(path, &raw) == SQLITE_OK);
        g_assert(sqlite3_exec(raw, "PRAGMA user_version = -1", NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(raw);
        ok(db_schedule_open(path, &db, &error) == -EPROTONOSUPPORT, "a negative schema version is refused (%s)",
           error ?: "no message");
        g_assert(sqlite3_open(path, &raw) == SQLITE_OK);
        g_assert(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(raw);
        ok(version == -1, "and the file keeps its version (%d)", version);
        db_schedule_free(db);
        free(error);
        for (const char *suffix = ""; suffix; suffix = *suffix ? (strcmp(suffix, "-wal") == 0 ? "-shm" : NULL) : "-wal") {
                char *p = g_strconcat(path, suffix, NULL);
                g_unlink(p);
                g_free(p);
        }
        g_free(path);
}

int main(int argc, char **argv) {
        char dir[] = "/tmp/test-schedule-XXXXXX";

        g_assert(mkdtemp(dir));
        db_path = g_build_filename(dir, "schedules.sqlite", NULL);
        host.applied = g_string_new(NULL);
        sd_reset();
        test_calendar();
        test_own_service();
        test_sun();
        test_systemd_analyze(argc > 1 ? argv[1] : "/usr/bin/systemd-analyze");
        test_bad_schema_version(dir);

        g_hash_table_destroy(sd.units);
        g_hash_table_destroy(sd.generated);
        free(sd.written);
        g_string_free(host.applied, TRUE);
        g_free(fired.result);
        for (const char *suffix = ""; suffix; suffix = *suffix ? (strcmp(suffix, "-wal") == 0 ? "-shm" : NULL) : "-wal") {
                char *p = g_strconcat(db_path, suffix, NULL);
                g_unlink(p);
                g_free(p);
        }
        g_rmdir(dir);
        g_free(db_path);
        return done_testing();
}
