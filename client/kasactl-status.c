/* SPDX-License-Identifier: MIT */

/* status, list, show: what kasamond knows now. With --json they print the
 * daemon's own Describe() objects, so kasactl, the bus and anything built
 * on Describe() share one schema of a device. */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

#include "kasactl.h"
#include "log.h"
#include "time-util.h"

/* A strip with a meter already sums its outlets: count them once. */
bool device_in_total(const DeviceList *l, const Device *d) {
        Device *parent;

        if (!d->metered)
                return false;
        parent = streq(d->parent, "/") ? NULL : device_list_by_path((DeviceList *) l, d->parent);
        return !(parent && parent->metered);
}

int print_status(FILE *f, const DeviceList *l, double total_power) {
        static const Column cols[] = {
                { "NAME", SCOLS_FL_TREE }, { "STATE", 0 }, { "ONLINE", 0 }, { "POWER", SCOLS_FL_RIGHT },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        char buf[32];
        double today = 0;
        size_t online = 0;

        for (size_t i = 0; i < l->n; i++) {
                const Device *d = &l->devices[i];

                if (device_in_total(l, d) && !isnan(d->energy_today))
                        today += d->energy_today;
                online += d->online;
        }
        if (arg_legend) {
                fprintf(f, " Total power: %.1f W\n", total_power);
                fprintf(f, "Energy today: %s\n", format_energy(buf, sizeof(buf), today, fabs(today) >= 1000));
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
        return table_print(tb);
}

int verb_status(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        double total;
        int r;

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = NULL;

                r = describe_manager(userdata, &o);
                return r < 0 ? r : json_print(o);
        }
        r = get_total_power(userdata, &total);
        if (r < 0)
                return r;
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        return print_status(stdout, &l, total);
}

int verb_list(int argc, char **argv, void *userdata) {
        static const Column cols[] = {
                { "ID", 0 },         { "NAME", SCOLS_FL_TREE }, { "MODEL", 0 }, { "ADDRESS", 0 },
                { "STATE", 0 },      { "ONLINE", 0 },            { "POWER", SCOLS_FL_RIGHT },
        };
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        int r;

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = NULL;
                json_t *devs;

                r = describe_manager(userdata, &o);
                if (r < 0)
                        return r;
                devs = json_object_get(o, "devices");
                if (!json_is_array(devs))
                        return log_error_errno(EBADMSG, "kasamond's Describe() has no list of devices.");
                return json_print(devs);
        }
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
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
        r = table_print(tb);
        if (r < 0)
                return r;
        if (arg_legend)
                printf("\n%zu %s listed.\n", l.n, plural(l.n, "device", "devices"));
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

static void print_reading(FILE *f, const Device *d, const char *name, double v, int decimals, const char *unit) {
        if (device_reading_known(d, v))
                print_field(f, name, "%.*f %s", decimals, v, unit);
        else
                print_field(f, name, "-");
}

void print_device(FILE *f, const DeviceList *l, const Device *d) {
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
        /* Only what is not the legacy protocol's: most plugs still speak it. */
        if (d->protocol && !streq(d->protocol, "xor/iot"))
                print_field(f, "Protocol", "%s", d->protocol);
        if (d->auth_state && streq(d->auth_state, "failed"))
                print_field(f, "Credentials", "%srefused%s: %s", arg_colors ? "\033[31m" : "", reset,
                            d->auth_message ? d->auth_message : "");
        else if (d->auth_state && !streq(d->auth_state, "none"))
                print_field(f, "Credentials", "%s", d->auth_state);
        if (d->metered) {
                print_reading(f, d, "Power", d->power, 1, "W");
                print_reading(f, d, "Voltage", d->voltage, 1, "V");
                print_reading(f, d, "Current", d->current, 3, "A");
                /* Energy stays known while the device is away: it is what was recorded. */
                if (!isnan(d->energy_today))
                        print_field(f, "Energy today", "%s",
                                    format_energy(e, sizeof(e), d->energy_today, fabs(d->energy_today) >= 1000));
                if (!isnan(d->energy_total))
                        print_field(f, "Energy total", "%s",
                                    format_energy(e, sizeof(e), d->energy_total, fabs(d->energy_total) >= 1000));
        }
}

int verb_show(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        Device *d;
        int r;

        r = fetch_device(userdata, argv[1], &l, &d);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = NULL;

                r = describe_device(userdata, d, &o);
                return r < 0 ? r : json_print(o);
        }
        print_device(stdout, &l, d);
        return 0;
}

/* For the completion scripts: every id and name, one a line. */
int verb_complete_devices(int argc, char **argv, void *userdata) {
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
