/* SPDX-License-Identifier: MIT */

/*
 * The HTTP transport's AES engine on fake sockets and a fake clock,
 * against a fake device played here with common/aes-passthrough's device
 * side (whose parts are checked against independent vectors in
 * tests/unit/test-aes-passthrough.c): the change from KLAP to AES and back,
 * the login over the candidates, a forgotten session, a hung handshake, a
 * corrupted reply, renewal.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aes-passthrough.h"
#include "fake-http.h"
#include "fake-net.h"
#include "http1.h"
#include "kasa-time.h"
#include "macro.h"
#include "tap.h"
#include "transport.h"

#define TIMEOUT_USEC 2000000ULL

typedef struct FakeAes {
        char *username, *password;  /* the login fields it takes */
        int login_version;
        bool klap_device;           /* answers the AES handshake 1003, handshake1 404 */
        bool neither;               /* answers handshake1 404 and the AES handshake 1003 */
        bool silent_handshake;
        bool corrupt_reply;
        unsigned timeout_sec;
        AesptSession session;
        char cookie[64], token[32];
        unsigned handshakes, logins, refused, requests, handshake1s;
        size_t consumed[FAKE_MAX];
} FakeAes;

static void respond(FakeSocket *s, int status, const char *cookie, const char *json) {
        uint8_t *buf;
        size_t n;

        if (http1_response_write_type(status, HTTP1_JSON, cookie, false, (const uint8_t *) json,
                                      json ? strlen(json) : 0, &buf, &n) < 0)
                abort();
        fake_push(s, buf, n);
        free(buf);
}

static void answer(FakeAes *f, FakeSocket *s, const char *inner) {
        _cleanup_free_ char *body = NULL;

        if (aespt_response_answer(&f->session, inner, strlen(inner), &body) < 0)
                abort();
        if (f->corrupt_reply) {
                char *c = strstr(body, "\"response\":\"");
                c[12] = c[12] == 'A' ? 'B' : 'A';
        }
        respond(s, 200, NULL, body);
}

static void handle(FakeAes *f, FakeSocket *s, const Http1Message *m) {
        _cleanup_free_ char *method = NULL, *param = NULL, *plain = NULL;
        size_t plain_len;
        KasaError err;

        if (strcmp(m->target, "/app/handshake1") == 0) {
                f->handshake1s++;
                respond(s, 404, NULL, NULL);
                return;
        }
        if (aespt_parse_call((const char *) m->body, m->body_len, &method, &param, &err) < 0)
                abort();
        if (strcmp(method, "handshake") == 0) {
                _cleanup_free_ char *reply = NULL;
                char set_cookie[96];

                f->handshakes++;
                if (f->klap_device || f->neither) {
                        respond(s, 200, NULL, "{\"error_code\":1003}");
                        return;
                }
                if (f->silent_handshake)
                        return;
                if (aespt_handshake_answer(param, &f->session, &reply) < 0)
                        abort();
                snprintf(f->cookie, sizeof(f->cookie), "TP_SESSIONID=A%u", f->handshakes);
                f->token[0] = 0;
                snprintf(set_cookie, sizeof(set_cookie), "%s;TIMEOUT=%u", f->cookie, f->timeout_sec ?: 86400);
                respond(s, 200, set_cookie, reply);
                return;
        }
        if (!f->cookie[0] || strcmp(m->cookie, f->cookie) != 0) {
                respond(s, 200, NULL, "{\"error_code\":9999}");
                return;
        }
        if (aespt_open_request(&f->session, param, &plain, &plain_len) < 0)
                abort();
        if (strstr(plain, "\"login_device\"")) {
                bool good = strstr(plain, f->username) && strstr(plain, f->password) &&
                            strstr(plain, f->login_version == 2 ? "\"password2\"" : "\"password\"");

                if (!good) {
                        f->refused++;
                        answer(f, s, "{\"error_code\":-1501}");
                        f->cookie[0] = 0;
                        return;
                }
                f->logins++;
                snprintf(f->token, sizeof(f->token), "T%u", f->logins);
                char reply[96];
                snprintf(reply, sizeof(reply), "{\"error_code\":0,\"result\":{\"token\":\"%s\"}}", f->token);
                answer(f, s, reply);
                return;
        }
        f->requests++;
        if (!f->token[0] || strncmp(m->target, "/app?token=", 11) != 0 || strcmp(m->target + 11, f->token) != 0) {
                respond(s, 200, NULL, "{\"error_code\":9999}");
                return;
        }
        char reply[600];
        snprintf(reply, sizeof(reply), "{\"echo\":%s}", plain);
        answer(f, s, reply);
}

static void handle_http(void *device, FakeSocket *s, const Http1Message *m) {
        handle(device, s, m);
}

static void pump(FakeAes *f) {
        fake_http_pump(f->consumed, handle_http, f);
}

static Transport *new_transport(bool aes, const char *user, const char *password) {
        Transport *t = NULL;
        TransportConfig c = {
                .net = &fake_net,
                .address = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr = { htonl(0x7f000002) } },
                .timeout_usec = TIMEOUT_USEC,
                .user = user,
                .password = password,
                .aes = aes,
        };

        if (transport_http_new(&c, &t) < 0)
                abort();
        return t;
}

static void fake_aes_init(FakeAes *f, int version, const char *user, const char *password) {
        *f = (FakeAes) { .login_version = version };
        if (aespt_login_params(user, password, version, &f->username, &f->password) < 0)
                abort();
}

static void fake_aes_done(FakeAes *f) {
        free(f->username);
        free(f->password);
        fake_reset();
}

/* A device loaded from the registry: KLAP first, 404, then AES in the
 * same request. */
static void test_from_klap(void) {
        FakeAes f;
        Transport *t;
        Reply a = {}, b = {};

        fake_aes_init(&f, 1, "me@example.com", "pw");
        t = new_transport(false, "me@example.com", "pw");
        is_str(transport_protocol(t), "klap", "from KLAP: protocol klap before anything");
        transport_request(t, "{\"method\":\"get_device_info\"}", on_reply, &a);
        pump(&f);
        ok(a.calls == 1 && a.error == 0 && strstr(a.json, "\"echo\":{\"method\":\"get_device_info\"}"),
           "from KLAP: a 404 for handshake1, and the same request answered over AES (%s)", a.json);
        ok(f.handshake1s == 1 && f.handshakes == 1 && f.logins == 1 && f.requests == 1,
           "from KLAP: one handshake1, one AES handshake, one login, one request");
        is_str(transport_protocol(t), "aes", "from KLAP: protocol aes");
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&f);
        ok(b.error == 0 && f.handshakes == 1 && f.handshake1s == 1 && f.requests == 2,
           "from KLAP: the next request in the same session, no KLAP again");
        is_int(fake.n_sockets, 1, "from KLAP: on one persistent connection");
        transport_free(t);
        fake_aes_done(&f);
}

/* login version 2, and the owner's account refused first by a device
 * that is not bound to it: blank credentials, each try in a new session. */
static void test_candidates(void) {
        FakeAes f;
        Transport *t;
        Reply a = {}, b = {};

        fake_aes_init(&f, 2, "me@example.com", "pw");
        t = new_transport(true, "me@example.com", "pw");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        ok(a.error == 0 && f.refused == 1 && f.logins == 1 && f.handshakes == 2,
           "login v2: v1 refused, a new handshake, v2 taken (%d, %u refused)", a.error, f.refused);
        transport_free(t);
        fake_aes_done(&f);

        fake_aes_init(&f, 1, "", "");
        t = new_transport(true, "me@example.com", "pw");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        ok(a.error == 0 && f.logins == 1 && f.refused == 6 && f.handshakes == 7,
           "unbound: the account (v1, v2) and the defaults refused, blank taken (%u refused)", f.refused);
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&f);
        f.cookie[0] = 0;
        transport_request(t, "{\"q\":3}", on_reply, &b);
        pump(&f);
        ok(b.error == 0 && f.refused == 6 && f.logins == 2,
           "unbound: a new session logs in with what the device took last, first");
        transport_free(t);
        fake_aes_done(&f);
}

static void test_wrong_credentials(void) {
        FakeAes f;
        Transport *t;
        Reply a = {};

        fake_aes_init(&f, 1, "owner@example.com", "the real one");
        t = new_transport(true, "owner@example.com", "not it");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        is_int(a.error, -EACCES, "wrong credentials: -EACCES");
        ok(f.refused == 8 && f.handshakes == 8, "wrong credentials: every candidate tried once (%u)", f.refused);
        ok(transport_error_message(t) && strstr(transport_error_message(t), "login_device refused every credential") &&
           strstr(transport_error_message(t), "-1501") && !strstr(transport_error_message(t), "not it"),
           "wrong credentials: the message says so, without the password (%s)", transport_error_message(t));
        transport_free(t);
        fake_aes_done(&f);
}

/* error_code 9999: the request goes again in a new session, once. */
static void test_session_lost(void) {
        FakeAes f;
        Transport *t;
        Reply a = {}, b = {};

        fake_aes_init(&f, 1, "me@example.com", "pw");
        t = new_transport(true, "me@example.com", "pw");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        f.cookie[0] = 0;
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&f);
        ok(b.calls == 1 && b.error == 0 && strstr(b.json, "{\"q\":2}"), "9999: the request answered once, successfully");
        ok(f.handshakes == 2 && f.logins == 2, "9999: by a new handshake and login");
        transport_free(t);
        fake_aes_done(&f);
}

static void test_renew(void) {
        FakeAes f;
        Transport *t;
        Reply a = {}, b = {}, c = {};

        fake_aes_init(&f, 1, "me@example.com", "pw");
        f.timeout_sec = 1200;
        t = new_transport(true, "me@example.com", "pw");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        fake_advance((1200 - 300) * USEC_PER_SEC - 1);
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&f);
        ok(b.error == 0 && f.handshakes == 1, "renew: within TIMEOUT minus the margin, the session is kept");
        fake_advance(1);
        transport_request(t, "{\"q\":3}", on_reply, &c);
        pump(&f);
        ok(c.error == 0 && f.handshakes == 2 && f.requests == 3, "renew: then a new session before the old one expired");
        transport_free(t);
        fake_aes_done(&f);
}

static void test_switch(void) {
        FakeAes f;
        Transport *t;
        Reply a = {};

        /* 20002 said AES, but the firmware was updated to KLAP since. */
        fake_aes_init(&f, 1, "me@example.com", "pw");
        f.klap_device = true;
        t = new_transport(true, "me@example.com", "pw");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        ok(f.handshakes == 1 && f.handshake1s == 1, "1003: the AES handshake answered 1003, then KLAP's handshake1");
        is_str(transport_protocol(t), "klap", "1003: the KLAP engine now");
        transport_free(t);
        fake_aes_done(&f);

        fake_aes_init(&f, 1, "me@example.com", "pw");
        f.neither = true;
        a = (Reply) {};
        t = new_transport(false, "me@example.com", "pw");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        is_int(a.error, -EPROTONOSUPPORT, "neither: 404 for handshake1 and 1003 for AES fail the request");
        ok(f.handshake1s == 1 && f.handshakes == 1, "neither: each tried once, no ping-pong");
        ok(transport_error_message(t) && strstr(transport_error_message(t), "neither KLAP nor AES"),
           "neither: and says so (%s)", transport_error_message(t));
        transport_free(t);
        fake_aes_done(&f);
}

static void test_faults(void) {
        FakeAes f;
        Transport *t;
        Reply a = {}, b = {};

        fake_aes_init(&f, 1, "me@example.com", "pw");
        f.silent_handshake = true;
        t = new_transport(true, "me@example.com", "pw");
        transport_request(t, "{\"q\":1}", on_reply, &a);
        pump(&f);
        is_int(a.calls, 0, "hung handshake: nothing yet");
        fake_advance(TIMEOUT_USEC);
        is_int(a.error, -ETIMEDOUT, "hung handshake: -ETIMEDOUT at the request's deadline");
        ok(transport_error_message(t) && strstr(transport_error_message(t), "AES handshake not answered in time"),
           "hung handshake: says so (%s)", transport_error_message(t));
        f.silent_handshake = false;
        transport_request(t, "{\"q\":2}", on_reply, &b);
        pump(&f);
        ok(b.error == 0, "hung handshake: the next request works once the device answers");

        f.corrupt_reply = true;
        a = (Reply) {};
        transport_request(t, "{\"q\":3}", on_reply, &a);
        pump(&f);
        is_int(a.error, -EBADMSG, "corrupted reply: -EBADMSG");
        f.corrupt_reply = false;
        b = (Reply) {};
        unsigned before = f.handshakes;
        transport_request(t, "{\"q\":4}", on_reply, &b);
        pump(&f);
        ok(b.error == 0 && f.handshakes == before + 1, "corrupted reply: the next request in a new session");
        transport_free(t);
        fake_aes_done(&f);
}

int main(void) {
        test_from_klap();
        test_candidates();
        test_wrong_credentials();
        test_session_lost();
        test_renew();
        test_switch();
        test_faults();
        return done_testing();
}
