/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-bus.h>

#include "manager.h"

/* Manager.Backup: snapshots every SQLite file (the online backup API, on
 * connections of its own) and the readings' LMDB file (compacted, after a
 * checkpoint so that the log's rounds are in it) into a staging directory
 * in the state directory, and writes the archive (backup.h) to fd, all in
 * a thread of its own: polls and recording go on. Replies to call when
 * done. -EBUSY while another backup runs. Takes nothing: fd is dup'd. */
int manager_backup_start(Manager *m, int fd, sd_bus_message *call);
/* At teardown: stops a Backup or Restore in progress (a thread waiting on
 * the caller's fd gives up; one on the disk finishes its step), left
 * unanswered (the bus closed with the loop). Bounded however the caller
 * treats its fd. */
void manager_backup_free(Manager *m);

/* How a Restore ended: 0 staged (m->restart is set: the caller stops the
 * loop), -EBADMSG refused with the reason in message, -ECANCELED kasamond
 * stopping (the bus is gone: nothing to answer), another negative errno
 * (message may say more). */
typedef void (*ManagerRestoreDone)(int r, const char *message, void *userdata);

/* Manager.Restore: reads and checks the whole archive from fd into
 * restore.tmp/ in the state directory, in a thread of its own (polls and
 * calls go on however slowly the caller writes); refused (-EBADMSG), it is
 * removed and nothing changed. Accepted, it is renamed restore.staged/
 * (the commit point) and m->restart set before done is called: the daemon
 * then stops cleanly and executes itself again, and at its start
 * (backup_apply_staged) the staged files replace the state. -EBUSY at once
 * while another restore runs or is staged. Takes nothing: fd is dup'd. */
int manager_restore_start(Manager *m, int fd, ManagerRestoreDone done, void *userdata);

/* At startup, before any state file is opened: puts a staged restore in
 * place. Safe to run again after a crash in the middle of it. */
int backup_apply_staged(const char *state_dir);
