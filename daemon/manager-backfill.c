/* SPDX-License-Identifier: MIT */

/*
 * The steps of a backfill (manager-backfill.h). Each step is a request
 * queued on the device's connection; its reply, checked by backfill.c,
 * starts the next. The devices are looked up by id at every step, since
 * one may be removed while its backfill waits on a reply or on the store.
 */

#include "manager-backfill.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "kasa-smart.h"
#include "log.h"
#include "macro.h"
#include "readings.h"
#include "worker.h"

/* One writer at a time is all LMDB has; a second thread would wait. A
 * discovery of many plugs queues one write each. */
#define BACKFILL_THREADS 1
#define BACKFILL_QUEUED 1024

typedef struct Backfill Backfill;

struct Backfill {
        WorkerJob w;                /* first: the job is the backfill */
        Manager *manager;
        Backfill *next;
        char root_id[DEVICE_ID_MAX];
        char (*ids)[DEVICE_ID_MAX]; /* the meters to backfill, in order */
        size_t n_ids, target;
        ManagerBackfillFn cb;
        void *userdata;

        int today_year, today_month;
        int64_t today_start_ms;
        int year;                   /* of the monthstat asked; smart: of the quarter */
        int qmonth;                 /* smart: the quarter's first month */
        unsigned quarters;          /* smart: asked so far */
        int64_t q_start_s;
        BackfillMonth months[BACKFILL_MONTHS_MAX];
        size_t n_months, month;
        StoreImportedDay *days;
        size_t n_days;

        /* The worker's: inputs copied, results for done(). */
        Store *store;
        uint32_t number;
        size_t written;
        int job_error;

        unsigned imported;
};

static Backfill *backfill_free(Backfill *b) {
        if (!b)
                return NULL;
        free(b->ids);
        free(b->days);
        free(b);
        return NULL;
}

static void finish(Backfill *b, int error, int32_t device_err, const char *message) {
        Manager *m = b->manager;

        for (Backfill **p = &m->backfills; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        break;
                }
        b->cb(m, error, device_err, message, b->imported, b->userdata);
        backfill_free(b);
}

static int start_target(Backfill *b);

static void job_run(WorkerJob *j) {
        Backfill *b = (Backfill *) j;

        b->job_error = store_import_days(b->store, b->number, b->days, b->n_days, b->today_start_ms, &b->written);
}

static void job_done(WorkerJob *j, bool cancelled) {
        Backfill *b = (Backfill *) j;
        int r;

        if (cancelled)
                return finish(b, -ECANCELED, 0, "kasamond is stopping");
        if (b->job_error < 0)
                return finish(b, b->job_error, 0, NULL);
        b->imported += (unsigned) b->written;
        b->target++;
        if (b->target == b->n_ids)
                return finish(b, 0, 0, NULL);
        r = start_target(b);
        if (r < 0)
                finish(b, r, 0, NULL);
}

static int submit(Backfill *b, Device *d) {
        Manager *m = b->manager;
        int r;

        if (!m->backfill_worker) {
                r = worker_new(m->event, BACKFILL_THREADS, BACKFILL_QUEUED, &m->backfill_worker);
                if (r < 0)
                        return r;
        }
        b->w = (WorkerJob) { .run = job_run, .done = job_done };
        b->store = m->store;
        b->number = d->number;
        b->written = 0;
        b->job_error = 0;
        return worker_submit(m->backfill_worker, &b->w);
}

/* A failed step: the device's words, or what the parser refused. */
static void fail_reply(Backfill *b, int error, int32_t device_err, const char *what, const char *message) {
        char buf[256];

        if (error == -ECANCELED)
                return finish(b, error, 0, "the connection to the device was reset; try again");
        if (error == 0 && device_err == KASA_ERR_ABSENT) {
                snprintf(buf, sizeof(buf), "%s did not answer %s in its reply", b->ids[b->target], what);
                return finish(b, -EBADMSG, 0, buf);
        }
        if (error == 0 && device_err != 0) {
                snprintf(buf, sizeof(buf), "%s refused %s: err_code %" PRId32 " (%s)", b->ids[b->target], what,
                         device_err, kasa_err_to_string(device_err));
                return finish(b, -EREMOTEIO, device_err, buf);
        }
        if (message) {
                snprintf(buf, sizeof(buf), "%s sent a malformed reply to %s: %s", b->ids[b->target], what, message);
                return finish(b, -EBADMSG, 0, buf);
        }
        finish(b, error, 0, NULL);
}

static int append_days(Backfill *b, const StoreImportedDay *days, size_t n) {
        StoreImportedDay *p = reallocarray(b->days, b->n_days + MAX(n, (size_t) 1), sizeof(StoreImportedDay));

        if (!p)
                return -ENOMEM;
        b->days = p;
        memcpy(b->days + b->n_days, days, n * sizeof(StoreImportedDay));
        b->n_days += n;
        return 0;
}

static void on_daystat(Device *d, int error, const KasaResponse *resp, const char *message, void *userdata);

static int ask_daystat(Backfill *b, Device *d) {
        const BackfillMonth *mo = &b->months[b->month];
        _cleanup_free_ char *q = kasa_request_daystat(mo->year, mo->month, d->outlet >= 0 ? d->child_id : NULL);

        return q ? device_query(d, q, on_daystat, b) : -ENOMEM;
}

static void next_month(Backfill *b, Device *d) {
        int r;

        if (b->month < b->n_months)
                r = ask_daystat(b, d);
        else
                r = submit(b, d);
        if (r < 0)
                finish(b, r, 0, NULL);
}

static void on_daystat(Device *d, int error, const KasaResponse *resp, const char *message, void *userdata) {
        Backfill *b = userdata;
        const BackfillMonth *mo = &b->months[b->month];
        StoreImportedDay days[31];
        BackfillError err;
        char what[64];
        size_t n = 0;

        snprintf(what, sizeof(what), "emeter.get_daystat of %04d-%02d", mo->year, mo->month);
        if (error < 0 || resp->daystat_err != 0)
                return fail_reply(b, error, error < 0 ? 0 : resp->daystat_err, what, message);
        if (backfill_days(b->manager->calendar, resp->stats, resp->n_stats, mo->year, mo->month, days, &n, &err) < 0)
                return fail_reply(b, 0, 0, what, err.message);
        if (append_days(b, days, n) < 0)
                return finish(b, -ENOMEM, 0, NULL);
        b->month++;
        next_month(b, d);
}

static int month_cmp(const void *a, const void *b) {
        const BackfillMonth *x = a, *y = b;
        int i = x->year * 12 + x->month, j = y->year * 12 + y->month;
        return (i > j) - (i < j);
}

static void on_monthstat(Device *d, int error, const KasaResponse *resp, const char *message, void *userdata);

static int ask_monthstat(Backfill *b, Device *d) {
        _cleanup_free_ char *q = kasa_request_monthstat(b->year, d->outlet >= 0 ? d->child_id : NULL);

        return q ? device_query(d, q, on_monthstat, b) : -ENOMEM;
}

static void on_monthstat(Device *d, int error, const KasaResponse *resp, const char *message, void *userdata) {
        Backfill *b = userdata;
        BackfillMonth months[12];
        BackfillError err;
        char what[64];
        size_t n = 0;
        int r;

        snprintf(what, sizeof(what), "emeter.get_monthstat of %04d", b->year);
        if (error < 0 || resp->monthstat_err != 0)
                return fail_reply(b, error, error < 0 ? 0 : resp->monthstat_err, what, message);
        if (backfill_months(resp->stats, resp->n_stats, b->year, b->today_year, b->today_month, months, &n, &err) < 0)
                return fail_reply(b, 0, 0, what, err.message);
        for (size_t i = 0; i < n && b->n_months < BACKFILL_MONTHS_MAX; i++)
                b->months[b->n_months++] = months[i];
        if (b->year == b->today_year) {
                b->year--;
                r = ask_monthstat(b, d);
                if (r < 0)
                        finish(b, r, 0, NULL);
                return;
        }
        qsort(b->months, b->n_months, sizeof(BackfillMonth), month_cmp);
        b->month = 0;
        next_month(b, d);
}

/* Smart plugs: get_energy_data by day, a quarter at a time, from this one
 * back while they hold energy. */
static void on_energy_data(Device *d, int error, const KasaResponse *resp, const char *message, void *userdata);

static int ask_quarter(Backfill *b, Device *d) {
        const Calendar *cal = b->manager->calendar;
        int ny = b->qmonth == 10 ? b->year + 1 : b->year, nm = b->qmonth == 10 ? 1 : b->qmonth + 3;
        int64_t start = calendar_date_start(cal, b->year, b->qmonth, 1), end = calendar_date_start(cal, ny, nm, 1);
        _cleanup_free_ char *q = NULL;

        /* The first of a month exists in every zone there is. */
        if (start == INT64_MIN || end == INT64_MIN)
                return -ERANGE;
        b->q_start_s = start / 1000;
        b->quarters++;
        q = kasa_smart_request_energy_data(start / 1000, end / 1000, 1440, d->outlet >= 0 ? d->child_id : NULL);
        return q ? device_query(d, q, on_energy_data, b) : -ENOMEM;
}

static void on_energy_data(Device *d, int error, const KasaResponse *resp, const char *message, void *userdata) {
        Backfill *b = userdata;
        StoreImportedDay days[KASA_ENERGY_DATA_MAX];
        BackfillError err;
        char what[64];
        bool energy = false;
        size_t n = 0;
        int r;

        snprintf(what, sizeof(what), "get_energy_data of the quarter from %04d-%02d", b->year, b->qmonth);
        if (error < 0 || resp->energy_data_err != 0)
                return fail_reply(b, error, error < 0 ? 0 : resp->energy_data_err, what, message);
        if (backfill_quarter_days(b->manager->calendar, &resp->energy_data, b->year, b->qmonth, b->q_start_s, days,
                                  &n, &energy, &err) < 0)
                return fail_reply(b, 0, 0, what, err.message);
        if (append_days(b, days, n) < 0)
                return finish(b, -ENOMEM, 0, NULL);
        if (energy && b->quarters < BACKFILL_QUARTERS_MAX) {
                b->qmonth -= 3;
                if (b->qmonth < 1) {
                        b->qmonth = 10;
                        b->year--;
                }
                r = ask_quarter(b, d);
        } else {
                /* The dialect answers 0 for the days it holds nothing
                 * of: those before its first day with energy are not
                 * days it counted. */
                b->n_days = backfill_drop_leading_zeros(b->days, b->n_days);
                r = submit(b, d);
        }
        if (r < 0)
                finish(b, r, 0, NULL);
}

static int start_target(Backfill *b) {
        Device *d = manager_find(b->manager, b->ids[b->target]);

        if (!d)
                return -ENODEV;
        b->n_months = b->month = b->n_days = 0;
        b->year = b->today_year;
        if (device_root(d)->smart) {
                b->qmonth = backfill_quarter_month(b->today_month);
                b->quarters = 0;
                return ask_quarter(b, d);
        }
        return ask_monthstat(b, d);
}

int manager_backfill(Manager *m, Device *d, ManagerBackfillFn cb, void *userdata) {
        Device *root = device_root(d);
        Backfill *b;
        int64_t now = manager_now_ms(m);
        int day, r;

        if (!device_has_meter(d))
                return -ENOTTY;
        for (Backfill *i = m->backfills; i; i = i->next)
                if (strcmp(i->root_id, root->id) == 0)
                        return -EBUSY;
        b = calloc(1, sizeof(Backfill));
        if (!b)
                return -ENOMEM;
        b->ids = calloc(MAX(d->n_outlets, (size_t) 1), sizeof(*b->ids));
        if (!b->ids) {
                free(b);
                return -ENOMEM;
        }
        if (d->metered)
                strcpy(b->ids[b->n_ids++], d->id);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i] && d->outlets[i]->metered)
                        strcpy(b->ids[b->n_ids++], d->outlets[i]->id);
        strcpy(b->root_id, root->id);
        b->manager = m;
        b->cb = cb;
        b->userdata = userdata;
        calendar_date(m->calendar, now, &b->today_year, &b->today_month, &day);
        b->today_start_ms = calendar_day_start(m->calendar, now);

        r = start_target(b);
        if (r < 0)
                return backfill_free(b), r;
        b->next = m->backfills;
        m->backfills = b;
        return 0;
}

static void on_first_sight_done(Manager *m, int error, int32_t device_err, const char *message, unsigned imported,
                                void *userdata) {
        char *id = userdata;

        if (error < 0)
                log_warning_errno(error, "Backfill of %s from its own statistics failed, ignoring: %s", id,
                                  message ?: strerror(-error));
        else
                log_info("Backfill of %s: %u days imported from its own statistics", id, imported);
        free(id);
}

void manager_backfill_first_sight(Manager *m, Device *root) {
        char *id = strdup(root->id);
        int r;

        if (!id)
                return (void) log_oom();
        r = manager_backfill(m, root, on_first_sight_done, id);
        if (r < 0) {
                if (r != -ENOTTY && r != -EBUSY)
                        log_warning_errno(r, "Backfill of %s could not start, ignoring: %m", id);
                free(id);
        }
}

void manager_backfill_stop(Manager *m) {
        m->backfill_worker = worker_free(m->backfill_worker);
        /* What still waits for a device would hear from it no more: the
         * devices' connections are gone before this. */
        while (m->backfills)
                finish(m->backfills, -ECANCELED, 0, "kasamond is stopping");
}
