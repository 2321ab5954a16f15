/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every socket, clock and event-source call of the transport and the poll
 * round goes through this table, as mctpd's mctp-ops.h does: the daemon
 * uses net_ops_real, unit tests a fake that hands out pretend sockets and
 * runs timers on a pretend clock, so the logic is tested without real
 * sockets or real time.
 *
 * Socket calls return what the syscall returns, but a negative errno
 * instead of -1 with errno set. Event sources are NetSource, with
 * sd-event's semantics (SD_EVENT_ON/OFF/ONESHOT, CLOCK_MONOTONIC usec)
 * and handler signatures; net_ops_real multiplexes all of them onto three
 * sd-event sources (one epoll set, one timer heap, one defer list), so a
 * hundred polls due together cost one turn of the loop, not a hundred
 * (sd-event dispatches one source per epoll_wait()).
 */

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <systemd/sd-event.h>
#include <time.h>

typedef struct NetSource NetSource;

typedef int (*net_io_handler_t)(NetSource *s, int fd, uint32_t revents, void *userdata);
typedef int (*net_time_handler_t)(NetSource *s, uint64_t usec, void *userdata);
typedef int (*net_handler_t)(NetSource *s, void *userdata);

typedef struct NetOps {
        int (*socket)(int domain, int type, int protocol);
        int (*setsockopt)(int fd, int level, int name, const void *value, socklen_t len);
        int (*connect)(int fd, const struct sockaddr *sa, socklen_t len);
        /* The outcome of a non-blocking connect(): 0 or a negative errno. */
        int (*connect_result)(int fd);
        ssize_t (*send)(int fd, const void *buf, size_t len);
        ssize_t (*recv)(int fd, void *buf, size_t len, int flags);
        /* Datagrams (discovery): IPv4 only. */
        ssize_t (*sendto)(int fd, const void *buf, size_t len, const struct sockaddr_in *to);
        ssize_t (*recvfrom)(int fd, void *buf, size_t len, struct sockaddr_in *from);
        int (*close)(int fd);

        /* The loop's time of this iteration (sd_event_now()), in usec. */
        uint64_t (*now)(sd_event *e, clockid_t clock);

        /* Sources start enabled (io: SD_EVENT_ON; time, defer: SD_EVENT_ONESHOT).
         * Timers are CLOCK_MONOTONIC. */
        int (*add_io)(sd_event *e, NetSource **ret, int fd, uint32_t events, net_io_handler_t cb, void *userdata);
        int (*set_io_events)(NetSource *s, uint32_t events);
        int (*add_time)(sd_event *e, NetSource **ret, uint64_t usec, uint64_t accuracy, net_time_handler_t cb,
                        void *userdata);
        int (*set_time)(NetSource *s, uint64_t usec);
        int (*add_defer)(sd_event *e, NetSource **ret, net_handler_t cb, void *userdata);
        int (*set_enabled)(NetSource *s, int enabled);
        /* Accepts NULL; returns NULL. */
        NetSource *(*disable_unref)(NetSource *s);
} NetOps;

extern const NetOps net_ops_real;
