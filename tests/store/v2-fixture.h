/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The samples of tests/store/data/v2: two devices, one sample a minute,
 * made by a formula so that v2-fixture-make.c (which wrote the store with
 * the format 2 code) and test-store.c (which reads it with today's) agree
 * without a copy of the data.
 */

#include <stdint.h>

#include "store.h"

#define V2_T0 INT64_C(1767571200000)   /* 2026-01-05 00:00 UTC */
#define V2_STEP_MS INT64_C(60000)
#define V2_DEVICES 2
#define V2_FIRST_DEVICE 7
/* In the fixture: 2.5 hours; the test appends the rest of the third. */
#define V2_WRITTEN 150
#define V2_ALL 180

static inline StoreSample v2_sample(uint32_t device, unsigned i) {
        int64_t power = 1000 * (int64_t) device + (int64_t) ((i * 37u) % 500u) * 10;
        int64_t energy = 500 * (int64_t) device;

        /* Energy: each minute adds its power's share, rounded down. */
        for (unsigned j = 1; j <= i; j++)
                energy += (1000 * (int64_t) device + (int64_t) ((j * 37u) % 500u) * 10) / 60;
        return (StoreSample) {
                .device = device,
                .ts_ms = V2_T0 + (int64_t) i * V2_STEP_MS + (int64_t) device * 100,
                .power_mw = power,
                .voltage_mv = 230000 + (int64_t) (i % 7),
                .current_ma = power / 230,
                .energy_mwh = energy,
        };
}
