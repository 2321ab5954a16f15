/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "db-alert.h"
#include "tap.h"

static AlertDb *db;

static void on_fired(void *userdata, const AlertRule *r, const Alert *a) {
        ok(db_alert_save(db, a) == 0, "fired alert %u saved", a->id);
}

static void on_resolved(void *userdata, const AlertRule *r, const Alert *a) {
        ok(db_alert_save(db, a) == 0, "resolved alert %u saved", a->id);
}

static const AlertEngineOps ops = { .fired = on_fired, .resolved = on_resolved };

int main(void) {
        g_autofree char *dir = g_dir_make_tmp("test-db-alert-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "alerts.sqlite", NULL);
        char *hook[] = { (char *) "notify", (char *) "--loud", NULL };
        AlertRule r1 = { .name = (char *) "freezer", .kind = ALERT_POWER_BELOW, .scope = (char *) "dev1",
                         .threshold = 5.5, .duration_usec = 600000000, .cooldown_usec = 3600000000, .hook = hook };
        AlertRule r2 = { .name = (char *) "offline", .kind = ALERT_OFFLINE, .scope = (char *) "" };
        AlertRule dup = r2;
        AlertSample s = { .device = "dev1", .online = false };
        AlertEngine *e;
        char *error = NULL;

        ok(db_alert_open(path, &db, &error) == 0, "open %s", error ?: "");
        ok(db_alert_insert_rule(db, &r1) == 0 && r1.id == 1, "first rule id 1");
        ok(db_alert_insert_rule(db, &r2) == 0 && r2.id == 2, "second rule id 2");
        ok(db_alert_insert_rule(db, &dup) == -EEXIST, "a name taken: -EEXIST");
        ok(db_alert_remove_rule(db, 2) == 0, "remove rule 2");
        ok(db_alert_remove_rule(db, 2) == -ENOENT, "twice: -ENOENT");
        ok(db_alert_insert_rule(db, &r2) == 0 && r2.id == 3, "a removed id is not reused (%u)", r2.id);

        ok(alert_engine_new(&ops, NULL, &e) == 0 && db_alert_load(db, e) == 0, "load");
        ok(alert_engine_n_rules(e) == 2, "two rules");
        const AlertRule *l = alert_engine_rule(e, 1);
        ok(l && strcmp(l->name, "freezer") == 0 && l->kind == ALERT_POWER_BELOW && strcmp(l->scope, "dev1") == 0 &&
           l->threshold == 5.5 && l->duration_usec == 600000000 && l->cooldown_usec == 3600000000 && l->hook &&
           strcmp(l->hook[1], "--loud") == 0 && !l->hook[2], "rule 1 read back whole");
        ok(alert_engine_rule(e, 3) && !alert_engine_rule(e, 3)->hook, "rule 3 without a hook");
        alert_engine_round(e, 1000, &s, 1);
        ok(alert_engine_n_alerts(e) == 1, "rule 3 fires");
        ok(alert_engine_acknowledge(e, 1) == 0 && db_alert_save(db, alert_engine_find(e, 1)) == 0, "acknowledged, saved");
        alert_engine_free(e);
        db = db_alert_free(db);

        /* kasamond restarts. */
        ok(db_alert_open(path, &db, &error) == 0, "open again");
        ok(alert_engine_new(&ops, NULL, &e) == 0 && db_alert_load(db, e) == 0, "load again");
        const Alert *a = alert_engine_find(e, 1);
        ok(a && a->rule == 3 && a->state == ALERT_ACKNOWLEDGED && a->since_usec == 1000 && strcmp(a->device, "dev1") == 0,
           "the open alert is back, acknowledged");
        s.online = true;
        alert_engine_round(e, 2000, &s, 1);
        ok(alert_engine_n_alerts(e) == 0, "and resolves");
        s.online = false;
        alert_engine_round(e, 3000, &s, 1);
        ok(alert_engine_find(e, 2) != NULL, "the next alert is id 2");
        alert_engine_free(e);
        db = db_alert_free(db);

        /* Resolved alerts are not restored. */
        ok(db_alert_open(path, &db, &error) == 0, "open a third time");
        ok(alert_engine_new(&ops, NULL, &e) == 0 && db_alert_load(db, e) == 0, "load a third time");
        ok(alert_engine_n_alerts(e) == 1 && alert_engine_find(e, 2), "only alert 2 is open");
        alert_engine_free(e);
        db = db_alert_free(db);

        /* A newer schema is refused, the file left as it is. */
        sqlite3 *raw;
        ok(sqlite3_open(path, &raw) == SQLITE_OK && sqlite3_exec(raw, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK,
           "bump the schema");
        sqlite3_close(raw);
        ok(db_alert_open(path, &db, &error) == -EPROTONOSUPPORT && error, "newer schema refused: %s", error);
        free(error);

        g_autofree char *wal = g_strconcat(path, "-wal", NULL);
        g_autofree char *shm = g_strconcat(path, "-shm", NULL);
        (void) g_unlink(wal);
        (void) g_unlink(shm);
        (void) g_unlink(path);
        (void) g_rmdir(dir);
        return done_testing();
}
