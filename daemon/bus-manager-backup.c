/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <string.h>

#include "backup-manager.h"
#include "bus.h"
#include "kasa-dbus.h"
#include "log.h"
#include "macro.h"
#include "polkit.h"

/* Manager.Backup and Manager.Restore: a vtable of their own on the
 * Manager's path and interface. */

static int method_backup(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        int fd, r;

        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0)
                return r;
        /* A backup holds every token's hash: who may manage tokens. */
        r = polkit_check(mgr->polkit, m, KASA_ACTION_MANAGE_ACCESS, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_backup_start(mgr, fd, m);
        if (r == -EBUSY)
                return sd_bus_error_setf(error, KASA_ERROR_IN_USE, "A backup is being written already.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to start the backup: %s", strerror(-r));
        return 1; /* the reply comes when the archive is written */
}

static int method_restore(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *message = NULL;
        Manager *mgr = userdata;
        int fd, r;

        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0)
                return r;
        r = polkit_check(mgr->polkit, m, KASA_ACTION_ERASE_DATA, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        r = manager_restore(mgr, fd, &message);
        if (r == -EBADMSG)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s", message ?: "Not a kasamond backup.");
        if (r == -EBUSY)
                return sd_bus_error_setf(error, KASA_ERROR_IN_USE, "A restore is being put in place already.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to restore: %s", message ?: strerror(-r));
        r = sd_bus_reply_method_return(m, NULL);
        if (r >= 0)
                r = sd_bus_flush(sd_bus_message_get_bus(m));
        if (r < 0)
                log_warning_errno(r, "Failed to reply to Restore(), ignoring: %m");
        return sd_event_exit(mgr->event, 0);
}

static const sd_bus_vtable bus_manager_backup_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Backup", SD_BUS_ARGS("h", archive), SD_BUS_NO_RESULT, method_backup,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Restore", SD_BUS_ARGS("h", archive), SD_BUS_NO_RESULT, method_restore,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_manager_backup_register(Manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, KASA_MANAGER_PATH, KASA_MANAGER_IFACE,
                                         bus_manager_backup_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager's backup methods: %m");
        return 0;
}
