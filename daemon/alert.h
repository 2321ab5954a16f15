/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Alert rules and their evaluation, with no D-Bus, storage or clock of its
 * own: the manager feeds one round of samples per poll interval with the
 * time, and hears of firings and resolutions through AlertEngineOps (the
 * bus objects, the journal, the database and the hooks are the manager's).
 *
 * A rule watches one condition per device it covers, and fires an alert
 * for a device once the condition has held for the rule's duration. The
 * alert stays (active, or acknowledged by a user) until the condition is
 * over, then resolves. Cooldown: after an alert of a rule and device
 * resolved, the same pair fires again only once the cooldown has passed
 * since that resolution, so a flapping condition raises one alert per
 * cooldown at most. A sample whose value the condition needs but that is
 * unknown (a meter reading of an offline plug) leaves the pair as it was.
 *
 * Scope: "" covers every device that has no outlets (plugs and outlets,
 * so a strip is watched through its outlets); a device id covers that
 * device, or for a strip its outlets.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum AlertKind {
        ALERT_POWER_ABOVE,  /* power > threshold W */
        ALERT_POWER_BELOW,  /* power < threshold W */
        ALERT_OFFLINE,      /* not answering */
        ALERT_ENERGY_DAY,   /* today's energy > threshold Wh */
        ALERT_ENERGY_MONTH, /* this month's energy > threshold Wh */
        ALERT_COST_DAY,     /* today's cost > threshold, major units of the tariff's currency */
        ALERT_COST_MONTH,
        ALERT_ON,           /* switched on */
        _ALERT_KIND_MAX,
        _ALERT_KIND_INVALID = -1,
} AlertKind;

/* "power-above", "power-below", "offline", "energy-day", "energy-month",
 * "cost-day", "cost-month", "on". */
const char *alert_kind_to_string(AlertKind k);
AlertKind alert_kind_from_string(const char *s);
/* Whether the kind compares a value with the rule's threshold. */
bool alert_kind_has_threshold(AlertKind k);

typedef enum AlertState {
        ALERT_ACTIVE,
        ALERT_ACKNOWLEDGED,
        ALERT_RESOLVED,
        _ALERT_STATE_MAX,
        _ALERT_STATE_INVALID = -1,
} AlertState;

const char *alert_state_to_string(AlertState s);
AlertState alert_state_from_string(const char *s);

#define ALERT_NAME_MAX 64
#define ALERT_HOOK_ARGS_MAX 32
/* Longest duration and cooldown: 31 days. */
#define ALERT_DURATION_MAX_USEC (UINT64_C(31) * 24 * 3600 * 1000000)

typedef struct AlertRule {
        uint32_t id;              /* > 0, assigned by the database */
        char *name;
        AlertKind kind;
        char *scope;              /* "" or a device id */
        double threshold;
        uint64_t duration_usec;
        uint64_t cooldown_usec;
        char **hook;              /* argv, the program's name in the hooks directory first; or NULL */
} AlertRule;

void alert_rule_done(AlertRule *r);
/* A program's name in the hooks directory: [A-Za-z0-9._-], not "." first. */
bool alert_hook_name_is_valid(const char *s);
/* Checks what a user gave: -EINVAL with why in *ret_error (free()). */
int alert_rule_validate(const AlertRule *r, char **ret_error);
int alert_rule_copy(const AlertRule *r, AlertRule *ret);

typedef struct Alert {
        uint32_t id;
        uint32_t rule;
        char device[32];
        AlertState state;
        uint64_t since_usec;      /* when it fired */
        uint64_t resolved_usec;   /* 0 until it resolves */
        double value;             /* what made it fire: W, Wh, currency, or seconds (offline, on) */
} Alert;

/* One device's state in one round. */
typedef struct AlertSample {
        const char *device;
        const char *parent;       /* an outlet's strip, else NULL */
        bool has_outlets;         /* a strip */
        bool online, on;
        bool have_power;
        double power_w;
        bool have_energy;
        double energy_day_wh, energy_month_wh;
        bool have_cost;
        double cost_day, cost_month;
} AlertSample;

typedef struct AlertEngineOps {
        /* a is new (state active); its id is taken from next_id. */
        void (*fired)(void *userdata, const AlertRule *rule, const Alert *a);
        /* a is resolved and freed when this returns; rule is NULL when it
         * resolves because its rule was removed. */
        void (*resolved)(void *userdata, const AlertRule *rule, const Alert *a);
} AlertEngineOps;

typedef struct AlertEngine AlertEngine;

int alert_engine_new(const AlertEngineOps *ops, void *userdata, AlertEngine **ret);
AlertEngine *alert_engine_free(AlertEngine *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(AlertEngine *, alert_engine_free);

/* Ids of new alerts count up from here (the database's highest + 1). */
void alert_engine_set_next_id(AlertEngine *e, uint32_t id);

/* Copies r; -EEXIST for a rule id known already. */
int alert_engine_add_rule(AlertEngine *e, const AlertRule *r);
/* Resolves the rule's alerts (resolved() with rule NULL); -ENOENT. */
int alert_engine_remove_rule(AlertEngine *e, uint32_t id);
const AlertRule *alert_engine_rule(AlertEngine *e, uint32_t id);
size_t alert_engine_n_rules(AlertEngine *e);
const AlertRule *alert_engine_rule_at(AlertEngine *e, size_t i);

/* An alert still open when kasamond last stopped, from the database: it
 * goes on (and resolves) as if never interrupted. -ENOENT for an unknown
 * rule, -EEXIST for a rule and device that have one. */
int alert_engine_restore(AlertEngine *e, const Alert *a);

/* One round: every rule against every sample it covers. An open alert
 * whose device is missing from the round (removed) resolves. */
void alert_engine_round(AlertEngine *e, uint64_t now_usec, const AlertSample *samples, size_t n);

/* Active or acknowledged alerts, by id. */
size_t alert_engine_n_alerts(AlertEngine *e);
const Alert *alert_engine_alert_at(AlertEngine *e, size_t i);
const Alert *alert_engine_find(AlertEngine *e, uint32_t id);
/* 0, or -EALREADY when acknowledged already, -ENOENT. */
int alert_engine_acknowledge(AlertEngine *e, uint32_t id);
