/* SPDX-License-Identifier: MIT */

/* token create|list|revoke: the API tokens of the HTTP bridge. */

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

/* --expires: a TIME (2027-01-01, +30d, @1790000000), or a DURATION
 * without its sign (30d, 12h), counted from now. */
static int parse_expires(const char *s, uint64_t *ret) {
        _cleanup_free_ char *plus = NULL;
        uint64_t now = now_usec(), t;

        if (parse_time(s, now, &t) < 0) {
                if (asprintf(&plus, "+%s", s) < 0)
                        return log_oom();
                if (s[0] < '0' || s[0] > '9' || parse_time(plus, now, &t) < 0)
                        return log_error_errno(EINVAL,
                                               "Invalid --expires='%s': a TIME such as 2027-01-01 or +30d, or a "
                                               "DURATION such as 30d or 12h.",
                                               s);
        }
        if (t <= now)
                return log_error_errno(EINVAL, "Invalid --expires='%s': that is not in the future.", s);
        *ret = t;
        return 0;
}

static int token_create(sd_bus *bus) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *id, *secret;
        uint64_t expires = 0;
        char when[TIME_BUF_MAX];
        int r;

        if (!arg_name || !arg_role)
                return log_error_errno(EINVAL, "token create needs --name=NAME and --role=viewer|operator|admin.");
        if (!streq(arg_role, "viewer") && !streq(arg_role, "operator") && !streq(arg_role, "admin"))
                return log_error_errno(EINVAL, "Invalid --role='%s': use viewer, operator or admin.", arg_role);
        if (arg_expires) {
                r = parse_expires(arg_expires, &expires);
                if (r < 0)
                        return r;
        }
        r = new_call(bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "CreateToken", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "sst", arg_name, arg_role, expires);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(bus, m, KASA_ACTION_MANAGE_ACCESS, NULL, &reply, "create the token \"%s\"", arg_name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "ss", &id, &secret);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:s}", "id", id, "name", arg_name,
                                                              "role", arg_role, "expires", json_time(expires),
                                                              "secret", secret);
                return json_print(o);
        }
        /* The secret alone on stdout, for SECRET=$(kasactl token create ...). */
        if (arg_legend)
                fprintf(stderr, "Created token %s \"%s\" (%s, %s%s). Its secret:\n", id, arg_name, arg_role,
                        expires ? "expires " : "never expires",
                        expires ? format_time(when, sizeof when, expires, false) : "");
        printf("%s\n", secret);
        fflush(stdout);
        if (arg_legend)
                fprintf(stderr, "It will not be shown again: kasamond keeps only its hash. Store it now.\n");
        return 0;
}

/* ListTokens() says RFC 3339 in UTC; people read local time. */
static const char *local_time(const json_t *v, char *buf, size_t size) {
        struct tm tm = {};
        const char *s = json_string_value(v), *end;

        if (!s)
                return "never";
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return s;
        return format_time(buf, size, (uint64_t) timegm(&tm) * USEC_PER_SEC, false);
}

static int token_list(sd_bus *bus) {
        static const Column cols[] = {
                { "ID", 0 }, { "NAME", 0 }, { "ROLE", 0 }, { "CREATED", 0 }, { "EXPIRES", 0 }, { "LAST USED", 0 },
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *a = NULL;
        json_error_t e;
        const char *s;
        size_t i;
        json_t *o;
        int r;

        r = new_call(bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "ListTokens", true, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(bus, m, KASA_ACTION_MANAGE_ACCESS, NULL, &reply, "list the tokens");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        a = json_loads(s, 0, &e);
        if (!json_is_array(a))
                return log_error_errno(EBADMSG, "kasamond's ListTokens() is not a JSON array: %s", e.text);
        if (arg_json != JSON_OFF)
                return json_print(a);
        if (json_array_size(a) == 0) {
                if (arg_legend)
                        printf("No tokens. \"kasactl token create --name=NAME --role=ROLE\" makes one.\n");
                return 0;
        }
        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb)
                return log_oom();
        json_array_foreach(a, i, o) {
                char c[TIME_BUF_MAX], x[TIME_BUF_MAX], u[TIME_BUF_MAX];
                struct libscols_line *ln = scols_table_new_line(tb, NULL);

                if (!ln || cell(ln, 0, NULL, "%s", json_string_value(json_object_get(o, "id")) ?: "") < 0 ||
                    cell(ln, 1, NULL, "%s", json_string_value(json_object_get(o, "name")) ?: "") < 0 ||
                    cell(ln, 2, NULL, "%s", json_string_value(json_object_get(o, "role")) ?: "") < 0 ||
                    cell(ln, 3, NULL, "%s", local_time(json_object_get(o, "created"), c, sizeof c)) < 0 ||
                    cell(ln, 4, NULL, "%s", local_time(json_object_get(o, "expires"), x, sizeof x)) < 0 ||
                    cell(ln, 5, NULL, "%s", local_time(json_object_get(o, "last_used"), u, sizeof u)) < 0)
                        return log_oom();
        }
        r = table_print(tb);
        if (r >= 0 && arg_legend)
                printf("\n%zu %s; times are local.\n", json_array_size(a), plural(json_array_size(a), "token", "tokens"));
        return r;
}

static int token_revoke(sd_bus *bus, const char *which) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = new_call(bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "RevokeToken", true, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", which);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(bus, m, KASA_ACTION_MANAGE_ACCESS, NULL, NULL, "revoke the token %s", which);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s}", "revoked", which);
                return json_print(o);
        }
        return 0;
}

int verb_token(int argc, char **argv, void *userdata) {
        const char *sub = argv[1];

        if ((arg_name || arg_role || arg_expires) && !streq(sub, "create"))
                return log_error_errno(EINVAL, "--name, --role and --expires go with \"token create\" only.");
        if (streq(sub, "create") || streq(sub, "list")) {
                if (argc > 2)
                        return log_error_errno(EINVAL, "Too many arguments: '%s' is one too many for kasactl token %s",
                                               argv[2], sub);
                return streq(sub, "create") ? token_create(userdata) : token_list(userdata);
        }
        if (streq(sub, "revoke")) {
                if (argc < 3)
                        return log_error_errno(EINVAL, "Too few arguments: kasactl token revoke ID|NAME");
                return token_revoke(userdata, argv[2]);
        }
        return log_error_errno(EINVAL, "Unknown token command '%s': create, list or revoke.", sub);
}
