/* SPDX-License-Identifier: MIT */

/* /api/rates (the daemon's tariffs) and /api/costs (GetCost, and what-if
 * pricing with GetCostWith and PriceEnergy). Bills are the daemon's JSON,
 * passed on as they are. */

#include <string.h>

#include "kasa-dbus.h"
#include "rest.h"

#define DEFAULT_COST_USEC (UINT64_C(31) * 24 * 3600 * G_USEC_PER_SEC)

static char *tariff_path(const char *id) {
        return g_strconcat(KASA_TARIFF_PREFIX "/", id, NULL);
}

static const char *id_of(const char *path) {
        const char *slash = strrchr(path, '/');
        return slash ? slash + 1 : path;
}

static json_t *time_or_null(uint64_t usec) {
        return usec ? rest_time(usec) : json_null();
}

static void got_objects(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autoptr(GVariant) objects = NULL;
        GVariantIter it;
        const char *path;
        GVariant *ifaces;
        json_t *a;

        if (!reply)
                return;
        a = json_array();
        objects = g_variant_get_child_value(reply, 0);
        g_variant_iter_init(&it, objects);
        while (g_variant_iter_next(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
                g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, KASA_TARIFF_IFACE, G_VARIANT_TYPE("a{sv}"));
                g_variant_unref(ifaces);
                if (!props || !g_str_has_prefix(path, KASA_TARIFF_PREFIX "/"))
                        continue;
                const char *name = "", *utility = "", *currency = "";
                guint64 from = 0, until = 0;
                gboolean active = false;
                g_autoptr(GVariantIter) devs = NULL;
                json_t *ids = json_array();
                const char *dev;

                g_variant_lookup(props, "Name", "&s", &name);
                g_variant_lookup(props, "Utility", "&s", &utility);
                g_variant_lookup(props, "Currency", "&s", &currency);
                g_variant_lookup(props, "ValidFrom", "t", &from);
                g_variant_lookup(props, "ValidUntil", "t", &until);
                g_variant_lookup(props, "Active", "b", &active);
                if (g_variant_lookup(props, "Devices", "ao", &devs))
                        while (g_variant_iter_next(devs, "&o", &dev))
                                json_array_append_new(ids, json_string(id_of(dev)));
                json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:b,s:o}", "id", id_of(path), "name", name,
                                                   "utility", utility, "currency", currency, "valid_from",
                                                   time_or_null(from), "valid_until", time_or_null(until), "active",
                                                   active, "devices", ids));
        }
        request_reply_json(r, 200, a);
}

static void list_rates(Request *r) {
        if (rest_require_up(r))
                rest_call(r, r->bridge->bus, KASA_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                          "GetManagedObjects", NULL, "(a{oa{sa{sv}}})", got_objects);
}

static void describe_rate(Request *r, const char *path) {
        rest_call(r, r->bridge->bus, path, KASA_TARIFF_IFACE, "Describe", NULL, "(s)", rest_json_reply);
}

static void get_rate(Request *r) {
        g_autofree char *path = tariff_path(r->id);

        if (rest_require_up(r))
                describe_rate(r, path);
}

static void added(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        const char *path;

        if (!reply)
                return;
        g_variant_get(reply, "(&o)", &path);
        describe_rate(r, path);
}

static void imported(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autoptr(GVariantIter) it = NULL;
        const char *path;
        json_t *a;

        if (!reply)
                return;
        a = json_array();
        g_variant_get(reply, "(ao)", &it);
        while (g_variant_iter_next(it, "&o", &path))
                json_array_append_new(a, json_pack("{s:s,s:s}", "id", id_of(path), "path", path));
        request_reply_json(r, 201, a);
}

/* The project's own format has "format"; anything else is taken as URDB. */
static void add_rate(Request *r) {
        json_t *body;
        g_autofree char *text = NULL;
        bool own;

        if (!rest_require_up(r) || !(body = rest_require_body(r, false)))
                return;
        own = json_object_get(body, "format") != NULL;
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        if (own)
                rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AddTariff",
                          g_variant_new("(s)", text), "(o)", added);
        else
                rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "ImportTariff",
                          g_variant_new("(s)", text), "(ao)", imported);
}

static void delete_rate(Request *r) {
        g_autofree char *path = tariff_path(r->id);

        if (rest_require_up(r))
                rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "RemoveTariff",
                          g_variant_new("(o)", path), NULL, rest_empty_reply);
}

GVariant *rest_device_paths(Request *r, const char *const *ids, size_t n) {
        GVariantBuilder b;

        if (n > 1024) {
                request_reply_error(r, 400, "bad_request", "at most 1024 devices");
                return NULL;
        }
        g_variant_builder_init(&b, G_VARIANT_TYPE("ao"));
        for (size_t i = 0; i < n; i++) {
                const char *id = ids[i];
                if (!id || !device_id_valid(id)) {
                        g_variant_builder_clear(&b);
                        request_reply_error(r, 400, "bad_request", "devices: malformed device id");
                        return NULL;
                }
                const KasaDevice *d = kasa_client_find(r->bridge->kasa, id);
                if (!d) {
                        g_variant_builder_clear(&b);
                        request_reply_error(r, 404, "not_found", "no device %s", id);
                        return NULL;
                }
                g_variant_builder_add(&b, "o", d->path);
        }
        return g_variant_builder_end(&b);
}

/* Device ids of a JSON array, or of the query's comma list. */
static GVariant *device_paths(Request *r, json_t *array, const char *list) {
        g_auto(GStrv) split = list ? g_strsplit(list, ",", 1025) : NULL;
        size_t n = array ? json_array_size(array) : split ? g_strv_length(split) : 0;
        g_autofree const char **ids = g_new0(const char *, n + 1);

        for (size_t i = 0; i < n; i++)
                ids[i] = array ? json_string_value(json_array_get(array, i)) : split[i];
        return rest_device_paths(r, ids, n);
}

static void activated(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autofree char *path = NULL;

        if (!reply)
                return;
        path = tariff_path(r->id);
        describe_rate(r, path);
}

static void activate_rate(Request *r) {
        g_autofree char *path = tariff_path(r->id);
        json_t *body, *devs;
        uint64_t since = 0;
        GVariant *paths;

        if (!rest_require_up(r) || !(body = rest_require_body(r, true)))
                return;
        devs = json_object_get(body, "devices");
        if (devs && !json_is_array(devs)) {
                json_decref(body);
                return request_reply_error(r, 400, "bad_request", "\"devices\" must be a list of device ids");
        }
        if (!rest_body_time(r, body, "since", &since) || !(paths = device_paths(r, devs, NULL)))
                return (void) json_decref(body);
        json_decref(body);
        rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "ActivateTariff",
                  g_variant_new("(o@aot)", path, paths, since), NULL, activated);
}

static bool bucket(Request *r, const char *s, const char **ret) {
        static const char *const buckets[] = { "day", "month", NULL };
        g_autofree char *error = NULL;

        if (parse_choice(s, buckets, "", ret, &error) == 0)
                return true;
        request_reply_error(r, 400, "bad_request", "by: %s", error);
        return false;
}

static void costs(Request *r) {
        const char *by;
        uint64_t from, to;
        GVariant *paths;

        if (!rest_require_up(r) || !bucket(r, rest_query(r, "by"), &by) ||
            !rest_range(r, DEFAULT_COST_USEC, &from, &to))
                return;
        const char *list = rest_query(r, "device");
        if (!(paths = device_paths(r, NULL, list && *list ? list : NULL)))
                return;
        rest_call(r, r->bridge->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "GetCost",
                  g_variant_new("(@aotts)", paths, from, to, by), "(s)", rest_json_reply);
}

/* {"tariff": ID | {tariff}, "from", "to", "devices", "by"} prices the
 * recorded energy; with "energy_csv" (and "time_zone") it prices that
 * series instead. */
static void calculate(Request *r) {
        json_t *body, *t, *devs, *by_j;
        g_autofree char *tariff = NULL;
        const char *by = "";
        uint64_t from = 0, to = 0;
        GVariant *paths;

        if (!rest_require_up(r) || !(body = rest_require_body(r, false)))
                return;
        t = json_object_get(body, "tariff");
        if (json_is_string(t) && device_id_valid(json_string_value(t)))
                tariff = tariff_path(json_string_value(t));
        else if (json_is_integer(t) && json_integer_value(t) >= 0)
                /* Describe() of a tariff has its id as a number. */
                tariff = g_strdup_printf(KASA_TARIFF_PREFIX "/%" JSON_INTEGER_FORMAT, json_integer_value(t));
        else if (json_is_object(t))
                tariff = json_dumps(t, JSON_COMPACT);
        else {
                json_decref(body);
                return request_reply_error(r, 400, "bad_request", "\"tariff\" (a tariff id or a tariff) is required");
        }
        by_j = json_object_get(body, "by");
        if ((by_j && !json_is_string(by_j)) || !bucket(r, by_j ? json_string_value(by_j) : NULL, &by)) {
                if (by_j && !json_is_string(by_j))
                        request_reply_error(r, 400, "bad_request", "\"by\" must be day or month");
                return (void) json_decref(body);
        }
        if (json_object_get(body, "energy_csv")) {
                const char *csv = json_string_value(json_object_get(body, "energy_csv"));
                json_t *tz = json_object_get(body, "time_zone");
                if (!csv || (tz && !json_is_string(tz))) {
                        json_decref(body);
                        return request_reply_error(r, 400, "bad_request",
                                                   "\"energy_csv\" and \"time_zone\" must be strings");
                }
                rest_call(r, r->bridge->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "PriceEnergy",
                          g_variant_new("(ssss)", tariff, csv, tz ? json_string_value(tz) : "", by), "(s)",
                          rest_json_reply);
                return (void) json_decref(body);
        }
        from = (uint64_t) g_get_real_time() - DEFAULT_COST_USEC;
        devs = json_object_get(body, "devices");
        if (devs && !json_is_array(devs)) {
                json_decref(body);
                return request_reply_error(r, 400, "bad_request", "\"devices\" must be a list of device ids");
        }
        if (!rest_body_time(r, body, "from", &from) || !rest_body_time(r, body, "to", &to) ||
            !(paths = device_paths(r, devs, NULL)))
                return (void) json_decref(body);
        json_decref(body);
        rest_call(r, r->bridge->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "GetCostWith",
                  g_variant_new("(@aottss)", paths, from, to, by, tariff), "(s)", rest_json_reply);
}

void rest_costs_handle(Request *r) {
        switch (r->route) {
        case ROUTE_RATES_LIST:
                return list_rates(r);
        case ROUTE_RATES_ADD:
                return add_rate(r);
        case ROUTE_RATE_GET:
                return get_rate(r);
        case ROUTE_RATE_DELETE:
                return delete_rate(r);
        case ROUTE_RATE_ACTIVATE:
                return activate_rate(r);
        case ROUTE_COSTS:
                return costs(r);
        case ROUTE_COSTS_CALCULATE:
                return calculate(r);
        default:
                return request_reply_error(r, 500, "internal", "unhandled route");
        }
}
