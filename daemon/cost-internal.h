/* SPDX-License-Identifier: MIT */
#pragma once

/* What cost.c (the walk over time) and cost-bill.c (lines, rounding,
 * demand peaks, JSON) share; cost-query-from.c adds lines of two bills
 * and finishes them. */

#include "cost.h"

/* Proration counts local days in this unit: a 24-hour day's milliseconds,
 * a 23- or 25-hour day stretched to the same count. */
#define COST_DAY_UNITS INT64_C(86400000)
#define COST_FEMTO_PER_NANO INT64_C(1000000)

typedef __int128 i128;

/* Adds to the line of that kind, tariff, key and tier, or starts it. */
int cost_add_line(CostBucketBill *b, TariffLine kind, const Tariff *t, unsigned key, unsigned tier,
                  const char *name, int64_t rate, int64_t quantity, i128 exact);

/* Rounds every line, adds the taxes, sums buckets and the bill. */
int cost_finish(CostBill *bill, const Tariff *const *tariffs, size_t n_tariffs);

/* Division rounded half away from zero; d > 0. */
i128 cost_div_round(i128 n, i128 d);

/* x * m / d rounded like cost_div_round, for |x| < 2^100, 0 <= m and
 * 0 < d < 2^32. */
i128 cost_mul_div_round(i128 x, int64_t m, int64_t d);

typedef struct CostPiece {
        int64_t t0, t1, mwh;
} CostPiece;

/* The highest average power (mW) over any window_ms long window, power
 * being each piece's energy spread evenly over it (zero between pieces).
 * Pieces are sorted and do not overlap. */
int cost_peak_mw(const CostPiece *p, size_t n, int64_t window_ms, int64_t *ret);
