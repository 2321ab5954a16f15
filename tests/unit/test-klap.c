/* SPDX-License-Identifier: MIT */

/*
 * KLAP derivations (common/klap.c) against the vectors that
 * klap-vectors.py computes independently with python3-cryptography
 * (klap-vectors.txt, passed as argv[1]), and AES-CBC/PKCS#7 edge cases.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "klap.h"
#include "macro.h"
#include "tap.h"
#include "vectors.h"

static void test_case(const char *c) {
        KlapVersion v = vector(c, "version")->data[0];
        const uint8_t *local = vector(c, "local")->data, *remote = vector(c, "remote")->data;
        const Field *plain = vector(c, "plain"), *seqf = vector(c, "seq");
        uint8_t hash[KLAP_HASH_SIZE], got_remote[KLAP_SEED_SIZE], reply[KLAP_HANDSHAKE1_REPLY_SIZE];
        KlapAuth a;
        KlapSession s;
        KasaError err = {};
        _cleanup_free_ uint8_t *b1 = NULL, *b2 = NULL, *bmin = NULL;
        _cleanup_free_ char *back = NULL;
        size_t b1_len, b2_len, bmin_len, back_len;
        int32_t seq, want_seq;

        ok(klap_auth_init(&a, v, (char *) vector(c, "user")->data, (char *) vector(c, "password")->data) == 0 &&
           same(a.hash, a.len, vector(c, "auth")), "%s: auth hash", c);
        ok(klap_server_hash(&a, local, remote, hash) == 0 && same(hash, sizeof(hash), vector(c, "server_hash")),
           "%s: server hash", c);
        ok(klap_client_hash(&a, local, remote, hash) == 0 && same(hash, sizeof(hash), vector(c, "client_hash")),
           "%s: handshake2 hash", c);

        memcpy(reply, remote, KLAP_SEED_SIZE);
        memcpy(reply + KLAP_SEED_SIZE, vector(c, "server_hash")->data, KLAP_HASH_SIZE);
        ok(klap_handshake1_check(&a, local, reply, sizeof(reply), got_remote, &err) == 0 &&
           memcmp(got_remote, remote, KLAP_SEED_SIZE) == 0, "%s: handshake1 reply accepted", c);
        reply[KLAP_SEED_SIZE + 7] ^= 1;
        is_int(klap_handshake1_check(&a, local, reply, sizeof(reply), got_remote, &err), -EACCES,
               "%s: wrong server hash refused", c);
        ok(strstr(err.message, "server hash") != NULL, "%s: and says why (%s)", c, err.message);
        is_int(klap_handshake1_check(&a, local, reply, sizeof(reply) - 1, got_remote, &err), -EBADMSG,
               "%s: short handshake1 reply refused", c);

        ok(klap_session_init(&s, &a, local, remote) == 0, "%s: session", c);
        ok(same(s.key, sizeof(s.key), vector(c, "key")), "%s: key", c);
        ok(same(s.iv, sizeof(s.iv), vector(c, "iv")), "%s: iv", c);
        ok(same(s.sig, sizeof(s.sig), vector(c, "sig")), "%s: signature key", c);
        want_seq = (int32_t) ((uint32_t) seqf->data[0] << 24 | (uint32_t) seqf->data[1] << 16 |
                              (uint32_t) seqf->data[2] << 8 | seqf->data[3]);
        is_int(s.seq, want_seq, "%s: sequence number", c);

        ok(klap_encrypt(&s, plain->data, plain->len, &b1, &b1_len, &seq) == 0 && seq == want_seq + 1 &&
           same(b1, b1_len, vector(c, "body1")), "%s: first request body (seq %d)", c, seq);
        ok(klap_encrypt(&s, plain->data, plain->len, &b2, &b2_len, &seq) == 0 && seq == want_seq + 2 &&
           same(b2, b2_len, vector(c, "body2")), "%s: second request body, seq advanced", c);
        ok(klap_decrypt(&s, seq, b2, b2_len, &back, &back_len, &err) == 0 && same(back, back_len, plain),
           "%s: decrypts", c);

        s.seq = INT32_MAX;
        ok(klap_encrypt(&s, plain->data, plain->len, &bmin, &bmin_len, &seq) == 0 && seq == INT32_MIN &&
           same(bmin, bmin_len, vector(c, "body_min")), "%s: seq wraps to INT32_MIN", c);

        is_int(klap_decrypt(&s, seq + 1, bmin, bmin_len, &back, &back_len, &err), -EBADE,
               "%s: wrong seq fails the signature", c);
        bmin[bmin_len - 1] ^= 0x40;
        is_int(klap_decrypt(&s, seq, bmin, bmin_len, &back, &back_len, &err), -EBADE,
               "%s: corrupted cipher fails the signature", c);
        bmin[bmin_len - 1] ^= 0x40;
        bmin[3] ^= 1;
        is_int(klap_decrypt(&s, seq, bmin, bmin_len, &back, &back_len, &err), -EBADE,
               "%s: corrupted signature refused", c);
        ok(strstr(err.message, "signature") != NULL, "%s: and says so (%s)", c, err.message);
        is_int(klap_decrypt(&s, seq, bmin, KLAP_HASH_SIZE, &back, &back_len, &err), -EBADMSG,
               "%s: signature alone refused", c);
        is_int(klap_decrypt(&s, seq, bmin, bmin_len - 1, &back, &back_len, &err), -EBADMSG,
               "%s: partial block refused", c);
}

static void test_aes_edges(void) {
        static const uint8_t key[16] = "0123456789abcdef", iv[16] = "fedcba9876543210";
        uint8_t plain[64];

        for (size_t i = 0; i < sizeof(plain); i++)
                plain[i] = (uint8_t) (i * 7);

        for (size_t len = 0; len <= 33; len++) {
                _cleanup_free_ uint8_t *c = NULL, *p = NULL;
                size_t c_len, p_len;

                ok(klap_aes_cbc(true, key, iv, plain, len, &c, &c_len) == 0 && c_len == (len / 16 + 1) * 16 &&
                   klap_aes_cbc(false, key, iv, c, c_len, &p, &p_len) == 0 && p_len == len &&
                   memcmp(p, plain, len) == 0, "AES-CBC/PKCS#7 round trip of %zu bytes pads to %zu", len,
                   (len / 16 + 1) * 16);
        }

        /* Hand-made bad paddings: encrypt raw blocks with no padding of our
         * own by encrypting block + full pad block and dropping the last. */
        static const struct {
                const char *name;
                uint8_t last[16];
        } bad[] = {
                { "pad byte 0", { [15] = 0 } },
                { "pad byte 17", { [15] = 17 } },
                { "inconsistent pad bytes", { [13] = 3, [14] = 2, [15] = 3 } },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ uint8_t *c = NULL, *p = NULL;
                size_t c_len, p_len;

                /* CBC: the first block's ciphertext, encrypted with a full
                 * pad block behind it, is the raw encryption of bad[i].last. */
                ok(klap_aes_cbc(true, key, iv, bad[i].last, 16, &c, &c_len) == 0 && c_len == 32,
                   "encrypt raw block (%s)", bad[i].name);
                is_int(klap_aes_cbc(false, key, iv, c, 16, &p, &p_len), -EBADMSG, "bad PKCS#7 refused: %s",
                       bad[i].name);
        }
        {
                _cleanup_free_ uint8_t *p = NULL;
                size_t p_len;

                is_int(klap_aes_cbc(false, key, iv, plain, 0, &p, &p_len), -EBADMSG, "empty cipher refused");
                is_int(klap_aes_cbc(false, key, iv, plain, 15, &p, &p_len), -EBADMSG, "partial block refused");
        }
}

int main(int argc, char **argv) {
        if (argc < 2 || vectors_load(argv[1]) < 0) {
                printf("Bail out! cannot read the vectors (argv[1])\n");
                return EXIT_FAILURE;
        }
        test_case("v1");
        test_case("v2");
        test_case("v1blank");
        test_case("v2blank");
        test_aes_edges();
        return done_testing();
}
