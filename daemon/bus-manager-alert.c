/* SPDX-License-Identifier: MIT */

/* The Manager's alert methods (AddAlertRule, RemoveAlertRule,
 * ListAlertRules, ListAlerts) and signals, a vtable of their own on the
 * manager object. */

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager-alert.h"
#include "polkit.h"

static int reply_error(sd_bus_error *error, int r, const char *why) {
        if (r == -ENOENT)
                return sd_bus_error_set(error, KASA_ERROR_NOT_FOUND, why);
        if (r == -EINVAL)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, why);
        if (r == -EEXIST)
                return sd_bus_error_set(error, KASA_ERROR_ALREADY_KNOWN, why);
        return sd_bus_error_set_errnof(error, r, "%s", why ?: strerror(-r));
}

static int method_add_alert_rule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        const char *name, *kind, *device;
        g_auto(GStrv) hook = NULL;
        _cleanup_free_ char *why = NULL;
        double threshold;
        uint64_t duration, cooldown;
        int r;

        r = polkit_check(m->polkit, msg, KASA_ACTION_MANAGE_ALERTS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = sd_bus_message_read(msg, "sssdtt", &name, &kind, &device, &threshold, &duration, &cooldown);
        if (r >= 0)
                r = sd_bus_message_read_strv(msg, &hook);
        if (r < 0)
                return r;

        /* A device by id or by object path. */
        if (g_str_has_prefix(device, KASA_DEVICE_PREFIX "/")) {
                Device *d = manager_find_path(m, device);
                if (!d)
                        return sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "No device %s", device);
                device = d->id;
        }
        AlertRule rule = {
                .name = (char *) name,
                .kind = alert_kind_from_string(kind),
                .scope = (char *) device,
                .threshold = threshold,
                .duration_usec = duration,
                .cooldown_usec = cooldown,
                .hook = hook && hook[0] ? hook : NULL,
        };
        if (rule.kind < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown rule type '%s' (power-above, power-below, offline, energy-day, "
                                         "energy-month, cost-day, cost-month, on)", kind);
        r = manager_alert_rule_add(m, &rule, &why);
        if (r < 0)
                return reply_error(error, r, why);
        return sd_bus_reply_method_return(msg, "u", rule.id);
}

static int method_remove_alert_rule(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_free_ char *why = NULL;
        uint32_t id;
        int r;

        r = polkit_check(m->polkit, msg, KASA_ACTION_MANAGE_ALERTS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = sd_bus_message_read(msg, "u", &id);
        if (r < 0)
                return r;
        r = manager_alert_rule_remove(m, id, &why);
        if (r < 0)
                return reply_error(error, r, why);
        return sd_bus_reply_method_return(msg, NULL);
}

static int reply_json(sd_bus_message *msg, char *json) {
        _cleanup_free_ char *s = json;

        if (!s)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", s);
}

static int method_list_alert_rules(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_json(msg, manager_alert_rules_json(userdata));
}

static int method_list_alerts(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        return reply_json(msg, manager_alerts_json(userdata));
}

static const sd_bus_vtable bus_manager_alert_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("AddAlertRule",
                                SD_BUS_ARGS("s", name, "s", kind, "s", device, "d", threshold, "t", duration,
                                            "t", cooldown, "as", hook),
                                SD_BUS_RESULT("u", id), method_add_alert_rule, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveAlertRule", SD_BUS_ARGS("u", id), SD_BUS_NO_RESULT, method_remove_alert_rule,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListAlertRules", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_list_alert_rules,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListAlerts", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_list_alerts,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("AlertFired", SD_BUS_ARGS("o", alert, "u", rule, "o", device, "d", value), 0),
        SD_BUS_SIGNAL_WITH_ARGS("AlertResolved", SD_BUS_ARGS("o", alert, "u", rule, "o", device), 0),
        SD_BUS_VTABLE_END,
};

int bus_manager_alert_register(Manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, bus_manager_alert_vtable,
                                         m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager's alert methods: %m");
        return 0;
}
