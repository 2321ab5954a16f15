/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * API tokens of the HTTP bridge, and the roles they carry.
 *
 * Every HTTP user reaches kasamond as the bridge's one uid, so for callers
 * of that uid polkit cannot tell them apart: the bridge binds a token to
 * each bus connection it opens (BindToken), and the daemon decides from
 * the bound token's role. This is the pure part: tokens in memory (their
 * secrets only as SHA-256), roles to polkit actions, bindings of bus
 * unique names to tokens, and the limiter of failed binds per uid. The
 * database is db-access.c, the bus glue bus-manager-access.c, the hook
 * into the authorization polkit.c.
 *
 * Times are microseconds since the epoch (UTC), as on the bus.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

typedef enum AccessRole {
        ACCESS_ROLE_VIEWER,
        ACCESS_ROLE_OPERATOR,
        ACCESS_ROLE_ADMIN,
        _ACCESS_ROLE_MAX,
        _ACCESS_ROLE_INVALID = -1,
} AccessRole;

const char *access_role_to_string(AccessRole role);
AccessRole access_role_from_string(const char *s);
/* Whether a token of role may do what polkit action allows. Actions the
 * table does not know (a newer action) are the admin's only. */
bool access_role_allows(AccessRole role, const char *action);

#define ACCESS_SECRET_PREFIX "kasa_"
#define ACCESS_SECRET_BYTES 32
/* The prefix, 32 bytes in unpadded base64url, the NUL. */
#define ACCESS_SECRET_MAX (sizeof(ACCESS_SECRET_PREFIX) - 1 + 43 + 1)
#define ACCESS_ID_BYTES 4
#define ACCESS_ID_MAX (2 * ACCESS_ID_BYTES + 1)
#define ACCESS_HASH_SIZE 32
#define ACCESS_NAME_MAX 64

/* Failed binds a uid may make in ACCESS_FAIL_WINDOW_USEC before it must wait. */
#define ACCESS_FAIL_MAX 5
#define ACCESS_FAIL_WINDOW_USEC (60 * UINT64_C(1000000))
/* The bridge's uid is every HTTP user, and the bridge opens a connection
 * for each token it tries, so neither the uid nor a connection tells
 * clients apart: the bridge limits each client address to ACCESS_FAIL_MAX
 * itself, and its uid may fail for that many clients at once. */
#define ACCESS_BRIDGE_FAIL_MAX (200 * ACCESS_FAIL_MAX)

typedef struct AccessToken {
        char id[ACCESS_ID_MAX];    /* short random hex, never reused while the token exists */
        char *name;                /* unique */
        AccessRole role;
        uint8_t hash[ACCESS_HASH_SIZE]; /* SHA-256 of the secret */
        int64_t created_usec;
        int64_t expires_usec;      /* 0: never */
        int64_t last_used_usec;    /* 0: never bound */
} AccessToken;

AccessToken *access_token_free(AccessToken *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(AccessToken *, access_token_free);

typedef struct Access Access;

/* now: the clock (microseconds since the epoch); NULL for the real one. */
Access *access_new(int64_t (*now)(void *userdata), void *userdata);
Access *access_free(Access *a);

/* The bridge's uid: callers of it are decided by their bound token. */
void access_set_bridge_uid(Access *a, bool have, uid_t uid);
bool access_have_bridge(const Access *a);
bool access_is_bridge(const Access *a, uid_t uid);

/* 1..ACCESS_NAME_MAX bytes of [A-Za-z0-9._@+-], not starting with '-' and
 * not looking like a token id (so that "revoke ID|NAME" is never ambiguous). */
bool access_name_is_valid(const char *name);
bool access_id_is_valid(const char *id);

/* A new token (not yet known to a: store it, then access_add()) and its
 * secret, which exists only here and in the caller's reply. -EINVAL: a bad
 * name or an expiry not in the future; -EEXIST: the name is taken. */
int access_token_new(Access *a, const char *name, AccessRole role, int64_t expires_usec, AccessToken **ret,
                     char ret_secret[static ACCESS_SECRET_MAX]);
/* Takes t over (also on failure). -EEXIST if its id or name is known. */
int access_add(Access *a, AccessToken *t);
/* By id, else by name; NULL if neither. */
const AccessToken *access_find(const Access *a, const char *id_or_name);
/* Forgets the token and ends every binding made with it at once; returns
 * how many bindings ended, -ENOENT if unknown. */
int access_remove(Access *a, const char *id);
/* The earliest expiry after `after`, 0 if none. */
int64_t access_next_expiry(const Access *a, int64_t after);
/* Ends the bindings of each token that expired in (after, now], and
 * calls cb with its id: a binding ends at its token's expiry, not at the
 * next call. Returns how many tokens. */
unsigned access_expire(Access *a, int64_t after, int64_t now, void (*cb)(const char *id, void *userdata),
                       void *userdata);
/* The tokens, sorted by creation then name: free() the array only. */
int access_list(const Access *a, const AccessToken ***ret, size_t *ret_n);

/* SHA-256 (libcrypto). */
void access_hash(const char *secret, uint8_t ret[static ACCESS_HASH_SIZE]);

/* Binds the token whose secret this is to the bus connection name, for uid:
 *  0        bound; *ret_token is the token (its last_used set to now);
 *  -EACCES  wrong, revoked or expired (never saying which), counted;
 *  -EBUSY   uid failed too often; nothing is checked, *ret_retry_usec
 *           says when it may try again. */
int access_bind(Access *a, const char *name, uid_t uid, const char *secret, const AccessToken **ret_token,
                uint64_t *ret_retry_usec);
/* The connection went away. Returns whether it had a binding. */
bool access_unbind(Access *a, const char *name);
size_t access_n_bindings(const Access *a);

/* For a bridge caller on connection name:
 *  1        its token allows action;
 *  -ENOKEY  no token bound (never, revoked, or expired: then dropped);
 *  -EPERM   the role does not allow it (*ret_role says which). */
int access_check(Access *a, const char *name, const char *action, AccessRole *ret_role);

/* ListTokens(): a JSON array of {id, name, role, created, expires,
 * last_used}, times in RFC 3339 (UTC), expires and last_used null for
 * never; no secret, no hash. NULL on OOM. */
char *access_list_json(const Access *a);
