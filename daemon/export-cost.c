/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export-cost.h"

/* One line of a device's bill, and what of it the rows got so far. */
typedef struct Line {
        const Tariff *tariff;
        int64_t from_ms, until_ms;
        TariffLine kind;
        unsigned key, tier;
        __int128 exact;   /* femto-units, since the device's first row */
        int64_t reported; /* minor units, the rows' sum */
} Line;

enum {
        ROW_PRICED = 1 << 0,   /* a part of it has a tariff */
        ROW_UNPRICED = 1 << 1, /* a part of it has none */
};

struct ExportPricer {
        const CostQuery *q;
        bool minutes;
        bool have_currency;
        unsigned digits;
        bool have_device;
        size_t device;
        Line *lines;
        size_t n_lines, n_allocated;

        /* The call in progress. */
        const ExportPeriod *rows;
        size_t n_rows, row;
        uint8_t *flags;
        ExportCost *out;
        int error;
};

int export_pricer_new(const CostQuery *q, bool minutes, ExportPricer **ret) {
        ExportPricer *p = calloc(1, sizeof(ExportPricer));
        if (!p)
                return -ENOMEM;
        p->q = q;
        p->minutes = minutes;
        *ret = p;
        return 0;
}

ExportPricer *export_pricer_free(ExportPricer *p) {
        if (!p)
                return NULL;
        free(p->lines);
        free(p);
        return NULL;
}

static int no_energy(void *userdata, const char *device, bool minutes, int64_t from, int64_t to, CostInterval **ret,
                     size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        return 0;
}

static const CostSourceOps no_energy_ops = { .energy = no_energy };

static bool has_own_assignment(const CostQuery *q, const char *id) {
        for (size_t i = 0; i < q->n_assignments; i++)
                if (q->assignments[i].device && strcmp(q->assignments[i].device, id) == 0)
                        return true;
        return false;
}

int export_pricer_currency(ExportPricer *p, int64_t from_ms, int64_t to_ms, char ret_currency[static 4],
                           unsigned *ret_digits, char **ret_error) {
        _cleanup_(cost_query_result_freep) CostQueryResult *res = NULL;
        _cleanup_free_ CostQueryDevice *own = calloc(MAX(p->q->n_devices, (size_t) 1), sizeof(CostQueryDevice));
        CostQuery q = *p->q;
        int r;

        if (!own)
                return -ENOMEM;
        /* The home's tariffs, and the devices' own: only a device with an
         * assignment of its own can bring another currency. */
        q.n_devices = 0;
        for (size_t i = 0; !q.what_if && i < p->q->n_devices; i++)
                if (has_own_assignment(p->q, p->q->devices[i].id))
                        own[q.n_devices++] = p->q->devices[i];
        q.devices = own;
        q.ops = &no_energy_ops;
        q.from_ms = from_ms;
        q.to_ms = to_ms;
        q.bucket = COST_BUCKET_NONE;
        q.devices_only = true;
        r = cost_query_run(&q, &res, ret_error);
        if (r < 0)
                return r;
        memcpy(ret_currency, cost_query_currency(res, &p->digits), 4);
        *ret_digits = p->digits;
        p->have_currency = true;
        return 0;
}

/* Gives row i what its lines grew by since the row before, rounded. */
static void finish_row(ExportPricer *p, size_t i) {
        ExportCost *c = &p->out[i];
        for (size_t k = 0; k < p->n_lines; k++) {
                Line *l = &p->lines[k];
                int64_t now = cost_round_minor(l->exact, p->digits), d = now - l->reported;
                l->reported = now;
                if (l->kind == TARIFF_LINE_ENERGY)
                        c->energy += d;
                else
                        c->adders += d;
        }
        c->priced = (p->flags[i] & ROW_PRICED) || !(p->flags[i] & ROW_UNPRICED);
}

static Line *find_line(ExportPricer *p, const CostQueryPart *qp) {
        const CostPart *x = qp->part;
        for (size_t k = 0; k < p->n_lines; k++) {
                Line *l = &p->lines[k];
                if (l->tariff == qp->tariff && l->from_ms == qp->from_ms && l->until_ms == qp->until_ms &&
                    l->kind == x->kind && l->key == x->key && l->tier == x->tier)
                        return l;
        }
        if (p->n_lines == p->n_allocated) {
                size_t n = p->n_allocated ? p->n_allocated * 2 : 8;
                Line *m = reallocarray(p->lines, n, sizeof(Line));
                if (!m)
                        return NULL;
                p->lines = m;
                p->n_allocated = n;
        }
        Line *l = &p->lines[p->n_lines++];
        *l = (Line) { .tariff = qp->tariff, .from_ms = qp->from_ms, .until_ms = qp->until_ms, .kind = x->kind,
                      .key = x->key, .tier = x->tier };
        return l;
}

/* Parts come in time order: the rows before a part's start are done.
 * A part between rows (energy of a finer rollup with no row of its own)
 * goes with the next row, so that the rows still add up to the bill. */
static int on_part(size_t device, const CostQueryPart *qp, void *userdata) {
        ExportPricer *p = userdata;
        const CostPart *x = qp->part;

        while (p->row + 1 < p->n_rows && p->rows[p->row].end_ms <= x->start_ms)
                finish_row(p, p->row++);
        if (!qp->tariff) {
                p->flags[p->row] |= ROW_UNPRICED;
                return 0;
        }
        Line *l = find_line(p, qp);
        if (!l)
                return -ENOMEM;
        l->exact += x->exact;
        p->flags[p->row] |= ROW_PRICED;
        return 0;
}

int export_pricer_price(void *userdata, size_t device, const ExportPeriod *rows, size_t n, ExportCost *ret,
                        char **ret_error) {
        _cleanup_(cost_query_result_freep) CostQueryResult *res = NULL;
        _cleanup_free_ uint8_t *flags = NULL;
        ExportPricer *p = userdata;
        int r;

        *ret_error = NULL;
        if (n == 0)
                return 0;
        if (device >= p->q->n_devices || !p->have_currency)
                return -EINVAL;
        if (!p->have_device || p->device != device) {
                /* A device's rows add up to its own bill. */
                p->n_lines = 0;
                p->device = device;
                p->have_device = true;
        }
        flags = calloc(n, sizeof(uint8_t));
        if (!flags)
                return -ENOMEM;
        memset(ret, 0, n * sizeof(ExportCost));
        p->rows = rows;
        p->n_rows = n;
        p->row = 0;
        p->flags = flags;
        p->out = ret;

        CostQuery q = *p->q;
        q.devices = &p->q->devices[device];
        q.n_devices = 1;
        q.from_ms = rows[0].start_ms;
        q.to_ms = rows[n - 1].end_ms;
        q.bucket = COST_BUCKET_NONE;
        q.minutes = p->minutes;
        q.devices_only = true;
        q.part = on_part;
        q.part_userdata = p;
        r = cost_query_run(&q, &res, ret_error);
        if (r == -ENODATA) {
                /* No tariff prices any of these rows. */
                *ret_error = mfree(*ret_error);
                for (size_t i = 0; i < n; i++)
                        flags[i] = ROW_UNPRICED;
                r = 0;
        }
        if (r >= 0)
                while (p->row < n)
                        finish_row(p, p->row++);
        p->rows = NULL;
        p->flags = NULL;
        p->out = NULL;
        return r;
}
