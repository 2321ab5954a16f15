/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One persistent, non-blocking TCP connection to one Kasa device, on the
 * daemon's sd-event loop. Requests are queued and sent one at a time (the
 * devices answer strictly in order and choke on pipelining); each has its
 * own deadline, so a hung device costs its own callbacks a timeout and
 * nobody else anything.
 */

#include <netinet/in.h>
#include <stddef.h>
#include <systemd/sd-event.h>

typedef struct Conn Conn;

/* error is 0 with the decrypted JSON reply, or a negative errno:
 * -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET (peer closed), -EMSGSIZE
 * (absurd frame), -EBADMSG, -ECANCELED (connection closed by us). */
typedef void (*ConnReplyFn)(Conn *c, int error, const char *json, size_t len, void *userdata);

int conn_new(sd_event *event, const struct sockaddr_in *addr, uint64_t timeout_usec, size_t max_frame,
             Conn **ret);
Conn *conn_free(Conn *c);
/* Queue a request; cb is called exactly once, possibly from conn_free()
 * or conn_reset() with -ECANCELED. */
int conn_request(Conn *c, const char *json, ConnReplyFn cb, void *userdata);
/* The same with a frame already encoded (kasa_frame_encode()), for requests
 * sent again and again. The frame is copied. */
int conn_request_frame(Conn *c, const uint8_t *frame, size_t len, ConnReplyFn cb, void *userdata);
/* Close the socket and fail every queued request with -ECANCELED. */
void conn_reset(Conn *c);
void conn_set_address(Conn *c, const struct sockaddr_in *addr);
const struct sockaddr_in *conn_address(const Conn *c);
size_t conn_pending(const Conn *c);

static inline void conn_freep(Conn **c) {
        if (*c)
                conn_free(*c);
}
