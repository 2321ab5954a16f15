/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdlib.h>
#include <systemd/sd-bus.h>

#include "device.h"
#include "fire-caller.h"

typedef struct Manager Manager;

extern const sd_bus_vtable bus_manager_vtable[];
extern const sd_bus_vtable bus_device_vtable[];
extern const sd_bus_vtable bus_energy_vtable[];
extern const sd_bus_vtable bus_schedule_vtable[];
/* Fire's caller check on the real bus and scheduler (bus-schedule.c). */
extern const FireCallerOps bus_fire_caller_ops;
extern const sd_bus_vtable bus_manager_schedule_vtable[];

typedef struct Schedule Schedule;
/* bus-schedule.c: the schedule objects; their PropertiesChanged. */
int bus_schedule_register(Manager *m);
void bus_schedule_emit_changed(Manager *m, Schedule *s);
extern const sd_bus_vtable bus_tariff_vtable[];

/* Registers the objects, the enumerator and the object manager. */
int bus_register(Manager *m);
/* The API token methods, and the watch on connections closing. */
int bus_manager_access_register(Manager *m);
/* The tariff objects and the Manager's tariff and cost members. */
int bus_tariff_register(Manager *m);
int bus_manager_tariff_register(Manager *m);
int bus_manager_export_register(Manager *m);
int bus_manager_backup_register(Manager *m);

/* bus-alert.c: the alert objects; bus-manager-alert.c: the Manager's
 * alert methods. Firing: InterfacesAdded and AlertFired; resolution:
 * AlertResolved and InterfacesRemoved. */
typedef struct Alert Alert;
int bus_alert_register(Manager *m);
int bus_manager_alert_register(Manager *m);
void bus_alert_emit_fired(Manager *m, const Alert *a);
void bus_alert_emit_resolved(Manager *m, const Alert *a);
void bus_alert_emit_changed(Manager *m, const Alert *a);

/* Emits PropertiesChanged for what d->changes says, and clears it. */
void bus_device_emit_changed(Manager *m, Device *d);
void bus_manager_emit_total(Manager *m);

/* Reply to a method call with the error a failed device command deserves. */
int bus_reply_device_error(sd_bus_message *call, Device *d, int error, int32_t device_err);
int bus_set_device_error(sd_bus_error *e, Device *d, int error, int32_t device_err);

/* An sd-bus property getter for a char * field (offsetof), NULL read as "". */
int bus_property_get_string_ptr(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error);

/* The string arrays sd_bus_message_read_strv() hands out: malloc'd, NULL
 * terminated. */
static inline void strv_freep(char ***l) {
        if (*l)
                for (char **p = *l; *p; p++)
                        free(*p);
        free(*l);
}

static inline size_t strv_length(char **l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}
