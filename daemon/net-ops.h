/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every socket, clock and event-source call of the transport and the poll
 * round goes through this table, as mctpd's mctp-ops.h does: the daemon
 * uses net_ops_real (the syscalls and its sd-event loop), unit tests a fake
 * that hands out pretend sockets and runs timers on a pretend clock, so the
 * logic is tested without real sockets or real time.
 *
 * Socket calls return what the syscall returns, but a negative errno
 * instead of -1 with errno set. Event-source calls have sd-event's own
 * signatures; a fake may return any pointer as sd_event_source, as long as
 * its own functions are the only ones that see it.
 */

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <systemd/sd-event.h>
#include <time.h>

typedef struct NetOps {
        int (*socket)(int domain, int type, int protocol);
        int (*setsockopt)(int fd, int level, int name, const void *value, socklen_t len);
        int (*connect)(int fd, const struct sockaddr *sa, socklen_t len);
        /* The outcome of a non-blocking connect(): 0 or a negative errno. */
        int (*connect_result)(int fd);
        ssize_t (*send)(int fd, const void *buf, size_t len);
        ssize_t (*recv)(int fd, void *buf, size_t len, int flags);
        int (*close)(int fd);

        /* The loop's time of this iteration (sd_event_now()), in usec. */
        uint64_t (*now)(sd_event *e, clockid_t clock);

        __typeof__(sd_event_add_io) *add_io;
        __typeof__(sd_event_source_set_io_events) *set_io_events;
        __typeof__(sd_event_add_time) *add_time;
        __typeof__(sd_event_source_set_time) *set_time;
        __typeof__(sd_event_add_defer) *add_defer;
        __typeof__(sd_event_source_set_enabled) *set_enabled;
        __typeof__(sd_event_source_disable_unref) *disable_unref;
} NetOps;

extern const NetOps net_ops_real;
