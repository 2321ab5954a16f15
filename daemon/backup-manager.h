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
/* Waits for a backup in progress (at teardown). */
void manager_backup_free(Manager *m);

/* Manager.Restore: reads and checks the whole archive from fd into
 * restore.tmp/ in the state directory; refused (-EBADMSG, message in
 * *ret_error), it is removed and nothing changed. Accepted, it is renamed
 * restore.staged/ (the commit point) and m->restart set: the daemon then
 * stops cleanly and executes itself again, and at its start
 * (backup_apply_staged) the staged files replace the state. */
int manager_restore(Manager *m, int fd, char **ret_error);

/* At startup, before any state file is opened: puts a staged restore in
 * place. Safe to run again after a crash in the middle of it. */
int backup_apply_staged(const char *state_dir);
