/* SPDX-License-Identifier: MIT */
/*
 * The modules real plugs answer besides system and emeter: schedule,
 * count_down, anti_theft, cnCloud, time and netif. Replies follow dumps of
 * real devices (KP115, HS1xx): schedule.get_rules {rule_list, version 2,
 * enable}, count_down.get_rules {rule_list}, schedule.get_daystat with
 * "time" in minutes of relay-on time, time.get_timezone {index}, a cloud
 * that is not bound.
 *
 * Rules are kept and answered, never carried out: relays change only by
 * set_relay_state and the control socket, so no action is ever pending and
 * get_next_action answers type -1 as a device with nothing scheduled does.
 * Rules with context belong to that strip outlet; without context to the
 * strip itself (a plug has one set).
 *
 * The device clock is CLOCK_REALTIME in the process's time zone (TZ), the
 * zone the day statistics follow too; time.get_timezone names the entry of
 * the vendor's zone table with that zone's standard UTC offset.
 */

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kasa-sim.h"
#include "macro.h"

/* Rules beyond this answer -10 "table is full". The plugs' own limit is
 * not in the dumps; this one only keeps a client from growing the table
 * without bound. */
#define SIM_RULES_TABLE_MAX 32

void sim_rules_done(SimRules *r) {
        for (unsigned k = 0; k < _SIM_RULES_MAX; k++) {
                json_decref(r->list[k]);
                r->list[k] = NULL;
        }
}

static SimRules *rules_of(SimDevice *d, unsigned outlets) {
        if (outlets)
                return &d->outlets[__builtin_ctz(outlets)].rules;
        return d->profile->n_outlets > 0 ? &d->strip_rules : &d->outlets[0].rules;
}

static json_t *rule_list(SimRules *r, SimRuleKind k) {
        if (!r->list[k])
                r->list[k] = json_array();
        return r->list[k];
}

static bool is_flag(json_t *rule, const char *key) {
        json_t *v = json_object_get(rule, key);
        return json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1);
}

static bool is_int_in(json_t *rule, const char *key, json_int_t min, json_int_t max) {
        json_t *v = json_object_get(rule, key);
        return json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max;
}

/* The fields a device needs to act on a rule; others are kept as sent. */
static bool rule_valid(SimRuleKind k, json_t *rule) {
        if (!json_is_object(rule) || !is_flag(rule, "enable"))
                return false;
        switch (k) {
        case SIM_RULES_SCHEDULE:
        case SIM_RULES_ANTI_THEFT: {
                json_t *wday = json_object_get(rule, "wday");
                if (wday && (!json_is_array(wday) || json_array_size(wday) != 7))
                        return false;
                return is_int_in(rule, "smin", 0, 1439) &&
                       (k == SIM_RULES_ANTI_THEFT || is_int_in(rule, "sact", 0, 1));
        }
        case SIM_RULES_COUNT_DOWN:
                return is_int_in(rule, "delay", 1, INT32_MAX) && is_flag(rule, "act");
        default:
                return false;
        }
}

static size_t rule_find(json_t *list, const char *id) {
        size_t i;
        json_t *r;
        json_array_foreach(list, i, r)
                if (id && strcmp(json_string_value(json_object_get(r, "id")) ?: "", id) == 0)
                        return i;
        return SIZE_MAX;
}

static json_t *rules_get(SimDevice *d, SimRuleKind k, unsigned outlets) {
        SimRules *r = rules_of(d, outlets);
        json_t *list = json_deep_copy(rule_list(r, k));
        if (k == SIM_RULES_COUNT_DOWN)
                return json_pack("{s:o,s:i}", "rule_list", list, "err_code", 0);
        return json_pack("{s:o,s:i,s:i,s:i}", "rule_list", list, "version", 2, "enable", r->enable[k], "err_code",
                         0);
}

static json_t *rules_add(SimDevice *d, SimRuleKind k, json_t *args, unsigned outlets) {
        json_t *list = rule_list(rules_of(d, outlets), k);
        if (!list)
                return sim_err(-5, "internal error");
        if (!rule_valid(k, args) || json_object_get(args, "id"))
                return sim_err(-3, "invalid argument");
        /* A plug runs one countdown at a time. */
        if (json_array_size(list) >= (k == SIM_RULES_COUNT_DOWN ? 1 : SIM_RULES_TABLE_MAX))
                return sim_err(-10, "table is full");

        char id[33];
        static const char digits[] = "0123456789ABCDEF";
        for (unsigned i = 0; i < 32; i += 16) {
                uint64_t bits = sim_device_random(d);
                for (unsigned j = 0; j < 16; j++, bits >>= 4)
                        id[i + j] = digits[bits & 0xF];
        }
        id[32] = 0;

        json_t *rule = json_deep_copy(args);
        if (!rule || json_object_set_new(rule, "id", json_string(id)) < 0) {
                json_decref(rule);
                return sim_err(-5, "internal error");
        }
        if (json_array_append_new(list, rule) < 0) /* takes rule, even then */
                return sim_err(-5, "internal error");
        return json_pack("{s:s,s:i}", "id", id, "err_code", 0);
}

/* Finds the rule whose id args names: NULL, or the error to reply. */
static json_t *rule_lookup(SimDevice *d, SimRuleKind k, json_t *args, unsigned outlets, json_t **ret_list,
                           size_t *ret_index) {
        json_t *list = rule_list(rules_of(d, outlets), k);
        const char *id = json_string_value(json_object_get(args, "id"));
        if (!list || !id)
                return sim_err(-3, "invalid argument");
        size_t i = rule_find(list, id);
        if (i == SIZE_MAX)
                return sim_err(-14, "entry not exist");
        *ret_list = list;
        *ret_index = i;
        return NULL;
}

static json_t *rules_edit(SimDevice *d, SimRuleKind k, json_t *args, unsigned outlets) {
        json_t *list, *err;
        size_t i;
        if ((err = rule_lookup(d, k, args, outlets, &list, &i)))
                return err;
        json_t *rule = json_deep_copy(json_array_get(list, i));
        if (!rule || json_object_update(rule, args) < 0) {
                json_decref(rule);
                return sim_err(-5, "internal error");
        }
        if (!rule_valid(k, rule)) {
                json_decref(rule);
                return sim_err(-3, "invalid argument");
        }
        json_array_set_new(list, i, rule);
        return sim_ok();
}

static json_t *rules_delete(SimDevice *d, SimRuleKind k, json_t *args, unsigned outlets) {
        json_t *list, *err;
        size_t i;
        if ((err = rule_lookup(d, k, args, outlets, &list, &i)))
                return err;
        json_array_remove(list, i);
        return sim_ok();
}

static json_t *rules_delete_all(SimDevice *d, SimRuleKind k, unsigned outlets) {
        json_t *list = rule_list(rules_of(d, outlets), k);
        if (list)
                json_array_clear(list);
        return sim_ok();
}

static json_t *rules_enable(SimDevice *d, SimRuleKind k, json_t *args, unsigned outlets) {
        int64_t enable;
        if (sim_get_arg(args, "enable", 0, 1, &enable) < 0)
                return sim_err(-3, "invalid argument");
        rules_of(d, outlets)->enable[k] = enable == 1;
        return sim_ok();
}

#define RULE_METHODS(prefix, kind)                                                                       \
        static json_t *prefix##_get_rules(SimDevice *d, json_t *args, unsigned outlets) {               \
                return rules_get(d, kind, outlets);                                                      \
        }                                                                                                \
        static json_t *prefix##_add_rule(SimDevice *d, json_t *args, unsigned outlets) {                \
                return rules_add(d, kind, args, outlets);                                                \
        }                                                                                                \
        static json_t *prefix##_edit_rule(SimDevice *d, json_t *args, unsigned outlets) {               \
                return rules_edit(d, kind, args, outlets);                                               \
        }                                                                                                \
        static json_t *prefix##_delete_rule(SimDevice *d, json_t *args, unsigned outlets) {             \
                return rules_delete(d, kind, args, outlets);                                             \
        }                                                                                                \
        static json_t *prefix##_delete_all_rules(SimDevice *d, json_t *args, unsigned outlets) {        \
                return rules_delete_all(d, kind, outlets);                                               \
        }                                                                                                \
        _unused_ static json_t *prefix##_set_overall_enable(SimDevice *d, json_t *args, unsigned outlets) { \
                return rules_enable(d, kind, args, outlets);                                             \
        }

RULE_METHODS(schedule, SIM_RULES_SCHEDULE)
RULE_METHODS(count_down, SIM_RULES_COUNT_DOWN)
RULE_METHODS(anti_theft, SIM_RULES_ANTI_THEFT)

static json_t *schedule_get_next_action(SimDevice *d, json_t *args, unsigned outlets) {
        return json_pack("{s:i,s:i}", "type", -1, "err_code", 0);
}

/* Relay-on time per day and month, in whole minutes. */
static SimOutlet *stat_outlet(SimDevice *d, unsigned outlets) {
        return &d->outlets[outlets ? __builtin_ctz(outlets) : 0];
}

static json_t *schedule_get_daystat(SimDevice *d, json_t *args, unsigned outlets) {
        const SimOutlet *o = stat_outlet(d, outlets);
        int64_t year, month;
        if (sim_get_arg(args, "year", 1970, 9999, &year) < 0 || sim_get_arg(args, "month", 1, 12, &month) < 0)
                return sim_err(-3, "invalid argument");
        json_t *list = json_array();
        for (size_t i = 0; i < o->n_run_days; i++) {
                const SimDay *e = &o->run_days[i];
                if (e->year == year && e->month == month)
                        json_array_append_new(list, json_pack("{s:i,s:i,s:i,s:I}", "year", e->year, "month",
                                                              e->month, "day", e->day, "time",
                                                              (json_int_t) (e->on_usec / (60 * 1000000LL))));
        }
        return json_pack("{s:o,s:i}", "day_list", list, "err_code", 0);
}

static json_t *schedule_get_monthstat(SimDevice *d, json_t *args, unsigned outlets) {
        const SimOutlet *o = stat_outlet(d, outlets);
        int64_t usec[12] = {};
        bool seen[12] = {};
        int64_t year;
        if (sim_get_arg(args, "year", 1970, 9999, &year) < 0)
                return sim_err(-3, "invalid argument");
        for (size_t i = 0; i < o->n_run_days; i++)
                if (o->run_days[i].year == year) {
                        usec[o->run_days[i].month - 1] += o->run_days[i].on_usec;
                        seen[o->run_days[i].month - 1] = true;
                }
        json_t *list = json_array();
        for (int m = 0; m < 12; m++)
                if (seen[m])
                        json_array_append_new(list, json_pack("{s:i,s:i,s:I}", "year", (int) year, "month", m + 1,
                                                              "time", (json_int_t) (usec[m] / (60 * 1000000LL))));
        return json_pack("{s:o,s:i}", "month_list", list, "err_code", 0);
}

static json_t *schedule_erase_runtime_stat(SimDevice *d, json_t *args, unsigned outlets) {
        unsigned mask = outlets ? outlets : (1u << d->n_outlets) - 1;
        sim_device_integrate(d);
        for (unsigned i = 0; i < d->n_outlets; i++)
                if (mask & (1u << i)) {
                        free(d->outlets[i].run_days);
                        d->outlets[i].run_days = NULL;
                        d->outlets[i].n_run_days = 0;
                }
        return sim_ok();
}

static json_t *cloud_get_info(SimDevice *d, json_t *args, unsigned outlets) {
        /* A device never bound to an account, with no cloud to reach. */
        return json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:s,s:s,s:i,s:i}", "username", "", "server",
                         "n-devs.tplinkcloud.com", "binded", 0, "cld_connection", 0, "illegalType", 0,
                         "stopConnect", 0, "tcspStatus", 0, "fwDlPage", "", "tcspInfo", "", "fwNotifyType", 0,
                         "err_code", 0);
}

static json_t *cloud_get_intl_fw_list(SimDevice *d, json_t *args, unsigned outlets) {
        return json_pack("{s:[],s:i}", "fw_list", "err_code", 0);
}

static json_t *time_get_time(SimDevice *d, json_t *args, unsigned outlets) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        return json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "year", tm.tm_year + 1900, "month", tm.tm_mon + 1,
                         "mday", tm.tm_mday, "hour", tm.tm_hour, "min", tm.tm_min, "sec", tm.tm_sec, "err_code",
                         0);
}

/* One entry of the vendor's zone table per standard offset (minutes east
 * of UTC): where several share one, the US zone with DST or the European
 * one, as devices sold there are set. */
static const struct {
        int offset_min;
        int index;
} zone_index[] = {
        { -720, 0 },  { -660, 1 },  { -600, 2 },  { -540, 3 },  { -480, 6 },  { -420, 10 }, { -360, 13 },
        { -300, 18 }, { -270, 20 }, { -240, 23 }, { -210, 27 }, { -180, 28 }, { -120, 34 }, { -60, 35 },
        { 0, 38 },    { 60, 41 },   { 120, 52 },  { 180, 60 },  { 210, 64 },  { 240, 65 },  { 270, 71 },
        { 300, 74 },  { 330, 75 },  { 345, 77 },  { 360, 79 },  { 390, 81 },  { 420, 82 },  { 480, 84 },
        { 540, 90 },  { 570, 93 },  { 600, 96 },  { 660, 102 }, { 720, 104 }, { 780, 107 }, { 840, 109 },
};

static json_t *time_get_timezone(SimDevice *d, json_t *args, unsigned outlets) {
        tzset();
        /* timezone: seconds west of UTC in standard time. */
        int offset = (int) (-timezone / 60);
        for (size_t i = 0; i < ELEMENTSOF(zone_index); i++)
                if (zone_index[i].offset_min == offset)
                        return json_pack("{s:i,s:i}", "index", zone_index[i].index, "err_code", 0);
        return sim_err(-3, "invalid argument");
}

static json_t *netif_get_stainfo(SimDevice *d, json_t *args, unsigned outlets) {
        return json_pack("{s:s,s:i,s:i,s:i}", "ssid", "kasa-sim", "key_type", 3, "rssi", d->rssi, "err_code", 0);
}

static json_t *netif_get_scaninfo(SimDevice *d, json_t *args, unsigned outlets) {
        return json_pack("{s:[{s:s,s:i}],s:i}", "ap_list", "ssid", "kasa-sim", "key_type", 3, "err_code", 0);
}

const SimMethod sim_module_methods[] = {
        { "schedule", "get_next_action", schedule_get_next_action },
        { "schedule", "get_rules", schedule_get_rules },
        { "schedule", "add_rule", schedule_add_rule },
        { "schedule", "edit_rule", schedule_edit_rule },
        { "schedule", "delete_rule", schedule_delete_rule },
        { "schedule", "delete_all_rules", schedule_delete_all_rules },
        { "schedule", "set_overall_enable", schedule_set_overall_enable },
        { "schedule", "get_daystat", schedule_get_daystat },
        { "schedule", "get_monthstat", schedule_get_monthstat },
        { "schedule", "erase_runtime_stat", schedule_erase_runtime_stat },
        { "count_down", "get_rules", count_down_get_rules },
        { "count_down", "add_rule", count_down_add_rule },
        { "count_down", "edit_rule", count_down_edit_rule },
        { "count_down", "delete_rule", count_down_delete_rule },
        { "count_down", "delete_all_rules", count_down_delete_all_rules },
        { "anti_theft", "get_rules", anti_theft_get_rules },
        { "anti_theft", "add_rule", anti_theft_add_rule },
        { "anti_theft", "edit_rule", anti_theft_edit_rule },
        { "anti_theft", "delete_rule", anti_theft_delete_rule },
        { "anti_theft", "delete_all_rules", anti_theft_delete_all_rules },
        { "anti_theft", "set_overall_enable", anti_theft_set_overall_enable },
        { "cnCloud", "get_info", cloud_get_info },
        { "cnCloud", "get_intl_fw_list", cloud_get_intl_fw_list },
        { "time", "get_time", time_get_time },
        { "time", "get_timezone", time_get_timezone },
        { "netif", "get_stainfo", netif_get_stainfo },
        { "netif", "get_scaninfo", netif_get_scaninfo },
};

const size_t sim_module_methods_len = ELEMENTSOF(sim_module_methods);
