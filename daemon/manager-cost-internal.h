/* SPDX-License-Identifier: MIT */
#pragma once

/* What manager-cost.c (cost queries on the worker threads) and
 * manager-cost-today.c (the cost properties) share: the job a query is. */

#include "cost-query.h"
#include "cost-snapshot.h"
#include "manager-tariff-internal.h"

typedef struct CostJob CostJob;
struct CostJob {
        WorkerJob w;
        Manager *manager; /* in done() only */
        CostSnapshot snap;
        int64_t from_ms, to_ms;
        CostBucket bucket;
        bool want_json;
        /* PriceEnergy: the caller's CSV, priced with what_if (kept alive
         * by the caller until done). NULL: a query of the store. */
        const char *csv;

        int r;
        char *error, *json;
        CostQueryResult *res;

        /* What done() does with it; takes the job. */
        void (*finish)(CostJob *j, bool cancelled);
        ManagerCostDone reply;
        void *userdata;
        int64_t base_day; /* the cost properties' jobs: the local day */
        uint64_t generation; /* and the assignments they priced */
        /* CostToday's: the part of the day priced before (a job of
         * [from_ms, to_ms) holding the tariffs its result points at, res
         * NULL before its first run), to be brought up to split_ms, where
         * everything before is final; the rest of the day is priced on
         * from it (cost_query_run_from()). The job owns it while it runs;
         * done() hands it back. */
        CostJob *part;
        int64_t split_ms;
};

/* A job of the manager's inputs now (a CostSnapshot); what_if (parsed by
 * the caller) is taken either way. */
int cost_job_new(Manager *m, Device **devices, size_t n, int64_t from_ms, int64_t to_ms, CostBucket bucket,
                 LoadedTariff *what_if_ref, Tariff *what_if_owned, CostJob **ret);
void cost_job_free(CostJob *j);
/* Onto the worker threads (started at the first); takes j either way.
 * -EAGAIN when the queue is full, with a message in *ret_error. */
int cost_submit(Manager *m, CostJob *j, char **ret_error);
