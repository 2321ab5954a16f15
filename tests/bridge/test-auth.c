/* SPDX-License-Identifier: MIT */

/* The bridge's memory of revoked tokens (bridge/auth.c): a binding in
 * flight for a token revoked meanwhile is refused, so the newest ids must
 * be known whatever came before them. */

#include <glib.h>

#include "auth.h"
#include "tap.h"

static void test_revoked_oldest_forgotten(void) {
        g_autoptr(Auth) a = NULL;
        unsigned known = 0;

        /* It does not connect until a token is checked. */
        (void) auth_new("unix:path=/nonexistent", &a);
        for (unsigned i = 0; i <= AUTH_REVOKED_MAX; i++) {
                char id[32];
                g_snprintf(id, sizeof(id), "token-%u", i);
                auth_revoked(a, id);
        }
        for (unsigned i = 1; i <= AUTH_REVOKED_MAX; i++) {
                char id[32];
                g_snprintf(id, sizeof(id), "token-%u", i);
                known += auth_is_revoked(a, id);
        }
        ok(!auth_is_revoked(a, "token-0"), "one revocation past the bound: the oldest is forgotten");
        is_int(known, AUTH_REVOKED_MAX, "the %u newest are all still known", AUTH_REVOKED_MAX);
        auth_revoked(a, "token-1");
        ok(auth_is_revoked(a, "token-1") && auth_is_revoked(a, "token-2"), "the same id twice takes one place");
        ok(!auth_is_revoked(a, "never"), "an id never revoked is not");
}

int main(void) {
        test_revoked_oldest_forgotten();
        return done_testing();
}
