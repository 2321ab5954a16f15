/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The time-series store: raw readings, packed hourly blocks and
 * minute/hour/day rollups in one LMDB environment. Knows nothing of the
 * device protocol; a device is a small integer the registry assigns.
 *
 * Not thread-safe: the daemon drives it from its single event loop.
 * All functions return 0 (or a documented positive value) on success and a
 * negative errno on failure.
 */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct Store Store;

typedef struct StoreSample {
        uint32_t device;
        int64_t ts_ms;          /* UTC milliseconds, >= 0 */
        int64_t power_mw;
        int64_t voltage_mv;
        int64_t current_ma;
        int64_t energy_mwh;     /* cumulative, never decreasing */
} StoreSample;

typedef enum StoreResolution {
        STORE_MINUTE,
        STORE_HOUR,
        STORE_DAY,
        _STORE_RESOLUTION_MAX,
} StoreResolution;

typedef struct StoreRollup {
        int64_t period_start_ms;
        int64_t energy_mwh;     /* energy of the deltas ending in this period */
        int64_t power_min_mw;
        int64_t power_avg_mw;   /* over the samples present, gaps excluded */
        int64_t power_max_mw;
        uint64_t count;
        int64_t first_ts_ms;
        int64_t last_ts_ms;
} StoreRollup;

/* Returns the start (UTC ms) of the local day containing ts_ms. */
typedef int64_t (*StoreDayStartFunc)(int64_t ts_ms, void *userdata);

/* Opens (creating if needed) the store in directory 'path'. -EBUSY if this
 * process already has it open. The map starts at LMDB's default and grows
 * (doubling, then by 1 GiB steps) whenever a write finds it full. */
int store_open(const char *path, StoreDayStartFunc day_start, void *userdata, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* Appends samples in one durable write transaction. Per device, timestamps
 * must be strictly increasing (also against what is stored) and the
 * cumulative energy must never decrease; otherwise -EINVAL and nothing is
 * written. */
int store_append(Store *s, const StoreSample *samples, size_t n);

/* Packs closed hours (ending at or before now_ms) of raw rows, with their
 * minute rollups, into blocks. Bounded work per call: returns 1 when it
 * stopped early (call again soon), 0 when nothing is left. */
int store_compact(Store *s, int64_t now_ms);

/* Deletes raw rows older than older_than_ms and the samples of blocks whose
 * whole hour is older; all rollups stay, and so does each device's last
 * sample. Bounded work: returns 1 when it stopped early, 0 when done. */
int store_expire(Store *s, int64_t older_than_ms);

/* Samples with from_ms <= ts < to_ms, from raw rows and blocks alike. */
int store_query_raw(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms,
                    StoreSample **ret, size_t *ret_n);

/* Rollups whose period starts in [from_ms, to_ms). */
int store_query_rollup(Store *s, uint32_t device, StoreResolution res, int64_t from_ms, int64_t to_ms,
                       StoreRollup **ret, size_t *ret_n);

/* Energy of the minutes starting in [from_ms, to_ms): both ends are taken
 * up to whole minutes, the finest rollup kept forever. */
int store_energy(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, int64_t *ret_mwh);

/* The newest sample of a device; -ENOENT if there is none. */
int store_last_sample(Store *s, uint32_t device, StoreSample *ret);

/* Erases everything stored for a device, in one transaction. */
int store_delete_device(Store *s, uint32_t device);

typedef struct StoreStats {
        uint64_t page_size;
        uint64_t used_bytes;            /* pages in use by all databases */
        uint64_t raw_rows;
        uint64_t blocks;
        uint64_t block_bytes;           /* sum of packed block values */
        uint64_t block_minute_bytes;    /* of which the hours' minute rollups */
        uint64_t block_samples;
        /* Pages of each rollup database; minute rollups packed in blocks
         * count with the blocks. */
        uint64_t rollup_bytes[_STORE_RESOLUTION_MAX];
} StoreStats;

/* Space accounting, for benchmarks and diagnostics. Walks all blocks. */
int store_stats(Store *s, StoreStats *ret);
