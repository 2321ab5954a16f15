/* SPDX-License-Identifier: MIT */

/* UDP 20002 discovery replies, from anyone on the LAN. */

#include <stdint.h>

#include "fuzz-check.h"
#include "kasa-tdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        KasaTdpInfo info;
        KasaError err = {};
        char mac[18];

        int r = kasa_tdp_parse(data, size, &info, &err);
        if (r < 0) {
                fuzz_check_refusal(r, &err);
                return 0;
        }
        fuzz_check_string(info.model, sizeof(info.model));
        fuzz_check_string(info.device_type, sizeof(info.device_type));
        fuzz_check_string(info.device_id, sizeof(info.device_id));
        fuzz_assert(info.model[0] && info.device_id[0] && info.device_type[0]);
        fuzz_assert(kasa_mac_normalize(info.mac, mac) == 0 && strcmp(mac, info.mac) == 0);
        fuzz_assert(info.lv == 1 || info.lv == 2);
        fuzz_assert(info.http_port > 0);
        fuzz_assert(info.encrypt == KASA_ENCRYPT_KLAP || info.encrypt == KASA_ENCRYPT_AES);
        return 0;
}
