/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "energy.h"
#include "kasa-proto.h"

/* mW x ms -> mWh, in double because power x a long gap overflows int64;
 * rounding is round, floor or ceil (bounds must not shrink by rounding). */
static int64_t energy_mwh(double power_mw, int64_t dt_ms, double (*rounding)(double)) {
        double e = power_mw * (double) dt_ms / 3.6e6;
        if (e >= (double) KASA_ENERGY_MAX_MWH)
                return KASA_ENERGY_MAX_MWH;
        return (int64_t) rounding(e);
}

/* Counters are device input: garbage near INT64_MAX must not overflow. */
static int64_t add_sat(int64_t a, int64_t b) {
        int64_t r;
        if (__builtin_add_overflow(a, b, &r))
                return b > 0 ? INT64_MAX : INT64_MIN;
        return r;
}

/* Rounded, and saturated: a damaged store's counters may sit near the
 * ends of int64, where a double rounds past them. */
static int64_t mwh_round(double x) {
        if (x >= 0x1p63)
                return INT64_MAX;
        if (x <= -0x1p63)
                return -INT64_MAX;
        return (int64_t) llround(x);
}

static int64_t mid(int64_t lo, int64_t hi) {
        return lo + (hi - lo) / 2;
}

void energy_account_init(EnergyAccount *a) {
        *a = (EnergyAccount) {
                .quantum_mwh = ENERGY_QUANTUM_MWH_DEFAULT,
                .gap_ms = ENERGY_GAP_MS_DEFAULT,
                .max_power_mw = ENERGY_MAX_POWER_MW_DEFAULT,
                .power_tolerance = ENERGY_POWER_TOLERANCE_DEFAULT,
        };
}

int64_t energy_account_estimate(const EnergyAccount *a) {
        if (!a->have_baseline)
                return a->cumulative_mwh;
        return add_sat(a->base_mwh, mwh_round(a->read_lo + (a->read_hi - a->read_lo) / 2));
}

/* The energy since the counter's first sample lies in what the counter
 * allows, [lowest position now - highest then, highest now - lowest then]
 * (both on the same counter, so the differences fit). The estimate is the
 * middle of that window where it meets power x time without the power
 * tolerance: at a steady load the power readings tell the energy far more
 * closely than the counter's steps do; where they stray from the window it
 * wins alone, and power x time starts again from it. */
static void since_narrow(EnergyAccount *a, bool restart) {
        double lo = (double) (a->lo_mwh - a->first_hi_mwh), hi = (double) (a->hi_mwh - a->first_lo_mwh);

        if (!restart && a->read_lo <= hi && a->read_hi >= lo) {
                a->read_lo = fmax(a->read_lo, lo);
                a->read_hi = fmin(a->read_hi, hi);
        } else {
                a->read_lo = lo;
                a->read_hi = hi;
        }
}

/* A counter's first sample: the total is then base, and its position is
 * in [lo, hi]. */
static void counter_start(EnergyAccount *a, int64_t base, int64_t counter, int64_t lo, int64_t hi) {
        a->base_mwh = base;
        a->counter_mwh = counter;
        a->lo_mwh = a->first_lo_mwh = lo;
        a->hi_mwh = a->first_hi_mwh = hi;
        a->since_lo_mwh = a->since_hi_mwh = 0;
        a->read_lo = a->read_hi = 0;
        a->refine = true;
}

void energy_account_restore(EnergyAccount *a, int64_t cumulative_mwh) {
        a->cumulative_mwh = cumulative_mwh;
        a->have_baseline = false;
        a->have_suspect = false;
}

void energy_account_resume(EnergyAccount *a, int64_t counter_mwh, int64_t lo_mwh, int64_t hi_mwh, int64_t ts_ms,
                           int64_t power_mw) {
        int64_t top = add_sat(counter_mwh, a->quantum_mwh);

        if (lo_mwh < counter_mwh || hi_mwh > top || lo_mwh > hi_mwh) {
                lo_mwh = counter_mwh;
                hi_mwh = top;
        }
        a->have_baseline = true;
        counter_start(a, a->cumulative_mwh, counter_mwh, lo_mwh, hi_mwh);
        a->ts_ms = ts_ms;
        a->power_mw = power_mw;
        a->have_suspect = false;
}

/* The position moved by [elo, ehi], by [emin, emax] at the powers as read
 * (NAN: they say nothing); counter < 0: no reading to trust. */
static void advance(EnergyAccount *a, int64_t elo, int64_t ehi, double emin, double emax, int64_t counter) {
        int64_t lo = add_sat(a->lo_mwh, elo), hi = add_sat(a->hi_mwh, ehi);

        a->since_lo_mwh = add_sat(a->since_lo_mwh, elo);
        a->since_hi_mwh = add_sat(a->since_hi_mwh, ehi);
        if (counter >= 0) {
                int64_t top = add_sat(counter, a->quantum_mwh);
                lo = MAX(lo, counter);
                hi = MIN(hi, top);
                if (lo > hi) {
                        /* Power x time and counter disagree: the counter
                         * wins, and the first position, narrowed under the
                         * same premise, is left as it is. */
                        lo = counter;
                        hi = top;
                        a->refine = false;
                        emin = NAN;
                }
                a->counter_mwh = counter;
        }
        a->lo_mwh = lo;
        a->hi_mwh = hi;

        if (a->refine) {
                /* Carried back: the first position was [lo, hi] minus what
                 * was used since. */
                int64_t flo = MAX(a->first_lo_mwh, add_sat(lo, -a->since_hi_mwh));
                int64_t fhi = MIN(a->first_hi_mwh, add_sat(hi, -a->since_lo_mwh));
                if (flo <= fhi) {
                        a->first_lo_mwh = flo;
                        a->first_hi_mwh = fhi;
                } else
                        a->refine = false;
        }
        a->read_lo += emin;
        a->read_hi += emax;
        since_narrow(a, isnan(emin));
}

int energy_account_update(EnergyAccount *a, int64_t ts_ms, int64_t counter_mwh, int64_t power_mw, EnergyUpdate *ret) {
        unsigned flags = 0;

        if (counter_mwh < 0 || power_mw < 0)
                return -EINVAL;

        if (!a->have_baseline) {
                energy_account_resume(a, counter_mwh, -1, -1, ts_ms, power_mw);
                *ret = (EnergyUpdate) {
                        .delta_mwh = 0,
                        .cumulative_mwh = a->cumulative_mwh,
                        .flags = ENERGY_FIRST,
                };
                return 0;
        }

        /* Rejecting keeps the account consistent; dt <= 0 has no power x
         * time to check against. */
        if (ts_ms <= a->ts_ms)
                return -EINVAL;

        int64_t dt = ts_ms - a->ts_ms;
        /* A garbage power reading must not widen the bound without limit. */
        int64_t p0 = MIN(a->power_mw, a->max_power_mw), p1 = MIN(power_mw, a->max_power_mw);
        int64_t estimate = energy_mwh((double) (p0 + p1) / 2, dt, round);
        int64_t elo, ehi, bound;
        /* Unrounded, as they add up over a counter's life; over a gap the
         * two powers say nothing of what was used. */
        double emin = (double) MIN(p0, p1) * (double) dt / 3.6e6, emax = (double) MAX(p0, p1) * (double) dt / 3.6e6;

        if (dt > a->gap_ms) {
                flags |= ENERGY_GAP;
                emin = emax = NAN;
                elo = 0;
                ehi = bound = energy_mwh((double) a->max_power_mw, dt, ceil);
        } else {
                /* The load may have changed anywhere in between: the
                 * energy lies between the lower and the higher power. */
                elo = energy_mwh((double) MIN(p0, p1) * (1.0 - a->power_tolerance), dt, floor);
                ehi = energy_mwh((double) MAX(p0, p1) * (1.0 + a->power_tolerance), dt, ceil);
                bound = energy_mwh(2.0 * (double) MAX(p0, p1), dt, round);
        }

        int64_t before = energy_account_estimate(a);
        bool reset = counter_mwh < a->counter_mwh;

        if (!reset && counter_mwh <= add_sat(a->hi_mwh, bound)) {
                advance(a, elo, ehi, emin, emax, counter_mwh);
                a->have_suspect = false;
                goto done;
        }

        if (a->have_suspect && counter_mwh >= a->suspect_mwh && counter_mwh - a->suspect_mwh <= add_sat(bound, a->quantum_mwh)) {
                /* Two readings agree on the new counter: it was re-based. */
                flags |= ENERGY_RESYNC | (reset ? ENERGY_RESET : 0);
                counter_start(a, add_sat(before, counter_mwh - a->suspect_mwh), counter_mwh, counter_mwh,
                              add_sat(counter_mwh, a->quantum_mwh));
                a->have_suspect = false;
                goto done;
        }

        if (reset) {
                flags |= ENERGY_RESET;
                if (counter_mwh <= add_sat(bound, a->quantum_mwh)) {
                        /* The new counter saw part of the interval only. */
                        int64_t hi = MIN(counter_mwh + a->quantum_mwh, MAX(ehi, counter_mwh));
                        int64_t used = mid(counter_mwh, hi);
                        /* Over a gap power x time means little: only the
                         * new counter's part is known. */
                        if (!(flags & ENERGY_GAP))
                                used = MAX(used, estimate);
                        counter_start(a, add_sat(before, used), counter_mwh, counter_mwh, hi);
                        a->have_suspect = false;
                        goto done;
                }
        }

        flags |= ENERGY_IMPLAUSIBLE;
        advance(a, elo, ehi, emin, emax, -1);
        a->suspect_mwh = counter_mwh;
        a->have_suspect = true;

done:;
        int64_t after = energy_account_estimate(a);
        int64_t delta = after > a->cumulative_mwh ? MIN(after - a->cumulative_mwh, KASA_ENERGY_MAX_MWH) : 0;
        int64_t total = a->cumulative_mwh;

        a->ts_ms = ts_ms;
        a->power_mw = power_mw;
        /* A total restored from a damaged store may sit near INT64_MAX. */
        a->cumulative_mwh = add_sat(total, delta);
        delta = a->cumulative_mwh - total;
        *ret = (EnergyUpdate) {
                .delta_mwh = delta,
                .cumulative_mwh = a->cumulative_mwh,
                .flags = flags,
        };
        return 0;
}
