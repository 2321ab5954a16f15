/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parsing of what HTTP clients send: routes and their path parameters,
 * query parameters, JSON bodies. Pure (no I/O, no libsoup), so that it has
 * unit tests and a fuzz target (tests/fuzz/fuzz-bridge-request.c). Errors
 * are -EINVAL with a message for the client in *ret_error. */

typedef enum Route {
        ROUTE_DEVICES_LIST,
        ROUTE_DEVICES_ADD,
        ROUTE_DEVICES_DISCOVER,
        ROUTE_DEVICE_GET,
        ROUTE_DEVICE_PATCH,
        ROUTE_DEVICE_DELETE,
        ROUTE_DEVICE_ON,
        ROUTE_DEVICE_OFF,
        ROUTE_DEVICE_TOGGLE,
        ROUTE_DEVICE_STATS,
        ROUTE_DEVICE_ENERGY,
        ROUTE_HEALTH,
        ROUTE_OPENAPI,
        ROUTE_RATES_LIST,
        ROUTE_RATES_ADD,
        ROUTE_RATE_GET,
        ROUTE_RATE_DELETE,
        ROUTE_RATE_ACTIVATE,
        ROUTE_COSTS,
        ROUTE_COSTS_CALCULATE,
        ROUTE_SCHEDULES_LIST,
        ROUTE_SCHEDULES_ADD,
        ROUTE_SCHEDULE_GET,
        ROUTE_SCHEDULE_PATCH,
        ROUTE_SCHEDULE_DELETE,
        ROUTE_EXPORT,
        _ROUTE_MAX,
} Route;

typedef enum Role {
        ROLE_NONE,   /* no token needed */
        ROLE_VIEWER,
        ROLE_OPERATOR,
        ROLE_ADMIN,
} Role;

typedef struct RouteInfo {
        const char *method;
        const char *pattern; /* OpenAPI's form: /api/devices/{id} */
        Role role;           /* the least role the bridge asks for */
} RouteInfo;

extern const RouteInfo route_table[_ROUTE_MAX];

#define DEVICE_ID_MAX 64

/* Matches method and path (no query). Returns the route, or -ENOENT (no
 * such path), -EOPNOTSUPP (the path exists, not with this method), or
 * -EINVAL (a malformed path parameter). The id goes to ret_id. */
int route_match(const char *method, const char *path, char ret_id[DEVICE_ID_MAX + 1]);

/* A device id: letters, digits and "_", 1 to DEVICE_ID_MAX of them. */
bool device_id_valid(const char *s);

/* A time as RFC 3339 ("2026-12-02T08:00:00Z", an offset or Z required) or
 * epoch seconds ("1764662400", fractions allowed), in microseconds since
 * the epoch. */
int parse_time(const char *s, uint64_t *ret, char **ret_error);

/* A JSON body that must be an object. */
int parse_body_object(const char *data, size_t size, json_t **ret, char **ret_error);

/* Picks one of `choices` (NULL-terminated); NULL input gives def. */
int parse_choice(const char *s, const char *const *choices, const char *def, const char **ret, char **ret_error);

/* A number of seconds, within [min, max]. */
int parse_seconds(const char *s, double min, double max, double *ret, char **ret_error);

/* GET /api/export's query: every parameter checked, none unknown. */
typedef struct ExportQuery {
        char **devices;        /* device ids (valid ones); NULL: every metered device */
        uint64_t since, until; /* microseconds; until 0: now */
        const char *resolution, *format; /* static strings */
        char **fields;         /* NULL: all */
        bool costs;
} ExportQuery;

#define EXPORT_DEVICES_MAX 1024
#define EXPORT_FIELDS_MAX 32
#define EXPORT_DEFAULT_USEC (UINT64_C(24) * 3600 * 1000000)

/* query: the decoded parameters (NULL: none); now: microseconds, for the
 * default since (a day before until). */
int parse_export_query(GHashTable *query, uint64_t now, ExportQuery *ret, char **ret_error);
void export_query_done(ExportQuery *q);

const char *role_to_string(Role r);
Role role_from_string(const char *s);
