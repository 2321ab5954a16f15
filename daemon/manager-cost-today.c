/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "calendar.h"
#include "kasa-dbus.h"
#include "log.h"
#include "manager-cost-internal.h"
#include "store.h"

/* The cost properties, CostToday and CostMonth of the Manager and of each
 * EnergyMeter: today so far, priced again after each round, and the month
 * before today, priced once a day (or after a change of assignments).
 * Both are cost queries on the worker threads (manager-cost.c): the loop
 * only copies their inputs and takes their totals. */

/* Before now minus this, nothing more comes into the store's rollups: an
 * interval between samples at most the store's gap long is shared among
 * the periods it spans, a longer one goes where it ends; plus a margin for
 * a slow reply. CostToday's part before it is kept (cost_query_run_from()). */
#define TODAY_FINAL_MS (STORE_GAP_MS_DEFAULT + INT64_C(300000))

/* A failing price of the month before today is tried again after this,
 * doubling up to the second: each try reads a month of rollups. */
#define BASE_RETRY_MS INT64_C(60000)
#define BASE_RETRY_MAX_MS INT64_C(3600000)

static double major(const ManagerTariffs *mt, bool known, int64_t minor) {
        if (!known)
                return NAN;
        double d = (double) minor;
        for (unsigned i = 0; i < mt->digits; i++)
                d /= 10;
        return d;
}

double manager_cost_today(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        return mt ? major(mt, mt->known, mt->today) : NAN;
}

double manager_cost_month(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        return mt ? major(mt, mt->known && mt->base_known, mt->base + mt->today) : NAN;
}

const char *manager_currency(Manager *m) {
        return m->tariffs ? m->tariffs->currency : "";
}

static bool device_cost(Manager *m, Device *d, bool month, int64_t *sum) {
        ManagerTariffs *mt = m->tariffs;
        bool any = false;
        if (d->metered) {
                DeviceCost *c = g_hash_table_lookup(mt->costs, d->id);
                if (!c || !c->known || (month && !c->base_known))
                        return false;
                *sum += month ? c->base + c->today : c->today;
                return true;
        }
        for (size_t k = 0; k < d->n_outlets; k++)
                if (d->outlets[k] && device_cost(m, d->outlets[k], month, sum))
                        any = true;
        return any;
}

double manager_device_cost(Manager *m, Device *d, bool month) {
        int64_t sum = 0;
        if (!m->tariffs)
                return NAN;
        bool known = device_cost(m, d, month, &sum);
        return major(m->tariffs, known, sum);
}

/* The totals of a job's query: of the home (*ret_total) and of each of
 * devices (by id, as the job may list others). */
static int job_totals(CostJob *j, Device **devices, size_t n, int64_t *ret_total, int64_t *ret_devices,
                      bool *ret_known) {
        if (j->r < 0)
                return j->r;
        (void) cost_query_total(j->res, ret_total);
        for (size_t i = 0; i < n; i++) {
                ret_known[i] = false;
                for (size_t k = 0; k < j->snap.n_devices; k++)
                        if (strcmp(j->snap.devices[k].id, devices[i]->id) == 0) {
                                ret_known[i] = cost_query_device_total(j->res, k, &ret_devices[i]) >= 0;
                                break;
                        }
        }
        return 0;
}

static void emit_device_costs(Manager *m, Device *d) {
        int r;
        if (!m->bus)
                return;
        r = sd_bus_emit_properties_changed(m->bus, d->path, KASA_METER_IFACE, "CostToday", "CostMonth", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit the costs of %s, ignoring: %m", d->id);
}

/* The metered devices now, with arrays for their figures. */
typedef struct Figures {
        Device **devices;
        size_t n;
        int64_t *value;
        bool *known;
} Figures;

static void figures_done(Figures *f) {
        free(f->devices);
        free(f->value);
        free(f->known);
        *f = (Figures) {};
}

static int figures_init(Manager *m, Figures *ret) {
        GPtrArray *l = g_ptr_array_new();
        all_metered(m, l);
        *ret = (Figures) { .n = l->len };
        ret->devices = (Device **) g_ptr_array_free(l, false);
        ret->value = calloc(MAX(ret->n, (size_t) 1), sizeof(int64_t));
        ret->known = calloc(MAX(ret->n, (size_t) 1), sizeof(bool));
        /* An empty GPtrArray gives NULL. */
        if ((!ret->devices && ret->n > 0) || !ret->value || !ret->known) {
                figures_done(ret);
                return log_oom();
        }
        return 0;
}

static DeviceCost *device_entry(ManagerTariffs *mt, Device *d) {
        DeviceCost *c = g_hash_table_lookup(mt->costs, d->id);
        if (c)
                return c;
        c = calloc(1, sizeof(DeviceCost));
        char *id = strdup(d->id);
        if (!c || !id) {
                free(c);
                free(id);
                log_oom();
                return NULL;
        }
        g_hash_table_insert(mt->costs, id, c);
        return c;
}

/* A device's figures as they are now, emitted if they changed. */
static void set_device(Manager *m, Device *d, const DeviceCost *nc) {
        DeviceCost *c = device_entry(m->tariffs, d);
        if (!c || (nc->base == c->base && nc->today == c->today && nc->known == c->known &&
                   nc->base_known == c->base_known))
                return;
        *c = *nc;
        emit_device_costs(m, d);
        if (d->parent)
                emit_device_costs(m, d->parent);
}

/* The Manager's figures before a change, to emit them if it changed them. */
typedef struct Snapshot {
        char currency[4];
        double today, month;
} Snapshot;

static Snapshot snapshot(Manager *m) {
        Snapshot s = { .today = manager_cost_today(m), .month = manager_cost_month(m) };
        memcpy(s.currency, m->tariffs->currency, sizeof s.currency);
        return s;
}

static void emit_if_changed(Manager *m, const Snapshot *old) {
        Snapshot now = snapshot(m);
        int r;
        /* memcmp: NaN stays NaN. */
        if (!m->bus || (memcmp(&now.today, &old->today, sizeof now.today) == 0 &&
                        memcmp(&now.month, &old->month, sizeof now.month) == 0 &&
                        strcmp(now.currency, old->currency) == 0))
                return;
        r = sd_bus_emit_properties_changed(m->bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "Currency", "CostToday",
                                           "CostMonth", NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to emit the costs, ignoring: %m");
}

/* ---- the month before today ---- */

/* The base job done: the round takes it at once (unless the assignments
 * changed meanwhile). */
static void finish_base(CostJob *j, bool cancelled) {
        Manager *m = j->manager;
        ManagerTariffs *mt = m->tariffs;

        mt->base_pending = false;
        if (cancelled || j->generation != mt->generation) {
                cost_job_free(j);
                return;
        }
        cost_job_free(mt->base_done);
        mt->base_done = j;
        manager_tariffs_round(m);
}

/* A cost properties' job of [from, to) for day and the assignments now. */
static CostJob *new_job(Manager *m, const Figures *f, int64_t from, int64_t to, int64_t day,
                        void (*finish)(CostJob *j, bool cancelled)) {
        CostJob *j;

        if (cost_job_new(m, f->devices, f->n, from, to, COST_BUCKET_NONE, NULL, NULL, &j) < 0) {
                log_oom();
                return NULL;
        }
        j->finish = finish;
        j->base_day = day;
        j->generation = m->tariffs->generation;
        return j;
}

/* Onto the cost threads (*pending while it runs); a full queue is tried
 * again next round. */
static void submit(Manager *m, CostJob *j, bool *pending, const char *what) {
        _cleanup_free_ char *error = NULL;
        int r = cost_submit(m, j, &error);

        if (r < 0)
                log_debug_errno(r, "Failed to start pricing %s, trying again next round: %s", what, error ?: "");
        else
                *pending = true;
}

static void start_base(Manager *m, const Figures *f, int64_t from, int64_t day) {
        ManagerTariffs *mt = m->tariffs;
        CostJob *j;

        if (mt->base_pending || !(j = new_job(m, f, from, day, day, finish_base)))
                return;
        submit(m, j, &mt->base_pending, "this month");
}

/* A base that failed: the last good one stays (CostMonth keeps counting
 * today on it), tried again after a pause that doubles; said once. */
static void base_failed(Manager *m, int r, const char *error, int64_t now) {
        ManagerTariffs *mt = m->tariffs;

        mt->base_backoff_ms = mt->base_backoff_ms ? MIN(mt->base_backoff_ms * 2, BASE_RETRY_MAX_MS) : BASE_RETRY_MS;
        mt->base_retry_ms = now + mt->base_backoff_ms;
        mt->base_error_generation = mt->generation;
        if (mt->base_error == r)
                return;
        mt->base_error = r;
        char day[CALENDAR_ISO8601_MAX];
        if (mt->base_known)
                log_warning_errno(r, "Failed to price this month before today, CostMonth stays the month before %s "
                                  "as last priced plus today, trying again in a minute and less often after: %s",
                                  calendar_format_iso8601(m->calendar, mt->base_day, day), error ?: strerror(-r));
        else
                log_warning_errno(r, "Failed to price this month before today, CostMonth unknown, trying again in "
                                  "a minute and less often after: %s", error ?: strerror(-r));
}

/* Takes a base job done for this day, starts one when needed (not before
 * a failed one's pause is over). */
static void round_base(Manager *m, const Figures *f, int64_t now, int64_t day, int64_t month_start) {
        ManagerTariffs *mt = m->tariffs;
        CostJob *done = TAKE_PTR(mt->base_done);
        int r = 0;

        if (done && (done->base_day != day || done->generation != mt->generation))
                done = (cost_job_free(done), NULL);
        if (mt->base_day == day && mt->base_generation == mt->generation) {
                cost_job_free(done);
                return;
        }
        if (!done && day > month_start) {
                /* New assignments are priced at once, pause or not. */
                if (now >= mt->base_retry_ms || mt->base_error_generation != mt->generation)
                        start_base(m, f, month_start, day);
                return;
        }

        /* The first day of a month has nothing before it. */
        int64_t total = 0;
        memset(f->value, 0, f->n * sizeof(int64_t));
        memset(f->known, true, f->n * sizeof(bool));
        if (done)
                r = job_totals(done, f->devices, f->n, &total, f->value, f->known);
        if (r == -ENODATA) {
                /* Nothing priced the month before today: it cost nothing. */
                total = 0;
                memset(f->value, 0, f->n * sizeof(int64_t));
                memset(f->known, true, f->n * sizeof(bool));
                r = 0;
        }
        if (r < 0) {
                base_failed(m, r, done->error, now);
                cost_job_free(done);
                return;
        }
        cost_job_free(done);
        if (mt->base_error)
                log_info("Priced this month before today again: CostMonth is whole.");
        mt->base_error = 0;
        mt->base_backoff_ms = 0;
        mt->base_retry_ms = 0;
        mt->base = total;
        mt->base_known = true;
        mt->base_day = day;
        mt->base_generation = mt->generation;
        for (size_t i = 0; i < f->n; i++) {
                DeviceCost *c = device_entry(mt, f->devices[i]);
                if (!c)
                        return;
                DeviceCost nc = *c;
                nc.base = f->value[i];
                nc.base_known = f->known[i];
                set_device(m, f->devices[i], &nc);
        }
}

/* ---- today so far ---- */

/* Today's job done: its totals are CostToday, unless the day or the
 * assignments changed meanwhile (the next round prices again). */
static void finish_today(CostJob *j, bool cancelled) {
        Manager *m = j->manager;
        ManagerTariffs *mt = m->tariffs;
        _cleanup_(figures_done) Figures f = {};
        int r;

        mt->today_pending = false;
        if (cancelled || j->generation != mt->generation ||
            j->base_day != manager_day_start(m, manager_now_ms(m)) || figures_init(m, &f) < 0) {
                cost_job_free(j);
                return;
        }
        /* The part, brought up to the split, for the next round. */
        cost_job_free(mt->today_part);
        mt->today_part = TAKE_PTR(j->part);
        Snapshot old = snapshot(m);
        int64_t total = 0;
        r = job_totals(j, f.devices, f.n, &total, f.value, f.known);
        if (r >= 0) {
                unsigned digits;
                const char *cur = cost_query_currency(j->res, &digits);
                memcpy(mt->currency, cur, sizeof mt->currency);
                mt->digits = digits;
                mt->today = total;
        } else if (r != -ENODATA && r != mt->last_error)
                log_warning_errno(r, "Failed to price today's energy, CostToday and CostMonth unknown, ignoring: %s",
                                  j->error ?: strerror(-r));
        mt->last_error = r < 0 ? r : 0;
        mt->known = r >= 0;
        for (size_t i = 0; i < f.n; i++) {
                DeviceCost *c = device_entry(mt, f.devices[i]);
                if (!c)
                        break;
                DeviceCost nc = *c;
                nc.today = r >= 0 ? f.value[i] : c->today;
                nc.known = r >= 0 && f.known[i];
                set_device(m, f.devices[i], &nc);
        }
        emit_if_changed(m, &old);
        cost_job_free(j);
}

static bool same_devices(const CostJob *a, const CostJob *b) {
        const CostSnapshot *x = &a->snap, *y = &b->snap;
        if (x->n_devices != y->n_devices)
                return false;
        for (size_t i = 0; i < x->n_devices; i++)
                if (strcmp(x->devices[i].id, y->devices[i].id) != 0 || x->devices[i].number != y->devices[i].number)
                        return false;
        return true;
}

/* The part of today kept from the rounds before, if it still is of this
 * day, these assignments and devices, else a new one (empty: the job
 * prices it from the day's start). None before the first split. */
static void attach_part(Manager *m, CostJob *j, const Figures *f, int64_t now, int64_t day) {
        ManagerTariffs *mt = m->tariffs;
        CostJob *p = TAKE_PTR(mt->today_part);
        int64_t split = calendar_hour_start(m->calendar, now - TODAY_FINAL_MS);

        if (p && (p->base_day != day || p->generation != mt->generation || !same_devices(p, j)))
                p = (cost_job_free(p), NULL);
        if (split <= day) {
                cost_job_free(p);
                return;
        }
        if (!p) {
                if (cost_job_new(m, f->devices, f->n, day, day, COST_BUCKET_NONE, NULL, NULL, &p) < 0)
                        return;
                p->base_day = day;
                p->generation = mt->generation;
        }
        j->part = p;
        j->split_ms = split;
}

/* Prices today up to now on a worker; one at a time: a round that comes
 * while one runs leaves it be, the next round starts another. The part of
 * the day before the split is priced once an hour: each round prices the
 * energy after it only and adds it to the part's exact lines
 * (cost-query-from.c says why that is the same to the cent, and which
 * tariffs are priced whole: demand charges and minimums). */
static void start_today(Manager *m, const Figures *f, int64_t now, int64_t day) {
        ManagerTariffs *mt = m->tariffs;
        CostJob *j;

        if (mt->today_pending || !(j = new_job(m, f, day, now + 1, day, finish_today)))
                return;
        attach_part(m, j, f, now, day);
        submit(m, j, &mt->today_pending, "today");
}

void manager_tariffs_round(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        _cleanup_(figures_done) Figures f = {};
        bool found;

        if (!mt || figures_init(m, &f) < 0)
                return;
        int64_t now = manager_now_ms(m);
        int64_t day = manager_day_start(m, now), month_start = calendar_month_start(m->calendar, now);
        int64_t home = current_assignment(m, NULL, now, &found);
        Snapshot old = snapshot(m);

        if (mt->n_assignments == 0) {
                /* No tariff: nothing is priced, and nothing is asked. */
                mt->currency[0] = 0;
                mt->known = mt->base_known = false;
                mt->base_day = 0;
                mt->last_error = -ENODATA;
                for (size_t i = 0; i < f.n; i++)
                        set_device(m, f.devices[i], &(DeviceCost) {});
        } else {
                round_base(m, &f, now, day, month_start);
                start_today(m, &f, now, day);
        }
        emit_if_changed(m, &old);
        if (home != mt->active_home) {
                mt->active_home = home;
                emit_tariff_changes(m);
        }
}

void manager_cost_today_free(Manager *m) {
        ManagerTariffs *mt = m->tariffs;
        mt->today_part = (cost_job_free(mt->today_part), NULL);
        mt->base_done = (cost_job_free(mt->base_done), NULL);
}
