/* SPDX-License-Identifier: MIT */

/* The webhook's deliveries with libsoup's client, the bridge's HTTP stack
 * already (common/http1 is the devices' dialect: it refuses the chunked
 * replies that web servers send, and has no TLS). */

#include "webhook.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "rest.h"

struct WebhookAttempt {
        Webhook *w;
        SoupMessage *msg;
        GCancellable *cancel;
        GUri *target; /* the URL, or where a redirect sent it */
        guint deadline;
        bool timed_out;
        unsigned redirects;
        unsigned status;
        char *location;
};

static void attempt_free(WebhookAttempt *a) {
        if (a->deadline)
                g_source_remove(a->deadline);
        g_clear_object(&a->msg);
        g_object_unref(a->cancel);
        g_uri_unref(a->target);
        g_free(a->location);
        g_free(a);
}

GBytes *webhook_body(KasaClient *kasa, KasaAlertEvent event, const KasaAlert *a, uint64_t now_usec) {
        uint64_t when = event == KASA_ALERT_FIRED && a->since_usec ? a->since_usec : now_usec;
        json_t *j = json_pack("{s:s,s:o,s:o}", "event", kasa_alert_event_to_string(event), "time", rest_time(when),
                              "alert", kasa_alert_json(kasa, a, event));
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;

        json_decref(j);
        return s ? g_bytes_new_take(s, strlen(s)) : NULL;
}

static void start(Webhook *w);

/* The head is done with, delivered or not: on to the next. */
static void next(Webhook *w) {
        webhook_item_free(g_queue_pop_head(&w->queue));
        if (g_queue_is_empty(&w->queue)) {
                w->full_logged = false;
                return;
        }
        start(w);
}

static gboolean on_retry(gpointer userdata) {
        Webhook *w = userdata;

        w->retry_timer = 0;
        start(w);
        return G_SOURCE_REMOVE;
}

static void retry_or_give_up(Webhook *w, const char *why) {
        WebhookItem *item = g_queue_peek_head(&w->queue);
        unsigned delay;

        if (item->attempts > w->retries) {
                w->failed++;
                log_warning("Webhook: giving up on alert %" PRIu32 "'s %s event after %u attempts: %s", item->alert,
                            item->event, item->attempts, why);
                return next(w);
        }
        delay = webhook_backoff_sec(item->attempts);
        /* The first failure says why; the give-up says the last reason. */
        if (item->attempts == 1)
                log_warning("Webhook: POST of alert %" PRIu32 "'s %s event failed (%s); trying again in %u s.",
                            item->alert, item->event, why, delay);
        else
                log_debug("Webhook: attempt %u failed (%s); trying again in %u s.", item->attempts, why, delay);
        w->retry_timer = g_timeout_add_seconds(delay, on_retry, w);
}

static void send_attempt(WebhookAttempt *a);

static void redirect(Webhook *w, WebhookAttempt *a) {
        WebhookItem *item = g_queue_peek_head(&w->queue);
        g_autoptr(GError) error = NULL;
        g_autoptr(GUri) to = a->location ? g_uri_parse_relative(a->target, a->location, G_URI_FLAGS_ENCODED, &error)
                                         : NULL;

        if (!to || !webhook_redirect_allowed(w->uri, to) || a->redirects >= WEBHOOK_REDIRECTS_MAX) {
                w->failed++;
                if (!to)
                        log_warning("Webhook: HTTP %u for alert %" PRIu32 "'s %s event with %s Location; not "
                                    "following it.", a->status, item->alert, item->event,
                                    a->location ? "a malformed" : "no");
                else if (a->redirects >= WEBHOOK_REDIRECTS_MAX)
                        log_warning("Webhook: more than %u redirects for alert %" PRIu32 "'s %s event; giving up.",
                                    WEBHOOK_REDIRECTS_MAX, item->alert, item->event);
                else
                        log_warning("Webhook: refusing the redirect of alert %" PRIu32 "'s %s event to %s://%s "
                                    "(only the same host is followed, never from https to http).",
                                    item->alert, item->event, g_uri_get_scheme(to), g_uri_get_host(to));
                w->attempt = NULL;
                attempt_free(a);
                return next(w);
        }
        log_debug("Webhook: following HTTP %u to %s.", a->status, a->location);
        g_uri_unref(a->target);
        a->target = g_steal_pointer(&to);
        a->redirects++;
        g_clear_pointer(&a->location, g_free);
        a->status = 0;
        send_attempt(a);
}

/* The attempt's answer: status 0 for none (why says what happened). */
static void attempt_done(WebhookAttempt *a, const char *why) {
        Webhook *w = a->w;
        WebhookItem *item = g_queue_peek_head(&w->queue);
        WebhookVerdict v = a->status ? webhook_verdict(a->status) : WEBHOOK_RETRY;
        unsigned status = a->status;
        g_autofree char *reason = NULL;

        if (v == WEBHOOK_REDIRECT)
                return redirect(w, a);
        if (status == 0)
                reason = a->timed_out ? g_strdup_printf("no answer within %u s", w->timeout_sec) : g_strdup(why);
        else
                reason = g_strdup_printf("HTTP %u", status);
        w->attempt = NULL;
        attempt_free(a);

        switch (v) {
        case WEBHOOK_DELIVERED:
                w->delivered++;
                if (item->attempts > 1)
                        log_info("Webhook: alert %" PRIu32 "'s %s event delivered at attempt %u.", item->alert,
                                 item->event, item->attempts);
                return next(w);
        case WEBHOOK_REFUSED:
                w->failed++;
                log_warning("Webhook: the receiver refused alert %" PRIu32 "'s %s event with %s; not trying again.",
                            item->alert, item->event, reason);
                return next(w);
        default:
                return retry_or_give_up(w, reason);
        }
}

/* Ends an attempt that outlived the webhook (see webhook_free()). */
static bool abandoned(WebhookAttempt *a) {
        if (!a->w->closing)
                return false;
        a->w->attempt = NULL;
        attempt_free(a);
        return true;
}

static void on_closed(GObject *source, GAsyncResult *res, gpointer userdata) {
        WebhookAttempt *a = userdata;
        g_autoptr(GError) error = NULL;

        /* Closing reads the rest of the body: a body cut by the deadline
         * does not change the status that came before it. */
        if (!g_input_stream_close_finish(G_INPUT_STREAM(source), res, &error))
                log_debug("Webhook: the response's body was not read to its end: %s", error->message);
        if (abandoned(a))
                return;
        attempt_done(a, NULL);
}

static void on_sent(GObject *source, GAsyncResult *res, gpointer userdata) {
        WebhookAttempt *a = userdata;
        g_autoptr(GError) error = NULL;
        g_autoptr(GInputStream) in = soup_session_send_finish(SOUP_SESSION(source), res, &error);

        if (abandoned(a))
                return;
        if (!in)
                return attempt_done(a, error->message);
        a->status = soup_message_get_status(a->msg);
        a->location = g_strdup(soup_message_headers_get_one(soup_message_get_response_headers(a->msg), "Location"));
        /* The body is not wanted, only read to its end (or the deadline)
         * so the connection may serve the next event. */
        g_input_stream_close_async(in, G_PRIORITY_DEFAULT, a->cancel, on_closed, a);
}

static gboolean on_deadline(gpointer userdata) {
        WebhookAttempt *a = userdata;

        a->deadline = 0;
        a->timed_out = true;
        g_cancellable_cancel(a->cancel);
        return G_SOURCE_REMOVE;
}

static void send_attempt(WebhookAttempt *a) {
        Webhook *w = a->w;
        WebhookItem *item = g_queue_peek_head(&w->queue);
        SoupMessageHeaders *h;

        g_clear_object(&a->msg);
        a->msg = soup_message_new_from_uri(SOUP_METHOD_POST, a->target);
        soup_message_add_flags(a->msg, SOUP_MESSAGE_NO_REDIRECT);
        soup_message_set_request_body_from_bytes(a->msg, "application/json", item->body);
        h = soup_message_get_request_headers(a->msg);
        soup_message_headers_replace(h, "X-Kasamond-Event", item->event);
        soup_session_send_async(w->session, a->msg, G_PRIORITY_DEFAULT, a->cancel, on_sent, a);
}

static void start(Webhook *w) {
        WebhookItem *item = g_queue_peek_head(&w->queue);
        WebhookAttempt *a;

        g_assert(!w->attempt && !w->retry_timer && item);
        item->attempts++;
        a = g_new0(WebhookAttempt, 1);
        a->w = w;
        a->cancel = g_cancellable_new();
        a->target = g_uri_ref(w->uri);
        a->deadline = g_timeout_add_seconds(w->timeout_sec, on_deadline, a);
        w->attempt = a;
        send_attempt(a);
}

static void on_alert(KasaAlertEvent event, const KasaAlert *a, void *userdata) {
        Webhook *w = userdata;
        WebhookItem *item;
        bool idle = g_queue_is_empty(&w->queue);
        size_t dropped;

        /* Acknowledging is the users' own doing: no news for a receiver. */
        if (event == KASA_ALERT_ACKNOWLEDGED)
                return;
        item = g_new0(WebhookItem, 1);
        item->body = webhook_body(w->kasa, event, a, (uint64_t) g_get_real_time());
        item->event = g_strdup(kasa_alert_event_to_string(event));
        item->alert = a->id;
        if (!item->body) {
                webhook_item_free(item);
                log_oom();
                return;
        }
        dropped = webhook_queue_push(&w->queue, item, w->queue_max);
        if (dropped > 0) {
                w->dropped += dropped;
                if (!w->full_logged)
                        log_warning("Webhook: %zu events wait for the receiver: dropping the oldest waiting ones "
                                    "until it has taken them all (kasa_bridge_webhook_events_total{result=\"dropped\"}"
                                    " counts them).", w->queue_max);
                w->full_logged = true;
        }
        if (idle)
                start(w);
}

int webhook_new(KasaClient *kasa, const WebhookConfig *config, Webhook **ret) {
        g_autofree char *why = NULL;
        g_autoptr(GUri) uri = webhook_parse_url(config->url, &why);
        Webhook *w;

        if (!uri)
                return log_error_errno(EINVAL, "Bad webhook URL: %s.", why);
        w = g_new0(Webhook, 1);
        w->kasa = kasa;
        w->uri = g_steal_pointer(&uri);
        w->timeout_sec = config->timeout_sec;
        w->retries = config->retries;
        w->queue_max = config->queue_max;
        g_queue_init(&w->queue);
        w->session = soup_session_new_with_options("user-agent", "kasamond-bridge/" PROJECT_VERSION, "max-conns", 1,
                                                   NULL);
        /* A proxy from the environment would see every alert, and the
         * bridge's unit has no environment of its own: none is used. */
        soup_session_set_proxy_resolver(w->session, NULL);
        if (config->ca_file) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GTlsDatabase) db = g_tls_file_database_new(config->ca_file, &error);

                if (!db) {
                        webhook_free(w);
                        return log_error_errno(EINVAL, "Failed to read the webhook's CA file: %s", error->message);
                }
                soup_session_set_tls_database(w->session, db);
        }
        kasa_client_listen_alerts(kasa, on_alert, w);
        /* Not the path: it may be the receiver's secret. */
        log_info("Alerts are POSTed to %s://%s, port %d (timeout %u s, %u retries, %zu events queued at most).",
                 g_uri_get_scheme(w->uri), g_uri_get_host(w->uri),
                 g_uri_get_port(w->uri) > 0                                   ? g_uri_get_port(w->uri)
                 : g_ascii_strcasecmp(g_uri_get_scheme(w->uri), "https") == 0 ? 443
                                                                               : 80,
                 w->timeout_sec,
                 w->retries, w->queue_max);
        *ret = w;
        return 0;
}

Webhook *webhook_free(Webhook *w) {
        guint waiting;

        if (!w)
                return NULL;
        if (w->retry_timer)
                g_source_remove(w->retry_timer);
        w->closing = true;
        if (w->attempt) {
                g_cancellable_cancel(w->attempt->cancel);
                /* The cancelled call ends in a callback on this context:
                 * waited for, so nothing outlives the webhook. */
                while (w->attempt)
                        g_main_context_iteration(NULL, true);
        }
        waiting = g_queue_get_length(&w->queue);
        if (waiting > 0)
                log_warning("Webhook: %u alert events not delivered at exit.", waiting);
        g_queue_clear_full(&w->queue, (GDestroyNotify) webhook_item_free);
        g_clear_object(&w->session);
        g_uri_unref(w->uri);
        g_free(w);
        return NULL;
}
