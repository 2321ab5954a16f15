/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The "smart" JSON dialect of Tapo plugs (P100, P110, P115, P300) and of
 * newer Kasa models (KP125M, EP25): {"method":..,"params":..} requests,
 * {"error_code":..,"result":..} replies, several methods batched in one
 * "multipleRequest", a strip's outlet addressed through "control_child".
 * Strings a user types (nickname, ssid) travel base64-encoded. Pure code:
 * no sockets, no D-Bus.
 *
 * Replies are parsed into the same KasaResponse as the IOT dialect's, with
 * the same internal units (kasa-proto.h: mW, mV, mA, mWh), so the daemon
 * polls and switches both alike. The requests are always multipleRequest:
 * its replies name each method, where a bare reply does not.
 */

#include <stdbool.h>
#include <stddef.h>

#include "kasa-proto.h"

typedef enum KasaSmartQuery {
        KASA_SMART_DEVICE_INFO   = 1 << 0, /* get_device_info */
        KASA_SMART_ENERGY_USAGE  = 1 << 1, /* get_energy_usage: current_power mW, today/month_energy Wh */
        KASA_SMART_CURRENT_POWER = 1 << 2, /* get_current_power: current_power W */
        KASA_SMART_EMETER_DATA   = 1 << 3, /* get_emeter_data: power_mw, voltage_mv, current_ma, energy_wh */
        KASA_SMART_CHILD_LIST    = 1 << 4, /* get_child_device_list */
} KasaSmartQuery;

/* A smart device's error_code for a method it does not know. */
#define KASA_SMART_ERR_UNKNOWN_METHOD (-10000)

/* Builders return a NUL-terminated JSON string owned by the caller, or NULL
 * on allocation failure. child_id: NULL for the device itself, else the
 * request goes to that child inside control_child, as a multipleRequest
 * of its own (whose reply names the method, as at the top level). */
char *kasa_smart_request_query(unsigned queries, const char *child_id);
char *kasa_smart_request_set_on(bool on, const char *child_id);
char *kasa_smart_request_set_nickname(const char *nickname, const char *child_id);

/* get_energy_data: the energy per interval_min minutes (1440: per day)
 * from start_s to end_s (UTC seconds). Devices answer a daily interval
 * for a quarter at a time, from its first day. */
char *kasa_smart_request_energy_data(int64_t start_s, int64_t end_s, unsigned interval_min, const char *child_id);

/* Parse a reply to one of the requests above. Fills sysinfo (from
 * get_device_info, children from get_child_device_list), realtime (from
 * the energy methods: get_emeter_data when it answered, else
 * get_energy_usage, whose month_energy is the counter, with power from
 * get_current_power if get_energy_usage has none), relay_err and
 * alias_err (set_device_info), energy_data (get_energy_data: its data in
 * Wh, each 0..KASA_ENERGY_MAX_MWH, at most KASA_ENERGY_DATA_MAX of them,
 * the interval 60, 1440 or 43200), and the *_err of whatever was not
 * answered as KASA_ERR_ABSENT. A top-level error_code fails every method
 * with it. sysinfo.has_emeter says an energy method answered. Returns 0,
 * -EBADMSG with *err saying what and where, or -ENOMEM. */
int kasa_smart_response_parse(const char *json, size_t len, KasaResponse *ret, KasaError *err);

/* Whether a reply to an IOT request comes from a smart-dialect device
 * (a top-level error_code and no IOT module): the daemon's hint to switch
 * dialects for a device whose dialect it does not know. */
bool kasa_smart_is_reply(const char *json, size_t len);

/* Strict base64 (RFC 4648, padding required, no whitespace). Returns the
 * decoded length, -EBADMSG for bad input, -ENOBUFS if out_size is short. */
int kasa_base64_decode(const char *in, size_t len, char *out, size_t out_size);
/* NUL-terminated, owned by the caller; NULL on allocation failure. */
char *kasa_base64_encode(const char *in, size_t len);
