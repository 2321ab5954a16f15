/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The Kasa legacy "IOT" protocol: XOR autokey cipher, 4-byte length
 * framing on TCP 9999, unframed datagrams on UDP 9999, JSON requests and
 * responses. Pure codec: no sockets, no D-Bus, no policy.
 *
 * Internal units (every reading is normalised to these at the protocol
 * edge, whichever unit style the device speaks):
 *   power    milliwatts       (int64)
 *   voltage  millivolts       (int64)
 *   current  milliamperes     (int64)
 *   energy   milliwatt-hours  (int64)
 * Floats from hardware-1 devices (W, V, A, kWh) are rounded to the nearest
 * unit above; integer devices (mW, mV, mA, Wh) convert exactly.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KASA_PORT 9999
#define KASA_XOR_KEY 171
#define KASA_FRAME_HEADER_SIZE 4
/* Real devices answer with a few KiB at most (a strip's sysinfo); anything
 * far beyond that is a broken or hostile peer, not a bigger reply. */
#define KASA_FRAME_MAX_DEFAULT (64u * 1024u)
/* Longest string field we keep from a device (alias, ids, versions). */
#define KASA_STRING_MAX 256
/* Strips have at most a handful of outlets; a reply claiming more is junk. */
#define KASA_CHILDREN_MAX 16
/* Upper bound on day/month statistics entries in one reply. */
#define KASA_STATS_MAX 64

/* Clear, human-readable reason for a refused input. */
typedef struct KasaError {
        char message[192];
} KasaError;

/* ---- cipher and framing ---- */

void kasa_encrypt(uint8_t *buf, size_t len);
void kasa_decrypt(uint8_t *buf, size_t len);

/* Frame a JSON payload for TCP: be32 length + encrypted payload. */
int kasa_frame_encode(const char *payload, size_t len, uint8_t **ret_buf, size_t *ret_len);

/* Incremental frame decoder: bytes may arrive in any chunking. */
typedef struct KasaFrameDecoder {
        size_t max_size;
        uint8_t header[KASA_FRAME_HEADER_SIZE];
        size_t header_have;
        uint8_t *payload;
        size_t payload_size;
        size_t payload_have;
} KasaFrameDecoder;

void kasa_frame_decoder_init(KasaFrameDecoder *d, size_t max_size);
void kasa_frame_decoder_reset(KasaFrameDecoder *d);
/* Consumes up to len bytes (*ret_consumed says how many). Returns 1 when a
 * frame is complete: *ret_frame is the decrypted payload, NUL-terminated,
 * owned by the caller, and the decoder is ready for the next frame.
 * Returns 0 when more bytes are needed. Returns -EMSGSIZE for a length
 * beyond max_size and -EBADMSG for a zero length; the decoder must then be
 * reset (the stream is unusable, and further feeds fail with -EBADMSG). */
int kasa_frame_decoder_feed(KasaFrameDecoder *d, const uint8_t *data, size_t len,
                            size_t *ret_consumed, char **ret_frame, size_t *ret_frame_len,
                            KasaError *err);
/* True while a frame is partially received. */
bool kasa_frame_decoder_busy(const KasaFrameDecoder *d);

/* ---- requests ---- */

typedef enum KasaQuery {
        KASA_QUERY_SYSINFO  = 1 << 0,
        KASA_QUERY_REALTIME = 1 << 1,
        KASA_QUERY_TIME     = 1 << 2,
} KasaQuery;

/* All builders return a NUL-terminated JSON string owned by the caller, or
 * NULL on allocation failure. child_id may be NULL; when set, the request
 * carries "context":{"child_ids":[child_id]} to address one strip outlet. */
char *kasa_request_query(unsigned queries, const char *child_id);
char *kasa_request_set_relay(bool on, const char *child_id);
char *kasa_request_set_alias(const char *alias, const char *child_id);
char *kasa_request_set_led_off(bool off);
char *kasa_request_reboot(unsigned delay_s);
char *kasa_request_daystat(int year, int month, const char *child_id);
char *kasa_request_monthstat(int year, const char *child_id);
char *kasa_request_erase_emeter(const char *child_id);

/* ---- responses ---- */

/* The most energy a device reports or kasamond adds in one step, in mWh:
 * 1 GWh, beyond any plug, and far enough from INT64_MAX to add up. */
#define KASA_ENERGY_MAX_MWH (INT64_C(1000) * 1000 * 1000 * 1000)

/* err_code of a module that did not appear in the reply at all. */
#define KASA_ERR_ABSENT INT32_MIN

typedef struct KasaChild {
        char id[KASA_STRING_MAX];
        char alias[KASA_STRING_MAX];
        bool on;
        int64_t on_time;           /* seconds the relay has been on */
} KasaChild;

typedef struct KasaSysinfo {
        char alias[KASA_STRING_MAX];
        char model[KASA_STRING_MAX];
        char mac[18];              /* canonical upper-case AA:BB:CC:DD:EE:FF */
        char device_id[KASA_STRING_MAX];
        char hw_id[KASA_STRING_MAX];
        char oem_id[KASA_STRING_MAX];
        char hw_ver[KASA_STRING_MAX];
        char sw_ver[KASA_STRING_MAX];
        char type[KASA_STRING_MAX];    /* "type" or "mic_type" */
        char feature[KASA_STRING_MAX];
        bool has_emeter;           /* feature contains "ENE" */
        bool has_relay;            /* relay_state present (plugs, not strips) */
        bool on;                   /* relay_state */
        bool led_off;
        int64_t on_time;
        bool has_rssi;
        int32_t rssi;
        size_t n_children;
        KasaChild children[KASA_CHILDREN_MAX];
} KasaSysinfo;

typedef enum KasaUnitStyle {
        KASA_UNITS_FLOAT = 1,      /* power W, voltage V, current A, total kWh */
        KASA_UNITS_MILLI = 2,      /* power_mw, voltage_mv, current_ma, total_wh */
} KasaUnitStyle;

typedef struct KasaRealtime {
        KasaUnitStyle style;
        int64_t power_mw;
        int64_t voltage_mv;
        int64_t current_ma;
        int64_t total_mwh;
} KasaRealtime;

typedef struct KasaStat {
        int year, month, day;      /* day is 0 in month statistics */
        int64_t energy_mwh;
} KasaStat;

/* Entries of the smart dialect's get_energy_data at a daily interval:
 * a quarter's days. */
#define KASA_ENERGY_DATA_MAX 92

/* get_energy_data: one value per interval from start_s. */
typedef struct KasaEnergyData {
        int64_t start_s;           /* start_timestamp, as the device echoes it */
        int64_t end_s;
        int64_t interval_min;      /* 60, 1440 or 43200 */
        size_t n;
        int64_t energy_mwh[KASA_ENERGY_DATA_MAX];
} KasaEnergyData;

typedef struct KasaTime {
        int year, month, mday, hour, min, sec;
} KasaTime;

typedef struct KasaResponse {
        /* err_code per module/method; KASA_ERR_ABSENT when not in reply */
        int32_t sysinfo_err;
        int32_t realtime_err;
        int32_t relay_err;         /* system.set_relay_state */
        int32_t alias_err;         /* system.set_dev_alias */
        int32_t daystat_err;
        int32_t monthstat_err;
        int32_t time_err;
        int32_t generic_err;       /* other commands: first err_code found */
        int32_t energy_data_err;   /* get_energy_data (smart dialect) */

        KasaSysinfo sysinfo;       /* valid when sysinfo_err == 0 */
        KasaRealtime realtime;     /* valid when realtime_err == 0 */
        size_t n_stats;
        KasaStat stats[KASA_STATS_MAX]; /* daystat or monthstat */
        KasaTime time;
        KasaEnergyData energy_data; /* valid when energy_data_err == 0 */
} KasaResponse;

/* Parse a decrypted JSON reply. Returns 0 when the JSON is well formed and
 * every field present has the right type and a sane value, otherwise
 * -EBADMSG with *err saying what and where, or -ENOMEM (a reply of
 * thousands of values when memory is short), *err saying so too. A module
 * that answered with a non-zero err_code is not a parse error: its *_err
 * says so. */
int kasa_response_parse(const char *json, size_t len, KasaResponse *ret, KasaError *err);

/* Parse a datagram from UDP discovery (unframed, encrypted sysinfo). */
int kasa_discovery_parse(const uint8_t *datagram, size_t len, KasaSysinfo *ret, KasaError *err);
/* The discovery probe: encrypted {"system":{"get_sysinfo":{}}}, no prefix. */
int kasa_discovery_probe(uint8_t **ret_buf, size_t *ret_len);

/* Normalise a MAC into AA:BB:CC:DD:EE:FF; accepts ':' or '-' or none. */
int kasa_mac_normalize(const char *in, char out[static 18]);
const char *kasa_err_to_string(int32_t err_code);
