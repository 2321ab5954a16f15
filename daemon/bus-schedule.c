/* SPDX-License-Identifier: MIT */

/* org.kasamond.Kasa1.Schedule at /org/kasamond/Kasa1/schedule/ID: glue to
 * schedule.c. */

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"

static int property_get_id(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Schedule *s = userdata;
        return sd_bus_message_append(reply, "u", s->rec.id);
}

static int property_get_devices(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Schedule *s = userdata;
        return sd_bus_message_append_strv(reply, s->rec.devices);
}

static int property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        int b = *(bool *) userdata;
        return sd_bus_message_append_basic(reply, 'b', &b);
}

static int property_get_times(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Schedule *s = userdata;
        uint64_t next, last;

        scheduler_timer_times(s->scheduler, s, &next, &last);
        return sd_bus_message_append(reply, "t", strcmp(property, "NextElapse") == 0 ? next : last);
}

static Manager *manager_of(Schedule *s) {
        return scheduler_host(s->scheduler);
}

static int reply_error(sd_bus_error *error, int r, const char *message) {
        if (r == -EOPNOTSUPP)
                return sd_bus_error_set(error, KASA_ERROR_NO_SERVICE_MANAGER, message);
        return sd_bus_error_set_errnof(error, r, "%s", message ?: strerror(-r));
}

static int set_enabled(sd_bus_message *msg, Schedule *s, bool enabled, sd_bus_error *error) {
        _cleanup_free_ char *why = NULL;
        int r;

        r = scheduler_set_enabled(s->scheduler, s, enabled, &why);
        if (r < 0)
                return reply_error(error, r, why);
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_enable(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int r = polkit_check(manager_of(userdata)->polkit, msg, KASA_ACTION_MANAGE_SCHEDULES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return set_enabled(msg, userdata, true, error);
}

static int method_disable(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int r = polkit_check(manager_of(userdata)->polkit, msg, KASA_ACTION_MANAGE_SCHEDULES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return set_enabled(msg, userdata, false, error);
}

static void on_fired(uint32_t id, bool success, const char *result, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata;
        int r;

        if (success)
                r = sd_bus_reply_method_return(call, "s", result);
        else
                r = sd_bus_reply_method_errorf(call, KASA_ERROR_DEVICE, "Schedule %" PRIu32 ": %s", id, result);
        if (r < 0)
                log_debug_errno(r, "Failed to reply to a schedule run, ignoring: %m");
}

static int run(sd_bus_message *msg, Schedule *s, bool from_timer, sd_bus_error *error) {
        Manager *m = manager_of(s);
        int r;

        r = scheduler_fire(m->scheduler, s, from_timer, on_fired, sd_bus_message_ref(msg));
        if (r < 0) {
                sd_bus_message_unref(msg);
                return sd_bus_error_set_errnof(error, r, "Failed to run schedule %" PRIu32 ": %s", s->rec.id,
                                               strerror(-r));
        }
        return 1;
}

static int method_run_now(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int r = polkit_check(manager_of(userdata)->polkit, msg, KASA_ACTION_MANAGE_SCHEDULES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        return run(msg, userdata, false, error);
}

/* The generator's services run as SCHEDULE_UNITS_USER, which is kasamond's
 * own user when it runs from the installed unit. */
static bool is_service_user(void *userdata, uid_t uid) {
        struct passwd *pw;

        if (uid == geteuid())
                return true;
        pw = getpwnam(SCHEDULE_UNITS_USER);
        return pw && pw->pw_uid == uid;
}

/* For a caller of kasamond's user, once systemd named its unit. */
static bool is_own_unit(void *userdata, sd_bus_message *call, const char *unit, int error) {
        Manager *m = userdata;
        Schedule *s = m->scheduler ? scheduler_find_path(m->scheduler, sd_bus_message_get_path(call)) : NULL;

        if (!s)
                return false; /* gone meanwhile: the re-run finds no object */
        if (error >= 0 && schedule_is_own_service(s, unit))
                return true;
        /* kasamond's user, elsewhere: worth saying, as it looks like a timer. */
        if (error < 0)
                log_internal(LOG_NOTICE, error, "Schedule %" PRIu32 " fired by kasamond's user from an unknown unit "
                             "(%m), not as its timer", s->rec.id);
        else
                log_notice("Schedule %" PRIu32 " fired by kasamond's user from %s, not as its timer", s->rec.id, unit);
        return false;
}

const FireCallerOps bus_fire_caller_ops = {
        .is_service_user = is_service_user,
        .is_own_unit = is_own_unit,
};

/* The timer's own service, kasamond's user in kasamond's unit for this
 * schedule, fires it as the timer; anyone else needs manage-schedules and
 * runs it as RunNow does. Who calls is asked without waiting
 * (fire-caller.h), then polkit for anyone else: the method runs again
 * after each answer. */
static int method_fire(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Schedule *s = userdata;
        Manager *m = manager_of(s);
        bool own = false;
        int r;

        r = fire_caller_check(m->fire_callers, msg, &own);
        if (r == 0)
                return 1;
        if (r < 0)
                log_debug_errno(r, "Failed to ask who fires schedule %" PRIu32 " (not its timer): %m", s->rec.id);
        if (own) {
                fire_caller_forget(m->fire_callers, msg);
                return run(msg, s, true, error);
        }
        r = polkit_check(m->polkit, msg, KASA_ACTION_MANAGE_SCHEDULES, error);
        if (r == 0)
                return 1;
        fire_caller_forget(m->fire_callers, msg);
        if (r < 0)
                return r;
        return run(msg, s, false, error);
}

static int method_remove(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Schedule *s = userdata;
        Manager *m = manager_of(s);
        _cleanup_free_ char *why = NULL, *path = NULL;
        int r;

        r = polkit_check(m->polkit, msg, KASA_ACTION_MANAGE_SCHEDULES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        path = strdup(s->path);
        if (!path)
                return -ENOMEM;
        r = scheduler_remove(m->scheduler, s, &why);
        if (r < 0)
                return reply_error(error, r, why);
        r = sd_bus_emit_interfaces_removed(m->bus, path, KASA_SCHEDULE_IFACE, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit InterfacesRemoved, ignoring: %m");
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_describe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *json = schedule_describe(((Schedule *) userdata)->scheduler, userdata);

        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", json);
}

const sd_bus_vtable bus_schedule_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Devices", "as", property_get_devices, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Action", "s", bus_property_get_string_ptr, offsetof(Schedule, rec.action), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Calendar", "s", bus_property_get_string_ptr, offsetof(Schedule, rec.calendar), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SunEvent", "s", bus_property_get_string_ptr, offsetof(Schedule, rec.sun_event), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("SunOffset", "x", NULL, offsetof(Schedule, rec.sun_offset_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RandomizedDelay", "t", NULL, offsetof(Schedule, rec.random_delay_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Persistent", "b", property_get_bool, offsetof(Schedule, rec.persistent), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ValidFrom", "t", NULL, offsetof(Schedule, rec.valid_from_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ValidUntil", "t", NULL, offsetof(Schedule, rec.valid_until_usec), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Enabled", "b", property_get_bool, offsetof(Schedule, rec.enabled), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Timer", "s", bus_property_get_string_ptr, offsetof(Schedule, armed_timer), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("NextElapse", "t", property_get_times, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("LastTrigger", "t", property_get_times, 0, SD_BUS_VTABLE_PROPERTY_EMITS_INVALIDATION),
        SD_BUS_PROPERTY("LastRun", "t", NULL, offsetof(Schedule, rec.last_run_usec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastResult", "s", bus_property_get_string_ptr, offsetof(Schedule, rec.last_result), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Enable", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_enable, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Disable", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_disable, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RunNow", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", result), method_run_now,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Fire", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", result), method_fire,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Remove", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_remove, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Describe", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_describe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int find_schedule(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                         sd_bus_error *error) {
        Manager *m = userdata;
        Schedule *s = m->scheduler ? scheduler_find_path(m->scheduler, path) : NULL;

        if (!s) {
                /* Re-run after polkit (or Fire's caller check) answered,
                 * for a schedule removed meanwhile. */
                polkit_forget(m->polkit, sd_bus_get_current_message(bus));
                fire_caller_forget(m->fire_callers, sd_bus_get_current_message(bus));
                return 0;
        }
        *found = s;
        return 1;
}

static int enumerate_schedules(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        GPtrArray *list = m->scheduler ? scheduler_list(m->scheduler) : NULL;
        size_t n = list ? list->len : 0;
        char **l = calloc(n + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i] = strdup(((Schedule *) list->pdata[i])->path);
                if (!l[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 1;
}

int bus_schedule_register(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, bus_manager_schedule_vtable,
                                     m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager's schedule methods: %m");
        r = sd_bus_add_fallback_vtable(m->bus, NULL, KASA_SCHEDULE_PREFIX, KASA_SCHEDULE_IFACE, bus_schedule_vtable,
                                       find_schedule, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the schedule objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, KASA_SCHEDULE_PREFIX, enumerate_schedules, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the schedule enumerator: %m");
        return 0;
}

void bus_schedule_emit_changed(Manager *m, Schedule *s) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, s->path, KASA_SCHEDULE_IFACE, "Enabled", "Timer", "NextElapse",
                                           "LastTrigger", "LastRun", "LastResult", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit PropertiesChanged for schedule %" PRIu32 ", ignoring: %m",
                                s->rec.id);
}
