/* SPDX-License-Identifier: MIT */

#include "kasa-client.h"

#include <math.h>
#include <string.h>

#include "kasa-dbus.h"
#include "log.h"

/* tariffd's names: present once the daemon prices energy. */
#define PROP_COST_TODAY "CostToday"
#define PROP_COST_MONTH "CostMonth"

KasaDevice *kasa_device_new(const char *path) {
        KasaDevice *d = g_new0(KasaDevice, 1);
        const char *slash = strrchr(path, '/');

        d->path = g_strdup(path);
        d->id = g_strdup(slash ? slash + 1 : path);
        d->alias = g_strdup("");
        d->model = g_strdup("");
        d->address = g_strdup("");
        d->mac = g_strdup("");
        d->hw_ver = g_strdup("");
        d->sw_ver = g_strdup("");
        d->power = d->voltage = d->current = NAN;
        d->cost_today = d->cost_month = NAN;
        return d;
}

void kasa_device_free(KasaDevice *d) {
        if (!d)
                return;
        g_free(d->path);
        g_free(d->id);
        g_free(d->alias);
        g_free(d->model);
        g_free(d->address);
        g_free(d->mac);
        g_free(d->hw_ver);
        g_free(d->sw_ver);
        g_free(d->parent);
        g_free(d);
}

char *kasa_device_path(const char *id) {
        return g_strconcat(KASA_DEVICE_PREFIX "/", id, NULL);
}

static bool set_str(char **field, GVariant *v) {
        const char *s;

        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_STRING) && !g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH))
                return false;
        s = g_variant_get_string(v, NULL);
        if (*field && strcmp(*field, s) == 0)
                return false;
        g_free(*field);
        *field = g_strdup(s);
        return true;
}

static bool set_bool(bool *field, GVariant *v) {
        bool b;

        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
                return false;
        b = g_variant_get_boolean(v);
        if (*field == b)
                return false;
        *field = b;
        return true;
}

static bool set_double(double *field, GVariant *v) {
        double x;

        if (!g_variant_is_of_type(v, G_VARIANT_TYPE_DOUBLE))
                return false;
        x = g_variant_get_double(v);
        if (x == *field || (isnan(x) && isnan(*field)))
                return false;
        *field = x;
        return true;
}

static unsigned apply_device(KasaDevice *d, const char *name, GVariant *v) {
        if (strcmp(name, "On") == 0)
                return set_bool(&d->on, v) ? KASA_FIELD_ON : 0;
        if (strcmp(name, "Online") == 0)
                return set_bool(&d->online, v) ? KASA_FIELD_ONLINE : 0;
        if (strcmp(name, "Alias") == 0)
                return set_str(&d->alias, v) ? KASA_FIELD_OTHER : 0;
        if (strcmp(name, "Model") == 0)
                return set_str(&d->model, v) ? KASA_FIELD_OTHER : 0;
        if (strcmp(name, "Address") == 0)
                return set_str(&d->address, v) ? KASA_FIELD_OTHER : 0;
        if (strcmp(name, "Mac") == 0)
                return set_str(&d->mac, v) ? KASA_FIELD_OTHER : 0;
        if (strcmp(name, "HardwareVersion") == 0)
                return set_str(&d->hw_ver, v) ? KASA_FIELD_OTHER : 0;
        if (strcmp(name, "FirmwareVersion") == 0)
                return set_str(&d->sw_ver, v) ? KASA_FIELD_OTHER : 0;
        if (strcmp(name, "Id") == 0)
                return set_str(&d->id, v) ? KASA_FIELD_OTHER : 0;
        if (strcmp(name, "LastSeen") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64)) {
                d->last_seen = g_variant_get_uint64(v);
                return KASA_FIELD_OTHER;
        }
        if (strcmp(name, "Rssi") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_INT32)) {
                d->rssi = g_variant_get_int32(v);
                return KASA_FIELD_OTHER;
        }
        if (strcmp(name, "Countdown") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE("(st)"))) {
                const char *action;

                g_variant_get(v, "(&st)", &action, &d->countdown_at);
                g_strlcpy(d->countdown_action, action, sizeof d->countdown_action);
                return KASA_FIELD_OTHER;
        }
        if (strcmp(name, "Parent") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH)) {
                const char *p = g_variant_get_string(v, NULL);
                g_free(d->parent);
                d->parent = strcmp(p, "/") == 0 ? NULL : g_strdup(p);
                return KASA_FIELD_OTHER;
        }
        return 0;
}

static unsigned apply_meter(KasaDevice *d, const char *name, GVariant *v) {
        if (strcmp(name, "Power") == 0)
                return set_double(&d->power, v) ? KASA_FIELD_READINGS : 0;
        if (strcmp(name, "Voltage") == 0)
                return set_double(&d->voltage, v) ? KASA_FIELD_READINGS : 0;
        if (strcmp(name, "Current") == 0)
                return set_double(&d->current, v) ? KASA_FIELD_READINGS : 0;
        if (strcmp(name, "EnergyTotal") == 0)
                return set_double(&d->energy_total, v) ? KASA_FIELD_ENERGY : 0;
        if (strcmp(name, "EnergyToday") == 0)
                return set_double(&d->energy_today, v) ? KASA_FIELD_ENERGY : 0;
        if (strcmp(name, PROP_COST_TODAY) == 0)
                return set_double(&d->cost_today, v) ? KASA_FIELD_COST : 0;
        if (strcmp(name, PROP_COST_MONTH) == 0)
                return set_double(&d->cost_month, v) ? KASA_FIELD_COST : 0;
        return 0;
}

unsigned kasa_device_apply(KasaDevice *d, const char *iface, GVariant *props) {
        GVariantIter it;
        const char *name;
        GVariant *v;
        unsigned fields = 0;
        bool meter = strcmp(iface, KASA_METER_IFACE) == 0;

        if (!meter && strcmp(iface, KASA_DEVICE_IFACE) != 0)
                return 0;
        if (meter)
                d->metered = true;
        g_variant_iter_init(&it, props);
        while (g_variant_iter_next(&it, "{&sv}", &name, &v)) {
                fields |= meter ? apply_meter(d, name, v) : apply_device(d, name, v);
                g_variant_unref(v);
        }
        return fields;
}

static void emit(KasaClient *c, KasaEvent e, const KasaDevice *d, unsigned fields) {
        for (size_t i = 0; i < c->n_listeners; i++)
                c->listeners[i](e, d, fields, c->listener_data[i]);
}

void kasa_client_listen(KasaClient *c, KasaListener l, void *userdata) {
        g_assert(c->n_listeners < G_N_ELEMENTS(c->listeners));
        c->listeners[c->n_listeners] = l;
        c->listener_data[c->n_listeners++] = userdata;
}

static void apply_manager(KasaClient *c, GVariant *props) {
        GVariantIter it;
        const char *name;
        GVariant *v;

        g_variant_iter_init(&it, props);
        while (g_variant_iter_next(&it, "{&sv}", &name, &v)) {
                if (strcmp(name, "Version") == 0)
                        set_str(&c->version, v);
                else if (strcmp(name, "TotalPower") == 0)
                        set_double(&c->total_power, v);
                else if (strcmp(name, "Currency") == 0)
                        set_str(&c->currency, v);
                else if (strcmp(name, PROP_COST_TODAY) == 0)
                        set_double(&c->cost_today, v);
                else if (strcmp(name, PROP_COST_MONTH) == 0)
                        set_double(&c->cost_month, v);
                g_variant_unref(v);
        }
}

static bool is_device_path(const char *path) {
        return g_str_has_prefix(path, KASA_DEVICE_PREFIX "/") && !strchr(path + strlen(KASA_DEVICE_PREFIX "/"), '/');
}

/* Adds or updates a device from a{sa{sv}}; returns the device if it is new. */
static KasaDevice *add_interfaces(KasaClient *c, const char *path, GVariant *ifaces, bool *added) {
        KasaDevice *d = g_hash_table_lookup(c->devices, path);
        GVariantIter it;
        const char *iface;
        GVariant *props;

        *added = false;
        if (!d) {
                d = kasa_device_new(path);
                g_hash_table_insert(c->devices, d->path, d);
                *added = true;
        }
        g_variant_iter_init(&it, ifaces);
        while (g_variant_iter_next(&it, "{&s@a{sv}}", &iface, &props)) {
                kasa_device_apply(d, iface, props);
                g_variant_unref(props);
        }
        return d;
}

static void reset(KasaClient *c) {
        g_hash_table_remove_all(c->devices);
        c->total_power = 0;
        c->cost_today = c->cost_month = NAN;
        g_free(c->currency);
        c->currency = g_strdup("");
}

static void got_objects(GObject *source, GAsyncResult *res, gpointer userdata) {
        KasaClient *c = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL, objects = NULL;
        GVariantIter it;
        GHashTable *alerts;
        const char *path;
        GVariant *ifaces;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        if (!reply) {
                if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        return;
                log_error("Failed to read kasamond's objects: %s", error->message);
                g_clear_object(&c->cancel);
                return;
        }
        g_clear_object(&c->cancel);
        /* Signals that came before the reply described older states: the
         * reply replaces them. */
        reset(c);
        alerts = kasa_alerts_table_new();
        objects = g_variant_get_child_value(reply, 0);
        g_variant_iter_init(&it, objects);
        while (g_variant_iter_next(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
                bool added;

                if (strcmp(path, KASA_MANAGER_PATH) == 0) {
                        g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, KASA_MANAGER_IFACE, NULL);
                        if (props)
                                apply_manager(c, props);
                } else if (is_device_path(path))
                        add_interfaces(c, path, ifaces, &added);
                else if (kasa_alert_path_valid(path)) {
                        g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, KASA_ALERT_IFACE, NULL);
                        if (props) {
                                KasaAlert *a = kasa_alert_new(path);
                                kasa_alert_apply(a, props);
                                g_hash_table_insert(alerts, a->path, a);
                        }
                }
                g_variant_unref(ifaces);
        }
        c->up = true;
        log_info("kasamond %s is on the bus with %u devices and %u open alerts.", c->version ?: "?",
                 g_hash_table_size(c->devices), g_hash_table_size(alerts));
        /* The alerts first: the listeners of UP read them. */
        kasa_alerts_replace(c, alerts);
        emit(c, KASA_EVENT_UP, NULL, 0);
}

static void read_manager(GObject *source, GAsyncResult *res, gpointer userdata) {
        KasaClient *c = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL, props = NULL;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        if (!reply) {
                if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
                        log_warning("Failed to read the manager's properties, ignoring: %s", error->message);
                return;
        }
        props = g_variant_get_child_value(reply, 0);
        apply_manager(c, props);
}

static void name_appeared(GDBusConnection *bus, const char *name, const char *owner, gpointer userdata) {
        KasaClient *c = userdata;
        g_free(c->owner);
        c->owner = g_strdup(owner);

        if (c->cancel)
                g_cancellable_cancel(c->cancel);
        g_clear_object(&c->cancel);
        c->cancel = g_cancellable_new();
        /* GetManagedObjects carries the manager's properties only when the
         * daemon lists its own path; ask for them as well. */
        g_dbus_connection_call(bus, KASA_BUS_NAME, KASA_MANAGER_PATH, "org.freedesktop.DBus.Properties", "GetAll",
                               g_variant_new("(s)", KASA_MANAGER_IFACE), G_VARIANT_TYPE("(a{sv})"),
                               G_DBUS_CALL_FLAGS_NO_AUTO_START, 10000, c->cancel, read_manager, c);
        g_dbus_connection_call(bus, KASA_BUS_NAME, KASA_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", NULL, G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
                               G_DBUS_CALL_FLAGS_NO_AUTO_START, 30000, c->cancel, got_objects, c);
}

static void name_vanished(GDBusConnection *bus, const char *name, gpointer userdata) {
        KasaClient *c = userdata;
        bool was_up = c->up;

        if (c->cancel)
                g_cancellable_cancel(c->cancel);
        g_clear_object(&c->cancel);
        c->up = false;
        g_clear_pointer(&c->owner, g_free);
        reset(c);
        if (was_up) {
                kasa_alerts_down(c);
                log_warning("kasamond left the bus.");
                emit(c, KASA_EVENT_DOWN, NULL, 0);
        }
}

static void on_properties(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                          const char *member, GVariant *params, gpointer userdata) {
        KasaClient *c = userdata;
        const char *changed_iface;
        g_autoptr(GVariant) changed = NULL;
        KasaDevice *d;
        unsigned fields;

        if (!c->up || !g_variant_is_of_type(params, G_VARIANT_TYPE("(sa{sv}as)")))
                return;
        g_variant_get(params, "(&s@a{sv}@as)", &changed_iface, &changed, NULL);
        if (strcmp(path, KASA_MANAGER_PATH) == 0) {
                if (strcmp(changed_iface, KASA_MANAGER_IFACE) == 0)
                        apply_manager(c, changed);
                return;
        }
        if (strcmp(changed_iface, KASA_ALERT_IFACE) == 0) {
                kasa_alerts_changed(c, path, changed);
                return;
        }
        d = g_hash_table_lookup(c->devices, path);
        if (!d)
                return;
        fields = kasa_device_apply(d, changed_iface, changed);
        if (fields)
                emit(c, KASA_EVENT_CHANGED, d, fields);
}

static void on_added(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                     const char *member, GVariant *params, gpointer userdata) {
        KasaClient *c = userdata;
        const char *obj;
        g_autoptr(GVariant) ifaces = NULL;
        KasaDevice *d;
        bool added;

        if (!c->up || !g_variant_is_of_type(params, G_VARIANT_TYPE("(oa{sa{sv}})")))
                return;
        g_variant_get(params, "(&o@a{sa{sv}})", &obj, &ifaces);
        if (kasa_alert_path_valid(obj)) {
                g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, KASA_ALERT_IFACE, NULL);
                if (props)
                        kasa_alerts_added(c, obj, props);
                return;
        }
        if (!is_device_path(obj))
                return;
        d = add_interfaces(c, obj, ifaces, &added);
        emit(c, added ? KASA_EVENT_ADDED : KASA_EVENT_CHANGED, d, added ? 0 : KASA_FIELD_OTHER);
}

static void on_removed(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                       const char *member, GVariant *params, gpointer userdata) {
        KasaClient *c = userdata;
        const char *obj;
        g_autoptr(GVariant) ifaces = NULL;
        KasaDevice *d;

        if (!c->up || !g_variant_is_of_type(params, G_VARIANT_TYPE("(oas)")))
                return;
        g_variant_get(params, "(&o@as)", &obj, &ifaces);
        if (kasa_alert_path_valid(obj)) {
                /* An alert has one interface: its going is the resolution. */
                kasa_alerts_removed(c, obj);
                return;
        }
        d = g_hash_table_lookup(c->devices, obj);
        if (!d)
                return;
        /* Only the Device interface going means the object is gone. */
        for (gsize i = 0; i < g_variant_n_children(ifaces); i++) {
                g_autoptr(GVariant) s = g_variant_get_child_value(ifaces, i);
                if (strcmp(g_variant_get_string(s, NULL), KASA_METER_IFACE) == 0)
                        d->metered = false;
                if (strcmp(g_variant_get_string(s, NULL), KASA_DEVICE_IFACE) == 0) {
                        emit(c, KASA_EVENT_REMOVED, d, 0);
                        g_hash_table_remove(c->devices, obj);
                        return;
                }
        }
}

int kasa_client_new(GDBusConnection *bus, KasaClient **ret) {
        KasaClient *c = g_new0(KasaClient, 1);

        c->bus = g_object_ref(bus);
        c->devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) kasa_device_free);
        c->alerts = kasa_alerts_table_new();
        c->currency = g_strdup("");
        c->cost_today = c->cost_month = NAN;
        /* Subscribed before the name is watched, so that nothing falls
         * between GetManagedObjects and the first signal. The sender is not
         * filtered by name: only kasamond owns paths below its manager. */
        c->sub_props = g_dbus_connection_signal_subscribe(bus, NULL, "org.freedesktop.DBus.Properties",
                                                          "PropertiesChanged", NULL, NULL,
                                                          G_DBUS_SIGNAL_FLAGS_NONE, on_properties, c, NULL);
        c->sub_added = g_dbus_connection_signal_subscribe(bus, NULL, "org.freedesktop.DBus.ObjectManager",
                                                          "InterfacesAdded", KASA_MANAGER_PATH, NULL,
                                                          G_DBUS_SIGNAL_FLAGS_NONE, on_added, c, NULL);
        c->sub_removed = g_dbus_connection_signal_subscribe(bus, NULL, "org.freedesktop.DBus.ObjectManager",
                                                            "InterfacesRemoved", KASA_MANAGER_PATH, NULL,
                                                            G_DBUS_SIGNAL_FLAGS_NONE, on_removed, c, NULL);
        c->watch_id = g_bus_watch_name_on_connection(bus, KASA_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                     name_appeared, name_vanished, c, NULL);
        *ret = c;
        return 0;
}

KasaClient *kasa_client_free(KasaClient *c) {
        if (!c)
                return NULL;
        if (c->cancel)
                g_cancellable_cancel(c->cancel);
        g_clear_object(&c->cancel);
        if (c->watch_id)
                g_bus_unwatch_name(c->watch_id);
        g_dbus_connection_signal_unsubscribe(c->bus, c->sub_props);
        g_dbus_connection_signal_unsubscribe(c->bus, c->sub_added);
        g_dbus_connection_signal_unsubscribe(c->bus, c->sub_removed);
        g_hash_table_destroy(c->devices);
        g_hash_table_destroy(c->alerts);
        if (c->alerts_before)
                g_hash_table_destroy(c->alerts_before);
        g_free(c->version);
        g_free(c->currency);
        g_free(c->owner);
        g_object_unref(c->bus);
        g_free(c);
        return NULL;
}

const KasaDevice *kasa_client_find(KasaClient *c, const char *id) {
        g_autofree char *path = kasa_device_path(id);

        return g_hash_table_lookup(c->devices, path);
}

static int compare_devices(gconstpointer a, gconstpointer b) {
        return strcmp((*(KasaDevice *const *) a)->id, (*(KasaDevice *const *) b)->id);
}

GPtrArray *kasa_client_sorted(KasaClient *c) {
        GPtrArray *a = g_ptr_array_sized_new(g_hash_table_size(c->devices));
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, c->devices);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(a, v);
        g_ptr_array_sort(a, compare_devices);
        return a;
}

static json_t *real_or_null(double x) {
        return isfinite(x) ? json_real(x) : json_null();
}

json_t *kasa_device_json(KasaClient *c, const KasaDevice *d) {
        const KasaDevice *parent = d->parent ? g_hash_table_lookup(c->devices, d->parent) : NULL;
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:I,s:o,s:i,s:b}",
                              "id", d->id, "path", d->path, "alias", d->alias, "model", d->model,
                              "address", d->address, "mac", d->mac, "hardware_version", d->hw_ver,
                              "firmware_version", d->sw_ver, "on", d->on, "online", d->online,
                              "last_seen", (json_int_t) d->last_seen,
                              "parent", parent ? json_string(parent->id) : json_null(),
                              "rssi", (int) d->rssi, "metered", d->metered);
        GHashTableIter it;
        gpointer v;

        if (!o)
                return NULL;
        /* As Describe() has it. */
        json_object_set_new(o, "countdown",
                            *d->countdown_action ? json_pack("{s:s,s:I}", "action", d->countdown_action, "at",
                                                             (json_int_t) d->countdown_at)
                                                 : json_null());
        if (!d->parent) {
                g_autoptr(GPtrArray) outlets = g_ptr_array_new();

                g_hash_table_iter_init(&it, c->devices);
                while (g_hash_table_iter_next(&it, NULL, &v))
                        if (((KasaDevice *) v)->parent && strcmp(((KasaDevice *) v)->parent, d->path) == 0)
                                g_ptr_array_add(outlets, v);
                if (outlets->len > 0) {
                        json_t *ids = json_array();

                        /* Outlet ids end in their two-digit index. */
                        g_ptr_array_sort(outlets, compare_devices);
                        for (guint i = 0; i < outlets->len; i++)
                                json_array_append_new(ids, json_string(((KasaDevice *) outlets->pdata[i])->id));
                        json_object_set_new(o, "outlets", ids);
                }
        }
        if (d->metered) {
                json_t *m = json_pack("{s:o,s:o,s:o,s:f,s:f}", "power", real_or_null(d->power), "voltage",
                                      real_or_null(d->voltage), "current", real_or_null(d->current),
                                      "energy_total", d->energy_total, "energy_today", d->energy_today);
                json_object_set_new(o, "meter", m);
        }
        return o;
}
