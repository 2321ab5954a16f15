/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What both discoveries (9999 and 20002) do with a socket: send one probe
 * to every destination a few times over the first half of the run (UDP
 * loses packets), hand each datagram of a source not accepted before to
 * the owner, and say when the run is over. No parsing: the owner's reply
 * callback parses and returns whether it accepted the reply; a source
 * whose reply was refused may answer again.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "net-ops.h"

typedef struct UdpSweep UdpSweep;

typedef bool (*UdpSweepReplyFn)(UdpSweep *s, const struct sockaddr_in *from, const uint8_t *buf, size_t n,
                                void *userdata);
/* The run is over: the owner frees the sweep, here or later. */
typedef void (*UdpSweepDoneFn)(UdpSweep *s, void *userdata);

typedef struct UdpSweepConfig {
        const char *what;           /* for log lines: "Discovery", "20002 discovery" */
        struct sockaddr_in *dests;  /* taken, also on failure */
        size_t n_dests;
        uint8_t *probe;             /* taken, also on failure */
        size_t probe_len;
        unsigned attempts;
        uint64_t duration_usec;
        UdpSweepReplyFn reply;
        UdpSweepDoneFn done;
        void *userdata;
        const NetOps *net;          /* NULL: net_ops_real */
} UdpSweepConfig;

int udp_sweep_start(sd_event *event, const UdpSweepConfig *config, UdpSweep **ret);
/* Stops a run early; done is not called. */
UdpSweep *udp_sweep_free(UdpSweep *s);
