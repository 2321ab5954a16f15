/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tariff.h"

/* The cost engine: energy per interval + tariffs + a time zone -> a bill,
 * as the utility computes it. Pure: no I/O, no D-Bus, no storage.
 *
 * Each interval's energy is spread evenly over its time and cut where
 * anything that changes its price changes: the tariff in force, the local
 * day (day type, billing cycle, bucket), the time-of-use period on the local
 * wall clock (DST included: a repeated autumn hour is priced twice by its
 * local hour), the demand period, and a tier limit.
 *
 * Money is exact: products are kept in femto-units (1e-15 of the currency)
 * in 128-bit integers; each bill line is rounded once, half away from zero,
 * to the currency's minor unit; a total is the sum of its rounded lines.
 *
 * Cycle charges follow utility practice: tiers count the cycle's energy
 * across all periods (or the day's, with daily tiers) and restart when the
 * tariff changes; energy before `from` that lies in the first cycle still
 * fills the tiers (pass it to price a part of a cycle right) but is not
 * billed. Fixed charges, the minimum and demand charges are prorated by the
 * local days covered (a whole cycle pays them whole, 10 days of a 30-day
 * cycle 10/30); the minimum is a floor on the cycle's energy, adders, fixed
 * and demand lines, topped up by a "minimum" line; demand is the highest
 * average power over any window of the tariff's length within the cycle
 * (and the demand period). Demand and minimum lines appear in the bucket
 * where the cycle's covered part ends. Taxes are computed per bucket on the
 * rounded lines they name. */

typedef struct CostInterval {
        int64_t start_ms, end_ms; /* UTC, start < end */
        int64_t energy_mwh;       /* >= 0 */
} CostInterval;

#define COST_ENERGY_MAX_MWH (INT64_C(1000000000000)) /* a GWh per interval */
#define COST_BUCKETS_MAX 100000

typedef enum CostBucket {
        COST_BUCKET_NONE, /* the whole range */
        COST_BUCKET_DAY,
        COST_BUCKET_MONTH,
} CostBucket;

typedef struct CostLine {
        TariffLine kind;
        const Tariff *tariff;
        const char *name; /* period, adder, charge or tax name, owned by the tariff */
        unsigned tier;    /* energy and demand lines */
        /* energy, adders: mWh; demand: peak mW; fixed, minimum: local days
         * covered, 86400000 a day; tax: the taxed sum in minor units */
        int64_t quantity;
        /* energy, adders: nano per kWh; demand: nano per kW; fixed, minimum:
         * the charge in nano per its unit; tax: ppm */
        int64_t rate;
        int64_t amount; /* minor units, rounded */
        __int128 exact; /* femto-units, before rounding */
        unsigned key;   /* orders and merges lines: period, adder, charge, tax index */
} CostLine;

typedef struct CostBucketBill {
        int64_t start_ms, end_ms;
        CostLine *lines;
        size_t n_lines, n_allocated;
        int64_t energy_mwh;   /* priced */
        int64_t unpriced_mwh; /* at times no tariff covers */
        int64_t sum[_TARIFF_LINE_MAX];
        int64_t total;
} CostBucketBill;

typedef struct CostBill {
        char currency[4];
        unsigned digits;
        CostBucketBill *buckets;
        size_t n_buckets;
        int64_t energy_mwh, unpriced_mwh;
        int64_t sum[_TARIFF_LINE_MAX];
        int64_t total;
} CostBill;

/* A part of the billed energy as the walk prices it, for a caller that
 * wants costs finer than a bucket (an export's rows): one piece of one
 * interval, cut where its price changes, and the line it adds to. */
typedef struct CostPart {
        int64_t start_ms, end_ms; /* within one interval */
        const Tariff *tariff;     /* the request's; NULL: no tariff prices it */
        TariffLine kind;          /* energy or adder */
        unsigned key, tier;       /* as CostLine's */
        int64_t mwh;
        __int128 exact; /* femto-units, before rounding */
} CostPart;

typedef struct CostRequest {
        const Tariff *const *tariffs; /* validity ranges must not overlap; one currency */
        size_t n_tariffs;
        const CostInterval *intervals; /* sorted, not overlapping */
        size_t n_intervals;
        const char *time_zone; /* IANA name; NULL or "": the system's */
        int64_t from_ms, to_ms;
        CostBucket bucket;
        /* Optional: called in time order for every part of the energy
         * billed (not the energy before from that only fills tiers); a
         * negative return ends cost_compute() with it. */
        int (*part)(const CostPart *p, void *userdata);
        void *part_userdata;
} CostRequest;

/* A refusal of the request is -EINVAL with a message in *ret_error. */
int cost_compute(const CostRequest *req, CostBill **ret, char **ret_error);
CostBill *cost_bill_free(CostBill *b);
static inline void cost_bill_freep(CostBill **b) {
        cost_bill_free(*b);
}
#define _cleanup_cost_bill_ __attribute__((cleanup(cost_bill_freep)))

/* Femto-units to minor units of a currency of `digits` decimals, rounded
 * half away from zero as bill lines are. */
int64_t cost_round_minor(__int128 femto, unsigned digits);

/* "12.34", "-0.05", "1234" (JPY): minor units in the currency's digits. */
#define COST_AMOUNT_MAX 32
char *cost_format_amount(int64_t minor, unsigned digits, char buf[static COST_AMOUNT_MAX]);
/* mWh as kWh to the Wh: "23.000". */
char *cost_format_kwh(int64_t mwh, char buf[static COST_AMOUNT_MAX]);

/* The breakdown as JSON: currency, total, energy, adders, fixed, demand,
 * minimum, tax (decimal strings), energy_kwh, and buckets with their lines;
 * time stamps are local RFC 3339 in time_zone. */
json_t *cost_bill_to_json(const CostBill *b, const char *time_zone);
