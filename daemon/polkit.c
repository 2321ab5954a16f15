/* SPDX-License-Identifier: MIT */

#include "polkit.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"

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
};

struct PolkitQueries {
        const PolkitOps *ops;
        void *userdata;
        GHashTable *by_call;       /* sd_bus_message* -> PolkitQuery* */
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
        query_release(q);
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

static int verdict(PolkitQueries *owner, PolkitQuery *q, const char *action, sd_bus_error *error) {
        if (q->allowed)
                return 1;
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

int polkit_check(PolkitQueries *owner, sd_bus_message *call, const char *action, sd_bus_error *error) {
        PolkitQuery *q = g_hash_table_lookup(owner->by_call, call);
        int r;

        if (q) {
                if (q->state != QUERY_DONE)
                        return 0;
                r = verdict(owner, q, action, error);
                g_hash_table_remove(owner->by_call, call);
                return r;
        }

        q = calloc(1, sizeof(PolkitQuery));
        if (!q)
                return sd_bus_error_set_errno(error, log_oom());
        q->owner = owner;
        q->call = owner->ops->ref(owner->userdata, call);
        q->action = strdup(action);
        if (!q->action) {
                query_free(q);
                return sd_bus_error_set_errno(error, log_oom());
        }
        g_hash_table_insert(owner->by_call, call, q);

        r = owner->ops->ask_uid(owner->userdata, call, q, &q->pending);
        if (r < 0) {
                log_debug_errno(r, "Failed to ask for the uid of a caller (polkit decides), ignoring: %m");
                ask_polkit(q);
        }
        /* Even an answer known now comes through the re-run: one path. */
        return 0;
}
