/* SPDX-License-Identifier: MIT */

/* The bridge's parsers of client input: routes and path parameters, times,
 * JSON bodies, choices; WebSocket frames and the handshake key. */

#include <errno.h>
#include <stdarg.h>
#include <glib.h>
#include <string.h>

#include "request.h"
#include "tap.h"
#include "ws-frame.h"

static void test_routes(void) {
        char id[DEVICE_ID_MAX + 1];

        is_int(route_match("GET", "/api/devices", id), ROUTE_DEVICES_LIST, "GET /api/devices");
        is_int(route_match("POST", "/api/devices", id), ROUTE_DEVICES_ADD, "POST /api/devices");
        is_int(route_match("POST", "/api/devices/discover", id), ROUTE_DEVICES_DISCOVER,
               "discover is a route, not a device id");
        is_int(route_match("GET", "/api/devices/discover", id), -EOPNOTSUPP, "GET discover: wrong method");
        is_int(route_match("GET", "/api/devices/50c7bf0a1b2c_01", id), ROUTE_DEVICE_GET, "GET a device");
        is_str(id, "50c7bf0a1b2c_01", "its id");
        is_int(route_match("POST", "/api/devices/abc/toggle", id), ROUTE_DEVICE_TOGGLE, "toggle");
        is_int(route_match("GET", "/api/devices/abc/stats", id), ROUTE_DEVICE_STATS, "stats");
        is_int(route_match("PUT", "/api/devices/abc", id), -EOPNOTSUPP, "PUT a device: wrong method");
        is_int(route_match("GET", "/api/devices/a.b", id), -EINVAL, "a dot in an id");
        is_int(route_match("GET", "/api/devices/a%2Fb", id), -EINVAL, "an escaped slash in an id");
        is_int(route_match("GET", "/api/devices/", id), -ENOENT, "an empty id");
        is_int(route_match("GET", "/api/devices//stats", id), -ENOENT, "an empty id before stats");
        is_int(route_match("GET", "/api/devices/abc/nope", id), -ENOENT, "an unknown action");
        is_int(route_match("GET", "/api/devices/abc/stats/x", id), -ENOENT, "a longer path");
        is_int(route_match("GET", "/api/devicesx", id), -ENOENT, "a longer segment");
        is_int(route_match("GET", "/api", id), -ENOENT, "/api alone");
        is_int(route_match("POST", "/api/schedules", id), ROUTE_SCHEDULES_ADD, "POST /api/schedules");
        is_int(route_match("PATCH", "/api/schedules/12", id), ROUTE_SCHEDULE_PATCH, "PATCH a schedule");
        is_str(id, "12", "its id");
        is_int(route_match("POST", "/api/schedules/12", id), -EOPNOTSUPP, "POST a schedule: wrong method");
        g_autofree char *longid = g_strnfill(DEVICE_ID_MAX + 1, 'a');
        g_autofree char *p = g_strconcat("/api/devices/", longid, NULL);
        is_int(route_match("GET", p, id), -EINVAL, "an id too long");
        ok(!device_id_valid("") && device_id_valid("a_1") && !device_id_valid("a-1"), "device_id_valid");
}

static void test_times(void) {
        uint64_t t = 0;
        g_autofree char *e = NULL;

        ok(parse_time("1764662400", &t, NULL) == 0 && t == UINT64_C(1764662400000000), "epoch seconds");
        ok(parse_time("1764662400.25", &t, NULL) == 0 && t == UINT64_C(1764662400250000), "epoch with a fraction");
        ok(parse_time("2025-12-02T08:00:00Z", &t, NULL) == 0 && t == UINT64_C(1764662400000000), "RFC 3339, Z");
        ok(parse_time("2025-12-02T09:00:00+01:00", &t, NULL) == 0 && t == UINT64_C(1764662400000000),
           "RFC 3339 with an offset");
        ok(parse_time("2025-12-02T08:00:00.5Z", &t, NULL) == 0 && t == UINT64_C(1764662400500000),
           "RFC 3339 with a fraction");
        ok(parse_time("2025-12-02T08:00:00", &t, &e) == -EINVAL && e, "no offset: refused");
        g_clear_pointer(&e, g_free);
        ok(parse_time("2025-12-02", &t, NULL) == -EINVAL, "a date alone: refused");
        ok(parse_time("2025-13-02T08:00:00Z", &t, NULL) == -EINVAL, "month 13");
        ok(parse_time("yesterday", &t, NULL) == -EINVAL, "a word");
        ok(parse_time("", &t, NULL) == -EINVAL, "empty");
        ok(parse_time("-1", &t, NULL) == -EINVAL, "negative");
        ok(parse_time("1e400", &t, NULL) == -EINVAL, "overflowing");
        ok(parse_time("nan", &t, NULL) == -EINVAL, "nan");
        ok(parse_time("1969-12-31T23:59:59Z", &t, NULL) == -EINVAL, "before 1970");
        ok(parse_time("12345678901234567890123", &t, NULL) == -EINVAL, "too many digits");
}

static void test_bodies(void) {
        json_t *j = NULL;
        g_autofree char *e = NULL;
        const char *c;
        double x;
        static const char *const choices[] = { "day", "month", NULL };

        ok(parse_body_object("{\"a\":1}", 7, &j, NULL) == 0 && json_is_object(j), "an object");
        json_decref(j);
        ok(parse_body_object("[1]", 3, &j, &e) == -EINVAL && strstr(e, "object"), "an array: refused");
        g_clear_pointer(&e, g_free);
        ok(parse_body_object("{\"a\":", 5, &j, &e) == -EINVAL && strstr(e, "malformed"), "truncated: refused");
        g_clear_pointer(&e, g_free);
        ok(parse_body_object("{\"a\":1,\"a\":2}", 13, &j, NULL) == -EINVAL, "a duplicate key: refused");
        ok(parse_body_object("", 0, &j, NULL) == -EINVAL, "empty: refused");
        ok(parse_body_object("{\"a\":\"b\0c\"}", 11, &j, NULL) == -EINVAL, "a NUL inside a string: refused");
        ok(parse_choice(NULL, choices, "day", &c, NULL) == 0 && strcmp(c, "day") == 0, "choice default");
        ok(parse_choice("month", choices, "day", &c, NULL) == 0 && strcmp(c, "month") == 0, "choice");
        ok(parse_choice("week", choices, "day", &c, &e) == -EINVAL && strstr(e, "day, month"), "unknown choice");
        ok(parse_seconds("2.5", 0.1, 60, &x, NULL) == 0 && x == 2.5, "seconds");
        ok(parse_seconds("61", 0.1, 60, &x, NULL) == -EINVAL, "seconds out of range");
        ok(parse_seconds("inf", 0.1, 60, &x, NULL) == -EINVAL, "infinite seconds");
        ok(role_from_string("operator") == ROLE_OPERATOR && role_from_string("root") == ROLE_NONE &&
           strcmp(role_to_string(ROLE_ADMIN), "admin") == 0, "roles");
}

static void test_frames(void) {
        /* RFC 6455 5.7: a masked "Hello". */
        uint8_t hello[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
        uint8_t unmasked[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
        uint8_t rsv[] = { 0xc1, 0x80, 0, 0, 0, 0 };
        uint8_t long_ping[] = { 0x89, 0xfe, 0x00, 0x7e };
        uint8_t frag_close[] = { 0x08, 0x80, 0, 0, 0, 0 };
        uint8_t big[] = { 0x81, 0xff, 0, 0, 0, 0, 0, 1, 0, 0 };
        uint8_t not_shortest[] = { 0x81, 0xfe, 0x00, 0x05, 0, 0, 0, 0 };
        WsFrame f;
        g_autoptr(GByteArray) out = g_byte_array_new();
        g_autofree char *key = NULL;

        is_int(ws_frame_parse(hello, 5, 100, &f), 0, "a partial frame needs more");
        is_int(ws_frame_parse(hello, sizeof(hello), 100, &f), sizeof(hello), "the RFC's masked Hello");
        ok(f.fin && f.opcode == WS_OP_TEXT && f.size == 5 && memcmp(f.payload, "Hello", 5) == 0, "unmasked in place");
        is_int(ws_frame_parse(unmasked, sizeof(unmasked), 100, &f), -EPROTO, "an unmasked client frame");
        is_int(ws_frame_parse(rsv, sizeof(rsv), 100, &f), -EPROTO, "reserved bits");
        is_int(ws_frame_parse(long_ping, sizeof(long_ping), 1000, &f), -EPROTO, "a ping over 125 bytes");
        is_int(ws_frame_parse(frag_close, sizeof(frag_close), 100, &f), -EPROTO, "a fragmented close");
        is_int(ws_frame_parse(big, sizeof(big), 4096, &f), -EMSGSIZE, "a 4 GiB frame");
        is_int(ws_frame_parse(not_shortest, sizeof(not_shortest), 100, &f), -EPROTO, "a length not in its shortest form");

        ws_frame_append(out, WS_OP_TEXT, "Hello", 5);
        ok(out->len == 7 && out->data[0] == 0x81 && out->data[1] == 5, "a short server frame");
        g_byte_array_set_size(out, 0);
        g_autofree char *payload = g_strnfill(300, 'x');
        ws_frame_append(out, WS_OP_TEXT, payload, 300);
        ok(out->len == 304 && out->data[1] == 126 && out->data[2] == 1 && out->data[3] == 44, "a 16-bit length");

        /* RFC 6455 1.3's example. */
        key = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
        is_str(key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Accept of the RFC's key");
        ok(ws_accept_key("short") == NULL && ws_accept_key("dGhlIHNhbXBsZSBub25jZQ!!") == NULL, "bad keys");
}

/* GET /api/export's query, parameter by parameter. */
static int export_query(ExportQuery *q, char **error, ...) {
        g_autoptr(GHashTable) h = g_hash_table_new(g_str_hash, g_str_equal);
        va_list ap;
        const char *k;

        va_start(ap, error);
        while ((k = va_arg(ap, const char *)))
                g_hash_table_insert(h, (char *) k, va_arg(ap, char *));
        va_end(ap);
        g_clear_pointer(error, g_free);
        return parse_export_query(h, UINT64_C(1764662400000000), q, error);
}

static void test_export_query(void) {
        g_autofree char *e = NULL;
        ExportQuery q;

        is_int(route_match("GET", "/api/export", (char[DEVICE_ID_MAX + 1]) {}), ROUTE_EXPORT, "GET /api/export");
        ok(parse_export_query(NULL, UINT64_C(1764662400000000), &q, &e) == 0 && !q.devices && !q.fields &&
                   q.until == 0 && q.since == UINT64_C(1764662400000000) - EXPORT_DEFAULT_USEC &&
                   strcmp(q.resolution, "minute") == 0 && strcmp(q.format, "csv") == 0 && !q.costs,
           "no parameters: every device, the last 24 hours, minute rows, CSV, no costs");
        export_query_done(&q);
        ok(export_query(&q, &e, "devices", "aa,bb_01", "since", "2025-12-01T00:00:00Z", "until", "1764662400",
                        "resolution", "day", "format", "json", "fields", "start,energy_wh,energy_cost_eur", "costs",
                        "true", NULL) == 0 &&
                   g_strv_length(q.devices) == 2 && strcmp(q.devices[1], "bb_01") == 0 &&
                   q.since == UINT64_C(1764547200000000) && q.until == UINT64_C(1764662400000000) &&
                   strcmp(q.resolution, "day") == 0 && strcmp(q.format, "json") == 0 &&
                   g_strv_length(q.fields) == 3 && q.costs,
           "every parameter");
        export_query_done(&q);
        ok(export_query(&q, &e, "costs", "0", NULL) == 0 && !q.costs, "costs=0");
        export_query_done(&q);
        ok(export_query(&q, &e, "until", "1764662400", NULL) == 0 && q.since == q.until - EXPORT_DEFAULT_USEC,
           "since defaults to a day before until");
        export_query_done(&q);
        static const struct {
                const char *key, *value, *says;
        } bad[] = {
                { "resolution", "week", "resolution: 'week' is not one of raw, minute, hour, day" },
                { "format", "xml", "format: 'xml' is not one of csv, json" },
                { "costs", "yes", "costs: 'yes' is not one of true, false, 1, 0" },
                { "since", "yesterday", "since: 'yesterday' is not an RFC 3339 time with an offset or epoch seconds" },
                { "until", "", "until: empty time" },
                { "since", "1764662401", "since must be before until" },
                { "devices", "aa,b-b", "devices: 'b-b' is not a device id" },
                { "devices", "aa,,bb", "devices: '' is not a device id" },
                { "fields", "Start", "fields: 'Start' is not a column name" },
                { "token", "x", "unknown parameter 'token': use devices, since, until, resolution, format, fields, costs" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                int r = export_query(&q, &e, bad[i].key, bad[i].value, NULL);
                is_int(r, -EINVAL, "%s=%s is refused", bad[i].key, bad[i].value);
                is_str(e, bad[i].says, "saying why");
        }
        g_autofree char *many = g_strjoinv(",", (char *[]) { [0 ... 32] = (char *) "start", NULL });
        ok(export_query(&q, &e, "fields", many, NULL) == -EINVAL && strstr(e, "at most 32"), "33 fields are too many");
}

int main(void) {
        test_routes();
        test_times();
        test_bodies();
        test_frames();
        test_export_query();
        return done_testing();
}
