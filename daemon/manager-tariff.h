/* SPDX-License-Identifier: MIT */
#pragma once

/* The manager's tariffs: the tariff database, the parsed tariffs, costs of
 * recorded energy and the cost properties, for the bus glue (bus-tariff.c,
 * bus-manager-tariff.c, bus-energy.c) to call. Failures return a negative
 * errno with a message in *ret_error (free()) that the caller passes on:
 * -EBADMSG or -EINVAL (a bad tariff, CSV or range: the parser's or the
 * engine's words), -ENOENT (no such tariff or device), -ENODATA (no
 * tariff prices it), -EBUSY (a tariff still assigned), -ENOTTY (a device
 * without a meter), -E2BIG (a cost answer too big for the bus). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "cost.h"
#include "db-tariff.h"
#include "manager.h"
#include "tariff.h"

typedef struct LoadedTariff {
        /* The list's reference and a running cost query's: a tariff
         * removed meanwhile is freed when the query is done. On the loop
         * only; the query's thread only reads tariff. */
        unsigned n_ref;
        Manager *manager;
        TariffRow row;
        Tariff *tariff;
        char *path;
} LoadedTariff;

int manager_tariffs_open(Manager *m);
void manager_tariffs_free(Manager *m);

/* By id, for the bus's enumerator. */
size_t manager_tariff_count(Manager *m);
LoadedTariff *manager_tariff_get(Manager *m, size_t i);
LoadedTariff *manager_tariff_find_path(Manager *m, const char *path);

/* The project's format (urdb false) or OpenEI URDB JSON (one tariff per
 * item). *ret: the new tariffs, an array owned by the caller (the tariffs
 * are the manager's). */
int manager_tariff_add(Manager *m, bool urdb, const char *text, LoadedTariff ***ret, size_t *ret_n, char **ret_error);
int manager_tariff_remove(Manager *m, LoadedTariff *t, char **ret_error);
/* t NULL: the devices go back to the home's tariff. since_ms 0: now. */
int manager_tariff_activate(Manager *m, LoadedTariff *t, Device **devices, size_t n, int64_t since_ms,
                            char **ret_error);

bool manager_tariff_is_active(Manager *m, const LoadedTariff *t);
/* Object paths of the devices t prices now as their own: strv. */
int manager_tariff_devices(Manager *m, const LoadedTariff *t, char ***ret);
char *manager_tariff_describe(Manager *m, const LoadedTariff *t);

/* Resolves object paths into the metered devices they mean: none, every
 * metered device; a strip, its metered outlets. */
int manager_cost_devices(Manager *m, const char *const *paths, size_t n, Device ***ret, size_t *ret_n,
                         char **ret_error);
/* The outcome of a cost query: the JSON, or an error (as above; -EAGAIN
 * too many queries, -ECANCELED kasamond stopping) with its message. */
typedef void (*ManagerCostDone)(int r, const char *json, const char *error, void *userdata);
/* Prices on a worker thread and calls done on the loop when it is done
 * (once, unless it fails at once). what_if: NULL (the assignments), a
 * tariff object path or a tariff's text (own format or URDB, told apart
 * by content). -EAGAIN when too many queries run or wait already. */
int manager_cost_start(Manager *m, Device **devices, size_t n, int64_t from_ms, int64_t to_ms, CostBucket bucket,
                       const char *what_if, ManagerCostDone done, void *userdata, char **ret_error);
/* Waits for the queries running, cancels those waiting: before the store
 * goes. */
void manager_cost_stop(Manager *m);
/* PriceEnergy: parses csv (energy-csv.h) and prices it with tariff (as
 * what_if above) in time_zone ("": kasamond's) on a worker thread, then
 * calls done on the loop, as manager_cost_start(). csv is read from that
 * thread: the caller keeps it unchanged until done is called. */
int manager_price_energy_start(Manager *m, const char *tariff, const char *csv, const char *time_zone,
                               CostBucket bucket, ManagerCostDone done, void *userdata, char **ret_error);
/* "", "day" or "month"; -EINVAL otherwise. */
int manager_cost_bucket(const char *s, CostBucket *ret);

/* The store's rollups of device number (minutes, hours or local days)
 * whose period starts in [from, to), as the cost engine's intervals (the
 * source of every cost query; the benchmark calls it too). The period
 * still open at now ends at its last sample. */
int manager_cost_store_rollups(Store *store, const Calendar *cal, uint32_t number, StoreResolution res,
                               int64_t from, int64_t to, int64_t now, CostInterval **ret, size_t *ret_n);

/* Once per poll round: CostToday and CostMonth again. */
void manager_tariffs_round(Manager *m);
/* Major units; NaN when no tariff prices it. */
double manager_cost_today(Manager *m);
double manager_cost_month(Manager *m);
const char *manager_currency(Manager *m);
double manager_device_cost(Manager *m, Device *d, bool month);
