/* SPDX-License-Identifier: MIT */

/* rename, discover, add, remove: the list of devices kasamond keeps. */

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

int verb_rename(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        Device *d;
        int r;

        r = fetch_device(userdata, argv[1], &l, &d);
        if (r < 0)
                return r;
        r = new_call(userdata, d->path, KASA_DEVICE_IFACE, "Rename", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[2]);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, KASA_ACTION_MANAGE_DEVICES, d, NULL, "rename %s", device_name(d));
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:s}", "id", d->id, "alias", argv[2]);
                return json_print(o);
        }
        return 0;
}

static bool path_in(char **paths, size_t n, const char *path) {
        for (size_t i = 0; i < n; i++)
                if (streq(paths[i], path))
                        return true;
        return false;
}

/* The devices of paths as a table, outlets below their strip; with before,
 * each marked new unless it is in before, and a footer with the counts.
 * With --json their Describe() objects. */
static int print_found(sd_bus *bus, DeviceList *l, const DeviceList *before, char **paths, size_t n) {
        static const Column cols[] = {
                { "ID", 0 },      { "NAME", SCOLS_FL_TREE }, { "MODEL", 0 },
                { "ADDRESS", 0 }, { "STATE", 0 },            { "NEW", 0 },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *a = json_array();
        _cleanup_free_ struct libscols_line **lines = calloc(l->n + 1, sizeof(struct libscols_line *));
        size_t shown = 0, added = 0;
        int r;

        tb = table_new(cols, ELEMENTSOF(cols) - !before, stdout); /* NEW is the last column */
        if (!tb || !a || !lines)
                return log_oom();
        /* In the list's id order a strip comes right before its outlets. */
        for (size_t i = 0; i < l->n; i++) {
                const Device *d = &l->devices[i];
                struct libscols_line *parent = NULL;
                bool is_new;

                if (!path_in(paths, n, d->path))
                        continue; /* not found, or removed again meanwhile */
                if (arg_json != JSON_OFF) {
                        json_t *o;

                        r = describe_device(bus, d, &o);
                        if (r < 0)
                                return r;
                        json_array_append_new(a, o);
                        continue;
                }
                for (size_t j = i; j > 0 && !streq(d->parent, "/"); j--)
                        if (streq(l->devices[j - 1].path, d->parent)) {
                                parent = lines[j - 1];
                                break;
                        }
                is_new = before && !device_list_by_path((DeviceList *) before, d->path);
                lines[i] = scols_table_new_line(tb, parent);
                if (!lines[i] || cell(lines[i], 0, NULL, "%s", d->id) < 0 ||
                    cell(lines[i], 1, NULL, "%s", device_name(d)) < 0 ||
                    cell(lines[i], 2, NULL, "%s", d->model ? d->model : "") < 0 ||
                    cell(lines[i], 3, NULL, "%s", d->address ? d->address : "") < 0 ||
                    cell_state(lines[i], 4, d) < 0 ||
                    (before && cell(lines[i], 5, is_new ? "green" : NULL, "%s", is_new ? "yes" : "no") < 0))
                        return log_oom();
                shown++;
                added += is_new;
        }
        if (arg_json != JSON_OFF)
                return json_print(a);
        if (shown > 0) {
                r = table_print(tb);
                if (r < 0)
                        return r;
        }
        if (arg_legend && before)
                printf("%s%zu %s answered, %zu new.\n", shown > 0 ? "\n" : "", shown,
                       plural(shown, "device", "devices"), added);
        return 0;
}

int verb_discover(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList before = {}, after = {};
        char **paths = NULL;
        size_t n = 0;
        int r;

        /* What was known before tells which devices are new. */
        r = fetch_devices(userdata, &before);
        if (r < 0)
                return r;
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
        r = fetch_devices(userdata, &after);
        if (r >= 0)
                r = print_found(userdata, &after, &before, paths, n);
        for (size_t i = 0; i < n; i++)
                free(paths[i]);
        free(paths);
        return r;
}

/* AddDevice of a known device only updates its address: say which it was. */
static void print_known(const Device *known, const Device *d) {
        const char *was = known->address ? known->address : "", *now = d->address ? d->address : "";

        if (streq(was, now))
                printf("%s (%s) was already known, at %s.\n", device_name(d), d->id, now);
        else
                printf("%s (%s) was already known, at %s; its address is now %s.\n", device_name(d), d->id, was,
                       now);
}

int verb_add(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList before = {}, after = {};
        _cleanup_free_ char *what = NULL, *path = NULL;
        _cleanup_free_ char **paths = NULL;
        const Device *known;
        Device *d;
        const char *p;
        size_t n = 0;
        int r;

        r = fetch_devices(userdata, &before);
        if (r < 0)
                return r;
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AddDevice", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[1]);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        if (asprintf(&what, "add the device at %s", argv[1]) < 0)
                return log_oom();
        r = sd_bus_call(userdata, m, 0, &error, &reply);
        /* A daemon that refuses a known device with AlreadyKnown has still
         * taken its new address: the device is then the one at argv[1]. */
        if (r < 0 && !sd_bus_error_has_name(&error, KASA_ERROR_ALREADY_KNOWN)) {
                /* There is no device object yet to say since when it is offline. */
                if (sd_bus_error_has_name(&error, KASA_ERROR_OFFLINE)) {
                        log_error("Failed to %s: nothing answered there. Is the plug powered and on this "
                                  "network?",
                                  what);
                        return -EHOSTDOWN;
                }
                return log_call_error(&error, r, what, KASA_ACTION_MANAGE_DEVICES, NULL);
        }
        if (r >= 0) {
                r = sd_bus_message_read(reply, "o", &p);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse the reply: %m");
                path = strdup(p);
                if (!path)
                        return log_oom();
        }
        r = fetch_devices(userdata, &after);
        if (r < 0)
                return r;
        d = path ? device_list_by_path(&after, path) : device_list_by_address(&after, argv[1]);
        if (!d && path)
                return log_error_errno(ENXIO, "The device at %s was removed again meanwhile.", argv[1]);
        if (!d) {
                /* Known, but not under that address in the list: the daemon's words then. */
                printf("%s\n", error.message ?: error.name);
                return 0;
        }
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = NULL;

                r = describe_device(userdata, d, &o);
                return r < 0 ? r : json_print(o);
        }
        known = device_list_by_path(&before, d->path);
        if (known) {
                print_known(known, d);
                return 0;
        }
        if (!path) {
                printf("%s\n", error.message ?: error.name);
                return 0;
        }
        paths = calloc(after.n + 1, sizeof(char *));
        if (!paths)
                return log_oom();
        for (size_t i = 0; i < after.n; i++)
                if (streq(after.devices[i].path, d->path) || streq(after.devices[i].parent, d->path))
                        paths[n++] = after.devices[i].path;
        r = print_found(userdata, &after, NULL, paths, n);
        if (r >= 0 && arg_legend)
                printf("\n1 device added.\n");
        return r;
}

int verb_remove(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        Device *d;
        int r;

        r = fetch_device(userdata, argv[1], &l, &d);
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
        r = call_kasamond(userdata, m, KASA_ACTION_MANAGE_DEVICES, d, NULL, "remove %s", device_name(d));
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:s}", "id", d->id, "alias",
                                                               d->alias ? d->alias : "");
                return json_print(o);
        }
        return 0;
}
