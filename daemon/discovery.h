/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * UDP discovery (port 9999) and the watch on local IPv4 addresses that
 * triggers re-discovery. No D-Bus, no registry: whoever runs a discovery
 * gets a callback per answering device. Failures to start are returned as
 * a negative errno, not logged: the caller decides and logs.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "kasa-proto.h"
#include "macro.h"

typedef struct DiscoveryRun DiscoveryRun;

typedef void (*DiscoveryFoundFn)(DiscoveryRun *run, const struct sockaddr_in *from, const KasaSysinfo *si,
                                 void *userdata);
/* Called once when the run is over; the run is freed right after. */
typedef void (*DiscoveryDoneFn)(DiscoveryRun *run, int error, void *userdata);

/* A target is "auto" (the broadcast address of every IPv4 interface), an
 * IPv4 address (unicast or broadcast), or a.b.c.d/n (n >= 16: unicast to
 * every host of the block, for networks where broadcast is filtered); each
 * may end in ":port". Returns -EINVAL for a malformed one. */
int discovery_check_target(const char *target);

/* The addresses targets name, every one at port (for 20002 discovery);
 * *ret is malloc'd, also on failure. */
int discovery_resolve_targets(char *const *targets, uint16_t port, struct sockaddr_in **ret, size_t *ret_n);

int discovery_run(sd_event *event, char *const *targets, unsigned attempts, uint64_t duration_usec,
                  DiscoveryFoundFn found, DiscoveryDoneFn done, void *userdata, DiscoveryRun **ret);
/* Stops a run early; its done callback is not called. */
DiscoveryRun *discovery_run_free(DiscoveryRun *run);

typedef struct AddressWatch AddressWatch;
typedef void (*AddressWatchFn)(void *userdata);

/* Calls cb (debounced) whenever an IPv4 address appears or goes away. */
int address_watch_new(sd_event *event, AddressWatchFn cb, void *userdata, AddressWatch **ret);
AddressWatch *address_watch_free(AddressWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(AddressWatch *, address_watch_free);
