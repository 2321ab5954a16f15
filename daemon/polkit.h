/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Asking polkit from a D-Bus method, asynchronously, with public sd-bus
 * calls only: the first time a method runs, CheckAuthorization is sent and
 * the method returns without replying; when polkit answers, the original
 * message is queued again (sd_bus_enqueue_for_read) and the method runs a
 * second time, now finding the answer here.
 */

#include <glib.h>
#include <systemd/sd-bus.h>

typedef struct PolkitQueries PolkitQueries;

PolkitQueries *polkit_queries_new(void);
PolkitQueries *polkit_queries_free(PolkitQueries *q);

/* Returns 1 when the caller may go on, 0 when the answer is pending (the
 * method must return 1 and not reply: it will run again), and a negative
 * errno with *error set when the caller is denied. Root is allowed without
 * asking; nobody else ever is when polkit cannot be reached. */
int polkit_check(PolkitQueries *q, sd_bus_message *call, const char *action, sd_bus_error *error);

/* Drops what is kept for call. For a call whose object went away while
 * polkit was asked: re-run, it never reaches its method. */
void polkit_forget(PolkitQueries *q, sd_bus_message *call);

