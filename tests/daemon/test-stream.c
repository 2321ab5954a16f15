/* SPDX-License-Identifier: MIT */

/* The stream under the XOR transport, on fake sockets and a fake clock. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake-net.h"
#include "tap.h"
#include "transport.h"

#define TIMEOUT_USEC 500000ULL

typedef struct Reply {
        int error;
        char json[256];
        unsigned calls;
} Reply;

static void on_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        Reply *r = userdata;

        r->calls++;
        r->error = error;
        snprintf(r->json, sizeof(r->json), "%s", json ?: "");
}

static Transport *new_transport(void) {
        Transport *t = NULL;
        TransportConfig c = {
                .net = &fake_net,
                .address = { .sin_family = AF_INET, .sin_port = htons(9999), .sin_addr = { htonl(0x7f000002) } },
                .timeout_usec = TIMEOUT_USEC,
        };

        if (transport_xor_new(&c, &t) < 0)
                abort();
        return t;
}

static void test_queue_order(void) {
        Transport *t = new_transport();
        Reply a = {}, b = {}, c = {};
        FakeSocket *s;
        char *q;

        ok(transport_request(t, "{\"a\":1}", on_reply, &a) >= 0, "order: first request queued");
        ok(transport_request(t, "{\"b\":2}", on_reply, &b) >= 0, "order: second request queued");
        ok(transport_request(t, "{\"c\":3}", on_reply, &c) >= 0, "order: third request queued");
        is_int(a.calls + b.calls + c.calls, 0, "order: no callback from inside the request call");
        is_int(transport_pending(t), 3, "order: three pending");
        fake_run();
        is_int(fake.n_sockets, 1, "order: a connection was opened");
        s = fake_last_socket();
        is_int(fake_sent_count(s), 1, "order: one request in flight at a time");
        q = fake_sent_json(s, 0);
        is_str(q, "{\"a\":1}", "order: the first request goes first");
        free(q);

        fake_reply(s, "{\"r\":1}");
        fake_run();
        is_int(a.calls, 1, "order: first answered");
        is_str(a.json, "{\"r\":1}", "order: first gets the first reply");
        is_int(fake_sent_count(s), 2, "order: second sent after the first reply");
        q = fake_sent_json(s, 1);
        is_str(q, "{\"b\":2}", "order: second request second");
        free(q);
        fake_reply(s, "{\"r\":2}");
        fake_run();
        fake_reply(s, "{\"r\":3}");
        fake_run();
        is_str(b.json, "{\"r\":2}", "order: second gets the second reply");
        is_str(c.json, "{\"r\":3}", "order: third gets the third reply");
        is_int(a.calls + b.calls + c.calls, 3, "order: each callback once");
        is_int(fake.n_sockets, 1, "order: one persistent connection for all three");
        ok(!s->closed, "order: the connection stays open");
        transport_free(t);
        ok(s->closed, "order: freeing closes it");
        fake_reset();
}

static void test_deadline(void) {
        Transport *t = new_transport();
        Reply a = {}, b = {}, c = {};
        FakeSocket *s, *s2;

        transport_request(t, "{\"a\":1}", on_reply, &a);
        transport_request(t, "{\"b\":2}", on_reply, &b);
        fake_run();
        s = fake_last_socket();
        fake_advance(TIMEOUT_USEC - 1);
        is_int(a.calls, 0, "deadline: nothing before the deadline");
        fake_advance(1);
        is_int(a.calls, 1, "deadline: the request in flight fails at its deadline");
        is_int(a.error, -ETIMEDOUT, "deadline: with ETIMEDOUT");
        is_int(b.calls, 1, "deadline: the one queued behind it fails too");
        is_int(b.error, -ETIMEDOUT, "deadline: also with ETIMEDOUT");
        ok(s->closed, "deadline: the connection is closed");

        /* A late reply must not be taken for the next request. */
        transport_request(t, "{\"c\":3}", on_reply, &c);
        fake_run();
        s2 = fake_last_socket();
        ok(s2 != s, "deadline: the next request opens a fresh connection");
        fake_reply(s, "{\"late\":1}");
        fake_run();
        is_int(c.calls, 0, "deadline: the late reply on the old connection reaches nobody");
        fake_reply(s2, "{\"r\":3}");
        fake_run();
        is_str(c.json, "{\"r\":3}", "deadline: the next request gets its own reply");
        is_int(a.calls + b.calls, 2, "deadline: failed callbacks not called again");
        fake_advance(10 * TIMEOUT_USEC);
        is_int(c.calls, 1, "deadline: an answered request has no deadline left");
        transport_free(t);
        fake_reset();
}

static void test_retry_once(void) {
        Transport *t = new_transport();
        Reply a = {}, b = {}, c = {};
        FakeSocket *s, *s2, *s3;
        char *q;

        transport_request(t, "{\"a\":1}", on_reply, &a);
        fake_run();
        s = fake_last_socket();
        fake_reply(s, "{\"r\":1}");
        fake_run();
        is_int(a.error, 0, "retry: first request answered");

        /* The device dropped the idle connection: the next request's send
         * meets a reset. */
        s->reset_on_send = true;
        transport_request(t, "{\"b\":2}", on_reply, &b);
        fake_run();
        s2 = fake_last_socket();
        ok(s2 != s, "retry: a dead persistent connection is replaced");
        ok(s->closed, "retry: the dead one is closed");
        is_int(b.calls, 0, "retry: the request is not failed");
        q = fake_sent_json(s2, 0);
        is_str(q, "{\"b\":2}", "retry: the request is sent again on the fresh connection");
        free(q);
        fake_reply(s2, "{\"r\":2}");
        fake_run();
        is_int(b.calls, 1, "retry: answered once");
        is_str(b.json, "{\"r\":2}", "retry: with the reply from the fresh connection");

        /* Reused again, reset again, and the fresh one fails as well: one
         * retry only, then the error. */
        s2->reset_on_send = true;
        transport_request(t, "{\"c\":3}", on_reply, &c);
        fake_run();
        s3 = fake_last_socket();
        ok(s3 != s2, "retry: replaced again");
        s3->recv_error = -ECONNRESET; /* the fresh one is reset too */
        s3->edge = true;
        fake_run();
        is_int(c.calls, 1, "retry: a fresh connection failing is not retried");
        is_int(c.error, -ECONNRESET, "retry: the error reaches the caller");
        is_int(fake.n_sockets, 3, "retry: no further connection attempts");

        /* A refused first connection is an error at once: nothing was reused. */
        transport_reset(t);
        fake.refuse = -ECONNREFUSED;
        Reply d = {};
        transport_request(t, "{\"d\":4}", on_reply, &d);
        fake_run();
        is_int(d.error, -ECONNREFUSED, "retry: refused on a new connection fails");
        is_int(fake.n_sockets, 4, "retry: one attempt only");
        transport_free(t);
        fake_reset();
}

static void test_reset(void) {
        Transport *t = new_transport();
        Reply r[3] = {};

        for (size_t i = 0; i < 3; i++)
                transport_request(t, "{\"x\":1}", on_reply, &r[i]);
        fake_run();
        transport_reset(t);
        for (size_t i = 0; i < 3; i++) {
                is_int(r[i].calls, 1, "reset: request %zu cancelled once", i);
                is_int(r[i].error, -ECANCELED, "reset: request %zu with ECANCELED", i);
        }
        is_int(transport_pending(t), 0, "reset: nothing pending");
        ok(fake_last_socket()->closed, "reset: the connection is closed");
        fake_advance(10 * TIMEOUT_USEC);
        transport_reset(t);
        transport_free(t);
        for (size_t i = 0; i < 3; i++)
                is_int(r[i].calls, 1, "reset: request %zu not called again by timers, reset or free", i);

        /* Freeing with requests queued cancels them, once. */
        Reply f = {};
        t = new_transport();
        transport_request(t, "{\"y\":1}", on_reply, &f);
        transport_free(t);
        is_int(f.calls, 1, "free: a queued request is cancelled once");
        is_int(f.error, -ECANCELED, "free: with ECANCELED");
        is_int(fake.n_open, 0, "free: no socket left open");
        fake_reset();
}

static void test_peer_close(void) {
        Transport *t = new_transport();
        Reply a = {}, b = {}, c = {};
        FakeSocket *s;
        uint8_t *frame;
        size_t len;

        transport_request(t, "{\"a\":1}", on_reply, &a);
        fake_run();
        s = fake_last_socket();
        fake_reply(s, "{\"r\":1}");
        fake_run();

        /* Reused connection, half a reply, then the peer closes: the device
         * took the request, so it is not sent again. */
        transport_request(t, "{\"b\":2}", on_reply, &b);
        transport_request(t, "{\"c\":3}", on_reply, &c);
        fake_run();
        kasa_frame_encode("{\"r\":2}", 7, &frame, &len);
        fake_push(s, frame, len / 2);
        free(frame);
        fake_run();
        is_int(b.calls, 0, "close: half a reply is not a reply");
        fake_peer_close(s);
        fake_run();
        is_int(b.calls, 1, "close: peer closing mid-reply fails the request");
        is_int(b.error, -ECONNRESET, "close: with ECONNRESET");
        is_int(c.error, -ECONNRESET, "close: and the one behind it");
        is_int(fake.n_sockets, 1, "close: no retry after part of a reply came");

        /* A close that arrives with a reply: the reply counts, the next
         * request opens a new connection. */
        Reply d = {}, e = {};
        transport_request(t, "{\"d\":4}", on_reply, &d);
        fake_run();
        s = fake_last_socket();
        fake_reply(s, "{\"r\":4}");
        fake_peer_close(s);
        fake_run();
        is_str(d.json, "{\"r\":4}", "close: a reply followed by a close is delivered");
        ok(s->closed, "close: and the connection closed at once");
        transport_request(t, "{\"e\":5}", on_reply, &e);
        fake_run();
        ok(fake_last_socket() != s, "close: the next request connects afresh");

        /* Bytes beyond one reply: the stream is out of step. */
        s = fake_last_socket();
        fake_reply(s, "{\"r\":5}");
        fake_reply(s, "{\"extra\":1}");
        fake_run();
        is_int(e.error, -EBADMSG, "close: an unasked second frame is refused");
        ok(s->closed, "close: and the connection dropped");
        transport_free(t);
        fake_reset();
}

int main(void) {
        test_queue_order();
        test_deadline();
        test_retry_once();
        test_reset();
        test_peer_close();
        return done_testing();
}
