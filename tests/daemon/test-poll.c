/* SPDX-License-Identifier: MIT */

/* A device's poll round against a fake host, over the XOR transport on
 * fake sockets and a fake clock. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "fake-net.h"
#include "tap.h"

#define SEC 1000000ULL
#define MAC "AA:BB:CC:DD:EE:01"

static const Config config = {
        .poll_interval_usec = 1 * SEC,
        .poll_timeout_usec = SEC / 2,
        .poll_max_backoff_usec = 8 * SEC,
        .poll_jitter = 0.1,
};

typedef struct TestHost {
        StoreSample samples[1024];
        size_t n_samples;
        unsigned changed;
} TestHost;

static TestHost th;

static void host_record(void *userdata, Device *d, const StoreSample *s) {
        TestHost *h = userdata;
        if (h->n_samples < ELEMENTSOF(h->samples))
                h->samples[h->n_samples++] = *s;
}

static void host_changed(void *userdata, Device *d) {
        TestHost *h = userdata;
        h->changed++;
        d->changes = 0;
}

static int64_t host_now_ms(void *userdata) {
        /* Some wall clock that moves with the fake one. */
        return 1700000000000LL + (int64_t) (fake.now / 1000);
}

static int64_t host_day_start(void *userdata, int64_t ts_ms) {
        return ts_ms - ts_ms % (24 * 3600 * 1000LL);
}

static int host_new_transport(void *userdata, Device *d, Transport **ret) {
        return transport_xor_new(&(TransportConfig) {
                        .net = &fake_net,
                        .address = d->sockaddr,
                        .timeout_usec = config.poll_timeout_usec,
                }, ret);
}

static const DeviceHostOps host_ops = {
        .record = host_record,
        .changed = host_changed,
        .now_ms = host_now_ms,
        .day_start = host_day_start,
        .new_transport = host_new_transport,
};

static const DeviceHost host = {
        .ops = &host_ops,
        .userdata = &th,
        .net = &fake_net,
        .config = &config,
};

static const struct sockaddr_in address = {
        .sin_family = AF_INET,
        .sin_port = 0x0f27, /* 9999, big-endian */
        .sin_addr = { 0x0200007f },
};

static Device *new_plug(void) {
        Device *d;

        if (device_new(&host, "plug", NULL, &d) < 0)
                abort();
        d->metered = true;
        d->number = 7;
        snprintf(d->mac, sizeof(d->mac), MAC);
        device_set_address(d, &address);
        return d;
}

static Device *new_strip(size_t n) {
        Device *d;

        if (device_new(&host, "strip", NULL, &d) < 0)
                abort();
        snprintf(d->mac, sizeof(d->mac), MAC);
        d->outlets = calloc(n, sizeof(Device *));
        d->n_outlets = n;
        for (size_t i = 0; i < n; i++) {
                char id[16];
                snprintf(id, sizeof(id), "strip-%zu", i);
                if (device_new(&host, id, d, &d->outlets[i]) < 0)
                        abort();
                d->outlets[i]->outlet = (int) i;
                d->outlets[i]->metered = true;
                d->outlets[i]->number = 100 + (uint32_t) i;
                if (asprintf(&d->outlets[i]->child_id, "8006AB%02zu", i) < 0)
                        abort();
        }
        device_set_address(d, &address);
        return d;
}

static void free_device(Device *d) {
        Transport *t = TAKE_PTR(d->transport);

        transport_free(t);
        for (size_t i = 0; i < d->n_outlets; i++)
                device_free(d->outlets[i]);
        device_free(d);
        fake_reset();
        memset(&th, 0, sizeof(th));
}

#define SYSINFO_FIELDS "\"err_code\":0,\"alias\":\"Lamp\",\"model\":\"KP115(EU)\",\"mac\":\"" MAC "\"," \
                       "\"deviceId\":\"8006AB\",\"feature\":\"TIM:ENE\""

static void reply_plug(FakeSocket *s, int64_t power_mw, int64_t total_wh) {
        char json[512];

        snprintf(json, sizeof(json),
                 "{\"system\":{\"get_sysinfo\":{" SYSINFO_FIELDS ",\"relay_state\":1}},"
                 "\"emeter\":{\"get_realtime\":{\"err_code\":0,\"power_mw\":%lld,\"voltage_mv\":230000,"
                 "\"current_ma\":100,\"total_wh\":%lld}}}",
                 (long long) power_mw, (long long) total_wh);
        fake_reply(s, json);
}

static void reply_strip_sysinfo(FakeSocket *s, size_t n) {
        char json[1024];
        size_t k;

        k = (size_t) snprintf(json, sizeof(json), "{\"system\":{\"get_sysinfo\":{" SYSINFO_FIELDS ",\"children\":[");
        for (size_t i = 0; i < n; i++)
                k += (size_t) snprintf(json + k, sizeof(json) - k, "%s{\"id\":\"%02zu\",\"alias\":\"o%zu\",\"state\":1}",
                                       i ? "," : "", i, i);
        snprintf(json + k, sizeof(json) - k, "]}}}");
        fake_reply(s, json);
}

static void reply_outlet(FakeSocket *s, int64_t power_mw) {
        char json[256];

        snprintf(json, sizeof(json),
                 "{\"emeter\":{\"get_realtime\":{\"err_code\":0,\"power_mw\":%lld,\"voltage_mv\":230000,"
                 "\"current_ma\":10,\"total_wh\":1}}}",
                 (long long) power_mw);
        fake_reply(s, json);
}

/* To the next poll (the earliest timer), and let it send. */
static void next_poll(void) {
        uint64_t t = fake_next_timer();
        if (t == UINT64_MAX)
                abort();
        fake_advance(t > fake.now ? t - fake.now : 0);
}

static void test_plug_round(void) {
        Device *d = new_plug();
        FakeSocket *s;
        char *q;

        ok(device_start(d, true) >= 0, "plug: polling started");
        fake_run();
        s = fake_last_socket();
        is_int(fake_sent_count(s), 1, "plug: one request per round");
        q = fake_sent_json(s, 0);
        ok(q && strstr(q, "\"get_sysinfo\"") && strstr(q, "\"get_realtime\""),
           "plug: sysinfo and reading asked together (%s)", q);
        free(q);
        ok(d->polling, "plug: round in progress");
        reply_plug(s, 50000, 12);
        fake_run();
        ok(!d->polling, "plug: round over");
        ok(d->online, "plug: online");
        is_int(th.n_samples, 1, "plug: one sample recorded");
        is_int(th.samples[0].device, 7, "plug: for this device");
        is_int(th.samples[0].power_mw, 50000, "plug: with its power");
        is_int(d->power_mw, 50000, "plug: power kept");
        ok(th.changed > 0, "plug: changes reported to the host");
        free_device(d);
}

static void test_jitter(void) {
        Device *d = new_plug();
        uint64_t lo = UINT64_MAX, hi = 0, prev;
        bool in_bounds = true;

        device_start(d, true);
        fake_run();
        prev = d->poll_due_usec;
        for (int i = 0; i < 300; i++) {
                reply_plug(fake_last_socket(), 50000, 12);
                fake_run();
                uint64_t delay = d->poll_due_usec - prev;
                prev = d->poll_due_usec;
                lo = MIN(lo, delay);
                hi = MAX(hi, delay);
                if (delay < 900000 || delay > 1100000)
                        in_bounds = false;
                next_poll();
        }
        ok(in_bounds, "jitter: every delay within interval +-10%% (%llu..%llu us)", (unsigned long long) lo,
           (unsigned long long) hi);
        ok(hi - lo > 100000, "jitter: delays actually spread (%llu us)", (unsigned long long) (hi - lo));
        is_int(fake.n_sockets, 1, "jitter: 300 rounds over one persistent connection");
        is_int(th.n_samples, 300, "jitter: one sample per round");
        free_device(d);
}

static void test_retry(void) {
        Device *d = new_plug();
        FakeSocket *s;

        device_start(d, true);
        fake_run();
        s = fake_last_socket();
        reply_plug(s, 50000, 12);
        fake_run();
        /* The plug dropped the idle connection (a reboot, its own idle
         * timeout): the next poll's send meets a reset. */
        s->reset_on_send = true;
        next_poll();
        is_int(fake.n_sockets, 2, "retry: poll resent on a fresh connection");
        reply_plug(fake_last_socket(), 60000, 13);
        fake_run();
        ok(d->online, "retry: still online");
        is_int(d->failures, 0, "retry: not counted as a failure");
        is_int(th.n_samples, 2, "retry: the round's sample recorded");
        is_int(th.samples[1].power_mw, 60000, "retry: from the fresh connection's reply");
        free_device(d);
}

static bool has_sample(uint32_t device, int64_t power) {
        for (size_t i = 0; i < th.n_samples; i++)
                if (th.samples[i].device == device && th.samples[i].power_mw == power)
                        return true;
        return false;
}

static void test_strip_round(void) {
        Device *d = new_strip(3);
        FakeSocket *s;
        uint64_t t0;

        /* Outlet 1 has no meter: no request for it. */
        d->outlets[1]->metered = false;
        device_start(d, true);
        fake_run();
        is_int(d->round_pending, 3, "strip: round waits for 1 sysinfo + 1 meter per metered outlet");
        is_int(transport_pending(d->transport), 3, "strip: three requests queued");
        s = fake_last_socket();
        reply_strip_sysinfo(s, 3);
        fake_run();
        is_int(d->round_pending, 2, "strip: sysinfo answered");
        char *q = fake_sent_json(s, 1);
        ok(q && strstr(q, "8006AB00") && strstr(q, "get_realtime"), "strip: then outlet 0's meter (%s)", q);
        free(q);
        reply_outlet(s, 1000);
        fake_run();
        q = fake_sent_json(s, 2);
        ok(q && strstr(q, "8006AB02"), "strip: then outlet 2's meter (%s)", q);
        free(q);
        reply_outlet(s, 3000);
        fake_run();
        is_int(d->round_pending, 0, "strip: round complete");
        ok(has_sample(100, 1000) && has_sample(102, 3000) && th.n_samples == 2,
           "strip: each outlet's sample recorded under its own number");
        ok(d->online && d->outlets[0]->online, "strip: strip and outlets online");

        /* Queue poisoning: outlet 0's meter never answers. */
        next_poll();
        t0 = fake.now;
        s = fake_last_socket();
        reply_strip_sysinfo(s, 3);
        fake_run();
        fake_advance(config.poll_timeout_usec);
        ok(!d->polling, "poison: the round ends at the first timeout");
        is_int(fake.now - t0, config.poll_timeout_usec, "poison: after one timeout, not one per request");
        is_int(d->failures, 1, "poison: one failed round");
        ok(!d->online && !d->outlets[0]->online && !d->outlets[2]->online, "poison: strip and outlets offline");
        ok(s->closed, "poison: the connection is dropped");
        /* The late answer, then the real one for the next request: neither
         * may be taken for the other. */
        reply_outlet(s, 9999);
        fake_run();
        ok(!has_sample(100, 9999) && !has_sample(102, 9999), "poison: the late reply is not recorded");

        next_poll();
        s = fake_last_socket();
        reply_strip_sysinfo(s, 3);
        fake_run();
        reply_outlet(s, 1111);
        fake_run();
        reply_outlet(s, 3333);
        fake_run();
        ok(has_sample(100, 1111) && has_sample(102, 3333), "poison: next round's replies go to the right outlets");
        ok(!has_sample(102, 1111) && !has_sample(100, 3333), "poison: and to no other");
        ok(d->online && d->failures == 0, "poison: back online");
        free_device(d);
}

static unsigned count_in(const char *path, const char *needle) {
        char line[1024];
        unsigned n = 0;
        FILE *f = fopen(path, "re");

        while (f && fgets(line, sizeof(line), f))
                n += strstr(line, needle) != NULL;
        if (f)
                fclose(f);
        return n;
}

static void test_backoff(void) {
        char log_path[] = "/tmp/test-poll-log-XXXXXX";
        int log_fd = mkstemp(log_path), saved = dup(STDERR_FILENO);
        Device *d = new_plug();
        bool in_bounds = true;
        uint64_t prev;

        dup2(log_fd, STDERR_FILENO);
        fake.refuse = -ECONNREFUSED;
        device_start(d, true);
        fake_run();
        prev = d->poll_due_usec;
        for (unsigned f = 1; f <= 12; f++) {
                uint64_t base = MIN(config.poll_interval_usec << (f - 1), config.poll_max_backoff_usec);
                uint64_t delay = d->poll_due_usec - prev;
                if (f > 1 && (delay < base * 9 / 10 || delay > base * 11 / 10)) {
                        diag("after %u failures: %llu us, want %llu +-10%%", f - 1, (unsigned long long) delay,
                             (unsigned long long) base);
                        in_bounds = false;
                }
                if (d->failures != f)
                        in_bounds = false;
                prev = d->poll_due_usec;
                next_poll();
        }
        ok(in_bounds, "backoff: doubles from the interval with each failure, capped at PollMaxBackoff");
        ok(d->poll_due_usec - prev <= config.poll_max_backoff_usec * 11 / 10, "backoff: stays capped");
        ok(!d->online, "backoff: offline");

        fake.refuse = 0;
        fake_run();
        next_poll();
        reply_plug(fake_last_socket(), 50000, 12);
        fake_run();
        ok(d->online && d->failures == 0, "backoff: back online");
        prev = d->poll_due_usec;
        next_poll();
        reply_plug(fake_last_socket(), 50000, 12);
        fake_run();
        ok(d->poll_due_usec - prev <= config.poll_interval_usec * 11 / 10, "backoff: interval back to normal");

        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(log_fd);
        is_int(count_in(log_path, "poll failed, offline"), 1, "backoff: going offline logged once for 13 failures");
        is_int(count_in(log_path, "back online"), 1, "backoff: back online logged once");
        unlink(log_path);
        free_device(d);
}

int main(void) {
        test_plug_round();
        test_jitter();
        test_retry();
        test_strip_round();
        test_backoff();
        return done_testing();
}
