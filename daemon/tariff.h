/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An electricity tariff as the cost engine prices it: pure data, no I/O.
 * Parsed from the project's own file format (tariff-file.c) or from OpenEI
 * URDB JSON (tariff-urdb.c); both end in tariff_check().
 *
 * Units are exact integers:
 *   money rates  nano-units of the currency (1e-9) per kWh or per kW
 *   money sums   nano-units (fixed and minimum charges)
 *   energy       mWh;  power  mW
 *   taxes        parts per million of the taxed lines (19 % = 190000)
 *   times        UTC milliseconds since the epoch
 *
 * Time of use: a period map gives, for each local month, day type and local
 * minute of the day, the index of the period that applies (minute
 * resolution, so "06:30-22:00" is exact; URDB's 12x24 hourly maps are a
 * special case). Day types are the seven weekdays plus listed holidays. */

#define TARIFF_NANO INT64_C(1000000000)
#define TARIFF_UNLIMITED INT64_MAX
#define TARIFF_NO_PERIOD UINT8_C(0xff)
#define TARIFF_MINUTES_PER_DAY 1440
#define TARIFF_PERIODS_MAX 64
#define TARIFF_TIERS_MAX 16
#define TARIFF_LIST_MAX 32     /* adders, fixed charges, taxes, seasons */
#define TARIFF_HOLIDAYS_MAX 1000
#define TARIFF_TEXT_MAX 4096   /* name, utility, notes */
/* No real tariff charges a million currency units per kWh or per kW, so
 * larger numbers are typos, and refusing them keeps every product of the
 * cost engine far inside 128 bits. */
#define TARIFF_RATE_MAX (INT64_C(1000000) * TARIFF_NANO)

enum {
        TARIFF_MONDAY = 0,
        TARIFF_SUNDAY = 6,
        TARIFF_HOLIDAY = 7,
        TARIFF_DAY_TYPES = 8,
};

typedef struct TariffTier {
        /* Upper bound of the cumulative use that this tier prices, within
         * the billing cycle (or day, with daily tiers): mWh for energy, mW
         * of peak for demand. TARIFF_UNLIMITED for the last tier. */
        int64_t max;
        int64_t rate; /* nano per kWh (energy) or per kW (demand) */
        int64_t adj;  /* URDB's adjustment, same unit, billed as an adder */
} TariffTier;

typedef struct TariffPeriod {
        char *name;
        TariffTier *tiers;
        size_t n_tiers;
} TariffPeriod;

/* profile[month][day type] indexes profiles: one period index per local
 * minute (TARIFF_NO_PERIOD: none). Identical days share a profile. */
typedef struct TariffMap {
        uint8_t profile[12][TARIFF_DAY_TYPES];
        uint8_t (*profiles)[TARIFF_MINUTES_PER_DAY];
        size_t n_profiles;
} TariffMap;

/* The grid a map is compiled from: grid[month][day type][minute]. */
typedef uint8_t TariffGrid[12][TARIFF_DAY_TYPES][TARIFF_MINUTES_PER_DAY];

typedef enum TariffPer {
        TARIFF_PER_DAY,
        TARIFF_PER_MONTH, /* per billing cycle */
        TARIFF_PER_YEAR,
} TariffPer;

typedef struct TariffCharge {
        char *name;
        int64_t amount; /* nano */
        TariffPer per;
} TariffCharge;

typedef struct TariffAdder {
        char *name;
        int64_t rate; /* nano per kWh, on all energy */
} TariffAdder;

/* Bill line kinds; taxes name the kinds they apply to as a mask. */
typedef enum TariffLine {
        TARIFF_LINE_ENERGY,
        TARIFF_LINE_ADDER,
        TARIFF_LINE_FIXED,
        TARIFF_LINE_DEMAND,
        TARIFF_LINE_MINIMUM,
        TARIFF_LINE_TAX,
        _TARIFF_LINE_MAX,
} TariffLine;

#define TARIFF_TAXABLE_ALL                                                                         \
        ((1u << TARIFF_LINE_ENERGY) | (1u << TARIFF_LINE_ADDER) | (1u << TARIFF_LINE_FIXED) |       \
         (1u << TARIFF_LINE_DEMAND) | (1u << TARIFF_LINE_MINIMUM))

typedef struct TariffTax {
        char *name;
        int64_t ppm;
        unsigned on; /* mask of 1 << TariffLine, never TAX itself */
} TariffTax;

typedef struct TariffHoliday {
        int year; /* 0: every year */
        unsigned month, day;
} TariffHoliday;

typedef struct Tariff {
        char *name, *utility, *notes;
        char currency[4];
        unsigned currency_digits;
        int64_t valid_from_ms, valid_until_ms; /* INT64_MIN / INT64_MAX: open */
        unsigned cycle_start_day;              /* 1..28 */
        bool daily_tiers;

        TariffPeriod *periods;
        size_t n_periods;
        TariffMap energy_map; /* must name a period for every minute */

        TariffAdder *adders;
        size_t n_adders;
        TariffCharge *fixed;
        size_t n_fixed;
        TariffCharge minimum; /* amount 0: none; name unused */

        unsigned demand_window_min; /* 1..1440 */
        TariffPeriod *demand_periods;
        size_t n_demand_periods;
        TariffMap demand_map; /* may leave minutes without a period */
        TariffPeriod *flat_demand;
        size_t n_flat_demand;
        uint8_t flat_demand_month[12]; /* index into flat_demand or NO_PERIOD */

        TariffTax *taxes;
        size_t n_taxes;
        TariffHoliday *holidays;
        size_t n_holidays;
} Tariff;

Tariff *tariff_new(void);
Tariff *tariff_free(Tariff *t);
static inline void tariff_freep(Tariff **t) {
        tariff_free(*t);
}
#define _cleanup_tariff_ __attribute__((cleanup(tariff_freep)))

/* ISO 4217: the number of minor-unit digits of a known code, or -EINVAL. */
int tariff_currency_digits(const char *code);

/* Compiles a grid into a map, sharing identical day profiles. */
int tariff_map_compile(TariffMap *m, const TariffGrid grid);
void tariff_map_done(TariffMap *m);
static inline uint8_t tariff_map_at(const TariffMap *m, unsigned month0, unsigned day_type, unsigned minute) {
        if (m->n_profiles == 0)
                return TARIFF_NO_PERIOD;
        return m->profiles[m->profile[month0][day_type]][minute];
}

bool tariff_is_holiday(const Tariff *t, int year, unsigned month, unsigned day);
const char *tariff_line_to_string(TariffLine l);
const char *tariff_per_to_string(TariffPer p);

/* Every invariant the cost engine relies on; a refusal is -EBADMSG with a
 * message in *ret_error ("what: expected ..."). */
int tariff_check(const Tariff *t, char **ret_error);

/* RFC 3339 date-time with offset ("2024-03-31T02:00:00+01:00", "...Z",
 * fractions up to milliseconds), nothing else. */
int tariff_parse_rfc3339(const char *s, int64_t *ret_ms);

/* Parsers. A refusal is -EBADMSG with "FILE: FIELD: expected WHAT" in
 * *ret_error; -ENOMEM without a message. */
#define TARIFF_FILE_MAX (1024 * 1024)
#define TARIFF_URDB_MAX (8 * 1024 * 1024)
#define TARIFF_URDB_ITEMS_MAX 100

/* kasamond-tariff(5). */
int tariff_file_parse(const char *data, size_t size, const char *file, Tariff **ret, char **ret_error);
int tariff_file_load(const char *path, Tariff **ret, char **ret_error);

/* OpenEI URDB: an API answer {"items": [...]} or one item; one tariff per
 * item, in order. */
int tariff_urdb_parse(const char *data, size_t size, const char *file, Tariff ***ret, size_t *ret_n,
                      char **ret_error);
int tariff_urdb_load(const char *path, Tariff ***ret, size_t *ret_n, char **ret_error);
void tariff_list_free(Tariff **list, size_t n);
