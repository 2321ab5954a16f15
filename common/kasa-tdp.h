/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Discovery of KLAP/AES ("smart") firmware on UDP 20002: a 16-byte binary
 * header (version 2, message type, opcode, payload size, flags, a serial
 * and a CRC-32 of the whole datagram), then JSON. The reply names the
 * device and how to talk to it (mgt_encrypt_schm). Pure codec.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kasa-proto.h"

#define KASA_TDP_PORT 20002
#define KASA_TDP_HEADER_SIZE 16
#define KASA_TDP_MAX 4096u

typedef enum KasaEncrypt {
        KASA_ENCRYPT_KLAP,
        KASA_ENCRYPT_AES,
} KasaEncrypt;

typedef struct KasaTdpInfo {
        char device_type[64];        /* "IOT.SMARTPLUGSWITCH", "SMART.TAPOPLUG"... */
        char model[64];
        char mac[18];                /* canonical AA:BB:CC:DD:EE:FF */
        char device_id[KASA_STRING_MAX];
        KasaEncrypt encrypt;
        int lv;                      /* KLAP version: 1 unless lv >= 2 or new_klap */
        uint16_t http_port;          /* 80 when absent */
        bool https;
} KasaTdpInfo;

/* The probe: header + {"params":{"rsa_key":PEM}} (a key the devices want
 * to see; kasamond never reads what they encrypt with it, so the key is a
 * fixed one whose private half was thrown away). */
int kasa_tdp_probe(uint8_t **ret, size_t *ret_len);
/* -EBADMSG with err saying why for anything but a well-formed reply. */
int kasa_tdp_parse(const uint8_t *data, size_t len, KasaTdpInfo *ret, KasaError *err);
/* Wraps a JSON payload in the header (kasa-sim's replies). */
int kasa_tdp_encode(const char *json, uint8_t **ret, size_t *ret_len);
/* The JSON payload of a datagram after checking its header; for kasa-sim. */
int kasa_tdp_payload(const uint8_t *data, size_t len, const char **ret, size_t *ret_len, KasaError *err);
