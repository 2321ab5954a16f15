/* SPDX-License-Identifier: MIT */

/*
 * AES securePassthrough, the HTTP transport's engine for firmware older
 * than KLAP (common/aes-passthrough.h): a handshake sends a fresh RSA
 * public key (made on a worker thread, daemon/rsa-keys.c) and gets the
 * session's AES key wrapped to it; login_device then proves the
 * credentials and gives the token every request carries. Unlike KLAP,
 * the device checks the credentials, so each candidate (the owner's, the
 * vendor's defaults, blank ones; login versions 1 and 2) costs a
 * handshake and a login: the one the device took last goes first, and a
 * refused login starts a new handshake for the next one, as the devices
 * want after a failed login, inside the same request's deadline. A session
 * the device forgot (error_code 9999, or HTTP 403) is opened again and the
 * request sent once more; a device answering the handshake with 1003
 * speaks KLAP, and the transport changes to it.
 */

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kasa-time.h"
#include "macro.h"
#include "transport-http.h"

enum {
        PHASE_KEY = 1,             /* waiting for a key pair, nothing sent */
        PHASE_HANDSHAKE,
        PHASE_LOGIN,
        PHASE_REQUEST,
};

static void clear_string(char *s) {
        if (s)
                OPENSSL_cleanse(s, strlen(s));
        free(s);
}

static int send_passthrough(HttpTransport *x, const char *path, const char *inner, int phase) {
        _cleanup_free_ char *body = NULL;
        int r;

        r = aespt_request(&x->aes.session, inner, strlen(inner), &body);
        if (r < 0)
                return r;
        return http_transport_send(x, path, HTTP1_JSON, x->session_cookie, (const uint8_t *) body, strlen(body),
                                   phase);
}

static int send_head(HttpTransport *x) {
        char path[16 + AESPT_TOKEN_MAX];

        snprintf(path, sizeof(path), "/app?token=%s", x->aes.token);
        return send_passthrough(x, path, x->head->json, PHASE_REQUEST);
}

static const AesLogin *candidate(const AesState *a) {
        return &a->logins[(a->login_index + a->tried) % a->n_logins];
}

static int send_login(HttpTransport *x) {
        const AesLogin *l = candidate(&x->aes);
        struct timespec ts;
        char *inner;
        int r;

        clock_gettime(CLOCK_REALTIME, &ts);
        r = aespt_login_request(l->user, l->password, l->version,
                                (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &inner);
        if (r < 0)
                return r;
        r = send_passthrough(x, "/app", inner, PHASE_LOGIN);
        clear_string(inner);
        return r;
}

static int send_handshake(HttpTransport *x, AesptKeyPair *kp) {
        _cleanup_free_ char *body = NULL;
        int r;

        aespt_keypair_unref(x->aes.keypair);
        x->aes.keypair = kp;
        r = aespt_handshake_request(kp, &body);
        if (r < 0)
                return r;
        return http_transport_send(x, "/app", HTTP1_JSON, NULL, (const uint8_t *) body, strlen(body),
                                   PHASE_HANDSHAKE);
}

static void on_key(AesptKeyPair *kp, int error, void *userdata) {
        HttpTransport *x = userdata;
        int r = error;

        x->aes.waiting_key = false;
        if (x->phase != PHASE_KEY) {
                aespt_keypair_unref(kp);
                return;
        }
        x->phase = 0;
        if (r >= 0)
                r = send_handshake(x, kp);
        if (r < 0) {
                snprintf(x->message, sizeof(x->message), "cannot start an AES handshake: %s", strerror(-r));
                http_transport_drop_session(x);
                http_transport_fail_all(x, r);
        }
}

static int aes_start(HttpTransport *x) {
        AesState *a = &x->aes;
        AesptKeyPair *kp = NULL;
        int r;

        if (x->have_session)
                return send_head(x);
        if (!a->keys) {
                r = aespt_keypair_generate(&kp);
                return r < 0 ? r : send_handshake(x, kp);
        }
        r = rsa_keys_get(a->keys, on_key, x, &kp);
        if (r < 0)
                return r;
        if (r > 0)
                return send_handshake(x, kp);
        a->waiting_key = true;
        x->phase = PHASE_KEY;
        return 0;
}

static void on_handshake(HttpTransport *x, const uint8_t *body, size_t len) {
        AesState *a = &x->aes;
        KasaError err = {};
        int code = 0, r;

        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message), "AES handshake answered HTTP %d", x->status);
                http_transport_fail_all(x, -EBADMSG);
                return;
        }
        r = aespt_handshake_reply(a->keypair, (const char *) body, len, &a->session, &code, &err);
        /* The private key has done its one job. */
        a->keypair = aespt_keypair_unref(a->keypair);
        if (r == -EREMOTEIO && code == AESPT_ERR_KLAP_ONLY) {
                http_transport_switch(x, &http_klap_engine, "AES handshake answered error_code 1003");
                return;
        }
        if (r >= 0 && !x->cookie[0]) {
                snprintf(err.message, sizeof(err.message), "AES handshake reply without a session cookie");
                r = -EBADMSG;
        }
        if (r < 0) {
                /* The key and IV, if the reply gave them, go with it. */
                http_transport_drop_session(x);
                snprintf(x->message, sizeof(x->message), "%s", err.message);
                http_transport_fail_all(x, r == -EREMOTEIO ? -EBADMSG : r);
                return;
        }
        http_transport_open_session(x);
        r = send_login(x);
        if (r < 0) {
                http_transport_drop_session(x);
                http_transport_fail_all(x, r);
        }
}

static void on_login(HttpTransport *x, const uint8_t *body, size_t len) {
        AesState *a = &x->aes;
        _cleanup_free_ char *inner = NULL;
        size_t inner_len;
        KasaError err = {};
        int code = 0, r;

        if (x->status != 200) {
                http_transport_drop_session(x);
                snprintf(x->message, sizeof(x->message), "AES login_device answered HTTP %d", x->status);
                http_transport_fail_all(x, -EBADMSG);
                return;
        }
        r = aespt_response(&a->session, (const char *) body, len, &inner, &inner_len, &code, &err);
        if (r >= 0)
                r = aespt_login_reply(inner, inner_len, a->token, &code, &err);
        if (r == -EREMOTEIO && ++a->tried < a->n_logins) {
                /* The next candidate, in a new session. */
                http_transport_drop_session(x);
                http_transport_kick(x);
                return;
        }
        if (r < 0) {
                if (r == -EREMOTEIO)
                        snprintf(x->message, sizeof(x->message),
                                 "login_device refused every credential tried (the configured TP-Link account, "
                                 "the vendor's defaults, blank ones; last error_code %d): set the account the "
                                 "device is bound to in kasamond's credentials", code);
                else
                        snprintf(x->message, sizeof(x->message), "%s", err.message);
                a->tried = 0;
                http_transport_drop_session(x);
                http_transport_fail_all(x, r == -EREMOTEIO ? -EACCES : r);
                return;
        }
        a->login_index = (a->login_index + a->tried) % a->n_logins;
        a->tried = 0;
        x->have_session = true;
        x->message[0] = 0;
        r = send_head(x);
        if (r < 0)
                http_transport_fail_all(x, r);
}

static void on_request(HttpTransport *x, const uint8_t *body, size_t len) {
        _cleanup_free_ char *inner = NULL;
        size_t inner_len;
        KasaError err = {};
        int code = 0, r;

        if (x->status == 403) {
                http_transport_session_lost(x, "the device refused a fresh AES session (HTTP 403)");
                return;
        }
        if (x->status != 200) {
                snprintf(x->message, sizeof(x->message), "securePassthrough answered HTTP %d", x->status);
                http_transport_finish_head(x, -EBADMSG, NULL, 0);
                return;
        }
        r = aespt_response(&x->aes.session, (const char *) body, len, &inner, &inner_len, &code, &err);
        if (r == -EREMOTEIO && code == AESPT_ERR_SESSION_TIMEOUT) {
                http_transport_session_lost(x, "the device ended a fresh AES session (error_code 9999)");
                return;
        }
        if (r < 0)
                http_transport_refuse_reply(x, err.message);
        else
                http_transport_finish_head(x, 0, inner, inner_len);
}

static void aes_response(HttpTransport *x, int phase, const uint8_t *body, size_t len) {
        switch (phase) {
        case PHASE_HANDSHAKE:
                on_handshake(x, body, len);
                break;
        case PHASE_LOGIN:
                on_login(x, body, len);
                break;
        case PHASE_REQUEST:
                on_request(x, body, len);
                break;
        }
}

static void aes_drop_session(HttpTransport *x) {
        AesState *a = &x->aes;

        if (a->waiting_key && a->keys)
                rsa_keys_cancel(a->keys, x);
        a->waiting_key = false;
        a->keypair = aespt_keypair_unref(a->keypair);
        OPENSSL_cleanse(&a->session, sizeof(a->session));
        OPENSSL_cleanse(a->token, sizeof(a->token));
}

static const char *aes_protocol(HttpTransport *x) {
        return "aes";
}

const HttpEngine http_aes_engine = {
        .name = "AES",
        .start = aes_start,
        .response = aes_response,
        .drop_session = aes_drop_session,
        .protocol = aes_protocol,
};

static int add_login(AesState *a, const char *user, const char *password, int version) {
        AesLogin *l;

        /* The configured account may well be one of the defaults. */
        for (size_t i = 0; i < a->n_logins; i++)
                if (a->logins[i].version == version && strcmp(a->logins[i].user, user) == 0 &&
                    strcmp(a->logins[i].password, password) == 0)
                        return 0;
        l = &a->logins[a->n_logins];
        l->user = strdup(user);
        l->password = strdup(password);
        if (!l->user || !l->password) {
                clear_string(l->user);
                clear_string(l->password);
                *l = (AesLogin) {};
                return -ENOMEM;
        }
        l->version = version;
        a->n_logins++;
        return 0;
}

/* The owner's account first, in both login versions, then the defaults. */
int http_aes_init(HttpTransport *x, const TransportConfig *config) {
        AesState *a = &x->aes;
        int r = 0;

        a->keys = config->rsa_keys;
        for (int v = 1; v <= 2 && r >= 0 && config->user && config->password; v++)
                r = add_login(a, config->user, config->password, v);
        for (size_t i = 0; r >= 0 && i < HTTP_DEFAULT_CREDENTIALS; i++)
                for (int v = 1; v <= 2 && r >= 0; v++)
                        r = add_login(a, http_default_credentials[i].user, http_default_credentials[i].password, v);
        return r;
}

void http_aes_done(HttpTransport *x) {
        AesState *a = &x->aes;

        aes_drop_session(x);
        for (size_t i = 0; i < a->n_logins; i++) {
                clear_string(a->logins[i].user);
                clear_string(a->logins[i].password);
        }
        a->n_logins = 0;
}
