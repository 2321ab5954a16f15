/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <math.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager-backfill.h"
#include "manager-tariff.h"
#include "manager.h"
#include "readings.h"

/* Internal milli-units to the bus's W, V, A and Wh; an unknown reading
 * (offline, never read) is NaN, so that it cannot pass for 0 W. */
static int append_milli(sd_bus_message *reply, bool known, int64_t v) {
        double d = known ? (double) v / 1000.0 : NAN;
        return sd_bus_message_append_basic(reply, 'd', &d);
}

/* field: offsetof() a reading in MeterReading. */
static int append_reading(sd_bus_message *reply, const Device *d, size_t field) {
        MeterReading r;
        bool known = meter_reading(d, &r);
        return append_milli(reply, known, known ? *(const int64_t *) ((const uint8_t *) &r + field) : 0);
}

static int property_get_power(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_reading(reply, userdata, offsetof(MeterReading, power_mw));
}

static int property_get_voltage(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_reading(reply, userdata, offsetof(MeterReading, voltage_mv));
}

static int property_get_current(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_reading(reply, userdata, offsetof(MeterReading, current_ma));
}

static int property_get_energy_total(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return append_milli(reply, true, meter_energy_total(userdata));
}

static int property_get_energy_today(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        return append_milli(reply, true, meter_energy_today(d, manager_now_ms(d->manager)));
}

static int property_get_cost(sd_bus *bus, const char *path, const char *interface, const char *property,
                             sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        double v = manager_device_cost(d->manager, d, strcmp(property, "CostMonth") == 0);
        return sd_bus_message_append_basic(reply, 'd', &v);
}

/* "t" microseconds from the bus to milliseconds; 0 for "to" means now. */
static int read_range(sd_bus_message *m, Device *d, int64_t *from_ms, int64_t *to_ms, const char **what,
                      sd_bus_error *error) {
        uint64_t from, to;
        int r;

        r = sd_bus_message_read(m, "tts", &from, &to, what);
        if (r < 0)
                return r;
        if (from > (uint64_t) INT64_MAX / 2 || to > (uint64_t) INT64_MAX / 2)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Time out of range.");
        *from_ms = (int64_t) (from / 1000);
        *to_ms = to == 0 ? manager_now_ms(d->manager) + 1 : (int64_t) (to / 1000);
        if (*from_ms >= *to_ms)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Empty time range: 'from' must be before 'to'.");
        return 1;
}

static int query_error(sd_bus_error *error, Device *d, int r) {
        if (r == -E2BIG)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Range too long for this resolution; ask for a coarser one or a shorter range.");
        return sd_bus_error_set_errnof(error, r, "Failed to read the history of %s: %s", d->id, strerror(-r));
}

static int method_get_history(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ HistoryPoint *p = NULL;
        Device *d = userdata;
        const char *res_name;
        int64_t from, to;
        size_t n;
        int r;

        r = read_range(m, d, &from, &to, &res_name, error);
        if (r <= 0)
                return r;
        HistoryResolution res = history_resolution_from_string(res_name);
        if (res < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid resolution '%s': use raw, minute, hour or day.", res_name);
        r = device_history(d, from, to, res, &p, &n);
        if (r < 0)
                return query_error(error, d, r);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(tdddd)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                /* An imported day has no minimum or maximum: NaN says so. */
                r = sd_bus_message_append(reply, "(tdddd)", (uint64_t) p[i].ts_ms * 1000,
                                          p[i].avg_mw / 1000.0, p[i].imported ? NAN : p[i].min_mw / 1000.0,
                                          p[i].imported ? NAN : p[i].max_mw / 1000.0, p[i].energy_mwh / 1000.0);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_get_energy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ EnergyBucket *b = NULL;
        Device *d = userdata;
        const char *bucket;
        int64_t from, to;
        size_t n;
        int r;

        r = read_range(m, d, &from, &to, &bucket, error);
        if (r <= 0)
                return r;
        if (strcmp(bucket, "day") != 0 && strcmp(bucket, "month") != 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid bucket '%s': use day or month.", bucket);
        r = device_energy_buckets(d, from, to, bucket[0] == 'm', &b, &n);
        if (r < 0)
                return query_error(error, d, r);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(td)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = sd_bus_message_append(reply, "(td)", (uint64_t) b[i].start_ms * 1000, b[i].energy_mwh / 1000.0);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static void on_backfill_done(Manager *m, int error, int32_t device_err, const char *message, unsigned imported,
                             void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *path = sd_bus_message_get_path(call);
        Device *d = manager_find_path(m, path);
        int r;

        if (error >= 0)
                r = sd_bus_reply_method_return(call, "u", (uint32_t) imported);
        else {
                if (error == -EBADMSG || error == -EREMOTEIO)
                        sd_bus_error_setf(&e, KASA_ERROR_DEVICE, "Backfill refused: %s.", message);
                else if (error == -ENODEV || !d)
                        sd_bus_error_setf(&e, KASA_ERROR_NOT_FOUND, "The device at %s was removed.", path);
                else if (message)
                        sd_bus_error_setf(&e, KASA_ERROR_OFFLINE, "Backfill of %s failed: %s.", d->id, message);
                else
                        bus_set_device_error(&e, d, error, device_err);
                r = sd_bus_reply_method_error(call, &e);
        }
        if (r < 0)
                log_debug_errno(r, "Failed to send reply, ignoring: %m");
}

static int method_backfill(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Device *d = userdata;
        int r;

        r = polkit_check(d->manager->polkit, m, KASA_ACTION_MANAGE_DEVICES, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_backfill(d->manager, d, on_backfill_done, sd_bus_message_ref(m));
        if (r < 0) {
                sd_bus_message_unref(m);
                if (r == -EBUSY)
                        return sd_bus_error_setf(error, KASA_ERROR_IN_USE, "A backfill of %s runs already.",
                                                 device_root(d)->id);
                return bus_set_device_error(error, d, r, 0);
        }
        return 1;
}

const sd_bus_vtable bus_energy_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Power", "d", property_get_power, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Voltage", "d", property_get_voltage, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Current", "d", property_get_current, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EnergyTotal", "d", property_get_energy_total, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("EnergyToday", "d", property_get_energy_today, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CostToday", "d", property_get_cost, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CostMonth", "d", property_get_cost, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("GetHistory", SD_BUS_ARGS("t", from, "t", to, "s", resolution),
                                SD_BUS_RESULT("a(tdddd)", samples), method_get_history, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetEnergy", SD_BUS_ARGS("t", from, "t", to, "s", bucket),
                                SD_BUS_RESULT("a(td)", energy), method_get_energy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Backfill", SD_BUS_NO_ARGS, SD_BUS_RESULT("u", days_imported), method_backfill,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};
