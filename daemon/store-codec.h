/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The store's byte formats and rollup arithmetic, with no I/O: varints,
 * rollup values, packed sample runs (LMDB blocks and the in-memory tail),
 * minute sections and the split of a poll interval's energy over periods.
 * See the format comment at the top of store-db.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
/* One step past the next local midnight from any midnight, for day lengths
 * of 18 to 36 hours (DST shifts are at most a couple of hours). */
#define NEXT_DAY_PROBE_MS (36 * HOUR_MS)

#define VARINT_MAX 10
#define SAMPLE_FIELDS_MAX (5 * VARINT_MAX)

uint64_t zigzag(int64_t v);
int64_t unzigzag(uint64_t v);
int64_t wrap_sub(int64_t a, int64_t b);
int64_t wrap_add(int64_t a, int64_t b);
int64_t floor_to(int64_t t, int64_t unit);
uint8_t *put_uvarint(uint8_t *p, uint64_t v);
uint8_t *put_zz(uint8_t *p, int64_t v);

typedef struct Reader {
        const uint8_t *p, *end;
        bool bad;
} Reader;

static inline Reader reader_make(const void *p, size_t n) {
        return (Reader) { .p = p, .end = (const uint8_t *) p + n };
}

uint64_t get_uvarint(Reader *r);
int64_t get_zz(Reader *r);
/* Whole input consumed and well formed. */
static inline bool reader_done(const Reader *r) {
        return !r->bad && r->p == r->end;
}

/* A growing byte buffer. */
typedef struct Buf {
        uint8_t *data;
        size_t size, allocated;
} Buf;

int buf_reserve(Buf *b, size_t more);
/* Gives back what the buffer holds beyond its size (kept if realloc fails). */
void buf_trim(Buf *b);
void buf_done(Buf *b);

typedef struct SampleArray {
        StoreSample *items;
        size_t n, allocated;
} SampleArray;

int sample_array_push(SampleArray *a, const StoreSample *x);
void sample_array_done(SampleArray *a);

/* A rollup being summed. Every field adds up across contributions, so the
 * parts of a period held in several places (blocks written by different
 * checkpoints, the in-memory tail) merge into the same rollup. count == 0
 * (a period only crossed by a poll interval) leaves first/last unset. */
typedef struct Agg {
        uint64_t count;         /* samples inside the period */
        int64_t energy;         /* mWh */
        int64_t covered;        /* ms of poll intervals inside the period, gaps excluded */
        int64_t pmin, pmax;
        int64_t psum;           /* of the samples inside */
        int64_t first, last;
} Agg;

void agg_merge(Agg *into, const Agg *x);
/* Average power: energy over covered time, or the samples' mean when no
 * time is covered (a first sample, or only a gap). */
int64_t agg_average(const Agg *a);
void agg_to_rollup(int64_t start, const Agg *a, StoreRollup *ret);

#define AGG_VALUE_MAX (1 + 9 * VARINT_MAX)
/* A rollup value (hour, day and v1 minute rows); version 1 values (no
 * covered time) decode with covered = 0. */
size_t agg_encode(int64_t start, const Agg *a, uint8_t buf[static AGG_VALUE_MAX]);
int agg_decode(int64_t start, const void *data, size_t size, Agg *ret);

typedef struct Period {
        int64_t start;
        Agg a;
} Period;

typedef struct PeriodArray {
        Period *items;
        size_t n, allocated;
} PeriodArray;

int period_array_push(PeriodArray *a, int64_t start, const Agg *g);
void period_array_done(PeriodArray *a);
/* Sorts by start and merges periods that appear more than once. */
void period_array_normalize(PeriodArray *a);

/* Period arithmetic of one resolution; day boundaries come from the
 * caller's function. */
typedef struct Periods {
        StoreResolution res;
        StoreDayStartFunc day_start;
        void *userdata;
        int64_t gap_ms;
} Periods;

int periods_start(const Periods *p, int64_t ts, int64_t *ret);
int periods_next(const Periods *p, int64_t start, int64_t *ret);

/* Adds the contributions of sample x, whose previous sample is prev (NULL
 * for a device's first), to out, which must hold periods in increasing
 * order (they are merged into its last element when equal). See store.h
 * for the rule. */
int periods_add(const Periods *p, const StoreSample *prev, const StoreSample *x, PeriodArray *out);

/* The energy of the interval prev -> x that falls in [a, b), under the same
 * rule (a gap's energy at x's time). */
int64_t interval_energy(const Periods *p, const StoreSample *prev, const StoreSample *x, int64_t a, int64_t b);

/* Packed samples: per sample zz(dt - previous dt), zz(dpower), zz(dvoltage),
 * zz(dcurrent), zz(denergy), starting from *prev and *prev_dt, which are
 * updated. */
uint8_t *samples_encode_one(uint8_t *p, StoreSample *prev, int64_t *prev_dt, const StoreSample *x);
int samples_decode_one(Reader *r, StoreSample *prev, int64_t *prev_dt);

/* A tail sample: uvarint (seq - previous seq) of its round, then the
 * packed sample. */
int tail_decode_one(Reader *r, StoreSample *prev, int64_t *prev_dt, uint64_t *seq);

/* Minute sections. Version 1: uvarint n (<= 60) then per minute uvarint
 * index in the hour, ...; version 2: see store-db.c. */
#define MINUTE_FIELDS_MAX (9 * VARINT_MAX)
uint8_t *minutes_encode_v2(uint8_t *p, int64_t base, const Period *m, size_t n);
int minutes_decode(Reader *r, unsigned version, int64_t base, int64_t from_ms, int64_t to_ms, PeriodArray *out);

/* A log record holds the entries of the rounds' samples and counters, as
 * they came since the record before: uvarint base_ts, uvarint n, then per
 * entry uvarint device, u8 flags (ENTRY_*), the sample's fields (time as
 * zz from base_ts) if it has one, and the counter's. A counter comes with
 * its device's sample of the same time almost always, so what it shares
 * with it (time, cumulative energy, power) is not written again and its
 * counter and interval are written relative to each other: an entry is
 * about 26 bytes, a round of 100 plugs fits one page of the log. */
enum {
        ENTRY_SAMPLE = 1 << 0,
        ENTRY_COUNTER = 1 << 1,
        ENTRY_SAME_TS = 1 << 2,         /* counter.ts_ms == sample.ts_ms */
        ENTRY_SAME_ENERGY = 1 << 3,     /* counter.cumulative_mwh == sample.energy_mwh */
        ENTRY_SAME_POWER = 1 << 4,      /* counter.power_mw == sample.power_mw */
        _ENTRY_FLAGS = (1 << 5) - 1,
};
#define ENTRY_SIZE_MAX (1 + VARINT_MAX + 11 * VARINT_MAX)
uint8_t *log_entry_put(uint8_t *p, int64_t base, const StoreSample *x, const StoreCounter *c);
/* ret_flags: ENTRY_SAMPLE and ENTRY_COUNTER say which of *x and *c it filled. */
int log_entry_get(Reader *r, int64_t base, StoreSample *x, StoreCounter *c, unsigned *ret_flags);
