/* SPDX-License-Identifier: MIT */
/*
 * A simulated device's sockets: TCP (framed requests on persistent
 * connections; HTTP requests for KLAP devices) and UDP (unframed
 * discovery; 20002 for KLAP devices), both on the device's own address,
 * plus the faults that act on the wire and the reboot cycle.
 *
 * A socket bound to an address never sees datagrams sent to a broadcast
 * address, while a real plug (bound to 0.0.0.0) does. So each UDP port in
 * use also has one socket on 0.0.0.0 (SO_REUSEADDR on both sides); the
 * kernel hands a unicast datagram to the more specific socket only, so the
 * wildcard one ignores whatever is not a broadcast. A broadcast is answered
 * by every device inside the sender's broadcast domain, each from its own
 * socket so the reply comes from the device's address.
 *
 * Faults on UDP: hang and drop send nothing, garbage sends random bytes;
 * delay and bad_length only apply to TCP.
 */

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "http1.h"
#include "kasa-sim.h"
#include "kasa-time.h"
#include "macro.h"


typedef union SockaddrIn {
        struct sockaddr sa;
        struct sockaddr_in in;
} SockaddrIn;

/* A reply held back by the delay fault. */
typedef struct SimDelayed {
        struct SimDelayed *next;
        uint64_t due;
        uint8_t *buf;
        size_t len;
} SimDelayed;

struct SimConn {
        SimDevice *device;
        SimConn *prev, *next;
        int fd;
        sd_event_source *io, *timer;
        KasaFrameDecoder decoder;
        Http1Parser *http;         /* KLAP devices speak HTTP instead */
        uint8_t *out;              /* bytes ready to send */
        size_t out_len;
        SimDelayed *delayed, *delayed_tail;
};

static void conn_free(SimConn *c) {
        if (!c)
                return;
        SimDevice *d = c->device;
        if (c->prev)
                c->prev->next = c->next;
        else
                d->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        if (c->fd >= 0)
                close(c->fd);
        kasa_frame_decoder_reset(&c->decoder);
        if (c->http)
                http1_parser_reset(c->http);
        free(c->http);
        free(c->out);
        while (c->delayed) {
                SimDelayed *n = c->delayed->next;
                free(c->delayed->buf);
                free(c->delayed);
                c->delayed = n;
        }
        free(c);
}

int sim_send_buffered(int fd, sd_event_source *io, uint8_t *out, size_t *out_len) {
        while (*out_len > 0) {
                ssize_t n = send(fd, out, *out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                memmove(out, out + n, *out_len - (size_t) n);
                *out_len -= (size_t) n;
        }
        return sd_event_source_set_io_events(io, EPOLLIN | (*out_len > 0 ? EPOLLOUT : 0));
}

/* Returns < 0 when the connection is broken and must be freed. */
static int conn_flush(SimConn *c) {
        return sim_send_buffered(c->fd, c->io, c->out, &c->out_len);
}

static int conn_append(SimConn *c, const uint8_t *buf, size_t len) {
        uint8_t *n = realloc(c->out, c->out_len + len);
        if (!n)
                return -ENOMEM;
        memcpy(n + c->out_len, buf, len);
        c->out = n;
        c->out_len += len;
        return 0;
}

/* Moves the replies whose time has come to the output, re-arms for the rest. */
static int conn_release_delayed(SimConn *c) {
        uint64_t now = sim_now(CLOCK_MONOTONIC);
        int r;

        while (c->delayed && c->delayed->due <= now) {
                SimDelayed *e = c->delayed;
                r = conn_append(c, e->buf, e->len);
                if (r < 0)
                        return r;
                c->delayed = e->next;
                if (!c->delayed)
                        c->delayed_tail = NULL;
                free(e->buf);
                free(e);
        }
        if (c->delayed) {
                r = sd_event_source_set_time(c->timer, c->delayed->due);
                if (r < 0)
                        return r;
                r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
                if (r < 0)
                        return r;
        }
        return conn_flush(c);
}

static int on_conn_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        SimConn *c = userdata;
        if (conn_release_delayed(c) < 0)
                conn_free(c);
        return 0;
}

/* Takes buf. Replies keep their order even when the delay changes. */
static int conn_queue(SimConn *c, uint8_t *buf, size_t len, uint64_t delay_usec) {
        int r;

        if (delay_usec == 0 && !c->delayed) {
                r = conn_append(c, buf, len);
                free(buf);
                return r < 0 ? r : conn_flush(c);
        }

        SimDelayed *e = malloc(sizeof(*e));
        if (!e) {
                free(buf);
                return -ENOMEM;
        }
        uint64_t due = sim_now(CLOCK_MONOTONIC) + delay_usec;
        *e = (SimDelayed) {
                .due = c->delayed_tail ? MAX(due, c->delayed_tail->due) : due,
                .buf = buf,
                .len = len,
        };
        if (c->delayed_tail)
                c->delayed_tail->next = e;
        else
                c->delayed = e;
        c->delayed_tail = e;

        if (!c->timer) {
                r = sd_event_add_time(c->device->sim->event, &c->timer, CLOCK_MONOTONIC, c->delayed->due, 0, on_conn_timer, c);
                if (r < 0)
                        return r;
                return 0;
        }
        return conn_release_delayed(c);
}

static int random_bytes(SimDevice *d, uint8_t **ret_buf, size_t *ret_len) {
        size_t len = 16 + sim_device_random(d) % 256;
        uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t) sim_device_random(d);
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

/* Returns < 0 when the connection must be closed. */
static int conn_on_frame(SimConn *c, const char *frame, size_t len) {
        SimDevice *d = c->device;
        _cleanup_free_ char *reply = NULL;
        uint8_t *buf;
        size_t blen;
        int r;

        if (d->faults & SIM_FAULT_HANG)
                return 0;
        if (d->faults & SIM_FAULT_DROP)
                return -ECONNRESET;

        r = sim_device_handle(d, frame, len, &reply);
        if (r < 0)
                return r;

        if (d->faults & SIM_FAULT_GARBAGE)
                r = random_bytes(d, &buf, &blen);
        else
                r = kasa_frame_encode(reply, strlen(reply), &buf, &blen);
        if (r < 0)
                return r;
        if (d->faults & SIM_FAULT_BAD_LENGTH && !(d->faults & SIM_FAULT_GARBAGE))
                memcpy(buf, "\x7f\xff\xff\xff", KASA_FRAME_HEADER_SIZE);

        return conn_queue(c, buf, blen, (uint64_t) d->delay_ms * USEC_PER_MSEC);
}

/* The same wire faults as for XOR; the KLAP and AES ones are
 * kasa-sim-klap.c's and kasa-sim-aes.c's. */
static int conn_on_http(SimConn *c, const Http1Message *m) {
        SimDevice *d = c->device;
        uint8_t *buf;
        size_t blen;
        int r;

        if (d->faults & SIM_FAULT_HANG)
                return 0;
        if (d->faults & SIM_FAULT_DROP)
                return -ECONNRESET;
        if (d->faults & SIM_FAULT_GARBAGE)
                r = random_bytes(d, &buf, &blen);
        else {
                r = (d->aes.login_version ? sim_aes_handle : sim_klap_handle)(d, m, &buf, &blen);
                if (r == 0)
                        return 0;
        }
        if (r < 0)
                return r;
        return conn_queue(c, buf, blen, (uint64_t) d->delay_ms * USEC_PER_MSEC);
}

static int conn_feed_http(SimConn *c, const uint8_t *buf, size_t n) {
        for (size_t off = 0; off < n;) {
                Http1Message m;
                size_t used;
                int r;

                r = http1_parser_feed(c->http, buf + off, n - off, &used, NULL);
                if (r < 0)
                        return r;
                off += used;
                if (r == 0)
                        continue;
                http1_parser_take(c->http, &m);
                r = conn_on_http(c, &m);
                http1_message_done(&m);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SimConn *c = userdata;
        int r;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                uint8_t buf[4096];
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0)
                        goto close;
                if (c->http && conn_feed_http(c, buf, (size_t) n) < 0)
                        goto close;
                for (size_t off = 0; !c->http && off < (size_t) n;) {
                        _cleanup_free_ char *frame = NULL;
                        size_t used, flen;
                        r = kasa_frame_decoder_feed(&c->decoder, buf + off, (size_t) n - off, &used, &frame,
                                                    &flen, NULL);
                        if (r < 0)
                                goto close;
                        off += used;
                        if (r > 0 && conn_on_frame(c, frame, flen) < 0)
                                goto close;
                }
        }
        if ((revents & EPOLLOUT) && conn_flush(c) < 0)
                goto close;
        return 0;

close:
        conn_free(c);
        return 0;
}

static int on_tcp_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SimDevice *d = userdata;

        _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                        fprintf(stderr, "kasa-sim: %s: accept failed: %m\n", d->address);
                return 0;
        }

        SimConn *c = calloc(1, sizeof(*c));
        if (!c)
                return 0;
        c->device = d;
        c->fd = TAKE_FD(cfd);
        kasa_frame_decoder_init(&c->decoder, SIM_REQUEST_MAX);
        if (sim_device_http(d)) {
                c->http = malloc(sizeof(Http1Parser));
                if (!c->http) {
                        free(c);
                        return 0;
                }
                http1_parser_init(c->http, HTTP1_REQUEST, SIM_REQUEST_MAX);
        }
        c->next = d->conns;
        if (d->conns)
                d->conns->prev = c;
        d->conns = c;

        if (sd_event_add_io(d->sim->event, &c->io, c->fd, EPOLLIN, on_conn_io, c) < 0) {
                fprintf(stderr, "kasa-sim: %s: cannot watch a connection, closing it\n", d->address);
                conn_free(c);
        }
        return 0;
}

/* Answers one discovery datagram, as received, from the device's own
 * socket: XOR on 9999, header + JSON on 20002 for KLAP devices. */
static void udp_answer(SimDevice *d, const uint8_t *datagram, size_t len, const SockaddrIn *to) {
        if (d->faults & (SIM_FAULT_HANG | SIM_FAULT_DROP))
                return;

        _cleanup_free_ uint8_t *out = NULL, *request = NULL;
        size_t out_len;
        if (d->faults & SIM_FAULT_GARBAGE) {
                if (random_bytes(d, &out, &out_len) < 0)
                        return;
        } else if (sim_device_http(d)) {
                if (sim_tdp_answer(d, datagram, len, &out, &out_len) < 0)
                        return;
        } else {
                request = malloc(len + 1);
                if (!request)
                        return;
                memcpy(request, datagram, len);
                kasa_decrypt(request, len);
                char *reply;
                if (sim_device_handle(d, (const char *) request, len, &reply) < 0)
                        return;
                out = (uint8_t *) reply;
                out_len = strlen(reply);
                kasa_encrypt(out, out_len);
        }
        (void) sendto(d->udp_fd, out, out_len, MSG_DONTWAIT, &to->sa, sizeof(to->in));
}

static int on_udp(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SimDevice *d = userdata;
        uint8_t buf[4096];
        SockaddrIn from;
        socklen_t fromlen = sizeof(from.in);

        ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC, &from.sa, &fromlen);
        if (n <= 0 || (size_t) n > sizeof(buf) || fromlen != sizeof(from.in))
                return 0;
        udp_answer(d, buf, (size_t) n, &from);
        return 0;
}

/* The block a directed broadcast reaches: that of the local address whose
 * broadcast address it is. -ENOENT when dst is no broadcast address here. */
static int broadcast_domain(struct in_addr dst, uint32_t *ret_net, uint32_t *ret_mask) {
        struct ifaddrs *list;
        int r = -ENOENT;

        if (getifaddrs(&list) < 0)
                return -errno;
        for (struct ifaddrs *i = list; i; i = i->ifa_next) {
                struct sockaddr_in addr, brd, mask;

                if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_BROADCAST) ||
                    !i->ifa_broadaddr || !i->ifa_netmask)
                        continue;
                memcpy(&addr, i->ifa_addr, sizeof(addr));
                memcpy(&brd, i->ifa_broadaddr, sizeof(brd));
                memcpy(&mask, i->ifa_netmask, sizeof(mask));
                if (brd.sin_addr.s_addr != dst.s_addr)
                        continue;
                *ret_net = addr.sin_addr.s_addr & mask.sin_addr.s_addr;
                *ret_mask = mask.sin_addr.s_addr;
                r = 0;
                break;
        }
        freeifaddrs(list);
        return r;
}

static int on_broadcast(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SimBroadcast *b = userdata;
        uint8_t buf[4096];
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        } control;
        SockaddrIn from;
        struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
        struct msghdr mh = {
                .msg_name = &from.in,
                .msg_namelen = sizeof(from.in),
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        struct in_addr dst = {};
        bool have_dst = false;
        uint32_t net = 0, mask = 0;

        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
        if (n <= 0 || (size_t) n > sizeof(buf) || mh.msg_namelen != sizeof(from.in))
                return 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
                        struct in_pktinfo pi;
                        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
                        dst = pi.ipi_addr;
                        have_dst = true;
                }
        /* Unicast to a local address without a device: nobody is there. */
        if (!have_dst || broadcast_domain(dst, &net, &mask) < 0)
                return 0;

        for (size_t i = 0; i < b->sim->n_devices; i++) {
                SimDevice *d = b->sim->devices[i];
                if (d->udp_port == b->port && sim_device_online(d) && (d->addr.s_addr & mask) == net)
                        udp_answer(d, buf, (size_t) n, &from);
        }
        return 0;
}

static int open_socket(int type, struct in_addr addr, uint16_t port, int *ret_fd) {
        SockaddrIn sa = {
                .in.sin_family = AF_INET,
                .in.sin_addr = addr,
                .in.sin_port = htons(port),
        };
        int one = 1;

        _cleanup_close_ int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        /* Only the wildcard socket needs to learn where a datagram went. */
        if (type == SOCK_DGRAM && addr.s_addr == htonl(INADDR_ANY) &&
            setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, &sa.sa, sizeof(sa.in)) < 0)
                return -errno;
        if (type == SOCK_STREAM && listen(fd, 64) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

bool sim_device_online(const SimDevice *d) {
        return d->tcp_fd >= 0;
}

void sim_device_unbind(SimDevice *d) {
        while (d->conns)
                conn_free(d->conns);
        d->tcp_source = sd_event_source_disable_unref(d->tcp_source);
        d->udp_source = sd_event_source_disable_unref(d->udp_source);
        if (d->tcp_fd >= 0)
                close(d->tcp_fd);
        if (d->udp_fd >= 0)
                close(d->udp_fd);
        d->tcp_fd = d->udp_fd = -1;
}

/* Binds at addr first and only then drops the old sockets, so a failed
 * move leaves the device where it was. */
static int bind_at(SimDevice *d, struct in_addr addr) {
        _cleanup_close_ int tcp = -1, udp = -1;
        sd_event_source *ts = NULL, *us = NULL;
        int r;

        r = open_socket(SOCK_STREAM, addr, d->port, &tcp);
        if (r < 0)
                return r;
        r = open_socket(SOCK_DGRAM, addr, d->udp_port, &udp);
        if (r < 0)
                return r;
        r = sd_event_add_io(d->sim->event, &ts, tcp, EPOLLIN, on_tcp_accept, d);
        if (r < 0)
                return r;
        r = sd_event_add_io(d->sim->event, &us, udp, EPOLLIN, on_udp, d);
        if (r < 0) {
                sd_event_source_disable_unref(ts);
                return r;
        }

        sim_device_unbind(d);
        d->tcp_fd = TAKE_FD(tcp);
        d->udp_fd = TAKE_FD(udp);
        d->tcp_source = ts;
        d->udp_source = us;
        d->addr = addr;
        inet_ntop(AF_INET, &addr, d->address, sizeof(d->address));
        return 0;
}

int sim_device_bind(SimDevice *d) {
        return bind_at(d, d->addr);
}

int sim_device_move(SimDevice *d, struct in_addr addr) {
        if (!sim_device_online(d)) {
                /* Rebooting: it comes back at the new address. */
                d->addr = addr;
                inet_ntop(AF_INET, &addr, d->address, sizeof(d->address));
                return 0;
        }
        if (addr.s_addr == d->addr.s_addr)
                return 0;
        return bind_at(d, addr);
}

int sim_broadcast_open(Sim *s) {
        for (size_t i = 0; i < s->n_devices; i++) {
                uint16_t port = s->devices[i]->udp_port;
                SimBroadcast *b;
                int r;

                for (b = s->broadcasts; b && b->port != port; b = b->next)
                        ;
                if (b)
                        continue;

                b = calloc(1, sizeof(*b));
                if (!b)
                        return -ENOMEM;
                *b = (SimBroadcast) { .sim = s, .port = port, .fd = -1, .next = s->broadcasts };
                s->broadcasts = b;
                r = open_socket(SOCK_DGRAM, (struct in_addr) { htonl(INADDR_ANY) }, port, &b->fd);
                if (r < 0)
                        return r;
                r = sd_event_add_io(s->event, &b->source, b->fd, EPOLLIN, on_broadcast, b);
                if (r < 0)
                        return r;
        }
        return 0;
}

void sim_broadcast_close(Sim *s) {
        while (s->broadcasts) {
                SimBroadcast *b = s->broadcasts;
                s->broadcasts = b->next;
                sd_event_source_disable_unref(b->source);
                if (b->fd >= 0)
                        close(b->fd);
                free(b);
        }
}

static int arm_reboot_timer(SimDevice *d, uint64_t usec);

static int on_reboot_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        SimDevice *d = userdata;
        int r;

        if (d->reboot_pending) {
                d->reboot_pending = false;
                sim_device_unbind(d);
                r = arm_reboot_timer(d, d->reboot_down_usec);
        } else {
                r = sim_device_bind(d);
                if (r < 0) {
                        fprintf(stderr, "kasa-sim: %s:%u: cannot come back after reboot: %s, retrying in 1 s\n",
                                d->address, d->port, strerror(-r));
                        r = arm_reboot_timer(d, USEC_PER_SEC);
                } else
                        sim_device_booted(d);
        }
        if (r < 0)
                fprintf(stderr, "kasa-sim: %s:%u: reboot timer failed: %s\n", d->address, d->port, strerror(-r));
        return 0;
}

static int arm_reboot_timer(SimDevice *d, uint64_t usec) {
        uint64_t when = sim_now(CLOCK_MONOTONIC) + usec;
        int r;

        if (!d->reboot_timer)
                return sd_event_add_time(d->sim->event, &d->reboot_timer, CLOCK_MONOTONIC, when, 0, on_reboot_timer,
                                         d);
        r = sd_event_source_set_time(d->reboot_timer, when);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(d->reboot_timer, SD_EVENT_ONESHOT);
}

int sim_device_schedule_reboot(SimDevice *d, uint64_t delay_usec, uint64_t down_usec) {
        d->reboot_down_usec = down_usec;
        if (delay_usec > 0) {
                d->reboot_pending = true;
                return arm_reboot_timer(d, delay_usec);
        }
        d->reboot_pending = false;
        sim_device_unbind(d);
        return arm_reboot_timer(d, down_usec);
}
