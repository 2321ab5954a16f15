/* SPDX-License-Identifier: MIT */

/* CPU time of kj_parse() on hostile and on real replies, run through
 * tools/bench-json. A benchmark, not a test: it asserts nothing. With
 * --runs=1 it parses each input once (the poll reply 50 times), and
 * --input=poll|distinct|duplicate picks one, for callgrind:
 *   valgrind --tool=callgrind --toggle-collect=kj_parse build/tools/bench-json-helper --runs=1 --input=distinct */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kasa-json.h"

#define HOSTILE_SIZE (64 * 1024)

/* What kasa-sim's KP115 answers to the daemon's poll (sysinfo, meter, time). */
static const char poll_reply[] =
        "{\"system\":{\"get_sysinfo\":{\"alias\":\"Sim kp115 2\",\"dev_name\":\"Smart Wi-Fi Plug Mini\","
        "\"deviceId\":\"A7DE68CEBB5A090C7E01F71DA6301DF52D784F14\",\"err_code\":0,\"feature\":\"TIM:ENE\","
        "\"hwId\":\"764DFB1F31492C610F74FC1917F48005\",\"hw_ver\":\"1.0\",\"latitude_i\":0,"
        "\"longitude_i\":0,\"led_off\":0,\"mac\":\"B0:A7:B9:FC:BA:90\",\"model\":\"KP115(US)\","
        "\"oemId\":\"E281988331A9D5EAEAFDF4E2588205B2\",\"rssi\":-59,\"sw_ver\":\"1.0.16 Build 210205 Rel.163735\","
        "\"mic_type\":\"IOT.SMARTPLUGSWITCH\",\"updating\":0,\"status\":\"new\",\"ntc_state\":0,"
        "\"obd_src\":\"tplink\",\"active_mode\":\"none\",\"fwId\":\"00000000000000000000000000000000\","
        "\"icon_hash\":\"\",\"relay_state\":1,\"on_time\":0,\"next_action\":{\"type\":-1}}},"
        "\"emeter\":{\"get_realtime\":{\"current_ma\":840,\"err_code\":0,\"power_mw\":100048,"
        "\"total_wh\":0,\"voltage_mv\":119166}},\"time\":{\"get_time\":{\"err_code\":0,\"year\":2026,"
        "\"month\":11,\"mday\":27,\"hour\":12,\"min\":13,\"sec\":52}}}";

/* Distinct short keys (base 62), as many as fit in size bytes, then
 * extra before the closing brace. */
static char *many_keys(size_t size, const char *extra, unsigned *ret_keys) {
        static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        char *s = malloc(size + strlen(extra) + 2);
        size_t n = 0;
        unsigned i = 0;

        if (!s)
                abort();
        s[n++] = '{';
        while (n + strlen(extra) + 16 < size) {
                if (i)
                        s[n++] = ',';
                s[n++] = '"';
                for (unsigned v = i;; v /= 62) {
                        s[n++] = digits[v % 62];
                        if (v < 62)
                                break;
                }
                memcpy(s + n, "\":0", 3);
                n += 3;
                i++;
        }
        n += (size_t) sprintf(s + n, "%s}", extra);
        *ret_keys = i;
        return s;
}

static double thread_cpu_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static const char *only;

static void bench(const char *tag, const char *name, const char *text, unsigned keys, unsigned runs) {
        static KjDoc doc;
        double *t = calloc(runs, sizeof(double));
        char err[128] = "";
        int r = 0;

        if (!t)
                abort();
        if (only && strcmp(only, tag) != 0) {
                free(t);
                return;
        }
        for (unsigned i = 0; i < runs; i++) {
                double start = thread_cpu_ns();
                r = kj_parse(&doc, text, strlen(text), err, sizeof(err));
                t[i] = thread_cpu_ns() - start;
                kj_done(&doc);
        }
        qsort(t, runs, sizeof(double), cmp_double);
        printf("| %s | %zu | %u | %s | %.1f | %.1f |\n", name, strlen(text), keys, r == 0 ? "accepted" : err,
               t[runs / 2] / 1000.0, t[runs - 1 - runs / 100] / 1000.0);
        free(t);
}

int main(int argc, char **argv) {
        unsigned runs = 200, n;

        for (int i = 1; i < argc; i++)
                if (strncmp(argv[i], "--runs=", 7) == 0)
                        runs = (unsigned) atoi(argv[i] + 7);
                else if (strncmp(argv[i], "--input=", 8) == 0)
                        only = argv[i] + 8;
                else {
                        fprintf(stderr, "usage: %s [--runs=N] [--input=poll|distinct|duplicate]\n", argv[0]);
                        return 2;
                }
        if (runs == 0)
                runs = 1;

        char *clean = many_keys(HOSTILE_SIZE, "", &n);
        char *dup = many_keys(HOSTILE_SIZE, ",\"0\":1", &n);

        printf("| input | bytes | keys in the largest object | result | CPU us per parse, median | p99 |\n");
        printf("| --- | --- | --- | --- | --- | --- |\n");
        bench("poll", "KP115 poll reply (kasa-sim)", poll_reply, 27, runs * 50);
        bench("distinct", "64 KiB object of distinct keys", clean, n, runs);
        bench("duplicate", "the same, first key repeated at the end", dup, n + 1, runs);
        free(clean);
        free(dup);
        return 0;
}
