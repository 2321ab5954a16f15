/* SPDX-License-Identifier: MIT */

/* Describe(): the one JSON form of a device and of the manager, which
 * kasactl --json prints and the bridge will serve. */

#include "manager.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "readings.h"

static json_t *device_json(Device *d) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:b,s:I,s:o,s:i,s:b}",
                              "id", d->id, "path", d->path, "alias", d->alias, "model", d->model,
                              "address", d->address, "mac", d->mac, "hardware_version", d->hw_ver,
                              "firmware_version", d->sw_ver, "on", d->on, "online", d->online,
                              "last_seen", (json_int_t) d->last_seen_usec,
                              "parent", d->parent ? json_string(d->parent->id) : json_null(),
                              "rssi", d->rssi, "metered", device_has_meter(d));
        if (o && d->n_outlets > 0) {
                json_t *ids = json_array();
                for (size_t i = 0; i < d->n_outlets; i++)
                        if (d->outlets[i])
                                json_array_append_new(ids, json_string(d->outlets[i]->id));
                json_object_set_new(o, "outlets", ids);
        }
        /* As the Countdown property says it, null when none runs. */
        if (o)
                json_object_set_new(o, "countdown",
                                    d->countdown_timer
                                            ? json_pack("{s:s,s:I}", "action",
                                                        device_action_to_string(d->countdown_action), "at",
                                                        (json_int_t) d->countdown_realtime_usec)
                                            : json_null());
        if (o && device_has_meter(d)) {
                int64_t now = manager_now_ms(d->manager);
                MeterReading r;
                bool known = meter_reading(d, &r);
                /* Unknown readings (offline, never read) are null, not 0. */
                json_t *e = json_pack("{s:o,s:o,s:o,s:f,s:f}",
                                      "power", known ? json_real(r.power_mw / 1000.0) : json_null(),
                                      "voltage", known ? json_real(r.voltage_mv / 1000.0) : json_null(),
                                      "current", known ? json_real(r.current_ma / 1000.0) : json_null(),
                                      "energy_total", meter_energy_total(d) / 1000.0,
                                      "energy_today", meter_energy_today(d, now) / 1000.0);
                json_object_set_new(o, "meter", e);
        }
        return o;
}

char *device_describe(Device *d) {
        json_t *o = device_json(d);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
}

static int compare_id(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

char *manager_describe(Manager *m) {
        json_t *devs = json_array(), *o;
        guint n;
        gpointer *ids = g_hash_table_get_keys_as_array(m->devices, &n);
        char *s;

        qsort(ids, n, sizeof(gpointer), compare_id);
        for (guint i = 0; i < n; i++)
                json_array_append_new(devs, device_json(manager_find(m, ids[i])));
        g_free(ids);
        o = json_pack("{s:s,s:f,s:f,s:o}", "version", m->version, "poll_interval",
                      m->config.poll_interval_usec / 1e6, "total_power", manager_total_power(m) / 1000.0, "devices",
                      devs);
        s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
}

