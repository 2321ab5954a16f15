/* SPDX-License-Identifier: MIT */
#pragma once

/* The manager's alerts: the rules' database, the engine (alert.h) fed once
 * per poll round, and what a firing or a resolution sets off (the row in
 * the database, the structured journal entry, the bus objects and
 * signals, the rule's hook). For the bus glue (bus-alert.c,
 * bus-manager-alert.c) to call. Failures return a negative errno with a
 * message in *ret_error (free()): -EINVAL (a bad rule), -ENOENT (no such
 * rule or device), -EEXIST (a rule's name taken). */

#include "alert.h"
#include "db-alert.h"
#include "manager.h"

/* The journal's MESSAGE_ID of firings and of resolutions
 * (`journalctl MESSAGE_ID=...`). */
#define ALERT_MESSAGE_FIRED "f194f2d158c04d4f8a321750eec67136"
#define ALERT_MESSAGE_RESOLVED "0ba8e0d4cc504ff0b7caceacdac5a990"

/* The template unit that runs a rule's hook, with the alert id as its
 * instance (systemd/kasamond-alert-hook@.service). */
#define ALERT_HOOK_UNIT_PREFIX "kasamond-alert-hook@"

typedef struct ManagerAlerts {
        AlertDb *db;
        AlertEngine *engine;
} ManagerAlerts;

int manager_alerts_open(Manager *m);
void manager_alerts_free(Manager *m);
/* Once per poll round. */
void manager_alerts_round(Manager *m);

/* r->scope: "" or a device id; sets r->id. */
int manager_alert_rule_add(Manager *m, AlertRule *r, char **ret_error);
int manager_alert_rule_remove(Manager *m, uint32_t id, char **ret_error);
/* -EALREADY: acknowledged already. */
int manager_alert_acknowledge(Manager *m, uint32_t id);

/* "/org/kasamond/Kasa1/alert/ID" of an open alert, or NULL. */
const Alert *manager_alert_find_path(Manager *m, const char *path);
char *manager_alert_path(const Alert *a);
/* The device's object path, also when it is gone. */
char *manager_alert_device_path(Manager *m, const Alert *a);
const AlertRule *manager_alert_rule(Manager *m, const Alert *a);
size_t manager_alert_count(Manager *m);
const Alert *manager_alert_get(Manager *m, size_t i);

/* JSON: every rule (ListAlertRules), every open alert (ListAlerts), one
 * alert with its rule (Describe). NULL on out of memory. */
char *manager_alert_rules_json(Manager *m);
char *manager_alerts_json(Manager *m);
char *manager_alert_describe(Manager *m, const Alert *a);
