/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-proto.h"
#include "macro.h"
#include "stream.h"
#include "transport.h"

typedef struct XorTransport {
        Transport transport;
        Stream *stream;
        KasaFrameDecoder decoder;
} XorTransport;

/* A request's callback, with the transport it came through. */
typedef struct XorRequest {
        XorTransport *x;
        TransportReplyFn cb;
        void *userdata;
} XorRequest;

static int framer_feed(void *userdata, const uint8_t *data, size_t len, size_t *ret_consumed, char **ret_msg,
                       size_t *ret_len) {
        XorTransport *x = userdata;
        KasaError err;

        return kasa_frame_decoder_feed(&x->decoder, data, len, ret_consumed, ret_msg, ret_len, &err);
}

static void framer_reset(void *userdata) {
        XorTransport *x = userdata;

        kasa_frame_decoder_reset(&x->decoder);
}

static bool framer_busy(void *userdata) {
        XorTransport *x = userdata;

        return kasa_frame_decoder_busy(&x->decoder);
}

static const StreamFramer xor_framer = {
        .feed = framer_feed,
        .reset = framer_reset,
        .busy = framer_busy,
};

static void on_reply(Stream *s, int error, const char *msg, size_t len, void *userdata) {
        XorRequest req = *(XorRequest *) userdata;

        free(userdata);
        req.cb(&req.x->transport, error, msg, len, req.userdata);
}

/* The frame is built on every call: XOR is a few ns per byte, and a cache
 * keyed on the JSON would cost about as much as it saves. */
static int xor_request(Transport *t, const char *json, TransportReplyFn cb, void *userdata) {
        XorTransport *x = (XorTransport *) t;
        uint8_t *frame;
        size_t len;
        XorRequest *req;
        int r;

        req = malloc(sizeof(XorRequest));
        if (!req)
                return -ENOMEM;
        *req = (XorRequest) { .x = x, .cb = cb, .userdata = userdata };
        r = kasa_frame_encode(json, strlen(json), &frame, &len);
        if (r >= 0)
                r = stream_request(x->stream, frame, len, on_reply, req);
        if (r < 0)
                free(req);
        return r;
}

static void xor_reset(Transport *t) {
        stream_reset(((XorTransport *) t)->stream);
}

static int xor_set_address(Transport *t, const struct sockaddr_in *address) {
        return stream_set_address(((XorTransport *) t)->stream, address);
}

static size_t xor_pending(Transport *t) {
        return stream_pending(((XorTransport *) t)->stream);
}

static void xor_free(Transport *t) {
        XorTransport *x = (XorTransport *) t;

        stream_free(x->stream);
        kasa_frame_decoder_reset(&x->decoder);
        free(x);
}

static const char *xor_protocol(Transport *t) {
        return "xor";
}

static const TransportOps xor_ops = {
        .name = "xor",
        .request = xor_request,
        .reset = xor_reset,
        .set_address = xor_set_address,
        .pending = xor_pending,
        .free = xor_free,
        .protocol = xor_protocol,
};

int transport_xor_new(const TransportConfig *config, Transport **ret) {
        XorTransport *x = calloc(1, sizeof(XorTransport));
        int r;

        if (!x)
                return -ENOMEM;
        x->transport.ops = &xor_ops;
        kasa_frame_decoder_init(&x->decoder, config->max_reply);
        r = stream_new(&(StreamConfig) {
                        .event = config->event,
                        .net = config->net,
                        .address = config->address,
                        .timeout_usec = config->timeout_usec,
                        .framer = &xor_framer,
                        .framer_userdata = x,
                }, &x->stream);
        if (r < 0) {
                free(x);
                return r;
        }
        *ret = &x->transport;
        return 0;
}
