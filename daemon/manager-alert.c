/* SPDX-License-Identifier: MIT */

/* The manager's side of alerts: samples of every device per round for the
 * engine, and what its firings and resolutions set off. */

#include "manager-alert.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <time.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "kasa-time.h"
#include "log.h"
#include "manager-tariff.h"
#include "readings.h"

static uint64_t now_usec(void) {
        return realtime_usec();
}

char *manager_alert_path(const Alert *a) {
        return g_strdup_printf(KASA_ALERT_PREFIX "/%" PRIu32, a->id);
}

char *manager_alert_device_path(Manager *m, const Alert *a) {
        Device *d = manager_find(m, a->device);

        /* Ids are of [0-9A-Za-z_] (registry.c), valid in a path as they are. */
        return d ? g_strdup(d->path) : g_strdup_printf(KASA_DEVICE_PREFIX "/%s", a->device);
}

const AlertRule *manager_alert_rule(Manager *m, const Alert *a) {
        return alert_engine_rule(m->alerts->engine, a->rule);
}

static void journal(Manager *m, const AlertRule *r, const Alert *a, bool fired) {
        Device *d = manager_find(m, a->device);
        const char *name = r ? r->name : "(removed)";
        const char *kind = r ? alert_kind_to_string(r->kind) : "";
        int q;

        q = sd_journal_send(fired ? "MESSAGE=Alert %" PRIu32 " (%s) fired for %s: %g"
                                  : "MESSAGE=Alert %" PRIu32 " (%s) of %s resolved",
                            a->id, name, d && *d->alias ? d->alias : a->device, a->value,
                            "MESSAGE_ID=%s", fired ? ALERT_MESSAGE_FIRED : ALERT_MESSAGE_RESOLVED,
                            "PRIORITY=%d", fired ? LOG_WARNING : LOG_NOTICE,
                            "DEVICE_ID=%s", a->device,
                            "RULE=%s", name,
                            "RULE_ID=%" PRIu32, a->rule,
                            "RULE_KIND=%s", kind,
                            "ALERT_ID=%" PRIu32, a->id,
                            "VALUE=%g", a->value,
                            NULL);
        if (q < 0)
                log_debug_errno(q, "Failed to write alert %" PRIu32 " to the journal, ignoring: %m", a->id);
}

static void save(Manager *m, const Alert *a) {
        int r = db_alert_save(m->alerts->db, a);
        if (r < 0)
                log_warning_errno(r, "Failed to save alert %" PRIu32 ": %s, ignoring", a->id,
                                  db_alert_last_error(m->alerts->db));
}

static int on_hook_started(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        _cleanup_free_ char *unit = userdata;

        if (e)
                log_warning("Failed to start %s for an alert's hook: %s, ignoring", unit, e->message ?: e->name);
        return 0;
}

/* The hook runs in a unit of its own, kasamond's fixed template started by
 * name (polkit sees the name): the unit's helper asks kasamond for the
 * alert and runs the rule's program, as an unprivileged user. No command
 * line leaves kasamond, so none can be built from device data. */
static void start_hook(Manager *m, const Alert *a) {
        char *unit = g_strdup_printf(ALERT_HOOK_UNIT_PREFIX "%" PRIu32 ".service", a->id);
        int r;

        r = sd_bus_call_method_async(m->bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "StartUnit", on_hook_started, unit, "ss",
                                     unit, "replace");
        if (r < 0) {
                log_warning_errno(r, "Failed to start %s for an alert's hook, ignoring: %m", unit);
                free(unit);
        }
}

static void on_fired(void *userdata, const AlertRule *r, const Alert *a) {
        Manager *m = userdata;

        save(m, a);
        journal(m, r, a, true);
        bus_alert_emit_fired(m, a);
        if (r->hook && m->bus)
                start_hook(m, a);
}

static void on_resolved(void *userdata, const AlertRule *r, const Alert *a) {
        Manager *m = userdata;

        save(m, a);
        journal(m, r, a, false);
        bus_alert_emit_resolved(m, a);
}

static const AlertEngineOps engine_ops = {
        .fired = on_fired,
        .resolved = on_resolved,
};

int manager_alerts_open(Manager *m) {
        _cleanup_free_ char *path = g_strdup_printf("%s/alerts.sqlite", m->state_dir);
        char *error = NULL;
        int r;

        m->alerts = calloc(1, sizeof(ManagerAlerts));
        if (!m->alerts || alert_engine_new(&engine_ops, m, &m->alerts->engine) < 0)
                return log_oom();
        r = db_alert_open(path, &m->alerts->db, &error);
        if (r < 0) {
                log_error_errno(r, "Failed to open %s: %s", path, error ?: strerror(-r));
                free(error);
                return r;
        }
        r = db_alert_load(m->alerts->db, m->alerts->engine);
        if (r < 0)
                return log_error_errno(r, "Failed to load the alert rules from %s: %s", path,
                                       db_alert_last_error(m->alerts->db));
        return 0;
}

void manager_alerts_free(Manager *m) {
        if (!m->alerts)
                return;
        alert_engine_free(m->alerts->engine);
        db_alert_free(m->alerts->db);
        m->alerts = mfree(m->alerts);
}

/* What the rules ask for: month energy reads the store, so only then. */
static bool any_rule(Manager *m, AlertKind k) {
        AlertEngine *e = m->alerts->engine;

        for (size_t i = 0; i < alert_engine_n_rules(e); i++)
                if (alert_engine_rule_at(e, i)->kind == k)
                        return true;
        return false;
}

static double month_energy_wh(Manager *m, Device *d, int64_t now_ms, bool *known) {
        _cleanup_free_ EnergyBucket *b = NULL;
        size_t n = 0;
        int64_t sum = 0;
        int r;

        r = device_energy_buckets(d, calendar_month_start(m->calendar, now_ms), now_ms + 1, true, &b, &n);
        *known = r >= 0;
        for (size_t i = 0; r >= 0 && i < n; i++)
                sum += b[i].energy_mwh;
        return (double) sum / 1000.0;
}

void manager_alerts_round(Manager *m) {
        AlertEngine *e = m->alerts ? m->alerts->engine : NULL;
        _cleanup_free_ AlertSample *s = NULL;
        GHashTableIter it;
        gpointer v;
        size_t n = 0;
        uint64_t now = now_usec();
        int64_t now_ms = (int64_t) (now / 1000);
        bool month_energy, costs;

        /* Without rules there are no alerts either: removing a rule resolves them. */
        if (!e || alert_engine_n_rules(e) == 0)
                return;
        month_energy = any_rule(m, ALERT_ENERGY_MONTH);
        costs = any_rule(m, ALERT_COST_DAY) || any_rule(m, ALERT_COST_MONTH);
        s = calloc(g_hash_table_size(m->devices) + 1, sizeof(AlertSample));
        if (!s) {
                log_oom();
                return;
        }
        g_hash_table_iter_init(&it, m->devices);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Device *d = v;
                AlertSample *x = &s[n++];
                MeterReading r;

                *x = (AlertSample) {
                        .device = d->id,
                        .parent = d->parent ? d->parent->id : NULL,
                        .has_outlets = d->n_outlets > 0,
                        .online = d->online,
                        .on = d->on,
                };
                if (!device_has_meter(d))
                        continue;
                if (meter_reading(d, &r)) {
                        x->have_power = true;
                        x->power_w = (double) r.power_mw / 1000.0;
                }
                x->energy_day_wh = (double) meter_energy_today(d, now_ms) / 1000.0;
                x->have_energy = true;
                if (month_energy)
                        x->energy_month_wh = month_energy_wh(m, d, now_ms, &x->have_energy);
                if (costs) {
                        x->cost_day = manager_device_cost(m, d, false);
                        x->cost_month = manager_device_cost(m, d, true);
                        /* NaN: no tariff prices it; such a rule then waits. */
                        x->have_cost = isfinite(x->cost_day) && isfinite(x->cost_month);
                }
        }
        alert_engine_round(e, now, s, n);
}

int manager_alert_rule_add(Manager *m, AlertRule *r, char **ret_error) {
        int q;

        q = alert_rule_validate(r, ret_error);
        if (q < 0)
                return q;
        if (*r->scope && !manager_find(m, r->scope)) {
                *ret_error = g_strdup_printf("No device %s", r->scope);
                return -ENOENT;
        }
        q = db_alert_insert_rule(m->alerts->db, r);
        if (q == -EEXIST) {
                *ret_error = g_strdup_printf("A rule named '%s' exists already", r->name);
                return q;
        }
        if (q < 0) {
                log_error_errno(q, "Failed to save an alert rule: %s", db_alert_last_error(m->alerts->db));
                *ret_error = g_strdup_printf("Failed to save the rule: %s", db_alert_last_error(m->alerts->db));
                return q;
        }
        q = alert_engine_add_rule(m->alerts->engine, r);
        if (q < 0) {
                (void) db_alert_remove_rule(m->alerts->db, r->id);
                *ret_error = g_strdup(strerror(-q));
                return q;
        }
        log_info("Alert rule %" PRIu32 " (%s, %s) added", r->id, r->name, alert_kind_to_string(r->kind));
        return 0;
}

int manager_alert_rule_remove(Manager *m, uint32_t id, char **ret_error) {
        int q;

        if (!alert_engine_rule(m->alerts->engine, id)) {
                *ret_error = g_strdup_printf("No alert rule %" PRIu32, id);
                return -ENOENT;
        }
        q = db_alert_remove_rule(m->alerts->db, id);
        if (q < 0) {
                log_error_errno(q, "Failed to remove alert rule %" PRIu32 ": %s", id, db_alert_last_error(m->alerts->db));
                *ret_error = g_strdup_printf("Failed to remove the rule: %s", db_alert_last_error(m->alerts->db));
                return q;
        }
        /* Its open alerts resolve, through on_resolved(). */
        (void) alert_engine_remove_rule(m->alerts->engine, id);
        log_info("Alert rule %" PRIu32 " removed", id);
        return 0;
}

int manager_alert_acknowledge(Manager *m, uint32_t id) {
        int r = alert_engine_acknowledge(m->alerts->engine, id);

        if (r < 0)
                return r;
        save(m, alert_engine_find(m->alerts->engine, id));
        bus_alert_emit_changed(m, alert_engine_find(m->alerts->engine, id));
        return 0;
}

const Alert *manager_alert_find_path(Manager *m, const char *path) {
        const char *p;
        char *end;
        unsigned long id;

        if (!m->alerts)
                return NULL;
        p = g_str_has_prefix(path, KASA_ALERT_PREFIX "/") ? path + strlen(KASA_ALERT_PREFIX "/") : NULL;
        if (!p || !g_ascii_isdigit(*p))
                return NULL;
        errno = 0;
        id = strtoul(p, &end, 10);
        if (errno || *end || id == 0 || id > UINT32_MAX)
                return NULL;
        return alert_engine_find(m->alerts->engine, (uint32_t) id);
}

size_t manager_alert_count(Manager *m) {
        return m->alerts ? alert_engine_n_alerts(m->alerts->engine) : 0;
}

const Alert *manager_alert_get(Manager *m, size_t i) {
        return alert_engine_alert_at(m->alerts->engine, i);
}

static json_t *rule_json(const AlertRule *r) {
        json_t *hook = json_null();

        if (r->hook) {
                hook = json_array();
                for (char **p = r->hook; *p; p++)
                        json_array_append_new(hook, json_string(*p));
        }
        return json_pack("{s:I,s:s,s:s,s:s,s:f,s:I,s:I,s:o}", "id", (json_int_t) r->id, "name", r->name, "kind",
                         alert_kind_to_string(r->kind), "device", r->scope, "threshold", r->threshold,
                         "duration_usec", (json_int_t) r->duration_usec, "cooldown_usec",
                         (json_int_t) r->cooldown_usec, "hook", hook);
}

static char *dump(json_t *o) {
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        return s;
}

char *manager_alert_rules_json(Manager *m) {
        json_t *l = json_array();

        for (size_t i = 0; l && i < alert_engine_n_rules(m->alerts->engine); i++)
                json_array_append_new(l, rule_json(alert_engine_rule_at(m->alerts->engine, i)));
        return dump(l);
}

static json_t *alert_json(Manager *m, const Alert *a) {
        const AlertRule *r = manager_alert_rule(m, a);
        Device *d = manager_find(m, a->device);
        _cleanup_free_ char *path = manager_alert_path(a);

        return json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:s,s:I,s:f,s:o}", "id", (json_int_t) a->id, "path", path, "rule",
                         (json_int_t) a->rule, "rule_name", r ? r->name : "", "kind",
                         r ? alert_kind_to_string(r->kind) : "", "device", a->device, "state",
                         alert_state_to_string(a->state), "since_usec", (json_int_t) a->since_usec, "value", a->value,
                         "alias", d ? json_string(d->alias) : json_null());
}

char *manager_alerts_json(Manager *m) {
        json_t *l = json_array();

        for (size_t i = 0; l && i < manager_alert_count(m); i++)
                json_array_append_new(l, alert_json(m, manager_alert_get(m, i)));
        return dump(l);
}

char *manager_alert_describe(Manager *m, const Alert *a) {
        const AlertRule *r = manager_alert_rule(m, a);
        json_t *o = alert_json(m, a);

        if (o && r)
                json_object_set_new(o, "rule_object", rule_json(r));
        return dump(o);
}
