/* SPDX-License-Identifier: MIT */

/* The HTTP side: limits, CORS, dispatch by path, the token gate, and the
 * answers (JSON errors with the status that fits). */

#include <errno.h>
#include <string.h>

#include "bridge.h"
#include "dashboard.h"
#include "kasa-dbus.h"
#include "log.h"
#include "rest.h"
#include "ws.h"

static void request_free(Request *r) {
        if (r->disconnected_id)
                g_signal_handler_disconnect(r->msg, r->disconnected_id);
        g_object_unref(r->msg);
        auth_session_unref(r->session);
        if (r->query)
                g_hash_table_unref(r->query);
        g_free(r);
}

static void cors_headers(Bridge *b, SoupServerMessage *msg) {
        SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
        const char *origin = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Origin");

        /* Off unless configured: a page elsewhere must not read a token
         * user's data through their browser. */
        if (!b->config.cors_origin || !origin)
                return;
        if (strcmp(b->config.cors_origin, "*") != 0 && strcmp(b->config.cors_origin, origin) != 0)
                return;
        soup_message_headers_replace(h, "Access-Control-Allow-Origin", origin);
        soup_message_headers_replace(h, "Vary", "Origin");
}

static void finish(Request *r, unsigned status) {
        metrics_count(r->bridge, r->handler, status);
        if (r->gone) {
                request_free(r);
                return;
        }
        cors_headers(r->bridge, r->msg);
        if (r->paused)
                soup_server_message_unpause(r->msg);
        request_free(r);
}

void request_reply_json(Request *r, unsigned status, json_t *body) {
        char *s = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);

        json_decref(body);
        if (!s) {
                status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
                s = g_strdup("{\"error\":\"internal\",\"message\":\"out of memory\"}");
        }
        soup_server_message_set_status(r->msg, status, NULL);
        soup_server_message_set_response(r->msg, "application/json", SOUP_MEMORY_TAKE, s, strlen(s));
        finish(r, status);
}

static void reply_bytes(Request *r, unsigned status, const char *content_type, GBytes *body) {
        soup_server_message_set_status(r->msg, status, NULL);
        soup_message_headers_set_content_type(soup_server_message_get_response_headers(r->msg), content_type, NULL);
        soup_message_body_append_bytes(soup_server_message_get_response_body(r->msg), body);
        finish(r, status);
}

void request_reply_bytes(Request *r, const char *content_type, GBytes *body) {
        reply_bytes(r, 200, content_type, body);
}

void request_reply_json_bytes(Request *r, unsigned status, GBytes *body) {
        reply_bytes(r, status, "application/json", body);
}

void bridge_invalidate(KasaEvent event, const KasaDevice *d, unsigned fields, void *userdata) {
        Bridge *b = userdata;

        g_clear_pointer(&b->devices_json, g_bytes_unref);
        g_clear_pointer(&b->devices_metrics, g_bytes_unref);
}

void request_reply_error(Request *r, unsigned status, const char *error, const char *fmt, ...) {
        va_list ap;
        g_autofree char *message = NULL;

        va_start(ap, fmt);
        message = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        request_reply_json(r, status, json_pack("{s:s,s:s}", "error", error, "message", message));
}

void request_reply_empty(Request *r, unsigned status) {
        soup_server_message_set_status(r->msg, status, NULL);
        finish(r, status);
}

void request_stream_begin(Request *r, const char *content_type) {
        SoupMessageHeaders *h = soup_server_message_get_response_headers(r->msg);

        soup_server_message_set_status(r->msg, 200, NULL);
        soup_message_headers_set_content_type(h, content_type, NULL);
        soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
        /* Each chunk is dropped once written: the body never piles up. */
        soup_message_body_set_accumulate(soup_server_message_get_response_body(r->msg), false);
        cors_headers(r->bridge, r->msg);
        metrics_count(r->bridge, r->handler, 200);
        request_stream_more(r);
}

void request_stream_more(Request *r) {
        if (!r->gone)
                soup_server_message_unpause(r->msg);
}

void request_stream_end(Request *r, bool complete) {
        if (!r->gone && complete) {
                soup_message_body_complete(soup_server_message_get_response_body(r->msg));
                soup_server_message_unpause(r->msg);
        } else if (!r->gone) {
                /* Without the last chunk the client sees the body cut. */
                g_autoptr(GIOStream) io = soup_server_message_steal_connection(r->msg);
                if (io)
                        g_io_stream_close(io, NULL, NULL);
        }
        request_free(r);
}

static const struct {
        const char *name;
        unsigned status;
        const char *error;
} dbus_errors[] = {
        { KASA_ERROR_NOT_FOUND, 404, "not_found" },
        { KASA_ERROR_NOT_METERED, 404, "not_metered" },
        { "org.freedesktop.DBus.Error.UnknownObject", 404, "not_found" },
        { "org.freedesktop.DBus.Error.UnknownMethod", 404, "not_found" },
        { "org.freedesktop.DBus.Error.UnknownInterface", 404, "not_found" },
        { "org.freedesktop.DBus.Error.InvalidArgs", 400, "bad_request" },
        { "org.freedesktop.DBus.Error.LimitsExceeded", 400, "bad_request" },
        { "org.freedesktop.DBus.Error.AccessDenied", 403, "forbidden" },
        { "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", 403, "forbidden" },
        { KASA_ERROR_ALREADY_KNOWN, 409, "conflict" },
        { KASA_ERROR_LIMIT, 409, "conflict" },
        { KASA_ERROR_IN_USE, 409, "conflict" },
        /* Not 503: retrying does not help until kasamond runs under systemd. */
        { KASA_ERROR_NO_SERVICE_MANAGER, 409, "no_service_manager" },
        { KASA_ERROR_RATE_LIMITED, 429, "rate_limited" },
        { KASA_ERROR_OFFLINE, 504, "device_offline" },
        { KASA_ERROR_DEVICE, 502, "device_error" },
        { "org.freedesktop.DBus.Error.ServiceUnknown", 503, "unavailable" },
        { "org.freedesktop.DBus.Error.NameHasNoOwner", 503, "unavailable" },
        { "org.freedesktop.DBus.Error.NoReply", 503, "unavailable" },
        { "org.freedesktop.DBus.Error.Disconnected", 503, "unavailable" },
};

void request_reply_dbus_error(Request *r, GError *error) {
        g_autofree char *name = g_dbus_error_get_remote_error(error);

        g_dbus_error_strip_remote_error(error);
        for (size_t i = 0; name && i < G_N_ELEMENTS(dbus_errors); i++)
                if (strcmp(name, dbus_errors[i].name) == 0) {
                        if (dbus_errors[i].status == 403 && r->session)
                                /* The daemon's word on a token counts at once. */
                                if (strstr(error->message, "no API token bound"))
                                        auth_forget(r->bridge->auth, r->session);
                        return request_reply_error(r, dbus_errors[i].status, dbus_errors[i].error, "%s",
                                                   error->message);
                }
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CLOSED) ||
            g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN))
                return request_reply_error(r, 503, "unavailable", "kasamond is not on the bus");
        log_warning("Unexpected D-Bus error: %s%s%s", name ?: "", name ? ": " : "", error->message);
        request_reply_error(r, 500, "internal", "%s", error->message);
}

GDBusConnection *request_bus(Request *r) {
        return r->session ? r->session->bus : r->bridge->bus;
}

static void on_disconnected(SoupServerMessage *msg, gpointer userdata) {
        ((Request *) userdata)->gone = true;
}

/* Only a request answered later is paused and watched: pausing costs
 * libsoup a round of the main loop to resume, a signal a closure. */
void request_pause(Request *r) {
        if (r->paused)
                return;
        r->paused = true;
        r->disconnected_id = g_signal_connect(r->msg, "disconnected", G_CALLBACK(on_disconnected), r);
        soup_server_message_pause(r->msg);
}

typedef enum Kind { KIND_API, KIND_WS, KIND_METRICS } Kind;

typedef struct Gate {
        Request *request;
        Kind kind;
        Role need;
        bool *answered; /* set while auth_check() runs */
} Gate;

static void proceed(Request *r, Kind kind) {
        switch (kind) {
        case KIND_API:
                return rest_handle(r);
        case KIND_WS:
                return ws_accept(r->bridge->ws, r);
        case KIND_METRICS: {
                SoupMessageBody *body = soup_server_message_get_response_body(r->msg);
                size_t n;
                char *text;

                soup_message_body_append_bytes(body, metrics_devices(r->bridge));
                text = metrics_bridge(r->bridge, &n);
                soup_message_body_append_take(body, (guchar *) text, n);
                soup_server_message_set_status(r->msg, 200, NULL);
                soup_message_headers_set_content_type(soup_server_message_get_response_headers(r->msg),
                                                      "text/plain; version=0.0.4; charset=utf-8", NULL);
                return finish(r, 200);
        }
        }
}

static void gate_done(AuthResult result, AuthSession *s, const char *message, unsigned retry, void *userdata) {
        Gate *g = userdata;
        Request *r = g->request;
        Kind kind = g->kind;
        Role need = g->need;
        char buf[16];

        if (g->answered)
                *g->answered = true;
        g_free(g);
        switch (result) {
        case AUTH_OK:
                if (s->role < need)
                        return request_reply_error(r, 403, "forbidden", "this needs the role %s; the token is %s",
                                                   role_to_string(need), role_to_string(s->role));
                r->session = auth_session_ref(s);
                return proceed(r, kind);
        case AUTH_INVALID:
                r->bridge->auth_failures++;
                soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "WWW-Authenticate",
                                             "Bearer error=\"invalid_token\"");
                return request_reply_error(r, 401, "unauthorized", "%s", message);
        case AUTH_RATE_LIMITED:
                r->bridge->auth_failures++;
                g_snprintf(buf, sizeof(buf), "%u", retry);
                soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "Retry-After", buf);
                return request_reply_error(r, 429, "rate_limited", "too many failed attempts: retry in %u s",
                                           retry);
        case AUTH_UNAVAILABLE:
                return request_reply_error(r, 503, "unavailable", "tokens cannot be checked: %s", message);
        }
}

static void gate(Request *r, Kind kind, Role need, GHashTable *query) {
        SoupMessageHeaders *h = soup_server_message_get_request_headers(r->msg);
        const char *secret = auth_bearer(soup_message_headers_get_one(h, "Authorization"));
        bool answered = false;
        Gate *g;

        if (need == ROLE_NONE)
                return proceed(r, kind);
        /* Browsers cannot set headers on a WebSocket. */
        if (!secret && kind == KIND_WS && query)
                secret = g_hash_table_lookup(query, "token");
        if (!secret || !*secret) {
                soup_message_headers_replace(soup_server_message_get_response_headers(r->msg), "WWW-Authenticate",
                                             "Bearer");
                return request_reply_error(r, 401, "unauthorized", "an API token is required (Authorization: Bearer)");
        }
        g = g_new0(Gate, 1);
        g->request = r;
        g->kind = kind;
        g->need = need;
        g->answered = &answered;
        /* A token bound already is answered at once: then r is gone. */
        auth_check(r->bridge->auth, soup_server_message_get_remote_host(r->msg) ?: "", secret, gate_done, g);
        if (answered)
                return;
        g->answered = NULL;
        request_pause(r);
}

static void serve(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                  gpointer userdata) {
        Bridge *b = userdata;
        const char *method = soup_server_message_get_method(msg);
        Request *r;
        int route;

        r = g_new0(Request, 1);
        r->bridge = b;
        r->msg = g_object_ref(msg);
        r->handler = "other";
        r->query = query ? g_hash_table_ref(query) : NULL;

        if (b->config.cors_origin && strcmp(method, "OPTIONS") == 0) {
                SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
                soup_message_headers_replace(h, "Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE");
                soup_message_headers_replace(h, "Access-Control-Allow-Headers", "Authorization, Content-Type");
                soup_message_headers_replace(h, "Access-Control-Max-Age", "600");
                return request_reply_empty(r, 204);
        }

        if (g_str_has_prefix(path, "/api/") || strcmp(path, "/api") == 0) {
                route = route_match(method, path, r->id);
                if (route == -EOPNOTSUPP)
                        return request_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s", method,
                                                   path);
                if (route == -EINVAL)
                        return request_reply_error(r, 400, "bad_request", "malformed device id in %s", path);
                if (route < 0)
                        return request_reply_error(r, 404, "not_found", "no such route: %s", path);
                r->route = route;
                r->handler = route_table[route].pattern;
                Role need = route_table[route].role;
                if (route == ROUTE_HEALTH && b->config.open_health)
                        need = ROLE_NONE;
                return gate(r, KIND_API, need, query);
        }
        if (strcmp(path, "/ws") == 0) {
                r->handler = "/ws";
                return gate(r, KIND_WS, ROLE_VIEWER, query);
        }
        if (strcmp(path, "/metrics") == 0) {
                r->handler = "/metrics";
                if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                        return request_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s", method,
                                                   path);
                return gate(r, KIND_METRICS, b->config.open_metrics ? ROLE_NONE : ROLE_VIEWER, query);
        }
        r->handler = "/";
        dashboard_serve(r, path);
}

/* Limits are checked when the headers are in, before any body is read:
 * a client that announces too much gets its answer and the connection is
 * closed, without the bridge reading what it sends. */
static void refuse(SoupServerMessage *msg, unsigned status, const char *reason, const char *error,
                   const char *message) {
        g_autoptr(GIOStream) io = soup_server_message_steal_connection(msg);
        g_autofree char *body = NULL, *response = NULL;
        GOutputStream *out;

        if (!io)
                return;
        body = g_strdup_printf("{\"error\":\"%s\",\"message\":\"%s\"}", error, message);
        response = g_strdup_printf("HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                                   "Connection: close\r\n\r\n%s",
                                   status, reason, strlen(body), body);
        out = g_io_stream_get_output_stream(io);
        /* Small enough for the socket buffer; a client that does not read
         * it loses it. */
        (void) g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(out), response, strlen(response),
                                                          NULL, NULL);
        g_io_stream_close(io, NULL, NULL);
}

typedef struct Limits {
        Bridge *bridge;
        size_t body;
} Limits;

static void count_header(const char *name, const char *value, gpointer userdata) {
        *(size_t *) userdata += strlen(name) + strlen(value) + 4;
}

static void got_headers(SoupServerMessage *msg, gpointer userdata) {
        Limits *l = userdata;
        SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
        GUri *uri = soup_server_message_get_uri(msg);
        size_t size = 0;
        goffset length;

        soup_message_headers_foreach(h, count_header, &size);
        if (uri)
                size += strlen(g_uri_get_path(uri)) + (g_uri_get_query(uri) ? strlen(g_uri_get_query(uri)) : 0);
        if (size > l->bridge->config.max_header) {
                metrics_count(l->bridge, "limits", 431);
                return refuse(msg, 431, "Request Header Fields Too Large", "header_too_large",
                              "the request's headers are too large");
        }
        if (soup_message_headers_get_encoding(h) == SOUP_ENCODING_CONTENT_LENGTH) {
                length = soup_message_headers_get_content_length(h);
                if (length > 0 && (size_t) length > l->bridge->config.max_body) {
                        metrics_count(l->bridge, "limits", 413);
                        return refuse(msg, 413, "Payload Too Large", "payload_too_large",
                                      "the request's body is too large");
                }
        }
}

static void got_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer userdata) {
        Limits *l = userdata;

        /* Chunked bodies announce no length. */
        l->body += g_bytes_get_size(chunk);
        if (l->body > l->bridge->config.max_body) {
                metrics_count(l->bridge, "limits", 413);
                refuse(msg, 413, "Payload Too Large", "payload_too_large", "the request's body is too large");
        }
}

static void request_started(SoupServer *server, SoupServerMessage *msg, gpointer userdata) {
        Limits *l = g_new0(Limits, 1);

        l->bridge = userdata;
        g_object_set_data_full(G_OBJECT(msg), "kasa-limits", l, g_free);
        g_signal_connect(msg, "got-headers", G_CALLBACK(got_headers), l);
        g_signal_connect(msg, "got-chunk", G_CALLBACK(got_chunk), l);
}

static void on_token_revoked(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                             const char *member, GVariant *params, gpointer userdata) {
        Bridge *b = userdata;
        const char *id;

        /* Anyone may send a signal: only kasamond's counts. */
        if (!b->kasa->owner || g_strcmp0(sender, b->kasa->owner) != 0 ||
            !g_variant_is_of_type(params, G_VARIANT_TYPE("(s)")))
                return;
        g_variant_get(params, "(&s)", &id);
        log_info("API token %s was revoked or expired: closing its bus connection, WebSockets and exports.", id);
        auth_revoked(b->auth, id);
        ws_revoked(b->ws, id);
        rest_export_revoked(b, id);
}

static void on_kasa_event(KasaEvent event, const KasaDevice *d, unsigned fields, void *userdata) {
        Bridge *b = userdata;

        /* A kasamond that came back knows none of the bindings made with
         * the one before; while it is away, tokens could not be bound
         * again, so the sessions serve until then (health says down). */
        if (event == KASA_EVENT_UP)
                auth_forget_all(b->auth);
}

void bridge_watch_tokens(Bridge *b) {
        /* No sender in the match: GDBus compares it with the unique name
         * the messages carry; on_token_revoked() does. */
        b->sub_revoked = g_dbus_connection_signal_subscribe(b->bus, NULL, KASA_MANAGER_IFACE, "TokenRevoked",
                                                            KASA_MANAGER_PATH, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                            on_token_revoked, b, NULL);
        kasa_client_listen(b->kasa, on_kasa_event, b);
}

int bridge_server_setup(Bridge *b) {
        g_signal_connect(b->server, "request-started", G_CALLBACK(request_started), b);
        soup_server_add_handler(b->server, NULL, serve, b, NULL);
        return 0;
}
