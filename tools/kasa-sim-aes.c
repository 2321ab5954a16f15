/* SPDX-License-Identifier: MIT */
/*
 * A simulated device on firmware older than KLAP: AES securePassthrough
 * over HTTP on its TCP port (common/aes-passthrough.h), the smart dialect
 * inside, discovery on UDP 20002 with encrypt_type AES. Like a real plug
 * it keeps one session: a new handshake replaces it; a securePassthrough
 * outside it (no or another cookie, expired) is answered error_code 9999,
 * and one without the login's token too. A failed login_device ends the
 * session, as on the devices, which want a new handshake then.
 */

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aes-passthrough.h"
#include "http1.h"
#include "kasa-sim.h"
#include "kasa-time.h"
#include "macro.h"

int sim_aes_setup(SimDevice *d, unsigned login_version, const char *user, const char *password) {
        char *u = NULL, *p = NULL;
        int r;

        r = aespt_login_params(user ?: "", password ?: "", (int) login_version, &u, &p);
        if (r < 0)
                return r;
        sim_aes_done(d);
        d->aes.login_version = login_version;
        d->aes.username = u;
        d->aes.password = p;
        d->udp_port = SIM_TDP_PORT;
        if (!d->aes.timeout_sec)
                d->aes.timeout_sec = SIM_KLAP_TIMEOUT_DEFAULT;
        sim_aes_expire(d);
        return 0;
}

void sim_aes_expire(SimDevice *d) {
        d->aes.cookie[0] = 0;
        d->aes.token[0] = 0;
        OPENSSL_cleanse(&d->aes.session, sizeof(d->aes.session));
}

void sim_aes_done(SimDevice *d) {
        free(d->aes.username);
        if (d->aes.password)
                OPENSSL_cleanse(d->aes.password, strlen(d->aes.password));
        free(d->aes.password);
        d->aes.username = d->aes.password = NULL;
}

static int respond(const char *set_cookie, const char *json, uint8_t **ret, size_t *ret_len) {
        int r = http1_response_write_type(200, HTTP1_JSON, set_cookie, false, (const uint8_t *) json, strlen(json),
                                          ret, ret_len);
        return r < 0 ? r : 1;
}

static int respond_error(int code, uint8_t **ret, size_t *ret_len) {
        char json[48];

        snprintf(json, sizeof(json), "{\"error_code\":%d}", code);
        return respond(NULL, json, ret, ret_len);
}

static int handshake(SimDevice *d, const char *pem, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *answer = NULL;
        char set_cookie[96];
        int r;

        if (d->faults & SIM_FAULT_HANDSHAKE_HANG)
                return 0;
        sim_aes_expire(d);
        r = aespt_handshake_answer(pem, &d->aes.session, &answer);
        if (r == -EBADMSG)
                return respond_error(AESPT_ERR_PARAMS, ret, ret_len);
        if (r < 0)
                return r;
        snprintf(d->aes.cookie, sizeof(d->aes.cookie), "TP_SESSIONID=%016llX%016llX",
                 (unsigned long long) sim_device_random(d), (unsigned long long) sim_device_random(d));
        d->aes.expires = sim_now(CLOCK_MONOTONIC) + (uint64_t) d->aes.timeout_sec * USEC_PER_SEC;
        d->aes.handshakes++;
        snprintf(set_cookie, sizeof(set_cookie), "%s;TIMEOUT=%u", d->aes.cookie, d->aes.timeout_sec);
        return respond(set_cookie, answer, ret, ret_len);
}

/* The inner reply of login_device: a token for the owner's credentials;
 * *ret_refused when they are not. */
static char *login(SimDevice *d, json_t *params, bool *ret_refused) {
        const char *u = json_string_value(json_object_get(params, "username"));
        const char *p = json_string_value(
                json_object_get(params, d->aes.login_version == 2 ? "password2" : "password"));

        if (!u || !p || strcmp(u, d->aes.username) != 0 || strcmp(p, d->aes.password) != 0) {
                *ret_refused = true;
                return strdup("{\"error_code\":-1501}");
        }
        snprintf(d->aes.token, sizeof(d->aes.token), "%016llX%016llX", (unsigned long long) sim_device_random(d),
                 (unsigned long long) sim_device_random(d));
        d->aes.logins++;
        json_t *j = json_pack("{s:i,s:{s:s}}", "error_code", 0, "result", "token", d->aes.token);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        return s;
}

static int passthrough(SimDevice *d, const Http1Message *req, const char *b64, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *plain = NULL, *reply = NULL, *answer = NULL;
        _cleanup_(json_decrefp) json_t *inner = NULL;
        const char *token = strncmp(req->target, "/app?token=", 11) == 0 ? req->target + 11 : "";
        const char *method;
        size_t plain_len;
        bool refused = false;
        int r;

        if (!d->aes.cookie[0] || strcmp(req->cookie, d->aes.cookie) != 0)
                return respond_error(AESPT_ERR_SESSION_TIMEOUT, ret, ret_len);
        if (sim_now(CLOCK_MONOTONIC) >= d->aes.expires) {
                sim_aes_expire(d);
                return respond_error(AESPT_ERR_SESSION_TIMEOUT, ret, ret_len);
        }
        r = aespt_open_request(&d->aes.session, b64, &plain, &plain_len);
        if (r == -EBADMSG) {
                fprintf(stderr, "kasa-sim: %s: refusing a securePassthrough request that does not decrypt\n",
                        d->address);
                return respond_error(AESPT_ERR_AES_DECODE, ret, ret_len);
        }
        if (r < 0)
                return r;
        inner = json_loadb(plain, plain_len, 0, NULL);
        method = json_string_value(json_object_get(inner, "method"));
        if (method && strcmp(method, "login_device") == 0)
                reply = login(d, json_object_get(inner, "params"), &refused);
        else if (!d->aes.token[0] || strcmp(token, d->aes.token) != 0)
                /* Not logged in (or another token): the client starts over. */
                return respond_error(AESPT_ERR_SESSION_TIMEOUT, ret, ret_len);
        else {
                r = sim_smart_handle(d, plain, plain_len, &reply);
                if (r == -EBADMSG)
                        return respond_error(AESPT_ERR_JSON, ret, ret_len);
                if (r < 0)
                        return r;
        }
        if (!reply)
                return -ENOMEM;
        r = aespt_response_answer(&d->aes.session, reply, strlen(reply), &answer);
        if (refused)
                sim_aes_expire(d);
        if (r < 0)
                return r;
        if (d->faults & SIM_FAULT_BAD_SIGNATURE) {
                /* One base64 character of the ciphertext changed: it still
                 * decodes, but no longer decrypts to what was sent. */
                char *c = strstr(answer, "\"response\":\"");
                if (c)
                        c[12] = c[12] == 'A' ? 'B' : 'A';
        }
        return respond(NULL, answer, ret, ret_len);
}

int sim_aes_handle(SimDevice *d, const Http1Message *req, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *method = NULL, *param = NULL;
        KasaError err = {};

        *ret = NULL;
        if (strcmp(req->method, "POST") != 0)
                return http1_response_write(405, NULL, false, NULL, 0, ret, ret_len) < 0 ? -ENOMEM : 1;
        if (strcmp(req->target, "/app") != 0 && strncmp(req->target, "/app?", 5) != 0)
                /* /app/handshake1 among them: what a KLAP client learns
                 * from this firmware. */
                return http1_response_write(404, NULL, false, NULL, 0, ret, ret_len) < 0 ? -ENOMEM : 1;
        if (aespt_parse_call((const char *) req->body, req->body_len, &method, &param, &err) < 0)
                return respond_error(AESPT_ERR_JSON, ret, ret_len);
        if (strcmp(method, "handshake") == 0)
                return handshake(d, param, ret, ret_len);
        return passthrough(d, req, param, ret, ret_len);
}
