/* SPDX-License-Identifier: MIT */

/* UDP 20002 discovery codec (common/kasa-tdp.c). The replies follow the
 * shape real KLAP and AES devices send, with made-up identifiers. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-tdp.h"
#include "macro.h"
#include "tap.h"

#define RESULT(schm)                                                                                     \
        "{\"error_code\":0,\"result\":{\"device_id\":\"0f3c6d2e8a9b1c4d5e6f7a8b9c0d1e2f\","             \
        "\"owner\":\"A1B2C3D4E5F60718293A4B5C6D7E8F90\",\"device_type\":\"SMART.KASAPLUG\","               \
        "\"device_model\":\"KP125M(US)\",\"ip\":\"192.0.2.7\",\"mac\":\"3C-52-A1-0B-1C-2D\","             \
        "\"is_support_iot_cloud\":true,\"obd_src\":\"matter\",\"factory_default\":false,"                 \
        "\"mgt_encrypt_schm\":" schm "}}"

static int parse(const char *json, KasaTdpInfo *info, KasaError *err) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        if (kasa_tdp_encode(json, &buf, &len) < 0)
                abort();
        return kasa_tdp_parse(buf, len, info, err);
}

int main(void) {
        _cleanup_free_ uint8_t *probe = NULL;
        size_t len;
        const char *payload;
        size_t payload_len;
        KasaTdpInfo info;
        KasaError err = {};

        ok(kasa_tdp_probe(&probe, &len) == 0 && len > KASA_TDP_HEADER_SIZE, "probe built");
        ok(probe[0] == 2 && (size_t) (probe[4] << 8 | probe[5]) == len - KASA_TDP_HEADER_SIZE && probe[6] == 0x11,
           "probe header: version 2, payload size, flags");
        ok(kasa_tdp_payload(probe, len, &payload, &payload_len, &err) == 0 &&
           strstr(payload, "\"rsa_key\":\"-----BEGIN PUBLIC KEY-----") != NULL, "probe carries an RSA public key");

        is_int(parse(RESULT("{\"is_support_https\":false,\"encrypt_type\":\"KLAP\",\"http_port\":80,\"lv\":2}"),
                     &info, &err), 0, "KLAP v2 reply parses");
        ok(info.encrypt == KASA_ENCRYPT_KLAP && info.lv == 2 && info.http_port == 80 && !info.https &&
           strcmp(info.mac, "3C:52:A1:0B:1C:2D") == 0 && strcmp(info.model, "KP125M(US)") == 0 &&
           strcmp(info.device_type, "SMART.KASAPLUG") == 0, "scheme, version, port, canonical MAC, model");
        is_int(parse(RESULT("{\"encrypt_type\":\"KLAP\",\"http_port\":8080}"), &info, &err), 0,
               "no lv: version 1");
        ok(info.lv == 1 && info.http_port == 8080, "lv 1, http_port 8080");
        is_int(parse(RESULT("{\"encrypt_type\":\"KLAP\",\"lv\":1,\"new_klap\":1}"), &info, &err), 0, "new_klap");
        is_int(info.lv, 2, "new_klap means version 2");
        is_int(parse(RESULT("{\"encrypt_type\":\"AES\",\"is_support_https\":true}"), &info, &err), 0, "AES reply");
        ok(info.encrypt == KASA_ENCRYPT_AES && info.https && info.http_port == 80, "AES, https, port 80 by default");

        static const struct {
                const char *name, *json;
        } bad[] = {
                { "unknown scheme", RESULT("{\"encrypt_type\":\"ROT13\"}") },
                { "no scheme", RESULT("{}") },
                { "port 0", RESULT("{\"encrypt_type\":\"KLAP\",\"http_port\":0}") },
                { "lv a string", RESULT("{\"encrypt_type\":\"KLAP\",\"lv\":\"2\"}") },
                { "error reply", "{\"error_code\":-1}" },
                { "no result", "{\"error_code\":0}" },
                { "not JSON", "hello" },
                { "bad MAC", "{\"result\":{\"device_id\":\"x\",\"device_type\":\"t\",\"device_model\":\"m\","
                             "\"mac\":\"nope\",\"mgt_encrypt_schm\":{\"encrypt_type\":\"KLAP\"}}}" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err.message[0] = 0;
                ok(parse(bad[i].json, &info, &err) == -EBADMSG && err.message[0], "refused: %s (%s)", bad[i].name,
                   err.message);
        }

        {
                _cleanup_free_ uint8_t *buf = NULL;

                ok(kasa_tdp_encode("{\"a\":1}", &buf, &len) == 0, "encode");
                buf[5]++;
                is_int(kasa_tdp_parse(buf, len, &info, &err), -EBADMSG, "payload size mismatch refused");
                buf[5]--;
                buf[0] = 1;
                is_int(kasa_tdp_parse(buf, len, &info, &err), -EBADMSG, "header version 1 refused");
                is_int(kasa_tdp_parse(buf, 10, &info, &err), -EBADMSG, "short datagram refused");
        }
        return done_testing();
}
