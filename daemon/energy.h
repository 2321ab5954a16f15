/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Energy accounting from a device's cumulative counter.
 *
 * A plug's "total" counter is cumulative but resets (reboot on some models,
 * an erase, some firmware at midnight or monthly) and occasionally reports
 * garbage. Summing or maxing snapshots over-counts; this turns successive
 * (time, counter, power) samples into non-negative deltas to add to a
 * monotonic cumulative, cross-checked against power x time.
 *
 * Counters show whole quanta (1 Wh), so the energy a counter has seen is
 * its position p = counter + phase, the phase (energy since the counter last
 * stepped) being invisible. The account keeps an interval [lo, hi] that
 * holds p: each sample advances it by the energy power x time allows (the
 * lower and the higher of the two powers times dt, each widened by
 * power_tolerance) and intersects it with [counter, counter + quantum]. At
 * a steady load the steps fall at varying offsets between samples and the
 * interval shrinks to a small part of a quantum. If the two disagree (the
 * power readings were off) the interval starts again from the counter.
 *
 * What a counter saw since its first sample (after a reset, after the
 * baseline) is then within [lo - first_hi, hi - first_lo], first_lo and
 * first_hi being the interval at that first sample, narrowed later by
 * carrying [lo, hi] back over the energy since (with its tolerance).
 * kasamond's cumulative follows the middle of the part of that window
 * that power x time allows at the powers as read, without the tolerance:
 * at a steady load the readings tell the energy between two samples far
 * more closely than the counter's steps, and only a change of load between
 * two samples leaves a range (from the lower to the higher power). Where
 * the readings stray out of the window the window alone counts, and power
 * x time starts again from it. So the estimate is always inside the
 * window, within half of it of the true energy while the readings are
 * right (the true energy is then in both), within all of it otherwise;
 * and smoother than the counter.
 *
 * Rules, per sample after the first:
 *  - counter not lower: p is advanced and intersected as above;
 *  - counter fell: a reset. The interval is credited as power x time (the
 *    reset's moment in it is unknown, but not what it used), at least the
 *    new counter's estimated position; the new counter's position is in
 *    [counter, counter + quantum] and, as it counted only part of the
 *    interval, at most the interval's energy. The old counter's phase is
 *    in its last estimate, so nothing of it is lost or counted twice;
 *  - plausibility: with Pmax = max(previous power, current power) the
 *    counter may not rise above hi + 2 * Pmax * dt (a reset's new value
 *    above 2 * Pmax * dt + quantum); above that the counter is ignored for
 *    this sample, p advances by power x time, and the sample is flagged.
 *    The implausible reading is remembered: if the next sample continues
 *    plausibly from it, the device really re-based its counter and
 *    accounting follows the new counter; if the next sample continues from
 *    the old counter, the reading was a spike and is forgotten;
 *  - a gap (dt > gap_ms) is accounted from the counter and flagged; power x
 *    time says little over a gap, so only max_power_mw bounds it.
 * Deltas are never negative: when the estimate moves down (the interval
 * narrowed), the cumulative waits until the estimate passes it again.
 *
 * Persistence across daemon restarts: store cumulative_mwh, counter_mwh,
 * lo_mwh, hi_mwh, ts_ms and power_mw after each update (the daemon does so
 * with its readings). After a restart call energy_account_restore() with
 * the cumulative and, when the counter was stored, energy_account_resume()
 * with the rest: the first new sample is then compared with it and the
 * energy used while the daemon was down is picked up (flagged as a gap).
 * Without resume() the first sample is a new baseline and that energy is
 * lost. */

typedef enum EnergyFlags {
        ENERGY_FIRST       = 1 << 0, /* new baseline, delta 0 */
        ENERGY_RESET       = 1 << 1, /* the counter went down */
        ENERGY_IMPLAUSIBLE = 1 << 2, /* counter ignored, power x time used */
        ENERGY_GAP         = 1 << 3, /* dt above gap_ms */
        ENERGY_RESYNC      = 1 << 4, /* followed a counter that jumped last time */
} EnergyFlags;

#define ENERGY_QUANTUM_MWH_DEFAULT 1000              /* 1 Wh */
#define ENERGY_GAP_MS_DEFAULT      (5 * 60 * 1000)   /* 5 min */
#define ENERGY_MAX_POWER_MW_DEFAULT (10 * 1000 * 1000) /* 10 kW, above any plug */
/* How far power x time may stray from the energy a counter saw, relative:
 * plugs' power readings carry about 1 % of noise. */
#define ENERGY_POWER_TOLERANCE_DEFAULT 0.015

typedef struct EnergyAccount {
        /* Settings (energy_account_init() sets the defaults). */
        int64_t quantum_mwh;
        int64_t gap_ms;
        int64_t max_power_mw;
        double power_tolerance;

        /* State; those marked (persist) are what a restart needs. */
        int64_t cumulative_mwh;  /* (persist) monotonic total */
        bool have_baseline;
        int64_t counter_mwh;     /* (persist) last counter reading believed */
        int64_t lo_mwh, hi_mwh;  /* (persist) the counter's true position
                                  * (counter + phase) is in [lo, hi] */
        int64_t ts_ms;           /* (persist) time of the last sample */
        int64_t power_mw;        /* (persist) power at the last sample */

        /* The current counter's first sample: kasamond's estimate of the
         * total then (base), the interval of the counter's position then
         * (narrowed later), and power x time since (low, high). */
        int64_t base_mwh;
        int64_t first_lo_mwh, first_hi_mwh;
        int64_t since_lo_mwh, since_hi_mwh;
        double read_lo, read_hi; /* the energy since at the powers as read,
                                  * within what the counter allows */
        bool refine;             /* the first position is still narrowed */

        bool have_suspect;
        int64_t suspect_mwh;     /* an implausible reading, kept to tell a
                                  * spike from a re-based counter */
} EnergyAccount;

typedef struct EnergyUpdate {
        int64_t delta_mwh;       /* >= 0, already added to cumulative_mwh */
        int64_t cumulative_mwh;
        unsigned flags;          /* EnergyFlags */
} EnergyUpdate;

void energy_account_init(EnergyAccount *a);

/* Returns 0, or -EINVAL (account unchanged) for a negative counter or power
 * or a sample not newer than the previous one. */
int energy_account_update(EnergyAccount *a, int64_t ts_ms, int64_t counter_mwh, int64_t power_mw, EnergyUpdate *ret);

/* kasamond's current estimate of the total; cumulative_mwh trails it when
 * the estimate moved down. */
int64_t energy_account_estimate(const EnergyAccount *a);

/* Restart: continue the cumulative; the next sample is a new baseline. */
void energy_account_restore(EnergyAccount *a, int64_t cumulative_mwh);

/* Restart, when the last counter reading was persisted too (call after
 * energy_account_restore()): the next sample is compared with it. lo and
 * hi as persisted; outside [counter, counter + quantum] (an older file
 * without them) they mean an unknown phase. */
void energy_account_resume(EnergyAccount *a, int64_t counter_mwh, int64_t lo_mwh, int64_t hi_mwh, int64_t ts_ms,
                           int64_t power_mw);
