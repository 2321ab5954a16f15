/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * RSA key pairs for the AES transport's handshakes, made off the event
 * loop: an RSA-1024 key takes about 13 ms of CPU (BENCHMARKS.md), and a
 * hundred AES plugs shaking hands at start-up must not stall the polls of
 * every other device. One worker thread makes them one at a time.
 *
 * A pair serves every handshake for its lifetime (a minute in the
 * daemon), counted from its first use, then the next one takes over: each
 * device's daily session gets a fresh pair, and a burst of handshakes (a
 * hundred plugs at start-up, wrong credentials tried candidate after
 * candidate) shares one instead of queueing behind a hundred generations,
 * which cost the last plugs their poll deadline (BENCHMARKS.md). The pair
 * only unwraps the session keys devices send to it; sharing it gives a
 * device nothing of another's session. The next pair is made as soon as
 * the current one is first used, so that a handshake seldom waits. Takers
 * hold a reference for one handshake and drop it once the device's reply
 * is unwrapped; the last reference cleanses the private key.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "aes-passthrough.h"

#define RSA_KEYS_LIFETIME_USEC (60 * 1000000ULL)

typedef struct RsaKeys RsaKeys;

/* A reference to kp is the callee's (NULL with error < 0: the key could
 * not be made, or -ECANCELED from rsa_keys_free()). Called from the loop. */
typedef void (*RsaKeysFn)(AesptKeyPair *kp, int error, void *userdata);

int rsa_keys_new(sd_event *e, uint64_t lifetime_usec, RsaKeys **ret);
/* Waiters hear -ECANCELED. */
RsaKeys *rsa_keys_free(RsaKeys *k);
/* 1 with a reference in *ret at once, or 0: cb is called later (never
 * from inside this call). A userdata waits once at most: asking again
 * replaces its callback. */
int rsa_keys_get(RsaKeys *k, RsaKeysFn cb, void *userdata, AesptKeyPair **ret);
/* Forget userdata's wait (it is being reset or freed). */
void rsa_keys_cancel(RsaKeys *k, void *userdata);
/* Whether the next rsa_keys_get() returns 1. */
bool rsa_keys_ready(RsaKeys *k);
