/* SPDX-License-Identifier: MIT */

/*
 * KLAP, the HTTP transport's engine for newer firmware: JSON requests
 * encrypted and signed per request, inside a session opened by a two-step
 * handshake. A session is renewed before its cookie's TIMEOUT runs out,
 * and at once when the device answers 403 (it forgot us: reboot, expiry,
 * another client's handshake); the request that drew the 403 is sent
 * again once.
 *
 * The device proves it knows the credentials by handshake1's server hash.
 * We check it against every candidate (the owner's, the vendor's setup
 * defaults, blank ones) locally, so trying them costs no extra round trip;
 * a hash none of them gives fails the handshake with -EACCES: wrong
 * credentials, or a device that is not what it claims. A device that
 * answers handshake1 with 404 has no KLAP: the transport changes to AES.
 */

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "transport-http.h"

enum {
        PHASE_HANDSHAKE1 = 1,
        PHASE_HANDSHAKE2,
        PHASE_REQUEST,
};

static int send_head(HttpTransport *x) {
        KlapState *k = &x->klap;
        _cleanup_free_ uint8_t *body = NULL;
        char path[48];
        size_t len;
        int r;

        r = klap_encrypt(&k->session, x->head->json, strlen(x->head->json), &body, &len, &k->seq);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), "/app/request?seq=%d", (int) k->seq);
        return http_transport_send(x, path, HTTP1_OCTET_STREAM, x->session_cookie, body, len, PHASE_REQUEST);
}

static int klap_start(HttpTransport *x) {
        KlapState *k = &x->klap;
        int r;

        if (x->have_session)
                return send_head(x);
        r = klap_random(k->local, sizeof(k->local));
        if (r < 0)
                return r;
        return http_transport_send(x, "/app/handshake1", HTTP1_OCTET_STREAM, NULL, k->local, sizeof(k->local),
                                   PHASE_HANDSHAKE1);
}

static void on_handshake1(HttpTransport *x, const uint8_t *body, size_t len) {
        KlapState *k = &x->klap;
        uint8_t client[KLAP_HASH_SIZE];
        KasaError err = {};
        int r = -EACCES;

        if (x->status == 404) {
                http_transport_switch(x, &http_aes_engine, "KLAP handshake1 answered HTTP 404");
                return;
        }
        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message), "KLAP handshake1 answered HTTP %d", x->status);
                http_transport_fail_all(x, -EBADMSG);
                return;
        }
        if (!x->cookie[0]) {
                snprintf(x->message, sizeof(x->message), "KLAP handshake1 reply without a session cookie");
                http_transport_fail_all(x, -EBADMSG);
                return;
        }
        /* The candidate the device took last first: the check is local, but
         * the common case should not depend on the order of the list. */
        for (size_t n = 0; n < k->n_auths && r == -EACCES; n++) {
                size_t i = (k->auth_index + n) % k->n_auths;

                r = klap_handshake1_check(&k->auths[i], k->local, body, len, k->remote, &err);
                if (r == 0) {
                        k->auth_index = i;
                        k->matched = true;
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
                http_transport_fail_all(x, r);
                return;
        }
        http_transport_open_session(x);
        r = klap_client_hash(&k->auths[k->auth_index], k->local, k->remote, client);
        if (r >= 0)
                r = http_transport_send(x, "/app/handshake2", HTTP1_OCTET_STREAM, x->session_cookie, client,
                                        sizeof(client), PHASE_HANDSHAKE2);
        if (r < 0)
                http_transport_fail_all(x, r);
}

static void on_handshake2(HttpTransport *x) {
        KlapState *k = &x->klap;
        int r;

        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message),
                         "the device refused our handshake2 (HTTP %d): it does not take these credentials",
                         x->status);
                http_transport_fail_all(x, -EACCES);
                return;
        }
        r = klap_session_init(&k->session, &k->auths[k->auth_index], k->local, k->remote);
        if (r < 0) {
                http_transport_fail_all(x, r);
                return;
        }
        x->have_session = true;
        x->message[0] = 0;
        r = send_head(x);
        if (r < 0)
                http_transport_fail_all(x, r);
}

static void on_request(HttpTransport *x, const uint8_t *body, size_t len) {
        KlapState *k = &x->klap;
        _cleanup_free_ char *plain = NULL;
        size_t plain_len;
        KasaError err = {};
        int r;

        if (x->status == 403) {
                http_transport_session_lost(x, "the device refused a fresh KLAP session (HTTP 403)");
                return;
        }
        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message), "KLAP request answered HTTP %d", x->status);
                http_transport_finish_head(x, -EBADMSG, NULL, 0);
                return;
        }
        r = klap_decrypt(&k->session, k->seq, body, len, &plain, &plain_len, &err);
        if (r < 0)
                http_transport_refuse_reply(x, err.message);
        else
                http_transport_finish_head(x, 0, plain, plain_len);
}

static void klap_response(HttpTransport *x, int phase, const uint8_t *body, size_t len) {
        switch (phase) {
        case PHASE_HANDSHAKE1:
                on_handshake1(x, body, len);
                break;
        case PHASE_HANDSHAKE2:
                on_handshake2(x);
                break;
        case PHASE_REQUEST:
                on_request(x, body, len);
                break;
        }
}

static void klap_drop_session(HttpTransport *x) {
        OPENSSL_cleanse(&x->klap.session, sizeof(x->klap.session));
}

static const char *klap_protocol(HttpTransport *x) {
        const KlapState *k = &x->klap;

        if (!k->matched)
                return "klap";
        return k->auths[k->auth_index].version == KLAP_V2 ? "klap2" : "klap1";
}

const HttpEngine http_klap_engine = {
        .name = "KLAP",
        .start = klap_start,
        .response = klap_response,
        .drop_session = klap_drop_session,
        .protocol = klap_protocol,
};

static int add_auth(KlapState *k, KlapVersion v, const char *user, const char *password) {
        KlapAuth a;
        int r;

        r = klap_auth_init(&a, v, user, password);
        if (r < 0)
                return r;
        /* The configured account may well be one of the defaults. */
        for (size_t i = 0; i < k->n_auths; i++)
                if (k->auths[i].version == v && memcmp(k->auths[i].hash, a.hash, a.len) == 0) {
                        OPENSSL_cleanse(&a, sizeof(a));
                        return 0;
                }
        k->auths[k->n_auths++] = a;
        OPENSSL_cleanse(&a, sizeof(a));
        return 0;
}

/* The expected version's candidates first, then the other's. */
int http_klap_init(HttpTransport *x, const TransportConfig *config) {
        KlapVersion first = config->klap_version == 1 ? KLAP_V1 : KLAP_V2;
        int r = 0;

        for (int n = 0; n < 2 && r >= 0; n++) {
                KlapVersion v = n == 0 ? first : (first == KLAP_V1 ? KLAP_V2 : KLAP_V1);

                if (config->user && config->password)
                        r = add_auth(&x->klap, v, config->user, config->password);
                for (size_t i = 0; r >= 0 && i < HTTP_DEFAULT_CREDENTIALS; i++)
                        r = add_auth(&x->klap, v, http_default_credentials[i].user,
                                     http_default_credentials[i].password);
        }
        return r;
}
