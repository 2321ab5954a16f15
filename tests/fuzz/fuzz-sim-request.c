/* SPDX-License-Identifier: MIT */

/* Decrypted requests into kasa-sim's request handling, for a plug with a
 * meter and a strip: every request is refused as not a JSON object or
 * answered with one. */

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz-check.h"
#include "kasa-sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static Sim sim = { .port = KASA_PORT, .noise = 1.0, .control_fd = -1 };
static SimDevice *devices[2];

static void setup(void) {
        static const char *const profiles[] = { "kp115", "hs300" };
        fuzz_assert(sd_event_new(&sim.event) >= 0);
        sim.devices = devices;
        for (unsigned i = 0; i < 2; i++) {
                /* Never bound: replies only, no sockets. */
                struct in_addr a = { .s_addr = htonl(0x7f000002u + i) };
                fuzz_assert(sim_device_new(&sim, sim_profile_find(profiles[i]), a, KASA_PORT, &devices[i]) >= 0);
                sim.n_devices++;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!sim.event)
                setup();
        for (unsigned i = 0; i < 2; i++) {
                char *reply = NULL;
                int r = sim_device_handle(devices[i], (const char *) data, size, &reply);
                if (r < 0) {
                        fuzz_assert(r == -EBADMSG && !reply);
                        continue;
                }
                json_t *root = json_loads(reply, 0, NULL);
                fuzz_assert(json_is_object(root));
                json_decref(root);
                free(reply);
        }
        return 0;
}
