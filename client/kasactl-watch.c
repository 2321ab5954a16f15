/* SPDX-License-Identifier: MIT */

/* watch: follow what kasamond signals, without polling it. */

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

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
        int r = 0, k;

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
        k = fclose(TAKE_PTR(f));
        if (r < 0)
                return r; /* print_status() said why */
        if (k != 0)
                return log_oom();
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

static void watch_print_change(Watch *w, const Device *d, const DeviceProperty *p) {
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
                const DeviceProperty *p;
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

/* A device came: the signal carries all its properties, so only the new
 * object is read (reading every object again would make a discovery of n
 * devices cost n^2). */
static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(device_done) Device d = DEVICE_NULL;
        Watch *w = userdata;
        const char *path;
        Device *known;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return 0;
        known = device_list_by_path(&w->devices, path);
        if (known) {
                /* An interface added to a known object (a strip's meter): merge it in. */
                r = device_read_interfaces(known, m);
                if (r < 0)
                        log_debug_errno(r, "Failed to parse InterfacesAdded of %s, ignoring: %m", path);
        } else {
                r = device_read_interfaces(&d, m);
                if (r < 0)
                        log_debug_errno(r, "Failed to parse InterfacesAdded of %s, ignoring: %m", path);
                if (r <= 0)
                        return 0;
                d.path = strdup(path);
                if (!d.path || device_list_insert(&w->devices, &d) < 0) {
                        log_oom();
                        return sd_event_exit(w->event, EXIT_FAILURE);
                }
        }
        watch_schedule_redraw(w);
        return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watch *w = userdata;
        const char *path, *iface;
        Device *d;

        if (sd_bus_message_read(m, "o", &path) < 0 || sd_bus_message_enter_container(m, 'a', "s") < 0)
                return 0;
        while (sd_bus_message_read(m, "s", &iface) > 0) {
                d = device_list_by_path(&w->devices, path);
                if (d && streq(iface, KASA_DEVICE_IFACE))
                        device_list_remove(&w->devices, path);
                else if (d && streq(iface, KASA_METER_IFACE))
                        d->metered = false;
        }
        watch_schedule_redraw(w);
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
        if (w->running) {
                /* A new daemon: read everything once. */
                if (watch_refetch(w) < 0)
                        sd_event_exit(w->event, EXIT_FAILURE);
                return 0;
        }
        device_list_done(&w->devices);
        watch_schedule_redraw(w);
        return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int verb_watch(int argc, char **argv, void *userdata) {
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
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", on_interfaces_added,
                                        &w);
        if (r >= 0)
                r = sd_bus_match_signal(w.bus, NULL, KASA_BUS_NAME, KASA_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                                        on_interfaces_removed, &w);
        /* Only kasamond's name: every client that comes and goes changes an owner. */
        if (r >= 0)
                r = sd_bus_add_match(w.bus, NULL,
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                     "arg0='" KASA_BUS_NAME "'",
                                     on_owner_changed, &w);
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

