/* SPDX-License-Identifier: MIT */

/* The API token methods of org.kasamond.Kasa1.Manager (a vtable of their
 * own on the manager's path), the end of a binding with its bus
 * connection, and TokenRevoked when a token is revoked or expires: the
 * bridge serves reads from its cache, so the daemon tells it at once. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "kasa-time.h"
#include "log.h"
#include "manager-access.h"
#include "manager.h"
#include "polkit.h"

static void emit_revoked(const char *id, void *userdata) {
        Manager *mgr = userdata;
        int r;

        r = sd_bus_emit_signal(mgr->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "TokenRevoked", "s", id);
        if (r < 0)
                log_warning_errno(r, "Failed to emit TokenRevoked for API token %s, ignoring: %m", id);
}

static int64_t now_usec(void) {
        return (int64_t) realtime_usec();
}

static void arm_expiry(Manager *mgr);

static int on_token_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *mgr = userdata;
        int64_t now = now_usec();

        if (access_expire(mgr->access, mgr->tokens_expired_until, now, emit_revoked, mgr) > 0)
                log_debug("API tokens expired: their bindings ended");
        mgr->tokens_expired_until = now;
        arm_expiry(mgr);
        return 0;
}

/* A timer at the next expiry of a token. */
static void arm_expiry(Manager *mgr) {
        int64_t next = access_next_expiry(mgr->access, mgr->tokens_expired_until);
        int r;

        if (next == 0) {
                if (mgr->token_expiry)
                        (void) sd_event_source_set_enabled(mgr->token_expiry, SD_EVENT_OFF);
                return;
        }
        if (!mgr->token_expiry)
                r = sd_event_add_time(mgr->event, &mgr->token_expiry, CLOCK_REALTIME, (uint64_t) next,
                                      100 * 1000, on_token_expiry, mgr);
        else {
                r = sd_event_source_set_time(mgr->token_expiry, (uint64_t) next);
                if (r >= 0)
                        r = sd_event_source_set_enabled(mgr->token_expiry, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to arm the timer of API token expiry, ignoring: %m");
}

static int method_create_token(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        char secret[ACCESS_SECRET_MAX];
        const AccessToken *t;
        const char *name, *role_name;
        uint64_t expires;
        AccessRole role;
        int r;

        r = sd_bus_message_read(m, "sst", &name, &role_name, &expires);
        if (r < 0)
                return r;
        if (!access_name_is_valid(name))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid token name '%s': 1 to %d letters, digits and ._@+-, not starting "
                                         "with '-' and not 8 hex digits (a token id).",
                                         name, ACCESS_NAME_MAX);
        role = access_role_from_string(role_name);
        if (role < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid role '%s': viewer, operator or admin.", role_name);
        if (expires > INT64_MAX)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid expiry %" PRIu64 ".", expires);
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_ACCESS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_token_create(mgr, name, role, (int64_t) expires, &t, secret);
        if (r == -EEXIST)
                return sd_bus_error_setf(error, KASA_ERROR_ALREADY_KNOWN, "A token named '%s' exists already.", name);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid expiry %" PRIu64 ": not in the future.", expires);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to create the token: %s", strerror(-r));
        arm_expiry(mgr);
        r = sd_bus_reply_method_return(m, "ss", t->id, secret);
        explicit_bzero(secret, sizeof secret);
        return r;
}

static int method_list_tokens(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        _cleanup_free_ char *json = NULL;
        int r;

        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_ACCESS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        json = access_list_json(mgr->access);
        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", json);
}

static int method_revoke_token(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        char id[ACCESS_ID_MAX];
        const char *which;
        int r;

        r = sd_bus_message_read(m, "s", &which);
        if (r < 0)
                return r;
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_ACCESS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_token_revoke(mgr, which, id);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "No token with id or name '%s'.", which);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to revoke the token: %s", strerror(-r));
        emit_revoked(id, mgr);
        return sd_bus_reply_method_return(m, NULL);
}

typedef struct OwnerCheck {
        Manager *manager;
        char name[];
} OwnerCheck;

static int on_name_owner(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        OwnerCheck *c = userdata;

        /* The connection left while BindToken waited for its uid: its
         * NameOwnerChanged came before the binding, which ends here. */
        if (sd_bus_message_is_method_error(reply, NULL) && access_unbind(c->manager->access, c->name))
                log_debug("Dropped the API token binding of %s: the connection is gone", c->name);
        return 0;
}

/* Unique names are never reused, so a binding left by a connection gone
 * unseen could not be used by anyone; this only keeps them from piling up. */
static void check_owner(Manager *mgr, const char *name) {
        OwnerCheck *c = malloc(sizeof(OwnerCheck) + strlen(name) + 1);
        sd_bus_slot *slot;
        int r;

        if (!c) {
                log_oom();
                return;
        }
        c->manager = mgr;
        strcpy(c->name, name);
        r = sd_bus_call_method_async(mgr->bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_name_owner, c, "s", name);
        if (r < 0) {
                log_debug_errno(r, "Failed to ask whether %s is still there, ignoring: %m", name);
                free(c);
                return;
        }
        /* The bus keeps the slot until the answer; c goes with it. */
        (void) sd_bus_slot_set_destroy_callback(slot, free);
        (void) sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
}

static int method_bind_token(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        const char *secret, *sender = sd_bus_message_get_sender(m);
        const AccessToken *t;
        uint64_t retry;
        uid_t uid;
        int r;

        r = sd_bus_message_read(m, "s", &secret);
        if (r < 0)
                return r;
        if (!sender)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "BindToken needs a bus connection.");
        r = polkit_caller_uid(mgr->polkit, m, &uid, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_token_bind(mgr, sender, uid, secret, &t, &retry);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, KASA_ERROR_RATE_LIMITED,
                                         "Too many failed attempts: try again in %" PRIu64 " s.",
                                         (retry + 999999) / 1000000);
        if (r == -EACCES)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "invalid or expired API token");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to bind the token: %s", strerror(-r));
        check_owner(mgr, sender);
        return sd_bus_reply_method_return(m, "ss", t->id, access_role_to_string(t->role));
}

static const sd_bus_vtable bus_manager_access_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("CreateToken", SD_BUS_ARGS("s", name, "s", role, "t", expires),
                                SD_BUS_RESULT("s", id, "s", secret), method_create_token, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListTokens", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_list_tokens,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RevokeToken", SD_BUS_ARGS("s", token), SD_BUS_NO_RESULT, method_revoke_token,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("BindToken", SD_BUS_ARGS("s", secret), SD_BUS_RESULT("s", id, "s", role),
                                method_bind_token, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("TokenRevoked", SD_BUS_ARGS("s", id), 0),
        SD_BUS_VTABLE_END,
};

static int on_name_owner_changed(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
        Manager *mgr = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(msg, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] == ':' && !*new_owner && access_unbind(mgr->access, name))
                log_debug("Dropped the API token binding of %s: the connection closed", name);
        return 0;
}

int bus_manager_access_register(Manager *m) {
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, bus_manager_access_vtable,
                                     m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the API token methods: %m");
        /* Before the name is taken: no binding can come before the match. */
        r = sd_bus_match_signal_async(m->bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", on_name_owner_changed, NULL, m);
        if (r < 0)
                return log_error_errno(r, "Failed to watch bus connections closing: %m");
        /* Tokens that expired before now have no bindings to end. */
        m->tokens_expired_until = now_usec();
        arm_expiry(m);
        return 0;
}
