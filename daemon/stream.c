/* SPDX-License-Identifier: MIT */

#include "stream.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

typedef struct Request {
        struct Request *next;
        uint8_t *data;
        size_t len;
        StreamReplyFn cb;
        void *userdata;
} Request;

struct Stream {
        sd_event *event;
        const NetOps *net;
        struct sockaddr_in address;
        uint64_t timeout_usec;
        const StreamFramer *framer;
        void *framer_userdata;

        int fd;
        bool connected;
        bool in_flight;            /* head request sent or being sent */
        /* A reused connection may have been closed by the device while
         * idle; its first failure is retried once on a fresh socket. */
        bool reused;
        bool retried;
        uint32_t io_events;        /* as last given to the io source */
        NetSource *io;
        NetSource *timer;
        NetSource *kick;           /* starts the next request from the loop */

        Request *head, *tail;
        size_t n_pending;
        size_t sent;               /* bytes of head->data written */
};

static void request_free(Request *r) {
        free(r->data);
        free(r);
}

static void close_socket(Stream *s) {
        s->io = s->net->disable_unref(s->io);
        if (s->timer)
                (void) s->net->set_enabled(s->timer, SD_EVENT_OFF);
        if (s->fd >= 0)
                (void) s->net->close(s->fd);
        s->fd = -1;
        s->connected = false;
        s->in_flight = false;
        s->reused = false;
        s->sent = 0;
        s->framer->reset(s->framer_userdata);
}

static Request *pop_head(Stream *s) {
        Request *r = s->head;

        s->head = r->next;
        if (!s->head)
                s->tail = NULL;
        s->n_pending--;
        return r;
}

/* A failure poisons the whole queue: requests behind a hung or broken
 * device would only burn their own timeouts one after another, and a late
 * reply must never be taken for the next request's. The queue is detached
 * first, so callbacks may queue new requests. */
static void fail_all(Stream *s, int error) {
        Request *list = s->head;

        close_socket(s);
        s->head = s->tail = NULL;
        s->n_pending = 0;
        s->retried = false;
        while (list) {
                Request *next = list->next;
                list->cb(s, error, NULL, 0, list->userdata);
                request_free(list);
                list = next;
        }
}

static int start(Stream *s);

static void fail(Stream *s, int error) {
        bool stale = error == -ECONNRESET || error == -EPIPE || error == -ECONNREFUSED;

        /* Not once part of the reply came: the device took the request. */
        if (stale && s->reused && !s->retried && s->in_flight && !s->framer->busy(s->framer_userdata)) {
                s->retried = true;
                close_socket(s);
                if (start(s) >= 0)
                        return;
        }
        fail_all(s, error);
}

static int on_timeout(NetSource *source, uint64_t usec, void *userdata) {
        fail_all(userdata, -ETIMEDOUT);
        return 0;
}

static int set_events(Stream *s, uint32_t events) {
        int r;

        /* sd-event re-arms an edge-triggered source on every call, which
         * is an epoll_ctl() per poll for nothing. */
        if (events == s->io_events)
                return 0;
        r = s->net->set_io_events(s->io, events);
        if (r < 0)
                return r;
        s->io_events = events;
        return 0;
}

static int write_head(Stream *s) {
        Request *r = s->head;

        while (s->sent < r->len) {
                ssize_t n = s->net->send(s->fd, r->data + s->sent, r->len - s->sent);
                if (n == -EAGAIN || n == -EINTR)
                        return set_events(s, EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET);
                if (n < 0)
                        return (int) n;
                s->sent += (size_t) n;
        }
        return set_events(s, EPOLLIN | EPOLLRDHUP | EPOLLET);
}

/* Returns 1 after a complete reply was handed to its callback. */
static int read_reply(Stream *s, uint32_t revents) {
        uint8_t buf[4096];

        for (;;) {
                ssize_t n = s->net->recv(s->fd, buf, sizeof(buf), 0);
                if (n == -EINTR)
                        continue;
                if (n == -EAGAIN)
                        return 0;
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -ECONNRESET;
                if (!s->in_flight)
                        return -EBADMSG; /* bytes nobody asked for */

                size_t off = 0;
                while (off < (size_t) n) {
                        _cleanup_free_ char *msg = NULL;
                        size_t used, msg_len;
                        int r;

                        r = s->framer->feed(s->framer_userdata, buf + off, (size_t) n - off, &used, &msg, &msg_len);
                        if (r < 0)
                                return r;
                        off += used;
                        if (r == 0)
                                continue;
                        /* A device answers one reply per request; anything
                         * after it means the stream is out of step. */
                        if (off < (size_t) n)
                                return -EBADMSG;
                        /* Edge-triggered: a close that came with the reply
                         * is not reported again, so take it from this
                         * event and let the next request open a fresh
                         * connection. (A close or bytes coming later raise
                         * an event of their own.) */
                        Request *req = pop_head(s);
                        (void) s->net->set_enabled(s->timer, SD_EVENT_OFF);
                        s->in_flight = false;
                        s->reused = true;
                        if (revents & (EPOLLRDHUP | EPOLLHUP))
                                close_socket(s);
                        s->retried = false;
                        s->sent = 0;
                        if (s->head)
                                (void) s->net->set_enabled(s->kick, SD_EVENT_ONESHOT);
                        req->cb(s, 0, msg, msg_len, req->userdata);
                        request_free(req);
                        return 1;
                }
        }
}

static int on_io(NetSource *source, int fd, uint32_t revents, void *userdata) {
        Stream *s = userdata;
        int r;

        if (!s->connected) {
                r = s->net->connect_result(fd);
                if (r < 0) {
                        fail(s, r);
                        return 0;
                }
                s->connected = true;
        }

        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                r = read_reply(s, revents);
                if (r < 0) {
                        fail(s, r);
                        return 0;
                }
                if (r > 0)
                        return 0;
        }
        if ((revents & EPOLLOUT) && s->in_flight) {
                r = write_head(s);
                if (r < 0)
                        fail(s, r);
        }
        return 0;
}

static int open_socket(Stream *s) {
        int fd, r;

        fd = s->net->socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return fd;
        (void) s->net->setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int) { 1 }, sizeof(int));
        r = s->net->connect(fd, (const struct sockaddr *) &s->address, sizeof(s->address));
        if (r < 0 && r != -EINPROGRESS)
                goto fail;
        /* Edge-triggered: sd-event dispatches one source per epoll_wait(), and a
         * level-triggered socket would be reported again on every turn until
         * read; read_reply() reads until EAGAIN or a complete reply. */
        r = s->net->add_io(s->event, &s->io, fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET, on_io, s);
        if (r < 0)
                goto fail;
        s->io_events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET;
        s->fd = fd;
        s->connected = false;
        return 0;
fail:
        (void) s->net->close(fd);
        return r;
}

/* Send the head request, connecting first if needed. */
static int start(Stream *s) {
        int r;

        if (!s->head)
                return 0;
        if (s->fd < 0) {
                r = open_socket(s);
                if (r < 0)
                        return r;
        }
        r = s->net->set_time(s->timer, s->net->now(s->event, CLOCK_MONOTONIC) + s->timeout_usec);
        if (r < 0)
                return r;
        r = s->net->set_enabled(s->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        s->in_flight = true;
        s->sent = 0;
        /* An idle connection can nearly always take a small request, so
         * send it now instead of waiting for EPOLLOUT: sd-event dispatches
         * one source per epoll_wait(), and with hundreds of polls started
         * by one timer tick every turn of the loop re-reported all the
         * sockets still waiting to be written, quadratic in their number.
         * write_head() asks for EPOLLOUT only if the send would block. */
        if (s->connected)
                return write_head(s);
        return 0;
}

static int on_kick(NetSource *source, void *userdata) {
        Stream *s = userdata;
        int r;

        if (s->in_flight || !s->head)
                return 0;
        r = start(s);
        if (r < 0)
                /* A send on a connection the device closed while idle is
                 * retried once on a fresh one, as in on_io(). */
                fail(s, r);
        return 0;
}

int stream_request(Stream *s, uint8_t *data, size_t len, StreamReplyFn cb, void *userdata) {
        Request *r = calloc(1, sizeof(Request));

        if (!r) {
                free(data);
                return -ENOMEM;
        }
        *r = (Request) { .data = data, .len = len, .cb = cb, .userdata = userdata };
        if (s->tail)
                s->tail->next = r;
        else
                s->head = r;
        s->tail = r;
        s->n_pending++;

        if (s->in_flight)
                return 0;
        /* On an idle open connection, send at once: a trip through the loop
         * costs a poll a whole sd-event iteration. A failure must reach the
         * caller through its callback, not re-entrantly inside this call,
         * so it is left to the loop to find again and report. */
        if (s->connected && start(s) >= 0)
                return 0;
        s->in_flight = false;
        s->sent = 0;
        (void) s->net->set_enabled(s->timer, SD_EVENT_OFF);
        return s->net->set_enabled(s->kick, SD_EVENT_ONESHOT);
}

int stream_new(const StreamConfig *config, Stream **ret) {
        _cleanup_(stream_freep) Stream *s = calloc(1, sizeof(Stream));
        int r;

        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(config->event);
        s->net = config->net ?: &net_ops_real;
        s->address = config->address;
        s->timeout_usec = config->timeout_usec;
        s->framer = config->framer;
        s->framer_userdata = config->framer_userdata;
        s->fd = -1;

        r = s->net->add_time(s->event, &s->timer, UINT64_MAX, 0, on_timeout, s);
        if (r < 0)
                return r;
        r = s->net->set_enabled(s->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = s->net->add_defer(s->event, &s->kick, on_kick, s);
        if (r < 0)
                return r;
        r = s->net->set_enabled(s->kick, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void stream_reset(Stream *s) {
        fail_all(s, -ECANCELED);
}

Stream *stream_free(Stream *s) {
        if (!s)
                return NULL;
        stream_reset(s);
        s->net->disable_unref(s->timer);
        s->net->disable_unref(s->kick);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int stream_set_address(Stream *s, const struct sockaddr_in *address) {
        if (memcmp(&s->address, address, sizeof(*address)) == 0)
                return 0;
        s->address = *address;
        stream_reset(s);
        return 1;
}

size_t stream_pending(const Stream *s) {
        return s->n_pending;
}
