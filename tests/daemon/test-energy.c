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

        EnergyUpdate u = feed(&a, 1000 * S, 50 * WH, 100000);
        is_int(u.delta_mwh, 0, "first sample: delta 0");
        ok(u.flags == ENERGY_FIRST, "first sample flagged");

        /* 100 W for 10 s = 277.8 mWh per step, on a mWh-resolution counter */
        a.quantum_mwh = 1;
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

        feed(&a, 0, 5000 * WH, 60000);
        u = feed(&a, 10 * S, 5000 * WH, 60000);
        is_int(u.delta_mwh, 0, "no change, no energy");

        /* erase: counter to 0; 60 W x 10 s = 166.7 mWh happened meanwhile */
        u = feed(&a, 20 * S, 0, 60000);
        ok(u.flags == ENERGY_RESET, "erase flagged as reset (flags %u)", u.flags);
        is_int(u.delta_mwh, 167, "erase: the interval is estimated from power, not lost");
        u = feed(&a, 30 * S, 1 * WH, 60000);
        is_int(u.delta_mwh, 1 * WH, "counting continues from the new counter");

        /* reboot with the counter kept: nothing special */
        u = feed(&a, 40 * S, 1 * WH, 0);
        u = feed(&a, 50 * S, 1 * WH, 60000);
        ok(u.flags == 0 && u.delta_mwh == 0, "reboot keeping the counter is not a reset");

        /* midnight reset: 2 Wh since midnight reported, plausible */
        feed(&a, 60 * S, 3 * WH, 60000);
        u = feed(&a, 70 * S, 0, 60000);
        ok(u.flags & ENERGY_RESET, "midnight reset flagged");
        is_int(u.delta_mwh, 167, "midnight reset to 0: power x time");
        feed(&a, 80 * S, 0, 1800000);
        u = feed(&a, 90 * S, 5 * WH, 1800000);
        is_int(u.delta_mwh, 5 * WH, "after a reset the counter is trusted again");

        /* a reset to a value larger than power x time allows */
        u = feed(&a, 100 * S, 2 * WH, 1800000);
        ok(u.flags & ENERGY_RESET, "reset to a plausible value");
        is_int(u.delta_mwh, 5 * WH, "delta = max(counter, power x time) = 1.8 kW x 10 s");
        feed(&a, 110 * S, 3 * WH, 1000);
        u = feed(&a, 120 * S, 1 * WH, 1000);
        ok((u.flags & ENERGY_RESET) && (u.flags & ENERGY_IMPLAUSIBLE) == 0, "reset with a small load");
        is_int(u.delta_mwh, 1 * WH, "1 Wh after a reset fits in one quantum of slack");
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
        is_int(u.delta_mwh, WH, "spike replaced by power x time");
        u = feed(&a, 30 * S, 1003 * WH, 360000);
        ok(u.flags == 0, "back to normal after the spike");
        is_int(u.delta_mwh, WH, "the spike interval is not counted twice");
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
        is_int(a.cumulative_mwh, 8 * WH, "total exact through the re-base");

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
        int64_t sum = 0, first = plug_reading(&p);
        unsigned flagged = 0;
        energy_account_init(&a);

        feed(&a, 0, first, p.power_mw);
        for (int i = 1; i <= 8640; i++) { /* a day at 10 s */
                plug_run(&p, 10 * S);
                EnergyUpdate u = feed(&a, i * 10 * S, plug_reading(&p), p.power_mw);
                sum += u.delta_mwh;
                flagged += u.flags != 0;
        }
        is_int(sum, plug_reading(&p) - first, "5 W, whole-Wh counter: sum equals the counter's increase");
        ok(fabs((double) sum - p.true_mwh) < WH, "and is within one Wh of the truth (%" PRId64 " vs %.1f)", sum, p.true_mwh);
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
        is_int(u.delta_mwh, 50 * WH, "the counter only, not power x gap");
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
        is_int(u.cumulative_mwh, WH, "cumulative continues");

        /* with the persisted counter: downtime energy is picked up */
        energy_account_init(&b);
        energy_account_restore(&b, a.cumulative_mwh);
        energy_account_resume(&b, a.counter_mwh, a.ts_ms, a.power_mw);
        u = feed(&b, 600 * S, 30 * WH, 100000);
        ok(u.flags == ENERGY_GAP, "resume: the downtime is a gap");
        is_int(u.delta_mwh, 19 * WH, "and its energy is counted from the counter");
        is_int(u.cumulative_mwh, 20 * WH, "cumulative continues");

        energy_account_init(&b);
        energy_account_restore(&b, 20 * WH);
        energy_account_resume(&b, 30 * WH, 600 * S, 100000);
        u = feed(&b, 610 * S, 0, 100000);
        ok(u.flags & ENERGY_RESET, "a reset while the daemon was down is seen");
}

/* Random loads on random plugs with resets at random instants. The counter
 * cannot show what was used between the last sample and a reset (nor the
 * unshown part of its last quantum), so each reset may add one quantum plus
 * the error of the power x time estimate over that interval. */
static void test_property(void) {
        GRand *rand = g_rand_new_with_seed(4711);
        unsigned bad = 0, never_negative = 1, runs = 200, total_resets = 0, hidden = 0;

        for (unsigned run = 0; run < runs; run++) {
                EnergyAccount a;
                Plug p = {
                        .quantum = g_rand_boolean(rand) ? WH : 1,
                        .power_mw = g_rand_int_range(rand, 0, 3000000),
                        .counter_mwh = g_rand_double_range(rand, 0, 1e7),
                };
                int64_t ts = 0, sum = 0, poll = g_rand_int_range(rand, 1, 60) * S;
                double allowed = p.quantum;
                unsigned resets = 0;

                energy_account_init(&a);
                feed(&a, ts, plug_reading(&p), p.power_mw);
                double true0 = p.true_mwh;

                for (int i = 0; i < 5000; i++) {
                        int64_t p0 = p.power_mw;
                        if (g_rand_int_range(rand, 0, 20) == 0) /* load changes right after a poll */
                                p.power_mw = g_rand_int_range(rand, 0, 3000000) * (g_rand_boolean(rand) ? 1 : 0);

                        double before = p.true_mwh;
                        int64_t reading_before = plug_reading(&p);
                        if (g_rand_int_range(rand, 0, 500) == 0) {
                                int64_t at = g_rand_int_range(rand, 0, (int32_t) poll + 1);
                                plug_run(&p, at);
                                p.counter_mwh = 0;
                                plug_run(&p, poll - at);
                                resets++;
                                double est = (double) (p0 + p.power_mw) / 2 * (double) poll / 3.6e6;
                                allowed += p.quantum + fabs(est - (p.true_mwh - before)) + 1;
                                /* A reset that leaves the counter at or above
                                 * its last reading cannot be seen: all the
                                 * counter had shown since its previous reset
                                 * is lost. */
                                if (plug_reading(&p) >= reading_before) {
                                        hidden++;
                                        allowed += (double) reading_before + (p.true_mwh - before);
                                }
                        } else
                                plug_run(&p, poll);

                        ts += poll;
                        EnergyUpdate u = feed(&a, ts, plug_reading(&p), p.power_mw);
                        if (u.delta_mwh < 0)
                                never_negative = 0;
                        sum += u.delta_mwh;
                }

                double err = fabs((double) sum - (p.true_mwh - true0));
                if (err > allowed && bad++ < 5)
                        diag("run %u: sum %" PRId64 " true %.1f allowed %.1f (%u resets)", run, sum, p.true_mwh - true0,
                             allowed, resets);
                total_resets += resets;
        }
        g_rand_free(rand);
        is_int(bad, 0, "%u random runs (%u resets, %u of them invisible): energy within the bound", runs,
               total_resets, hidden);
        ok(never_negative, "no negative delta");
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

int main(void) {
        test_first_and_monotonic();
        test_resets();
        test_spikes();
        test_quantised();
        test_gaps();
        test_invalid();
        test_restart();
        test_property();
        test_garbage();
        return done_testing();
}
