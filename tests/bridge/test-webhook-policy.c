/* SPDX-License-Identifier: MIT */

/* The webhook's decisions (bridge/webhook-policy.c): the URLs it takes,
 * what a status means, where a redirect may go, the backoff, and what a
 * full queue drops. */

#include <glib.h>
#include <string.h>

#include "tap.h"
#include "webhook-policy.h"

static bool url_ok(const char *url) {
        g_autofree char *error = NULL;
        g_autoptr(GUri) u = webhook_parse_url(url, &error);

        if (!u)
                diag("%s: %s", url, error);
        return u != NULL;
}

static void test_urls(void) {
        ok(url_ok("http://127.0.0.1:8400/hook?x=1"), "http with a port, path and query");
        ok(url_ok("https://hooks.example/T0/B1/xyz"), "https with a host name");
        ok(url_ok("http://[::1]/h"), "an IPv6 literal");
        ok(!url_ok("ftp://example/x"), "ftp: refused");
        ok(!url_ok("file:///etc/passwd"), "file: refused");
        ok(!url_ok("http:///nohost"), "no host: refused");
        ok(!url_ok("http://user:secret@example/x"), "a password: refused");
        ok(!url_ok("http://user@example/x"), "a user: refused");
        ok(!url_ok("example/x"), "not absolute: refused");
        ok(!url_ok(""), "empty: refused");
}

static void test_verdicts(void) {
        is_int(webhook_verdict(200), WEBHOOK_DELIVERED, "200 delivers");
        is_int(webhook_verdict(204), WEBHOOK_DELIVERED, "204 delivers");
        is_int(webhook_verdict(299), WEBHOOK_DELIVERED, "299 delivers");
        is_int(webhook_verdict(500), WEBHOOK_RETRY, "500: again");
        is_int(webhook_verdict(503), WEBHOOK_RETRY, "503: again");
        is_int(webhook_verdict(408), WEBHOOK_RETRY, "408: again");
        is_int(webhook_verdict(429), WEBHOOK_RETRY, "429: again");
        is_int(webhook_verdict(400), WEBHOOK_REFUSED, "400: refused");
        is_int(webhook_verdict(404), WEBHOOK_REFUSED, "404: refused");
        is_int(webhook_verdict(303), WEBHOOK_REFUSED, "303 (see other, a GET): refused");
        is_int(webhook_verdict(304), WEBHOOK_REFUSED, "304: refused");
        is_int(webhook_verdict(600), WEBHOOK_REFUSED, "600: refused");
        is_int(webhook_verdict(101), WEBHOOK_REFUSED, "101: refused");
        for (unsigned s = 301; s <= 308; s++)
                if (s == 301 || s == 302 || s == 307 || s == 308)
                        is_int(webhook_verdict(s), WEBHOOK_REDIRECT, "%u: a redirect", s);
}

static bool allowed(const char *from, const char *to) {
        g_autoptr(GUri) f = g_uri_parse(from, G_URI_FLAGS_ENCODED, NULL);
        g_autoptr(GUri) t = g_uri_parse(to, G_URI_FLAGS_ENCODED, NULL);

        return webhook_redirect_allowed(f, t);
}

static void test_redirects(void) {
        ok(allowed("http://h.example/a", "http://h.example/b"), "same host, other path");
        ok(allowed("http://h.example/a", "http://H.EXAMPLE:80/b"), "host names in any case, the default port");
        ok(allowed("http://h.example/a", "https://h.example/a"), "http to https on the same host");
        ok(allowed("http://h.example:8080/a", "https://h.example:8443/a"), "the upgrade to any port");
        ok(allowed("https://h.example/a", "https://h.example:443/b"), "https, the default port spelt out");
        ok(!allowed("http://h.example/a", "http://other.example/a"), "another host: no");
        ok(!allowed("http://h.example/a", "http://h.example.evil/a"), "a longer host: no");
        ok(!allowed("http://127.0.0.1:8400/a", "http://127.0.0.9:8400/a"), "another address: no");
        ok(!allowed("http://h.example/a", "http://h.example:8080/a"), "another port: no");
        ok(!allowed("https://h.example/a", "http://h.example/a"), "https to http: no");
        ok(!allowed("http://h.example/a", "ftp://h.example/a"), "another scheme: no");
}

static void test_backoff(void) {
        is_int(webhook_backoff_sec(1), 1, "after the first failure: 1 s");
        is_int(webhook_backoff_sec(2), 2, "then 2 s");
        is_int(webhook_backoff_sec(3), 4, "then 4 s");
        is_int(webhook_backoff_sec(6), 32, "after 6: 32 s");
        is_int(webhook_backoff_sec(7), WEBHOOK_BACKOFF_MAX_SEC, "then at most a minute");
        is_int(webhook_backoff_sec(1000), WEBHOOK_BACKOFF_MAX_SEC, "however many");
}

static WebhookItem *item(uint32_t id) {
        WebhookItem *i = g_new0(WebhookItem, 1);

        i->alert = id;
        i->event = g_strdup("fired");
        i->body = g_bytes_new_static("{}", 2);
        return i;
}

static void test_queue(void) {
        GQueue q = G_QUEUE_INIT;

        is_int(webhook_queue_push(&q, item(1), 3), 0, "1 of 3");
        is_int(webhook_queue_push(&q, item(2), 3), 0, "2 of 3");
        is_int(webhook_queue_push(&q, item(3), 3), 0, "3 of 3");
        is_int(webhook_queue_push(&q, item(4), 3), 1, "a fourth drops one");
        is_int(g_queue_get_length(&q), 3, "3 left");
        is_int(((WebhookItem *) g_queue_peek_nth(&q, 0))->alert, 1, "the head, being sent, stays");
        is_int(((WebhookItem *) g_queue_peek_nth(&q, 1))->alert, 3, "the oldest waiting (2) went");
        is_int(((WebhookItem *) g_queue_peek_nth(&q, 2))->alert, 4, "the newest is there");
        g_queue_clear_full(&q, (GDestroyNotify) webhook_item_free);

        is_int(webhook_queue_push(&q, item(1), 1), 0, "a queue of 1: the first");
        is_int(webhook_queue_push(&q, item(2), 1), 1, "the next is dropped");
        is_int(((WebhookItem *) g_queue_peek_head(&q))->alert, 1, "and the one being sent stays");
        g_queue_clear_full(&q, (GDestroyNotify) webhook_item_free);
}

int main(void) {
        test_urls();
        test_verdicts();
        test_redirects();
        test_backoff();
        test_queue();
        return done_testing();
}
