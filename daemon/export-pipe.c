/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "export-pipe.h"
#include "log.h"
#include "macro.h"
#include "worker.h"

typedef struct ExportPipe ExportPipe;
struct ExportPipe {
        WorkerJob job; /* first: the worker hands it back */
        ExportPipes *owner;
        ExportPipe *prev, *next;
        Export *export;
        sd_event_source *source;
        int fd;
        /* The text of the last step, and how much of it is written. */
        const char *text;
        size_t size, done;
        int step; /* export_step()'s answer, from the thread */
};

struct ExportPipes {
        sd_event *event;
        Worker *worker;
        ExportPipe *list;
        unsigned n, max;
};

/* Never while its step runs: the thread has the export. */
static void pipe_free(ExportPipe *p) {
        ExportPipes *l = p->owner;
        if (p->prev)
                p->prev->next = p->next;
        else
                l->list = p->next;
        if (p->next)
                p->next->prev = p->prev;
        l->n--;
        sd_event_source_disable_unref(p->source);
        export_free(p->export);
        if (p->fd >= 0)
                close(p->fd);
        free(p);
}

static void job_run(WorkerJob *j) {
        ExportPipe *p = (ExportPipe *) j;
        p->step = export_step(p->export, &p->text, &p->size);
        p->done = 0;
}

static void job_done(WorkerJob *j, bool cancelled) {
        ExportPipe *p = (ExportPipe *) j;
        int r;

        if (cancelled)
                return pipe_free(p);
        if (p->step < 0) {
                const char *why = export_error(p->export);
                if (why)
                        log_error("Failed to export, ending it early: %s", why);
                else
                        log_error_errno(p->step, "Failed to read the store for an export, ending it early: %m");
                return pipe_free(p);
        }
        if (p->step == 0)
                return pipe_free(p); /* all written */
        r = sd_event_source_set_enabled(p->source, SD_EVENT_ON);
        if (r < 0) {
                log_error_errno(r, "Failed to go on with an export, ending it: %m");
                pipe_free(p);
        }
}

static int on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ExportPipe *p = userdata;
        int r;

        while (p->done < p->size) {
                ssize_t n = write(fd, p->text + p->done, p->size - p->done);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        if (errno != EPIPE)
                                log_warning_errno(errno, "Failed to write an export, ending it: %m");
                        pipe_free(p);
                        return 0;
                }
                p->done += (size_t) n;
        }
        /* Written: the next step, with the pipe out of the loop until then. */
        r = sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (r >= 0)
                r = worker_submit(p->owner->worker, &p->job);
        if (r < 0) {
                log_error_errno(r, "Failed to go on with an export, ending it: %m");
                pipe_free(p);
        }
        return 0;
}

int export_pipes_new(sd_event *event, unsigned max, ExportPipes **ret) {
        ExportPipes *l = calloc(1, sizeof(ExportPipes));
        int r;

        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(event);
        l->max = max;
        /* One thread: exports take turns; as many queued as may run, so
         * that a step is never refused. */
        r = worker_new(event, 1, max, &l->worker);
        if (r < 0) {
                export_pipes_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

ExportPipes *export_pipes_free(ExportPipes *l) {
        if (!l)
                return NULL;
        /* The steps that run finish, those that wait are cancelled: their
         * pipes end in job_done(); then those waiting for their readers. */
        l->worker = worker_free(l->worker);
        while (l->list)
                pipe_free(l->list);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

unsigned export_pipes_running(const ExportPipes *l) {
        return l->n;
}

int export_pipes_start(ExportPipes *l, Export *e, int *ret_fd) {
        int fds[2], r;

        if (l->n >= l->max) {
                export_free(e);
                return -EAGAIN;
        }
        if (pipe2(fds, O_CLOEXEC) < 0) {
                r = -errno;
                export_free(e);
                return r;
        }
        if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                export_free(e);
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        ExportPipe *p = calloc(1, sizeof(ExportPipe));
        if (!p) {
                export_free(e);
                close(fds[0]);
                close(fds[1]);
                return -ENOMEM;
        }
        *p = (ExportPipe) { .job = { .run = job_run, .done = job_done }, .owner = l, .export = e, .fd = fds[1],
                            .next = l->list };
        if (l->list)
                l->list->prev = p;
        l->list = p;
        l->n++;
        /* From here pipe_free() owns e and the write end. */
        r = sd_event_add_io(l->event, &p->source, fds[1], EPOLLOUT, on_writable, p);
        if (r < 0) {
                pipe_free(p);
                close(fds[0]);
                return r;
        }
        *ret_fd = fds[0];
        return 0;
}
