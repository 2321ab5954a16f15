/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <stdlib.h>
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

typedef struct RestoreCall {
        Manager *manager;
        sd_bus_message *call;
} RestoreCall;

/* The answer to a Restore once its archive is read; a staged restore then
 * stops the loop (main executes kasamond again). */
static void restore_done(int r, const char *message, void *userdata) {
        RestoreCall *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = c->call;
        Manager *mgr = c->manager;
        int k;

        free(c);
        if (r == -ECANCELED)
                return; /* at teardown: the bus closed with the loop */
        if (r == -EBADMSG)
                k = sd_bus_reply_method_errorf(m, SD_BUS_ERROR_INVALID_ARGS, "%s", message ?: "Not a kasamond backup.");
        else if (r < 0)
                k = sd_bus_reply_method_errnof(m, r, "Failed to restore: %s", message ?: strerror(-r));
        else {
                k = sd_bus_reply_method_return(m, NULL);
                if (k >= 0)
                        k = sd_bus_flush(sd_bus_message_get_bus(m));
        }
        if (k < 0)
                log_warning_errno(k, "Failed to reply to Restore(), ignoring: %m");
        if (r >= 0)
                (void) sd_event_exit(mgr->event, 0);
}

static int method_restore(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Manager *mgr = userdata;
        int fd, r;

        r = sd_bus_message_read(m, "h", &fd);
        if (r < 0)
                return r;
        r = polkit_check(mgr->polkit, m, KASA_ACTION_ERASE_DATA, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        RestoreCall *c = malloc(sizeof(RestoreCall));
        if (!c)
                return -ENOMEM;
        *c = (RestoreCall) { mgr, sd_bus_message_ref(m) };
        r = manager_restore_start(mgr, fd, restore_done, c);
        if (r < 0) {
                sd_bus_message_unref(c->call);
                free(c);
        }
        if (r == -EBUSY)
                return sd_bus_error_setf(error, KASA_ERROR_IN_USE, "A restore is being put in place already.");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to restore: %s", strerror(-r));
        return 1; /* the reply comes when the archive is read */
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
