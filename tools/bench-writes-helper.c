/* SPDX-License-Identifier: MIT */

/*
 * Write-volume benchmark driver (run through tools/bench-writes): replays
 * poll rounds of synthetic plugs into one store, as fast as it goes, with
 * synthetic timestamps. It measures nothing itself: the caller counts the
 * sectors written to the loop device the target lives on.
 *
 *   bench-writes-helper KIND TARGET PLUGS INTERVAL_MS ROUNDS [BATCH]
 *
 * KIND      kasamond  TARGET is a directory: kasamond's store, one
 *                     store_append() per round, store_free() at the end
 *                     (which finishes and writes everything appended).
 *                     A store that commits on the caller's thread and has
 *                     store_compact() (292c943) gets it every simulated
 *                     minute, as the daemon's maintenance timer does; a
 *                     store with a writer thread and store_sync() gets
 *                     store_sync() after each round: the writer would
 *                     batch rounds that come faster than the disk, which
 *                     real rounds, seconds apart, never do
 *           sqlite    TARGET is a file: the seed's schema, BATCH inserts
 *                     per transaction, SQLite's defaults as SQLAlchemy
 *                     leaves them (rollback journal, synchronous=FULL)
 *           influx    TARGET is an InfluxDB 1.x HTTP port on 127.0.0.1:
 *                     database "bench", BATCH points per /write request in
 *                     the line protocol (each answered after the WAL fsync)
 *           floor     TARGET is a file: an append-only log, each round's
 *                     samples written and fdatasync'd
 *           floor-prealloc  the same log in a file zero-filled 1 MiB ahead
 *                     (as a recycled WAL segment), so the fdatasync of a
 *                     round rewrites data blocks only, no file size or
 *                     extent change for the file system's journal
 *
 * Prints one line: "rounds=N samples=N".
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define MINUTE_MS INT64_C(60000)
#define DAY_MS INT64_C(86400000)
/* 2026-03-02 00:00 UTC. */
#define T0_MS INT64_C(1772409600000)

/* Either store's own calls, whichever this build has (see above); the
 * replayed day is shorter than the raw retention, so no expiry is due. */
int store_compact(Store *s, int64_t now_ms) __attribute__((weak));
int store_sync(Store *s) __attribute__((weak));

/* The seed's readings table and its index (kasa-monitor-architecture.md),
 * without the foreign key to a devices table this benchmark has no use for. */
static const char seed_schema[] =
        "CREATE TABLE readings (\n"
        "    id INTEGER PRIMARY KEY,\n"
        "    device_ip TEXT,\n"
        "    timestamp TIMESTAMP,\n"
        "    power_w REAL,\n"
        "    energy_kwh REAL,\n"
        "    voltage_v REAL\n"
        ");\n"
        "CREATE INDEX idx_readings_device_time ON readings(device_ip, timestamp);\n";

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

/* splitmix64: reproducible, so every store sees the same readings. */
static uint64_t rnd(void) {
        uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        return z ^ (z >> 31);
}

static int64_t rnd_range(int64_t lo, int64_t hi) {
        return lo + (int64_t) (rnd() % (uint64_t) (hi - lo + 1));
}

/* One appliance behind a plug: off, on standby or running a load that
 * drifts; it changes state now and then, the meter adds noise to every
 * reading and the mains voltage wanders. */
typedef struct Plug {
        char ip[20];
        int state;              /* 0 off, 1 standby, 2 running */
        int64_t standby_mw, load_mw, voltage_mv;
        int64_t energy_uwh;     /* true cumulative energy */
        int64_t offset_ms;      /* where in the round this plug is polled */
        int64_t last_ts_ms;
} Plug;

static void plug_init(Plug *p, unsigned i, unsigned n, int64_t interval_ms) {
        snprintf(p->ip, sizeof p->ip, "127.0.%u.%u", (4 + (i + 1) / 254) % 256, 1 + (i + 1) % 254);
        p->state = (int) (rnd() % 3);
        p->standby_mw = rnd_range(300, 2500);
        p->load_mw = rnd_range(3000, 2200000);
        p->voltage_mv = rnd_range(226000, 234000);
        p->energy_uwh = rnd_range(0, INT64_C(500000000));       /* up to 500 kWh already counted */
        p->offset_ms = (int64_t) i * interval_ms / 2 / n;       /* polls spread over half the round */
        p->last_ts_ms = -1;
}

static StoreSample plug_read(Plug *p, uint32_t device, int64_t round_ms, int64_t interval_ms) {
        int64_t mw, ts;

        /* A state change about every 40 polls; loads drift by up to 2 %. */
        if (rnd() % 40 == 0)
                p->state = (int) (rnd() % 3);
        if (rnd() % 8 == 0)
                p->load_mw = MAX(p->load_mw + p->load_mw * rnd_range(-20, 20) / 1000, INT64_C(3000));
        mw = p->state == 0 ? 0 : p->state == 1 ? p->standby_mw : p->load_mw;
        if (mw > 0)
                mw = MAX(mw + mw * rnd_range(-5, 5) / 1000 + rnd_range(-40, 40), INT64_C(0));
        p->voltage_mv = MIN(MAX(p->voltage_mv + rnd_range(-150, 150), INT64_C(218000)), INT64_C(242000));
        p->energy_uwh += mw * interval_ms / 3600;

        ts = round_ms + p->offset_ms + rnd_range(0, 30);
        if (ts <= p->last_ts_ms)
                ts = p->last_ts_ms + 1;
        p->last_ts_ms = ts;
        return (StoreSample) {
                .device = device,
                .ts_ms = ts,
                .power_mw = mw,
                .voltage_mv = p->voltage_mv,
                .current_ma = mw * 1000 / p->voltage_mv,
                .energy_mwh = p->energy_uwh / 1000,
        };
}

static int64_t day_utc(int64_t ts_ms, void *userdata) {
        return ts_ms / DAY_MS * DAY_MS;
}

typedef struct Sink Sink;
typedef struct SinkOps {
        int (*open)(Sink *k, const char *target);
        int (*round)(Sink *k, const StoreSample *s, size_t n);
        int (*close)(Sink *k);
} SinkOps;

struct Sink {
        const SinkOps *ops;
        Plug *plugs;
        unsigned batch;
        int64_t last_maintenance_ms;
        Store *store;
        sqlite3 *db;
        sqlite3_stmt *insert;
        int fd;
        off_t log_end, log_filled;
        char *buf;
        size_t buf_size;
};

/* --- kasamond ------------------------------------------------------- */

static int kasamond_open(Sink *k, const char *target) {
        if (!store_compact == !store_sync) {
                fprintf(stderr, "kasamond: this store has %s store_compact() and store_sync()\n",
                        store_compact ? "both" : "neither");
                return -ENOSYS;
        }
        return store_open(target, day_utc, NULL, &k->store);
}

static int kasamond_round(Sink *k, const StoreSample *s, size_t n) {
        int64_t now = s[n - 1].ts_ms;
        int r;

        r = store_append(k->store, s, n);
        if (r < 0)
                return r;
        if (store_sync)
                return store_sync(k->store);
        if (k->last_maintenance_ms < 0)
                k->last_maintenance_ms = now;
        if (now - k->last_maintenance_ms < MINUTE_MS)
                return 0;
        k->last_maintenance_ms = now;
        /* The daemon's maintenance timer; a backlog is worked off at once. */
        while ((r = store_compact(k->store, now)) > 0)
                ;
        return r;
}

static int kasamond_close(Sink *k) {
        k->store = store_free(k->store);
        return 0;
}

/* --- the seed's SQLite ---------------------------------------------- */

static int sqlite_fail(Sink *k, const char *what) {
        fprintf(stderr, "sqlite: %s: %s\n", what, sqlite3_errmsg(k->db));
        return -EIO;
}

static int sqlite_open(Sink *k, const char *target) {
        if (sqlite3_open(target, &k->db) != SQLITE_OK)
                return sqlite_fail(k, "open");
        if (sqlite3_exec(k->db, seed_schema, NULL, NULL, NULL) != SQLITE_OK)
                return sqlite_fail(k, "schema");
        if (sqlite3_prepare_v2(k->db,
                               "INSERT INTO readings (device_ip, timestamp, power_w, energy_kwh, voltage_v) "
                               "VALUES (?, ?, ?, ?, ?)", -1, &k->insert, NULL) != SQLITE_OK)
                return sqlite_fail(k, "prepare");
        return 0;
}

/* TIMESTAMP as SQLAlchemy's DateTime stores it on SQLite. */
static void format_ts(int64_t ts_ms, char *out, size_t size) {
        time_t t = (time_t) (ts_ms / 1000);
        struct tm tm;
        size_t l;

        gmtime_r(&t, &tm);
        l = strftime(out, size, "%Y-%m-%d %H:%M:%S", &tm);
        snprintf(out + l, size - l, ".%06d", (int) (ts_ms % 1000) * 1000);
}

static int sqlite_round(Sink *k, const StoreSample *s, size_t n) {
        char ts[40];

        for (size_t i = 0; i < n; i += k->batch) {
                if (sqlite3_exec(k->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
                        return sqlite_fail(k, "begin");
                for (size_t j = i; j < MIN(i + k->batch, n); j++) {
                        format_ts(s[j].ts_ms, ts, sizeof ts);
                        sqlite3_bind_text(k->insert, 1, k->plugs[s[j].device].ip, -1, SQLITE_STATIC);
                        sqlite3_bind_text(k->insert, 2, ts, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_double(k->insert, 3, (double) s[j].power_mw / 1e3);
                        sqlite3_bind_double(k->insert, 4, (double) s[j].energy_mwh / 1e6);
                        sqlite3_bind_double(k->insert, 5, (double) s[j].voltage_mv / 1e3);
                        if (sqlite3_step(k->insert) != SQLITE_DONE)
                                return sqlite_fail(k, "insert");
                        sqlite3_reset(k->insert);
                }
                if (sqlite3_exec(k->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                        return sqlite_fail(k, "commit");
        }
        return 0;
}

static int sqlite_close(Sink *k) {
        sqlite3_finalize(k->insert);
        return sqlite3_close(k->db) == SQLITE_OK ? 0 : -EIO;
}

/* --- InfluxDB 1.x over HTTP ------------------------------------------ */

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t l = write(fd, p, n);
                if (l < 0 && errno == EINTR)
                        continue;
                if (l < 0)
                        return -errno;
                p += l;
                n -= (size_t) l;
        }
        return 0;
}

/* Reads one response (no body is expected from /write on success) and
 * returns its status code. */
static int http_response(int fd) {
        char buf[4096];
        size_t have = 0;
        long length = 0;
        char *end;
        int status;

        for (;;) {
                ssize_t l = read(fd, buf + have, sizeof buf - 1 - have);
                if (l < 0 && errno == EINTR)
                        continue;
                if (l <= 0)
                        return l < 0 ? -errno : -ECONNRESET;
                have += (size_t) l;
                buf[have] = 0;
                end = strstr(buf, "\r\n\r\n");
                if (end)
                        break;
                if (have == sizeof buf - 1)
                        return -EBADMSG;
        }
        if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
                return -EBADMSG;
        for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
                if (strncasecmp(h + 2, "Content-Length:", 15) == 0)
                        length = strtol(h + 17, NULL, 10);
        /* Skip the body (an error message) so the connection stays usable. */
        length -= (long) (have - (size_t) (end + 4 - buf));
        while (length > 0) {
                ssize_t l = read(fd, buf, MIN((size_t) length, sizeof buf));
                if (l <= 0)
                        return -ECONNRESET;
                length -= l;
        }
        return status;
}

static int influx_open(Sink *k, const char *target) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) atoi(target)) };

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        k->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (k->fd < 0 || connect(k->fd, (struct sockaddr *) &a, sizeof a) < 0)
                return -errno;
        k->buf_size = (size_t) k->batch * 160 + 512;
        k->buf = malloc(k->buf_size);
        return k->buf ? 0 : -ENOMEM;
}

static int influx_round(Sink *k, const StoreSample *s, size_t n) {
        for (size_t i = 0; i < n; i += k->batch) {
                char head[256];
                size_t l = 0;
                int r, hl;

                for (size_t j = i; j < MIN(i + k->batch, n); j++)
                        l += (size_t) snprintf(k->buf + l, k->buf_size - l,
                                               "readings,device_ip=%s power_w=%.3f,energy_kwh=%.6f,voltage_v=%.3f %" PRId64 "\n",
                                               k->plugs[s[j].device].ip, (double) s[j].power_mw / 1e3,
                                               (double) s[j].energy_mwh / 1e6, (double) s[j].voltage_mv / 1e3,
                                               s[j].ts_ms);
                hl = snprintf(head, sizeof head,
                              "POST /write?db=bench&precision=ms HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", l);
                r = write_all(k->fd, head, (size_t) hl);
                if (r >= 0)
                        r = write_all(k->fd, k->buf, l);
                if (r >= 0)
                        r = http_response(k->fd);
                if (r < 0)
                        return r;
                if (r != 204) {
                        fprintf(stderr, "influx: /write answered %d\n", r);
                        return -EIO;
                }
        }
        return 0;
}

static int influx_close(Sink *k) {
        free(k->buf);
        return close(k->fd) < 0 ? -errno : 0;
}

/* --- the floor: an fsync'd append-only log --------------------------- */

static int floor_open(Sink *k, const char *target) {
        k->fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        return k->fd < 0 ? -errno : 0;
}

static int floor_round(Sink *k, const StoreSample *s, size_t n) {
        int r = write_all(k->fd, (const char *) s, n * sizeof *s);
        if (r < 0)
                return r;
        return fdatasync(k->fd) < 0 ? -errno : 0;
}

#define PREALLOC_CHUNK (1 << 20)

static int floor_prealloc_round(Sink *k, const StoreSample *s, size_t n) {
        size_t l = n * sizeof *s;

        while (k->log_end + (off_t) l > k->log_filled) {
                static const char zeros[PREALLOC_CHUNK];
                if (pwrite(k->fd, zeros, sizeof zeros, k->log_filled) != (ssize_t) sizeof zeros)
                        return -errno;
                if (fdatasync(k->fd) < 0)
                        return -errno;
                k->log_filled += PREALLOC_CHUNK;
        }
        if (pwrite(k->fd, s, l, k->log_end) != (ssize_t) l)
                return -errno;
        k->log_end += (off_t) l;
        return fdatasync(k->fd) < 0 ? -errno : 0;
}

static int floor_prealloc_open(Sink *k, const char *target) {
        k->fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        return k->fd < 0 ? -errno : 0;
}

static int floor_close(Sink *k) {
        return close(k->fd) < 0 ? -errno : 0;
}

static const struct {
        const char *name;
        SinkOps ops;
} kinds[] = {
        { "kasamond", { kasamond_open, kasamond_round, kasamond_close } },
        { "sqlite", { sqlite_open, sqlite_round, sqlite_close } },
        { "influx", { influx_open, influx_round, influx_close } },
        { "floor", { floor_open, floor_round, floor_close } },
        { "floor-prealloc", { floor_prealloc_open, floor_prealloc_round, floor_close } },
};

int main(int argc, char **argv) {
        Sink k = { .fd = -1, .last_maintenance_ms = -1, .batch = 100 };
        unsigned plugs, rounds;
        int64_t interval_ms;
        StoreSample *round;
        int r;

        if (argc < 6 || argc > 7) {
                fprintf(stderr, "usage: %s kasamond|sqlite|influx|floor|floor-prealloc TARGET PLUGS INTERVAL_MS ROUNDS [BATCH]\n",
                        argv[0]);
                return EXIT_FAILURE;
        }
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (strcmp(argv[1], kinds[i].name) == 0)
                        k.ops = &kinds[i].ops;
        plugs = (unsigned) strtoul(argv[3], NULL, 10);
        interval_ms = strtoll(argv[4], NULL, 10);
        rounds = (unsigned) strtoul(argv[5], NULL, 10);
        if (argc == 7)
                k.batch = (unsigned) strtoul(argv[6], NULL, 10);
        if (!k.ops || plugs == 0 || interval_ms <= 0 || rounds == 0 || k.batch == 0) {
                fprintf(stderr, "%s: bad arguments\n", argv[0]);
                return EXIT_FAILURE;
        }

        k.plugs = calloc(plugs, sizeof(Plug));
        round = calloc(plugs, sizeof(StoreSample));
        if (!k.plugs || !round) {
                fprintf(stderr, "%s: out of memory\n", argv[0]);
                return EXIT_FAILURE;
        }
        for (unsigned i = 0; i < plugs; i++)
                plug_init(&k.plugs[i], i, plugs, interval_ms);

        r = k.ops->open(&k, argv[2]);
        if (r < 0) {
                fprintf(stderr, "%s: opening %s %s: %s\n", argv[0], argv[1], argv[2], strerror(-r));
                return EXIT_FAILURE;
        }
        for (unsigned n = 0; n < rounds; n++) {
                int64_t round_ms = T0_MS + (int64_t) n * interval_ms;
                for (unsigned i = 0; i < plugs; i++)
                        round[i] = plug_read(&k.plugs[i], i, round_ms, interval_ms);
                r = k.ops->round(&k, round, plugs);
                if (r < 0) {
                        fprintf(stderr, "%s: round %u into %s: %s\n", argv[0], n, argv[1], strerror(-r));
                        return EXIT_FAILURE;
                }
        }
        r = k.ops->close(&k);
        if (r < 0) {
                fprintf(stderr, "%s: closing %s: %s\n", argv[0], argv[1], strerror(-r));
                return EXIT_FAILURE;
        }
        printf("rounds=%u samples=%" PRIu64 "\n", rounds, (uint64_t) rounds * plugs);
        free(round);
        free(k.plugs);
        return EXIT_SUCCESS;
}
