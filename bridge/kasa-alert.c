/* SPDX-License-Identifier: MIT */

/* The bridge's view of kasamond's open alerts, beside its devices
 * (kasa-client.c feeds it), and the events its listeners get: the
 * WebSocket and the webhook. */

#include <math.h>
#include <string.h>

#include "kasa-client.h"
#include "kasa-dbus.h"

static const char *const event_names[_KASA_ALERT_EVENT_MAX] = {
        [KASA_ALERT_FIRED] = "fired",
        [KASA_ALERT_ACKNOWLEDGED] = "acknowledged",
        [KASA_ALERT_RESOLVED] = "resolved",
};

const char *kasa_alert_event_to_string(KasaAlertEvent e) {
        return e >= 0 && e < _KASA_ALERT_EVENT_MAX ? event_names[e] : NULL;
}

KasaAlert *kasa_alert_new(const char *path) {
        KasaAlert *a = g_new0(KasaAlert, 1);

        a->path = g_strdup(path);
        a->rule_name = g_strdup("");
        a->kind = g_strdup("");
        a->device = g_strdup("/");
        a->state = g_strdup("active");
        a->value = NAN;
        return a;
}

void kasa_alert_free(KasaAlert *a) {
        if (!a)
                return;
        g_free(a->path);
        g_free(a->rule_name);
        g_free(a->kind);
        g_free(a->device);
        g_free(a->state);
        g_free(a);
}

GHashTable *kasa_alerts_table_new(void) {
        return g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) kasa_alert_free);
}

bool kasa_alert_path_valid(const char *path) {
        const char *n;

        if (!g_str_has_prefix(path, KASA_ALERT_PREFIX "/"))
                return false;
        n = path + strlen(KASA_ALERT_PREFIX "/");
        return *n && strspn(n, "0123456789") == strlen(n);
}

static void take_str(char **field, GVariant *v) {
        g_free(*field);
        *field = g_variant_dup_string(v, NULL);
}

bool kasa_alert_apply(KasaAlert *a, GVariant *props) {
        GVariantIter it;
        const char *name;
        GVariant *v;
        bool acknowledged = false;

        g_variant_iter_init(&it, props);
        while (g_variant_iter_next(&it, "{&sv}", &name, &v)) {
                if (strcmp(name, "Id") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                        a->id = g_variant_get_uint32(v);
                else if (strcmp(name, "Rule") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
                        a->rule = g_variant_get_uint32(v);
                else if (strcmp(name, "RuleName") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
                        take_str(&a->rule_name, v);
                else if (strcmp(name, "Kind") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
                        take_str(&a->kind, v);
                else if (strcmp(name, "Device") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_OBJECT_PATH))
                        take_str(&a->device, v);
                else if (strcmp(name, "State") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
                        const char *s = g_variant_get_string(v, NULL);
                        acknowledged = strcmp(s, "acknowledged") == 0 && strcmp(a->state, s) != 0;
                        take_str(&a->state, v);
                } else if (strcmp(name, "Since") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
                        a->since_usec = g_variant_get_uint64(v);
                else if (strcmp(name, "Value") == 0 && g_variant_is_of_type(v, G_VARIANT_TYPE_DOUBLE))
                        a->value = g_variant_get_double(v);
                g_variant_unref(v);
        }
        return acknowledged;
}

void kasa_client_listen_alerts(KasaClient *c, KasaAlertListener l, void *userdata) {
        g_assert(c->n_alert_listeners < G_N_ELEMENTS(c->alert_listeners));
        c->alert_listeners[c->n_alert_listeners] = l;
        c->alert_listener_data[c->n_alert_listeners++] = userdata;
}

static void emit(KasaClient *c, KasaAlertEvent e, const KasaAlert *a) {
        for (size_t i = 0; i < c->n_alert_listeners; i++)
                c->alert_listeners[i](e, a, c->alert_listener_data[i]);
}

void kasa_alerts_added(KasaClient *c, const char *path, GVariant *props) {
        KasaAlert *a = g_hash_table_lookup(c->alerts, path);
        bool fired = !a;

        if (!a) {
                a = kasa_alert_new(path);
                g_hash_table_insert(c->alerts, a->path, a);
        }
        kasa_alert_apply(a, props);
        if (fired)
                emit(c, KASA_ALERT_FIRED, a);
}

void kasa_alerts_changed(KasaClient *c, const char *path, GVariant *props) {
        KasaAlert *a = g_hash_table_lookup(c->alerts, path);

        if (a && kasa_alert_apply(a, props))
                emit(c, KASA_ALERT_ACKNOWLEDGED, a);
}

void kasa_alerts_removed(KasaClient *c, const char *path) {
        KasaAlert *a = g_hash_table_lookup(c->alerts, path);

        if (!a)
                return;
        emit(c, KASA_ALERT_RESOLVED, a);
        g_hash_table_remove(c->alerts, path);
}

void kasa_alerts_down(KasaClient *c) {
        /* Called once per read: a kasamond that leaves again before it was
         * read leaves these as they are. */
        if (c->alerts_before)
                g_hash_table_destroy(c->alerts_before);
        c->alerts_before = g_steal_pointer(&c->alerts);
        c->alerts = kasa_alerts_table_new();
}

void kasa_alerts_replace(KasaClient *c, GHashTable *alerts) {
        g_autoptr(GHashTable) old = c->alerts;
        g_autoptr(GHashTable) before = g_steal_pointer(&c->alerts_before);
        bool primed = c->alerts_primed;
        GHashTableIter it;
        gpointer k, v;

        c->alerts = alerts;
        c->alerts_primed = true;
        if (!primed)
                return;
        /* Since the last read: the alerts open then (kept when kasamond
         * left, or still current if it never did) against those now. */
        if (!before)
                before = g_steal_pointer(&old);
        g_hash_table_iter_init(&it, before);
        while (g_hash_table_iter_next(&it, &k, &v))
                if (!g_hash_table_contains(alerts, k))
                        emit(c, KASA_ALERT_RESOLVED, v);
        g_hash_table_iter_init(&it, alerts);
        while (g_hash_table_iter_next(&it, &k, &v)) {
                KasaAlert *was = g_hash_table_lookup(before, k);
                if (!was)
                        emit(c, KASA_ALERT_FIRED, v);
                else if (strcmp(((KasaAlert *) v)->state, "acknowledged") == 0 &&
                         strcmp(was->state, "acknowledged") != 0)
                        emit(c, KASA_ALERT_ACKNOWLEDGED, v);
        }
}

static int compare_alerts(gconstpointer a, gconstpointer b) {
        uint32_t x = (*(KasaAlert *const *) a)->id, y = (*(KasaAlert *const *) b)->id;

        return x < y ? -1 : x > y;
}

GPtrArray *kasa_client_alerts(KasaClient *c) {
        GPtrArray *l = g_ptr_array_sized_new(g_hash_table_size(c->alerts));
        GHashTableIter it;
        gpointer v;

        g_hash_table_iter_init(&it, c->alerts);
        while (g_hash_table_iter_next(&it, NULL, &v))
                g_ptr_array_add(l, v);
        g_ptr_array_sort(l, compare_alerts);
        return l;
}

json_t *kasa_alert_json(KasaClient *c, const KasaAlert *a, KasaAlertEvent event) {
        const KasaDevice *d = g_hash_table_lookup(c->devices, a->device);
        const char *slash = strrchr(a->device, '/');

        return json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:o,s:s,s:I,s:o}", "id", (json_int_t) a->id, "path", a->path,
                         "rule", (json_int_t) a->rule, "rule_name", a->rule_name, "kind", a->kind, "device",
                         d ? d->id : slash ? slash + 1 : a->device, "alias", d ? json_string(d->alias) : json_null(),
                         "state", event == KASA_ALERT_RESOLVED ? "resolved" : a->state, "since_usec",
                         (json_int_t) a->since_usec, "value", isfinite(a->value) ? json_real(a->value) : json_null());
}
