/* SPDX-License-Identifier: MIT */

/*
 * kasamond-alert-hook ID: the ExecStart= of kasamond-alert-hook@ID.service,
 * which kasamond starts by name when an alert of a rule with a hook fires.
 * It runs as an unprivileged user of the unit's (DynamicUser=), asks
 * kasamond for alert ID over the bus (Alert.Describe, open to everyone),
 * and executes the rule's hook: a program of the hooks directory, with the
 * rule's arguments as they are, the alert in its environment (KASA_ALERT_*)
 * and no shell. kasamond passes nothing but the number in the unit's name,
 * so nothing from a device ever reaches a command line.
 */

#include <errno.h>
#include <getopt.h>
#include <glib.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "alert.h"
#include "kasa-dbus.h"
#include "log.h"
#include "macro.h"

static int describe(uint32_t id, char **ret_json) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = g_strdup_printf(KASA_ALERT_PREFIX "/%" PRIu32, id);
        const char *json;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_call_method(bus, KASA_BUS_NAME, path, KASA_ALERT_IFACE, "Describe", &e, &reply, "");
        if (r < 0) {
                log_error("Failed to read alert %" PRIu32 " (resolved already?): %s", id, e.message ?: strerror(-r));
                return r;
        }
        r = sd_bus_message_read(reply, "s", &json);
        if (r < 0)
                return log_error_errno(r, "Failed to read kasamond's answer: %m");
        *ret_json = strdup(json);
        return *ret_json ? 0 : log_oom();
}

static const char *str(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key)) ?: "";
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "hooks-dir", required_argument, NULL, 'd' },
                {}
        };
        const char *dir = ALERT_HOOKS_DIR;
        _cleanup_free_ char *text = NULL;
        json_auto_t *o = NULL;
        json_t *rule, *hook, *v;
        unsigned long id;
        char *end;
        size_t i;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                if (c == 'd')
                        dir = optarg;
                else
                        return 2;
        if (optind != argc - 1) {
                fprintf(stderr, "Usage: %s [--hooks-dir=DIR] ALERT-ID\n", argv[0]);
                return 2;
        }
        errno = 0;
        id = strtoul(argv[optind], &end, 10);
        if (errno || *end || id == 0 || id > UINT32_MAX || !g_ascii_isdigit(argv[optind][0])) {
                log_error("Bad alert id '%s'", argv[optind]);
                return 2;
        }

        r = describe((uint32_t) id, &text);
        if (r < 0)
                return 1;
        o = json_loads(text, 0, NULL);
        rule = json_object_get(o, "rule_object");
        hook = json_object_get(rule, "hook");
        if (!json_is_array(hook) || json_array_size(hook) == 0 || json_array_size(hook) > ALERT_HOOK_ARGS_MAX) {
                log_error("Alert %lu's rule has no hook", id);
                return 1;
        }

        /* kasamond checked the name when the rule was added; the check
         * again here keeps the directory the only place a hook comes from. */
        g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
        json_array_foreach(hook, i, v) {
                if (!json_is_string(v)) {
                        log_error("Alert %lu's hook is malformed", id);
                        return 1;
                }
                g_ptr_array_add(args, g_strdup(json_string_value(v)));
        }
        if (!alert_hook_name_is_valid(args->pdata[0])) {
                log_error("Alert %lu's hook '%s' is not a program's name", id, (char *) args->pdata[0]);
                return 1;
        }
        g_autofree char *program = g_build_filename(dir, args->pdata[0], NULL);
        g_ptr_array_add(args, NULL);

        char value[64];
        json_t *jv = json_object_get(o, "value");
        snprintf(value, sizeof value, "%.17g", json_is_number(jv) ? json_number_value(jv) : 0.0);
        g_auto(GStrv) env = g_get_environ();
        env = g_environ_setenv(env, "KASA_ALERT_ID", argv[optind], true);
        env = g_environ_setenv(env, "KASA_ALERT_PATH", str(o, "path"), true);
        env = g_environ_setenv(env, "KASA_ALERT_RULE", str(o, "rule_name"), true);
        env = g_environ_setenv(env, "KASA_ALERT_KIND", str(o, "kind"), true);
        env = g_environ_setenv(env, "KASA_ALERT_DEVICE", str(o, "device"), true);
        env = g_environ_setenv(env, "KASA_ALERT_ALIAS", str(o, "alias"), true);
        env = g_environ_setenv(env, "KASA_ALERT_STATE", str(o, "state"), true);
        env = g_environ_setenv(env, "KASA_ALERT_VALUE", value, true);
        g_autofree char *since = g_strdup_printf("%" JSON_INTEGER_FORMAT,
                                                 json_integer_value(json_object_get(o, "since_usec")));
        env = g_environ_setenv(env, "KASA_ALERT_SINCE", since, true);

        execve(program, (char **) args->pdata, env);
        log_error_errno(errno, "Failed to run %s: %m", program);
        return 1;
}
