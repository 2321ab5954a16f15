/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One persistent, non-blocking TCP connection to one device, on the
 * daemon's sd-event loop. Requests are queued and sent one at a time (the
 * devices answer strictly in order and choke on pipelining); each has its
 * own deadline, so a hung device costs its own callbacks a timeout and
 * nobody else anything. A persistent connection the device closed while
 * idle is retried once on a fresh one.
 *
 * The stream knows no framing: requests are bytes already framed by the
 * transport on top, and the transport's framer says where a reply ends.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "net-ops.h"

typedef struct Stream Stream;

typedef struct StreamFramer {
        /* Consumes up to len bytes (*ret_consumed says how many). Returns 1
         * with a complete reply in *ret_msg (malloc'd, NUL-terminated, taken
         * by the stream), 0 when more bytes are needed, or a negative errno
         * for a stream out of step. */
        int (*feed)(void *userdata, const uint8_t *data, size_t len, size_t *ret_consumed, char **ret_msg,
                    size_t *ret_len);
        /* Forget a partial reply: the connection is gone. */
        void (*reset)(void *userdata);
        /* True while a reply is partially received. */
        bool (*busy)(void *userdata);
} StreamFramer;

/* error is 0 with the reply, or a negative errno: -ETIMEDOUT,
 * -ECONNREFUSED, -ECONNRESET (peer closed), -EBADMSG (bytes out of step),
 * the framer's errors, -ECANCELED (reset or freed by us). */
typedef void (*StreamReplyFn)(Stream *s, int error, const char *msg, size_t len, void *userdata);

typedef struct StreamConfig {
        sd_event *event;
        const NetOps *net;             /* NULL: net_ops_real */
        struct sockaddr_in address;
        uint64_t timeout_usec;         /* per request, from when it is sent */
        const StreamFramer *framer;
        void *framer_userdata;
} StreamConfig;

int stream_new(const StreamConfig *config, Stream **ret);
/* Cancels what is queued (-ECANCELED). Never call from a StreamReplyFn of
 * the same stream. */
Stream *stream_free(Stream *s);
/* Queue framed bytes, which the stream takes over (freed on error too);
 * cb is called exactly once, from the loop, never from inside this call. */
int stream_request(Stream *s, uint8_t *data, size_t len, StreamReplyFn cb, void *userdata);
/* Close the socket and fail every queued request with -ECANCELED. */
void stream_reset(Stream *s);
/* Returns 1 if the address changed (and the stream was reset), else 0. */
int stream_set_address(Stream *s, const struct sockaddr_in *address);
size_t stream_pending(const Stream *s);

static inline void stream_freep(Stream **s) {
        if (*s)
                stream_free(*s);
}
