/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cost.h"
#include "db-tariff.h"
#include "tariff.h"

/* Costs of recorded energy: assignments + tariffs + the store's energy per
 * device + a range -> the cost engine's requests, and their bills put
 * together. Pure: the energy comes through CostSourceOps (the store in the
 * daemon, a fake in tests), nothing here knows D-Bus.
 *
 * Which tariff prices what: from each assignment's `since` on, its tariff
 * prices the home, or the one device it names (a device's own tariff
 * overrides the home's until the device is given back to the home); each
 * tariff is clipped to the times it was assigned (and to its own validity),
 * so a past period keeps the tariff of its time. A what-if tariff prices
 * everything instead, within its own validity.
 *
 * The home is one meter: its bill prices the sum of the energy of every
 * device it prices, at each time, so tiers count the home's energy and
 * demand is the home's peak; its fixed charges, minimum and demand charges
 * are billed there once. A device's bill shows what its own energy costs:
 * priced with the home's tariff its energy, adder and tax lines only
 * (counting tiers over its own energy alone), priced with a tariff of its
 * own a whole bill, fixed charges included (a sub-meter on another plan is
 * a meter of its own). The total is the home's bill plus the devices' bills
 * with tariffs of their own; the home's share of a device's bill is
 * information, not added twice.
 *
 * Energy: hourly rollups, with minute rollups for the partial hours at the
 * ends of the range; minute rollups throughout where hours would blur a
 * price: a tariff with demand charges (its windows are 15 minutes or so),
 * periods that change within an hour, or a time zone whose hours are not
 * UTC's; and minute rollups for the hours in which a tariff's part begins
 * or ends off the hour (ActivateTariff's `since` is to the minute): an
 * hour's energy would be spread evenly over it, priced partly with the
 * other side's tariff or left unpriced. With tiers, the range is extended back to the start of the
 * billing cycle (or day) containing `from`, so that they count the energy
 * used before it (the engine bills from `from` only); that energy only
 * counts, so whole local days of it are read as day rollups, unless a
 * tariff starts or ends among them. */

typedef struct CostSourceOps {
        /* The rollups of device (minutes or hours) whose period starts in
         * [from_ms, to_ms), as intervals sorted by time; none is no error. */
        int (*energy)(void *userdata, const char *device, bool minutes, int64_t from_ms, int64_t to_ms,
                      CostInterval **ret, size_t *ret_n);
        /* The same of local days (each interval one local day), or NULL. */
        int (*days)(void *userdata, const char *device, int64_t from_ms, int64_t to_ms, CostInterval **ret,
                    size_t *ret_n);
} CostSourceOps;

typedef struct CostQueryTariff {
        int64_t id;
        const Tariff *tariff;
} CostQueryTariff;

typedef struct CostQueryDevice {
        const char *id;
        const char *alias; /* may be NULL */
} CostQueryDevice;

/* A part of a device's bill (CostPart) and which line it adds to, told
 * the same way in every query of the same tariffs and assignments: the
 * tariff as the query was given it (q->tariffs or q->what_if) and the part
 * of time it prices there (its assignment clipped to its validity). */
typedef struct CostQueryPart {
        const CostPart *part; /* part->tariff is the query's copy: use tariff */
        const Tariff *tariff; /* NULL: no tariff prices it */
        int64_t from_ms, until_ms;
} CostQueryPart;

typedef struct CostQuery {
        const CostQueryTariff *tariffs;
        size_t n_tariffs;
        const TariffAssignment *assignments; /* sorted by since, then id */
        size_t n_assignments;
        const Tariff *what_if; /* prices everything; assignments unused */
        const CostQueryDevice *devices;
        size_t n_devices;
        const CostSourceOps *ops;
        void *userdata;
        const char *time_zone; /* NULL or "": the system's */
        int64_t from_ms, to_ms;
        CostBucket bucket;

        /* For costs finer than a bucket (an export's rows), all optional:
         * minute rollups throughout, so that a minute's cost is its own
         * energy's (the bill is the same: rounded hours and minutes are
         * priced alike); no home bill (the result's total is the devices'
         * own tariffs' only); and the parts of each device's bill, in time
         * order, device after device (a negative return ends the query). */
        bool minutes;
        bool devices_only;
        int (*part)(size_t device, const CostQueryPart *p, void *userdata);
        void *part_userdata;
} CostQuery;

typedef struct CostQueryResult CostQueryResult;

/* -EINVAL (a bad range, time zone, tariffs in two currencies) or -ENODATA
 * (no tariff at all) with a message in *ret_error; errors of the source as
 * they are. */
int cost_query_run(const CostQuery *q, CostQueryResult **ret, char **ret_error);
/* The same bill, priced on from part, the result of this query (same
 * tariffs, assignments, devices in the same order, zone, source) over
 * [q->from_ms, split_ms) made when nothing before split_ms could change
 * any more: the energy of [split_ms, q->to_ms) only is read and priced,
 * the tiers filled by what came before, and added to part's lines before
 * they are rounded, so that it is what cost_query_run() gives to the
 * minor unit (cost-query-from.c says why). A query that cannot be added up
 * so (demand or minimum charges, buckets, see there) is priced whole. */
int cost_query_run_from(const CostQuery *q, const CostQueryResult *part, int64_t split_ms, CostQueryResult **ret,
                        char **ret_error);
CostQueryResult *cost_query_result_free(CostQueryResult *r);
static inline void cost_query_result_freep(CostQueryResult **r) {
        cost_query_result_free(*r);
}
#define _cleanup_cost_query_result_ __attribute__((cleanup(cost_query_result_freep)))

/* The total of everything (the home and the devices' own tariffs), and of
 * device i (index into q->devices); minor units. -ENODATA when nothing
 * prices it. */
int cost_query_total(const CostQueryResult *r, int64_t *ret);
int cost_query_device_total(const CostQueryResult *r, size_t i, int64_t *ret);
/* The currency's code and minor-unit digits. */
const char *cost_query_currency(const CostQueryResult *r, unsigned *ret_digits);

/* { currency, time_zone, from, to, total, energy, adders, fixed, demand,
 *   minimum, tax, energy_kwh, unpriced_kwh, home: bill, devices: [ { id,
 *   alias, bill fields } ], buckets: [ { start, end, total } ] } */
json_t *cost_query_to_json(const CostQuery *q, const CostQueryResult *r);
