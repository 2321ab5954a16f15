/* SPDX-License-Identifier: MIT */

/*
 * kasamond-schedule-generator: systemd runs it as root at boot and at each
 * daemon-reload (systemd.generator(7)); it turns the units kasamond asks
 * for in SCHEDULE_UNITS_PATH into kasamond-schedule-*.timer/.service in
 * its first output directory, from fixed templates (schedule-units.h).
 * kasamond then only needs to reload systemd and start and stop units by
 * name, which polkit can limit to that prefix (kasamond(8), SECURITY).
 *
 * The file belongs to kasamond, so it is opened as carefully as any file
 * a less privileged user controls: no symbolic link, no FIFO (that would
 * hang the boot), no hard link to a file of someone else, owned by the
 * owner of its directory, and at most SCHEDULE_UNITS_FILE_MAX bytes.
 * Missing (no schedule yet, or /var not mounted this early in the boot):
 * no units, and kasamond reloads once it runs.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schedule-units.h"

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "kasamond-schedule-generator: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

static int read_units(char **ret, size_t *ret_size, const char **ret_why) {
        struct stat dst, st;
        char *buf;
        size_t done = 0;
        int dir_fd, fd;

        dir_fd = open(SCHEDULE_UNITS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                return errno == ENOENT ? 0 : -errno;
        fd = openat(dir_fd, SCHEDULE_UNITS_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                int r = errno == ENOENT ? 0 : -errno;
                close(dir_fd);
                return r;
        }
        if (fstat(dir_fd, &dst) < 0 || fstat(fd, &st) < 0) {
                int r = -errno;
                close(fd);
                close(dir_fd);
                return r;
        }
        close(dir_fd);
        *ret_why = !S_ISREG(st.st_mode)                   ? "not a regular file"
                   : st.st_nlink != 1                     ? "hard-linked"
                   : st.st_uid != dst.st_uid              ? "not owned by the owner of its directory"
                   : (st.st_mode & (S_IWGRP | S_IWOTH))   ? "writable by others"
                   : st.st_size > SCHEDULE_UNITS_FILE_MAX ? "too large"
                                                          : NULL;
        if (*ret_why) {
                close(fd);
                return -EPERM;
        }
        buf = malloc((size_t) st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        /* Reads one byte past the size seen, to notice a file that grew. */
        for (;;) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size + 1 - done);
                if (n < 0) {
                        int r = -errno;
                        free(buf);
                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                done += (size_t) n;
                if (done > (size_t) st.st_size) {
                        free(buf);
                        close(fd);
                        *ret_why = "changed while read";
                        return -EPERM;
                }
        }
        close(fd);
        *ret = buf;
        *ret_size = done;
        return 1;
}

int main(int argc, char *argv[]) {
        ScheduleUnit *units = NULL;
        char *data = NULL, *error = NULL;
        const char *why = NULL;
        size_t size = 0, n = 0;
        int dir_fd, r;

        /* systemd passes the normal, early and late output directories. */
        if (argc != 2 && argc != 4)
                return fail("expects the generator output directories (see systemd.generator(7))");
        r = read_units(&data, &size, &why);
        if (r < 0)
                return fail("Refusing " SCHEDULE_UNITS_PATH ": %s", why ? why : strerror(-r));
        if (r == 0)
                return 0;
        r = schedule_units_parse(data, size, &units, &n, &error);
        free(data);
        if (r < 0) {
                fail("Refusing " SCHEDULE_UNITS_PATH ", no schedule units made: %s", error ? error : strerror(-r));
                free(error);
                return 1;
        }
        dir_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0) {
                free(units);
                return fail("Failed to open %s: %s", argv[1], strerror(errno));
        }
        r = schedule_units_generate(dir_fd, units, n, KASACTL_PATH, &error);
        close(dir_fd);
        free(units);
        if (r < 0) {
                fail("%s", error ? error : strerror(-r));
                free(error);
                return 1;
        }
        return 0;
}
