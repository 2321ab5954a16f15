/* SPDX-License-Identifier: MIT */

/* Energy series for what-if pricing come from utilities' usage downloads
 * and users' spreadsheets. A refusal names the line; an accepted series
 * is increasing, gap-free, within the engine's limits, and prices. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "energy-csv.h"
#include "fuzz-bill.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        CostInterval *iv = NULL;
        size_t n = 0;
        char *err = NULL;

        int r = energy_csv_parse((const char *) data, size, "fuzz.csv", &iv, &n, &err);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EBADMSG && err && strncmp(err, "fuzz.csv:", 9) == 0));
                free(err);
                return 0;
        }
        fuzz_assert(!err && n >= 2 && n <= ENERGY_CSV_ROWS_MAX);
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
                fuzz_assert(iv[i].start_ms < iv[i].end_ms);
                fuzz_assert(i == 0 || iv[i].start_ms == iv[i - 1].end_ms);
                fuzz_assert(iv[i].energy_mwh >= 0 && iv[i].energy_mwh <= COST_ENERGY_MAX_MWH);
                sum += iv[i].energy_mwh;
        }

        /* Price a series of up to 40 days with a flat tariff: all of its
         * energy is billed (the parts sum exactly). */
        if (iv[n - 1].end_ms - iv[0].start_ms <= 40 * INT64_C(86400000) && iv[0].start_ms > 0 &&
            iv[n - 1].end_ms < INT64_C(253402300799999)) {
                static const char flat[] = "{\"format\":\"kasamond-tariff/1\",\"name\":\"f\",\"currency\":\"EUR\","
                                           "\"periods\":[{\"name\":\"all\",\"rate\":0.3}]}";
                Tariff *t = NULL;
                fuzz_assert(tariff_file_parse(flat, sizeof(flat) - 1, "flat", &t, NULL) == 0);
                CostRequest req = { .tariffs = (const Tariff *const *) &t, .n_tariffs = 1, .intervals = iv,
                                    .n_intervals = n, .time_zone = "Europe/Berlin", .from_ms = iv[0].start_ms,
                                    .to_ms = iv[n - 1].end_ms, .bucket = COST_BUCKET_DAY };
                CostBill *b = NULL;
                r = cost_compute(&req, &b, NULL);
                fuzz_assert(r == 0 || r == -ENOMEM);
                if (r == 0) {
                        fuzz_check_bill(b);
                        fuzz_assert(b->energy_mwh == sum && b->unpriced_mwh == 0);
                }
                cost_bill_free(b);
                tariff_free(t);
        }
        free(iv);
        return 0;
}
