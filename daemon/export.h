/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Export of recorded readings as CSV (RFC 4180, a header line, CRLF line
 * ends) or JSON (one array of objects), produced a bounded window of the
 * store at a time so that a range of any length is never held in memory:
 * export_step() queries the next window and formats it, the caller
 * writes the text out and calls it again. No D-Bus, no sockets here.
 *
 * Columns (units in their names; times are RFC 3339 with the offset of
 * the calendar's zone):
 *   raw:                 device,time,power_w,voltage_v,current_a,energy_total_wh
 *   minute, hour, day:   device,start,end,energy_wh,power_min_w,power_avg_w,
 *                        power_max_w,samples,source
 * source is "kasamond" for what kasamond recorded and "device" for a day
 * imported from the device's own statistics (backfill), which has energy
 * only: no minimum or maximum (empty, JSON null), 0 samples, its average
 * over the day's length.
 * With costs (rollups only) two more, in the tariffs' currency:
 *                      energy_cost_<currency>, adders_cost_<currency>
 * (energy_cost_eur): what the row's energy costs, as ExportCosts says;
 * none (empty, JSON null) for an imported day, which no cost query prices.
 * A list of fields picks and orders columns; without "device" it takes one
 * device only. "start,energy_wh" at hour resolution is the CSV that the
 * what-if pricing (energy-csv.h, Manager.PriceEnergy) reads.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "macro.h"
#include "store.h"

typedef enum ExportResolution {
        EXPORT_RAW,
        EXPORT_MINUTE,
        EXPORT_HOUR,
        EXPORT_DAY,
        _EXPORT_RESOLUTION_MAX,
} ExportResolution;

typedef enum ExportFormat {
        EXPORT_CSV,
        EXPORT_JSON,
        _EXPORT_FORMAT_MAX,
} ExportFormat;

typedef struct ExportDevice {
        const char *id;         /* copied */
        uint32_t number;        /* the store's device */
} ExportDevice;

/* A row's period, and what its energy costs (minor units of the
 * currency); priced false: no tariff prices any of it (an empty cell). */
typedef struct ExportPeriod {
        int64_t start_ms, end_ms;
} ExportPeriod;

typedef struct ExportCost {
        int64_t energy, adders;
        bool priced;
} ExportCost;

/* Where the cost columns come from. */
typedef struct ExportCosts {
        /* The costs of rows of device (an index into the export's devices),
         * sorted and disjoint; called in time order, device after device,
         * from the thread that runs export_step(). -errno with a message
         * in *ret_error (free()) ends the export. */
        int (*price)(void *userdata, size_t device, const ExportPeriod *rows, size_t n, ExportCost *ret,
                     char **ret_error);
        void (*free)(void *userdata);
        void *userdata;
        char currency[4]; /* ISO 4217, the columns' unit */
        unsigned digits;  /* of its minor unit */
} ExportCosts;

typedef struct Export Export;

/* -EINVAL with the reason in *ret_error for a bad name. */
int export_resolution_from_string(const char *s, ExportResolution *ret);
int export_format_from_string(const char *s, ExportFormat *ret);

/* Costs need rollups: -EINVAL with the reason in *ret_error for raw. */
int export_check_costs(ExportResolution res, char **ret_error);

/* fields: NULL or empty for every column. Rows with from_ms <= time (raw)
 * or period start (rollups) < to_ms. The store and calendar must outlive
 * the export. costs: NULL, or the cost columns' source (taken: its free()
 * is called on every path). -EINVAL with a message in *ret_error (free())
 * for fields that do not fit, or costs at raw resolution. */
int export_new(Store *store, const Calendar *cal, const ExportDevice *devices, size_t n_devices, int64_t from_ms,
               int64_t to_ms, ExportResolution res, ExportFormat format, const char *const *fields, size_t n_fields,
               const ExportCosts *costs, Export **ret, char **ret_error);
Export *export_free(Export *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Export *, export_free);

/* Formats the next window into the export's buffer and points *ret at it
 * (valid until the next call); returns 1 with text (possibly empty), 0 at
 * the end (nothing more), or a negative errno from the store. */
int export_step(Export *e, const char **ret, size_t *ret_size);
/* What made export_step() fail, when more than its errno says; or NULL. */
const char *export_error(const Export *e);
