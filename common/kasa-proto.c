/* SPDX-License-Identifier: MIT */

#include "kasa-proto.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
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

/* jansson ships json_decrefp() for exactly this. */
#define _cleanup_json_ _cleanup_(json_decrefp)

void kasa_encrypt(uint8_t *buf, size_t len) {
        uint8_t key = KASA_XOR_KEY;
        for (size_t i = 0; i < len; i++) {
                key ^= buf[i];
                buf[i] = key;
        }
}

/* Each plain byte is its cipher byte XOR the cipher byte before it, so
 * unlike encryption there is no chain: done from the end, eight bytes at a
 * time, each word's source bytes are still unchanged when it is read. */
void kasa_decrypt(uint8_t *buf, size_t len) {
        size_t i = len;

        while (i >= 9) {
                uint64_t cur, prev;

                i -= 8;
                memcpy(&cur, buf + i, 8);
                memcpy(&prev, buf + i - 1, 8);
                cur ^= prev;
                memcpy(buf + i, &cur, 8);
        }
        while (i > 1) {
                i--;
                buf[i] ^= buf[i - 1];
        }
        if (len > 0)
                buf[0] ^= KASA_XOR_KEY;
}

int kasa_frame_encode(const char *payload, size_t len, uint8_t **ret_buf, size_t *ret_len) {
        if (len > UINT32_MAX)
                return -EMSGSIZE;
        uint8_t *buf = malloc(len + KASA_FRAME_HEADER_SIZE);
        if (!buf)
                return -ENOMEM;
        buf[0] = (uint8_t) (len >> 24);
        buf[1] = (uint8_t) (len >> 16);
        buf[2] = (uint8_t) (len >> 8);
        buf[3] = (uint8_t) len;
        memcpy(buf + KASA_FRAME_HEADER_SIZE, payload, len);
        kasa_encrypt(buf + KASA_FRAME_HEADER_SIZE, len);
        *ret_buf = buf;
        *ret_len = len + KASA_FRAME_HEADER_SIZE;
        return 0;
}

void kasa_frame_decoder_init(KasaFrameDecoder *d, size_t max_size) {
        *d = (KasaFrameDecoder) {
                .max_size = max_size > 0 ? max_size : KASA_FRAME_MAX_DEFAULT,
        };
}

void kasa_frame_decoder_reset(KasaFrameDecoder *d) {
        free(d->payload);
        kasa_frame_decoder_init(d, d->max_size);
}

bool kasa_frame_decoder_busy(const KasaFrameDecoder *d) {
        return d->header_have > 0;
}

int kasa_frame_decoder_feed(KasaFrameDecoder *d, const uint8_t *data, size_t len,
                            size_t *ret_consumed, char **ret_frame, size_t *ret_frame_len,
                            KasaError *err) {
        size_t used = 0;

        *ret_consumed = 0;

        /* A complete header without a buffer means an earlier call failed:
         * carrying on would treat payload bytes as the next header. */
        if (d->header_have == KASA_FRAME_HEADER_SIZE && !d->payload)
                return fail(err, "frame stream is unusable after an earlier error, reset the decoder");
        if (len == 0)
                return 0;

        if (d->header_have < KASA_FRAME_HEADER_SIZE) {
                size_t n = MIN(len, KASA_FRAME_HEADER_SIZE - d->header_have);
                memcpy(d->header + d->header_have, data, n);
                d->header_have += n;
                used += n;
                *ret_consumed = used;
                if (d->header_have < KASA_FRAME_HEADER_SIZE)
                        return 0;

                uint32_t size = (uint32_t) d->header[0] << 24 | (uint32_t) d->header[1] << 16 |
                                (uint32_t) d->header[2] << 8 | d->header[3];
                if (size == 0)
                        return fail(err, "frame announces an empty payload");
                if (size > d->max_size) {
                        fail(err, "frame announces %" PRIu32 " bytes, more than the limit of %zu",
                             size, d->max_size);
                        return -EMSGSIZE;
                }
                /* +1 for the NUL terminator handed to the JSON parser. */
                d->payload = malloc((size_t) size + 1);
                if (!d->payload)
                        return -ENOMEM;
                d->payload_size = size;
                d->payload_have = 0;
        }

        size_t n = MIN(len - used, d->payload_size - d->payload_have);
        memcpy(d->payload + d->payload_have, data + used, n);
        d->payload_have += n;
        used += n;
        *ret_consumed = used;

        if (d->payload_have < d->payload_size)
                return 0;

        kasa_decrypt(d->payload, d->payload_size);
        d->payload[d->payload_size] = 0;
        *ret_frame = (char *) d->payload;
        *ret_frame_len = d->payload_size;
        d->payload = NULL;
        kasa_frame_decoder_init(d, d->max_size);
        return 1;
}

/* ---- requests ---- */

static char *dump_request(json_t *root, const char *child_id) {
        if (!root)
                return NULL;
        if (child_id) {
                json_t *ids = json_pack("{s:[s]}", "child_ids", child_id);
                if (!ids || json_object_set_new(root, "context", ids) < 0)
                        return NULL;
        }
        return json_dumps(root, JSON_COMPACT);
}

char *kasa_request_query(unsigned queries, const char *child_id) {
        _cleanup_json_ json_t *root = json_object();
        if (!root)
                return NULL;
        if (queries & KASA_QUERY_SYSINFO)
                json_object_set_new(root, "system", json_pack("{s:{}}", "get_sysinfo"));
        if (queries & KASA_QUERY_REALTIME)
                json_object_set_new(root, "emeter", json_pack("{s:{}}", "get_realtime"));
        if (queries & KASA_QUERY_TIME)
                json_object_set_new(root, "time", json_pack("{s:{}}", "get_time"));
        return dump_request(root, child_id);
}

char *kasa_request_set_relay(bool on, const char *child_id) {
        _cleanup_json_ json_t *root = json_pack("{s:{s:{s:i}}}", "system", "set_relay_state", "state", on ? 1 : 0);
        return dump_request(root, child_id);
}

char *kasa_request_set_alias(const char *alias, const char *child_id) {
        _cleanup_json_ json_t *root = json_pack("{s:{s:{s:s}}}", "system", "set_dev_alias", "alias", alias);
        return dump_request(root, child_id);
}

char *kasa_request_set_led_off(bool off) {
        _cleanup_json_ json_t *root = json_pack("{s:{s:{s:i}}}", "system", "set_led_off", "off", off ? 1 : 0);
        return dump_request(root, NULL);
}

char *kasa_request_reboot(unsigned delay_s) {
        _cleanup_json_ json_t *root = json_pack("{s:{s:{s:I}}}", "system", "reboot", "delay", (json_int_t) delay_s);
        return dump_request(root, NULL);
}

char *kasa_request_daystat(int year, int month, const char *child_id) {
        _cleanup_json_ json_t *root = json_pack("{s:{s:{s:i,s:i}}}", "emeter", "get_daystat",
                                                "year", year, "month", month);
        return dump_request(root, child_id);
}

char *kasa_request_monthstat(int year, const char *child_id) {
        _cleanup_json_ json_t *root = json_pack("{s:{s:{s:i}}}", "emeter", "get_monthstat", "year", year);
        return dump_request(root, child_id);
}

char *kasa_request_erase_emeter(const char *child_id) {
        _cleanup_json_ json_t *root = json_pack("{s:{s:{}}}", "emeter", "erase_emeter_stat");
        return dump_request(root, child_id);
}

/* ---- response parsing ---- */

/* The field getters (get_int() ...) are kasa-fields.h's. */
static int get_err_code(const KjTok *obj, const char *where, int32_t *out, KasaError *err) {
        int64_t code = 0;
        int r = get_int(obj, where, "err_code", false, INT32_MIN + 1, INT32_MAX, &code, err);
        if (r < 0)
                return r;
        /* A reply without err_code is a success: several firmwares omit it. */
        *out = (int32_t) code;
        return 0;
}

/* A module that answers "module not support" puts err_code on the module
 * object itself, not on the method. Only a failure there speaks for the
 * whole module: taking a module-level 0 as success would mark methods that
 * were never parsed as valid. */
static int module_err(const KjTok *module, const char *where, int32_t *out, KasaError *err) {
        int32_t code = 0;
        int r = get_err_code(module, where, &code, err);
        if (r < 0)
                return r;
        if (code == 0)
                return 0;
        *out = code;
        return 1;
}

static int method(const KjTok *module, const char *mname, const char *mkey, const KjTok **ret, int32_t *ret_err,
                  KasaError *err) {
        const KjTok *v = kj_object_get(module, mkey);

        *ret = NULL;
        if (!v)
                return 0;
        if (!kj_is_object(v) || get_err_code(v, NULL, ret_err, NULL) < 0) {
                /* Only now the name for the message: two snprintf()s per
                 * poll were a tenth of the parse. */
                char where[96];
                snprintf(where, sizeof(where), "%s.%s", mname, mkey);
                if (!kj_is_object(v))
                        return fail(err, "%s: must be an object", where);
                return get_err_code(v, where, ret_err, err);
        }
        *ret = v;
        return 1;
}

int kasa_mac_normalize(const char *in, char out[static 18]) {
        /* Twelve bare hex digits, or six pairs joined by one separator used
         * throughout. Anything looser would let several spellings of junk
         * map onto one device identity. */
        size_t len = strlen(in);
        char sep, buf[18];

        if (len == 12)
                sep = 0;
        else if (len == 17 && (in[2] == ':' || in[2] == '-'))
                sep = in[2];
        else
                return -EINVAL;

        for (size_t i = 0; i < 6; i++) {
                const char *p = in + i * (sep ? 3 : 2);
                if (!isxdigit((unsigned char) p[0]) || !isxdigit((unsigned char) p[1]))
                        return -EINVAL;
                if (sep && i < 5 && p[2] != sep)
                        return -EINVAL;
                buf[i * 3] = (char) toupper((unsigned char) p[0]);
                buf[i * 3 + 1] = (char) toupper((unsigned char) p[1]);
                buf[i * 3 + 2] = i < 5 ? ':' : 0;
        }
        memcpy(out, buf, sizeof(buf));
        return 0;
}

static int parse_child(const KjTok *c, size_t idx, KasaChild *ret, KasaError *err) {
        char where[64];
        int64_t v;
        int r;

        *ret = (KasaChild) {};
        snprintf(where, sizeof(where), "system.get_sysinfo.children[%zu]", idx);
        if (!kj_is_object(c))
                return fail(err, "%s: must be an object", where);
        r = get_string(c, where, "id", true, ret->id, sizeof(ret->id), err);
        if (r < 0)
                return r;
        if (!ret->id[0])
                return fail(err, "%s: field \"id\" is empty", where);
        r = get_string(c, where, "alias", false, ret->alias, sizeof(ret->alias), err);
        if (r < 0)
                return r;
        r = get_int(c, where, "state", true, 0, 1, &v, err);
        if (r < 0)
                return r;
        ret->on = v == 1;
        r = get_int(c, where, "on_time", false, 0, INT32_MAX, &ret->on_time, err);
        if (r < 0)
                return r;
        return 0;
}

/* The sysinfo fields a reply is read for, hashed once by whichever thread
 * parses a reply first. */
enum {
        ALIAS, MODEL, MAC, MIC_MAC, DEVICE_ID, HW_ID, OEM_ID, HW_VER, SW_VER, FEATURE, TYPE, MIC_TYPE,
        RELAY_STATE, LED_OFF, ON_TIME, RSSI, CHILDREN, _FIELDS
};
static const char *const sysinfo_names[_FIELDS] = {
        [ALIAS] = "alias", [MODEL] = "model", [MAC] = "mac", [MIC_MAC] = "mic_mac",
        [DEVICE_ID] = "deviceId", [HW_ID] = "hwId", [OEM_ID] = "oemId", [HW_VER] = "hw_ver",
        [SW_VER] = "sw_ver", [FEATURE] = "feature", [TYPE] = "type", [MIC_TYPE] = "mic_type",
        [RELAY_STATE] = "relay_state", [LED_OFF] = "led_off", [ON_TIME] = "on_time", [RSSI] = "rssi",
        [CHILDREN] = "children",
};
static KjKeys sysinfo_keys;
static pthread_once_t sysinfo_keys_once = PTHREAD_ONCE_INIT;

static void sysinfo_keys_init(void) {
        kj_keys_init(&sysinfo_keys, sysinfo_names, _FIELDS);
}

static int parse_sysinfo(const KjTok *si, KasaSysinfo *ret, KasaError *err) {
        static const char where[] = "system.get_sysinfo";
        const KjTok *f[_FIELDS];
        char mac[KASA_STRING_MAX] = "";
        int64_t v;
        int r;

        /* Not the children's 8 KiB of strings: parse_child() clears each one
         * it fills, and nothing reads past n_children. */
        memset(ret, 0, offsetof(KasaSysinfo, children));
        /* One pass over some thirty members, not one per field. */
        (void) pthread_once(&sysinfo_keys_once, sysinfo_keys_init);
        kj_object_pick(si, &sysinfo_keys, f);

        r = kasa_value_string(f[ALIAS], where, sysinfo_names[ALIAS], false, ret->alias, sizeof(ret->alias), err);
        if (r < 0)
                return r;
        r = kasa_value_string(f[MODEL], where, sysinfo_names[MODEL], true, ret->model, sizeof(ret->model), err);
        if (r < 0)
                return r;
        if (!ret->model[0])
                return fail(err, "%s: field \"model\" is empty", where);
        /* some firmwares name it mic_mac and drop the colons */
        size_t m = f[MAC] ? MAC : MIC_MAC;
        r = kasa_value_string(f[m], where, sysinfo_names[m], false, mac, sizeof(mac), err);
        if (r < 0)
                return r;
        if (r == 0)
                return fail(err, "%s: no \"mac\" or \"mic_mac\" field", where);
        if (kasa_mac_normalize(mac, ret->mac) < 0)
                return fail(err, "%s: \"%.32s\" is not a MAC address", where, mac);
        r = kasa_value_string(f[DEVICE_ID], where, sysinfo_names[DEVICE_ID], true, ret->device_id,
                              sizeof(ret->device_id), err);
        if (r < 0)
                return r;
        if (!ret->device_id[0])
                return fail(err, "%s: field \"deviceId\" is empty", where);
        const struct {
                size_t field;
                char *out;
                size_t size;
        } optional[] = {
                { HW_ID, ret->hw_id, sizeof(ret->hw_id) },
                { OEM_ID, ret->oem_id, sizeof(ret->oem_id) },
                { HW_VER, ret->hw_ver, sizeof(ret->hw_ver) },
                { SW_VER, ret->sw_ver, sizeof(ret->sw_ver) },
                { FEATURE, ret->feature, sizeof(ret->feature) },
                { f[TYPE] ? TYPE : MIC_TYPE, ret->type, sizeof(ret->type) },
        };
        for (size_t i = 0; i < ELEMENTSOF(optional); i++) {
                size_t k = optional[i].field;
                r = kasa_value_string(f[k], where, sysinfo_names[k], false, optional[i].out, optional[i].size, err);
                if (r < 0)
                        return r;
        }
        ret->has_emeter = strstr(ret->feature, "ENE") != NULL;

        r = kasa_value_int(f[RELAY_STATE], where, sysinfo_names[RELAY_STATE], false, 0, 1, &v, err);
        if (r < 0)
                return r;
        ret->has_relay = r > 0;
        ret->on = r > 0 && v == 1;
        r = kasa_value_int(f[LED_OFF], where, sysinfo_names[LED_OFF], false, 0, 1, &v, err);
        if (r < 0)
                return r;
        ret->led_off = r > 0 && v == 1;
        r = kasa_value_int(f[ON_TIME], where, sysinfo_names[ON_TIME], false, 0, INT32_MAX, &ret->on_time, err);
        if (r < 0)
                return r;
        r = kasa_value_int(f[RSSI], where, sysinfo_names[RSSI], false, -200, 0, &v, err);
        if (r < 0)
                return r;
        ret->has_rssi = r > 0;
        ret->rssi = (int32_t) v;

        const KjTok *children = f[CHILDREN];
        if (children) {
                if (!kj_is_array(children))
                        return fail(err, "%s: field \"children\" must be an array", where);
                size_t n = children->count;
                if (n > KASA_CHILDREN_MAX)
                        return fail(err, "%s: %zu children, limit %d", where, n, KASA_CHILDREN_MAX);
                for (size_t i = 0; i < n; i++) {
                        r = parse_child(kj_array_get(children, i), i, &ret->children[i], err);
                        if (r < 0)
                                return r;
                }
                ret->n_children = n;
        }
        return 0;
}

/* Plausible bounds, in internal units: a plug carries at most a few kW. */
#define POWER_MAX_MW    (100LL * 1000 * 1000)        /* 100 kW */
#define VOLTAGE_MAX_MV  (1000LL * 1000)              /* 1000 V */
#define CURRENT_MAX_MA  (1000LL * 1000)              /* 1000 A */

static int parse_realtime(const KjTok *rt, KasaRealtime *ret, KasaError *err) {
        static const char where[] = "emeter.get_realtime";
        const struct {
                const char *milli_key, *float_key;
                double milli_scale, float_scale;
                int64_t min, max;
                int64_t *out;
        } fields[] = {
                { "power_mw", "power", 1, 1000, -POWER_MAX_MW, POWER_MAX_MW, &ret->power_mw },
                { "voltage_mv", "voltage", 1, 1000, 0, VOLTAGE_MAX_MV, &ret->voltage_mv },
                { "current_ma", "current", 1, 1000, 0, CURRENT_MAX_MA, &ret->current_ma },
                { "total_wh", "total", 1000, 1000 * 1000, 0, KASA_ENERGY_MAX_MWH, &ret->total_mwh },
        };
        unsigned milli = 0, flt = 0;
        int r;

        *ret = (KasaRealtime) {};
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                r = kasa_field_scaled(rt, where, fields[i].milli_key, false, fields[i].milli_scale,
                               fields[i].min, fields[i].max, fields[i].out, err);
                if (r < 0)
                        return r;
                if (r > 0) {
                        milli++;
                        /* One quantity in both styles: no way to tell which is right. */
                        if (kj_object_get(rt, fields[i].float_key))
                                flt++;
                        continue;
                }
                r = kasa_field_scaled(rt, where, fields[i].float_key, false, fields[i].float_scale,
                               fields[i].min, fields[i].max, fields[i].out, err);
                if (r < 0)
                        return r;
                flt += r;
        }
        if (milli > 0 && flt > 0)
                return fail(err, "%s: mixes milli-unit and float fields", where);
        if (milli + flt != ELEMENTSOF(fields))
                return fail(err, "%s: needs power, voltage, current and total (got %u of 4)", where,
                            milli + flt);
        ret->style = milli > 0 ? KASA_UNITS_MILLI : KASA_UNITS_FLOAT;
        return 0;
}

static int parse_stats(const KjTok *m, const char *where, const char *list_key, bool daily, KasaResponse *ret,
                       KasaError *err) {
        const KjTok *list = kj_object_get(m, list_key);
        if (!list)
                return fail(err, "%s: required field \"%s\" is missing", where, list_key);
        if (!kj_is_array(list))
                return fail(err, "%s: field \"%s\" must be an array", where, list_key);
        size_t n = list->count;
        if (n > KASA_STATS_MAX)
                return fail(err, "%s: %zu entries, limit %d", where, n, KASA_STATS_MAX);
        for (size_t i = 0; i < n; i++) {
                const KjTok *e = kj_array_get(list, i);
                KasaStat *s = &ret->stats[i];
                char ewhere[96];
                int64_t y, mo, d = 0;
                int r;

                snprintf(ewhere, sizeof(ewhere), "%s.%s[%zu]", where, list_key, i);
                if (!kj_is_object(e))
                        return fail(err, "%s: must be an object", ewhere);
                if ((r = get_int(e, ewhere, "year", true, 1970, 9999, &y, err)) < 0 ||
                    (r = get_int(e, ewhere, "month", true, 1, 12, &mo, err)) < 0 ||
                    (daily && (r = get_int(e, ewhere, "day", true, 1, 31, &d, err)) < 0))
                        return r;
                r = kasa_field_scaled(e, ewhere, "energy_wh", false, 1000, 0, KASA_ENERGY_MAX_MWH, &s->energy_mwh, err);
                if (r == 0)
                        r = kasa_field_scaled(e, ewhere, "energy", false, 1000 * 1000, 0, KASA_ENERGY_MAX_MWH, &s->energy_mwh, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        return fail(err, "%s: no \"energy_wh\" or \"energy\" field", ewhere);
                s->year = (int) y;
                s->month = (int) mo;
                s->day = (int) d;
        }
        ret->n_stats = n;
        return 0;
}

static int parse_time(const KjTok *t, KasaTime *ret, KasaError *err) {
        static const char where[] = "time.get_time";
        const struct {
                const char *key;
                int64_t min, max;
                int *out;
        } f[] = {
                { "year", 1970, 9999, &ret->year }, { "month", 1, 12, &ret->month },
                { "mday", 1, 31, &ret->mday },      { "hour", 0, 23, &ret->hour },
                { "min", 0, 59, &ret->min },        { "sec", 0, 60, &ret->sec },
        };
        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                int64_t v;
                int r = get_int(t, where, f[i].key, true, f[i].min, f[i].max, &v, err);
                if (r < 0)
                        return r;
                *f[i].out = (int) v;
        }
        return 0;
}

static int parse_module(const KjTok *root, const char *name, const KjTok **ret, KasaError *err) {
        const KjTok *m = kj_object_get(root, name);
        *ret = NULL;
        if (!m)
                return 0;
        if (!kj_is_object(m))
                return fail(err, "module \"%s\" must be an object", name);
        *ret = m;
        return 1;
}

static int parse_system(const KjTok *sys, KasaResponse *ret, KasaError *err) {
        const KjTok *m;
        int32_t code;
        int r;

        r = module_err(sys, "system", &code, err);
        if (r < 0)
                return r;
        if (r > 0) {
                ret->sysinfo_err = ret->generic_err = code;
                return 0;
        }
        r = method(sys, "system", "get_sysinfo", &m, &ret->sysinfo_err, err);
        if (r < 0)
                return r;
        if (m && ret->sysinfo_err == 0) {
                r = parse_sysinfo(m, &ret->sysinfo, err);
                if (r < 0)
                        return r;
        }
        r = method(sys, "system", "set_relay_state", &m, &ret->relay_err, err);
        if (r < 0)
                return r;
        r = method(sys, "system", "set_dev_alias", &m, &ret->alias_err, err);
        if (r < 0)
                return r;
        const char *other[] = { "set_led_off", "reboot", "reset" };
        for (size_t i = 0; i < ELEMENTSOF(other); i++) {
                int32_t c = KASA_ERR_ABSENT;
                r = method(sys, "system", other[i], &m, &c, err);
                if (r < 0)
                        return r;
                if (m && ret->generic_err == KASA_ERR_ABSENT)
                        ret->generic_err = c;
        }
        return 0;
}

static int parse_emeter(const KjTok *em, KasaResponse *ret, KasaError *err) {
        const KjTok *m;
        int32_t code;
        int r;

        r = module_err(em, "emeter", &code, err);
        if (r < 0)
                return r;
        if (r > 0) {
                /* Module missing on this device: every emeter method failed. */
                ret->realtime_err = ret->daystat_err = ret->monthstat_err = code;
                return 0;
        }
        r = method(em, "emeter", "get_realtime", &m, &ret->realtime_err, err);
        if (r < 0)
                return r;
        if (m && ret->realtime_err == 0) {
                r = parse_realtime(m, &ret->realtime, err);
                if (r < 0)
                        return r;
        }
        r = method(em, "emeter", "get_daystat", &m, &ret->daystat_err, err);
        if (r < 0)
                return r;
        if (m && ret->daystat_err == 0) {
                r = parse_stats(m, "emeter.get_daystat", "day_list", true, ret, err);
                if (r < 0)
                        return r;
        }
        r = method(em, "emeter", "get_monthstat", &m, &ret->monthstat_err, err);
        if (r < 0)
                return r;
        if (m && ret->monthstat_err == 0) {
                r = parse_stats(m, "emeter.get_monthstat", "month_list", false, ret, err);
                if (r < 0)
                        return r;
        }
        int32_t c = KASA_ERR_ABSENT;
        r = method(em, "emeter", "erase_emeter_stat", &m, &c, err);
        if (r < 0)
                return r;
        if (m && ret->generic_err == KASA_ERR_ABSENT)
                ret->generic_err = c;
        return 0;
}

int kasa_response_parse(const char *json, size_t len, KasaResponse *ret, KasaError *err) {
        char jerr[128];
        const KjTok *m;
        int r;

        ret->sysinfo_err = ret->realtime_err = ret->relay_err = ret->alias_err = KASA_ERR_ABSENT;
        ret->daystat_err = ret->monthstat_err = ret->time_err = ret->generic_err = KASA_ERR_ABSENT;
        ret->energy_data_err = KASA_ERR_ABSENT;
        ret->n_stats = 0;

        /* Not jansson: one reply per poll, and building a tree of
         * allocated values for it cost more than everything else a poll
         * does. The tokens live on the stack. */
        _cleanup_(kj_done) KjDoc doc;
        r = kj_parse(&doc, json, len, jerr, sizeof(jerr));
        if (r == -ENOMEM) {
                (void) fail(err, "out of memory for the reply's tokens");
                return r;
        }
        if (r < 0)
                return fail(err, "malformed JSON at %s", jerr);
        const KjTok *root = &doc.toks[0];
        if (!kj_is_object(root))
                return fail(err, "reply is not a JSON object");

        r = parse_module(root, "system", &m, err);
        if (r < 0)
                return r;
        if (m && (r = parse_system(m, ret, err)) < 0)
                return r;

        r = parse_module(root, "emeter", &m, err);
        if (r < 0)
                return r;
        if (m && (r = parse_emeter(m, ret, err)) < 0)
                return r;

        r = parse_module(root, "time", &m, err);
        if (r < 0)
                return r;
        if (m) {
                const KjTok *t;
                int32_t code;
                r = module_err(m, "time", &code, err);
                if (r < 0)
                        return r;
                if (r > 0)
                        ret->time_err = code;
                else {
                        r = method(m, "time", "get_time", &t, &ret->time_err, err);
                        if (r < 0)
                                return r;
                        if (t && ret->time_err == 0 && (r = parse_time(t, &ret->time, err)) < 0)
                                return r;
                }
        }
        return 0;
}

int kasa_discovery_probe(uint8_t **ret_buf, size_t *ret_len) {
        _cleanup_free_ char *q = kasa_request_query(KASA_QUERY_SYSINFO, NULL);
        if (!q)
                return -ENOMEM;
        size_t n = strlen(q);
        kasa_encrypt((uint8_t *) q, n);
        *ret_len = n;
        *ret_buf = (uint8_t *) TAKE_PTR(q);
        return 0;
}

int kasa_discovery_parse(const uint8_t *datagram, size_t len, KasaSysinfo *ret, KasaError *err) {
        /* Larger than any UDP payload: it cannot be a real reply. */
        if (len == 0)
                return fail(err, "empty discovery datagram");
        if (len > 65507)
                return fail(err, "discovery datagram of %zu bytes is too large", len);

        _cleanup_free_ KasaResponse *resp = calloc(1, sizeof(KasaResponse));
        _cleanup_free_ uint8_t *plain = malloc(len);
        if (!resp || !plain)
                return -ENOMEM;
        memcpy(plain, datagram, len);
        kasa_decrypt(plain, len);

        int r = kasa_response_parse((const char *) plain, len, resp, err);
        if (r < 0)
                return r;
        if (resp->sysinfo_err == KASA_ERR_ABSENT)
                return fail(err, "discovery reply carries no system.get_sysinfo");
        if (resp->sysinfo_err != 0)
                return fail(err, "discovery reply has err_code %d (%s)", resp->sysinfo_err,
                            kasa_err_to_string(resp->sysinfo_err));
        *ret = resp->sysinfo;
        return 0;
}

const char *kasa_err_to_string(int32_t err_code) {
        switch (err_code) {
        case 0:
                return "success";
        case -1:
                return "module not supported";
        case -2:
                return "method not supported";
        case -3:
                return "invalid argument";
        case KASA_ERR_ABSENT:
                return "absent from reply";
        default:
                return "device error";
        }
}
