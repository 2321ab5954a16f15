/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "cost-query.h"
#include "cost-snapshot.h"
#include "energy-csv.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager-cost-internal.h"
#include "readings.h"

/* Rollups one cost query may read of one device: a year of minutes. */
#define ROLLUPS_MAX (1u << 20)
#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)

int manager_cost_bucket(const char *s, CostBucket *ret) {
        if (!s[0])
                *ret = COST_BUCKET_NONE;
        else if (strcmp(s, "day") == 0)
                *ret = COST_BUCKET_DAY;
        else if (strcmp(s, "month") == 0)
                *ret = COST_BUCKET_MONTH;
        else
                return -EINVAL;
        return 0;
}

static int add_device(GPtrArray *l, Device *d) {
        for (guint i = 0; i < l->len; i++)
                if (l->pdata[i] == d)
                        return 0;
        g_ptr_array_add(l, d);
        return 0;
}

void all_metered(Manager *m, GPtrArray *l) {
        for (guint i = 0; i < m->roots->len; i++) {
                Device *d = m->roots->pdata[i];
                if (d->metered)
                        add_device(l, d);
                for (size_t k = 0; k < d->n_outlets; k++)
                        if (d->outlets[k] && d->outlets[k]->metered)
                                add_device(l, d->outlets[k]);
        }
}

int manager_cost_devices(Manager *m, const char *const *paths, size_t n, Device ***ret, size_t *ret_n,
                         char **ret_error) {
        GPtrArray *l = g_ptr_array_new();

        if (n == 0)
                all_metered(m, l);
        for (size_t i = 0; i < n; i++) {
                Device *d = manager_find_path(m, paths[i]);
                if (!d) {
                        g_ptr_array_free(l, true);
                        (void) tariff_refuse(ret_error, "No device at %s.", paths[i]);
                        return -ENOENT;
                }
                if (!device_has_meter(d)) {
                        g_ptr_array_free(l, true);
                        (void) tariff_refuse(ret_error, "%s has no energy meter.", d->id);
                        return -ENOTTY;
                }
                if (d->metered)
                        add_device(l, d);
                for (size_t k = 0; k < d->n_outlets; k++)
                        if (d->outlets[k] && d->outlets[k]->metered)
                                add_device(l, d->outlets[k]);
        }
        *ret_n = l->len;
        *ret = (Device **) g_ptr_array_free(l, false);
        return 0;
}

int manager_cost_store_rollups(Store *store, const Calendar *cal, uint32_t number, StoreResolution res,
                               int64_t from, int64_t to, int64_t now, CostInterval **ret, size_t *ret_n) {
        _cleanup_free_ StoreRollup *rows = NULL;
        size_t n = 0, k = 0;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = store_query_rollup(store, number, res, from, to, ROLLUPS_MAX, &rows, &n);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        CostInterval *v = calloc(MAX(n, (size_t) 1), sizeof(CostInterval));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int64_t start = rows[i].period_start_ms;
                int64_t end = res == STORE_DAY ? calendar_next_day(cal, start)
                                               : start + (res == STORE_HOUR ? HOUR_MS : MINUTE_MS);
                if (rows[i].energy_mwh <= 0)
                        continue;
                /* The period still open holds the energy of the poll
                 * intervals up to its last sample only: spread over the
                 * whole period, a range ending now would cut some of it
                 * off. A gap's energy (no time covered) is the last
                 * sample's. */
                if (end > now) {
                        end = MAX(rows[i].last_ts_ms, start + 1);
                        start = MAX(start, MIN(end - rows[i].covered_ms, end - 1));
                }
                v[k++] = (CostInterval) { start, end, rows[i].energy_mwh };
        }
        *ret = v;
        *ret_n = k;
        return 0;
}

/* ---- cost queries, on the loop or off it ----
 *
 * A job holds copies of a query's inputs (the tariffs by reference, kept
 * alive by it), so that a worker thread can price while the loop goes on
 * polling and changing its own; the store is read from that thread (its
 * queries allow it). */

/* The largest answer: the system bus drops a connection that sends a
 * message over its limit (32 MiB by default). */
#define COST_JSON_MAX (30u << 20)

/* Queries running at once, and waiting beyond them: more are refused. */
#define COST_THREADS 2u
#define COST_QUEUED 6u

void cost_job_free(CostJob *j) {
        if (!j)
                return;
        cost_job_free(j->part);
        cost_snapshot_done(&j->snap);
        free(j->error);
        free(j->json);
        cost_query_result_free(j->res);
        free(j);
}

/* The answer as text (takes o), refused when the bus could not carry it. */
static void job_set_json(CostJob *j, json_t *o) {
        j->json = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
        json_decref(o);
        j->r = j->json ? 0 : -ENOMEM;
        size_t size = j->json ? strlen(j->json) : 0;
        if (size > COST_JSON_MAX) {
                j->json = mfree(j->json);
                (void) tariff_refuse(&j->error,
                                     "The answer would take %zu MiB, more than %u: ask for a shorter range, "
                                     "fewer devices or larger buckets.",
                                     size >> 20, COST_JSON_MAX >> 20);
                j->r = -E2BIG;
        }
}

/* CostToday's query, on from its part (manager-cost-internal.h): the part
 * priced again from the day's start when the split moves (once an hour),
 * then the rest of the day on from it. Again, not on from itself: energy
 * before the day that changed meanwhile (a Backfill of the cycle's
 * earlier days, which fill the tiers) counts from the next hour on. A part
 * that cannot be priced (no tariff before the split: -ENODATA) stays empty
 * until the next split; the day is priced whole meanwhile. */
static int run_on_part(CostJob *j, const CostQuery *q) {
        CostJob *p = j->part;
        int r = 0;

        if (p->to_ms < j->split_ms) {
                CostQuery qp = *q;
                CostQueryResult *res = NULL;
                qp.to_ms = j->split_ms;
                r = cost_query_run(&qp, &res, NULL);
                cost_query_result_free(p->res);
                p->res = r >= 0 ? res : NULL;
                p->to_ms = j->split_ms;
        }
        if (!p->res)
                return cost_query_run(q, &j->res, &j->error);
        return cost_query_run_from(q, p->res, p->to_ms, &j->res, &j->error);
}

/* Prices the job: on a worker thread, or on the loop for a small query. */
static void cost_job_run(CostJob *j) {
        CostSnapshotQuery sq;

        j->r = cost_snapshot_query_init(&sq, &j->snap);
        if (j->r < 0)
                return;
        sq.q.from_ms = j->from_ms;
        sq.q.to_ms = j->to_ms;
        sq.q.bucket = j->bucket;
        if (j->part)
                j->r = run_on_part(j, &sq.q);
        else
                j->r = cost_query_run(&sq.q, &j->res, &j->error);
        if (j->r >= 0 && j->want_json)
                job_set_json(j, cost_query_to_json(&sq.q, j->res));
        cost_snapshot_query_done(&sq);
}

/* PriceEnergy's work: parsing the CSV (up to ENERGY_CSV_ROWS_MAX rows) and
 * pricing it, on a worker thread. */
static void price_csv_run(CostJob *j) {
        _cleanup_free_ CostInterval *iv = NULL;
        _cleanup_cost_bill_ CostBill *bill = NULL;
        const Tariff *t = j->snap.what_if_owned ?: j->snap.what_if_ref->tariff;
        size_t n = 0;

        j->r = energy_csv_parse(j->csv, strlen(j->csv), "csv", &iv, &n, &j->error);
        if (j->r < 0)
                return;
        CostRequest req = {
                .tariffs = &t,
                .n_tariffs = 1,
                .intervals = iv,
                .n_intervals = n,
                .time_zone = j->snap.time_zone,
                .from_ms = iv[0].start_ms,
                .to_ms = iv[n - 1].end_ms,
                .bucket = j->bucket,
        };
        j->r = cost_compute(&req, &bill, &j->error);
        if (j->r < 0)
                return;
        json_t *o = cost_bill_to_json(bill, j->snap.time_zone);
        if (o)
                json_object_set_new(o, "time_zone", json_string(j->snap.time_zone ?: "local"));
        job_set_json(j, o);
}

static void job_run(WorkerJob *w) {
        CostJob *j = (CostJob *) w;
        if (j->csv)
                price_csv_run(j);
        else
                cost_job_run(j);
}

/* finish() takes the job. */
static void job_done(WorkerJob *w, bool cancelled) {
        CostJob *j = (CostJob *) w;
        j->finish(j, cancelled);
}

/* A job of the manager's inputs now; what_if (parsed by the caller) is
 * taken either way. */
int cost_job_new(Manager *m, Device **devices, size_t n, int64_t from_ms, int64_t to_ms, CostBucket bucket,
                        LoadedTariff *what_if_ref, Tariff *what_if_owned, CostJob **ret) {
        CostJob *j = calloc(1, sizeof(CostJob));
        int r;

        if (!j) {
                tariff_free(what_if_owned);
                return -ENOMEM;
        }
        j->w = (WorkerJob) { .run = job_run, .done = job_done };
        j->manager = m;
        j->from_ms = from_ms;
        j->to_ms = to_ms;
        j->bucket = bucket;
        r = cost_snapshot_init(&j->snap, m, devices, n, what_if_ref, what_if_owned);
        if (r < 0) {
                cost_job_free(j);
                return r;
        }
        *ret = j;
        return 0;
}

int cost_submit(Manager *m, CostJob *j, char **ret_error) {
        ManagerTariffs *mt = m->tariffs;
        int r;

        if (!mt->worker) {
                r = worker_new(m->event, COST_THREADS, COST_QUEUED, &mt->worker);
                if (r < 0) {
                        cost_job_free(j);
                        (void) tariff_refuse(ret_error, "Failed to start the cost queries' threads: %s", strerror(-r));
                        return r;
                }
        }
        r = worker_submit(mt->worker, &j->w);
        if (r < 0) {
                cost_job_free(j);
                (void) tariff_refuse(ret_error, "%u cost queries are running or waiting already, try again later.",
                                     worker_pending(mt->worker));
                return r;
        }
        return 0;
}

void manager_cost_stop(Manager *m) {
        if (m->tariffs)
                m->tariffs->worker = worker_free(m->tariffs->worker);
}

/* A what-if tariff: an object path (*ret_loaded) or a tariff's text
 * (*ret_owned, parsed here). */
static int what_if_tariff(Manager *m, const char *spec, LoadedTariff **ret_loaded, Tariff **ret_owned,
                          char **ret_error) {
        Parsed *p = NULL;
        int n;

        *ret_loaded = NULL;
        *ret_owned = NULL;
        if (spec[0] == '/') {
                LoadedTariff *t = manager_tariff_find_path(m, spec);
                if (!t) {
                        (void) tariff_refuse(ret_error, "No tariff at %s.", spec);
                        return -ENOENT;
                }
                if (!t->tariff)
                        return tariff_refuse(ret_error, "Tariff %" PRId64 " does not parse any longer.", t->row.id);
                *ret_loaded = t;
                return 0;
        }
        n = parse_format(detect_format(spec), spec, &p, ret_error);
        if (n < 0)
                return n;
        if (n != 1) {
                parsed_free(p, (size_t) n);
                return tariff_refuse(ret_error, "urdb: items: expected one tariff to price with, got %d", n);
        }
        *ret_owned = TAKE_PTR(p[0].tariff);
        parsed_free(p, 1);
        return 0;
}

static void finish_reply(CostJob *j, bool cancelled) {
        if (cancelled)
                j->reply(-ECANCELED, NULL, "kasamond is stopping.", j->userdata);
        else
                j->reply(j->r, j->json, j->error, j->userdata);
        cost_job_free(j);
}

int manager_cost_start(Manager *m, Device **devices, size_t n, int64_t from_ms, int64_t to_ms, CostBucket bucket,
                       const char *what_if, ManagerCostDone reply, void *userdata, char **ret_error) {
        LoadedTariff *loaded = NULL;
        Tariff *owned = NULL;
        CostJob *j;
        int r;

        if (what_if) {
                r = what_if_tariff(m, what_if, &loaded, &owned, ret_error);
                if (r < 0)
                        return r;
        }
        r = cost_job_new(m, devices, n, from_ms, to_ms, bucket, loaded, owned, &j);
        if (r < 0)
                return r;
        j->want_json = true;
        j->finish = finish_reply;
        j->reply = reply;
        j->userdata = userdata;
        return cost_submit(m, j, ret_error);
}

int manager_price_energy_start(Manager *m, const char *tariff, const char *csv, const char *time_zone,
                               CostBucket bucket, ManagerCostDone reply, void *userdata, char **ret_error) {
        LoadedTariff *loaded = NULL;
        Tariff *owned = NULL;
        CostJob *j;
        int r;

        r = what_if_tariff(m, tariff, &loaded, &owned, ret_error);
        if (r < 0)
                return r;
        r = cost_job_new(m, NULL, 0, 0, 0, bucket, loaded, owned, &j);
        if (r < 0)
                return r;
        const char *tz = time_zone[0] ? time_zone : m->config.time_zone;
        free(j->snap.time_zone);
        j->snap.time_zone = tz && *tz ? strdup(tz) : NULL;
        if (tz && *tz && !j->snap.time_zone) {
                cost_job_free(j);
                return -ENOMEM;
        }
        j->csv = csv;
        j->finish = finish_reply;
        j->reply = reply;
        j->userdata = userdata;
        return cost_submit(m, j, ret_error);
}

