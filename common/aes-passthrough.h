/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * AES "securePassthrough", the transport of Tapo (and some Kasa) firmware
 * older than KLAP; 20002 discovery names it encrypt_type "AES". JSON over
 * HTTP POST /app on port 80:
 *
 *   handshake   {"method":"handshake","params":{"key":PEM}}, PEM the
 *               client's RSA-1024 public key (SubjectPublicKeyInfo). The
 *               reply {"error_code":0,"result":{"key":B64}} carries 32
 *               bytes encrypted to that key with RSA PKCS#1 v1.5: the
 *               session's AES-128 key (first 16) and CBC IV (last 16);
 *               the TP_SESSIONID cookie (TIMEOUT, seconds) names the
 *               session in every later request.
 *   each call   {"method":"securePassthrough","params":{"request":B64}},
 *               B64 the inner JSON under AES-128-CBC/PKCS#7 with that key
 *               and the same IV every time; the reply's
 *               {"error_code":0,"result":{"response":B64}} likewise.
 *   login       the first inner call, login_device with username =
 *               base64(hex(sha1(user))) and password = base64(password)
 *               (login version 2: password2 = base64(hex(sha1(password))));
 *               its result's token goes in every later URL, /app?token=T.
 *
 * Error codes of the outer or inner JSON that the transports act on are
 * below. Pure code over OpenSSL's libcrypto: the daemon's AES transport
 * and kasa-sim's AES devices both use it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kasa-proto.h"

#define AESPT_RSA_BITS 1024
#define AESPT_KEY_SIZE 16
#define AESPT_IV_SIZE 16
/* What the handshake reply's key decrypts to: key + IV. */
#define AESPT_HANDSHAKE_KEY_SIZE (AESPT_KEY_SIZE + AESPT_IV_SIZE)
#define AESPT_TOKEN_MAX 128

/* Error codes the devices send (outer or inner error_code). */
#define AESPT_ERR_KLAP_ONLY (1003)        /* the handshake of a KLAP device */
#define AESPT_ERR_SESSION_TIMEOUT (9999)  /* unknown or expired session */
#define AESPT_ERR_LOGIN (-1501)           /* login_device: wrong credentials */
#define AESPT_ERR_AES_DECODE (-1005)      /* the request did not decrypt */
#define AESPT_ERR_JSON (-1003)            /* not JSON of the right shape */
#define AESPT_ERR_PARAMS (-1008)

typedef struct AesptKeyPair AesptKeyPair;

typedef struct AesptSession {
        uint8_t key[AESPT_KEY_SIZE];
        uint8_t iv[AESPT_IV_SIZE];
} AesptSession;

/* A fresh RSA-1024 key pair (e = 65537); about 13 ms of CPU (BENCHMARKS.md),
 * so the daemon makes them on a worker thread (daemon/rsa-keys.c). */
int aespt_keypair_generate(AesptKeyPair **ret);
/* From a PKCS#8 or PKCS#1 DER private key: fixed keys for the tests and
 * the fuzz target. -EBADMSG if it is not an RSA key. */
int aespt_keypair_from_der(const uint8_t *der, size_t len, AesptKeyPair **ret);
/* References, taken and dropped on one thread: the last one frees and
 * cleanses the private key. unref returns NULL. */
AesptKeyPair *aespt_keypair_ref(AesptKeyPair *kp);
AesptKeyPair *aespt_keypair_unref(AesptKeyPair *kp);
/* The public key as the handshake sends it: PEM, "-----BEGIN PUBLIC
 * KEY-----\n", base64 in lines of 64, "-----END PUBLIC KEY-----\n". */
const char *aespt_keypair_pem(const AesptKeyPair *kp);

static inline void aespt_keypair_unrefp(AesptKeyPair **kp) {
        aespt_keypair_unref(*kp);
}

/* ---- client side (the daemon) ---- */

/* The handshake request's JSON body. */
int aespt_handshake_request(const AesptKeyPair *kp, char **ret);
/* Checks the handshake reply and unwraps the session key: 0, or
 * -EREMOTEIO with *ret_code the device's nonzero error_code (1003: a KLAP
 * device), or -EBADMSG for anything else (not JSON, no key, not base64,
 * not decryptable with kp, not 32 bytes); err says which. */
int aespt_handshake_reply(const AesptKeyPair *kp, const char *body, size_t len, AesptSession *ret,
                          int *ret_code, KasaError *err);

/* The inner login_device request; version 1 or 2 (see above). */
int aespt_login_request(const char *user, const char *password, int version, int64_t time_ms, char **ret);
/* The token of a login_device reply's inner JSON: 0, -EREMOTEIO with
 * *ret_code (-1501: wrong credentials), or -EBADMSG. */
int aespt_login_reply(const char *json, size_t len, char ret_token[AESPT_TOKEN_MAX], int *ret_code,
                      KasaError *err);

/* The securePassthrough envelope of an inner JSON request. */
int aespt_request(const AesptSession *s, const char *inner, size_t len, char **ret);
/* Opens a securePassthrough reply: 0 with the inner JSON (NUL-terminated,
 * malloc'd; not checked to be JSON: the dialect's parser does that),
 * -EREMOTEIO with *ret_code the outer error_code (9999: the session is
 * gone), or -EBADMSG (not JSON of that shape, not base64, not whole
 * blocks, bad padding). */
int aespt_response(const AesptSession *s, const char *body, size_t len, char **ret, size_t *ret_len,
                   int *ret_code, KasaError *err);

/* ---- device side (kasa-sim) ---- */

/* What a handshake request or a securePassthrough request carries: the
 * method ("handshake" or "securePassthrough") and its one parameter (the
 * PEM key, the base64 request), both copied; -EBADMSG otherwise. */
int aespt_parse_call(const char *body, size_t len, char **ret_method, char **ret_param, KasaError *err);
/* The handshake reply for the client's PEM public key: a fresh session
 * (from the random generator) wrapped to that key. -EBADMSG for a PEM
 * that is not an RSA public key. */
int aespt_handshake_answer(const char *pem, AesptSession *ret_session, char **ret);
/* Inner JSON in and out: the base64 parameter decrypted (-EBADMSG when it
 * does not), a reply sealed into {"error_code":0,"result":{"response":B64}}. */
int aespt_open_request(const AesptSession *s, const char *b64, char **ret, size_t *ret_len);
int aespt_response_answer(const AesptSession *s, const char *inner, size_t len, char **ret);
/* The login fields login_device must carry for these credentials:
 * username, and password (version 1) or password2 (version 2). */
int aespt_login_params(const char *user, const char *password, int version, char **ret_username,
                       char **ret_password);
