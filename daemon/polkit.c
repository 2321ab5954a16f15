/* SPDX-License-Identifier: MIT */

#include "polkit.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"

#define UID_INVALID ((uid_t) -1)

typedef enum QueryState {
        QUERY_UID,                 /* waiting for the bus to name the caller */
        QUERY_POLKIT,              /* waiting for CheckAuthorization */
        QUERY_DONE,                /* answered, waiting for the re-run */
} QueryState;

struct PolkitQuery {
        PolkitQueries *owner;
        sd_bus_message *call;      /* the method call waiting for the answer */
        void *pending;             /* the ops' handle of the open question */
        char *action;
        QueryState state;
        bool allowed;
        bool challenge;            /* interactive authentication would help */
        char *failure;             /* polkit could not be asked: why */
        bool bridge;               /* the caller is the bridge: its token decides, at the re-run */
        bool uid_only;             /* polkit_caller_uid(): no action, the uid is the answer */
        bool uid_unknown;          /* denied: the caller might be the bridge */
        uid_t uid;
        int uid_error;
};

struct PolkitQueries {
        const PolkitOps *ops;
        void *userdata;
        GHashTable *by_call;       /* sd_bus_message* -> PolkitQuery* */
        Access *access;
};

static void query_release(PolkitQuery *q) {
        if (q->pending)
                q->owner->ops->release(q->owner->userdata, TAKE_PTR(q->pending));
}

static void query_free(gpointer p) {
        PolkitQuery *q = p;

        query_release(q);
        q->owner->ops->unref(q->owner->userdata, q->call);
        free(q->action);
        free(q->failure);
        free(q);
}

PolkitQueries *polkit_queries_new_with_ops(const PolkitOps *ops, void *userdata) {
        PolkitQueries *q = calloc(1, sizeof(PolkitQueries));

        if (!q)
                return NULL;
        q->ops = ops;
        q->userdata = userdata;
        q->by_call = g_hash_table_new_full(NULL, NULL, NULL, query_free);
        return q;
}

PolkitQueries *polkit_queries_new(void) {
        return polkit_queries_new_with_ops(&polkit_bus_ops, NULL);
}

void polkit_queries_set_access(PolkitQueries *q, Access *access) {
        q->access = access;
}

PolkitQueries *polkit_queries_free(PolkitQueries *q) {
        if (!q)
                return NULL;
        g_hash_table_unref(q->by_call);
        free(q);
        return NULL;
}

static void finish(PolkitQuery *q, const char *failure, bool allowed, bool challenge) {
        PolkitQueries *owner = q->owner;
        int r;

        q->state = QUERY_DONE;
        q->allowed = allowed;
        q->challenge = challenge;
        if (failure) {
                q->failure = strdup(failure);
                if (!q->failure)
                        q->allowed = false;
        }

        /* Run the method again; it finds the answer in polkit_check(). */
        r = owner->ops->resume(owner->userdata, q->call);
        if (r < 0) {
                log_error_errno(r, "Failed to resume a method call after polkit answered: %m");
                owner->ops->fail(owner->userdata, q->call);
                g_hash_table_remove(owner->by_call, q->call);
        }
}

static void ask_polkit(PolkitQuery *q) {
        PolkitQueries *owner = q->owner;
        int r;

        q->state = QUERY_POLKIT;
        r = owner->ops->ask_polkit(owner->userdata, q->call, q->action,
                                   owner->ops->allow_interactive(owner->userdata, q->call), q, &q->pending);
        if (r < 0)
                finish(q, strerror(-r), false, false);
}

void polkit_query_uid_answered(PolkitQuery *q, int error, uid_t uid) {
        Access *access = q->owner->access;

        query_release(q);
        if (q->uid_only) {
                q->uid = uid;
                q->uid_error = error < 0 ? error : 0;
                finish(q, NULL, error >= 0, false);
                return;
        }
        /* The bridge before root: were its uid 0 (the manager refuses
         * that), its HTTP users must still not be root. */
        if (error >= 0 && access && access_is_bridge(access, uid)) {
                q->bridge = true;
                finish(q, NULL, false, false);
                return;
        }
        if (error < 0 && access && access_have_bridge(access)) {
                log_debug_errno(error, "Failed to get the uid of a caller, denying (it might be the bridge): %m");
                q->uid_unknown = true;
                finish(q, NULL, false, false);
                return;
        }
        if (error >= 0 && uid == 0) {
                finish(q, NULL, true, false);
                return;
        }
        /* Not knowing who called is no reason to deny: polkit finds out. */
        if (error < 0)
                log_debug_errno(error, "Failed to get the uid of a caller (polkit decides), ignoring: %m");
        ask_polkit(q);
}

void polkit_query_polkit_answered(PolkitQuery *q, const char *failure, bool authorized, bool challenge) {
        query_release(q);
        finish(q, failure, !failure && authorized, challenge);
}

void polkit_forget(PolkitQueries *owner, sd_bus_message *call) {
        PolkitQuery *q = g_hash_table_lookup(owner->by_call, call);

        /* A call still waiting for polkit gets its reply when the answer
         * comes; only answered ones are stuck here. */
        if (q && q->state == QUERY_DONE)
                g_hash_table_remove(owner->by_call, call);
}

static int bridge_verdict(PolkitQueries *owner, PolkitQuery *q, const char *action, sd_bus_error *error) {
        AccessRole role;
        int r;

        /* Decided now, not when the uid came: a token revoked meanwhile
         * no longer counts. */
        r = access_check(owner->access, owner->ops->sender(owner->userdata, q->call), action, &role);
        if (r > 0)
                return 1;
        if (r == -EPERM)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not authorized for %s: the API token's role %s does not allow it.", action,
                                         access_role_to_string(role));
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Not authorized for %s: no API token bound to this connection.", action);
}

static int verdict(PolkitQueries *owner, PolkitQuery *q, const char *action, sd_bus_error *error) {
        if (q->uid_only)
                return q->allowed ? 1 : sd_bus_error_set_errnof(error, q->uid_error ?: -ESRCH,
                                                                "Failed to identify the caller: %s",
                                                                strerror(-(q->uid_error ?: -ESRCH)));
        if (q->bridge)
                return bridge_verdict(owner, q, action, error);
        if (q->allowed)
                return 1;
        if (q->uid_unknown)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not authorized for %s: the caller's uid is unknown.", action);
        if (q->failure) {
                log_warning("Denied %s: polkit could not be asked: %s", action, q->failure);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not authorized for %s: polkit could not be asked (%s).", action,
                                         q->failure);
        }
        if (q->challenge && !owner->ops->allow_interactive(owner->userdata, q->call))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                         "Interactive authentication is required for %s.", action);
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Not authorized for %s.", action);
}

static int check(PolkitQueries *owner, sd_bus_message *call, const char *action, uid_t *ret_uid,
                 sd_bus_error *error) {
        PolkitQuery *q = g_hash_table_lookup(owner->by_call, call);
        int r;

        if (q) {
                if (q->state != QUERY_DONE)
                        return 0;
                r = verdict(owner, q, action, error);
                if (r > 0 && ret_uid)
                        *ret_uid = q->uid;
                g_hash_table_remove(owner->by_call, call);
                return r;
        }

        q = calloc(1, sizeof(PolkitQuery));
        if (!q)
                return sd_bus_error_set_errno(error, log_oom());
        q->owner = owner;
        q->call = owner->ops->ref(owner->userdata, call);
        q->uid_only = !action;
        q->action = strdup(action ?: "");
        if (!q->action) {
                query_free(q);
                return sd_bus_error_set_errno(error, log_oom());
        }
        g_hash_table_insert(owner->by_call, call, q);

        r = owner->ops->ask_uid(owner->userdata, call, q, &q->pending);
        if (r < 0)
                /* The same as an answer that the bus cannot say. */
                polkit_query_uid_answered(q, r, UID_INVALID);
        /* Even an answer known now comes through the re-run: one path. */
        return 0;
}

int polkit_check(PolkitQueries *owner, sd_bus_message *call, const char *action, sd_bus_error *error) {
        return check(owner, call, action, NULL, error);
}

int polkit_caller_uid(PolkitQueries *owner, sd_bus_message *call, uid_t *ret_uid, sd_bus_error *error) {
        return check(owner, call, NULL, ret_uid, error);
}
