/* SPDX-License-Identifier: MIT */

/* Decrypted smart-dialect replies (KLAP payloads of Tapo devices) into
 * their parser: refused with a reason, or a response whose every field
 * keeps the invariants the daemon relies on. */

#include <stdint.h>

#include "fuzz-check.h"
#include "kasa-smart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static KasaResponse resp;
        KasaError err = {};
        int r;

        r = kasa_smart_response_parse((const char *) data, size, &resp, &err);
        if (r < 0)
                fuzz_check_refusal(r, &err);
        else {
                fuzz_check_response(&resp);
                if (resp.realtime_err == 0)
                        fuzz_assert(resp.realtime.style == KASA_UNITS_MILLI);
        }
        (void) kasa_smart_is_reply((const char *) data, size);
        return 0;
}
