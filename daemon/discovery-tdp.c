/* SPDX-License-Identifier: MIT */

/*
 * Discovery of newer firmware on UDP 20002 (common/kasa-tdp), beside the
 * XOR discovery on 9999 and to the same targets: the probe, the replies
 * de-duplicated by address, a callback per device with what its reply says
 * about how to reach it.
 */

#include "discovery-tdp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "udp-sweep.h"

struct TdpRun {
        UdpSweep *sweep;
        TdpFoundFn found;
        TdpDoneFn done;
        void *userdata;
};

static bool on_reply(UdpSweep *sweep, const struct sockaddr_in *from, const uint8_t *buf, size_t n,
                     void *userdata) {
        TdpRun *run = userdata;
        KasaTdpInfo info;
        KasaError err;

        if (kasa_tdp_parse(buf, n, &info, &err) < 0) {
                log_info("Ignoring 20002 discovery reply from %s: %s", inet_ntoa(from->sin_addr), err.message);
                return false;
        }
        run->found(run, from, &info, run->userdata);
        return true;
}

static void on_done(UdpSweep *sweep, void *userdata) {
        TdpRun *run = userdata;

        run->done(run, run->userdata);
        tdp_run_free(run);
}

TdpRun *tdp_run_free(TdpRun *run) {
        if (!run)
                return NULL;
        udp_sweep_free(run->sweep);
        free(run);
        return NULL;
}

int tdp_run(sd_event *event, char *const *targets, unsigned attempts, uint64_t duration_usec, TdpFoundFn found,
            TdpDoneFn done, void *userdata, TdpRun **ret) {
        _cleanup_free_ TdpRun *run = calloc(1, sizeof(TdpRun));
        UdpSweepConfig c = {
                .what = "20002 discovery",
                .attempts = attempts,
                .duration_usec = duration_usec,
                .reply = on_reply,
                .done = on_done,
                .userdata = run,
        };
        int r;

        if (!run)
                return -ENOMEM;
        *run = (TdpRun) { .found = found, .done = done, .userdata = userdata };
        r = discovery_resolve_targets(targets, KASA_TDP_PORT, &c.dests, &c.n_dests);
        if (r >= 0)
                r = kasa_tdp_probe(&c.probe, &c.probe_len);
        if (r < 0) {
                free(c.dests);
                free(c.probe);
                return r;
        }
        r = udp_sweep_start(event, &c, &run->sweep);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(run);
        return 0;
}
