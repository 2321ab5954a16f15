/* SPDX-License-Identifier: MIT */

/* KLAP payloads and handshake1 replies from a device: be32 seq, then the
 * body. Whatever comes, it is refused with a reason or decrypts to what a
 * fresh seal of the plaintext decrypts to. */

#include <stdint.h>

#include "fuzz-check.h"
#include "klap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint8_t local[KLAP_SEED_SIZE] = "local seed 0123", remote[KLAP_SEED_SIZE] = "remote seed 012";
        static KlapAuth auth;
        static KlapSession s;
        uint8_t got_remote[KLAP_SEED_SIZE];
        KasaError err = {};
        char *plain = NULL;
        size_t plain_len;
        int32_t seq;
        int r;

        if (auth.len == 0) {
                fuzz_assert(klap_auth_init(&auth, KLAP_V2, "user", "password") == 0);
                fuzz_assert(klap_session_init(&s, &auth, local, remote) == 0);
        }
        if (size < 4)
                return 0;

        r = klap_handshake1_check(&auth, local, data + 4, size - 4, got_remote, &err);
        fuzz_assert(r == 0 || r == -EBADMSG || r == -EACCES);
        if (r < 0)
                fuzz_assert(err.message[0]);

        seq = (int32_t) ((uint32_t) data[0] << 24 | (uint32_t) data[1] << 16 | (uint32_t) data[2] << 8 | data[3]);
        r = klap_decrypt(&s, seq, data + 4, size - 4, &plain, &plain_len, &err);
        if (r < 0) {
                fuzz_assert(r == -EBADMSG || r == -EBADE);
                fuzz_check_string(err.message, sizeof(err.message));
                fuzz_assert(err.message[0]);
                /* Now the same bytes as a plaintext, through a round trip. */
                uint8_t *body;
                size_t body_len;

                fuzz_assert(klap_seal(&s, seq, data + 4, size - 4, &body, &body_len) == 0);
                fuzz_assert(klap_decrypt(&s, seq, body, body_len, &plain, &plain_len, &err) == 0);
                fuzz_assert(plain_len == size - 4 && memcmp(plain, data + 4, plain_len) == 0);
                free(body);
        } else
                fuzz_assert(plain[plain_len] == 0 && plain_len < size - 4);
        free(plain);
        return 0;
}
