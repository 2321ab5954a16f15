/* SPDX-License-Identifier: MIT */

/* /metrics in Prometheus's text exposition format (version 0.0.4), from
 * the cache: a scrape never calls kasamond. */

#include <math.h>
#include <string.h>

#include "bridge.h"
#include "webhook.h"
#include "ws.h"

void metrics_count(Bridge *b, const char *handler, unsigned status) {
        /* Every request passes here: no allocation but for a new counter.
         * Handlers are the routes' patterns, far shorter than this. */
        char key[256];
        RequestCounter *c;

        g_snprintf(key, sizeof key, "%s %u", handler, status);
        c = g_hash_table_lookup(b->counters, key);
        if (!c) {
                c = g_new0(RequestCounter, 1);
                c->handler = g_strdup(handler);
                c->status = status;
                g_hash_table_insert(b->counters, g_strdup(key), c);
        }
        c->count++;
}

static void label_value(GString *s, const char *v) {
        if (!strpbrk(v, "\\\"\n")) {
                g_string_append(s, v);
                return;
        }
        for (; *v; v++) {
                if (*v == '\\')
                        g_string_append(s, "\\\\");
                else if (*v == '"')
                        g_string_append(s, "\\\"");
                else if (*v == '\n')
                        g_string_append(s, "\\n");
                else
                        g_string_append_c(s, *v);
        }
}

static void labels(GString *s, KasaClient *k, const KasaDevice *d) {
        const KasaDevice *p = d->parent ? g_hash_table_lookup(k->devices, d->parent) : NULL;

        g_string_append(s, "{id=\"");
        label_value(s, d->id);
        g_string_append(s, "\",alias=\"");
        label_value(s, d->alias);
        g_string_append(s, "\",model=\"");
        label_value(s, d->model);
        g_string_append(s, "\",parent=\"");
        label_value(s, p ? p->id : "");
        g_string_append(s, "\"}");
}

typedef enum Value {
        V_POWER,
        V_VOLTAGE,
        V_CURRENT,
        V_ENERGY,
        V_RELAY,
        V_UP,
        V_COST,
} Value;

static const struct {
        const char *name, *type, *help;
        bool metered;
} families[] = {
        [V_POWER] = { "kasa_power_watts", "gauge", "Active power now.", true },
        [V_VOLTAGE] = { "kasa_voltage_volts", "gauge", "RMS voltage now.", true },
        [V_CURRENT] = { "kasa_current_amperes", "gauge", "RMS current now.", true },
        [V_ENERGY] = { "kasa_energy_joules_total", "counter", "Energy used since kasamond first saw the device.",
                       true },
        [V_RELAY] = { "kasa_relay_on", "gauge", "1 while the relay is on.", false },
        [V_UP] = { "kasa_device_up", "gauge", "1 while the device answers its polls.", false },
        [V_COST] = { "kasa_cost_total", "counter",
                     "Cost of the energy used this month, in the tariff's currency; starts again each month.", true },
};

static double value(const KasaDevice *d, Value v) {
        switch (v) {
        case V_POWER:
                return d->power;
        case V_VOLTAGE:
                return d->voltage;
        case V_CURRENT:
                return d->current;
        case V_ENERGY:
                return d->energy_total * 3600.0;
        case V_RELAY:
                return d->on;
        case V_UP:
                return d->online;
        case V_COST:
                return d->cost_month;
        }
        return NAN;
}

GBytes *metrics_devices(Bridge *b) {
        KasaClient *k = b->kasa;
        g_autoptr(GPtrArray) devs = NULL;
        GString *s;

        if (b->devices_metrics)
                return b->devices_metrics;
        devs = kasa_client_sorted(k);
        s = g_string_sized_new(4096 + devs->len * 900);
        g_string_append_printf(s, "# HELP kasa_up 1 while kasamond is on the bus.\n# TYPE kasa_up gauge\nkasa_up %d\n",
                               k->up);
        for (size_t f = 0; f < G_N_ELEMENTS(families); f++) {
                bool any = false;
                for (guint i = 0; i < devs->len; i++) {
                        const KasaDevice *d = devs->pdata[i];
                        double x = value(d, f);

                        if ((families[f].metered && !d->metered) || !isfinite(x))
                                continue;
                        if (f == V_COST && !*k->currency)
                                continue;
                        if (!any) {
                                g_string_append_printf(s, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
                                                       families[f].help, families[f].name, families[f].type);
                                any = true;
                        }
                        g_string_append(s, families[f].name);
                        labels(s, k, d);
                        if (f == V_COST) {
                                /* One currency per home: the label names it. */
                                g_string_truncate(s, s->len - 1);
                                g_string_append(s, ",currency=\"");
                                label_value(s, k->currency);
                                g_string_append(s, "\"}");
                        }
                        /* The bus's doubles come from integers of mW, mV,
                         * mA and mWh: 12 digits keep them exact. */
                        g_string_append_printf(s, " %.12g\n", x);
                }
        }
        b->devices_metrics = g_string_free_to_bytes(s);
        return b->devices_metrics;
}

char *metrics_bridge(Bridge *b, size_t *ret_size) {
        GString *s = g_string_sized_new(2048);
        GHashTableIter it;
        gpointer v;

        g_string_append(s, "# HELP kasa_bridge_http_requests_total HTTP requests answered by the bridge.\n"
                           "# TYPE kasa_bridge_http_requests_total counter\n");
        g_hash_table_iter_init(&it, b->counters);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                RequestCounter *c = v;
                g_string_append(s, "kasa_bridge_http_requests_total{handler=\"");
                label_value(s, c->handler);
                g_string_append_printf(s, "\",code=\"%u\"} %" G_GUINT64_FORMAT "\n", c->status, c->count);
        }
        g_string_append_printf(s,
                               "# HELP kasa_bridge_auth_failures_total Requests refused for a bad token or too many "
                               "failures.\n# TYPE kasa_bridge_auth_failures_total counter\n"
                               "kasa_bridge_auth_failures_total %" G_GUINT64_FORMAT "\n"
                               "# HELP kasa_bridge_token_bindings_total API tokens bound to a bus connection of "
                               "their own (BindToken).\n# TYPE kasa_bridge_token_bindings_total counter\n"
                               "kasa_bridge_token_bindings_total %" G_GUINT64_FORMAT "\n"
                               "# HELP kasa_bridge_ws_clients WebSocket clients connected.\n"
                               "# TYPE kasa_bridge_ws_clients gauge\nkasa_bridge_ws_clients %u\n"
                               "# HELP kasa_bridge_ws_messages_total WebSocket messages queued for clients.\n"
                               "# TYPE kasa_bridge_ws_messages_total counter\n"
                               "kasa_bridge_ws_messages_total %" G_GUINT64_FORMAT "\n"
                               "# HELP kasa_bridge_ws_dropped_total WebSocket clients dropped for not reading.\n"
                               "# TYPE kasa_bridge_ws_dropped_total counter\n"
                               "kasa_bridge_ws_dropped_total %" G_GUINT64_FORMAT "\n",
                               b->auth_failures, b->auth->bindings, b->ws->n_clients, b->ws->sent, b->ws->dropped);
        g_string_append_printf(s,
                               "# HELP kasa_bridge_alerts_open kasamond's open alerts (active or acknowledged).\n"
                               "# TYPE kasa_bridge_alerts_open gauge\nkasa_bridge_alerts_open %u\n",
                               g_hash_table_size(b->kasa->alerts));
        if (b->webhook)
                g_string_append_printf(
                        s,
                        "# HELP kasa_bridge_webhook_events_total Alert events for the webhook, by what became of "
                        "them.\n# TYPE kasa_bridge_webhook_events_total counter\n"
                        "kasa_bridge_webhook_events_total{result=\"delivered\"} %" G_GUINT64_FORMAT "\n"
                        "kasa_bridge_webhook_events_total{result=\"failed\"} %" G_GUINT64_FORMAT "\n"
                        "kasa_bridge_webhook_events_total{result=\"dropped\"} %" G_GUINT64_FORMAT "\n"
                        "# HELP kasa_bridge_webhook_queue Alert events waiting for the webhook or being sent.\n"
                        "# TYPE kasa_bridge_webhook_queue gauge\nkasa_bridge_webhook_queue %u\n",
                        b->webhook->delivered, b->webhook->failed, b->webhook->dropped,
                        g_queue_get_length(&b->webhook->queue));
        *ret_size = s->len;
        return g_string_free(s, false);
}
