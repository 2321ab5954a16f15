/* SPDX-License-Identifier: MIT */

/* kasamond.conf: written by administrators, packagers and config tools, so
 * parsed as untrusted text. Beyond not crashing: every refusal explains
 * itself, every accepted value is within its documented range, and the
 * effective configuration dumped back is accepted and stable. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SEC 1000000ULL

static void check_ranges(const Config *c) {
        fuzz_assert(c->state_directory && c->state_directory[0] == '/');
        fuzz_assert(c->time_zone);
        fuzz_assert(c->poll_interval_usec >= SEC / 5 && c->poll_interval_usec <= 3600 * SEC);
        fuzz_assert(c->poll_timeout_usec >= SEC / 10 && c->poll_timeout_usec <= 60 * SEC);
        fuzz_assert(c->poll_jitter >= 0 && c->poll_jitter <= 0.5);
        fuzz_assert(c->discovery_targets && c->discovery_targets[0]);
        fuzz_assert(c->discovery_attempts >= 1 && c->discovery_attempts <= 10);
        fuzz_assert(c->raw_retention_usec >= c->compact_after_usec);
        fuzz_assert(c->max_devices >= 1 && c->max_devices <= 65536);
        fuzz_assert(c->max_frame_size >= 4096 && c->max_frame_size <= 1048576);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Config c, d;
        char *err = NULL;

        int r = config_load_data((const char *) data, size, "fuzz.conf", &c, &err);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (err && err[0]));
                free(err);
                return 0;
        }
        fuzz_assert(!err);
        check_ranges(&c);

        char *dump = config_dump(&c);
        fuzz_assert(dump);
        r = config_load_data(dump, strlen(dump), "dump", &d, NULL);
        fuzz_assert(r == 0);
        char *again = config_dump(&d);
        fuzz_assert(again && strcmp(dump, again) == 0);

        free(again);
        free(dump);
        config_done(&d);
        config_done(&c);
        return 0;
}
