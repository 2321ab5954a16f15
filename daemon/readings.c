/* SPDX-License-Identifier: MIT */

#include "readings.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "manager.h"

bool device_has_meter(const Device *d) {
        if (d->metered)
                return true;
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i] && d->outlets[i]->metered)
                        return true;
        return false;
}

bool meter_reading(const Device *d, MeterReading *ret) {
        MeterReading sum = {};
        size_t n = 0;

        if (d->metered) {
                if (!d->online || !d->have_reading)
                        return false;
                *ret = (MeterReading) { d->power_mw, d->voltage_mv, d->current_ma };
                return true;
        }
        for (size_t i = 0; i < d->n_outlets; i++) {
                MeterReading r;
                const Device *o = d->outlets[i];

                if (!o || !o->metered)
                        continue;
                if (!meter_reading(o, &r))
                        return false;
                sum.power_mw += r.power_mw;
                sum.voltage_mv += r.voltage_mv;
                sum.current_ma += r.current_ma;
                n++;
        }
        if (n == 0)
                return false;
        /* One strip, one mains: the mean only evens out the meters. */
        sum.voltage_mv /= (int64_t) n;
        *ret = sum;
        return true;
}

int64_t meter_energy_total(const Device *d) {
        int64_t sum = 0;

        if (d->metered)
                return d->energy.cumulative_mwh;
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i] && d->outlets[i]->metered)
                        sum += d->outlets[i]->energy.cumulative_mwh;
        return sum;
}

int64_t meter_energy_today(Device *d, int64_t now_ms) {
        int64_t sum = 0;

        if (d->metered)
                return device_energy_today(d, now_ms);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i] && d->outlets[i]->metered)
                        sum += device_energy_today(d->outlets[i], now_ms);
        return sum;
}

HistoryResolution history_resolution_from_string(const char *s) {
        static const char *const names[] = {
                [HISTORY_RAW] = "raw",
                [HISTORY_MINUTE] = "minute",
                [HISTORY_HOUR] = "hour",
                [HISTORY_DAY] = "day",
        };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(s, names[i]) == 0)
                        return (HistoryResolution) i;
        return _HISTORY_RESOLUTION_INVALID;
}

static int history_raw(Device *d, int64_t from_ms, int64_t to_ms, HistoryPoint **ret, size_t *ret_n) {
        _cleanup_free_ StoreSample *s = NULL;
        size_t n;
        int r;

        r = store_query_raw(d->manager->store, d->number, from_ms, to_ms, READINGS_MAX_POINTS, &s, &n);
        if (r < 0)
                return r;
        HistoryPoint *p = calloc(MAX(n, 1u), sizeof(HistoryPoint));
        if (!p)
                return -ENOMEM;

        /* The first sample's energy is relative to the one before the
         * range, if the store still has it. */
        _cleanup_free_ StoreSample *prev = NULL;
        size_t n_prev = 0;
        int64_t last = -1;
        if (n > 0 && store_query_raw(d->manager->store, d->number, from_ms - 3600 * 1000, from_ms, SIZE_MAX,
                                   &prev, &n_prev) >= 0 &&
            n_prev > 0)
                last = prev[n_prev - 1].energy_mwh;
        for (size_t i = 0; i < n; i++) {
                p[i] = (HistoryPoint) {
                        .ts_ms = s[i].ts_ms,
                        .avg_mw = s[i].power_mw,
                        .min_mw = s[i].power_mw,
                        .max_mw = s[i].power_mw,
                        .energy_mwh = last < 0 ? 0 : s[i].energy_mwh - last,
                };
                last = s[i].energy_mwh;
        }
        *ret = p;
        *ret_n = n;
        return 0;
}

#define HOUR_IN_MS INT64_C(3600000)

static int compare_point_time(const void *a, const void *b) {
        const HistoryPoint *x = a, *y = b;
        return (x->ts_ms > y->ts_ms) - (x->ts_ms < y->ts_ms);
}

static int strip_history(Device *d, int64_t from_ms, int64_t to_ms, HistoryResolution res, HistoryPoint **ret,
                         size_t *ret_n) {
        _cleanup_free_ HistoryPoint *all = NULL;
        size_t n_all = 0, n = 0;

        for (size_t i = 0; i < d->n_outlets; i++) {
                _cleanup_free_ HistoryPoint *p = NULL;
                Device *o = d->outlets[i];
                HistoryPoint *b;
                size_t k;
                int r;

                if (!o || !o->metered)
                        continue;
                r = device_history(o, from_ms, to_ms, res, &p, &k);
                if (r < 0)
                        return r;
                b = reallocarray(all, MAX(n_all + k, 1u), sizeof(HistoryPoint));
                if (!b)
                        return -ENOMEM;
                all = b;
                memcpy(all + n_all, p, k * sizeof(HistoryPoint));
                n_all += k;
        }
        if (n_all > 0)
                qsort(all, n_all, sizeof(HistoryPoint), compare_point_time);
        for (size_t i = 0; i < n_all; i++) {
                if (n > 0 && all[n - 1].ts_ms == all[i].ts_ms) {
                        all[n - 1].avg_mw += all[i].avg_mw;
                        all[n - 1].min_mw += all[i].min_mw;
                        all[n - 1].max_mw += all[i].max_mw;
                        all[n - 1].energy_mwh += all[i].energy_mwh;
                        all[n - 1].imported = all[n - 1].imported || all[i].imported;
                } else
                        all[n++] = all[i];
        }
        if (n > READINGS_MAX_POINTS)
                return -E2BIG;
        *ret = TAKE_PTR(all);
        *ret_n = n;
        return 0;
}

int device_history(Device *d, int64_t from_ms, int64_t to_ms, HistoryResolution res, HistoryPoint **ret,
                   size_t *ret_n) {
        static const StoreResolution map[] = {
                [HISTORY_MINUTE] = STORE_MINUTE,
                [HISTORY_HOUR] = STORE_HOUR,
                [HISTORY_DAY] = STORE_DAY,
        };
        _cleanup_free_ StoreRollup *r = NULL;
        _cleanup_free_ StoreImportedDay *im = NULL;
        size_t n, n_im = 0;
        int k;

        if (!d->metered)
                return device_has_meter(d) ? strip_history(d, from_ms, to_ms, res, ret, ret_n) : -ENOTTY;
        if (from_ms > to_ms)
                return -EINVAL;
        if (res == HISTORY_RAW)
                return history_raw(d, from_ms, to_ms, ret, ret_n);

        k = store_query_rollup(d->manager->store, d->number, map[res], from_ms, to_ms, READINGS_MAX_POINTS, &r, &n);
        if (k < 0)
                return k;
        if (res == HISTORY_DAY) {
                k = store_query_imported(d->manager->store, d->number, from_ms, to_ms, READINGS_MAX_POINTS, &im,
                                         &n_im);
                if (k < 0)
                        return k;
        }
        HistoryPoint *p = calloc(MAX(n + n_im, 1u), sizeof(HistoryPoint));
        if (!p)
                return -ENOMEM;
        /* Both oldest first: merged in order; a day in both (only if the
         * clock stepped back past the first recorded day) is the one
         * recorded. */
        size_t i = 0, j = 0, out = 0;
        while (i < n || j < n_im) {
                if (j == n_im || (i < n && r[i].period_start_ms <= im[j].day_start_ms)) {
                        if (j < n_im && r[i].period_start_ms == im[j].day_start_ms)
                                j++;
                        p[out++] = (HistoryPoint) {
                                .ts_ms = r[i].period_start_ms,
                                .avg_mw = r[i].power_avg_mw,
                                .min_mw = r[i].power_min_mw,
                                .max_mw = r[i].power_max_mw,
                                .energy_mwh = r[i].energy_mwh,
                        };
                        i++;
                } else {
                        int64_t len = calendar_next_day(d->manager->calendar, im[j].day_start_ms) - im[j].day_start_ms;
                        p[out++] = (HistoryPoint) {
                                .ts_ms = im[j].day_start_ms,
                                .avg_mw = len > 0 ? im[j].energy_mwh * HOUR_IN_MS / len : 0,
                                .energy_mwh = im[j].energy_mwh,
                                .imported = true,
                        };
                        j++;
                }
        }
        if (out > READINGS_MAX_POINTS) {
                free(p);
                return -E2BIG;
        }
        *ret = p;
        *ret_n = out;
        return 0;
}

/* The outlets' buckets start at the same times: add them up in place. */
static int strip_energy_buckets(Device *d, int64_t from_ms, int64_t to_ms, bool monthly, EnergyBucket **ret,
                                size_t *ret_n) {
        _cleanup_free_ EnergyBucket *sum = NULL;
        size_t n_sum = 0;

        for (size_t i = 0; i < d->n_outlets; i++) {
                _cleanup_free_ EnergyBucket *b = NULL;
                Device *o = d->outlets[i];
                size_t n;
                int r;

                if (!o || !o->metered)
                        continue;
                r = device_energy_buckets(o, from_ms, to_ms, monthly, &b, &n);
                if (r < 0)
                        return r;
                if (!sum) {
                        sum = TAKE_PTR(b);
                        n_sum = n;
                        continue;
                }
                if (n != n_sum)
                        return -EIO; /* same range, same calendar: cannot happen */
                for (size_t k = 0; k < n; k++)
                        sum[k].energy_mwh += b[k].energy_mwh;
        }
        if (!sum)
                return -ENOTTY;
        *ret = TAKE_PTR(sum);
        *ret_n = n_sum;
        return 0;
}

int device_energy_buckets(Device *d, int64_t from_ms, int64_t to_ms, bool monthly, EnergyBucket **ret,
                          size_t *ret_n) {
        const Calendar *cal = d->manager->calendar;
        _cleanup_free_ EnergyBucket *b = NULL;
        size_t n = 0;

        if (!d->metered)
                return device_has_meter(d) ? strip_energy_buckets(d, from_ms, to_ms, monthly, ret, ret_n) : -ENOTTY;
        if (from_ms > to_ms)
                return -EINVAL;

        int64_t start = monthly ? calendar_month_start(cal, from_ms) : calendar_day_start(cal, from_ms);
        for (int64_t t = start; t < to_ms;) {
                int64_t next = monthly ? calendar_next_month(cal, t) : calendar_next_day(cal, t);
                int64_t e;
                int r;

                if (n >= READINGS_MAX_BUCKETS)
                        return -E2BIG;
                r = store_energy(d->manager->store, d->number, t, next, &e);
                if (r == -ENOENT)
                        e = 0;
                else if (r < 0)
                        return r;
                EnergyBucket *nb = realloc(b, (n + 1) * sizeof(EnergyBucket));
                if (!nb)
                        return -ENOMEM;
                b = nb;
                b[n++] = (EnergyBucket) { .start_ms = t, .energy_mwh = e };
                t = next;
        }
        *ret = TAKE_PTR(b);
        *ret_n = n;
        return 0;
}
