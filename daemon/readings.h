/* SPDX-License-Identifier: MIT */
#pragma once

/* Readings, history and energy of one device, in the shapes the API
 * returns. A strip whose outlets are metered is a meter too: the sum of
 * its outlets. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device.h"

typedef enum HistoryResolution {
        HISTORY_RAW,
        HISTORY_MINUTE,
        HISTORY_HOUR,
        HISTORY_DAY,
        _HISTORY_RESOLUTION_INVALID = -1,
} HistoryResolution;

typedef struct HistoryPoint {
        int64_t ts_ms;
        int64_t avg_mw, min_mw, max_mw;
        int64_t energy_mwh;
        /* A day taken from the device's own statistics (backfill): energy
         * only, its average over the day's length, no minimum or maximum
         * (min_mw and max_mw are 0). */
        bool imported;
} HistoryPoint;

typedef struct EnergyBucket {
        int64_t start_ms;
        int64_t energy_mwh;
} EnergyBucket;

/* Longest range one query may span, so one call cannot pin the daemon. */
#define READINGS_MAX_POINTS 100000
#define READINGS_MAX_BUCKETS 3700

typedef struct MeterReading {
        int64_t power_mw, voltage_mv, current_ma;
} MeterReading;

/* Whether d carries the EnergyMeter interface: a metered plug or outlet,
 * or a strip with metered outlets. */
bool device_has_meter(const Device *d);
/* The readings of the last poll; false when they are unknown (offline,
 * not read yet; a strip: while one of its metered outlets' is). A strip's
 * power and current are its outlets' sums, its voltage their mean. */
bool meter_reading(const Device *d, MeterReading *ret);
int64_t meter_energy_total(const Device *d);
int64_t meter_energy_today(Device *d, int64_t now_ms);

HistoryResolution history_resolution_from_string(const char *s);
/* Day resolution includes the days imported from the device's own
 * statistics (before kasamond recorded it), marked imported; a day
 * kasamond recorded is never also an imported one.
 * A strip's history has one entry per time any outlet has one: raw samples
 * of one poll round share their time and rollup periods are aligned, so
 * the entry sums the outlets' power, minimum, maximum and energy of that
 * time (the sums of minima and maxima bound the strip's own); it is
 * imported when any outlet's is. */
int device_history(Device *d, int64_t from_ms, int64_t to_ms, HistoryResolution res, HistoryPoint **ret,
                   size_t *ret_n);
int device_energy_buckets(Device *d, int64_t from_ms, int64_t to_ms, bool monthly, EnergyBucket **ret,
                          size_t *ret_n);
