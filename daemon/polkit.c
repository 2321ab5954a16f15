/* SPDX-License-Identifier: MIT */

#include "polkit.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"

typedef struct Query {
        PolkitQueries *owner;
        sd_bus_message *call;      /* the method call waiting for the answer */
        sd_bus_slot *slot;         /* CheckAuthorization in flight */
        char *action;
        bool done;
        bool allowed;
        bool challenge;            /* interactive authentication would help */
        char *failure;             /* polkit could not be asked: why */
} Query;

struct PolkitQueries {
        GHashTable *by_call;       /* sd_bus_message* -> Query* */
};

static void query_free(gpointer p) {
        Query *q = p;

        sd_bus_slot_unref(q->slot);
        sd_bus_message_unref(q->call);
        free(q->action);
        free(q->failure);
        free(q);
}

PolkitQueries *polkit_queries_new(void) {
        PolkitQueries *q = calloc(1, sizeof(PolkitQueries));

        if (!q)
                return NULL;
        q->by_call = g_hash_table_new_full(NULL, NULL, NULL, query_free);
        return q;
}

PolkitQueries *polkit_queries_free(PolkitQueries *q) {
        if (!q)
                return NULL;
        g_hash_table_unref(q->by_call);
        free(q);
        return NULL;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Query *q = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int authorized = 0, challenge = 0, r;

        q->slot = sd_bus_slot_unref(q->slot);
        q->done = true;
        if (e) {
                q->failure = strdup(e->message ?: e->name);
        } else {
                r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
                if (r >= 0)
                        r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
                if (r < 0)
                        q->failure = strdup("malformed reply from polkit");
        }
        q->allowed = !q->failure && authorized;
        q->challenge = challenge;

        /* Run the method again; it finds the answer in polkit_check(). */
        r = sd_bus_enqueue_for_read(sd_bus_message_get_bus(q->call), q->call);
        if (r < 0) {
                log_error_errno(r, "Failed to resume a method call after polkit answered: %m");
                (void) sd_bus_reply_method_errorf(q->call, SD_BUS_ERROR_FAILED, "Authorization check failed.");
                g_hash_table_remove(q->owner->by_call, q->call);
        }
        return 0;
}

static int ask(PolkitQueries *owner, sd_bus_message *call, const char *action) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        sd_bus *bus = sd_bus_message_get_bus(call);
        Query *q;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r < 0)
                return r;
        /* Subject: the caller's unique name on the bus we serve. */
        r = sd_bus_message_append(m, "(sa{sv})s", "system-bus-name", 1, "name", "s",
                                  sd_bus_message_get_sender(call), action);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a{ss}us", 0,
                                  (uint32_t) (sd_bus_message_get_allow_interactive_authorization(call) ? 1 : 0), "");
        if (r < 0)
                return r;

        q = calloc(1, sizeof(Query));
        if (!q)
                return -ENOMEM;
        q->owner = owner;
        q->call = sd_bus_message_ref(call);
        q->action = strdup(action);
        /* Interactive authentication may take as long as a person needs. */
        r = q->action ? sd_bus_call_async(bus, &q->slot, m, on_polkit_reply, q, UINT64_MAX) : -ENOMEM;
        if (r < 0) {
                query_free(q);
                return r;
        }
        g_hash_table_insert(owner->by_call, call, q);
        return 0;
}

void polkit_forget(PolkitQueries *owner, sd_bus_message *call) {
        Query *q = g_hash_table_lookup(owner->by_call, call);

        /* A call still waiting for polkit gets its reply when the answer
         * comes; only answered ones are stuck here. */
        if (q && q->done)
                g_hash_table_remove(owner->by_call, call);
}

int polkit_check(PolkitQueries *owner, sd_bus_message *call, const char *action, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        Query *q = g_hash_table_lookup(owner->by_call, call);
        uid_t uid;
        int r;

        if (q) {
                if (!q->done)
                        return 0;
                bool allowed = q->allowed, challenge = q->challenge;
                _cleanup_free_ char *failure = q->failure ? strdup(q->failure) : NULL;
                g_hash_table_remove(owner->by_call, call);
                if (allowed)
                        return 1;
                if (failure) {
                        log_warning("Denied %s: polkit could not be asked: %s", action, failure);
                        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                 "Not authorized for %s: polkit could not be asked (%s).", action,
                                                 failure);
                }
                if (challenge && !sd_bus_message_get_allow_interactive_authorization(call))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED,
                                                 "Interactive authentication is required for %s.", action);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "Not authorized for %s.", action);
        }

        /* Root needs nobody's permission, and must not depend on polkit. */
        r = sd_bus_query_sender_creds(call, SD_BUS_CREDS_EUID, &creds);
        if (r >= 0 && sd_bus_creds_get_euid(creds, &uid) >= 0 && uid == 0)
                return 1;

        r = ask(owner, call, action);
        if (r < 0) {
                log_error_errno(r, "Failed to ask polkit about %s: %m", action);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not authorized for %s: polkit could not be asked.", action);
        }
        return 0;
}
