/* SPDX-License-Identifier: MIT */

/*
 * The HTTP transports' queue, deadline, stream and HTTP framing (see
 * transport-http.h); the engines do the rest.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-time.h"
#include "macro.h"
#include "transport-http.h"

const HttpCredentials http_default_credentials[HTTP_DEFAULT_CREDENTIALS] = {
        { "kasa@tp-link.net", "kasaSetup" },
        { "test@tp-link.net", "test" },
        { "", "" },
};

static void request_free(HttpRequest *r) {
        free(r->json);
        free(r);
}

static HttpRequest *pop_head(HttpTransport *x) {
        HttpRequest *r = x->head;

        x->head = r->next;
        if (!x->head)
                x->tail = NULL;
        x->n_pending--;
        return r;
}

static void arm_deadline(HttpTransport *x) {
        if (!x->head) {
                (void) x->net->set_enabled(x->deadline, SD_EVENT_OFF);
                return;
        }
        (void) x->net->set_time(x->deadline, x->head->deadline);
        (void) x->net->set_enabled(x->deadline, SD_EVENT_ONESHOT);
}

void http_transport_kick(HttpTransport *x) {
        if (x->head && x->phase == 0)
                (void) x->net->set_enabled(x->kick, SD_EVENT_ONESHOT);
}

/* Drops the connection (and with it what is in flight) without hearing of
 * it through our own stream callback. */
static void drop_connection(HttpTransport *x) {
        x->resetting = true;
        stream_reset(x->stream);
        x->resetting = false;
        x->phase = 0;
}

void http_transport_drop_session(HttpTransport *x) {
        x->have_session = false;
        x->session_cookie[0] = 0;
        x->engine->drop_session(x);
}

void http_transport_finish_head(HttpTransport *x, int error, const char *json, size_t len) {
        HttpRequest *r = pop_head(x);

        arm_deadline(x);
        http_transport_kick(x);
        r->cb(&x->transport, error, json, len, r->userdata);
        request_free(r);
}

void http_transport_fail_all(HttpTransport *x, int error) {
        HttpRequest *list = x->head;

        x->head = x->tail = NULL;
        x->n_pending = 0;
        arm_deadline(x);
        while (list) {
                HttpRequest *next = list->next;
                list->cb(&x->transport, error, NULL, 0, list->userdata);
                request_free(list);
                list = next;
        }
}

static void on_stream_reply(Stream *s, int error, const char *msg, size_t len, void *userdata);

int http_transport_send(HttpTransport *x, const char *path, const char *content_type, const char *cookie,
                        const uint8_t *body, size_t len, int phase) {
        uint8_t *buf;
        size_t buf_len;
        int r;

        r = http1_request_write_type(path, x->host, content_type, cookie, body, len, &buf, &buf_len);
        if (r < 0)
                return r;
        r = stream_request(x->stream, buf, buf_len, on_stream_reply, x);
        if (r < 0)
                return r;
        x->phase = phase;
        return 0;
}

void http_transport_open_session(HttpTransport *x) {
        /* The device's number: bounded, so that the renewal time cannot wrap. */
        uint64_t sec = MIN(x->cookie_timeout ?: HTTP_SESSION_TIMEOUT_DEFAULT_SEC, (uint64_t) 30 * 24 * 3600);
        uint64_t life = sec * USEC_PER_SEC;

        snprintf(x->session_cookie, sizeof(x->session_cookie), "%s", x->cookie);
        x->renew_at = x->net->now(x->event, CLOCK_MONOTONIC) + life - MIN(HTTP_RENEW_MARGIN_USEC, life / 2);
}

void http_transport_session_lost(HttpTransport *x, const char *why) {
        http_transport_drop_session(x);
        if (!x->head->resent) {
                x->head->resent = true;
                http_transport_kick(x);
                return;
        }
        snprintf(x->message, sizeof(x->message), "%s", why);
        http_transport_finish_head(x, -EACCES, NULL, 0);
}

void http_transport_refuse_reply(HttpTransport *x, const char *why) {
        snprintf(x->message, sizeof(x->message), "%s", why);
        http_transport_drop_session(x);
        http_transport_finish_head(x, -EBADMSG, NULL, 0);
}

void http_transport_switch(HttpTransport *x, const HttpEngine *to, const char *why) {
        if (x->head->switched) {
                snprintf(x->message, sizeof(x->message),
                         "the device speaks neither KLAP nor AES securePassthrough (%s)", why);
                http_transport_fail_all(x, -EPROTONOSUPPORT);
                return;
        }
        x->head->switched = true;
        http_transport_drop_session(x);
        x->engine = to;
        http_transport_kick(x);
}

static int on_kick(NetSource *source, void *userdata) {
        HttpTransport *x = userdata;
        int r;

        if (x->phase != 0 || !x->head)
                return 0;
        if (x->have_session && x->net->now(x->event, CLOCK_MONOTONIC) >= x->renew_at)
                http_transport_drop_session(x);
        r = x->engine->start(x);
        if (r < 0) {
                snprintf(x->message, sizeof(x->message), "cannot send a %s request: %s", x->engine->name,
                         strerror(-r));
                http_transport_drop_session(x);
                x->phase = 0;
                http_transport_fail_all(x, r);
        }
        return 0;
}

static int on_deadline(NetSource *source, uint64_t usec, void *userdata) {
        HttpTransport *x = userdata;

        /* What is in flight belongs to the head (or opens a session for
         * it): a late reply must never be taken for the next request's. */
        x->message[0] = 0;
        if (x->phase != 0) {
                if (!x->have_session) {
                        snprintf(x->message, sizeof(x->message), "%s handshake not answered in time",
                                 x->engine->name);
                        http_transport_drop_session(x);
                }
                drop_connection(x);
        }
        /* Like the XOR stream: a hung device fails everything queued, which
         * would only burn its own timeouts one after another. */
        http_transport_fail_all(x, -ETIMEDOUT);
        return 0;
}

static void on_stream_reply(Stream *s, int error, const char *msg, size_t len, void *userdata) {
        HttpTransport *x = userdata;
        int phase = x->phase;

        if (x->resetting)
                return;
        x->phase = 0;
        /* The framer's reason for a refused response stays; the errno says
         * all of the rest. */
        if (!x->framer_failed)
                x->message[0] = 0;
        x->framer_failed = false;
        if (error < 0) {
                if (!x->have_session)
                        http_transport_drop_session(x);
                http_transport_fail_all(x, error);
                return;
        }
        if (!x->head || phase == 0)
                return;
        x->engine->response(x, phase, (const uint8_t *) msg, len);
}

/* ---- the stream's framer: one HTTP response per reply ---- */

static int framer_feed(void *userdata, const uint8_t *data, size_t len, size_t *ret_consumed, char **ret_msg,
                       size_t *ret_len) {
        HttpTransport *x = userdata;
        KasaError err = {};
        Http1Message m;
        int r;

        r = http1_parser_feed(&x->parser, data, len, ret_consumed, &err);
        if (r < 0) {
                snprintf(x->message, sizeof(x->message), "%s", err.message);
                x->framer_failed = true;
                return r == -EMSGSIZE ? -EMSGSIZE : -EBADMSG;
        }
        if (r == 0)
                return 0;
        http1_parser_take(&x->parser, &m);
        x->status = m.status;
        snprintf(x->cookie, sizeof(x->cookie), "%s", m.cookie);
        x->cookie_timeout = m.cookie_timeout;
        *ret_msg = (char *) m.body;
        *ret_len = m.body_len;
        return 1;
}

static void framer_reset(void *userdata) {
        http1_parser_reset(&((HttpTransport *) userdata)->parser);
}

static bool framer_busy(void *userdata) {
        return http1_parser_busy(&((HttpTransport *) userdata)->parser);
}

static const StreamFramer http_framer = {
        .feed = framer_feed,
        .reset = framer_reset,
        .busy = framer_busy,
};

/* ---- ops ---- */

static int http_request(Transport *t, const char *json, TransportReplyFn cb, void *userdata) {
        HttpTransport *x = (HttpTransport *) t;
        HttpRequest *r = calloc(1, sizeof(HttpRequest));

        if (!r)
                return -ENOMEM;
        r->json = strdup(json);
        if (!r->json) {
                free(r);
                return -ENOMEM;
        }
        r->cb = cb;
        r->userdata = userdata;
        r->deadline = x->net->now(x->event, CLOCK_MONOTONIC) + x->timeout_usec;
        if (x->tail)
                x->tail->next = r;
        else {
                x->head = r;
                arm_deadline(x);
        }
        x->tail = r;
        x->n_pending++;
        http_transport_kick(x);
        return 0;
}

static void http_reset(Transport *t) {
        HttpTransport *x = (HttpTransport *) t;

        drop_connection(x);
        http_transport_drop_session(x);
        http_transport_fail_all(x, -ECANCELED);
}

static void set_host(HttpTransport *x, const struct sockaddr_in *a) {
        char ip[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        if (ntohs(a->sin_port) == 80)
                snprintf(x->host, sizeof(x->host), "%s", ip);
        else
                snprintf(x->host, sizeof(x->host), "%s:%u", ip, ntohs(a->sin_port));
}

static int http_set_address(Transport *t, const struct sockaddr_in *address) {
        HttpTransport *x = (HttpTransport *) t;
        int r;

        x->resetting = true;
        r = stream_set_address(x->stream, address);
        x->resetting = false;
        if (r <= 0)
                return r;
        x->phase = 0;
        set_host(x, address);
        http_transport_drop_session(x);
        http_transport_fail_all(x, -ECANCELED);
        return 1;
}

static size_t http_pending(Transport *t) {
        return ((HttpTransport *) t)->n_pending;
}

static const char *http_error_message(Transport *t) {
        HttpTransport *x = (HttpTransport *) t;

        return x->message[0] ? x->message : NULL;
}

static const char *http_protocol(Transport *t) {
        HttpTransport *x = (HttpTransport *) t;

        return x->engine->protocol(x);
}

static void http_free(Transport *t) {
        HttpTransport *x = (HttpTransport *) t;

        x->resetting = true;
        stream_free(x->stream);
        http_transport_fail_all(x, -ECANCELED);
        http_transport_drop_session(x);
        http_aes_done(x);
        x->net->disable_unref(x->kick);
        x->net->disable_unref(x->deadline);
        http1_parser_reset(&x->parser);
        sd_event_unref(x->event);
        OPENSSL_cleanse(x, sizeof(*x));
        free(x);
}

static const TransportOps http_ops = {
        .name = "http",
        .request = http_request,
        .reset = http_reset,
        .set_address = http_set_address,
        .pending = http_pending,
        .free = http_free,
        .error_message = http_error_message,
        .protocol = http_protocol,
};

int transport_http_new(const TransportConfig *config, Transport **ret) {
        HttpTransport *x;
        int r;

        if (config->klap_version < 0 || config->klap_version > 2)
                return -EINVAL;
        x = calloc(1, sizeof(HttpTransport));
        if (!x)
                return -ENOMEM;
        x->transport.ops = &http_ops;
        x->event = config->event ? sd_event_ref(config->event) : NULL;
        x->net = config->net ?: &net_ops_real;
        x->timeout_usec = config->timeout_usec;
        x->engine = config->aes ? &http_aes_engine : &http_klap_engine;
        http1_parser_init(&x->parser, HTTP1_RESPONSE, config->max_reply);
        set_host(x, &config->address);

        r = http_klap_init(x, config);
        if (r >= 0)
                r = http_aes_init(x, config);
        if (r >= 0)
                r = x->net->add_defer(x->event, &x->kick, on_kick, x);
        if (r >= 0)
                r = x->net->set_enabled(x->kick, SD_EVENT_OFF);
        if (r >= 0)
                r = x->net->add_time(x->event, &x->deadline, UINT64_MAX, 0, on_deadline, x);
        if (r >= 0)
                r = x->net->set_enabled(x->deadline, SD_EVENT_OFF);
        if (r >= 0)
                r = stream_new(&(StreamConfig) {
                                .event = config->event,
                                .net = x->net,
                                .address = config->address,
                                .timeout_usec = config->timeout_usec,
                                .framer = &http_framer,
                                .framer_userdata = x,
                        }, &x->stream);
        if (r < 0) {
                http_aes_done(x);
                x->net->disable_unref(x->kick);
                x->net->disable_unref(x->deadline);
                sd_event_unref(x->event);
                OPENSSL_cleanse(x, sizeof(*x));
                free(x);
                return r;
        }
        *ret = &x->transport;
        return 0;
}
