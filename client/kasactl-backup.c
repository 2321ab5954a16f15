/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"

/* kasactl backup and restore: the file is opened here, with the caller's
 * rights, and its descriptor passed to kasamond. */

#define BACKUP_TIMEOUT_USEC (30ull * 60 * 1000000)

static int call_with_fd(sd_bus *bus, const char *method, const char *action, int fd, const char *what) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        int r;

        r = new_call(bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, method, true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "h", fd);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        /* A large store takes a while to copy. */
        r = sd_bus_set_method_call_timeout(bus, BACKUP_TIMEOUT_USEC);
        if (r < 0)
                return log_error_errno(r, "Failed to set the call's timeout: %m");
        return call_kasamond(bus, m, action, NULL, &reply, "%s", what);
}

int verb_backup(int argc, char **argv, void *userdata) {
        const char *path = argv[1];
        int fd, r;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create %s: %m", path);
        r = call_with_fd(userdata, "Backup", KASA_ACTION_MANAGE_ACCESS, fd, "write the backup");
        close(fd);
        if (r < 0) {
                (void) unlink(path);
                return r;
        }
        if (arg_legend)
                printf("Wrote the backup to %s.\n", path);
        return 0;
}

int verb_restore(int argc, char **argv, void *userdata) {
        const char *path = argv[1];
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Failed to open %s: %m", path);
        r = call_with_fd(userdata, "Restore", KASA_ACTION_ERASE_DATA, fd, "restore the backup");
        close(fd);
        if (r < 0)
                return r;
        if (arg_legend)
                printf("Restored %s: kasamond restarts with it.\n", path);
        return 0;
}
