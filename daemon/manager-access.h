/* SPDX-License-Identifier: MIT */
#pragma once

/* The manager's API tokens: access.h's logic kept in step with
 * db-access.h's table, for bus-manager-access.c. */

#include "access.h"
#include "manager.h"

/* Resolves the bridge's uid, opens access.sqlite in the state directory
 * and loads the tokens; polkit then knows the bridge. */
int manager_access_open(Manager *m);
void manager_access_close(Manager *m);
/* [Bridge] User= to a uid; a missing user means no bridge. At start, and
 * after a successful bind by another uid. */
void manager_resolve_bridge(Manager *m);

/* Stored before it counts. Errors as access_token_new(), or the
 * database's; *ret stays owned by m->access. */
int manager_token_create(Manager *m, const char *name, AccessRole role, int64_t expires_usec,
                         const AccessToken **ret, char ret_secret[static ACCESS_SECRET_MAX]);
/* -ENOENT if no token has that id or name; ret_id: the token's id. */
int manager_token_revoke(Manager *m, const char *id_or_name, char ret_id[static ACCESS_ID_MAX]);
/* As access_bind(); the token's last use is saved, and the bridge's uid
 * looked up again if uid is not it. */
int manager_token_bind(Manager *m, const char *name, uid_t uid, const char *secret, const AccessToken **ret,
                       uint64_t *ret_retry_usec);
