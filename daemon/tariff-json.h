/* SPDX-License-Identifier: MIT */
#pragma once

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* What the two tariff parsers share: every refusal reads
 * "FILE: FIELD: expected WHAT", FIELD a JSON path like periods[2].hours. */

typedef struct TariffJson {
        const char *file;
        char **ret_error;
} TariffJson;

/* Paths longer than this are cut short, which only shortens a message. */
#define TARIFF_PATH_MAX 160

/* -EBADMSG, *ret_error "FILE: WHAT", or "FILE<sep>WHERE: WHAT" with a
 * where; -ENOMEM if that cannot be said. */
int tj_refusev(char **ret_error, const char *file, const char *sep, const char *where, const char *fmt, va_list ap)
        __attribute__((format(printf, 5, 0)));
int tj_refuse(const TariffJson *j, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
char *tj_path(char buf[static TARIFF_PATH_MAX], const char *parent, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Parses size bytes (at most max) of JSON with unique keys. */
int tj_load(const TariffJson *j, const char *data, size_t size, size_t max, json_t **ret);
/* Reads a whole file of at most max bytes. */
int tj_read_file(const char *path, size_t max, char **ret_data, size_t *ret_size, char **ret_error);

int tj_array(const TariffJson *j, const char *path, json_t *v, size_t min, size_t max);
/* tj_array(), and *ret a zeroed array of as many elements of size (never
 * NULL, also for none); returns the count. */
int tj_array_new(const TariffJson *j, const char *path, json_t *v, size_t min, size_t max, size_t size, void **ret);
int tj_string(const TariffJson *j, const char *path, json_t *v, char **ret);
int tj_int(const TariffJson *j, const char *path, json_t *v, int64_t min, int64_t max, int64_t *ret);
/* A decimal number with at most 9 decimals, |x| <= max: nano units. */
int tj_nano(const TariffJson *j, const char *path, json_t *v, int64_t max_units, int64_t *ret);
/* kWh (or kW) with at most 6 decimals, > 0: mWh (or mW). */
int tj_milli(const TariffJson *j, const char *path, json_t *v, int64_t *ret);
/* Refuses a key of obj not in the NULL-terminated allowed list (a typo
 * would otherwise drop a charge without a word). */
int tj_keys(const TariffJson *j, const char *path, json_t *obj, const char *const *allowed);
