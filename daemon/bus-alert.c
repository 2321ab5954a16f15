/* SPDX-License-Identifier: MIT */

/* org.kasamond.Kasa1.Alert at /org/kasamond/Kasa1/alert/ID, one object per
 * open (active or acknowledged) alert: glue to manager-alert.c. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager-alert.h"
#include "polkit.h"

/* Alerts are looked up by path on every call: the engine frees them when
 * they resolve, so userdata is the manager, never the alert. */
static const Alert *alert_of(sd_bus *bus, const char *path, void *userdata, sd_bus_error *error) {
        const Alert *a = manager_alert_find_path(userdata, path);

        if (!a)
                sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "Alert %s is resolved", path);
        return a;
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const Alert *a = alert_of(bus, path, m, error);
        const AlertRule *r;

        if (!a)
                return -ENOENT;
        r = manager_alert_rule(m, a);
        if (strcmp(property, "Id") == 0)
                return sd_bus_message_append(reply, "u", a->id);
        if (strcmp(property, "Rule") == 0)
                return sd_bus_message_append(reply, "u", a->rule);
        if (strcmp(property, "RuleName") == 0)
                return sd_bus_message_append(reply, "s", r ? r->name : "");
        if (strcmp(property, "Kind") == 0)
                return sd_bus_message_append(reply, "s", r ? alert_kind_to_string(r->kind) : "");
        if (strcmp(property, "Device") == 0) {
                _cleanup_free_ char *p = manager_alert_device_path(m, a);
                return p ? sd_bus_message_append(reply, "o", p) : -ENOMEM;
        }
        if (strcmp(property, "State") == 0)
                return sd_bus_message_append(reply, "s", alert_state_to_string(a->state));
        if (strcmp(property, "Since") == 0)
                return sd_bus_message_append(reply, "t", a->since_usec);
        if (strcmp(property, "Value") == 0)
                return sd_bus_message_append(reply, "d", a->value);
        return -EINVAL;
}

static int method_acknowledge(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const Alert *a;
        int r;

        r = polkit_check(m->polkit, msg, KASA_ACTION_MANAGE_ALERTS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        /* Again after polkit: it may have resolved meanwhile. */
        a = alert_of(sd_bus_message_get_bus(msg), sd_bus_message_get_path(msg), m, error);
        if (!a)
                return -ENOENT;
        r = manager_alert_acknowledge(m, a->id);
        if (r == -EALREADY)
                return sd_bus_reply_method_return(msg, NULL);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to acknowledge alert %" PRIu32 ": %s", a->id,
                                               strerror(-r));
        return sd_bus_reply_method_return(msg, NULL);
}

static int method_describe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const Alert *a = alert_of(sd_bus_message_get_bus(msg), sd_bus_message_get_path(msg), m, error);
        _cleanup_free_ char *json = NULL;

        if (!a)
                return -ENOENT;
        json = manager_alert_describe(m, a);
        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", json);
}

static const sd_bus_vtable bus_alert_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Rule", "u", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RuleName", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Kind", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Device", "o", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("State", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Since", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Value", "d", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Acknowledge", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_acknowledge,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Describe", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_describe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int find_alert(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                      sd_bus_error *error) {
        Manager *m = userdata;

        if (!manager_alert_find_path(m, path)) {
                /* Re-run after polkit answered, for an alert resolved meanwhile. */
                polkit_forget(m->polkit, sd_bus_get_current_message(bus));
                return 0;
        }
        *found = m;
        return 1;
}

static int enumerate_alerts(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        size_t n = manager_alert_count(m);
        char **l = calloc(n + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                l[i] = manager_alert_path(manager_alert_get(m, i));
        *nodes = l;
        return 1;
}

int bus_alert_register(Manager *m) {
        int r;

        r = bus_manager_alert_register(m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(m->bus, NULL, KASA_ALERT_PREFIX, KASA_ALERT_IFACE, bus_alert_vtable, find_alert,
                                       m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the alert objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, KASA_ALERT_PREFIX, enumerate_alerts, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the alert enumerator: %m");
        return 0;
}

static void emit(Manager *m, const Alert *a, bool fired) {
        _cleanup_free_ char *path = manager_alert_path(a), *device = manager_alert_device_path(m, a);
        int r;

        if (!m->bus || !path || !device)
                return;
        if (fired)
                r = sd_bus_emit_interfaces_added(m->bus, path, KASA_ALERT_IFACE, NULL);
        else
                /* The object is gone once the engine frees the alert:
                 * the signal says what it was. */
                r = sd_bus_emit_signal(m->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AlertResolved", "ouo", path,
                                       a->rule, device);
        if (r < 0)
                log_debug_errno(r, "Failed to emit the signals of alert %" PRIu32 ", ignoring: %m", a->id);
        if (fired)
                r = sd_bus_emit_signal(m->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AlertFired", "ouod", path,
                                       a->rule, device, a->value);
        else
                r = sd_bus_emit_interfaces_removed(m->bus, path, KASA_ALERT_IFACE, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit the signals of alert %" PRIu32 ", ignoring: %m", a->id);
}

void bus_alert_emit_fired(Manager *m, const Alert *a) {
        emit(m, a, true);
}

void bus_alert_emit_resolved(Manager *m, const Alert *a) {
        emit(m, a, false);
}

void bus_alert_emit_changed(Manager *m, const Alert *a) {
        _cleanup_free_ char *path = manager_alert_path(a);
        int r;

        if (!m->bus || !path)
                return;
        r = sd_bus_emit_properties_changed(m->bus, path, KASA_ALERT_IFACE, "State", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit PropertiesChanged for alert %" PRIu32 ", ignoring: %m", a->id);
}
