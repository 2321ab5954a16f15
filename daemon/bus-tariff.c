/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "macro.h"
#include "manager-tariff.h"

/* Tariff objects: /org/kasamond/Kasa1/tariff/<id>. */

static uint64_t usec(int64_t ms, int64_t open) {
        return ms == open || ms <= 0 ? 0 : (uint64_t) ms * 1000;
}

static int property_get_id(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        LoadedTariff *t = userdata;
        char id[32];
        snprintf(id, sizeof id, "%" PRId64, t->row.id);
        return sd_bus_message_append(reply, "s", id);
}

static int property_get_text(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        LoadedTariff *t = userdata;
        const char *v = strcmp(property, "Name") == 0      ? t->row.name
                        : strcmp(property, "Utility") == 0 ? t->row.utility
                                                           : t->row.currency;
        return sd_bus_message_append(reply, "s", v ?: "");
}

static int property_get_valid(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        LoadedTariff *t = userdata;
        return sd_bus_message_append(reply, "t",
                                     strcmp(property, "ValidFrom") == 0 ? usec(t->row.valid_from_ms, INT64_MIN)
                                                                        : usec(t->row.valid_until_ms, INT64_MAX));
}

static int property_get_active(sd_bus *bus, const char *path, const char *interface, const char *property,
                               sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        LoadedTariff *t = userdata;
        return sd_bus_message_append(reply, "b", manager_tariff_is_active(t->manager, t));
}

static int property_get_devices(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        LoadedTariff *t = userdata;
        char **l = NULL;
        int r = manager_tariff_devices(t->manager, t, &l);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "o");
        for (char **p = l; r >= 0 && *p; p++)
                r = sd_bus_message_append(reply, "o", *p);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
        return r;
}

static int method_describe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        LoadedTariff *t = userdata;
        _cleanup_free_ char *json = manager_tariff_describe(t->manager, t);

        if (!json)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", json);
}

const sd_bus_vtable bus_tariff_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "s", property_get_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Name", "s", property_get_text, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Utility", "s", property_get_text, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Currency", "s", property_get_text, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ValidFrom", "t", property_get_valid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("ValidUntil", "t", property_get_valid, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Active", "b", property_get_active, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Devices", "ao", property_get_devices, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Describe", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", json), method_describe,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static int find_tariff(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                       sd_bus_error *error) {
        LoadedTariff *t = manager_tariff_find_path(userdata, path);
        if (!t)
                return 0;
        *found = t;
        return 1;
}

static int enumerate_tariffs(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Manager *m = userdata;
        size_t n = manager_tariff_count(m);
        char **l = calloc(n + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i] = strdup(manager_tariff_get(m, i)->path);
                if (!l[i]) {
                        for (size_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return -ENOMEM;
                }
        }
        *nodes = l;
        return 1;
}

int bus_tariff_register(Manager *m) {
        int r;

        r = sd_bus_add_fallback_vtable(m->bus, NULL, KASA_TARIFF_PREFIX, KASA_TARIFF_IFACE, bus_tariff_vtable,
                                       find_tariff, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the tariff objects: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, KASA_TARIFF_PREFIX, enumerate_tariffs, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the tariff enumerator: %m");
        return bus_manager_tariff_register(m);
}
