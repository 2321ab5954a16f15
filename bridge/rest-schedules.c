/* SPDX-License-Identifier: MIT */

/* /api/schedules on the daemon's Schedule objects: the list from their
 * properties, one schedule as its Describe(), AddSchedule, Enable and
 * Disable (PATCH "enabled"), Remove. The daemon refuses schedules
 * without systemd as its service manager (NoServiceManager): 409 with
 * its message, since retrying does not help until the host changes. */

#include <math.h>
#include <string.h>

#include "kasa-dbus.h"
#include "rest.h"

/* AddSchedule's bounds (org.kasamond.Kasa1.Manager(5)), checked here only
 * so that no number overflows on its way into microseconds. */
#define OFFSET_MAX_SEC (12.0 * 3600)
#define DELAY_MAX_SEC (24.0 * 3600)

static char *schedule_path(const char *id) {
        return g_strconcat(KASA_SCHEDULE_PREFIX "/", id, NULL);
}

static json_t *time_or_null(uint64_t usec) {
        return usec ? rest_time(usec) : json_null();
}

static json_t *string_or_null(const char *s) {
        return s && *s ? json_string(s) : json_null();
}

static json_t *summary(GVariant *props, const char *path) {
        const char *action = "", *calendar = "", *sun = "", *timer = "", *result = "";
        guint32 id = 0;
        guint64 next = 0, last = 0;
        gboolean enabled = false;
        g_autoptr(GVariantIter) devs = NULL;
        json_t *ids = json_array();
        const char *dev;

        g_variant_lookup(props, "Id", "u", &id);
        g_variant_lookup(props, "Action", "&s", &action);
        g_variant_lookup(props, "Calendar", "&s", &calendar);
        g_variant_lookup(props, "SunEvent", "&s", &sun);
        g_variant_lookup(props, "Enabled", "b", &enabled);
        g_variant_lookup(props, "Timer", "&s", &timer);
        g_variant_lookup(props, "NextElapse", "t", &next);
        g_variant_lookup(props, "LastRun", "t", &last);
        g_variant_lookup(props, "LastResult", "&s", &result);
        if (g_variant_lookup(props, "Devices", "as", &devs))
                while (g_variant_iter_next(devs, "&s", &dev))
                        json_array_append_new(ids, json_string(dev));
        return json_pack("{s:I,s:s,s:o,s:s,s:o,s:o,s:b,s:o,s:o,s:o,s:o}", "id", (json_int_t) id, "path", path,
                         "devices", ids, "action", action, "calendar", string_or_null(calendar), "sun_event",
                         string_or_null(sun), "enabled", enabled, "timer", string_or_null(timer), "next_elapse",
                         time_or_null(next), "last_run", time_or_null(last), "last_result",
                         string_or_null(result));
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
                g_autoptr(GVariant) props = g_variant_lookup_value(ifaces, KASA_SCHEDULE_IFACE,
                                                                   G_VARIANT_TYPE("a{sv}"));
                g_variant_unref(ifaces);
                if (props && g_str_has_prefix(path, KASA_SCHEDULE_PREFIX "/"))
                        json_array_append_new(a, summary(props, path));
        }
        request_reply_json(r, 200, a);
}

static void list_schedules(Request *r) {
        if (rest_require_up(r))
                rest_call(r, r->bridge->bus, KASA_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                          "GetManagedObjects", NULL, "(a{oa{sa{sv}}})", got_objects);
}

static void describe(Request *r, const char *path) {
        rest_call(r, r->bridge->bus, path, KASA_SCHEDULE_IFACE, "Describe", NULL, "(s)", rest_json_reply);
}

static void get_schedule(Request *r) {
        g_autofree char *path = schedule_path(r->id);

        if (rest_require_up(r))
                describe(r, path);
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

/* A number of seconds within [min, max] in microseconds; absent: *ret stays. */
static bool body_seconds(Request *r, json_t *body, const char *key, double min, double max, int64_t *ret) {
        json_t *v = json_object_get(body, key);

        if (!v)
                return true;
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < min ||
            json_number_value(v) > max) {
                request_reply_error(r, 400, "bad_request", "\"%s\" must be a number of seconds, %g to %g", key, min,
                                    max);
                return false;
        }
        *ret = (int64_t) llround(json_number_value(v) * 1e6);
        return true;
}

static const char *const add_keys[] = { "devices",    "action",     "when",        "offset", "randomized_delay",
                                        "persistent", "valid_from", "valid_until", NULL };

/* {"devices": [IDS], "action", "when", "offset", "randomized_delay",
 * "persistent", "valid_from", "valid_until"}: AddSchedule's arguments,
 * seconds and times as the rest of the API has them. */
static GVariant *add_args(Request *r, json_t *body) {
        json_t *devs = json_object_get(body, "devices"), *action = json_object_get(body, "action"),
               *when = json_object_get(body, "when"), *persistent = json_object_get(body, "persistent");
        int64_t offset = 0, delay = 0;
        uint64_t from = 0, until = 0;
        GVariantBuilder ids, options;
        const char *key;
        json_t *v;

        json_object_foreach(body, key, v)
                if (!g_strv_contains(add_keys, key)) {
                        request_reply_error(r, 400, "bad_request", "unknown field \"%s\"", key);
                        return NULL;
                }
        if (!json_is_array(devs) || json_array_size(devs) == 0 || json_array_size(devs) > 64) {
                request_reply_error(r, 400, "bad_request", "\"devices\" must be a list of 1 to 64 device ids");
                return NULL;
        }
        if (!json_is_string(action) || !json_is_string(when)) {
                request_reply_error(r, 400, "bad_request",
                                    "\"action\" (on, off, toggle) and \"when\" (a calendar expression or a sun event) "
                                    "are required");
                return NULL;
        }
        if (persistent && !json_is_boolean(persistent)) {
                request_reply_error(r, 400, "bad_request", "\"persistent\" must be true or false");
                return NULL;
        }
        if (!body_seconds(r, body, "offset", -OFFSET_MAX_SEC, OFFSET_MAX_SEC, &offset) ||
            !body_seconds(r, body, "randomized_delay", 0, DELAY_MAX_SEC, &delay) ||
            !rest_body_time(r, body, "valid_from", &from) || !rest_body_time(r, body, "valid_until", &until))
                return NULL;
        g_variant_builder_init(&ids, G_VARIANT_TYPE("as"));
        for (size_t i = 0; i < json_array_size(devs); i++) {
                const char *id = json_string_value(json_array_get(devs, i));
                if (!id || !device_id_valid(id)) {
                        g_variant_builder_clear(&ids);
                        request_reply_error(r, 400, "bad_request", "devices: malformed device id");
                        return NULL;
                }
                g_variant_builder_add(&ids, "s", id);
        }
        g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
        if (json_object_get(body, "offset"))
                g_variant_builder_add(&options, "{sv}", "Offset", g_variant_new_int64(offset));
        if (json_object_get(body, "randomized_delay"))
                g_variant_builder_add(&options, "{sv}", "RandomizedDelay", g_variant_new_uint64((uint64_t) delay));
        if (persistent)
                g_variant_builder_add(&options, "{sv}", "Persistent", g_variant_new_boolean(json_is_true(persistent)));
        if (from)
                g_variant_builder_add(&options, "{sv}", "ValidFrom", g_variant_new_uint64(from));
        if (until)
                g_variant_builder_add(&options, "{sv}", "ValidUntil", g_variant_new_uint64(until));
        return g_variant_new("(@asss@a{sv})", g_variant_builder_end(&ids), json_string_value(action),
                             json_string_value(when), g_variant_builder_end(&options));
}

static void add_schedule(Request *r) {
        GVariant *args;
        json_t *body;

        if (!rest_require_up(r) || !(body = rest_require_body(r, false)))
                return;
        args = add_args(r, body);
        json_decref(body);
        if (args)
                rest_call(r, request_bus(r), KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AddSchedule", args, "(o)",
                          added);
}

static void switched(GObject *source, GAsyncResult *res, gpointer userdata) {
        Request *r = userdata;
        g_autoptr(GVariant) reply = rest_finish_call(source, res, r);
        g_autofree char *path = NULL;

        if (!reply)
                return;
        path = schedule_path(r->id);
        describe(r, path);
}

/* Only "enabled": a schedule's other fields are fixed on the bus, so a
 * changed schedule is a new one (DELETE, then POST). */
static void patch_schedule(Request *r) {
        g_autofree char *path = schedule_path(r->id);
        json_t *body, *enabled, *v;
        const char *key;

        if (!rest_require_up(r) || !(body = rest_require_body(r, false)))
                return;
        json_object_foreach(body, key, v)
                if (strcmp(key, "enabled") != 0) {
                        request_reply_error(r, 400, "bad_request",
                                            "\"%s\" cannot be changed (only \"enabled\"): remove the schedule and add "
                                            "another",
                                            key);
                        json_decref(body);
                        return;
                }
        enabled = json_object_get(body, "enabled");
        if (!json_is_boolean(enabled)) {
                json_decref(body);
                return request_reply_error(r, 400, "bad_request", "\"enabled\" (true or false) is required");
        }
        rest_call(r, request_bus(r), path, KASA_SCHEDULE_IFACE, json_is_true(enabled) ? "Enable" : "Disable", NULL,
                  NULL, switched);
        json_decref(body);
}

static void delete_schedule(Request *r) {
        g_autofree char *path = schedule_path(r->id);

        if (rest_require_up(r))
                rest_call(r, request_bus(r), path, KASA_SCHEDULE_IFACE, "Remove", NULL, NULL, rest_empty_reply);
}

void rest_schedules_handle(Request *r) {
        switch (r->route) {
        case ROUTE_SCHEDULES_LIST:
                return list_schedules(r);
        case ROUTE_SCHEDULES_ADD:
                return add_schedule(r);
        case ROUTE_SCHEDULE_GET:
                return get_schedule(r);
        case ROUTE_SCHEDULE_PATCH:
                return patch_schedule(r);
        case ROUTE_SCHEDULE_DELETE:
                return delete_schedule(r);
        default:
                return request_reply_error(r, 500, "internal", "unhandled route");
        }
}
