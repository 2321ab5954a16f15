/* SPDX-License-Identifier: MIT */
/*
 * kasa-sim's faults, seen through the project's own codec over real
 * sockets: delay, hang, drop, garbage, bad_length, counter_reset, reboot
 * (fault and system.reboot), move. Run inside tests/netns-run.
 *
 * Usage: test-sim-socket PATH-TO-KASA-SIM
 */

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kasa-proto.h"
#include "macro.h"
#include "tap.h"

#define _cleanup_json_ _cleanup_(json_decrefp)

static const char *const PLUG = "127.0.0.2";  /* hs110, the faulty one */
static const char *const METER = "127.0.0.3"; /* kp115 */
static const char *const MOVED = "127.0.0.9";

static pid_t sim_pid = -1;
static int ctl_fd = -1;
static FILE *ctl_in;

typedef union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_un un;
} Sockaddr;

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static int start_sim(const char *sim, const char *control) {
        int pipefd[2];
        if (pipe(pipefd) < 0)
                return -errno;
        sim_pid = fork();
        if (sim_pid < 0)
                return -errno;
        if (sim_pid == 0) {
                char ctl_arg[256];
                snprintf(ctl_arg, sizeof(ctl_arg), "--control=%s", control);
                dup2(pipefd[1], STDOUT_FILENO);
                close(pipefd[0]);
                close(pipefd[1]);
                execl(sim, sim, "--seed=3", ctl_arg, "hs110@127.0.0.2", "kp115@127.0.0.3", "hs300@127.0.0.4",
                      (char *) NULL);
                _exit(127);
        }
        close(pipefd[1]);
        FILE *f = fdopen(pipefd[0], "r");
        if (!f)
                return -errno;
        char line[64] = "";
        bool ready = fgets(line, sizeof(line), f) && strcmp(line, "READY\n") == 0;
        fclose(f);
        return ready ? 0 : -EIO;
}

/* Returns the simulator's exit status, -1 if it did not exit normally. */
static int stop_sim(void) {
        int status = 0;
        if (sim_pid <= 0)
                return -1;
        kill(sim_pid, SIGTERM);
        if (waitpid(sim_pid, &status, 0) < 0)
                return -1;
        sim_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int ctl_open(const char *path) {
        Sockaddr sa = { .un.sun_family = AF_UNIX };
        snprintf(sa.un.sun_path, sizeof(sa.un.sun_path), "%s", path);
        ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ctl_fd < 0 || connect(ctl_fd, &sa.sa, sizeof(sa.un)) < 0)
                return -errno;
        ctl_in = fdopen(dup(ctl_fd), "r");
        return ctl_in ? 0 : -errno;
}

/* One control round trip; returns the reply object or NULL. */
static json_t *ctl(const char *line) {
        char buf[1 << 16];
        size_t n = strlen(line);
        if (write(ctl_fd, line, n) != (ssize_t) n || write(ctl_fd, "\n", 1) != 1)
                return NULL;
        if (!fgets(buf, sizeof(buf), ctl_in))
                return NULL;
        return json_loads(buf, 0, NULL);
}

static bool ctl_ok(const char *line) {
        _cleanup_json_ json_t *r = ctl(line);
        return r && json_is_true(json_object_get(r, "ok"));
}

/* Field of the first device's truth (or of its first outlet when outlet). */
static int64_t truth_int(const char *device, bool outlet, const char *key) {
        char req[128];
        snprintf(req, sizeof(req), "{\"cmd\":\"truth\",\"device\":\"%s\"}", device);
        _cleanup_json_ json_t *r = ctl(req);
        json_t *d = json_array_get(json_object_get(r, "devices"), 0);
        if (outlet)
                d = json_array_get(json_object_get(d, "outlets"), 0);
        json_t *v = json_object_get(d, key);
        return json_is_integer(v) ? json_integer_value(v) : json_is_true(v) ? 1 : json_is_false(v) ? 0 : -1;
}

static int tcp_connect(const char *addr, unsigned timeout_ms) {
        Sockaddr sa = { .in.sin_family = AF_INET, .in.sin_port = htons(KASA_PORT) };
        struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
        inet_pton(AF_INET, addr, &sa.in.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 || connect(fd, &sa.sa, sizeof(sa.in)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

/* Sends one framed request and reads one framed reply with the codec.
 * Returns 0, -EAGAIN (no answer before the socket's timeout), -ECONNRESET
 * (closed), -EMSGSIZE (absurd length) or -EBADMSG (not a valid reply). */
static int request(int fd, const char *json, KasaResponse *resp) {
        _cleanup_free_ uint8_t *frame = NULL;
        size_t len;
        int r = kasa_frame_encode(json, strlen(json), &frame, &len);
        if (r < 0)
                return r;
        if (send(fd, frame, len, MSG_NOSIGNAL) != (ssize_t) len)
                return -errno;

        KasaFrameDecoder dec;
        kasa_frame_decoder_init(&dec, 0);
        for (;;) {
                uint8_t buf[4096];
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0) {
                        r = errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
                        break;
                }
                if (n == 0) {
                        r = -ECONNRESET;
                        break;
                }
                for (size_t off = 0; off < (size_t) n;) {
                        _cleanup_free_ char *payload = NULL;
                        size_t used, plen;
                        r = kasa_frame_decoder_feed(&dec, buf + off, (size_t) n - off, &used, &payload, &plen, NULL);
                        if (r < 0)
                                goto out;
                        off += used;
                        if (r > 0) {
                                KasaError err;
                                r = kasa_response_parse(payload, plen, resp, &err) < 0 ? -EBADMSG : 0;
                                goto out;
                        }
                }
        }
out:
        kasa_frame_decoder_reset(&dec);
        return r;
}

/* Connects, asks, closes. */
static int query(const char *addr, const char *json, KasaResponse *resp) {
        _cleanup_close_ int fd = tcp_connect(addr, 3000);
        if (fd < 0)
                return fd;
        return request(fd, json, resp);
}

/* One discovery round trip; 1 answered and parsed, 0 no answer, < 0 bad answer. */
static int discover(const char *addr, unsigned timeout_ms, KasaSysinfo *ret) {
        Sockaddr sa = { .in.sin_family = AF_INET, .in.sin_port = htons(KASA_PORT) };
        inet_pton(AF_INET, addr, &sa.in.sin_addr);
        _cleanup_free_ uint8_t *probe = NULL;
        size_t len;
        if (kasa_discovery_probe(&probe, &len) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || sendto(fd, probe, len, 0, &sa.sa, sizeof(sa.in)) < 0)
                return -errno;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int) timeout_ms) <= 0)
                return 0;
        uint8_t buf[65536];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
                return -EIO;
        KasaError err;
        return kasa_discovery_parse(buf, (size_t) n, ret, &err) < 0 ? -EBADMSG : 1;
}

static const char Q_SYSINFO[] = "{\"system\":{\"get_sysinfo\":{}}}";
static const char Q_BOTH[] = "{\"system\":{\"get_sysinfo\":{}},\"emeter\":{\"get_realtime\":{}}}";

/* Waits (bounded) until the device accepts connections again. */
static bool wait_online(const char *addr) {
        for (int i = 0; i < 200; i++) {
                int fd = tcp_connect(addr, 1000);
                if (fd >= 0) {
                        close(fd);
                        return true;
                }
                sleep_ms(50);
        }
        return false;
}

static void test_baseline(KasaResponse *r) {
        _cleanup_close_ int fd = tcp_connect(PLUG, 3000);
        bool all = fd >= 0;
        for (int i = 0; i < 3 && all; i++)
                all = request(fd, Q_BOTH, r) == 0 && r->sysinfo_err == 0 && r->realtime_err == 0;
        ok(all, "baseline: three requests on one persistent connection");
        ok(r->realtime.style == KASA_UNITS_FLOAT && r->sysinfo.has_emeter, "baseline: hs110 speaks float units");
}

static void test_delay(KasaResponse *r) {
        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.2\",\"delay\":400}"), "delay: fault set");
        _cleanup_close_ int fd = tcp_connect(PLUG, 100);
        /* The first read times out: the reply is held back. */
        is_int(request(fd, Q_SYSINFO, r), -EAGAIN, "delay: nothing within 100 ms");
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        uint64_t t0 = now_ms();
        /* What arrives first is the reply to the first request, 400 ms
         * after it was sent, so at least 200 ms from here. */
        is_int(request(fd, Q_SYSINFO, r), 0, "delay: the reply comes after all");
        ok(now_ms() - t0 >= 200, "delay: and not before its time");
        ok(ctl_ok("{\"cmd\":\"clear\",\"device\":\"127.0.0.2\",\"fault\":\"delay\"}"), "delay: cleared");
        is_int(query(PLUG, Q_SYSINFO, r), 0, "delay: prompt again after clear");
}

static void test_hang(KasaResponse *r) {
        KasaSysinfo si;
        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.2\",\"hang\":true}"), "hang: fault set");
        _cleanup_close_ int fd = tcp_connect(PLUG, 500);
        ok(fd >= 0, "hang: connection still accepted");
        is_int(request(fd, Q_SYSINFO, r), -EAGAIN, "hang: no answer, connection stays open");
        is_int(discover(PLUG, 500, &si), 0, "hang: no discovery answer");
        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.2\",\"hang\":false}"), "hang: switched off");
        is_int(query(PLUG, Q_SYSINFO, r), 0, "hang: answers again");
}

static void test_drop(KasaResponse *r) {
        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.2\",\"drop\":true}"), "drop: fault set");
        is_int(query(PLUG, Q_SYSINFO, r), -ECONNRESET, "drop: connection closed on request");
        ok(ctl_ok("{\"cmd\":\"clear\",\"device\":\"127.0.0.2\"}"), "drop: cleared");
        is_int(query(PLUG, Q_SYSINFO, r), 0, "drop: answers again");
}

static void test_garbage(KasaResponse *r) {
        KasaSysinfo si;
        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.2\",\"garbage\":true}"), "garbage: fault set");
        _cleanup_close_ int fd = tcp_connect(PLUG, 500);
        int got = request(fd, Q_SYSINFO, r);
        ok(got == -EMSGSIZE || got == -EBADMSG || got == -EAGAIN, "garbage: codec refuses the bytes (%d)", got);
        ok(discover(PLUG, 2000, &si) < 0, "garbage: discovery answer refused by the codec");
        ok(ctl_ok("{\"cmd\":\"clear\",\"device\":\"127.0.0.2\",\"fault\":\"garbage\"}"), "garbage: cleared");
        is_int(query(PLUG, Q_SYSINFO, r), 0, "garbage: answers again");
}

static void test_bad_length(KasaResponse *r) {
        KasaSysinfo si;
        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.2\",\"bad_length\":true}"), "bad_length: fault set");
        is_int(query(PLUG, Q_SYSINFO, r), -EMSGSIZE, "bad_length: codec refuses the absurd length");
        is_int(discover(PLUG, 2000, &si), 1, "bad_length: UDP (no length) unaffected");
        ok(ctl_ok("{\"cmd\":\"clear\",\"device\":\"127.0.0.2\"}"), "bad_length: cleared");
        is_int(query(PLUG, Q_SYSINFO, r), 0, "bad_length: answers again");
}

static void test_counter_reset(KasaResponse *r) {
        ok(ctl_ok("{\"cmd\":\"set\",\"device\":\"127.0.0.3\",\"load_w\":3600,\"relay\":true}"),
           "counter_reset: 3600 W load");
        /* 1 Wh per second: wait (bounded) until the counter shows some. */
        int64_t before = 0;
        for (int i = 0; i < 100 && before < 2000; i++) {
                sleep_ms(100);
                if (query(METER, Q_BOTH, r) == 0 && r->realtime_err == 0)
                        before = r->realtime.total_mwh;
        }
        ok(before >= 2000, "counter_reset: counter at %lld mWh", (long long) before);
        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.3\",\"counter_reset\":true}"), "counter_reset: fault");
        is_int(query(METER, Q_BOTH, r), 0, "counter_reset: still answers");
        ok(r->realtime.total_mwh < before, "counter_reset: counter went back (%lld < %lld)",
           (long long) r->realtime.total_mwh, (long long) before);
        is_int(truth_int(METER, false, "counter_resets"), 1, "counter_reset: truth counts one reset");
        ok(truth_int(METER, false, "energy_mwh") >= before, "counter_reset: truth energy kept");
}

static void test_reboot_fault(KasaResponse *r) {
        KasaSysinfo si;
        /* Wait (bounded) until on_time is big enough to see it reset. */
        int64_t on_before = 0;
        for (int i = 0; i < 100 && on_before < 3; i++) {
                if (query(METER, Q_BOTH, r) == 0)
                        on_before = r->sysinfo.on_time;
                if (on_before < 3)
                        sleep_ms(100);
        }
        int64_t counter_before = r->realtime.total_mwh;
        _cleanup_close_ int held = tcp_connect(METER, 2000);

        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.3\",\"reboot\":1}"), "reboot: fault set");
        is_int(tcp_connect(METER, 500), -ECONNREFUSED, "reboot: offline, connections refused");
        is_int(request(held, Q_SYSINFO, r), -ECONNRESET, "reboot: open connection closed");
        is_int(truth_int(METER, false, "online"), 0, "reboot: control says offline");
        is_int(discover(METER, 300, &si), 0, "reboot: no discovery answer");
        ok(wait_online(METER), "reboot: back online");
        is_int(query(METER, Q_BOTH, r), 0, "reboot: answers after reboot");
        ok(r->sysinfo.on_time < on_before, "reboot: on_time reset (%lld < %lld)", (long long) r->sysinfo.on_time,
           (long long) on_before);
        ok(r->realtime.total_mwh >= counter_before, "reboot: counter kept");
}

static void test_reboot_command(KasaResponse *r) {
        is_int(query(PLUG, "{\"system\":{\"reboot\":{\"delay\":1}}}", r), 0, "system.reboot: answered");
        is_int(r->generic_err, 0, "system.reboot: err_code 0");
        bool went_down = false;
        for (int i = 0; i < 100 && !went_down; i++) {
                int fd = tcp_connect(PLUG, 500);
                went_down = fd == -ECONNREFUSED;
                if (fd >= 0)
                        close(fd);
                sleep_ms(50);
        }
        ok(went_down, "system.reboot: device went offline");
        ok(wait_online(PLUG), "system.reboot: back online");
}

static void test_move(KasaResponse *r) {
        KasaSysinfo si;
        is_int(query("127.0.0.4", Q_SYSINFO, r), 0, "move: strip answers at its address");
        char id[KASA_STRING_MAX];
        snprintf(id, sizeof(id), "%s", r->sysinfo.device_id);

        ok(ctl_ok("{\"cmd\":\"fault\",\"device\":\"127.0.0.4\",\"move\":\"127.0.0.9\"}"), "move: fault set");
        is_int(tcp_connect("127.0.0.4", 500), -ECONNREFUSED, "move: old address refuses");
        is_int(query(MOVED, Q_SYSINFO, r), 0, "move: new address answers");
        is_str(r->sysinfo.device_id, id, "move: same deviceId at the new address");
        is_int(r->sysinfo.n_children, 6, "move: still six outlets");
        is_int(discover(MOVED, 2000, &si), 1, "move: discovery at the new address");
        is_int(discover("127.0.0.4", 300, &si), 0, "move: nothing at the old address");
        _cleanup_json_ json_t *l = ctl("{\"cmd\":\"list\",\"device\":2}");
        json_t *d = json_array_get(json_object_get(l, "devices"), 0);
        is_str(json_string_value(json_object_get(d, "address")), MOVED, "move: control list shows it");
        _cleanup_json_ json_t *bad = ctl("{\"cmd\":\"fault\",\"device\":2,\"move\":\"not-an-address\"}");
        ok(bad && json_is_false(json_object_get(bad, "ok")), "move: bad address refused");
}

int main(int argc, char *argv[]) {
        char dir[] = "/tmp/test-sim-socket-XXXXXX";
        char control[sizeof(dir) + 16];
        KasaResponse *r = calloc(1, sizeof(KasaResponse));

        if (argc != 2 || !r) {
                fprintf(stderr, "usage: %s PATH-TO-KASA-SIM\n", argv[0]);
                return 2;
        }
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(control, sizeof(control), "%s/control", dir);

        if (!ok(start_sim(argv[1], control) == 0, "simulator started") ||
            !ok(ctl_open(control) == 0, "control socket connected")) {
                (void) stop_sim();
                rmdir(dir);
                return done_testing();
        }

        test_baseline(r);
        test_delay(r);
        test_hang(r);
        test_drop(r);
        test_garbage(r);
        test_bad_length(r);
        test_counter_reset(r);
        test_reboot_fault(r);
        test_reboot_command(r);
        test_move(r);

        if (ctl_in)
                fclose(ctl_in);
        close(ctl_fd);
        is_int(stop_sim(), 0, "simulator exits cleanly on SIGTERM");
        ok(access(control, F_OK) < 0, "control socket removed on exit");
        rmdir(dir);
        free(r);
        return done_testing();
}
