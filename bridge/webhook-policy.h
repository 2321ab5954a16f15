/* SPDX-License-Identifier: MIT */
#pragma once

/* The webhook's decisions, without I/O (unit-tested): which URL it takes,
 * what a response means, where a redirect may go, how long to wait before
 * trying again, what is dropped when too many events wait. */

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define WEBHOOK_REDIRECTS_MAX 5
#define WEBHOOK_BACKOFF_MAX_SEC 60

/* An event waiting or being sent. */
typedef struct WebhookItem {
        GBytes *body;
        char *event; /* "fired", "resolved" */
        uint32_t alert;
        unsigned attempts;
} WebhookItem;

/* What a response means for the event being sent. */
typedef enum WebhookVerdict {
        WEBHOOK_DELIVERED, /* 2xx */
        WEBHOOK_RETRY,     /* 408, 429 or 5xx (and network errors, timeouts) */
        WEBHOOK_REFUSED,   /* any other status: trying again will not help */
        WEBHOOK_REDIRECT,  /* 301, 302, 307, 308: to the Location, if allowed */
} WebhookVerdict;

/* Checks the URL: http or https, a host, no user or password (a secret
 * on the command line is anyone's to read; see --webhook-file). Returns
 * NULL with *ret_error set (g_free). */
GUri *webhook_parse_url(const char *url, char **ret_error);
WebhookVerdict webhook_verdict(unsigned status);
/* A redirect from the configured URL to target: the same host, with the
 * same scheme and port, or from http to https. Never to another host,
 * never from https to http. */
bool webhook_redirect_allowed(GUri *configured, GUri *target);
/* Seconds before the next attempt after n failed ones (n >= 1): 1, 2,
 * 4, ... at most WEBHOOK_BACKOFF_MAX_SEC. */
unsigned webhook_backoff_sec(unsigned failed_attempts);
/* Appends item (taken) and drops the oldest waiting items past max, never
 * the head, whose delivery has begun; returns how many it dropped. */
size_t webhook_queue_push(GQueue *q, WebhookItem *item, size_t max);
void webhook_item_free(WebhookItem *item);
