/* SPDX-License-Identifier: MIT */

/* The WebSocket connections, on the connection stolen from libsoup after
 * the 101: libsoup's own WebSocket queues without a bound, and a queue
 * bound is the point here. */

#include "ws.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "log.h"
#include "ws-frame.h"

typedef struct WsClient {
        WsServer *server;
        GIOStream *io;
        GPollableInputStream *in;
        GPollableOutputStream *out;
        GSource *read_source;
        GSource *write_source;
        GByteArray *inbuf;
        GByteArray *outbuf;
        GByteArray *message; /* a fragmented message being assembled */
        uint8_t message_op;
        GHashTable *filter; /* device ids, NULL: all */
        AuthSession *session;
        bool closing;
        GSource *close_timer; /* closing: how long the close frame may wait */
} WsClient;

static void client_free(WsClient *c) {
        if (c->read_source) {
                g_source_destroy(c->read_source);
                g_source_unref(c->read_source);
        }
        if (c->write_source) {
                g_source_destroy(c->write_source);
                g_source_unref(c->write_source);
        }
        if (c->close_timer) {
                g_source_destroy(c->close_timer);
                g_source_unref(c->close_timer);
        }
        g_io_stream_close(c->io, NULL, NULL);
        g_object_unref(c->io);
        g_byte_array_unref(c->inbuf);
        g_byte_array_unref(c->outbuf);
        if (c->message)
                g_byte_array_unref(c->message);
        if (c->filter)
                g_hash_table_destroy(c->filter);
        auth_session_unref(c->session);
        g_free(c);
}

static void client_drop(WsClient *c, const char *why) {
        WsServer *ws = c->server;

        log_debug("WebSocket client dropped: %s", why);
        ws->clients = g_list_remove(ws->clients, c);
        ws->n_clients--;
        client_free(c);
}

static gboolean on_writable(GObject *stream, gpointer userdata);

/* Writes what the socket takes; returns false if the client is gone. */
static bool flush(WsClient *c) {
        while (c->outbuf->len > 0) {
                g_autoptr(GError) error = NULL;
                gssize n = g_pollable_output_stream_write_nonblocking(c->out, c->outbuf->data, c->outbuf->len, NULL,
                                                                      &error);
                if (n < 0) {
                        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                                break;
                        client_drop(c, error->message);
                        return false;
                }
                g_byte_array_remove_range(c->outbuf, 0, (guint) n);
        }
        if (c->outbuf->len > 0 && !c->write_source) {
                c->write_source = g_pollable_output_stream_create_source(c->out, NULL);
                g_source_set_callback(c->write_source, G_SOURCE_FUNC(on_writable), c, NULL);
                g_source_attach(c->write_source, NULL);
        }
        if (c->outbuf->len == 0 && c->closing) {
                client_drop(c, "closed");
                return false;
        }
        return true;
}

static gboolean on_writable(GObject *stream, gpointer userdata) {
        WsClient *c = userdata;

        g_source_unref(c->write_source);
        c->write_source = NULL;
        flush(c);
        return G_SOURCE_REMOVE;
}

/* Queues a frame; drops the client past its bound. */
static bool send_frame(WsClient *c, uint8_t opcode, const void *data, size_t size) {
        if (c->closing)
                return true;
        if (c->outbuf->len + size > c->server->max_queue) {
                c->server->dropped++;
                log_info("Dropping a WebSocket client that does not read (%u bytes queued).", c->outbuf->len);
                client_drop(c, "queue full");
                return false;
        }
        ws_frame_append(c->outbuf, opcode, data, size);
        c->server->sent++;
        /* Writing waits for the socket's turn, so many messages of one
         * round go out in few writes. */
        if (!c->write_source) {
                c->write_source = g_pollable_output_stream_create_source(c->out, NULL);
                g_source_set_callback(c->write_source, G_SOURCE_FUNC(on_writable), c, NULL);
                g_source_attach(c->write_source, NULL);
        }
        return true;
}

static bool send_json(WsClient *c, json_t *j) {
        g_autofree char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);

        json_decref(j);
        return s ? send_frame(c, WS_OP_TEXT, s, strlen(s)) : true;
}

static gboolean on_close_timeout(gpointer userdata) {
        WsClient *c = userdata;

        client_drop(c, "the close frame was not read in time");
        return G_SOURCE_REMOVE;
}

/* Returns false if the client is gone (dropped, its queue full). */
static bool send_close(WsClient *c, uint16_t code, const char *reason) {
        uint8_t buf[125];
        size_t n = MIN(strlen(reason), sizeof(buf) - 2);

        if (c->closing)
                return true;

        buf[0] = (uint8_t) (code >> 8);
        buf[1] = (uint8_t) code;
        memcpy(buf + 2, reason, n);
        if (!send_frame(c, WS_OP_CLOSE, buf, n + 2))
                return false;
        c->closing = true;
        /* A client that does not read would keep its slot, and its token's
         * session, while its queue waits in front of the close. */
        c->close_timer = g_timeout_source_new_seconds(WS_CLOSE_TIMEOUT_SEC);
        g_source_set_callback(c->close_timer, on_close_timeout, c, NULL);
        g_source_attach(c->close_timer, NULL);
        return true;
}

static bool wants(WsClient *c, const char *id) {
        return !c->filter || g_hash_table_contains(c->filter, id);
}

/* A device's costs beside its Describe() object, which has none: {"today",
 * "month", "currency"} in major units, null without a tariff. */
static json_t *cost_json(KasaClient *k, const KasaDevice *d) {
        if (!*k->currency || !isfinite(d->cost_today))
                return json_null();
        return json_pack("{s:f,s:o,s:s}", "today", d->cost_today, "month",
                         isfinite(d->cost_month) ? json_real(d->cost_month) : json_null(), "currency", k->currency);
}

/* The alert's device id, as its JSON names it. */
static bool wants_alert(WsClient *c, const json_t *alert) {
        return !c->filter || g_hash_table_contains(c->filter, json_string_value(json_object_get(alert, "device")));
}

/* The open alerts of the devices the client wants, by id. */
static json_t *alerts_json(WsClient *c) {
        KasaClient *k = c->server->bridge->kasa;
        g_autoptr(GPtrArray) alerts = kasa_client_alerts(k);
        json_t *l = json_array();

        for (guint i = 0; i < alerts->len; i++) {
                json_t *a = kasa_alert_json(k, alerts->pdata[i], KASA_ALERT_FIRED);
                if (a && wants_alert(c, a))
                        json_array_append(l, a);
                json_decref(a);
        }
        return l;
}

static json_t *snapshot(WsClient *c) {
        KasaClient *k = c->server->bridge->kasa;
        g_autoptr(GPtrArray) devs = kasa_client_sorted(k);
        json_t *a = json_array(), *costs = json_object();

        for (guint i = 0; i < devs->len; i++) {
                const KasaDevice *d = devs->pdata[i];
                if (!wants(c, d->id))
                        continue;
                json_array_append_new(a, kasa_device_json(k, d));
                json_object_set_new(costs, d->id, cost_json(k, d));
        }
        return json_pack("{s:s,s:b,s:s,s:o,s:o,s:o}", "type", "hello", "up", k->up, "version", k->version ?: "",
                         "devices", a, "costs", costs, "alerts", alerts_json(c));
}

/* {"type":"subscribe","devices":["id",...]} or "devices":"*";
 * {"type":"ping"}. */
static bool handle_text(WsClient *c, const uint8_t *data, size_t size) {
        json_error_t e;
        json_t *j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &e);
        const char *type = json_string_value(json_object_get(j, "type"));
        bool ok;

        if (!j || !type) {
                json_decref(j);
                return send_json(c, json_pack("{s:s,s:s}", "type", "error", "message",
                                              "messages are JSON objects with a \"type\""));
        }
        if (strcmp(type, "ping") == 0)
                ok = send_json(c, json_pack("{s:s}", "type", "pong"));
        else if (strcmp(type, "subscribe") == 0) {
                json_t *devs = json_object_get(j, "devices"), *v;
                size_t i;

                if (json_is_string(devs) && strcmp(json_string_value(devs), "*") == 0) {
                        if (c->filter)
                                g_hash_table_destroy(c->filter);
                        c->filter = NULL;
                        ok = send_json(c, snapshot(c));
                } else if (json_is_array(devs) && json_array_size(devs) <= 1024) {
                        GHashTable *f = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                        bool bad = false;
                        json_array_foreach(devs, i, v) {
                                if (!json_is_string(v) || !device_id_valid(json_string_value(v)))
                                        bad = true;
                                else
                                        g_hash_table_add(f, g_strdup(json_string_value(v)));
                        }
                        if (bad) {
                                g_hash_table_destroy(f);
                                ok = send_json(c, json_pack("{s:s,s:s}", "type", "error", "message",
                                                            "\"devices\" must be device ids or \"*\""));
                        } else {
                                if (c->filter)
                                        g_hash_table_destroy(c->filter);
                                c->filter = f;
                                ok = send_json(c, snapshot(c));
                        }
                } else
                        ok = send_json(c, json_pack("{s:s,s:s}", "type", "error", "message",
                                                    "\"devices\" must be a list of device ids or \"*\""));
        } else
                ok = send_json(c, json_pack("{s:s,s:s}", "type", "error", "message", "unknown message type"));
        json_decref(j);
        return ok;
}

/* Returns false if the client is gone. */
static bool handle_frame(WsClient *c, const WsFrame *f) {
        switch (f->opcode) {
        case WS_OP_PING:
                return send_frame(c, WS_OP_PONG, f->payload, f->size);
        case WS_OP_PONG:
                return true;
        case WS_OP_CLOSE:
                return send_close(c, 1000, "") && flush(c);
        case WS_OP_TEXT:
        case WS_OP_BINARY:
                if (c->message) {
                        return send_close(c, 1002, "a new message inside a fragmented one") && flush(c);
                }
                if (f->fin)
                        return f->opcode == WS_OP_TEXT ? handle_text(c, f->payload, f->size) : true;
                c->message = g_byte_array_new();
                c->message_op = f->opcode;
                g_byte_array_append(c->message, f->payload, (guint) f->size);
                return true;
        case WS_OP_CONTINUATION:
                if (!c->message) {
                        return send_close(c, 1002, "a continuation without a message") && flush(c);
                }
                if (c->message->len + f->size > WS_MESSAGE_MAX) {
                        return send_close(c, 1009, "message too big") && flush(c);
                }
                g_byte_array_append(c->message, f->payload, (guint) f->size);
                if (f->fin) {
                        g_autoptr(GByteArray) m = g_steal_pointer(&c->message);
                        return c->message_op == WS_OP_TEXT ? handle_text(c, m->data, m->len) : true;
                }
                return true;
        }
        return true;
}

static gboolean on_readable(GObject *stream, gpointer userdata) {
        WsClient *c = userdata;
        uint8_t buf[4096];

        for (;;) {
                g_autoptr(GError) error = NULL;
                gssize n = g_pollable_input_stream_read_nonblocking(c->in, buf, sizeof(buf), NULL, &error);

                if (n < 0 && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
                        return G_SOURCE_CONTINUE;
                if (n <= 0) {
                        /* client_drop() destroys this source. */
                        g_source_unref(c->read_source);
                        c->read_source = NULL;
                        client_drop(c, n < 0 ? error->message : "end of stream");
                        return G_SOURCE_REMOVE;
                }
                g_byte_array_append(c->inbuf, buf, (guint) n);
                for (;;) {
                        WsFrame f;
                        ssize_t used = ws_frame_parse(c->inbuf->data, c->inbuf->len, WS_MESSAGE_MAX, &f);

                        if (used == 0)
                                break;
                        if (used < 0) {
                                /* send_close() drops a client whose queue is full. */
                                if (!send_close(c, used == -EMSGSIZE ? 1009 : 1002,
                                                used == -EMSGSIZE ? "message too big" : "protocol error"))
                                        return G_SOURCE_REMOVE;
                                g_byte_array_set_size(c->inbuf, 0);
                                if (!flush(c))
                                        return G_SOURCE_REMOVE;
                                break;
                        }
                        if (c->closing) {
                                g_byte_array_remove_range(c->inbuf, 0, (guint) used);
                                continue;
                        }
                        bool alive = handle_frame(c, &f);
                        if (!alive)
                                return G_SOURCE_REMOVE;
                        g_byte_array_remove_range(c->inbuf, 0, (guint) used);
                }
        }
}

static const char *const field_names[] = { "readings", "energy", "on", "online", "cost", "other" };

static void broadcast(WsServer *ws, json_t *msg, const char *device) {
        g_autofree char *s = msg ? json_dumps(msg, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        size_t n;

        json_decref(msg);
        if (!s)
                return;
        n = strlen(s);
        /* send_frame() may drop a client: the next one is taken first. */
        for (GList *l = ws->clients, *next; l; l = next) {
                next = l->next;
                WsClient *c = l->data;
                if (!device || wants(c, device))
                        send_frame(c, WS_OP_TEXT, s, n);
        }
}

/* kasamond came or went: the open alerts with it, one list per client
 * (each may want other devices'). */
static void daemon_changed(WsServer *ws, bool up) {
        for (GList *l = ws->clients, *next; l; l = next) {
                next = l->next;
                WsClient *c = l->data;
                send_json(c, json_pack("{s:s,s:b,s:o}", "type", "daemon", "up", up, "alerts", alerts_json(c)));
        }
}

static void on_alert(KasaAlertEvent event, const KasaAlert *a, void *userdata) {
        WsServer *ws = userdata;
        json_t *alert;

        if (!ws->clients)
                return;
        alert = kasa_alert_json(ws->bridge->kasa, a, event);
        if (!alert)
                return;
        /* The device id from the JSON: the device may be gone already. */
        g_autofree char *device = g_strdup(json_string_value(json_object_get(alert, "device")));
        broadcast(ws, json_pack("{s:s,s:s,s:o}", "type", "alert", "event", kasa_alert_event_to_string(event), "alert",
                                alert),
                  device);
}

static void on_event(KasaEvent event, const KasaDevice *d, unsigned fields, void *userdata) {
        WsServer *ws = userdata;
        KasaClient *k = ws->bridge->kasa;
        json_t *msg = NULL;

        /* Each poll of each device comes here: no message for nobody. */
        if (!ws->clients)
                return;
        switch (event) {
        case KASA_EVENT_UP:
        case KASA_EVENT_DOWN:
                return daemon_changed(ws, event == KASA_EVENT_UP);
        case KASA_EVENT_ADDED:
                msg = json_pack("{s:s,s:s,s:o,s:o}", "type", "added", "id", d->id, "device", kasa_device_json(k, d),
                                "cost", cost_json(k, d));
                break;
        case KASA_EVENT_REMOVED:
                msg = json_pack("{s:s,s:s}", "type", "removed", "id", d->id);
                break;
        case KASA_EVENT_CHANGED: {
                json_t *changed = json_array();
                for (size_t i = 0; i < G_N_ELEMENTS(field_names); i++)
                        if (fields & (1u << i))
                                json_array_append_new(changed, json_string(field_names[i]));
                msg = json_pack("{s:s,s:s,s:o,s:o,s:o}", "type", "update", "id", d->id, "changed", changed, "device",
                                kasa_device_json(k, d), "cost", cost_json(k, d));
                break;
        }
        }
        broadcast(ws, msg, d ? d->id : NULL);
}

void ws_revoked(WsServer *ws, const char *token_id) {
        g_autoptr(GPtrArray) todo = g_ptr_array_new();

        /* flush() may drop a client: the list is walked first. */
        for (GList *l = ws->clients; l; l = l->next) {
                WsClient *c = l->data;
                if (c->session && !c->closing && g_strcmp0(c->session->token_id, token_id) == 0)
                        g_ptr_array_add(todo, c);
        }
        for (guint i = 0; i < todo->len; i++) {
                WsClient *c = todo->pdata[i];
                /* Nothing more goes out for it: its session is let go now,
                 * not when the client has read what was queued. */
                g_clear_pointer(&c->session, auth_session_unref);
                if (send_close(c, 1008, "the token was revoked or expired"))
                        flush(c);
        }
}

int ws_server_new(Bridge *b, size_t max_queue, WsServer **ret) {
        WsServer *ws = g_new0(WsServer, 1);

        ws->bridge = b;
        ws->max_queue = max_queue;
        kasa_client_listen(b->kasa, on_event, ws);
        kasa_client_listen_alerts(b->kasa, on_alert, ws);
        *ret = ws;
        return 0;
}

WsServer *ws_server_free(WsServer *ws) {
        if (!ws)
                return NULL;
        while (ws->clients)
                client_drop(ws->clients->data, "shutdown");
        g_free(ws);
        return NULL;
}

typedef struct Upgrade {
        WsServer *ws;
        AuthSession *session;
        GHashTable *filter;
} Upgrade;

static void upgrade_free(gpointer p) {
        Upgrade *u = p;

        auth_session_unref(u->session);
        if (u->filter)
                g_hash_table_destroy(u->filter);
        g_free(u);
}

static void wrote_informational(SoupServerMessage *msg, gpointer userdata) {
        Upgrade *u = userdata;
        WsServer *ws = u->ws;
        WsClient *c;
        GIOStream *io;

        if (soup_server_message_get_status(msg) != SOUP_STATUS_SWITCHING_PROTOCOLS)
                return;
        io = soup_server_message_steal_connection(msg);
        if (!io)
                return;
        c = g_new0(WsClient, 1);
        c->server = ws;
        c->io = io;
        c->in = G_POLLABLE_INPUT_STREAM(g_io_stream_get_input_stream(io));
        c->out = G_POLLABLE_OUTPUT_STREAM(g_io_stream_get_output_stream(io));
        c->inbuf = g_byte_array_new();
        c->outbuf = g_byte_array_new();
        c->session = g_steal_pointer(&u->session);
        c->filter = g_steal_pointer(&u->filter);
        ws->clients = g_list_prepend(ws->clients, c);
        ws->n_clients++;
        c->read_source = g_pollable_input_stream_create_source(c->in, NULL);
        g_source_set_callback(c->read_source, G_SOURCE_FUNC(on_readable), c, NULL);
        g_source_attach(c->read_source, NULL);
        send_json(c, snapshot(c));
}

static bool header_has_token(SoupMessageHeaders *h, const char *name, const char *token) {
        return soup_message_headers_header_contains(h, name, token);
}

void ws_accept(WsServer *ws, Request *r) {
        SoupMessageHeaders *req = soup_server_message_get_request_headers(r->msg);
        SoupMessageHeaders *resp = soup_server_message_get_response_headers(r->msg);
        const char *devices = r->query ? g_hash_table_lookup(r->query, "devices") : NULL;
        g_autofree char *accept = NULL;
        Upgrade *u;

        if (strcmp(soup_server_message_get_method(r->msg), "GET") != 0)
                return request_reply_error(r, 405, "method_not_allowed", "a WebSocket opens with GET");
        if (!header_has_token(req, "Upgrade", "websocket") || !header_has_token(req, "Connection", "Upgrade"))
                return request_reply_error(r, 400, "bad_request", "this is a WebSocket (Upgrade: websocket)");
        if (g_strcmp0(soup_message_headers_get_one(req, "Sec-WebSocket-Version"), "13") != 0) {
                soup_message_headers_replace(resp, "Sec-WebSocket-Version", "13");
                return request_reply_error(r, 400, "bad_request", "only WebSocket version 13 is spoken");
        }
        accept = ws_accept_key(soup_message_headers_get_one(req, "Sec-WebSocket-Key"));
        if (!accept)
                return request_reply_error(r, 400, "bad_request", "malformed Sec-WebSocket-Key");
        if (ws->n_clients >= WS_CLIENTS_MAX)
                return request_reply_error(r, 503, "unavailable", "too many WebSocket clients");

        u = g_new0(Upgrade, 1);
        u->ws = ws;
        u->session = auth_session_ref(r->session);
        if (devices) {
                g_auto(GStrv) ids = g_strsplit(devices, ",", 1025);
                u->filter = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
                for (size_t i = 0; ids[i]; i++) {
                        if (!device_id_valid(ids[i])) {
                                upgrade_free(u);
                                return request_reply_error(r, 400, "bad_request", "devices: malformed device id");
                        }
                        g_hash_table_add(u->filter, g_strdup(ids[i]));
                }
        }
        soup_message_headers_replace(resp, "Upgrade", "websocket");
        soup_message_headers_replace(resp, "Connection", "Upgrade");
        soup_message_headers_replace(resp, "Sec-WebSocket-Accept", accept);
        g_signal_connect_data(r->msg, "wrote-informational", G_CALLBACK(wrote_informational), u,
                              (GClosureNotify) (void (*)(void)) upgrade_free, 0);
        request_reply_empty(r, SOUP_STATUS_SWITCHING_PROTOCOLS);
}
