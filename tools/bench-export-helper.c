/* SPDX-License-Identifier: MIT */

/*
 * Export benchmark (run through tools/bench-export): a store is filled
 * directly with DAYS of raw samples of PLUGS plugs, one every INTERVAL
 * seconds, checkpointed into LMDB; then each export runs in a fresh child
 * process that opens the store and writes the export (export.c, the code
 * Manager.Export streams from) to a pipe drained by the parent, as the
 * daemon's pipe is drained by kasactl. The child reports its peak
 * resident memory: VmHWM (everything, LMDB's mapped pages included) and
 * the peak of RssAnon (its own heap: what the exporter holds). The peer
 * does what the tools people use do: query the whole range of a plug and
 * build its text in memory before writing it. The rows with costs price
 * each window with a tiered time-of-use tariff (export-cost.c, as
 * Manager.Export with costs does, the store's rollups its source).
 * Prints markdown; asserts nothing.
 *
 *   bench-export-helper DIR [PLUGS [DAYS [INTERVAL]]]
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "calendar.h"
#include "export-cost.h"
#include "export.h"
#include "manager-tariff.h"
#include "store.h"

#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
/* 2025-01-01T00:00:00+01:00 */
#define T0 INT64_C(1735686000000)
#define ZONE "Europe/Berlin"

static double now_s(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint64_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static int64_t day_start(int64_t ts, void *userdata) {
        return calendar_day_start(userdata, ts);
}

/* kB of a field of /proc/self/status. */
static long status_kb(const char *field) {
        FILE *f = fopen("/proc/self/status", "re");
        char line[256];
        long v = -1;
        size_t n = strlen(field);
        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, field, n) == 0 && line[n] == ':')
                        v = strtol(line + n + 1, NULL, 10);
        if (f)
                fclose(f);
        return v;
}

static int fill(const char *dir, unsigned plugs, unsigned days, int64_t interval_ms, uint64_t *ret_samples) {
        Calendar *cal = calendar_new(ZONE);
        Store *st = NULL;
        size_t per_day = (size_t) (DAY_MS / interval_ms);
        StoreSample *buf = calloc(per_day * plugs, sizeof(StoreSample));
        int64_t *energy = calloc(plugs, sizeof(int64_t)), *load = calloc(plugs, sizeof(int64_t));
        int r = cal && buf && energy && load ? store_open(dir, day_start, cal, &st) : -ENOMEM;

        for (unsigned i = 0; r >= 0 && i < plugs; i++)
                load[i] = 20000 + (int64_t) (rnd() % 2000000);
        *ret_samples = 0;
        for (unsigned d = 0; r >= 0 && d < days; d++) {
                size_t m = 0;
                for (size_t k = 0; k < per_day; k++)
                        for (unsigned i = 0; i < plugs; i++) {
                                int64_t p = rnd() % 4 == 0 ? load[i] : load[i] / 20;
                                energy[i] += p * interval_ms / HOUR_MS;
                                buf[m++] = (StoreSample) {
                                        .device = i,
                                        .ts_ms = T0 + (int64_t) d * DAY_MS + (int64_t) k * interval_ms,
                                        .power_mw = p,
                                        .voltage_mv = 229000 + (int64_t) (rnd() % 2000),
                                        .current_ma = p / 230,
                                        .energy_mwh = energy[i],
                                };
                        }
                r = store_append(st, buf, m);
                if (r >= 0)
                        r = store_sync(st);
                if (r >= 0 && d % 7 == 6)
                        r = store_checkpoint(st);
                *ret_samples += m;
        }
        if (r >= 0)
                r = store_checkpoint(st);
        store_free(st);
        calendar_free(cal);
        free(buf);
        free(energy);
        free(load);
        return r;
}

/* Night and day, tiered over the billing cycle, an adder: every part of
 * the row pricing at work. */
static const char TARIFF[] =
        "{\"format\":\"kasamond-tariff/1\",\"name\":\"bench\",\"currency\":\"EUR\","
        "\"periods\":[{\"name\":\"night\",\"hours\":\"22:00-06:00\",\"rate\":0.12},"
        "{\"name\":\"day\",\"tiers\":[{\"up_to_kwh\":100,\"rate\":0.3},{\"rate\":0.4}]}],"
        "\"adders\":[{\"name\":\"grid\",\"rate\":0.07}]}";

/* The cost queries' source: the store's rollups of plug NNN ("plugNNN"). */
typedef struct Source {
        Store *st;
        const Calendar *cal;
} Source;

static int rollups(Source *s, const char *device, StoreResolution res, int64_t from, int64_t to, CostInterval **ret,
                   size_t *ret_n) {
        return manager_cost_store_rollups(s->st, s->cal, (uint32_t) strtoul(device + 4, NULL, 10), res, from, to,
                                          INT64_MAX, ret, ret_n);
}

static int source_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to,
                         CostInterval **ret, size_t *ret_n) {
        return rollups(userdata, device, minutes ? STORE_MINUTE : STORE_HOUR, from, to, ret, ret_n);
}

static int source_days(void *userdata, const char *device, int64_t from, int64_t to, CostInterval **ret,
                       size_t *ret_n) {
        return rollups(userdata, device, STORE_DAY, from, to, ret, ret_n);
}

static const CostSourceOps source_ops = { .energy = source_energy, .days = source_days };

typedef struct Result {
        uint64_t bytes, rows;
        long hwm_kb, anon_kb;
        double seconds;
        int error;
} Result;

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t w = write(fd, p, n);
                if (w < 0)
                        return -errno;
                p += w;
                n -= (size_t) w;
        }
        return 0;
}

/* In the child: the export (or the peer) into fd; the result to rfd. */
static void child(const char *dir, unsigned plugs, unsigned days, ExportResolution res, bool peer, bool costs, int fd,
                  int rfd) {
        Calendar *cal = calendar_new(ZONE);
        Store *st = NULL;
        Result x = {};
        long anon = 0;
        int r = cal ? store_open(dir, day_start, cal, &st) : -ENOMEM;
        double t = now_s();
        int64_t from = T0, to = T0 + (int64_t) days * DAY_MS;

        if (r >= 0 && !peer) {
                ExportDevice *devs = calloc(plugs, sizeof(ExportDevice));
                CostQueryDevice *qdevs = calloc(plugs, sizeof(CostQueryDevice));
                char (*ids)[16] = calloc(plugs, 16);
                Export *e = NULL;
                char *error = NULL;
                for (unsigned i = 0; devs && qdevs && ids && i < plugs; i++) {
                        snprintf(ids[i], 16, "plug%03u", i);
                        devs[i] = (ExportDevice) { ids[i], i };
                        qdevs[i] = (CostQueryDevice) { ids[i], NULL };
                }
                Tariff *tariff = NULL;
                ExportPricer *pricer = NULL;
                ExportCosts c = { .price = export_pricer_price };
                Source src = { st, cal };
                CostQueryTariff qt = { 1, NULL };
                TariffAssignment home = { 1, NULL, 1, 0 };
                CostQuery q = { .tariffs = &qt, .n_tariffs = 1, .assignments = &home, .n_assignments = 1,
                                .devices = qdevs, .n_devices = plugs, .ops = &source_ops, .userdata = &src,
                                .time_zone = ZONE };
                r = devs && qdevs && ids ? 0 : -ENOMEM;
                if (r >= 0 && costs) {
                        r = tariff_file_parse(TARIFF, strlen(TARIFF), "bench", &tariff, &error);
                        qt.tariff = tariff;
                        if (r >= 0)
                                r = export_pricer_new(&q, res == EXPORT_MINUTE, &pricer);
                        c.userdata = pricer;
                        if (r >= 0)
                                r = export_pricer_currency(pricer, from, to, c.currency, &c.digits, &error);
                }
                if (r >= 0)
                        r = export_new(st, cal, devs, plugs, from, to, res, EXPORT_CSV, NULL, 0, costs ? &c : NULL, &e,
                                       &error);
                const char *text;
                size_t len;
                unsigned steps = 0;
                while (r >= 0 && (r = export_step(e, &text, &len)) > 0) {
                        x.bytes += len;
                        r = write_all(fd, text, len);
                        if (++steps % 64 == 0)
                                anon = MAX(anon, status_kb("RssAnon"));
                }
                if (r < 0 && (error || (e && export_error(e))))
                        fprintf(stderr, "export: %s\n", error ?: export_error(e));
                export_free(e);
                export_pricer_free(pricer);
                tariff_free(tariff);
                free(error);
                free(devs);
                free(qdevs);
                free(ids);
        } else if (r >= 0) {
                /* The peer: a plug's whole range loaded, its text built,
                 * then written; one plug after another. */
                for (unsigned i = 0; r >= 0 && i < plugs; i++) {
                        StoreSample *s = NULL;
                        size_t n = 0, size = 0;
                        char *text = NULL;
                        r = store_query_raw(st, i, from, to, SIZE_MAX, &s, &n);
                        FILE *f = r >= 0 ? open_memstream(&text, &size) : NULL;
                        for (size_t k = 0; f && k < n; k++) {
                                char tb[CALENDAR_ISO8601_MAX];
                                fprintf(f, "plug%03u,%s,%.3f,%.3f,%.3f,%.3f\r\n", i,
                                        calendar_format_iso8601(cal, s[k].ts_ms, tb), s[k].power_mw / 1e3,
                                        s[k].voltage_mv / 1e3, s[k].current_ma / 1e3, s[k].energy_mwh / 1e3);
                        }
                        if (f)
                                fclose(f);
                        anon = MAX(anon, status_kb("RssAnon"));
                        if (r >= 0)
                                r = write_all(fd, text, size);
                        x.bytes += size;
                        free(text);
                        free(s);
                }
        }
        x.seconds = now_s() - t;
        x.error = r < 0 ? r : 0;
        x.hwm_kb = status_kb("VmHWM");
        x.anon_kb = MAX(anon, status_kb("RssAnon"));
        store_free(st);
        calendar_free(cal);
        (void) !write(rfd, &x, sizeof x);
        _exit(0);
}

static int run(const char *dir, unsigned plugs, unsigned days, ExportResolution res, bool peer, bool costs,
               Result *ret) {
        int data[2], result[2];
        if (pipe(data) < 0 || pipe(result) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(data[0]);
                close(result[0]);
                child(dir, plugs, days, res, peer, costs, data[1], result[1]);
        }
        close(data[1]);
        close(result[1]);
        char buf[65536];
        uint64_t got = 0, lines = 0;
        for (ssize_t n; (n = read(data[0], buf, sizeof buf)) > 0;) {
                got += (uint64_t) n;
                for (ssize_t i = 0; i < n; i++)
                        lines += buf[i] == '\n';
        }
        close(data[0]);
        *ret = (Result) {};
        ssize_t n = read(result[0], ret, sizeof *ret);
        close(result[0]);
        int status;
        waitpid(pid, &status, 0);
        if (n != (ssize_t) sizeof *ret)
                return -EIO;
        if (got != ret->bytes)
                return -EPROTO;
        ret->rows = peer ? lines : lines - 1; /* the export's header line */
        return ret->error;
}

int main(int argc, char **argv) {
        if (argc < 2) {
                fprintf(stderr, "usage: %s DIR [PLUGS [DAYS [INTERVAL]]]\n", argv[0]);
                return EXIT_FAILURE;
        }
        unsigned plugs = argc > 2 ? (unsigned) atoi(argv[2]) : 100;
        unsigned days = argc > 3 ? (unsigned) atoi(argv[3]) : 365;
        int64_t interval_ms = (argc > 4 ? atoi(argv[4]) : 60) * INT64_C(1000);
        uint64_t samples;
        double t = now_s();

        setenv("TZ", ZONE, 1);
        int r = fill(argv[1], plugs, days, interval_ms, &samples);
        if (r < 0) {
                fprintf(stderr, "fill: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        printf("Store: %u plugs x %u days, a sample every %" PRId64 " s: %" PRIu64 " raw samples (filled in %.0f s)\n\n",
               plugs, days, interval_ms / 1000, samples, now_s() - t);
        printf("| export | rows | CSV size | time | peak RssAnon | VmHWM (LMDB pages included) |\n");
        printf("| --- | --- | --- | --- | --- | --- |\n");
        static const struct {
                const char *what;
                unsigned days_div;      /* a part of the range */
                ExportResolution res;
                bool peer, costs;
        } runs[] = {
                { "raw, first month", 12, EXPORT_RAW, false },
                { "raw, whole range", 1, EXPORT_RAW, false },
                { "hour, whole range", 1, EXPORT_HOUR, false },
                { "minute with costs, first month", 12, EXPORT_MINUTE, false, true },
                { "hour with costs, whole range", 1, EXPORT_HOUR, false, true },
                { "day with costs, whole range", 1, EXPORT_DAY, false, true },
                { "peer: raw, each plug's range in memory, first month", 12, EXPORT_RAW, true },
                { "peer: raw, each plug's range in memory, whole range", 1, EXPORT_RAW, true },
        };
        for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
                Result x;
                unsigned d = MAX(days / runs[i].days_div, 1u);
                r = run(argv[1], plugs, d, runs[i].res, runs[i].peer, runs[i].costs, &x);
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", runs[i].what, strerror(-r));
                        return EXIT_FAILURE;
                }
                printf("| %s (%u days) | %" PRIu64 " | %.1f MiB | %.1f s | %.1f MiB | %.1f MiB |\n", runs[i].what, d,
                       x.rows, (double) x.bytes / 1048576.0, x.seconds, x.anon_kb / 1024.0, x.hwm_kb / 1024.0);
        }
        return EXIT_SUCCESS;
}
