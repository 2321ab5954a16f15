/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "export-manager.h"
#include "kasa-dbus.h"
#include "log.h"
#include "macro.h"

/* Manager.Export: a third vtable on the Manager's path and interface. */

static int method_export(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(strv_freep) char **paths = NULL, **fields = NULL;
        _cleanup_free_ char *message = NULL;
        Manager *mgr = userdata;
        const char *resolution, *format;
        uint64_t since, until;
        int fd = -EBADF, costs, r;

        r = sd_bus_message_read_strv(m, &paths);
        if (r >= 0)
                r = sd_bus_message_read(m, "ttss", &since, &until, &resolution, &format);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &fields);
        if (r >= 0)
                r = sd_bus_message_read(m, "b", &costs);
        if (r < 0)
                return r;
        if (since > (uint64_t) INT64_MAX / 2 || until > (uint64_t) INT64_MAX / 2)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Time out of range.");
        int64_t from_ms = (int64_t) (since / 1000), to_ms = until == 0 ? manager_now_ms(mgr) + 1 : (int64_t) (until / 1000);
        if (from_ms >= to_ms)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Empty time range: 'since' must be before 'until'.");
        r = manager_export(mgr, (const char *const *) paths, strv_length(paths), from_ms, to_ms, resolution, format,
                           (const char *const *) fields, strv_length(fields), costs, &fd, &message);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s", message ?: strerror(-r));
        if (r == -ENOENT || r == -ENODATA)
                return sd_bus_error_setf(error, KASA_ERROR_NOT_FOUND, "%s", message ?: strerror(-r));
        if (r == -ENOTTY)
                return sd_bus_error_setf(error, KASA_ERROR_NOT_METERED, "%s", message ?: strerror(-r));
        if (r == -EAGAIN)
                return sd_bus_error_setf(error, KASA_ERROR_LIMIT, "%s", message ?: strerror(-r));
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to start the export: %s", message ?: strerror(-r));
        r = sd_bus_reply_method_return(m, "h", fd);
        close(fd);      /* the reply holds its own copy */
        return r;
}

static const sd_bus_vtable bus_manager_export_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Export",
                                SD_BUS_ARGS("ao", devices, "t", since, "t", until, "s", resolution, "s", format,
                                            "as", fields, "b", costs),
                                SD_BUS_RESULT("h", data), method_export, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

int bus_manager_export_register(Manager *m) {
        int r = sd_bus_add_object_vtable(m->bus, NULL, KASA_MANAGER_PATH, KASA_MANAGER_IFACE,
                                         bus_manager_export_vtable, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the manager's export method: %m");
        return 0;
}
