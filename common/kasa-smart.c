/* SPDX-License-Identifier: MIT */

#include "kasa-smart.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-fields.h"
#include "kasa-json.h"
#include "macro.h"

/* The getters and fail() of both dialects (kasa-fields.c). */
#define fail kasa_fail
#define get_string kasa_field_string
#define get_int kasa_field_int
#define get_scaled kasa_field_scaled
#define get_bool kasa_field_bool

#define _cleanup_json_ _cleanup_(json_decrefp)

/* Plausible bounds, in internal units, as the IOT parser's. */
#define POWER_MAX_MW    (100LL * 1000 * 1000)
#define VOLTAGE_MAX_MV  (1000LL * 1000)
#define CURRENT_MAX_MA  (1000LL * 1000)


/* ---- base64 ---- */

/* Each character's value plus one; 0 for the bytes that are not base64. A
 * table, not branches: AES securePassthrough carries every request and
 * reply in base64 (BENCHMARKS.md, KLAP poll cost). */
static const uint8_t b64_values[256] = {
        ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8, ['I'] = 9,
        ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17,
        ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
        ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33,
        ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41,
        ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
        ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
        ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

/* Four characters, none of them padding, into w: false if one is not base64. */
static bool b64_quad(const char *in, uint32_t *w) {
        unsigned a = b64_values[(unsigned char) in[0]], b = b64_values[(unsigned char) in[1]],
                 c = b64_values[(unsigned char) in[2]], d = b64_values[(unsigned char) in[3]];

        if (!a || !b || !c || !d)
                return false;
        *w = (uint32_t) (a - 1) << 18 | (uint32_t) (b - 1) << 12 | (uint32_t) (c - 1) << 6 | (uint32_t) (d - 1);
        return true;
}

int kasa_base64_decode(const char *in, size_t len, char *out, size_t out_size) {
        size_t n = 0, pad = 0;
        char last[4];
        uint32_t w;

        if (len % 4 != 0)
                return -EBADMSG;
        if (len == 0)
                return 0;
        /* Every quad but the last has no padding. */
        for (size_t i = 0; i + 4 < len; i += 4) {
                if (!b64_quad(in + i, &w))
                        return -EBADMSG;
                if (n + 3 > out_size)
                        return -ENOBUFS;
                out[n++] = (char) (w >> 16);
                out[n++] = (char) (w >> 8);
                out[n++] = (char) w;
        }
        /* The last may end in one or two '=', which stand for zero bits. */
        memcpy(last, in + len - 4, 4);
        if (last[3] == '=') {
                pad = last[2] == '=' ? 2 : 1;
                last[3] = 'A';
                if (pad == 2)
                        last[2] = 'A';
        }
        if (!b64_quad(last, &w))
                return -EBADMSG;
        /* Bits the padding drops must be zero: one spelling per value. */
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
                return -EBADMSG;
        if (n + 3 - pad > out_size)
                return -ENOBUFS;
        out[n++] = (char) (w >> 16);
        if (pad < 2)
                out[n++] = (char) (w >> 8);
        if (pad < 1)
                out[n++] = (char) w;
        return (int) n;
}

char *kasa_base64_encode(const char *in, size_t n) {
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = n < SIZE_MAX / 2 ? malloc((n + 2) / 3 * 4 + 1) : NULL;
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t w = (uint32_t) (unsigned char) in[i] << 16;
                if (i + 1 < n)
                        w |= (uint32_t) (unsigned char) in[i + 1] << 8;
                if (i + 2 < n)
                        w |= (unsigned char) in[i + 2];
                out[o++] = tab[w >> 18 & 63];
                out[o++] = tab[w >> 12 & 63];
                out[o++] = i + 1 < n ? tab[w >> 6 & 63] : '=';
                out[o++] = i + 2 < n ? tab[w & 63] : '=';
        }
        out[o] = 0;
        return out;
}

static bool utf8_valid_text(const unsigned char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                unsigned char c = s[i];
                size_t k;
                uint32_t cp;

                if (c < 0x20 || c == 0x7f)
                        return false; /* no NUL or control characters in a name */
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        k = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        k = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        k = 3, cp = c & 0x07;
                else
                        return false;
                for (size_t j = 1; j <= k; j++) {
                        if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
                                return false;
                        cp = cp << 6 | (s[i + j] & 0x3f);
                }
                if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += k + 1;
        }
        return true;
}

/* ---- requests ---- */

static char *dump(json_t *request, const char *child_id) {
        if (!request)
                return NULL;
        if (child_id) {
                /* requestData is a multipleRequest too: its reply names
                 * the method, so the parser reads one shape at each level. */
                const char *m = json_string_value(json_object_get(request, "method"));
                json_t *wrapped;

                if (!m || strcmp(m, "multipleRequest") != 0) {
                        wrapped = json_pack("{s:s,s:{s:[o]}}", "method", "multipleRequest", "params", "requests",
                                            request);
                        request = wrapped;
                        if (!request)
                                return NULL;
                }
                wrapped = json_pack("{s:s,s:{s:s,s:O}}", "method", "control_child", "params", "device_id",
                                    child_id, "requestData", request);
                json_decref(request);
                request = wrapped;
                if (!request)
                        return NULL;
        }
        /* Always one multipleRequest: its replies name their methods. */
        _cleanup_json_ json_t *root = json_pack("{s:s,s:{s:[o]}}", "method", "multipleRequest", "params",
                                                "requests", request);
        return root ? json_dumps(root, JSON_COMPACT) : NULL;
}

char *kasa_smart_request_query(unsigned queries, const char *child_id) {
        static const struct {
                unsigned flag;
                const char *method;
        } methods[] = {
                { KASA_SMART_DEVICE_INFO, "get_device_info" },
                { KASA_SMART_ENERGY_USAGE, "get_energy_usage" },
                { KASA_SMART_CURRENT_POWER, "get_current_power" },
                { KASA_SMART_EMETER_DATA, "get_emeter_data" },
                { KASA_SMART_CHILD_LIST, "get_child_device_list" },
        };
        _cleanup_json_ json_t *list = json_array();

        if (!list)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if ((queries & methods[i].flag) &&
                    json_array_append_new(list, json_pack("{s:s,s:n}", "method", methods[i].method, "params")) < 0)
                        return NULL;
        if (!child_id) {
                _cleanup_json_ json_t *root = json_pack("{s:s,s:{s:O}}", "method", "multipleRequest", "params",
                                                        "requests", list);
                return root ? json_dumps(root, JSON_COMPACT) : NULL;
        }
        /* A child is asked through control_child, whose requestData is a
         * multipleRequest of its own. */
        return dump(json_pack("{s:s,s:{s:O}}", "method", "multipleRequest", "params", "requests", list), child_id);
}

char *kasa_smart_request_energy_data(int64_t start_s, int64_t end_s, unsigned interval_min, const char *child_id) {
        return dump(json_pack("{s:s,s:{s:I,s:I,s:i}}", "method", "get_energy_data", "params", "start_timestamp",
                              (json_int_t) start_s, "end_timestamp", (json_int_t) end_s, "interval",
                              (int) interval_min),
                    child_id);
}

char *kasa_smart_request_set_on(bool on, const char *child_id) {
        return dump(json_pack("{s:s,s:{s:b}}", "method", "set_device_info", "params", "device_on", on), child_id);
}

char *kasa_smart_request_set_nickname(const char *nickname, const char *child_id) {
        _cleanup_free_ char *b64 = kasa_base64_encode(nickname, strlen(nickname));

        if (!b64)
                return NULL;
        return dump(json_pack("{s:s,s:{s:s}}", "method", "set_device_info", "params", "nickname", b64), child_id);
}

/* ---- replies ---- */


/* nickname and ssid: base64 of UTF-8 text. */
static int get_base64_text(const KjTok *obj, const char *where, const char *key, char *out, size_t out_size,
                           KasaError *err) {
        char raw[KASA_STRING_MAX * 2];
        int r, n;

        r = get_string(obj, where, key, false, raw, sizeof(raw), err);
        if (r <= 0)
                return r;
        n = kasa_base64_decode(raw, strlen(raw), out, out_size - 1);
        if (n == -ENOBUFS)
                return fail(err, "%s: field \"%s\" decodes to more than %zu bytes", where, key, out_size - 1);
        if (n < 0)
                return fail(err, "%s: field \"%s\" is not base64", where, key);
        if (!utf8_valid_text((const unsigned char *) out, (size_t) n))
                return fail(err, "%s: field \"%s\" is not UTF-8 text", where, key);
        out[n] = 0;
        return 1;
}




static int get_error_code(const KjTok *obj, const char *where, int32_t *out, KasaError *err) {
        int64_t code;
        int r = get_int(obj, where, "error_code", true, INT32_MIN + 1, INT32_MAX, &code, err);

        if (r < 0)
                return r;
        *out = (int32_t) code;
        return 0;
}

static int parse_device_info(const KjTok *di, KasaSysinfo *ret, KasaError *err) {
        static const char where[] = "get_device_info";
        char mac[KASA_STRING_MAX], ssid[KASA_STRING_MAX];
        int64_t v;
        int r;

        memset(ret, 0, offsetof(KasaSysinfo, children));
        if (!kj_is_object(di))
                return fail(err, "%s: result must be an object", where);
        r = get_string(di, where, "device_id", true, ret->device_id, sizeof(ret->device_id), err);
        if (r < 0)
                return r;
        if (!ret->device_id[0])
                return fail(err, "%s: field \"device_id\" is empty", where);
        r = get_string(di, where, "model", true, ret->model, sizeof(ret->model), err);
        if (r < 0)
                return r;
        if (!ret->model[0])
                return fail(err, "%s: field \"model\" is empty", where);
        r = get_string(di, where, "mac", true, mac, sizeof(mac), err);
        if (r < 0)
                return r;
        if (kasa_mac_normalize(mac, ret->mac) < 0)
                return fail(err, "%s: \"%.32s\" is not a MAC address", where, mac);
        const struct {
                const char *key;
                char *out;
                size_t size;
        } optional[] = {
                { "type", ret->type, sizeof(ret->type) },
                { "hw_id", ret->hw_id, sizeof(ret->hw_id) },
                { "oem_id", ret->oem_id, sizeof(ret->oem_id) },
                { "hw_ver", ret->hw_ver, sizeof(ret->hw_ver) },
                { "fw_ver", ret->sw_ver, sizeof(ret->sw_ver) },
        };
        for (size_t i = 0; i < ELEMENTSOF(optional); i++) {
                r = get_string(di, where, optional[i].key, false, optional[i].out, optional[i].size, err);
                if (r < 0)
                        return r;
        }
        r = get_base64_text(di, where, "nickname", ret->alias, sizeof(ret->alias), err);
        if (r < 0)
                return r;
        /* Not kept, but a device sending junk there is not trusted either. */
        r = get_base64_text(di, where, "ssid", ssid, sizeof(ssid), err);
        if (r < 0)
                return r;
        r = get_bool(di, where, "device_on", &ret->on, err);
        if (r < 0)
                return r;
        ret->has_relay = r > 0;
        r = get_int(di, where, "on_time", false, 0, INT32_MAX, &ret->on_time, err);
        if (r < 0)
                return r;
        r = get_int(di, where, "rssi", false, -200, 0, &v, err);
        if (r < 0)
                return r;
        ret->has_rssi = r > 0;
        ret->rssi = r > 0 ? (int32_t) v : 0;
        return 0;
}

static int parse_child_list(const KjTok *res, KasaSysinfo *ret, KasaError *err) {
        const KjTok *list;

        if (!kj_is_object(res))
                return fail(err, "get_child_device_list: result must be an object");
        list = kj_object_get(res, "child_device_list");
        if (!kj_is_array(list))
                return fail(err, "get_child_device_list: \"child_device_list\" must be an array");
        if (list->count > KASA_CHILDREN_MAX)
                return fail(err, "get_child_device_list: %u children, limit %d", list->count, KASA_CHILDREN_MAX);
        for (size_t i = 0; i < list->count; i++) {
                const KjTok *c = kj_array_get(list, i);
                KasaChild *k = &ret->children[i];
                char where[64];
                int r;

                snprintf(where, sizeof(where), "get_child_device_list[%zu]", i);
                *k = (KasaChild) {};
                if (!kj_is_object(c))
                        return fail(err, "%s: must be an object", where);
                r = get_string(c, where, "device_id", true, k->id, sizeof(k->id), err);
                if (r < 0)
                        return r;
                if (!k->id[0])
                        return fail(err, "%s: field \"device_id\" is empty", where);
                r = get_base64_text(c, where, "nickname", k->alias, sizeof(k->alias), err);
                if (r < 0)
                        return r;
                r = get_bool(c, where, "device_on", &k->on, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        return fail(err, "%s: required field \"device_on\" is missing", where);
                r = get_int(c, where, "on_time", false, 0, INT32_MAX, &k->on_time, err);
                if (r < 0)
                        return r;
        }
        ret->n_children = list->count;
        return 0;
}

/* The energy methods, collected before they are combined: asked says the
 * method answered (with its error_code), the result may still be NULL. */
typedef struct Energy {
        bool usage_asked, power_asked, emeter_asked;
        int32_t usage_err, power_err, emeter_err;
        const KjTok *usage, *power, *emeter;
} Energy;

static int parse_energy(const Energy *e, KasaResponse *ret, KasaError *err) {
        KasaRealtime *rt = &ret->realtime;
        int64_t w;
        int r;

        *rt = (KasaRealtime) { .style = KASA_UNITS_MILLI };
        if (e->emeter_asked && e->emeter_err == 0) {
                static const char where[] = "get_emeter_data";
                if (!kj_is_object(e->emeter))
                        return fail(err, "%s: result must be an object", where);
                const struct {
                        const char *key;
                        double scale;
                        int64_t min, max;
                        int64_t *out;
                } fields[] = {
                        { "power_mw", 1, -POWER_MAX_MW, POWER_MAX_MW, &rt->power_mw },
                        { "voltage_mv", 1, 0, VOLTAGE_MAX_MV, &rt->voltage_mv },
                        { "current_ma", 1, 0, CURRENT_MAX_MA, &rt->current_ma },
                        { "energy_wh", 1000, 0, KASA_ENERGY_MAX_MWH, &rt->total_mwh },
                };
                for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                        r = get_scaled(e->emeter, where, fields[i].key, true, fields[i].scale, fields[i].min,
                                       fields[i].max, fields[i].out, err);
                        if (r < 0)
                                return r;
                }
                ret->realtime_err = 0;
                return 0;
        }
        if (e->usage_asked && e->usage_err == 0) {
                static const char where[] = "get_energy_usage";
                if (!kj_is_object(e->usage))
                        return fail(err, "%s: result must be an object", where);
                /* No lifetime counter on these: the month's, which the
                 * energy account sees reset like any other counter. */
                r = get_scaled(e->usage, where, "month_energy", true, 1000, 0, KASA_ENERGY_MAX_MWH, &rt->total_mwh,
                               err);
                if (r < 0)
                        return r;
                r = get_scaled(e->usage, where, "current_power", false, 1, -POWER_MAX_MW, POWER_MAX_MW,
                               &rt->power_mw, err);
                if (r < 0)
                        return r;
                if (r == 0) {
                        if (!e->power_asked || e->power_err != 0)
                                return fail(err, "%s: no \"current_power\", and get_current_power did not answer",
                                            where);
                        if (!kj_is_object(e->power))
                                return fail(err, "get_current_power: result must be an object");
                        r = get_scaled(e->power, "get_current_power", "current_power", true, 1000,
                                       -POWER_MAX_MW, POWER_MAX_MW, &w, err);
                        if (r < 0)
                                return r;
                        rt->power_mw = w;
                }
                ret->realtime_err = 0;
                return 0;
        }
        /* What failed says why there is no reading. */
        if (e->usage_asked)
                ret->realtime_err = e->usage_err;
        else if (e->emeter_asked)
                ret->realtime_err = e->emeter_err;
        else if (e->power_err != 0)
                ret->realtime_err = e->power_err;
        else
                /* get_current_power alone has no counter to count energy with. */
                ret->realtime_err = KASA_SMART_ERR_UNKNOWN_METHOD;
        return 0;
}

static int parse_responses(const KjTok *root, KasaResponse *ret, unsigned depth, KasaError *err);

static int parse_energy_data(const KjTok *result, KasaEnergyData *ret, KasaError *err) {
        static const char where[] = "get_energy_data";
        const KjTok *data = kj_object_get(result, "data");
        int r;

        if ((r = get_int(result, where, "start_timestamp", true, 0, INT64_MAX / 1000, &ret->start_s, err)) < 0 ||
            (r = get_int(result, where, "end_timestamp", false, 0, INT64_MAX / 1000, &ret->end_s, err)) < 0 ||
            (r = get_int(result, where, "interval", true, 1, 43200, &ret->interval_min, err)) < 0)
                return r;
        if (ret->interval_min != 60 && ret->interval_min != 1440 && ret->interval_min != 43200)
                return fail(err, "%s: field \"interval\" is %" PRId64 ", not 60, 1440 or 43200", where,
                            ret->interval_min);
        if (!data)
                return fail(err, "%s: required field \"data\" is missing", where);
        if (!kj_is_array(data))
                return fail(err, "%s: field \"data\" must be an array", where);
        if (data->count > KASA_ENERGY_DATA_MAX)
                return fail(err, "%s: %" PRIu32 " entries, limit %d", where, data->count, KASA_ENERGY_DATA_MAX);
        for (size_t i = 0; i < data->count; i++) {
                const KjTok *v = kj_array_get(data, i);

                if (!kj_is_integer(v) || v->integer < 0 || v->integer > KASA_ENERGY_MAX_MWH / 1000)
                        return fail(err, "%s: data[%zu] must be an integer number of Wh, 0..%" PRId64, where, i,
                                    KASA_ENERGY_MAX_MWH / 1000);
                ret->energy_mwh[i] = v->integer * 1000;
        }
        ret->n = data->count;
        return 0;
}

/* One entry of result.responses[] (or the reply inside control_child). */
static int parse_one(const char *method, const KjTok *result, int32_t code, KasaResponse *ret, Energy *e,
                     const KjTok **device_info, const KjTok **child_list, unsigned depth, KasaError *err) {
        static const char *const with_result[] = { "get_device_info", "get_child_device_list", "get_energy_usage",
                                                   "get_current_power", "get_emeter_data", "control_child",
                                                   "get_energy_data" };

        for (size_t i = 0; i < ELEMENTSOF(with_result); i++)
                if (code == 0 && !result && !strcmp(method, with_result[i]))
                        return fail(err, "%s: success without a result", method);
        if (!strcmp(method, "get_device_info")) {
                ret->sysinfo_err = code;
                *device_info = code == 0 ? result : NULL;
        } else if (!strcmp(method, "get_child_device_list")) {
                /* A plug that knows no children: none. */
                *child_list = code == 0 ? result : NULL;
        } else if (!strcmp(method, "get_energy_usage")) {
                e->usage_asked = true;
                e->usage = result;
                e->usage_err = code;
        } else if (!strcmp(method, "get_current_power")) {
                e->power_asked = true;
                e->power = result;
                e->power_err = code;
        } else if (!strcmp(method, "get_emeter_data")) {
                e->emeter_asked = true;
                e->emeter = result;
                e->emeter_err = code;
        } else if (!strcmp(method, "get_energy_data")) {
                ret->energy_data_err = code;
                if (code == 0)
                        return parse_energy_data(result, &ret->energy_data, err);
        } else if (!strcmp(method, "set_device_info"))
                ret->relay_err = ret->alias_err = code;
        else if (!strcmp(method, "control_child")) {
                const KjTok *inner;
                if (code != 0) {
                        ret->sysinfo_err = ret->realtime_err = ret->relay_err = ret->alias_err = code;
                        ret->energy_data_err = code;
                        return 0;
                }
                if (depth > 0)
                        return fail(err, "control_child inside control_child");
                inner = kj_is_object(result) ? kj_object_get(result, "responseData") : NULL;
                if (!kj_is_object(inner))
                        return fail(err, "control_child: result must hold a \"responseData\" object");
                return parse_responses(inner, ret, depth + 1, err);
        } else if (ret->generic_err == KASA_ERR_ABSENT)
                ret->generic_err = code;
        return 0;
}

static int parse_responses(const KjTok *root, KasaResponse *ret, unsigned depth, KasaError *err) {
        const KjTok *result, *list, *device_info = NULL, *child_list = NULL;
        Energy e = {};
        int32_t code;
        int r;

        r = get_error_code(root, "reply", &code, err);
        if (r < 0)
                return r;
        if (code != 0) {
                /* The whole request failed: so did each method in it. */
                ret->sysinfo_err = ret->realtime_err = ret->relay_err = ret->alias_err = ret->generic_err = code;
                ret->energy_data_err = code;
                return 0;
        }
        result = kj_object_get(root, "result");
        if (!kj_is_object(result))
                return fail(err, "reply: \"result\" must be an object");
        list = kj_object_get(result, "responses");
        if (!kj_is_array(list))
                return fail(err, "reply: \"result.responses\" must be an array");
        for (size_t i = 0; i < list->count; i++) {
                const KjTok *one = kj_array_get(list, i), *m;
                char where[48], method[64];
                int32_t c;

                snprintf(where, sizeof(where), "responses[%zu]", i);
                if (!kj_is_object(one))
                        return fail(err, "%s: must be an object", where);
                m = kj_object_get(one, "method");
                if (!kj_is_string(m) || m->decoded_len >= sizeof(method))
                        return fail(err, "%s: \"method\" must be a short string", where);
                kj_string_copy(m, method);
                method[m->decoded_len] = 0;
                r = get_error_code(one, where, &c, err);
                if (r < 0)
                        return r;
                const KjTok *res = kj_object_get(one, "result");
                if (res && !kj_is_object(res))
                        return fail(err, "%s (%s): \"result\" must be an object", where, method);
                r = parse_one(method, res, c, ret, &e, &device_info, &child_list, depth, err);
                if (r < 0)
                        return r;
        }
        if (device_info) {
                r = parse_device_info(device_info, &ret->sysinfo, err);
                if (r < 0)
                        return r;
        }
        if (child_list) {
                if (!device_info)
                        return fail(err, "get_child_device_list without get_device_info");
                r = parse_child_list(child_list, &ret->sysinfo, err);
                if (r < 0)
                        return r;
        }
        if (e.usage_asked || e.power_asked || e.emeter_asked) {
                r = parse_energy(&e, ret, err);
                if (r < 0)
                        return r;
                if (device_info)
                        ret->sysinfo.has_emeter = ret->realtime_err == 0;
        }
        return 0;
}

int kasa_smart_response_parse(const char *json, size_t len, KasaResponse *ret, KasaError *err) {
        _cleanup_(kj_done) KjDoc doc;
        char jerr[128];
        int r;

        ret->sysinfo_err = ret->realtime_err = ret->relay_err = ret->alias_err = KASA_ERR_ABSENT;
        ret->daystat_err = ret->monthstat_err = ret->time_err = ret->generic_err = KASA_ERR_ABSENT;
        ret->energy_data_err = KASA_ERR_ABSENT;
        ret->n_stats = 0;
        r = kj_parse(&doc, json, len, jerr, sizeof(jerr));
        if (r == -ENOMEM) {
                (void) fail(err, "out of memory for the reply's tokens");
                return r;
        }
        if (r < 0)
                return fail(err, "malformed JSON at %s", jerr);
        if (!kj_is_object(&doc.toks[0]))
                return fail(err, "reply is not a JSON object");
        return parse_responses(&doc.toks[0], ret, 0, err);
}

bool kasa_smart_is_reply(const char *json, size_t len) {
        _cleanup_(kj_done) KjDoc doc;
        const KjTok *root;

        if (kj_parse(&doc, json, len, NULL, 0) < 0)
                return false;
        root = &doc.toks[0];
        return kj_is_object(root) && kj_is_integer(kj_object_get(root, "error_code")) &&
               !kj_object_get(root, "system") && !kj_object_get(root, "emeter");
}
