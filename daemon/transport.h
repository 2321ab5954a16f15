/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a device's poll round and commands talk to: JSON requests in, JSON
 * replies out, one at a time and in order, each with its own deadline.
 * How the JSON travels (the legacy XOR framing on TCP 9999; on port 80,
 * KLAP's HTTP + AES with a sequence number per request, or the older AES
 * securePassthrough) is the transport's business, behind this operations
 * table.
 */

#include <netinet/in.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "net-ops.h"
#include "rsa-keys.h"

typedef struct Transport Transport;

/* error is 0 with the JSON reply (NUL-terminated, valid during the call
 * only), or a negative errno: -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET,
 * -EMSGSIZE, -EBADMSG, -ECANCELED (reset or freed by us); HTTP adds
 * -EACCES (the device and we share no credentials) and -EPROTONOSUPPORT
 * (it speaks neither KLAP nor AES). */
typedef void (*TransportReplyFn)(Transport *t, int error, const char *json, size_t len, void *userdata);

typedef struct TransportOps {
        const char *name;
        /* Queue a request; cb is called exactly once, from the loop (or from
         * reset/free with -ECANCELED), never from inside this call. */
        int (*request)(Transport *t, const char *json, TransportReplyFn cb, void *userdata);
        /* Drop the connection and cancel every queued request. */
        void (*reset)(Transport *t);
        /* Returns 1 if the address changed (queued requests cancelled), 0 if not. */
        int (*set_address)(Transport *t, const struct sockaddr_in *address);
        size_t (*pending)(Transport *t);
        void (*free)(Transport *t);
        /* Why the last request failed, for the bus and the log (never a
         * secret); NULL when the transport has nothing to add to the errno. */
        const char *(*error_message)(Transport *t);
        /* "xor", "klap" (version not known yet), "klap1", "klap2", "aes". */
        const char *(*protocol)(Transport *t);
} TransportOps;

struct Transport {
        const TransportOps *ops;
};

typedef struct TransportConfig {
        sd_event *event;
        const NetOps *net;             /* NULL: net_ops_real */
        struct sockaddr_in address;
        uint64_t timeout_usec;
        size_t max_reply;              /* bytes; 0: the protocol's default */
        /* KLAP: the version to expect (1 or 2; 0: unknown, 2 is tried
         * first; the other is tried too), and the owner's TP-Link account
         * (NULL: none configured; the vendor's default and blank
         * credentials are tried in any case). The strings are only read
         * while creating it. */
        int klap_version;
        const char *user, *password;
        /* HTTP: start with AES securePassthrough rather than KLAP (the
         * 20002 reply said so; a wrong guess costs one round trip), and
         * where its handshakes' RSA key pairs come from (NULL: made on the
         * loop, for tests). */
        bool aes;
        RsaKeys *rsa_keys;
} TransportConfig;

/* The legacy IOT protocol: 4-byte length + XOR autokey (common/kasa-proto). */
int transport_xor_new(const TransportConfig *config, Transport **ret);
/* KLAP or AES securePassthrough over HTTP/1.1 (transport-http.h). */
int transport_http_new(const TransportConfig *config, Transport **ret);

static inline int transport_request(Transport *t, const char *json, TransportReplyFn cb, void *userdata) {
        return t->ops->request(t, json, cb, userdata);
}

static inline void transport_reset(Transport *t) {
        t->ops->reset(t);
}

static inline int transport_set_address(Transport *t, const struct sockaddr_in *address) {
        return t->ops->set_address(t, address);
}

static inline size_t transport_pending(Transport *t) {
        return t->ops->pending(t);
}

static inline const char *transport_protocol(Transport *t) {
        return t->ops->protocol(t);
}

static inline const char *transport_error_message(Transport *t) {
        return t->ops->error_message ? t->ops->error_message(t) : NULL;
}

/* Never call from a TransportReplyFn of the same transport. */
static inline Transport *transport_free(Transport *t) {
        if (t)
                t->ops->free(t);
        return NULL;
}

static inline void transport_freep(Transport **t) {
        transport_free(*t);
}
