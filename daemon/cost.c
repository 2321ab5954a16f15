/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "cost-internal.h"

/* Far enough for any bill, near enough that no sum of times overflows. */
#define TIME_LIMIT_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define DAY_MS INT64_C(86400000)

typedef struct Cycle {
        size_t tariff;
        int64_t start, end;         /* the cycle */
        int64_t from, until;        /* the part of it in the range */
        int64_t days;               /* local days in the cycle */
        int64_t units;              /* COST_DAY_UNITS covered */
        i128 exact;                 /* energy, adders, fixed: femto */
        i128 floor;                 /* the prorated minimum */
        size_t first_piece, n_pieces;
} Cycle;

typedef struct DemandPiece {
        CostPiece p;
        uint8_t period, flat;
} DemandPiece;

typedef struct Engine {
        const CostRequest *req;
        char **ret_error;
        const Tariff **tariffs; /* sorted by valid_from */
        size_t n_tariffs;
        Calendar *cal;
        GTimeZone *tz;
        CostBill *bill;

        Cycle *cycles;
        size_t n_cycles;
        DemandPiece *pieces;
        size_t n_pieces, n_pieces_allocated;

        /* The local day of the last lookup. */
        int64_t day_start, day_end;
        int year;
        unsigned month, mday, weekday; /* 1-12, 1-31, 0 = Monday */

        /* The cycle of the last lookup. */
        size_t cycle_tariff;
        int64_t cycle_start, cycle_end;

        /* The tier counter: what it counts since when. */
        size_t tier_tariff;
        int64_t tier_window;
        int64_t tier_used;
} Engine;

_printf_(2, 3) static int refuse(Engine *e, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (e->ret_error && vasprintf(e->ret_error, fmt, ap) < 0)
                *e->ret_error = NULL;
        va_end(ap);
        return -EINVAL;
}

static int64_t floor_div(int64_t a, int64_t b) {
        int64_t q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int32_t offset_at(const Engine *e, int64_t ms) {
        int64_t s = floor_div(ms, 1000);
        return g_time_zone_get_offset(e->tz, g_time_zone_find_interval(e->tz, G_TIME_TYPE_UNIVERSAL, s));
}

static int local_day(Engine *e, int64_t t) {
        if (t >= e->day_start && t < e->day_end)
                return 0;
        e->day_start = calendar_day_start(e->cal, t);
        e->day_end = calendar_next_day(e->cal, t);
        GDateTime *utc = g_date_time_new_from_unix_utc(floor_div(e->day_start, 1000));
        GDateTime *dt = utc ? g_date_time_to_timezone(utc, e->tz) : NULL;
        if (utc)
                g_date_time_unref(utc);
        if (!dt)
                return -ENOMEM;
        int y, m, d;
        g_date_time_get_ymd(dt, &y, &m, &d);
        e->year = y;
        e->month = (unsigned) m;
        e->mday = (unsigned) d;
        e->weekday = (unsigned) g_date_time_get_day_of_week(dt) - 1;
        g_date_time_unref(dt);
        return 0;
}

static int64_t advance_days(const Engine *e, int64_t t, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                t = calendar_next_day(e->cal, t);
        return t;
}

/* Cycles start at local midnight of the tariff's cycle start day. */
static void cycle_bounds(const Engine *e, const Tariff *T, int64_t t, int64_t *ret_start, int64_t *ret_end) {
        unsigned skip = T->cycle_start_day - 1;
        int64_t s = advance_days(e, calendar_month_start(e->cal, t), skip);
        if (s > t)
                s = advance_days(e, calendar_month_start(e->cal, calendar_month_start(e->cal, t) - 1), skip);
        *ret_start = s;
        *ret_end = advance_days(e, calendar_next_month(e->cal, s), skip);
}

static int64_t cycle_start_of(Engine *e, size_t ti, int64_t t) {
        if (e->cycle_tariff != ti || t < e->cycle_start || t >= e->cycle_end) {
                cycle_bounds(e, e->tariffs[ti], t, &e->cycle_start, &e->cycle_end);
                e->cycle_tariff = ti;
        }
        return e->cycle_start;
}

/* The tariff in force at t (or -1) and until when that answer holds. */
static ssize_t tariff_at(const Engine *e, int64_t t, int64_t *ret_until) {
        int64_t next = INT64_MAX;
        for (size_t i = 0; i < e->n_tariffs; i++) {
                const Tariff *T = e->tariffs[i];
                if (t >= T->valid_from_ms && t < T->valid_until_ms) {
                        *ret_until = T->valid_until_ms;
                        return (ssize_t) i;
                }
                if (T->valid_from_ms > t)
                        next = MIN(next, T->valid_from_ms);
        }
        *ret_until = next;
        return -1;
}

static unsigned day_type(const Engine *e, const Tariff *T) {
        return tariff_is_holiday(T, e->year, e->month, e->mday) ? TARIFF_HOLIDAY : e->weekday;
}

static unsigned minute_of(const Engine *e, int64_t t, int64_t *ret_ms_of_day) {
        int64_t wall = t + (int64_t) offset_at(e, t) * 1000;
        int64_t ms = wall - floor_div(wall, DAY_MS) * DAY_MS;
        *ret_ms_of_day = ms;
        return (unsigned) (ms / 60000);
}

/* The end of the run of minutes with the same period as t's, on the local
 * wall clock, or the day's end; an offset change (DST) in between ends the
 * run there, since the wall clock jumps. */
static int64_t period_end(const Engine *e, const TariffMap *m, unsigned dtype, int64_t t) {
        if (m->n_profiles == 0)
                return e->day_end;
        int64_t ms;
        unsigned min = minute_of(e, t, &ms);
        const uint8_t *prof = m->profiles[m->profile[e->month - 1][dtype]];
        unsigned next = min + 1;
        while (next < TARIFF_MINUTES_PER_DAY && prof[next] == prof[min])
                next++;
        int64_t end = next == TARIFF_MINUTES_PER_DAY ? e->day_end : MIN(e->day_end, t + (int64_t) next * 60000 - ms);

        int32_t off = offset_at(e, t);
        if (offset_at(e, end - 1) == off)
                return end;
        int64_t lo = floor_div(t, 1000), hi = floor_div(end - 1, 1000);
        while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (offset_at(e, mid * 1000) != off)
                        hi = mid;
                else
                        lo = mid;
        }
        return hi * 1000;
}

/* Local days covered by [a, b), in COST_DAY_UNITS. */
static int64_t day_units(const Engine *e, int64_t a, int64_t b) {
        int64_t units = 0;
        for (int64_t d = calendar_day_start(e->cal, a); d < b;) {
                int64_t next = calendar_next_day(e->cal, d);
                int64_t covered = MIN(b, next) - MAX(a, d);
                units += covered == next - d ? COST_DAY_UNITS : (int64_t) ((i128) covered * COST_DAY_UNITS / (next - d));
                d = next;
        }
        return units;
}

static size_t bucket_at(const CostBill *bill, int64_t t) {
        size_t lo = 0, hi = bill->n_buckets;
        while (hi - lo > 1) {
                size_t mid = lo + (hi - lo) / 2;
                if (bill->buckets[mid].start_ms <= t)
                        lo = mid;
                else
                        hi = mid;
        }
        return lo;
}

static int make_buckets(Engine *e) {
        const CostRequest *r = e->req;
        size_t n = 0, allocated = 0;

        for (int64_t t = r->from_ms; t < r->to_ms;) {
                int64_t end = r->bucket == COST_BUCKET_DAY     ? calendar_next_day(e->cal, t)
                              : r->bucket == COST_BUCKET_MONTH ? calendar_next_month(e->cal, t)
                                                               : r->to_ms;
                end = MIN(end, r->to_ms);
                if (n >= COST_BUCKETS_MAX)
                        return refuse(e, "range: expected at most %d buckets", COST_BUCKETS_MAX);
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 16;
                        void *p = realloc(e->bill->buckets, allocated * sizeof(CostBucketBill));
                        if (!p)
                                return -ENOMEM;
                        e->bill->buckets = p;
                }
                e->bill->buckets[n++] = (CostBucketBill) { .start_ms = t, .end_ms = end };
                e->bill->n_buckets = n;
                t = end;
        }
        return 0;
}

/* A charge of `amount` nano per day, cycle or year over `units`. */
static i128 prorate(const TariffCharge *c, int64_t units, int64_t cycle_days, int year) {
        int64_t per_days = c->per == TARIFF_PER_DAY     ? 1
                           : c->per == TARIFF_PER_MONTH ? cycle_days
                                                        : (g_date_is_leap_year((GDateYear) year) ? 366 : 365);
        return cost_div_round((i128) c->amount * COST_FEMTO_PER_NANO * units, (i128) COST_DAY_UNITS * per_days);
}

/* Splits the range where a tariff, a cycle, a bucket or a month begins, and
 * charges each part its share of the fixed charges. */
static int walk_charges(Engine *e) {
        const CostRequest *req = e->req;
        size_t allocated = 0;
        int r;

        for (int64_t t = req->from_ms; t < req->to_ms;) {
                int64_t until;
                ssize_t ti = tariff_at(e, t, &until);
                if (ti < 0) {
                        t = MIN(until, req->to_ms);
                        continue;
                }
                const Tariff *T = e->tariffs[ti];
                int64_t cs, ce;
                cycle_bounds(e, T, t, &cs, &ce);
                size_t bi = bucket_at(e->bill, t);
                int64_t end = MIN(MIN(req->to_ms, until), MIN(ce, e->bill->buckets[bi].end_ms));
                end = MIN(end, calendar_next_month(e->cal, t));
                if ((r = local_day(e, t)) < 0)
                        return r;

                Cycle *c = e->n_cycles > 0 ? &e->cycles[e->n_cycles - 1] : NULL;
                if (!c || c->tariff != (size_t) ti || c->start != cs) {
                        if (e->n_cycles == allocated) {
                                allocated = allocated ? allocated * 2 : 8;
                                void *p = realloc(e->cycles, allocated * sizeof(Cycle));
                                if (!p)
                                        return -ENOMEM;
                                e->cycles = p;
                        }
                        c = &e->cycles[e->n_cycles++];
                        *c = (Cycle) { .tariff = (size_t) ti, .start = cs, .end = ce, .from = t,
                                       .days = day_units(e, cs, ce) / COST_DAY_UNITS };
                }
                int64_t units = day_units(e, t, end);
                c->until = end;
                c->units += units;
                for (size_t i = 0; i < T->n_fixed; i++) {
                        i128 x = prorate(&T->fixed[i], units, c->days, e->year);
                        c->exact += x;
                        if ((r = cost_add_line(&e->bill->buckets[bi], TARIFF_LINE_FIXED, T, (unsigned) i, 0,
                                               T->fixed[i].name, T->fixed[i].amount, units, x)) < 0)
                                return r;
                }
                if (T->minimum.amount != 0)
                        c->floor += prorate(&T->minimum, units, c->days, e->year);
                t = end;
        }
        return 0;
}

static Cycle *cycle_at(Engine *e, size_t *cursor, int64_t t) {
        while (*cursor < e->n_cycles && e->cycles[*cursor].until <= t)
                (*cursor)++;
        if (*cursor < e->n_cycles && e->cycles[*cursor].from <= t)
                return &e->cycles[*cursor];
        return NULL;
}

static int add_demand_piece(Engine *e, Cycle *c, int64_t t0, int64_t t1, int64_t mwh, uint8_t period, uint8_t flat) {
        if (e->n_pieces == e->n_pieces_allocated) {
                size_t n = e->n_pieces_allocated ? e->n_pieces_allocated * 2 : 256;
                void *p = realloc(e->pieces, n * sizeof(DemandPiece));
                if (!p)
                        return -ENOMEM;
                e->pieces = p;
                e->n_pieces_allocated = n;
        }
        if (c->n_pieces == 0)
                c->first_piece = e->n_pieces;
        c->n_pieces++;
        e->pieces[e->n_pieces++] = (DemandPiece) { { t0, t1, mwh }, period, flat };
        return 0;
}

/* A line's share of [t0, t1) to the request's part(), if any. */
static int emit_part(Engine *e, int64_t t0, int64_t t1, const Tariff *T, TariffLine kind, unsigned key,
                     unsigned tier, int64_t mwh, i128 exact) {
        if (!e->req->part)
                return 0;
        CostPart p = { .start_ms = t0, .end_ms = t1, .tariff = T, .kind = kind, .key = key, .tier = tier,
                       .mwh = mwh, .exact = exact };
        return e->req->part(&p, e->req->part_userdata);
}

/* Energy of one piece [t0, t1) through the tiers, marginally: what is left
 * below a tier's limit is priced at that tier, the rest at the next. */
static int price_piece(Engine *e, size_t ti, uint8_t period, int64_t t0, int64_t t1, int64_t mwh, CostBucketBill *b,
                       Cycle *c) {
        const Tariff *T = e->tariffs[ti];
        const TariffPeriod *P = &T->periods[period];
        int r;

        for (size_t k = 0; mwh > 0 && k < P->n_tiers; k++) {
                const TariffTier *tr = &P->tiers[k];
                if (e->tier_used >= tr->max)
                        continue;
                int64_t take = tr->max == TARIFF_UNLIMITED ? mwh : MIN(mwh, tr->max - e->tier_used);
                e->tier_used += take;
                mwh -= take;
                if (!b)
                        continue;
                i128 x = (i128) take * tr->rate;
                c->exact += x;
                if ((r = cost_add_line(b, TARIFF_LINE_ENERGY, T, period, (unsigned) k, P->name, tr->rate, take, x)) < 0 ||
                    (r = emit_part(e, t0, t1, T, TARIFF_LINE_ENERGY, period, (unsigned) k, take, x)) < 0)
                        return r;
                if (tr->adj == 0)
                        continue;
                x = (i128) take * tr->adj;
                c->exact += x;
                unsigned key = 1000 + period * TARIFF_TIERS_MAX + (unsigned) k;
                if ((r = cost_add_line(b, TARIFF_LINE_ADDER, T, key, (unsigned) k, P->name, tr->adj, take, x)) < 0 ||
                    (r = emit_part(e, t0, t1, T, TARIFF_LINE_ADDER, key, (unsigned) k, take, x)) < 0)
                        return r;
        }
        return 0;
}

static int walk_energy(Engine *e) {
        const CostRequest *req = e->req;
        size_t cycle_cursor = 0;
        int r;

        /* Energy since the first tier window's start fills the tiers. */
        int64_t lookback = req->from_ms, until;
        ssize_t first = tariff_at(e, req->from_ms, &until);
        if (first >= 0) {
                const Tariff *T = e->tariffs[first];
                int64_t cs, ce;
                if (T->daily_tiers)
                        cs = calendar_day_start(e->cal, req->from_ms);
                else
                        cycle_bounds(e, T, req->from_ms, &cs, &ce);
                lookback = MAX(cs, T->valid_from_ms);
        }
        e->tier_tariff = SIZE_MAX;

        for (size_t i = 0; i < req->n_intervals; i++) {
                const CostInterval *iv = &req->intervals[i];
                int64_t a = MAX(iv->start_ms, lookback), b = MIN(iv->end_ms, req->to_ms);
                if (a >= b)
                        continue;
                /* Energy handed out up to t, so the parts sum exactly. */
                int64_t done = (int64_t) ((i128) iv->energy_mwh * (a - iv->start_ms) / (iv->end_ms - iv->start_ms));

                for (int64_t t = a; t < b;) {
                        if ((r = local_day(e, t)) < 0)
                                return r;
                        ssize_t ti = tariff_at(e, t, &until);
                        int64_t t1 = MIN(MIN(b, until), e->day_end);
                        if (t < req->from_ms)
                                t1 = MIN(t1, req->from_ms);
                        uint8_t period = 0, dperiod = TARIFF_NO_PERIOD, flat = TARIFF_NO_PERIOD;
                        const Tariff *T = ti >= 0 ? e->tariffs[ti] : NULL;
                        if (T) {
                                unsigned dt = day_type(e, T);
                                int64_t ms;
                                unsigned min = minute_of(e, t, &ms);
                                period = tariff_map_at(&T->energy_map, e->month - 1, dt, min);
                                dperiod = tariff_map_at(&T->demand_map, e->month - 1, dt, min);
                                flat = T->flat_demand_month[e->month - 1];
                                t1 = MIN(t1, period_end(e, &T->energy_map, dt, t));
                                if (T->demand_map.n_profiles > 0)
                                        t1 = MIN(t1, period_end(e, &T->demand_map, dt, t));
                        }
                        int64_t share = (int64_t) ((i128) iv->energy_mwh * (t1 - iv->start_ms) /
                                                   (iv->end_ms - iv->start_ms));
                        int64_t mwh = share - done;
                        done = share;
                        bool billed = t >= req->from_ms;
                        CostBucketBill *bucket = billed ? &e->bill->buckets[bucket_at(e->bill, t)] : NULL;

                        if (!T) {
                                if (bucket) {
                                        bucket->unpriced_mwh += mwh;
                                        if (mwh > 0 && (r = emit_part(e, t, t1, NULL, TARIFF_LINE_ENERGY, 0, 0, mwh, 0)) < 0)
                                                return r;
                                }
                                t = t1;
                                continue;
                        }
                        int64_t window = T->daily_tiers ? e->day_start : cycle_start_of(e, (size_t) ti, t);
                        if (e->tier_tariff != (size_t) ti || e->tier_window != window) {
                                e->tier_tariff = (size_t) ti;
                                e->tier_window = window;
                                e->tier_used = 0;
                        }
                        Cycle *c = billed ? cycle_at(e, &cycle_cursor, t) : NULL;
                        if (billed && !c)
                                return refuse(e, "internal error: no cycle at %" PRId64, t);
                        if ((r = price_piece(e, (size_t) ti, period, t, t1, mwh, c ? bucket : NULL, c)) < 0)
                                return r;
                        if (c) {
                                bucket->energy_mwh += mwh;
                                for (size_t k = 0; k < T->n_adders; k++) {
                                        i128 x = (i128) mwh * T->adders[k].rate;
                                        c->exact += x;
                                        if ((r = cost_add_line(bucket, TARIFF_LINE_ADDER, T, (unsigned) k, 0,
                                                               T->adders[k].name, T->adders[k].rate, mwh, x)) < 0 ||
                                            (r = emit_part(e, t, t1, T, TARIFF_LINE_ADDER, (unsigned) k, 0, mwh, x)) < 0)
                                                return r;
                                }
                                if ((dperiod != TARIFF_NO_PERIOD || flat != TARIFF_NO_PERIOD) &&
                                    (r = add_demand_piece(e, c, t, t1, mwh, dperiod, flat)) < 0)
                                        return r;
                        }
                        t = t1;
                }
        }
        return 0;
}

/* A demand charge: the peak through the tiers (kW), prorated like the
 * fixed charges for a cycle the range covers in part. */
static int charge_demand(Engine *e, Cycle *c, CostBucketBill *b, const TariffPeriod *P, unsigned key, bool flat,
                         uint8_t index) {
        const Tariff *T = e->tariffs[c->tariff];
        _cleanup_free_ CostPiece *sel = malloc(MAX(c->n_pieces, (size_t) 1) * sizeof(CostPiece));
        size_t n = 0;
        int r;

        if (!sel)
                return -ENOMEM;
        for (size_t i = c->first_piece; i < c->first_piece + c->n_pieces; i++)
                if ((flat ? e->pieces[i].flat : e->pieces[i].period) == index)
                        sel[n++] = e->pieces[i].p;
        int64_t peak, used = 0;
        if ((r = cost_peak_mw(sel, n, (int64_t) T->demand_window_min * 60000, &peak)) < 0)
                return r;
        for (size_t k = 0; peak > used && k < P->n_tiers; k++) {
                const TariffTier *tr = &P->tiers[k];
                if (used >= tr->max)
                        continue;
                int64_t take = MIN(peak, tr->max) - used;
                used += take;
                i128 x = cost_mul_div_round((i128) take * tr->rate, c->units, c->days * COST_DAY_UNITS);
                c->exact += x;
                if ((r = cost_add_line(b, TARIFF_LINE_DEMAND, T, key, (unsigned) k, P->name, tr->rate, peak, x)) < 0)
                        return r;
        }
        return 0;
}

static int charge_cycles(Engine *e) {
        int r;

        for (size_t i = 0; i < e->n_cycles; i++) {
                Cycle *c = &e->cycles[i];
                const Tariff *T = e->tariffs[c->tariff];
                CostBucketBill *b = &e->bill->buckets[bucket_at(e->bill, c->until - 1)];

                for (size_t p = 0; p < T->n_demand_periods; p++)
                        if ((r = charge_demand(e, c, b, &T->demand_periods[p], (unsigned) p, false, (uint8_t) p)) < 0)
                                return r;
                for (size_t p = 0; p < T->n_flat_demand; p++)
                        if ((r = charge_demand(e, c, b, &T->flat_demand[p], 100 + (unsigned) p, true, (uint8_t) p)) < 0)
                                return r;
                if (c->floor > c->exact &&
                    (r = cost_add_line(b, TARIFF_LINE_MINIMUM, T, 0, 0, "minimum", T->minimum.amount, c->units,
                                       c->floor - c->exact)) < 0)
                        return r;
        }
        return 0;
}

static int compare_tariffs(const void *a, const void *b) {
        const Tariff *x = *(const Tariff *const *) a, *y = *(const Tariff *const *) b;
        return x->valid_from_ms < y->valid_from_ms ? -1 : x->valid_from_ms > y->valid_from_ms;
}

static int check_request(Engine *e) {
        const CostRequest *req = e->req;
        _cleanup_free_ char *why = NULL;

        if (req->n_tariffs == 0)
                return refuse(e, "tariffs: expected at least one");
        if (req->from_ms < -TIME_LIMIT_MS || req->to_ms > TIME_LIMIT_MS || req->from_ms >= req->to_ms)
                return refuse(e, "range: expected from < to within years 1 to 9999");
        if (req->bucket > COST_BUCKET_MONTH)
                return refuse(e, "bucket: expected none, day or month");
        e->tariffs = malloc(req->n_tariffs * sizeof(Tariff *));
        if (!e->tariffs)
                return -ENOMEM;
        memcpy(e->tariffs, req->tariffs, req->n_tariffs * sizeof(Tariff *));
        e->n_tariffs = req->n_tariffs;
        qsort(e->tariffs, e->n_tariffs, sizeof(Tariff *), compare_tariffs);
        for (size_t i = 0; i < e->n_tariffs; i++) {
                const Tariff *T = e->tariffs[i];
                if (tariff_check(T, &why) < 0)
                        return refuse(e, "tariff %s: %s", T->name ? T->name : "?", why ? why : "invalid");
                if (strcmp(T->currency, e->tariffs[0]->currency) != 0)
                        return refuse(e, "tariff %s: expected currency %s like the others, got %s", T->name,
                                      e->tariffs[0]->currency, T->currency);
                if (i > 0 && T->valid_from_ms < e->tariffs[i - 1]->valid_until_ms)
                        return refuse(e, "tariff %s: validity overlaps that of %s", T->name, e->tariffs[i - 1]->name);
        }
        int64_t energy = 0;
        for (size_t i = 0; i < req->n_intervals; i++) {
                const CostInterval *iv = &req->intervals[i];
                if (iv->start_ms < -TIME_LIMIT_MS || iv->end_ms > TIME_LIMIT_MS || iv->start_ms >= iv->end_ms)
                        return refuse(e, "interval %zu: expected start < end within years 1 to 9999", i);
                if (iv->energy_mwh < 0 || iv->energy_mwh > COST_ENERGY_MAX_MWH)
                        return refuse(e, "interval %zu: expected 0 to 1 GWh", i);
                if (i > 0 && iv->start_ms < req->intervals[i - 1].end_ms)
                        return refuse(e, "interval %zu: expected to start after the one before ends", i);
                energy += iv->energy_mwh;
                if (energy > INT64_MAX / 4)
                        return refuse(e, "intervals: expected less energy in all than %" PRId64 " mWh", INT64_MAX / 4);
        }
        return 0;
}

int cost_compute(const CostRequest *req, CostBill **ret, char **ret_error) {
        Engine e = { .req = req, .ret_error = ret_error, .day_start = 1, .day_end = 0, .cycle_tariff = SIZE_MAX };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if ((r = check_request(&e)) < 0)
                goto finish;
        e.cal = calendar_new(req->time_zone);
        if (!e.cal) {
                r = refuse(&e, "time zone %s: expected an IANA zone name", req->time_zone ? req->time_zone : "local");
                goto finish;
        }
        e.tz = req->time_zone && *req->time_zone ? g_time_zone_new_identifier(req->time_zone) : g_time_zone_new_local();
        e.bill = calloc(1, sizeof(CostBill));
        if (!e.tz || !e.bill) {
                r = -ENOMEM;
                goto finish;
        }
        memcpy(e.bill->currency, e.tariffs[0]->currency, 4);
        e.bill->digits = e.tariffs[0]->currency_digits;

        if ((r = make_buckets(&e)) < 0 || (r = walk_charges(&e)) < 0 || (r = walk_energy(&e)) < 0 ||
            (r = charge_cycles(&e)) < 0 || (r = cost_finish(e.bill, e.tariffs, e.n_tariffs)) < 0)
                goto finish;
        *ret = TAKE_PTR(e.bill);
finish:
        cost_bill_free(e.bill);
        free(e.cycles);
        free(e.pieces);
        free(e.tariffs);
        if (e.tz)
                g_time_zone_unref(e.tz);
        calendar_free(e.cal);
        return r;
}
