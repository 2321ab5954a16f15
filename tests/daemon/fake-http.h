/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A fake HTTP device over fake-net.h's sockets, for the HTTP transports'
 * tests: what the transport sent since last time is parsed into requests
 * and handed to the device's handler, which answers with fake_push().
 * consumed[] (one per socket, kept by the caller) says how much of each
 * socket's output the device has read.
 */

#include <stdio.h>
#include <stdlib.h>

#include "fake-net.h"
#include "http1.h"

#include "transport.h"

/* What a request's callback heard. */
typedef struct Reply {
        int error;
        char json[512];
        unsigned calls;
} Reply;

static inline void on_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        Reply *r = userdata;

        r->calls++;
        r->error = error;
        snprintf(r->json, sizeof(r->json), "%s", json ?: "");
}

typedef void (*FakeHttpHandler)(void *device, FakeSocket *s, const Http1Message *m);

/* Answers what the transport sent since last time; returns how many. */
static inline unsigned fake_http_serve(size_t consumed[FAKE_MAX], FakeHttpHandler handle, void *device) {
        unsigned n = 0;

        for (size_t i = 0; i < fake.n_sockets; i++) {
                FakeSocket *s = &fake.sockets[i];
                Http1Parser p;

                if (s->closed)
                        continue;
                http1_parser_init(&p, HTTP1_REQUEST, 0);
                while (consumed[i] < s->out_len) {
                        Http1Message m;
                        size_t used;
                        int r = http1_parser_feed(&p, s->out + consumed[i], s->out_len - consumed[i], &used, NULL);
                        if (r < 0)
                                abort();
                        if (r == 0)
                                break;
                        consumed[i] += used;
                        http1_parser_take(&p, &m);
                        handle(device, s, &m);
                        http1_message_done(&m);
                        n++;
                }
                http1_parser_reset(&p);
        }
        return n;
}

/* Runs the loop and the device until neither has anything left to do. */
static inline void fake_http_pump(size_t consumed[FAKE_MAX], FakeHttpHandler handle, void *device) {
        do
                fake_run();
        while (fake_http_serve(consumed, handle, device) > 0);
        fake_run();
}
