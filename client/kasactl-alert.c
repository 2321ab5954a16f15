/* SPDX-License-Identifier: MIT */

/* alert list|show|add|remove|ack|rules: kasamond's alert rules and the
 * alerts they raised. */

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "kasa-dbus.h"
#include "kasa-time.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

/* A JSON reply of a Manager method that takes no arguments. */
static int call_json(sd_bus *bus, const char *path, const char *iface, const char *method, const char *what,
                     json_t **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *s;
        json_error_t e;
        int r;

        r = sd_bus_call_method(bus, KASA_BUS_NAME, path, iface, method, &error, &reply, "");
        if (r < 0) {
                if (sd_bus_error_has_names(&error, SD_BUS_ERROR_UNKNOWN_OBJECT, KASA_ERROR_NOT_FOUND))
                        return log_error_errno(ENOENT, "Failed to %s: no such open alert.", what);
                return log_call_error(&error, r, what, NULL, NULL);
        }
        r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                return log_error_errno(r, "Failed to read kasamond's answer: %m");
        *ret = json_loads(s, 0, &e);
        if (!*ret)
                return log_error_errno(EBADMSG, "kasamond's answer is not JSON: %s", e.text);
        return 0;
}

/* The value of an alert in the units of its rule's kind. */
static void format_value(char *buf, size_t size, const char *kind, double v) {
        if (strncmp(kind, "power-", 6) == 0)
                snprintf(buf, size, "%.1f W", v);
        else if (strncmp(kind, "energy-", 7) == 0)
                snprintf(buf, size, "%.1f Wh", v);
        else if (strncmp(kind, "cost-", 5) == 0)
                snprintf(buf, size, "%.2f", v);
        else
                snprintf(buf, size, "%.0f s", v);
}

static const char *device_label(const json_t *a) {
        const char *alias = json_str(a, "alias");
        return *alias ? alias : json_str(a, "device");
}

int verb_alert_list(int argc, char **argv, void *userdata) {
        static const Column cols[] = {
                { "ID", SCOLS_FL_RIGHT }, { "RULE", 0 }, { "KIND", 0 }, { "DEVICE", 0 },
                { "STATE", 0 },           { "SINCE", 0 }, { "VALUE", SCOLS_FL_RIGHT },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *l = NULL;
        size_t i;
        json_t *a;
        int r;

        r = call_json(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "ListAlerts", "list the alerts", &l);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(l);
        if (json_array_size(l) == 0) {
                if (arg_legend)
                        printf("No open alerts.\n");
                return 0;
        }
        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb)
                return log_oom();
        json_array_foreach(l, i, a) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char since[TIME_BUF_MAX], value[64];
                bool active = streq(json_str(a, "state"), "active");

                format_value(value, sizeof value, json_str(a, "kind"), json_number_value(json_object_get(a, "value")));
                if (!ln || cell(ln, 0, NULL, "%" PRIu64, json_u64(a, "id")) < 0 || cell(ln, 1, NULL, "%s", json_str(a, "rule_name")) < 0 ||
                    cell(ln, 2, NULL, "%s", json_str(a, "kind")) < 0 || cell(ln, 3, NULL, "%s", device_label(a)) < 0 ||
                    cell(ln, 4, active ? "red" : "yellow", "%s", json_str(a, "state")) < 0 ||
                    cell(ln, 5, NULL, "%s", format_time(since, sizeof since, json_u64(a, "since_usec"), false)) < 0 ||
                    cell(ln, 6, NULL, "%s", value) < 0)
                        return log_oom();
        }
        r = table_print(tb);
        if (r >= 0 && arg_legend)
                printf("\n%zu open %s.\n", json_array_size(l), plural(json_array_size(l), "alert", "alerts"));
        return r;
}

static int parse_id(const char *s, const char *what, uint32_t *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || *end || v == 0 || v > UINT32_MAX || !isdigit((unsigned char) *s))
                return log_error_errno(EINVAL, "Invalid %s '%s': a number.", what, s);
        *ret = (uint32_t) v;
        return 0;
}

int verb_alert_show(int argc, char **argv, void *userdata) {
        _cleanup_(json_decrefp) json_t *a = NULL;
        _cleanup_free_ char *path = NULL;
        char since[TIME_BUF_MAX], value[64];
        uint32_t id;
        int r;

        r = parse_id(argv[1], "alert id", &id);
        if (r < 0)
                return r;
        if (asprintf(&path, KASA_ALERT_PREFIX "/%" PRIu32, id) < 0)
                return log_oom();
        r = call_json(userdata, path, KASA_ALERT_IFACE, "Describe", "show the alert", &a);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(a);
        format_value(value, sizeof value, json_str(a, "kind"), json_number_value(json_object_get(a, "value")));
        printf("   Alert: %" PRIu32 "\n    Rule: %s (%" PRIu64 ", %s)\n  Device: %s (%s)\n   State: %s\n"
               "   Since: %s\n   Value: %s\n",
               id, json_str(a, "rule_name"), json_u64(a, "rule"), json_str(a, "kind"), device_label(a), json_str(a, "device"),
               json_str(a, "state"), format_time(since, sizeof since, json_u64(a, "since_usec"), false), value);
        return 0;
}

static int parse_span_option(const char *name, const char *s, uint64_t *ret) {
        int64_t v = 0;

        if (s && (parse_span(s, &v) < 0 || v < 0))
                return log_error_errno(EINVAL, "Invalid --%s='%s': a span such as 10min.", name, s);
        *ret = (uint64_t) v;
        return 0;
}

int verb_alert_add(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        const char *device = "";
        uint64_t duration, cooldown;
        double threshold = 0;
        uint32_t id;
        char *end;
        int r;

        if (arg_threshold) {
                errno = 0;
                threshold = strtod(arg_threshold, &end);
                if (errno || end == arg_threshold || *end)
                        return log_error_errno(EINVAL, "Invalid --threshold='%s': a number.", arg_threshold);
        }
        r = parse_span_option("for", arg_for, &duration);
        if (r >= 0)
                r = parse_span_option("cooldown", arg_cooldown, &cooldown);
        if (r < 0)
                return r;
        if (!streq(argv[3], "all")) {
                Device *d;

                r = fetch_device(userdata, argv[3], &l, &d);
                if (r < 0)
                        return r;
                device = d->path;
        }

        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AddAlertRule", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "sssdtt", argv[1], argv[2], device, threshold, duration, cooldown);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, argv + 4);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, KASA_ACTION_MANAGE_ALERTS, NULL, &reply, "add the alert rule %s", argv[1]);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "u", &id);
        if (r < 0)
                return log_error_errno(r, "Failed to read kasamond's answer: %m");
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t) id, "name", argv[1]);
                return json_print(o);
        }
        printf("Alert rule %" PRIu32 " (%s) added.\n", id, argv[1]);
        return 0;
}

/* A rule by id or name. */
static int resolve_rule(sd_bus *bus, const char *name, uint32_t *ret) {
        _cleanup_(json_decrefp) json_t *l = NULL;
        size_t i;
        json_t *r;
        int q;

        q = call_json(bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "ListAlertRules", "list the alert rules", &l);
        if (q < 0)
                return q;
        json_array_foreach(l, i, r) {
                char id[24];

                snprintf(id, sizeof id, "%" PRIu64, json_u64(r, "id"));
                if (streq(id, name) || streq(json_str(r, "name"), name)) {
                        *ret = (uint32_t) json_u64(r, "id");
                        return 0;
                }
        }
        return log_error_errno(ENOENT, "No alert rule '%s'; \"kasactl alert rules\" lists them.", name);
}

int verb_alert_remove(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        uint32_t id = 0;
        int r;

        r = resolve_rule(userdata, argv[1], &id);
        if (r < 0)
                return r;
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "RemoveAlertRule", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "u", id);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, KASA_ACTION_MANAGE_ALERTS, NULL, NULL, "remove the alert rule %s", argv[1]);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:I}", "id", (json_int_t) id);
                return json_print(o);
        }
        return 0;
}

int verb_alert_ack(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *path = NULL;
        uint32_t id;
        int r;

        r = parse_id(argv[1], "alert id", &id);
        if (r < 0)
                return r;
        if (asprintf(&path, KASA_ALERT_PREFIX "/%" PRIu32, id) < 0)
                return log_oom();
        r = new_call(userdata, path, KASA_ALERT_IFACE, "Acknowledge", true, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, KASA_ACTION_MANAGE_ALERTS, NULL, NULL, "acknowledge alert %" PRIu32, id);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t) id, "state",
                                                             "acknowledged");
                return json_print(o);
        }
        return 0;
}

static void format_span(char *buf, size_t size, uint64_t usec) {
        if (usec == 0)
                snprintf(buf, size, "-");
        else if (usec % USEC_PER_HOUR == 0)
                snprintf(buf, size, "%" PRIu64 "h", usec / USEC_PER_HOUR);
        else if (usec % USEC_PER_MINUTE == 0)
                snprintf(buf, size, "%" PRIu64 "min", usec / USEC_PER_MINUTE);
        else
                snprintf(buf, size, "%gs", (double) usec / 1e6);
}

int verb_alert_rules(int argc, char **argv, void *userdata) {
        static const Column cols[] = {
                { "ID", SCOLS_FL_RIGHT }, { "NAME", 0 }, { "KIND", 0 }, { "DEVICE", 0 }, { "THRESHOLD", SCOLS_FL_RIGHT },
                { "FOR", SCOLS_FL_RIGHT }, { "COOLDOWN", SCOLS_FL_RIGHT }, { "HOOK", 0 },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *l = NULL;
        size_t i, k;
        json_t *rule, *arg;
        int r;

        r = call_json(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "ListAlertRules", "list the alert rules", &l);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF)
                return json_print(l);
        if (json_array_size(l) == 0) {
                if (arg_legend)
                        printf("No alert rules. Add one with \"kasactl alert add NAME KIND DEV|all\".\n");
                return 0;
        }
        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb)
                return log_oom();
        json_array_foreach(l, i, rule) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char dur[32], cool[32], threshold[64] = "-", hook[512] = "";
                const char *kind = json_str(rule, "kind");
                size_t used = 0;

                /* Arguments are words of their own: shown quoted where they have a space. */
                json_array_foreach(json_object_get(rule, "hook"), k, arg) {
                        const char *w = json_string_value(arg) ?: "";
                        int n = snprintf(hook + used, sizeof hook - used, strchr(w, ' ') ? "%s'%s'" : "%s%s",
                                         k ? " " : "", w);
                        if (n < 0 || (size_t) n >= sizeof hook - used)
                                break;
                        used += (size_t) n;
                }
                if (!streq(kind, "offline") && !streq(kind, "on"))
                        format_value(threshold, sizeof threshold, kind, json_number_value(json_object_get(rule, "threshold")));
                format_span(dur, sizeof dur, json_u64(rule, "duration_usec"));
                format_span(cool, sizeof cool, json_u64(rule, "cooldown_usec"));
                if (!ln || cell(ln, 0, NULL, "%" PRIu64, json_u64(rule, "id")) < 0 || cell(ln, 1, NULL, "%s", json_str(rule, "name")) < 0 ||
                    cell(ln, 2, NULL, "%s", kind) < 0 ||
                    cell(ln, 3, NULL, "%s", *json_str(rule, "device") ? json_str(rule, "device") : "all") < 0 ||
                    cell(ln, 4, NULL, "%s", threshold) < 0 || cell(ln, 5, NULL, "%s", dur) < 0 ||
                    cell(ln, 6, NULL, "%s", cool) < 0 || cell(ln, 7, NULL, "%s", *hook ? hook : "-") < 0)
                        return log_oom();
        }
        r = table_print(tb);
        if (r >= 0 && arg_legend)
                printf("\n%zu %s.\n", json_array_size(l), plural(json_array_size(l), "rule", "rules"));
        return r;
}
