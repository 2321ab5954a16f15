/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * kasamond's backup archive: a POSIX ustar file whose first member is
 * MANIFEST.json and whose other members are the state files it lists,
 * each once, in its order:
 *
 *   {"format": "kasamond-backup/1", "version": "0.1.0",
 *    "created_usec": 1764640000000000,
 *    "files": [{"name": "devices.sqlite", "size": 12288, "sha256": "...",
 *               "schema": 3}, ..., {"name": "readings/data.mdb", ...}]}
 *
 * Names are those of BACKUP_NAMES (SQLite files with their user_version
 * as "schema", and the LMDB file of the readings, copied compacted);
 * members are regular files of at most 8 GiB (ustar's octal size). So
 * `tar tf` lists an archive and `tar xf` unpacks it.
 *
 * The reader trusts nothing: every header's checksum, magic, type, name
 * and size is checked, the manifest parsed and its fields checked, each
 * member's size and SHA-256 compared with the manifest, and anything after
 * the end blocks refused. A refusal is -EBADMSG with what was wrong in
 * *ret_error. No D-Bus here.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define BACKUP_FORMAT "kasamond-backup/1"
#define BACKUP_MANIFEST "MANIFEST.json"
#define BACKUP_MANIFEST_MAX (64 * 1024)
#define BACKUP_MEMBER_MAX (UINT64_C(8) * 1024 * 1024 * 1024 - 1)
#define BACKUP_FILES_MAX 8

/* The members an archive may hold, as paths under the state directory. */
extern const char *const BACKUP_NAMES[];

typedef struct BackupFile {
        char name[64];
        uint64_t size;
        char sha256[65];        /* lowercase hex */
        int64_t schema;         /* -1: none */
} BackupFile;

typedef struct BackupManifest {
        char version[64];
        uint64_t created_usec;
        BackupFile files[BACKUP_FILES_MAX];
        size_t n_files;
} BackupManifest;

/* Writes an archive to fd of the files named (BACKUP_NAMES) found under
 * dir, each read twice (its checksum first, for the manifest). */
int backup_archive_write(int fd, const char *dir, const BackupFile *files, size_t n, const char *version,
                         uint64_t created_usec, char **ret_error);

/* The same through write_fn (bytes taken, or a negative errno), which may
 * wait as it likes: the daemon's gives up when told to stop. */
typedef ssize_t (*BackupWriteFn)(void *userdata, const void *buf, size_t size);
int backup_archive_write_fn(BackupWriteFn write_fn, void *userdata, const char *dir, const BackupFile *files, size_t n,
                            const char *version, uint64_t created_usec, char **ret_error);

typedef ssize_t (*BackupReadFn)(void *userdata, void *buf, size_t size);

/* Reads and checks a whole archive; with stage_dir the members are
 * written under it (readings/ is made), else only checked. */
int backup_archive_read(BackupReadFn read_fn, void *userdata, const char *stage_dir, BackupManifest *ret,
                        char **ret_error);
