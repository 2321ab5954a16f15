/* SPDX-License-Identifier: MIT */

#include "rsa-keys.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "macro.h"
#include "worker.h"

typedef struct Waiter {
        struct Waiter *next;
        RsaKeysFn cb;
        void *userdata;
} Waiter;

typedef struct KeyJob {
        WorkerJob w;
        RsaKeys *keys;
        AesptKeyPair *kp;
        int error;
} KeyJob;

struct RsaKeys {
        sd_event *event;
        Worker *worker;            /* made at the first request */
        AesptKeyPair *spare;
        bool making;               /* a KeyJob is out */
        Waiter *head, **tail;
};

static void job_run(WorkerJob *w) {
        KeyJob *j = (KeyJob *) w;

        j->error = aespt_keypair_generate(&j->kp);
}

static int make_one(RsaKeys *k);

static void job_done(WorkerJob *w, bool cancelled) {
        KeyJob *j = (KeyJob *) w;
        RsaKeys *k = j->keys;
        Waiter *wt;

        if (cancelled) {
                aespt_keypair_free(j->kp);
                free(j);
                return;
        }
        k->making = false;
        if (j->error < 0)
                log_warning_errno(j->error, "Failed to make an RSA key pair for an AES handshake: %m");
        wt = k->head;
        if (wt) {
                k->head = wt->next;
                if (!k->head)
                        k->tail = &k->head;
        }
        /* The next one, for the next waiter or as the spare; after a
         * failure only for a waiter, so that a failing generator does
         * not spin. */
        if (!wt && !k->spare)
                k->spare = TAKE_PTR(j->kp);
        if (k->head || (j->error >= 0 && !k->spare))
                (void) make_one(k);
        if (!wt)
                j->kp = aespt_keypair_free(j->kp);
        else {
                wt->cb(TAKE_PTR(j->kp), j->error < 0 ? j->error : 0, wt->userdata);
                free(wt);
        }
        free(j);
}

static int make_one(RsaKeys *k) {
        KeyJob *j;
        int r;

        if (k->making)
                return 0;
        if (!k->worker) {
                r = worker_new(k->event, 1, 1, &k->worker);
                if (r < 0)
                        return log_error_errno(r, "Failed to start the RSA key thread: %m");
        }
        j = calloc(1, sizeof(KeyJob));
        if (!j)
                return log_oom();
        j->w.run = job_run;
        j->w.done = job_done;
        j->keys = k;
        r = worker_submit(k->worker, &j->w);
        if (r < 0) {
                free(j);
                return log_error_errno(r, "Failed to queue an RSA key pair: %m");
        }
        k->making = true;
        return 0;
}

int rsa_keys_new(sd_event *e, RsaKeys **ret) {
        RsaKeys *k = calloc(1, sizeof(RsaKeys));

        if (!k)
                return -ENOMEM;
        k->event = sd_event_ref(e);
        k->tail = &k->head;
        *ret = k;
        return 0;
}

RsaKeys *rsa_keys_free(RsaKeys *k) {
        Waiter *list;

        if (!k)
                return NULL;
        k->worker = worker_free(k->worker);
        k->spare = aespt_keypair_free(k->spare);
        list = k->head;
        k->head = NULL;
        k->tail = &k->head;
        while (list) {
                Waiter *next = list->next;
                list->cb(NULL, -ECANCELED, list->userdata);
                free(list);
                list = next;
        }
        sd_event_unref(k->event);
        free(k);
        return NULL;
}

int rsa_keys_get(RsaKeys *k, RsaKeysFn cb, void *userdata, AesptKeyPair **ret) {
        Waiter *w;
        int r;

        if (k->spare && !k->head) {
                *ret = TAKE_PTR(k->spare);
                (void) make_one(k);
                return 1;
        }
        for (w = k->head; w; w = w->next)
                if (w->userdata == userdata) {
                        w->cb = cb;
                        return 0;
                }
        w = calloc(1, sizeof(Waiter));
        if (!w)
                return -ENOMEM;
        r = make_one(k);
        if (r < 0 && !k->making) {
                free(w);
                return r;
        }
        w->cb = cb;
        w->userdata = userdata;
        *k->tail = w;
        k->tail = &w->next;
        return 0;
}

void rsa_keys_cancel(RsaKeys *k, void *userdata) {
        for (Waiter **p = &k->head; *p; p = &(*p)->next)
                if ((*p)->userdata == userdata) {
                        Waiter *w = *p;
                        *p = w->next;
                        if (!*p)
                                k->tail = p;
                        free(w);
                        return;
                }
}

bool rsa_keys_spare(const RsaKeys *k) {
        return k->spare && !k->head;
}
