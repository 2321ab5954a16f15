/* SPDX-License-Identifier: MIT */

#include "store-log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32.h"
#include "macro.h"

#define ALIGN_TO(x, a) (((x) + (a) - 1) / (a) * (a))

/* Spare segments kept for reuse; more are deleted. */
#define SPARES_MAX 2

typedef struct Segment {
        uint64_t first_seq;
} Segment;

struct StoreLog {
        int dir_fd;
        size_t segment_bytes;
        Segment *segs;          /* live segments, by first seq; the last is written */
        size_t n_segs;
        uint64_t *spares;       /* first seqs (names) of reusable segments */
        size_t n_spares;
        int fd;                 /* of the last live segment, -1 before the first write */
        size_t offset;          /* where the next record goes in it */
        uint64_t next_seq;
};

static void put_le32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
        for (unsigned i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p) {
        uint32_t v = 0;
        for (unsigned i = 0; i < 4; i++)
                v |= (uint32_t) p[i] << (8 * i);
        return v;
}

static uint64_t get_le64(const uint8_t *p) {
        uint64_t v = 0;
        for (unsigned i = 0; i < 8; i++)
                v |= (uint64_t) p[i] << (8 * i);
        return v;
}

void log_frame(uint8_t *buf, uint64_t seq, const uint8_t *payload, size_t size) {
        put_le32(buf, (uint32_t) size);
        put_le64(buf + 8, seq);
        memmove(buf + LOG_HEADER_SIZE, payload, size);
        put_le32(buf + 4, crc32_update(crc32_update(0, buf + 8, 8), buf + LOG_HEADER_SIZE, size));
}

static void segment_name(uint64_t seq, char buf[static 32]) {
        snprintf(buf, 32, "log.%016" PRIx64, seq);
}

static int parse_name(const char *name, uint64_t *ret) {
        char *end;

        if (strncmp(name, "log.", 4) != 0 || strlen(name) != 20)
                return -EINVAL;
        errno = 0;
        *ret = strtoull(name + 4, &end, 16);
        return errno || *end ? -EINVAL : 0;
}

static int u64_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return (x > y) - (x < y);
}

StoreLog *log_free(StoreLog *l) {
        if (!l)
                return NULL;
        if (l->fd >= 0)
                close(l->fd);
        free(l->segs);
        free(l->spares);
        free(l);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(StoreLog *, log_free);

static int add_spare(StoreLog *l, uint64_t name) {
        char buf[32];

        if (l->n_spares >= SPARES_MAX) {
                segment_name(name, buf);
                if (unlinkat(l->dir_fd, buf, 0) < 0 && errno != ENOENT)
                        return -errno;
                return 0;
        }
        uint64_t *t = reallocarray(l->spares, l->n_spares + 1, sizeof(uint64_t));
        if (!t)
                return -ENOMEM;
        l->spares = t;
        l->spares[l->n_spares++] = name;
        return 0;
}

/* Whether an intact record with this seq starts at off. */
static bool record_at(const uint8_t *data, size_t size, size_t off, uint64_t seq) {
        uint32_t len = get_le32(data + off), crc = get_le32(data + off + 4);

        return len > 0 && len <= size - off - LOG_HEADER_SIZE && get_le64(data + off + 8) == seq &&
               crc32_update(crc32_update(0, data + off + 8, 8), data + off + LOG_HEADER_SIZE, len) == crc;
}

/* Reads the intact records of one segment starting at seq; returns the
 * offset after the last and sets *seq past it. */
static int replay_segment(StoreLog *l, int fd, uint64_t *seq, uint64_t after_seq, LogReplayFunc f, void *userdata,
                          size_t *ret_end) {
        _cleanup_free_ uint8_t *data = malloc(l->segment_bytes);
        size_t size = 0, off = 0;
        int r;

        if (!data)
                return -ENOMEM;
        while (size < l->segment_bytes) {
                ssize_t k = pread(fd, data + size, l->segment_bytes - size, (off_t) size);
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        while (off + LOG_HEADER_SIZE <= size) {
                if (!record_at(data, size, off, *seq)) {
                        /* After a sync the writer goes on at the next page
                         * (log_pad()): look there before calling it the end. */
                        size_t next = ALIGN_TO(off, LOG_PAGE_BYTES);
                        if (next == off || next + LOG_HEADER_SIZE > size || !record_at(data, size, next, *seq))
                                break;
                        off = next;
                }
                uint32_t len = get_le32(data + off);
                uint64_t s = get_le64(data + off + 8);

                if (s > after_seq) {
                        r = f(s, data + off + LOG_HEADER_SIZE, len, userdata);
                        if (r < 0)
                                return r;
                }
                off += LOG_HEADER_SIZE + len;
                (*seq)++;
        }
        *ret_end = off;
        return 0;
}

int log_open(int dir_fd, size_t segment_bytes, uint64_t after_seq, LogReplayFunc f, void *userdata,
             StoreLog **ret, uint64_t *ret_next_seq) {
        _cleanup_(log_freep) StoreLog *l = NULL;
        _cleanup_free_ uint64_t *names = NULL;
        size_t n = 0, end = 0;
        uint64_t seq = 0;
        DIR *d;
        int r;

        l = calloc(1, sizeof(StoreLog));
        if (!l)
                return -ENOMEM;
        l->dir_fd = dir_fd;
        l->segment_bytes = segment_bytes;
        l->fd = -1;

        r = dup(dir_fd);
        if (r < 0)
                return -errno;
        d = fdopendir(r);
        if (!d) {
                close(r);
                return -errno;
        }
        for (struct dirent *e; (e = readdir(d));) {
                uint64_t v;
                if (parse_name(e->d_name, &v) < 0)
                        continue;
                uint64_t *t = reallocarray(names, n + 1, sizeof(uint64_t));
                if (!t) {
                        closedir(d);
                        return -ENOMEM;
                }
                names = t;
                names[n++] = v;
        }
        closedir(d);
        if (n > 0)
                qsort(names, n, sizeof(uint64_t), u64_cmp);

        l->segs = calloc(MAX(n, (size_t) 1), sizeof(Segment));
        if (!l->segs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char buf[32];
                int fd;

                /* A segment that does not start where the previous one
                 * ended is stale (it follows a torn record), and so is one
                 * wholly checkpointed. */
                if ((l->n_segs > 0 && names[i] != seq) ||
                    (i + 1 < n && names[i + 1] <= after_seq + 1)) {
                        r = add_spare(l, names[i]);
                        if (r < 0)
                                return r;
                        continue;
                }
                segment_name(names[i], buf);
                fd = openat(dir_fd, buf, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                seq = names[i];
                r = replay_segment(l, fd, &seq, after_seq, f, userdata, &end);
                if (r < 0) {
                        close(fd);
                        return r;
                }
                l->segs[l->n_segs++] = (Segment) { .first_seq = names[i] };
                if (l->fd >= 0)
                        close(l->fd);
                l->fd = fd;
                l->offset = end;
        }

        l->next_seq = MAX(seq, after_seq + 1);
        if (l->n_segs > 0 && l->next_seq != seq) {
                /* Everything logged is checkpointed and the store's count
                 * moved on: the next record starts a new segment. */
                close(l->fd);
                l->fd = -1;
        }
        *ret_next_seq = l->next_seq;
        *ret = TAKE_PTR(l);
        return 0;
}

static int zero_fill(int fd, size_t size) {
        static const uint8_t zeros[65536];

        for (size_t off = 0; off < size;) {
                ssize_t k = pwrite(fd, zeros, MIN(sizeof zeros, size - off), (off_t) off);
                if (k < 0)
                        return -errno;
                off += (size_t) k;
        }
        return fsync(fd) < 0 ? -errno : 0;
}

/* Starts the segment whose first record is l->next_seq: a spare renamed,
 * or a new file written with zeros. */
static int start_segment(StoreLog *l) {
        char name[32], old[32];
        int fd, r;

        segment_name(l->next_seq, name);
        if (l->n_spares > 0) {
                segment_name(l->spares[l->n_spares - 1], old);
                if (renameat(l->dir_fd, old, l->dir_fd, name) < 0)
                        return -errno;
                l->n_spares--;
                fd = openat(l->dir_fd, name, O_RDWR | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                /* A stale first record could carry any old seq, never this
                 * one; still, a clean start costs one page. */
        } else {
                _cleanup_close_ int nfd = openat(l->dir_fd, ".log.new", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (nfd < 0)
                        return -errno;
                r = zero_fill(nfd, l->segment_bytes);
                if (r < 0) {
                        (void) unlinkat(l->dir_fd, ".log.new", 0);
                        return r;
                }
                if (renameat(l->dir_fd, ".log.new", l->dir_fd, name) < 0)
                        return -errno;
                fd = TAKE_FD(nfd);
        }
        if (fsync(l->dir_fd) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        Segment *t = reallocarray(l->segs, l->n_segs + 1, sizeof(Segment));
        if (!t) {
                close(fd);
                return -ENOMEM;
        }
        l->segs = t;
        l->segs[l->n_segs++] = (Segment) { .first_seq = l->next_seq };
        if (l->fd >= 0)
                close(l->fd);
        l->fd = fd;
        l->offset = 0;
        return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, size_t off) {
        while (n > 0) {
                ssize_t k = pwrite(fd, p, n, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
                off += (size_t) k;
        }
        return 0;
}

int log_write(StoreLog *l, const uint8_t *records, size_t size, size_t *ret_done) {
        int r;

        *ret_done = 0;
        while (*ret_done < size) {
                size_t chunk = 0;
                uint64_t seqs = 0;

                if (l->fd < 0) {
                        r = start_segment(l);
                        if (r < 0)
                                return r;
                }
                /* As many whole records as fit in the current segment. */
                while (*ret_done + chunk < size) {
                        size_t len = LOG_HEADER_SIZE + get_le32(records + *ret_done + chunk);
                        if (len > l->segment_bytes)
                                return -E2BIG;
                        if (l->offset + chunk + len > l->segment_bytes)
                                break;
                        chunk += len;
                        seqs++;
                }
                if (chunk == 0) {
                        /* The full segment is made durable before the next
                         * one starts: replay stops at its first torn record. */
                        r = log_sync(l);
                        if (r < 0)
                                return r;
                        r = start_segment(l);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = write_all(l->fd, records + *ret_done, chunk, l->offset);
                if (r < 0)
                        return r;
                l->offset += chunk;
                l->next_seq += seqs;
                *ret_done += chunk;
        }
        return 0;
}

int log_sync(StoreLog *l) {
        if (l->fd >= 0 && fdatasync(l->fd) < 0)
                return -errno;
        return 0;
}

void log_pad(StoreLog *l) {
        size_t next = ALIGN_TO(l->offset, LOG_PAGE_BYTES);

        if (l->fd >= 0 && next <= l->segment_bytes)
                l->offset = next;
}

void log_release(StoreLog *l, uint64_t seq) {
        /* A segment is done when the next one starts at or below seq + 1;
         * the last one stays, it is being written. */
        while (l->n_segs > 1 && l->segs[1].first_seq <= seq + 1) {
                if (add_spare(l, l->segs[0].first_seq) < 0)
                        break;
                memmove(l->segs, l->segs + 1, (l->n_segs - 1) * sizeof(Segment));
                l->n_segs--;
        }
}

uint64_t log_next_seq(const StoreLog *l) {
        return l->next_seq;
}
