/* SPDX-License-Identifier: MIT */

#include "manager-access.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "db-access.h"
#include "log.h"

#define UID_FMT "%u"

void manager_resolve_bridge(Manager *m) {
        const char *user = m->config.bridge_user;
        struct passwd pw, *found = NULL;
        char buf[4096];
        int r;

        if (!user || !*user) {
                access_set_bridge_uid(m->access, false, 0);
                return;
        }
        r = getpwnam_r(user, &pw, buf, sizeof buf, &found);
        if (r != 0 || !found) {
                if (r != 0)
                        log_warning_errno(r, "Failed to look up the bridge user %s, no bridge: %m", user);
                else
                        log_debug("No user %s: no HTTP bridge, its uid is nobody's", user);
                access_set_bridge_uid(m->access, false, 0);
                return;
        }
        /* Root stays root: as the bridge, every token holder would be. */
        if (found->pw_uid == 0) {
                log_warning("[Bridge] User=%s is root, which cannot be the bridge, ignoring", user);
                access_set_bridge_uid(m->access, false, 0);
                return;
        }
        log_debug("The HTTP bridge is user %s (uid " UID_FMT "): its calls need API tokens", user, found->pw_uid);
        access_set_bridge_uid(m->access, true, found->pw_uid);
}

int manager_access_open(Manager *m) {
        _cleanup_free_ char *path = NULL;
        char *error = NULL;
        int r;

        m->access = access_new(NULL, NULL);
        if (!m->access)
                return log_oom();
        manager_resolve_bridge(m);
        if (asprintf(&path, "%s/access.sqlite", m->state_dir) < 0)
                return log_oom();
        r = db_access_open(path, &m->access_db, &error);
        if (r < 0) {
                log_error_errno(r, "Failed to open %s: %s", path, error ?: strerror(-r));
                free(error);
                return r;
        }
        r = db_access_load(m->access_db, m->access);
        if (r < 0)
                return log_error_errno(r, "Failed to load the API tokens from %s: %s", path,
                                       db_access_last_error(m->access_db));
        polkit_queries_set_access(m->polkit, m->access);
        return 0;
}

void manager_access_close(Manager *m) {
        m->token_expiry = sd_event_source_disable_unref(m->token_expiry);
        if (m->polkit)
                polkit_queries_set_access(m->polkit, NULL);
        m->access_db = db_access_free(m->access_db);
        m->access = access_free(m->access);
}

int manager_token_create(Manager *m, const char *name, AccessRole role, int64_t expires_usec,
                         const AccessToken **ret, char ret_secret[static ACCESS_SECRET_MAX]) {
        AccessToken *t;
        int r;

        r = access_token_new(m->access, name, role, expires_usec, &t, ret_secret);
        if (r < 0)
                return r;
        r = db_access_insert(m->access_db, t);
        if (r < 0) {
                log_error_errno(r, "Failed to store the API token \"%s\": %s", name, db_access_last_error(m->access_db));
                access_token_free(t);
                return r;
        }
        /* Cannot clash: the database took it, and it mirrors m->access. */
        r = access_add(m->access, t);
        if (r < 0)
                return log_error_errno(r, "Failed to keep the API token \"%s\": %m", name);
        *ret = access_find(m->access, t->id);
        log_info("Created API token %s \"%s\" (%s)", (*ret)->id, name, access_role_to_string(role));
        return 0;
}

int manager_token_revoke(Manager *m, const char *id_or_name, char ret_id[static ACCESS_ID_MAX]) {
        const AccessToken *t = access_find(m->access, id_or_name);
        char id[ACCESS_ID_MAX];
        int r;

        if (!t)
                return -ENOENT;
        snprintf(id, sizeof id, "%s", t->id);
        r = db_access_delete(m->access_db, id);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to delete the API token %s: %s", id,
                                       db_access_last_error(m->access_db));
        r = access_remove(m->access, id);
        log_info("Revoked API token %s; %d bus %s bound with it ended", id, MAX(r, 0),
                 r == 1 ? "connection" : "connections");
        snprintf(ret_id, ACCESS_ID_MAX, "%s", id);
        return 0;
}

int manager_token_bind(Manager *m, const char *name, uid_t uid, const char *secret, const AccessToken **ret,
                       uint64_t *ret_retry_usec) {
        int r;

        r = access_bind(m->access, name, uid, secret, ret, ret_retry_usec);
        if (r == -EBUSY)
                log_debug("BindToken from %s (uid " UID_FMT ") refused: too many failures", name, uid);
        else if (r < 0)
                log_notice("BindToken from %s (uid " UID_FMT ") failed: invalid or expired API token", name, uid);
        if (r < 0)
                return r;
        log_debug("Bound API token %s to %s (uid " UID_FMT ")", (*ret)->id, name, uid);
        /* A bridge that runs with DynamicUser= gets its uid when it starts,
         * maybe after kasamond did; a bind that worked is rare and needs
         * a secret, so looking the user up again then costs nothing. */
        if (!access_is_bridge(m->access, uid))
                manager_resolve_bridge(m);
        r = db_access_touch(m->access_db, (*ret)->id, (*ret)->last_used_usec);
        if (r < 0)
                log_warning_errno(r, "Failed to save the last use of API token %s, ignoring: %s", (*ret)->id,
                                  db_access_last_error(m->access_db));
        return 0;
}
