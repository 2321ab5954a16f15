/* SPDX-License-Identifier: MIT */
#pragma once

/* What the parts of the manager (manager.c, manager-devices.c,
 * manager-ops.c, manager-describe.c) call of each other; not for the rest
 * of the daemon. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "manager.h"

/* manager-devices.c */
int manager_load_devices(Manager *m);
void manager_free_root(Manager *m, Device *d);
/* The registry is written from the loop: a change marks the device, a
 * deferred event saves every marked device in one transaction; a batch
 * (a discovery run) holds new devices' saves in one transaction. */
void manager_mark_dirty(Manager *m, Device *d);
void manager_save_dirty(Manager *m);
void manager_batch_begin(Manager *m);
void manager_batch_end(Manager *m);

/* manager-ops.c */
int manager_on_rediscover(sd_event_source *s, uint64_t usec, void *userdata);
void manager_on_address_change(void *userdata);
/* Drops d from the answers of Discover calls in progress. */
void manager_ops_forget(Manager *m, Device *d);
/* Answers every operation in progress with -ECANCELED and frees it. */
void manager_ops_cancel(Manager *m);
