/* SPDX-License-Identifier: MIT */

#include "net-ops.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "macro.h"

/* ---- sockets and clock: the syscalls ---- */

static int real_socket(int domain, int type, int protocol) {
        int fd = socket(domain, type, protocol);
        return fd < 0 ? -errno : fd;
}

static int real_setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
        return setsockopt(fd, level, name, value, len) < 0 ? -errno : 0;
}

static int real_connect(int fd, const struct sockaddr *sa, socklen_t len) {
        return connect(fd, sa, len) < 0 ? -errno : 0;
}

static int real_connect_result(int fd) {
        int error = 0;
        socklen_t len = sizeof(error);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return -errno;
        return -error;
}

static ssize_t real_send(int fd, const void *buf, size_t len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        return n < 0 ? -errno : n;
}

static ssize_t real_recv(int fd, void *buf, size_t len, int flags) {
        ssize_t n = recv(fd, buf, len, flags);
        return n < 0 ? -errno : n;
}

static ssize_t real_sendto(int fd, const void *buf, size_t len, const struct sockaddr_in *to) {
        ssize_t n = sendto(fd, buf, len, MSG_NOSIGNAL, (const struct sockaddr *) to, sizeof(*to));
        return n < 0 ? -errno : n;
}

/* A source of another family, or a truncated address, is -EAFNOSUPPORT. */
static ssize_t real_recvfrom(int fd, void *buf, size_t len, struct sockaddr_in *from) {
        socklen_t fromlen = sizeof(*from);
        ssize_t n = recvfrom(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *) from, &fromlen);

        if (n < 0)
                return -errno;
        if (fromlen != sizeof(*from) || from->sin_family != AF_INET)
                return -EAFNOSUPPORT;
        return n;
}

static int real_close(int fd) {
        return close(fd) < 0 ? -errno : 0;
}

static uint64_t real_now(sd_event *e, clockid_t clock) {
        uint64_t t;
        struct timespec ts;

        if (e && sd_event_now(e, clock, &t) >= 0)
                return t;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* ---- event sources: many of ours on three of sd-event's ---- */

typedef enum SourceKind { SOURCE_IO, SOURCE_TIME, SOURCE_DEFER } SourceKind;

typedef struct Mux Mux;

struct NetSource {
        Mux *mux;
        SourceKind kind;
        int enabled;
        bool dead;                 /* unref'd while the mux was dispatching */
        int fd;
        uint32_t events;
        uint64_t usec, accuracy;
        uint64_t seq;              /* when last armed, against re-firing in one turn */
        size_t heap_index;         /* SIZE_MAX: not in the heap */
        bool queued;               /* on the defer queue, or in the batch being run */
        NetSource *next;           /* defer queue */
        NetSource *next_dead;
        net_io_handler_t io_cb;
        net_time_handler_t time_cb;
        net_handler_t defer_cb;
        void *userdata;
};

struct Mux {
        Mux *next;
        sd_event *event;
        int epfd;
        sd_event_source *io, *timer, *defer;
        NetSource **heap;
        size_t n_heap, heap_size;
        NetSource *queue_head, *queue_tail;
        NetSource *dead;
        unsigned dispatching;
        uint64_t seq;
        size_t n_sources;
        bool armed;
        uint64_t armed_usec;
};

static Mux *muxes; /* one per sd_event, in practice one */

static void mux_free(Mux *m) {
        for (Mux **p = &muxes; *p; p = &(*p)->next)
                if (*p == m) {
                        *p = m->next;
                        break;
                }
        sd_event_source_disable_unref(m->io);
        sd_event_source_disable_unref(m->timer);
        sd_event_source_disable_unref(m->defer);
        if (m->epfd >= 0)
                close(m->epfd);
        free(m->heap);
        free(m);
}

static void mux_bury(Mux *m) {
        while (m->dead) {
                NetSource *s = m->dead;
                m->dead = s->next_dead;
                free(s);
        }
        if (m->n_sources == 0)
                mux_free(m);
}

/* ---- timer heap ---- */

static bool earlier(const NetSource *a, const NetSource *b) {
        return a->usec < b->usec || (a->usec == b->usec && a->seq < b->seq);
}

static void heap_set(Mux *m, size_t i, NetSource *s) {
        m->heap[i] = s;
        s->heap_index = i;
}

static void heap_up(Mux *m, size_t i) {
        NetSource *s = m->heap[i];

        while (i > 0 && earlier(s, m->heap[(i - 1) / 2])) {
                heap_set(m, i, m->heap[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        heap_set(m, i, s);
}

static void heap_down(Mux *m, size_t i) {
        NetSource *s = m->heap[i];

        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= m->n_heap)
                        break;
                if (c + 1 < m->n_heap && earlier(m->heap[c + 1], m->heap[c]))
                        c++;
                if (!earlier(m->heap[c], s))
                        break;
                heap_set(m, i, m->heap[c]);
                i = c;
        }
        heap_set(m, i, s);
}

static void heap_remove(Mux *m, NetSource *s) {
        size_t i = s->heap_index;

        if (i == SIZE_MAX)
                return;
        s->heap_index = SIZE_MAX;
        NetSource *last = m->heap[--m->n_heap];
        if (last == s)
                return;
        heap_set(m, i, last);
        heap_up(m, i);
        heap_down(m, last->heap_index);
}

static int heap_insert(Mux *m, NetSource *s) {
        if (m->n_heap == m->heap_size) {
                size_t n = MAX(m->heap_size * 2, 64u);
                NetSource **h = realloc(m->heap, n * sizeof(NetSource *));
                if (!h)
                        return -ENOMEM;
                m->heap = h;
                m->heap_size = n;
        }
        heap_set(m, m->n_heap++, s);
        heap_up(m, m->n_heap - 1);
        return 0;
}

/* Point sd-event's one timer at the earliest of ours. */
static int mux_arm(Mux *m) {
        int r;

        if (m->n_heap == 0) {
                m->armed = false;
                return sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
        }
        NetSource *first = m->heap[0];
        if (m->armed && m->armed_usec == first->usec)
                return 0;
        r = sd_event_source_set_time(m->timer, first->usec);
        if (r >= 0)
                /* sd-event takes 0 for its default of 250 ms. */
                r = sd_event_source_set_time_accuracy(m->timer, MAX(first->accuracy, 1u));
        if (r >= 0)
                r = sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        m->armed = true;
        m->armed_usec = first->usec;
        return 0;
}

static int on_mux_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        Mux *m = userdata;
        uint64_t now, seq = m->seq;

        m->armed = false;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                now = usec;
        m->dispatching++;
        /* Only timers armed before this turn: one re-armed for "now" by its
         * own handler runs in the next turn, not in a loop here. */
        while (m->n_heap > 0 && m->heap[0]->usec <= now && m->heap[0]->seq < seq) {
                NetSource *s = m->heap[0];
                heap_remove(m, s);
                if (s->enabled == SD_EVENT_ONESHOT)
                        s->enabled = SD_EVENT_OFF;
                else
                        s->seq = m->seq++; /* ON: stays due, fires again next turn */
                if (s->enabled != SD_EVENT_OFF)
                        (void) heap_insert(m, s);
                s->time_cb(s, s->usec, s->userdata);
        }
        m->dispatching--;
        (void) mux_arm(m);
        mux_bury(m);
        return 0;
}

/* ---- epoll set ---- */

static int on_mux_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        Mux *m = userdata;
        struct epoll_event ev[128];
        int n;

        n = epoll_wait(m->epfd, ev, ELEMENTSOF(ev), 0);
        m->dispatching++;
        for (int i = 0; i < n; i++) {
                NetSource *s = ev[i].data.ptr;
                if (!s->dead && s->enabled != SD_EVENT_OFF)
                        s->io_cb(s, s->fd, ev[i].events, s->userdata);
        }
        m->dispatching--;
        mux_bury(m);
        return 0;
}

/* ---- defer queue ---- */

static int on_mux_defer(sd_event_source *es, void *userdata) {
        Mux *m = userdata;
        NetSource *list = m->queue_head;

        m->queue_head = m->queue_tail = NULL;
        m->dispatching++;
        while (list) {
                NetSource *s = list;
                list = s->next;
                s->next = NULL;
                s->queued = false;
                if (s->dead || s->enabled == SD_EVENT_OFF)
                        continue;
                if (s->enabled == SD_EVENT_ONESHOT)
                        s->enabled = SD_EVENT_OFF;
                s->defer_cb(s, s->userdata);
        }
        m->dispatching--;
        mux_bury(m);
        return 0;
}

static int defer_queue(Mux *m, NetSource *s) {
        if (s->queued)
                return 0;
        s->queued = true;
        s->next = NULL;
        if (m->queue_tail)
                m->queue_tail->next = s;
        else
                m->queue_head = s;
        m->queue_tail = s;
        return sd_event_source_set_enabled(m->defer, SD_EVENT_ONESHOT);
}

/* Off the queue; one in the batch being run is skipped there instead,
 * being off or dead by then. */
static void defer_unqueue(Mux *m, NetSource *s) {
        NetSource *prev = NULL;

        if (!s->queued)
                return;
        for (NetSource *p = m->queue_head; p; prev = p, p = p->next)
                if (p == s) {
                        if (prev)
                                prev->next = s->next;
                        else
                                m->queue_head = s->next;
                        if (m->queue_tail == s)
                                m->queue_tail = prev;
                        s->queued = false;
                        s->next = NULL;
                        return;
                }
}

/* ---- the ops ---- */

static int mux_get(sd_event *e, Mux **ret) {
        Mux *m;
        int r;

        for (m = muxes; m; m = m->next)
                if (m->event == e) {
                        *ret = m;
                        return 0;
                }
        m = calloc(1, sizeof(Mux));
        if (!m)
                return -ENOMEM;
        m->event = e;
        m->epfd = epoll_create1(EPOLL_CLOEXEC);
        m->next = muxes;
        muxes = m;
        if (m->epfd < 0) {
                r = -errno;
                goto fail;
        }
        r = sd_event_add_io(e, &m->io, m->epfd, EPOLLIN, on_mux_io, m);
        if (r >= 0)
                r = sd_event_add_time(e, &m->timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_mux_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(e, &m->defer, on_mux_defer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->defer, SD_EVENT_OFF);
        if (r < 0)
                goto fail;
        *ret = m;
        return 0;
fail:
        mux_free(m);
        return r;
}

static int source_new(sd_event *e, SourceKind kind, void *userdata, NetSource **ret) {
        NetSource *s;
        Mux *m = NULL;
        int r;

        r = mux_get(e, &m);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(NetSource));
        if (!s) {
                if (m->n_sources == 0)
                        mux_free(m);
                return -ENOMEM;
        }
        *s = (NetSource) { .mux = m, .kind = kind, .fd = -1, .heap_index = SIZE_MAX, .userdata = userdata };
        m->n_sources++;
        *ret = s;
        return 0;
}

static NetSource *real_disable_unref(NetSource *s);

static int real_add_io(sd_event *e, NetSource **ret, int fd, uint32_t events, net_io_handler_t cb, void *userdata) {
        NetSource *s;
        int r;

        r = source_new(e, SOURCE_IO, userdata, &s);
        if (r < 0)
                return r;
        s->fd = fd;
        s->events = events;
        s->io_cb = cb;
        s->enabled = SD_EVENT_ON;
        if (epoll_ctl(s->mux->epfd, EPOLL_CTL_ADD, fd, &(struct epoll_event) { .events = events, .data.ptr = s }) < 0) {
                r = -errno;
                s->enabled = SD_EVENT_OFF;
                real_disable_unref(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int io_update(NetSource *s) {
        uint32_t events = s->enabled == SD_EVENT_OFF ? 0 : s->events;

        if (epoll_ctl(s->mux->epfd, EPOLL_CTL_MOD, s->fd, &(struct epoll_event) { .events = events, .data.ptr = s }) < 0)
                return -errno;
        return 0;
}

static int real_set_io_events(NetSource *s, uint32_t events) {
        s->events = events;
        return io_update(s);
}

static int real_add_time(sd_event *e, NetSource **ret, uint64_t usec, uint64_t accuracy, net_time_handler_t cb,
                         void *userdata) {
        NetSource *s;
        int r;

        r = source_new(e, SOURCE_TIME, userdata, &s);
        if (r < 0)
                return r;
        s->usec = usec;
        s->accuracy = accuracy;
        s->time_cb = cb;
        s->enabled = SD_EVENT_ONESHOT;
        s->seq = s->mux->seq++;
        r = heap_insert(s->mux, s);
        if (r >= 0)
                r = mux_arm(s->mux);
        if (r < 0) {
                real_disable_unref(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int real_set_time(NetSource *s, uint64_t usec) {
        Mux *m = s->mux;

        s->usec = usec;
        s->seq = m->seq++;
        if (s->heap_index != SIZE_MAX) {
                heap_up(m, s->heap_index);
                heap_down(m, s->heap_index);
        }
        return mux_arm(m);
}

static int real_add_defer(sd_event *e, NetSource **ret, net_handler_t cb, void *userdata) {
        NetSource *s;
        int r;

        r = source_new(e, SOURCE_DEFER, userdata, &s);
        if (r < 0)
                return r;
        s->defer_cb = cb;
        s->enabled = SD_EVENT_ONESHOT;
        r = defer_queue(s->mux, s);
        if (r < 0) {
                real_disable_unref(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int real_set_enabled(NetSource *s, int enabled) {
        Mux *m = s->mux;
        bool was_on = s->enabled != SD_EVENT_OFF;
        int r;

        s->enabled = enabled;
        switch (s->kind) {
        case SOURCE_IO:
                return was_on == (enabled != SD_EVENT_OFF) ? 0 : io_update(s);
        case SOURCE_TIME:
                if (enabled == SD_EVENT_OFF)
                        heap_remove(m, s);
                else {
                        s->seq = m->seq++;
                        if (s->heap_index == SIZE_MAX) {
                                r = heap_insert(m, s);
                                if (r < 0)
                                        return r;
                        }
                }
                return mux_arm(m);
        case SOURCE_DEFER:
                if (enabled == SD_EVENT_OFF) {
                        defer_unqueue(m, s);
                        return 0;
                }
                return defer_queue(m, s);
        }
        return -EINVAL;
}

static NetSource *real_disable_unref(NetSource *s) {
        Mux *m;

        if (!s)
                return NULL;
        m = s->mux;
        switch (s->kind) {
        case SOURCE_IO:
                (void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, s->fd, NULL);
                break;
        case SOURCE_TIME:
                heap_remove(m, s);
                (void) mux_arm(m);
                break;
        case SOURCE_DEFER:
                defer_unqueue(m, s);
                break;
        }
        s->enabled = SD_EVENT_OFF;
        s->dead = true;
        m->n_sources--;
        /* A batch being dispatched may still hold it. */
        s->next_dead = m->dead;
        m->dead = s;
        if (!m->dispatching)
                mux_bury(m);
        return NULL;
}

const NetOps net_ops_real = {
        .socket = real_socket,
        .setsockopt = real_setsockopt,
        .connect = real_connect,
        .connect_result = real_connect_result,
        .send = real_send,
        .recv = real_recv,
        .sendto = real_sendto,
        .recvfrom = real_recvfrom,
        .close = real_close,
        .now = real_now,
        .add_io = real_add_io,
        .set_io_events = real_set_io_events,
        .add_time = real_add_time,
        .set_time = real_set_time,
        .add_defer = real_add_defer,
        .set_enabled = real_set_enabled,
        .disable_unref = real_disable_unref,
};
