/* SPDX-License-Identifier: MIT */
#pragma once

#include <gio/gio.h>
#include <stdbool.h>
#include <stdint.h>

#include "request.h"

/* API tokens. The daemon decides what a token may do (ACCESS-API:
 * BindToken on a bus connection of its own); the bridge keeps one such
 * connection per token it serves, least recently used ones closed beyond
 * AUTH_SESSIONS_MAX, and asks for the role of a route before it reads
 * anything for the client. A session lasts until kasamond says the token
 * was revoked or expired (TokenRevoked) or kasamond comes back to the
 * bus (a restart ends every binding). Failed attempts are limited per client address.
 * Secrets are kept only as their SHA-256. */

#define AUTH_SESSIONS_MAX 16
#define AUTH_FAILURES_MAX 5
#define AUTH_FAILURE_WINDOW_USEC (60 * G_USEC_PER_SEC)

typedef struct AuthSession {
        unsigned n_ref;
        char key[65]; /* SHA-256 of the secret, hex */
        char *token_id;
        Role role;
        GDBusConnection *bus;
        int64_t used;
} AuthSession;

typedef struct AuthFailures {
        int64_t window_start;
        unsigned count;
} AuthFailures;

typedef struct Auth {
        char *bus_address;
        GHashTable *sessions; /* key -> AuthSession */
        GHashTable *pending;  /* key -> the check of a token being bound now */
        GHashTable *revoked;  /* ids of TokenRevoked: a binding in flight for one is refused */
        GQueue revoked_order; /* the same ids (the table owns them), oldest first */
        GHashTable *failures; /* client address -> AuthFailures */
        uint64_t bindings;    /* BindToken calls made */
} Auth;

typedef enum AuthResult {
        AUTH_OK,
        AUTH_INVALID,      /* 401 */
        AUTH_RATE_LIMITED, /* 429 */
        AUTH_UNAVAILABLE,  /* 503: kasamond or the bus could not be asked */
} AuthResult;

/* result, session (a reference, NULL unless AUTH_OK), a message for the
 * client, retry_after in seconds for AUTH_RATE_LIMITED. */
typedef void (*AuthCallback)(AuthResult result, AuthSession *s, const char *message, unsigned retry_after,
                             void *userdata);

int auth_new(const char *bus_address, Auth **ret);
Auth *auth_free(Auth *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Auth, auth_free)

/* Calls cb (maybe before returning) with the session of `secret`. Uses of
 * a token that arrive while it is being bound wait for that binding. */
void auth_check(Auth *a, const char *client, const char *secret, AuthCallback cb, void *userdata);

/* Seconds until `client` may try again, 0 if it may now. */
unsigned auth_blocked(Auth *a, const char *client, int64_t now);

/* The daemon said the token is no longer bound (revoked or expired). */
void auth_forget(Auth *a, AuthSession *s);
/* TokenRevoked: the sessions of that token are closed (once their last
 * user lets go of them). */
void auth_revoked(Auth *a, const char *token_id);
/* Whether the daemon said so. Token ids are never reused; more revocations
 * than AUTH_REVOKED_MAX between a binding's call and its reply is a flood,
 * and the oldest are forgotten. */
#define AUTH_REVOKED_MAX 4096
bool auth_is_revoked(const Auth *a, const char *token_id);
/* kasamond came back, without the bindings of before. */
void auth_forget_all(Auth *a);

AuthSession *auth_session_ref(AuthSession *s);
AuthSession *auth_session_unref(AuthSession *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(AuthSession, auth_session_unref)

/* Frees a copy of a secret, overwritten first. */
void auth_secret_free(char *secret);

/* The secret from "Authorization: Bearer SECRET", or NULL. */
const char *auth_bearer(const char *header);
