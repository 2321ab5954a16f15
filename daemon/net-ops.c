/* SPDX-License-Identifier: MIT */

#include "net-ops.h"

#include <errno.h>
#include <unistd.h>

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

const NetOps net_ops_real = {
        .socket = real_socket,
        .setsockopt = real_setsockopt,
        .connect = real_connect,
        .connect_result = real_connect_result,
        .send = real_send,
        .recv = real_recv,
        .close = real_close,
        .now = real_now,
        .add_io = sd_event_add_io,
        .set_io_events = sd_event_source_set_io_events,
        .add_time = sd_event_add_time,
        .set_time = sd_event_source_set_time,
        .add_defer = sd_event_add_defer,
        .set_enabled = sd_event_source_set_enabled,
        .disable_unref = sd_event_source_disable_unref,
};
