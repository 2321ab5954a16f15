/* SPDX-License-Identifier: MIT */

#include "backfill.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

_printf_(2, 3) static int refuse(BackfillError *err, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

static int month_index(int year, int month) {
        return year * 12 + (month - 1);
}

int backfill_months(const KasaStat *stats, size_t n, int year, int today_year, int today_month,
                    BackfillMonth out[static 12], size_t *n_out, BackfillError *err) {
        bool seen[12] = {};
        int today = month_index(today_year, today_month);
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                const KasaStat *s = &stats[i];

                if (s->year != year)
                        return refuse(err, "month_list[%zu]: year %d in the statistics of %d", i, s->year, year);
                if (s->month < 1 || s->month > 12)
                        return refuse(err, "month_list[%zu]: month %d", i, s->month);
                if (seen[s->month - 1])
                        return refuse(err, "month_list[%zu]: month %d of %d twice", i, s->month, year);
                seen[s->month - 1] = true;
        }
        /* Oldest first, as the days then are. */
        for (int m = 1; m <= 12; m++) {
                int64_t energy = -1;
                int idx = month_index(year, m);

                for (size_t i = 0; i < n; i++)
                        if (stats[i].month == m)
                                energy = stats[i].energy_mwh;
                if (energy > 0 && idx <= today && idx > today - BACKFILL_MONTHS_MAX)
                        out[k++] = (BackfillMonth) { .year = year, .month = m };
        }
        *n_out = k;
        return 0;
}

int backfill_days(const Calendar *cal, const KasaStat *stats, size_t n, int year, int month,
                  StoreImportedDay out[static 31], size_t *n_out, BackfillError *err) {
        int days = calendar_month_days(year, month);
        bool seen[31] = {};
        size_t k = 0;

        if (days == 0)
                return refuse(err, "asked for month %d", month);
        if (n > (size_t) days)
                return refuse(err, "%zu days in the statistics of %04d-%02d, which has %d", n, year, month, days);
        for (size_t i = 0; i < n; i++) {
                const KasaStat *s = &stats[i];
                int64_t start;

                if (s->year != year || s->month != month)
                        return refuse(err, "day_list[%zu]: %04d-%02d in the statistics of %04d-%02d", i, s->year,
                                      s->month, year, month);
                if (s->day < 1 || s->day > days)
                        return refuse(err, "day_list[%zu]: day %d of %04d-%02d, which has %d", i, s->day, year,
                                      month, days);
                if (seen[s->day - 1])
                        return refuse(err, "day_list[%zu]: %04d-%02d-%02d twice", i, year, month, s->day);
                seen[s->day - 1] = true;
                if (s->energy_mwh < 0)
                        return refuse(err, "day_list[%zu]: negative energy", i);
                start = calendar_date_start(cal, year, month, s->day);
                if (start == INT64_MIN)
                        continue;
                out[k++] = (StoreImportedDay) { .day_start_ms = start, .energy_mwh = s->energy_mwh };
        }
        *n_out = k;
        return 0;
}

int backfill_quarter_days(const Calendar *cal, const KasaEnergyData *data, int year, int qmonth, int64_t start_s,
                          StoreImportedDay out[static KASA_ENERGY_DATA_MAX], size_t *n_out, bool *ret_energy,
                          BackfillError *err) {
        int days = 0, m = qmonth, d = 1;
        bool energy = false;
        size_t k = 0;

        if (qmonth != backfill_quarter_month(qmonth) || qmonth < 1 || qmonth > 10)
                return refuse(err, "asked for a quarter from month %d", qmonth);
        for (int i = 0; i < 3; i++)
                days += calendar_month_days(year, qmonth + i);
        if (data->start_s != start_s)
                return refuse(err, "start_timestamp %" PRId64 " for the quarter asked from %" PRId64, data->start_s,
                              start_s);
        if (data->interval_min != 1440)
                return refuse(err, "interval %" PRId64 " where days (1440) were asked", data->interval_min);
        if (data->n > (size_t) days)
                return refuse(err, "%zu days in the quarter from %04d-%02d, which has %d", data->n, year, qmonth, days);
        for (size_t i = 0; i < data->n; i++) {
                int64_t start = calendar_date_start(cal, year, m, d);

                if (data->energy_mwh[i] < 0)
                        return refuse(err, "data[%zu]: negative energy", i);
                if (start != INT64_MIN)
                        out[k++] = (StoreImportedDay) { .day_start_ms = start, .energy_mwh = data->energy_mwh[i] };
                energy = energy || data->energy_mwh[i] > 0;
                if (++d > calendar_month_days(year, m)) {
                        d = 1;
                        m++;
                }
        }
        *n_out = k;
        *ret_energy = energy;
        return 0;
}

static int day_cmp(const void *a, const void *b) {
        int64_t x = ((const StoreImportedDay *) a)->day_start_ms, y = ((const StoreImportedDay *) b)->day_start_ms;
        return (x > y) - (x < y);
}

size_t backfill_drop_leading_zeros(StoreImportedDay *days, size_t n) {
        size_t first = 0;

        if (n > 0)
                qsort(days, n, sizeof(StoreImportedDay), day_cmp);
        while (first < n && days[first].energy_mwh == 0)
                first++;
        memmove(days, days + first, (n - first) * sizeof(StoreImportedDay));
        return n - first;
}
