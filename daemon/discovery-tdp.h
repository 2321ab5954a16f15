/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * UDP 20002 discovery (KLAP/AES firmware). Like discovery.h: no D-Bus, no
 * registry, a callback per answering device, failures to start returned.
 */

#include <netinet/in.h>
#include <systemd/sd-event.h>

#include "discovery.h"
#include "kasa-tdp.h"

typedef struct TdpRun TdpRun;

typedef void (*TdpFoundFn)(TdpRun *run, const struct sockaddr_in *from, const KasaTdpInfo *info, void *userdata);
/* Called once when the run is over; the run is freed right after. */
typedef void (*TdpDoneFn)(TdpRun *run, void *userdata);

/* Probes the addresses of the discovery targets (at port 20002, whatever
 * port a target names for 9999). */
int tdp_run(sd_event *event, char *const *targets, unsigned attempts, uint64_t duration_usec, TdpFoundFn found,
            TdpDoneFn done, void *userdata, TdpRun **ret);
/* Stops a run early; its done callback is not called. */
TdpRun *tdp_run_free(TdpRun *run);
