/* SPDX-License-Identifier: MIT */

#include "fire-caller.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"

#define SYSTEMD1 "org.freedesktop.systemd1"
#define SYSTEMD1_UNIT_PREFIX "/org/freedesktop/systemd1/unit"

typedef struct FireCaller {
        FireCallers *owner;
        sd_bus_message *call;
        sd_bus_slot *slot; /* the question open */
        bool done, own;
} FireCaller;

struct FireCallers {
        const FireCallerOps *ops;
        void *userdata;
        GHashTable *by_call; /* sd_bus_message* -> FireCaller* */
};

static void caller_free(gpointer p) {
        FireCaller *f = p;
        sd_bus_slot_unref(f->slot);
        sd_bus_message_unref(f->call);
        free(f);
}

FireCallers *fire_callers_new(const FireCallerOps *ops, void *userdata) {
        FireCallers *c = calloc(1, sizeof(FireCallers));
        if (!c)
                return NULL;
        c->ops = ops;
        c->userdata = userdata;
        c->by_call = g_hash_table_new_full(NULL, NULL, NULL, caller_free);
        return c;
}

FireCallers *fire_callers_free(FireCallers *c) {
        if (!c)
                return NULL;
        g_hash_table_unref(c->by_call);
        free(c);
        return NULL;
}

/* The answer is here: the method runs again. */
static void finish(FireCaller *f) {
        int r;

        f->slot = sd_bus_slot_unref(f->slot);
        f->done = true;
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(f->call), f->call);
        if (r < 0) {
                log_error_errno(r, "Failed to resume a Fire call after its caller was named: %m");
                (void) sd_bus_reply_method_errorf(f->call, SD_BUS_ERROR_FAILED, "Failed to identify the caller.");
                g_hash_table_remove(f->owner->by_call, f->call);
        }
}

static int on_unit(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        FireCaller *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        _cleanup_free_ char *unit = NULL;
        const char *path;
        int r;

        r = e ? -sd_bus_error_get_errno(e) : sd_bus_message_read(reply, "o", &path);
        /* A unit's object path is its escaped name (systemd's
         * unit_dbus_path()), the Id property's value. */
        if (r >= 0)
                r = sd_bus_path_decode(path, SYSTEMD1_UNIT_PREFIX, &unit);
        if (r == 0)
                r = -EBADMSG;
        f->own = f->owner->ops->is_own_unit(f->owner->userdata, f->call, r < 0 ? NULL : unit, r < 0 ? r : 0);
        finish(f);
        return 0;
}

/* UnixUserID and ProcessID of GetConnectionCredentials' a{sv}. */
static int read_creds(sd_bus_message *reply, uint32_t *ret_uid, uint32_t *ret_pid) {
        bool have_uid = false, have_pid = false;
        const char *key;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        return r;
                if (strcmp(key, "UnixUserID") == 0) {
                        r = sd_bus_message_read(reply, "v", "u", ret_uid);
                        have_uid = r >= 0;
                } else if (strcmp(key, "ProcessID") == 0) {
                        r = sd_bus_message_read(reply, "v", "u", ret_pid);
                        have_pid = r >= 0;
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return have_uid && have_pid ? 0 : -ENODATA;
}

static int on_creds(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        FireCaller *f = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        uint32_t uid = 0, pid = 0;
        int r;

        r = e ? -sd_bus_error_get_errno(e) : read_creds(reply, &uid, &pid);
        if (r < 0 || !f->owner->ops->is_service_user(f->owner->userdata, (uid_t) uid)) {
                if (r < 0)
                        log_debug_errno(r, "Failed to get the credentials of a Fire caller (not its timer): %m");
                finish(f);
                return 0;
        }
        f->slot = sd_bus_slot_unref(f->slot);
        r = sd_bus_call_method_async(sd_bus_message_get_bus(f->call), &f->slot, SYSTEMD1, "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "GetUnitByPID", on_unit, f, "u", pid);
        if (r < 0) {
                f->own = f->owner->ops->is_own_unit(f->owner->userdata, f->call, NULL, r);
                finish(f);
        }
        return 0;
}

int fire_caller_check(FireCallers *c, sd_bus_message *call, bool *ret_own) {
        FireCaller *f = g_hash_table_lookup(c->by_call, call);
        const char *sender;
        int r;

        if (f) {
                if (!f->done)
                        return 0;
                *ret_own = f->own;
                return 1;
        }
        sender = sd_bus_message_get_sender(call);
        if (!sender)
                return -EINVAL;
        f = calloc(1, sizeof(FireCaller));
        if (!f)
                return -ENOMEM;
        f->owner = c;
        f->call = sd_bus_message_ref(call);
        r = sd_bus_call_method_async(sd_bus_message_get_bus(call), &f->slot, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionCredentials",
                                     on_creds, f, "s", sender);
        if (r < 0) {
                caller_free(f);
                return r;
        }
        g_hash_table_insert(c->by_call, call, f);
        return 0;
}

void fire_caller_forget(FireCallers *c, sd_bus_message *call) {
        FireCaller *f = g_hash_table_lookup(c->by_call, call);

        /* One still being asked gets its re-run when the answer comes. */
        if (f && f->done)
                g_hash_table_remove(c->by_call, call);
}
