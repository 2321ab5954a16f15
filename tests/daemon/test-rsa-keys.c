/* SPDX-License-Identifier: MIT */

/* The AES handshakes' key pairs, made on a worker thread (daemon/rsa-keys.c):
 * a first ask waits and is called back from the loop; within a pair's
 * lifetime every ask gets it at once; everyone waiting shares one
 * generation; a cancelled waiter never hears back; the successor is made
 * in the background; freeing tells the rest -ECANCELED. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "aes-passthrough.h"
#include "macro.h"
#include "rsa-keys.h"
#include "tap.h"

typedef struct Got {
        AesptKeyPair *kp;
        int error;
        unsigned calls;
} Got;

static void on_key(AesptKeyPair *kp, int error, void *userdata) {
        Got *g = userdata;

        g->kp = kp;
        g->error = error;
        g->calls++;
}

/* Runs the loop until cond, for 10 s at most (a 1024-bit key takes
 * milliseconds): a bound, not a measurement. */
#define RUN_UNTIL(e, cond)                                                      \
        do {                                                                    \
                for (int _i = 0; _i < 1000 && !(cond); _i++)                    \
                        (void) sd_event_run(e, 10 * 1000);                      \
        } while (0)

static bool same(const AesptKeyPair *a, const AesptKeyPair *b) {
        return a && b && strcmp(aespt_keypair_pem(a), aespt_keypair_pem(b)) == 0;
}

int main(void) {
        sd_event *e = NULL;
        RsaKeys *k = NULL, *k0 = NULL;
        AesptKeyPair *kp = NULL, *f = NULL;
        Got a = {}, b = {}, c = {}, d = {}, g = {};

        if (sd_event_new(&e) < 0 || rsa_keys_new(e, RSA_KEYS_LIFETIME_USEC, &k) < 0 ||
            rsa_keys_new(e, 0, &k0) < 0) {
                printf("Bail out! no event loop\n");
                return EXIT_FAILURE;
        }
        ok(!rsa_keys_ready(k), "nothing ready before the first ask");
        is_int(rsa_keys_get(k, on_key, &a, &kp), 0, "first ask: it waits");
        is_int(a.calls, 0, "  and is not called back from inside the call");
        RUN_UNTIL(e, a.calls > 0);
        ok(a.calls == 1 && a.error == 0 && a.kp, "  called back from the loop with a key pair");
        ok(rsa_keys_get(k, on_key, &b, &kp) == 1 && same(kp, a.kp),
           "within its lifetime the same pair is handed out at once");
        kp = aespt_keypair_unref(kp);

        /* Lifetime 0: every ask wants a pair not used before. */
        is_int(rsa_keys_get(k0, on_key, &b, &kp), 0, "lifetime 0: b waits");
        is_int(rsa_keys_get(k0, on_key, &c, &kp), 0, "  c waits with it");
        is_int(rsa_keys_get(k0, on_key, &d, &kp), 0, "  d too");
        rsa_keys_cancel(k0, &c);
        RUN_UNTIL(e, b.calls > 0 && d.calls > 0);
        ok(b.calls == 1 && d.calls == 1 && b.error == 0 && same(b.kp, d.kp),
           "  b and d share the one pair made for them");
        is_int(c.calls, 0, "  the cancelled c never hears back");
        RUN_UNTIL(e, rsa_keys_ready(k0));
        ok(rsa_keys_ready(k0), "  the successor is made in the background");
        ok(rsa_keys_get(k0, on_key, &g, &f) == 1 && f && !same(f, b.kp), "  and handed out at once, a fresh pair");
        is_int(rsa_keys_get(k0, on_key, &g, &kp), 0, "  the next ask waits for yet another");
        k0 = rsa_keys_free(k0);
        ok(g.calls == 1 && g.error == -ECANCELED && !g.kp, "freeing tells the waiter -ECANCELED");

        aespt_keypair_unref(f);
        aespt_keypair_unref(a.kp);
        aespt_keypair_unref(b.kp);
        aespt_keypair_unref(d.kp);
        k = rsa_keys_free(k);
        sd_event_unref(e);
        return done_testing();
}
