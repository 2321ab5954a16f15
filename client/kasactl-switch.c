/* SPDX-License-Identifier: MIT */

/* on, off, toggle: switching relays. */

#include <errno.h>
#include <stdlib.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"

static int switch_device(sd_bus *bus, Device *d, const char *verb, bool *ret_on) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        bool toggle = streq(verb, "toggle");
        int r, on;

        r = new_call(bus, d->path, KASA_DEVICE_IFACE, toggle ? "Toggle" : "SetOn", true, &m);
        if (r >= 0 && !toggle)
                r = sd_bus_message_append(m, "b", streq(verb, "on"));
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = toggle ? call_kasamond(bus, m, KASA_ACTION_SWITCH, d, &reply, "toggle %s", device_name(d))
                   : call_kasamond(bus, m, KASA_ACTION_SWITCH, d, &reply, "switch %s %s", device_name(d), verb);
        if (r < 0)
                return r;
        if (toggle) {
                r = sd_bus_message_read(reply, "b", &on);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse the reply: %m");
        } else
                on = streq(verb, "on");
        *ret_on = on;
        return 0;
}

int verb_switch(int argc, char **argv, void *userdata) {
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
