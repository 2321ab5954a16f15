/* SPDX-License-Identifier: MIT */

/*
 * KLAP: JSON requests encrypted and signed per request, over HTTP/1.1 on a
 * persistent connection (the stream), inside a session opened by a
 * two-step handshake. Requests wait in a queue of our own while a
 * handshake runs; each keeps the deadline it got when queued, so a
 * handshake costs the requests behind it time from their own budget and
 * nobody else's (every device has its own transport and stream). A session
 * is renewed before its cookie's TIMEOUT runs out, and at once when the
 * device answers 403 (it forgot us: reboot, expiry, another client's
 * handshake); the request that drew the 403 is sent again once.
 *
 * The device proves it knows the credentials by handshake1's server hash.
 * We check it against every candidate (the owner's, the vendor's setup
 * defaults, blank ones) locally, so trying them costs no extra round trip;
 * a hash none of them gives fails the handshake with -EACCES: wrong
 * credentials, or a device that is not what it claims.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "kasa-time.h"
#include "klap.h"
#include "macro.h"
#include "stream.h"
#include "transport.h"

/* Renew this long before the session's TIMEOUT (or half of a short one). */
#define KLAP_RENEW_MARGIN_USEC (300 * USEC_PER_SEC)
/* A device that gives no TIMEOUT: what the devices give. */
#define KLAP_TIMEOUT_DEFAULT_SEC 86400

/* Public facts: the credentials devices accept before they are bound to a
 * TP-Link account, for Kasa and Tapo firmware. */
static const struct {
        const char *user, *password;
} default_credentials[] = {
        { "kasa@tp-link.net", "kasaSetup" },
        { "test@tp-link.net", "test" },
        { "", "" },
};

typedef struct KlapRequest {
        struct KlapRequest *next;
        char *json;
        TransportReplyFn cb;
        void *userdata;
        uint64_t deadline;
        bool resent;               /* once, after a 403 */
} KlapRequest;

typedef enum KlapPhase {
        PHASE_IDLE,
        PHASE_HANDSHAKE1,
        PHASE_HANDSHAKE2,
        PHASE_REQUEST,
} KlapPhase;

typedef struct KlapTransport {
        Transport transport;
        sd_event *event;
        const NetOps *net;
        Stream *stream;
        uint64_t timeout_usec;
        char host[INET_ADDRSTRLEN + 8];

        /* The HTTP response the stream just delivered (its body is the
         * stream's message). */
        Http1Parser parser;
        int status;
        char cookie[HTTP1_COOKIE_MAX];
        uint64_t cookie_timeout;

        /* Both versions of each: the check is local, and a device's KLAP
         * version is known only from the 20002 reply, which a device added
         * by address or loaded from the registry has not given. */
        KlapAuth auths[2 * (1 + ELEMENTSOF(default_credentials))];
        size_t n_auths;
        size_t auth_index;         /* the candidate the device took last */
        bool matched;              /* auth_index is one the device took */

        /* session */
        bool have_session;
        char session_cookie[HTTP1_COOKIE_MAX];
        uint64_t session_timeout_sec;
        uint64_t renew_at;         /* CLOCK_MONOTONIC usec */
        KlapSession session;
        uint8_t local[KLAP_SEED_SIZE], remote[KLAP_SEED_SIZE];

        KlapPhase phase;
        int32_t seq;               /* of the request in flight */
        bool resetting;            /* our own stream reset: ignore its callback */
        bool framer_failed;        /* message says why the response was refused */
        KlapRequest *head, *tail;
        size_t n_pending;
        NetSource *kick, *deadline;
        char message[256];
} KlapTransport;

static void request_free(KlapRequest *r) {
        free(r->json);
        free(r);
}

static KlapRequest *pop_head(KlapTransport *x) {
        KlapRequest *r = x->head;

        x->head = r->next;
        if (!x->head)
                x->tail = NULL;
        x->n_pending--;
        return r;
}

static void arm_deadline(KlapTransport *x) {
        if (!x->head) {
                (void) x->net->set_enabled(x->deadline, SD_EVENT_OFF);
                return;
        }
        (void) x->net->set_time(x->deadline, x->head->deadline);
        (void) x->net->set_enabled(x->deadline, SD_EVENT_ONESHOT);
}

static void kick(KlapTransport *x) {
        if (x->head && x->phase == PHASE_IDLE)
                (void) x->net->set_enabled(x->kick, SD_EVENT_ONESHOT);
}

/* Drops the connection (and with it what is in flight) without hearing of
 * it through our own stream callback. */
static void drop_connection(KlapTransport *x) {
        x->resetting = true;
        stream_reset(x->stream);
        x->resetting = false;
        x->phase = PHASE_IDLE;
}

static void drop_session(KlapTransport *x) {
        x->have_session = false;
        OPENSSL_cleanse(&x->session, sizeof(x->session));
}

/* Calls back the head request; the queue is consistent before, so the
 * callback may queue more. */
static void finish_head(KlapTransport *x, int error, const char *json, size_t len) {
        KlapRequest *r = pop_head(x);

        arm_deadline(x);
        kick(x);
        r->cb(&x->transport, error, json, len, r->userdata);
        request_free(r);
}

/* Fails every queued request: the queue is detached first, so callbacks
 * may queue new ones. */
static void fail_all(KlapTransport *x, int error) {
        KlapRequest *list = x->head;

        x->head = x->tail = NULL;
        x->n_pending = 0;
        arm_deadline(x);
        while (list) {
                KlapRequest *next = list->next;
                list->cb(&x->transport, error, NULL, 0, list->userdata);
                request_free(list);
                list = next;
        }
}

static void on_stream_reply(Stream *s, int error, const char *msg, size_t len, void *userdata);

static int send_http(KlapTransport *x, const char *path, const char *cookie, const uint8_t *body, size_t len,
                     KlapPhase phase) {
        uint8_t *buf;
        size_t buf_len;
        int r;

        r = http1_request_write(path, x->host, cookie, body, len, &buf, &buf_len);
        if (r < 0)
                return r;
        r = stream_request(x->stream, buf, buf_len, on_stream_reply, x);
        if (r < 0)
                return r;
        x->phase = phase;
        return 0;
}

static int start_handshake(KlapTransport *x) {
        int r;

        drop_session(x);
        r = klap_random(x->local, sizeof(x->local));
        if (r < 0)
                return r;
        return send_http(x, "/app/handshake1", NULL, x->local, sizeof(x->local), PHASE_HANDSHAKE1);
}

static int send_head(KlapTransport *x) {
        _cleanup_free_ uint8_t *body = NULL;
        char path[48];
        size_t len;
        int r;

        r = klap_encrypt(&x->session, x->head->json, strlen(x->head->json), &body, &len, &x->seq);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/app/request?seq=%d", (int) x->seq);
        return send_http(x, path, x->session_cookie, body, len, PHASE_REQUEST);
}

static int on_kick(NetSource *source, void *userdata) {
        KlapTransport *x = userdata;
        int r;

        if (x->phase != PHASE_IDLE || !x->head)
                return 0;
        if (!x->have_session || x->net->now(x->event, CLOCK_MONOTONIC) >= x->renew_at)
                r = start_handshake(x);
        else
                r = send_head(x);
        if (r < 0) {
                snprintf(x->message, sizeof(x->message), "cannot send a KLAP request: %s", strerror(-r));
                fail_all(x, r);
        }
        return 0;
}

static int on_deadline(NetSource *source, uint64_t usec, void *userdata) {
        KlapTransport *x = userdata;

        /* What is in flight belongs to the head (or is a handshake for it):
         * a late reply must never be taken for the next request's. */
        x->message[0] = 0;
        if (x->phase != PHASE_IDLE) {
                if (x->phase != PHASE_REQUEST)
                        snprintf(x->message, sizeof(x->message), "KLAP handshake not answered in time");
                drop_connection(x);
        }
        /* Like the XOR stream: a hung device fails everything queued, which
         * would only burn its own timeouts one after another. */
        fail_all(x, -ETIMEDOUT);
        return 0;
}

static void on_handshake1(KlapTransport *x, const uint8_t *body, size_t len) {
        uint8_t client[KLAP_HASH_SIZE];
        KasaError err = {};
        int r = -EACCES;

        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message), "KLAP handshake1 answered HTTP %d", x->status);
                fail_all(x, -EBADMSG);
                return;
        }
        if (!x->cookie[0]) {
                snprintf(x->message, sizeof(x->message), "KLAP handshake1 reply without a session cookie");
                fail_all(x, -EBADMSG);
                return;
        }
        /* The candidate the device took last first: the check is local, but
         * the common case should not depend on the order of the list. */
        for (size_t k = 0; k < x->n_auths && r == -EACCES; k++) {
                size_t i = (x->auth_index + k) % x->n_auths;

                r = klap_handshake1_check(&x->auths[i], x->local, body, len, x->remote, &err);
                if (r == 0) {
                        x->auth_index = i;
                        x->matched = true;
                }
        }
        if (r < 0) {
                if (r == -EACCES)
                        snprintf(x->message, sizeof(x->message),
                                 "the device's handshake1 server hash matches none of the credentials tried "
                                 "(the configured TP-Link account, the vendor's defaults, blank ones): "
                                 "set the account the device is bound to in kasamond's credentials");
                else
                        snprintf(x->message, sizeof(x->message), "%s", err.message);
                fail_all(x, r);
                return;
        }
        snprintf(x->session_cookie, sizeof(x->session_cookie), "%s", x->cookie);
        /* The device's number: bounded, so that the renewal time cannot wrap. */
        x->session_timeout_sec = MIN(x->cookie_timeout ?: KLAP_TIMEOUT_DEFAULT_SEC, (uint64_t) 30 * 24 * 3600);
        r = klap_client_hash(&x->auths[x->auth_index], x->local, x->remote, client);
        if (r >= 0)
                r = send_http(x, "/app/handshake2", x->session_cookie, client, sizeof(client), PHASE_HANDSHAKE2);
        if (r < 0)
                fail_all(x, r);
}

static void on_handshake2(KlapTransport *x) {
        uint64_t life, margin;
        int r;

        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message),
                         "the device refused our handshake2 (HTTP %d): it does not take these credentials",
                         x->status);
                fail_all(x, -EACCES);
                return;
        }
        r = klap_session_init(&x->session, &x->auths[x->auth_index], x->local, x->remote);
        if (r < 0) {
                fail_all(x, r);
                return;
        }
        life = x->session_timeout_sec * USEC_PER_SEC;
        margin = MIN(KLAP_RENEW_MARGIN_USEC, life / 2);
        x->renew_at = x->net->now(x->event, CLOCK_MONOTONIC) + life - margin;
        x->have_session = true;
        x->message[0] = 0;
        r = send_head(x);
        if (r < 0)
                fail_all(x, r);
}

static void on_request(KlapTransport *x, const uint8_t *body, size_t len) {
        _cleanup_free_ char *plain = NULL;
        size_t plain_len;
        KasaError err = {};
        int r;

        if (x->status == 403) {
                drop_session(x);
                if (!x->head->resent) {
                        x->head->resent = true;
                        kick(x);
                        return;
                }
                snprintf(x->message, sizeof(x->message), "the device refused a fresh KLAP session (HTTP 403)");
                finish_head(x, -EACCES, NULL, 0);
                return;
        }
        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message), "KLAP request answered HTTP %d", x->status);
                finish_head(x, -EBADMSG, NULL, 0);
                return;
        }
        r = klap_decrypt(&x->session, x->seq, body, len, &plain, &plain_len, &err);
        if (r < 0) {
                /* Not from the device we share the session with: start
                 * over rather than trust anything more of it. */
                snprintf(x->message, sizeof(x->message), "%s", err.message);
                drop_session(x);
                finish_head(x, -EBADMSG, NULL, 0);
                return;
        }
        finish_head(x, 0, plain, plain_len);
}

static void on_stream_reply(Stream *s, int error, const char *msg, size_t len, void *userdata) {
        KlapTransport *x = userdata;
        KlapPhase phase = x->phase;

        if (x->resetting)
                return;
        x->phase = PHASE_IDLE;
        /* The framer's reason for a refused response stays; the errno says
         * all of the rest. */
        if (!x->framer_failed)
                x->message[0] = 0;
        x->framer_failed = false;
        if (error < 0) {
                if (phase != PHASE_REQUEST)
                        drop_session(x);
                fail_all(x, error);
                return;
        }
        if (!x->head)
                return;
        switch (phase) {
        case PHASE_HANDSHAKE1:
                on_handshake1(x, (const uint8_t *) msg, len);
                break;
        case PHASE_HANDSHAKE2:
                on_handshake2(x);
                break;
        case PHASE_REQUEST:
                on_request(x, (const uint8_t *) msg, len);
                break;
        case PHASE_IDLE:
                break;
        }
}

/* ---- the stream's framer: one HTTP response per reply ---- */

static int framer_feed(void *userdata, const uint8_t *data, size_t len, size_t *ret_consumed, char **ret_msg,
                       size_t *ret_len) {
        KlapTransport *x = userdata;
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
        http1_parser_reset(&((KlapTransport *) userdata)->parser);
}

static bool framer_busy(void *userdata) {
        return http1_parser_busy(&((KlapTransport *) userdata)->parser);
}

static const StreamFramer http_framer = {
        .feed = framer_feed,
        .reset = framer_reset,
        .busy = framer_busy,
};

/* ---- ops ---- */

static int klap_request(Transport *t, const char *json, TransportReplyFn cb, void *userdata) {
        KlapTransport *x = (KlapTransport *) t;
        KlapRequest *r = calloc(1, sizeof(KlapRequest));

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
        kick(x);
        return 0;
}

static void klap_reset(Transport *t) {
        KlapTransport *x = (KlapTransport *) t;

        drop_connection(x);
        drop_session(x);
        fail_all(x, -ECANCELED);
}

static void set_host(KlapTransport *x, const struct sockaddr_in *a) {
        char ip[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        if (ntohs(a->sin_port) == 80)
                snprintf(x->host, sizeof(x->host), "%s", ip);
        else
                snprintf(x->host, sizeof(x->host), "%s:%u", ip, ntohs(a->sin_port));
}

static int klap_set_address(Transport *t, const struct sockaddr_in *address) {
        KlapTransport *x = (KlapTransport *) t;
        int r;

        x->resetting = true;
        r = stream_set_address(x->stream, address);
        x->resetting = false;
        if (r <= 0)
                return r;
        x->phase = PHASE_IDLE;
        set_host(x, address);
        drop_session(x);
        fail_all(x, -ECANCELED);
        return 1;
}

static size_t klap_pending(Transport *t) {
        return ((KlapTransport *) t)->n_pending;
}

static const char *klap_error_message(Transport *t) {
        KlapTransport *x = (KlapTransport *) t;

        return x->message[0] ? x->message : NULL;
}

static const char *klap_protocol(Transport *t) {
        KlapTransport *x = (KlapTransport *) t;

        if (!x->matched)
                return "klap";
        return x->auths[x->auth_index].version == KLAP_V2 ? "klap2" : "klap1";
}

static void klap_free(Transport *t) {
        KlapTransport *x = (KlapTransport *) t;

        x->resetting = true;
        stream_free(x->stream);
        fail_all(x, -ECANCELED);
        x->net->disable_unref(x->kick);
        x->net->disable_unref(x->deadline);
        http1_parser_reset(&x->parser);
        sd_event_unref(x->event);
        OPENSSL_cleanse(x, sizeof(*x));
        free(x);
}

static const TransportOps klap_ops = {
        .name = "klap",
        .request = klap_request,
        .reset = klap_reset,
        .set_address = klap_set_address,
        .pending = klap_pending,
        .free = klap_free,
        .error_message = klap_error_message,
        .protocol = klap_protocol,
};

static int add_auth(KlapTransport *x, KlapVersion v, const char *user, const char *password) {
        KlapAuth a;
        int r;

        r = klap_auth_init(&a, v, user, password);
        if (r < 0)
                return r;
        /* The configured account may well be one of the defaults. */
        for (size_t i = 0; i < x->n_auths; i++)
                if (x->auths[i].version == v && memcmp(x->auths[i].hash, a.hash, a.len) == 0)
                        return 0;
        x->auths[x->n_auths++] = a;
        return 0;
}

/* The expected version's candidates first, then the other's. */
static int add_auths(KlapTransport *x, KlapVersion first, const char *user, const char *password) {
        int r = 0;

        for (int k = 0; k < 2 && r >= 0; k++) {
                KlapVersion v = k == 0 ? first : (first == KLAP_V1 ? KLAP_V2 : KLAP_V1);

                if (user && password)
                        r = add_auth(x, v, user, password);
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(default_credentials); i++)
                        r = add_auth(x, v, default_credentials[i].user, default_credentials[i].password);
        }
        return r;
}

int transport_klap_new(const TransportConfig *config, Transport **ret) {
        KlapTransport *x;
        KlapVersion v = config->klap_version == 1 ? KLAP_V1 : KLAP_V2;
        int r;

        if (config->klap_version < 0 || config->klap_version > 2)
                return -EINVAL;
        x = calloc(1, sizeof(KlapTransport));
        if (!x)
                return -ENOMEM;
        x->transport.ops = &klap_ops;
        x->event = config->event ? sd_event_ref(config->event) : NULL;
        x->net = config->net ?: &net_ops_real;
        x->timeout_usec = config->timeout_usec;
        http1_parser_init(&x->parser, HTTP1_RESPONSE, config->max_reply);
        set_host(x, &config->address);

        r = add_auths(x, v, config->user, config->password);
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
                x->net->disable_unref(x->kick);
                x->net->disable_unref(x->deadline);
                sd_event_unref(x->event);
                free(x);
                return r;
        }
        *ret = &x->transport;
        return 0;
}
