/* SPDX-License-Identifier: MIT */

/* A query priced on from an earlier part of it (cost_query_run_from()):
 * the bill of [from, to) as the bill of [from, split) kept from before,
 * plus the energy of [split, to) priced now, the charges of the whole
 * range, rounded once.
 *
 * Why that is the whole query's bill to the minor unit, when it is:
 * - a bill line's amount is its exact sum (femto-units) rounded once, so
 *   parts are added as exact sums, line by line, and rounded after; bills
 *   already rounded would drift by up to half a minor unit a line each time;
 * - energy and adder lines are sums over pieces of energy (mWh x rate), and
 *   marginal tiers price each piece by the tier energy before it fills:
 *   the part after split reads the energy before it (the cycle's earlier
 *   days, and [from, split)) as the tiers' fill, as the whole query would;
 * - fixed charges are prorated over the range, not summed over parts:
 *   they come from the whole range, priced without energy;
 * - taxes are taken on the rounded lines: computed again on the sum;
 * - demand charges (a peak over the cycle's windows) and the minimum (a
 *   floor on the cycle's lines) are no sums of parts: a query with a
 *   tariff that has either is priced whole, as is one where the parts
 *   would read their energy otherwise than the whole (a tariff part
 *   beginning or ending between from and split, hours that are not UTC's
 *   at one end and are at another).
 * tests/daemon/test-cost-query.c compares both ways. */

#include "macro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "cost-internal.h"
#include "cost-query-internal.h"

#define HOUR_MS INT64_C(3600000)

static void calendar_freep(Calendar **c) {
        calendar_free(*c);
}

static bool whole_only(const Tariff *t) {
        return t && (t->n_demand_periods > 0 || t->n_flat_demand > 0 || t->minimum.amount != 0);
}

/* The query's range and zone allow adding parts. */
static bool splittable(const CostQuery *q, int64_t split_ms) {
        _cleanup_(calendar_freep) Calendar *cal = calendar_new(q->time_zone);

        if (!cal || q->bucket != COST_BUCKET_NONE)
                return false;
        /* Each part reads minutes throughout when an end of it is off the
         * UTC hour (cost-query.h): the same at all three ends, or whole. */
        bool a = calendar_hour_start(cal, q->from_ms) % HOUR_MS != 0,
             b = calendar_hour_start(cal, split_ms) % HOUR_MS != 0,
             c = calendar_hour_start(cal, q->to_ms) % HOUR_MS != 0;
        return a == b && b == c;
}

/* The tariffs taking part (those the part after split saw: the same
 * window as the whole query's) allow adding parts: none with demand or a
 * minimum, and no tariff part that begins or ends inside (from, split),
 * where the part after split would read the days before it otherwise than
 * the whole query. */
static bool addable(const CostQueryResult *r, int64_t from, int64_t split) {
        for (guint k = 0; k < r->clipped->len; k++) {
                const Tariff *t = &((const Clipped *) r->clipped->pdata[k])->t;
                if (whole_only(t))
                        return false;
                if ((t->valid_from_ms > from && t->valid_from_ms < split) ||
                    (t->valid_until_ms > from && t->valid_until_ms < split))
                        return false;
        }
        return true;
}

/* The tariff of `into` that c stands for: same original, role and range. */
static const Tariff *canonical(const CostQueryResult *into, const Tariff *t) {
        const Clipped *c = (const Clipped *) t;
        for (guint k = 0; k < into->clipped->len; k++) {
                const Clipped *x = into->clipped->pdata[k];
                if (x->origin == c->origin && x->own == c->own && x->strip == c->strip &&
                    x->t.valid_from_ms == c->t.valid_from_ms && x->t.valid_until_ms == c->t.valid_until_ms)
                        return &x->t;
        }
        return NULL;
}

/* The lines of b (one bucket) of the kinds in mask, onto `to` with the
 * tariffs of `into`. -ESTALE for a tariff `into` does not have. */
static int add_lines(CostBucketBill *to, const CostQueryResult *into, const CostBill *b, unsigned mask,
                     const Tariff **tariffs, size_t *n_tariffs) {
        int r;

        if (!b)
                return 0;
        if (b->n_buckets != 1)
                return -ESTALE;
        const CostBucketBill *from = &b->buckets[0];
        if (mask & (1u << TARIFF_LINE_ENERGY)) {
                to->energy_mwh += from->energy_mwh;
                to->unpriced_mwh += from->unpriced_mwh;
        }
        for (size_t i = 0; i < from->n_lines; i++) {
                const CostLine *l = &from->lines[i];
                if (!(mask & (1u << l->kind)))
                        continue;
                const Tariff *t = canonical(into, l->tariff);
                if (!t)
                        return -ESTALE;
                r = cost_add_line(to, l->kind, t, l->key, l->tier, l->name, l->rate, l->quantity, l->exact);
                if (r < 0)
                        return r;
                size_t k = 0;
                while (k < *n_tariffs && tariffs[k] != t)
                        k++;
                if (k == *n_tariffs)
                        tariffs[(*n_tariffs)++] = t;
        }
        return 0;
}

/* One bill of the whole range: the charges' bill's fixed lines, the
 * energy and adder lines of both parts, rounded and taxed once. */
static int merge_bill(const CostQueryResult *into, const CostBill *charges, const CostBill *part, const CostBill *open,
                      CostBill **ret) {
        const unsigned energy = (1u << TARIFF_LINE_ENERGY) | (1u << TARIFF_LINE_ADDER);
        _cleanup_free_ const Tariff **tariffs = NULL;
        size_t n_tariffs = 0;
        int r;

        *ret = NULL;
        if (!charges)
                return part || open ? -ESTALE : 0;
        if (charges->n_buckets != 1)
                return -ESTALE;
        tariffs = calloc(MAX(into->clipped->len, 1u), sizeof(Tariff *));
        CostBill *b = calloc(1, sizeof(CostBill));
        CostBucketBill *k = calloc(1, sizeof(CostBucketBill));
        if (!tariffs || !b || !k) {
                free(b);
                free(k);
                return -ENOMEM;
        }
        memcpy(b->currency, charges->currency, sizeof b->currency);
        b->digits = charges->digits;
        b->buckets = k;
        b->n_buckets = 1;
        k->start_ms = charges->buckets[0].start_ms;
        k->end_ms = charges->buckets[0].end_ms;
        r = add_lines(k, into, charges, 1u << TARIFF_LINE_FIXED, tariffs, &n_tariffs);
        if (r >= 0)
                r = add_lines(k, into, part, energy, tariffs, &n_tariffs);
        if (r >= 0)
                r = add_lines(k, into, open, energy, tariffs, &n_tariffs);
        if (r >= 0)
                r = cost_finish(b, tariffs, n_tariffs);
        if (r < 0) {
                cost_bill_free(b);
                return r;
        }
        *ret = b;
        return 0;
}

static int no_energy(void *userdata, const char *device, bool minutes, int64_t from_ms, int64_t to_ms,
                     CostInterval **ret, size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        return 0;
}

static const CostSourceOps no_energy_ops = { .energy = no_energy };

/* Both parts and the charges into one result; -ESTALE when they do not
 * fit together (priced whole then). */
static int merge(const CostQuery *q, CostQueryResult *charges, const CostQueryResult *part,
                 const CostQueryResult *open, CostQueryResult **ret) {
        _cleanup_(cost_query_result_freep) CostQueryResult *res = calloc(1, sizeof(CostQueryResult));
        int r;

        if (!res)
                return -ENOMEM;
        if (part->n_devices != q->n_devices || open->n_devices != q->n_devices || charges->n_devices != q->n_devices)
                return -ESTALE;
        memcpy(res->currency, charges->currency, sizeof res->currency);
        res->digits = charges->digits;
        /* The lines point at the charges' tariffs: the result keeps them. */
        res->clipped = TAKE_PTR(charges->clipped);
        res->devices = calloc(MAX(q->n_devices, (size_t) 1), sizeof(CostBill *));
        if (!res->devices)
                return -ENOMEM;
        res->n_devices = q->n_devices;
        r = merge_bill(res, charges->home, part->home, open->home, &res->home);
        for (size_t i = 0; r >= 0 && i < q->n_devices; i++)
                r = merge_bill(res, charges->devices[i], part->devices[i], open->devices[i], &res->devices[i]);
        if (r >= 0)
                r = cost_query_sum_up(res);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(res);
        return 0;
}

int cost_query_run_from(const CostQuery *q, const CostQueryResult *part, int64_t split_ms, CostQueryResult **ret,
                        char **ret_error) {
        _cleanup_(cost_query_result_freep) CostQueryResult *open = NULL, *charges = NULL;
        int r;

        if (!part || !part->priced || split_ms <= q->from_ms || split_ms >= q->to_ms || !splittable(q, split_ms))
                return cost_query_run(q, ret, ret_error);

        /* Whatever keeps the parts from adding up (an error of one part
         * included, such as no tariff after the split) leaves it to the
         * whole query, and its answer. */
        CostQuery after = *q;
        after.from_ms = split_ms;
        r = cost_query_run(&after, &open, NULL);
        if (r < 0 || !addable(open, q->from_ms, split_ms))
                return cost_query_run(q, ret, ret_error);
        CostQuery whole = *q;
        whole.ops = &no_energy_ops;
        r = cost_query_run(&whole, &charges, NULL);
        if (r >= 0)
                r = merge(q, charges, part, open, ret);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return cost_query_run(q, ret, ret_error);
        return 0;
}
