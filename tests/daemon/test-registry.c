/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "registry.h"
#include "tap.h"

static bool streq0(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static char dir[] = "/tmp/test-registry-XXXXXX";

static char *db_path(const char *name) {
        return g_build_filename(dir, name, NULL);
}

static void remove_db(const char *path) {
        char *p;
        unlink(path);
        p = g_strconcat(path, "-wal", NULL);
        unlink(p);
        g_free(p);
        p = g_strconcat(path, "-shm", NULL);
        unlink(p);
        g_free(p);
}

static int raw_exec(const char *path, const char *sql, char *ret, size_t size) {
        sqlite3 *db;
        sqlite3_stmt *s;
        int rc = sqlite3_open(path, &db);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(s);
                if (ret)
                        snprintf(ret, size, "%s", rc == SQLITE_ROW ? (const char *) sqlite3_column_text(s, 0) : "");
                rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
                sqlite3_finalize(s);
        }
        sqlite3_close(db);
        return rc;
}

static void test_ids(void) {
        char id[REGISTRY_ID_MAX];

        ok(registry_make_id("50:C7:BF:0A:1B:2C", -1, id) == 0 && streq0(id, "50c7bf0a1b2c"), "id from a MAC with colons");
        ok(registry_make_id("50-c7-bf-0a-1b-2c", 1, id) == 0 && streq0(id, "50c7bf0a1b2c_01"), "outlet id");
        ok(registry_make_id("50C7BF0A1B2C", 99, id) == 0 && streq0(id, "50c7bf0a1b2c_99"), "bare MAC, outlet 99");

        static const char *const bad[] = { "50:C7:BF:0A:1B", "50:C7:BF:0A:1B:2C:3D", "50:C7-BF:0A:1B:2C", ":50C7BF0A1B2C",
                                           "50C7BF0A1B2C:", "50C7BF0A1B2G", "", "50:C7:BF:0A:1B:2C ", "5:0C7BF0A1B2C" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
                is_int(registry_make_id(bad[i], -1, id), -EINVAL, "bad MAC %zu refused", i);
        is_int(registry_make_id("50c7bf0a1b2c", 100, id), -EINVAL, "outlet 100 refused");
        is_int(registry_make_id(NULL, -1, id), -EINVAL, "NULL refused");
}

static RegistryDevice device(const char *id, const char *address, int64_t seen) {
        return (RegistryDevice) {
                .id = (char *) id,
                .mac = (char *) "50:C7:BF:0A:1B:2C",
                .outlet_index = -1,
                .alias = (char *) "Kettle",
                .model = (char *) "HS110(EU)",
                .hw_ver = (char *) "2.0",
                .sw_ver = (char *) "1.5.2",
                .address = (char *) address,
                .device_id = (char *) "8006ABCDEF",
                .has_emeter = true,
                .last_seen_ms = seen,
        };
}

static void test_registry(void) {
        char *path = db_path("kasamond.db");
        Registry *r = NULL;
        char *err = NULL;
        RegistryDevice got = {};

        is_int(registry_open(path, &r, &err), 0, "open creates a new database");
        if (!r) {
                diag("%s", err);
                free(err);
                g_free(path);
                return;
        }
        is_int(registry_schema_version(r), 1, "migrated to the latest schema");

        RegistryDevice d = device("50c7bf0a1b2c", "127.0.0.2", 1000);
        is_int(registry_upsert(r, &d), 0, "insert a plug");
        ok(d.number == 1 && d.first_seen_ms == 1000 && d.monitored, "number 1, first seen, monitored");

        RegistryDevice strip = device("1122334455aa", "127.0.0.3", 2000);
        registry_upsert(r, &strip);
        for (int i = 0; i < 3; i++) {
                char id[REGISTRY_ID_MAX], child[32];
                registry_make_id("11:22:33:44:55:AA", i, id);
                snprintf(child, sizeof child, "8006ABCDEF%02d", i);
                RegistryDevice o = device(id, "127.0.0.3", 2000);
                o.parent = (char *) "1122334455aa";
                o.outlet_index = i;
                o.child_id = child;
                o.has_emeter = false;
                ok(registry_upsert(r, &o) == 0 && o.number == (uint32_t) (3 + i), "outlet %d gets number %d", i, 3 + i);
        }

        /* seen again at a new address */
        d = device("50c7bf0a1b2c", "127.0.0.9:10000", 5000);
        d.alias = NULL; /* not reported this time: kept */
        is_int(registry_upsert(r, &d), 0, "update the plug");
        ok(d.number == 1 && d.first_seen_ms == 1000, "new address keeps number and first_seen");
        is_int(registry_get(r, "50c7bf0a1b2c", &got), 0, "get");
        is_str(got.address, "127.0.0.9:10000", "address updated");
        is_str(got.alias, "Kettle", "unreported alias kept");
        ok(got.last_seen_ms == 5000 && got.outlet_index == -1 && got.has_emeter && !got.parent, "fields read back");
        is_str(got.device_id, "8006ABCDEF", "device id");
        registry_device_done(&got);

        is_int(registry_set_alias(r, "50c7bf0a1b2c", "Tea"), 0, "set alias");
        is_int(registry_set_monitored(r, "50c7bf0a1b2c", false), 0, "unmonitor");
        is_int(registry_touch(r, "50c7bf0a1b2c", 9000), 0, "touch");
        is_int(registry_touch(r, "50c7bf0a1b2c", 8000), 0, "touch with an older time");
        d = device("50c7bf0a1b2c", "127.0.0.9:10000", 6000);
        d.alias = NULL;
        registry_upsert(r, &d);
        ok(!d.monitored, "upsert keeps monitored = 0");
        registry_get(r, "50c7bf0a1b2c", &got);
        ok(streq0(got.alias, "Tea") && !got.monitored && got.last_seen_ms == 9000, "alias, monitored, last_seen never back");
        registry_device_done(&got);

        is_int(registry_get(r, "000000000000", &got), -ENOENT, "unknown id: -ENOENT");
        ok(strstr(registry_last_error(r), "000000000000") != NULL, "and a message");
        is_int(registry_set_alias(r, "000000000000", "x"), -ENOENT, "set_alias on unknown id");
        is_int(registry_touch(r, "000000000000", 1), -ENOENT, "touch on unknown id");
        d = device("Bad/Id", NULL, 1);
        is_int(registry_upsert(r, &d), -EINVAL, "an id unfit for an object path is refused");

        /* removal takes the outlets along; numbers are not reused */
        is_int(registry_remove(r, "1122334455aa"), 0, "remove the strip");
        is_int(registry_get(r, "1122334455aa_01", &got), -ENOENT, "its outlets are gone too");
        is_int(registry_remove(r, "1122334455aa"), -ENOENT, "remove twice");
        d = device("1122334455aa", "127.0.0.3", 7000);
        registry_upsert(r, &d);
        is_int(d.number, 6, "a re-added device gets a new number");
        registry_free(r);
        r = NULL;

        /* reopen */
        is_int(registry_open(path, &r, NULL), 0, "reopen");
        RegistryDevice *list = NULL;
        size_t n = 0;
        is_int(registry_list(r, &list, &n), 0, "list");
        ok(n == 2 && list[0].number == 1 && streq0(list[0].id, "50c7bf0a1b2c") && list[1].number == 6 &&
           streq0(list[1].id, "1122334455aa") && list[0].first_seen_ms == 1000, "ids, numbers and first_seen survive");
        registry_device_array_free(list, n);

        d = device("aabbccddeeff", "127.0.0.4", 1);
        registry_upsert(r, &d);
        is_int(d.number, 7, "numbering continues after reopen");

        /* many devices */
        bool all = true;
        for (int i = 0; i < 1000; i++) {
                char id[REGISTRY_ID_MAX], mac[16];
                snprintf(mac, sizeof mac, "0200000%05x", i);
                registry_make_id(mac, -1, id);
                RegistryDevice m = device(id, "127.0.1.1", i + 1);
                all = all && registry_upsert(r, &m) == 0 && m.number == (uint32_t) (8 + i);
        }
        ok(all, "1000 devices, consecutive numbers");
        registry_list(r, &list, &n);
        is_int((int64_t) n, 1003, "all listed");
        registry_device_array_free(list, n);
        registry_free(r);

        char mode[32] = "";
        raw_exec(path, "PRAGMA journal_mode", mode, sizeof mode);
        is_str(mode, "wal", "database is in WAL mode");

        remove_db(path);
        g_free(path);
}

static void test_migrations(void) {
        char *path = db_path("empty.db");
        Registry *r = NULL;
        char *err = NULL;

        /* an empty file: version 0, all migrations apply */
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
        close(fd);
        is_int(registry_open(path, &r, &err), 0, "an empty database file is migrated");
        ok(r && registry_schema_version(r) == 1, "to the latest version");
        registry_free(r);
        char v[16] = "";
        raw_exec(path, "PRAGMA user_version", v, sizeof v);
        is_str(v, "1", "user_version recorded");
        char t[64] = "";
        raw_exec(path, "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name)", t, sizeof t);
        is_str(t, "devices,sequences", "tables created");

        /* from a newer kasamond: refused, untouched */
        raw_exec(path, "PRAGMA user_version = 99", NULL, 0);
        r = NULL;
        is_int(registry_open(path, &r, &err), -EPROTONOSUPPORT, "a newer schema is refused");
        ok(err && strstr(err, "99") && strstr(err, "empty.db"), "with a message: %s", err ?: "");
        free(err);
        err = NULL;
        raw_exec(path, "PRAGMA user_version", v, sizeof v);
        is_str(v, "99", "and left alone");
        remove_db(path);
        g_free(path);

        /* not a database */
        path = db_path("junk.db");
        g_file_set_contents(path, "this is not an SQLite database, but long enough to have a header.......", -1, NULL);
        r = NULL;
        is_int(registry_open(path, &r, &err), -EBADMSG, "junk is refused");
        ok(err && strstr(err, "junk.db"), "with a message: %s", err ?: "");
        free(err);
        remove_db(path);
        g_free(path);
}

/* PRAGMA data_version of a second connection changes with every commit of
 * another connection that changed the database. */
static int64_t data_version(sqlite3 *db) {
        sqlite3_stmt *s;
        int64_t v = -1;

        if (sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &s, NULL) != SQLITE_OK)
                return -1;
        if (sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
}

/* The daemon's first discovery of 1000 plugs is one transaction, and a
 * device seen again unchanged writes nothing. */
static void test_batches(void) {
        char *path = db_path("batch.db");
        Registry *r = NULL;
        sqlite3 *watch = NULL;
        RegistryDevice d;
        int64_t v;
        unsigned c;
        bool all = true;

        if (registry_open(path, &r, NULL) < 0 || sqlite3_open(path, &watch) != SQLITE_OK) {
                ok(false, "open %s", path);
                goto finish;
        }
        c = registry_commits(r);
        is_int(registry_begin(r), 0, "begin a batch");
        is_int(registry_begin(r), -EBUSY, "a second begin is refused");
        for (unsigned i = 0; i < 1000; i++) {
                char id[REGISTRY_ID_MAX], mac[18];
                snprintf(mac, sizeof mac, "50:c7:bf:0a:%02x:%02x", i / 256, i % 256);
                registry_make_id(mac, -1, id);
                d = device(id, "127.0.0.2", 1000);
                d.mac = mac;
                all = all && registry_upsert(r, &d) == 0 && d.number == i + 1;
        }
        ok(all, "1000 devices inserted in the batch, numbered 1 to 1000");
        is_int(registry_commits(r), c, "nothing committed before the end of the batch");
        v = data_version(watch);
        is_int(registry_commit(r), 0, "commit the batch");
        is_int(registry_commits(r), c + 1, "1000 devices: one commit");
        ok(data_version(watch) != v, "which another connection sees");
        is_int(registry_commit(r), -EINVAL, "a commit without a batch is refused");

        RegistryDevice *list = NULL;
        size_t n = 0;
        ok(registry_list(r, &list, &n) == 0 && n == 1000, "all 1000 are there");
        registry_device_array_free(list, n);

        /* Rediscovery: the same device, as it was. */
        char mac[18] = "50:c7:bf:0a:00:07", id[REGISTRY_ID_MAX];
        registry_make_id(mac, -1, id);
        d = device(id, "127.0.0.2", 1000);
        d.mac = mac;
        v = data_version(watch);
        int64_t changes = registry_total_changes(r);
        c = registry_commits(r);
        ok(registry_upsert(r, &d) == 0 && d.number == 8 && d.monitored, "an unchanged device keeps its number");
        ok(data_version(watch) == v, "an unchanged device writes nothing");
        ok(registry_total_changes(r) == changes && registry_commits(r) == c, "no change, no commit");
        d.last_seen_ms = 500;
        ok(registry_upsert(r, &d) == 0 && data_version(watch) == v, "nor does an older last_seen");

        d.alias = (char *) "Lamp";
        ok(registry_upsert(r, &d) == 0 && data_version(watch) != v, "a changed alias is written");
        is_int(registry_total_changes(r), changes + 1, "one row changed");
        is_int(registry_commits(r), c + 1, "in one commit");

finish:
        sqlite3_close(watch);
        registry_free(r);
        remove_db(path);
        g_free(path);
}

int main(void) {
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }
        test_ids();
        test_registry();
        test_migrations();
        test_batches();
        int r = done_testing();
        if (rmdir(dir) < 0) {
                perror("rmdir");
                return 1;
        }
        return r;
}
