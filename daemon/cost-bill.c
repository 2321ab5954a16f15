/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "cost-internal.h"

i128 cost_div_round(i128 n, i128 d) {
        i128 q = n / d, rem = n % d;
        if (rem < 0)
                rem = -rem;
        if (2 * rem >= d)
                q += n < 0 ? -1 : 1;
        return q;
}

i128 cost_mul_div_round(i128 x, int64_t m, int64_t d) {
        /* x * m / d without forming x * m, which may not fit. */
        i128 q = x / d, r = x % d;
        return q * m + cost_div_round(r * m, d);
}

int cost_add_line(CostBucketBill *b, TariffLine kind, const Tariff *t, unsigned key, unsigned tier,
                  const char *name, int64_t rate, int64_t quantity, i128 exact) {
        for (size_t i = 0; i < b->n_lines; i++) {
                CostLine *l = &b->lines[i];
                if (l->kind == kind && l->tariff == t && l->key == key && l->tier == tier) {
                        /* A demand line's quantity is the peak, not a sum. */
                        l->quantity = kind == TARIFF_LINE_DEMAND ? MAX(l->quantity, quantity) : l->quantity + quantity;
                        l->exact += exact;
                        return 0;
                }
        }
        if (b->n_lines == b->n_allocated) {
                size_t n = b->n_allocated ? b->n_allocated * 2 : 8;
                void *p = realloc(b->lines, n * sizeof(CostLine));
                if (!p)
                        return -ENOMEM;
                b->lines = p;
                b->n_allocated = n;
        }
        b->lines[b->n_lines++] = (CostLine) { .kind = kind, .tariff = t, .name = name, .tier = tier, .key = key,
                                              .quantity = quantity, .rate = rate, .exact = exact };
        return 0;
}

static size_t tariff_index(const Tariff *const *tariffs, size_t n, const Tariff *t) {
        for (size_t i = 0; i < n; i++)
                if (tariffs[i] == t)
                        return i;
        return n;
}

/* qsort() has no context argument: the tariffs' order for compare_lines,
 * per thread, as the cost queries' threads finish bills at once. */
static _Thread_local const Tariff *const *sort_tariffs;
static _Thread_local size_t sort_n_tariffs;

static int compare_lines(const void *a, const void *b) {
        const CostLine *x = a, *y = b;
        size_t tx = tariff_index(sort_tariffs, sort_n_tariffs, x->tariff);
        size_t ty = tariff_index(sort_tariffs, sort_n_tariffs, y->tariff);
        if (tx != ty)
                return tx < ty ? -1 : 1;
        if (x->kind != y->kind)
                return x->kind < y->kind ? -1 : 1;
        if (x->key != y->key)
                return x->key < y->key ? -1 : 1;
        return x->tier < y->tier ? -1 : x->tier > y->tier;
}

static i128 pow10_128(unsigned n) {
        i128 p = 1;
        while (n-- > 0)
                p *= 10;
        return p;
}

int64_t cost_round_minor(i128 femto, unsigned digits) {
        return (int64_t) cost_div_round(femto, pow10_128(15 - digits));
}

int cost_finish(CostBill *bill, const Tariff *const *tariffs, size_t n_tariffs) {
        i128 unit = pow10_128(15 - bill->digits); /* femto per minor unit */
        int r;

        for (size_t bi = 0; bi < bill->n_buckets; bi++) {
                CostBucketBill *b = &bill->buckets[bi];
                for (size_t i = 0; i < b->n_lines; i++)
                        b->lines[i].amount = cost_round_minor(b->lines[i].exact, bill->digits);

                /* Taxes on the rounded lines, so a bill adds up on paper. */
                size_t n_lines = b->n_lines;
                for (size_t ti = 0; ti < n_tariffs; ti++) {
                        const Tariff *T = tariffs[ti];
                        for (size_t x = 0; x < T->n_taxes; x++) {
                                const TariffTax *tax = &T->taxes[x];
                                int64_t base = 0;
                                bool any = false;
                                for (size_t i = 0; i < n_lines; i++)
                                        if (b->lines[i].tariff == T && (tax->on & (1u << b->lines[i].kind))) {
                                                base += b->lines[i].amount;
                                                any = true;
                                        }
                                if (!any)
                                        continue;
                                if ((r = cost_add_line(b, TARIFF_LINE_TAX, T, (unsigned) x, 0, tax->name, tax->ppm, base,
                                                       (i128) base * unit * tax->ppm / 1000000)) < 0)
                                        return r;
                                b->lines[b->n_lines - 1].amount = (int64_t) cost_div_round((i128) base * tax->ppm, 1000000);
                        }
                }

                sort_tariffs = tariffs;
                sort_n_tariffs = n_tariffs;
                if (b->n_lines > 1)
                        qsort(b->lines, b->n_lines, sizeof(CostLine), compare_lines);
                for (size_t i = 0; i < b->n_lines; i++) {
                        b->sum[b->lines[i].kind] += b->lines[i].amount;
                        b->total += b->lines[i].amount;
                }
                for (unsigned k = 0; k < _TARIFF_LINE_MAX; k++)
                        bill->sum[k] += b->sum[k];
                bill->total += b->total;
                bill->energy_mwh += b->energy_mwh;
                bill->unpriced_mwh += b->unpriced_mwh;
        }
        return 0;
}

CostBill *cost_bill_free(CostBill *b) {
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n_buckets; i++)
                free(b->buckets[i].lines);
        free(b->buckets);
        free(b);
        return NULL;
}

/* Energy before x, in mWh scaled by K, the pieces being [t0, t1) with
 * their energy spread evenly. */
#define K INT64_C(1000000)
static i128 energy_before(const CostPiece *p, const int64_t *prefix, size_t n, int64_t x) {
        size_t lo = 0, hi = n; /* the first piece that ends after x */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (p[mid].t1 <= x)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        i128 e = (i128) prefix[lo] * K;
        if (lo < n && p[lo].t0 < x)
                e += (i128) p[lo].mwh * (x - p[lo].t0) * K / (p[lo].t1 - p[lo].t0);
        return e;
}

/* The window's average is piecewise linear in its start, so its maximum is
 * where the window starts at a piece's start or ends at a piece's end. */
int cost_peak_mw(const CostPiece *p, size_t n, int64_t window_ms, int64_t *ret) {
        *ret = 0;
        if (n == 0)
                return 0;
        _cleanup_free_ int64_t *prefix = malloc((n + 1) * sizeof(int64_t));
        if (!prefix)
                return -ENOMEM;
        prefix[0] = 0;
        for (size_t i = 0; i < n; i++)
                prefix[i + 1] = prefix[i] + p[i].mwh;

        i128 best = 0;
        for (size_t i = 0; i < n; i++) {
                int64_t starts[2] = { p[i].t0, p[i].t1 - window_ms };
                for (unsigned k = 0; k < 2; k++) {
                        i128 w = energy_before(p, prefix, n, starts[k] + window_ms) -
                                 energy_before(p, prefix, n, starts[k]);
                        best = w > best ? w : best;
                }
        }
        /* mWh over window_ms -> mW */
        *ret = (int64_t) (best * 3600000 / ((i128) window_ms * K));
        return 0;
}

static char *format_scaled(int64_t v, unsigned decimals, bool trim, char buf[static COST_AMOUNT_MAX]) {
        uint64_t a = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v, scale = 1;
        for (unsigned i = 0; i < decimals; i++)
                scale *= 10;
        int n = snprintf(buf, COST_AMOUNT_MAX, "%s%" PRIu64, v < 0 ? "-" : "", a / scale);
        if (decimals > 0 && n > 0 && n < COST_AMOUNT_MAX) {
                snprintf(buf + n, COST_AMOUNT_MAX - (size_t) n, ".%0*" PRIu64, (int) decimals, a % scale);
                if (trim) {
                        char *e = buf + strlen(buf) - 1;
                        while (*e == '0')
                                *e-- = 0;
                        if (*e == '.')
                                *e = 0;
                }
        }
        return buf;
}

char *cost_format_amount(int64_t minor, unsigned digits, char buf[static COST_AMOUNT_MAX]) {
        return format_scaled(minor, digits, false, buf);
}

char *cost_format_kwh(int64_t mwh, char buf[static COST_AMOUNT_MAX]) {
        return format_scaled((int64_t) cost_div_round(mwh, 1000), 3, false, buf);
}

static json_t *line_json(const CostLine *l, unsigned digits) {
        char q[COST_AMOUNT_MAX], r[COST_AMOUNT_MAX], a[COST_AMOUNT_MAX];
        const char *unit;

        switch (l->kind) {
        case TARIFF_LINE_ENERGY:
        case TARIFF_LINE_ADDER:
                unit = "kWh";
                format_scaled(l->quantity, 6, true, q); /* mWh */
                format_scaled(l->rate, 9, true, r);
                break;
        case TARIFF_LINE_DEMAND:
                unit = "kW";
                format_scaled(l->quantity, 6, true, q); /* mW */
                format_scaled(l->rate, 9, true, r);
                break;
        case TARIFF_LINE_TAX:
                unit = "percent";
                format_scaled(l->quantity, digits, false, q);
                format_scaled(l->rate, 4, true, r);
                break;
        default:
                unit = "days";
                format_scaled((int64_t) cost_div_round((i128) l->quantity * 1000000, COST_DAY_UNITS), 6, true, q);
                format_scaled(l->rate, 9, true, r);
                break;
        }
        json_t *o = json_pack("{s:s,s:s?,s:s?,s:s,s:s,s:s,s:s}", "kind", tariff_line_to_string(l->kind), "tariff",
                              l->tariff->name, "name", l->name, "quantity", q, "unit", unit, "rate", r, "amount",
                              format_scaled(l->amount, digits, false, a));
        if (o && (l->kind == TARIFF_LINE_ENERGY || l->kind == TARIFF_LINE_DEMAND) &&
            json_object_set_new(o, "tier", json_integer(l->tier)) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static int set_sums(json_t *o, const int64_t sum[static _TARIFF_LINE_MAX], int64_t total, int64_t energy_mwh,
                    int64_t unpriced_mwh, unsigned digits) {
        char buf[COST_AMOUNT_MAX];
        int r = json_object_set_new(o, "total", json_string(format_scaled(total, digits, false, buf)));
        for (unsigned k = 0; r >= 0 && k < _TARIFF_LINE_MAX; k++)
                r = json_object_set_new(o, tariff_line_to_string(k), json_string(format_scaled(sum[k], digits, false, buf)));
        if (r >= 0)
                r = json_object_set_new(o, "energy_kwh", json_string(cost_format_kwh(energy_mwh, buf)));
        if (r >= 0)
                r = json_object_set_new(o, "unpriced_kwh", json_string(cost_format_kwh(unpriced_mwh, buf)));
        return r < 0 ? -ENOMEM : 0;
}

json_t *cost_bill_to_json(const CostBill *b, const char *time_zone) {
        Calendar *cal = calendar_new(time_zone);
        json_t *o = json_pack("{s:s}", "currency", b->currency), *buckets = json_array();
        bool failed = !cal || !o || !buckets || set_sums(o, b->sum, b->total, b->energy_mwh, b->unpriced_mwh, b->digits) < 0;

        for (size_t i = 0; !failed && i < b->n_buckets; i++) {
                const CostBucketBill *k = &b->buckets[i];
                char s[CALENDAR_ISO8601_MAX], e[CALENDAR_ISO8601_MAX];
                json_t *lines = json_array();
                json_t *bo = json_pack("{s:s,s:s}", "start", calendar_format_iso8601(cal, k->start_ms, s), "end",
                                       calendar_format_iso8601(cal, k->end_ms, e));
                failed = !lines || !bo || set_sums(bo, k->sum, k->total, k->energy_mwh, k->unpriced_mwh, b->digits) < 0;
                for (size_t l = 0; !failed && l < k->n_lines; l++)
                        failed = json_array_append_new(lines, line_json(&k->lines[l], b->digits)) < 0;
                if (!failed && json_object_set_new(bo, "lines", TAKE_PTR(lines)) < 0)
                        failed = true;
                if (!failed && json_array_append_new(buckets, TAKE_PTR(bo)) < 0)
                        failed = true;
                json_decref(lines);
                json_decref(bo);
        }
        if (!failed && json_object_set_new(o, "buckets", TAKE_PTR(buckets)) < 0)
                failed = true;
        json_decref(buckets);
        calendar_free(cal);
        if (failed) {
                json_decref(o);
                return NULL;
        }
        return o;
}
