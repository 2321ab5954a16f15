/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "energy.h"

/* mW x ms -> mWh, in double because power x a long gap overflows int64;
 * the clamp keeps sums of deltas far from overflow too. */
static int64_t energy_mwh(double power_mw, int64_t dt_ms) {
        double e = power_mw * (double) dt_ms / 3.6e6;
        if (e >= 1e15) /* 1 TWh: beyond any plug, and safe to add up */
                return (int64_t) 1e15;
        return llround(e);
}

void energy_account_init(EnergyAccount *a) {
        *a = (EnergyAccount) {
                .quantum_mwh = ENERGY_QUANTUM_MWH_DEFAULT,
                .gap_ms = ENERGY_GAP_MS_DEFAULT,
                .max_power_mw = ENERGY_MAX_POWER_MW_DEFAULT,
        };
}

void energy_account_restore(EnergyAccount *a, int64_t cumulative_mwh) {
        a->cumulative_mwh = cumulative_mwh;
        a->have_baseline = false;
        a->have_suspect = false;
}

void energy_account_resume(EnergyAccount *a, int64_t counter_mwh, int64_t ts_ms, int64_t power_mw) {
        a->have_baseline = true;
        a->counter_mwh = a->credited_mwh = counter_mwh;
        a->ts_ms = ts_ms;
        a->power_mw = power_mw;
        a->have_suspect = false;
}

int energy_account_update(EnergyAccount *a, int64_t ts_ms, int64_t counter_mwh, int64_t power_mw, EnergyUpdate *ret) {
        unsigned flags = 0;
        int64_t delta;

        if (counter_mwh < 0 || power_mw < 0)
                return -EINVAL;

        if (!a->have_baseline) {
                energy_account_resume(a, counter_mwh, ts_ms, power_mw);
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
        int64_t estimate = energy_mwh((double) (p0 + p1) / 2, dt);
        int64_t bound;

        if (dt > a->gap_ms) {
                flags |= ENERGY_GAP;
                bound = energy_mwh((double) a->max_power_mw, dt) + a->quantum_mwh;
        } else
                bound = energy_mwh(2.0 * (double) MAX(p0, p1), dt) + a->quantum_mwh;

        bool reset = counter_mwh < a->counter_mwh;

        if (!reset) {
                /* credited may be ahead of the counter after an estimate:
                 * the counter catching up is not counted twice. */
                int64_t raw = counter_mwh > a->credited_mwh ? counter_mwh - a->credited_mwh : 0;
                if (raw <= bound) {
                        delta = raw;
                        a->counter_mwh = counter_mwh;
                        a->credited_mwh = MAX(a->credited_mwh, counter_mwh);
                        a->have_suspect = false;
                        goto done;
                }
        }

        if (a->have_suspect && counter_mwh >= a->suspect_mwh && counter_mwh - a->suspect_mwh <= bound) {
                /* Two readings agree on the new counter: it was re-based. */
                flags |= ENERGY_RESYNC | (reset ? ENERGY_RESET : 0);
                delta = counter_mwh - a->suspect_mwh;
                a->counter_mwh = a->credited_mwh = counter_mwh;
                a->have_suspect = false;
                goto done;
        }

        if (reset) {
                flags |= ENERGY_RESET;
                if (counter_mwh <= bound) {
                        /* The counter misses what was used between the last
                         * sample and the reset; power x time covers the whole
                         * interval (not over a gap, where it means little). */
                        delta = (flags & ENERGY_GAP) ? counter_mwh : MAX(counter_mwh, estimate);
                        a->counter_mwh = a->credited_mwh = counter_mwh;
                        a->have_suspect = false;
                        goto done;
                }
        }

        flags |= ENERGY_IMPLAUSIBLE;
        delta = estimate;
        a->credited_mwh += estimate;
        a->suspect_mwh = counter_mwh;
        a->have_suspect = true;

done:
        a->ts_ms = ts_ms;
        a->power_mw = power_mw;
        a->cumulative_mwh += delta;
        *ret = (EnergyUpdate) {
                .delta_mwh = delta,
                .cumulative_mwh = a->cumulative_mwh,
                .flags = flags,
        };
        return 0;
}
