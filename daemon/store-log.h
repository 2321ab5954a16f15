/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The store's write-ahead log: fixed-size segment files "log.<first seq in
 * hex>" in the store's directory, written with zeros once when created, so
 * that appending and fdatasync() change no metadata and write only the
 * data pages. A record is
 *
 *   le32 length of the payload (> 0), le32 CRC-32 of seq and payload,
 *   le64 seq, payload
 *
 * with seq increasing by one from record to record, across segments; a
 * record follows the one before it, or starts at the next page boundary
 * (log_pad()). At open the records are read in order until the first that
 * is torn (zeros, a bad CRC or length, a seq out of order) both where the
 * previous one ended and at the next page boundary: that one and
 * everything after it are discarded. Segments whose records are all checkpointed are
 * renamed for reuse. Used by the writer thread only, except at open.
 */

#include <stddef.h>
#include <stdint.h>

#define LOG_HEADER_SIZE 16
#define LOG_SEGMENT_BYTES_DEFAULT (4u << 20)
/* What log_pad() aligns to: the page size of the file systems it runs on. */
#define LOG_PAGE_BYTES 4096u

typedef struct StoreLog StoreLog;

typedef int (*LogReplayFunc)(uint64_t seq, const uint8_t *payload, size_t size, void *userdata);

/* Opens the log in the directory fd dir_fd, calls f for each intact record
 * with seq > after_seq, in order, and prepares appending; *ret_next_seq is
 * the seq the next record must have. */
int log_open(int dir_fd, size_t segment_bytes, uint64_t after_seq, LogReplayFunc f, void *userdata,
             StoreLog **ret, uint64_t *ret_next_seq);
StoreLog *log_free(StoreLog *l);

/* Frames one record into buf[0 .. LOG_HEADER_SIZE + size). */
void log_frame(uint8_t *buf, uint64_t seq, const uint8_t *payload, size_t size);

/* Writes framed records (consecutive seqs, the first being the log's
 * next); they survive the process from then on, a power loss only after
 * log_sync(). *ret_done is the size of the leading records written, also
 * on failure: the caller retries with the rest. */
int log_write(StoreLog *l, const uint8_t *records, size_t size, size_t *ret_done);
/* fdatasync()s what was written. */
int log_sync(StoreLog *l);
/* After a sync: the next record starts at the next page boundary, so the
 * page the last one ended in, now on disk, is not written again (about
 * 2.6 kB a round for 100 plugs at 10 s). */
void log_pad(StoreLog *l);

/* Every record with seq <= seq is checkpointed: their segments may go. */
void log_release(StoreLog *l, uint64_t seq);
uint64_t log_next_seq(const StoreLog *l);
