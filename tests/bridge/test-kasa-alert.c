/* SPDX-License-Identifier: MIT */

/* The bridge's alert tracking (bridge/kasa-alert.c): which signals are
 * which events, and what a kasamond that comes back changed, without a
 * bus: the KasaClient is filled by hand. */

#include <glib.h>
#include <math.h>
#include <string.h>

#include "kasa-client.h"
#include "tap.h"

#define A(n) "/org/kasamond/Kasa1/alert/" #n
#define DEV "/org/kasamond/Kasa1/device/50c7bf0a1b2c"

static GString *events;

static void record(KasaAlertEvent e, const KasaAlert *a, void *userdata) {
        g_string_append_printf(events, "%s %u;", kasa_alert_event_to_string(e), a->id);
}

static GVariant *props(uint32_t id, const char *state) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "Id", g_variant_new_uint32(id));
        g_variant_builder_add(&b, "{sv}", "Rule", g_variant_new_uint32(4));
        g_variant_builder_add(&b, "{sv}", "RuleName", g_variant_new_string("freezer"));
        g_variant_builder_add(&b, "{sv}", "Kind", g_variant_new_string("power-below"));
        g_variant_builder_add(&b, "{sv}", "Device", g_variant_new_object_path(DEV));
        g_variant_builder_add(&b, "{sv}", "State", g_variant_new_string(state));
        g_variant_builder_add(&b, "{sv}", "Since", g_variant_new_uint64(1764662400000000));
        g_variant_builder_add(&b, "{sv}", "Value", g_variant_new_double(0.5));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

static GVariant *state(const char *s) {
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "State", g_variant_new_string(s));
        return g_variant_ref_sink(g_variant_builder_end(&b));
}

static void add(KasaClient *c, uint32_t id, const char *path, const char *st) {
        g_autoptr(GVariant) p = props(id, st);
        kasa_alerts_added(c, path, p);
}

static GHashTable *table(uint32_t id1, const char *st1, uint32_t id2, const char *st2) {
        GHashTable *t = kasa_alerts_table_new();
        uint32_t ids[] = { id1, id2 };
        const char *sts[] = { st1, st2 };

        for (size_t i = 0; i < 2; i++) {
                if (!ids[i])
                        continue;
                g_autofree char *path = g_strdup_printf("/org/kasamond/Kasa1/alert/%u", ids[i]);
                g_autoptr(GVariant) p = props(ids[i], sts[i]);
                KasaAlert *a = kasa_alert_new(path);
                kasa_alert_apply(a, p);
                g_hash_table_insert(t, a->path, a);
        }
        return t;
}

static bool took(const char *want) {
        bool same = strcmp(events->str, want) == 0;

        if (!same)
                diag("events: '%s', want '%s'", events->str, want);
        g_string_truncate(events, 0);
        return same;
}

int main(void) {
        KasaClient c = {};
        KasaDevice *d = kasa_device_new(DEV);

        events = g_string_new("");
        c.devices = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) kasa_device_free);
        c.alerts = kasa_alerts_table_new();
        g_free(d->alias);
        d->alias = g_strdup("Freezer");
        g_hash_table_insert(c.devices, d->path, d);
        kasa_client_listen_alerts(&c, record, NULL);

        ok(kasa_alert_path_valid(A(7)), "an alert's path");
        ok(!kasa_alert_path_valid(A()), "no number: not one");
        ok(!kasa_alert_path_valid(A(7/x)), "below one: not one");
        ok(!kasa_alert_path_valid(A(x)), "a name: not one");
        ok(!kasa_alert_path_valid(DEV), "a device: not one");

        /* The first read: what is open is no event. */
        kasa_alerts_replace(&c, table(1, "active", 2, "acknowledged"));
        ok(took(""), "the first read fires nothing");
        is_int(g_hash_table_size(c.alerts), 2, "but knows both alerts");

        add(&c, 3, A(3), "active");
        ok(took("fired 3;"), "InterfacesAdded: fired");
        add(&c, 3, A(3), "active");
        ok(took(""), "the same object again: nothing");
        {
                g_autoptr(GVariant) s = state("acknowledged");
                kasa_alerts_changed(&c, A(3), s);
                ok(took("acknowledged 3;"), "State acknowledged: acknowledged");
                kasa_alerts_changed(&c, A(3), s);
                ok(took(""), "acknowledged again: nothing");
                kasa_alerts_changed(&c, A(9), s);
                ok(took(""), "an unknown alert's change: nothing");
        }
        kasa_alerts_removed(&c, A(1));
        ok(took("resolved 1;"), "InterfacesRemoved: resolved");
        kasa_alerts_removed(&c, A(1));
        ok(took(""), "twice: nothing");

        /* kasamond leaves with 2 (acknowledged) and 3 (acknowledged) open,
         * and comes back with 3 and a new 4; 2 resolved meanwhile. */
        kasa_alerts_down(&c);
        is_int(g_hash_table_size(c.alerts), 0, "kasamond gone: no alert shown");
        kasa_alerts_replace(&c, table(3, "acknowledged", 4, "active"));
        ok(took("resolved 2;fired 4;"), "back: what resolved and fired meanwhile, nothing for the one still open");

        /* Another restart: 3 resolved, 4 acknowledged meanwhile. */
        kasa_alerts_down(&c);
        kasa_alerts_replace(&c, table(4, "acknowledged", 0, NULL));
        ok(took("resolved 3;acknowledged 4;"), "an acknowledgement meanwhile is one too");

        /* A new owner without a departure: compared with the current ones. */
        kasa_alerts_replace(&c, table(4, "acknowledged", 5, "active"));
        ok(took("fired 5;"), "read again without leaving: only the new one");

        {
                g_autoptr(GPtrArray) l = kasa_client_alerts(&c);
                is_int(l->len, 2, "two open");
                is_int(((KasaAlert *) l->pdata[0])->id, 4, "by id");
                json_t *j = kasa_alert_json(&c, l->pdata[1], KASA_ALERT_FIRED);
                g_autofree char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
                is_str(s,
                       "{\"alias\":\"Freezer\",\"device\":\"50c7bf0a1b2c\",\"id\":5,\"kind\":\"power-below\","
                       "\"path\":\"/org/kasamond/Kasa1/alert/5\",\"rule\":4,\"rule_name\":\"freezer\","
                       "\"since_usec\":1764662400000000,\"state\":\"active\",\"value\":0.5}",
                       "the alert's JSON, as ListAlerts has it");
                json_decref(j);
                ((KasaAlert *) l->pdata[1])->value = NAN;
                g_hash_table_remove_all(c.devices);
                j = kasa_alert_json(&c, l->pdata[1], KASA_ALERT_RESOLVED);
                ok(json_is_null(json_object_get(j, "alias")) && json_is_null(json_object_get(j, "value")) &&
                           strcmp(json_string_value(json_object_get(j, "state")), "resolved") == 0 &&
                           strcmp(json_string_value(json_object_get(j, "device")), "50c7bf0a1b2c") == 0,
                   "resolved, its device gone, no value: state resolved, alias and value null, the id from the path");
                json_decref(j);
        }

        g_hash_table_destroy(c.alerts);
        if (c.alerts_before)
                g_hash_table_destroy(c.alerts_before);
        g_hash_table_destroy(c.devices);
        g_string_free(events, true);
        return done_testing();
}
