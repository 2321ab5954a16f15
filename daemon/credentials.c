/* SPDX-License-Identifier: MIT */

#include "credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

#define error_string(ret_error, ...) error_set(ret_error, 0, __VA_ARGS__)

static void wipe_free(char *s) {
        if (s) {
                OPENSSL_cleanse(s, strlen(s));
                free(s);
        }
}

void credentials_done(Credentials *c) {
        wipe_free(c->user);
        wipe_free(c->password);
        *c = (Credentials) {};
}

static int read_file(const char *path, Credentials *ret, char **ret_error) {
        char buf[2 * CREDENTIALS_LINE_MAX + 4];
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t n;
        char *nl, *pw, *end;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode)) {
                error_string(ret_error, "%s is not a regular file", path);
                return -EBADMSG;
        }
        if (st.st_mode & (S_IRWXG | S_IRWXO)) {
                error_string(ret_error, "%s is accessible by group or others (mode %03o): chmod 600 it", path,
                             (unsigned) (st.st_mode & 0777));
                return -EPERM;
        }
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        r = -EBADMSG;
        if ((size_t) n == sizeof(buf) - 1 || memchr(buf, 0, (size_t) n))
                goto bad;
        nl = strchr(buf, '\n');
        if (!nl || nl == buf)
                goto bad;
        *nl = 0;
        pw = nl + 1;
        end = strchr(pw, '\n');
        if (end) {
                *end = 0;
                if (end[1] && strspn(end + 1, "\n") != strlen(end + 1))
                        goto bad;
        }
        if (strlen(buf) > CREDENTIALS_LINE_MAX || strlen(pw) > CREDENTIALS_LINE_MAX || strchr(buf, '\r') ||
            strchr(pw, '\r'))
                goto bad;
        ret->user = strdup(buf);
        ret->password = strdup(pw);
        OPENSSL_cleanse(buf, sizeof(buf));
        if (!ret->user || !ret->password) {
                credentials_done(ret);
                return -ENOMEM;
        }
        return 0;
bad:
        OPENSSL_cleanse(buf, sizeof(buf));
        error_string(ret_error,
                     "%s must hold two lines of at most %d bytes: the TP-Link account's e-mail, then its password",
                     path, CREDENTIALS_LINE_MAX);
        return r;
}

int credentials_load(const char *credentials_dir, const char *file, Credentials *ret, char **ret_error) {
        int r;

        *ret = (Credentials) {};
        *ret_error = NULL;
        if (credentials_dir && credentials_dir[0]) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", credentials_dir, CREDENTIALS_NAME) < 0)
                        return -ENOMEM;
                r = read_file(path, ret, ret_error);
                if (r != -ENOENT) {
                        if (r < 0 && !*ret_error)
                                error_string(ret_error, "cannot read %s: %s", path, strerror(-r));
                        return r;
                }
        }
        if (!file || !file[0])
                return 0;
        r = read_file(file, ret, ret_error);
        if (r == -ENOENT)
                return 0;
        if (r < 0 && !*ret_error)
                error_string(ret_error, "cannot read %s: %s", file, strerror(-r));
        return r;
}
