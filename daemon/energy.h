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
 * Rules, per sample after the first:
 *  - counter grew: the increase is the delta;
 *  - counter fell: a reset, the new value is the energy since the reset; the
 *    energy between the previous sample and the reset is invisible to the
 *    counter, so the delta is max(new value, power x time estimate);
 *  - plausibility: with Pmax = max(previous power, current power) the delta
 *    may not exceed 2 * Pmax * dt + quantum (counters report whole Wh);
 *    above that it is replaced by the trapezoid (P0 + P1) / 2 * dt and
 *    flagged. The implausible reading is remembered: if the next sample
 *    continues plausibly from it, the device really re-based its counter
 *    and accounting follows the new counter; if the next sample continues
 *    from the old counter, the reading was a spike and is forgotten;
 *  - a gap (dt > gap_ms) is accounted from the counter and flagged; power x
 *    time says little over a gap, so only max_power_mw bounds it.
 *
 * Persistence across daemon restarts: store cumulative_mwh, counter_mwh,
 * ts_ms and power_mw after each update (the daemon does so with its
 * readings). After a restart call energy_account_restore() with the
 * cumulative and, when the counter was stored, energy_account_resume() with
 * the counter: the first new sample is then compared with it and the energy
 * used while the daemon was down is picked up (flagged as a gap). Without
 * resume() the first sample is a new baseline and that energy is lost. */

typedef enum EnergyFlags {
        ENERGY_FIRST       = 1 << 0, /* new baseline, delta 0 */
        ENERGY_RESET       = 1 << 1, /* the counter went down */
        ENERGY_IMPLAUSIBLE = 1 << 2, /* counter delta replaced by power x time */
        ENERGY_GAP         = 1 << 3, /* dt above gap_ms */
        ENERGY_RESYNC      = 1 << 4, /* followed a counter that jumped last time */
} EnergyFlags;

#define ENERGY_QUANTUM_MWH_DEFAULT 1000              /* 1 Wh */
#define ENERGY_GAP_MS_DEFAULT      (5 * 60 * 1000)   /* 5 min */
#define ENERGY_MAX_POWER_MW_DEFAULT (10 * 1000 * 1000) /* 10 kW, above any plug */

typedef struct EnergyAccount {
        /* Settings (energy_account_init() sets the defaults). */
        int64_t quantum_mwh;
        int64_t gap_ms;
        int64_t max_power_mw;

        /* State; the four marked (persist) are what a restart needs. */
        int64_t cumulative_mwh;  /* (persist) monotonic total */
        bool have_baseline;
        int64_t counter_mwh;     /* (persist) last counter reading believed */
        int64_t ts_ms;           /* (persist) time of the last sample */
        int64_t power_mw;        /* (persist) power at the last sample */
        int64_t credited_mwh;    /* counter value accounted up to (>= counter_mwh
                                  * when an estimate ran ahead of the counter) */
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

/* Restart: continue the cumulative; the next sample is a new baseline. */
void energy_account_restore(EnergyAccount *a, int64_t cumulative_mwh);

/* Restart, when the last counter reading was persisted too (call after
 * energy_account_restore()): the next sample is compared with it. */
void energy_account_resume(EnergyAccount *a, int64_t counter_mwh, int64_t ts_ms, int64_t power_mw);
