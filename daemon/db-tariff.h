/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Tariffs and their assignments, in SQLite (tariffs.sqlite in the state
 * directory, a file of its own: see db-tariff.c for why).
 *
 * A tariff is kept as the text it was given (the project's file format,
 * kasamond-tariff(5), or one OpenEI URDB item) plus columns for listing;
 * the text is the truth and is parsed again at start. Ids are never reused:
 * they name D-Bus objects.
 *
 * An assignment says: from `since` on, `tariff` prices the home (device
 * NULL) or that device (tariff 0: the device goes back to the home's).
 * Assignments are only ever added, so that past periods keep the tariff of
 * their time. Functions return negative errno; the SQLite message of the
 * last failure is in tariff_db_last_error(), for the caller to log once. */

typedef struct TariffDb TariffDb;

typedef enum TariffFormat {
        TARIFF_FORMAT_FILE, /* kasamond-tariff(5) */
        TARIFF_FORMAT_URDB, /* one OpenEI URDB item */
        _TARIFF_FORMAT_MAX,
} TariffFormat;

typedef struct TariffRow {
        int64_t id;
        TariffFormat format;
        char *text;
        char *name, *utility, *currency;
        int64_t valid_from_ms, valid_until_ms; /* INT64_MIN / INT64_MAX: open */
        int64_t added_ms;
} TariffRow;

typedef struct TariffAssignment {
        int64_t id;       /* order of insertion */
        char *device;     /* NULL: the home */
        int64_t tariff;   /* 0: back to the home's tariff (devices only) */
        int64_t since_ms;
} TariffAssignment;

const char *tariff_format_to_string(TariffFormat f);

int tariff_db_open(const char *path, TariffDb **ret, char **ret_error);
TariffDb *tariff_db_free(TariffDb *db);
const char *tariff_db_last_error(const TariffDb *db);
int tariff_db_schema_version(const TariffDb *db);

/* Adds row (its id is ignored) and returns the new id in *ret_id. */
int tariff_db_add(TariffDb *db, const TariffRow *row, int64_t *ret_id);
/* All tariffs by id: tariff_row_array_free(). */
int tariff_db_list(TariffDb *db, TariffRow **ret, size_t *ret_n);
/* -ENOENT if unknown; -EBUSY while an assignment refers to it. */
int tariff_db_remove(TariffDb *db, int64_t id);

/* One transaction: the home (n_devices 0) or each device gets tariff from
 * since_ms on. -ENOENT if tariff (not 0) is unknown; -EINVAL for tariff 0
 * without devices. */
int tariff_db_assign(TariffDb *db, const char *const *devices, size_t n_devices, int64_t tariff,
                     int64_t since_ms);
/* All assignments by since, then id: tariff_assignment_array_free(). */
int tariff_db_assignments(TariffDb *db, TariffAssignment **ret, size_t *ret_n);

void tariff_row_done(TariffRow *r);
void tariff_row_array_free(TariffRow *a, size_t n);
void tariff_assignment_array_free(TariffAssignment *a, size_t n);
