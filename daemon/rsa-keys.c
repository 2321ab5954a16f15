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
        uint64_t lifetime;
        Worker *worker;            /* made at the first request */
        AesptKeyPair *current;     /* serves handshakes until current_end */
        uint64_t current_end;      /* CLOCK_MONOTONIC usec */
        AesptKeyPair *spare;       /* the next one, unused */
        bool making;               /* a KeyJob is out */
        Waiter *head, **tail;
};

static uint64_t now(RsaKeys *k) {
        uint64_t t = 0;

        (void) sd_event_now(k->event, CLOCK_MONOTONIC, &t);
        return t;
}

static void job_run(WorkerJob *w) {
        KeyJob *j = (KeyJob *) w;

        j->error = aespt_keypair_generate(&j->kp);
}

static void job_done(WorkerJob *w, bool cancelled);

static void make_one(RsaKeys *k) {
        KeyJob *j;
        int r;

        if (k->making)
                return;
        if (!k->worker) {
                r = worker_new(k->event, 1, 0, &k->worker);
                if (r < 0) {
                        log_error_errno(r, "Failed to start the RSA key thread: %m");
                        return;
                }
        }
        j = calloc(1, sizeof(KeyJob));
        if (!j) {
                log_oom();
                return;
        }
        j->w.run = job_run;
        j->w.done = job_done;
        j->keys = k;
        r = worker_submit(k->worker, &j->w);
        if (r < 0) {
                free(j);
                log_error_errno(r, "Failed to queue an RSA key pair: %m");
                return;
        }
        k->making = true;
}

/* kp becomes the current pair, its lifetime starting now. */
static void promote(RsaKeys *k, AesptKeyPair *kp) {
        aespt_keypair_unref(k->current);
        k->current = kp;
        k->current_end = now(k) + k->lifetime;
        /* Its successor, made while it serves. */
        make_one(k);
}

static bool current_fresh(RsaKeys *k) {
        return k->current && now(k) < k->current_end;
}

static void job_done(WorkerJob *w, bool cancelled) {
        KeyJob *j = (KeyJob *) w;
        RsaKeys *k = j->keys;
        Waiter *list;

        if (cancelled) {
                aespt_keypair_unref(j->kp);
                free(j);
                return;
        }
        k->making = false;
        if (j->error < 0)
                log_warning_errno(j->error, "Failed to make an RSA key pair for an AES handshake: %m");
        list = k->head;
        k->head = NULL;
        k->tail = &k->head;
        if (j->kp && list)
                promote(k, TAKE_PTR(j->kp));
        else if (j->kp && !k->spare)
                k->spare = TAKE_PTR(j->kp);
        aespt_keypair_unref(j->kp);
        /* Everyone waiting shares the new pair (or hears why there is
         * none: the next poll asks again, a failing generator never spins). */
        while (list) {
                Waiter *next = list->next;
                list->cb(j->error < 0 ? NULL : aespt_keypair_ref(k->current), j->error < 0 ? j->error : 0,
                         list->userdata);
                free(list);
                list = next;
        }
        free(j);
}

int rsa_keys_new(sd_event *e, uint64_t lifetime_usec, RsaKeys **ret) {
        RsaKeys *k = calloc(1, sizeof(RsaKeys));

        if (!k)
                return -ENOMEM;
        k->event = sd_event_ref(e);
        k->lifetime = lifetime_usec;
        k->tail = &k->head;
        *ret = k;
        return 0;
}

RsaKeys *rsa_keys_free(RsaKeys *k) {
        Waiter *list;

        if (!k)
                return NULL;
        k->worker = worker_free(k->worker);
        k->current = aespt_keypair_unref(k->current);
        k->spare = aespt_keypair_unref(k->spare);
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

bool rsa_keys_ready(RsaKeys *k) {
        return !k->head && (current_fresh(k) || k->spare);
}

int rsa_keys_get(RsaKeys *k, RsaKeysFn cb, void *userdata, AesptKeyPair **ret) {
        Waiter *w;

        /* A spare's lifetime starts now: it serves this ask in any case. */
        if (!k->head && !current_fresh(k) && k->spare) {
                promote(k, TAKE_PTR(k->spare));
                *ret = aespt_keypair_ref(k->current);
                return 1;
        }
        if (!k->head && current_fresh(k)) {
                *ret = aespt_keypair_ref(k->current);
                return 1;
        }
        for (w = k->head; w; w = w->next)
                if (w->userdata == userdata) {
                        w->cb = cb;
                        return 0;
                }
        make_one(k);
        if (!k->making)
                return -EIO;
        w = calloc(1, sizeof(Waiter));
        if (!w)
                return -ENOMEM;
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
