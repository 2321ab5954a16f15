/* SPDX-License-Identifier: MIT */

#include "aes-passthrough.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-json.h"
#include "kasa-smart.h"
#include "klap.h"
#include "macro.h"

struct AesptKeyPair {
        unsigned n_ref;
        EVP_PKEY *pkey;
        char *pem;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

_printf_(3, 4) static int refuse(KasaError *err, int error, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof(err->message), fmt, ap);
                va_end(ap);
        }
        return error;
}

/* Frees *p after cleansing its n bytes (a secret). */
static void clear_free(void *p, size_t n) {
        if (p)
                OPENSSL_cleanse(p, n);
        free(p);
}

static char *compact(json_t *j) {
        return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

/* ---- the key pair ---- */

static int keypair_wrap(EVP_PKEY *pkey, AesptKeyPair **ret) {
        _cleanup_(BIO_freep) BIO *bio = BIO_new(BIO_s_mem());
        AesptKeyPair *kp;
        char *data;
        long n;

        if (!bio || PEM_write_bio_PUBKEY(bio, pkey) != 1)
                return -ENOMEM;
        n = BIO_get_mem_data(bio, &data);
        if (n <= 0)
                return -EIO;
        kp = calloc(1, sizeof(*kp));
        if (!kp)
                return -ENOMEM;
        kp->pem = strndup(data, (size_t) n);
        if (!kp->pem) {
                free(kp);
                return -ENOMEM;
        }
        kp->n_ref = 1;
        kp->pkey = pkey;
        *ret = kp;
        return 0;
}

int aespt_keypair_generate(AesptKeyPair **ret) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        int r;

        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, AESPT_RSA_BITS) <= 0 ||
            EVP_PKEY_keygen(ctx, &pkey) <= 0)
                return -EIO;
        r = keypair_wrap(pkey, ret);
        if (r >= 0)
                pkey = NULL;
        return r;
}

int aespt_keypair_from_der(const uint8_t *der, size_t len, AesptKeyPair **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        const unsigned char *p = der;
        int r;

        if (len > INT32_MAX)
                return -EBADMSG;
        pkey = d2i_AutoPrivateKey(NULL, &p, (long) len);
        if (!pkey || EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA)
                return -EBADMSG;
        r = keypair_wrap(pkey, ret);
        if (r >= 0)
                pkey = NULL;
        return r;
}

AesptKeyPair *aespt_keypair_ref(AesptKeyPair *kp) {
        kp->n_ref++;
        return kp;
}

AesptKeyPair *aespt_keypair_unref(AesptKeyPair *kp) {
        if (!kp || --kp->n_ref > 0)
                return NULL;
        /* OpenSSL clears the private key's numbers as it frees them. */
        EVP_PKEY_free(kp->pkey);
        free(kp->pem);
        free(kp);
        return NULL;
}

const char *aespt_keypair_pem(const AesptKeyPair *kp) {
        return kp->pem;
}

/* ---- reading replies ---- */

/* The outer or inner object's error_code: 0, or -EREMOTEIO with the code.
 * A reply without one is refused: every answer of these devices has it. */
static int error_code(const KjTok *top, const char *what, int *ret_code, KasaError *err) {
        const KjTok *code = kj_object_get(top, "error_code");

        if (!kj_is_integer(code) || code->integer < INT32_MIN || code->integer > INT32_MAX)
                return refuse(err, -EBADMSG, "%s has no integer error_code", what);
        if (code->integer != 0) {
                if (ret_code)
                        *ret_code = (int) code->integer;
                return refuse(err, -EREMOTEIO, "%s: error_code %d", what, (int) code->integer);
        }
        return 0;
}

/* result.<field>, a string, decoded from base64 into *ret (malloc'd, with
 * a NUL after it; cleansed by the caller if it is a secret). */
static int result_b64(const KjTok *top, const char *what, const char *field, uint8_t **ret, size_t *ret_len,
                      KasaError *err) {
        const KjTok *result = kj_object_get(top, "result"), *s;
        _cleanup_free_ char *text = NULL;
        uint8_t *out;
        int n;

        s = kj_is_object(result) ? kj_object_get(result, field) : NULL;
        if (!kj_is_string(s))
                return refuse(err, -EBADMSG, "%s has no result.%s string", what, field);
        text = malloc(s->decoded_len + 1);
        out = malloc(s->decoded_len / 4 * 3 + 1);
        if (!text || !out) {
                free(out);
                return -ENOMEM;
        }
        kj_string_copy(s, text);
        n = kasa_base64_decode(text, s->decoded_len, (char *) out, s->decoded_len / 4 * 3);
        if (n < 0) {
                free(out);
                return refuse(err, -EBADMSG, "%s: result.%s is not base64", what, field);
        }
        out[n] = 0;
        *ret = out;
        *ret_len = (size_t) n;
        return 0;
}

static int parse_object(KjDoc *doc, const char *body, size_t len, const char *what, KasaError *err) {
        char why[128];

        if (kj_parse(doc, body, len, why, sizeof(why)) < 0)
                return refuse(err, -EBADMSG, "%s is not JSON: %s", what, why);
        if (!kj_is_object(&doc->toks[0]))
                return refuse(err, -EBADMSG, "%s is not a JSON object", what);
        return 0;
}

/* ---- client side ---- */

int aespt_handshake_request(const AesptKeyPair *kp, char **ret) {
        _cleanup_(json_decrefp) json_t *j = json_pack("{s:s,s:{s:s}}", "method", "handshake", "params", "key",
                                                      kp->pem);
        char *s = compact(j);

        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int rsa_decrypt(const AesptKeyPair *kp, const uint8_t *in, size_t len, uint8_t *out, size_t *out_len) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(kp->pkey, NULL);

        if (!ctx)
                return -ENOMEM;
        /* PKCS#1 v1.5, as the devices use: a padding oracle of it gives a
         * forger nothing here, since the key pair is ours for one
         * handshake only and only ever unwraps what that device sent. */
        if (EVP_PKEY_decrypt_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
            EVP_PKEY_decrypt(ctx, out, out_len, in, len) <= 0)
                return -EBADMSG;
        return 0;
}

int aespt_handshake_reply(const AesptKeyPair *kp, const char *body, size_t len, AesptSession *ret,
                          int *ret_code, KasaError *err) {
        KjDoc doc;
        uint8_t *wrapped = NULL, plain[AESPT_RSA_BITS / 8];
        size_t wrapped_len, plain_len = sizeof(plain);
        int r;

        r = parse_object(&doc, body, len, "handshake reply", err);
        if (r >= 0)
                r = error_code(&doc.toks[0], "handshake reply", ret_code, err);
        if (r >= 0)
                r = result_b64(&doc.toks[0], "handshake reply", "key", &wrapped, &wrapped_len, err);
        kj_done(&doc);
        if (r < 0)
                return r;
        if (wrapped_len != AESPT_RSA_BITS / 8)
                r = refuse(err, -EBADMSG, "handshake reply: the key is %zu bytes, not one RSA-%d block",
                           wrapped_len, AESPT_RSA_BITS);
        else if (rsa_decrypt(kp, wrapped, wrapped_len, plain, &plain_len) < 0)
                r = refuse(err, -EBADMSG, "handshake reply: the key does not decrypt with our RSA key");
        else if (plain_len != AESPT_HANDSHAKE_KEY_SIZE)
                r = refuse(err, -EBADMSG, "handshake reply: the key decrypts to %zu bytes, not %d", plain_len,
                           AESPT_HANDSHAKE_KEY_SIZE);
        else {
                memcpy(ret->key, plain, AESPT_KEY_SIZE);
                memcpy(ret->iv, plain + AESPT_KEY_SIZE, AESPT_IV_SIZE);
        }
        OPENSSL_cleanse(plain, sizeof(plain));
        free(wrapped);
        return r;
}

static char *sha1_hex(const char *s) {
        uint8_t md[20];
        char *hex = malloc(41);

        if (!hex)
                return NULL;
        if (EVP_Digest(s, strlen(s), md, NULL, EVP_sha1(), NULL) != 1) {
                free(hex);
                return NULL;
        }
        for (size_t i = 0; i < sizeof(md); i++)
                sprintf(hex + 2 * i, "%02x", md[i]);
        OPENSSL_cleanse(md, sizeof(md));
        return hex;
}

int aespt_login_params(const char *user, const char *password, int version, char **ret_username,
                       char **ret_password) {
        _cleanup_free_ char *uh = NULL;
        char *ph = NULL, *u, *p;

        if (version != 1 && version != 2)
                return -EINVAL;
        uh = sha1_hex(user);
        if (!uh)
                return -ENOMEM;
        if (version == 2) {
                ph = sha1_hex(password);
                if (!ph)
                        return -ENOMEM;
        }
        u = kasa_base64_encode(uh, strlen(uh));
        p = version == 2 ? kasa_base64_encode(ph, strlen(ph)) : kasa_base64_encode(password, strlen(password));
        /* Version 2 sends the password's hash as the password. */
        if (ph)
                clear_free(ph, strlen(ph));
        if (!u || !p) {
                free(u);
                if (p)
                        clear_free(p, strlen(p));
                return -ENOMEM;
        }
        *ret_username = u;
        *ret_password = p;
        return 0;
}

int aespt_login_request(const char *user, const char *password, int version, int64_t time_ms, char **ret) {
        _cleanup_free_ char *u = NULL;
        char *p = NULL, *s;
        json_t *j;
        int r;

        r = aespt_login_params(user, password, version, &u, &p);
        if (r < 0)
                return r;
        j = json_pack("{s:s,s:{s:s,s:s},s:I}", "method", "login_device", "params", "username", u,
                      version == 2 ? "password2" : "password", p, "request_time_milis", (json_int_t) time_ms);
        s = compact(j);
        /* jansson's copy of the password goes with j; cleansed first. */
        if (j) {
                json_t *params = json_object_get(j, "params");
                json_t *pw = json_object_get(params, version == 2 ? "password2" : "password");
                OPENSSL_cleanse((char *) json_string_value(pw), json_string_length(pw));
                json_decref(j);
        }
        clear_free(p, strlen(p));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int aespt_login_reply(const char *json, size_t len, char ret_token[AESPT_TOKEN_MAX], int *ret_code,
                      KasaError *err) {
        const KjTok *result, *token;
        KjDoc doc;
        int r;

        r = parse_object(&doc, json, len, "login_device reply", err);
        if (r >= 0)
                r = error_code(&doc.toks[0], "login_device reply", ret_code, err);
        if (r < 0) {
                kj_done(&doc);
                return r;
        }
        result = kj_object_get(&doc.toks[0], "result");
        token = kj_is_object(result) ? kj_object_get(result, "token") : NULL;
        if (!kj_is_string(token) || token->decoded_len == 0 || token->decoded_len >= AESPT_TOKEN_MAX)
                r = refuse(err, -EBADMSG, "login_device reply has no result.token of 1 to %d bytes",
                           AESPT_TOKEN_MAX - 1);
        else {
                kj_string_copy(token, ret_token);
                ret_token[token->decoded_len] = 0;
                /* It goes into a URL as it is. */
                for (size_t i = 0; r >= 0 && ret_token[i]; i++)
                        if (!((ret_token[i] >= '0' && ret_token[i] <= '9') ||
                              (ret_token[i] >= 'A' && ret_token[i] <= 'Z') ||
                              (ret_token[i] >= 'a' && ret_token[i] <= 'z') || strchr("-._~", ret_token[i])))
                                r = refuse(err, -EBADMSG, "login_device reply: the token is not URL-safe");
        }
        kj_done(&doc);
        return r;
}

static int seal_b64(const AesptSession *s, const char *inner, size_t len, char **ret) {
        _cleanup_free_ uint8_t *cipher = NULL;
        size_t cipher_len;
        int r;

        r = klap_aes_cbc(true, s->key, s->iv, (const uint8_t *) inner, len, &cipher, &cipher_len);
        if (r < 0)
                return r;
        *ret = kasa_base64_encode((const char *) cipher, cipher_len);
        return *ret ? 0 : -ENOMEM;
}

/* Base64 text to plaintext: -EBADMSG unless it is base64 of whole AES
 * blocks with good padding. */
static int open_b64(const AesptSession *s, const uint8_t *cipher, size_t len, char **ret, size_t *ret_len,
                    KasaError *err) {
        int r;

        if (len == 0 || len % KLAP_BLOCK != 0)
                return refuse(err, -EBADMSG, "securePassthrough payload of %zu bytes is not whole AES blocks", len);
        r = klap_aes_cbc(false, s->key, s->iv, cipher, len, (uint8_t **) ret, ret_len);
        if (r == -EBADMSG)
                return refuse(err, r, "securePassthrough payload has bad PKCS#7 padding");
        return r;
}

int aespt_request(const AesptSession *s, const char *inner, size_t len, char **ret) {
        _cleanup_free_ char *b64 = NULL;
        int r;

        r = seal_b64(s, inner, len, &b64);
        if (r < 0)
                return r;
        /* Base64 needs no JSON escape; once per poll, so not through jansson. */
        if (asprintf(ret, "{\"method\":\"securePassthrough\",\"params\":{\"request\":\"%s\"}}", b64) < 0)
                return -ENOMEM;
        return 0;
}

int aespt_response(const AesptSession *s, const char *body, size_t len, char **ret, size_t *ret_len,
                   int *ret_code, KasaError *err) {
        _cleanup_free_ uint8_t *cipher = NULL;
        size_t cipher_len;
        KjDoc doc;
        int r;

        r = parse_object(&doc, body, len, "securePassthrough reply", err);
        if (r >= 0)
                r = error_code(&doc.toks[0], "securePassthrough reply", ret_code, err);
        if (r >= 0)
                r = result_b64(&doc.toks[0], "securePassthrough reply", "response", &cipher, &cipher_len, err);
        kj_done(&doc);
        if (r < 0)
                return r;
        return open_b64(s, cipher, cipher_len, ret, ret_len, err);
}

/* ---- device side ---- */

int aespt_parse_call(const char *body, size_t len, char **ret_method, char **ret_param, KasaError *err) {
        const KjTok *method, *params, *param;
        char *m, *p;
        KjDoc doc;
        int r;

        r = parse_object(&doc, body, len, "request", err);
        if (r < 0) {
                kj_done(&doc);
                return r;
        }
        method = kj_object_get(&doc.toks[0], "method");
        params = kj_object_get(&doc.toks[0], "params");
        param = NULL;
        if (kj_is_string(method) && kj_is_object(params)) {
                if (method->decoded_len == 9 && memcmp(method->text, "handshake", 9) == 0)
                        param = kj_object_get(params, "key");
                else if (method->decoded_len == 17 && memcmp(method->text, "securePassthrough", 17) == 0)
                        param = kj_object_get(params, "request");
        }
        if (!kj_is_string(param)) {
                kj_done(&doc);
                return refuse(err, -EBADMSG, "request is neither a handshake nor a securePassthrough");
        }
        m = malloc(method->decoded_len + 1);
        p = malloc(param->decoded_len + 1);
        if (!m || !p) {
                free(m);
                free(p);
                kj_done(&doc);
                return -ENOMEM;
        }
        kj_string_copy(method, m);
        m[method->decoded_len] = 0;
        kj_string_copy(param, p);
        p[param->decoded_len] = 0;
        kj_done(&doc);
        *ret_method = m;
        *ret_param = p;
        return 0;
}

int aespt_handshake_answer(const char *pem, AesptSession *ret_session, char **ret) {
        _cleanup_(BIO_freep) BIO *bio = BIO_new_mem_buf(pem, -1);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        _cleanup_free_ char *b64 = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        uint8_t plain[AESPT_HANDSHAKE_KEY_SIZE], wrapped[1024];
        size_t wrapped_len = sizeof(wrapped);
        int r = 0;

        if (!bio)
                return -ENOMEM;
        pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        if (!pub || EVP_PKEY_base_id(pub) != EVP_PKEY_RSA || EVP_PKEY_bits(pub) > 8 * (int) sizeof(wrapped))
                return -EBADMSG;
        if (RAND_bytes(plain, sizeof(plain)) != 1)
                return -EIO;
        ctx = EVP_PKEY_CTX_new(pub, NULL);
        if (!ctx)
                r = -ENOMEM;
        else if (EVP_PKEY_encrypt_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
                 EVP_PKEY_encrypt(ctx, wrapped, &wrapped_len, plain, sizeof(plain)) <= 0)
                r = -EBADMSG;
        if (r >= 0) {
                memcpy(ret_session->key, plain, AESPT_KEY_SIZE);
                memcpy(ret_session->iv, plain + AESPT_KEY_SIZE, AESPT_IV_SIZE);
        }
        OPENSSL_cleanse(plain, sizeof(plain));
        if (r < 0)
                return r;
        b64 = kasa_base64_encode((const char *) wrapped, wrapped_len);
        j = b64 ? json_pack("{s:i,s:{s:s}}", "error_code", 0, "result", "key", b64) : NULL;
        *ret = compact(j);
        return *ret ? 0 : -ENOMEM;
}

int aespt_open_request(const AesptSession *s, const char *b64, char **ret, size_t *ret_len) {
        size_t len = strlen(b64);
        _cleanup_free_ uint8_t *cipher = malloc(len / 4 * 3 + 1);
        int n;

        if (!cipher)
                return -ENOMEM;
        n = kasa_base64_decode(b64, len, (char *) cipher, len / 4 * 3);
        if (n < 0)
                return -EBADMSG;
        return open_b64(s, cipher, (size_t) n, ret, ret_len, NULL);
}

int aespt_response_answer(const AesptSession *s, const char *inner, size_t len, char **ret) {
        _cleanup_free_ char *b64 = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r;

        r = seal_b64(s, inner, len, &b64);
        if (r < 0)
                return r;
        j = json_pack("{s:i,s:{s:s}}", "error_code", 0, "result", "response", b64);
        *ret = compact(j);
        return *ret ? 0 : -ENOMEM;
}
