/* SPDX-License-Identifier: MIT */

/* The REST routes under /api: each turns a request into one bus call (or
 * an answer from the cache) and the reply into JSON. */

#include <math.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "kasa-dbus.h"
#include "log.h"
#include "rest.h"

#define DEFAULT_HISTORY_USEC (UINT64_C(24) * 3600 * G_USEC_PER_SEC)
#define DEFAULT_ENERGY_USEC (UINT64_C(31) * 24 * 3600 * G_USEC_PER_SEC)

json_t *rest_time(uint64_t usec) {
        time_t t = (time_t) (usec / G_USEC_PER_SEC);
        struct tm tm;
        char buf[32];

        if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return json_null();
        return json_string(buf);
}

const char *rest_query(Request *r, const char *name) {
        return r->query ? g_hash_table_lookup(r->query, name) : NULL;
}

bool rest_require_up(Request *r) {
        if (r->bridge->kasa->up)
                return true;
        request_reply_error(r, 503, "unavailable", "kasamond is not on the bus");
        return false;
}

static const KasaDevice *require_device(Request *r) {
        const KasaDevice *d;

        if (!rest_require_up(r))
                return NULL;
        d = kasa_client_find(r->bridge->kasa, r->id);
        if (!d)
                request_reply_error(r, 404, "not_found", "no device %s", r->id);
        return d;
}

/* The body as a JSON object; answers 400 and returns NULL if it is not. */
json_t *rest_require_body(Request *r, bool optional) {
        SoupMessageBody *body = soup_server_message_get_request_body(r->msg);
        g_autofree char *error = NULL;
        json_t *j;

        if (optional && (!body || body->length == 0))
                return json_object();
        if (parse_body_object(body ? body->data : NULL, body ? (size_t) body->length : 0, &j, &error) < 0) {
                request_reply_error(r, 400, "bad_request", "%s", error);
                return NULL;
        }
        return j;
}

void rest_call(Request *r, GDBusConnection *bus, const char *path, const char *iface, const char *method,
                 GVariant *args, const char *reply_type, GAsyncReadyCallback cb) {
        request_pause(r);
        g_dbus_connection_call(bus, KASA_BUS_NAME, path, iface, method, args,
                               reply_type ? G_VARIANT_TYPE(reply_type) : NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START,
                               CALL_TIMEOUT_MS, NULL, cb, r);
}

GVariant *rest_finish_call(GObject *source, GAsyncResult *res, Request *r) {
        g_autoptr(GError) error = NULL;
        GVariant *reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);

        if (!reply)
                request_reply_dbus_error(r, error);
        return reply;
}

static void list_devices(Request *r) {
        Bridge *b = r->bridge;

        if (!rest_require_up(r))
                return;
        if (!b->devices_json) {
                g_autoptr(GPtrArray) devs = kasa_client_sorted(b->kasa);
                json_t *a = json_array();
                char *s;

                for (guint i = 0; i < devs->len; i++)
                        json_array_append_new(a, kasa_device_json(b->kasa, devs->pdata[i]));
                s = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);
                json_decref(a);
                if (!s)
                        return request_reply_error(r, 500, "internal", "out of memory");
                b->devices_json = g_bytes_new_take(s, strlen(s));
        }
        request_reply_bytes(r, "application/json", b->devices_json);
}

static void get_device(Request *r) {
        const KasaDevice *d = require_device(r);

        if (d)
                request_reply_json(r, 200, kasa_device_json(r->bridge->kasa, d));
}

void rest_json_reply(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autoptr(GVariant) text = NULL;
        g_autoptr(GBytes) data = NULL, body = NULL;
        gsize n;

        if (!reply)
                return;
        /* kasamond's JSON (checked to be its, by the sender) goes out as it
         * came, without a parse and a dump of a bill that may be tens of
         * MiB. It is an object or an array, or something went wrong. */
        text = g_variant_get_child_value(reply, 0);
        data = g_variant_get_data_as_bytes(text);
        const char *s = g_bytes_get_data(data, &n);
        if (n < 2 || (s[0] != '{' && s[0] != '['))
                return request_reply_error(r, 502, "bad_gateway", "kasamond sent malformed JSON");
        body = g_bytes_new_from_bytes(data, 0, n - 1); /* without the string's NUL */
        request_reply_json_bytes(r,
                                 r->route == ROUTE_DEVICES_ADD || r->route == ROUTE_RATES_ADD ||
                                                 r->route == ROUTE_SCHEDULES_ADD
                                         ? 201
                                         : 200,
                                 body);
}

void rest_empty_reply(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);

        if (reply)
                request_reply_empty(r, 204);
}

/* After a change, the device as the daemon describes it now. */
static void describe(Request *r, const char *path) {
        rest_call(r, r->bridge->bus, path, KASA_DEVICE_IFACE, "Describe", NULL, "(s)", rest_json_reply);
}

static void added(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        const char *path;

        if (!reply)
                return;
        g_variant_get(reply, "(&o)", &path);
        describe(r, path);
}

static void add_device(Request *r) {
        json_t *body;
        const char *address;

        if (!rest_require_up(r) || !(body = rest_require_body(r, false)))
                return;
        address = json_string_value(json_object_get(body, "address"));
        if (!address || !*address) {
                json_decref(body);
                return request_reply_error(r, 400, "bad_request", "\"address\" (a string, IPv4[:port]) is required");
        }
        rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AddDevice", g_variant_new("(s)", address),
             "(o)", added);
        json_decref(body);
}

static void discovered(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autoptr(GVariantIter) it = NULL;
        const char *path;
        json_t *a;

        if (!reply)
                return;
        a = json_array();
        g_variant_get(reply, "(ao)", &it);
        while (g_variant_iter_next(it, "&o", &path)) {
                const KasaDevice *d = g_hash_table_lookup(r->bridge->kasa->devices, path);
                /* Objects are announced before Discover returns. */
                if (d)
                        json_array_append_new(a, kasa_device_json(r->bridge->kasa, d));
        }
        request_reply_json(r, 200, a);
}

static void discover(Request *r) {
        json_t *body, *t;
        double timeout = 2.0;

        if (!rest_require_up(r) || !(body = rest_require_body(r, true)))
                return;
        t = json_object_get(body, "timeout");
        if (t && (!json_is_number(t) || json_number_value(t) < 0.1 || json_number_value(t) > 60)) {
                json_decref(body);
                return request_reply_error(r, 400, "bad_request", "\"timeout\" must be 0.1 to 60 seconds");
        }
        if (t)
                timeout = json_number_value(t);
        json_decref(body);
        rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "Discover", g_variant_new("(d)", timeout),
             "(ao)", discovered);
}

static void renamed(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autofree char *path = NULL;

        if (!reply)
                return;
        path = kasa_device_path(r->id);
        describe(r, path);
}

static void patch_device(Request *r) {
        const KasaDevice *d = require_device(r);
        json_t *body, *alias;
        const char *key;
        json_t *v;

        if (!d || !(body = rest_require_body(r, false)))
                return;
        json_object_foreach(body, key, v)
                if (strcmp(key, "alias") != 0) {
                        request_reply_error(r, 400, "bad_request", "\"%s\" cannot be changed (only \"alias\")", key);
                        json_decref(body);
                        return;
                }
        alias = json_object_get(body, "alias");
        if (!json_is_string(alias)) {
                json_decref(body);
                return request_reply_error(r, 400, "bad_request", "\"alias\" (a string) is required");
        }
        rest_call(r, request_bus(r), d->path, KASA_DEVICE_IFACE, "Rename", g_variant_new("(s)", json_string_value(alias)),
             NULL, renamed);
        json_decref(body);
}

static void delete_device(Request *r) {
        const KasaDevice *d = require_device(r);

        if (d)
                rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "RemoveDevice",
                     g_variant_new("(o)", d->path), NULL, rest_empty_reply);
}

static void switched(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        bool on;

        /* On failure the request is answered and gone. */
        if (!reply)
                return;
        on = r->route == ROUTE_DEVICE_ON;
        if (r->route == ROUTE_DEVICE_TOGGLE) {
                gboolean b;
                g_variant_get(reply, "(b)", &b);
                on = b;
        }
        request_reply_json(r, 200, json_pack("{s:s,s:b}", "id", r->id, "on", on));
}

static void switch_device(Request *r) {
        const KasaDevice *d = require_device(r);

        if (!d)
                return;
        if (r->route == ROUTE_DEVICE_TOGGLE)
                rest_call(r, request_bus(r), d->path, KASA_DEVICE_IFACE, "Toggle", NULL, "(b)", switched);
        else
                rest_call(r, request_bus(r), d->path, KASA_DEVICE_IFACE, "SetOn",
                     g_variant_new("(b)", r->route == ROUTE_DEVICE_ON), NULL, switched);
}

/* from and to from the query, with defaults; answers 400 if malformed. */
bool rest_range(Request *r, uint64_t span, uint64_t *from, uint64_t *to) {
        const char *f = rest_query(r, "from"), *t = rest_query(r, "to");
        g_autofree char *error = NULL;
        uint64_t now = (uint64_t) g_get_real_time();

        *to = 0;
        if (t && parse_time(t, to, &error) < 0)
                goto bad;
        *from = (*to ?: now) > span ? (*to ?: now) - span : 0;
        if (f && parse_time(f, from, &error) < 0)
                goto bad;
        if (*to && *from >= *to) {
                request_reply_error(r, 400, "bad_request", "\"from\" must be before \"to\"");
                return false;
        }
        return true;
bad:
        request_reply_error(r, 400, "bad_request", "%s", error);
        return false;
}

/* A time in a body: RFC 3339 or epoch seconds, as a string or a number. */
bool rest_body_time(Request *r, json_t *body, const char *key, uint64_t *ret) {
        json_t *v = json_object_get(body, key);
        g_autofree char *error = NULL;

        if (!v || json_is_null(v))
                return true;
        /* As parse_time() takes epoch seconds in a string: the same
         * range, rounded to the microsecond the same way. */
        if (json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 253402300799.0) {
                *ret = (uint64_t) llround(json_number_value(v) * 1e6);
                return true;
        }
        if (json_is_string(v) && parse_time(json_string_value(v), ret, &error) == 0)
                return true;
        request_reply_error(r, 400, "bad_request", "\"%s\": %s", key,
                            error ?: "a time is RFC 3339 or epoch seconds");
        return false;
}

static const KasaDevice *require_meter(Request *r) {
        const KasaDevice *d = require_device(r);

        if (d && !d->metered) {
                request_reply_error(r, 404, "not_metered", "device %s has no energy meter", r->id);
                return NULL;
        }
        return d;
}

static json_t *number(double x) {
        return isfinite(x) ? json_real(x) : json_null();
}

static void got_history(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autoptr(GVariantIter) it = NULL;
        guint64 t;
        double avg, min, max, wh;
        json_t *a;

        if (!reply)
                return;
        a = json_array();
        g_variant_get(reply, "(a(tdddd))", &it);
        while (g_variant_iter_next(it, "(tdddd)", &t, &avg, &min, &max, &wh))
                json_array_append_new(a, json_pack("{s:o,s:f,s:o,s:o,s:o,s:o}", "time", rest_time(t), "timestamp",
                                                   t / 1e6, "power_avg", number(avg), "power_min", number(min),
                                                   "power_max", number(max), "energy_wh", number(wh)));
        request_reply_json(r, 200,
                           json_pack("{s:s,s:s,s:o}", "id", r->id, "resolution", rest_query(r, "resolution") ?: "hour",
                                     "samples", a));
}

static void stats(Request *r) {
        static const char *const resolutions[] = { "raw", "minute", "hour", "day", NULL };
        const KasaDevice *d = require_meter(r);
        g_autofree char *error = NULL;
        const char *res;
        uint64_t from, to;

        if (!d)
                return;
        if (parse_choice(rest_query(r, "resolution"), resolutions, "hour", &res, &error) < 0)
                return request_reply_error(r, 400, "bad_request", "resolution: %s", error);
        if (!rest_range(r, DEFAULT_HISTORY_USEC, &from, &to))
                return;
        rest_call(r, r->bridge->bus, d->path, KASA_METER_IFACE, "GetHistory", g_variant_new("(tts)", from, to, res),
             "(a(tdddd))", got_history);
}

static void got_energy(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autoptr(GVariantIter) it = NULL;
        guint64 t;
        double wh;
        json_t *a;

        if (!reply)
                return;
        a = json_array();
        g_variant_get(reply, "(a(td))", &it);
        while (g_variant_iter_next(it, "(td)", &t, &wh))
                json_array_append_new(a, json_pack("{s:o,s:f,s:o}", "start", rest_time(t), "timestamp", t / 1e6,
                                                   "energy_wh", number(wh)));
        request_reply_json(r, 200,
                           json_pack("{s:s,s:s,s:o}", "id", r->id, "bucket", rest_query(r, "bucket") ?: "day", "buckets",
                                     a));
}

static void energy(Request *r) {
        static const char *const buckets[] = { "day", "month", NULL };
        const KasaDevice *d = require_meter(r);
        g_autofree char *error = NULL;
        const char *bucket;
        uint64_t from, to;

        if (!d)
                return;
        if (parse_choice(rest_query(r, "bucket"), buckets, "day", &bucket, &error) < 0)
                return request_reply_error(r, 400, "bad_request", "bucket: %s", error);
        if (!rest_range(r, DEFAULT_ENERGY_USEC, &from, &to))
                return;
        rest_call(r, r->bridge->bus, d->path, KASA_METER_IFACE, "GetEnergy", g_variant_new("(tts)", from, to, bucket),
             "(a(td))", got_energy);
}

static void health(Request *r) {
        KasaClient *k = r->bridge->kasa;

        if (!k->up)
                return request_reply_json(r, 503, json_pack("{s:s,s:s,s:s}", "error", "unavailable", "message",
                                                            "kasamond is not on the bus", "status", "down"));
        request_reply_json(r, 200, json_pack("{s:s,s:s,s:i,s:f}", "status", "ok", "version", k->version ?: "",
                                             "devices", (int) g_hash_table_size(k->devices), "total_power",
                                             k->total_power));
}

static void openapi(Request *r) {
        request_reply_bytes(r, "application/json", r->bridge->openapi);
}

void rest_handle(Request *r) {
        switch (r->route) {
        case ROUTE_DEVICES_LIST:
                return list_devices(r);
        case ROUTE_DEVICES_ADD:
                return add_device(r);
        case ROUTE_DEVICES_DISCOVER:
                return discover(r);
        case ROUTE_DEVICE_GET:
                return get_device(r);
        case ROUTE_DEVICE_PATCH:
                return patch_device(r);
        case ROUTE_DEVICE_DELETE:
                return delete_device(r);
        case ROUTE_DEVICE_ON:
        case ROUTE_DEVICE_OFF:
        case ROUTE_DEVICE_TOGGLE:
                return switch_device(r);
        case ROUTE_DEVICE_STATS:
                return stats(r);
        case ROUTE_DEVICE_ENERGY:
                return energy(r);
        case ROUTE_HEALTH:
                return health(r);
        case ROUTE_OPENAPI:
                return openapi(r);
        case ROUTE_RATES_LIST:
        case ROUTE_RATES_ADD:
        case ROUTE_RATE_GET:
        case ROUTE_RATE_DELETE:
        case ROUTE_RATE_ACTIVATE:
        case ROUTE_COSTS:
        case ROUTE_COSTS_CALCULATE:
                return rest_costs_handle(r);
        case ROUTE_SCHEDULES_LIST:
        case ROUTE_SCHEDULES_ADD:
        case ROUTE_SCHEDULE_GET:
        case ROUTE_SCHEDULE_PATCH:
        case ROUTE_SCHEDULE_DELETE:
                return rest_schedules_handle(r);
        case ROUTE_EXPORT:
                return rest_export_handle(r);
        case _ROUTE_MAX:
                break;
        }
        request_reply_error(r, 500, "internal", "unhandled route");
}
