/* SPDX-License-Identifier: MIT */

#include "auth.h"

#include <string.h>

#include "kasa-dbus.h"
#include "log.h"

#define FAILURES_TABLE_MAX 4096

AuthSession *auth_session_ref(AuthSession *s) {
        if (s)
                s->n_ref++;
        return s;
}

AuthSession *auth_session_unref(AuthSession *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        if (s->bus) {
                /* Closing ends the binding in the daemon (NameOwnerChanged). */
                g_dbus_connection_close(s->bus, NULL, NULL, NULL);
                g_object_unref(s->bus);
        }
        g_free(s->token_id);
        g_free(s);
        return NULL;
}

static void session_unref(gpointer s) {
        auth_session_unref(s);
}

int auth_new(const char *bus_address, Auth **ret) {
        Auth *a = g_new0(Auth, 1);

        a->bus_address = g_strdup(bus_address);
        a->sessions = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, session_unref);
        a->pending = g_hash_table_new(g_str_hash, g_str_equal);
        a->revoked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_queue_init(&a->revoked_order);
        a->failures = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        *ret = a;
        return 0;
}

Auth *auth_free(Auth *a) {
        if (!a)
                return NULL;
        g_hash_table_destroy(a->sessions);
        /* Checks in flight hold no reference to a; none may outlive it. */
        g_hash_table_destroy(a->pending);
        g_queue_clear(&a->revoked_order);
        g_hash_table_destroy(a->revoked);
        g_hash_table_destroy(a->failures);
        g_free(a->bus_address);
        g_free(a);
        return NULL;
}

const char *auth_bearer(const char *header) {
        if (!header || g_ascii_strncasecmp(header, "Bearer ", 7) != 0)
                return NULL;
        header += 7;
        while (*header == ' ')
                header++;
        return *header ? header : NULL;
}

unsigned auth_blocked(Auth *a, const char *client, int64_t now) {
        AuthFailures *f = g_hash_table_lookup(a->failures, client);

        if (!f || f->count < AUTH_FAILURES_MAX || now - f->window_start >= AUTH_FAILURE_WINDOW_USEC)
                return 0;
        return (unsigned) ((f->window_start + AUTH_FAILURE_WINDOW_USEC - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

static void record_failure(Auth *a, const char *client, int64_t now) {
        AuthFailures *f = g_hash_table_lookup(a->failures, client);

        if (!f) {
                if (g_hash_table_size(a->failures) >= FAILURES_TABLE_MAX) {
                        /* Forget windows that closed; they block nobody. */
                        GHashTableIter it;
                        gpointer v;
                        g_hash_table_iter_init(&it, a->failures);
                        while (g_hash_table_iter_next(&it, NULL, &v))
                                if (now - ((AuthFailures *) v)->window_start >= AUTH_FAILURE_WINDOW_USEC)
                                        g_hash_table_iter_remove(&it);
                }
                f = g_new0(AuthFailures, 1);
                f->window_start = now;
                g_hash_table_insert(a->failures, g_strdup(client), f);
        }
        if (now - f->window_start >= AUTH_FAILURE_WINDOW_USEC) {
                f->window_start = now;
                f->count = 0;
        }
        f->count++;
}

static void insert_session(Auth *a, AuthSession *s) {
        if (!g_hash_table_contains(a->sessions, s->key) && g_hash_table_size(a->sessions) >= AUTH_SESSIONS_MAX) {
                GHashTableIter it;
                gpointer v;
                AuthSession *oldest = NULL;

                g_hash_table_iter_init(&it, a->sessions);
                while (g_hash_table_iter_next(&it, NULL, &v))
                        if (!oldest || ((AuthSession *) v)->used < oldest->used)
                                oldest = v;
                g_hash_table_remove(a->sessions, oldest->key);
        }
        g_hash_table_replace(a->sessions, s->key, auth_session_ref(s));
}

void auth_forget(Auth *a, AuthSession *s) {
        if (g_hash_table_lookup(a->sessions, s->key) == s)
                g_hash_table_remove(a->sessions, s->key);
}

void auth_revoked(Auth *a, const char *token_id) {
        GHashTableIter it;
        gpointer v;

        /* Its BindToken may be answered after this signal: the reply and
         * the signal come on different connections. */
        if (!g_hash_table_contains(a->revoked, token_id)) {
                char *id = g_strdup(token_id);

                if (g_queue_get_length(&a->revoked_order) >= AUTH_REVOKED_MAX)
                        g_hash_table_remove(a->revoked, g_queue_pop_head(&a->revoked_order));
                g_hash_table_add(a->revoked, id);
                g_queue_push_tail(&a->revoked_order, id);
        }

        g_hash_table_iter_init(&it, a->sessions);
        while (g_hash_table_iter_next(&it, NULL, &v))
                if (g_strcmp0(((AuthSession *) v)->token_id, token_id) == 0)
                        g_hash_table_iter_remove(&it);
}

bool auth_is_revoked(const Auth *a, const char *token_id) {
        return g_hash_table_contains(a->revoked, token_id);
}

void auth_forget_all(Auth *a) {
        g_hash_table_remove_all(a->sessions);
}

typedef struct Waiter {
        AuthCallback cb;
        void *userdata;
} Waiter;

typedef struct Check {
        Auth *auth;
        char *client;
        char *secret;
        AuthSession *session;
        GArray *waiters; /* Waiter: the first use and those that came meanwhile */
} Check;

void auth_secret_free(char *secret) {
        if (!secret)
                return;
        explicit_bzero(secret, strlen(secret));
        g_free(secret);
}

static void check_free(Check *c) {
        auth_secret_free(c->secret);
        g_free(c->client);
        auth_session_unref(c->session);
        g_array_unref(c->waiters);
        g_free(c);
}

static void check_done(Check *c, AuthResult r, const char *message, unsigned retry) {
        if (g_hash_table_lookup(c->auth->pending, c->session->key) == c)
                g_hash_table_remove(c->auth->pending, c->session->key);
        for (guint i = 0; i < c->waiters->len; i++) {
                Waiter *w = &g_array_index(c->waiters, Waiter, i);
                w->cb(r, r == AUTH_OK ? c->session : NULL, message, retry, w->userdata);
        }
        check_free(c);
}

static unsigned retry_from_message(const char *message) {
        /* The daemon says the delay in its message ("... retry in 42 s"). */
        for (const char *p = message; p && *p; p++)
                if (g_ascii_isdigit(*p)) {
                        unsigned long v = strtoul(p, NULL, 10);
                        return v > 0 && v < 3600 ? (unsigned) v : 60;
                }
        return 60;
}

static void bound(GObject *source, GAsyncResult *res, gpointer userdata) {
        Check *c = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        int64_t now = g_get_monotonic_time();
        const char *id, *role;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
        if (!reply) {
                g_autofree char *name = g_dbus_error_get_remote_error(error);

                g_dbus_error_strip_remote_error(error);
                auth_forget(c->auth, c->session);
                if (name && strcmp(name, "org.freedesktop.DBus.Error.AccessDenied") == 0) {
                        record_failure(c->auth, c->client, now);
                        return check_done(c, AUTH_INVALID, "invalid or expired API token", 0);
                }
                if (name && strcmp(name, KASA_ERROR_RATE_LIMITED) == 0)
                        return check_done(c, AUTH_RATE_LIMITED, error->message, retry_from_message(error->message));
                log_warning("BindToken failed: %s%s%s", name ?: "", name ? ": " : "", error->message);
                return check_done(c, AUTH_UNAVAILABLE, error->message, 0);
        }
        g_variant_get(reply, "(&s&s)", &id, &role);
        if (auth_is_revoked(c->auth, id)) {
                auth_forget(c->auth, c->session);
                return check_done(c, AUTH_INVALID, "the API token was revoked", 0);
        }
        c->session->role = role_from_string(role);
        g_free(c->session->token_id);
        c->session->token_id = g_strdup(id);
        c->session->used = now;
        if (c->session->role == ROLE_NONE) {
                log_warning("Token %s has an unknown role '%s', refusing it.", id, role);
                auth_forget(c->auth, c->session);
                return check_done(c, AUTH_INVALID, "the token's role is unknown to the bridge", 0);
        }
        insert_session(c->auth, c->session);
        check_done(c, AUTH_OK, NULL, 0);
}

static void bind(Check *c) {
        c->auth->bindings++;
        g_dbus_connection_call(c->session->bus, KASA_BUS_NAME, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "BindToken",
                               g_variant_new("(s)", c->secret), G_VARIANT_TYPE("(ss)"),
                               G_DBUS_CALL_FLAGS_NO_AUTO_START, 10000, NULL, bound, c);
}

static void connected(GObject *source, GAsyncResult *res, gpointer userdata) {
        Check *c = userdata;
        g_autoptr(GError) error = NULL;

        c->session->bus = g_dbus_connection_new_for_address_finish(res, &error);
        if (!c->session->bus) {
                log_error("Failed to open a bus connection for a token: %s", error->message);
                return check_done(c, AUTH_UNAVAILABLE, "the bridge cannot reach the bus", 0);
        }
        g_dbus_connection_set_exit_on_close(c->session->bus, false);
        bind(c);
}

void auth_check(Auth *a, const char *client, const char *secret, AuthCallback cb, void *userdata) {
        int64_t now = g_get_monotonic_time();
        unsigned retry = auth_blocked(a, client, now);
        g_autofree char *key = NULL;
        AuthSession *s;
        Check *c;

        if (retry > 0)
                return cb(AUTH_RATE_LIMITED, NULL, "too many failed attempts", retry, userdata);
        key = g_compute_checksum_for_string(G_CHECKSUM_SHA256, secret, -1);
        s = g_hash_table_lookup(a->sessions, key);
        if (s && g_dbus_connection_is_closed(s->bus)) {
                auth_forget(a, s);
                s = NULL;
        }
        if (s) {
                s->used = now;
                return cb(AUTH_OK, s, NULL, 0, userdata);
        }

        /* The same token used again while it is bound: one binding, one
         * connection, for all of them. */
        c = g_hash_table_lookup(a->pending, key);
        if (c) {
                g_array_append_val(c->waiters, ((Waiter) { cb, userdata }));
                return;
        }
        c = g_new0(Check, 1);
        c->auth = a;
        c->client = g_strdup(client);
        c->secret = g_strdup(secret);
        c->waiters = g_array_new(false, false, sizeof(Waiter));
        g_array_append_val(c->waiters, ((Waiter) { cb, userdata }));
        c->session = g_new0(AuthSession, 1);
        c->session->n_ref = 1;
        g_strlcpy(c->session->key, key, sizeof(c->session->key));
        g_hash_table_insert(a->pending, c->session->key, c);
        g_dbus_connection_new_for_address(a->bus_address,
                                          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                  G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                          NULL, NULL, connected, c);
}
