/* SPDX-License-Identifier: MIT */

/* The TP-Link credentials file (daemon/credentials.c). */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"
#include "macro.h"
#include "tap.h"

static char dir[] = "/tmp/test-credentials-XXXXXX";

static void write_file(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text) || fchmod(fd, mode) < 0)
                abort();
        close(fd);
}

int main(void) {
        char file[128], creddir[128], cred[160];
        Credentials c;
        char *error;

        if (!mkdtemp(dir))
                return EXIT_FAILURE;
        snprintf(file, sizeof(file), "%s/tplink-credentials", dir);
        snprintf(creddir, sizeof(creddir), "%s/creds", dir);
        snprintf(cred, sizeof(cred), "%s/%s", creddir, CREDENTIALS_NAME);
        if (mkdir(creddir, 0700) < 0)
                return EXIT_FAILURE;

        ok(credentials_load(NULL, file, &c, &error) == 0 && !c.user && !c.password && !error,
           "missing file: no credentials, no error");
        ok(credentials_load(creddir, file, &c, &error) == 0 && !c.user, "empty credentials directory: none either");

        write_file(file, "me@example.com\ns3cret pass\n", 0600);
        ok(credentials_load(NULL, file, &c, &error) == 0 && c.user && strcmp(c.user, "me@example.com") == 0 &&
           strcmp(c.password, "s3cret pass") == 0, "mode 600: user and password, spaces kept");
        credentials_done(&c);
        write_file(file, "me@example.com\nno newline", 0600);
        ok(credentials_load(NULL, file, &c, &error) == 0 && strcmp(c.password, "no newline") == 0,
           "no final newline is fine");
        credentials_done(&c);
        write_file(file, "me@example.com\n\n", 0600);
        ok(credentials_load(NULL, file, &c, &error) == 0 && strcmp(c.password, "") == 0,
           "an empty password is a password");
        credentials_done(&c);

        write_file(file, "me@example.com\ns3cret\n", 0644);
        is_int(credentials_load(NULL, file, &c, &error), -EPERM, "world-readable file refused");
        ok(error && strstr(error, "chmod 600") && !strstr(error, "s3cret"), "... saying what to do: %s",
           error ?: "(null)");
        ok(!c.user && !c.password, "... and nothing taken from it");
        free(error);

        write_file(file, "only-one-line", 0600);
        is_int(credentials_load(NULL, file, &c, &error), -EBADMSG, "one line refused");
        ok(error && strstr(error, "two lines") && !strstr(error, "only-one-line"),
           "... with a message that does not echo the content: %s", error ?: "(null)");
        free(error);
        write_file(file, "a\nb\nc\n", 0600);
        is_int(credentials_load(NULL, file, &c, &error), -EBADMSG, "three lines refused");
        free(error);

        write_file(file, "file@example.com\nfrom-file\n", 0600);
        write_file(cred, "cred@example.com\nfrom-credential\n", 0400);
        ok(credentials_load(creddir, file, &c, &error) == 0 && strcmp(c.user, "cred@example.com") == 0,
           "$CREDENTIALS_DIRECTORY/tplink wins over File=");
        credentials_done(&c);

        unlink(cred);
        unlink(file);
        rmdir(creddir);
        rmdir(dir);
        return done_testing();
}
