/* SPDX-License-Identifier: MIT */
#pragma once

/* What every parsed tariff must allow: pricing three days across a DST
 * change succeeds, and the bill adds up. */

#include "cost.h"
#include "fuzz-check.h"

static inline void fuzz_check_bill(const CostBill *b) {
        int64_t total = 0, energy = 0;
        for (size_t i = 0; i < b->n_buckets; i++) {
                int64_t lines = 0;
                for (size_t l = 0; l < b->buckets[i].n_lines; l++)
                        lines += b->buckets[i].lines[l].amount;
                fuzz_assert(lines == b->buckets[i].total);
                fuzz_assert(i == 0 || b->buckets[i].start_ms == b->buckets[i - 1].end_ms);
                total += b->buckets[i].total;
                energy += b->buckets[i].energy_mwh + b->buckets[i].unpriced_mwh;
        }
        fuzz_assert(total == b->total);
        fuzz_assert(energy == b->energy_mwh + b->unpriced_mwh);
}

static inline void fuzz_price(const Tariff *t) {
        /* 2024-03-30T00:00+01:00, 72 hours of 1..72 kWh, Berlin */
        static CostInterval iv[72];
        const int64_t from = INT64_C(1711753200000);
        for (int i = 0; i < 72; i++)
                iv[i] = (CostInterval) { from + i * INT64_C(3600000), from + (i + 1) * INT64_C(3600000),
                                         (i + 1) * INT64_C(1000000) };
        CostRequest req = { .tariffs = &t, .n_tariffs = 1, .intervals = iv, .n_intervals = 72,
                            .time_zone = "Europe/Berlin", .from_ms = from + INT64_C(3600000),
                            .to_ms = from + 71 * INT64_C(3600000), .bucket = COST_BUCKET_DAY };
        CostBill *b = NULL;
        char *err = NULL;
        int r = cost_compute(&req, &b, &err);
        fuzz_assert(r == 0 || r == -ENOMEM);
        if (r == 0) {
                fuzz_check_bill(b);
                fuzz_assert(b->energy_mwh + b->unpriced_mwh == (2 + 71) * 70 / 2 * INT64_C(1000000));
                json_t *j = cost_bill_to_json(b, "Europe/Berlin");
                fuzz_assert(j);
                json_decref(j);
        }
        free(err);
        cost_bill_free(b);
}
