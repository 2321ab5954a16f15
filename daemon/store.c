/* SPDX-License-Identifier: MIT */

/*
 * The store's API: validation, the in-memory tail, the writer thread, and
 * queries that merge LMDB with the tail. A little past 800 lines: the
 * tail, the writer and the appender share the lock protocol described
 * below, and reading it in one file is what keeps it checkable. Formats: store-db.c (LMDB),
 * store-log.h (the write-ahead log).
 *
 * Threads. The caller's thread (the daemon's loop) appends and queries;
 * the writer thread writes the log and checkpoints. Store.lock guards the
 * tail generations, the queue of framed log records and the writer's
 * progress and errors; the appender's per-device state (devs) is the
 * caller's alone, and the log the writer's. Samples are added to the
 * active tail and queued as log records under the lock; when a round
 * ends (store_commit_round()) the writer takes the queue and writes and
 * fdatasyncs it without the lock. Queries show the samples written,
 * which a kill -9 cannot take back; a power loss can take back the round
 * not yet synced, never one committed. To checkpoint, the active
 * generation is frozen (moved under the lock to the end of a queue of
 * frozen ones, a new one started); the writer writes the oldest frozen
 * one into LMDB without the lock (nobody changes a frozen generation),
 * together with its newest record's seq in LMDB's meta, then frees it
 * under the lock. A query copies the device's part of every generation
 * under the lock, then opens its LMDB read transaction and reads the
 * checkpoint seq there: a generation whose newest seq is not above it is
 * in that snapshot already and is left out, so a checkpoint finishing
 * meanwhile neither hides nor doubles samples.
 * LMDB runs with MDB_NOTLS, as its read and write transactions live on
 * different threads; growing the map takes map_lock exclusively, which
 * every transaction holds shared.
 */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store-internal.h"

/* Beyond these a value is not a reading but garbage; the arithmetic of
 * rollups stays far from overflow inside them. */
#define VALUE_ABS_MAX (INT64_C(1) << 40)
#define TS_MAX (INT64_C(1) << 53)
#define ENERGY_MAX (INT64_C(1) << 56)
#define RETRY_SEC 1
#define EXPIRE_CALLS_PER_CHECKPOINT 8

typedef struct DevState {
        bool have_last;
        StoreSample last;
        bool have_counter;
        StoreCounter counter;
} DevState;

/* LMDB forbids opening one environment twice in a process. */
static Store *open_stores;
static pthread_mutex_t open_stores_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- tail ---- */

static void tail_dev_free(void *p) {
        TailDev *td = p;

        buf_done(&td->buf);
        free(td);
}

static Tail *tail_new(void) {
        Tail *t = calloc(1, sizeof(Tail));

        if (!t)
                return NULL;
        t->devs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, tail_dev_free);
        return t;
}

static void tail_free(Tail *t) {
        if (!t)
                return;
        g_hash_table_unref(t->devs);
        free(t);
}

static size_t frozen_bytes(const Store *s) {
        size_t n = 0;

        for (const Tail *t = s->frozen; t; t = t->next)
                n += t->bytes;
        return n;
}

static TailDev *tail_dev(Tail *t, uint32_t device, const DevState *d) {
        TailDev *td = g_hash_table_lookup(t->devs, GUINT_TO_POINTER(device));

        if (td)
                return td;
        td = calloc(1, sizeof(TailDev));
        if (!td)
                return NULL;
        td->device = device;
        td->have_base = d->have_last;
        td->base = d->have_last ? d->last : (StoreSample) { .device = device };
        td->last = td->base;
        g_hash_table_insert(t->devs, GUINT_TO_POINTER(device), td);
        return td;
}

static int tail_add(Tail *t, const DevState *d, const StoreSample *x, uint64_t seq) {
        TailDev *td = tail_dev(t, x->device, d);
        size_t before;
        int r;

        if (!td)
                return -ENOMEM;
        r = buf_reserve(&td->buf, VARINT_MAX + SAMPLE_FIELDS_MAX);
        if (r < 0)
                return r;
        before = td->buf.size;
        td->buf.size = (size_t) (put_uvarint(td->buf.data + td->buf.size, seq - td->last_seq) - td->buf.data);
        td->last_seq = seq;
        td->buf.size = (size_t) (samples_encode_one(td->buf.data + td->buf.size, &td->last, &td->last_dt, x) -
                                 td->buf.data);
        td->n++;
        t->bytes += td->buf.size - before;
        if (t->last_seq == 0 || x->ts_ms < t->first_ts)
                t->first_ts = x->ts_ms;
        t->last_ts = MAX(t->last_ts, x->ts_ms);
        t->last_seq = seq;
        return 0;
}

/* Whether the active generation should be checkpointed: it spans the
 * checkpoint interval of sample time (aligned, so that with whole hours
 * each block holds a whole hour), or it passed its byte bound. */
static bool tail_due(const Store *s, const Tail *t, int64_t newest_ts) {
        if (t->last_seq == 0)
                return false;
        return t->bytes >= s->o.tail_max_bytes ||
               newest_ts >= floor_to(t->first_ts, s->o.checkpoint_interval_ms) + s->o.checkpoint_interval_ms;
}

/* Under the lock. */
static int freeze(Store *s) {
        Tail *t;

        /* An open round's samples carry the seq of a record not written
         * yet: they must not be checkpointed apart from it. */
        if (s->round_n > 0) {
                s->freeze_wanted = true;
                return 0;
        }
        /* Generations wait in line while the writer is behind (a replay
         * faster than the disk), up to the memory bound. */
        if (s->active->last_seq == 0 || frozen_bytes(s) >= s->o.pending_max_bytes)
                return 0;
        s->freeze_wanted = false;
        t = tail_new();
        if (!t)
                return -ENOMEM;
        /* A frozen generation never grows: the slack of its buffers (up to
         * half of them, as they double) would wait out the checkpoint. */
        GHashTableIter i;
        void *v;
        g_hash_table_iter_init(&i, s->active->devs);
        while (g_hash_table_iter_next(&i, NULL, &v))
                buf_trim(&((TailDev *) v)->buf);
        Tail **p = &s->frozen;
        while (*p)
                p = &(*p)->next;
        *p = s->active;
        s->active = t;
        pthread_cond_signal(&s->wake);
        return 0;
}

/* ---- writer thread ---- */

static void writer_log(Store *s) {
        Buf b = s->queued;
        size_t done = 0;
        int r;

        s->queued = (Buf) {};
        pthread_mutex_unlock(&s->lock);
        r = log_write(s->log, b.data, b.size, &done);
        pthread_mutex_lock(&s->lock);

        if (done < b.size) {
                /* Puts the rest back in front of what came meanwhile. */
                size_t rest = b.size - done;
                if (buf_reserve(&b, s->queued.size) >= 0) {
                        memmove(b.data, b.data + done, rest);
                        if (s->queued.size > 0)
                                memcpy(b.data + rest, s->queued.data, s->queued.size);
                        b.size = rest + s->queued.size;
                        buf_done(&s->queued);
                        s->queued = b;
                        b = (Buf) {};
                } else
                        r = -ENOMEM;
        }
        buf_done(&b);
        s->written_seq = log_next_seq(s->log) - 1;
        s->write_now = false;
        pthread_cond_broadcast(&s->done);
        if (r >= 0 && s->sync_seq > s->synced_seq && s->sync_seq <= s->written_seq) {
                uint64_t target = s->written_seq;
                s->disk_busy = true;
                pthread_mutex_unlock(&s->lock);
                r = log_sync(s->log);
                if (r >= 0)
                        log_pad(s->log);
                pthread_mutex_lock(&s->lock);
                s->disk_busy = false;
                if (r >= 0)
                        s->synced_seq = target;
        }
        s->log_error = r < 0 ? r : 0;
        s->log_attempts++;
}

static void writer_checkpoint(Store *s) {
        Tail *t = s->frozen;
        int r;

        s->disk_busy = true;
        pthread_mutex_unlock(&s->lock);
        r = db_checkpoint(s, t);
        if (r >= 0) {
                log_release(s->log, t->last_seq);
                for (unsigned i = 0; s->o.raw_retention_ms > 0 && i < EXPIRE_CALLS_PER_CHECKPOINT; i++)
                        if (db_expire(s, t->last_ts - s->o.raw_retention_ms) <= 0)
                                break;
        }
        pthread_mutex_lock(&s->lock);
        s->disk_busy = false;

        s->db_error = r < 0 ? r : 0;
        s->db_attempts++;
        if (r < 0)
                return;
        s->ckpt_seq = t->last_seq;
        s->frozen = t->next;
        tail_free(t);
        if (s->quit || tail_due(s, s->active, s->active->last_ts))
                (void) freeze(s);
        /* The generation just freed and LMDB's transaction left free
         * chunks in both threads' malloc arenas, which glibc keeps in the
         * process: the resident set stayed at the checkpoint's peak until
         * the next one (about 1 MiB more at 1000 plugs, with a 1 MiB
         * tail). This gives their pages back. Without the lock: it walks
         * every arena. */
        pthread_mutex_unlock(&s->lock);
        (void) malloc_trim(0);
        pthread_mutex_lock(&s->lock);
}

static void *writer_main(void *userdata) {
        Store *s = userdata;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                bool retry = s->retry_now || s->quit, failed = false, worked = false;

                s->retry_now = false;
                /* A round is written when it ends (or a reader wants it),
                 * not record by record: each write dirties the file's
                 * times again, which ext4 then journals. */
                bool want_log = (s->queued.size > 0 && (s->write_now || s->quit || s->sync_seq > s->written_seq)) ||
                                s->sync_seq > s->synced_seq;
                if (want_log && (s->log_error == 0 || retry)) {
                        writer_log(s);
                        failed = s->log_error < 0;
                        worked = true;
                }
                if (s->frozen && (s->db_error == 0 || retry)) {
                        writer_checkpoint(s);
                        failed = failed || s->db_error < 0;
                        worked = true;
                }
                pthread_cond_broadcast(&s->done);
                bool idle = !want_log && !s->frozen;
                if (s->quit && (failed || idle))
                        break;
                if (worked && !failed)
                        continue;
                if (idle)
                        pthread_cond_wait(&s->wake, &s->lock);
                else {
                        /* Failing: try again in a while, or when asked. */
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        ts.tv_sec += RETRY_SEC;
                        if (pthread_cond_timedwait(&s->wake, &s->lock, &ts) != 0)
                                s->retry_now = true;
                }
        }
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* ---- open and close ---- */

static void dev_state_free(void *p) {
        free(p);
}

static DevState *get_dev(Store *s, uint32_t device) {
        DevState *d = g_hash_table_lookup(s->devs, GUINT_TO_POINTER(device));
        MDB_txn *txn;

        if (d)
                return d;
        d = calloc(1, sizeof(DevState));
        if (!d)
                return NULL;
        /* Nothing appended yet for it in this run: LMDB has its newest. */
        if (db_read_begin(s, &txn) >= 0) {
                d->have_last = db_get_last(s, txn, device, &d->last) >= 0;
                d->have_counter = db_get_counter(s, txn, device, &d->counter) >= 0;
                db_read_end(s, txn);
        } else {
                free(d);
                return NULL;
        }
        g_hash_table_insert(s->devs, GUINT_TO_POINTER(device), d);
        return d;
}

static bool sample_valid(const DevState *d, const StoreSample *x) {
        if (x->ts_ms < 0 || x->ts_ms > TS_MAX || x->energy_mwh < 0 || x->energy_mwh > ENERGY_MAX ||
            llabs(x->power_mw) > VALUE_ABS_MAX || llabs(x->voltage_mv) > VALUE_ABS_MAX ||
            llabs(x->current_ma) > VALUE_ABS_MAX)
                return false;
        return !d->have_last || (x->ts_ms > d->last.ts_ms && x->energy_mwh >= d->last.energy_mwh);
}

/* Adds samples to the active tail and to the devices' state, dropping bad
 * ones; under the lock. The kept ones are encoded into out, if given, for
 * the round's log record. */
static int add_samples(Store *s, const StoreSample *samples, size_t n, uint64_t seq, bool *ret_kept_mask,
                       size_t *ret_kept) {
        size_t kept = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                const StoreSample *x = &samples[i];
                DevState *d = get_dev(s, x->device);

                if (!d)
                        return -ENOMEM;
                if (ret_kept_mask)
                        ret_kept_mask[i] = false;
                if (!sample_valid(d, x))
                        continue;
                r = tail_add(s->active, d, x, seq);
                if (r < 0)
                        return r;
                d->last = *x;
                d->have_last = true;
                kept++;
                if (ret_kept_mask)
                        ret_kept_mask[i] = true;
        }
        *ret_kept = kept;
        return 0;
}

static int add_counters(Store *s, const StoreCounter *counters, size_t nc, uint64_t seq) {
        for (size_t i = 0; i < nc; i++) {
                const StoreCounter *c = &counters[i];
                DevState *d = get_dev(s, c->device);
                TailDev *td = d ? tail_dev(s->active, c->device, d) : NULL;

                if (!td)
                        return -ENOMEM;
                td->counter = *c;
                td->have_counter = true;
                d->counter = *c;
                d->have_counter = true;
                s->active->last_seq = seq;
        }
        return 0;
}

static int replay_round(uint64_t seq, const uint8_t *payload, size_t size, void *userdata) {
        _cleanup_free_ StoreSample *x = NULL;
        _cleanup_free_ StoreCounter *c = NULL;
        Reader r = reader_make(payload, size);
        Store *s = userdata;
        size_t n = 0, nc = 0, kept;
        uint64_t entries;
        int64_t base;
        int k;

        base = (int64_t) get_uvarint(&r);
        entries = get_uvarint(&r);
        /* An entry takes at least 2 bytes: refuses absurd counts early. */
        if (r.bad || entries > size / 2)
                return -EBADMSG;
        x = calloc(MAX(entries, 1u), sizeof(StoreSample));
        c = calloc(MAX(entries, 1u), sizeof(StoreCounter));
        if (!x || !c)
                return -ENOMEM;
        for (uint64_t i = 0; i < entries; i++) {
                unsigned flags;

                k = log_entry_get(&r, base, &x[n], &c[nc], &flags);
                if (k < 0)
                        return k;
                n += !!(flags & ENTRY_SAMPLE);
                nc += !!(flags & ENTRY_COUNTER);
        }
        /* The CRC matched, so this is what was written. */
        if (!reader_done(&r))
                return -EBADMSG;
        k = add_samples(s, x, n, seq, NULL, &kept);
        if (k >= 0)
                k = add_counters(s, c, nc, seq);
        return k;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;

        if (s->thread_running) {
                (void) store_commit_round(s);
                pthread_mutex_lock(&s->lock);
                s->quit = true;
                (void) freeze(s);
                pthread_cond_signal(&s->wake);
                pthread_mutex_unlock(&s->lock);
                pthread_join(s->thread, NULL);
        }
        pthread_mutex_lock(&open_stores_lock);
        for (Store **p = &open_stores; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        pthread_mutex_unlock(&open_stores_lock);
        log_free(s->log);
        db_close(s);
        tail_free(s->active);
        while (s->frozen) {
                Tail *t = s->frozen;
                s->frozen = t->next;
                tail_free(t);
        }
        buf_done(&s->queued);
        buf_done(&s->round);
        if (s->devs)
                g_hash_table_unref(s->devs);
        if (s->dir_fd >= 0)
                close(s->dir_fd);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->done);
        pthread_rwlock_destroy(&s->map_lock);
        free(s);
        return NULL;
}

static int store_register(Store *s, const char *path) {
        struct stat st;
        int r = 0;

        if (stat(path, &st) < 0)
                return -errno;
        pthread_mutex_lock(&open_stores_lock);
        for (Store *i = open_stores; i; i = i->next)
                if (i->dev == st.st_dev && i->ino == st.st_ino)
                        r = -EBUSY;
        if (r == 0) {
                s->dev = st.st_dev;
                s->ino = st.st_ino;
                s->next = open_stores;
                open_stores = s;
        }
        pthread_mutex_unlock(&open_stores_lock);
        return r;
}

int store_open_with(const char *path, const StoreOptions *options, Store **ret) {
        _cleanup_(store_freep) Store *s = NULL;
        pthread_condattr_t ca;
        MDB_txn *txn;
        uint64_t next;
        int r;

        if (!path || !options || !options->day_start || !ret)
                return -EINVAL;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;

        s = calloc(1, sizeof(Store));
        if (!s)
                return -ENOMEM;
        s->dir_fd = -1;
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->wake, &ca);
        pthread_condattr_destroy(&ca);
        pthread_cond_init(&s->done, NULL);
        pthread_rwlock_init(&s->map_lock, NULL);

        s->o = *options;
        if (s->o.gap_ms <= 0)
                s->o.gap_ms = STORE_GAP_MS_DEFAULT;
        s->o.gap_ms = MIN(s->o.gap_ms, HOUR_MS);
        if (s->o.checkpoint_interval_ms <= 0)
                s->o.checkpoint_interval_ms = STORE_CHECKPOINT_INTERVAL_MS_DEFAULT;
        if (s->o.tail_max_bytes == 0)
                s->o.tail_max_bytes = STORE_TAIL_MAX_BYTES_DEFAULT;
        if (s->o.pending_max_bytes == 0)
                s->o.pending_max_bytes = STORE_PENDING_MAX_BYTES_DEFAULT;
        if (s->o.map_max_bytes == 0)
                s->o.map_max_bytes = STORE_MAP_MAX_BYTES_DEFAULT;
        if (s->o.log_segment_bytes == 0)
                s->o.log_segment_bytes = LOG_SEGMENT_BYTES_DEFAULT;
        for (StoreResolution res = 0; res < _STORE_RESOLUTION_MAX; res++)
                s->periods[res] = (Periods) {
                        .res = res,
                        .day_start = s->o.day_start,
                        .userdata = s->o.userdata,
                        .gap_ms = s->o.gap_ms,
                };

        r = store_register(s, path);
        if (r < 0) {
                s->next = NULL;
                return r;
        }
        s->dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return -errno;
        r = store_db_open(s, path);
        if (r < 0)
                return r;
        r = db_read_begin(s, &txn);
        if (r < 0)
                return r;
        r = db_ckpt_seq(s, txn, &s->ckpt_seq);
        db_read_end(s, txn);
        if (r < 0)
                return r;

        s->devs = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, dev_state_free);
        s->active = tail_new();
        if (!s->active)
                return -ENOMEM;
        r = log_open(s->dir_fd, s->o.log_segment_bytes, s->ckpt_seq, replay_round, s, &s->log, &next);
        if (r < 0)
                return r;
        s->next_seq = next;
        s->written_seq = s->sync_seq = s->synced_seq = next - 1;
        if (tail_due(s, s->active, s->active->last_ts))
                (void) freeze(s);

        r = -pthread_create(&s->thread, NULL, writer_main, s);
        if (r < 0)
                return r;
        s->thread_running = true;
        *ret = TAKE_PTR(s);
        return 0;
}

int store_open(const char *path, StoreDayStartFunc day_start, void *userdata, Store **ret) {
        return store_open_with(path, &(StoreOptions) { .day_start = day_start, .userdata = userdata }, ret);
}

/* ---- append ---- */

/* Frames a record into the queue and wakes the writer; under the lock. */
static int queue_record(Store *s, const Buf *payload) {
        int r;

        r = buf_reserve(&s->queued, LOG_HEADER_SIZE + payload->size);
        if (r < 0)
                return r;
        log_frame(s->queued.data + s->queued.size, s->next_seq, payload->data, payload->size);
        s->queued.size += LOG_HEADER_SIZE + payload->size;
        s->next_seq++;
        /* The writer is woken when the round ends: one write() and one
         * fdatasync a round, not a write per record, each of which would
         * dirty the file's times again for ext4 to journal. */
        return 0;
}

/* Frames the record being built into the queue; under the lock. */
int store_frame_round(Store *s) {
        _cleanup_(buf_done) Buf payload = {};
        uint8_t *p;
        int r;

        if (s->round_entries == 0)
                return 0;
        r = buf_reserve(&payload, 2 * VARINT_MAX + s->round.size);
        if (r < 0)
                return r;
        p = put_uvarint(payload.data, (uint64_t) s->round_base_ts);
        p = put_uvarint(p, s->round_entries);
        memcpy(p, s->round.data, s->round.size);
        payload.size = (size_t) (p - payload.data) + s->round.size;
        r = queue_record(s, &payload);
        if (r < 0)
                return r;
        s->round.size = 0;
        s->round_entries = 0;
        return 0;
}

int store_add(Store *s, const StoreSample *samples, size_t n, const StoreCounter *counters, size_t n_counters) {
        /* The daemon adds one sample and its counter at a time: no
         * allocation for that on every poll. */
        bool small_kept[8], small_paired[8];
        _cleanup_free_ bool *kept_alloc = NULL, *paired_alloc = NULL;
        bool *kept_mask = small_kept, *paired = small_paired;
        int64_t newest = INT64_MIN;
        size_t kept = 0;
        uint8_t *p;
        int r;

        if (!s || (!samples && n > 0) || (!counters && n_counters > 0))
                return -EINVAL;
        if (n + n_counters == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                newest = MAX(newest, samples[i].ts_ms);
        if (n > ELEMENTSOF(small_kept))
                kept_mask = kept_alloc = calloc(n, sizeof(bool));
        if (n_counters > ELEMENTSOF(small_paired))
                paired = paired_alloc = calloc(n_counters, sizeof(bool));
        if (!kept_mask || !paired)
                return -ENOMEM;
        memset(paired, 0, MAX(n_counters, 1u) * sizeof(bool));

        pthread_mutex_lock(&s->lock);
        if ((s->log_error || s->db_error) &&
            s->queued.size + s->round.size + s->active->bytes + frozen_bytes(s) >= s->o.pending_max_bytes) {
                r = s->log_error ?: s->db_error;
                goto finish;
        }
        /* The round that reaches the next checkpoint time starts the next
         * generation. */
        if (s->round_n == 0 && tail_due(s, s->active, newest))
                (void) freeze(s);
        r = add_samples(s, samples, n, s->next_seq, kept_mask, &kept);
        if (r >= 0)
                r = add_counters(s, counters, n_counters, s->next_seq);
        if (r < 0 || kept + n_counters == 0)
                goto finish;
        /* Into the record being built, which is written and made durable
         * when the round ends (store_commit_round()). */
        r = buf_reserve(&s->round, (kept + n_counters) * ENTRY_SIZE_MAX);
        if (r < 0)
                goto finish;
        if (s->round_entries == 0)
                s->round_base_ts = kept > 0 ? newest : counters[0].ts_ms;
        p = s->round.data + s->round.size;
        for (size_t i = 0; i < n; i++) {
                const StoreCounter *c = NULL;

                if (!kept_mask[i])
                        continue;
                for (size_t j = 0; j < n_counters && !c; j++)
                        if (!paired[j] && counters[j].device == samples[i].device) {
                                paired[j] = true;
                                c = &counters[j];
                        }
                p = log_entry_put(p, s->round_base_ts, &samples[i], c);
                s->round_entries++;
        }
        for (size_t j = 0; j < n_counters; j++)
                if (!paired[j]) {
                        p = log_entry_put(p, s->round_base_ts, NULL, &counters[j]);
                        s->round_entries++;
                }
        s->round.size = (size_t) (p - s->round.data);
        s->round_n += kept + n_counters;
finish:
        pthread_mutex_unlock(&s->lock);
        return r < 0 ? r : (int) MIN(n - kept, (size_t) INT32_MAX);
}

int store_commit_round(Store *s) {
        int r;

        if (!s)
                return -EINVAL;

        pthread_mutex_lock(&s->lock);
        /* On failure (no memory) the entries stay for the next round. */
        r = store_frame_round(s);
        if (s->next_seq - 1 > s->sync_seq) {
                s->sync_seq = s->next_seq - 1;
                pthread_cond_signal(&s->wake);
        }
        /* Entries left unframed keep the round open, so no generation is
         * frozen apart from their record. */
        if (r >= 0)
                s->round_n = 0;
        if (s->freeze_wanted || s->active->bytes >= s->o.tail_max_bytes)
                (void) freeze(s);
        pthread_mutex_unlock(&s->lock);
        return r;
}

int store_append_round(Store *s, const StoreSample *samples, size_t n, const StoreCounter *counters,
                       size_t n_counters) {
        int r;

        r = store_add(s, samples, n, counters, n_counters);
        if (r < 0)
                return r;
        (void) store_commit_round(s);
        return r;
}

int store_append(Store *s, const StoreSample *samples, size_t n) {
        return store_append_round(s, samples, n, NULL, 0);
}

int store_sync(Store *s) {
        uint64_t target, attempts;
        int r = 0;

        if (!s)
                return -EINVAL;
        (void) store_commit_round(s);
        pthread_mutex_lock(&s->lock);
        target = s->next_seq - 1;
        attempts = s->log_attempts;
        s->retry_now = true;
        pthread_cond_signal(&s->wake);
        while (s->synced_seq < target) {
                if (s->log_error && s->log_attempts > attempts) {
                        r = s->log_error;
                        break;
                }
                pthread_cond_wait(&s->done, &s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int store_checkpoint(Store *s) {
        if (!s)
                return -EINVAL;
        (void) store_commit_round(s);
        return store_checkpoint_wait(s);
}

int store_checkpoint_wait(Store *s) {
        uint64_t target, attempts;
        int r = 0;

        if (!s)
                return -EINVAL;
        pthread_mutex_lock(&s->lock);
        target = s->next_seq - 1;
        attempts = s->db_attempts;
        while (s->ckpt_seq < target) {
                if (s->db_error && s->db_attempts > attempts) {
                        r = s->db_error;
                        break;
                }
                r = freeze(s);
                if (r < 0)
                        break;
                s->retry_now = true;
                pthread_cond_signal(&s->wake);
                pthread_cond_wait(&s->done, &s->lock);
        }
        pthread_mutex_unlock(&s->lock);
        return r;
}

int store_state(Store *s) {
        int r;

        if (!s)
                return -EINVAL;
        pthread_mutex_lock(&s->lock);
        r = s->log_error ?: s->db_error;
        pthread_mutex_unlock(&s->lock);
        return r;
}

int store_expire(Store *s, int64_t older_than_ms) {
        if (!s)
                return -EINVAL;
        return db_expire(s, older_than_ms);
}

int store_delete_device(Store *s, uint32_t device) {
        int r;

        if (!s)
                return -EINVAL;
        r = store_checkpoint(s);
        if (r < 0)
                return r;
        r = db_delete_device(s, device);
        if (r < 0)
                return r;
        g_hash_table_remove(s->devs, GUINT_TO_POINTER(device));
        return 0;
}

int store_last_sample(Store *s, uint32_t device, StoreSample *ret) {
        DevState *d;

        if (!s || !ret)
                return -EINVAL;
        d = get_dev(s, device);
        if (!d)
                return -ENOMEM;
        if (!d->have_last)
                return -ENOENT;
        *ret = d->last;
        return 0;
}

int store_counter(Store *s, uint32_t device, StoreCounter *ret) {
        DevState *d;

        if (!s || !ret)
                return -EINVAL;
        d = get_dev(s, device);
        if (!d)
                return -ENOMEM;
        if (!d->have_counter)
                return -ENOENT;
        *ret = d->counter;
        return 0;
}

