/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The time-series store: raw readings, packed blocks and minute/hour/day
 * rollups. Knows nothing of the device protocol; a device is a small
 * integer the registry assigns.
 *
 * Writes never wait for the disk. store_add() validates samples, adds
 * them to an in-memory tail (kept packed) and queues them for the store's
 * writer thread; store_commit_round() ends a round, and the writer then
 * appends the round to a write-ahead log in the store's directory and
 * fdatasyncs it (one write and one fdatasync per round, or per batch of
 * rounds when they come faster than the disk). Every checkpoint interval
 * of sample time, or when the tail passes a byte bound, the writer
 * checkpoints the tail into LMDB in one synced transaction, after which
 * the log is recycled. Queries read LMDB and the tail together and see
 * every sample of the rounds the writer has written, checkpointed or not
 * (store_sync() waits for that): what a reader saw survives a kill -9.
 *
 * Guarantees: a kill -9 loses nothing that queries showed, i.e. at most
 * the round not yet ended; a power loss loses at most the round not yet
 * ended and synced (the writer syncs right after writing it;
 * store_sync() waits for it). LMDB is never damaged by either (its
 * commits are synced, the log's torn tail is discarded at open).
 *
 * Threads: every function may be called from one thread (the daemon's
 * loop) while the store's own writer thread runs; the store's functions
 * are not meant to be called from several threads at once, except the
 * queries (store_query_raw, store_query_rollup, store_energy), which
 * other threads may run at the same time (the cost queries' workers).
 *
 * Rollups (minute, hour, local day): each poll interval (previous sample
 * -> this sample of the device) spreads its energy (the difference of the
 * cumulative counters) evenly over its time, so an interval crossing a
 * period boundary is split between the periods by time, and its time
 * counts as covered in them. An interval longer than the gap limit (or a
 * device's first sample) covers no time; a gap's energy goes whole to the
 * period holding the sample that ends it, so the energy of any run of
 * adjacent periods is exactly the cumulative difference across them.
 * Average power = energy / covered time (the samples' mean when no time is
 * covered). count, first and last are about the samples inside the period;
 * min and max are over the samples whose interval touches it.
 *
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

/* A device's energy-counter state (see energy.h), stored with the round it
 * belongs to so that the two always agree after a crash. */
typedef struct StoreCounter {
        uint32_t device;
        int64_t ts_ms;
        int64_t cumulative_mwh;
        int64_t counter_mwh;
        int64_t lo_mwh, hi_mwh;
        int64_t power_mw;
} StoreCounter;

typedef enum StoreResolution {
        STORE_MINUTE,
        STORE_HOUR,
        STORE_DAY,
        _STORE_RESOLUTION_MAX,
} StoreResolution;

typedef struct StoreRollup {
        int64_t period_start_ms;
        int64_t energy_mwh;     /* the period's share of the intervals' energy */
        int64_t power_min_mw;
        int64_t power_avg_mw;   /* energy / covered time */
        int64_t power_max_mw;
        uint64_t count;         /* samples inside the period */
        int64_t covered_ms;     /* time of poll intervals inside, gaps excluded */
        int64_t first_ts_ms;    /* first and last sample inside; the period */
        int64_t last_ts_ms;     /* start when there is none */
} StoreRollup;

/* Returns the start (UTC ms) of the local day containing ts_ms. Called from
 * the writer thread too: it must be thread-safe. */
typedef int64_t (*StoreDayStartFunc)(int64_t ts_ms, void *userdata);

#define STORE_GAP_MS_DEFAULT (5 * 60 * 1000)
#define STORE_CHECKPOINT_INTERVAL_MS_DEFAULT (60 * 60 * 1000)
#define STORE_TAIL_MAX_BYTES_DEFAULT (256u << 10)
#define STORE_PENDING_MAX_BYTES_DEFAULT (8u << 20)
/* 32-bit boards cannot map much more than 2 GiB. */
#define STORE_MAP_MAX_BYTES_DEFAULT (sizeof(void *) < 8 ? UINT64_C(1) << 30 : UINT64_C(64) << 30)

typedef struct StoreOptions {
        StoreDayStartFunc day_start;
        void *userdata;
        int64_t gap_ms;                 /* 0: STORE_GAP_MS_DEFAULT; at most 1 h */
        /* Sample time between checkpoints (CompactAfter=); 0: default. */
        int64_t checkpoint_interval_ms;
        /* The tail is checkpointed early when it holds this many bytes. */
        size_t tail_max_bytes;
        /* While the disk refuses writes, rounds are kept in memory up to
         * this; further rounds are refused. */
        size_t pending_max_bytes;
        uint64_t map_max_bytes;         /* largest LMDB map; 0: default */
        /* Raw samples older than this (behind the newest sample) are
         * expired after each checkpoint; 0: kept. */
        int64_t raw_retention_ms;
        size_t log_segment_bytes;       /* 0: 4 MiB */
} StoreOptions;

/* Opens (creating if needed) the store in directory 'path' and replays its
 * log. -EBUSY if this process already has it open. */
int store_open_with(const char *path, const StoreOptions *options, Store **ret);
/* The same with the defaults. */
int store_open(const char *path, StoreDayStartFunc day_start, void *userdata, Store **ret);
/* Writes and checkpoints everything appended, then closes. */
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* Appends one round: samples, and the counter states that go with them
 * (counters may be NULL). A bad sample (negative time or energy, time not
 * after the device's previous sample, energy below it) is dropped alone;
 * returns how many were dropped. Fails, taking nothing, with the disk's
 * error (-ENOSPC, -EIO, -EFBIG for a map at its cap, ...) when the rounds
 * kept in memory while the disk fails have reached their bound. */
int store_append_round(Store *s, const StoreSample *samples, size_t n, const StoreCounter *counters,
                       size_t n_counters);
int store_append(Store *s, const StoreSample *samples, size_t n);

/* The same in two steps, for a round gathered as its devices answer:
 * store_add() takes samples (and counter states) as store_append_round()
 * does, each call one log record written at once; store_commit_round()
 * ends the round: the writer fdatasyncs the log. */
int store_add(Store *s, const StoreSample *samples, size_t n, const StoreCounter *counters, size_t n_counters);
int store_commit_round(Store *s);

/* Ends the open round and waits until everything appended so far is in
 * the log, fdatasync'd. */
int store_sync(Store *s);
/* Waits until everything appended so far is checkpointed into LMDB (and
 * expired as configured). */
int store_checkpoint(Store *s);
/* The waiting part alone, from any thread: everything recorded before
 * the last store_commit_round() (and what came since) in LMDB. */
int store_checkpoint_wait(Store *s);
/* 0 while the store writes normally, else the error that keeps it from
 * writing (it retries by itself). */
int store_state(Store *s);

/* Deletes raw samples older than older_than_ms, and the samples of blocks
 * wholly older; rollups and each device's last sample stay. Bounded work:
 * returns 1 when it stopped early, 0 when done. Waits for the disk: for
 * tests and tools (the writer thread expires by itself). */
int store_expire(Store *s, int64_t older_than_ms);

/* Samples with from_ms <= ts < to_ms. -E2BIG, before decoding them, when
 * there are more than max. */
int store_query_raw(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max,
                    StoreSample **ret, size_t *ret_n);

/* Rollups whose period starts in [from_ms, to_ms); -E2BIG for more than
 * max. */
int store_query_rollup(Store *s, uint32_t device, StoreResolution res, int64_t from_ms, int64_t to_ms,
                       size_t max, StoreRollup **ret, size_t *ret_n);

/* Energy of the minutes starting in [from_ms, to_ms): both ends are taken
 * up to whole minutes, the finest rollup kept forever. */
int store_energy(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, int64_t *ret_mwh);

/* A local day's energy as the device itself counted it (its day
 * statistics), for a day before kasamond recorded the device: a lower
 * resolution (energy only) kept apart from the rollups, which stay
 * kasamond's own count (store-import.c). */
typedef struct StoreImportedDay {
        int64_t day_start_ms;   /* a local day start (the day_start function's) */
        int64_t energy_mwh;     /* >= 0 */
} StoreImportedDay;

/* Imports days of a device in one synced transaction, taking only those
 * that end by before_ms (the caller's "today") and before the local day
 * of the device's first recorded sample: a day kasamond recorded, even
 * in part, is never imported, so no energy counts twice. A day already
 * imported is replaced, never added to. Returns in *ret_written how many
 * were written (new, or with another energy than before). -EINVAL, taking
 * nothing, for a start that is not a local day start, a negative energy
 * or a day given twice. Safe from any thread (it touches only LMDB), like
 * the queries; it waits for the disk. */
int store_import_days(Store *s, uint32_t device, const StoreImportedDay *days, size_t n, int64_t before_ms,
                      size_t *ret_written);
/* Imported days starting in [from_ms, to_ms), oldest first; -E2BIG for
 * more than max. */
int store_query_imported(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max,
                         StoreImportedDay **ret, size_t *ret_n);

/* The newest sample of a device; -ENOENT if there is none. */
int store_last_sample(Store *s, uint32_t device, StoreSample *ret);
/* The newest counter state appended for a device; -ENOENT if none. */
int store_counter(Store *s, uint32_t device, StoreCounter *ret);

/* Erases everything stored for a device, imported days included. Waits
 * for the disk. */
int store_delete_device(Store *s, uint32_t device);

typedef struct StoreStats {
        uint64_t page_size;
        uint64_t used_bytes;            /* pages in use by all databases */
        uint64_t map_bytes;             /* the current map size */
        uint64_t raw_rows;              /* of a version 1 store */
        uint64_t blocks;
        uint64_t block_bytes;           /* sum of packed block values */
        uint64_t block_minute_bytes;    /* of which the minute rollups */
        uint64_t block_samples;
        uint64_t tail_samples;          /* not checkpointed yet */
        uint64_t tail_bytes;
        /* Pages of each rollup database; minute rollups packed in blocks
         * count with the blocks. */
        uint64_t rollup_bytes[_STORE_RESOLUTION_MAX];
} StoreStats;

/* A compacted copy of the LMDB file into fd (store-snapshot.c), for
 * backups: one consistent read transaction, from any thread; what is in
 * the log and not checkpointed is not in it (store_checkpoint() first). */
int store_copy_compact(Store *s, int fd);

/* Space accounting, for benchmarks and diagnostics. Walks all blocks. */
int store_stats(Store *s, StoreStats *ret);
