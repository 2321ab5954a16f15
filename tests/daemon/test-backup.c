/* SPDX-License-Identifier: MIT */
/* The backup archive (backup.c): written, read back and staged; `tar`
 * lists it; damaged, cut, foreign and padded-with-garbage archives are
 * refused with a message that says what is wrong. */

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup-manager.h"
#include "backup.h"
#include "tap.h"

typedef struct Buf {
        const char *p;
        size_t left;
} Buf;

static ssize_t read_buf(void *userdata, void *out, size_t n) {
        Buf *b = userdata;
        n = n > b->left ? b->left : n;
        memcpy(out, b->p, n);
        b->p += n;
        b->left -= n;
        return (ssize_t) n;
}

static char *slurp(const char *path, size_t *ret_size) {
        FILE *f = fopen(path, "re");
        char *p = NULL;
        size_t a = 0;
        if (!f)
                return NULL;
        fseek(f, 0, SEEK_END);
        a = (size_t) ftell(f);
        rewind(f);
        p = malloc(a + 1);
        if (p && fread(p, 1, a, f) != a) {
                free(p);
                p = NULL;
        }
        fclose(f);
        *ret_size = a;
        return p;
}

static int read_archive(const char *data, size_t size, const char *stage, BackupManifest *m, char **err) {
        Buf b = { data, size };
        return backup_archive_read(read_buf, &b, stage, m, err);
}

/* Reads an archive expecting a refusal whose message holds want. */
static void refused(const char *data, size_t size, const char *want, const char *what) {
        BackupManifest m;
        char *err = NULL;
        int r = read_archive(data, size, NULL, &m, &err);
        if (r != -EBADMSG || !err || !strstr(err, want))
                diag("r=%d err=%s", r, err ?: "(none)");
        ok(r == -EBADMSG && err && strstr(err, want), "%s: refused, saying \"%s\"", what, want);
        free(err);
}

int main(void) {
        char dir[] = "/tmp/test-backup-XXXXXX", stage[] = "/tmp/test-backup-stage-XXXXXX";
        char path[512], cmd[1200];
        sqlite3 *db = NULL;

        ok(mkdtemp(dir) && mkdtemp(stage), "setup");
        snprintf(path, sizeof path, "%s/devices.sqlite", dir);
        ok(sqlite3_open(path, &db) == SQLITE_OK &&
                   sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES ('hello'); PRAGMA user_version = 3", NULL,
                                NULL, NULL) == SQLITE_OK,
           "a SQLite file");
        sqlite3_close(db);
        snprintf(path, sizeof path, "%s/readings", dir);
        mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/readings/data.mdb", dir);
        FILE *f = fopen(path, "we");
        for (int i = 0; f && i < 100000; i++)
                fprintf(f, "%d,", i); /* not a block multiple: padding */
        ok(f && fclose(f) == 0, "a readings file");

        BackupFile files[] = { { .name = "devices.sqlite", .schema = 3 }, { .name = "readings/data.mdb", .schema = -1 } };
        snprintf(path, sizeof path, "%s/archive.tar", stage);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        char *err = NULL;
        ok(fd >= 0 && backup_archive_write(fd, dir, files, 2, "0.1.0", UINT64_C(1764640000000000), &err) == 0,
           "write an archive");
        close(fd);
        size_t size = 0;
        char *data = slurp(path, &size);
        ok(data && size % 512 == 0, "the archive is whole 512-byte blocks (%zu bytes)", size);

        snprintf(cmd, sizeof cmd, "tar tf %s 2>&1", path);
        FILE *p = popen(cmd, "r");
        char listing[512] = "";
        size_t n = p ? fread(listing, 1, sizeof listing - 1, p) : 0;
        listing[n] = 0;
        ok(p && pclose(p) == 0 && strcmp(listing, "MANIFEST.json\ndevices.sqlite\nreadings/data.mdb\n") == 0,
           "tar lists it: the manifest first, then the files");

        BackupManifest m;
        int r = read_archive(data, size, stage, &m, &err);
        if (r < 0)
                diag("%s", err ?: "");
        ok(r == 0 && m.n_files == 2 && strcmp(m.version, "0.1.0") == 0 && m.created_usec == UINT64_C(1764640000000000) &&
                   m.files[0].schema == 3 && m.files[1].schema == -1,
           "read back: the manifest's version, time, files and schema");
        snprintf(cmd, sizeof cmd, "cmp -s %s/devices.sqlite %s/devices.sqlite && cmp -s %s/readings/data.mdb "
                                  "%s/readings/data.mdb", dir, stage, dir, stage);
        ok(system(cmd) == 0, "staged files are the originals");

        /* Padding to tar's 10 KiB records is fine; anything else after
         * the end is not. */
        char *padded = calloc(1, size + 10240);
        memcpy(padded, data, size);
        ok(read_archive(padded, size + 10240, NULL, &m, &err) == 0, "zeros after the end blocks are accepted");
        padded[size + 100] = 'x';
        refused(padded, size + 10240, "data after its end", "garbage after the end");
        free(padded);

        char *bad = malloc(size);
        /* A byte of the readings changed (the third member's data). */
        memcpy(bad, data, size);
        bad[size - 4096] ^= 1;
        refused(bad, size, "readings/data.mdb is damaged: its SHA-256", "a changed data byte");
        memcpy(bad, data, size);
        bad[10] ^= 1;
        refused(bad, size, "checksum is wrong", "a changed header byte");
        refused(data, size / 2, "cut short", "a cut archive");
        refused(data, 0, "empty", "an empty file");
        refused("hello world, not a tar", 22, "cut short", "a text file");

        /* A tar of something else. */
        snprintf(cmd, sizeof cmd, "cd %s && tar cf other.tar devices.sqlite", dir);
        size_t osize = 0;
        char opath[600];
        snprintf(opath, sizeof opath, "%s/other.tar", dir);
        char *other = system(cmd) == 0 ? slurp(opath, &osize) : NULL;
        refused(other ? other : "", osize, "Not a kasamond backup", "another tar archive");
        free(other);

        /* A manifest of another format version: the manifest's text is
         * edited and its header checksum made right again. */
        memcpy(bad, data, size);
        char *fmt = memmem(bad, 1024, "kasamond-backup/1", 17);
        ok(fmt != NULL, "the manifest names its format");
        if (fmt) {
                fmt[16] = '9';
                unsigned sum = 0;
                memset(bad + 148, ' ', 8);
                for (int i = 0; i < 512; i++)
                        sum += (unsigned char) bad[i];
                snprintf(bad + 148, 8, "%06o", sum);
                refused(bad, size, "format \"kasamond-backup/9\"", "a future format version");
        }
        free(bad);
        free(data);

        /* A restore that crashed after the new readings were moved in,
         * before the old ones were deleted: the next start finishes it
         * and leaves no readings.old behind. */
        snprintf(cmd, sizeof cmd,
                 "cd %s && rm -rf restore.staged readings readings.old && mkdir -p restore.staged readings readings.old &&"
                 " printf 'readings/data.mdb\\n' > restore.staged/NAMES && echo new > readings/data.mdb &&"
                 " echo old > readings.old/data.mdb",
                 stage);
        ok(system(cmd) == 0, "a restore that crashed between its last two steps");
        ok(backup_apply_staged(stage) == 0, "the next start applies what is left");
        snprintf(path, sizeof path, "%s/readings.old", stage);
        ok(access(path, F_OK) < 0, "readings.old is gone");
        snprintf(path, sizeof path, "%s/readings/data.mdb", stage);
        size_t kept_size = 0;
        char *kept = slurp(path, &kept_size);
        ok(kept && kept_size == 4 && memcmp(kept, "new\n", 4) == 0, "the restored readings stay");
        free(kept);
        snprintf(path, sizeof path, "%s/restore.staged", stage);
        ok(access(path, F_OK) < 0, "nothing staged is left");

        snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, stage);
        ok(system(cmd) == 0, "cleanup");
        return done_testing();
}
