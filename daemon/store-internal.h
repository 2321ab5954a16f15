/* SPDX-License-Identifier: MIT */
#pragma once

/* Shared by store.c (API, tail, writer thread), store-db.c (LMDB), its keys
 * (store-keys.c) and the other store-*.c files. */

#include <glib.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "store-codec.h"
#include "store-log.h"
#include "store.h"

enum {
        DB_META,
        DB_LAST,
        DB_RAW,
        DB_BLOCK,
        DB_MINUTE,
        DB_HOUR,
        DB_DAY,
        DB_MINUTES,
        DB_COUNTER,
        DB_SEG,
        DB_HOURS,
        DB_DAYS,
        DB_FIRST,
        DB_IMPORTED,
        DB_CSEG,
        _DB_MAX,
};

/* One device's samples in a tail generation, packed. */
typedef struct TailDev {
        uint32_t device;
        bool have_base;
        StoreSample base;       /* the device's sample before the first here */
        StoreSample last;
        int64_t last_dt;
        uint64_t last_seq;
        Buf buf;                /* tail_decode_one() from base */
        uint32_t n;
        bool have_counter;
        StoreCounter counter;   /* the newest */
} TailDev;

/* Rounds appended since the last checkpoint. Once frozen (handed to the
 * writer to checkpoint) a generation never changes. */
typedef struct Tail {
        GHashTable *devs;       /* device -> TailDev */
        size_t bytes;
        uint64_t last_seq;      /* of its newest round; 0 when empty */
        int64_t first_ts;       /* its oldest sample */
        int64_t last_ts;        /* its newest */
        struct Tail *next;      /* the next newer frozen one */
} Tail;

struct Store {
        MDB_env *env;
        MDB_dbi dbi[_DB_MAX];
        StoreOptions o;
        Periods periods[_STORE_RESOLUTION_MAX];
        dev_t dev;
        ino_t ino;
        Store *next;
        int dir_fd;
        StoreLog *log;          /* the writer's, after open */
        MDB_txn *rtxn;          /* the caller's read transaction, reset between uses */
        bool rtxn_busy;         /* taken (atomically): another reader begins its own */

        /* Appender's own state. */
        GHashTable *devs;       /* device -> DevState */
        uint64_t next_seq;

        pthread_mutex_t lock;   /* guards what follows */
        pthread_cond_t wake;    /* for the writer */
        pthread_cond_t done;    /* for those waiting on it */
        pthread_t thread;
        bool thread_running, quit;
        Tail *active;
        Tail *frozen;           /* oldest first, linked by next */
        size_t round_n;         /* samples of the open round */
        bool freeze_wanted;     /* at the end of the open round */
        Buf queued;             /* framed log records not yet written */
        Buf round;              /* entries of the record being built (seq next_seq) */
        size_t round_entries;
        int64_t round_base_ts;
        uint64_t written_seq;   /* records up to this are written (and visible) */
        uint64_t sync_seq;      /* ... up to this must be made durable */
        uint64_t synced_seq;    /* ... up to this are durable */
        uint64_t ckpt_seq;      /* ... and up to this in LMDB */
        int log_error, db_error;
        uint64_t log_attempts, db_attempts;
        bool retry_now;
        bool write_now;         /* a reader wants the queue written */
        bool disk_busy;         /* the writer is in an fdatasync or checkpoint */

        /* Readers and writers of LMDB hold it shared; growing the map needs
         * it alone (LMDB: no transaction may be open then). */
        pthread_rwlock_t map_lock;
};

/* Frames the entries added since the last record into the queue of log
 * records; under Store.lock. */
int store_frame_round(Store *s);
/* Waits until every sample appended so far is written to the log (so in
 * the tail readers see), through the writer's fdatasyncs: for the rare
 * reader that must see all of them. Returns the log's error if it cannot
 * write. */
int store_wait_written(Store *s);

#define KEY_SIZE 12
/* Time-first keys: be64 hour || be32 device || be64 t0 (blocks), be64
 * start || be32 device (rollups). */
#define SEG_KEY_SIZE 20
/* Blocks since format 3: be64 hour || be64 generation || be32 device ||
 * be32 t0 - hour. The generation is the checkpoint's (the newest round it
 * holds), so a checkpoint's blocks lie side by side after the earlier
 * ones of the hour: it dirties and reads a few pages per hundred devices,
 * not one per device (with (hour, device, t0), one leaf per device by the
 * end of the hour, whose page buffers LMDB keeps: 6 MiB at 1000 plugs). */
#define CSEG_KEY_SIZE 24
/* A block's first interval reaches back at most the gap limit (<= 1 h). */
#define LEAD_MS HOUR_MS

typedef struct BlockInfo {
        unsigned version;
        uint64_t count;
        size_t minutes_end;     /* offset after the minute section */
        Reader samples;         /* positioned on the samples */
} BlockInfo;

extern const unsigned rollup_db[_STORE_RESOLUTION_MAX];
/* The time-first rollups, written since format 2 (NULL for minutes). */
extern const unsigned rollup_tdb[_STORE_RESOLUTION_MAX];

/* n bytes big-endian: keys sort as their numbers. */
static inline void put_be(uint8_t *p, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
}

static inline uint64_t get_be(const uint8_t *p, unsigned n) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

void tkey_make(uint8_t k[static SEG_KEY_SIZE], int64_t t, uint32_t device, int64_t t0);
int tkey_parse(const MDB_val *k, int64_t *ret_t, uint32_t *ret_device, int64_t *ret_t0);
void ckey_make(uint8_t k[static CSEG_KEY_SIZE], int64_t hour, uint64_t gen, uint32_t device, int64_t t0);
int ckey_parse(const MDB_val *k, int64_t *ret_hour, uint64_t *ret_gen, uint32_t *ret_device, int64_t *ret_t0);
/* Either kind of time-first key (rollups, v2 and v3 blocks). */
int time_key_parse(unsigned db, const MDB_val *k, int64_t *ret_t, uint32_t *ret_device, int64_t *ret_t0);

int store_errno(int rc);
typedef int (*WriteFunc)(Store *s, MDB_txn *txn, void *userdata);
/* Runs f in a write transaction and commits it, growing the map (up to its
 * cap) and running f again when the map is full. */
int store_write(Store *s, WriteFunc f, void *userdata);
/* LMDB reports a short write as EIO, which is what a full disk gives:
 * turns that into ENOSPC. */
int disk_error(Store *s, int r);
int db_put(Store *s, MDB_txn *txn, unsigned db, void *key, size_t key_size, void *data, size_t size);
void device_key(uint8_t k[static 4], uint32_t device);
/* Positions c on the first key of the device after 'device'. */
int cursor_next_device(MDB_cursor *c, uint32_t device, MDB_val *k, MDB_val *v);
void key_make(uint8_t k[static KEY_SIZE], uint32_t device, int64_t t);
int key_parse(const MDB_val *k, uint32_t *ret_device, int64_t *ret_t);
int raw_decode(const MDB_val *k, const MDB_val *v, StoreSample *ret);
/* Reads a block's header, and its minutes starting in [from, to) into
 * minutes if given; then block_samples() decodes its samples in range. */
int block_open(int64_t t0, const MDB_val *v, int64_t from_ms, int64_t to_ms, PeriodArray *minutes,
               BlockInfo *ret);
int block_samples(uint32_t device, int64_t t0, BlockInfo *b, int64_t from_ms, int64_t to_ms, SampleArray *out);
int packed_minutes_decode(const MDB_val *k, const MDB_val *v, int64_t from_ms, int64_t to_ms, PeriodArray *out);
int cursor_open(Store *s, MDB_txn *txn, unsigned db, MDB_cursor **ret);
/* Positions c on the first key >= (device, t). -ENOENT past the end. */
int cursor_seek(MDB_cursor *c, uint32_t device, int64_t t, MDB_val *k, MDB_val *v);
void cursor_closep(MDB_cursor **c);
#define _cleanup_cursor_ _cleanup_(cursor_closep)


int store_db_open(Store *s, const char *path);
void db_close(Store *s);
/* A read transaction, under map_lock. */
int db_read_begin(Store *s, MDB_txn **ret);
void db_read_end(Store *s, MDB_txn *txn);
int db_ckpt_seq(Store *s, MDB_txn *txn, uint64_t *ret);
int db_get_last(Store *s, MDB_txn *txn, uint32_t device, StoreSample *ret);
int db_get_counter(Store *s, MDB_txn *txn, uint32_t device, StoreCounter *ret);
/* Writes a frozen tail generation in one transaction (growing the map up
 * to its cap: -EFBIG beyond). */
int db_checkpoint(Store *s, const Tail *t);
int db_expire(Store *s, int64_t older_than_ms);
int db_delete_device(Store *s, uint32_t device);
/* Number of samples in range; stops counting past max. */
int db_count_raw(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max, size_t *ret);
int db_query_raw(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, SampleArray *out);
/* Periods of a resolution starting in [from, to), unsorted and possibly
 * repeated; -E2BIG when clearly more than max. */
int db_collect(Store *s, MDB_txn *txn, uint32_t device, StoreResolution res, int64_t from_ms, int64_t to_ms,
               size_t max, PeriodArray *out);
int db_energy(Store *s, MDB_txn *txn, uint32_t device, int64_t from_ms, int64_t to_ms, int64_t *ret);


