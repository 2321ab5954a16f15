/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the two HTTP transports of newer firmware share (transport-http.c):
 * JSON requests wait in a queue of our own, each with the deadline it got
 * when queued, while the transport opens a session for them over HTTP/1.1
 * on a persistent connection (the stream); every device has its own
 * transport and stream, so a handshake costs the requests behind it time
 * from their own budget and nobody else's. How a session is opened and a
 * request carried is an engine's business:
 *
 *   KLAP (transport-klap.c)  two handshakes proving both sides know the
 *                            credentials, then signed AES requests;
 *   AES  (transport-aes.c)   the older "securePassthrough": an RSA key
 *                            exchange, login_device, then AES requests.
 *
 * Both live on port 80 and a device loaded from the registry or added by
 * address has told us neither, so the transport starts with KLAP and
 * changes engines once when the device says it speaks the other (404 for
 * KLAP's handshake1; error_code 1003 for the AES handshake), inside the
 * same request's deadline; from then on it stays with that engine.
 */

#include <stdbool.h>
#include <stdint.h>

#include "aes-passthrough.h"
#include "http1.h"
#include "klap.h"
#include "rsa-keys.h"
#include "stream.h"
#include "transport.h"

/* Renew this long before the session's TIMEOUT (or half of a short one). */
#define HTTP_RENEW_MARGIN_USEC (300 * USEC_PER_SEC)
/* A device that gives no TIMEOUT: what the devices give. */
#define HTTP_SESSION_TIMEOUT_DEFAULT_SEC 86400

/* Public facts: the credentials devices accept before they are bound to a
 * TP-Link account, for Kasa and Tapo firmware, and blank ones. */
typedef struct HttpCredentials {
        const char *user, *password;
} HttpCredentials;
#define HTTP_DEFAULT_CREDENTIALS 3
extern const HttpCredentials http_default_credentials[HTTP_DEFAULT_CREDENTIALS];

typedef struct HttpRequest {
        struct HttpRequest *next;
        char *json;
        TransportReplyFn cb;
        void *userdata;
        uint64_t deadline;
        bool resent;               /* once, after the device forgot the session */
        bool switched;             /* it made the transport change engines */
} HttpRequest;

typedef struct HttpTransport HttpTransport;

typedef struct HttpEngine {
        const char *name;
        /* The head request may go (x->phase is 0): send it, or what opens
         * a session for it first. < 0 fails every queued request. */
        int (*start)(HttpTransport *x);
        /* The HTTP response (x->status, x->cookie...) to what the engine
         * sent in phase; x->head is the request it was for. */
        void (*response)(HttpTransport *x, int phase, const uint8_t *body, size_t len);
        /* Forget the session and anything half done for one. */
        void (*drop_session)(HttpTransport *x);
        /* For Device.Protocol: "klap", "klap1", "klap2", "aes". */
        const char *(*protocol)(HttpTransport *x);
} HttpEngine;

extern const HttpEngine http_klap_engine;
extern const HttpEngine http_aes_engine;

typedef struct KlapState {
        /* Both versions of each: the check is local, and a device's KLAP
         * version is known only from the 20002 reply, which a device added
         * by address or loaded from the registry has not given. */
        KlapAuth auths[2 * (1 + HTTP_DEFAULT_CREDENTIALS)];
        size_t n_auths;
        size_t auth_index;         /* the candidate the device took last */
        bool matched;              /* auth_index is one the device took */
        KlapSession session;
        uint8_t local[KLAP_SEED_SIZE], remote[KLAP_SEED_SIZE];
        int32_t seq;               /* of the request in flight */
} KlapState;

/* One login_device candidate (copies, cleansed when freed). */
typedef struct AesLogin {
        char *user, *password;
        int version;               /* 1: password, 2: password2 */
} AesLogin;

typedef struct AesState {
        RsaKeys *keys;             /* NULL: pairs made on the loop (tests) */
        AesptKeyPair *keypair;     /* of the handshake in flight */
        bool waiting_key;
        AesptSession session;
        char token[AESPT_TOKEN_MAX];
        AesLogin logins[2 * (1 + HTTP_DEFAULT_CREDENTIALS)];
        size_t n_logins;
        size_t login_index;        /* the candidate the device took last */
        size_t tried;              /* candidates refused in this attempt */
} AesState;

struct HttpTransport {
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

        const HttpEngine *engine;
        int phase;                 /* 0: idle; else what the engine sent */

        /* The session, as far as both engines have one. */
        bool have_session;
        char session_cookie[HTTP1_COOKIE_MAX];
        uint64_t renew_at;         /* CLOCK_MONOTONIC usec */

        bool resetting;            /* our own stream reset: ignore its callback */
        bool framer_failed;        /* message says why the response was refused */
        HttpRequest *head, *tail;
        size_t n_pending;
        NetSource *kick, *deadline;
        char message[256];

        KlapState klap;
        AesState aes;
};

/* POSTs body to path (with the session cookie, or none) and waits in
 * phase for the answer. */
int http_transport_send(HttpTransport *x, const char *path, const char *content_type, const char *cookie,
                        const uint8_t *body, size_t len, int phase);
/* Answers the head request; the queue is consistent before, so its
 * callback may queue more. */
void http_transport_finish_head(HttpTransport *x, int error, const char *json, size_t len);
/* Fails every queued request (the queue detached first). */
void http_transport_fail_all(HttpTransport *x, int error);
/* Forgets the session, the engine's part too. */
void http_transport_drop_session(HttpTransport *x);
/* Runs the engine's start() from the loop when something waits. */
void http_transport_kick(HttpTransport *x);
/* The session opened by the response just read: its cookie, and when to
 * renew it (before the cookie's TIMEOUT). */
void http_transport_open_session(HttpTransport *x);
/* The session is gone; the head goes again once in a new one, or fails
 * with -EACCES and why. */
void http_transport_session_lost(HttpTransport *x, const char *why);
/* A reply that does not open with the session's key (why): not from the
 * device we share the session with, or a session it no longer keeps.
 * The head fails with -EBADMSG, and the next request starts over rather
 * than trust anything more of this one. */
void http_transport_refuse_reply(HttpTransport *x, const char *why);
/* The device speaks the other engine's protocol: change to it, once per
 * request (a device answering neither fails the head). */
void http_transport_switch(HttpTransport *x, const HttpEngine *to, const char *why);

/* Engine setup, from transport_http_new(). */
int http_klap_init(HttpTransport *x, const TransportConfig *config);
int http_aes_init(HttpTransport *x, const TransportConfig *config);
void http_aes_done(HttpTransport *x);
