/* SPDX-License-Identifier: MIT */

#include "systemd1.h"

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "kasa-time.h"
#include "log.h"
#include "macro.h"

#define SYSTEMD1 "org.freedesktop.systemd1"
#define SYSTEMD1_PATH "/org/freedesktop/systemd1"
#define SYSTEMD1_MANAGER "org.freedesktop.systemd1.Manager"

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

static int sd_available(void *userdata, char **ret_error) {
        Systemd1 *sd = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int has = 0, r;

        if (sd_booted() <= 0) {
                set_error(ret_error, "Schedules are systemd timers, and this system does not run systemd as its "
                                     "service manager (no /run/systemd/system).");
                return -EOPNOTSUPP;
        }
        r = sd_bus_call_method(sd->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "NameHasOwner", &error, &reply, "s", SYSTEMD1);
        if (r >= 0)
                r = sd_bus_message_read(reply, "b", &has);
        if (r < 0 || !has) {
                set_error(ret_error, "Schedules are systemd timers, and systemd (" SYSTEMD1 ") is not on the bus "
                                     "kasamond is on, a private bus such as tools/demo's.");
                return -EOPNOTSUPP;
        }
        return 0;
}

/* systemd-analyze, not a parser of our own: the expression is then what
 * systemd will read, and a refusal comes in systemd's words. sd-bus has
 * no calendar parser; a unit that fails to load would say it only after
 * the schedule is stored, and not at all without systemd. Spawned and
 * waited for on the loop: a parse that exits in milliseconds, only for
 * AddSchedule (systemd1.h: bounded and rare). */
static int sd_check_calendar(void *userdata, const char *expr, char **ret_normalized, char **ret_error) {
        Systemd1 *sd = userdata;
        g_autofree char *out = NULL, *err = NULL;
        g_autoptr(GError) gerror = NULL;
        int status;

        if (!*expr || strpbrk(expr, "\n\r") || strlen(expr) > 256) {
                set_error(ret_error, "Invalid calendar expression: empty, more than one line or longer than 256 "
                                     "bytes.");
                return -EINVAL;
        }
        char *argv[] = { (char *) sd->analyze, (char *) "calendar", (char *) "--", (char *) expr, NULL };
        if (!g_spawn_sync(NULL, argv, (char *[]) { (char *) "LC_ALL=C", (char *) "SYSTEMD_COLORS=0", NULL },
                          G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &gerror)) {
                set_error(ret_error, "Cannot check the calendar expression: running %s failed: %s", sd->analyze,
                          gerror->message);
                return -ENOEXEC;
        }
        if (!g_spawn_check_wait_status(status, NULL)) {
                g_strstrip(err);
                set_error(ret_error, "%s", *err ? err : "Invalid calendar expression.");
                return -EINVAL;
        }
        const char *p = strstr(out, "Normalized form: ");
        if (!p) {
                set_error(ret_error, "Cannot check the calendar expression: %s printed no normalized form.",
                          sd->analyze);
                return -EBADMSG;
        }
        p += strlen("Normalized form: ");
        *ret_normalized = strndup(p, strcspn(p, "\n"));
        return *ret_normalized ? 0 : -ENOMEM;
}

/* Written to a temporary file, synced and renamed over (GLib's
 * "consistent" mode), so that the generator reads the old list or the
 * new one, whole. */
static int sd_write_units(void *userdata, const ScheduleUnit *units, size_t n, char **ret_error) {
        Systemd1 *sd = userdata;
        _cleanup_free_ char *text = NULL;
        g_autofree char *old = NULL;
        g_autoptr(GError) gerror = NULL;
        int r = schedule_units_format(units, n, &text);

        if (r < 0)
                return r;
        if (g_file_get_contents(sd->units_path, &old, NULL, NULL) && strcmp(old, text) == 0)
                return 0;
        if (!g_file_set_contents_full(sd->units_path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0644, &gerror)) {
                set_error(ret_error, "Failed to write %s: %s", sd->units_path, gerror->message);
                return -EIO;
        }
        return 1;
}

static int sd_reload(void *userdata, char **ret_error) {
        Systemd1 *sd = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        /* systemd answers once the reload, generators included, is done:
         * the longest wait on the loop here, and a rare one (systemd1.h). */
        r = sd_bus_call_method(sd->bus, SYSTEMD1, SYSTEMD1_PATH, SYSTEMD1_MANAGER, "Reload", &error, NULL, NULL);
        if (r < 0)
                set_error(ret_error, "systemd refused to reload (which makes the schedules' units): %s",
                          error.message ?: strerror(-r));
        return r;
}

static int sd_start_unit(void *userdata, const char *unit, char **ret_error) {
        Systemd1 *sd = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(sd->bus, SYSTEMD1, SYSTEMD1_PATH, SYSTEMD1_MANAGER, "StartUnit", &error, NULL, "ss",
                               unit, "replace");
        if (r < 0 && (sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit") ||
                      sd_bus_error_has_name(&error, "org.freedesktop.systemd1.LoadFailed")))
                r = -ENOENT;
        if (r < 0)
                set_error(ret_error, "systemd refused to start %s: %s", unit, error.message ?: strerror(-r));
        return r;
}

static int sd_stop_unit(void *userdata, const char *unit) {
        Systemd1 *sd = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(sd->bus, SYSTEMD1, SYSTEMD1_PATH, SYSTEMD1_MANAGER, "StopUnit", &error, NULL, "ss",
                               unit, "replace");
        if (r < 0 && sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))
                return 0;
        return r;
}

static int sd_list_units(void *userdata, const char *prefix, char ***ret_units) {
        Systemd1 *sd = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autofree char *pattern = g_strconcat(prefix, "*", NULL);
        GPtrArray *units;
        const char *name;
        int r;

        r = sd_bus_call_method(sd->bus, SYSTEMD1, SYSTEMD1_PATH, SYSTEMD1_MANAGER, "ListUnitsByPatterns", &error,
                               &reply, "asas", 0, 1, pattern);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        if (r < 0)
                return r;
        units = g_ptr_array_new();
        while ((r = sd_bus_message_read(reply, "(ssssssouso)", &name, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                                        NULL, NULL)) > 0)
                g_ptr_array_add(units, g_strdup(name));
        g_ptr_array_add(units, NULL);
        if (r < 0) {
                g_strfreev((char **) g_ptr_array_free(units, FALSE));
                return r;
        }
        *ret_units = (char **) g_ptr_array_free(units, FALSE);
        return 0;
}

static int sd_timer_times(void *userdata, const char *timer, uint64_t *ret_next, uint64_t *ret_last) {
        Systemd1 *sd = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_call_method(sd->bus, SYSTEMD1, SYSTEMD1_PATH, SYSTEMD1_MANAGER, "GetUnit", &error, &reply, "s",
                               timer);
        if (r < 0)
                return sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit") ? -ENOENT : r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return r;
        r = sd_bus_get_property_trivial(sd->bus, SYSTEMD1, path, "org.freedesktop.systemd1.Timer",
                                        "NextElapseUSecRealtime", &error, 't', ret_next);
        if (r >= 0)
                r = sd_bus_get_property_trivial(sd->bus, SYSTEMD1, path, "org.freedesktop.systemd1.Timer",
                                                "LastTriggerUSec", &error, 't', ret_last);
        return r;
}

const Systemd1Ops systemd1_ops = {
        .available = sd_available,
        .check_calendar = sd_check_calendar,
        .write_units = sd_write_units,
        .reload = sd_reload,
        .start_unit = sd_start_unit,
        .stop_unit = sd_stop_unit,
        .list_units = sd_list_units,
        .timer_times = sd_timer_times,
};
