/* SPDX-License-Identifier: MIT */
#pragma once

/* What a cost query reads of the manager, copied on the loop: the tariffs
 * (by reference, kept alive while the copy is), the assignments, the
 * devices, the time zone and the time; the store by pointer (its queries
 * may run on any thread). A worker thread prices from the copy while the
 * loop goes on changing its own (GetCost, the month's base, an export's
 * costs). */

#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "cost-query.h"
#include "manager-tariff-internal.h"

typedef struct CostSnapshotDevice {
        char *id, *alias;
        uint32_t number;
} CostSnapshotDevice;

typedef struct CostSnapshot {
        LoadedTariff **tariffs;
        size_t n_tariffs;
        LoadedTariff *what_if_ref;
        Tariff *what_if_owned;
        TariffAssignment *assignments;
        size_t n_assignments;
        CostSnapshotDevice *devices;
        size_t n_devices;
        Store *store;
        char *time_zone;
        int64_t now_ms;
} CostSnapshot;

/* The manager's inputs now, for devices; what_if (a loaded tariff or one
 * parsed by the caller, or neither) prices everything instead of the
 * assignments. what_if_owned is taken on every path. On the loop. */
int cost_snapshot_init(CostSnapshot *s, Manager *m, Device **devices, size_t n, LoadedTariff *what_if_ref,
                       Tariff *what_if_owned);
/* On the loop (it drops tariff references); a zeroed snapshot is fine. */
void cost_snapshot_done(CostSnapshot *s);

/* A CostQuery of a snapshot, its energy read from the store: the arrays
 * and the source it points at. Range, bucket and options are the
 * caller's to set; any thread may run it, one at a time. */
typedef struct CostSnapshotQuery {
        CostQuery q;
        CostQueryTariff *tariffs;
        CostQueryDevice *devices;
        const CostSnapshot *snapshot;
        Calendar *cal;
} CostSnapshotQuery;

int cost_snapshot_query_init(CostSnapshotQuery *sq, const CostSnapshot *s);
void cost_snapshot_query_done(CostSnapshotQuery *sq);
