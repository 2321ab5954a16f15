/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * RSA key pairs for the AES transport's handshakes, made off the event
 * loop: an RSA-1024 key takes tens of milliseconds of CPU (BENCHMARKS.md),
 * and a hundred AES plugs shaking hands at start-up must not stall the
 * polls of every other device. One worker thread makes them one at a
 * time, in the order asked, and keeps one spare ready, so that a
 * handshake seldom waits at all. Every handshake gets a fresh pair, freed
 * (and cleansed) by its taker as soon as the device's reply is unwrapped.
 */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "aes-passthrough.h"

typedef struct RsaKeys RsaKeys;

/* kp is the callee's (NULL with error < 0: the key could not be made, or
 * -ECANCELED from rsa_keys_free()). Called from the loop. */
typedef void (*RsaKeysFn)(AesptKeyPair *kp, int error, void *userdata);

int rsa_keys_new(sd_event *e, RsaKeys **ret);
/* Waiters hear -ECANCELED. */
RsaKeys *rsa_keys_free(RsaKeys *k);
/* 1 with the spare in *ret at once, or 0: cb is called later with a
 * fresh one (never from inside this call). A userdata waits once at most:
 * asking again replaces its callback. */
int rsa_keys_get(RsaKeys *k, RsaKeysFn cb, void *userdata, AesptKeyPair **ret);
/* Forget userdata's wait (it is being reset or freed). */
void rsa_keys_cancel(RsaKeys *k, void *userdata);
/* Whether a spare is ready (the next rsa_keys_get() returns 1). */
bool rsa_keys_spare(const RsaKeys *k);
