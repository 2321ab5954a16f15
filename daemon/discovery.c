/* SPDX-License-Identifier: MIT */

#include "discovery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/rtnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kasa-time.h"
#include "log.h"
#include "udp-sweep.h"

/* Largest block a target may sweep by unicast: a /16. */
#define SWEEP_MIN_PREFIX 16

struct DiscoveryRun {
        UdpSweep *sweep;
        DiscoveryFoundFn found;
        DiscoveryDoneFn done;
        void *userdata;
};

static int parse_port(const char *s, uint16_t *ret) {
        char *end;
        unsigned long p;

        errno = 0;
        p = strtoul(s, &end, 10);
        if (errno || *end || end == s || p == 0 || p > 65535)
                return -EINVAL;
        *ret = (uint16_t) p;
        return 0;
}

/* Splits "what[:port]". */
static int split_target(const char *target, char *what, size_t size, uint16_t *port) {
        const char *colon = strrchr(target, ':');
        size_t n = colon ? (size_t) (colon - target) : strlen(target);

        *port = KASA_PORT;
        if (n == 0 || n >= size)
                return -EINVAL;
        memcpy(what, target, n);
        what[n] = 0;
        return colon ? parse_port(colon + 1, port) : 0;
}

static int parse_block(const char *what, struct in_addr *ret_addr, unsigned *ret_prefix) {
        char buf[32];
        const char *slash = strchr(what, '/');
        unsigned long prefix = 32;

        if (slash) {
                char *end;
                if ((size_t) (slash - what) >= sizeof(buf))
                        return -EINVAL;
                memcpy(buf, what, (size_t) (slash - what));
                buf[slash - what] = 0;
                errno = 0;
                prefix = strtoul(slash + 1, &end, 10);
                if (errno || *end || end == slash + 1 || prefix < SWEEP_MIN_PREFIX || prefix > 32)
                        return -EINVAL;
                what = buf;
        }
        if (inet_pton(AF_INET, what, ret_addr) != 1)
                return -EINVAL;
        *ret_prefix = (unsigned) prefix;
        return 0;
}

int discovery_check_target(const char *target) {
        char what[64];
        uint16_t port;
        struct in_addr a;
        unsigned prefix;

        if (split_target(target, what, sizeof(what), &port) < 0)
                return -EINVAL;
        if (strcmp(what, "auto") == 0)
                return 0;
        return parse_block(what, &a, &prefix);
}

static int add_dest(GArray *dests, uint32_t addr_host, uint16_t port) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(addr_host),
        };
        g_array_append_val(dests, sa);
        return 0;
}

static bool has_dest(GArray *dests, uint32_t addr_host, uint16_t port) {
        for (guint i = 0; i < dests->len; i++) {
                const struct sockaddr_in *sa = &g_array_index(dests, struct sockaddr_in, i);
                if (sa->sin_addr.s_addr == htonl(addr_host) && sa->sin_port == htons(port))
                        return true;
        }
        return false;
}

/* libnl's errors as errno, for the caller to log (libnl has no public map
 * back); those without a counterpart become EIO. */
static int nl_errno(int nl_error) {
        switch (-nl_error) {
        case NLE_NOMEM:
                return -ENOMEM;
        case NLE_AF_NOSUPPORT:
                return -EAFNOSUPPORT;
        case NLE_NOACCESS:
                return -EACCES;
        case NLE_PERM:
                return -EPERM;
        case NLE_INTR:
                return -EINTR;
        case NLE_BAD_SOCK:
                return -ENOTSOCK;
        default:
                return -EIO;
        }
}

/* The broadcast address of every IPv4 interface that has one. */
static int add_broadcasts(GArray *dests, uint16_t port) {
        struct nl_sock *sk = nl_socket_alloc();
        struct nl_cache *cache = NULL;
        int r;

        if (!sk)
                return -ENOMEM;
        r = nl_connect(sk, NETLINK_ROUTE);
        if (r == 0)
                r = rtnl_addr_alloc_cache(sk, &cache);
        if (r < 0) {
                nl_socket_free(sk);
                return nl_errno(r);
        }
        for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
                struct rtnl_addr *a = (struct rtnl_addr *) o;
                struct nl_addr *b = rtnl_addr_get_broadcast(a);
                uint32_t v;

                if (rtnl_addr_get_family(a) != AF_INET || !b || nl_addr_get_len(b) != sizeof(v))
                        continue;
                memcpy(&v, nl_addr_get_binary_addr(b), sizeof(v));
                /* Each address of a block reports the block's broadcast
                 * address: probe it once, not once per address. */
                if (!has_dest(dests, ntohl(v), port))
                        add_dest(dests, ntohl(v), port);
        }
        nl_cache_free(cache);
        nl_socket_free(sk);
        return 0;
}

static int resolve_targets(char *const *targets, uint16_t port_override, GArray *dests) {
        for (char *const *t = targets; t && *t; t++) {
                char what[64];
                uint16_t port;
                struct in_addr a;
                unsigned prefix;
                int r;

                if (split_target(*t, what, sizeof(what), &port) < 0)
                        return -EINVAL;
                if (port_override)
                        port = port_override;
                if (strcmp(what, "auto") == 0) {
                        r = add_broadcasts(dests, port);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (parse_block(what, &a, &prefix) < 0)
                        return -EINVAL;
                uint32_t base = ntohl(a.s_addr);
                if (prefix >= 31) {
                        add_dest(dests, base, port);
                        continue;
                }
                uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
                uint32_t net = base & mask, last = net | ~mask;
                /* Hosts only: the network and broadcast addresses are not plugs. */
                for (uint32_t h = net + 1; h < last; h++)
                        add_dest(dests, h, port);
        }
        return 0;
}

int discovery_resolve_targets(char *const *targets, uint16_t port, struct sockaddr_in **ret, size_t *ret_n) {
        GArray *dests = g_array_new(false, false, sizeof(struct sockaddr_in));
        int r = resolve_targets(targets, port, dests);

        *ret_n = dests->len;
        *ret = (struct sockaddr_in *) g_array_free(dests, false);
        return r;
}

static bool on_reply(UdpSweep *sweep, const struct sockaddr_in *from, const uint8_t *buf, size_t n,
                     void *userdata) {
        DiscoveryRun *run = userdata;
        KasaSysinfo si;
        KasaError err;

        if (kasa_discovery_parse(buf, n, &si, &err) < 0) {
                log_info("Ignoring discovery reply from %s:%u: %s", inet_ntoa(from->sin_addr), ntohs(from->sin_port),
                         err.message);
                return false;
        }
        run->found(run, from, &si, run->userdata);
        return true;
}

static void on_done(UdpSweep *sweep, void *userdata) {
        DiscoveryRun *run = userdata;

        run->done(run, 0, run->userdata);
        discovery_run_free(run);
}

DiscoveryRun *discovery_run_free(DiscoveryRun *run) {
        if (!run)
                return NULL;
        udp_sweep_free(run->sweep);
        free(run);
        return NULL;
}

int discovery_run(sd_event *event, char *const *targets, unsigned attempts, uint64_t duration_usec,
                  DiscoveryFoundFn found, DiscoveryDoneFn done, void *userdata, DiscoveryRun **ret) {
        _cleanup_free_ DiscoveryRun *run = calloc(1, sizeof(DiscoveryRun));
        UdpSweepConfig c = {
                .what = "Discovery",
                .attempts = attempts,
                .duration_usec = duration_usec,
                .reply = on_reply,
                .done = on_done,
                .userdata = run,
        };
        int r;

        if (!run)
                return -ENOMEM;
        *run = (DiscoveryRun) { .found = found, .done = done, .userdata = userdata };
        r = discovery_resolve_targets(targets, 0, &c.dests, &c.n_dests);
        if (r >= 0)
                r = kasa_discovery_probe(&c.probe, &c.probe_len);
        if (r < 0) {
                free(c.dests);
                free(c.probe);
                return r;
        }
        r = udp_sweep_start(event, &c, &run->sweep);
        if (r < 0)
                return r;
        if (ret)
                *ret = run;
        TAKE_PTR(run);
        return 0;
}

/* ---- address watch ---- */

struct AddressWatch {
        struct nl_sock *sk;
        sd_event_source *io;
        sd_event_source *debounce;
        AddressWatchFn cb;
        void *userdata;
};

static int on_debounce(sd_event_source *s, uint64_t usec, void *userdata) {
        AddressWatch *w = userdata;

        w->cb(w->userdata);
        return 0;
}

static int on_nl_msg(struct nl_msg *msg, void *arg) {
        AddressWatch *w = arg;
        uint64_t now;

        /* Addresses come in bursts (DHCP, link up): act once they settle. */
        if (sd_event_now(sd_event_source_get_event(w->debounce), CLOCK_MONOTONIC, &now) >= 0) {
                (void) sd_event_source_set_time(w->debounce, now + 2000 * USEC_PER_MSEC);
                (void) sd_event_source_set_enabled(w->debounce, SD_EVENT_ONESHOT);
        }
        return NL_OK;
}

static int on_nl_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        AddressWatch *w = userdata;
        int r = nl_recvmsgs_default(w->sk);

        if (r < 0 && r != -NLE_AGAIN)
                log_debug("Netlink receive failed, ignoring: %s", nl_geterror(r));
        return 0;
}

AddressWatch *address_watch_free(AddressWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->debounce);
        if (w->sk)
                nl_socket_free(w->sk);
        free(w);
        return NULL;
}

int address_watch_new(sd_event *event, AddressWatchFn cb, void *userdata, AddressWatch **ret) {
        _cleanup_(address_watch_freep) AddressWatch *w = calloc(1, sizeof(AddressWatch));
        int r;

        if (!w)
                return -ENOMEM;
        w->cb = cb;
        w->userdata = userdata;
        w->sk = nl_socket_alloc();
        if (!w->sk)
                return -ENOMEM;
        nl_socket_disable_seq_check(w->sk);
        nl_socket_modify_cb(w->sk, NL_CB_VALID, NL_CB_CUSTOM, on_nl_msg, w);
        r = nl_connect(w->sk, NETLINK_ROUTE);
        if (r == 0)
                r = nl_socket_add_memberships(w->sk, RTNLGRP_IPV4_IFADDR, 0);
        if (r == 0)
                r = nl_socket_set_nonblocking(w->sk);
        if (r < 0)
                return nl_errno(r);

        r = sd_event_add_time(event, &w->debounce, CLOCK_MONOTONIC, UINT64_MAX, 0, on_debounce, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(w->debounce, SD_EVENT_OFF);
        r = sd_event_add_io(event, &w->io, nl_socket_get_fd(w->sk), EPOLLIN, on_nl_io, w);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}
