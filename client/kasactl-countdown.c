/* SPDX-License-Identifier: MIT */

/* countdown: switch a device once after a while, show or cancel that. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

static int show_countdown(sd_bus *bus, const Device *d) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *action;
        uint64_t at;
        int r;

        r = sd_bus_get_property(bus, KASA_BUS_NAME, d->path, KASA_DEVICE_IFACE, "Countdown", &error, &reply, "(st)");
        if (r < 0)
                return log_call_error(&error, r, "read the countdown", NULL, d);
        r = sd_bus_message_read(reply, "(st)", &action, &at);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:o,s:o}", "id", d->id, "action",
                                                              *action ? json_string(action) : json_null(), "fires_at",
                                                              *action ? json_time(at) : json_null());
                return o ? json_print(o) : log_oom();
        }
        if (!*action) {
                printf("No countdown runs on %s.\n", device_name(d));
                return 0;
        }
        char buf[TIME_BUF_MAX];
        uint64_t now = now_usec();
        uint64_t left = at > now ? (at - now + USEC_PER_SEC / 2) / USEC_PER_SEC : 0;
        printf("%s: %s at %s (in %" PRIu64 "min %02" PRIu64 "s).\n", device_name(d), action,
               format_time(buf, sizeof buf, at, false), left / 60, left % 60);
        return 0;
}

int verb_countdown(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        sd_bus *bus = userdata;
        Device *d;
        int64_t span;
        int r;

        if (argc == 3 || (arg_cancel && argc != 2))
                return log_error_errno(EINVAL, "Usage: kasactl countdown DEV SPAN ACTION, or DEV --cancel, or DEV.");
        r = fetch_device(bus, argv[1], &l, &d);
        if (r < 0)
                return r;
        if (argc == 2 && !arg_cancel)
                return show_countdown(bus, d);
        if (arg_cancel) {
                r = new_call(bus, d->path, KASA_DEVICE_IFACE, "CancelCountdown", true, &m);
                if (r < 0)
                        return log_error_errno(r, "Failed to build the call: %m");
                r = call_kasamond(bus, m, KASA_ACTION_SWITCH, d, NULL, "cancel the countdown of %s",
                                  device_name(d));
                if (r < 0)
                        return r;
                if (arg_json == JSON_OFF)
                        printf("Cancelled the countdown of %s.\n", device_name(d));
                return 0;
        }
        r = parse_span(argv[2], &span);
        if (r < 0 || span < (int64_t) USEC_PER_SEC || span % USEC_PER_SEC != 0)
                return log_error_errno(EINVAL, "Invalid SPAN '%s': whole seconds such as 90, 30min or 1h30min.",
                                       argv[2]);
        if (!streq(argv[3], "on") && !streq(argv[3], "off") && !streq(argv[3], "toggle"))
                return log_error_errno(EINVAL, "Invalid ACTION '%s': on, off or toggle.", argv[3]);
        if (span / (int64_t) USEC_PER_SEC > UINT32_MAX)
                return log_error_errno(EINVAL, "Invalid SPAN '%s': too long.", argv[2]);
        r = new_call(bus, d->path, KASA_DEVICE_IFACE, "StartCountdown", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "su", argv[3], (uint32_t) (span / (int64_t) USEC_PER_SEC));
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(bus, m, KASA_ACTION_SWITCH, d, NULL, "start the countdown of %s", device_name(d));
        if (r < 0)
                return r;
        return show_countdown(bus, d);
}
