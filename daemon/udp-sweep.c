/* SPDX-License-Identifier: MIT */

#include "udp-sweep.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "kasa-time.h"
#include "log.h"
#include "macro.h"

struct UdpSweep {
        UdpSweepConfig config;
        const NetOps *net;
        sd_event *event;
        int fd;
        NetSource *io, *send_timer, *end_timer;
        unsigned attempts_left;
        uint64_t spacing_usec;
        uint64_t attempt_usec;     /* when the attempt being sent began */
        size_t next;               /* its next destination */
        bool blocked;              /* it waits for room in the socket's buffer */
        GHashTable *seen;          /* (addr << 16 | port) of sources accepted */
};

/* Sends the rest of the attempt. A sweep of a /16 fills the socket's
 * buffer long before its 65536 probes are out: it waits for room, or
 * most of the block would never be asked. */
static void send_attempt(UdpSweep *s) {
        for (; s->next < s->config.n_dests; s->next++) {
                const struct sockaddr_in *to = &s->config.dests[s->next];
                ssize_t n = s->net->sendto(s->fd, s->config.probe, s->config.probe_len, to);

                if (n == -EAGAIN) {
                        if (s->blocked || s->net->set_io_events(s->io, EPOLLIN | EPOLLOUT) >= 0) {
                                s->blocked = true;
                                return;
                        }
                        /* Without EPOLLOUT the attempt cannot wait: what is
                         * left goes at the next one. */
                        log_debug("%s: socket buffer full, %zu probes left for the next attempt, ignoring",
                                  s->config.what, s->config.n_dests - s->next);
                        break;
                }
                if (n < 0)
                        log_debug_errno((int) -n, "%s probe to %s failed, ignoring: %m", s->config.what,
                                        inet_ntoa(to->sin_addr));
        }
        if (s->blocked) {
                (void) s->net->set_io_events(s->io, EPOLLIN);
                s->blocked = false;
        }
        if (--s->attempts_left == 0)
                return;
        /* Spaced from the start of this one, however long it took. */
        uint64_t now = s->net->now(s->event, CLOCK_MONOTONIC);
        (void) s->net->set_time(s->send_timer, MAX(s->attempt_usec + s->spacing_usec, now));
        (void) s->net->set_enabled(s->send_timer, SD_EVENT_ONESHOT);
}

static int on_send_timer(NetSource *es, uint64_t usec, void *userdata) {
        UdpSweep *s = userdata;

        s->attempt_usec = usec;
        s->next = 0;
        send_attempt(s);
        return 0;
}

static int on_io(NetSource *es, int fd, uint32_t revents, void *userdata) {
        UdpSweep *s = userdata;

        if ((revents & EPOLLOUT) && s->blocked)
                send_attempt(s);
        if (!(revents & EPOLLIN))
                return 0;
        for (;;) {
                /* One loop thread: a static buffer serves every sweep. */
                static uint8_t buf[65536];
                struct sockaddr_in from;
                ssize_t n;

                n = s->net->recvfrom(fd, buf, sizeof(buf), &from);
                if (n == -EAFNOSUPPORT)
                        continue;
                if (n < 0) {
                        if (n != -EAGAIN && n != -EINTR)
                                log_debug_errno((int) -n, "%s receive failed, ignoring: %m", s->config.what);
                        return 0;
                }
                gpointer key = GSIZE_TO_POINTER(((gsize) ntohl(from.sin_addr.s_addr) << 16) | ntohs(from.sin_port));
                if (g_hash_table_contains(s->seen, key))
                        continue;
                if (s->config.reply(s, &from, buf, (size_t) n, s->config.userdata))
                        g_hash_table_add(s->seen, key);
        }
}

static int on_end_timer(NetSource *es, uint64_t usec, void *userdata) {
        UdpSweep *s = userdata;

        s->config.done(s, s->config.userdata);
        return 0;
}

UdpSweep *udp_sweep_free(UdpSweep *s) {
        if (!s)
                return NULL;
        s->net->disable_unref(s->io);
        s->net->disable_unref(s->send_timer);
        s->net->disable_unref(s->end_timer);
        if (s->fd >= 0)
                (void) s->net->close(s->fd);
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
        uint64_t now;
        int r;

        if (!s) {
                free(config->dests);
                free(config->probe);
                return -ENOMEM;
        }
        s->config = *config;
        s->net = config->net ?: &net_ops_real;
        s->event = event;
        s->fd = -1;
        s->seen = g_hash_table_new(NULL, NULL);
        r = s->net->socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (r < 0)
                return r;
        s->fd = r;
        r = s->net->setsockopt(s->fd, SOL_SOCKET, SO_BROADCAST, &(int) { 1 }, sizeof(int));
        if (r < 0)
                return r;
        /* Replies to a sweep of a /16 arrive in a burst. */
        (void) s->net->setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &(int) { 4 << 20 }, sizeof(int));
        r = s->net->add_io(event, &s->io, s->fd, EPOLLIN, on_io, s);
        if (r < 0)
                return r;
        s->attempts_left = MAX(config->attempts, 1u);
        /* Spread the attempts over the first half. */
        s->spacing_usec = MIN(config->duration_usec / 2 / s->attempts_left, 500 * USEC_PER_MSEC);
        now = s->net->now(event, CLOCK_MONOTONIC);
        r = s->net->add_time(event, &s->send_timer, now, 0, on_send_timer, s);
        if (r < 0)
                return r;
        r = s->net->add_time(event, &s->end_timer, now + config->duration_usec, 0, on_end_timer, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}
