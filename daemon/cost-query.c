/* SPDX-License-Identifier: MIT */

/* Assignments + tariffs + stored energy -> the cost engine's requests;
 * the energy grids they are built from are cost-grid.c's. */
#include "log.h"
#include "macro.h"

#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "cost-grid.h"
#include "cost-query-internal.h"

typedef struct Segment {
        int64_t from, until;
        const Tariff *tariff;
} Segment;

typedef struct Segments {
        Segment *s;
        size_t n;
} Segments;

#define refuse(ret_error, ...) error_set(ret_error, -EINVAL, __VA_ARGS__)

static int push_segment(Segments *l, int64_t from, int64_t until, const Tariff *t) {
        if (!t || from >= until)
                return 0;
        Segment *n = reallocarray(l->s, l->n + 1, sizeof(Segment));
        if (!n)
                return -ENOMEM;
        l->s = n;
        l->s[l->n++] = (Segment) { from, until, t };
        return 0;
}

static const Tariff *find_tariff(const CostQuery *q, int64_t id) {
        for (size_t i = 0; i < q->n_tariffs; i++)
                if (q->tariffs[i].id == id)
                        return q->tariffs[i].tariff;
        return NULL;
}

/* The segments the assignments of device (NULL: the home) make: each
 * assignment runs until the next of the same target; tariff 0 makes none. */
static int timeline(const CostQuery *q, const char *device, Segments *ret, char **ret_error) {
        const Tariff *cur = NULL;
        int64_t since = 0;
        int r;

        for (size_t i = 0; i < q->n_assignments; i++) {
                const TariffAssignment *a = &q->assignments[i];
                if (device ? !a->device || strcmp(a->device, device) != 0 : a->device != NULL)
                        continue;
                const Tariff *t = a->tariff ? find_tariff(q, a->tariff) : NULL;
                if (a->tariff && !t)
                        return refuse(ret_error, "assignment %" PRId64 ": no tariff %" PRId64, a->id, a->tariff);
                r = push_segment(ret, since, a->since_ms, cur);
                if (r < 0)
                        return r;
                cur = t;
                since = a->since_ms;
        }
        return push_segment(ret, since, INT64_MAX, cur);
}

/* base with over's segments cut out of it (over is sorted and disjoint). */
static int subtract(const Segments *base, const Segments *over, Segments *ret) {
        for (size_t i = 0; i < base->n; i++) {
                int64_t t = base->s[i].from;
                for (size_t j = 0; j < over->n && t < base->s[i].until; j++) {
                        if (over->s[j].until <= t || over->s[j].from >= base->s[i].until)
                                continue;
                        int r = push_segment(ret, t, over->s[j].from, base->s[i].tariff);
                        if (r < 0)
                                return r;
                        t = MAX(t, over->s[j].until);
                }
                int r = push_segment(ret, t, base->s[i].until, base->s[i].tariff);
                if (r < 0)
                        return r;
        }
        return 0;
}

static Clipped *clip(CostQueryResult *res, const Segment *s, bool own, bool strip) {
        Clipped *c = malloc(sizeof(Clipped));
        if (!c)
                return NULL;
        c->t = *s->tariff;
        c->own = own;
        c->strip = strip;
        c->origin = s->tariff;
        c->t.valid_from_ms = MAX(c->t.valid_from_ms, s->from);
        c->t.valid_until_ms = MIN(c->t.valid_until_ms, s->until);
        if (strip) {
                /* The home's charges, billed once on the home's bill. */
                c->t.n_fixed = 0;
                c->t.minimum = (TariffCharge) {};
                c->t.n_demand_periods = 0;
                c->t.demand_map = (TariffMap) {};
                c->t.n_flat_demand = 0;
                memset(c->t.flat_demand_month, TARIFF_NO_PERIOD, sizeof(c->t.flat_demand_month));
        }
        g_ptr_array_add(res->clipped, c);
        return c;
}

/* Appends the clipped tariffs of segs that meet [from, to). */
static int add_tariffs(CostQueryResult *res, const Segments *segs, bool own, bool strip, int64_t from, int64_t to,
                       GPtrArray *out) {
        for (size_t i = 0; i < segs->n; i++) {
                const Segment *s = &segs->s[i];
                if (s->until <= from || s->from >= to ||
                    MAX(s->from, s->tariff->valid_from_ms) >= MIN(s->until, s->tariff->valid_until_ms))
                        continue;
                Clipped *c = clip(res, s, own, strip);
                if (!c)
                        return -ENOMEM;
                g_ptr_array_add(out, &c->t);
        }
        return 0;
}

static bool has_tiers(const Tariff *t) {
        for (size_t p = 0; p < t->n_periods; p++)
                if (t->periods[p].n_tiers > 1)
                        return true;
        return false;
}

/* Where tiers begin counting for a range from `from`: the start of the
 * billing cycle (or day) containing it; `from` for a tariff without tiers. */
static int64_t tier_start(const Calendar *cal, const Tariff *t, int64_t from) {
        if (!has_tiers(t))
                return from;
        if (t->daily_tiers)
                return calendar_day_start(cal, from);
        int64_t month = calendar_month_start(cal, from), s = month;
        for (unsigned i = 1; i < t->cycle_start_day; i++)
                s = calendar_next_day(cal, s);
        if (s <= from)
                return s;
        s = calendar_month_start(cal, month - 1);
        for (unsigned i = 1; i < t->cycle_start_day; i++)
                s = calendar_next_day(cal, s);
        return s;
}

static bool hours_blur(const Tariff *t) {
        if (t->n_demand_periods > 0 || t->n_flat_demand > 0)
                return true;
        for (size_t p = 0; p < t->energy_map.n_profiles; p++)
                for (unsigned m = 0; m < TARIFF_MINUTES_PER_DAY; m++)
                        if (m % 60 != 0 && t->energy_map.profiles[p][m] != t->energy_map.profiles[p][m - 1])
                                return true;
        return false;
}

static int fetch(const CostQuery *q, const char *device, bool minutes, int64_t from, int64_t to, Intervals *out) {
        CostInterval *v = NULL;
        size_t n = 0;
        if (from >= to)
                return 0;
        int r = q->ops->energy(q->userdata, device, minutes, from, to, &v, &n);
        if (r < 0)
                return r;
        return intervals_append(out, v, n);
}

static int cuts_add(Cuts *c, const Segments *segs) {
        for (size_t i = 0; i < segs->n; i++) {
                const Segment *s = &segs->s[i];
                int64_t lo = MAX(s->from, s->tariff->valid_from_ms), hi = MIN(s->until, s->tariff->valid_until_ms);
                if (lo >= hi)
                        continue;
                int r = cuts_add_hour(c, lo);
                if (r >= 0)
                        r = cuts_add_hour(c, hi);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The device's energy over [from, to): hours, minutes at partial ends and
 * in the hours of cuts; whole days before days_until (a lookback that
 * only fills tiers). */
static int device_energy(const CostQuery *q, const char *device, bool minutes, const Cuts *cuts, int64_t from,
                         int64_t days_until, int64_t to, Intervals *out) {
        int r;

        if (days_until > from) {
                CostInterval *v = NULL;
                size_t n = 0;
                r = q->ops->days(q->userdata, device, from, days_until, &v, &n);
                if (r < 0)
                        return r;
                r = intervals_append(out, v, n);
                if (r < 0)
                        return r;
                from = days_until;
        }
        int64_t a = cost_floor_to(from + HOUR_MS - 1, HOUR_MS), b = cost_floor_to(to, HOUR_MS);

        if (minutes || a >= b)
                return fetch(q, device, true, from, to, out);
        r = fetch(q, device, true, from, a, out);
        for (size_t k = 0; r >= 0 && k < cuts->n; k++) {
                int64_t h = cuts->hours[k];
                if (h < a || h >= b)
                        continue;
                r = fetch(q, device, false, a, h, out);
                if (r >= 0)
                        r = fetch(q, device, true, h, h + HOUR_MS, out);
                a = h + HOUR_MS;
        }
        if (r >= 0)
                r = fetch(q, device, false, a, b, out);
        if (r >= 0)
                r = fetch(q, device, true, b, to, out);
        return r;
}

/* Adds the parts of iv outside the own segments to the home's energy,
 * shared by time. */
static int home_pieces(const CostInterval *iv, const Segments *own, HomeSum *h) {
        int64_t t = iv->start_ms, d = iv->end_ms - iv->start_ms;
        for (size_t j = 0; j <= own->n && t < iv->end_ms; j++) {
                int64_t cut = j < own->n ? MAX(t, MIN(own->s[j].from, iv->end_ms)) : iv->end_ms;
                if (cut > t) {
                        CostInterval p = { t, cut,
                                           cost_share(iv->energy_mwh, cut - iv->start_ms, d) -
                                                   cost_share(iv->energy_mwh, t - iv->start_ms, d) };
                        int r = home_sum_add(h, p);
                        if (r < 0)
                                return r;
                }
                if (j < own->n)
                        t = MAX(t, MIN(own->s[j].until, iv->end_ms));
        }
        return 0;
}

typedef struct PartContext {
        const CostQuery *q;
        size_t device;
} PartContext;

/* A device bill's part to q->part(), named by the query's own tariff. */
static int forward_part(const CostPart *p, void *userdata) {
        const PartContext *c = userdata;
        const Clipped *t = (const Clipped *) p->tariff; /* t is its first member */
        CostQueryPart qp = { .part = p };
        if (t)
                qp = (CostQueryPart) { p, t->origin, t->t.valid_from_ms, t->t.valid_until_ms };
        return c->q->part(c->device, &qp, c->q->part_userdata);
}

/* device: SIZE_MAX for the home's bill, whose parts nobody asks for. */
static int price(const CostQuery *q, size_t device, GPtrArray *tariffs, const Intervals *iv, CostBill **ret,
                 char **ret_error) {
        PartContext ctx = { q, device };
        if (tariffs->len == 0) {
                *ret = NULL;
                return 0;
        }
        CostRequest req = {
                .tariffs = (const Tariff *const *) tariffs->pdata,
                .n_tariffs = tariffs->len,
                .intervals = iv->v,
                .n_intervals = iv->n,
                .time_zone = q->time_zone,
                .from_ms = q->from_ms,
                .to_ms = q->to_ms,
                .bucket = q->bucket,
                .part = q->part && device != SIZE_MAX ? forward_part : NULL,
                .part_userdata = &ctx,
        };
        return cost_compute(&req, ret, ret_error);
}

CostQueryResult *cost_query_result_free(CostQueryResult *r) {
        if (!r)
                return NULL;
        cost_bill_free(r->home);
        for (size_t i = 0; i < r->n_devices; i++)
                cost_bill_free(r->devices[i]);
        free(r->devices);
        free(r->bucket_totals);
        if (r->clipped)
                g_ptr_array_unref(r->clipped);
        free(r);
        return NULL;
}

static void segments_done(Segments *s) {
        free(s->s);
        *s = (Segments) {};
}

static void ptr_array_unrefp(GPtrArray **a) {
        if (*a)
                g_ptr_array_unref(*a);
}

static void calendar_freep(Calendar **c) {
        calendar_free(*c);
}

/* Same currency everywhere, or the sums mean nothing. */
static int check_currency(CostQueryResult *res, const Tariff *t, char **ret_error) {
        if (!res->currency[0]) {
                memcpy(res->currency, t->currency, sizeof res->currency);
                res->digits = t->currency_digits;
                return 0;
        }
        if (strcmp(res->currency, t->currency) != 0)
                return refuse(ret_error, "tariffs: expected one currency, got %s and %s (tariff %s)", res->currency,
                              t->currency, t->name ? t->name : "?");
        return 0;
}

/* Adds the lines of bill that own tariffs priced to the result's sums. */
static void add_own_lines(CostQueryResult *res, const CostBill *b) {
        for (size_t k = 0; k < b->n_buckets; k++)
                for (size_t l = 0; l < b->buckets[k].n_lines; l++) {
                        const CostLine *line = &b->buckets[k].lines[l];
                        if (!((const Clipped *) line->tariff)->own)
                                continue;
                        res->sum[line->kind] += line->amount;
                        res->total += line->amount;
                        res->bucket_totals[k] += line->amount;
                        if (line->kind == TARIFF_LINE_ENERGY)
                                res->energy_mwh += line->quantity;
                }
}

int cost_query_sum_up(CostQueryResult *res) {
        /* The buckets are the range's, the same in every bill. */
        const CostBill *any = res->home;
        for (size_t i = 0; !any && i < res->n_devices; i++)
                any = res->devices[i];
        size_t n_buckets = any ? any->n_buckets : 0;
        res->bucket_totals = calloc(MAX(n_buckets, (size_t) 1), sizeof(int64_t));
        if (!res->bucket_totals)
                return -ENOMEM;
        if (res->home) {
                memcpy(res->sum, res->home->sum, sizeof res->sum);
                res->total = res->home->total;
                res->energy_mwh = res->home->energy_mwh;
                res->unpriced_mwh = res->home->unpriced_mwh;
                for (size_t k = 0; k < n_buckets; k++)
                        res->bucket_totals[k] = res->home->buckets[k].total;
        }
        for (size_t i = 0; i < res->n_devices; i++)
                if (res->devices[i]) {
                        add_own_lines(res, res->devices[i]);
                        if (!res->home)
                                res->unpriced_mwh += res->devices[i]->unpriced_mwh;
                }
        res->priced = true;
        return 0;
}

int cost_query_run(const CostQuery *q, CostQueryResult **ret, char **ret_error) {
        _cleanup_(cost_query_result_freep) CostQueryResult *res = calloc(1, sizeof(CostQueryResult));
        _cleanup_(calendar_freep) Calendar *cal = NULL;
        _cleanup_(ptr_array_unrefp) GPtrArray *home_tariffs = g_ptr_array_new();
        _cleanup_free_ bool *own_minutes = NULL;
        Segments home = {}, *own = NULL;
        Cuts cuts = {};
        Intervals home_iv = {};
        HomeSum sum = {};
        bool home_minutes = false, zone_minutes;
        int r;

        if (!res || !home_tariffs)
                return -ENOMEM;
        if (q->from_ms >= q->to_ms)
                return refuse(ret_error, "range: expected from before to");
        cal = calendar_new(q->time_zone);
        if (!cal)
                return refuse(ret_error, "time zone %s: expected an IANA zone name", q->time_zone ? q->time_zone : "local");
        res->clipped = g_ptr_array_new_with_free_func(free);
        res->devices = calloc(MAX(q->n_devices, (size_t) 1), sizeof(CostBill *));
        own = calloc(MAX(q->n_devices, (size_t) 1), sizeof(Segments));
        own_minutes = calloc(MAX(q->n_devices, (size_t) 1), sizeof(bool));
        if (!res->devices || !own || !own_minutes) {
                free(own);
                return -ENOMEM;
        }
        res->n_devices = q->n_devices;

        /* The tariffs of the range and of the billing cycles it begins in:
         * no cycle starts more than a month before the month of `from`. */
        int64_t window = calendar_month_start(cal, calendar_month_start(cal, q->from_ms) - 1);
        int64_t lookback = q->from_ms;

        if (q->what_if)
                r = push_segment(&home, INT64_MIN, INT64_MAX, q->what_if);
        else
                r = timeline(q, NULL, &home, ret_error);
        for (size_t i = 0; r >= 0 && !q->what_if && i < q->n_devices; i++)
                r = timeline(q, q->devices[i].id, &own[i], ret_error);
        if (r < 0)
                goto finish;

        /* Which tariffs take part decides the currency and the resolution. */
        r = add_tariffs(res, &home, false, false, window, q->to_ms, home_tariffs);
        for (size_t i = 0; r >= 0 && i < q->n_devices; i++) {
                _cleanup_(ptr_array_unrefp) GPtrArray *mine = g_ptr_array_new();
                r = mine ? add_tariffs(res, &own[i], true, false, window, q->to_ms, mine) : -ENOMEM;
                for (guint k = 0; r >= 0 && k < mine->len; k++) {
                        r = check_currency(res, mine->pdata[k], ret_error);
                        own_minutes[i] = own_minutes[i] || hours_blur(mine->pdata[k]);
                        lookback = MIN(lookback, tier_start(cal, mine->pdata[k], q->from_ms));
                }
        }
        for (guint k = 0; r >= 0 && k < home_tariffs->len; k++) {
                r = check_currency(res, home_tariffs->pdata[k], ret_error);
                home_minutes = home_minutes || hours_blur(home_tariffs->pdata[k]);
                lookback = MIN(lookback, tier_start(cal, home_tariffs->pdata[k], q->from_ms));
        }
        if (r < 0)
                goto finish;
        if (!res->currency[0]) {
                r = -ENODATA;
                if (ret_error && !(*ret_error = strdup("no tariff: add one and activate it")))
                        r = -ENOMEM;
                goto finish;
        }
        /* Days before `from` fill tiers alone: day rollups do, unless a
         * tariff's part starts or ends among them. */
        int64_t days_until = q->ops->days ? calendar_day_start(cal, q->from_ms) : lookback;
        for (guint k = 0; days_until > lookback && k < res->clipped->len; k++) {
                const Tariff *t = &((const Clipped *) res->clipped->pdata[k])->t;
                if ((t->valid_from_ms > lookback && t->valid_from_ms < q->from_ms) ||
                    (t->valid_until_ms > lookback && t->valid_until_ms < q->from_ms))
                        days_until = lookback;
        }
        r = cuts_add(&cuts, &home);
        for (size_t i = 0; r >= 0 && i < q->n_devices; i++)
                r = cuts_add(&cuts, &own[i]);
        if (r < 0)
                goto finish;
        cuts_sort(&cuts);
        zone_minutes = calendar_hour_start(cal, q->from_ms) % HOUR_MS != 0 ||
                       calendar_hour_start(cal, q->to_ms) % HOUR_MS != 0;
        r = q->devices_only ? 0 : home_sum_init(&sum, lookback);
        if (r < 0)
                goto finish;

        for (size_t i = 0; i < q->n_devices; i++) {
                _cleanup_(ptr_array_unrefp) GPtrArray *tariffs = g_ptr_array_new();
                Segments shared = {};
                Intervals iv = {};

                /* The device's own bill needs minutes for its own tariff,
                 * or for the home's without the charges stripped from it
                 * (demand is the home's). */
                r = tariffs ? subtract(&home, &own[i], &shared) : -ENOMEM;
                if (r >= 0)
                        r = add_tariffs(res, &own[i], true, false, window, q->to_ms, tariffs);
                if (r >= 0)
                        r = add_tariffs(res, &shared, false, true, window, q->to_ms, tariffs);
                bool minutes = q->minutes || zone_minutes || own_minutes[i];
                for (guint k = 0; r >= 0 && !minutes && k < tariffs->len; k++)
                        minutes = hours_blur(tariffs->pdata[k]);
                if (r >= 0)
                        r = device_energy(q, q->devices[i].id, minutes || home_minutes, &cuts, lookback,
                                          days_until, q->to_ms, &iv);
                for (size_t k = 0; r >= 0 && !q->devices_only && k < iv.n; k++)
                        r = home_pieces(&iv.v[k], &own[i], &sum);
                if (r >= 0 && !minutes && home_minutes)
                        r = intervals_coarsen(&iv, &cuts, cost_floor_to(MAX(lookback, days_until) + HOUR_MS - 1, HOUR_MS),
                                cost_floor_to(q->to_ms, HOUR_MS));
                if (r >= 0)
                        r = price(q, i, tariffs, &iv, &res->devices[i], ret_error);
                segments_done(&shared);
                intervals_done(&iv);
                if (r < 0)
                        goto finish;
        }

        if (!q->devices_only) {
                r = home_sum_pieces(&sum, &home_iv);
                if (r >= 0)
                        r = price(q, SIZE_MAX, home_tariffs, &home_iv, &res->home, ret_error);
                if (r < 0)
                        goto finish;
        }

        r = cost_query_sum_up(res);
        if (r < 0)
                goto finish;
        *ret = TAKE_PTR(res);
        r = 0;
finish:
        segments_done(&home);
        free(cuts.hours);
        for (size_t i = 0; own && i < q->n_devices; i++)
                segments_done(&own[i]);
        free(own);
        intervals_done(&home_iv);
        home_sum_done(&sum);
        return r;
}

int cost_query_total(const CostQueryResult *r, int64_t *ret) {
        if (!r->priced)
                return -ENODATA;
        *ret = r->total;
        return 0;
}

int cost_query_device_total(const CostQueryResult *r, size_t i, int64_t *ret) {
        if (i >= r->n_devices || !r->devices[i])
                return -ENODATA;
        *ret = r->devices[i]->total;
        return 0;
}

const char *cost_query_currency(const CostQueryResult *r, unsigned *ret_digits) {
        if (ret_digits)
                *ret_digits = r->digits;
        return r->currency;
}

static int set_amount(json_t *o, const char *key, int64_t v, unsigned digits) {
        char buf[COST_AMOUNT_MAX];
        return json_object_set_new(o, key, json_string(cost_format_amount(v, digits, buf)));
}

static int set_time(json_t *o, const char *key, const Calendar *cal, int64_t ms) {
        char buf[CALENDAR_ISO8601_MAX];
        return json_object_set_new(o, key, json_string(calendar_format_iso8601(cal, ms, buf)));
}

json_t *cost_query_to_json(const CostQuery *q, const CostQueryResult *r) {
        _cleanup_(calendar_freep) Calendar *cal = calendar_new(q->time_zone);
        json_t *o = json_object(), *devices = json_array(), *buckets = json_array();
        char buf[COST_AMOUNT_MAX];
        int k = cal && o && devices && buckets ? 0 : -1;

        if (k >= 0)
                k = json_object_set_new(o, "currency", json_string(r->currency));
        if (k >= 0)
                k = json_object_set_new(o, "time_zone", json_string(q->time_zone && *q->time_zone ? q->time_zone : "local"));
        if (k >= 0)
                k = set_time(o, "from", cal, q->from_ms);
        if (k >= 0)
                k = set_time(o, "to", cal, q->to_ms);
        if (k >= 0)
                k = set_amount(o, "total", r->total, r->digits);
        for (unsigned l = 0; k >= 0 && l < _TARIFF_LINE_MAX; l++)
                k = set_amount(o, tariff_line_to_string(l), r->sum[l], r->digits);
        if (k >= 0)
                k = json_object_set_new(o, "energy_kwh", json_string(cost_format_kwh(r->energy_mwh, buf)));
        if (k >= 0)
                k = json_object_set_new(o, "unpriced_kwh", json_string(cost_format_kwh(r->unpriced_mwh, buf)));
        if (k >= 0 && r->home)
                k = json_object_set_new(o, "home", cost_bill_to_json(r->home, q->time_zone));
        for (size_t i = 0; k >= 0 && i < r->n_devices; i++) {
                json_t *d = r->devices[i] ? cost_bill_to_json(r->devices[i], q->time_zone) : json_object();
                if (!d || json_object_set_new(d, "id", json_string(q->devices[i].id)) < 0 ||
                    json_object_set_new(d, "alias", q->devices[i].alias ? json_string(q->devices[i].alias) : json_null()) < 0) {
                        json_decref(d);
                        k = -1;
                } else if (json_array_append_new(devices, d) < 0)
                        k = -1;
        }
        const CostBill *any = r->home;
        for (size_t i = 0; !any && i < r->n_devices; i++)
                any = r->devices[i];
        for (size_t i = 0; k >= 0 && any && i < any->n_buckets; i++) {
                json_t *b = json_object();
                if (!b || set_time(b, "start", cal, any->buckets[i].start_ms) < 0 ||
                    set_time(b, "end", cal, any->buckets[i].end_ms) < 0 ||
                    set_amount(b, "total", r->bucket_totals[i], r->digits) < 0 || json_array_append_new(buckets, b) < 0)
                        k = -1;
        }
        if (k >= 0)
                k = json_object_set(o, "devices", devices);
        if (k >= 0)
                k = json_object_set(o, "buckets", buckets);
        json_decref(devices);
        json_decref(buckets);
        if (k < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}
