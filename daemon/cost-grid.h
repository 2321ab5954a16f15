/* SPDX-License-Identifier: MIT */
#pragma once

/* The energy grids of a cost query (cost-query.c): lists of intervals,
 * the hours read as minutes, minutes summed into hours where hours price
 * alike, and the home's sum of its devices' energy. */

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cost.h"

#define HOUR_MS INT64_C(3600000)
#define MINUTE_MS INT64_C(60000)

/* t rounded down to a multiple of unit (> 0), also for t < 0. */
int64_t cost_floor_to(int64_t t, int64_t unit);
/* energy * part / whole, rounded down: shares cut at rising times sum to
 * the whole exactly. */
int64_t cost_share(int64_t energy, int64_t part, int64_t whole);

typedef struct Intervals {
        CostInterval *v;
        size_t n;
} Intervals;

/* Appends v (taken, freed on every path) to l. */
int intervals_append(Intervals *l, CostInterval *v, size_t n);
void intervals_done(Intervals *l);

/* Hours in which a tariff's part begins or ends off the hour (an
 * assignment's since, a tariff's validity): an hour rollup spreads its
 * energy evenly over the hour, so energy used on one side of the change
 * would be priced with the other side's tariff, or with none. Those hours
 * are read as minutes. Sorted, each once. */
typedef struct Cuts {
        int64_t *hours;
        size_t n;
} Cuts;

/* The hour of t, unless t is on the hour (or unbounded). */
int cuts_add_hour(Cuts *c, int64_t t);
void cuts_sort(Cuts *c);
bool cuts_has(const Cuts *c, int64_t hour);

/* Minute intervals of whole hours in [a, b) summed into hour intervals,
 * for a request that hours price as well as minutes; not in the hours of
 * cuts, nor in an hour holding a piece that is not a whole minute (the
 * minute still open, ending at its last sample, when the range reaches
 * past now): summed, the hour would overlap it. */
int intervals_coarsen(Intervals *l, const Cuts *cuts, int64_t a, int64_t b);

/* The home's energy as it is gathered: pieces on the minute or hour grid
 * are added up in place, so that a hundred devices' rollups cost one
 * cell each; other pieces (cut by an assignment, the period still open)
 * are kept for home_sum_pieces(). Cells are made for the hours that have
 * energy only, and the minutes of an hour only when a minute piece comes:
 * memory follows the data, not the length of the range asked for. */
typedef struct HourCell {
        int64_t hour;         /* since the origin: the cell's key */
        int64_t energy_mwh;   /* of whole-hour pieces */
        int64_t *minutes;     /* [60], NULL until a minute piece comes */
} HourCell;

typedef struct HomeSum {
        int64_t origin;
        GHashTable *hours;    /* hour since origin -> HourCell */
        GArray *odd;
} HomeSum;

int home_sum_init(HomeSum *h, int64_t from);
void home_sum_done(HomeSum *h);
int home_sum_add(HomeSum *h, CostInterval p);
/* The sum of overlapping pieces, as disjoint intervals: cut at every
 * piece's start and end, each piece's energy shared by time. The grids'
 * cells join the odd pieces first. */
int home_sum_pieces(HomeSum *h, Intervals *ret);
