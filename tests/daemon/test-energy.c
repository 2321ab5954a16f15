/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>

#include "energy.h"
#include "tap.h"

#define S 1000 /* ms */
#define WH 1000 /* mWh */

/* A plug: true energy delivered (exact), its internal counter since the
 * last reset (exact) and the counter as reported (whole quanta). */
typedef struct Plug {
        double true_mwh;
        double counter_mwh;
        int64_t quantum;
        int64_t power_mw;
} Plug;

static void plug_run(Plug *p, int64_t dt_ms) {
        double e = (double) p->power_mw * (double) dt_ms / 3.6e6;
        p->true_mwh += e;
        p->counter_mwh += e;
}

static int64_t plug_reading(const Plug *p) {
        return (int64_t) floor(p->counter_mwh / (double) p->quantum) * p->quantum;
}

static EnergyUpdate feed(EnergyAccount *a, int64_t ts, int64_t counter, int64_t power) {
        EnergyUpdate u = {};
        int r = energy_account_update(a, ts, counter, power, &u);
        if (r < 0)
                diag("update(%" PRId64 ", %" PRId64 ", %" PRId64 ") failed: %d", ts, counter, power, r);
        return u;
}

static void test_first_and_monotonic(void) {
        EnergyAccount a;
        energy_account_init(&a);

        /* 100 W for 10 s = 277.8 mWh per step, on a mWh-resolution counter */
        a.quantum_mwh = 1;
        EnergyUpdate u = feed(&a, 1000 * S, 50 * WH, 100000);
        is_int(u.delta_mwh, 0, "first sample: delta 0");
        ok(u.flags == ENERGY_FIRST, "first sample flagged");

        int64_t counter = 50 * WH, sum = 0;
        unsigned flagged = 0;
        for (int i = 1; i <= 360; i++) {
                counter = 50 * WH + (int64_t) llround(i * 100000.0 * 10 / 3600);
                u = feed(&a, 1000 * S + i * 10 * S, counter, 100000);
                sum += u.delta_mwh;
                flagged += u.flags != 0;
        }
        is_int(sum, counter - 50 * WH, "monotonic counter: sum of deltas is the counter's increase");
        is_int(a.cumulative_mwh, sum, "cumulative follows");
        is_int(flagged, 0, "nothing flagged");
        is_int(sum, 100 * WH, "one hour at 100 W is 100 Wh");
}

static void test_resets(void) {
        EnergyAccount a;
        EnergyUpdate u;
        energy_account_init(&a);

        /* 60 W = 166.7 mWh per 10 s; the counter at 5000 Wh with an
         * unknown phase */
        feed(&a, 0, 5000 * WH, 60000);
        u = feed(&a, 10 * S, 5000 * WH, 60000);
        ok(u.flags == 0 && llabs(u.delta_mwh - 167) <= 90,
           "no step yet: the estimate still advances by about power x time (%" PRId64 ")", u.delta_mwh);

        /* erase: counter to 0; 60 W x 10 s happened meanwhile */
        int64_t c0 = a.cumulative_mwh;
        u = feed(&a, 20 * S, 0, 60000);
        ok(u.flags == ENERGY_RESET, "erase flagged as reset (flags %u)", u.flags);
        ok(llabs(a.cumulative_mwh - c0 - 167) <= 90, "erase: the interval is estimated from power, not lost (%" PRId64 ")",
           a.cumulative_mwh - c0);
        is_int(a.cumulative_mwh, energy_account_estimate(&a), "the cumulative is the estimate");
        ok(a.lo_mwh == 0 && a.hi_mwh <= 170, "the new counter saw at most the interval's energy ([%" PRId64 ", %" PRId64 "])",
           a.lo_mwh, a.hi_mwh);

        /* reboot with the counter kept: nothing special */
        feed(&a, 30 * S, 0, 0);
        u = feed(&a, 40 * S, 0, 0);
        ok(u.flags == 0 && u.delta_mwh == 0, "no load, no energy");

        /* midnight reset at no load: the new counter position is exact */
        feed(&a, 50 * S, 0, 1800000);
        u = feed(&a, 60 * S, 5 * WH, 1800000);
        ok(u.flags == 0 && a.lo_mwh == 5 * WH, "1.8 kW x 10 s = 5 Wh");
        feed(&a, 70 * S, 5 * WH, 0);
        u = feed(&a, 80 * S, 0, 0);
        ok(u.flags & ENERGY_RESET, "reset at no load flagged");
        ok(u.delta_mwh == 0 && a.lo_mwh == 0 && a.hi_mwh <= 1, "reset at no load: nothing, and the new position is 0");

        /* a reset to a value larger than power x time allows */
        feed(&a, 90 * S, 0, 1800000);
        c0 = a.cumulative_mwh;
        u = feed(&a, 100 * S, 5 * WH, 1800000);
        ok(u.flags == 0, "counting from 0");
        u = feed(&a, 110 * S, 2 * WH, 1800000);
        ok(u.flags & ENERGY_RESET, "reset to a plausible value");
        ok(llabs(a.cumulative_mwh - c0 - 10 * WH) <= 200, "power x time over the reset: 10 Wh in 20 s (%" PRId64 ")",
           a.cumulative_mwh - c0);
        feed(&a, 120 * S, 3 * WH, 1000);
        c0 = a.cumulative_mwh;
        u = feed(&a, 130 * S, 1 * WH, 1000);
        ok((u.flags & ENERGY_RESET) && (u.flags & ENERGY_IMPLAUSIBLE) == 0, "reset with a small load");
        is_int(a.cumulative_mwh - c0, 1 * WH, "1 Wh after a reset fits in one quantum of slack: at least the counter");
        ok(a.cumulative_mwh >= 0, "cumulative never negative");
}

static void test_spikes(void) {
        EnergyAccount a;
        EnergyUpdate u;
        energy_account_init(&a);
        a.quantum_mwh = 1;

        feed(&a, 0, 1000 * WH, 360000); /* 360 W = 1 Wh per 10 s */
        u = feed(&a, 10 * S, 1001 * WH, 360000);
        is_int(u.delta_mwh, WH, "normal step");

        u = feed(&a, 20 * S, 999999 * WH, 360000);
        ok(u.flags == ENERGY_IMPLAUSIBLE, "upward spike flagged (flags %u)", u.flags);
        ok(llabs(u.delta_mwh - WH) <= 2, "spike replaced by power x time (%" PRId64 ")", u.delta_mwh);
        u = feed(&a, 30 * S, 1003 * WH, 360000);
        ok(u.flags == 0, "back to normal after the spike");
        ok(llabs(u.delta_mwh - WH) <= 2, "the spike interval is not counted twice (%" PRId64 ")", u.delta_mwh);
        is_int(a.cumulative_mwh, 3 * WH, "total is exact");

        u = feed(&a, 40 * S, 500 * WH, 360000);
        ok((u.flags & ENERGY_IMPLAUSIBLE) && (u.flags & ENERGY_RESET), "downward non-zero spike: implausible reset");
        u = feed(&a, 50 * S, 1005 * WH, 360000);
        ok(u.flags == 0, "old counter continues: it was a spike");
        is_int(a.cumulative_mwh, 5 * WH, "total still exact");

        /* a counter that really jumped (firmware re-based it) */
        u = feed(&a, 60 * S, 70000 * WH, 360000);
        ok(u.flags & ENERGY_IMPLAUSIBLE, "jump flagged once");
        u = feed(&a, 70 * S, 70001 * WH, 360000);
        ok(u.flags == ENERGY_RESYNC, "second reading on the new counter: resync (flags %u)", u.flags);
        is_int(u.delta_mwh, WH, "counted from the new counter");
        u = feed(&a, 80 * S, 70002 * WH, 360000);
        ok(u.flags == 0 && u.delta_mwh == WH, "normal on the new counter");
        ok(llabs(a.cumulative_mwh - 8 * WH) <= 2, "total exact through the re-base (%" PRId64 ")", a.cumulative_mwh);

        /* a garbage power reading must not open the door to a garbage counter */
        u = feed(&a, 90 * S, 70003 * WH, INT64_C(1) << 50);
        u = feed(&a, 100 * S, INT64_C(90000000) * WH, 360000);
        ok(u.flags & ENERGY_IMPLAUSIBLE, "huge power does not make a huge jump plausible");
        ok(u.delta_mwh <= ENERGY_MAX_POWER_MW_DEFAULT / 360, "estimate capped by the maximum power");
}

static void test_quantised(void) {
        /* 5 W on a counter reporting whole Wh: it moves every 12 minutes. */
        EnergyAccount a;
        Plug p = { .quantum = WH, .power_mw = 5000, .counter_mwh = 12345.6 * WH };
        int64_t sum = 0;
        double true0 = p.true_mwh;
        unsigned flagged = 0;
        energy_account_init(&a);

        feed(&a, 0, plug_reading(&p), p.power_mw);
        for (int i = 1; i <= 8640; i++) { /* a day at 10 s */
                plug_run(&p, 10 * S);
                EnergyUpdate u = feed(&a, i * 10 * S, plug_reading(&p), p.power_mw);
                sum += u.delta_mwh;
                flagged += u.flags != 0;
        }
        ok(fabs((double) sum - (p.true_mwh - true0)) < 10,
           "5 W, whole-Wh counter, a day: within 10 mWh of the truth (%" PRId64 " vs %.1f)", sum, p.true_mwh - true0);
        is_int(flagged, 0, "quantised steps are plausible");
}

static void test_gaps(void) {
        EnergyAccount a;
        EnergyUpdate u;
        energy_account_init(&a);

        feed(&a, 0, 100 * WH, 10000);
        /* the plug ran 2 kW while unreachable for an hour: counter says so */
        u = feed(&a, 3600 * S, 2100 * WH, 10000);
        ok(u.flags == ENERGY_GAP, "gap flagged (flags %u)", u.flags);
        is_int(u.delta_mwh, 2000 * WH, "gap accounted from the counter");

        u = feed(&a, 7200 * S, 2100 * WH + 11000 * WH, 10000);
        ok((u.flags & ENERGY_GAP) && (u.flags & ENERGY_IMPLAUSIBLE), "11 kWh in an hour exceeds any plug");

        u = feed(&a, 10800 * S, 50 * WH, 10000);
        ok((u.flags & ENERGY_GAP) && (u.flags & ENERGY_RESET), "reset during a gap");
        is_int(u.delta_mwh, 50 * WH + WH / 2, "the counter only (with half a quantum for its phase), not power x gap");
}

static void test_invalid(void) {
        EnergyAccount a;
        EnergyUpdate u;
        energy_account_init(&a);
        feed(&a, 100 * S, 10 * WH, 1000);
        EnergyAccount saved = a;

        is_int(energy_account_update(&a, 100 * S, 11 * WH, 1000, &u), -EINVAL, "same timestamp refused");
        is_int(energy_account_update(&a, 50 * S, 11 * WH, 1000, &u), -EINVAL, "older timestamp refused");
        is_int(energy_account_update(&a, 110 * S, -1, 1000, &u), -EINVAL, "negative counter refused");
        is_int(energy_account_update(&a, 110 * S, 11 * WH, -5, &u), -EINVAL, "negative power refused");
        ok(memcmp(&a, &saved, sizeof a) == 0, "account unchanged by refused samples");
}

static void test_restart(void) {
        EnergyAccount a, b;
        EnergyUpdate u;
        energy_account_init(&a);
        feed(&a, 0, 10 * WH, 100000);
        feed(&a, 10 * S, 11 * WH, 100000);

        /* without the counter: the next sample is a new baseline */
        energy_account_init(&b);
        energy_account_restore(&b, a.cumulative_mwh);
        u = feed(&b, 600 * S, 30 * WH, 100000);
        ok(u.flags == ENERGY_FIRST && u.delta_mwh == 0, "restore: new baseline");
        is_int(u.cumulative_mwh, a.cumulative_mwh, "cumulative continues");

        /* with the persisted counter: downtime energy is picked up */
        energy_account_init(&b);
        energy_account_restore(&b, a.cumulative_mwh);
        energy_account_resume(&b, a.counter_mwh, a.lo_mwh, a.hi_mwh, a.ts_ms, a.power_mw);
        u = feed(&b, 600 * S, 30 * WH, 100000);
        ok(u.flags == ENERGY_GAP, "resume: the downtime is a gap");
        ok(u.delta_mwh >= 19 * WH && u.delta_mwh <= 20 * WH, "and its energy is counted from the counter (%" PRId64 ")",
           u.delta_mwh);
        is_int(u.cumulative_mwh, a.cumulative_mwh + u.delta_mwh, "cumulative continues");

        energy_account_init(&b);
        energy_account_restore(&b, 20 * WH);
        energy_account_resume(&b, 30 * WH, -1, -1, 600 * S, 100000);
        u = feed(&b, 610 * S, 0, 100000);
        ok(u.flags & ENERGY_RESET, "a reset while the daemon was down is seen");
}

/* A plug polled every `poll` ms (+-10 % jitter) whose power readings carry
 * +-1 % of noise, like kasa-sim's; the load changes and the counter resets
 * at random instants between polls. */
typedef struct Run {
        EnergyAccount a;
        Plug p;
        GRand *rand;
        int64_t ts, poll, sum;
        double true0;
        unsigned resets;
} Run;

static void run_init(Run *r, GRand *rand, int64_t quantum, int64_t power_mw, int64_t poll) {
        *r = (Run) {
                .p = { .quantum = quantum, .power_mw = power_mw, .counter_mwh = g_rand_double_range(rand, 0, 1e7) },
                .rand = rand,
                .poll = poll,
        };
        energy_account_init(&r->a);
        r->a.quantum_mwh = quantum;
        feed(&r->a, 0, plug_reading(&r->p), r->p.power_mw);
        r->true0 = r->p.true_mwh;
}

static int64_t noisy(Run *r) {
        return (int64_t) llround((double) r->p.power_mw * (1.0 + g_rand_double_range(r->rand, -0.01, 0.01)));
}

/* One poll interval; at `reset_at` ms into it (if >= 0) the counter
 * restarts at 0, at `load_at` the load becomes `load`. */
static EnergyUpdate run_poll(Run *r, int64_t reset_at, int64_t load_at, int64_t load) {
        int64_t dt = r->poll + g_rand_int_range(r->rand, (int32_t) -r->poll / 10, (int32_t) r->poll / 10 + 1);
        int64_t t = 0;

        for (int k = 0; k < 2; k++) {
                int64_t next = k == 0 ? MIN(reset_at < 0 ? dt : reset_at, load_at < 0 ? dt : load_at)
                                      : MAX(reset_at < 0 ? 0 : reset_at, load_at < 0 ? 0 : load_at);
                next = CLAMP(next, t, dt);
                plug_run(&r->p, next - t);
                t = next;
                if (t == reset_at && reset_at >= 0) {
                        r->p.counter_mwh = 0;
                        r->resets++;
                        reset_at = -1;
                }
                if (t == load_at && load_at >= 0) {
                        r->p.power_mw = load;
                        load_at = -1;
                }
        }
        plug_run(&r->p, dt - t);
        r->ts += dt;
        EnergyUpdate u = feed(&r->a, r->ts, plug_reading(&r->p), noisy(r));
        r->sum += u.delta_mwh;
        return u;
}

static double run_error(const Run *r) {
        return (double) r->sum - (r->p.true_mwh - r->true0);
}

/* The regression: a reset at load used to lose what the old counter had
 * not shown yet (f0, up to a quantum) and count the new counter's part of
 * the first interval twice (f1). Here the old counter is 0.9 Wh into its
 * quantum when it resets, and the new one 0.3 Wh at the first poll. */
static void test_reset_phase(void) {
        GRand *rand = g_rand_new_with_seed(17);
        Run r;

        run_init(&r, rand, WH, 1500000, 1000); /* 1.5 kW: 0.42 Wh per poll */
        r.p.counter_mwh = 4000.0 * WH;
        r.true0 = r.p.true_mwh;
        energy_account_init(&r.a);
        feed(&r.a, 0, plug_reading(&r.p), r.p.power_mw);
        for (int i = 0; i < 60; i++)
                run_poll(&r, -1, -1, 0);
        /* steer the old counter's phase to 0.9 Wh at the reset, 0.3 Wh of
         * the next interval after it */
        double phase = fmod(r.p.counter_mwh, WH);
        int64_t to_f0 = (int64_t) llround(fmod(900.0 - phase + WH, WH) * 3.6e6 / 1500000.0);
        plug_run(&r.p, to_f0);
        r.ts += to_f0;
        r.sum += feed(&r.a, r.ts, plug_reading(&r.p), noisy(&r)).delta_mwh;
        plug_run(&r.p, 10); /* now 0.9 Wh */
        int64_t f0 = (int64_t) fmod(r.p.counter_mwh, WH);
        r.p.counter_mwh = 0;
        plug_run(&r.p, 720); /* 0.3 Wh */
        r.ts += 730;
        EnergyUpdate u = feed(&r.a, r.ts, plug_reading(&r.p), noisy(&r));
        r.sum += u.delta_mwh;
        ok(u.flags == ENERGY_RESET, "reset seen (f0 %" PRId64 " mWh, f1 %.0f mWh)", f0, r.p.counter_mwh);
        for (int i = 0; i < 60; i++)
                run_poll(&r, -1, -1, 0);
        ok(fabs(run_error(&r)) < 100, "f0 is not lost nor f1 counted twice: error %+.1f mWh over %.0f mWh",
           run_error(&r), r.p.true_mwh - r.true0);
        g_rand_free(rand);
}

static double half_width(int64_t lo, int64_t hi) {
        return (double) (hi - lo) / 2;
}

/* Random loads on random plugs with resets at random instants.
 *
 * While the power readings stay within the tolerance of the load, the
 * account's intervals hold the counter's true position: checked at every
 * poll. kasamond's total then errs only where its estimates are not
 * measured by a counter: at each end of each counter's run (its first
 * sample, the reset or the end of the test) by at most the interval's half
 * width, and over the interval of a reset by what power x time misses
 * there. That bound is asserted, and separately that the error per reset
 * is a small part of a quantum where a poll interval sees at most a few
 * quanta (the phase cannot be followed when one sees many: the tolerance
 * then widens the interval by more than a step narrows it). The loads here
 * change often and are often 0, where no step tells the phase: at steady
 * loads a reset costs less (tests/bus/test-energy.py). */
static void test_property(void) {
        GRand *rand = g_rand_new_with_seed(4711);
        unsigned bad = 0, outside = 0, never_negative = 1, runs = 300, total_resets = 0, hidden = 0, fine_runs = 0,
                 fine_resets = 0;
        double fine_worst = 0, fine_abs = 0;

        for (unsigned run = 0; run < runs; run++) {
                Run r;
                int64_t quantum = g_rand_int_range(rand, 0, 4) == 0 ? 1 : WH;
                int64_t poll = g_rand_int_range(rand, 1, 30) * S;
                int64_t max_load = g_rand_boolean(rand) ? 3000000 : (int64_t) (3.6e6 * 2 / ((double) poll / S)) + 1;
                run_init(&r, rand, quantum, g_rand_int_range(rand, 0, (int32_t) max_load), poll);
                double allowed = 0, reset_err = 0;
                bool blind = false;

                for (int i = 0; i < 3000; i++) {
                        int64_t load_at = -1, reset_at = -1, load = 0;
                        if (g_rand_int_range(rand, 0, 20) == 0) {
                                load_at = g_rand_int_range(rand, 0, (int32_t) r.poll);
                                load = g_rand_int_range(rand, 0, (int32_t) max_load) * (g_rand_boolean(rand) ? 1 : 0);
                        }
                        if (g_rand_int_range(rand, 0, 300) == 0)
                                reset_at = g_rand_int_range(rand, 0, (int32_t) r.poll);

                        double before = r.p.true_mwh;
                        double old_widths = half_width(r.a.lo_mwh, r.a.hi_mwh) +
                                            half_width(r.a.first_lo_mwh, r.a.first_hi_mwh);
                        int64_t reading_before = plug_reading(&r.p), p0 = r.a.power_mw, ts0 = r.a.ts_ms;
                        EnergyUpdate u = run_poll(&r, reset_at, load_at, load);
                        if (u.delta_mwh < 0)
                                never_negative = 0;
                        if (reset_at >= 0 && plug_reading(&r.p) >= reading_before) {
                                /* A reset that leaves the counter at or above
                                 * its last reading cannot be seen: all the
                                 * counter had shown since its previous reset
                                 * is lost. */
                                hidden++;
                                blind = true; /* the intervals are wrong until the account notices */
                                allowed += (double) reading_before + (r.p.true_mwh - before) + old_widths;
                                continue;
                        }
                        if (!blind && ((double) r.a.lo_mwh > r.p.counter_mwh + 1 || (double) r.a.hi_mwh < r.p.counter_mwh - 1))
                                outside++;
                        if (reset_at < 0)
                                continue;
                        double est = (double) (p0 + r.a.power_mw) / 2 * (double) (r.a.ts_ms - ts0) / 3.6e6;
                        reset_err += fabs(est - (r.p.true_mwh - before));
                        /* + rounding to whole mWh */
                        allowed += old_widths + half_width(r.a.lo_mwh, r.a.hi_mwh) + fabs(est - (r.p.true_mwh - before)) + 2;
                }
                allowed += half_width(r.a.lo_mwh, r.a.hi_mwh) + half_width(r.a.first_lo_mwh, r.a.first_hi_mwh) +
                           (double) (r.a.cumulative_mwh - energy_account_estimate(&r.a)) + 2;
                double err = run_error(&r);
                if (fabs(err) > allowed && bad++ < 5)
                        diag("run %u: error %+.1f mWh, allowed %.1f (%u resets, quantum %" PRId64 ", poll %" PRId64 " ms)", run,
                             err, allowed, r.resets, quantum, r.poll);
                if (quantum == WH && max_load < 3000000 && r.resets) {
                        double per_reset = (fabs(err) - reset_err) / r.resets;
                        fine_runs++;
                        fine_resets += r.resets;
                        fine_abs += fabs(err) - reset_err;
                        fine_worst = MAX(fine_worst, per_reset);
                }
                total_resets += r.resets;
        }
        g_rand_free(rand);
        is_int(outside, 0, "the intervals always held the counter's true position");
        is_int(bad, 0, "%u random runs (%u resets, %u of them invisible): energy within the derived bound", runs,
               total_resets, hidden);
        diag("%u runs at up to 2 quanta per poll, %u resets: beyond power x time over the reset's interval, "
             "mean %.1f mWh per reset, worst run %.1f per reset", fine_runs, fine_resets, fine_abs / fine_resets, fine_worst);
        ok(fine_abs / fine_resets < 0.1 * WH, "at up to 2 quanta per poll a reset costs less than a tenth of a quantum");
        ok(never_negative, "no negative delta");
}

/* The run of tests/bus/test-energy.py, modelled: its meters, loads, counter
 * resets and reboots, 0.2 s polls (+-10 %), kasa-sim's 1 % noise on the
 * power readings. The whole run's energy must be within 0.1 % of the
 * truth, in every one of many runs. With kasamond's estimate at the middle
 * of its interval 2 runs in these 1000 went beyond (worst 0.103 %; at the
 * bus test's former 0.5 s polls 65 in 1000): a counter's phase is
 * known to some tens of mWh at a few kW, and each counter's start and end
 * add such an error. The estimate inside the interval that power x time at
 * the readings gives keeps every run within it (worst 0.067 %). */
typedef struct ModelMeter {
        int64_t load_mw;
        int64_t resets_ms[2];
        int64_t change_ms, change_mw;
        int64_t reboot_ms[2], reboot_len_ms[2];
} ModelMeter;

static const ModelMeter bus_run[] = {
        { 3600000, { 12 * S, 84 * S }, 60 * S, 2200000, { 44 * S }, { 3 * S } },
        { 1800000, { -1, -1 }, 100 * S, 900000, { 20 * S, 76 * S }, { 2 * S, 3 * S } },
        { 300000, { 28 * S, -1 }, 61 * S, 220000, { 52 * S }, { 2 * S } },
        { 250000, { 28 * S, -1 }, 61 * S, 220000, { 52 * S }, { 2 * S } },
        { 400000, { 28 * S, -1 }, 61 * S, 220000, { 52 * S }, { 2 * S } },
        { 150000, { 28 * S, -1 }, 61 * S, 220000, { 52 * S }, { 2 * S } },
        { 350000, { 28 * S, -1 }, 61 * S, 220000, { 52 * S }, { 2 * S } },
        { 200000, { 28 * S, -1 }, 61 * S, 220000, { 52 * S }, { 2 * S } },
        { 1500000, { 36 * S, 68 * S }, -1, 0, { 92 * S }, { 2 * S } },
};

/* The error of kasamond's total over one meter's run, mWh. */
static double model_meter(GRand *rand, const ModelMeter *m, double *ret_true) {
        Plug p = { .quantum = WH, .counter_mwh = WH };
        EnergyAccount a;
        int64_t now = 0, poll = 200;

        /* As the bus test starts: a counter seen to reset to 0 at no load,
         * so its position is known exactly; the loads go on between polls. */
        energy_account_init(&a);
        feed(&a, now, plug_reading(&p), 0);
        p.counter_mwh = 0;
        now += poll;
        feed(&a, now, plug_reading(&p), 0);
        int64_t start = energy_account_estimate(&a);
        double true0 = p.true_mwh;
        /* the run's events, from when the load goes on */
        int64_t t0 = now + g_rand_int_range(rand, 0, (int32_t) poll);
        int64_t at[4] = { 0, m->resets_ms[0], m->resets_ms[1], m->change_ms };

        while (now < t0 + 110 * S) {
                int64_t next = now + poll + g_rand_int_range(rand, (int32_t) -poll / 10, (int32_t) poll / 10 + 1);
                for (;;) {
                        int k = -1;
                        for (int i = 0; i < 4; i++)
                                if (at[i] >= 0 && t0 + at[i] < next && (k < 0 || at[i] < at[k]))
                                        k = i;
                        if (k < 0)
                                break;
                        plug_run(&p, t0 + at[k] - now);
                        now = t0 + at[k];
                        at[k] = -1;
                        if (k == 0)
                                p.power_mw = m->load_mw;
                        else if (k == 3)
                                p.power_mw = m->change_mw;
                        else
                                p.counter_mwh = 0;
                }
                plug_run(&p, next - now);
                now = next;
                bool offline = false;
                for (int i = 0; i < 2; i++)
                        offline |= m->reboot_len_ms[i] > 0 && now >= t0 + m->reboot_ms[i] &&
                                   now < t0 + m->reboot_ms[i] + m->reboot_len_ms[i];
                if (!offline)
                        feed(&a, now, plug_reading(&p),
                             (int64_t) llround((double) p.power_mw * (1.0 + g_rand_double_range(rand, -0.01, 0.01))));
        }
        *ret_true = p.true_mwh - true0;
        return (double) (energy_account_estimate(&a) - start) - *ret_true;
}

static void test_bus_run_model(void) {
        GRand *rand = g_rand_new_with_seed(1201);
        unsigned runs = 1000, beyond = 0;
        double worst = 0;

        for (unsigned run = 0; run < runs; run++) {
                double err = 0, truth = 0;
                for (size_t i = 0; i < G_N_ELEMENTS(bus_run); i++) {
                        double t;
                        err += model_meter(rand, &bus_run[i], &t);
                        truth += t;
                }
                beyond += fabs(err) > 0.001 * truth;
                worst = MAX(worst, fabs(err) / truth);
        }
        g_rand_free(rand);
        is_int(beyond, 0, "%u runs of the bus test's model: the run's energy within 0.1 %% of the truth (worst %.3f %%)",
               runs, 100 * worst);
}

/* Garbage in: deltas stay non-negative and bounded, cumulative monotonic. */
static void test_garbage(void) {
        GRand *rand = g_rand_new_with_seed(99);
        EnergyAccount a;
        unsigned bad = 0;
        int64_t ts = 0;
        energy_account_init(&a);

        for (int i = 0; i < 100000; i++) {
                EnergyUpdate u;
                int64_t prev = a.cumulative_mwh;
                int64_t counter = g_rand_boolean(rand) ? (int64_t) (g_rand_int(rand) >> 1) * g_rand_int(rand) : g_rand_int_range(rand, 0, 100000);
                int64_t power = g_rand_boolean(rand) ? (int64_t) (g_rand_int(rand) >> 1) * g_rand_int(rand) : g_rand_int_range(rand, 0, 100000);
                ts += g_rand_int_range(rand, 1, 1000000);
                if (energy_account_update(&a, ts, counter, power, &u) < 0 || u.delta_mwh < 0 ||
                    a.cumulative_mwh < prev || a.cumulative_mwh != prev + u.delta_mwh)
                        bad++;
        }
        g_rand_free(rand);
        is_int(bad, 0, "100000 garbage samples: deltas non-negative, cumulative monotonic");
}

/* A total restored near INT64_MAX (a damaged store) stops there: adding
 * to it must neither overflow nor go back. */
static void test_saturation(void) {
        EnergyAccount a;
        EnergyUpdate u;

        energy_account_init(&a);
        energy_account_restore(&a, INT64_MAX - 5);
        energy_account_resume(&a, 10 * WH, 10 * WH, 11 * WH, 0, 100000);
        u = feed(&a, 3600 * S, 110 * WH, 100000);
        is_int(u.cumulative_mwh, INT64_MAX, "the total saturates at INT64_MAX");
        is_int(u.delta_mwh, 5, "the delta is what was added");
        u = feed(&a, 7200 * S, 210 * WH, 100000);
        ok(u.cumulative_mwh == INT64_MAX && u.delta_mwh == 0, "and stays there");
}

int main(void) {
        test_saturation();
        test_first_and_monotonic();
        test_resets();
        test_spikes();
        test_quantised();
        test_gaps();
        test_invalid();
        test_restart();
        test_reset_phase();
        test_property();
        test_bus_run_model();
        test_garbage();
        return done_testing();
}
