/* SPDX-License-Identifier: MIT */

/* OpenEI URDB JSON is downloaded from the internet. A refusal names the
 * file and what was expected; every accepted item passes tariff_check()
 * and prices a DST weekend into a bill that adds up. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-bill.h"
#include "tariff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Tariff **list = NULL;
        size_t n = 0;
        char *err = NULL;

        int r = tariff_urdb_parse((const char *) data, size, "fuzz.json", &list, &n, &err);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EBADMSG && err && strncmp(err, "fuzz.json: ", 11) == 0));
                free(err);
                return 0;
        }
        fuzz_assert(!err && n >= 1 && n <= TARIFF_URDB_ITEMS_MAX);
        for (size_t i = 0; i < n; i++) {
                fuzz_assert(tariff_check(list[i], NULL) == 0);
                fuzz_assert(strcmp(list[i]->currency, "USD") == 0);
                if (i < 2) /* pricing is the slow part; two show it */
                        fuzz_price(list[i]);
        }
        tariff_list_free(list, n);
        return 0;
}
