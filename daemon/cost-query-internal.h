/* SPDX-License-Identifier: MIT */
#pragma once

/* What cost-query.c (a query's requests) and cost-query-from.c (a query
 * priced on from an earlier part of it) share. */

#include <glib.h>

#include "cost-query.h"

/* A tariff as one request sees it: clipped to where it applies, and for a
 * device's share of the home's tariff stripped of the home's charges. Bill
 * lines point at t, the first member, so a line tells whose it is. */
typedef struct Clipped {
        Tariff t;
        bool own;   /* a device's own tariff: its bill counts in the total */
        bool strip; /* the home's charges taken out */
        const Tariff *origin; /* the query's: the same in every query */
} Clipped;

struct CostQueryResult {
        char currency[4];
        unsigned digits;
        GPtrArray *clipped; /* Clipped*, shallow copies: outlive the bills */
        CostBill *home;
        CostBill **devices;
        size_t n_devices;
        int64_t sum[_TARIFF_LINE_MAX];
        int64_t total, energy_mwh, unpriced_mwh;
        int64_t *bucket_totals;
        bool priced;
};

/* The result's sums from its bills (home, devices): what cost_query_run()
 * does last. */
int cost_query_sum_up(CostQueryResult *res);
