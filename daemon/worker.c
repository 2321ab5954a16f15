/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "worker.h"

struct Worker {
        sd_event_source *source;
        int fd;
        unsigned n_threads, limit, pending;
        pthread_t *threads;
        unsigned started;

        pthread_mutex_t lock; /* guards what follows */
        pthread_cond_t wake;
        bool quit;
        WorkerJob *queue, **queue_tail;
        WorkerJob *finished; /* run, done() not yet called; any order */
};

static WorkerJob *take_finished(Worker *w) {
        pthread_mutex_lock(&w->lock);
        WorkerJob *l = w->finished;
        w->finished = NULL;
        pthread_mutex_unlock(&w->lock);
        return l;
}

static void finish(Worker *w, WorkerJob *l, bool cancelled) {
        while (l) {
                WorkerJob *next = l->next;
                w->pending--;
                l->done(l, cancelled);
                l = next;
        }
}

static int on_finished(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        uint64_t n;

        if (read(w->fd, &n, sizeof n) < 0 && errno != EAGAIN)
                log_debug_errno(errno, "Failed to read the worker's eventfd, ignoring: %m");
        finish(w, take_finished(w), false);
        return 0;
}

static void *thread_main(void *userdata) {
        Worker *w = userdata;
        const uint64_t one = 1;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->queue && !w->quit)
                        pthread_cond_wait(&w->wake, &w->lock);
                if (w->quit)
                        break;
                WorkerJob *j = w->queue;
                w->queue = j->next;
                if (!w->queue)
                        w->queue_tail = &w->queue;
                pthread_mutex_unlock(&w->lock);
                j->run(j);
                pthread_mutex_lock(&w->lock);
                j->next = w->finished;
                w->finished = j;
                /* An eventfd's counter cannot fill up from a few jobs. */
                (void) !write(w->fd, &one, sizeof one);
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

int worker_new(sd_event *e, unsigned threads, unsigned queued, Worker **ret) {
        Worker *w = calloc(1, sizeof(Worker));
        int r;

        if (!w)
                return -ENOMEM;
        w->fd = -EBADF;
        w->n_threads = MAX(threads, 1u);
        w->limit = w->n_threads + queued;
        w->queue_tail = &w->queue;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        w->threads = calloc(w->n_threads, sizeof(pthread_t));
        if (!w->threads) {
                worker_free(w);
                return -ENOMEM;
        }
        w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->fd < 0) {
                r = -errno;
                worker_free(w);
                return r;
        }
        r = sd_event_add_io(e, &w->source, w->fd, EPOLLIN, on_finished, w);
        if (r < 0) {
                worker_free(w);
                return r;
        }
        (void) sd_event_source_set_description(w->source, "worker");
        for (; w->started < w->n_threads; w->started++) {
                r = -pthread_create(&w->threads[w->started], NULL, thread_main, w);
                if (r < 0) {
                        worker_free(w);
                        return r;
                }
        }
        *ret = w;
        return 0;
}

Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        pthread_mutex_lock(&w->lock);
        w->quit = true;
        WorkerJob *queued = w->queue;
        w->queue = NULL;
        w->queue_tail = &w->queue;
        pthread_cond_broadcast(&w->wake);
        pthread_mutex_unlock(&w->lock);
        for (unsigned i = 0; i < w->started; i++)
                pthread_join(w->threads[i], NULL);
        finish(w, take_finished(w), true);
        finish(w, queued, true);
        sd_event_source_disable_unref(w->source);
        if (w->fd >= 0)
                close(w->fd);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w->threads);
        free(w);
        return NULL;
}

int worker_submit(Worker *w, WorkerJob *j) {
        if (w->pending >= w->limit)
                return -EAGAIN;
        w->pending++;
        j->next = NULL;
        pthread_mutex_lock(&w->lock);
        *w->queue_tail = j;
        w->queue_tail = &j->next;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        return 0;
}

unsigned worker_pending(const Worker *w) {
        return w->pending;
}
