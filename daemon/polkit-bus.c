/* SPDX-License-Identifier: MIT */

/* PolkitOps on the real bus: every question is an asynchronous call. */

#include <errno.h>
#include <stdint.h>

#include "macro.h"
#include "polkit.h"

static int on_uid_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint32_t uid = 0;
        int r;

        r = e ? -sd_bus_error_get_errno(e) : sd_bus_message_read(reply, "u", &uid);
        polkit_query_uid_answered(userdata, r < 0 ? r : 0, (uid_t) uid);
        return 0;
}

static int ask_uid(void *userdata, sd_bus_message *call, PolkitQuery *q, void **ret_pending) {
        const char *sender = sd_bus_message_get_sender(call);
        sd_bus_slot *slot;
        int r;

        if (!sender)
                return -EINVAL;
        r = sd_bus_call_method_async(sd_bus_message_get_bus(call), &slot, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixUser",
                                     on_uid_reply, q, "s", sender);
        if (r < 0)
                return r;
        *ret_pending = slot;
        return 0;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int authorized = 0, challenge = 0, r;

        if (e) {
                polkit_query_polkit_answered(userdata, e->message ?: e->name, false, false);
                return 0;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        polkit_query_polkit_answered(userdata, r < 0 ? "malformed reply from polkit" : NULL, authorized, challenge);
        return 0;
}

static int ask_polkit(void *userdata, sd_bus_message *call, const char *action, bool interactive, PolkitQuery *q,
                      void **ret_pending) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus = sd_bus_message_get_bus(call);
        const char *sender = sd_bus_message_get_sender(call);
        sd_bus_slot *slot;
        int r;

        if (!sender)
                return -EINVAL;
        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        /* Subject: the caller's unique name on the bus we serve; polkit
         * asks the bus for its pid and uid itself, race-free. */
        r = sd_bus_message_append(m, "(sa{sv})s", "system-bus-name", 1, "name", "s", sender, action);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a{ss}us", 0, (uint32_t) (interactive ? 1 : 0), "");
        if (r < 0)
                return r;
        /* Interactive authentication may take as long as a person needs. */
        r = sd_bus_call_async(bus, &slot, m, on_polkit_reply, q, UINT64_MAX);
        if (r < 0)
                return r;
        *ret_pending = slot;
        return 0;
}

static void release(void *userdata, void *pending) {
        sd_bus_slot_unref(pending);
}

static int resume(void *userdata, sd_bus_message *call) {
        return sd_bus_enqueue_for_read(sd_bus_message_get_bus(call), call);
}

static void fail(void *userdata, sd_bus_message *call) {
        (void) sd_bus_reply_method_errorf(call, SD_BUS_ERROR_FAILED, "Authorization check failed.");
}

static bool allow_interactive(void *userdata, sd_bus_message *call) {
        return sd_bus_message_get_allow_interactive_authorization(call) > 0;
}

static sd_bus_message *ref(void *userdata, sd_bus_message *call) {
        return sd_bus_message_ref(call);
}

static void unref(void *userdata, sd_bus_message *call) {
        sd_bus_message_unref(call);
}

static const char *sender(void *userdata, sd_bus_message *call) {
        return sd_bus_message_get_sender(call);
}

const PolkitOps polkit_bus_ops = {
        .ask_uid = ask_uid,
        .ask_polkit = ask_polkit,
        .release = release,
        .resume = resume,
        .fail = fail,
        .allow_interactive = allow_interactive,
        .ref = ref,
        .unref = unref,
        .sender = sender,
};
