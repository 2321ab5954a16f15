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
#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kasa-time.h"
#include "log.h"
#include "macro.h"

struct TdpRun {
        int fd;
        sd_event_source *io, *send_timer, *end_timer;
        struct sockaddr_in *dests;
        size_t n_dests;
        unsigned attempts_left;
        uint64_t spacing_usec;
        uint8_t *probe;
        size_t probe_len;
        GHashTable *seen;          /* addresses already reported */
        TdpFoundFn found;
        TdpDoneFn done;
        void *userdata;
};

static int on_send_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        TdpRun *run = userdata;

        for (size_t i = 0; i < run->n_dests; i++)
                if (sendto(run->fd, run->probe, run->probe_len, 0, (const struct sockaddr *) &run->dests[i],
                           sizeof(run->dests[i])) < 0 && errno != EAGAIN)
                        log_debug_errno(errno, "20002 discovery probe to %s failed, ignoring: %m",
                                        inet_ntoa(run->dests[i].sin_addr));
        if (--run->attempts_left == 0)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        (void) sd_event_source_set_time(s, usec + run->spacing_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        TdpRun *run = userdata;

        for (;;) {
                uint8_t buf[KASA_TDP_MAX + 1];
                struct sockaddr_in from;
                socklen_t fromlen = sizeof(from);
                KasaTdpInfo info;
                KasaError err;
                ssize_t n;

                n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *) &from, &fromlen);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(errno, "20002 discovery receive failed, ignoring: %m");
                        return 0;
                }
                if (fromlen != sizeof(from) || from.sin_family != AF_INET)
                        continue;
                gpointer key = GUINT_TO_POINTER(ntohl(from.sin_addr.s_addr));
                if (g_hash_table_contains(run->seen, key))
                        continue;
                if (kasa_tdp_parse(buf, MIN((size_t) n, sizeof(buf)), &info, &err) < 0) {
                        log_info("Ignoring 20002 discovery reply from %s: %s", inet_ntoa(from.sin_addr),
                                 err.message);
                        continue;
                }
                g_hash_table_add(run->seen, key);
                run->found(run, &from, &info, run->userdata);
        }
}

static int on_end_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        TdpRun *run = userdata;
        TdpDoneFn done = run->done;
        void *ud = run->userdata;

        run->done = NULL;
        done(run, ud);
        tdp_run_free(run);
        return 0;
}

TdpRun *tdp_run_free(TdpRun *run) {
        if (!run)
                return NULL;
        sd_event_source_disable_unref(run->io);
        sd_event_source_disable_unref(run->send_timer);
        sd_event_source_disable_unref(run->end_timer);
        if (run->fd >= 0)
                close(run->fd);
        if (run->seen)
                g_hash_table_unref(run->seen);
        free(run->dests);
        free(run->probe);
        free(run);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(TdpRun *, tdp_run_free);

int tdp_run(sd_event *event, char *const *targets, unsigned attempts, uint64_t duration_usec, TdpFoundFn found,
            TdpDoneFn done, void *userdata, TdpRun **ret) {
        _cleanup_(tdp_run_freep) TdpRun *run = calloc(1, sizeof(TdpRun));
        int r;

        if (!run)
                return -ENOMEM;
        run->fd = -1;
        run->found = found;
        run->done = done;
        run->userdata = userdata;
        run->seen = g_hash_table_new(NULL, NULL);
        r = discovery_resolve_targets(targets, KASA_TDP_PORT, &run->dests, &run->n_dests);
        if (r < 0)
                return r;
        r = kasa_tdp_probe(&run->probe, &run->probe_len);
        if (r < 0)
                return r;
        run->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (run->fd < 0)
                return -errno;
        if (setsockopt(run->fd, SOL_SOCKET, SO_BROADCAST, &(int) { 1 }, sizeof(int)) < 0)
                return -errno;
        r = sd_event_add_io(event, &run->io, run->fd, EPOLLIN, on_datagram, run);
        if (r < 0)
                return r;
        run->attempts_left = MAX(attempts, 1u);
        run->spacing_usec = MIN(duration_usec / 2 / run->attempts_left, 500 * USEC_PER_MSEC);
        r = sd_event_add_time_relative(event, &run->send_timer, CLOCK_MONOTONIC, 0, 0, on_send_timer, run);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &run->end_timer, CLOCK_MONOTONIC, duration_usec, 0, on_end_timer,
                                       run);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(run);
        return 0;
}
