/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <libsoup/soup.h>
#include <stdbool.h>

#include "auth.h"
#include "kasa-client.h"
#include "request.h"

typedef struct WsServer WsServer;
typedef struct Webhook Webhook;

typedef struct BridgeConfig {
        size_t max_body;     /* bytes of a request body, else 413 */
        size_t max_header;   /* bytes of all request headers, else 431 */
        char *cors_origin;   /* NULL: no CORS headers at all */
        bool open_metrics;   /* /metrics without a token */
        bool open_health;    /* /api/health without a token */
        char *openapi_path;
        char *dashboard_dir;
} BridgeConfig;

/* Requests answered, per route and status: the bridge's own metrics. */
typedef struct RequestCounter {
        char *handler;
        unsigned status;
        uint64_t count;
} RequestCounter;

typedef struct Bridge {
        GMainLoop *loop;
        SoupServer *server;
        GDBusConnection *bus;
        KasaClient *kasa;
        Auth *auth;
        WsServer *ws;
        Webhook *webhook; /* NULL without --webhook= */
        BridgeConfig config;
        GBytes *openapi;
        GHashTable *pages; /* dashboard file name -> GBytes, read once */
        GHashTable *counters; /* "handler status" -> RequestCounter */
        /* What GET /api/devices and the devices' part of /metrics answer,
         * built on demand and dropped on every change of the cache: many
         * requests between two polls cost one rendering. */
        GBytes *devices_json;
        GBytes *devices_metrics;
        uint64_t auth_failures;
        guint sub_revoked; /* TokenRevoked */
        struct ExportStream *exports; /* GET /api/export streaming (rest-export.c) */
} Bridge;

/* One HTTP request on its way through authentication and the handler. */
typedef struct Request {
        Bridge *bridge;
        SoupServerMessage *msg;
        const char *handler; /* for the counters: the route's pattern */
        Route route;
        char id[DEVICE_ID_MAX + 1];
        GHashTable *query; /* may be NULL */
        AuthSession *session;
        bool paused;
        bool gone; /* the client went away */
        gulong disconnected_id;
} Request;

/* Keeps the request open past the handler, for an asynchronous answer. */
void request_pause(Request *r);
/* Answers and frees the request. */
void request_reply_json(Request *r, unsigned status, json_t *body);
G_GNUC_PRINTF(4, 5) void request_reply_error(Request *r, unsigned status, const char *error, const char *fmt, ...);
void request_reply_empty(Request *r, unsigned status);
/* Answers with the D-Bus error's HTTP status; frees the request. */
void request_reply_dbus_error(Request *r, GError *error);
/* The bus connection for calls that change something (the token's). */
GDBusConnection *request_bus(Request *r);

/* A streamed answer: 200 and its headers now, then the body a chunk at a
 * time (chunked transfer encoding). Append a chunk to the response body
 * and call request_stream_more(); the message's "wrote-chunk" says when it
 * is written. request_stream_end() ends the body (complete), or cuts the
 * connection so that the client sees it incomplete, and frees the
 * request. */
void request_stream_begin(Request *r, const char *content_type);
void request_stream_more(Request *r);
void request_stream_end(Request *r, bool complete);

/* Answers 200 with a body shared between requests. */
void request_reply_bytes(Request *r, const char *content_type, GBytes *body);
/* Answers with JSON text as it is (kasamond's Describe(), a bill). */
void request_reply_json_bytes(Request *r, unsigned status, GBytes *body);
/* Drops the rendered answers (a KasaListener). */
void bridge_invalidate(KasaEvent event, const KasaDevice *d, unsigned fields, void *userdata);

/* rest.c: a matched /api route, after authentication. */
void rest_handle(Request *r);

/* metrics.c */
/* The devices' metrics (shared, see devices_metrics), then the bridge's own. */
GBytes *metrics_devices(Bridge *b);
char *metrics_bridge(Bridge *b, size_t *ret_size);
void metrics_count(Bridge *b, const char *handler, unsigned status);

/* server.c */
int bridge_server_setup(Bridge *b);
/* Ends a token's sessions and WebSockets when kasamond says it was
 * revoked or expired, and every session when kasamond comes back to the
 * bus (its bindings went with the one before). */
void bridge_watch_tokens(Bridge *b);
