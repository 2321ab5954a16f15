/* SPDX-License-Identifier: MIT */

/* Backup archives come from files users keep, copy and may mix up: the
 * reader checks every header, the manifest and every member's checksum.
 * A refusal is -EBADMSG with a message; an accepted archive has a
 * manifest of known files. */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "fuzz-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Buf {
        const uint8_t *p;
        size_t left;
} Buf;

static ssize_t read_buf(void *userdata, void *out, size_t n) {
        Buf *b = userdata;
        /* Short reads, as from a pipe. */
        n = n > b->left ? b->left : n > 700 ? 700 : n;
        memcpy(out, b->p, n);
        b->p += n;
        b->left -= n;
        return (ssize_t) n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Buf b = { data, size };
        BackupManifest m;
        char *err = NULL;

        int r = backup_archive_read(read_buf, &b, NULL, &m, &err);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EBADMSG && err && *err));
                free(err);
                return 0;
        }
        fuzz_assert(!err && m.n_files >= 1 && m.n_files <= BACKUP_FILES_MAX && b.left == 0);
        for (size_t i = 0; i < m.n_files; i++)
                fuzz_assert(strlen(m.files[i].sha256) == 64 && m.files[i].size <= BACKUP_MEMBER_MAX);
        return 0;
}
