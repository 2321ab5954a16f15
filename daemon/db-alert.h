/* SPDX-License-Identifier: MIT */
#pragma once

/* Alert rules and the alerts they raised, in SQLite: alerts.sqlite in the
 * state directory, with its own PRAGMA user_version (db-sqlite.h). An
 * alert's row is written when it fires and updated when it is
 * acknowledged or resolves, so the table is also the history. Functions
 * return negative errno; the SQLite message of the last failure is in
 * db_alert_last_error(), for the caller to log once. */

#include "alert.h"

typedef struct AlertDb AlertDb;

int db_alert_open(const char *path, AlertDb **ret, char **ret_error);
AlertDb *db_alert_free(AlertDb *db);
DEFINE_TRIVIAL_CLEANUP_FUNC(AlertDb *, db_alert_free);
const char *db_alert_last_error(const AlertDb *db);

/* Every rule into e, every open alert restored, and e's next alert id. */
int db_alert_load(AlertDb *db, AlertEngine *e);
/* Sets r->id (never reused); -EEXIST for a name taken. */
int db_alert_insert_rule(AlertDb *db, AlertRule *r);
/* -ENOENT for no such rule. */
int db_alert_remove_rule(AlertDb *db, uint32_t id);
/* Inserts or updates a by id. */
int db_alert_save(AlertDb *db, const Alert *a);
