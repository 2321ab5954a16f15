/* SPDX-License-Identifier: MIT */

#include "udp-sweep.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kasa-time.h"
#include "log.h"
#include "macro.h"

struct UdpSweep {
        UdpSweepConfig config;
        int fd;
        sd_event_source *io, *send_timer, *end_timer;
        unsigned attempts_left;
        uint64_t spacing_usec;
        GHashTable *seen;          /* (addr << 16 | port) of sources accepted */
};

static int on_send_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        UdpSweep *s = userdata;

        for (size_t i = 0; i < s->config.n_dests; i++)
                if (sendto(s->fd, s->config.probe, s->config.probe_len, 0,
                           (const struct sockaddr *) &s->config.dests[i], sizeof(s->config.dests[i])) < 0 &&
                    errno != EAGAIN)
                        log_debug_errno(errno, "%s probe to %s failed, ignoring: %m", s->config.what,
                                        inet_ntoa(s->config.dests[i].sin_addr));
        if (--s->attempts_left == 0)
                return sd_event_source_set_enabled(es, SD_EVENT_OFF);
        (void) sd_event_source_set_time(es, usec + s->spacing_usec);
        return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
}

static int on_datagram(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        UdpSweep *s = userdata;

        for (;;) {
                /* One loop thread: a static buffer serves every sweep. */
                static uint8_t buf[65536];
                struct sockaddr_in from;
                socklen_t fromlen = sizeof(from);
                ssize_t n;

                n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &from, &fromlen);
                if (n < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_debug_errno(errno, "%s receive failed, ignoring: %m", s->config.what);
                        return 0;
                }
                if (fromlen != sizeof(from) || from.sin_family != AF_INET)
                        continue;
                gpointer key = GSIZE_TO_POINTER(((gsize) ntohl(from.sin_addr.s_addr) << 16) | ntohs(from.sin_port));
                if (g_hash_table_contains(s->seen, key))
                        continue;
                if (s->config.reply(s, &from, buf, (size_t) n, s->config.userdata))
                        g_hash_table_add(s->seen, key);
        }
}

static int on_end_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        UdpSweep *s = userdata;

        s->config.done(s, s->config.userdata);
        return 0;
}

UdpSweep *udp_sweep_free(UdpSweep *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->send_timer);
        sd_event_source_disable_unref(s->end_timer);
        if (s->fd >= 0)
                close(s->fd);
        if (s->seen)
                g_hash_table_unref(s->seen);
        free(s->config.dests);
        free(s->config.probe);
        free(s);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(UdpSweep *, udp_sweep_free);

int udp_sweep_start(sd_event *event, const UdpSweepConfig *config, UdpSweep **ret) {
        _cleanup_(udp_sweep_freep) UdpSweep *s = calloc(1, sizeof(UdpSweep));
        int r;

        if (!s) {
                free(config->dests);
                free(config->probe);
                return -ENOMEM;
        }
        s->config = *config;
        s->fd = -1;
        s->seen = g_hash_table_new(NULL, NULL);
        s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0)
                return -errno;
        if (setsockopt(s->fd, SOL_SOCKET, SO_BROADCAST, &(int) { 1 }, sizeof(int)) < 0)
                return -errno;
        /* Replies to a sweep of a /16 arrive in a burst. */
        (void) setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &(int) { 4 << 20 }, sizeof(int));
        r = sd_event_add_io(event, &s->io, s->fd, EPOLLIN, on_datagram, s);
        if (r < 0)
                return r;
        s->attempts_left = MAX(config->attempts, 1u);
        /* Spread the attempts over the first half. */
        s->spacing_usec = MIN(config->duration_usec / 2 / s->attempts_left, 500 * USEC_PER_MSEC);
        r = sd_event_add_time_relative(event, &s->send_timer, CLOCK_MONOTONIC, 0, 0, on_send_timer, s);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &s->end_timer, CLOCK_MONOTONIC, config->duration_usec, 0,
                                       on_end_timer, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}
