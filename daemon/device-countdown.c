/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <string.h>

#include "device.h"
#include "kasa-time.h"
#include "log.h"

static const char *const action_names[_DEVICE_ACTION_MAX] = {
        [DEVICE_ACTION_ON] = "on",
        [DEVICE_ACTION_OFF] = "off",
        [DEVICE_ACTION_TOGGLE] = "toggle",
};

const char *device_action_to_string(DeviceAction a) {
        return a >= 0 && a < _DEVICE_ACTION_MAX ? action_names[a] : NULL;
}

DeviceAction device_action_from_string(const char *s) {
        for (DeviceAction a = 0; s && a < _DEVICE_ACTION_MAX; a++)
                if (strcmp(s, action_names[a]) == 0)
                        return a;
        return _DEVICE_ACTION_INVALID;
}

int device_apply_action(Device *d, DeviceAction a, DeviceCommandFn cb, void *userdata) {
        switch (a) {
        case DEVICE_ACTION_ON:
        case DEVICE_ACTION_OFF:
                return device_set_on(d, a == DEVICE_ACTION_ON, cb, userdata);
        case DEVICE_ACTION_TOGGLE:
                return device_toggle(d, cb, userdata);
        default:
                return -EINVAL;
        }
}

static void on_countdown_done(Device *d, const DeviceCommandResult *res, void *userdata) {
        if (res->error < 0)
                log_warning_errno(res->error, "%s: countdown could not switch it %s: %m", d->id,
                                  res->on ? "on" : "off");
        else if (res->device_err != 0 || res->n_failed > 0)
                log_warning("%s: countdown could not switch it %s: the device refused (err_code %d)", d->id,
                            res->on ? "on" : "off", res->device_err);
        else
                log_info("%s: countdown switched it %s", d->id, res->on ? "on" : "off");
}

static void countdown_clear(Device *d) {
        d->countdown_timer = d->host->net->disable_unref(d->countdown_timer);
        d->countdown_realtime_usec = 0;
        d->changes |= DEVICE_CHANGED_COUNTDOWN;
}

static int on_countdown_timer(NetSource *s, uint64_t usec, void *userdata) {
        Device *d = userdata;
        DeviceAction a = d->countdown_action;
        int r;

        countdown_clear(d);
        d->host->ops->changed(d->host->userdata, d);
        r = device_apply_action(d, a, on_countdown_done, NULL);
        if (r < 0)
                log_warning_errno(r, "%s: countdown could not switch it %s: %m", d->id, device_action_to_string(a));
        return 0;
}

int device_start_countdown(Device *d, DeviceAction a, uint64_t seconds) {
        const NetOps *net = d->host->net;
        NetSource *s;
        int r;

        if (a < 0 || a >= _DEVICE_ACTION_MAX || seconds < 1 || seconds > DEVICE_COUNTDOWN_MAX_SEC)
                return -EINVAL;
        /* Monotonic: a clock step (NTP at boot, a time zone change) must
         * not shorten or stretch "off in 30 minutes". */
        uint64_t due = net->now(d->host->event, CLOCK_MONOTONIC) + seconds * USEC_PER_SEC;
        r = net->add_time(d->host->event, &s, due, 0, on_countdown_timer, d);
        if (r < 0)
                return r;
        net->disable_unref(d->countdown_timer);
        d->countdown_timer = s;
        d->countdown_action = a;
        d->countdown_realtime_usec = (uint64_t) d->host->ops->now_ms(d->host->userdata) * USEC_PER_MSEC +
                                     seconds * USEC_PER_SEC;
        d->changes |= DEVICE_CHANGED_COUNTDOWN;
        d->host->ops->changed(d->host->userdata, d);
        return 0;
}

bool device_cancel_countdown(Device *d) {
        if (!d->countdown_timer)
                return false;
        countdown_clear(d);
        d->host->ops->changed(d->host->userdata, d);
        return true;
}
