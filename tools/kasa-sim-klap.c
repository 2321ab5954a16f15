/* SPDX-License-Identifier: MIT */
/*
 * A simulated device on newer firmware: KLAP v1 or v2 over HTTP on its TCP
 * port, the IOT dialect inside, and discovery on UDP 20002. Like a real
 * plug it keeps one session: a new handshake1 replaces it, a request
 * outside it (no or another cookie, expired, never confirmed by
 * handshake2) is answered 403. An AES client's handshake (POST /app) is
 * answered error_code 1003, as KLAP firmware answers it.
 */

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "kasa-sim.h"
#include "kasa-tdp.h"
#include "kasa-time.h"
#include "macro.h"

int sim_klap_setup(SimDevice *d, unsigned version, const char *user, const char *password) {
        int r;

        if (version != KLAP_V1 && version != KLAP_V2)
                return -EINVAL;
        r = klap_auth_init(&d->klap.auth, version, user ?: "", password ?: "");
        if (r < 0)
                return r;
        d->klap.version = version;
        d->udp_port = SIM_TDP_PORT;
        if (!d->klap.timeout_sec)
                d->klap.timeout_sec = SIM_KLAP_TIMEOUT_DEFAULT;
        sim_klap_expire(d);
        return 0;
}

void sim_klap_expire(SimDevice *d) {
        d->klap.cookie[0] = 0;
        d->klap.established = false;
}

static int respond(int status, const char *set_cookie, const uint8_t *body, size_t len, uint8_t **ret,
                   size_t *ret_len) {
        int r = http1_response_write(status, set_cookie, false, body, len, ret, ret_len);
        return r < 0 ? r : 1;
}

static bool in_session(SimDevice *d, const Http1Message *req) {
        return d->klap.cookie[0] && strcmp(req->cookie, d->klap.cookie) == 0;
}

static int handshake1(SimDevice *d, const Http1Message *req, uint8_t **ret, size_t *ret_len) {
        uint8_t reply[KLAP_HANDSHAKE1_REPLY_SIZE];
        char set_cookie[96];
        int r;

        if (req->body_len != KLAP_SEED_SIZE)
                return respond(400, NULL, NULL, 0, ret, ret_len);
        if (d->faults & SIM_FAULT_HANDSHAKE_HANG)
                return 0;
        memcpy(d->klap.local, req->body, KLAP_SEED_SIZE);
        for (size_t i = 0; i < KLAP_SEED_SIZE; i++)
                d->klap.remote[i] = (uint8_t) sim_device_random(d);
        snprintf(d->klap.cookie, sizeof(d->klap.cookie), "TP_SESSIONID=%016llX%016llX",
                 (unsigned long long) sim_device_random(d), (unsigned long long) sim_device_random(d));
        d->klap.established = false;
        memcpy(reply, d->klap.remote, KLAP_SEED_SIZE);
        r = klap_server_hash(&d->klap.auth, d->klap.local, d->klap.remote, reply + KLAP_SEED_SIZE);
        if (r < 0)
                return r;
        snprintf(set_cookie, sizeof(set_cookie), "%s;TIMEOUT=%u", d->klap.cookie, d->klap.timeout_sec);
        return respond(200, set_cookie, reply, sizeof(reply), ret, ret_len);
}

static int handshake2(SimDevice *d, const Http1Message *req, uint8_t **ret, size_t *ret_len) {
        uint8_t want[KLAP_HASH_SIZE];
        int r;

        if (!in_session(d, req) || req->body_len != KLAP_HASH_SIZE)
                return respond(403, NULL, NULL, 0, ret, ret_len);
        r = klap_client_hash(&d->klap.auth, d->klap.local, d->klap.remote, want);
        if (r < 0)
                return r;
        if (memcmp(want, req->body, KLAP_HASH_SIZE) != 0) {
                sim_klap_expire(d);
                return respond(403, NULL, NULL, 0, ret, ret_len);
        }
        r = klap_session_init(&d->klap.session, &d->klap.auth, d->klap.local, d->klap.remote);
        if (r < 0)
                return r;
        d->klap.established = true;
        d->klap.expires = sim_now(CLOCK_MONOTONIC) + (uint64_t) d->klap.timeout_sec * USEC_PER_SEC;
        d->klap.handshakes++;
        return respond(200, NULL, NULL, 0, ret, ret_len);
}

static int request(SimDevice *d, const Http1Message *req, int32_t seq, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *plain = NULL, *reply = NULL;
        _cleanup_free_ uint8_t *body = NULL;
        size_t plain_len, body_len;
        KasaError err;
        int r;

        if (!in_session(d, req) || !d->klap.established)
                return respond(403, NULL, NULL, 0, ret, ret_len);
        if (sim_now(CLOCK_MONOTONIC) >= d->klap.expires) {
                sim_klap_expire(d);
                return respond(403, NULL, NULL, 0, ret, ret_len);
        }
        r = klap_decrypt(&d->klap.session, seq, req->body, req->body_len, &plain, &plain_len, &err);
        if (r < 0) {
                fprintf(stderr, "kasa-sim: %s: refusing a KLAP request: %s\n", d->address, err.message);
                return respond(400, NULL, NULL, 0, ret, ret_len);
        }
        r = (d->profile->smart ? sim_smart_handle : sim_device_handle)(d, plain, plain_len, &reply);
        if (r < 0)
                return respond(400, NULL, NULL, 0, ret, ret_len);
        r = klap_seal(&d->klap.session, seq, reply, strlen(reply), &body, &body_len);
        if (r < 0)
                return r;
        if (d->faults & SIM_FAULT_BAD_SIGNATURE)
                body[0] ^= 0x5a;
        return respond(200, NULL, body, body_len, ret, ret_len);
}

int sim_klap_handle(SimDevice *d, const Http1Message *req, uint8_t **ret, size_t *ret_len) {
        const char *query;
        long long seq;
        char *end;

        *ret = NULL;
        if (strcmp(req->method, "POST") != 0)
                return respond(405, NULL, NULL, 0, ret, ret_len);
        if (strcmp(req->target, "/app/handshake1") == 0)
                return handshake1(d, req, ret, ret_len);
        if (strcmp(req->target, "/app/handshake2") == 0)
                return handshake2(d, req, ret, ret_len);
        if (strcmp(req->target, "/app") == 0) {
                static const char klap_only[] = "{\"error_code\":1003}";
                int r = http1_response_write_type(200, HTTP1_JSON, NULL, false, (const uint8_t *) klap_only,
                                                  sizeof(klap_only) - 1, ret, ret_len);
                return r < 0 ? r : 1;
        }
        if (strncmp(req->target, "/app/request?", 13) == 0) {
                query = req->target + 13;
                if (strncmp(query, "seq=", 4) != 0)
                        return respond(400, NULL, NULL, 0, ret, ret_len);
                errno = 0;
                seq = strtoll(query + 4, &end, 10);
                if (errno || end == query + 4 || *end || seq < INT32_MIN || seq > INT32_MAX)
                        return respond(400, NULL, NULL, 0, ret, ret_len);
                return request(d, req, (int32_t) seq, ret, ret_len);
        }
        return respond(404, NULL, NULL, 0, ret, ret_len);
}

int sim_tdp_answer(SimDevice *d, const uint8_t *probe, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_(json_decrefp) json_t *req = NULL, *reply = NULL;
        _cleanup_free_ char *json = NULL;
        const char *payload;
        size_t payload_len;
        char mac[18];
        KasaError err;
        int r;

        r = kasa_tdp_payload(probe, len, &payload, &payload_len, &err);
        if (r < 0)
                return r;
        req = json_loadb(payload, payload_len, 0, NULL);
        if (!json_is_object(json_object_get(req, "params")))
                return -EBADMSG;
        /* The 20002 reply spells the MAC with dashes, as the devices do. */
        snprintf(mac, sizeof(mac), "%s", d->mac);
        for (char *p = mac; *p; p++)
                if (*p == ':')
                        *p = '-';
        reply = json_pack("{s:i,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:{s:b,s:s,s:i,s:i}}}", "error_code", 0, "result",
                          "device_id", d->device_id, "owner", "", "device_type",
                          d->profile->smart ? "SMART.TAPOPLUG" : "IOT.SMARTPLUGSWITCH",
                          "device_model", d->profile->model, "ip", d->address, "mac", mac, "factory_default",
                          false, "mgt_encrypt_schm", "is_support_https", false, "encrypt_type",
                          d->aes.login_version ? "AES" : "KLAP", "http_port", (int) d->port, "lv",
                          (int) (d->aes.login_version ?: d->klap.version));
        json = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
        if (!json)
                return -ENOMEM;
        return kasa_tdp_encode(json, ret, ret_len);
}
