/* SPDX-License-Identifier: MIT */

/* The UDP sweep both discoveries run (daemon/udp-sweep.c), on fake
 * sockets and a fake clock: every destination gets its probe in every
 * attempt even when the socket's buffer fills (a /16 is 65536 probes),
 * the attempts are spaced, and the run ends on time. */

#include <arpa/inet.h>
#include <stdlib.h>

#include "fake-net.h"
#include "tap.h"
#include "udp-sweep.h"

#define MSEC 1000ULL

static unsigned done_calls;

static bool on_reply(UdpSweep *s, const struct sockaddr_in *from, const uint8_t *buf, size_t n, void *userdata) {
        return true;
}

static void on_done(UdpSweep *s, void *userdata) {
        done_calls++;
}

static UdpSweep *start(size_t n_dests, unsigned attempts) {
        UdpSweepConfig c = {
                .what = "test sweep",
                .dests = calloc(n_dests, sizeof(struct sockaddr_in)),
                .n_dests = n_dests,
                .probe = malloc(4),
                .probe_len = 4,
                .attempts = attempts,
                .duration_usec = 4000 * MSEC,
                .reply = on_reply,
                .done = on_done,
                .net = &fake_net,
        };
        UdpSweep *s;

        if (!c.dests || !c.probe)
                abort();
        for (size_t i = 0; i < n_dests; i++)
                c.dests[i] = (struct sockaddr_in) {
                        .sin_family = AF_INET,
                        .sin_port = htons(9999),
                        .sin_addr.s_addr = htonl(0x0a000000u + (uint32_t) i),
                };
        if (udp_sweep_start(NULL, &c, &s) < 0)
                abort();
        return s;
}

/* A /16 on a socket whose buffer takes 1000 probes at a time: each
 * attempt waits for room and goes on where it stopped. */
static void test_full_buffer(void) {
        UdpSweep *s = start(65536, 2);
        FakeSocket *sock = fake_last_socket();

        sock->dgram_limit = true;
        sock->dgram_room = 1000;
        fake_run();
        is_int(sock->dgrams_sent, 1000, "the first attempt stops when the buffer is full");
        for (unsigned i = 0; i < 64; i++) {
                fake_dgram_room(sock, 1000);
                fake_run();
        }
        is_int(sock->dgrams_sent, 65000, "and goes on as room comes");
        fake_dgram_room(sock, 536);
        fake_run();
        is_int(sock->dgrams_sent, 65536, "every destination got the first attempt's probe");
        is_int(ntohl(sock->dgram_last_to.sin_addr.s_addr), 0x0a00ffffu, "in order, the last one last");

        /* The second attempt, a quarter of the run later (4 s / 2 / 2
         * attempts = 1 s, at most 500 ms). */
        fake_dgram_room(sock, 100000);
        fake_advance(499 * MSEC);
        is_int(sock->dgrams_sent, 65536, "the next attempt waits for its time");
        fake_advance(1 * MSEC);
        is_int(sock->dgrams_sent, 2 * 65536, "then every destination gets its second probe");
        fake_advance(10000 * MSEC);
        is_int(sock->dgrams_sent, 2 * 65536, "two attempts, no third");
        is_int(done_calls, 1, "the run ended once");
        udp_sweep_free(s);
        is_int(fake.n_open, 0, "its socket is closed");
}

/* A send that fails otherwise is that destination's only: the others are
 * still asked. */
static void test_send_error(void) {
        UdpSweep *s;
        FakeSocket *sock;

        done_calls = 0;
        s = start(10, 1);
        sock = fake_last_socket();
        sock->send_error = -ENETUNREACH;
        fake_run();
        is_int(sock->dgrams_sent, 0, "every send failed");
        fake_advance(5000 * MSEC);
        is_int(done_calls, 1, "the run still ends on time");
        udp_sweep_free(s);
}

int main(void) {
        test_full_buffer();
        test_send_error();
        return done_testing();
}
