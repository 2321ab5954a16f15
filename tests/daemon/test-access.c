/* SPDX-License-Identifier: MIT */

/* API tokens: roles and their actions, secrets and their hashes, binding
 * to bus names, revocation, expiry and the limiter of failed binds (with a
 * fake clock); and their table in SQLite. */

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access.h"
#include "db-access.h"
#include "kasa-dbus.h"
#include "tap.h"

#define SEC INT64_C(1000000)

static int64_t fake_now = 1764633600 * SEC; /* 2025-12-02T00:00:00Z */

static int64_t clock_fake(void *userdata) {
        return fake_now;
}

static const char *const all_actions[] = {
        KASA_ACTION_SWITCH,           KASA_ACTION_MANAGE_DEVICES, KASA_ACTION_MANAGE_SCHEDULES,
        KASA_ACTION_MANAGE_TARIFFS,   KASA_ACTION_MANAGE_ALERTS,  KASA_ACTION_MANAGE_ACCESS,
        KASA_ACTION_ERASE_DATA,
};
/* all_actions[0..N_OPERATOR-1] are the operator's. */
#define N_OPERATOR 5

static void test_roles(void) {
        diag("roles");
        for (int i = 0; i < _ACCESS_ROLE_MAX; i++)
                is_int(access_role_from_string(access_role_to_string(i)), i, "role %s round-trips",
                       access_role_to_string(i));
        is_int(access_role_from_string("root"), _ACCESS_ROLE_INVALID, "unknown role");
        is_int(access_role_from_string("Admin"), _ACCESS_ROLE_INVALID, "roles are case-sensitive");
        ok(!access_role_to_string(_ACCESS_ROLE_MAX), "no name past the last role");

        for (size_t i = 0; i < ELEMENTSOF(all_actions); i++) {
                const char *a = all_actions[i];
                bool op = i < N_OPERATOR;
                ok(!access_role_allows(ACCESS_ROLE_VIEWER, a), "viewer may not %s", a);
                is_int(access_role_allows(ACCESS_ROLE_OPERATOR, a), op, "operator %s %s", op ? "may" : "may not", a);
                ok(access_role_allows(ACCESS_ROLE_ADMIN, a), "admin may %s", a);
        }
        ok(!access_role_allows(ACCESS_ROLE_OPERATOR, "org.kasamond.kasa1.something-new"),
           "an action the table does not know: not the operator's");
        ok(access_role_allows(ACCESS_ROLE_ADMIN, "org.kasamond.kasa1.something-new"), "...but the admin's");
        ok(!access_role_allows(_ACCESS_ROLE_INVALID, KASA_ACTION_SWITCH), "an invalid role allows nothing");
}

static void test_names(void) {
        diag("names");
        ok(access_name_is_valid("ci"), "a short name");
        ok(access_name_is_valid("grafana@home.lan+2_x-y"), "letters, digits and ._@+-");
        ok(!access_name_is_valid(""), "empty");
        ok(!access_name_is_valid("-x"), "starting with a dash");
        ok(!access_name_is_valid("a b"), "a space");
        ok(!access_name_is_valid("caf\xc3\xa9"), "non-ASCII");
        ok(!access_name_is_valid("0123abcd"), "8 hex digits: reads as an id");
        ok(access_name_is_valid("0123abcde"), "9 hex digits: a name");
        char longname[ACCESS_NAME_MAX + 2];
        memset(longname, 'a', sizeof longname);
        longname[ACCESS_NAME_MAX] = 0;
        ok(access_name_is_valid(longname), "%d bytes", ACCESS_NAME_MAX);
        longname[ACCESS_NAME_MAX] = 'a';
        longname[ACCESS_NAME_MAX + 1] = 0;
        ok(!access_name_is_valid(longname), "%d bytes", ACCESS_NAME_MAX + 1);
        ok(access_id_is_valid("0123abcd") && !access_id_is_valid("0123ABCD") && !access_id_is_valid("0123abc"),
           "ids: 8 lower-case hex digits");
}

static void hex(const uint8_t *b, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static AccessToken *make(Access *a, const char *name, AccessRole role, int64_t expires, char *secret) {
        AccessToken *t = NULL;
        int r = access_token_new(a, name, role, expires, &t, secret);

        if (r < 0) {
                diag("access_token_new(%s): %s", name, strerror(-r));
                exit(EXIT_FAILURE);
        }
        return t;
}

static void test_create(void) {
        Access *a = access_new(clock_fake, NULL);
        char s1[ACCESS_SECRET_MAX], s2[ACCESS_SECRET_MAX], h[2 * ACCESS_HASH_SIZE + 1];
        uint8_t hash[ACCESS_HASH_SIZE];
        AccessToken *t1, *t2;

        diag("create");
        /* FIPS 180-2's vector: the hash is SHA-256 itself. */
        access_hash("abc", hash);
        hex(hash, sizeof hash, h);
        is_str(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256 of \"abc\"");

        t1 = make(a, "one", ACCESS_ROLE_OPERATOR, 0, s1);
        t2 = make(a, "two", ACCESS_ROLE_VIEWER, fake_now + 3600 * SEC, s2);
        is_int(strlen(s1), ACCESS_SECRET_MAX - 1, "the secret: prefix and 43 characters");
        ok(strncmp(s1, "kasa_", 5) == 0, "the secret starts with kasa_ (%.5s...)", s1);
        ok(strspn(s1 + 5, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == 43,
           "...then base64url, unpadded");
        ok(strcmp(s1, s2) != 0 && strcmp(t1->id, t2->id) != 0, "two tokens: two secrets, two ids");
        ok(access_id_is_valid(t1->id), "the id is 8 hex digits (%s)", t1->id);
        access_hash(s1, hash);
        ok(memcmp(hash, t1->hash, ACCESS_HASH_SIZE) == 0, "the token keeps the secret's SHA-256");
        ok(memmem(t1, sizeof *t1, s1 + 5, 20) == NULL, "...and not the secret");
        is_int(t1->created_usec, fake_now, "created now");
        is_int(t1->expires_usec, 0, "never expires");
        is_int(t1->last_used_usec, 0, "never used");
        is_int(t2->expires_usec, fake_now + 3600 * SEC, "expires as asked");

        is_int(access_add(a, t1), 0, "added");
        is_int(access_add(a, t2), 0, "added another");
        AccessToken *t3 = NULL;
        is_int(access_token_new(a, "one", ACCESS_ROLE_ADMIN, 0, &t3, s2), -EEXIST, "the name is taken");
        is_int(access_token_new(a, "past", ACCESS_ROLE_ADMIN, fake_now, &t3, s2), -EINVAL, "an expiry of now");
        is_int(access_token_new(a, "past", ACCESS_ROLE_ADMIN, fake_now - 1, &t3, s2), -EINVAL, "an expiry past");
        is_int(access_token_new(a, "bad name", ACCESS_ROLE_ADMIN, 0, &t3, s2), -EINVAL, "a bad name");
        is_int(access_token_new(a, "x", _ACCESS_ROLE_MAX, 0, &t3, s2), -EINVAL, "a bad role");
        ok(!t3, "nothing returned on failure");

        ok(access_find(a, "one") == t1 && access_find(a, t1->id) == t1, "found by name and by id");
        ok(!access_find(a, "three"), "unknown name");

        AccessToken *dup = make(a, "dup", ACCESS_ROLE_ADMIN, 0, s2);
        snprintf(dup->id, sizeof dup->id, "%s", t1->id);
        is_int(access_add(a, dup), -EEXIST, "a known id is refused (and freed)");

        const AccessToken **l;
        size_t n;
        fake_now += SEC;
        AccessToken *t0 = make(a, "aaa", ACCESS_ROLE_ADMIN, 0, s2);
        is_int(access_add(a, t0), 0, "a third, a second later");
        is_int(access_list(a, &l, &n), 0, "listed");
        ok(n == 3 && l[0] == t1 && l[1] == t2 && l[2] == t0, "sorted by creation, then name");
        free(l);

        is_int(access_remove(a, t0->id), 0, "removed, no bindings");
        is_int(access_remove(a, "ffffffff"), -ENOENT, "unknown id");
        access_free(a);
}

static void test_bind(void) {
        Access *a = access_new(clock_fake, NULL);
        char sv[ACCESS_SECRET_MAX], so[ACCESS_SECRET_MAX], sa[ACCESS_SECRET_MAX], se[ACCESS_SECRET_MAX];
        AccessToken *viewer = make(a, "viewer", ACCESS_ROLE_VIEWER, 0, sv);
        AccessToken *op = make(a, "op", ACCESS_ROLE_OPERATOR, 0, so);
        AccessToken *admin = make(a, "admin", ACCESS_ROLE_ADMIN, 0, sa);
        AccessToken *soon = make(a, "soon", ACCESS_ROLE_OPERATOR, fake_now + 10 * SEC, se);
        const AccessToken *t = NULL;
        uint64_t retry = 0;
        AccessRole role;

        diag("bind and check");
        access_add(a, viewer);
        access_add(a, op);
        access_add(a, admin);
        access_add(a, soon);

        is_int(access_check(a, ":1.1", KASA_ACTION_SWITCH, NULL), -ENOKEY, "nothing bound: no token");
        is_int(access_check(a, NULL, KASA_ACTION_SWITCH, NULL), -ENOKEY, "no name: no token");

        /* Every token is compared: the match is found wherever it is. */
        is_int(access_bind(a, ":1.1", 500, so, &t, &retry), 0, "bound the operator's secret");
        ok(t == op, "...to the operator's token");
        is_int(op->last_used_usec, fake_now, "its last use is now");
        is_int(access_bind(a, ":1.2", 500, sv, &t, &retry), 0, "bound the viewer's");
        is_int(access_bind(a, ":1.3", 500, sa, &t, &retry), 0, "bound the admin's");
        is_int(access_n_bindings(a), 3, "three bindings");

        for (size_t i = 0; i < ELEMENTSOF(all_actions); i++) {
                is_int(access_check(a, ":1.2", all_actions[i], &role), -EPERM, "viewer: %s denied", all_actions[i]);
                is_int(access_check(a, ":1.1", all_actions[i], &role), i < N_OPERATOR ? 1 : -EPERM, "operator: %s %s",
                       all_actions[i], i < N_OPERATOR ? "allowed" : "denied");
                is_int(access_check(a, ":1.3", all_actions[i], NULL), 1, "admin: %s allowed", all_actions[i]);
        }
        access_check(a, ":1.2", KASA_ACTION_SWITCH, &role);
        is_int(role, ACCESS_ROLE_VIEWER, "a denial names the role");

        /* Re-binding a connection replaces its token. */
        is_int(access_bind(a, ":1.2", 500, so, &t, &retry), 0, "re-bound the viewer's connection as operator");
        is_int(access_check(a, ":1.2", KASA_ACTION_SWITCH, NULL), 1, "...now it may switch");
        is_int(access_n_bindings(a), 3, "still three bindings");

        is_int(access_bind(a, ":1.4", 500, "kasa_wrong", &t, &retry), -EACCES, "a wrong secret");
        is_int(access_bind(a, ":1.4", 500, "", &t, &retry), -EACCES, "an empty secret");
        char almost[ACCESS_SECRET_MAX];
        snprintf(almost, sizeof almost, "%s", so);
        almost[10] = almost[10] == 'A' ? 'B' : 'A';
        is_int(access_bind(a, ":1.4", 501, almost, &t, &retry), -EACCES, "one character off");
        is_int(access_check(a, ":1.4", KASA_ACTION_SWITCH, NULL), -ENOKEY, "a failed bind binds nothing");

        ok(access_unbind(a, ":1.3"), "the admin's connection closed");
        ok(!access_unbind(a, ":1.3"), "...once");
        is_int(access_check(a, ":1.3", KASA_ACTION_SWITCH, NULL), -ENOKEY, "a closed connection has no token");

        /* Revoking ends every binding made with the token, at once. */
        is_int(access_remove(a, op->id), 2, "revoked the operator's token: two bindings ended");
        is_int(access_check(a, ":1.1", KASA_ACTION_SWITCH, NULL), -ENOKEY, "revoked: no token");
        is_int(access_check(a, ":1.2", KASA_ACTION_SWITCH, NULL), -ENOKEY, "revoked: none on the other either");
        is_int(access_bind(a, ":1.5", 502, so, &t, &retry), -EACCES, "a revoked secret does not bind");

        /* Expiry ends the binding when it comes. */
        is_int(access_bind(a, ":1.6", 503, se, &t, &retry), 0, "bound a token expiring in 10 s");
        fake_now += 9 * SEC;
        is_int(access_check(a, ":1.6", KASA_ACTION_SWITCH, NULL), 1, "allowed a second before");
        fake_now += SEC;
        is_int(access_check(a, ":1.6", KASA_ACTION_SWITCH, NULL), -ENOKEY, "expired: no token");
        is_int(access_n_bindings(a), 0, "...and the binding is gone");
        is_int(access_bind(a, ":1.7", 503, se, &t, &retry), -EACCES, "an expired secret does not bind");
        access_free(a);
}

static void test_limiter(void) {
        Access *a = access_new(clock_fake, NULL);
        char s[ACCESS_SECRET_MAX];
        const AccessToken *t;
        uint64_t retry = 0;
        int64_t start;

        diag("limiter");
        access_add(a, make(a, "good", ACCESS_ROLE_OPERATOR, 0, s));
        start = fake_now;
        for (int i = 0; i < ACCESS_FAIL_MAX; i++) {
                is_int(access_bind(a, ":1.1", 1000, "kasa_bad", &t, &retry), -EACCES, "failure %d: denied", i + 1);
                fake_now += SEC;
        }
        retry = 0;
        is_int(access_bind(a, ":1.1", 1000, "kasa_bad", &t, &retry), -EBUSY, "then: rate limited");
        is_int((int64_t) retry, start + 60 * SEC - fake_now, "...until a minute after the first failure");
        is_int(access_bind(a, ":1.1", 1000, s, &t, &retry), -EBUSY, "the right secret is not even checked");
        is_int(access_bind(a, ":1.2", 1001, s, &t, &retry), 0, "another uid is not limited");
        is_int(access_bind(a, ":1.3", 1000, "kasa_bad", &t, &retry), -EBUSY,
               "the uid, on another connection: still limited");

        /* A sliding window: once the first failure is a minute old, one
         * more attempt is allowed. */
        fake_now = start + 60 * SEC - 1;
        is_int(access_bind(a, ":1.1", 1000, s, &t, &retry), -EBUSY, "a microsecond before the minute: limited");
        is_int((int64_t) retry, 1, "...for one microsecond");
        fake_now = start + 60 * SEC;
        is_int(access_bind(a, ":1.1", 1000, "kasa_bad", &t, &retry), -EACCES, "at the minute: checked again");
        is_int(access_bind(a, ":1.1", 1000, s, &t, &retry), -EBUSY, "...and that failure makes five in a minute");
        fake_now = start + 61 * SEC;
        is_int(access_bind(a, ":1.1", 1000, s, &t, &retry), 0, "a second later the right secret binds");

        /* Failures older than the window are forgotten altogether. */
        fake_now += 3600 * SEC;
        for (int i = 0; i < ACCESS_FAIL_MAX - 1; i++)
                access_bind(a, ":1.1", 1000, "kasa_bad", &t, &retry);
        is_int(access_bind(a, ":1.1", 1000, s, &t, &retry), 0, "four fresh failures: still allowed");
        access_free(a);
}

/* Every HTTP user is the bridge's uid, and the bridge opens a connection
 * per token it tries: five bad tokens from anyone must not lock every
 * other HTTP user out. The bridge limits each client address itself;
 * kasamond gives its uid a budget for many clients. */
static void test_limiter_bridge(void) {
        Access *a = access_new(clock_fake, NULL);
        char s[ACCESS_SECRET_MAX], name[32];
        const AccessToken *t;
        uint64_t retry = 0;
        int i;

        diag("limiter of the bridge's uid");
        access_set_bridge_uid(a, true, 990);
        access_add(a, make(a, "good", ACCESS_ROLE_VIEWER, 0, s));
        fake_now += 3600 * SEC;
        for (i = 0; i < ACCESS_FAIL_MAX + 1; i++) {
                snprintf(name, sizeof name, ":1.%d", 100 + i);
                access_bind(a, name, 990, "kasa_bad", &t, &retry);
        }
        is_int(access_bind(a, ":1.99", 990, s, &t, &retry), 0,
               "the bridge's uid: six failures from six connections do not block a right secret");
        for (; i < ACCESS_BRIDGE_FAIL_MAX; i++)
                if (access_bind(a, ":1.98", 990, "kasa_bad", &t, &retry) != -EACCES)
                        break;
        is_int(i, ACCESS_BRIDGE_FAIL_MAX, "its budget is ACCESS_BRIDGE_FAIL_MAX failures a minute");
        is_int(access_bind(a, ":1.97", 990, s, &t, &retry), -EBUSY, "past it, the bridge's uid is limited too");
        for (i = 0; i < ACCESS_FAIL_MAX; i++)
                access_bind(a, ":1.96", 991, "kasa_bad", &t, &retry);
        is_int(access_bind(a, ":1.95", 991, s, &t, &retry), -EBUSY, "another uid keeps the limit of five");
        /* The bridge's user may appear later (DynamicUser=): its failures
         * as a plain uid do not hold it to five. */
        access_set_bridge_uid(a, true, 991);
        is_int(access_bind(a, ":1.94", 991, s, &t, &retry), 0, "a uid that becomes the bridge gets the budget");
        access_free(a);
}

static void count_id(const char *id, void *userdata) {
        (*(unsigned *) userdata)++;
}

static void test_expire(void) {
        Access *a = access_new(clock_fake, NULL);
        char s1[ACCESS_SECRET_MAX], s2[ACCESS_SECRET_MAX], s3[ACCESS_SECRET_MAX];
        const AccessToken *t;
        uint64_t retry;
        unsigned seen = 0;
        int64_t start = fake_now;

        diag("expiry: bindings end when it comes, not at the next call");
        access_add(a, make(a, "soon", ACCESS_ROLE_OPERATOR, start + 10 * SEC, s1));
        access_add(a, make(a, "later", ACCESS_ROLE_OPERATOR, start + 20 * SEC, s2));
        access_add(a, make(a, "never", ACCESS_ROLE_OPERATOR, 0, s3));
        access_bind(a, ":1.1", 1, s1, &t, &retry);
        access_bind(a, ":1.2", 1, s2, &t, &retry);
        access_bind(a, ":1.3", 1, s3, &t, &retry);
        is_int(access_next_expiry(a, start), start + 10 * SEC, "the next expiry: the soonest");
        is_int(access_next_expiry(a, start + 10 * SEC), start + 20 * SEC, "after it, the next one");
        is_int(access_next_expiry(a, start + 20 * SEC), 0, "then none");
        is_int(access_expire(a, start, start + 10 * SEC, count_id, &seen), 1, "at the first expiry: one token");
        is_int(seen, 1, "...announced once");
        is_int(access_n_bindings(a), 2, "...and its binding is gone");
        is_int(access_expire(a, start + 10 * SEC, start + 30 * SEC, count_id, &seen), 1, "then the second");
        is_int(access_n_bindings(a), 1, "the token that never expires keeps its binding");
        access_free(a);
}

static void test_json(void) {
        Access *a = access_new(clock_fake, NULL);
        char s1[ACCESS_SECRET_MAX], s2[ACCESS_SECRET_MAX], h[2 * ACCESS_HASH_SIZE + 1];
        const AccessToken *t;
        uint64_t retry;
        char *json;

        diag("ListTokens JSON");
        fake_now = 1764633600 * SEC;
        AccessToken *t1 = make(a, "ci", ACCESS_ROLE_OPERATOR, 0, s1);
        AccessToken *t2 = make(a, "grafana", ACCESS_ROLE_VIEWER, fake_now + 86400 * SEC, s2);
        hex(t1->hash, ACCESS_HASH_SIZE, h);
        access_add(a, t1);
        access_add(a, t2);
        fake_now += 90 * SEC;
        access_bind(a, ":1.1", 1, s2, &t, &retry);
        json = access_list_json(a);
        ok(json != NULL, "made (%s)", json ?: "(null)");
        char want[512];
        snprintf(want, sizeof want,
                 "[{\"id\":\"%s\",\"name\":\"ci\",\"role\":\"operator\",\"created\":\"2025-12-02T00:00:00Z\","
                 "\"expires\":null,\"last_used\":null},"
                 "{\"id\":\"%s\",\"name\":\"grafana\",\"role\":\"viewer\",\"created\":\"2025-12-02T00:00:00Z\","
                 "\"expires\":\"2025-12-03T00:00:00Z\",\"last_used\":\"2025-12-02T00:01:30Z\"}]",
                 t1->id, t2->id);
        is_str(json, want, "every field, RFC 3339, nulls for never");
        ok(json && !strstr(json, s1 + 5) && !strstr(json, s2 + 5) && !strstr(json, h), "no secret, no hash");
        free(json);
        access_free(a);
}

static void test_db(void) {
        char dir[] = "/tmp/test-access-XXXXXX", path[128], wal[160];
        char s1[ACCESS_SECRET_MAX], s2[ACCESS_SECRET_MAX];
        Access *a = access_new(clock_fake, NULL), *b;
        AccessDb *db = NULL;
        char *error = NULL;
        struct stat st;

        diag("database");
        if (!mkdtemp(dir)) {
                ok(false, "mkdtemp");
                return;
        }
        snprintf(path, sizeof path, "%s/access.sqlite", dir);
        snprintf(wal, sizeof wal, "%s-wal", path);
        mode_t old = umask(022);
        is_int(db_access_open(path, &db, &error), 0, "opened (%s)", error ?: "");
        umask(old);
        ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "created with mode 0600 (%o)", st.st_mode & 0777);
        is_int(db_access_schema_version(db), 1, "schema version 1");

        AccessToken *t1 = make(a, "ci", ACCESS_ROLE_OPERATOR, 0, s1);
        AccessToken *t2 = make(a, "grafana", ACCESS_ROLE_VIEWER, fake_now + 86400 * SEC, s2);
        is_int(db_access_insert(db, t1), 0, "stored one");
        is_int(db_access_insert(db, t2), 0, "stored another");
        char id1[ACCESS_ID_MAX], id2[ACCESS_ID_MAX];
        snprintf(id1, sizeof id1, "%s", t1->id);
        snprintf(id2, sizeof id2, "%s", t2->id);
        is_int(db_access_insert(db, t1), -EEXIST, "the same again: refused");
        access_add(a, t1);
        access_add(a, t2);
        is_int(db_access_touch(db, id2, fake_now + 5), 0, "last use saved");
        is_int(db_access_touch(db, "ffffffff", fake_now), -ENOENT, "touching an unknown token");

        /* What a reader of the file finds: the hash, never the secret. */
        {
                _cleanup_free_ char *bytes = NULL, *walbytes = NULL;
                gsize n = 0, m = 0;
                g_file_get_contents(path, &bytes, &n, NULL);
                g_file_get_contents(wal, &walbytes, &m, NULL);
                ok(n + m > 0, "the file and its log hold %zu bytes", (size_t) (n + m));
                bool clear = (bytes && memmem(bytes, n, s1 + 5, 16)) || (walbytes && memmem(walbytes, m, s1 + 5, 16)) ||
                             (bytes && memmem(bytes, n, s2 + 5, 16)) || (walbytes && memmem(walbytes, m, s2 + 5, 16));
                ok(!clear, "no secret in the database files");
                bool hashed = (bytes && memmem(bytes, n, t1->hash, ACCESS_HASH_SIZE)) ||
                              (walbytes && memmem(walbytes, m, t1->hash, ACCESS_HASH_SIZE));
                ok(hashed, "the secret's SHA-256 is there");
        }
        db_access_free(db);

        db = NULL;
        b = access_new(clock_fake, NULL);
        is_int(db_access_open(path, &db, NULL), 0, "reopened");
        is_int(db_access_load(db, b), 0, "loaded");
        const AccessToken *l1 = access_find(b, id1), *l2 = access_find(b, id2);
        ok(l1 && l2, "both tokens are back");
        ok(l1 && strcmp(l1->name, "ci") == 0 && l1->role == ACCESS_ROLE_OPERATOR && l1->expires_usec == 0 &&
           l1->created_usec == fake_now && l1->last_used_usec == 0 &&
           memcmp(l1->hash, access_find(a, id1)->hash, ACCESS_HASH_SIZE) == 0, "the first as it was");
        ok(l2 && l2->role == ACCESS_ROLE_VIEWER && l2->expires_usec == fake_now + 86400 * SEC &&
           l2->last_used_usec == fake_now + 5, "the second, with its last use");
        const AccessToken *t;
        uint64_t retry;
        is_int(access_bind(b, ":1.9", 7, s2, &t, &retry), 0, "a secret binds after the restart");
        is_int(db_access_delete(db, id1), 0, "deleted");
        is_int(db_access_delete(db, id1), -ENOENT, "deleted already");
        db_access_free(db);
        access_free(b);

        db = NULL;
        b = access_new(clock_fake, NULL);
        db_access_open(path, &db, NULL);
        db_access_load(db, b);
        ok(!access_find(b, id1) && access_find(b, id2), "the deletion lasts");
        db_access_free(db);
        access_free(b);

        /* A database from a newer kasamond is not touched. */
        sqlite3 *raw;
        sqlite3_open(path, &raw);
        sqlite3_exec(raw, "PRAGMA user_version = 99", NULL, NULL, NULL);
        sqlite3_close(raw);
        db = NULL;
        error = NULL;
        is_int(db_access_open(path, &db, &error), -EPROTONOSUPPORT, "a newer schema is refused");
        ok(error && strstr(error, "newer"), "...saying so (%s)", error ?: "");
        free(error);

        access_free(a);
        unlink(wal);
        snprintf(wal, sizeof wal, "%s-shm", path);
        unlink(wal);
        unlink(path);
        ok(rmdir(dir) == 0, "nothing else was left in the directory");
}

int main(void) {
        test_roles();
        test_names();
        test_create();
        test_bind();
        test_limiter();
        test_limiter_bridge();
        test_expire();
        test_json();
        test_db();
        return done_testing();
}
