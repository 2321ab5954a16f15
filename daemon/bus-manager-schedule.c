/* SPDX-License-Identifier: MIT */

/* The Manager's schedule methods (AddSchedule, GetSunTimes), a vtable of
 * their own on the manager object. */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"

static int read_options(sd_bus_message *m, ScheduleSpec *spec, sd_bus_error *error) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                int b;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "Offset") == 0)
                        r = sd_bus_message_read(m, "v", "x", &spec->sun_offset_usec);
                else if (strcmp(key, "RandomizedDelay") == 0)
                        r = sd_bus_message_read(m, "v", "t", &spec->random_delay_usec);
                else if (strcmp(key, "Persistent") == 0) {
                        r = sd_bus_message_read(m, "v", "b", &b);
                        spec->persistent = b;
                } else if (strcmp(key, "ValidFrom") == 0)
                        r = sd_bus_message_read(m, "v", "t", &spec->valid_from_usec);
                else if (strcmp(key, "ValidUntil") == 0)
                        r = sd_bus_message_read(m, "v", "t", &spec->valid_until_usec);
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option '%s'.", key);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option '%s' has the wrong type.",
                                                 key);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int method_add_schedule(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        g_auto(GStrv) devices = NULL;
        _cleanup_free_ char *why = NULL;
        ScheduleSpec spec = {};
        Schedule *s;
        int r;

        r = sd_bus_message_read_strv(m, &devices);
        if (r >= 0)
                r = sd_bus_message_read(m, "ss", &spec.action, &spec.when);
        if (r < 0)
                return r;
        spec.devices = devices;
        r = read_options(m, &spec, error);
        if (r < 0)
                return r;
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_SCHEDULES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = scheduler_add(mgr->scheduler, &spec, &s, &why);
        if (r == -EOPNOTSUPP)
                return sd_bus_error_set(error, KASA_ERROR_NO_SERVICE_MANAGER, why);
        if (r == -ENXIO)
                return sd_bus_error_set(error, KASA_ERROR_NOT_FOUND, why);
        if (r == -EINVAL)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, why);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to add the schedule: %s", why ?: strerror(-r));
        r = sd_bus_emit_object_added(mgr->bus, s->path);
        if (r < 0)
                log_debug_errno(r, "Failed to emit InterfacesAdded, ignoring: %m");
        return sd_bus_reply_method_return(m, "o", s->path);
}

static int method_get_sun_times(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *mgr = userdata;
        const char *date, *remarks[_SUN_EVENT_MAX];
        const double *loc;
        uint64_t t, times[_SUN_EVENT_MAX];
        size_t size;
        int r;

        r = sd_bus_message_read(m, "s", &date);
        if (r >= 0)
                r = sd_bus_message_read_array(m, 'd', (const void **) &loc, &size);
        if (r < 0)
                return r;
        if (size != 0 && size != 2 * sizeof(double))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Location: empty (the configured one) or latitude and longitude.");
        if (manager_local_date(mgr, date, &t) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid date '%s': expected YYYY-MM-DD.",
                                         date);
        r = scheduler_sun_times(mgr->scheduler, t, size ? loc[0] : NAN, size ? loc[1] : NAN, times, remarks);
        if (r == -ENODATA)
                return sd_bus_error_set(error, KASA_ERROR_NO_LOCATION,
                                        "No location: set [Location] Latitude= and Longitude= in kasamond.conf, or "
                                        "pass one.");
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid location: latitude -90 to 90, longitude -180 to 180.");
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sts)");
        for (SunEvent e = 0; r >= 0 && e < _SUN_EVENT_MAX; e++)
                r = sd_bus_message_append(reply, "(sts)", sun_event_to_string(e), times[e], remarks[e] ?: "");
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

const sd_bus_vtable bus_manager_schedule_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("AddSchedule",
                                SD_BUS_ARGS("as", devices, "s", action, "s", when, "a{sv}", options),
                                SD_BUS_RESULT("o", schedule), method_add_schedule, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetSunTimes", SD_BUS_ARGS("s", date, "ad", location),
                                SD_BUS_RESULT("a(sts)", events), method_get_sun_times, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
