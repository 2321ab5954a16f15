/* SPDX-License-Identifier: MIT */
/*
 * Writes tests/store/data/v2, a store in format 2 (blocks keyed hour,
 * device, time), for test-store's upgrade check. Not built: it must be
 * compiled against the store of a format 2 commit (0714934 or before),
 * e.g. in a worktree of it, linked with its kasamond_core, and run as
 *   v2-fixture-make DIR
 * then DIR's data.mdb copied to tests/store/data/v2/.
 */
#include <stdio.h>

#include "store.h"
#include "v2-fixture.h"

static int64_t day_utc(int64_t ts, void *userdata) {
        return ts / 86400000 * 86400000;
}

int main(int argc, char **argv) {
        StoreOptions o = { .day_start = day_utc, .checkpoint_interval_ms = 3600000 };
        Store *st = NULL;
        int r;

        if (argc != 2)
                return 2;
        r = store_open_with(argv[1], &o, &st);
        for (unsigned i = 0; r >= 0 && i < V2_WRITTEN; i++) {
                StoreSample round[V2_DEVICES];
                for (unsigned d = 0; d < V2_DEVICES; d++)
                        round[d] = v2_sample(V2_FIRST_DEVICE + d, i);
                r = store_append(st, round, V2_DEVICES);
        }
        if (r >= 0)
                r = store_checkpoint(st);
        store_free(st);
        if (r < 0)
                fprintf(stderr, "v2-fixture-make: %d\n", r);
        return r < 0;
}
