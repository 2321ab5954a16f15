/* SPDX-License-Identifier: MIT */

/* Decrypted device replies straight into the JSON response parser. */

#include <stdint.h>

#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static KasaResponse resp;
        KasaError err = {};

        int r = kasa_response_parse((const char *) data, size, &resp, &err);
        if (r < 0)
                fuzz_check_refusal(r, &err);
        else
                fuzz_check_response(&resp);
        return 0;
}
