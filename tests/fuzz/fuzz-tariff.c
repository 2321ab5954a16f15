/* SPDX-License-Identifier: MIT */

/* kasamond-tariff(5) files come from users and their tools. A refusal
 * names the file and what was expected; an accepted tariff passes
 * tariff_check() and prices a DST weekend into a bill that adds up. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-bill.h"
#include "tariff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Tariff *t = NULL;
        char *err = NULL;

        int r = tariff_file_parse((const char *) data, size, "fuzz.json", &t, &err);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EBADMSG && err && strncmp(err, "fuzz.json: ", 11) == 0));
                free(err);
                return 0;
        }
        fuzz_assert(!err && t);
        fuzz_assert(tariff_check(t, NULL) == 0);
        fuzz_price(t);
        tariff_free(t);
        return 0;
}
