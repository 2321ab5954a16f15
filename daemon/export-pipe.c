/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "export-pipe.h"
#include "log.h"

typedef struct ExportPipe {
        Export *export;
        const char *text;
        size_t size, done;
        int fd;
} ExportPipe;

static void export_pipe_destroy(void *userdata) {
        ExportPipe *p = userdata;
        export_free(p->export);
        if (p->fd >= 0)
                close(p->fd);
        free(p);
}

static int on_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ExportPipe *p = userdata;
        int r;

        for (;;) {
                if (p->done == p->size) {
                        r = export_step(p->export, &p->text, &p->size);
                        p->done = 0;
                        if (r < 0) {
                                log_error_errno(r, "Failed to read the store for an export, ending it early: %m");
                                break;
                        }
                        if (r == 0)
                                break;
                        if (p->size == 0)
                                continue;
                }
                ssize_t n = write(fd, p->text + p->done, p->size - p->done);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        if (errno != EPIPE)
                                log_warning_errno(-errno, "Failed to write an export, ending it: %m");
                        break;
                }
                p->done += (size_t) n;
                /* One step per wakeup: the loop serves polls in between. */
                if (p->done == p->size)
                        return 0;
        }
        sd_event_source_disable_unref(s);
        return 0;
}

int export_pipe_start(sd_event *event, Export *e, int *ret_fd) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *s = NULL;
        int fds[2], r;

        if (pipe2(fds, O_CLOEXEC) < 0) {
                r = -errno;
                export_free(e);
                return r;
        }
        if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                goto fail;
        }
        ExportPipe *p = calloc(1, sizeof(ExportPipe));
        if (!p) {
                r = -ENOMEM;
                goto fail;
        }
        *p = (ExportPipe) { .export = e, .fd = fds[1] };
        r = sd_event_add_io(event, &s, fds[1], EPOLLOUT, on_writable, p);
        if (r < 0) {
                free(p);
                goto fail;
        }
        /* From here the source owns p, its export and its fd. */
        r = sd_event_source_set_destroy_callback(s, export_pipe_destroy);
        if (r < 0) {
                s = sd_event_source_unref(s);
                export_pipe_destroy(p);
                close(fds[0]);
                return r;
        }
        r = sd_event_source_set_floating(s, true);
        if (r < 0) {
                close(fds[0]);
                return r;       /* the cleanup's unref frees p */
        }
        *ret_fd = fds[0];
        return 0;
fail:
        export_free(e);
        close(fds[0]);
        close(fds[1]);
        return r;
}
