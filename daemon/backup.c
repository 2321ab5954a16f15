/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "log.h"

#define BLOCK 512

const char *const BACKUP_NAMES[] = {
        "devices.sqlite", "tariffs.sqlite", "access.sqlite", "schedules.sqlite", "readings/data.mdb", NULL,
};

#define refuse(ret_error, ...) error_set(ret_error, -EBADMSG, __VA_ARGS__)

static bool name_known(const char *name) {
        for (size_t i = 0; BACKUP_NAMES[i]; i++)
                if (strcmp(name, BACKUP_NAMES[i]) == 0)
                        return true;
        return false;
}

static void hex(const unsigned char *d, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
}

/* ---- writing ---- */

typedef struct Writer {
        BackupWriteFn fn;
        void *userdata;
} Writer;

static int put(const Writer *w, const void *p, size_t n) {
        const char *c = p;
        while (n > 0) {
                ssize_t k = w->fn(w->userdata, c, n);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        return -EIO;
                c += k;
                n -= (size_t) k;
        }
        return 0;
}

static void header(char h[BLOCK], const char *name, uint64_t size, uint64_t mtime) {
        memset(h, 0, BLOCK);
        snprintf(h, 100, "%s", name);
        snprintf(h + 100, 8, "%07o", 0600);
        snprintf(h + 108, 8, "%07o", 0);
        snprintf(h + 116, 8, "%07o", 0);
        snprintf(h + 124, 12, "%011" PRIo64, size);
        snprintf(h + 136, 12, "%011" PRIo64, mtime);
        h[156] = '0';
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        memset(h + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < BLOCK; i++)
                sum += (unsigned char) h[i];
        snprintf(h + 148, 8, "%06o", sum);
        h[155] = ' ';
}

static int pad(const Writer *w, uint64_t size) {
        static const char zero[BLOCK];
        size_t rest = (size_t) (size % BLOCK);
        return rest ? put(w, zero, BLOCK - rest) : 0;
}

/* Hashes a file, or copies it to out (not NULL) too. */
static int file_pass(const char *path, const Writer *out, uint64_t *ret_size, char ret_hex[65]) {
        unsigned char buf[65536], md[32];
        unsigned mdlen = 0;
        uint64_t size = 0;
        int r = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                r = -ENOMEM;
        for (ssize_t n; r >= 0 && (n = read(fd, buf, sizeof buf)) != 0;) {
                if (n < 0) {
                        r = errno == EINTR ? 0 : -errno;
                        continue;
                }
                size += (uint64_t) n;
                if (EVP_DigestUpdate(ctx, buf, (size_t) n) != 1)
                        r = -EIO;
                if (r >= 0 && out)
                        r = put(out, buf, (size_t) n);
        }
        if (r >= 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        close(fd);
        if (r < 0)
                return r;
        *ret_size = size;
        hex(md, 32, ret_hex);
        return 0;
}

static ssize_t write_fd(void *userdata, const void *buf, size_t size) {
        for (;;) {
                ssize_t n = write(*(int *) userdata, buf, size);
                if (n < 0 && errno == EINTR)
                        continue;
                return n < 0 ? -errno : n;
        }
}

int backup_archive_write(int fd, const char *dir, const BackupFile *files, size_t n, const char *version,
                         uint64_t created_usec, char **ret_error) {
        return backup_archive_write_fn(write_fd, &fd, dir, files, n, version, created_usec, ret_error);
}

int backup_archive_write_fn(BackupWriteFn write_fn, void *userdata, const char *dir, const BackupFile *in, size_t n,
                            const char *version, uint64_t created_usec, char **ret_error) {
        const Writer w = { write_fn, userdata };
        BackupFile files[BACKUP_FILES_MAX];
        char h[BLOCK], path[4096];
        int r;

        *ret_error = NULL;
        if (n > BACKUP_FILES_MAX)
                return -EINVAL;
        json_t *list = json_array();
        for (size_t i = 0; i < n; i++) {
                files[i] = in[i];
                if (!name_known(files[i].name)) {
                        json_decref(list);
                        return -EINVAL;
                }
                snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
                r = file_pass(path, NULL, &files[i].size, files[i].sha256);
                if (r >= 0 && files[i].size > BACKUP_MEMBER_MAX)
                        r = -EFBIG;
                if (r < 0) {
                        json_decref(list);
                        (void) error_set(ret_error, 0, "Failed to read %s: %s", path, strerror(-r));
                        return r;
                }
                json_t *o = json_pack("{s:s,s:I,s:s}", "name", files[i].name, "size", (json_int_t) files[i].size,
                                      "sha256", files[i].sha256);
                if (o && files[i].schema >= 0)
                        json_object_set_new(o, "schema", json_integer(files[i].schema));
                json_array_append_new(list, o);
        }
        json_t *m = json_pack("{s:s,s:s,s:I,s:o}", "format", BACKUP_FORMAT, "version", version, "created_usec",
                              (json_int_t) created_usec, "files", list);
        char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(m);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        uint64_t mtime = created_usec / 1000000;
        header(h, BACKUP_MANIFEST, len, mtime);
        r = put(&w, h, BLOCK);
        if (r >= 0)
                r = put(&w, text, len);
        if (r >= 0)
                r = pad(&w, len);
        free(text);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                uint64_t size;
                char sum[65];
                header(h, files[i].name, files[i].size, mtime);
                r = put(&w, h, BLOCK);
                snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
                if (r >= 0)
                        r = file_pass(path, &w, &size, sum);
                /* The files are snapshots that nothing else writes. */
                if (r >= 0 && (size != files[i].size || strcmp(sum, files[i].sha256) != 0))
                        r = -ESTALE;
                if (r >= 0)
                        r = pad(&w, size);
        }
        if (r >= 0) {
                char end[2 * BLOCK] = {};
                r = put(&w, end, sizeof end);
        }
        if (r < 0)
                (void) error_set(ret_error, 0, "Failed to write the archive: %s", strerror(-r));
        return r;
}

/* ---- reading ---- */

typedef struct Reader {
        BackupReadFn fn;
        void *userdata;
} Reader;

/* Exactly n bytes; 0 at a clean end before any, -EBADMSG when cut. */
static int read_full(Reader *rd, void *buf, size_t n, bool *ret_eof) {
        size_t got = 0;
        while (got < n) {
                ssize_t k = rd->fn(rd->userdata, (char *) buf + got, n - got);
                if (k < 0)
                        return (int) k;
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        if (ret_eof)
                *ret_eof = got == 0;
        if (got == 0 && ret_eof)
                return 0;
        return got == n ? 0 : -EBADMSG;
}

static int octal(const char *f, size_t len, uint64_t *ret) {
        uint64_t v = 0;
        size_t i = 0;
        while (i < len && f[i] == ' ')
                i++;
        size_t start = i;
        for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v > (UINT64_MAX >> 3))
                        return -EBADMSG;
                v = v * 8 + (uint64_t) (f[i] - '0');
        }
        if (i == start)
                return -EBADMSG;
        for (; i < len; i++)
                if (f[i] != ' ' && f[i] != 0)
                        return -EBADMSG;
        *ret = v;
        return 0;
}

static bool all_zero(const char *b, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (b[i])
                        return false;
        return true;
}

/* One header: 1 with a member, 0 at the end blocks. */
static int read_header(Reader *rd, char *name, uint64_t *ret_size, size_t index, char **ret_error) {
        char h[BLOCK];
        bool eof;
        int r = read_full(rd, h, BLOCK, &eof);
        if (r >= 0 && eof && index == 0)
                return refuse(ret_error, "The archive is empty.");
        if (r < 0 || eof)
                return refuse(ret_error, "The archive is cut short at member %zu.", index + 1);
        if (all_zero(h, BLOCK)) {
                r = read_full(rd, h, BLOCK, &eof);
                if (r < 0 || eof || !all_zero(h, BLOCK))
                        return refuse(ret_error, "The archive's end is damaged.");
                return 0;
        }
        uint64_t sum, size;
        unsigned want = 0;
        if (octal(h + 148, 8, &sum) < 0)
                return refuse(ret_error, "Member %zu: not a tar header.", index + 1);
        for (size_t i = 0; i < BLOCK; i++)
                want += i >= 148 && i < 156 ? ' ' : (unsigned char) h[i];
        if (sum != want)
                return refuse(ret_error, "Member %zu: the header's checksum is wrong (damaged archive).", index + 1);
        if (memcmp(h + 257, "ustar", 5) != 0)
                return refuse(ret_error, "Member %zu: not a ustar header.", index + 1);
        if (h[156] != '0' && h[156] != 0)
                return refuse(ret_error, "Member %zu: not a regular file.", index + 1);
        if (memchr(h, 0, 100) == NULL || h[345] != 0)
                return refuse(ret_error, "Member %zu: a name kasamond does not write.", index + 1);
        memcpy(name, h, 100);
        if (octal(h + 124, 12, &size) < 0)
                return refuse(ret_error, "Member %zu: a bad size field.", index + 1);
        *ret_size = size;
        return 1;
}

/* Reads a member's data (and padding), hashing it and, with fd >= 0,
 * writing it; or into buf (manifest). */
static int read_data(Reader *rd, uint64_t size, int fd, char *buf, char ret_hex[65]) {
        unsigned char chunk[65536], md[32];
        unsigned mdlen = 0;
        uint64_t left = size + (size % BLOCK ? BLOCK - size % BLOCK : 0), done = 0;
        int r = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                r = -ENOMEM;
        while (r >= 0 && left > 0) {
                size_t n = left < sizeof chunk ? (size_t) left : sizeof chunk;
                r = read_full(rd, chunk, n, NULL);
                if (r < 0)
                        break;
                size_t data = done >= size ? 0 : (size - done < n ? (size_t) (size - done) : n);
                if (EVP_DigestUpdate(ctx, chunk, data) != 1)
                        r = -EIO;
                if (r >= 0 && fd >= 0)
                        r = put(&(const Writer) { write_fd, &fd }, chunk, data);
                if (buf)
                        memcpy(buf + done, chunk, data);
                done += n;
                left -= n;
        }
        if (r >= 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        if (r >= 0)
                hex(md, 32, ret_hex);
        return r;
}

static int parse_manifest(const char *text, size_t len, BackupManifest *m, char **ret_error) {
        json_error_t e;
        json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
        int r = 0;
        if (!o)
                return refuse(ret_error, "The manifest is not JSON: %s (line %d).", e.text, e.line);
        json_t *files = json_object_get(o, "files");
        const char *format = json_string_value(json_object_get(o, "format"));
        const char *version = json_string_value(json_object_get(o, "version"));
        json_t *created = json_object_get(o, "created_usec");
        if (!format || strcmp(format, BACKUP_FORMAT) != 0)
                r = refuse(ret_error, "Not a kasamond backup of a format this version reads: format %s%s%s, "
                                      "expected \"" BACKUP_FORMAT "\".",
                           format ? "\"" : "", format ?: "missing", format ? "\"" : "");
        else if (!version || strlen(version) >= sizeof m->version || !json_is_integer(created) ||
                 json_integer_value(created) < 0 || !json_is_array(files) || json_array_size(files) == 0 ||
                 json_array_size(files) > BACKUP_FILES_MAX)
                r = refuse(ret_error, "The manifest lacks its version, created_usec or files.");
        else {
                snprintf(m->version, sizeof m->version, "%s", version);
                m->created_usec = (uint64_t) json_integer_value(created);
        }
        for (size_t i = 0; r >= 0 && i < json_array_size(files); i++) {
                json_t *f = json_array_get(files, i);
                const char *name = json_string_value(json_object_get(f, "name"));
                const char *sha = json_string_value(json_object_get(f, "sha256"));
                json_t *size = json_object_get(f, "size"), *schema = json_object_get(f, "schema");
                BackupFile *bf = &m->files[i];
                if (!name || !name_known(name))
                        r = refuse(ret_error, "The manifest's file %zu is not one kasamond backs up.", i + 1);
                else if (!sha || strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64 || !json_is_integer(size) ||
                         json_integer_value(size) < 0 || (uint64_t) json_integer_value(size) > BACKUP_MEMBER_MAX ||
                         (schema && !json_is_integer(schema)))
                        r = refuse(ret_error, "The manifest's entry of %s is malformed.", name);
                else {
                        for (size_t k = 0; k < i; k++)
                                if (strcmp(m->files[k].name, name) == 0)
                                        r = refuse(ret_error, "The manifest lists %s twice.", name);
                        snprintf(bf->name, sizeof bf->name, "%s", name);
                        snprintf(bf->sha256, sizeof bf->sha256, "%s", sha);
                        bf->size = (uint64_t) json_integer_value(size);
                        bf->schema = schema ? json_integer_value(schema) : -1;
                        m->n_files = i + 1;
                }
        }
        json_decref(o);
        return r;
}

int backup_archive_read(BackupReadFn read_fn, void *userdata, const char *stage_dir, BackupManifest *ret,
                        char **ret_error) {
        Reader rd = { read_fn, userdata };
        BackupManifest m = {};
        char name[101] = {}, sum[65];
        uint64_t size;
        int r;

        *ret_error = NULL;
        r = read_header(&rd, name, &size, 0, ret_error);
        if (r == 0)
                return refuse(ret_error, "The archive holds no files.");
        if (r < 0)
                return r;
        if (strcmp(name, BACKUP_MANIFEST) != 0 || size > BACKUP_MANIFEST_MAX)
                return refuse(ret_error, "Not a kasamond backup: its first member is not " BACKUP_MANIFEST ".");
        _cleanup_free_ char *text = malloc((size_t) size + 1);
        if (!text)
                return -ENOMEM;
        r = read_data(&rd, size, -1, text, sum);
        if (r < 0)
                return r == -EBADMSG ? refuse(ret_error, "The archive is cut short in its manifest.") : r;
        r = parse_manifest(text, (size_t) size, &m, ret_error);
        if (r < 0)
                return r;
        if (stage_dir) {
                char dir[4096];
                snprintf(dir, sizeof dir, "%s/readings", stage_dir);
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return -errno;
        }
        for (size_t i = 0; i < m.n_files; i++) {
                r = read_header(&rd, name, &size, i + 1, ret_error);
                if (r == 0)
                        return refuse(ret_error, "The archive ends before %s, which its manifest lists.", m.files[i].name);
                if (r < 0)
                        return r;
                if (strcmp(name, m.files[i].name) != 0)
                        return refuse(ret_error, "Member %zu is %.100s; the manifest lists %s there.", i + 2, name,
                                      m.files[i].name);
                if (size != m.files[i].size)
                        return refuse(ret_error, "%s has %" PRIu64 " bytes; the manifest says %" PRIu64 ".", name, size,
                                      m.files[i].size);
                int fd = -1;
                if (stage_dir) {
                        char path[4096];
                        snprintf(path, sizeof path, "%s/%s", stage_dir, name);
                        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                        if (fd < 0)
                                return -errno;
                }
                r = read_data(&rd, size, fd, NULL, sum);
                if (fd >= 0 && r >= 0 && fsync(fd) < 0)
                        r = -errno;
                if (fd >= 0)
                        close(fd);
                if (r == -EBADMSG)
                        return refuse(ret_error, "The archive is cut short in %s.", name);
                if (r < 0)
                        return r;
                if (strcmp(sum, m.files[i].sha256) != 0)
                        return refuse(ret_error, "%s is damaged: its SHA-256 is not the manifest's.", name);
        }
        r = read_header(&rd, name, &size, m.n_files + 1, ret_error);
        if (r > 0)
                return refuse(ret_error, "The archive holds %.100s, which its manifest does not list.", name);
        if (r < 0)
                return r;
        char extra;
        bool eof;
        r = read_full(&rd, &extra, 1, &eof);
        /* tar pads archives to 10 KiB records with zeros. */
        while (r >= 0 && !eof && extra == 0)
                r = read_full(&rd, &extra, 1, &eof);
        if (r < 0 || !eof)
                return refuse(ret_error, "The archive has data after its end.");
        if (ret)
                *ret = m;
        return 0;
}
