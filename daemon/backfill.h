/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The backfill's rules, with no I/O: which months of a device's own
 * statistics to ask for, whether a statistics reply is one kasamond may
 * believe, and the days it gives, as local day starts. The requests go
 * through the device's transport and the days into the store
 * (store_import_days(), which refuses the days kasamond recorded itself);
 * manager-backfill.c runs the steps.
 *
 * IOT plugs: emeter.get_monthstat of this year and the year before says
 * which months hold energy, then emeter.get_daystat of each such month
 * gives its days. Smart plugs: get_energy_data with a daily interval,
 * one quarter at a time, from the quarter of the oldest month asked.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "kasa-proto.h"
#include "store.h"

/* How far back a backfill looks: the months of this year and the last
 * (monthstat answers a year at a time), at most this many; smart plugs:
 * quarters back from this one while they hold energy, at most this many. */
#define BACKFILL_MONTHS_MAX 24
#define BACKFILL_QUARTERS_MAX 8

typedef struct BackfillMonth {
        int year, month;
} BackfillMonth;

/* A refused reply, said in full: "month_list[2]: month 3 twice". */
typedef struct BackfillError {
        char message[192];
} BackfillError;

/* The months of a monthstat reply for year that the backfill asks the
 * days of: those with energy, not after (today_year, today_month) and not
 * more than BACKFILL_MONTHS_MAX - 1 months before it, oldest first, into
 * out (room for 12), *n_out their number. -EBADMSG when an entry is of
 * another year or a month comes twice. */
int backfill_months(const KasaStat *stats, size_t n, int year, int today_year, int today_month,
                    BackfillMonth out[static 12], size_t *n_out, BackfillError *err);

/* The days of a daystat reply for (year, month) as local days of cal,
 * into out (room for 31), *n_out their number. Every entry must be of that month, of a
 * day it has, each day once: -EBADMSG otherwise, with the reason. A date
 * the zone skipped is left out. */
int backfill_days(const Calendar *cal, const KasaStat *stats, size_t n, int year, int month,
                  StoreImportedDay out[static 31], size_t *n_out, BackfillError *err);

/* The first month of the quarter holding month (1, 4, 7 or 10). */
static inline int backfill_quarter_month(int month) {
        return (month - 1) / 3 * 3 + 1;
}

/* The days of a get_energy_data reply for the quarter that starts on
 * local date (year, qmonth, 1), asked from start_s: it must echo start_s,
 * be daily and hold at most the quarter's days; entry i is the quarter's
 * day i. Into out, *n_out their number, *ret_energy whether any has
 * energy. -EBADMSG otherwise, with the reason. */
int backfill_quarter_days(const Calendar *cal, const KasaEnergyData *data, int year, int qmonth, int64_t start_s,
                          StoreImportedDay out[static KASA_ENERGY_DATA_MAX], size_t *n_out, bool *ret_energy,
                          BackfillError *err);

/* Sorts days by start and drops those before the first with energy;
 * returns how many are left. */
size_t backfill_drop_leading_zeros(StoreImportedDay *days, size_t n);
