/* SPDX-License-Identifier: MIT */

/* UDP discovery datagrams (encrypted, unframed) from anyone on the LAN. */

#include <stdint.h>

#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static KasaSysinfo si;
        KasaError err = {};

        int r = kasa_discovery_parse(data, size, &si, &err);
        if (r < 0)
                fuzz_check_refusal(r, &err);
        else
                fuzz_check_sysinfo(&si);
        return 0;
}
