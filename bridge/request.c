/* SPDX-License-Identifier: MIT */

#include "request.h"

#include <errno.h>
#include <glib.h>
#include <math.h>
#include <string.h>

const RouteInfo route_table[_ROUTE_MAX] = {
        [ROUTE_DEVICES_LIST] = { "GET", "/api/devices", ROLE_VIEWER },
        [ROUTE_DEVICES_ADD] = { "POST", "/api/devices", ROLE_OPERATOR },
        [ROUTE_DEVICES_DISCOVER] = { "POST", "/api/devices/discover", ROLE_OPERATOR },
        [ROUTE_DEVICE_GET] = { "GET", "/api/devices/{id}", ROLE_VIEWER },
        [ROUTE_DEVICE_PATCH] = { "PATCH", "/api/devices/{id}", ROLE_OPERATOR },
        [ROUTE_DEVICE_DELETE] = { "DELETE", "/api/devices/{id}", ROLE_OPERATOR },
        [ROUTE_DEVICE_ON] = { "POST", "/api/devices/{id}/on", ROLE_OPERATOR },
        [ROUTE_DEVICE_OFF] = { "POST", "/api/devices/{id}/off", ROLE_OPERATOR },
        [ROUTE_DEVICE_TOGGLE] = { "POST", "/api/devices/{id}/toggle", ROLE_OPERATOR },
        [ROUTE_DEVICE_STATS] = { "GET", "/api/devices/{id}/stats", ROLE_VIEWER },
        [ROUTE_DEVICE_ENERGY] = { "GET", "/api/devices/{id}/energy", ROLE_VIEWER },
        [ROUTE_HEALTH] = { "GET", "/api/health", ROLE_VIEWER },
        [ROUTE_OPENAPI] = { "GET", "/api/openapi.json", ROLE_NONE },
        [ROUTE_RATES_LIST] = { "GET", "/api/rates", ROLE_VIEWER },
        [ROUTE_RATES_ADD] = { "POST", "/api/rates", ROLE_OPERATOR },
        [ROUTE_RATE_GET] = { "GET", "/api/rates/{id}", ROLE_VIEWER },
        [ROUTE_RATE_DELETE] = { "DELETE", "/api/rates/{id}", ROLE_OPERATOR },
        [ROUTE_RATE_ACTIVATE] = { "POST", "/api/rates/{id}/activate", ROLE_OPERATOR },
        [ROUTE_COSTS] = { "GET", "/api/costs", ROLE_VIEWER },
        /* A what-if reads: the bus leaves it open to everyone too. */
        [ROUTE_COSTS_CALCULATE] = { "POST", "/api/costs/calculate", ROLE_VIEWER },
        [ROUTE_SCHEDULES_LIST] = { "GET", "/api/schedules", ROLE_VIEWER },
        [ROUTE_SCHEDULES_ADD] = { "POST", "/api/schedules", ROLE_OPERATOR },
        [ROUTE_SCHEDULE_GET] = { "GET", "/api/schedules/{id}", ROLE_VIEWER },
        [ROUTE_SCHEDULE_PATCH] = { "PATCH", "/api/schedules/{id}", ROLE_OPERATOR },
        [ROUTE_SCHEDULE_DELETE] = { "DELETE", "/api/schedules/{id}", ROLE_OPERATOR },
        [ROUTE_EXPORT] = { "GET", "/api/export", ROLE_VIEWER },
};

bool device_id_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > DEVICE_ID_MAX)
                return false;
        for (; *s; s++)
                if (!g_ascii_isalnum(*s) && *s != '_')
                        return false;
        return true;
}

/* Compares one path with one pattern, segment by segment; "{id}" takes
 * any one segment. Returns 1 on a match, 0 if not, -EINVAL if only the
 * parameter is malformed. */
static int match_pattern(const char *pattern, const char *path, char ret_id[DEVICE_ID_MAX + 1]) {
        const char *p = pattern, *s = path;
        bool bad_id = false;

        while (*p && *s) {
                const char *pe = strchrnul(p + 1, '/'), *se = strchrnul(s + 1, '/');
                size_t pl = pe - p, sl = se - s;

                if (pl == 5 && memcmp(p, "/{id}", 5) == 0) {
                        if (sl <= 1)
                                return 0;
                        if (sl - 1 > DEVICE_ID_MAX) {
                                bad_id = true;
                                ret_id[0] = 0;
                        } else {
                                memcpy(ret_id, s + 1, sl - 1);
                                ret_id[sl - 1] = 0;
                                if (!device_id_valid(ret_id))
                                        bad_id = true;
                        }
                } else if (pl != sl || memcmp(p, s, pl) != 0)
                        return 0;
                p = pe;
                s = se;
        }
        if (*p || *s)
                return 0;
        return bad_id ? -EINVAL : 1;
}

int route_match(const char *method, const char *path, char ret_id[DEVICE_ID_MAX + 1]) {
        int found = -ENOENT, invalid = 0;

        ret_id[0] = 0;
        for (int i = 0; i < _ROUTE_MAX; i++) {
                /* A fixed segment wins over {id}: /api/devices/discover is
                 * not a device, whatever the order of the table. */
                int r = match_pattern(route_table[i].pattern, path, ret_id);
                if (r == 0)
                        continue;
                if (strchr(route_table[i].pattern, '{')) {
                        char tmp[DEVICE_ID_MAX + 1];
                        bool fixed = false;
                        for (int j = 0; j < _ROUTE_MAX; j++)
                                if (!strchr(route_table[j].pattern, '{') &&
                                    match_pattern(route_table[j].pattern, path, tmp) == 1)
                                        fixed = true;
                        if (fixed)
                                continue;
                }
                if (r < 0) {
                        invalid = r;
                        continue;
                }
                if (strcmp(route_table[i].method, method) == 0)
                        return i;
                found = -EOPNOTSUPP;
        }
        if (found == -EOPNOTSUPP)
                return found;
        return invalid ?: -ENOENT;
}

static int fail(char **ret_error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static int fail(char **ret_error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (ret_error)
                *ret_error = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        return -EINVAL;
}

int parse_time(const char *s, uint64_t *ret, char **ret_error) {
        char *end;
        double x;

        if (!s || !*s)
                return fail(ret_error, "empty time");
        if (g_ascii_isdigit(s[0]) && strlen(s) <= 20 && !strchr(s, '-') && !strchr(s, ':')) {
                errno = 0;
                x = g_ascii_strtod(s, &end);
                if (errno != 0 || *end || !isfinite(x) || x < 0 || x > 253402300799.0)
                        return fail(ret_error, "'%s' is not epoch seconds", s);
                *ret = (uint64_t) llround(x * 1e6);
                return 0;
        }
        /* RFC 3339 wants an offset: a time without one would silently be
         * the bridge's local time. */
        size_t n = strlen(s);
        if (n < 20 || n > 40 || (s[n - 1] != 'Z' && s[n - 1] != 'z' && s[n - 3] != ':'))
                return fail(ret_error, "'%.40s' is not an RFC 3339 time with an offset or epoch seconds", s);
        g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(s, NULL);
        if (!dt || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' '))
                return fail(ret_error, "'%.40s' is not an RFC 3339 time with an offset or epoch seconds", s);
        int64_t us = g_date_time_to_unix(dt) * G_USEC_PER_SEC + g_date_time_get_microsecond(dt);
        if (us < 0)
                return fail(ret_error, "'%.40s' is before 1970", s);
        *ret = (uint64_t) us;
        return 0;
}

int parse_body_object(const char *data, size_t size, json_t **ret, char **ret_error) {
        json_error_t e;
        json_t *j;

        if (size == 0)
                return fail(ret_error, "a JSON object is required as the body");
        j = json_loadb(data, size, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return fail(ret_error, "malformed JSON at line %d, column %d: %s", e.line, e.column, e.text);
        if (!json_is_object(j)) {
                json_decref(j);
                return fail(ret_error, "the body must be a JSON object");
        }
        *ret = j;
        return 0;
}

int parse_choice(const char *s, const char *const *choices, const char *def, const char **ret, char **ret_error) {
        g_autofree char *list = NULL;

        if (!s) {
                *ret = def;
                return 0;
        }
        for (size_t i = 0; choices[i]; i++)
                if (strcmp(s, choices[i]) == 0) {
                        *ret = choices[i];
                        return 0;
                }
        list = g_strjoinv(", ", (char **) choices);
        return fail(ret_error, "'%.40s' is not one of %s", s, list);
}

int parse_seconds(const char *s, double min, double max, double *ret, char **ret_error) {
        char *end;
        double x;

        errno = 0;
        x = s && *s ? g_ascii_strtod(s, &end) : NAN;
        if (!s || !*s || errno != 0 || *end || !isfinite(x))
                return fail(ret_error, "'%.40s' is not a number of seconds", s ?: "");
        if (x < min || x > max)
                return fail(ret_error, "%g s is out of range (%g to %g)", x, min, max);
        *ret = x;
        return 0;
}

/* A comma list of at most max words, each valid; NULL for an empty list. */
static int parse_list(const char *name, const char *what, const char *s, size_t max, bool (*valid)(const char *),
                      char ***ret, char **ret_error) {
        g_auto(GStrv) words = NULL;

        *ret = NULL;
        if (!*s)
                return 0;
        words = g_strsplit(s, ",", (int) max + 2);
        if (g_strv_length(words) > max)
                return fail(ret_error, "%s: at most %zu", name, max);
        for (size_t i = 0; words[i]; i++)
                if (!valid(words[i]))
                        return fail(ret_error, "%s: '%.40s' is not %s", name, words[i], what);
        *ret = g_steal_pointer(&words);
        return 0;
}

/* A column name: lower-case letters, digits and "_", as the daemon's. */
static bool field_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 64)
                return false;
        for (; *s; s++)
                if (!g_ascii_islower(*s) && !g_ascii_isdigit(*s) && *s != '_')
                        return false;
        return true;
}

int parse_export_query(GHashTable *query, uint64_t now, ExportQuery *ret, char **ret_error) {
        static const char *const names[] = { "devices", "since", "until", "resolution", "format", "fields", "costs",
                                             NULL };
        static const char *const resolutions[] = { "raw", "minute", "hour", "day", NULL };
        static const char *const formats[] = { "csv", "json", NULL };
        static const char *const bools[] = { "true", "false", "1", "0", NULL };
        ExportQuery q = {};
        const char *v, *costs = NULL;
        g_autofree char *error = NULL;
        GHashTableIter it;
        gpointer key;
        int r = 0;

        *ret = (ExportQuery) {};
        if (query) {
                g_hash_table_iter_init(&it, query);
                while (g_hash_table_iter_next(&it, &key, NULL))
                        if (!g_strv_contains(names, key)) {
                                g_autofree char *list = g_strjoinv(", ", (char **) names);
                                return fail(ret_error, "unknown parameter '%.40s': use %s", (const char *) key, list);
                        }
        }
#define PARAM(n) (query ? (const char *) g_hash_table_lookup(query, n) : NULL)
        if ((v = PARAM("until")) && (r = parse_time(v, &q.until, &error)) < 0)
                goto bad_until;
        q.since = (q.until ?: now) > EXPORT_DEFAULT_USEC ? (q.until ?: now) - EXPORT_DEFAULT_USEC : 0;
        if ((v = PARAM("since")) && (r = parse_time(v, &q.since, &error)) < 0)
                goto bad_since;
        if (q.since >= (q.until ?: now)) {
                r = fail(ret_error, "since must be before until");
                goto finish;
        }
        if ((r = parse_choice(PARAM("resolution"), resolutions, "minute", &q.resolution, &error)) < 0) {
                r = fail(ret_error, "resolution: %s", error);
                goto finish;
        }
        if ((r = parse_choice(PARAM("format"), formats, "csv", &q.format, &error)) < 0) {
                r = fail(ret_error, "format: %s", error);
                goto finish;
        }
        if ((r = parse_choice(PARAM("costs"), bools, "false", &costs, &error)) < 0) {
                r = fail(ret_error, "costs: %s", error);
                goto finish;
        }
        q.costs = strcmp(costs, "true") == 0 || strcmp(costs, "1") == 0;
        if ((v = PARAM("devices")) &&
            (r = parse_list("devices", "a device id", v, EXPORT_DEVICES_MAX, device_id_valid, &q.devices,
                            ret_error)) < 0)
                goto finish;
        if ((v = PARAM("fields")) &&
            (r = parse_list("fields", "a column name", v, EXPORT_FIELDS_MAX, field_valid, &q.fields, ret_error)) < 0)
                goto finish;
#undef PARAM
        *ret = q;
        return 0;
bad_until:
        r = fail(ret_error, "until: %s", error);
        goto finish;
bad_since:
        r = fail(ret_error, "since: %s", error);
finish:
        export_query_done(&q);
        return r;
}

void export_query_done(ExportQuery *q) {
        g_strfreev(q->devices);
        g_strfreev(q->fields);
        *q = (ExportQuery) {};
}

const char *role_to_string(Role r) {
        static const char *const names[] = { "none", "viewer", "operator", "admin" };
        return r <= ROLE_ADMIN ? names[r] : "none";
}

Role role_from_string(const char *s) {
        if (strcmp(s, "viewer") == 0)
                return ROLE_VIEWER;
        if (strcmp(s, "operator") == 0)
                return ROLE_OPERATOR;
        if (strcmp(s, "admin") == 0)
                return ROLE_ADMIN;
        return ROLE_NONE;
}
