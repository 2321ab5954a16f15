/* SPDX-License-Identifier: MIT */

/*
 * The KLAP transport on fake sockets and a fake clock, against a fake
 * device played here (common/klap's derivations are checked against
 * independent vectors in tests/unit/test-klap.c; this is about the
 * handshake, the session and the queue).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake-http.h"
#include "fake-net.h"
#include "http1.h"
#include "kasa-time.h"
#include "klap.h"
#include "macro.h"
#include "tap.h"
#include "transport.h"

#define TIMEOUT_USEC 2000000ULL

typedef struct FakeKlap {
        KlapAuth auth;
        unsigned timeout_sec;
        uint8_t local[KLAP_SEED_SIZE], remote[KLAP_SEED_SIZE];
        char cookie[64];
        bool established;
        KlapSession session;
        unsigned handshake1s, handshake2s, requests;
        bool silent_handshake;      /* read handshake1, never answer */
        bool corrupt_signature;
        const char *raw_reply;      /* answer every request with these bytes */
        char last_request[512];
        size_t consumed[FAKE_MAX];  /* of each socket's output */
} FakeKlap;

static void respond(FakeSocket *s, int status, const char *cookie, const void *body, size_t len) {
        uint8_t *buf;
        size_t n;

        if (http1_response_write(status, cookie, false, body, len, &buf, &n) < 0)
                abort();
        fake_push(s, buf, n);
        free(buf);
}

static void handle(FakeKlap *k, FakeSocket *s, const Http1Message *m) {
        if (k->raw_reply) {
                fake_push(s, k->raw_reply, strlen(k->raw_reply));
                return;
        }
        if (strcmp(m->target, "/app/handshake1") == 0) {
                uint8_t reply[KLAP_HANDSHAKE1_REPLY_SIZE];
                char set_cookie[96];

                k->handshake1s++;
                if (k->silent_handshake)
                        return;
                memcpy(k->local, m->body, KLAP_SEED_SIZE);
                for (size_t i = 0; i < KLAP_SEED_SIZE; i++)
                        k->remote[i] = (uint8_t) (k->handshake1s * 31 + i);
                snprintf(k->cookie, sizeof(k->cookie), "TP_SESSIONID=S%u", k->handshake1s);
                k->established = false;
                memcpy(reply, k->remote, KLAP_SEED_SIZE);
                klap_server_hash(&k->auth, k->local, k->remote, reply + KLAP_SEED_SIZE);
                snprintf(set_cookie, sizeof(set_cookie), "%s;TIMEOUT=%u", k->cookie, k->timeout_sec ?: 86400);
                respond(s, 200, set_cookie, reply, sizeof(reply));
        } else if (strcmp(m->target, "/app/handshake2") == 0) {
                uint8_t want[KLAP_HASH_SIZE];

                k->handshake2s++;
                klap_client_hash(&k->auth, k->local, k->remote, want);
                if (strcmp(m->cookie, k->cookie) != 0 || m->body_len != KLAP_HASH_SIZE ||
                    memcmp(want, m->body, KLAP_HASH_SIZE) != 0) {
                        respond(s, 403, NULL, NULL, 0);
                        return;
                }
                klap_session_init(&k->session, &k->auth, k->local, k->remote);
                k->established = true;
                respond(s, 200, NULL, NULL, 0);
        } else if (strncmp(m->target, "/app/request?seq=", 17) == 0) {
                int32_t seq = (int32_t) strtol(m->target + 17, NULL, 10);
                _cleanup_free_ char *plain = NULL;
                _cleanup_free_ uint8_t *body = NULL;
                char reply[600];
                size_t plain_len, body_len;
                KasaError err;

                k->requests++;
                if (!k->established || strcmp(m->cookie, k->cookie) != 0) {
                        respond(s, 403, NULL, NULL, 0);
                        return;
                }
                if (klap_decrypt(&k->session, seq, m->body, m->body_len, &plain, &plain_len, &err) < 0) {
                        respond(s, 400, NULL, NULL, 0);
                        return;
                }
                snprintf(k->last_request, sizeof(k->last_request), "%s", plain);
                snprintf(reply, sizeof(reply), "{\"echo\":%s,\"seq\":%d}", plain, (int) seq);
                klap_seal(&k->session, seq, reply, strlen(reply), &body, &body_len);
                if (k->corrupt_signature)
                        body[5] ^= 1;
                respond(s, 200, NULL, body, body_len);
        } else
                respond(s, 404, NULL, NULL, 0);
}

static void handle_http(void *device, FakeSocket *s, const Http1Message *m) {
        handle(device, s, m);
}

static void pump(FakeKlap *k) {
        fake_http_pump(k->consumed, handle_http, k);
}

static Transport *new_transport(int version, const char *user, const char *password, uint32_t ip) {
        Transport *t = NULL;
        TransportConfig c = {
                .net = &fake_net,
                .address = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = { htonl(ip) } },
                .timeout_usec = TIMEOUT_USEC,
                .klap_version = version,
                .user = user,
                .password = password,
        };

        if (transport_http_new(&c, &t) < 0)
                abort();
        return t;
}

static void fake_klap_init(FakeKlap *k, KlapVersion v, const char *user, const char *password) {
        *k = (FakeKlap) {};
        if (klap_auth_init(&k->auth, v, user, password) < 0)
                abort();
}

static void test_session(KlapVersion v, int expected) {
        FakeKlap k;
        Transport *t;
        Reply a = {}, b = {};

        fake_klap_init(&k, v, "me@example.com", "pw");
        t = new_transport(expected, "me@example.com", "pw", 0x7f000002);
        is_str(transport_protocol(t), "klap", "v%d (expecting %d): protocol unknown before a handshake", v, expected);
        ok(transport_request(t, "{\"q\":1}", on_reply, &a) >= 0, "v%d: request queued", v);
        is_int(a.calls, 0, "v%d: no callback from inside the request call", v);
        is_int(transport_pending(t), 1, "v%d: one pending", v);
        pump(&k);
        is_int(a.calls, 1, "v%d: answered after the handshake", v);
        is_int(a.error, 0, "v%d: successfully", v);
        ok(strstr(a.json, "\"echo\":{\"q\":1}") != NULL, "v%d: the device decrypted our request and we its reply (%s)",
           v, a.json);
        ok(k.handshake1s == 1 && k.handshake2s == 1 && k.requests == 1, "v%d: one handshake, one request", v);
        is_str(transport_protocol(t), v == KLAP_V1 ? "klap1" : "klap2", "v%d: protocol known after it", v);

        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&k);
        ok(b.calls == 1 && b.error == 0 && strstr(b.json, "{\"q\":2}"), "v%d: second request answered", v);
        ok(k.handshake1s == 1 && k.requests == 2, "v%d: in the same session", v);
        is_int(fake.n_sockets, 1, "v%d: on one persistent connection", v);
        is_int(transport_pending(t), 0, "v%d: nothing pending", v);
        transport_free(t);
        fake_reset();
}

/* A device that forgot the session (expiry, reboot) answers 403: the
 * request is sent again in a new session, and its caller never knows. */
static void test_403(void) {
        FakeKlap k;
        Transport *t;
        Reply a = {}, b = {};

        fake_klap_init(&k, KLAP_V2, "", "");
        t = new_transport(2, NULL, NULL, 0x7f000002);
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&k);
        ok(a.calls == 1 && a.error == 0, "403: blank credentials of an unbound device work without configuration");
        k.established = false;
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&k);
        is_int(b.calls, 1, "403: the request is answered once");
        is_int(b.error, 0, "403: successfully, after a new handshake");
        ok(k.handshake1s == 2 && k.requests == 3, "403: one refused request, one new handshake, one resent request");
        transport_free(t);
        fake_reset();
}

static void test_renew(void) {
        FakeKlap k;
        Transport *t;
        Reply a = {}, b = {}, c = {};

        fake_klap_init(&k, KLAP_V1, "me@example.com", "pw");
        k.timeout_sec = 1200;
        t = new_transport(1, "me@example.com", "pw", 0x7f000002);
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&k);
        fake_advance((1200 - 300) * USEC_PER_SEC - 1);
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&k);
        ok(b.error == 0 && k.handshake1s == 1, "renew: within TIMEOUT minus the margin, the session is kept");
        fake_advance(1);
        transport_request(t, "{\"q\":3}", on_reply, &c);
        pump(&k);
        ok(c.error == 0 && c.calls == 1, "renew: the request after the margin is answered");
        ok(k.handshake1s == 2 && k.requests == 3, "renew: by a new session opened before the old one expired, no 403");
        transport_free(t);
        fake_reset();
}

static void test_wrong_credentials(void) {
        FakeKlap k;
        Transport *t;
        Reply a = {}, b = {};
        const char *msg;

        fake_klap_init(&k, KLAP_V2, "owner@example.com", "right");
        t = new_transport(2, "owner@example.com", "wrong", 0x7f000002);
        transport_request(t, "{\"q\":1}", on_reply, &a);
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&k);
        is_int(a.error, -EACCES, "credentials: a server hash none of ours gives fails with EACCES");
        is_int(b.error, -EACCES, "credentials: the request queued behind it too");
        is_int(k.handshake2s, 0, "credentials: no handshake2 with a device we cannot trust");
        msg = transport_error_message(t);
        ok(msg && strstr(msg, "server hash") && strstr(msg, "credentials"), "credentials: the message says why: %s",
           msg ?: "(null)");
        ok(msg && !strstr(msg, "wrong"), "credentials: and not the password");

        /* The owner fixes the device's side: the next request succeeds. */
        klap_auth_init(&k.auth, KLAP_V2, "owner@example.com", "wrong");
        a = (Reply) {};
        transport_request(t, "{\"q\":3}", on_reply, &a);
        pump(&k);
        ok(a.calls == 1 && a.error == 0, "credentials: recovered once they match");
        ok(transport_error_message(t) == NULL, "credentials: the message is gone");
        transport_free(t);
        fake_reset();
}

/* A hung handshake costs the requests queued behind it their own
 * deadline, counted from when each was queued, and nothing more. */
static void test_hung_handshake(void) {
        FakeKlap k, k2;
        Transport *t, *t2;
        Reply a = {}, b = {}, c = {}, other = {};

        fake_klap_init(&k, KLAP_V2, "", "");
        fake_klap_init(&k2, KLAP_V2, "", "");
        k.silent_handshake = true;
        t = new_transport(2, NULL, NULL, 0x7f000002);
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&k);
        fake_advance(TIMEOUT_USEC / 2);
        transport_request(t, "{\"q\":2}", on_reply, &b);

        /* Another device polled meanwhile is not held up. */
        t2 = new_transport(2, NULL, NULL, 0x7f000003);
        transport_request(t2, "{\"other\":1}", on_reply, &other);
        fake_run();
        {
                /* Only the second transport's socket: k2 plays that device. */
                FakeSocket *s2 = fake_last_socket();
                for (size_t i = 0; i + 1 < fake.n_sockets; i++)
                        k2.consumed[i] = fake.sockets[i].out_len;
                for (int round = 0; round < 4; round++) {
                        fake_http_serve(k2.consumed, handle_http, &k2);
                        fake_run();
                }
                ok(other.calls == 1 && other.error == 0 && a.calls == 0 && !s2->closed,
                   "hung handshake: another device's request is answered meanwhile");
        }
        fake_advance(TIMEOUT_USEC / 2 - 1);
        is_int(a.calls + b.calls, 0, "hung handshake: nothing fails before the first deadline");
        fake_advance(1);
        is_int(a.error, -ETIMEDOUT, "hung handshake: the first request fails at its deadline");
        is_int(b.error, -ETIMEDOUT, "hung handshake: the one queued behind it too, not later");
        ok(transport_error_message(t) && strstr(transport_error_message(t), "handshake"),
           "hung handshake: the message says so");
        ok(fake_socket(0)->closed, "hung handshake: its connection is closed");

        k.silent_handshake = false;
        transport_request(t, "{\"q\":3}", on_reply, &c);
        pump(&k);
        ok(c.calls == 1 && c.error == 0, "hung handshake: the next request gets a session on a fresh connection");
        transport_free(t);
        transport_free(t2);
        fake_reset();
}

static void test_bad_signature(void) {
        FakeKlap k;
        Transport *t;
        Reply a = {}, b = {};

        fake_klap_init(&k, KLAP_V2, "", "");
        k.corrupt_signature = true;
        t = new_transport(2, NULL, NULL, 0x7f000002);
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&k);
        is_int(a.error, -EBADMSG, "signature: a corrupted reply signature fails the request");
        ok(transport_error_message(t) && strstr(transport_error_message(t), "signature"),
           "signature: the message says so");
        k.corrupt_signature = false;
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&k);
        ok(b.error == 0 && k.handshake1s == 2, "signature: the session is not trusted again, a new one works");
        transport_free(t);
        fake_reset();
}

static void test_hostile_http(void) {
        static const struct {
                const char *name, *reply;
                int error;
        } cases[] = {
                { "garbage", "\x16\x03\x01 hello", -EBADMSG },
                { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", -EBADMSG },
                { "huge body", "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", -EMSGSIZE },
                { "handshake1 of the wrong size", "HTTP/1.1 200 OK\r\nSet-Cookie: TP_SESSIONID=1\r\n"
                  "Content-Length: 3\r\n\r\nabc", -EBADMSG },
                { "handshake1 without cookie", "HTTP/1.1 200 OK\r\nContent-Length: 48\r\n\r\n"
                  "0123456789abcdef0123456789abcdef0123456789abcdef", -EBADMSG },
                { "handshake1 refused", "HTTP/1.1 500 Error\r\nContent-Length: 0\r\n\r\n", -EBADMSG },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FakeKlap k;
                Transport *t;
                Reply a = {};

                fake_klap_init(&k, KLAP_V2, "", "");
                k.raw_reply = cases[i].reply;
                t = new_transport(2, NULL, NULL, 0x7f000002);
                transport_request(t, "{\"q\":1}", on_reply, &a);
                pump(&k);
                ok(a.calls == 1 && a.error == cases[i].error, "hostile: %s fails the request (%d, want %d)",
                   cases[i].name, a.error, cases[i].error);
                ok(transport_error_message(t) != NULL, "hostile: %s: %s", cases[i].name,
                   transport_error_message(t) ?: "(no message)");
                transport_free(t);
                fake_reset();
        }
}

static void test_reset_and_free(void) {
        FakeKlap k;
        Transport *t;
        Reply a = {}, b = {};

        fake_klap_init(&k, KLAP_V2, "", "");
        k.silent_handshake = true;
        t = new_transport(2, NULL, NULL, 0x7f000002);
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&k);
        transport_reset(t);
        ok(a.calls == 1 && a.error == -ECANCELED, "reset: cancels what is queued");
        transport_request(t, "{\"q\":2}", on_reply, &b);
        transport_free(t);
        ok(b.calls == 1 && b.error == -ECANCELED, "free: cancels what is queued");
        is_int(fake.n_open, 0, "free: no socket left open");
        fake_reset();
}

int main(void) {
        test_session(KLAP_V1, 1);
        test_session(KLAP_V2, 2);
        test_session(KLAP_V1, 2);
        test_session(KLAP_V2, 0);
        test_403();
        test_renew();
        test_wrong_credentials();
        test_hung_handshake();
        test_bad_signature();
        test_hostile_http();
        test_reset_and_free();
        return done_testing();
}
