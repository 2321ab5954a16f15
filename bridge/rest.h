/* SPDX-License-Identifier: MIT */
#pragma once

#include "bridge.h"

/* What the REST handlers share (rest.c, rest-costs.c, rest-export.c). Functions that
 * answer on failure return false or NULL after answering. */

#define CALL_TIMEOUT_MS 30000

json_t *rest_time(uint64_t usec);
const char *rest_query(Request *r, const char *name);
bool rest_require_up(Request *r);
json_t *rest_require_body(Request *r, bool optional);
/* from and to from the query; from defaults to span before to. */
bool rest_range(Request *r, uint64_t span, uint64_t *from, uint64_t *to);
/* A time in a body: RFC 3339 or epoch seconds, as a string or a number;
 * absent or null leaves *ret. */
bool rest_body_time(Request *r, json_t *body, const char *key, uint64_t *ret);
/* An asynchronous call for the request; cb gets it as userdata. */
void rest_call(Request *r, GDBusConnection *bus, const char *path, const char *iface, const char *method,
               GVariant *args, const char *reply_type, GAsyncReadyCallback cb);
GVariant *rest_finish_call(GObject *source, GAsyncResult *res, Request *r);
/* Callbacks for rest_call(): a method's JSON string passed on (201 for the
 * routes that add), and 204 for a method without a reply. */
void rest_json_reply(GObject *source, GAsyncResult *res, gpointer userdata);
void rest_empty_reply(GObject *source, GAsyncResult *res, gpointer userdata);

/* rest-costs.c: /api/rates and /api/costs. */
void rest_costs_handle(Request *r);
/* Device ids as object paths; answers 400 or 404 and returns NULL on a
 * malformed or unknown one (an id NULL is malformed). */
GVariant *rest_device_paths(Request *r, const char *const *ids, size_t n);
/* rest-export.c: /api/export. */
void rest_export_handle(Request *r);
/* Cuts the exports streaming to a token that was revoked or expired. */
void rest_export_revoked(Bridge *b, const char *token_id);
/* rest-schedules.c: /api/schedules. */
void rest_schedules_handle(Request *r);
