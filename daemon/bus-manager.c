/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <math.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"
#include "readings.h"

static int property_get_total(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "d", (double) manager_total_power(m) / 1000.0);
}

static int property_get_count(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "u", (uint32_t) g_hash_table_size(m->devices));
}

static int property_get_interval(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "d", (double) m->config.poll_interval_usec / 1e6);
}

static int property_get_storage_error(sd_bus *bus, const char *path, const char *interface, const char *property,
                                      sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        return sd_bus_message_append(reply, "s", m->store_error < 0 ? strerror(-m->store_error) : "");
}

static void on_discover_done(Manager *m, int error, Device **found, size_t n, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata, *reply = NULL;
        int r;

        if (error < 0) {
                r = sd_bus_reply_method_errnof(call, error, "Discovery failed: %s", strerror(-error));
                goto finish;
        }
        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "o", found[i]->path);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
finish:
        if (r < 0)
                log_debug_errno(r, "Failed to send the Discover reply, ignoring: %m");
}

static int method_discover(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        double timeout;
        int r;

        r = sd_bus_message_read(m, "d", &timeout);
        if (r < 0)
                return r;
        if (!isfinite(timeout) || timeout < 0.1 || timeout > 60)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid timeout %g: must be between 0.1 and 60 seconds.", timeout);
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_DEVICES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_discover(mgr, (uint64_t) (timeout * 1e6), on_discover_done, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                return sd_bus_error_set_errnof(error, r, "Failed to start discovery: %s", strerror(-r));
        }
        return 1;
}

static void on_add_done(Manager *m, int error, const char *message, Device *d, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata;
        int r;

        if (error == -ENOSPC)
                r = sd_bus_reply_method_errorf(call, KASA_ERROR_LIMIT, "%s", message);
        else if (error == -EEXIST)
                r = sd_bus_reply_method_errorf(call, KASA_ERROR_ALREADY_KNOWN, "%s", message);
        else if (error < 0)
                r = sd_bus_reply_method_errorf(call, error == -EBADMSG ? KASA_ERROR_DEVICE : KASA_ERROR_OFFLINE,
                                               "%s", message);
        else
                r = sd_bus_reply_method_return(call, "o", d->path);
        if (r < 0)
                log_debug_errno(r, "Failed to send the AddDevice reply, ignoring: %m");
}

static int method_add_device(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        const char *address;
        int r;

        r = sd_bus_message_read(m, "s", &address);
        if (r < 0)
                return r;
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_DEVICES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_add_address(mgr, address, on_add_done, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                if (r == -EINVAL)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Invalid address '%s': expected an IPv4 address, optionally with :port.",
                                                 address);
                return sd_bus_error_set_errnof(error, r, "Failed to add %s: %s", address, strerror(-r));
        }
        return 1;
}

static int method_remove_device(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        const char *path;
        Device *d;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return r;
        /* Asked first: the device may go while polkit is asked, and the
         * answer must be picked up whatever is found on the re-run. */
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_DEVICES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        d = manager_find_path(mgr, path);
        if (!d)
                return sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "No device at %s.", path);
        if (d->parent)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "%s is an outlet; remove its strip %s instead.", d->id, d->parent->id);
        r = manager_remove(mgr, d);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to remove %s: %s", path, strerror(-r));
        return sd_bus_reply_method_return(m, NULL);
}

static int method_describe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *json = manager_describe(userdata);

        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", json);
}

const sd_bus_vtable bus_manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", NULL, offsetof(Manager, version), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("TotalPower", "d", property_get_total, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("DeviceCount", "u", property_get_count, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("PollInterval", "d", property_get_interval, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("StorageError", "s", property_get_storage_error, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Discover", SD_BUS_ARGS("d", timeout), SD_BUS_RESULT("ao", devices),
                                method_discover, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AddDevice", SD_BUS_ARGS("s", address), SD_BUS_RESULT("o", device),
                                method_add_device, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveDevice", SD_BUS_ARGS("o", device), SD_BUS_NO_RESULT,
                                method_remove_device, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Describe", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_describe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int find_device(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        Manager *m = userdata;
        Device *d = manager_find_path(m, path);

        if (!d) {
                /* A call re-run after polkit answered, for a device removed
                 * meanwhile: its method will not run to collect the answer. */
                polkit_forget(m->polkit, sd_bus_get_current_message(bus));
                return 0;
        }
        *found = d;
        return 1;
}

static int find_meter(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                      sd_bus_error *error) {
        Device *d = manager_find_path(userdata, path);

        if (!d || !device_has_meter(d))
                return 0;
        *found = d;
        return 1;
}

static int enumerate_devices(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        GHashTableIter it;
        gpointer value;
        char **l;
        size_t i = 0;

        l = calloc(g_hash_table_size(m->devices) + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        g_hash_table_iter_init(&it, m->devices);
        while (g_hash_table_iter_next(&it, NULL, &value)) {
                l[i] = strdup(((Device *) value)->path);
                if (!l[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return -ENOMEM;
                }
                i++;
        }
        *nodes = l;
        return 1;
}

int bus_register(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, bus_manager_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager object: %m");
        r = bus_manager_access_register(m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(m->bus, NULL, KASA_DEVICE_PREFIX, KASA_DEVICE_IFACE, bus_device_vtable,
                                       find_device, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the device objects: %m");
        r = sd_bus_add_fallback_vtable(m->bus, NULL, KASA_DEVICE_PREFIX, KASA_METER_IFACE, bus_energy_vtable,
                                       find_meter, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the energy meter objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, KASA_DEVICE_PREFIX, enumerate_devices, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the device enumerator: %m");
        r = bus_schedule_register(m);
        if (r < 0)
                return r;
        r = bus_tariff_register(m);
        if (r < 0)
                return r;
        r = bus_manager_export_register(m);
        if (r < 0)
                return r;
        r = bus_manager_backup_register(m);
        if (r < 0)
                return r;
        r = bus_alert_register(m);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(m->bus, NULL, KASA_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to register the object manager: %m");
        return 0;
}

void bus_manager_emit_total(Manager *m) {
        int r;

        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "TotalPower", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit TotalPower, ignoring: %m");
}
