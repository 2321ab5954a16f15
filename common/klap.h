/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * KLAP, the transport of newer Kasa and Tapo firmware: a two-step
 * handshake over HTTP proves that both sides know the owner's credentials
 * (through an "auth hash" of them, never the credentials themselves), and
 * derives a per-session AES-128-CBC key, IV prefix, sequence number and
 * signature key. Each request is encrypted and signed under the next
 * sequence number. Pure code over OpenSSL's libcrypto, used by the daemon's
 * KLAP transport and by kasa-sim's KLAP devices alike.
 *
 * Version 1 hashes with md5, version 2 with sha1/sha256 and mixes both
 * seeds into the handshake hashes (see PROTOCOL.md, section 6).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kasa-proto.h"

/* Where KLAP devices serve HTTP (the 20002 reply may name another port). */
#define KLAP_HTTP_PORT 80
#define KLAP_SEED_SIZE 16
#define KLAP_HASH_SIZE 32
#define KLAP_KEY_SIZE 16
#define KLAP_IV_SIZE 12
#define KLAP_SIG_SIZE 28
#define KLAP_BLOCK 16
/* handshake1's reply: remote seed + server hash. */
#define KLAP_HANDSHAKE1_REPLY_SIZE (KLAP_SEED_SIZE + KLAP_HASH_SIZE)

typedef enum KlapVersion {
        KLAP_V1 = 1,
        KLAP_V2 = 2,
} KlapVersion;

typedef struct KlapAuth {
        KlapVersion version;
        uint8_t hash[KLAP_HASH_SIZE];
        size_t len;                         /* 16 (v1, md5) or 32 (v2, sha256) */
} KlapAuth;

typedef struct KlapSession {
        uint8_t key[KLAP_KEY_SIZE];
        uint8_t iv[KLAP_IV_SIZE];
        uint8_t sig[KLAP_SIG_SIZE];
        int32_t seq;                        /* of the last request sent */
} KlapSession;

/* v1 md5(md5(user) + md5(password)), v2 sha256(sha1(user) + sha1(password)). */
int klap_auth_init(KlapAuth *a, KlapVersion version, const char *user, const char *password);

/* The hash handshake1's reply must carry: v1 sha256(local + auth),
 * v2 sha256(local + remote + auth). */
int klap_server_hash(const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE], const uint8_t remote[KLAP_SEED_SIZE],
                     uint8_t ret[KLAP_HASH_SIZE]);
/* Checks handshake1's reply: 0 and the remote seed, -EBADMSG for a reply of
 * the wrong size, -EACCES when the server hash is not the one these
 * credentials give (wrong credentials, or a device that is not what it
 * claims). */
int klap_handshake1_check(const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE], const uint8_t *reply,
                          size_t reply_len, uint8_t ret_remote[KLAP_SEED_SIZE], KasaError *err);
/* handshake2's body: v1 sha256(remote + auth), v2 sha256(remote + local + auth). */
int klap_client_hash(const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE], const uint8_t remote[KLAP_SEED_SIZE],
                     uint8_t ret[KLAP_HASH_SIZE]);

int klap_session_init(KlapSession *s, const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE],
                      const uint8_t remote[KLAP_SEED_SIZE]);

/* sha256(sig + be32(seq) + cipher) + cipher, cipher = AES-128-CBC/PKCS#7 of
 * plain under IV iv + be32(seq). klap_encrypt() first advances s->seq
 * (wrapping like the devices' signed 32-bit counter) and returns the seq it
 * used; klap_seal() uses seq as given (kasa-sim answers under the seq of the
 * request). */
int klap_encrypt(KlapSession *s, const void *plain, size_t len, uint8_t **ret, size_t *ret_len, int32_t *ret_seq);
int klap_seal(const KlapSession *s, int32_t seq, const void *plain, size_t len, uint8_t **ret, size_t *ret_len);
/* The reverse, signature checked: 0 and the plaintext (NUL-terminated,
 * malloc'd), or -EBADMSG (too short, not whole blocks, bad padding) or
 * -EBADE (signature mismatch), err saying which. */
int klap_decrypt(const KlapSession *s, int32_t seq, const uint8_t *body, size_t len, char **ret, size_t *ret_len,
                 KasaError *err);

/* AES-128-CBC with PKCS#7 padding; exposed for the tests' edge cases. */
int klap_aes_cbc(bool encrypt, const uint8_t key[KLAP_KEY_SIZE], const uint8_t iv[KLAP_BLOCK], const uint8_t *in,
                 size_t len, uint8_t **ret, size_t *ret_len);

/* Fills buf with random bytes (the local seed). */
int klap_random(uint8_t *buf, size_t len);
