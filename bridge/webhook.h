/* SPDX-License-Identifier: MIT */
#pragma once

#include <libsoup/soup.h>

#include "kasa-client.h"
#include "webhook-policy.h"

/* The webhook: one POST of a JSON body per alert fired and per alert
 * resolved, to one configured URL, one at a time and in order, on the
 * bridge's main loop. Each attempt has a deadline (connection, TLS,
 * request, the response's head and body, redirects: all of it); failures
 * are tried again after a backoff (webhook-policy.h) up to a number of
 * retries. Waiting events are bounded: past the bound the oldest waiting
 * one is dropped, logged once until the queue is empty again. No proxy is
 * used. */

typedef struct WebhookConfig {
        char *url;
        unsigned timeout_sec;
        unsigned retries;
        size_t queue_max;
        char *ca_file; /* NULL: the system's trusted CAs */
} WebhookConfig;

typedef struct WebhookAttempt WebhookAttempt;

typedef struct Webhook {
        KasaClient *kasa;
        GUri *uri;
        unsigned timeout_sec;
        unsigned retries;
        size_t queue_max;
        SoupSession *session;
        GQueue queue;            /* WebhookItem; the head is the one being sent */
        WebhookAttempt *attempt; /* in flight, or NULL */
        guint retry_timer;       /* the head's next attempt, or 0 */
        bool full_logged;
        bool closing;
        uint64_t delivered, failed, dropped;
} Webhook;

/* Logs why and returns a negative errno for a bad URL or CA file. */
int webhook_new(KasaClient *kasa, const WebhookConfig *config, Webhook **ret);
Webhook *webhook_free(Webhook *w);
/* {"event", "time" (RFC 3339: when it fired, or now for a resolution),
 * "alert" (as Manager.ListAlerts has it, state "resolved" when it is)}. */
GBytes *webhook_body(KasaClient *kasa, KasaAlertEvent event, const KasaAlert *a, uint64_t now_usec);
