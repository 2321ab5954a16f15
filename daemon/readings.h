/* SPDX-License-Identifier: MIT */
#pragma once

/* History and energy queries of one device, in the shapes the API returns. */

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
} HistoryPoint;

typedef struct EnergyBucket {
        int64_t start_ms;
        int64_t energy_mwh;
} EnergyBucket;

/* Longest range one query may span, so one call cannot pin the daemon. */
#define READINGS_MAX_POINTS 100000
#define READINGS_MAX_BUCKETS 3700

HistoryResolution history_resolution_from_string(const char *s);
int device_history(Device *d, int64_t from_ms, int64_t to_ms, HistoryResolution res, HistoryPoint **ret,
                   size_t *ret_n);
int device_energy_buckets(Device *d, int64_t from_ms, int64_t to_ms, bool monthly, EnergyBucket **ret,
                          size_t *ret_n);
