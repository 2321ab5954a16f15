/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <unistd.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

/* kasactl export: Manager.Export's pipe copied to stdout as it comes, so
 * an export of any size passes through in constant memory. */

static int copy_fd(int fd) {
        char buf[65536];
        for (;;) {
                ssize_t n = read(fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return log_error_errno(errno, "Failed to read the export: %m");
                if (n == 0)
                        return 0;
                for (ssize_t done = 0; done < n;) {
                        ssize_t w = write(STDOUT_FILENO, buf + done, (size_t) (n - done));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return log_error_errno(errno, "Failed to write the export: %m");
                        done += w;
                }
        }
}

int verb_export(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        uint64_t now = now_usec(), since, until;
        int r, fd;

        if (!streq(arg_format, "csv") && !streq(arg_format, "json"))
                return log_error_errno(EINVAL, "Invalid --format='%s': use csv or json.", arg_format);
        r = parse_range(now - 24 * USEC_PER_HOUR, now, &since, &until);
        if (r < 0)
                return r;
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "Export", false, &m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "o");
        for (int i = 1; r >= 0 && i < argc; i++) {
                Device *d;

                r = resolve_device(&l, argv[i], &d);
                if (r < 0)
                        return r;
                if (!d->metered) {
                        log_error("%s has no energy meter, so nothing is recorded of it.", device_name(d));
                        return -EMEDIUMTYPE;
                }
                r = sd_bus_message_append(m, "o", d->path);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "ttss", since, until, arg_resolution, arg_format);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        /* --fields=start,energy_wh: one field a word. */
        for (const char *p = arg_fields; r >= 0 && p && *p;) {
                size_t n = strcspn(p, ",");
                _cleanup_free_ char *word = strndup(p, n);
                if (!word)
                        return log_oom();
                r = sd_bus_message_append(m, "s", word);
                p += n + (p[n] == ',');
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "b", arg_costs);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, NULL, NULL, &reply, "export");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        return copy_fd(fd);
}
