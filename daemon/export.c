/* SPDX-License-Identifier: MIT */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "export.h"
#include "log.h"

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)
/* Rows of one store query: the memory an export holds at most, with the
 * text they make (a raw sample is about 100 bytes of CSV). */
#define WINDOW_ROWS_MAX 8192
/* A step ends once this much text is ready, or after this many windows
 * (so a long empty range does not keep the caller's loop busy). */
#define STEP_BYTES 65536
#define STEP_WINDOWS 64
/* How far empty windows may grow: a century. */
#define WINDOW_EMPTY_MAX_MS (INT64_C(100) * 366 * DAY_MS)

typedef enum Column {
        COL_DEVICE,
        COL_TIME,       /* raw */
        COL_POWER,
        COL_VOLTAGE,
        COL_CURRENT,
        COL_ENERGY_TOTAL,
        COL_START,      /* rollups */
        COL_END,
        COL_ENERGY,
        COL_POWER_MIN,
        COL_POWER_AVG,
        COL_POWER_MAX,
        COL_SAMPLES,
        COL_SOURCE,
        COL_ENERGY_COST, /* with costs */
        COL_ADDERS_COST,
        _COL_MAX,
} Column;

static const char *const column_names[_COL_MAX] = {
        [COL_DEVICE] = "device",       [COL_TIME] = "time",           [COL_POWER] = "power_w",
        [COL_VOLTAGE] = "voltage_v",   [COL_CURRENT] = "current_a",   [COL_ENERGY_TOTAL] = "energy_total_wh",
        [COL_START] = "start",         [COL_END] = "end",             [COL_ENERGY] = "energy_wh",
        [COL_POWER_MIN] = "power_min_w", [COL_POWER_AVG] = "power_avg_w", [COL_POWER_MAX] = "power_max_w",
        [COL_SAMPLES] = "samples",     [COL_SOURCE] = "source",
        /* The currency is added: energy_cost_eur. */
        [COL_ENERGY_COST] = "energy_cost", [COL_ADDERS_COST] = "adders_cost",
};

static const Column raw_columns[] = { COL_DEVICE, COL_TIME, COL_POWER, COL_VOLTAGE, COL_CURRENT, COL_ENERGY_TOTAL };
static const Column rollup_columns[] = { COL_DEVICE,    COL_START,     COL_END,       COL_ENERGY,
                                         COL_POWER_MIN, COL_POWER_AVG, COL_POWER_MAX, COL_SAMPLES,
                                         COL_SOURCE,    COL_ENERGY_COST, COL_ADDERS_COST };
#define ROLLUP_COLUMNS_PLAIN (ELEMENTSOF(rollup_columns) - 2)

static const char *const resolution_names[_EXPORT_RESOLUTION_MAX] = { "raw", "minute", "hour", "day" };
static const char *const format_names[_EXPORT_FORMAT_MAX] = { "csv", "json" };

struct Export {
        Store *store;
        const Calendar *cal;
        char **ids;
        uint32_t *numbers;
        size_t n_devices;
        int64_t from_ms, to_ms;
        ExportResolution res;
        ExportFormat format;
        Column columns[_COL_MAX];
        size_t n_columns;
        bool have_costs;
        ExportCosts costs;
        char cost_names[2][32]; /* energy_cost_eur, adders_cost_eur */
        char *error;

        size_t device;          /* the one being exported */
        int64_t cursor_ms;      /* its next window starts here */
        int64_t window_ms;
        bool started, ended, first_row;

        char *buf;
        size_t len, allocated;
};

int export_resolution_from_string(const char *s, ExportResolution *ret) {
        for (size_t i = 0; i < _EXPORT_RESOLUTION_MAX; i++)
                if (strcmp(s, resolution_names[i]) == 0) {
                        *ret = (ExportResolution) i;
                        return 0;
                }
        return -EINVAL;
}

int export_format_from_string(const char *s, ExportFormat *ret) {
        for (size_t i = 0; i < _EXPORT_FORMAT_MAX; i++)
                if (strcmp(s, format_names[i]) == 0) {
                        *ret = (ExportFormat) i;
                        return 0;
                }
        return -EINVAL;
}

static int64_t window_default(const Export *e) {
        switch (e->res) {
        case EXPORT_RAW:
                return HOUR_MS;
        case EXPORT_MINUTE:
                return DAY_MS;          /* 1440 rows */
        case EXPORT_HOUR:
                return 31 * DAY_MS;     /* 744 */
        default:
                /* Costs price a window's finer rollups at once: a month. */
                return e->have_costs ? 31 * DAY_MS : 366 * DAY_MS;
        }
}

static const char *column_name(const Export *e, Column c) {
        if (c == COL_ENERGY_COST || c == COL_ADDERS_COST)
                return e->cost_names[c - COL_ENERGY_COST];
        return column_names[c];
}

Export *export_free(Export *e) {
        if (!e)
                return NULL;
        for (size_t i = 0; i < e->n_devices; i++)
                free(e->ids[i]);
        free(e->ids);
        free(e->numbers);
        free(e->buf);
        free(e->error);
        if (e->have_costs && e->costs.free)
                e->costs.free(e->costs.userdata);
        free(e);
        return NULL;
}

static int set_columns(Export *e, const char *const *fields, size_t n_fields, char **ret_error) {
        const Column *allowed = e->res == EXPORT_RAW ? raw_columns : rollup_columns;
        size_t n_allowed = e->res == EXPORT_RAW ? ELEMENTSOF(raw_columns)
                           : e->have_costs    ? ELEMENTSOF(rollup_columns)
                                              : ROLLUP_COLUMNS_PLAIN;
        bool device = false;

        if (n_fields == 0) {
                memcpy(e->columns, allowed, n_allowed * sizeof(Column));
                e->n_columns = n_allowed;
                return 0;
        }
        for (size_t i = 0; i < n_fields; i++) {
                size_t k;
                for (k = 0; k < n_allowed; k++)
                        if (strcmp(fields[i], column_name(e, allowed[k])) == 0)
                                break;
                if (k == n_allowed || e->n_columns == _COL_MAX) {
                        _cleanup_free_ char *list = NULL;
                        size_t size = 0;
                        FILE *f = open_memstream(&list, &size);
                        for (size_t j = 0; f && j < n_allowed; j++)
                                fprintf(f, "%s%s", j ? "," : "", column_name(e, allowed[j]));
                        if (!f || fclose(f) < 0)
                                return -ENOMEM;
                        bool cost = strstr(fields[i], "_cost") != NULL;
                        if (asprintf(ret_error, "Unknown field '%s' at %s resolution: use %s%s.", fields[i],
                                     resolution_names[e->res], list,
                                     cost && e->res == EXPORT_RAW ? " (costs are of rollups)"
                                     : cost && !e->have_costs     ? " (cost columns come with costs)"
                                                                  : "") < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
                for (size_t j = 0; j < e->n_columns; j++)
                        if (e->columns[j] == allowed[k]) {
                                if (asprintf(ret_error, "Field '%s' given twice.", fields[i]) < 0)
                                        return -ENOMEM;
                                return -EINVAL;
                        }
                e->columns[e->n_columns++] = allowed[k];
                device = device || allowed[k] == COL_DEVICE;
        }
        if (!device && e->n_devices > 1) {
                *ret_error = strdup("Without the field 'device' an export takes one device only.");
                return *ret_error ? -EINVAL : -ENOMEM;
        }
        return 0;
}

int export_check_costs(ExportResolution res, char **ret_error) {
        if (res != EXPORT_RAW)
                return 0;
        return error_set(ret_error, -EINVAL, "Costs are of rollups: use the resolution minute, hour or day (a raw "
                                             "sample is a reading, not an amount of energy).");
}

int export_new(Store *store, const Calendar *cal, const ExportDevice *devices, size_t n_devices, int64_t from_ms,
               int64_t to_ms, ExportResolution res, ExportFormat format, const char *const *fields, size_t n_fields,
               const ExportCosts *costs, Export **ret, char **ret_error) {
        _cleanup_(export_freep) Export *e = NULL;
        int r;

        *ret_error = NULL;
        e = calloc(1, sizeof(Export));
        if (!e) {
                if (costs && costs->free)
                        costs->free(costs->userdata);
                return -ENOMEM;
        }
        *e = (Export) { .store = store, .cal = cal, .from_ms = from_ms, .to_ms = to_ms, .res = res,
                        .format = format, .cursor_ms = from_ms, .first_row = true, .have_costs = costs != NULL };
        if (costs) {
                e->costs = *costs;
                for (unsigned k = 0; k < 2; k++) {
                        char *p = e->cost_names[k] + snprintf(e->cost_names[k], sizeof e->cost_names[k], "%s_",
                                                                 column_names[COL_ENERGY_COST + k]);
                        for (const char *c = costs->currency; *c && p < e->cost_names[k] + sizeof e->cost_names[k] - 1; c++)
                                *p++ = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                        *p = 0;
                }
        }
        if (res < 0 || res >= _EXPORT_RESOLUTION_MAX || format < 0 || format >= _EXPORT_FORMAT_MAX)
                return -EINVAL;
        if (costs && (r = export_check_costs(res, ret_error)) < 0)
                return r;
        e->window_ms = window_default(e);
        e->ids = calloc(MAX(n_devices, (size_t) 1), sizeof(char *));
        e->numbers = calloc(MAX(n_devices, (size_t) 1), sizeof(uint32_t));
        if (!e->ids || !e->numbers)
                return -ENOMEM;
        for (size_t i = 0; i < n_devices; i++) {
                e->ids[i] = strdup(devices[i].id);
                if (!e->ids[i])
                        return -ENOMEM;
                e->numbers[i] = devices[i].number;
                e->n_devices++;
        }
        r = set_columns(e, fields, n_fields, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

static int reserve(Export *e, size_t more) {
        if (e->len + more + 1 <= e->allocated)
                return 0;
        size_t a = MAX(e->allocated * 2, e->len + more + 1);
        a = MAX(a, (size_t) STEP_BYTES + 4096);
        char *p = realloc(e->buf, a);
        if (!p)
                return -ENOMEM;
        e->buf = p;
        e->allocated = a;
        return 0;
}

_printf_(2, 3) static int put(Export *e, const char *fmt, ...) {
        va_list ap;
        for (;;) {
                size_t room = e->allocated - e->len;
                va_start(ap, fmt);
                int n = e->buf ? vsnprintf(e->buf + e->len, room, fmt, ap) : 0;
                va_end(ap);
                if (n < 0)
                        return -errno;
                if (e->buf && (size_t) n < room) {
                        e->len += (size_t) n;
                        return 0;
                }
                int r = reserve(e, (size_t) n + 1);
                if (r < 0)
                        return r;
        }
}

/* A text field: quoted (RFC 4180) when it needs to be in CSV, a JSON
 * string in JSON. */
static int put_text(Export *e, const char *s) {
        int r;
        if (e->format == EXPORT_CSV && !strpbrk(s, ",\"\r\n"))
                return put(e, "%s", s);
        r = put(e, "\"");
        for (const char *p = s; r >= 0 && *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (e->format == EXPORT_CSV)
                        r = put(e, c == '"' ? "\"\"" : "%c", c);
                else if (c == '"' || c == '\\')
                        r = put(e, "\\%c", c);
                else if (c < 0x20)
                        r = put(e, "\\u%04x", c);
                else
                        r = put(e, "%c", c);
        }
        return r < 0 ? r : put(e, "\"");
}

/* A milli-unit as a decimal without floating point, trailing zeros left
 * out: 1500 -> "1.5". Valid as JSON and as what energy-csv.c reads. */
static int put_milli(Export *e, int64_t v) {
        uint64_t a = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
        unsigned frac = (unsigned) (a % 1000);
        char f[5] = "";
        if (frac) {
                snprintf(f, sizeof f, ".%03u", frac);
                for (size_t i = strlen(f); f[i - 1] == '0'; i--)
                        f[i - 1] = 0;
        }
        return put(e, "%s%" PRIu64 "%s", v < 0 ? "-" : "", a / 1000, f);
}

static int put_time(Export *e, int64_t ts_ms) {
        char buf[CALENDAR_ISO8601_MAX];
        return put_text(e, calendar_format_iso8601(e->cal, ts_ms, buf));
}

static int row_begin(Export *e) {
        if (e->format == EXPORT_CSV)
                return 0;
        int r = put(e, e->first_row ? "\n{" : ",\n{");
        e->first_row = false;
        return r;
}

static int cell_begin(Export *e, size_t i) {
        if (e->format == EXPORT_CSV)
                return i > 0 ? put(e, ",") : 0;
        return put(e, "%s\"%s\":", i > 0 ? "," : "", column_name(e, e->columns[i]));
}

static int row_end(Export *e) {
        return put(e, e->format == EXPORT_CSV ? "\r\n" : "}");
}

static int put_sample(Export *e, const StoreSample *s) {
        int r = row_begin(e);
        for (size_t i = 0; r >= 0 && i < e->n_columns; i++) {
                r = cell_begin(e, i);
                if (r < 0)
                        break;
                switch (e->columns[i]) {
                case COL_DEVICE:
                        r = put_text(e, e->ids[e->device]);
                        break;
                case COL_TIME:
                        r = put_time(e, s->ts_ms);
                        break;
                case COL_POWER:
                        r = put_milli(e, s->power_mw);
                        break;
                case COL_VOLTAGE:
                        r = put_milli(e, s->voltage_mv);
                        break;
                case COL_CURRENT:
                        r = put_milli(e, s->current_ma);
                        break;
                case COL_ENERGY_TOTAL:
                        r = put_milli(e, s->energy_mwh);
                        break;
                default:
                        r = -EINVAL;
                }
        }
        return r < 0 ? r : row_end(e);
}

static int64_t period_end(const Export *e, int64_t start) {
        switch (e->res) {
        case EXPORT_MINUTE:
                return start + MINUTE_MS;
        case EXPORT_HOUR:
                return start + HOUR_MS;
        default:
                return calendar_next_day(e->cal, start);
        }
}

/* A value that is not there: an empty CSV cell, a JSON null. */
static int put_none(Export *e) {
        return e->format == EXPORT_JSON ? put(e, "null") : 0;
}

/* An amount in the currency's minor units, as a decimal; none where no
 * tariff priced it. */
static int put_amount(Export *e, const ExportCost *cost, bool adders) {
        char buf[COST_AMOUNT_MAX];
        if (!cost || !cost->priced)
                return put_none(e);
        return put(e, "%s", cost_format_amount(adders ? cost->adders : cost->energy, e->costs.digits, buf));
}

/* imported: a day from the device's own statistics, energy only; cost:
 * NULL for none. */
static int put_rollup(Export *e, const StoreRollup *p, bool imported, const ExportCost *cost) {
        int r = row_begin(e);
        for (size_t i = 0; r >= 0 && i < e->n_columns; i++) {
                r = cell_begin(e, i);
                if (r < 0)
                        break;
                switch (e->columns[i]) {
                case COL_DEVICE:
                        r = put_text(e, e->ids[e->device]);
                        break;
                case COL_START:
                        r = put_time(e, p->period_start_ms);
                        break;
                case COL_END:
                        r = put_time(e, period_end(e, p->period_start_ms));
                        break;
                case COL_ENERGY:
                        r = put_milli(e, p->energy_mwh);
                        break;
                case COL_POWER_MIN:
                        r = imported ? put_none(e) : put_milli(e, p->power_min_mw);
                        break;
                case COL_POWER_AVG:
                        r = put_milli(e, p->power_avg_mw);
                        break;
                case COL_POWER_MAX:
                        r = imported ? put_none(e) : put_milli(e, p->power_max_mw);
                        break;
                case COL_SAMPLES:
                        r = put(e, "%" PRIu64, p->count);
                        break;
                case COL_SOURCE:
                        r = put_text(e, imported ? "device" : "kasamond");
                        break;
                case COL_ENERGY_COST:
                        r = put_amount(e, cost, false);
                        break;
                case COL_ADDERS_COST:
                        r = put_amount(e, cost, true);
                        break;
                default:
                        r = -EINVAL;
                }
        }
        return r < 0 ? r : row_end(e);
}

static int put_header(Export *e) {
        if (e->format == EXPORT_JSON)
                return put(e, "[");
        int r = 0;
        for (size_t i = 0; r >= 0 && i < e->n_columns; i++)
                r = put(e, "%s%s", i ? "," : "", column_name(e, e->columns[i]));
        return r < 0 ? r : put(e, "\r\n");
}

/* A window's rollups, with their costs (NULL: none); days with the days
 * imported from the device's own statistics merged in (a day in both, only
 * if the clock stepped back, is the recorded one). An imported day has no
 * cost: the cost queries price what kasamond recorded. */
static int put_rollups(Export *e, uint32_t number, const StoreRollup *rows, const ExportCost *costs, size_t n,
                       int64_t to) {
        _cleanup_free_ StoreImportedDay *im = NULL;
        size_t n_im = 0, i = 0, j = 0;
        int r = 0;

        if (e->res == EXPORT_DAY) {
                r = store_query_imported(e->store, number, e->cursor_ms, to, WINDOW_ROWS_MAX, &im, &n_im);
                if (r < 0)
                        return r;
        }
        while (r >= 0 && (i < n || j < n_im)) {
                if (j == n_im || (i < n && rows[i].period_start_ms <= im[j].day_start_ms)) {
                        if (j < n_im && rows[i].period_start_ms == im[j].day_start_ms)
                                j++;
                        r = put_rollup(e, &rows[i], false, costs ? &costs[i] : NULL);
                        i++;
                } else {
                        int64_t start = im[j].day_start_ms, len = period_end(e, start) - start;
                        StoreRollup p = {
                                .period_start_ms = start,
                                .energy_mwh = im[j].energy_mwh,
                                .power_avg_mw = len > 0 ? im[j].energy_mwh * HOUR_MS / len : 0,
                        };
                        r = put_rollup(e, &p, true, NULL);
                        j++;
                }
        }
        return r;
}

/* The costs of a window's rows, from the cost source. */
static int price_rows(Export *e, const StoreRollup *rows, size_t n, ExportCost **ret) {
        _cleanup_free_ ExportPeriod *periods = calloc(n, sizeof(ExportPeriod));
        _cleanup_free_ ExportCost *costs = calloc(n, sizeof(ExportCost));
        if (!periods || !costs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                periods[i] = (ExportPeriod) { rows[i].period_start_ms, period_end(e, rows[i].period_start_ms) };
        e->error = mfree(e->error);
        int r = e->costs.price(e->costs.userdata, e->device, periods, n, costs, &e->error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(costs);
        return 0;
}

/* One window of the current device: its rows into the buffer; moves on
 * to the next device at the end of the range. */
static int export_window(Export *e) {
        int64_t to = e->to_ms - e->cursor_ms <= e->window_ms ? e->to_ms : e->cursor_ms + e->window_ms;
        uint32_t number = e->numbers[e->device];
        size_t n = 0;
        int r;

        if (e->res == EXPORT_RAW) {
                _cleanup_free_ StoreSample *rows = NULL;
                r = store_query_raw(e->store, number, e->cursor_ms, to, WINDOW_ROWS_MAX, &rows, &n);
                if (r == -E2BIG && e->window_ms > 1) {
                        /* Denser than the window was made for: smaller windows. */
                        e->window_ms = MAX(e->window_ms / 4, (int64_t) 1);
                        return 0;
                }
                if (r < 0 && r != -ENOENT)
                        return r;
                for (size_t i = 0; r >= 0 && i < n; i++)
                        r = put_sample(e, &rows[i]);
        } else {
                _cleanup_free_ StoreRollup *rows = NULL;
                StoreResolution sr = e->res == EXPORT_MINUTE ? STORE_MINUTE : e->res == EXPORT_HOUR ? STORE_HOUR : STORE_DAY;
                r = store_query_rollup(e->store, number, sr, e->cursor_ms, to, WINDOW_ROWS_MAX, &rows, &n);
                if (r == -E2BIG && e->window_ms > 1) {
                        e->window_ms = MAX(e->window_ms / 4, (int64_t) 1);
                        return 0;
                }
                if (r < 0 && r != -ENOENT)
                        return r;
                _cleanup_free_ ExportCost *costs = NULL;
                if (r >= 0 && n > 0 && e->have_costs) {
                        r = price_rows(e, rows, n, &costs);
                        if (r < 0)
                                return r;
                }
                r = put_rollups(e, number, rows, costs, n, to);
        }
        if (r < 0 && r != -ENOENT)
                return r;
        if (n == 0 && e->window_ms < WINDOW_EMPTY_MAX_MS)
                /* Nothing here: leap over empty time (an export since the
                 * epoch, a device added last week) in a few windows. */
                e->window_ms *= 2;
        else if (n > 0 && e->window_ms > window_default(e))
                e->window_ms = window_default(e);
        else if (e->res == EXPORT_RAW && n < WINDOW_ROWS_MAX / 8 && e->window_ms < window_default(e))
                e->window_ms *= 2;      /* sparse again */
        e->cursor_ms = to;
        if (e->cursor_ms >= e->to_ms) {
                e->device++;
                e->cursor_ms = e->from_ms;
                e->window_ms = window_default(e);
        }
        return 0;
}

int export_step(Export *e, const char **ret, size_t *ret_size) {
        int r;

        e->len = 0;
        r = reserve(e, 0);
        if (r < 0)
                return r;
        if (e->ended) {
                *ret = e->buf;
                *ret_size = 0;
                return 0;
        }
        if (!e->started) {
                r = put_header(e);
                if (r < 0)
                        return r;
                e->started = true;
        }
        for (unsigned w = 0; w < STEP_WINDOWS && e->len < STEP_BYTES && e->device < e->n_devices; w++) {
                if (e->from_ms >= e->to_ms) {
                        e->device = e->n_devices;
                        break;
                }
                r = export_window(e);
                if (r < 0)
                        return r;
        }
        if (e->device >= e->n_devices) {
                r = e->format == EXPORT_JSON ? put(e, "%s]\n", e->first_row ? "" : "\n") : 0;
                if (r < 0)
                        return r;
                e->ended = true;
        }
        *ret = e->buf;
        *ret_size = e->len;
        return 1;
}

const char *export_error(const Export *e) {
        return e->error;
}
