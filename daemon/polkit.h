/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Asking polkit from a D-Bus method without ever blocking the loop, with
 * public sd-bus calls only: the first time a method runs, the question is
 * sent and the method returns without replying; when the answer comes, the
 * original message is queued again (sd_bus_enqueue_for_read) and the method
 * runs a second time, now finding the answer here.
 *
 * The question has two steps. The bus says who the caller is
 * (GetConnectionUnixUser): root needs nobody's permission and must not
 * depend on polkit. Anyone else is polkit's decision (CheckAuthorization,
 * subject "system-bus-name", so polkit resolves the caller itself); when
 * polkit cannot be asked, nobody but root is allowed.
 *
 * Callers of the HTTP bridge's uid are neither: every HTTP user arrives
 * as that uid, so polkit is never asked for them and the token bound to
 * the calling connection decides (access.h); without one they are denied,
 * and while the bridge has a uid, a caller whose uid the bus cannot name
 * is denied too (it might be the bridge).
 *
 * The decision lives in polkit.c and knows the bus only through PolkitOps:
 * polkit-bus.c is the real bus, tests/daemon/test-polkit.c has fakes.
 */

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "access.h"

typedef struct PolkitQueries PolkitQueries;
typedef struct PolkitQuery PolkitQuery;

/* What the decision needs from the bus. A call is only ever passed back to
 * these (tests pass pointers of their own). ask_uid and ask_polkit start a
 * question and store a handle in *ret_pending; the answer arrives later,
 * never from inside them, through polkit_query_uid_answered() or
 * polkit_query_polkit_answered(); release frees a handle, cancelling the
 * question if it is still open. */
typedef struct PolkitOps {
        int (*ask_uid)(void *userdata, sd_bus_message *call, PolkitQuery *q, void **ret_pending);
        int (*ask_polkit)(void *userdata, sd_bus_message *call, const char *action, bool interactive,
                          PolkitQuery *q, void **ret_pending);
        void (*release)(void *userdata, void *pending);
        /* Runs call's method again. */
        int (*resume)(void *userdata, sd_bus_message *call);
        /* Answers call with a bare failure, when it cannot run again. */
        void (*fail)(void *userdata, sd_bus_message *call);
        bool (*allow_interactive)(void *userdata, sd_bus_message *call);
        sd_bus_message *(*ref)(void *userdata, sd_bus_message *call);
        void (*unref)(void *userdata, sd_bus_message *call);
        /* The caller's unique bus name, what tokens are bound to. */
        const char *(*sender)(void *userdata, sd_bus_message *call);
} PolkitOps;

extern const PolkitOps polkit_bus_ops;

PolkitQueries *polkit_queries_new(void);
PolkitQueries *polkit_queries_new_with_ops(const PolkitOps *ops, void *userdata);
PolkitQueries *polkit_queries_free(PolkitQueries *q);
/* Where the bridge's uid and the tokens bound to connections are; NULL
 * (the default) for none. Not owned. */
void polkit_queries_set_access(PolkitQueries *q, Access *access);

/* Returns 1 when the caller may go on, 0 when the answer is pending (the
 * method must return 1 and not reply: it will run again), and a negative
 * errno with *error set when the caller is denied. An answer is kept for
 * its call only, until the re-run collects it. */
int polkit_check(PolkitQueries *q, sd_bus_message *call, const char *action, sd_bus_error *error);

/* The caller's uid, for methods open to everyone that need to know who
 * calls (BindToken's limiter): returns 1 with *ret_uid set, 0 when pending
 * (the same re-run as polkit_check()), or a negative errno with *error set
 * when the bus cannot say. */
int polkit_caller_uid(PolkitQueries *q, sd_bus_message *call, uid_t *ret_uid, sd_bus_error *error);

/* Drops what is kept for call. For a call whose object went away while
 * polkit was asked: re-run, it never reaches its method. */
void polkit_forget(PolkitQueries *q, sd_bus_message *call);

/* For PolkitOps implementations: the caller's uid, or error < 0 when the
 * bus could not say. */
void polkit_query_uid_answered(PolkitQuery *q, int error, uid_t uid);
/* failure: why polkit could not be asked, or NULL when it answered. */
void polkit_query_polkit_answered(PolkitQuery *q, const char *failure, bool authorized, bool challenge);
