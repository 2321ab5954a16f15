/* SPDX-License-Identifier: MIT */

#include "access.h"

#include <errno.h>
#include <glib.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "kasa-dbus.h"
#include "kasa-time.h"
#include "macro.h"

#define streq(a, b) (strcmp((a), (b)) == 0)

/* Bounds on what callers can make the daemon keep. A uid that failed is
 * forgotten a window after its last failure; bindings end with their
 * connection, and the bus bounds connections. */
#define LIMITER_MAX 4096

typedef struct Failures {
        unsigned max; /* the uid's budget in a window: the ring's size */
        unsigned n, next;
        uint64_t at[]; /* a ring of the latest failures */
} Failures;

struct Access {
        int64_t (*now)(void *userdata);
        void *userdata;
        bool have_bridge;
        uid_t bridge_uid;
        GHashTable *tokens;        /* id -> AccessToken*, owns them */
        GHashTable *bindings;      /* unique name -> token id (both owned) */
        GHashTable *failures;      /* uid -> Failures* */
};

static const char *const role_names[_ACCESS_ROLE_MAX] = {
        [ACCESS_ROLE_VIEWER] = "viewer",
        [ACCESS_ROLE_OPERATOR] = "operator",
        [ACCESS_ROLE_ADMIN] = "admin",
};

/* What an operator may do; a viewer only reads, which needs no action;
 * an admin may do everything. */
static const char *const operator_actions[] = {
        KASA_ACTION_SWITCH,
        KASA_ACTION_MANAGE_DEVICES,
        KASA_ACTION_MANAGE_SCHEDULES,
        KASA_ACTION_MANAGE_TARIFFS,
        KASA_ACTION_MANAGE_ALERTS,
};

const char *access_role_to_string(AccessRole role) {
        return role >= 0 && role < _ACCESS_ROLE_MAX ? role_names[role] : NULL;
}

AccessRole access_role_from_string(const char *s) {
        for (int i = 0; s && i < _ACCESS_ROLE_MAX; i++)
                if (streq(s, role_names[i]))
                        return (AccessRole) i;
        return _ACCESS_ROLE_INVALID;
}

bool access_role_allows(AccessRole role, const char *action) {
        if (role == ACCESS_ROLE_ADMIN)
                return true;
        if (role != ACCESS_ROLE_OPERATOR || !action)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(operator_actions); i++)
                if (streq(action, operator_actions[i]))
                        return true;
        return false;
}

AccessToken *access_token_free(AccessToken *t) {
        if (!t)
                return NULL;
        free(t->name);
        free(t);
        return NULL;
}

static void token_free(gpointer p) {
        access_token_free(p);
}

static int64_t real_now(void *userdata) {
        return (int64_t) realtime_usec();
}

Access *access_new(int64_t (*now)(void *userdata), void *userdata) {
        Access *a = calloc(1, sizeof(Access));

        if (!a)
                return NULL;
        a->now = now ?: real_now;
        a->userdata = userdata;
        a->tokens = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, token_free);
        a->bindings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        a->failures = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
        return a;
}

Access *access_free(Access *a) {
        if (!a)
                return NULL;
        g_hash_table_unref(a->bindings);
        g_hash_table_unref(a->tokens);
        g_hash_table_unref(a->failures);
        free(a);
        return NULL;
}

void access_set_bridge_uid(Access *a, bool have, uid_t uid) {
        a->have_bridge = have;
        a->bridge_uid = uid;
}

bool access_have_bridge(const Access *a) {
        return a->have_bridge;
}

bool access_is_bridge(const Access *a, uid_t uid) {
        return a->have_bridge && uid == a->bridge_uid;
}

bool access_id_is_valid(const char *id) {
        if (!id || strlen(id) != ACCESS_ID_MAX - 1)
                return false;
        for (const char *p = id; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

bool access_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > ACCESS_NAME_MAX || name[0] == '-' || access_id_is_valid(name))
                return false;
        for (const char *p = name; *p; p++)
                if (!g_ascii_isalnum(*p) && !strchr("._@+-", *p))
                        return false;
        return true;
}

void access_hash(const char *secret, uint8_t ret[static ACCESS_HASH_SIZE]) {
        unsigned n = ACCESS_HASH_SIZE;

        /* Cannot fail for SHA-256 short of a broken libcrypto: then no
         * secret matches anything. */
        if (EVP_Digest(secret, strlen(secret), ret, &n, EVP_sha256(), NULL) != 1)
                memset(ret, 0, ACCESS_HASH_SIZE);
}

static int random_bytes(void *buf, size_t n) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = getrandom(p, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static void base64url(const uint8_t *in, size_t n, char *out) {
        static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t o = 0;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16 | (i + 1 < n ? (uint32_t) in[i + 1] << 8 : 0) |
                             (i + 2 < n ? in[i + 2] : 0);
                size_t chars = i + 2 < n ? 4 : i + 1 < n ? 3 : 2;
                for (size_t k = 0; k < chars; k++)
                        out[o++] = digits[(v >> (18 - 6 * k)) & 63];
        }
        out[o] = 0;
}

static bool name_taken(const Access *a, const char *name) {
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, a->tokens);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (streq(((AccessToken *) v)->name, name))
                        return true;
        return false;
}

int access_token_new(Access *a, const char *name, AccessRole role, int64_t expires_usec, AccessToken **ret,
                     char ret_secret[static ACCESS_SECRET_MAX]) {
        _cleanup_(access_token_freep) AccessToken *t = NULL;
        uint8_t raw[ACCESS_SECRET_BYTES], id[ACCESS_ID_BYTES];
        int64_t now = a->now(a->userdata);
        int r;

        if (!access_name_is_valid(name) || !access_role_to_string(role) || expires_usec < 0 ||
            (expires_usec > 0 && expires_usec <= now))
                return -EINVAL;
        if (name_taken(a, name))
                return -EEXIST;
        t = calloc(1, sizeof(AccessToken));
        if (!t)
                return -ENOMEM;
        t->name = strdup(name);
        if (!t->name)
                return -ENOMEM;
        do {
                r = random_bytes(id, sizeof id);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < sizeof id; i++)
                        snprintf(t->id + 2 * i, 3, "%02x", id[i]);
        } while (g_hash_table_contains(a->tokens, t->id));
        r = random_bytes(raw, sizeof raw);
        if (r < 0)
                return r;
        memcpy(ret_secret, ACCESS_SECRET_PREFIX, strlen(ACCESS_SECRET_PREFIX));
        base64url(raw, sizeof raw, ret_secret + strlen(ACCESS_SECRET_PREFIX));
        OPENSSL_cleanse(raw, sizeof raw);
        access_hash(ret_secret, t->hash);
        t->role = role;
        t->created_usec = now;
        t->expires_usec = expires_usec;
        *ret = TAKE_PTR(t);
        return 0;
}

int access_add(Access *a, AccessToken *t) {
        if (!access_id_is_valid(t->id) || !access_role_to_string(t->role) || !t->name) {
                access_token_free(t);
                return -EINVAL;
        }
        if (g_hash_table_contains(a->tokens, t->id) || name_taken(a, t->name)) {
                access_token_free(t);
                return -EEXIST;
        }
        g_hash_table_insert(a->tokens, t->id, t);
        return 0;
}

const AccessToken *access_find(const Access *a, const char *id_or_name) {
        AccessToken *t = g_hash_table_lookup(a->tokens, id_or_name);
        GHashTableIter it;
        gpointer v;

        if (t)
                return t;
        g_hash_table_iter_init(&it, a->tokens);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (streq(((AccessToken *) v)->name, id_or_name))
                        return v;
        return NULL;
}

static int unbind_token(Access *a, const char *id) {
        GHashTableIter it;
        gpointer v;
        int n = 0;

        g_hash_table_iter_init(&it, a->bindings);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (streq(v, id)) {
                        g_hash_table_iter_remove(&it);
                        n++;
                }
        return n;
}

int access_remove(Access *a, const char *id) {
        int n;

        if (!g_hash_table_contains(a->tokens, id))
                return -ENOENT;
        n = unbind_token(a, id);
        g_hash_table_remove(a->tokens, id);
        return n;
}

int64_t access_next_expiry(const Access *a, int64_t after) {
        GHashTableIter it;
        gpointer v;
        int64_t next = 0;

        g_hash_table_iter_init(&it, a->tokens);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                int64_t e = ((AccessToken *) v)->expires_usec;
                if (e > after && (next == 0 || e < next))
                        next = e;
        }
        return next;
}

unsigned access_expire(Access *a, int64_t after, int64_t now, void (*cb)(const char *id, void *userdata),
                       void *userdata) {
        GHashTableIter it;
        gpointer v;
        unsigned n = 0;

        g_hash_table_iter_init(&it, a->tokens);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                AccessToken *t = v;
                if (t->expires_usec > after && t->expires_usec <= now) {
                        unbind_token(a, t->id);
                        cb(t->id, userdata);
                        n++;
                }
        }
        return n;
}

static int compare_tokens(const void *x, const void *y) {
        const AccessToken *p = *(const AccessToken *const *) x, *q = *(const AccessToken *const *) y;

        if (p->created_usec != q->created_usec)
                return p->created_usec < q->created_usec ? -1 : 1;
        return strcmp(p->name, q->name);
}

int access_list(const Access *a, const AccessToken ***ret, size_t *ret_n) {
        size_t n = g_hash_table_size(a->tokens), i = 0;
        const AccessToken **l = calloc(n + 1, sizeof(AccessToken *));
        GHashTableIter it;
        gpointer v;

        if (!l)
                return -ENOMEM;
        g_hash_table_iter_init(&it, a->tokens);
        while (g_hash_table_iter_next(&it, NULL, &v))
                l[i++] = v;
        qsort(l, n, sizeof(AccessToken *), compare_tokens);
        *ret = l;
        *ret_n = n;
        return 0;
}

static bool expired(const AccessToken *t, int64_t now) {
        return t->expires_usec > 0 && now >= t->expires_usec;
}

static unsigned budget_of(const Access *a, uid_t uid) {
        return access_is_bridge(a, uid) ? ACCESS_BRIDGE_FAIL_MAX : ACCESS_FAIL_MAX;
}

static uint64_t latest(const Failures *f) {
        return f->at[(f->next + f->max - 1) % f->max];
}

/* The failures of uid still inside the window; drops what is older, and
 * a ring of the other budget (the uid became the bridge's, or stopped). */
static Failures *failures_of(Access *a, uid_t uid, uint64_t now) {
        Failures *f = g_hash_table_lookup(a->failures, GUINT_TO_POINTER(uid));

        if (!f)
                return NULL;
        /* All older than the window: the uid starts afresh. */
        if (now - latest(f) >= ACCESS_FAIL_WINDOW_USEC || f->max != budget_of(a, uid)) {
                g_hash_table_remove(a->failures, GUINT_TO_POINTER(uid));
                return NULL;
        }
        return f;
}

static void prune_failures(Access *a, uint64_t now) {
        GHashTableIter it;
        gpointer k, v;

        g_hash_table_iter_init(&it, a->failures);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (now - latest(v) >= ACCESS_FAIL_WINDOW_USEC)
                        g_hash_table_iter_remove(&it);
}

static void record_failure(Access *a, uid_t uid, uint64_t now) {
        Failures *f = failures_of(a, uid, now);

        if (!f) {
                unsigned max = budget_of(a, uid);

                if (g_hash_table_size(a->failures) >= LIMITER_MAX)
                        prune_failures(a, now);
                /* Still full: as many uids failing within one minute as the
                 * table holds. Forgetting one would let it try again at once,
                 * so the newest is not recorded and the rest stay limited. */
                if (g_hash_table_size(a->failures) >= LIMITER_MAX)
                        return;
                f = g_malloc0(sizeof(Failures) + max * sizeof(uint64_t));
                f->max = max;
                g_hash_table_insert(a->failures, GUINT_TO_POINTER(uid), f);
        }
        f->at[f->next] = now;
        f->next = (f->next + 1) % f->max;
        if (f->n < f->max)
                f->n++;
}

/* 0, or how long uid must wait. */
static uint64_t limited(Access *a, uid_t uid, uint64_t now) {
        Failures *f = failures_of(a, uid, now);
        uint64_t oldest;

        if (!f || f->n < f->max)
                return 0;
        oldest = f->at[f->next]; /* the ring is full: next is the oldest */
        return now - oldest < ACCESS_FAIL_WINDOW_USEC ? oldest + ACCESS_FAIL_WINDOW_USEC - now : 0;
}

int access_bind(Access *a, const char *name, uid_t uid, const char *secret, const AccessToken **ret_token,
                uint64_t *ret_retry_usec) {
        int64_t now = a->now(a->userdata);
        uint8_t hash[ACCESS_HASH_SIZE];
        AccessToken *match = NULL;
        GHashTableIter it;
        gpointer v;
        uint64_t wait;

        wait = limited(a, uid, (uint64_t) now);
        if (wait > 0) {
                *ret_retry_usec = wait;
                return -EBUSY;
        }

        /* Compare with every token, without stopping at a match, in
         * constant time each: how long this takes says nothing about the
         * secret. The hash, not the secret, is compared, so its length and
         * prefix need no check of their own. */
        access_hash(secret, hash);
        g_hash_table_iter_init(&it, a->tokens);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (CRYPTO_memcmp(hash, ((AccessToken *) v)->hash, ACCESS_HASH_SIZE) == 0)
                        match = v;
        OPENSSL_cleanse(hash, sizeof hash);

        if (!match || expired(match, now)) {
                record_failure(a, uid, (uint64_t) now);
                return -EACCES;
        }
        g_hash_table_insert(a->bindings, g_strdup(name), g_strdup(match->id));
        match->last_used_usec = now;
        *ret_token = match;
        return 0;
}

bool access_unbind(Access *a, const char *name) {
        return g_hash_table_remove(a->bindings, name);
}

size_t access_n_bindings(const Access *a) {
        return g_hash_table_size(a->bindings);
}

int access_check(Access *a, const char *name, const char *action, AccessRole *ret_role) {
        const char *id = name ? g_hash_table_lookup(a->bindings, name) : NULL;
        AccessToken *t = id ? g_hash_table_lookup(a->tokens, id) : NULL;

        if (!t || expired(t, a->now(a->userdata))) {
                if (id)
                        g_hash_table_remove(a->bindings, name);
                return -ENOKEY;
        }
        if (ret_role)
                *ret_role = t->role;
        return access_role_allows(t->role, action) ? 1 : -EPERM;
}

static json_t *json_time(int64_t usec) {
        time_t s = (time_t) (usec / 1000000);
        char buf[32];
        struct tm tm;

        if (usec <= 0 || !gmtime_r(&s, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return json_null();
        return json_string(buf);
}

char *access_list_json(const Access *a) {
        _cleanup_free_ const AccessToken **l = NULL;
        json_t *array = json_array();
        char *text = NULL;
        size_t n;

        if (!array || access_list(a, &l, &n) < 0)
                goto finish;
        for (size_t i = 0; i < n; i++) {
                json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:o}", "id", l[i]->id, "name", l[i]->name, "role",
                                      access_role_to_string(l[i]->role), "created", json_time(l[i]->created_usec),
                                      "expires", json_time(l[i]->expires_usec), "last_used",
                                      json_time(l[i]->last_used_usec));
                if (!o || json_array_append_new(array, o) < 0)
                        goto finish;
        }
        text = json_dumps(array, JSON_COMPACT);
finish:
        json_decref(array);
        return text;
}
