/* SPDX-License-Identifier: MIT */

/* What every verb of kasactl needs: devices read from the bus and found by
 * name, calls to kasamond with their errors in words a person can act on,
 * tables and JSON. */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>

#include "kasa-dbus.h"
#include "kasa-proto.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

/* ---- devices, as the bus shows them ---- */

static const DeviceProperty device_properties[] = {
        { "Id", 's', offsetof(Device, id), NULL },
        { "Alias", 's', offsetof(Device, alias), NULL },
        { "Model", 's', offsetof(Device, model), NULL },
        { "Address", 's', offsetof(Device, address), NULL },
        { "Mac", 's', offsetof(Device, mac), NULL },
        { "HardwareVersion", 's', offsetof(Device, hw_ver), NULL },
        { "FirmwareVersion", 's', offsetof(Device, fw_ver), NULL },
        { "Parent", 'o', offsetof(Device, parent), NULL },
        { "On", 'b', offsetof(Device, on), NULL },
        { "Online", 'b', offsetof(Device, online), NULL },
        { "LastSeen", 't', offsetof(Device, last_seen), NULL },
        { "Rssi", 'i', offsetof(Device, rssi), NULL },
        { "Protocol", 's', offsetof(Device, protocol), NULL },
        { "AuthState", 's', offsetof(Device, auth_state), NULL },
        { "AuthMessage", 's', offsetof(Device, auth_message), NULL },
        { "Power", 'd', offsetof(Device, power), "W" },
        { "Voltage", 'd', offsetof(Device, voltage), "V" },
        { "Current", 'd', offsetof(Device, current), "A" },
        { "EnergyTotal", 'd', offsetof(Device, energy_total), "Wh" },
        { "EnergyToday", 'd', offsetof(Device, energy_today), "Wh" },
};

static void device_init(Device *d) {
        *d = (Device) DEVICE_NULL;
}

void device_done(Device *d) {
        free(d->path);
        for (size_t i = 0; i < ELEMENTSOF(device_properties); i++)
                if (device_properties[i].type == 's' || device_properties[i].type == 'o')
                        free(*(char **) ((uint8_t *) d + device_properties[i].offset));
        device_init(d);
}

void device_list_done(DeviceList *l) {
        for (size_t i = 0; i < l->n; i++)
                device_done(&l->devices[i]);
        free(l->devices);
        *l = (DeviceList) {};
}

const char *device_name(const Device *d) {
        return d->alias && *d->alias ? d->alias : d->id;
}

bool device_reading_known(const Device *d, double v) {
        return d->metered && d->online && !isnan(v);
}

static const DeviceProperty *device_property_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(device_properties); i++)
                if (streq(device_properties[i].name, name))
                        return &device_properties[i];
        return NULL;
}

/* Reads the variant at the message's position into the field it belongs to;
 * properties this client does not know (a newer daemon) are skipped, and
 * *ret is then NULL. */
int device_read_property(Device *d, const char *name, sd_bus_message *m, const DeviceProperty **ret) {
        const DeviceProperty *p = device_property_find(name);
        const char sig[2] = { p ? p->type : 0, 0 };
        void *field;
        int r;

        r = p ? sd_bus_message_enter_container(m, 'v', sig) : 0;
        if (r == -ENXIO)
                r = 0; /* a type we do not expect: treat like an unknown property */
        if (r <= 0) {
                if (ret)
                        *ret = NULL;
                return r < 0 ? r : sd_bus_message_skip(m, "v");
        }
        field = (uint8_t *) d + p->offset;
        switch (p->type) {
        case 's':
        case 'o': {
                const char *s;
                char *copy;

                r = sd_bus_message_read_basic(m, p->type, &s);
                if (r < 0)
                        return r;
                copy = strdup(s);
                if (!copy)
                        return -ENOMEM;
                free(*(char **) field);
                *(char **) field = copy;
                break;
        }
        case 'b': {
                int b;

                r = sd_bus_message_read_basic(m, 'b', &b);
                *(bool *) field = b;
                break;
        }
        default: /* 't', 'i', 'd': the field has the wire type */
                r = sd_bus_message_read_basic(m, p->type, field);
        }
        if (r < 0)
                return r;
        if (ret)
                *ret = p;
        return sd_bus_message_exit_container(m);
}

static int device_read_properties(Device *d, sd_bus_message *m) {
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                r = device_read_property(d, name, m, NULL);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

int device_read_interfaces(Device *d, sd_bus_message *m) {
        bool is_device = false;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                const char *iface;

                r = sd_bus_message_read(m, "s", &iface);
                if (r < 0)
                        break;
                if (streq(iface, KASA_DEVICE_IFACE) || streq(iface, KASA_METER_IFACE)) {
                        is_device = true;
                        d->metered = d->metered || streq(iface, KASA_METER_IFACE);
                        r = device_read_properties(d, m);
                } else
                        r = sd_bus_message_skip(m, "a{sv}");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (!is_device || !d->id)
                return 0;
        if (!d->parent && !(d->parent = strdup("/")))
                return -ENOMEM;
        return 1;
}

static int compare_devices(const void *a, const void *b) {
        const Device *x = a, *y = b;
        return strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

Device *device_list_by_path(DeviceList *l, const char *path) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->devices[i].path, path))
                        return &l->devices[i];
        return NULL;
}

int device_list_insert(DeviceList *l, Device *d) {
        Device *n = reallocarray(l->devices, l->n + 1, sizeof(Device));
        size_t i = l->n;

        if (!n)
                return -ENOMEM;
        l->devices = n;
        while (i > 0 && compare_devices(&l->devices[i - 1], d) > 0)
                i--;
        memmove(&l->devices[i + 1], &l->devices[i], (l->n - i) * sizeof(Device));
        l->devices[i] = *d;
        l->n++;
        device_init(d);
        return 0;
}

void device_list_remove(DeviceList *l, const char *path) {
        Device *d = device_list_by_path(l, path);

        if (!d)
                return;
        device_done(d);
        memmove(d, d + 1, (size_t) (&l->devices[l->n] - (d + 1)) * sizeof(Device));
        l->n--;
}

const char *parent_id(const DeviceList *l, const Device *d) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->devices[i].path, d->parent))
                        return l->devices[i].id;
        return NULL;
}

const char *json_str(const json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key)) ?: "";
}

uint64_t json_u64(const json_t *o, const char *key) {
        json_int_t v = json_integer_value(json_object_get(o, key));
        return v > 0 ? (uint64_t) v : 0;
}

int get_managed_objects(sd_bus *bus, const char *what, sd_bus_message **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, KASA_BUS_NAME, KASA_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", &error, ret, NULL);
        if (r < 0)
                return log_call_error(&error, r, what, NULL, NULL);
        return sd_bus_message_enter_container(*ret, 'a', "{oa{sa{sv}}}");
}

int fetch_devices(sd_bus *bus, DeviceList *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        int r;

        r = get_managed_objects(bus, "list devices", &reply);
        if (r < 0 && !reply)
                return r;
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                _cleanup_(device_done) Device d = DEVICE_NULL;
                const char *path;

                r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = device_read_interfaces(&d, reply);
                if (r > 0) {
                        d.path = strdup(path);
                        if (!d.path || device_list_insert(&l, &d) < 0)
                                return log_oom();
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the device list: %m");

        *ret = l;
        l = (DeviceList) {};
        return 0;
}

int fetch_device(sd_bus *bus, const char *name, DeviceList *ret_list, Device **ret) {
        int r;

        r = fetch_devices(bus, ret_list);
        if (r < 0)
                return r;
        return resolve_device(ret_list, name, ret);
}

/* "192.168.1.20" and "192.168.1.20:9999" are the same device: the daemon
 * leaves the default port out of Address. */
static bool address_equal(const char *a, const char *b) {
        size_t la = strcspn(a, ":"), lb = strcspn(b, ":");
        unsigned long pa = KASA_PORT, pb = KASA_PORT;
        char *end;

        if (la != lb || strncmp(a, b, la) != 0)
                return false;
        if (a[la]) {
                pa = strtoul(a + la + 1, &end, 10);
                if (*end || end == a + la + 1)
                        return false;
        }
        if (b[lb]) {
                pb = strtoul(b + lb + 1, &end, 10);
                if (*end || end == b + lb + 1)
                        return false;
        }
        return pa == pb;
}

Device *device_list_by_address(DeviceList *l, const char *address) {
        /* An outlet shares its strip's address; the address names the strip. */
        for (size_t i = 0; i < l->n; i++) {
                Device *d = &l->devices[i];

                if (streq(d->parent, "/") && d->address && address_equal(d->address, address))
                        return d;
        }
        return NULL;
}

/* DEV is an id, an address (with or without the port) or an alias; an alias
 * may be abbreviated to a unique prefix. Case does not matter. An exact
 * match wins over prefixes, so "Plug" finds "Plug" even when "Plug 2"
 * exists. */
int resolve_device(DeviceList *l, const char *name, Device **ret) {
        _cleanup_free_ Device **hits = calloc(l->n + 1, sizeof(Device *));
        size_t n = 0, len = strlen(name);

        if (!hits)
                return log_oom();
        for (size_t i = 0; i < l->n; i++)
                if (strcasecmp(l->devices[i].id, name) == 0 || streq(l->devices[i].path, name)) {
                        *ret = &l->devices[i];
                        return 0;
                }
        *ret = device_list_by_address(l, name);
        if (*ret)
                return 0;
        for (size_t i = 0; i < l->n; i++)
                if (strcasecmp(device_name(&l->devices[i]), name) == 0)
                        hits[n++] = &l->devices[i];
        if (n == 0)
                for (size_t i = 0; i < l->n; i++)
                        if (strncasecmp(device_name(&l->devices[i]), name, len) == 0)
                                hits[n++] = &l->devices[i];
        if (n == 1) {
                *ret = hits[0];
                return 0;
        }
        if (n == 0) {
                log_error("No device is called '%s'. \"kasactl list\" shows every device with its id, name "
                          "and address.",
                          name);
                return -ENXIO;
        }
        log_error("'%s' is ambiguous; it matches %zu devices:", name, n);
        for (size_t i = 0; i < n; i++)
                log_error("  %-16s %s", hits[i]->id, device_name(hits[i]));
        log_error("Use more of the name, or the id.");
        return -ENOTUNIQ;
}

/* ---- talking to kasamond ---- */

/* Explains a failed call in words a person can act on; returns the negative
 * errno main() turns into the exit status. what: "switch Desk lamp on";
 * action: the polkit action that governs the call (NULL for reads); d: the
 * device the call was about, if any. */
int log_call_error(const sd_bus_error *e, int r, const char *what, const char *action, const Device *d) {
        char t[TIME_BUF_MAX];

        if (!sd_bus_error_is_set(e))
                return log_error_errno(r, "Failed to %s: %m", what);
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER)) {
                log_error("Failed to %s: kasamond is not running (nobody owns %s on the system bus).\n"
                          "Start it with \"systemctl start kasamond\", or try kasactl on simulated plugs "
                          "with tools/demo from the source tree.",
                          what, KASA_BUS_NAME);
                return -ESRCH;
        }
        if (sd_bus_error_has_names(e, SD_BUS_ERROR_ACCESS_DENIED, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED)) {
                bool interactive = sd_bus_error_has_name(e, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
                if (action)
                        log_error("Access denied: you may not %s (%s).\n"
                                  "The polkit action %s governs this: ask an administrator to grant it, "
                                  "or run kasactl as root.%s",
                                  what, e->message ?: e->name, action,
                                  !interactive ? "" :
                                  arg_no_ask_password ? " Without --no-ask-password, kasactl lets polkit ask for a password." :
                                  " polkit asks for a password only when kasactl runs on a terminal.");
                else
                        log_error("Access denied: you may not %s: %s", what, e->message ?: e->name);
                return -EACCES;
        }
        if (sd_bus_error_has_name(e, KASA_ERROR_OFFLINE)) {
                if (d && d->last_seen > 0)
                        log_error("Failed to %s: %s is offline; last seen %s (local time), at %s.", what,
                                  device_name(d), format_time(t, sizeof(t), d->last_seen, false), d->address);
                else if (d)
                        log_error("Failed to %s: %s is offline; it has not answered since kasamond started, at %s.",
                                  what, device_name(d), d->address);
                else
                        log_error("Failed to %s: %s", what, e->message ?: e->name);
                return -EHOSTDOWN;
        }
        log_error("Failed to %s: %s", what, e->message ?: e->name);
        if (sd_bus_error_has_name(e, KASA_ERROR_NOT_FOUND))
                return -ENXIO;
        if (sd_bus_error_has_name(e, SD_BUS_ERROR_INVALID_ARGS))
                return -EINVAL;
        return r < 0 ? r : -EIO;
}

int call_kasamond(sd_bus *bus, sd_bus_message *m, const char *action, const Device *d, sd_bus_message **ret_reply,
                  const char *what_fmt, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_free_ char *what = NULL;
        va_list ap;
        int r, k;

        r = sd_bus_call(bus, m, 0, &error, ret_reply);
        if (r >= 0)
                return r;
        va_start(ap, what_fmt);
        k = vasprintf(&what, what_fmt, ap);
        va_end(ap);
        if (k < 0)
                return log_oom();
        return log_call_error(&error, r, what, action, d);
}

/* A method call to kasamond. Calls that change something may let polkit
 * ask the person for a password, unless --no-ask-password. */
int new_call(sd_bus *bus, const char *path, const char *iface, const char *member, bool mutating,
             sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, KASA_BUS_NAME, path, iface, member);
        if (r < 0)
                return r;
        r = sd_bus_message_set_allow_interactive_authorization(m, mutating && arg_ask_password);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(m);
        return 0;
}

int get_total_power(sd_bus *bus, double *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_trivial(bus, KASA_BUS_NAME, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "TotalPower",
                                        &error, 'd', ret);
        if (r < 0)
                return log_call_error(&error, r, "read the total power", NULL, NULL);
        return 0;
}

static int describe(sd_bus *bus, const char *path, const char *iface, const Device *d, json_t **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_error_t e;
        const char *s;
        json_t *o;
        int r;

        r = sd_bus_call_method(bus, KASA_BUS_NAME, path, iface, "Describe", &error, &reply, NULL);
        if (r < 0)
                return log_call_error(&error, r, d ? "describe the device" : "describe kasamond's state", NULL,
                                      d);
        r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply to Describe(): %m");
        o = json_loads(s, JSON_DECODE_ANY, &e);
        if (!o)
                return log_error_errno(EBADMSG, "kasamond's Describe() is not JSON: %s", e.text);
        *ret = o;
        return 0;
}

int describe_manager(sd_bus *bus, json_t **ret) {
        return describe(bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, NULL, ret);
}

int describe_device(sd_bus *bus, const Device *d, json_t **ret) {
        return describe(bus, d->path, KASA_DEVICE_IFACE, d, ret);
}

/* ---- output ---- */

int json_print(json_t *o) {
        size_t flags = JSON_REAL_PRECISION(12) | (arg_json == JSON_PRETTY ? JSON_INDENT(2) : JSON_COMPACT);

        if (!o)
                return log_oom();
        if (json_dumpf(o, stdout, flags) < 0)
                return log_error_errno(EIO, "Failed to write JSON.");
        fputc('\n', stdout);
        return 0;
}

/* Readings as a person reads them: at most three decimals, so JSON does not
 * show binary noise like 12.300000000000001. */
json_t *json_reading(double v) {
        return isnan(v) ? json_null() : json_real(round(v * 1000.0) / 1000.0);
}

json_t *json_time(uint64_t t) {
        char buf[TIME_BUF_MAX];
        return t > 0 ? json_string(format_time(buf, sizeof(buf), t, true)) : json_null();
}

const char *format_energy(char *buf, size_t size, double wh, bool kwh) {
        if (kwh)
                snprintf(buf, size, "%.3f kWh", wh / 1000);
        else
                snprintf(buf, size, "%.1f Wh", wh);
        return buf;
}

struct libscols_table *table_new(const Column *cols, size_t n, FILE *f) {
        struct libscols_table *tb = scols_new_table();

        if (!tb)
                return NULL;
        scols_table_enable_noheadings(tb, !arg_legend);
        scols_table_enable_colors(tb, arg_colors);
        scols_table_set_stream(tb, f);
        for (size_t i = 0; i < n; i++)
                if (!scols_table_new_column(tb, cols[i].header, 0, cols[i].flags)) {
                        scols_unref_table(tb);
                        return NULL;
                }
        return tb;
}

int table_print(struct libscols_table *tb) {
        int r = scols_print_table(tb);
        if (r < 0)
                return log_error_errno(r, "Failed to print the table: %m");
        return 0;
}

int cell(struct libscols_line *ln, size_t i, const char *color, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = scols_line_refer_data(ln, i, s);
        if (r < 0) {
                free(s);
                return r;
        }
        if (color)
                scols_cell_set_color(scols_line_get_cell(ln, i), color);
        return 0;
}

/* An outlet hangs below its strip, which sorts right before its outlets, so
 * "Outlet 1" of two strips can be told apart. */
struct libscols_line *table_new_device_line(struct libscols_table *tb, const DeviceList *l, size_t i) {
        struct libscols_line *parent = NULL;

        for (size_t j = i; j > 0 && !streq(l->devices[i].parent, "/"); j--)
                if (streq(l->devices[j - 1].path, l->devices[i].parent)) {
                        parent = scols_table_get_line(tb, j - 1);
                        break;
                }
        return scols_table_new_line(tb, parent);
}

int cell_state(struct libscols_line *ln, size_t i, const Device *d) {
        return cell(ln, i, d->on ? "green" : NULL, "%s", d->on ? "on" : "off");
}

int cell_online(struct libscols_line *ln, size_t i, const Device *d) {
        return cell(ln, i, d->online ? NULL : "red", "%s", d->online ? "yes" : "no");
}

int cell_power(struct libscols_line *ln, size_t i, const Device *d) {
        return device_reading_known(d, d->power) ? cell(ln, i, NULL, "%.1f W", d->power) : cell(ln, i, NULL, "-");
}
