/* SPDX-License-Identifier: MIT */
/*
 * The smart dialect of a simulated Tapo plug (profile "p110") or strip
 * ("p300"), inside its KLAP session: get_device_info, get_energy_usage,
 * get_energy_data (daily), get_current_power,
 * set_device_info (device_on, nickname), and multipleRequest of them;
 * a strip adds get_child_device_list and control_child, whose requestData
 * is any of these (a multipleRequest too) for one outlet.
 * Replies have the fields, types and units of a real P110: nickname and
 * ssid in base64, current_power in mW in get_energy_usage but in W in
 * get_current_power, energy in whole Wh. The P110 knows no
 * get_emeter_data, the P300 (no meter) none of the energy methods; they
 * answer -10000 as for any unknown method.
 */

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kasa-sim.h"
#include "kasa-smart.h"
#include "kasa-time.h"
#include "macro.h"

#define SMART_ERR_JSON (-1003)     /* the request is not smart-dialect JSON */
#define SMART_ERR_PARAMS (-1008)

static json_t *b64(const char *s) {
        _cleanup_free_ char *e = kasa_base64_encode(s, strlen(s));
        return e ? json_string(e) : NULL;
}

static void dashed_mac(const SimDevice *d, char mac[static 18]) {
        snprintf(mac, 18, "%s", d->mac);
        for (char *p = mac; *p; p++)
                if (*p == ':')
                        *p = '-';
}

static bool is_strip(const SimDevice *d) {
        return d->profile->n_outlets > 0;
}

static json_int_t on_time(const SimOutlet *o) {
        return (json_int_t) (o->on ? (sim_now(CLOCK_MONOTONIC) - o->on_since) / USEC_PER_SEC : 0);
}

/* A strip's get_device_info has no relay of its own: its outlets'
 * device_on are in get_child_device_list. */
static json_t *device_info(SimDevice *d) {
        const SimOutlet *o = &d->outlets[0];
        json_t *info;
        char mac[18];

        dashed_mac(d, mac);
        info = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:o,s:i,s:i,s:i,s:i,s:s,s:s,s:s,s:s,s:o,"
                         "s:b,s:{s:s,s:{}},s:b,s:s,s:s}",
                         "device_id", d->device_id, "fw_ver", d->profile->sw_ver, "hw_ver", d->profile->hw_ver,
                         "type", "SMART.TAPOPLUG", "model", d->profile->model, "mac", mac, "hw_id", d->hw_id,
                         "fw_id", "00000000000000000000000000000000", "oem_id", d->oem_id, "ip", d->address,
                         "time_diff", 0, "ssid", b64("kasa-sim"), "rssi", d->rssi, "signal_level", 3, "latitude", 0,
                         "longitude", 0, "lang", "en_US", "avatar", is_strip(d) ? "" : "plug", "region", "UTC",
                         "specs", "", "nickname", b64(d->alias), "has_set_location_info", false, "default_states",
                         "type", "last_states", "state", "overheated", false, "power_protection_status", "normal",
                         "location", "");
        if (info && !is_strip(d)) {
                json_object_set_new(info, "device_on", json_boolean(o->on));
                json_object_set_new(info, "on_time", json_integer(on_time(o)));
        }
        return info;
}

/* One outlet as a P300 lists it: its own device_id (the strip's and a
 * two-digit index), position from 1, the strip's id as
 * original_device_id. */
static json_t *child_info(SimDevice *d, unsigned k) {
        const SimOutlet *o = &d->outlets[k];
        char id[SIM_CHILD_ID_MAX], mac[18];

        sim_device_child_id(d, k, id);
        dashed_mac(d, mac);
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:b,s:I,s:i,s:i,s:s,s:s,s:s,s:s,s:{s:s,s:{}},s:i,s:s}",
                         "device_id", id, "original_device_id", d->device_id, "type", "SMART.TAPOPLUG", "model",
                         d->profile->model, "category", "plug.powerstrip.sub-plug", "fw_ver", d->profile->sw_ver,
                         "hw_ver", d->profile->hw_ver, "nickname", b64(o->alias), "device_on", o->on, "on_time",
                         on_time(o), "position", (int) k + 1, "slot_number", (int) d->n_outlets, "mac", mac, "hw_id",
                         d->hw_id, "oem_id", d->oem_id, "overheat_status", "normal", "default_states", "type",
                         "last_states", "state", "auto_off_remain_time", 0, "avatar", "");
}

static json_t *child_list(SimDevice *d) {
        json_t *list = json_array();

        for (unsigned k = 0; list && k < d->n_outlets; k++)
                if (json_array_append_new(list, child_info(d, k)) < 0) {
                        json_decref(list);
                        return NULL;
                }
        return list ? json_pack("{s:o,s:i,s:i}", "child_device_list", list, "start_index", 0, "sum",
                                (int) d->n_outlets)
                    : NULL;
}

/* Energy of the local day or month now, in mWh, from the day list. */
static int64_t energy_since(const SimOutlet *o, bool month) {
        time_t now = time(NULL);
        struct tm tm;
        int64_t sum = 0;

        localtime_r(&now, &tm);
        for (size_t i = 0; i < o->n_days; i++) {
                const SimDay *e = &o->days[i];
                if (e->year == tm.tm_year + 1900 && e->month == tm.tm_mon + 1 && (month || e->day == tm.tm_mday))
                        sum += e->mwh;
        }
        return sum;
}

static int64_t power_mw(SimDevice *d) {
        const SimOutlet *o = &d->outlets[0];
        return o->on ? o->load_mw : 0;
}

static json_t *energy_usage(SimDevice *d) {
        const SimOutlet *o = &d->outlets[0];
        time_t now = time(NULL);
        struct tm tm;
        char local[32];

        localtime_r(&now, &tm);
        strftime(local, sizeof(local), "%Y-%m-%d %H:%M:%S", &tm);
        return json_pack("{s:i,s:i,s:I,s:I,s:s,s:[iii],s:I}", "today_runtime", 0, "month_runtime", 0,
                         "today_energy", (json_int_t) (energy_since(o, false) / 1000), "month_energy",
                         (json_int_t) (energy_since(o, true) / 1000), "local_time", local, "electricity_charge", 0,
                         0, 0, "current_power", (json_int_t) power_mw(d));
}

/* get_energy_data at a daily interval: one whole Wh value per local day
 * from the day of start_timestamp, for the days that start before
 * end_timestamp, as the day statistics hold them (0 for a day without).
 * Other intervals are not simulated. */
static int energy_data(SimDevice *d, json_t *params, json_t **ret) {
        const SimOutlet *o = &d->outlets[0];
        int64_t start, end, interval;
        json_t *data;
        char local[32];
        struct tm tm;
        time_t now = time(NULL);

        if (sim_get_arg(params, "start_timestamp", 0, INT64_C(1) << 40, &start) < 0 ||
            sim_get_arg(params, "end_timestamp", 0, INT64_C(1) << 40, &end) < 0 ||
            sim_get_arg(params, "interval", 1, 43200, &interval) < 0 || end < start)
                return SMART_ERR_PARAMS;
        if (interval != 1440)
                return SMART_ERR_PARAMS;
        data = json_array();
        if (!data)
                return -ENOMEM;
        for (unsigned i = 0; i < KASA_ENERGY_DATA_MAX; i++) {
                time_t t = (time_t) start;
                int64_t mwh = 0;

                /* Noon of the i-th day: DST cannot move it off its date. */
                localtime_r(&t, &tm);
                tm.tm_mday += (int) i;
                tm.tm_hour = 12;
                tm.tm_min = tm.tm_sec = 0;
                tm.tm_isdst = -1;
                t = mktime(&tm);
                tm.tm_hour = 0;
                tm.tm_isdst = -1;
                if (t == (time_t) -1 || mktime(&tm) >= end)
                        break;
                for (size_t k = 0; k < o->n_days; k++)
                        if (o->days[k].year == tm.tm_year + 1900 && o->days[k].month == tm.tm_mon + 1 &&
                            o->days[k].day == tm.tm_mday)
                                mwh = o->days[k].mwh;
                json_array_append_new(data, json_integer(mwh / 1000));
        }
        localtime_r(&now, &tm);
        strftime(local, sizeof(local), "%Y-%m-%d %H:%M:%S", &tm);
        *ret = json_pack("{s:I,s:I,s:i,s:s,s:o}", "start_timestamp", (json_int_t) start, "end_timestamp",
                         (json_int_t) end, "interval", 1440, "local_time", local, "data", data);
        return *ret ? 0 : -ENOMEM;
}

static json_t *handle(SimDevice *d, int child, json_t *root, unsigned depth);

/* set_device_info: of a plug, or of outlet `child` of a strip (a strip
 * itself has no relay, as a P300 has none). */
static int set_info(SimDevice *d, int child, json_t *params) {
        json_t *on = json_object_get(params, "device_on"), *nick = json_object_get(params, "nickname");
        char alias[SIM_ALIAS_MAX];
        int n = 0;

        if ((!on && !nick) || (on && !json_is_boolean(on)) || (nick && !json_is_string(nick)))
                return SMART_ERR_PARAMS;
        if (on && is_strip(d) && child < 0)
                return SMART_ERR_PARAMS;
        if (nick) {
                n = kasa_base64_decode(json_string_value(nick), json_string_length(nick), alias, sizeof(alias) - 1);
                if (n <= 0)
                        return SMART_ERR_PARAMS;
                alias[n] = 0;
        }
        if (on)
                sim_device_set_relay(d, child < 0 ? 0 : (unsigned) child, json_is_true(on));
        if (nick)
                snprintf(child < 0 ? d->alias : d->outlets[child].alias, SIM_ALIAS_MAX, "%s", alias);
        return 0;
}

/* control_child: requestData, any request of the dialect, for the outlet
 * named by device_id; its reply is responseData. */
static int control_child(SimDevice *d, json_t *params, unsigned depth, json_t **ret) {
        const char *id = json_string_value(json_object_get(params, "device_id"));
        json_t *inner = json_object_get(params, "requestData"), *reply;

        if (!is_strip(d))
                return KASA_SMART_ERR_UNKNOWN_METHOD;
        if (!id || !json_is_object(inner) || depth > 0)
                return SMART_ERR_PARAMS;
        for (unsigned k = 0; k < d->n_outlets; k++) {
                char cid[SIM_CHILD_ID_MAX];

                sim_device_child_id(d, k, cid);
                if (strcmp(cid, id) != 0)
                        continue;
                reply = handle(d, (int) k, inner, depth + 1);
                if (!reply)
                        return -ENOMEM;
                *ret = json_pack("{s:o}", "responseData", reply);
                return *ret ? 0 : -ENOMEM;
        }
        return SMART_ERR_PARAMS;
}

/* One method, for the device (child < 0) or one of a strip's outlets: its
 * result (NULL for none) and error_code. */
static int call(SimDevice *d, int child, const char *method, json_t *params, unsigned depth, json_t **ret_result) {
        bool meter = d->profile->emeter && child < 0;

        *ret_result = NULL;
        if (strcmp(method, "get_device_info") == 0)
                *ret_result = child < 0 ? device_info(d) : child_info(d, (unsigned) child);
        else if (strcmp(method, "get_child_device_list") == 0 && is_strip(d) && child < 0)
                *ret_result = child_list(d);
        else if (strcmp(method, "control_child") == 0 && child < 0)
                return control_child(d, params, depth, ret_result);
        else if (strcmp(method, "get_energy_usage") == 0 && meter)
                *ret_result = energy_usage(d);
        else if (strcmp(method, "get_energy_data") == 0 && meter)
                return energy_data(d, params, ret_result);
        else if (strcmp(method, "get_current_power") == 0 && meter)
                *ret_result = json_pack("{s:I}", "current_power", (json_int_t) (power_mw(d) / 1000));
        else if (strcmp(method, "set_device_info") == 0)
                return set_info(d, child, params);
        else
                return KASA_SMART_ERR_UNKNOWN_METHOD;
        return *ret_result ? 0 : -ENOMEM;
}

static json_t *multiple(SimDevice *d, int child, json_t *params, unsigned depth) {
        json_t *list = json_object_get(params, "requests"), *one, *responses = json_array();
        size_t i;

        if (!responses)
                return NULL;
        if (!json_is_array(list)) {
                json_decref(responses);
                return json_pack("{s:i}", "error_code", SMART_ERR_PARAMS);
        }
        json_array_foreach(list, i, one) {
                const char *m = json_string_value(json_object_get(one, "method"));
                json_t *result = NULL, *entry;
                int code = m ? call(d, child, m, json_object_get(one, "params"), depth, &result) : SMART_ERR_JSON;

                entry = json_pack("{s:s,s:i}", "method", m ?: "", "error_code", code);
                if (entry && result)
                        json_object_set_new(entry, "result", result);
                else
                        json_decref(result);
                json_array_append_new(responses, entry);
        }
        return json_pack("{s:i,s:{s:o}}", "error_code", 0, "result", "responses", responses);
}

/* The reply to one request (a method or a multipleRequest); NULL: out of
 * memory. */
static json_t *handle(SimDevice *d, int child, json_t *root, unsigned depth) {
        const char *method = json_string_value(json_object_get(root, "method"));
        json_t *result = NULL, *reply;
        int code;

        if (!method)
                /* An IOT request, or junk: what a real one says to those. */
                return json_pack("{s:i}", "error_code", SMART_ERR_JSON);
        if (strcmp(method, "multipleRequest") == 0)
                return multiple(d, child, json_object_get(root, "params"), depth);
        code = call(d, child, method, json_object_get(root, "params"), depth, &result);
        reply = json_pack("{s:i}", "error_code", code);
        if (reply && result)
                json_object_set_new(reply, "result", result);
        else
                json_decref(result);
        return reply;
}

int sim_smart_handle(SimDevice *d, const char *request, size_t len, char **ret_reply) {
        _cleanup_(json_decrefp) json_t *root = json_loadb(request, len, 0, NULL), *reply = NULL;

        if (!root || !json_is_object(root))
                return -EBADMSG;
        sim_device_integrate(d);
        reply = handle(d, -1, root, 0);
        *ret_reply = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
        return *ret_reply ? 0 : -ENOMEM;
}
