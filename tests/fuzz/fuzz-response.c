/* SPDX-License-Identifier: MIT */

/* Decrypted device replies straight into the JSON response parser; and
 * its JSON reader (kasa-json) against jansson, which it replaced: both
 * must accept the same texts and read the same values from them. */

#include <jansson.h>
#include <stdint.h>

#include "fuzz-check.h"
#include "kasa-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Same value: type, contents and, for containers, every member. */
static void check_same(const KjTok *t, json_t *j) {
        switch (t->type) {
        case KJ_OBJECT: {
                fuzz_assert(json_is_object(j) && json_object_size(j) == t->count);
                const KjTok *k = t + 1;
                for (uint32_t i = 0; i < t->count; i++, k += 1 + k[1].skip) {
                        char *key = malloc(k->decoded_len + 1);
                        fuzz_assert(key);
                        kj_string_copy(k, key);
                        json_t *v = json_object_getn(j, key, k->decoded_len);
                        fuzz_assert(v);
                        check_same(k + 1, v);
                        free(key);
                }
                break;
        }
        case KJ_ARRAY:
                fuzz_assert(json_is_array(j) && json_array_size(j) == t->count);
                for (uint32_t i = 0; i < t->count; i++)
                        check_same(kj_array_get(t, i), json_array_get(j, i));
                break;
        case KJ_STRING: {
                fuzz_assert(json_is_string(j) && json_string_length(j) == t->decoded_len);
                char *s = malloc(t->decoded_len + 1);
                fuzz_assert(s);
                kj_string_copy(t, s);
                fuzz_assert(memcmp(s, json_string_value(j), t->decoded_len) == 0);
                free(s);
                break;
        }
        case KJ_INTEGER:
                fuzz_assert(json_is_integer(j) && json_integer_value(j) == t->integer);
                break;
        case KJ_REAL:
                fuzz_assert(json_is_real(j) && memcmp(&(double) { json_real_value(j) }, &t->real, sizeof(double)) == 0);
                break;
        case KJ_TRUE:
                fuzz_assert(json_is_true(j));
                break;
        case KJ_FALSE:
                fuzz_assert(json_is_false(j));
                break;
        case KJ_NULL:
                fuzz_assert(json_is_null(j));
                break;
        default:
                fuzz_assert(0);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static KasaResponse resp;
        static KjDoc doc;
        KasaError err = {};
        char jerr[128];
        json_error_t jerror;

        int r = kasa_response_parse((const char *) data, size, &resp, &err);
        if (r < 0)
                fuzz_check_refusal(r, &err);
        else
                fuzz_check_response(&resp);

        json_t *j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &jerror);
        r = kj_parse(&doc, (const char *) data, size, jerr, sizeof(jerr));
        /* jansson skips some raw NUL bytes between tokens (its reader
         * takes NUL for the end of its buffer); kasa-json refuses them. */
        if (memchr(data, 0, size))
                fuzz_assert(r < 0 || j);
        else
                fuzz_assert((r == 0) == (j != NULL));
        if (r == 0)
                check_same(&doc.toks[0], j);
        else
                fuzz_assert(r == -EBADMSG && jerr[0]);
        kj_done(&doc);
        json_decref(j);
        return 0;
}
