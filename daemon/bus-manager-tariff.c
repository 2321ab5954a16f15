/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <math.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "macro.h"
#include "manager-tariff.h"
#include "polkit.h"

/* The Manager's tariff and cost methods and properties: a second vtable
 * on the Manager's path and interface. */

/* The manager's errors as the bus's, with the manager's message. */
static int set_error(sd_bus_error *error, int r, const char *message, const char *what) {
        const char *name;
        switch (r) {
        case -EBADMSG:
        case -EINVAL:
                name = SD_BUS_ERROR_INVALID_ARGS;
                break;
        case -ENOENT:
        case -ENODATA:
                name = KASA_ERROR_NOT_FOUND;
                break;
        case -EBUSY:
                name = KASA_ERROR_IN_USE;
                break;
        case -ENOTTY:
                name = KASA_ERROR_NOT_METERED;
                break;
        case -EAGAIN:
        case -E2BIG:
                name = KASA_ERROR_LIMIT;
                break;
        default:
                return sd_bus_error_set_errnof(error, r, "Failed to %s: %s", what, message ?: strerror(-r));
        }
        return sd_bus_error_setf(error, name, "%s", message ?: strerror(-r));
}

static int property_get_currency(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", manager_currency(userdata));
}

static int property_get_cost(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        double v = strcmp(property, "CostToday") == 0 ? manager_cost_today(userdata) : manager_cost_month(userdata);
        return sd_bus_message_append_basic(reply, 'd', &v);
}

static int reply_paths(sd_bus_message *m, LoadedTariff **t, size_t n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "o");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "o", t[i]->path);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        return r;
}

/* AddTariff and ImportTariff: one tariff in the project's format, or
 * OpenEI URDB JSON. */
static int method_add_tariff(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        _cleanup_free_ LoadedTariff **added = NULL;
        _cleanup_free_ char *message = NULL;
        bool urdb = strcmp(sd_bus_message_get_member(m), "ImportTariff") == 0;
        const char *text;
        size_t n;
        int r;

        r = sd_bus_message_read(m, "s", &text);
        if (r < 0)
                return r;
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_TARIFFS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_tariff_add(mgr, urdb, text, &added, &n, &message);
        if (r < 0)
                return set_error(error, r, message, "add the tariff");
        if (!urdb)
                return sd_bus_reply_method_return(m, "o", added[0]->path);
        return reply_paths(m, added, n);
}

static int method_remove_tariff(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        _cleanup_free_ char *message = NULL;
        const char *path;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return r;
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_TARIFFS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        LoadedTariff *t = manager_tariff_find_path(mgr, path);
        if (!t)
                return sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "No tariff at %s.", path);
        r = manager_tariff_remove(mgr, t, &message);
        if (r < 0)
                return set_error(error, r, message, "remove the tariff");
        return sd_bus_reply_method_return(m, NULL);
}

static int method_activate_tariff(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        _cleanup_(strv_freep) char **paths = NULL;
        _cleanup_free_ Device **devices = NULL;
        _cleanup_free_ char *message = NULL;
        LoadedTariff *t = NULL;
        const char *path;
        uint64_t since;
        size_t n = 0;
        int r;

        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &paths);
        if (r >= 0)
                r = sd_bus_message_read(m, "t", &since);
        if (r < 0)
                return r;
        if (since > (uint64_t) INT64_MAX / 2)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Time out of range.");
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_TARIFFS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (strcmp(path, "/") != 0) {
                t = manager_tariff_find_path(mgr, path);
                if (!t)
                        return sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "No tariff at %s.", path);
        }
        if (strv_length(paths) > 0) {
                r = manager_cost_devices(mgr, (const char *const *) paths, strv_length(paths), &devices, &n,
                                         &message);
                if (r < 0)
                        return set_error(error, r, message, "find the devices");
        }
        r = manager_tariff_activate(mgr, t, devices, n, (int64_t) (since / 1000), &message);
        if (r < 0)
                return set_error(error, r, message, "activate the tariff");
        return sd_bus_reply_method_return(m, NULL);
}

/* The reply to a cost query once it is done: the JSON, or the error. */
static void reply_json(sd_bus_message *m, int r, const char *json, const char *message, const char *what) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

        if (r >= 0)
                r = sd_bus_reply_method_return(m, "s", json);
        else {
                (void) set_error(&error, r, message, what);
                r = sd_bus_reply_method_error(m, &error);
        }
        if (r < 0)
                log_debug_errno(r, "Failed to reply with the costs, ignoring: %m");
}

/* GetCost and GetCostWith. */
static void cost_done(int r, const char *json, const char *message, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;
        reply_json(m, r, json, message, "compute the costs");
}

/* PriceEnergy: the message held the CSV the query read. */
static void price_done(int r, const char *json, const char *message, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = userdata;
        reply_json(m, r, json, message, "price the energy");
}

/* Reads "ao t t s" and starts pricing: the common part of GetCost and
 * GetCostWith, replied to when the query is done. */
static int get_cost(sd_bus_message *m, Manager *mgr, sd_bus_error *error, bool with) {
        _cleanup_(strv_freep) char **paths = NULL;
        _cleanup_free_ Device **devices = NULL;
        _cleanup_free_ char *message = NULL;
        const char *bucket_name, *tariff = NULL;
        uint64_t from, to;
        CostBucket bucket;
        size_t n;
        int r;

        r = sd_bus_message_read_strv(m, &paths);
        if (r >= 0)
                r = sd_bus_message_read(m, "tts", &from, &to, &bucket_name);
        if (r >= 0 && with)
                r = sd_bus_message_read(m, "s", &tariff);
        if (r < 0)
                return r;
        if (manager_cost_bucket(bucket_name, &bucket) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid bucket '%s': use \"\", day or month.", bucket_name);
        if (from > (uint64_t) INT64_MAX / 2 || to > (uint64_t) INT64_MAX / 2)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Time out of range.");
        int64_t from_ms = (int64_t) (from / 1000), to_ms = to == 0 ? manager_now_ms(mgr) + 1 : (int64_t) (to / 1000);
        if (from_ms >= to_ms)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Empty time range: 'from' must be before 'to'.");
        r = manager_cost_devices(mgr, (const char *const *) paths, strv_length(paths), &devices, &n, &message);
        if (r < 0)
                return set_error(error, r, message, "find the devices");
        r = manager_cost_start(mgr, devices, n, from_ms, to_ms, bucket, tariff, cost_done, sd_bus_message_ref(m),
                               &message);
        if (r < 0) {
                sd_bus_message_unref(m);
                return set_error(error, r, message, "compute the costs");
        }
        return 1;
}

static int method_get_cost(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return get_cost(m, userdata, error, false);
}

static int method_get_cost_with(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return get_cost(m, userdata, error, true);
}

/* Parsed and priced on a cost query's thread (a CSV of up to two million
 * rows), replied to when done; the message keeps the CSV meanwhile. */
static int method_price_energy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        const char *tariff, *csv, *tz, *bucket_name;
        CostBucket bucket;
        int r;

        r = sd_bus_message_read(m, "ssss", &tariff, &csv, &tz, &bucket_name);
        if (r < 0)
                return r;
        if (manager_cost_bucket(bucket_name, &bucket) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid bucket '%s': use \"\", day or month.", bucket_name);
        r = manager_price_energy_start(userdata, tariff, csv, tz, bucket, price_done, sd_bus_message_ref(m),
                                       &message);
        if (r < 0) {
                sd_bus_message_unref(m);
                return set_error(error, r, message, "price the energy");
        }
        return 1;
}

static const sd_bus_vtable bus_manager_tariff_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Currency", "s", property_get_currency, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CostToday", "d", property_get_cost, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CostMonth", "d", property_get_cost, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("AddTariff", SD_BUS_ARGS("s", text), SD_BUS_RESULT("o", tariff),
                                method_add_tariff, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ImportTariff", SD_BUS_ARGS("s", urdb_json), SD_BUS_RESULT("ao", tariffs),
                                method_add_tariff, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveTariff", SD_BUS_ARGS("o", tariff), SD_BUS_NO_RESULT,
                                method_remove_tariff, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ActivateTariff", SD_BUS_ARGS("o", tariff, "ao", devices, "t", since),
                                SD_BUS_NO_RESULT, method_activate_tariff, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCost", SD_BUS_ARGS("ao", devices, "t", from, "t", to, "s", bucket),
                                SD_BUS_RESULT("s", json), method_get_cost, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetCostWith",
                                SD_BUS_ARGS("ao", devices, "t", from, "t", to, "s", bucket, "s", tariff),
                                SD_BUS_RESULT("s", json), method_get_cost_with, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PriceEnergy",
                                SD_BUS_ARGS("s", tariff, "s", csv, "s", time_zone, "s", bucket),
                                SD_BUS_RESULT("s", json), method_price_energy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_manager_tariff_register(Manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, KASA_MANAGER_PATH, KASA_MANAGER_IFACE,
                                         bus_manager_tariff_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager's tariff methods: %m");
        return 0;
}
