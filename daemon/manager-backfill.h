/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Backfill: the days a metered device counted before kasamond recorded
 * it, read from the device's own day statistics and stored as imported
 * days (store_import_days()). The requests go over the device's
 * connection with its polls, never blocking the loop; the store write
 * runs on a worker thread. Rules: backfill.h.
 */

#include "manager.h"

/* error 0 with imported (days written: new, or changed since the last
 * backfill), or a negative errno with message (NULL when strerror says
 * it) and, for a device-side refusal, device_err. */
typedef void (*ManagerBackfillFn)(Manager *m, int error, int32_t device_err, const char *message, unsigned imported,
                                  void *userdata);

/* Backfills d: a metered plug or outlet, or each metered outlet of a
 * strip, one after the other. -ENOTTY for a device without a meter,
 * -EBUSY while a backfill of the same plug or strip runs; cb is called
 * once, from the loop, never from inside this call. */
int manager_backfill(Manager *m, Device *d, ManagerBackfillFn cb, void *userdata);
/* A new device's backfill, once it answered its first poll; the result
 * is logged. */
void manager_backfill_first_sight(Manager *m, Device *root);
/* Cancels what runs (their callbacks see -ECANCELED) and stops the
 * worker thread: before the store closes. */
void manager_backfill_stop(Manager *m);
