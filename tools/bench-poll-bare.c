/* SPDX-License-Identifier: MIT */
/*
 * The floor of tools/bench-poll: the least a poller of Kasa plugs can do per
 * read. One epoll loop, a persistent TCP connection per plug, the request
 * kasamond sends (sysinfo and realtime in one XOR frame, made by the same
 * common/kasa-proto code), the whole reply read and decrypted; nothing
 * parsed, stored or signalled. It wakes as
 * kasamond does: the plugs are spread over the interval and one timer wake-up
 * serves every plug due within a tenth of the interval (at most 250 ms), so
 * the difference to kasamond is kasamond's own work, not a different number
 * of wake-ups.
 *
 * Usage: bench-poll-bare INTERVAL_S HOST...   (port 9999)
 * Prints "ready" once every plug is connected, then on SIGUSR2 the number of
 * completed reads and of errors so far, one line per signal; SIGTERM ends it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "kasa-proto.h"

#define KASA_PORT 9999
#define REPLY_MAX (64 * 1024)
#define SLACK_MAX_USEC (250 * 1000ULL)

struct plug {
        uint32_t id;
        int fd;
        uint64_t due;
        int busy;
        size_t have, want;
        unsigned char buf[4 + REPLY_MAX];
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static int plug_connect(struct plug *p, const char *host) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(KASA_PORT) };

        p->fd = -1;
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                fprintf(stderr, "bench-poll-bare: not an IPv4 address: %s\n", host);
                return -EINVAL;
        }
        p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (p->fd < 0 || connect(p->fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                fprintf(stderr, "bench-poll-bare: %s: %m\n", host);
                return -errno;
        }
        int one = 1;
        setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return 0;
}

static int plug_open(int ep, struct plug *p, const char *host) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = p->id };
        int r = plug_connect(p, host);

        if (r < 0) {
                if (p->fd >= 0)
                        close(p->fd);
                p->fd = -1;
                return r;
        }
        return epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev) < 0 ? -errno : 0;
}

static int plug_send(struct plug *p, const unsigned char *frame, size_t n) {
        if (send(p->fd, frame, n, MSG_NOSIGNAL) != (ssize_t) n)
                return -EIO;
        p->busy = 1;
        p->have = 0;
        p->want = 4;
        return 0;
}

/* 1 when a whole reply is in, 0 for more to come, <0 on error. */
static int plug_read(struct plug *p) {
        for (;;) {
                ssize_t n = recv(p->fd, p->buf + p->have, p->want - p->have, MSG_DONTWAIT);
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                if (n == 0)
                        return -ECONNRESET;
                p->have += (size_t) n;
                if (p->have < p->want)
                        continue;
                if (p->want == 4) {
                        uint32_t len = (uint32_t) p->buf[0] << 24 | (uint32_t) p->buf[1] << 16 |
                                       (uint32_t) p->buf[2] << 8 | p->buf[3];
                        if (len == 0 || len > REPLY_MAX)
                                return -EBADMSG;
                        p->want = 4 + len;
                        continue;
                }
                kasa_decrypt(p->buf + 4, p->want - 4);
                /* A reply is JSON: a frame that does not start as one is an error. */
                if (p->buf[4] != '{')
                        return -EBADMSG;
                p->busy = 0;
                return 1;
        }
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: bench-poll-bare INTERVAL_S HOST...\n");
                return 2;
        }
        uint64_t interval = (uint64_t) (strtod(argv[1], NULL) * 1e6);
        int n = argc - 2;
        if (interval == 0) {
                fprintf(stderr, "bench-poll-bare: bad interval %s\n", argv[1]);
                return 2;
        }
        uint64_t slack = interval / 10 < SLACK_MAX_USEC ? interval / 10 : SLACK_MAX_USEC;
        struct plug *plugs = calloc((size_t) n, sizeof *plugs);
        if (!plugs)
                return 1;

        char *request = kasa_request_query(KASA_QUERY_SYSINFO | KASA_QUERY_REALTIME, NULL);
        uint8_t *frame = NULL;
        size_t frame_len = 0;
        if (!request || kasa_frame_encode(request, strlen(request), &frame, &frame_len) < 0) {
                fprintf(stderr, "bench-poll-bare: out of memory\n");
                return 1;
        }

        int ep = epoll_create1(EPOLL_CLOEXEC);
        int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR2);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (ep < 0 || tfd < 0 || sfd < 0) {
                perror("bench-poll-bare");
                return 1;
        }
        uint64_t t0 = now_usec();
        for (int i = 0; i < n; i++) {
                plugs[i].id = (uint32_t) i;
                if (plug_open(ep, &plugs[i], argv[2 + i]) < 0)
                        return 1;
                plugs[i].due = t0 + interval * (uint64_t) i / (uint64_t) n;
        }
        struct epoll_event tev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
        struct epoll_event sev = { .events = EPOLLIN, .data.u32 = UINT32_MAX - 1 };
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
        epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev);
        printf("ready\n");
        fflush(stdout);

        unsigned long long reads = 0, errors = 0;
        for (;;) {
                /* Every plug due within the slack goes now; the timer is set
                 * for the next one after them. */
                uint64_t now = now_usec(), next = UINT64_MAX;
                for (int i = 0; i < n; i++) {
                        struct plug *p = &plugs[i];
                        if (p->due <= now + slack) {
                                /* A connection that failed is made again
                                 * when the plug is next due. */
                                if (p->fd < 0 && plug_open(ep, p, argv[2 + i]) < 0)
                                        errors++;
                                else if (p->busy)
                                        errors++;       /* the last reply never came */
                                else if (plug_send(p, frame, frame_len) < 0)
                                        errors++;
                                p->due += interval;
                        }
                        if (p->due < next)
                                next = p->due;
                }
                struct itimerspec its = { .it_value = { .tv_sec = (time_t) (next / 1000000),
                                                        .tv_nsec = (long) (next % 1000000) * 1000 } };
                timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);

                for (int woke = 0; !woke;) {
                        struct epoll_event evs[64];
                        int k = epoll_wait(ep, evs, 64, -1);
                        if (k < 0 && errno != EINTR)
                                return 1;
                        for (int j = 0; j < k; j++) {
                                uint32_t id = evs[j].data.u32;
                                if (id == UINT32_MAX) {
                                        uint64_t ticks;
                                        (void) !read(tfd, &ticks, sizeof ticks);
                                        woke = 1;
                                } else if (id == UINT32_MAX - 1) {
                                        struct signalfd_siginfo si;
                                        if (read(sfd, &si, sizeof si) != sizeof si)
                                                continue;
                                        if (si.ssi_signo == SIGTERM)
                                                return 0;
                                        printf("%llu %llu\n", reads, errors);
                                        fflush(stdout);
                                } else {
                                        int r = plug_read(&plugs[id]);
                                        if (r > 0)
                                                reads++;
                                        else if (r < 0) {
                                                /* Closed, so that a dead socket does
                                                 * not wake the loop over and over. */
                                                errors++;
                                                epoll_ctl(ep, EPOLL_CTL_DEL, plugs[id].fd, NULL);
                                                close(plugs[id].fd);
                                                plugs[id].fd = -1;
                                                plugs[id].busy = 0;
                                        }
                                }
                        }
                }
        }
}
