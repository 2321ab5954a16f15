/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "db-tariff.h"
#include "tap.h"

static char dir[] = "/tmp/test-db-tariff-XXXXXX";

static char *db_path(const char *name) {
        return g_build_filename(dir, name, NULL);
}

static void remove_db(const char *path) {
        static const char *const suffixes[] = { "", "-wal", "-shm" };
        for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
                char *p = g_strconcat(path, suffixes[i], NULL);
                unlink(p);
                g_free(p);
        }
}

static int raw_exec(const char *path, const char *sql) {
        sqlite3 *db;
        int rc = sqlite3_open(path, &db);
        if (rc == SQLITE_OK)
                rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_close(db);
        return rc;
}

static int64_t raw_int(const char *path, const char *sql) {
        sqlite3 *db;
        sqlite3_stmt *s = NULL;
        int64_t v = -1;
        if (sqlite3_open(path, &db) == SQLITE_OK && sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
}

static TariffRow row(const char *name, int64_t from, int64_t until) {
        return (TariffRow) {
                .format = TARIFF_FORMAT_FILE,
                .text = (char *) "{\"name\": \"x\"}",
                .name = (char *) name,
                .utility = NULL,
                .currency = (char *) "EUR",
                .valid_from_ms = from,
                .valid_until_ms = until,
                .added_ms = 1000,
        };
}

static void test_migrate_empty(void) {
        char *path = db_path("empty.sqlite");
        TariffDb *db = NULL;
        char *error = NULL;

        is_int(tariff_db_open(path, &db, &error), 0, "an empty file is migrated");
        is_int(tariff_db_schema_version(db), 1, "to schema version 1");
        tariff_db_free(db);
        is_int(raw_int(path, "PRAGMA user_version"), 1, "user_version says 1");
        is_int(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name IN ('tariffs', 'tariff_assignments')"),
               2, "both tables exist");

        /* Opening again runs nothing twice (a second CREATE TABLE would fail). */
        is_int(tariff_db_open(path, &db, NULL), 0, "reopened");
        is_int(tariff_db_schema_version(db), 1, "still version 1");
        tariff_db_free(db);

        ok(raw_exec(path, "PRAGMA user_version = 7") == SQLITE_OK, "pretend a newer kasamond wrote it");
        db = NULL;
        is_int(tariff_db_open(path, &db, &error), -EPROTONOSUPPORT, "a newer schema is refused");
        ok(error && strstr(error, "version 7 is newer"), "saying so: %s", error ?: "(null)");
        ok(!db, "and nothing is returned");
        free(error);
        remove_db(path);
        g_free(path);
}

/* The registry's schema lives in devices.sqlite, with its own
 * user_version: a tariff database opened on a file holding other tables at
 * version 0 adds its own beside them and leaves them alone. */
static void test_migrate_beside_other_tables(void) {
        char *path = db_path("other.sqlite");
        TariffDb *db = NULL;

        ok(raw_exec(path, "CREATE TABLE devices (id TEXT PRIMARY KEY); INSERT INTO devices VALUES ('a')") == SQLITE_OK,
           "a file with a table of someone else");
        is_int(tariff_db_open(path, &db, NULL), 0, "migrated");
        tariff_db_free(db);
        is_int(raw_int(path, "SELECT count(*) FROM devices"), 1, "the other table is untouched");
        remove_db(path);
        g_free(path);
}

static void test_tariffs(void) {
        char *path = db_path("tariffs.sqlite");
        TariffDb *db = NULL;
        TariffRow *rows = NULL;
        size_t n = 0;
        int64_t a = 0, b = 0, c = 0;

        is_int(tariff_db_open(path, &db, NULL), 0, "opened");
        TariffRow ra = row("Flat", INT64_MIN, INT64_MAX), rb = row("TOU", 1000, 2000);
        rb.format = TARIFF_FORMAT_URDB;
        rb.utility = (char *) "Utility Co";
        is_int(tariff_db_add(db, &ra, &a), 0, "added a");
        is_int(tariff_db_add(db, &rb, &b), 0, "added b");
        ok(a > 0 && b > a, "ids increase (%" PRId64 ", %" PRId64 ")", a, b);

        TariffRow bad = row(NULL, 0, 0);
        is_int(tariff_db_add(db, &bad, &c), -EINVAL, "a row without name is refused");

        is_int(tariff_db_list(db, &rows, &n), 0, "listed");
        is_int(n, 2, "two tariffs");
        if (n == 2) {
                is_str(rows[0].name, "Flat", "first is Flat");
                ok(rows[0].valid_from_ms == INT64_MIN && rows[0].valid_until_ms == INT64_MAX, "open validity kept");
                ok(rows[0].utility == NULL, "no utility");
                is_int(rows[1].format, TARIFF_FORMAT_URDB, "format kept");
                ok(rows[1].valid_from_ms == 1000 && rows[1].valid_until_ms == 2000, "validity kept");
                is_str(rows[1].utility, "Utility Co", "utility kept");
                is_str(rows[1].text, "{\"name\": \"x\"}", "text kept");
                is_str(rows[1].currency, "EUR", "currency kept");
        }
        tariff_row_array_free(rows, n);

        /* Assignments */
        const char *devs[] = { "50c7bf0a1b2c", "50c7bf0a1b2c_01" };
        is_int(tariff_db_assign(db, NULL, 0, a, 100), 0, "home gets a");
        is_int(tariff_db_assign(db, devs, 2, b, 50), 0, "two devices get b, earlier");
        is_int(tariff_db_assign(db, devs, 1, 0, 300), 0, "one goes back to the home's");
        is_int(tariff_db_assign(db, NULL, 0, 0, 300), -EINVAL, "the home cannot go back to nothing");
        is_int(tariff_db_assign(db, NULL, 0, 999, 300), -ENOENT, "an unknown tariff is refused");
        ok(strstr(tariff_db_last_error(db), "no tariff 999") != NULL, "saying which: %s", tariff_db_last_error(db));

        TariffAssignment *as = NULL;
        is_int(tariff_db_assignments(db, &as, &n), 0, "assignments listed");
        is_int(n, 4, "four of them");
        if (n == 4) {
                ok(as[0].since_ms == 50 && as[1].since_ms == 50 && as[0].id < as[1].id, "by since, then id");
                is_str(as[0].device, "50c7bf0a1b2c", "first device");
                is_int(as[0].tariff, b, "with b");
                ok(as[2].device == NULL && as[2].tariff == a && as[2].since_ms == 100, "the home's");
                ok(as[3].tariff == 0 && as[3].since_ms == 300, "back to the home's");
        }
        tariff_assignment_array_free(as, n);

        is_int(tariff_db_remove(db, a), -EBUSY, "an assigned tariff stays");
        ok(strstr(tariff_db_last_error(db), "past periods") != NULL, "saying why");
        is_int(tariff_db_add(db, &ra, &c), 0, "a third one");
        is_int(tariff_db_remove(db, c), 0, "an unassigned one is removed");
        is_int(tariff_db_remove(db, c), -ENOENT, "and is gone");
        int64_t d = 0;
        is_int(tariff_db_add(db, &ra, &d), 0, "a fourth one");
        ok(d > c, "never gets a removed tariff's id (%" PRId64 " > %" PRId64 ")", d, c);
        tariff_db_free(db);

        /* What survives a restart. */
        db = NULL;
        is_int(tariff_db_open(path, &db, NULL), 0, "reopened");
        is_int(tariff_db_list(db, &rows, &n), 0, "listed again");
        is_int(n, 3, "three tariffs kept");
        tariff_row_array_free(rows, n);
        is_int(tariff_db_assignments(db, &as, &n), 0, "assignments again");
        is_int(n, 4, "four assignments kept");
        tariff_assignment_array_free(as, n);
        tariff_db_free(db);
        remove_db(path);
        g_free(path);
}

int main(void) {
        if (!mkdtemp(dir))
                return 1;
        test_migrate_empty();
        test_migrate_beside_other_tables();
        test_tariffs();
        rmdir(dir);
        return done_testing();
}
