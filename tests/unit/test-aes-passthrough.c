/* SPDX-License-Identifier: MIT */

/*
 * AES securePassthrough (common/aes-passthrough.c) against the vectors
 * that aes-vectors.py computes independently with python3-cryptography
 * (aes-vectors.txt, passed as argv[1]): the PEM of a key pair, the
 * handshake key unwrap, the request envelope, the reply, the login
 * params; then hostile replies, and the device side against the client.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aes-passthrough.h"
#include "macro.h"
#include "tap.h"
#include "vectors.h"

static AesptKeyPair *kp;

static const char *text(const char *c, const char *name) {
        return (const char *) vector(c, name)->data;
}

static void test_keypair(void) {
        AesptKeyPair *k2 = NULL, *gen = NULL;
        const Field *der = vector("rsa", "der");

        ok(aespt_keypair_from_der(der->data, der->len, &kp) == 0, "PKCS#8 DER private key loads");
        is_str(aespt_keypair_pem(kp), text("rsa", "pem"), "its public PEM is the one Python writes");
        ok(aespt_keypair_from_der(vector("rsa", "der_pkcs1")->data, vector("rsa", "der_pkcs1")->len, &k2) == 0 &&
           strcmp(aespt_keypair_pem(k2), aespt_keypair_pem(kp)) == 0, "PKCS#1 DER loads, same public key");
        k2 = aespt_keypair_unref(k2);
        is_int(aespt_keypair_from_der(der->data, der->len / 2, &k2), -EBADMSG, "half a DER key refused");
        is_int(aespt_keypair_from_der((const uint8_t *) "nope", 4, &k2), -EBADMSG, "not DER refused");

        ok(aespt_keypair_generate(&gen) == 0 && strncmp(aespt_keypair_pem(gen), "-----BEGIN PUBLIC KEY-----\n", 27) == 0 &&
           strcmp(aespt_keypair_pem(gen), aespt_keypair_pem(kp)) != 0, "a generated key pair is a fresh PEM public key");
        gen = aespt_keypair_unref(gen);
}

static void test_handshake(const char *c) {
        AesptSession s = {};
        KasaError err = {};
        int code = 0;

        for (int escaped = 0; escaped < 2; escaped++) {
                const Field *reply = vector(c, escaped ? "reply_escaped" : "reply");

                memset(&s, 0, sizeof(s));
                ok(aespt_handshake_reply(kp, (const char *) reply->data, reply->len, &s, &code, &err) == 0 &&
                   same(s.key, sizeof(s.key), vector(c, "key")) && same(s.iv, sizeof(s.iv), vector(c, "iv")),
                   "%s: handshake reply%s unwraps to Python's key and IV", c, escaped ? " (escaped /)" : "");
        }
}

static void test_handshake_hostile(void) {
        static const struct {
                const char *name, *body;
                int error, code;
                const char *says;
        } cases[] = {
                { "KLAP device", "{\"error_code\":1003}", -EREMOTEIO, 1003, "1003" },
                { "error with result", "{\"error_code\":-1010,\"result\":{\"key\":\"AAAA\"}}", -EREMOTEIO, -1010, "-1010" },
                { "not JSON", "HTTP/1.1 200", -EBADMSG, 0, "not JSON" },
                { "an array", "[0]", -EBADMSG, 0, "object" },
                { "no error_code", "{\"result\":{\"key\":\"AAAA\"}}", -EBADMSG, 0, "error_code" },
                { "error_code a string", "{\"error_code\":\"0\"}", -EBADMSG, 0, "error_code" },
                { "error_code huge", "{\"error_code\":99999999999}", -EBADMSG, 0, "error_code" },
                { "no result", "{\"error_code\":0}", -EBADMSG, 0, "result.key" },
                { "key a number", "{\"error_code\":0,\"result\":{\"key\":5}}", -EBADMSG, 0, "result.key" },
                { "key not base64", "{\"error_code\":0,\"result\":{\"key\":\"@@@@\"}}", -EBADMSG, 0, "base64" },
                { "key too short", "{\"error_code\":0,\"result\":{\"key\":\"AAAA\"}}", -EBADMSG, 0, "RSA" },
                { "duplicate key", "{\"error_code\":0,\"error_code\":0}", -EBADMSG, 0, "JSON" },
        };
        AesptSession s;
        KasaError err;
        int code;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                err = (KasaError) {};
                code = 0;
                is_int(aespt_handshake_reply(kp, cases[i].body, strlen(cases[i].body), &s, &code, &err),
                       cases[i].error, "handshake reply refused: %s", cases[i].name);
                ok(code == cases[i].code && strstr(err.message, cases[i].says), "  code %d, says %s (%s)", code,
                   cases[i].says, err.message);
        }

        /* One RSA block, but not for our key, or of the wrong size inside. */
        for (size_t i = 0; i < 2; i++) {
                const Field *reply = vector(i == 0 ? "short" : "long", "reply");

                err = (KasaError) {};
                is_int(aespt_handshake_reply(kp, (const char *) reply->data, reply->len, &s, &code, &err), -EBADMSG,
                       "handshake reply refused: a wrapped key of %s bytes", i == 0 ? "16" : "48");
                ok(strstr(err.message, "decrypts to") != NULL, "  says so (%s)", err.message);
        }
        {
                AesptKeyPair *other = NULL;
                const Field *reply = vector("hs", "reply");

                ok(aespt_keypair_generate(&other) == 0, "another key pair");
                err = (KasaError) {};
                is_int(aespt_handshake_reply(other, (const char *) reply->data, reply->len, &s, &code, &err),
                       -EBADMSG, "handshake reply refused: wrapped to another key");
                other = aespt_keypair_unref(other);
        }
}

static void test_passthrough(const char *c) {
        AesptSession s;
        const Field *inner = vector(c, "inner"), *reply = vector(c, "reply");
        _cleanup_free_ char *body = NULL, *method = NULL, *param = NULL, *back = NULL;
        size_t back_len;
        KasaError err = {};
        int code = 0;

        memcpy(s.key, vector("hs", "key")->data, sizeof(s.key));
        memcpy(s.iv, vector("hs", "iv")->data, sizeof(s.iv));

        ok(aespt_request(&s, (const char *) inner->data, inner->len, &body) == 0 &&
           aespt_parse_call(body, strlen(body), &method, &param, &err) == 0 &&
           strcmp(method, "securePassthrough") == 0 && strcmp(param, text(c, "request")) == 0,
           "%s: securePassthrough request carries Python's ciphertext", c);
        ok(aespt_response(&s, (const char *) reply->data, reply->len, &back, &back_len, &code, &err) == 0 &&
           same(back, back_len, inner), "%s: Python's reply opens to the inner JSON", c);
}

static void test_response_hostile(void) {
        static const struct {
                const char *name, *body;
                int error;
                const char *says;
        } cases[] = {
                { "session gone", "{\"error_code\":9999,\"result\":null}", -EREMOTEIO, "9999" },
                { "no response", "{\"error_code\":0,\"result\":{}}", -EBADMSG, "result.response" },
                { "response not base64", "{\"error_code\":0,\"result\":{\"response\":\"ab\"}}", -EBADMSG, "base64" },
                { "empty response", "{\"error_code\":0,\"result\":{\"response\":\"\"}}", -EBADMSG, "blocks" },
                { "partial block", "{\"error_code\":0,\"result\":{\"response\":\"AAAAAAAAAAAAAAAAAAAA\"}}", -EBADMSG,
                  "blocks" },
                { "bad padding", "{\"error_code\":0,\"result\":{\"response\":\"AAAAAAAAAAAAAAAAAAAAAA==\"}}", -EBADMSG,
                  "padding" },
                { "trailing bytes", "{\"error_code\":0}x", -EBADMSG, "JSON" },
        };
        AesptSession s = {};
        char *back = NULL;
        size_t back_len;
        KasaError err;
        int code;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                err = (KasaError) {};
                code = 0;
                is_int(aespt_response(&s, cases[i].body, strlen(cases[i].body), &back, &back_len, &code, &err),
                       cases[i].error, "securePassthrough reply refused: %s", cases[i].name);
                ok(strstr(err.message, cases[i].says) != NULL, "  says %s (%s)", cases[i].says, err.message);
        }
        ok(back == NULL, "nothing returned for refused replies");
}

static void test_login(const char *c) {
        _cleanup_free_ char *u1 = NULL, *p1 = NULL, *u2 = NULL, *p2 = NULL, *req = NULL;
        const char *user = text(c, "user"), *password = text(c, "password");

        ok(aespt_login_params(user, password, 1, &u1, &p1) == 0 && strcmp(u1, text(c, "username")) == 0 &&
           strcmp(p1, text(c, "password1")) == 0, "%s: login v1: base64(sha1 hex(user)), base64(password)", c);
        ok(aespt_login_params(user, password, 2, &u2, &p2) == 0 && strcmp(u2, text(c, "username")) == 0 &&
           strcmp(p2, text(c, "password2")) == 0, "%s: login v2: password2 base64(sha1 hex(password))", c);
        ok(aespt_login_request(user, password, 2, 1700000000123, &req) == 0 &&
           strstr(req, "\"method\":\"login_device\"") && strstr(req, text(c, "password2")) &&
           strstr(req, "\"password2\":") && strstr(req, "\"request_time_milis\":1700000000123"),
           "%s: login_device request (v2)", c);
}

static void test_login_reply(void) {
        char token[AESPT_TOKEN_MAX];
        KasaError err = {};
        int code = 0;
        char longtok[300];

#define LOGIN_REPLY(s, ...) aespt_login_reply(s, strlen(s), __VA_ARGS__)
        ok(LOGIN_REPLY("{\"error_code\":0,\"result\":{\"token\":\"AB12-cd.ef_~\"}}", token, &code, &err) == 0 &&
           strcmp(token, "AB12-cd.ef_~") == 0, "login reply: the token");
        is_int(LOGIN_REPLY("{\"error_code\":-1501}", token, &code, &err), -EREMOTEIO,
               "login reply: -1501 refused");
        is_int(code, -1501, "  with the code");
        is_int(LOGIN_REPLY("{\"error_code\":0,\"result\":{\"token\":\"a&b=c\"}}", token, &code, &err),
               -EBADMSG, "login reply: a token that is not URL-safe refused");
        is_int(LOGIN_REPLY("{\"error_code\":0,\"result\":{\"token\":\"\"}}", token, &code, &err), -EBADMSG,
               "login reply: an empty token refused");
        snprintf(longtok, sizeof(longtok), "{\"error_code\":0,\"result\":{\"token\":\"%0200d\"}}", 0);
        is_int(aespt_login_reply(longtok, strlen(longtok), token, &code, &err), -EBADMSG,
               "login reply: a token of 200 bytes refused");
}

/* The device side as kasa-sim uses it, against the client side. */
static void test_device_side(void) {
        AesptKeyPair *client = NULL;
        AesptSession dev = {}, cli = {};
        _cleanup_free_ char *hs = NULL, *method = NULL, *pem = NULL, *answer = NULL, *req = NULL, *m2 = NULL,
                            *b64 = NULL, *inner = NULL, *reply = NULL, *back = NULL;
        size_t inner_len, back_len;
        KasaError err = {};
        int code = 0;

        ok(aespt_keypair_generate(&client) == 0 && aespt_handshake_request(client, &hs) == 0, "client handshake");
        ok(aespt_parse_call(hs, strlen(hs), &method, &pem, &err) == 0 && strcmp(method, "handshake") == 0 &&
           strcmp(pem, aespt_keypair_pem(client)) == 0, "device reads the handshake's PEM");
        ok(aespt_handshake_answer(pem, &dev, &answer) == 0, "device answers it");
        ok(aespt_handshake_reply(client, answer, strlen(answer), &cli, &code, &err) == 0 &&
           memcmp(&cli, &dev, sizeof(cli)) == 0, "client unwraps the device's session");
        ok(aespt_request(&cli, "{\"method\":\"get_device_info\"}", 28, &req) == 0 &&
           aespt_parse_call(req, strlen(req), &m2, &b64, &err) == 0 &&
           aespt_open_request(&dev, b64, &inner, &inner_len) == 0 && strcmp(inner, "{\"method\":\"get_device_info\"}") == 0,
           "device opens the client's request");
        ok(aespt_response_answer(&dev, "{\"error_code\":0}", 16, &reply) == 0 &&
           aespt_response(&cli, reply, strlen(reply), &back, &back_len, &code, &err) == 0 &&
           strcmp(back, "{\"error_code\":0}") == 0, "client opens the device's reply");
        {
                _cleanup_free_ char *junk = NULL;
                size_t junk_len;
                char *a2 = NULL;
                AesptSession s2;

                is_int(aespt_open_request(&dev, "not base64", &junk, &junk_len), -EBADMSG,
                       "device refuses a request that is not base64");
                is_int(aespt_handshake_answer("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", &s2, &a2),
                       -EBADMSG, "device refuses a PEM that is no key");
                is_int(aespt_parse_call("{\"method\":\"login\",\"params\":{}}", 30, &junk, &a2, &err), -EBADMSG,
                       "a call that is neither handshake nor securePassthrough refused");
        }
        client = aespt_keypair_unref(client);
}

int main(int argc, char **argv) {
        if (argc < 2 || vectors_load(argv[1]) < 0) {
                printf("Bail out! cannot read the vectors (argv[1])\n");
                return EXIT_FAILURE;
        }
        test_keypair();
        test_handshake("hs");
        test_handshake("hs2");
        test_handshake_hostile();
        test_passthrough("req0");
        test_passthrough("req1");
        test_passthrough("req2");
        test_passthrough("req3");
        test_response_hostile();
        test_login("login0");
        test_login("login1");
        test_login("login2");
        test_login_reply();
        test_device_side();
        kp = aespt_keypair_unref(kp);
        return done_testing();
}
