/* SPDX-License-Identifier: MIT */

#include "webhook-policy.h"

#include <string.h>

GUri *webhook_parse_url(const char *url, char **ret_error) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_ENCODED, &error);
        const char *scheme;

        if (!uri) {
                *ret_error = g_strdup_printf("'%s' is not a URL: %s", url, error->message);
                return NULL;
        }
        scheme = g_uri_get_scheme(uri);
        if (g_ascii_strcasecmp(scheme, "http") != 0 && g_ascii_strcasecmp(scheme, "https") != 0) {
                *ret_error = g_strdup_printf("the webhook's URL must be http:// or https://, not %s://", scheme);
                return NULL;
        }
        if (!g_uri_get_host(uri) || !*g_uri_get_host(uri)) {
                *ret_error = g_strdup("the webhook's URL has no host");
                return NULL;
        }
        if (g_uri_get_userinfo(uri)) {
                *ret_error = g_strdup("the webhook's URL may not carry a user or password; put a receiver's "
                                      "secret in its path and the URL in --webhook-file=");
                return NULL;
        }
        return g_steal_pointer(&uri);
}

WebhookVerdict webhook_verdict(unsigned status) {
        if (status >= 200 && status < 300)
                return WEBHOOK_DELIVERED;
        if (status == 301 || status == 302 || status == 307 || status == 308)
                return WEBHOOK_REDIRECT;
        if (status == 408 || status == 429 || (status >= 500 && status < 600))
                return WEBHOOK_RETRY;
        return WEBHOOK_REFUSED;
}

static int effective_port(GUri *u) {
        int port = g_uri_get_port(u);

        if (port > 0)
                return port;
        return g_ascii_strcasecmp(g_uri_get_scheme(u), "https") == 0 ? 443 : 80;
}

bool webhook_redirect_allowed(GUri *configured, GUri *target) {
        const char *from = g_uri_get_scheme(configured), *to = g_uri_get_scheme(target);
        const char *host = g_uri_get_host(target);
        bool to_https = g_ascii_strcasecmp(to, "https") == 0;

        if (!host || g_ascii_strcasecmp(host, g_uri_get_host(configured)) != 0)
                return false;
        if (!to_https && g_ascii_strcasecmp(to, "http") != 0)
                return false;
        if (g_ascii_strcasecmp(from, to) == 0)
                return effective_port(configured) == effective_port(target);
        /* Schemes differ: only the upgrade, to whatever port. */
        return to_https;
}

unsigned webhook_backoff_sec(unsigned failed_attempts) {
        if (failed_attempts == 0)
                return 0;
        if (failed_attempts > 6)
                return WEBHOOK_BACKOFF_MAX_SEC;
        return MIN(1u << (failed_attempts - 1), (unsigned) WEBHOOK_BACKOFF_MAX_SEC);
}

void webhook_item_free(WebhookItem *item) {
        if (!item)
                return;
        if (item->body)
                g_bytes_unref(item->body);
        g_free(item->event);
        g_free(item);
}

size_t webhook_queue_push(GQueue *q, WebhookItem *item, size_t max) {
        size_t dropped = 0;

        g_queue_push_tail(q, item);
        while (g_queue_get_length(q) > MAX(max, (size_t) 1) && g_queue_get_length(q) > 1) {
                webhook_item_free(g_queue_pop_nth(q, 1));
                dropped++;
        }
        return dropped;
}
