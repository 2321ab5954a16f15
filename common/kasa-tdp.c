/* SPDX-License-Identifier: MIT */

#include "kasa-tdp.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "macro.h"

/* The CRC field holds this while the CRC is computed. */
#define TDP_CRC_SEED 0x5A6B7C8Du

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

int kasa_tdp_encode(const char *json, uint8_t **ret, size_t *ret_len) {
        size_t len = strlen(json);
        uint8_t *b;

        if (len > KASA_TDP_MAX - KASA_TDP_HEADER_SIZE)
                return -EMSGSIZE;
        b = malloc(KASA_TDP_HEADER_SIZE + len);
        if (!b)
                return -ENOMEM;
        b[0] = 2;                              /* version */
        b[1] = 0;                              /* message type */
        b[2] = 0, b[3] = 1;                    /* opcode */
        b[4] = (uint8_t) (len >> 8), b[5] = (uint8_t) len;
        b[6] = 0x11;                           /* flags */
        b[7] = 0;
        put_be32(b + 8, 0x4B41534Du);          /* serial: any */
        put_be32(b + 12, TDP_CRC_SEED);
        memcpy(b + KASA_TDP_HEADER_SIZE, json, len);
        put_be32(b + 12, crc32_update(0, b, KASA_TDP_HEADER_SIZE + len));
        *ret = b;
        *ret_len = KASA_TDP_HEADER_SIZE + len;
        return 0;
}

/* The devices want an RSA public key in the probe, to encrypt part of
 * their answer with; kasamond reads nothing of that part, so any valid key
 * will do and no private key is kept (generating one would block the
 * loop for tens of milliseconds). */
static const char probe_public_key[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDXKDEonKjoRjp/ApW5N8ENHbPw\n"
        "sPOoihxO1TfFiST2S6SIIMJh6V+ECOu8iV/6CnflTEesL4IvrNK2o4kZ8YRSUUUk\n"
        "3I+Q8fpgx2sgybCcOoz80d0cvSGc7i6N18MqPjhKXzha/tJg+wvWKEIDr6GvznQv\n"
        "O17v3IinZY+a2jfXDQIDAQAB\n"
        "-----END PUBLIC KEY-----\n";

int kasa_tdp_probe(uint8_t **ret, size_t *ret_len) {
        json_t *o;
        char *json;
        int r;

        o = json_pack("{s:{s:s}}", "params", "rsa_key", probe_public_key);
        json = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!json)
                return -ENOMEM;
        r = kasa_tdp_encode(json, ret, ret_len);
        free(json);
        return r;
}

_printf_(2, 3) static int refuse(KasaError *err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

int kasa_tdp_payload(const uint8_t *data, size_t len, const char **ret, size_t *ret_len, KasaError *err) {
        size_t size;

        if (len < KASA_TDP_HEADER_SIZE + 2)
                return refuse(err, "20002 datagram of %zu bytes is too short", len);
        if (len > KASA_TDP_MAX)
                return refuse(err, "20002 datagram of %zu bytes is too long", len);
        if (data[0] != 2)
                return refuse(err, "20002 header version %u is not 2", data[0]);
        size = (size_t) data[4] << 8 | data[5];
        if (size != len - KASA_TDP_HEADER_SIZE)
                return refuse(err, "20002 header says %zu payload bytes, datagram has %zu", size,
                              len - KASA_TDP_HEADER_SIZE);
        *ret = (const char *) data + KASA_TDP_HEADER_SIZE;
        *ret_len = size;
        return 0;
}

static int copy_string(json_t *o, const char *key, char *out, size_t size, bool required, KasaError *err) {
        json_t *v = json_object_get(o, key);

        if (!v && !required) {
                out[0] = 0;
                return 0;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= size ||
            strlen(json_string_value(v)) != json_string_length(v))
                return refuse(err, "20002 reply: \"%s\" missing or not a short string", key);
        memcpy(out, json_string_value(v), json_string_length(v) + 1);
        return 0;
}

int kasa_tdp_parse(const uint8_t *data, size_t len, KasaTdpInfo *ret, KasaError *err) {
        _cleanup_(json_decrefp) json_t *root = NULL;
        KasaTdpInfo info = {};
        json_t *result, *schm, *v;
        const char *payload, *enc;
        char mac[KASA_STRING_MAX];
        size_t payload_len;
        json_error_t jerr;
        int r;

        r = kasa_tdp_payload(data, len, &payload, &payload_len, err);
        if (r < 0)
                return r;
        root = json_loadb(payload, payload_len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root || !json_is_object(root))
                return refuse(err, "20002 reply is not a JSON object");
        v = json_object_get(root, "error_code");
        if (v && (!json_is_integer(v) || json_integer_value(v) != 0))
                return refuse(err, "20002 reply carries an error");
        result = json_object_get(root, "result");
        if (!json_is_object(result))
                return refuse(err, "20002 reply without a \"result\" object");

        if ((r = copy_string(result, "device_type", info.device_type, sizeof(info.device_type), true, err)) < 0 ||
            (r = copy_string(result, "device_model", info.model, sizeof(info.model), true, err)) < 0 ||
            (r = copy_string(result, "device_id", info.device_id, sizeof(info.device_id), true, err)) < 0 ||
            (r = copy_string(result, "mac", mac, sizeof(mac), true, err)) < 0)
                return r;
        if (kasa_mac_normalize(mac, info.mac) < 0)
                return refuse(err, "20002 reply: \"mac\" is not a MAC address");

        schm = json_object_get(result, "mgt_encrypt_schm");
        if (!json_is_object(schm))
                return refuse(err, "20002 reply without \"mgt_encrypt_schm\"");
        enc = json_string_value(json_object_get(schm, "encrypt_type"));
        if (enc && strcmp(enc, "KLAP") == 0)
                info.encrypt = KASA_ENCRYPT_KLAP;
        else if (enc && strcmp(enc, "AES") == 0)
                info.encrypt = KASA_ENCRYPT_AES;
        else
                return refuse(err, "20002 reply: encrypt_type is neither KLAP nor AES");
        info.lv = 1;
        v = json_object_get(schm, "lv");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 255)
                        return refuse(err, "20002 reply: \"lv\" is not a small positive integer");
                info.lv = json_integer_value(v) >= 2 ? 2 : 1;
        }
        v = json_object_get(schm, "new_klap");
        if (v && (json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0)))
                info.lv = 2;
        info.http_port = 80;
        v = json_object_get(schm, "http_port");
        if (v) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
                        return refuse(err, "20002 reply: \"http_port\" is not a port");
                info.http_port = (uint16_t) json_integer_value(v);
        }
        info.https = json_is_true(json_object_get(schm, "is_support_https"));
        *ret = info;
        return 0;
}
