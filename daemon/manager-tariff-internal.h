/* SPDX-License-Identifier: MIT */
#pragma once

/* What manager-tariff.c (tariffs, assignments) and manager-cost.c (costs,
 * the cost properties) share. */

#include <glib.h>

#include "log.h"
#include "manager-tariff.h"
#include "worker.h"

typedef struct DeviceCost {
        int64_t base;  /* this month before today, minor units */
        int64_t today; /* today up to now */
        bool known, base_known;
} DeviceCost;

struct ManagerTariffs {
        TariffDb *db;
        GPtrArray *list; /* LoadedTariff*, by id */
        TariffAssignment *assignments;
        size_t n_assignments;

        /* The cost properties (manager-cost-today.c). After each round
         * today so far is priced (its cycle's earlier days fill the tiers
         * as day rollups); the month before today is priced once a day (or
         * after a change of tariffs), and CostMonth is the two together.
         * Both are cost queries on the worker threads. */
        char currency[4];
        unsigned digits;
        int64_t active_home;
        int64_t base_day; /* local day the base is of; 0: compute again */
        uint64_t generation, base_generation; /* of the assignments */
        int64_t base, today;
        bool known, base_known;
        /* The jobs running; the base job done, for the next round. */
        bool base_pending, today_pending;
        struct CostJob *base_done;
        struct CostJob *today_part; /* today before the split, priced (manager-cost-internal.h) */
        /* A base that failed: its error (said once), when to try again,
         * and of which assignments. */
        int base_error;
        int64_t base_backoff_ms, base_retry_ms;
        uint64_t base_error_generation;
        Worker *worker; /* GetCost, GetCostWith, PriceEnergy and the properties */
        GHashTable *costs; /* device id -> DeviceCost */
        int last_error;    /* of the round, said once */
};

/* One parsed tariff with the text to keep of it. */
typedef struct Parsed {
        Tariff *tariff;
        char *text;
} Parsed;

LoadedTariff *loaded_ref(LoadedTariff *t);
void loaded_unref(void *t);

void parsed_free(Parsed *p, size_t n);
/* The tariffs text holds: one (own format) or one per URDB item. */
int parse_format(TariffFormat f, const char *text, Parsed **ret, char **ret_error);
/* The project's format says "format"; URDB items never do. */
TariffFormat detect_format(const char *text);

/* The tariff id assigned to device (NULL: the home) at now; 0: none or
 * the home's. */
int64_t current_assignment(Manager *m, const char *device, int64_t now, bool *found);
void all_metered(Manager *m, GPtrArray *l);
/* At teardown, once the cost threads are stopped: the jobs kept. */
void manager_cost_today_free(Manager *m);
void emit_tariff_changes(Manager *m);
#define tariff_refuse(ret_error, ...) error_set(ret_error, -EINVAL, __VA_ARGS__)
