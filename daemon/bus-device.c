/* SPDX-License-Identifier: MIT */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"
#include "readings.h"

/* Device keeps its strings as arrays inside it: sd-bus's own getter
 * would take the array for a pointer. userdata is the field (offsetof). */
static int property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append_basic(reply, 's', userdata);
}

int bus_property_get_string_ptr(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        const char *s = *(char **) userdata;
        return sd_bus_message_append_basic(reply, 's', s ?: "");
}

/* A bool field; the bus's "b" is an int. */
static int property_get_bool(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        int b = *(bool *) userdata;
        return sd_bus_message_append_basic(reply, 'b', &b);
}

static int property_get_parent(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        return sd_bus_message_append(reply, "o", d->parent ? d->parent->path : "/");
}

static int property_get_auth(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        return sd_bus_message_append(reply, "s", device_auth_to_string(d->auth));
}

int bus_set_device_error(sd_bus_error *e, Device *d, int error, int32_t device_err) {
        if (error == 0 && device_err != 0)
                return sd_bus_error_setf(e, KASA_ERROR_DEVICE, "Device %s refused the command: err_code %d (%s).",
                                         d->id, device_err, kasa_err_to_string(device_err));
        switch (error) {
        case -ETIMEDOUT:
        case -ECONNREFUSED:
        case -ECONNRESET:
        case -EHOSTUNREACH:
        case -ENETUNREACH:
        case -EPIPE:
        case -ECANCELED:
                if (d->last_seen_usec == 0)
                        return sd_bus_error_setf(e, KASA_ERROR_OFFLINE,
                                                 "Device %s at %s did not answer (%s); it was never seen online.",
                                                 d->id, d->address, strerror(-error));
                return sd_bus_error_setf(e, KASA_ERROR_OFFLINE,
                                         "Device %s at %s did not answer (%s); last seen %" PRIu64
                                         " (microseconds since the epoch).",
                                         d->id, d->address, strerror(-error), d->last_seen_usec);
        case -EMSGSIZE:
        case -EBADMSG:
                return sd_bus_error_setf(e, KASA_ERROR_DEVICE, "Device %s at %s sent a malformed reply.", d->id,
                                         d->address);
        default:
                return sd_bus_error_set_errnof(e, error, "Command to device %s failed: %s", d->id,
                                               strerror(-error));
        }
}

int bus_reply_device_error(sd_bus_message *call, Device *d, int error, int32_t device_err) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        bus_set_device_error(&e, d, error, device_err);
        return sd_bus_reply_method_error(call, &e);
}

static void append_ids(GString *s, Device **list, size_t n) {
        for (size_t i = 0; i < n; i++)
                g_string_append_printf(s, "%s%s", i == 0 ? "" : ", ", list[i]->id);
}

/* A strip command that switched some outlets and not others: the error
 * of the first failure, its message saying which outlets are which. */
static int reply_partial(sd_bus_message *call, Device *d, const DeviceCommandResult *res) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        g_autoptr(GString) msg = g_string_new(NULL);

        bus_set_device_error(&e, res->failed[0], res->error, res->device_err);
        g_string_printf(msg, "Strip %s switched only in part: switched %s: ", d->id, res->on ? "on" : "off");
        append_ids(msg, res->switched, res->n_switched);
        g_string_append(msg, "; not switched: ");
        append_ids(msg, res->failed, res->n_failed);
        g_string_append_printf(msg, ". %s", e.message ?: "");
        return sd_bus_reply_method_errorf(call, e.name, "%s", msg->str);
}

static void reply_done(sd_bus_message *call, Device *d, const DeviceCommandResult *res, bool with_state) {
        int r;

        if (res->n_switched > 0 && res->n_failed > 0)
                r = reply_partial(call, d, res);
        else if (res->error < 0 || res->device_err != 0)
                r = bus_reply_device_error(call, d, res->error, res->device_err);
        else if (with_state)
                r = sd_bus_reply_method_return(call, "b", d->on);
        else
                r = sd_bus_reply_method_return(call, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to send reply, ignoring: %m");
        sd_bus_message_unref(call);
}

static void on_command_done(Device *d, const DeviceCommandResult *res, void *userdata) {
        reply_done(userdata, d, res, false);
}

static void on_toggle_done(Device *d, const DeviceCommandResult *res, void *userdata) {
        reply_done(userdata, d, res, true);
}

static int method_set_on(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        int on, r;

        r = sd_bus_message_read(m, "b", &on);
        if (r < 0)
                return r;
        r = polkit_check(d->manager->polkit, m, KASA_ACTION_SWITCH, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = device_set_on(d, on, on_command_done, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_set_device_error(error, d, r, 0);
        }
        return 1;
}

static int method_toggle(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        int r;

        r = polkit_check(d->manager->polkit, m, KASA_ACTION_SWITCH, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = device_toggle(d, on_toggle_done, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                return bus_set_device_error(error, d, r, 0);
        }
        return 1;
}

static int method_rename(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        const char *alias;
        int r;

        r = sd_bus_message_read(m, "s", &alias);
        if (r < 0)
                return r;
        r = polkit_check(d->manager->polkit, m, KASA_ACTION_MANAGE_DEVICES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = device_rename(d, alias, on_command_done, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                if (r == -EINVAL)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Invalid alias '%s': must be 1 to 31 bytes of UTF-8.", alias);
                return bus_set_device_error(error, d, r, 0);
        }
        return 1;
}

static int property_get_countdown(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        return sd_bus_message_append(reply, "(st)", d->countdown_timer ? device_action_to_string(d->countdown_action) : "",
                                     d->countdown_timer ? d->countdown_realtime_usec : UINT64_C(0));
}

static int method_start_countdown(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        const char *action;
        uint32_t seconds;
        DeviceAction a;
        int r;

        r = sd_bus_message_read(m, "su", &action, &seconds);
        if (r < 0)
                return r;
        a = device_action_from_string(action);
        if (a < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid action '%s': expected on, off or toggle.", action);
        if (seconds < 1 || seconds > DEVICE_COUNTDOWN_MAX_SEC)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid countdown of %" PRIu32 " seconds: must be 1 to %d.", seconds,
                                         DEVICE_COUNTDOWN_MAX_SEC);
        r = polkit_check(d->manager->polkit, m, KASA_ACTION_SWITCH, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = device_start_countdown(d, a, seconds);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to start the countdown of %s: %s", d->id,
                                               strerror(-r));
        return sd_bus_reply_method_return(m, NULL);
}

static int method_cancel_countdown(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        int r;

        r = polkit_check(d->manager->polkit, m, KASA_ACTION_SWITCH, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (!device_cancel_countdown(d))
                return sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "No countdown is running on %s.", d->id);
        return sd_bus_reply_method_return(m, NULL);
}

static int method_describe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *json = device_describe(userdata);

        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", json);
}

const sd_bus_vtable bus_device_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get_string, offsetof(Device, id), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Alias", "s", property_get_string, offsetof(Device, alias), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Model", "s", property_get_string, offsetof(Device, model), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Address", "s", property_get_string, offsetof(Device, address), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Mac", "s", property_get_string, offsetof(Device, mac), SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("HardwareVersion", "s", property_get_string, offsetof(Device, hw_ver), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("FirmwareVersion", "s", property_get_string, offsetof(Device, sw_ver), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("On", "b", property_get_bool, offsetof(Device, on), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Online", "b", property_get_bool, offsetof(Device, online), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LastSeen", "t", NULL, offsetof(Device, last_seen_usec), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Parent", "o", property_get_parent, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Rssi", "i", NULL, offsetof(Device, rssi), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Countdown", "(st)", property_get_countdown, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Protocol", "s", property_get_string, offsetof(Device, protocol), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AuthState", "s", property_get_auth, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AuthMessage", "s", bus_property_get_string_ptr, offsetof(Device, auth_message), SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("SetOn", SD_BUS_ARGS("b", on), SD_BUS_NO_RESULT, method_set_on,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Toggle", SD_BUS_NO_ARGS, SD_BUS_RESULT("b", on), method_toggle,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Rename", SD_BUS_ARGS("s", alias), SD_BUS_NO_RESULT, method_rename,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("StartCountdown", SD_BUS_ARGS("s", action, "u", seconds), SD_BUS_NO_RESULT,
                                method_start_countdown, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelCountdown", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel_countdown,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Describe", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_describe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* PropertiesChanged built from the vtable's own getters (or offsets, as
 * sd-bus reads them). sd_bus_emit_properties_changed_strv() first looks up
 * the path, its fallback vtables, the object and each property by name,
 * which for one poll's two signals cost more than parsing the reply. */
static int emit_properties(sd_bus *bus, Device *d, const char *iface, const sd_bus_vtable *const *props) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_signal(bus, &msg, d->path, "org.freedesktop.DBus.Properties", "PropertiesChanged");
        /* append_basic(), not append(): no format string to walk. */
        if (r >= 0)
                r = sd_bus_message_append_basic(msg, 's', iface);
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "{sv}");
        for (const sd_bus_vtable *const *p = props; r >= 0 && *p; p++) {
                const sd_bus_vtable *v = *p;
                const char *name = v->x.property.member, *sig = v->x.property.signature;
                void *field = (uint8_t *) d + v->x.property.offset;

                r = sd_bus_message_open_container(msg, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append_basic(msg, 's', name);
                if (r >= 0)
                        r = sd_bus_message_open_container(msg, 'v', sig);
                if (r >= 0 && v->x.property.get)
                        r = v->x.property.get(bus, d->path, iface, name, msg, field, &error);
                else if (r >= 0)
                        r = sd_bus_message_append_basic(msg, sig[0],
                                                        strchr("sog", sig[0]) ? *(const char **) field : field);
                if (r >= 0)
                        r = sd_bus_message_close_container(msg);
                if (r >= 0)
                        r = sd_bus_message_close_container(msg);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r >= 0)
                r = sd_bus_message_open_container(msg, 'a', "s");
        if (r >= 0)
                r = sd_bus_message_close_container(msg);
        if (r < 0)
                return r;
        return sd_bus_send(bus, msg, NULL);
}

static const sd_bus_vtable *vtable_property(const sd_bus_vtable *v, const char *name) {
        while (v->type != _SD_BUS_VTABLE_PROPERTY || strcmp(v->x.property.member, name) != 0) {
                assert(v->type != _SD_BUS_VTABLE_END);
                v++;
        }
        return v;
}

void bus_device_emit_changed(Manager *m, Device *d) {
        enum { DEVICE, METER };
        static const struct {
                unsigned mask;
                unsigned iface;
                const char *names[3];
        } map[] = {
                { DEVICE_CHANGED_ALIAS, DEVICE, { "Alias" } },
                { DEVICE_CHANGED_MODEL, DEVICE, { "Model" } },
                { DEVICE_CHANGED_ADDRESS, DEVICE, { "Address" } },
                { DEVICE_CHANGED_VERSIONS, DEVICE, { "HardwareVersion", "FirmwareVersion" } },
                { DEVICE_CHANGED_ON, DEVICE, { "On" } },
                { DEVICE_CHANGED_ONLINE, DEVICE, { "Online" } },
                { DEVICE_CHANGED_SEEN, DEVICE, { "LastSeen" } },
                { DEVICE_CHANGED_RSSI, DEVICE, { "Rssi" } },
                { DEVICE_CHANGED_COUNTDOWN, DEVICE, { "Countdown" } },
                { DEVICE_CHANGED_PROTOCOL, DEVICE, { "Protocol" } },
                { DEVICE_CHANGED_AUTH, DEVICE, { "AuthState", "AuthMessage" } },
                { DEVICE_CHANGED_READING, METER, { "Power", "Voltage", "Current" } },
                { DEVICE_CHANGED_ENERGY, METER, { "EnergyTotal", "EnergyToday" } },
        };
        static const char *const ifaces[] = { [DEVICE] = KASA_DEVICE_IFACE, [METER] = KASA_METER_IFACE };
        /* The names' vtable entries, looked up once: this runs for every
         * poll of every device, and the loop is the only thread emitting. */
        static const sd_bus_vtable *props[ELEMENTSOF(map)][ELEMENTSOF(map[0].names)];
        const sd_bus_vtable *list[ELEMENTSOF(ifaces)][ELEMENTSOF(map) * ELEMENTSOF(map[0].names) + 1];
        size_t n[ELEMENTSOF(ifaces)] = {};
        unsigned changes = d->changes;

        d->changes = 0;
        if (!m->bus || changes == 0)
                return;
        if (!props[0][0])
                for (size_t i = 0; i < ELEMENTSOF(map); i++)
                        for (size_t j = 0; j < ELEMENTSOF(map[i].names) && map[i].names[j]; j++)
                                props[i][j] = vtable_property(map[i].iface == METER ? bus_energy_vtable
                                                                                   : bus_device_vtable,
                                                              map[i].names[j]);
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                for (size_t j = 0; (changes & map[i].mask) && j < ELEMENTSOF(props[i]) && props[i][j]; j++)
                        list[map[i].iface][n[map[i].iface]++] = props[i][j];
        if (!device_has_meter(d))
                n[METER] = 0;
        for (size_t k = 0; k < ELEMENTSOF(ifaces); k++) {
                if (n[k] == 0)
                        continue;
                list[k][n[k]] = NULL;
                int r = emit_properties(m->bus, d, ifaces[k], list[k]);
                if (r < 0)
                        log_debug_errno(r, "Failed to emit PropertiesChanged for %s, ignoring: %m", d->id);
        }
}
