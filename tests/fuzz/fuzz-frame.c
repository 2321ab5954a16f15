/* SPDX-License-Identifier: MIT */

/*
 * TCP byte streams from a device into the incremental frame decoder. The
 * input is decoded three times: in one piece, one byte at a time, and in
 * pseudo-random chunks derived from the input itself. All three must give
 * the same frames and errors, in the same order (a chunking bug would show
 * up as a difference, not a crash). Decoded frames go on to the parser.
 */

#include <stdint.h>

#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef enum Chunking {
        CHUNK_WHOLE,
        CHUNK_BYTES,
        CHUNK_RANDOM,
} Chunking;

/* FNV-1a, folded over everything the decoder produced. */
static void mix(uint64_t *h, const void *p, size_t n) {
        const uint8_t *b = p;
        for (size_t i = 0; i < n; i++)
                *h = (*h ^ b[i]) * 0x100000001b3ULL;
}

static uint64_t next_random(uint64_t *state) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        return *state;
}

static uint64_t decode(const uint8_t *data, size_t size, Chunking how, uint64_t seed, bool parse) {
        static KasaResponse resp;
        KasaFrameDecoder d;
        uint64_t h = 0xcbf29ce484222325ULL, rng = seed | 1;
        size_t pos = 0;

        kasa_frame_decoder_init(&d, 0);
        while (pos < size) {
                size_t n = size - pos;
                if (how == CHUNK_BYTES)
                        n = 1;
                else if (how == CHUNK_RANDOM) {
                        size_t want = 1 + next_random(&rng) % 64;
                        n = want < n ? want : n;
                }
                const uint8_t *p = data + pos;
                pos += n;

                while (n > 0) {
                        KasaError err = {};
                        char *frame = NULL;
                        size_t consumed = 0, frame_len = 0;

                        int r = kasa_frame_decoder_feed(&d, p, n, &consumed, &frame, &frame_len, &err);
                        fuzz_assert(consumed <= n);
                        p += consumed;
                        n -= consumed;
                        /* Only outcomes count: how often "need more" comes
                         * back depends on the chunking. */
                        if (r != 0)
                                mix(&h, &r, sizeof(r));
                        if (r < 0) {
                                fuzz_assert(r == -EMSGSIZE || r == -EBADMSG);
                                fuzz_check_string(err.message, sizeof(err.message));
                                /* The stream is unusable until reset, and the
                                 * decoder must say so rather than carry on. */
                                if (n > 0) {
                                        size_t c = 1;
                                        char *f = NULL;
                                        fuzz_assert(kasa_frame_decoder_feed(&d, p, n, &c, &f, &frame_len, &err) ==
                                                    -EBADMSG);
                                        fuzz_assert(c == 0 && !f);
                                }
                                kasa_frame_decoder_reset(&d);
                                continue;
                        }
                        if (r == 0) {
                                /* "Need more" means it took everything offered. */
                                fuzz_assert(n == 0);
                                continue;
                        }
                        fuzz_assert(frame && frame_len > 0 && frame[frame_len] == 0);
                        mix(&h, &frame_len, sizeof(frame_len));
                        mix(&h, frame, frame_len);
                        if (parse) {
                                err = (KasaError) {};
                                r = kasa_response_parse(frame, frame_len, &resp, &err);
                                if (r < 0)
                                        fuzz_check_refusal(r, &err);
                                else
                                        fuzz_check_response(&resp);
                        }
                        free(frame);
                }
        }
        bool busy = kasa_frame_decoder_busy(&d);
        mix(&h, &busy, sizeof(busy));
        kasa_frame_decoder_reset(&d);
        return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint64_t seed = 0xcbf29ce484222325ULL;
        mix(&seed, data, size);

        uint64_t whole = decode(data, size, CHUNK_WHOLE, seed, true);
        fuzz_assert(decode(data, size, CHUNK_BYTES, seed, false) == whole);
        fuzz_assert(decode(data, size, CHUNK_RANDOM, seed, false) == whole);
        return 0;
}
