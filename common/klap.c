/* SPDX-License-Identifier: MIT */

#include "klap.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

typedef struct Part {
        const void *data;
        size_t len;
} Part;

/* Digest of the concatenation of parts. */
static int digest(const EVP_MD *md, const Part *parts, size_t n, uint8_t *ret) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(ctx, md, NULL);
        for (size_t i = 0; ok && i < n; i++)
                ok = EVP_DigestUpdate(ctx, parts[i].data, parts[i].len);
        if (ok)
                ok = EVP_DigestFinal_ex(ctx, ret, NULL);
        EVP_MD_CTX_free(ctx);
        return ok ? 0 : -EIO;
}

#define DIGEST(md, ret, ...) digest(md, (const Part[]) { __VA_ARGS__ }, \
                                    sizeof((const Part[]) { __VA_ARGS__ }) / sizeof(Part), ret)

int klap_auth_init(KlapAuth *a, KlapVersion version, const char *user, const char *password) {
        uint8_t u[20], p[20];
        int r;

        *a = (KlapAuth) { .version = version };
        if (version == KLAP_V1) {
                r = DIGEST(EVP_md5(), u, { user, strlen(user) });
                if (r >= 0)
                        r = DIGEST(EVP_md5(), p, { password, strlen(password) });
                if (r >= 0)
                        r = DIGEST(EVP_md5(), a->hash, { u, 16 }, { p, 16 });
                a->len = 16;
        } else if (version == KLAP_V2) {
                r = DIGEST(EVP_sha1(), u, { user, strlen(user) });
                if (r >= 0)
                        r = DIGEST(EVP_sha1(), p, { password, strlen(password) });
                if (r >= 0)
                        r = DIGEST(EVP_sha256(), a->hash, { u, 20 }, { p, 20 });
                a->len = 32;
        } else
                r = -EINVAL;
        OPENSSL_cleanse(u, sizeof(u));
        OPENSSL_cleanse(p, sizeof(p));
        return r;
}

int klap_server_hash(const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE], const uint8_t remote[KLAP_SEED_SIZE],
                     uint8_t ret[KLAP_HASH_SIZE]) {
        if (a->version == KLAP_V1)
                return DIGEST(EVP_sha256(), ret, { local, KLAP_SEED_SIZE }, { a->hash, a->len });
        return DIGEST(EVP_sha256(), ret, { local, KLAP_SEED_SIZE }, { remote, KLAP_SEED_SIZE }, { a->hash, a->len });
}

int klap_client_hash(const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE], const uint8_t remote[KLAP_SEED_SIZE],
                     uint8_t ret[KLAP_HASH_SIZE]) {
        if (a->version == KLAP_V1)
                return DIGEST(EVP_sha256(), ret, { remote, KLAP_SEED_SIZE }, { a->hash, a->len });
        return DIGEST(EVP_sha256(), ret, { remote, KLAP_SEED_SIZE }, { local, KLAP_SEED_SIZE }, { a->hash, a->len });
}

int klap_handshake1_check(const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE], const uint8_t *reply,
                          size_t reply_len, uint8_t ret_remote[KLAP_SEED_SIZE], KasaError *err) {
        uint8_t want[KLAP_HASH_SIZE];
        int r;

        if (reply_len != KLAP_HANDSHAKE1_REPLY_SIZE) {
                snprintf(err->message, sizeof(err->message), "handshake1 reply is %zu bytes, not %d", reply_len,
                         KLAP_HANDSHAKE1_REPLY_SIZE);
                return -EBADMSG;
        }
        r = klap_server_hash(a, local, reply, want);
        if (r < 0)
                return r;
        if (CRYPTO_memcmp(want, reply + KLAP_SEED_SIZE, KLAP_HASH_SIZE) != 0) {
                snprintf(err->message, sizeof(err->message),
                         "handshake1 server hash does not match these credentials");
                return -EACCES;
        }
        memcpy(ret_remote, reply, KLAP_SEED_SIZE);
        return 0;
}

int klap_session_init(KlapSession *s, const KlapAuth *a, const uint8_t local[KLAP_SEED_SIZE],
                      const uint8_t remote[KLAP_SEED_SIZE]) {
        uint8_t h[KLAP_HASH_SIZE];
        int r;

#define P { local, KLAP_SEED_SIZE }, { remote, KLAP_SEED_SIZE }, { a->hash, a->len }
        r = DIGEST(EVP_sha256(), h, { "lsk", 3 }, P);
        if (r < 0)
                return r;
        memcpy(s->key, h, KLAP_KEY_SIZE);
        r = DIGEST(EVP_sha256(), h, { "iv", 2 }, P);
        if (r < 0)
                return r;
        memcpy(s->iv, h, KLAP_IV_SIZE);
        s->seq = (int32_t) ((uint32_t) h[28] << 24 | (uint32_t) h[29] << 16 | (uint32_t) h[30] << 8 | h[31]);
        r = DIGEST(EVP_sha256(), h, { "ldk", 3 }, P);
        if (r < 0)
                return r;
        memcpy(s->sig, h, KLAP_SIG_SIZE);
#undef P
        OPENSSL_cleanse(h, sizeof(h));
        return 0;
}

int klap_aes_cbc(bool encrypt, const uint8_t key[KLAP_KEY_SIZE], const uint8_t iv[KLAP_BLOCK], const uint8_t *in,
                 size_t len, uint8_t **ret, size_t *ret_len) {
        EVP_CIPHER_CTX *ctx;
        uint8_t *out;
        int n1 = 0, n2 = 0, ok;

        if (len > INT_MAX - KLAP_BLOCK)
                return -EMSGSIZE;
        if (!encrypt && (len == 0 || len % KLAP_BLOCK != 0))
                return -EBADMSG;
        out = malloc(len + KLAP_BLOCK + 1);
        if (!out)
                return -ENOMEM;
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx) {
                free(out);
                return -ENOMEM;
        }
        ok = EVP_CipherInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv, encrypt) &&
             EVP_CipherUpdate(ctx, out, &n1, in, (int) len) && EVP_CipherFinal_ex(ctx, out + n1, &n2);
        EVP_CIPHER_CTX_free(ctx);
        if (!ok) {
                /* Decryption only fails on bad padding. */
                free(out);
                return encrypt ? -EIO : -EBADMSG;
        }
        out[n1 + n2] = 0;
        *ret = out;
        *ret_len = (size_t) (n1 + n2);
        return 0;
}

static void be32(int32_t seq, uint8_t out[4]) {
        uint32_t u = (uint32_t) seq;

        out[0] = (uint8_t) (u >> 24);
        out[1] = (uint8_t) (u >> 16);
        out[2] = (uint8_t) (u >> 8);
        out[3] = (uint8_t) u;
}

static void full_iv(const KlapSession *s, int32_t seq, uint8_t iv[KLAP_BLOCK]) {
        memcpy(iv, s->iv, KLAP_IV_SIZE);
        be32(seq, iv + KLAP_IV_SIZE);
}

static int signature(const KlapSession *s, int32_t seq, const uint8_t *cipher, size_t len,
                     uint8_t ret[KLAP_HASH_SIZE]) {
        uint8_t be[4];

        be32(seq, be);
        return DIGEST(EVP_sha256(), ret, { s->sig, KLAP_SIG_SIZE }, { be, 4 }, { cipher, len });
}

int klap_seal(const KlapSession *s, int32_t seq, const void *plain, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *cipher = NULL;
        uint8_t iv[KLAP_BLOCK], *out;
        size_t cipher_len;
        int r;

        full_iv(s, seq, iv);
        r = klap_aes_cbc(true, s->key, iv, plain, len, &cipher, &cipher_len);
        if (r < 0)
                return r;
        out = malloc(KLAP_HASH_SIZE + cipher_len);
        if (!out)
                return -ENOMEM;
        r = signature(s, seq, cipher, cipher_len, out);
        if (r < 0) {
                free(out);
                return r;
        }
        memcpy(out + KLAP_HASH_SIZE, cipher, cipher_len);
        *ret = out;
        *ret_len = KLAP_HASH_SIZE + cipher_len;
        return 0;
}

int klap_encrypt(KlapSession *s, const void *plain, size_t len, uint8_t **ret, size_t *ret_len, int32_t *ret_seq) {
        int32_t seq = (int32_t) ((uint32_t) s->seq + 1u);
        int r;

        r = klap_seal(s, seq, plain, len, ret, ret_len);
        if (r < 0)
                return r;
        s->seq = seq;
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

int klap_decrypt(const KlapSession *s, int32_t seq, const uint8_t *body, size_t len, char **ret, size_t *ret_len,
                 KasaError *err) {
        uint8_t want[KLAP_HASH_SIZE], iv[KLAP_BLOCK];
        size_t cipher_len;
        int r;

        if (len < KLAP_HASH_SIZE + KLAP_BLOCK || (len - KLAP_HASH_SIZE) % KLAP_BLOCK != 0) {
                snprintf(err->message, sizeof(err->message),
                         "KLAP payload of %zu bytes is not a signature and whole AES blocks", len);
                return -EBADMSG;
        }
        cipher_len = len - KLAP_HASH_SIZE;
        r = signature(s, seq, body + KLAP_HASH_SIZE, cipher_len, want);
        if (r < 0)
                return r;
        if (CRYPTO_memcmp(want, body, KLAP_HASH_SIZE) != 0) {
                snprintf(err->message, sizeof(err->message), "KLAP payload signature mismatch (seq %d)", (int) seq);
                return -EBADE;
        }
        full_iv(s, seq, iv);
        r = klap_aes_cbc(false, s->key, iv, body + KLAP_HASH_SIZE, cipher_len, (uint8_t **) ret, ret_len);
        if (r == -EBADMSG)
                snprintf(err->message, sizeof(err->message), "KLAP payload has bad PKCS#7 padding");
        return r;
}

int klap_random(uint8_t *buf, size_t len) {
        return RAND_bytes(buf, (int) len) == 1 ? 0 : -EIO;
}
