/* SPDX-License-Identifier: MIT */

/* The AES handshakes' key pairs, made on a worker thread (daemon/rsa-keys.c):
 * a first ask waits and is called back from the loop, a spare is ready for
 * the next, waiters are served in order, a cancelled one never hears back,
 * and freeing tells the rest -ECANCELED. */

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
        unsigned calls, order;
} Got;

static unsigned served;

static void on_key(AesptKeyPair *kp, int error, void *userdata) {
        Got *g = userdata;

        g->kp = kp;
        g->error = error;
        g->calls++;
        g->order = ++served;
}

/* Runs the loop until cond or 10 s (a 1024-bit key takes milliseconds). */
#define RUN_UNTIL(e, cond)                                                      \
        do {                                                                    \
                for (int _i = 0; _i < 1000 && !(cond); _i++)                    \
                        (void) sd_event_run(e, 10 * 1000);                      \
        } while (0)

int main(void) {
        sd_event *e = NULL;
        RsaKeys *k = NULL;
        AesptKeyPair *kp = NULL;
        Got a = {}, b = {}, c = {}, d = {};
        char *pem_a;

        if (sd_event_new(&e) < 0 || rsa_keys_new(e, &k) < 0) {
                printf("Bail out! no event loop\n");
                return EXIT_FAILURE;
        }
        is_int(rsa_keys_get(k, on_key, &a, &kp), 0, "first ask: no spare yet, it waits");
        is_int(a.calls, 0, "  and is not called back from inside the call");
        RUN_UNTIL(e, a.calls > 0);
        ok(a.calls == 1 && a.error == 0 && a.kp, "  called back from the loop with a key pair");
        pem_a = strdup(aespt_keypair_pem(a.kp));
        RUN_UNTIL(e, rsa_keys_spare(k));
        ok(rsa_keys_spare(k), "a spare is made meanwhile");
        ok(rsa_keys_get(k, on_key, &b, &kp) == 1 && kp && strcmp(aespt_keypair_pem(kp), pem_a) != 0,
           "  and handed over at once, a fresh one");
        kp = aespt_keypair_free(kp);
        ok(!rsa_keys_spare(k), "  then none is ready until the next is made");

        is_int(rsa_keys_get(k, on_key, &b, &kp), 0, "with no spare, b waits");
        is_int(rsa_keys_get(k, on_key, &c, &kp), 0, "c waits behind it");
        is_int(rsa_keys_get(k, on_key, &d, &kp), 0, "d too");
        rsa_keys_cancel(k, &c);
        RUN_UNTIL(e, b.calls > 0 && d.calls > 0);
        ok(b.calls == 1 && d.calls == 1 && b.kp && d.kp && b.order < d.order, "b and d served, in order");
        is_int(c.calls, 0, "the cancelled c never hears back");

        RUN_UNTIL(e, rsa_keys_spare(k));
        ok(rsa_keys_get(k, on_key, &c, &kp) == 1, "after them, a spare again");
        kp = aespt_keypair_free(kp);
        c = (Got) {};
        is_int(rsa_keys_get(k, on_key, &c, &kp), 0, "c waits again");
        k = rsa_keys_free(k);
        ok(c.calls == 1 && c.error == -ECANCELED && !c.kp, "freeing tells the waiter -ECANCELED");

        aespt_keypair_free(a.kp);
        aespt_keypair_free(b.kp);
        aespt_keypair_free(d.kp);
        free(pem_a);
        sd_event_unref(e);
        return done_testing();
}
