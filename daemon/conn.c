/* SPDX-License-Identifier: MIT */

#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kasa-proto.h"
#include "log.h"
#include "macro.h"

typedef struct Request {
        struct Request *next;
        uint8_t *frame;
        size_t frame_len;
        ConnReplyFn cb;
        void *userdata;
} Request;

struct Conn {
        sd_event *event;
        struct sockaddr_in addr;
        uint64_t timeout_usec;

        int fd;
        bool connected;
        bool in_flight;            /* head request sent or being sent */
        /* A reused connection may have been closed by the device while
         * idle; its first failure is retried once on a fresh socket. */
        bool reused;
        bool retried;
        sd_event_source *io;
        sd_event_source *timer;
        sd_event_source *kick;     /* starts the next request from the loop */

        Request *head, *tail;
        size_t n_pending;
        size_t sent;               /* bytes of head->frame written */
        KasaFrameDecoder decoder;
};

static void request_free(Request *r) {
        free(r->frame);
        free(r);
}

static void close_socket(Conn *c) {
        c->io = sd_event_source_disable_unref(c->io);
        if (c->timer)
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->connected = false;
        c->in_flight = false;
        c->reused = false;
        c->sent = 0;
        kasa_frame_decoder_reset(&c->decoder);
}

static Request *pop_head(Conn *c) {
        Request *r = c->head;

        c->head = r->next;
        if (!c->head)
                c->tail = NULL;
        c->n_pending--;
        return r;
}

/* A failure poisons the whole queue: requests behind a hung or broken
 * device would only burn their own timeouts one after another. The queue
 * is detached first, so callbacks may queue new requests. */
static void fail_all(Conn *c, int error) {
        Request *list = c->head;

        close_socket(c);
        c->head = c->tail = NULL;
        c->n_pending = 0;
        c->retried = false;
        while (list) {
                Request *next = list->next;
                list->cb(c, error, NULL, 0, list->userdata);
                request_free(list);
                list = next;
        }
}

static int start(Conn *c);

static void fail(Conn *c, int error) {
        bool stale = error == -ECONNRESET || error == -EPIPE || error == -ECONNREFUSED;

        if (stale && c->reused && !c->retried && c->in_flight && !kasa_frame_decoder_busy(&c->decoder)) {
                c->retried = true;
                close_socket(c);
                if (start(c) >= 0)
                        return;
        }
        fail_all(c, error);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        fail_all(userdata, -ETIMEDOUT);
        return 0;
}

static int write_head(Conn *c) {
        Request *r = c->head;

        while (c->sent < r->frame_len) {
                ssize_t n = send(c->fd, r->frame + c->sent, r->frame_len - c->sent, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return sd_event_source_set_io_events(c->io, EPOLLOUT | EPOLLIN | EPOLLET);
                        return -errno;
                }
                c->sent += (size_t) n;
        }
        return sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLET);
}

/* Returns 1 after a complete reply was handed to its callback. */
static int read_reply(Conn *c) {
        uint8_t buf[4096];

        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return -errno;
                }
                if (n == 0)
                        return -ECONNRESET;
                if (!c->in_flight)
                        return -EBADMSG; /* bytes nobody asked for */

                size_t off = 0;
                while (off < (size_t) n) {
                        _cleanup_free_ char *frame = NULL;
                        size_t used, frame_len;
                        KasaError err;
                        int r;

                        r = kasa_frame_decoder_feed(&c->decoder, buf + off, (size_t) n - off, &used, &frame,
                                                    &frame_len, &err);
                        if (r < 0)
                                return r;
                        off += used;
                        if (r == 0)
                                continue;
                        /* A device answers one frame per request; anything
                         * after it means the stream is out of step. */
                        if (off < (size_t) n)
                                return -EBADMSG;
                        /* Edge-triggered: a close that came with the reply
                         * is not reported again, so look for it now and let
                         * the next request open a fresh connection. */
                        uint8_t b;
                        ssize_t k = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
                        if (k > 0)
                                return -EBADMSG;

                        Request *req = pop_head(c);
                        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                        c->in_flight = false;
                        c->reused = true;
                        if (k == 0)
                                close_socket(c);
                        c->retried = false;
                        c->sent = 0;
                        if (c->head)
                                (void) sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
                        req->cb(c, 0, frame, frame_len, req->userdata);
                        request_free(req);
                        return 1;
                }
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;
        int r;

        if (!c->connected) {
                int error = 0;
                socklen_t len = sizeof(error);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                        error = errno;
                if (error != 0) {
                        fail(c, -error);
                        return 0;
                }
                c->connected = true;
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                r = read_reply(c);
                if (r < 0) {
                        fail(c, r);
                        return 0;
                }
                if (r > 0)
                        return 0;
        }
        if ((revents & EPOLLOUT) && c->in_flight) {
                r = write_head(c);
                if (r < 0)
                        fail(c, r);
        }
        return 0;
}

static int open_socket(Conn *c) {
        _cleanup_close_ int fd = -1;
        int r;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));
        if (connect(fd, (const struct sockaddr *) &c->addr, sizeof(c->addr)) < 0 && errno != EINPROGRESS)
                return -errno;
        /* Edge-triggered: sd-event dispatches one source per epoll_wait(), and a
         * level-triggered socket would be reported again on every turn until
         * read; read_reply() reads until EAGAIN or a complete frame. */
        r = sd_event_add_io(c->event, &c->io, fd, EPOLLOUT | EPOLLIN | EPOLLET, on_io, c);
        if (r < 0)
                return r;
        c->fd = TAKE_FD(fd);
        c->connected = false;
        return 0;
}

/* Send the head request, connecting first if needed. */
static int start(Conn *c) {
        uint64_t now;
        int r;

        if (!c->head)
                return 0;
        if (c->fd < 0) {
                r = open_socket(c);
                if (r < 0)
                        return r;
        }
        r = sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = sd_event_source_set_time(c->timer, now + c->timeout_usec);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        c->in_flight = true;
        c->sent = 0;
        /* An idle connection can nearly always take a small request, so
         * send it now instead of waiting for EPOLLOUT: sd-event dispatches
         * one source per epoll_wait(), and with hundreds of polls started
         * by one timer tick every turn of the loop re-reported all the
         * sockets still waiting to be written, quadratic in their number.
         * write_head() asks for EPOLLOUT only if the send would block. */
        if (c->connected)
                return write_head(c);
        return 0;
}

static int on_kick(sd_event_source *s, void *userdata) {
        Conn *c = userdata;
        int r;

        if (c->in_flight || !c->head)
                return 0;
        r = start(c);
        if (r < 0)
                /* A send on a connection the device closed while idle is
                 * retried once on a fresh one, as in on_io(). */
                fail(c, r);
        return 0;
}

int conn_request_frame(Conn *c, const uint8_t *frame, size_t len, ConnReplyFn cb, void *userdata) {
        _cleanup_free_ Request *r = calloc(1, sizeof(Request));

        if (!r)
                return -ENOMEM;
        r->frame = malloc(len);
        if (!r->frame)
                return -ENOMEM;
        memcpy(r->frame, frame, len);
        r->frame_len = len;
        r->cb = cb;
        r->userdata = userdata;

        if (c->tail)
                c->tail->next = r;
        else
                c->head = r;
        c->tail = TAKE_PTR(r);
        c->n_pending++;

        /* Started from the loop, never from here: a failure must reach the
         * caller through its callback, not re-entrantly inside this call. */
        if (!c->in_flight)
                return sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
        return 0;
}

int conn_request(Conn *c, const char *json, ConnReplyFn cb, void *userdata) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t len;
        int r;

        r = kasa_frame_encode(json, strlen(json), &frame, &len);
        if (r < 0)
                return r;
        return conn_request_frame(c, frame, len, cb, userdata);
}

int conn_new(sd_event *event, const struct sockaddr_in *addr, uint64_t timeout_usec, size_t max_frame,
             Conn **ret) {
        _cleanup_(conn_freep) Conn *c = calloc(1, sizeof(Conn));
        int r;

        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->addr = *addr;
        c->timeout_usec = timeout_usec;
        c->fd = -1;
        kasa_frame_decoder_init(&c->decoder, max_frame);

        r = sd_event_add_time(event, &c->timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_timeout, c);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = sd_event_add_defer(event, &c->kick, on_kick, c);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(c->kick, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

void conn_reset(Conn *c) {
        fail_all(c, -ECANCELED);
}

/* Never call from a ConnReplyFn of the same connection. */
Conn *conn_free(Conn *c) {
        if (!c)
                return NULL;
        conn_reset(c);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->kick);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

void conn_set_address(Conn *c, const struct sockaddr_in *addr) {
        if (memcmp(&c->addr, addr, sizeof(*addr)) == 0)
                return;
        c->addr = *addr;
        conn_reset(c);
}

const struct sockaddr_in *conn_address(const Conn *c) {
        return &c->addr;
}

size_t conn_pending(const Conn *c) {
        return c->n_pending;
}
