/* SPDX-License-Identifier: MIT */
#include "alert.h"
#include "log.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char *const kind_names[_ALERT_KIND_MAX] = {
        [ALERT_POWER_ABOVE] = "power-above",
        [ALERT_POWER_BELOW] = "power-below",
        [ALERT_OFFLINE] = "offline",
        [ALERT_ENERGY_DAY] = "energy-day",
        [ALERT_ENERGY_MONTH] = "energy-month",
        [ALERT_COST_DAY] = "cost-day",
        [ALERT_COST_MONTH] = "cost-month",
        [ALERT_ON] = "on",
};

static const char *const state_names[_ALERT_STATE_MAX] = {
        [ALERT_ACTIVE] = "active",
        [ALERT_ACKNOWLEDGED] = "acknowledged",
        [ALERT_RESOLVED] = "resolved",
};

const char *alert_kind_to_string(AlertKind k) {
        return k >= 0 && k < _ALERT_KIND_MAX ? kind_names[k] : NULL;
}

AlertKind alert_kind_from_string(const char *s) {
        for (int i = 0; s && i < _ALERT_KIND_MAX; i++)
                if (strcmp(s, kind_names[i]) == 0)
                        return i;
        return _ALERT_KIND_INVALID;
}

bool alert_kind_has_threshold(AlertKind k) {
        return k != ALERT_OFFLINE && k != ALERT_ON;
}

const char *alert_state_to_string(AlertState s) {
        return s >= 0 && s < _ALERT_STATE_MAX ? state_names[s] : NULL;
}

AlertState alert_state_from_string(const char *s) {
        for (int i = 0; s && i < _ALERT_STATE_MAX; i++)
                if (strcmp(s, state_names[i]) == 0)
                        return i;
        return _ALERT_STATE_INVALID;
}

void alert_rule_done(AlertRule *r) {
        if (!r)
                return;
        free(r->name);
        free(r->scope);
        g_strfreev(r->hook);
        *r = (AlertRule) {};
}

#define invalid(ret_error, ...) error_set(ret_error, -EINVAL, __VA_ARGS__)

static bool name_is_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n >= ALERT_NAME_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return false;
        return g_utf8_validate(s, -1, NULL);
}

bool alert_hook_name_is_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > 255 || s[0] == '.')
                return false;
        for (const char *p = s; *p; p++)
                if (!g_ascii_isalnum(*p) && !strchr("._-", *p))
                        return false;
        return true;
}

int alert_rule_validate(const AlertRule *r, char **ret_error) {
        size_t n;

        if (!name_is_valid(r->name))
                return invalid(ret_error, "A rule's name is 1 to %d characters of UTF-8 without control characters",
                               ALERT_NAME_MAX - 1);
        if (!alert_kind_to_string(r->kind))
                return invalid(ret_error, "Unknown rule type");
        if (!r->scope || strlen(r->scope) >= 32)
                return invalid(ret_error, "Bad device id");
        if (alert_kind_has_threshold(r->kind) && (!isfinite(r->threshold) || r->threshold < 0))
                return invalid(ret_error, "The threshold of a %s rule is a finite number, 0 or more",
                               alert_kind_to_string(r->kind));
        if (r->duration_usec > ALERT_DURATION_MAX_USEC || r->cooldown_usec > ALERT_DURATION_MAX_USEC)
                return invalid(ret_error, "Durations and cooldowns are 31 days at most");
        if (!r->hook)
                return 0;
        n = g_strv_length(r->hook);
        if (n == 0 || n > ALERT_HOOK_ARGS_MAX)
                return invalid(ret_error, "A hook is 1 to %d arguments", ALERT_HOOK_ARGS_MAX);
        /* Only what the administrator installed runs: a name in the
         * hooks directory, so whoever may add rules cannot name any
         * program of the machine. */
        if (!alert_hook_name_is_valid(r->hook[0]))
                return invalid(ret_error, "A hook's command is the name of a program in the hooks directory "
                               "(letters, digits, '.', '_', '-'; not starting with '.')");
        for (size_t i = 0; i < n; i++)
                if (strlen(r->hook[i]) > 4096 || !g_utf8_validate(r->hook[i], -1, NULL))
                        return invalid(ret_error, "A hook's arguments are UTF-8, 4096 bytes each at most");
        return 0;
}

int alert_rule_copy(const AlertRule *r, AlertRule *ret) {
        AlertRule c = *r;

        c.name = strdup(r->name ?: "");
        c.scope = strdup(r->scope ?: "");
        c.hook = r->hook ? g_strdupv(r->hook) : NULL;
        if (!c.name || !c.scope) {
                alert_rule_done(&c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* One rule on one device. */
typedef struct Track {
        uint32_t rule;
        char device[32];
        bool holding;              /* the condition held at the last known sample */
        uint64_t holding_since;
        uint64_t resolved_usec;    /* the pair's last resolution, for the cooldown; 0: none */
        Alert *alert;              /* open, or NULL */
        unsigned round;            /* the last round that had the device */
} Track;

struct AlertEngine {
        const AlertEngineOps *ops;
        void *userdata;
        GPtrArray *rules;          /* AlertRule*, by id */
        GHashTable *tracks;        /* "rule/device" -> Track* */
        GPtrArray *alerts;         /* open Alert*, by id (not owned: the tracks') */
        uint32_t next_id;
        unsigned round;
        uint64_t now;              /* the last round's time */
};

static void rule_free(void *p) {
        alert_rule_done(p);
        free(p);
}

static void track_free(void *p) {
        Track *t = p;
        if (t)
                free(t->alert);
        free(t);
}

int alert_engine_new(const AlertEngineOps *ops, void *userdata, AlertEngine **ret) {
        AlertEngine *e = calloc(1, sizeof(AlertEngine));

        if (!e)
                return -ENOMEM;
        e->ops = ops;
        e->userdata = userdata;
        e->rules = g_ptr_array_new_with_free_func(rule_free);
        e->tracks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, track_free);
        e->alerts = g_ptr_array_new();
        e->next_id = 1;
        *ret = e;
        return 0;
}

AlertEngine *alert_engine_free(AlertEngine *e) {
        if (!e)
                return NULL;
        g_ptr_array_unref(e->alerts);
        g_hash_table_unref(e->tracks);
        g_ptr_array_unref(e->rules);
        free(e);
        return NULL;
}

void alert_engine_set_next_id(AlertEngine *e, uint32_t id) {
        if (id > e->next_id)
                e->next_id = id;
}

static ssize_t rule_index(AlertEngine *e, uint32_t id) {
        for (guint i = 0; i < e->rules->len; i++)
                if (((AlertRule *) e->rules->pdata[i])->id == id)
                        return i;
        return -1;
}

const AlertRule *alert_engine_rule(AlertEngine *e, uint32_t id) {
        ssize_t i = rule_index(e, id);
        return i < 0 ? NULL : e->rules->pdata[i];
}

size_t alert_engine_n_rules(AlertEngine *e) {
        return e->rules->len;
}

const AlertRule *alert_engine_rule_at(AlertEngine *e, size_t i) {
        return i < e->rules->len ? e->rules->pdata[i] : NULL;
}

static gint compare_rules(gconstpointer a, gconstpointer b) {
        uint32_t x = (*(AlertRule *const *) a)->id, y = (*(AlertRule *const *) b)->id;
        return x < y ? -1 : x > y;
}

int alert_engine_add_rule(AlertEngine *e, const AlertRule *r) {
        AlertRule *c;
        int q;

        if (r->id == 0)
                return -EINVAL;
        if (rule_index(e, r->id) >= 0)
                return -EEXIST;
        c = malloc(sizeof(AlertRule));
        if (!c)
                return -ENOMEM;
        q = alert_rule_copy(r, c);
        if (q < 0) {
                free(c);
                return q;
        }
        g_ptr_array_add(e->rules, c);
        g_ptr_array_sort(e->rules, compare_rules);
        return 0;
}

static void forget_alert(AlertEngine *e, Alert *a) {
        g_ptr_array_remove(e->alerts, a);
}

static void resolve(AlertEngine *e, const AlertRule *r, Track *t, uint64_t now) {
        Alert *a = t->alert;

        a->state = ALERT_RESOLVED;
        a->resolved_usec = now;
        t->resolved_usec = now;
        t->alert = NULL;
        forget_alert(e, a);
        if (e->ops && e->ops->resolved)
                e->ops->resolved(e->userdata, r, a);
        free(a);
}

int alert_engine_remove_rule(AlertEngine *e, uint32_t id) {
        ssize_t i = rule_index(e, id);
        GHashTableIter it;
        gpointer v;

        if (i < 0)
                return -ENOENT;
        g_hash_table_iter_init(&it, e->tracks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Track *t = v;
                if (t->rule != id)
                        continue;
                if (t->alert)
                        /* The engine has no clock: the last round's time. */
                        resolve(e, NULL, t, MAX(e->now, t->alert->since_usec));
                g_hash_table_iter_remove(&it);
        }
        g_ptr_array_remove_index(e->rules, i);
        return 0;
}

static gint compare_alerts(gconstpointer a, gconstpointer b) {
        uint32_t x = (*(Alert *const *) a)->id, y = (*(Alert *const *) b)->id;
        return x < y ? -1 : x > y;
}

static Track *track_get(AlertEngine *e, uint32_t rule, const char *device, bool create) {
        char key[48];
        Track *t;

        snprintf(key, sizeof key, "%" PRIu32 "/%s", rule, device);
        t = g_hash_table_lookup(e->tracks, key);
        if (t || !create)
                return t;
        t = calloc(1, sizeof(Track));
        if (!t)
                return NULL;
        t->rule = rule;
        snprintf(t->device, sizeof t->device, "%s", device);
        g_hash_table_insert(e->tracks, g_strdup(key), t);
        return t;
}

int alert_engine_restore(AlertEngine *e, const Alert *a) {
        Track *t;

        if (rule_index(e, a->rule) < 0)
                return -ENOENT;
        t = track_get(e, a->rule, a->device, true);
        if (!t)
                return -ENOMEM;
        if (t->alert)
                return -EEXIST;
        t->alert = malloc(sizeof(Alert));
        if (!t->alert)
                return -ENOMEM;
        *t->alert = *a;
        t->holding = true;
        t->holding_since = a->since_usec;
        g_ptr_array_add(e->alerts, t->alert);
        g_ptr_array_sort(e->alerts, compare_alerts);
        alert_engine_set_next_id(e, a->id + 1);
        return 0;
}

static bool covers(const AlertRule *r, const AlertSample *s) {
        if (!*r->scope)
                return !s->has_outlets;
        if (strcmp(r->scope, s->device) == 0)
                return !s->has_outlets;
        return s->parent && strcmp(r->scope, s->parent) == 0;
}

/* 1: the condition holds, 0: it does not, -1: unknown this round. *value:
 * the measured value of threshold kinds. */
static int condition(const AlertRule *r, const AlertSample *s, double *value) {
        switch (r->kind) {
        case ALERT_POWER_ABOVE:
        case ALERT_POWER_BELOW:
                if (!s->online || !s->have_power)
                        return -1;
                *value = s->power_w;
                return r->kind == ALERT_POWER_ABOVE ? s->power_w > r->threshold : s->power_w < r->threshold;
        case ALERT_OFFLINE:
                return !s->online;
        case ALERT_ON:
                /* Offline, its relay is unknown. */
                if (!s->online)
                        return -1;
                return s->on;
        case ALERT_ENERGY_DAY:
        case ALERT_ENERGY_MONTH:
                if (!s->have_energy)
                        return -1;
                *value = r->kind == ALERT_ENERGY_DAY ? s->energy_day_wh : s->energy_month_wh;
                return *value > r->threshold;
        case ALERT_COST_DAY:
        case ALERT_COST_MONTH:
                if (!s->have_cost)
                        return -1;
                *value = r->kind == ALERT_COST_DAY ? s->cost_day : s->cost_month;
                return *value > r->threshold;
        default:
                return -1;
        }
}

static void evaluate(AlertEngine *e, const AlertRule *r, const AlertSample *s, uint64_t now) {
        double value = 0;
        int c = condition(r, s, &value);
        Track *t = track_get(e, r->id, s->device, c > 0);

        if (!t)
                return; /* c <= 0 and nothing tracked, or out of memory: the next round tries again */
        t->round = e->round;
        if (c < 0)
                return;
        if (c == 0) {
                t->holding = false;
                if (t->alert)
                        resolve(e, r, t, now);
                return;
        }
        if (!t->holding) {
                t->holding = true;
                t->holding_since = now;
        }
        if (t->alert || now - t->holding_since < r->duration_usec)
                return;
        if (t->resolved_usec > 0 && now - t->resolved_usec < r->cooldown_usec)
                return;

        Alert *a = calloc(1, sizeof(Alert));
        if (!a)
                return;
        a->id = e->next_id++;
        a->rule = r->id;
        snprintf(a->device, sizeof a->device, "%s", s->device);
        a->state = ALERT_ACTIVE;
        a->since_usec = now;
        /* Durations say how long the condition has held, in seconds. */
        a->value = alert_kind_has_threshold(r->kind) ? value : (double) (now - t->holding_since) / 1e6;
        t->alert = a;
        g_ptr_array_add(e->alerts, a);
        if (e->ops && e->ops->fired)
                e->ops->fired(e->userdata, r, a);
}

void alert_engine_round(AlertEngine *e, uint64_t now_usec, const AlertSample *samples, size_t n) {
        GHashTableIter it;
        gpointer v;

        e->round++;
        e->now = now_usec;
        for (guint i = 0; i < e->rules->len; i++) {
                const AlertRule *r = e->rules->pdata[i];
                for (size_t j = 0; j < n; j++)
                        if (covers(r, &samples[j]))
                                evaluate(e, r, &samples[j], now_usec);
        }

        /* Devices gone, or no longer covered: their alerts end. */
        g_hash_table_iter_init(&it, e->tracks);
        while (g_hash_table_iter_next(&it, NULL, &v)) {
                Track *t = v;
                if (t->round == e->round)
                        continue;
                if (t->alert)
                        resolve(e, alert_engine_rule(e, t->rule), t, now_usec);
                /* A track with a cooldown to honour stays until it ran out. */
                const AlertRule *r = alert_engine_rule(e, t->rule);
                if (!r || t->resolved_usec == 0 || now_usec - t->resolved_usec >= r->cooldown_usec)
                        g_hash_table_iter_remove(&it);
                else
                        t->holding = false;
        }
}

size_t alert_engine_n_alerts(AlertEngine *e) {
        return e->alerts->len;
}

const Alert *alert_engine_alert_at(AlertEngine *e, size_t i) {
        return i < e->alerts->len ? e->alerts->pdata[i] : NULL;
}

const Alert *alert_engine_find(AlertEngine *e, uint32_t id) {
        for (guint i = 0; i < e->alerts->len; i++)
                if (((Alert *) e->alerts->pdata[i])->id == id)
                        return e->alerts->pdata[i];
        return NULL;
}

int alert_engine_acknowledge(AlertEngine *e, uint32_t id) {
        Alert *a = (Alert *) alert_engine_find(e, id);

        if (!a)
                return -ENOENT;
        if (a->state == ALERT_ACKNOWLEDGED)
                return -EALREADY;
        a->state = ALERT_ACKNOWLEDGED;
        return 0;
}
