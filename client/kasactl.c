/* SPDX-License-Identifier: MIT */

/* kasactl: the command line of kasamond. Every verb is one or two D-Bus
 * calls; what it prints is a table (libsmartcols) or, with --json, the same
 * rows as JSON objects whose field names are part of the interface. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <locale.h>
#include <libsmartcols.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "chart.h"
#include "kasa-dbus.h"
#include "log.h"
#include "macro.h"
#include "time-util.h"

/* Exit statuses, documented in kasactl(1). main() derives them from the
 * negative errno a verb returns. */
enum {
        EXIT_USAGE = 2,     /* -EINVAL, -ENOTUNIQ */
        EXIT_NOT_FOUND = 3, /* -ENXIO */
        EXIT_DENIED = 4,    /* -EACCES */
        EXIT_OFFLINE = 5,   /* -EHOSTDOWN */
};

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,
        JSON_PRETTY,
} JsonMode;

static JsonMode arg_json = JSON_OFF;
static bool arg_legend = true;
static bool arg_ask_password = true;
static bool arg_no_ask_password = false; /* given on the command line */
static bool arg_colors = false;
static double arg_timeout = 2.0;
static const char *arg_since = NULL;
static const char *arg_until = NULL;
static const char *arg_resolution = "minute";
static const char *arg_by = "day";

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libscols_table *, scols_unref_table);
DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose);

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

/* ---- devices, as the bus shows them ---- */

typedef struct Device {
        char *path;
        char *id;
        char *alias;
        char *model;
        char *address;
        char *mac;
        char *hw_ver;
        char *fw_ver;
        char *parent; /* object path, "/" for plugs and strips */
        bool on;
        bool online;
        bool metered;
        uint64_t last_seen;
        int32_t rssi;
        double power;
        double voltage;
        double current;
        double energy_total;
        double energy_today;
} Device;

typedef struct DeviceList {
        Device *devices;
        size_t n;
} DeviceList;

static const struct DeviceProperty {
        const char *name;
        char type;
        size_t offset;
        const char *unit; /* for 'd' */
} device_properties[] = {
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
        { "Power", 'd', offsetof(Device, power), "W" },
        { "Voltage", 'd', offsetof(Device, voltage), "V" },
        { "Current", 'd', offsetof(Device, current), "A" },
        { "EnergyTotal", 'd', offsetof(Device, energy_total), "Wh" },
        { "EnergyToday", 'd', offsetof(Device, energy_today), "Wh" },
};

static void device_done(Device *d) {
        free(d->path);
        for (size_t i = 0; i < ELEMENTSOF(device_properties); i++)
                if (device_properties[i].type == 's' || device_properties[i].type == 'o')
                        free(*(char **) ((uint8_t *) d + device_properties[i].offset));
}

static void device_list_done(DeviceList *l) {
        for (size_t i = 0; i < l->n; i++)
                device_done(&l->devices[i]);
        free(l->devices);
        *l = (DeviceList) {};
}

static const char *device_name(const Device *d) {
        return d->alias && *d->alias ? d->alias : d->id;
}

static const struct DeviceProperty *device_property_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(device_properties); i++)
                if (streq(device_properties[i].name, name))
                        return &device_properties[i];
        return NULL;
}

/* Reads the variant at the message's position into the field it belongs to;
 * properties this client does not know (a newer daemon) are skipped. Returns
 * the property or NULL if skipped. */
static int device_read_property(Device *d, const char *name, sd_bus_message *m,
                                const struct DeviceProperty **ret) {
        const struct DeviceProperty *p = device_property_find(name);
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

static int compare_devices(const void *a, const void *b) {
        const Device *x = a, *y = b;
        return strcmp(x->id ? x->id : "", y->id ? y->id : "");
}

static Device *device_list_by_path(DeviceList *l, const char *path) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->devices[i].path, path))
                        return &l->devices[i];
        return NULL;
}

/* ---- talking to kasamond ---- */

/* Explains a failed call in words a person can act on; returns the negative
 * errno main() turns into the exit status. what: "switch Desk lamp on";
 * action: the polkit action that governs the call (NULL for reads); d: the
 * device the call was about, if any. */
static int log_call_error(const sd_bus_error *e, int r, const char *what, const char *action, const Device *d) {
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

/* A method call to kasamond. Calls that change something may let polkit
 * ask the person for a password, unless --no-ask-password. */
static int new_call(sd_bus *bus, const char *path, const char *iface, const char *member, bool mutating,
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

static int fetch_devices(sd_bus *bus, DeviceList *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        int r;

        r = sd_bus_call_method(bus, KASA_BUS_NAME, KASA_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", &error, &reply, NULL);
        if (r < 0)
                return log_call_error(&error, r, "list devices", NULL, NULL);

        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                _cleanup_(device_done) Device d = {};
                const char *path;
                bool is_device = false;

                r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}");
                while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *iface;

                        r = sd_bus_message_read(reply, "s", &iface);
                        if (r < 0)
                                break;
                        if (streq(iface, KASA_DEVICE_IFACE) || streq(iface, KASA_METER_IFACE)) {
                                is_device = true;
                                d.metered = d.metered || streq(iface, KASA_METER_IFACE);
                                r = device_read_properties(&d, reply);
                        } else
                                r = sd_bus_message_skip(reply, "a{sv}");
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply); /* a{sa{sv}} */
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply); /* {oa{...}} */
                if (r < 0 || !is_device || !d.id)
                        continue;
                if (!d.parent && !(d.parent = strdup("/")))
                        return log_oom();

                Device *n = reallocarray(l.devices, l.n + 1, sizeof(Device));
                if (!n)
                        return log_oom();
                l.devices = n;
                d.path = strdup(path);
                if (!d.path)
                        return log_oom();
                l.devices[l.n++] = d;
                d = (Device) {};
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the device list: %m");

        qsort(l.devices, l.n, sizeof(Device), compare_devices);
        *ret = l;
        l = (DeviceList) {};
        return 0;
}

/* DEV is an id, an address or an alias; an alias may be abbreviated to a
 * unique prefix. Case does not matter. An exact match wins over prefixes, so
 * "Plug" finds "Plug" even when "Plug 2" exists. */
static int resolve_device(DeviceList *l, const char *name, Device **ret) {
        _cleanup_free_ Device **hits = calloc(l->n + 1, sizeof(Device *));
        size_t n = 0, len = strlen(name);

        if (!hits)
                return log_oom();
        for (size_t i = 0; i < l->n; i++)
                if (strcasecmp(l->devices[i].id, name) == 0 || streq(l->devices[i].path, name)) {
                        *ret = &l->devices[i];
                        return 0;
                }
        /* An outlet shares its strip's address; the address names the strip. */
        for (size_t i = 0; i < l->n; i++) {
                Device *d = &l->devices[i];
                const char *a = d->address ? d->address : "";

                if (streq(d->parent, "/") &&
                    (streq(a, name) || (strncmp(a, name, len) == 0 && a[len] == ':'))) {
                        *ret = d;
                        return 0;
                }
        }
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

/* ---- output ---- */

static int json_print(json_t *o) {
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
static json_t *json_reading(double v) {
        return json_real(round(v * 1000.0) / 1000.0);
}

static json_t *json_time(uint64_t t) {
        char buf[TIME_BUF_MAX];
        return t > 0 ? json_string(format_time(buf, sizeof(buf), t, true)) : json_null();
}

static const char *format_energy(char *buf, size_t size, double wh) {
        if (fabs(wh) >= 1000)
                snprintf(buf, size, "%.3f kWh", wh / 1000);
        else
                snprintf(buf, size, "%.1f Wh", wh);
        return buf;
}

static const char *parent_id(const DeviceList *l, const Device *d) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->devices[i].path, d->parent))
                        return l->devices[i].id;
        return NULL;
}

/* The device object of list, show, discover and add (see kasactl(1)). */
static json_t *device_json(const DeviceList *l, const Device *d) {
        const char *parent = parent_id(l, d);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:b,s:b,s:o,s:i,s:b}", "id", d->id, "path",
                              d->path, "alias", d->alias ? d->alias : "", "model", d->model ? d->model : "",
                              "address", d->address ? d->address : "", "mac", d->mac ? d->mac : "",
                              "hardware_version", d->hw_ver ? d->hw_ver : "", "firmware_version",
                              d->fw_ver ? d->fw_ver : "", "parent", parent ? json_string(parent) : json_null(),
                              "on", d->on, "online", d->online, "last_seen", json_time(d->last_seen), "rssi",
                              (int) d->rssi, "metered", d->metered);
        if (o && d->metered) {
                json_object_set_new(o, "power", json_reading(d->power));
                json_object_set_new(o, "voltage", json_reading(d->voltage));
                json_object_set_new(o, "current", json_reading(d->current));
                json_object_set_new(o, "energy_today", json_reading(d->energy_today));
                json_object_set_new(o, "energy_total", json_reading(d->energy_total));
        }
        return o;
}

typedef struct Column {
        const char *header;
        int flags; /* SCOLS_FL_* */
} Column;

static struct libscols_table *table_new(const Column *cols, size_t n, FILE *f) {
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

/* Sets cell i of the line, printf-style; color may be NULL. */
_printf_(4, 5) static int cell(struct libscols_line *ln, size_t i, const char *color, const char *fmt, ...) {
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

/* A line for device i of the (id-sorted) list; an outlet hangs below its
 * strip, which sorts right before its outlets, so "Outlet 1" of two strips
 * can be told apart. */
static struct libscols_line *table_new_device_line(struct libscols_table *tb, const DeviceList *l, size_t i) {
        struct libscols_line *parent = NULL;

        for (size_t j = i; j > 0 && !streq(l->devices[i].parent, "/"); j--)
                if (streq(l->devices[j - 1].path, l->devices[i].parent)) {
                        parent = scols_table_get_line(tb, j - 1);
                        break;
                }
        return scols_table_new_line(tb, parent);
}

static int cell_state(struct libscols_line *ln, size_t i, const Device *d) {
        return cell(ln, i, d->on ? "green" : NULL, "%s", d->on ? "on" : "off");
}

static int cell_online(struct libscols_line *ln, size_t i, const Device *d) {
        return cell(ln, i, d->online ? NULL : "red", "%s", d->online ? "yes" : "no");
}

static int cell_power(struct libscols_line *ln, size_t i, const Device *d) {
        return d->metered ? cell(ln, i, NULL, "%.1f W", d->power) : cell(ln, i, NULL, "-");
}

/* ---- status ---- */

static int print_status(FILE *f, const DeviceList *l, double total_power) {
        static const Column cols[] = {
                { "NAME", SCOLS_FL_TREE }, { "STATE", 0 }, { "ONLINE", 0 }, { "POWER", SCOLS_FL_RIGHT },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        char buf[32];
        double today = 0;
        size_t online = 0;

        for (size_t i = 0; i < l->n; i++) {
                today += l->devices[i].metered ? l->devices[i].energy_today : 0;
                online += l->devices[i].online;
        }
        if (arg_legend) {
                fprintf(f, " Total power: %.1f W\n", total_power);
                fprintf(f, "Energy today: %s\n", format_energy(buf, sizeof(buf), today));
                fprintf(f, "     Devices: %zu (%zu online)\n", l->n, online);
                if (l->n > 0)
                        fputc('\n', f);
        }
        if (l->n == 0)
                return 0;
        tb = table_new(cols, ELEMENTSOF(cols), f);
        if (!tb)
                return log_oom();
        for (size_t i = 0; i < l->n; i++) {
                const Device *d = &l->devices[i];
                struct libscols_line *ln = table_new_device_line(tb, l, i);

                if (!ln || cell(ln, 0, NULL, "%s", device_name(d)) < 0 || cell_state(ln, 1, d) < 0 ||
                    cell_online(ln, 2, d) < 0 || cell_power(ln, 3, d) < 0)
                        return log_oom();
        }
        return scols_print_table(tb);
}

static int get_total_power(sd_bus *bus, double *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_get_property_trivial(bus, KASA_BUS_NAME, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "TotalPower",
                                        &error, 'd', ret);
        if (r < 0)
                return log_call_error(&error, r, "read the total power", NULL, NULL);
        return 0;
}

static int verb_status(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        double total;
        int r;

        r = get_total_power(userdata, &total);
        if (r < 0)
                return r;
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *devs = json_array(), *o = NULL;
                double today = 0;

                for (size_t i = 0; i < l.n; i++) {
                        const Device *d = &l.devices[i];

                        today += d->metered ? d->energy_today : 0;
                        json_array_append_new(devs, json_pack("{s:s,s:s,s:b,s:b,s:o}", "id", d->id, "alias",
                                                              d->alias ? d->alias : "", "on", d->on, "online",
                                                              d->online, "power",
                                                              d->metered ? json_reading(d->power) : json_null()));
                }
                o = json_pack("{s:o,s:o,s:O}", "total_power", json_reading(total), "energy_today",
                              json_reading(today), "devices", devs);
                return json_print(o);
        }
        return print_status(stdout, &l, total);
}

/* ---- list, show ---- */

static int verb_list(int argc, char **argv, void *userdata) {
        static const Column cols[] = {
                { "ID", 0 },         { "NAME", SCOLS_FL_TREE }, { "MODEL", 0 }, { "ADDRESS", 0 },
                { "STATE", 0 },      { "ONLINE", 0 },            { "POWER", SCOLS_FL_RIGHT },
        };
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        int r;

        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *a = json_array();

                for (size_t i = 0; i < l.n; i++)
                        json_array_append_new(a, device_json(&l, &l.devices[i]));
                return json_print(a);
        }
        if (l.n == 0) {
                if (arg_legend)
                        printf("No devices. \"kasactl discover\" looks for plugs on the network.\n");
                return 0;
        }
        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb)
                return log_oom();
        for (size_t i = 0; i < l.n; i++) {
                const Device *d = &l.devices[i];
                struct libscols_line *ln = table_new_device_line(tb, &l, i);

                if (!ln || cell(ln, 0, NULL, "%s", d->id) < 0 || cell(ln, 1, NULL, "%s", device_name(d)) < 0 ||
                    cell(ln, 2, NULL, "%s", d->model ? d->model : "") < 0 ||
                    cell(ln, 3, NULL, "%s", d->address ? d->address : "") < 0 || cell_state(ln, 4, d) < 0 ||
                    cell_online(ln, 5, d) < 0 || cell_power(ln, 6, d) < 0)
                        return log_oom();
        }
        r = scols_print_table(tb);
        if (r < 0)
                return r;
        if (arg_legend)
                printf("\n%zu devices listed.\n", l.n);
        return 0;
}

static void print_field(FILE *f, const char *name, const char *fmt, ...) _printf_(3, 4);
static void print_field(FILE *f, const char *name, const char *fmt, ...) {
        va_list ap;

        fprintf(f, "%16s: ", name);
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
}

static void print_device(FILE *f, const DeviceList *l, const Device *d) {
        const char *on = arg_colors && d->on ? "\033[32m" : "", *off = arg_colors && !d->online ? "\033[31m" : "";
        const char *reset = arg_colors ? "\033[0m" : "";
        const char *parent = parent_id(l, d);
        char t[TIME_BUF_MAX], e[32];
        bool first = true;

        print_field(f, "Name", "%s", d->alias ? d->alias : "");
        print_field(f, "Id", "%s", d->id);
        print_field(f, "Model", "%s", d->model ? d->model : "");
        print_field(f, "Address", "%s", d->address ? d->address : "");
        print_field(f, "MAC", "%s", d->mac ? d->mac : "");
        print_field(f, "Hardware", "%s", d->hw_ver ? d->hw_ver : "");
        print_field(f, "Firmware", "%s", d->fw_ver ? d->fw_ver : "");
        if (parent)
                print_field(f, "Strip", "%s", parent);
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->devices[i].parent, d->path)) {
                        fprintf(f, "%16s  %s (%s)\n", first ? "Outlets:" : "", l->devices[i].id,
                                device_name(&l->devices[i]));
                        first = false;
                }
        print_field(f, "State", "%s%s%s", on, d->on ? "on" : "off", on[0] ? reset : "");
        print_field(f, "Online", "%s%s%s", off, d->online ? "yes" : "no", off[0] ? reset : "");
        print_field(f, "Last seen", "%s", d->last_seen ? format_time(t, sizeof(t), d->last_seen, false) : "never");
        if (d->rssi != 0)
                print_field(f, "Signal", "%d dBm", (int) d->rssi);
        if (d->metered) {
                print_field(f, "Power", "%.1f W", d->power);
                print_field(f, "Voltage", "%.1f V", d->voltage);
                print_field(f, "Current", "%.3f A", d->current);
                print_field(f, "Energy today", "%s", format_energy(e, sizeof(e), d->energy_today));
                print_field(f, "Energy total", "%s", format_energy(e, sizeof(e), d->energy_total));
        }
}

static int verb_show(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        Device *d;
        int r;

        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        r = resolve_device(&l, argv[1], &d);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = device_json(&l, d);
                return json_print(o);
        }
        print_device(stdout, &l, d);
        return 0;
}

/* ---- on, off, toggle, rename ---- */

static int switch_device(sd_bus *bus, Device *d, const char *verb, bool *ret_on) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *what = NULL;
        bool toggle = streq(verb, "toggle");
        int r, on;

        r = new_call(bus, d->path, KASA_DEVICE_IFACE, toggle ? "Toggle" : "SetOn", true, &m);
        if (r >= 0 && !toggle)
                r = sd_bus_message_append(m, "b", streq(verb, "on"));
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, toggle ? "toggle %s" : "switch %s %s", device_name(d), verb) < 0)
                return log_oom();
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return log_call_error(&error, r, what, KASA_ACTION_SWITCH, d);
        if (toggle) {
                r = sd_bus_message_read(reply, "b", &on);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse the reply: %m");
        } else
                on = streq(verb, "on");
        *ret_on = on;
        return 0;
}

static int verb_switch(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_free_ Device **devs = NULL;
        _cleanup_(json_decrefp) json_t *a = json_array();
        int r, ret = 0;

        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        devs = calloc(argc, sizeof(Device *));
        if (!devs || !a)
                return log_oom();
        /* Resolve every name first, so a typo switches nothing. */
        for (int i = 1; i < argc; i++) {
                r = resolve_device(&l, argv[i], &devs[i]);
                if (r < 0)
                        return r;
        }
        for (int i = 1; i < argc; i++) {
                bool on = false;

                r = switch_device(userdata, devs[i], argv[0], &on);
                if (r < 0) {
                        if (ret == 0)
                                ret = r;
                        continue;
                }
                json_array_append_new(a, json_pack("{s:s,s:s,s:b}", "id", devs[i]->id, "alias",
                                                   devs[i]->alias ? devs[i]->alias : "", "on", on));
                if (arg_json == JSON_OFF && streq(argv[0], "toggle"))
                        printf("%s is now %s.\n", device_name(devs[i]), on ? "on" : "off");
        }
        if (arg_json != JSON_OFF) {
                r = json_print(a);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static int verb_rename(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_free_ char *what = NULL;
        Device *d;
        int r;

        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        r = resolve_device(&l, argv[1], &d);
        if (r < 0)
                return r;
        r = new_call(userdata, d->path, KASA_DEVICE_IFACE, "Rename", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[2]);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, "rename %s", device_name(d)) < 0)
                return log_oom();
        r = sd_bus_call(userdata, m, 0, &error, NULL);
        if (r < 0)
                return log_call_error(&error, r, what, KASA_ACTION_MANAGE_DEVICES, d);
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:s}", "id", d->id, "alias", argv[2]);
                return json_print(o);
        }
        return 0;
}

/* ---- discover, add, remove ---- */

static int print_devices(DeviceList *l, char **paths, size_t n, const char *legend) {
        static const Column cols[] = {
                { "ID", 0 }, { "NAME", SCOLS_FL_TRUNC }, { "MODEL", 0 }, { "ADDRESS", 0 }, { "STATE", 0 },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *a = json_array();
        int r;

        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb || !a)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                const Device *d = device_list_by_path(l, paths[i]);
                struct libscols_line *ln;

                if (!d)
                        continue; /* removed again meanwhile */
                json_array_append_new(a, device_json(l, d));
                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "%s", d->id) < 0 || cell(ln, 1, NULL, "%s", device_name(d)) < 0 ||
                    cell(ln, 2, NULL, "%s", d->model ? d->model : "") < 0 ||
                    cell(ln, 3, NULL, "%s", d->address ? d->address : "") < 0 || cell_state(ln, 4, d) < 0)
                        return log_oom();
        }
        if (arg_json != JSON_OFF)
                return json_print(a);
        if (json_array_size(a) > 0) {
                r = scols_print_table(tb);
                if (r < 0)
                        return r;
        }
        if (arg_legend)
                printf("%s%zu %s.\n", json_array_size(a) > 0 ? "\n" : "", json_array_size(a), legend);
        return 0;
}

static int verb_discover(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        char **paths = NULL;
        size_t n = 0;
        int r;

        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "Discover", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "d", arg_timeout);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (arg_json == JSON_OFF && arg_legend && isatty(STDOUT_FILENO))
                fprintf(stderr, "Listening for %.1f s...\n", arg_timeout);
        r = sd_bus_call(userdata, m, (uint64_t) (arg_timeout * USEC_PER_SEC) + 25 * USEC_PER_SEC, &error, &reply);
        if (r < 0)
                return log_call_error(&error, r, "discover devices", KASA_ACTION_MANAGE_DEVICES, NULL);
        r = sd_bus_message_read_strv(reply, &paths);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        while (paths && paths[n])
                n++;
        r = fetch_devices(userdata, &l);
        if (r >= 0)
                r = print_devices(&l, paths, n, "devices answered");
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        return r;
}

static int verb_add(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_free_ char *what = NULL, *path = NULL;
        const char *p;
        int r;

        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AddDevice", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[1]);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, "add the device at %s", argv[1]) < 0)
                return log_oom();
        r = sd_bus_call(userdata, m, 0, &error, &reply);
        if (r < 0) {
                /* There is no device object yet to say since when it is offline. */
                if (sd_bus_error_has_name(&error, KASA_ERROR_OFFLINE)) {
                        log_error("Failed to %s: nothing answered there. Is the plug powered and on this "
                                  "network?",
                                  what);
                        return -EHOSTDOWN;
                }
                return log_call_error(&error, r, what, KASA_ACTION_MANAGE_DEVICES, NULL);
        }
        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        path = strdup(p);
        if (!path)
                return log_oom();
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                Device *d = device_list_by_path(&l, path);
                _cleanup_(json_decrefp) json_t *o = d ? device_json(&l, d) : json_null();
                return json_print(o);
        }
        return print_devices(&l, &path, 1, "device added");
}

static int verb_remove(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_free_ char *what = NULL;
        Device *d;
        int r;

        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        r = resolve_device(&l, argv[1], &d);
        if (r < 0)
                return r;
        if (!streq(d->parent, "/")) {
                log_error("%s is an outlet of a strip; remove the strip (%s) instead.", device_name(d),
                          parent_id(&l, d) ? parent_id(&l, d) : d->parent);
                return -EINVAL;
        }
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "RemoveDevice", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "o", d->path);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, "remove %s", device_name(d)) < 0)
                return log_oom();
        r = sd_bus_call(userdata, m, 0, &error, NULL);
        if (r < 0)
                return log_call_error(&error, r, what, KASA_ACTION_MANAGE_DEVICES, d);
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:s}", "id", d->id, "alias",
                                                               d->alias ? d->alias : "");
                return json_print(o);
        }
        return 0;
}

/* ---- history, energy ---- */

static int parse_range(uint64_t default_since, uint64_t now, uint64_t *ret_since, uint64_t *ret_until) {
        uint64_t since = default_since, until = now;
        int r;

        if (arg_since) {
                r = parse_time(arg_since, now, &since);
                if (r < 0)
                        return log_error_errno(EINVAL, "Invalid --since='%s': use e.g. 2026-11-27, "
                                                       "\"2026-11-27 08:00\", -24h, today or yesterday.",
                                               arg_since);
        }
        if (arg_until) {
                r = parse_time(arg_until, now, &until);
                if (r < 0)
                        return log_error_errno(EINVAL, "Invalid --until='%s': use e.g. 2026-11-27, "
                                                       "\"2026-11-27 08:00\", -1h, now or today.",
                                               arg_until);
        }
        if (since >= until)
                return log_error_errno(EINVAL, "--since must be before --until.");
        *ret_since = since;
        *ret_until = until;
        return 0;
}

static int require_meter(const Device *d) {
        if (d->metered)
                return 0;
        log_error("%s (%s) has no energy meter, so there is no history to show.", device_name(d),
                  d->model ? d->model : d->id);
        return -EMEDIUMTYPE;
}

static unsigned terminal_width(void) {
        struct winsize ws;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 80;
}

static int verb_history(int argc, char **argv, void *userdata) {
        static const Column cols[] = {
                { "TIME", 0 },
                { "AVERAGE", SCOLS_FL_RIGHT },
                { "MIN", SCOLS_FL_RIGHT },
                { "MAX", SCOLS_FL_RIGHT },
                { "ENERGY", SCOLS_FL_RIGHT },
        };
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *samples = json_array();
        _cleanup_free_ ChartPoint *points = NULL;
        _cleanup_free_ char *what = NULL;
        uint64_t now = now_usec(), since, until, t;
        double avg, min, max, wh, total = 0;
        size_t n = 0;
        Device *d;
        int r;

        if (!streq(arg_resolution, "raw") && !streq(arg_resolution, "minute") && !streq(arg_resolution, "hour") &&
            !streq(arg_resolution, "day"))
                return log_error_errno(EINVAL, "Invalid --resolution='%s': use raw, minute, hour or day.",
                                       arg_resolution);
        r = parse_range(now - USEC_PER_HOUR, now, &since, &until);
        if (r < 0)
                return r;
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        r = resolve_device(&l, argv[1], &d);
        if (r < 0)
                return r;
        r = require_meter(d);
        if (r < 0)
                return r;

        r = new_call(userdata, d->path, KASA_METER_IFACE, "GetHistory", false, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "tts", since, until, arg_resolution);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, "read the history of %s", device_name(d)) < 0)
                return log_oom();
        r = sd_bus_call(userdata, m, 0, &error, &reply);
        if (r < 0)
                return log_call_error(&error, r, what, NULL, d);

        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb || !samples)
                return log_oom();
        r = sd_bus_message_enter_container(reply, 'a', "(tdddd)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(tdddd)", &t, &avg, &min, &max, &wh)) > 0) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char buf[TIME_BUF_MAX];
                ChartPoint *p;

                if (!ln || cell(ln, 0, NULL, "%s", format_time(buf, sizeof(buf), t, false)) < 0 ||
                    cell(ln, 1, NULL, "%.1f W", avg) < 0 || cell(ln, 2, NULL, "%.1f W", min) < 0 ||
                    cell(ln, 3, NULL, "%.1f W", max) < 0 || cell(ln, 4, NULL, "%.2f Wh", wh) < 0)
                        return log_oom();
                json_array_append_new(samples, json_pack("{s:o,s:o,s:o,s:o,s:o}", "time", json_time(t),
                                                         "power_avg", json_reading(avg), "power_min",
                                                         json_reading(min), "power_max", json_reading(max),
                                                         "energy", json_reading(wh)));
                p = reallocarray(points, n + 1, sizeof(ChartPoint));
                if (!p)
                        return log_oom();
                points = p;
                points[n++] = (ChartPoint) { .time = t, .value = avg };
                total += wh;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the history: %m");

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack(
                        "{s:s,s:s,s:s,s:o,s:o,s:O,s:o}", "id", d->id, "alias", d->alias ? d->alias : "",
                        "resolution", arg_resolution, "since", json_time(since), "until", json_time(until),
                        "samples", samples, "energy", json_reading(total));
                return json_print(o);
        }
        if (n == 0) {
                if (arg_legend)
                        printf("No samples of %s in this range.\n", device_name(d));
                return 0;
        }
        r = scols_print_table(tb);
        if (r < 0)
                return r;
        if (arg_legend)
                printf("\n%zu samples, %.2f Wh.\n", n, total);
        /* The chart is for a person at a terminal; a pipe gets the table only. */
        if (isatty(STDOUT_FILENO)) {
                putchar('\n');
                chart_draw(stdout, points, n, since, until, MIN(terminal_width(), 160u), 10, "W", arg_colors);
        }
        return 0;
}

typedef struct EnergySeries {
        Device *device;
        uint64_t *start;
        double *wh;
        size_t n;
        double total;
} EnergySeries;

static int fetch_energy(sd_bus *bus, EnergySeries *s, uint64_t since, uint64_t until) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *what = NULL;
        uint64_t t;
        double wh;
        int r;

        r = new_call(bus, s->device->path, KASA_METER_IFACE, "GetEnergy", false, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "tts", since, until, arg_by);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, "read the energy of %s", device_name(s->device)) < 0)
                return log_oom();
        r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r < 0)
                return log_call_error(&error, r, what, NULL, s->device);
        r = sd_bus_message_enter_container(reply, 'a', "(td)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(td)", &t, &wh)) > 0) {
                uint64_t *ns = reallocarray(s->start, s->n + 1, sizeof(uint64_t));
                double *nw;

                if (!ns)
                        return log_oom();
                s->start = ns;
                nw = reallocarray(s->wh, s->n + 1, sizeof(double));
                if (!nw)
                        return log_oom();
                s->wh = nw;
                s->start[s->n] = t;
                s->wh[s->n++] = wh;
                s->total += wh;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the energy of %s: %m", device_name(s->device));
        return 0;
}

static void energy_series_free(EnergySeries **s) {
        for (EnergySeries *i = *s; i && i->device; i++) {
                free(i->start);
                free(i->wh);
        }
        free(*s);
}

static const char *format_bucket(char *buf, size_t size, uint64_t t) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        localtime_r(&s, &tm);
        strftime(buf, size, streq(arg_by, "month") ? "%Y-%m" : "%Y-%m-%d", &tm);
        return buf;
}

static double series_at(const EnergySeries *s, uint64_t t) {
        for (size_t i = 0; i < s->n; i++)
                if (s->start[i] == t)
                        return s->wh[i];
        return 0;
}

static int print_energy(EnergySeries *series, size_t n) {
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = scols_new_table();
        const EnergySeries *rows = &series[0];
        struct libscols_line *ln;
        char buf[32];
        double total = 0;

        if (!tb)
                return log_oom();
        scols_table_enable_noheadings(tb, !arg_legend);
        scols_table_enable_colors(tb, arg_colors);
        if (!scols_table_new_column(tb, streq(arg_by, "month") ? "MONTH" : "DAY", 0, 0))
                return log_oom();
        for (size_t j = 0; j < n; j++)
                if (!scols_table_new_column(tb, device_name(series[j].device), 0, SCOLS_FL_RIGHT))
                        return log_oom();
        if (n > 1 && !scols_table_new_column(tb, "TOTAL", 0, SCOLS_FL_RIGHT))
                return log_oom();

        /* Every series has the same buckets (one calendar); rows follow the first. */
        for (size_t i = 0; i < rows->n; i++) {
                double sum = 0;

                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "%s", format_bucket(buf, sizeof(buf), rows->start[i])) < 0)
                        return log_oom();
                for (size_t j = 0; j < n; j++) {
                        double wh = series_at(&series[j], rows->start[i]);

                        sum += wh;
                        if (cell(ln, j + 1, NULL, "%s", format_energy(buf, sizeof(buf), wh)) < 0)
                                return log_oom();
                }
                if (n > 1 && cell(ln, n + 1, NULL, "%s", format_energy(buf, sizeof(buf), sum)) < 0)
                        return log_oom();
        }
        if (arg_legend) {
                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "Total") < 0)
                        return log_oom();
                for (size_t j = 0; j < n; j++) {
                        total += series[j].total;
                        if (cell(ln, j + 1, NULL, "%s", format_energy(buf, sizeof(buf), series[j].total)) < 0)
                                return log_oom();
                }
                if (n > 1 && cell(ln, n + 1, NULL, "%s", format_energy(buf, sizeof(buf), total)) < 0)
                        return log_oom();
        }
        return scols_print_table(tb);
}

static int verb_energy(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_(energy_series_free) EnergySeries *series = NULL;
        uint64_t now = now_usec(), since, until;
        size_t n = 0;
        int r;

        if (!streq(arg_by, "day") && !streq(arg_by, "month"))
                return log_error_errno(EINVAL, "Invalid --by='%s': use day or month.", arg_by);
        /* By default the last 7 days, or the last 12 months, this one included. */
        r = parse_range(streq(arg_by, "day") ? local_day_start(now, -6) : local_month_start(now, -11), now, &since,
                        &until);
        if (r < 0)
                return r;
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        series = calloc(l.n + 1, sizeof(EnergySeries));
        if (!series)
                return log_oom();
        if (argc > 1) {
                Device *d;

                r = resolve_device(&l, argv[1], &d);
                if (r < 0)
                        return r;
                r = require_meter(d);
                if (r < 0)
                        return r;
                series[n++].device = d;
        } else
                for (size_t i = 0; i < l.n; i++)
                        if (l.devices[i].metered)
                                series[n++].device = &l.devices[i];
        for (size_t j = 0; j < n; j++) {
                r = fetch_energy(userdata, &series[j], since, until);
                if (r < 0)
                        return r;
        }

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *devs = json_array(), *o = NULL;
                double total = 0;

                for (size_t j = 0; j < n; j++) {
                        json_t *e = json_array();

                        for (size_t i = 0; i < series[j].n; i++)
                                json_array_append_new(e, json_pack("{s:o,s:o}", "start",
                                                                   json_time(series[j].start[i]), "energy",
                                                                   json_reading(series[j].wh[i])));
                        json_array_append_new(devs, json_pack("{s:s,s:s,s:o,s:o}", "id", series[j].device->id,
                                                              "alias", device_name(series[j].device), "energy", e,
                                                              "total", json_reading(series[j].total)));
                        total += series[j].total;
                }
                o = json_pack("{s:s,s:o,s:o,s:O,s:o}", "by", arg_by, "since", json_time(since), "until",
                              json_time(until), "devices", devs, "total", json_reading(total));
                return json_print(o);
        }
        if (n == 0) {
                if (arg_legend)
                        printf("No device has an energy meter.\n");
                return 0;
        }
        return print_energy(series, n);
}

/* ---- watch ---- */

typedef struct Watch {
        sd_bus *bus;
        sd_event *event;
        DeviceList devices;
        char *filter; /* path of the one device watched, or NULL */
        double total_power;
        bool running;
        bool tty;
        unsigned lines; /* drawn last time, to redraw over them */
        sd_event_source *redraw;
} Watch;

static void watch_done(Watch *w) {
        device_list_done(&w->devices);
        free(w->filter);
        sd_event_source_unref(w->redraw);
}

static int watch_draw(Watch *w) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        unsigned lines = 0;
        _cleanup_(fclosep) FILE *f = open_memstream(&buf, &size);
        int r = 0;

        if (!f)
                return log_oom();
        if (!w->running)
                fprintf(f, "kasamond is not running; waiting for it to start.\n");
        else if (w->filter) {
                Device *d = device_list_by_path(&w->devices, w->filter);

                if (d)
                        print_device(f, &w->devices, d);
                else
                        fprintf(f, "The device is gone: it was removed.\n");
        } else
                r = print_status(f, &w->devices, w->total_power);
        if (fclose(f) != 0 || r < 0)
                return log_oom();
        f = NULL;
        for (size_t i = 0; i < size; i++)
                lines += buf[i] == '\n';
        /* Up to the first line drawn last time, then clear to the end of the screen. */
        if (w->lines > 0)
                printf("\033[%uA\r\033[J", w->lines);
        fwrite(buf, 1, size, stdout);
        fflush(stdout);
        w->lines = lines;
        return 0;
}

static int on_redraw(sd_event_source *s, void *userdata) {
        return watch_draw(userdata);
}

static void watch_schedule_redraw(Watch *w) {
        /* Changes arrive in bursts (one signal per device per poll): draw once per burst. */
        if (w->tty)
                (void) sd_event_source_set_enabled(w->redraw, SD_EVENT_ONESHOT);
}

static void watch_print_change(Watch *w, const Device *d, const struct DeviceProperty *p) {
        const void *field = (const uint8_t *) d + p->offset;
        char t[TIME_BUF_MAX], v[TIME_BUF_MAX];
        uint64_t now = now_usec();

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = NULL;
                json_t *value;

                switch (p->type) {
                case 's':
                case 'o':
                        value = json_string(*(char *const *) field);
                        break;
                case 'b':
                        value = json_boolean(*(const bool *) field);
                        break;
                case 'i':
                        value = json_integer(*(const int32_t *) field);
                        break;
                case 't':
                        value = json_time(*(const uint64_t *) field);
                        break;
                default:
                        value = json_reading(*(const double *) field);
                }
                o = json_pack("{s:o,s:s,s:s,s:s,s:o}", "time", json_time(now), "id", d->id, "alias",
                              d->alias ? d->alias : "", "property", p->name, "value", value);
                /* One object per line, whatever --json says: a stream is read line by line. */
                if (o) {
                        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(12));
                        fputc('\n', stdout);
                }
        } else {
                switch (p->type) {
                case 's':
                case 'o':
                        snprintf(v, sizeof(v), "%s", *(char *const *) field);
                        break;
                case 'b':
                        snprintf(v, sizeof(v), "%s",
                                 streq(p->name, "On") ? (*(const bool *) field ? "on" : "off")
                                                      : (*(const bool *) field ? "yes" : "no"));
                        break;
                case 'i':
                        snprintf(v, sizeof(v), "%d", (int) *(const int32_t *) field);
                        break;
                case 't':
                        format_time(v, sizeof(v), *(const uint64_t *) field, false);
                        break;
                default:
                        snprintf(v, sizeof(v), "%.3f %s", *(const double *) field, p->unit);
                }
                printf("%s %s %s %s\n", format_time(t, sizeof(t), now, false), d->id, p->name, v);
        }
        fflush(stdout);
}

static int watch_refetch(Watch *w) {
        DeviceList l;
        int r;

        r = fetch_devices(w->bus, &l);
        if (r < 0)
                return r;
        device_list_done(&w->devices);
        w->devices = l;
        if (w->tty) {
                r = get_total_power(w->bus, &w->total_power);
                if (r < 0)
                        return r;
        }
        watch_schedule_redraw(w);
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watch *w = userdata;
        const char *path = sd_bus_message_get_path(m), *iface;
        Device *d = device_list_by_path(&w->devices, path);
        int r;

        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0)
                return 0;
        if (streq(path, KASA_MANAGER_PATH) && streq(iface, KASA_MANAGER_IFACE)) {
                double total;

                if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                        return 0;
                while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                        const char *name;

                        if (sd_bus_message_read(m, "s", &name) < 0)
                                return 0;
                        if (streq(name, "TotalPower")) {
                                if (sd_bus_message_read(m, "v", "d", &total) < 0)
                                        return 0;
                                w->total_power = total;
                        } else if (sd_bus_message_skip(m, "v") < 0)
                                return 0;
                        if (sd_bus_message_exit_container(m) < 0)
                                return 0;
                }
                watch_schedule_redraw(w);
                return 0;
        }
        if (!d || (w->filter && !streq(w->filter, path)))
                return 0;
        if (sd_bus_message_enter_container(m, 'a', "{sv}") <= 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const struct DeviceProperty *p;
                const char *name;

                if (sd_bus_message_read(m, "s", &name) < 0 || device_read_property(d, name, m, &p) < 0)
                        return 0;
                /* LastSeen moves with every poll: it is the clock, not a change. */
                if (!w->tty && p && !streq(p->name, "LastSeen"))
                        watch_print_change(w, d, p);
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        watch_schedule_redraw(w);
        return 0;
}

static int on_objects_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watch *w = userdata;

        /* A device came or went: read the list again, once. */
        if (watch_refetch(w) < 0)
                sd_event_exit(w->event, EXIT_FAILURE);
        return 0;
}

static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watch *w = userdata;
        const char *name, *old_owner, *new_owner;
        char t[TIME_BUF_MAX];

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, KASA_BUS_NAME))
                return 0;
        w->running = new_owner[0] != 0;
        if (!w->tty) {
                if (arg_json != JSON_OFF) {
                        _cleanup_(json_decrefp) json_t *o = json_pack("{s:o,s:s}", "time", json_time(now_usec()),
                                                                      "daemon", w->running ? "started" : "stopped");
                        if (o) {
                                json_dumpf(o, stdout, JSON_COMPACT);
                                fputc('\n', stdout);
                        }
                } else
                        printf("%s kasamond %s\n", format_time(t, sizeof(t), now_usec(), false),
                               w->running ? "started" : "stopped");
                fflush(stdout);
        }
        if (w->running)
                return on_objects_changed(m, userdata, ret_error);
        device_list_done(&w->devices);
        watch_schedule_redraw(w);
        return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static int verb_watch(int argc, char **argv, void *userdata) {
        _cleanup_(watch_done) Watch w = { .bus = userdata, .running = true };
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        sigset_t mask;
        int r;

        w.tty = isatty(STDOUT_FILENO) && arg_json == JSON_OFF;
        r = sd_event_default(&e);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        w.event = e;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (sd_event_add_signal(e, NULL, SIGINT, on_exit_signal, NULL) < 0 ||
            sd_event_add_signal(e, NULL, SIGTERM, on_exit_signal, NULL) < 0)
                return log_error_errno(ENOMEM, "Failed to watch for signals.");
        r = sd_event_add_defer(e, &w.redraw, on_redraw, &w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w.redraw, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "Failed to set up drawing: %m");

        /* Subscribe before reading the state, so no change falls in between. */
        r = sd_bus_match_signal(w.bus, NULL, KASA_BUS_NAME, NULL, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_properties_changed, &w);
        if (r >= 0)
                r = sd_bus_match_signal(w.bus, NULL, KASA_BUS_NAME, KASA_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_objects_changed,
                                        &w);
        if (r >= 0)
                r = sd_bus_match_signal(w.bus, NULL, KASA_BUS_NAME, KASA_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                                        on_objects_changed, &w);
        if (r >= 0)
                r = sd_bus_match_signal(w.bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_owner_changed, &w);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe to changes: %m");

        r = watch_refetch(&w);
        if (r < 0)
                return r;
        if (argc > 1) {
                Device *d;

                r = resolve_device(&w.devices, argv[1], &d);
                if (r < 0)
                        return r;
                w.filter = strdup(d->path);
                if (!w.filter)
                        return log_oom();
        }
        r = sd_bus_attach_event(w.bus, e, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = sd_event_loop(e);
        sd_bus_detach_event(w.bus);
        if (r < 0)
                return log_error_errno(r, "Failed to run the event loop: %m");
        return r == 0 ? 0 : -EIO;
}

/* ---- completion helpers ---- */

static int verb_complete_devices(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        int r;

        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n; i++) {
                printf("%s\n", l.devices[i].id);
                if (l.devices[i].alias && *l.devices[i].alias)
                        printf("%s\n", l.devices[i].alias);
        }
        return 0;
}

/* ---- verb table, options, main ---- */

typedef enum VerbFlags {
        VERB_DEFAULT = 1 << 0, /* runs when no verb is given */
        VERB_HIDDEN = 1 << 1,  /* for completion scripts: not in --help or --list-verbs */
} VerbFlags;

typedef struct Verb {
        const char *name;
        int min_args; /* counting the verb itself */
        int max_args; /* INT32_MAX: any number */
        VerbFlags flags;
        int (*fn)(int argc, char **argv, void *userdata);
        const char *args_help;
        const char *help;
} Verb;

static const Verb verbs[] = {
        { "status", 1, 1, VERB_DEFAULT, verb_status, "", "Total power, today's energy and every device" },
        { "list", 1, 1, 0, verb_list, "", "List devices with id, model and address" },
        { "show", 2, 2, 0, verb_show, "DEV", "Show everything known about a device" },
        { "on", 2, INT32_MAX, 0, verb_switch, "DEV...", "Switch devices on" },
        { "off", 2, INT32_MAX, 0, verb_switch, "DEV...", "Switch devices off" },
        { "toggle", 2, INT32_MAX, 0, verb_switch, "DEV...", "Switch devices to the opposite state" },
        { "rename", 3, 3, 0, verb_rename, "DEV NAME", "Change the name stored in a device" },
        { "discover", 1, 1, 0, verb_discover, "", "Look for devices on the network" },
        { "add", 2, 2, 0, verb_add, "ADDRESS", "Add a device by its address" },
        { "remove", 2, 2, 0, verb_remove, "DEV", "Forget a device (its history is kept)" },
        { "history", 2, 2, 0, verb_history, "DEV", "Power over time, as a table and a chart" },
        { "energy", 1, 2, 0, verb_energy, "[DEV]", "Energy per day or month, with totals" },
        { "watch", 1, 2, 0, verb_watch, "[DEV]", "Follow changes as they happen" },
        { "__complete-devices", 1, 1, VERB_HIDDEN, verb_complete_devices, "", NULL },
};

static void help(void) {
        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Find, switch, watch and chart TP-Link Kasa plugs through kasamond.\n\n"
               "Commands:\n",
               program_invocation_short_name);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                char buf[64];

                if (verbs[i].flags & VERB_HIDDEN)
                        continue;
                snprintf(buf, sizeof(buf), "%s %s", verbs[i].name, verbs[i].args_help);
                printf("  %-22s %s%s\n", buf, verbs[i].help, verbs[i].flags & VERB_DEFAULT ? " (default)" : "");
        }
        printf("\nDEV is a device id, an address, or a name (any unique prefix, any case).\n"
               "\nOptions:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n"
               "     --json=pretty|short|off\n"
               "                         Print JSON instead of tables\n"
               "     --no-legend         Leave out headers, summaries and footers\n"
               "     --no-ask-password   Never let polkit ask for a password\n"
               "     --timeout=SECONDS   How long discover listens (default 2)\n"
               "     --since=TIME        Start of history/energy (default: 1 hour ago for\n"
               "                         history; 7 days, or 12 months --by=month, for energy)\n"
               "     --until=TIME        End of history/energy (default: now)\n"
               "     --resolution=raw|minute|hour|day\n"
               "                         Sample size of history (default minute)\n"
               "     --by=day|month      Buckets of energy (default day)\n"
               "\nTIME: 2026-11-27, \"2026-11-27 08:00\", 2026-11-27T08:00+01:00, -24h, -30min,\n"
               "-7d, now, today, yesterday.\n"
               "\nExit status: 0 ok, 1 failure, 2 usage or ambiguous name, 3 no such device,\n"
               "4 access denied, 5 device offline.\n"
               "See the kasactl(1) man page for details.\n");
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_NO_LEGEND,
                ARG_NO_ASK_PASSWORD,
                ARG_TIMEOUT,
                ARG_SINCE,
                ARG_UNTIL,
                ARG_RESOLUTION,
                ARG_BY,
                ARG_LIST_VERBS,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", required_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "since", required_argument, NULL, ARG_SINCE },
                { "until", required_argument, NULL, ARG_UNTIL },
                { "resolution", required_argument, NULL, ARG_RESOLUTION },
                { "by", required_argument, NULL, ARG_BY },
                { "list-verbs", no_argument, NULL, ARG_LIST_VERBS },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("kasactl %s\n", PROJECT_VERSION);
                        return 0;
                case ARG_JSON:
                        if (streq(optarg, "pretty"))
                                arg_json = JSON_PRETTY;
                        else if (streq(optarg, "short"))
                                arg_json = JSON_SHORT;
                        else if (streq(optarg, "off"))
                                arg_json = JSON_OFF;
                        else
                                return log_error_errno(EINVAL, "Invalid --json='%s': use pretty, short or off.",
                                                       optarg);
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        arg_no_ask_password = true;
                        break;
                case ARG_TIMEOUT: {
                        char *end;

                        errno = 0;
                        arg_timeout = strtod(optarg, &end);
                        if (errno != 0 || end == optarg || *end || !(arg_timeout >= 0.1 && arg_timeout <= 60))
                                return log_error_errno(EINVAL, "Invalid --timeout='%s': 0.1 to 60 seconds.",
                                                       optarg);
                        break;
                }
                case ARG_SINCE:
                        arg_since = optarg;
                        break;
                case ARG_UNTIL:
                        arg_until = optarg;
                        break;
                case ARG_RESOLUTION:
                        arg_resolution = optarg;
                        break;
                case ARG_BY:
                        arg_by = optarg;
                        break;
                case ARG_LIST_VERBS:
                        /* For the man page test and completion scripts. */
                        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                                if (!(verbs[i].flags & VERB_HIDDEN))
                                        printf("%s\n", verbs[i].name);
                        return 0;
                case '?':
                        return -EINVAL;
                default:
                        abort();
                }
        return 1;
}

static int dispatch_verb(int argc, char **argv, sd_bus **bus) {
        static char *default_argv[] = { (char *) "status", NULL };
        const Verb *v = NULL;
        int r;

        if (argc == 0) {
                for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                        if (verbs[i].flags & VERB_DEFAULT)
                                v = &verbs[i];
                argc = 1;
                argv = default_argv;
        } else
                for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                        if (streq(verbs[i].name, argv[0]))
                                v = &verbs[i];
        if (!v)
                return log_error_errno(EINVAL, "Unknown command '%s'. \"kasactl --help\" lists the commands.",
                                       argv[0]);
        if (argc < v->min_args)
                return log_error_errno(EINVAL, "Too few arguments: kasactl %s %s", v->name, v->args_help);
        if (argc > v->max_args)
                return log_error_errno(EINVAL, "Too many arguments: kasactl %s %s", v->name, v->args_help);

        r = sd_bus_open_system(bus);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to connect to the system bus: %m. Is D-Bus running? (kasactl talks "
                                       "to kasamond there.)");
        return v->fn(argc, argv, *bus);
}

static int exit_status(int r) {
        switch (r) {
        case 0:
                return EXIT_SUCCESS;
        case -EINVAL:
        case -ENOTUNIQ:
                return EXIT_USAGE;
        case -ENXIO:
                return EXIT_NOT_FOUND;
        case -EACCES:
        case -EPERM:
                return EXIT_DENIED;
        case -EHOSTDOWN:
                return EXIT_OFFLINE;
        default:
                return EXIT_FAILURE;
        }
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *term = getenv("TERM"), *no_color = getenv("NO_COLOR");
        int r;

        /* Tree lines and the chart in UTF-8 where the locale allows it. */
        setlocale(LC_ALL, "");
        log_parse_environment();
        arg_ask_password = isatty(STDIN_FILENO);
        arg_colors = isatty(STDOUT_FILENO) && !(no_color && *no_color) && !(term && streq(term, "dumb"));

        r = parse_argv(argc, argv);
        if (r <= 0)
                return exit_status(r);
        if (arg_json != JSON_OFF)
                arg_colors = false;
        r = dispatch_verb(argc - optind, argv + optind, &bus);
        return exit_status(r);
}
