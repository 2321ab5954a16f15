/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A fake NetOps for unit tests: pretend sockets whose far end the test
 * plays, and a pretend event loop on a pretend clock. Nothing here opens a
 * real socket or waits for real time.
 *
 *   fake_run()            dispatch what is ready (defer sources, sockets
 *                         with news) until nothing is
 *   fake_advance(usec)    move the clock, firing due timers in order
 *   fake_socket(i)        the i-th socket opened (0-based)
 *   fake_reply(s, json)   the device answers one framed reply
 *   fake_sent_json(s, k)  the k-th request the device received, decoded
 *
 * Edge-triggered like the daemon's sockets: an io source is dispatched only
 * when the test changed something on its socket.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "kasa-proto.h"
#include "net-ops.h"

#define FAKE_MAX 64

typedef enum FakeKind { FAKE_IO, FAKE_TIME, FAKE_DEFER } FakeKind;

typedef struct FakeSource {
        FakeKind kind;
        bool freed;
        int enabled;
        int fd;
        uint32_t events;
        uint64_t usec;
        net_io_handler_t io_cb;
        net_time_handler_t time_cb;
        net_handler_t defer_cb;
        void *userdata;
} FakeSource;

typedef struct FakeSocket {
        int fd;
        bool closed;               /* closed by the code under test */
        bool connect_done;         /* the test let the connect complete */
        int connect_error;         /* its outcome */
        bool edge;                 /* something new for the io source */
        bool peer_closed;          /* recv() returns 0 once inbuf is empty */
        int recv_error;            /* recv() fails with this once inbuf is empty */
        int send_error;            /* send() fails with this */
        bool reset_on_send;        /* a closed peer: the next send draws an RST */
        uint8_t in[65536];         /* what the device sent, not read yet */
        size_t in_len;
        uint8_t out[65536];        /* what the code under test sent */
        size_t out_len;
        /* Datagrams: with dgram_limit, sendto() takes dgram_room more
         * before EAGAIN (fake_dgram_room() makes room, as a drained buffer
         * does); each one sent is counted, with its destination. */
        bool dgram_limit;
        size_t dgram_room;
        size_t dgrams_sent;
        struct sockaddr_in dgram_last_to;
} FakeSocket;

static struct {
        uint64_t now;
        FakeSource *sources[4 * FAKE_MAX];
        size_t n_sources;
        FakeSocket sockets[FAKE_MAX];
        size_t n_sockets;
        size_t n_open;
        int refuse;                /* connect outcome for new sockets: 0 or -errno */
} fake;

static inline FakeSocket *fake_find(int fd) {
        for (size_t i = 0; i < fake.n_sockets; i++)
                if (fake.sockets[i].fd == fd)
                        return &fake.sockets[i];
        abort(); /* the code under test used an fd it was never given */
}

/* The i-th socket opened; a test asking for one never opened is broken. */
static inline FakeSocket *fake_socket(size_t i) {
        if (i >= fake.n_sockets)
                abort();
        return &fake.sockets[i];
}

static inline FakeSocket *fake_last_socket(void) {
        return fake_socket(fake.n_sockets - 1);
}

static inline int fake_socket_open(int domain, int type, int protocol) {
        if (fake.n_sockets >= FAKE_MAX)
                return -EMFILE;
        FakeSocket *s = &fake.sockets[fake.n_sockets++];
        memset(s, 0, sizeof(*s));
        s->fd = 100 + (int) fake.n_sockets;
        s->connect_error = fake.refuse;
        fake.n_open++;
        return s->fd;
}

static inline int fake_setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
        return 0;
}

static inline int fake_connect(int fd, const struct sockaddr *sa, socklen_t len) {
        FakeSocket *s = fake_find(fd);
        /* Completes from the loop, as a non-blocking connect does. */
        s->connect_done = true;
        s->edge = true;
        return -EINPROGRESS;
}

static inline int fake_connect_result(int fd) {
        return fake_find(fd)->connect_error;
}

static inline ssize_t fake_send(int fd, const void *buf, size_t len) {
        FakeSocket *s = fake_find(fd);
        if (s->send_error)
                return s->send_error;
        if (s->connect_error)
                return -ENOTCONN;
        if (s->out_len + len > sizeof(s->out))
                return -EAGAIN;
        if (s->reset_on_send) {
                /* The data is lost; the reset arrives a moment later. */
                s->recv_error = -ECONNRESET;
                s->edge = true;
                return (ssize_t) len;
        }
        memcpy(s->out + s->out_len, buf, len);
        s->out_len += len;
        return (ssize_t) len;
}

static inline ssize_t fake_recv(int fd, void *buf, size_t len, int flags) {
        FakeSocket *s = fake_find(fd);
        if (s->in_len == 0) {
                if (s->recv_error)
                        return s->recv_error;
                return s->peer_closed ? 0 : -EAGAIN;
        }
        size_t n = len < s->in_len ? len : s->in_len;
        memcpy(buf, s->in, n);
        if (!(flags & MSG_PEEK)) {
                memmove(s->in, s->in + n, s->in_len - n);
                s->in_len -= n;
        }
        return (ssize_t) n;
}

static inline ssize_t fake_sendto(int fd, const void *buf, size_t len, const struct sockaddr_in *to) {
        FakeSocket *s = fake_find(fd);
        if (s->send_error)
                return s->send_error;
        if (s->dgram_limit) {
                if (s->dgram_room == 0)
                        return -EAGAIN;
                s->dgram_room--;
        }
        s->dgrams_sent++;
        s->dgram_last_to = *to;
        return (ssize_t) len;
}

/* Datagrams in: none; the sweep's test checks what it sends. */
static inline ssize_t fake_recvfrom(int fd, void *buf, size_t len, struct sockaddr_in *from) {
        fake_find(fd);
        return -EAGAIN;
}

static inline void fake_dgram_room(FakeSocket *s, size_t n) {
        s->dgram_room += n;
        s->edge = true;
}

static inline int fake_close(int fd) {
        FakeSocket *s = fake_find(fd);
        if (s->closed)
                return -EBADF;
        s->closed = true;
        fake.n_open--;
        return 0;
}

static inline uint64_t fake_now(sd_event *e, clockid_t clock) {
        return fake.now;
}

static inline FakeSource *fake_source_new(FakeKind kind, void *userdata) {
        FakeSource *src = calloc(1, sizeof(FakeSource));
        if (!src)
                abort();
        src->kind = kind;
        src->userdata = userdata;
        src->enabled = SD_EVENT_ON;
        fake.sources[fake.n_sources++] = src;
        return src;
}

static inline int fake_add_io(sd_event *e, NetSource **ret, int fd, uint32_t events, net_io_handler_t cb,
                              void *userdata) {
        FakeSource *src = fake_source_new(FAKE_IO, userdata);
        src->fd = fd;
        src->events = events;
        src->io_cb = cb;
        *ret = (NetSource *) src;
        return 0;
}

static inline int fake_set_io_events(NetSource *s, uint32_t events) {
        ((FakeSource *) s)->events = events;
        return 0;
}

static inline int fake_add_time(sd_event *e, NetSource **ret, uint64_t usec, uint64_t accuracy,
                                net_time_handler_t cb, void *userdata) {
        FakeSource *src = fake_source_new(FAKE_TIME, userdata);
        src->usec = usec;
        src->time_cb = cb;
        src->enabled = SD_EVENT_ONESHOT;
        *ret = (NetSource *) src;
        return 0;
}

static inline int fake_set_time(NetSource *s, uint64_t usec) {
        ((FakeSource *) s)->usec = usec;
        return 0;
}

static inline int fake_add_defer(sd_event *e, NetSource **ret, net_handler_t cb, void *userdata) {
        FakeSource *src = fake_source_new(FAKE_DEFER, userdata);
        src->defer_cb = cb;
        src->enabled = SD_EVENT_ONESHOT;
        *ret = (NetSource *) src;
        return 0;
}

static inline int fake_set_enabled(NetSource *s, int enabled) {
        ((FakeSource *) s)->enabled = enabled;
        return 0;
}

static inline NetSource *fake_disable_unref(NetSource *s) {
        if (s) {
                FakeSource *src = (FakeSource *) s;
                src->freed = true;
                src->enabled = SD_EVENT_OFF;
        }
        return NULL;
}

static const NetOps fake_net = {
        .socket = fake_socket_open,
        .setsockopt = fake_setsockopt,
        .connect = fake_connect,
        .connect_result = fake_connect_result,
        .send = fake_send,
        .recv = fake_recv,
        .sendto = fake_sendto,
        .recvfrom = fake_recvfrom,
        .close = fake_close,
        .now = fake_now,
        .add_io = fake_add_io,
        .set_io_events = fake_set_io_events,
        .add_time = fake_add_time,
        .set_time = fake_set_time,
        .add_defer = fake_add_defer,
        .set_enabled = fake_set_enabled,
        .disable_unref = fake_disable_unref,
};

static inline bool fake_live(FakeSource *src) {
        return !src->freed && src->enabled != SD_EVENT_OFF;
}

static inline void fake_fire(FakeSource *src) {
        if (src->enabled == SD_EVENT_ONESHOT)
                src->enabled = SD_EVENT_OFF;
        switch (src->kind) {
        case FAKE_DEFER:
                src->defer_cb((NetSource *) src, src->userdata);
                break;
        case FAKE_TIME:
                src->time_cb((NetSource *) src, src->usec, src->userdata);
                break;
        case FAKE_IO: {
                FakeSocket *s = fake_find(src->fd);
                uint32_t revents = 0;
                s->edge = false;
                if (s->in_len > 0 || s->peer_closed || s->recv_error)
                        revents |= EPOLLIN;
                if (s->peer_closed)
                        revents |= EPOLLRDHUP;
                if (s->connect_done || (s->dgram_limit && s->dgram_room > 0))
                        revents |= EPOLLOUT;
                if (s->connect_error)
                        revents |= EPOLLERR;
                src->io_cb((NetSource *) src, src->fd, revents & (src->events | EPOLLERR | EPOLLHUP),
                           src->userdata);
                break;
        }
        }
}

/* One ready source; false when none is. */
static inline bool fake_step(void) {
        for (size_t i = 0; i < fake.n_sources; i++) {
                FakeSource *src = fake.sources[i];
                if (fake_live(src) && src->kind == FAKE_DEFER) {
                        fake_fire(src);
                        return true;
                }
        }
        for (size_t i = 0; i < fake.n_sources; i++) {
                FakeSource *src = fake.sources[i];
                if (fake_live(src) && src->kind == FAKE_IO) {
                        FakeSocket *s = fake_find(src->fd);
                        if (s && !s->closed && s->edge) {
                                fake_fire(src);
                                return true;
                        }
                }
        }
        FakeSource *due = NULL;
        for (size_t i = 0; i < fake.n_sources; i++) {
                FakeSource *src = fake.sources[i];
                if (fake_live(src) && src->kind == FAKE_TIME && src->usec <= fake.now &&
                    (!due || src->usec < due->usec))
                        due = src;
        }
        if (due) {
                fake_fire(due);
                return true;
        }
        return false;
}

static inline void fake_run(void) {
        for (unsigned i = 0; i < 100000 && fake_step(); i++)
                ;
}

/* Move the clock to each due timer in turn, up to now + usec. */
static inline void fake_advance(uint64_t usec) {
        uint64_t end = fake.now + usec;

        fake_run();
        for (;;) {
                FakeSource *next = NULL;
                for (size_t i = 0; i < fake.n_sources; i++) {
                        FakeSource *src = fake.sources[i];
                        if (fake_live(src) && src->kind == FAKE_TIME && src->usec <= end &&
                            (!next || src->usec < next->usec))
                                next = src;
                }
                if (!next)
                        break;
                if (next->usec > fake.now)
                        fake.now = next->usec;
                fake_run();
        }
        fake.now = end;
        fake_run();
}

/* The earliest enabled timer, UINT64_MAX if none. */
static inline uint64_t fake_next_timer(void) {
        uint64_t t = UINT64_MAX;
        for (size_t i = 0; i < fake.n_sources; i++) {
                FakeSource *src = fake.sources[i];
                if (fake_live(src) && src->kind == FAKE_TIME && src->usec < t)
                        t = src->usec;
        }
        return t;
}

static inline void fake_push(FakeSocket *s, const void *data, size_t len) {
        memcpy(s->in + s->in_len, data, len);
        s->in_len += len;
        s->edge = true;
}

static inline void fake_reply(FakeSocket *s, const char *json) {
        uint8_t *frame;
        size_t len;

        if (kasa_frame_encode(json, strlen(json), &frame, &len) < 0)
                abort();
        fake_push(s, frame, len);
        free(frame);
}

static inline void fake_peer_close(FakeSocket *s) {
        s->peer_closed = true;
        s->edge = true;
}

/* Requests the device got on s, decoded; NULL past the last. */
static inline char *fake_sent_json(FakeSocket *s, size_t k) {
        size_t off = 0;

        for (size_t i = 0; off + 4 <= s->out_len; i++) {
                size_t n = (size_t) s->out[off] << 24 | (size_t) s->out[off + 1] << 16 |
                           (size_t) s->out[off + 2] << 8 | s->out[off + 3];
                if (off + 4 + n > s->out_len)
                        return NULL;
                if (i == k) {
                        char *json = malloc(n + 1);
                        memcpy(json, s->out + off + 4, n);
                        kasa_decrypt((uint8_t *) json, n);
                        json[n] = 0;
                        return json;
                }
                off += 4 + n;
        }
        return NULL;
}

static inline size_t fake_sent_count(FakeSocket *s) {
        size_t count = 0, off = 0;

        while (off + 4 <= s->out_len) {
                size_t n = (size_t) s->out[off] << 24 | (size_t) s->out[off + 1] << 16 |
                           (size_t) s->out[off + 2] << 8 | s->out[off + 3];
                off += 4 + n;
                if (off <= s->out_len)
                        count++;
        }
        return count;
}

static inline void fake_reset(void) {
        for (size_t i = 0; i < fake.n_sources; i++)
                free(fake.sources[i]);
        memset(&fake, 0, sizeof(fake));
}
