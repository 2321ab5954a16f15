/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "tap.h"

#define SEC UINT64_C(1000000)
#define MINUTE (60 * SEC)

/* What the engine told, in order: "+id rule device" or "-id rule device". */
static GPtrArray *events;
static Alert last_fired, last_resolved;
static bool last_resolved_had_rule;

static void on_fired(void *userdata, const AlertRule *r, const Alert *a) {
        g_ptr_array_add(events, g_strdup_printf("+%u %u %s", a->id, r->id, a->device));
        last_fired = *a;
}

static void on_resolved(void *userdata, const AlertRule *r, const Alert *a) {
        g_ptr_array_add(events, g_strdup_printf("-%u %u %s", a->id, a->rule, a->device));
        last_resolved = *a;
        last_resolved_had_rule = r != NULL;
}

static const AlertEngineOps ops = { .fired = on_fired, .resolved = on_resolved };

/* The events since the last call, joined by ",". */
static char *take_events(void) {
        g_ptr_array_add(events, NULL);
        char *s = g_strjoinv(",", (char **) events->pdata);
        g_ptr_array_unref(events);
        events = g_ptr_array_new_with_free_func(g_free);
        return s;
}

static void check_events(const char *want, const char *name) {
        g_autofree char *got = take_events();
        is_str(got, want, "%s", name);
}

/* A fake clock: every round is one more poll interval. */
static uint64_t now = 1000 * SEC;

static void round_of(AlertEngine *e, const AlertSample *s, size_t n, uint64_t step) {
        now += step;
        alert_engine_round(e, now, s, n);
}

static AlertEngine *engine_with(uint32_t id, AlertKind kind, const char *scope, double threshold,
                                uint64_t duration, uint64_t cooldown) {
        AlertEngine *e;
        AlertRule r = {
                .id = id,
                .name = (char *) "rule",
                .kind = kind,
                .scope = (char *) scope,
                .threshold = threshold,
                .duration_usec = duration,
                .cooldown_usec = cooldown,
        };

        if (alert_engine_new(&ops, NULL, &e) < 0 || alert_engine_add_rule(e, &r) < 0)
                abort();
        return e;
}

static AlertSample plug(const char *id, double watts) {
        return (AlertSample) { .device = id, .online = true, .on = true, .have_power = true, .power_w = watts };
}

static void test_names(void) {
        for (int k = 0; k < _ALERT_KIND_MAX; k++)
                ok(alert_kind_from_string(alert_kind_to_string(k)) == k, "kind %s round trips",
                   alert_kind_to_string(k));
        ok(alert_kind_from_string("power") == _ALERT_KIND_INVALID, "unknown kind refused");
        ok(alert_state_from_string("acknowledged") == ALERT_ACKNOWLEDGED, "state names");
}

static void test_validate(void) {
        char *why = NULL;
        char *hook_path[] = { (char *) "/usr/bin/logger", NULL };
        char *hook_dots[] = { (char *) "..", NULL };
        char *hook_name[] = { (char *) "mail-me", (char *) "alert; rm -rf /", NULL };
        AlertRule r = { .id = 1, .name = (char *) "freezer", .kind = ALERT_POWER_BELOW, .scope = (char *) "",
                        .threshold = 5 };

        ok(alert_rule_validate(&r, NULL) == 0, "a good rule");
        r.threshold = NAN;
        ok(alert_rule_validate(&r, &why) == -EINVAL && why, "NaN threshold refused: %s", why);
        g_clear_pointer(&why, g_free);
        r.threshold = -1;
        ok(alert_rule_validate(&r, NULL) == -EINVAL, "negative threshold refused");
        r.kind = ALERT_OFFLINE;
        ok(alert_rule_validate(&r, NULL) == 0, "offline needs no threshold");
        r.duration_usec = ALERT_DURATION_MAX_USEC + 1;
        ok(alert_rule_validate(&r, NULL) == -EINVAL, "too long a duration refused");
        r.duration_usec = 0;
        r.name = (char *) "";
        ok(alert_rule_validate(&r, NULL) == -EINVAL, "empty name refused");
        r.name = (char *) "bad\nname";
        ok(alert_rule_validate(&r, NULL) == -EINVAL, "control characters refused");
        r.name = (char *) "x";
        r.hook = hook_path;
        ok(alert_rule_validate(&r, &why) == -EINVAL, "a hook outside the hooks directory refused: %s", why);
        g_clear_pointer(&why, g_free);
        r.hook = hook_dots;
        ok(alert_rule_validate(&r, NULL) == -EINVAL, "'..' refused");
        r.hook = hook_name;
        ok(alert_rule_validate(&r, NULL) == 0, "a hook's name, arguments as they are (never a shell's)");
}

static void test_power_above(void) {
        AlertEngine *e = engine_with(1, ALERT_POWER_ABOVE, "", 1000, 2 * MINUTE, 0);
        AlertSample s[2] = { plug("heater", 1500), plug("lamp", 10) };

        round_of(e, s, 2, MINUTE);
        check_events("", "power-above: not before its duration");
        round_of(e, s, 2, MINUTE);
        check_events("", "power-above: one minute held");
        round_of(e, s, 2, MINUTE);
        check_events("+1 1 heater", "power-above: fires after two minutes, for the heater only");
        ok(fabs(last_fired.value - 1500) < 1e-9, "value is the power");
        ok(alert_engine_n_alerts(e) == 1 && alert_engine_find(e, 1), "one open alert");
        round_of(e, s, 2, MINUTE);
        check_events("", "fires once while it holds");
        s[0].power_w = 900;
        round_of(e, s, 2, MINUTE);
        check_events("-1 1 heater", "resolves below the threshold");
        ok(last_resolved.state == ALERT_RESOLVED && last_resolved.resolved_usec == now && last_resolved_had_rule,
           "resolved, with its time");
        ok(alert_engine_n_alerts(e) == 0, "none open");
        alert_engine_free(e);
}

static void test_power_below_unknown(void) {
        AlertEngine *e = engine_with(2, ALERT_POWER_BELOW, "freezer", 5, 0, 0);
        AlertSample s = plug("freezer", 80);
        AlertSample other = plug("other", 0);

        round_of(e, &s, 1, MINUTE);
        alert_engine_round(e, now, &other, 1);
        check_events("", "power-below: not while drawing, and not for another device");
        s.power_w = 0;
        round_of(e, &s, 1, MINUTE);
        check_events("+1 2 freezer", "power-below fires when the load drops to 0 (duration 0)");
        s.online = false;
        s.have_power = false;
        round_of(e, &s, 1, MINUTE);
        check_events("", "an unknown reading neither resolves nor fires");
        s.online = true;
        s.have_power = true;
        s.power_w = 70;
        round_of(e, &s, 1, MINUTE);
        check_events("-1 2 freezer", "resolves once drawing again");
        alert_engine_free(e);
}

static void test_offline(void) {
        AlertEngine *e = engine_with(3, ALERT_OFFLINE, "", 0, 5 * MINUTE, 0);
        AlertSample s = plug("p", 10);

        s.online = false;
        s.have_power = false;
        /* The first round that sees it offline starts the count. */
        for (int i = 0; i < 5; i++)
                round_of(e, &s, 1, MINUTE);
        check_events("", "offline: four minutes are not five");
        round_of(e, &s, 1, MINUTE);
        check_events("+1 3 p", "offline: fires after five");
        ok(fabs(last_fired.value - 300) < 1e-9, "value: seconds offline (%g)", last_fired.value);
        s.online = true;
        round_of(e, &s, 1, MINUTE);
        check_events("-1 3 p", "offline: resolves when back");
        alert_engine_free(e);
}

static void test_on_longer(void) {
        AlertEngine *e = engine_with(4, ALERT_ON, "", 0, 60 * MINUTE, 0);
        AlertSample s = plug("heater", 2000);

        round_of(e, &s, 1, MINUTE);
        round_of(e, &s, 1, 59 * MINUTE);
        check_events("", "on: 59 minutes");
        s.online = false;
        round_of(e, &s, 1, MINUTE);
        check_events("", "on: offline, the relay is unknown and nothing changes");
        s.online = true;
        round_of(e, &s, 1, MINUTE);
        check_events("+1 4 heater", "on: fires past an hour, the offline minute counted as on");
        s.on = false;
        round_of(e, &s, 1, MINUTE);
        check_events("-1 4 heater", "on: resolves when switched off");
        s.on = true;
        round_of(e, &s, 1, 59 * MINUTE);
        check_events("", "on: the hour starts again after it was off");
        alert_engine_free(e);
}

static void test_budgets(void) {
        static const struct {
                AlertKind kind;
                const char *name;
        } kinds[] = {
                { ALERT_ENERGY_DAY, "energy-day" },
                { ALERT_ENERGY_MONTH, "energy-month" },
                { ALERT_COST_DAY, "cost-day" },
                { ALERT_COST_MONTH, "cost-month" },
        };

        for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
                AlertEngine *e = engine_with(5, kinds[k].kind, "", 100, 0, 0);
                AlertSample s = plug("p", 500);
                double *v = kinds[k].kind == ALERT_ENERGY_DAY   ? &s.energy_day_wh
                            : kinds[k].kind == ALERT_ENERGY_MONTH ? &s.energy_month_wh
                            : kinds[k].kind == ALERT_COST_DAY     ? &s.cost_day
                                                                  : &s.cost_month;
                bool energy = kinds[k].kind == ALERT_ENERGY_DAY || kinds[k].kind == ALERT_ENERGY_MONTH;

                *v = 150;
                round_of(e, &s, 1, MINUTE);
                g_autofree char *name = g_strdup_printf("%s: unknown (no meter or no tariff) never fires",
                                                        kinds[k].name);
                check_events("", name);
                if (energy)
                        s.have_energy = true;
                else
                        s.have_cost = true;
                *v = 99;
                round_of(e, &s, 1, MINUTE);
                check_events("", "under the budget");
                *v = 101;
                round_of(e, &s, 1, MINUTE);
                g_free(name);
                name = g_strdup_printf("%s: fires over the budget", kinds[k].name);
                check_events("+1 5 p", name);
                ok(fabs(last_fired.value - 101) < 1e-9, "%s: value is the amount", kinds[k].name);
                *v = 0;
                round_of(e, &s, 1, MINUTE);
                g_free(name);
                name = g_strdup_printf("%s: resolves when the period starts again", kinds[k].name);
                check_events("-1 5 p", name);
                alert_engine_free(e);
        }
}

static void test_flapping_cooldown(void) {
        AlertEngine *e = engine_with(6, ALERT_POWER_BELOW, "", 5, 0, 10 * MINUTE);
        AlertSample s = plug("freezer", 0);
        unsigned fired = 0;

        /* A compressor cycling every minute: 0 W, 80 W, 0 W ... for an hour. */
        for (int i = 0; i < 60; i++) {
                s.power_w = i % 2 ? 80 : 0;
                round_of(e, &s, 1, MINUTE);
                g_autofree char *ev = take_events();
                fired += strchr(ev, '+') != NULL;
        }
        /* Minute i+1 of the hour: fires at 1, resolves at 2; the next drop
         * at least ten minutes after that is at 13, resolved at 14; then
         * 25, 37, 49: five alerts instead of thirty. */
        ok(fired == 5, "flapping for an hour fires once per cooldown (%u)", fired);

        AlertEngine *e2 = engine_with(7, ALERT_POWER_BELOW, "", 5, 0, 0);
        fired = 0;
        for (int i = 0; i < 60; i++) {
                s.power_w = i % 2 ? 80 : 0;
                round_of(e2, &s, 1, MINUTE);
                g_autofree char *ev = take_events();
                fired += strchr(ev, '+') != NULL;
        }
        ok(fired == 30, "without a cooldown it fires with every drop (%u)", fired);

        /* Held through the cooldown, it fires as soon as the cooldown ends. */
        s.power_w = 0;
        for (int i = 0; i < 20 && alert_engine_n_alerts(e) == 0; i++)
                round_of(e, &s, 1, MINUTE);
        s.power_w = 80;
        round_of(e, &s, 1, MINUTE);
        uint64_t resolved = now;
        g_free(take_events());
        s.power_w = 0;
        while (alert_engine_n_alerts(e) == 0 && now - resolved < 30 * MINUTE)
                round_of(e, &s, 1, MINUTE);
        check_events("+7 6 freezer", "a condition that holds fires again");
        ok(now - resolved == 10 * MINUTE, "exactly when the cooldown ends (%" PRIu64 " s)", (now - resolved) / SEC);
        alert_engine_free(e);
        alert_engine_free(e2);
}

static void test_scope_strip(void) {
        AlertEngine *e = engine_with(8, ALERT_POWER_ABOVE, "strip", 100, 0, 0);
        AlertSample s[4] = { plug("strip", 900), plug("strip00", 500), plug("strip01", 400), plug("plug", 800) };

        s[0].has_outlets = true;
        s[1].parent = s[2].parent = "strip";
        round_of(e, s, 4, MINUTE);
        check_events("+1 8 strip00,+2 8 strip01", "a strip's rule watches its outlets, not the sum or others");

        AlertEngine *all = engine_with(9, ALERT_POWER_ABOVE, "", 100, 0, 0);
        round_of(all, s, 4, MINUTE);
        check_events("+1 9 strip00,+2 9 strip01,+3 9 plug", "every device: plugs and outlets, not strips");

        AlertEngine *one = engine_with(10, ALERT_POWER_ABOVE, "strip01", 100, 0, 0);
        round_of(one, s, 4, MINUTE);
        check_events("+1 10 strip01", "one outlet");

        /* A device that is gone resolves. */
        round_of(e, s + 1, 1, MINUTE);
        check_events("-2 8 strip01", "a removed device's alert resolves");
        alert_engine_free(e);
        alert_engine_free(all);
        alert_engine_free(one);
}

static void test_ack_remove_restore(void) {
        AlertEngine *e = engine_with(11, ALERT_OFFLINE, "", 0, 0, 0);
        AlertSample s = plug("p", 0);
        AlertRule r2 = { .id = 12, .name = (char *) "two", .kind = ALERT_ON, .scope = (char *) "" };

        ok(alert_engine_add_rule(e, &r2) == 0, "second rule");
        ok(alert_engine_add_rule(e, &r2) == -EEXIST, "same id refused");
        alert_engine_set_next_id(e, 40);
        s.online = false;
        round_of(e, &s, 1, MINUTE);
        check_events("+40 11 p", "ids from the database's next");
        ok(alert_engine_acknowledge(e, 40) == 0, "acknowledge");
        ok(alert_engine_find(e, 40)->state == ALERT_ACKNOWLEDGED, "state acknowledged");
        ok(alert_engine_acknowledge(e, 40) == -EALREADY, "twice: -EALREADY");
        ok(alert_engine_acknowledge(e, 41) == -ENOENT, "unknown: -ENOENT");
        round_of(e, &s, 1, MINUTE);
        check_events("", "an acknowledged alert stays until resolved");
        ok(alert_engine_remove_rule(e, 11) == 0, "remove the rule");
        check_events("-40 11 p", "removing a rule resolves its alerts");
        ok(!last_resolved_had_rule, "without the rule");
        ok(alert_engine_remove_rule(e, 11) == -ENOENT, "removed twice: -ENOENT");

        /* kasamond restarted with an alert of rule 12 open since 10 minutes. */
        Alert a = { .id = 7, .rule = 12, .state = ALERT_ACKNOWLEDGED, .since_usec = now - 10 * MINUTE, .value = 60 };
        snprintf(a.device, sizeof a.device, "p");
        ok(alert_engine_restore(e, &a) == 0, "restore an open alert");
        ok(alert_engine_restore(e, &a) == -EEXIST, "one per rule and device");
        a.rule = 99;
        ok(alert_engine_restore(e, &a) == -ENOENT, "unknown rule");
        s.online = true;
        round_of(e, &s, 1, MINUTE);
        check_events("", "a restored alert does not fire again");
        ok(alert_engine_find(e, 7)->state == ALERT_ACKNOWLEDGED, "and keeps its state");
        s.on = false;
        round_of(e, &s, 1, MINUTE);
        check_events("-7 12 p", "and resolves");
        alert_engine_free(e);
}

int main(void) {
        events = g_ptr_array_new_with_free_func(g_free);
        test_names();
        test_validate();
        test_power_above();
        test_power_below_unknown();
        test_offline();
        test_on_longer();
        test_budgets();
        test_flapping_cooldown();
        test_scope_strip();
        test_ack_remove_restore();
        g_ptr_array_unref(events);
        return done_testing();
}
