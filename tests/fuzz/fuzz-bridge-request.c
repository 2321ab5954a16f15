/* SPDX-License-Identifier: MIT */

/* The bridge's parsing of what HTTP clients send: the input is
 * "METHOD PATH?QUERY\nBODY"; the route and its id, every query value as a
 * time, choice and number, the whole query as GET /api/export's, and the
 * body as a JSON object. */

#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "fuzz-check.h"
#include "request.h"

static void check_value(const char *v) {
        static const char *const choices[] = { "raw", "minute", "hour", "day", NULL };
        g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL;
        uint64_t t;
        const char *c;
        double x;

        if (parse_time(v, &t, &e1) < 0)
                fuzz_assert(e1 && *e1);
        if (parse_choice(v, choices, "hour", &c, &e2) == 0)
                fuzz_assert(strcmp(c, v) == 0);
        else
                fuzz_assert(e2 && *e2);
        if (parse_seconds(v, 0.1, 60, &x, &e3) == 0)
                fuzz_assert(x >= 0.1 && x <= 60);
        else
                fuzz_assert(e3 && *e3);
}

static void check_export(GHashTable *query) {
        g_autofree char *error = NULL;
        const uint64_t now = UINT64_C(1764662400000000);
        ExportQuery q;
        int r = parse_export_query(query, now, &q, &error);

        if (r < 0) {
                fuzz_assert(r == -EINVAL && error && *error);
                return;
        }
        fuzz_assert(q.resolution && q.format && q.since < (q.until ? q.until : now));
        fuzz_assert(!q.devices || (g_strv_length(q.devices) >= 1 && g_strv_length(q.devices) <= EXPORT_DEVICES_MAX));
        for (size_t i = 0; q.devices && q.devices[i]; i++)
                fuzz_assert(device_id_valid(q.devices[i]));
        fuzz_assert(!q.fields || g_strv_length(q.fields) <= EXPORT_FIELDS_MAX);
        for (size_t i = 0; q.fields && q.fields[i]; i++)
                fuzz_assert(!strchr(q.fields[i], ',') && *q.fields[i]);
        export_query_done(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *nl = memchr(data, '\n', size);
        size_t head = nl ? (size_t) ((const uint8_t *) nl - data) : size;
        g_autofree char *line = g_strndup((const char *) data, head);
        char *sp = strchr(line, ' '), *q;
        char id[DEVICE_ID_MAX + 1];
        g_autofree char *error = NULL;
        json_t *j = NULL;
        int r;

        if (strlen(line) != head)
                return 0; /* a NUL in the request line: libsoup refuses it */
        if (sp) {
                *sp = 0;
                q = strchr(sp + 1, '?');
                if (q)
                        *q++ = 0;
                r = route_match(line, sp + 1, id);
                fuzz_assert(r < _ROUTE_MAX && (r >= 0 || r == -ENOENT || r == -EOPNOTSUPP || r == -EINVAL));
                if (r >= 0) {
                        fuzz_assert(strcmp(route_table[r].method, line) == 0);
                        fuzz_assert(strchr(route_table[r].pattern, '{') ? device_id_valid(id) : id[0] == 0);
                }
                if (q) {
                        g_autoptr(GHashTable) query = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                        g_auto(GStrv) pairs = g_strsplit(q, "&", 64);
                        for (size_t i = 0; pairs[i]; i++) {
                                char *eq = strchr(pairs[i], '=');
                                g_autofree char *v = g_uri_unescape_string(eq ? eq + 1 : pairs[i], NULL);
                                if (v)
                                        check_value(v);
                                /* As libsoup decodes a query: key=value, the last one wins. */
                                g_autofree char *k = eq ? g_strndup(pairs[i], (size_t) (eq - pairs[i])) : NULL;
                                char *key = k ? g_uri_unescape_string(k, NULL) : NULL;
                                if (key && v)
                                        g_hash_table_replace(query, key, g_strdup(v));
                                else
                                        g_free(key);
                        }
                        check_export(query);
                }
        }
        if (nl) {
                r = parse_body_object(nl + 1, size - head - 1, &j, &error);
                fuzz_assert(r == 0 ? json_is_object(j) : (r == -EINVAL && error && *error));
                json_decref(j);
        }
        return 0;
}
