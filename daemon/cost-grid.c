/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cost-grid.h"

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

int64_t cost_floor_to(int64_t t, int64_t unit) {
        int64_t q = t / unit;
        return (t % unit != 0 && t < 0 ? q - 1 : q) * unit;
}

int64_t cost_share(int64_t energy, int64_t part, int64_t whole) {
        return (int64_t) ((__int128) energy * part / whole);
}

int intervals_append(Intervals *l, CostInterval *v, size_t n) {
        if (n == 0) {
                free(v);
                return 0;
        }
        if (l->n == 0) {
                free(l->v);
                l->v = v;
                l->n = n;
                return 0;
        }
        CostInterval *m = reallocarray(l->v, l->n + n, sizeof(CostInterval));
        if (!m) {
                free(v);
                return -ENOMEM;
        }
        memcpy(m + l->n, v, n * sizeof(CostInterval));
        free(v);
        l->v = m;
        l->n += n;
        return 0;
}

void intervals_done(Intervals *l) {
        free(l->v);
        *l = (Intervals) {};
}

int cuts_add_hour(Cuts *c, int64_t t) {
        if (t % HOUR_MS == 0 || t == INT64_MIN || t == INT64_MAX)
                return 0;
        int64_t *n = reallocarray(c->hours, c->n + 1, sizeof(int64_t));
        if (!n)
                return -ENOMEM;
        c->hours = n;
        c->hours[c->n++] = cost_floor_to(t, HOUR_MS);
        return 0;
}

void cuts_sort(Cuts *c) {
        size_t m = 0;
        if (c->n == 0)
                return;
        qsort(c->hours, c->n, sizeof(int64_t), cmp_i64);
        for (size_t i = 0; i < c->n; i++)
                if (m == 0 || c->hours[m - 1] != c->hours[i])
                        c->hours[m++] = c->hours[i];
        c->n = m;
}

bool cuts_has(const Cuts *c, int64_t hour) {
        return c->n > 0 && bsearch(&hour, c->hours, c->n, sizeof(int64_t), cmp_i64);
}

int intervals_coarsen(Intervals *l, const Cuts *cuts, int64_t a, int64_t b) {
        Cuts odd = {};
        size_t m = 0;

        for (size_t i = 0; i < l->n; i++)
                if (l->v[i].end_ms - l->v[i].start_ms != MINUTE_MS || l->v[i].start_ms % MINUTE_MS != 0) {
                        int64_t *n = reallocarray(odd.hours, odd.n + 1, sizeof(int64_t));
                        if (!n) {
                                free(odd.hours);
                                return -ENOMEM;
                        }
                        odd.hours = n;
                        odd.hours[odd.n++] = cost_floor_to(l->v[i].start_ms, HOUR_MS);
                }
        cuts_sort(&odd);
        for (size_t i = 0; i < l->n; i++) {
                CostInterval iv = l->v[i];
                int64_t h = cost_floor_to(iv.start_ms, HOUR_MS);
                if (iv.end_ms - iv.start_ms == MINUTE_MS && iv.start_ms % MINUTE_MS == 0 && h >= a && h + HOUR_MS <= b &&
                    !cuts_has(cuts, h) && !cuts_has(&odd, h)) {
                        if (m > 0 && l->v[m - 1].start_ms == h && l->v[m - 1].end_ms == h + HOUR_MS) {
                                l->v[m - 1].energy_mwh += iv.energy_mwh;
                                continue;
                        }
                        iv = (CostInterval) { h, h + HOUR_MS, iv.energy_mwh };
                }
                l->v[m++] = iv;
        }
        l->n = m;
        free(odd.hours);
        return 0;
}

static void hour_cell_free(gpointer p) {
        HourCell *c = p;
        free(c->minutes);
        free(c);
}

int home_sum_init(HomeSum *h, int64_t from) {
        h->origin = cost_floor_to(from, HOUR_MS);
        h->hours = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, hour_cell_free);
        h->odd = g_array_new(false, false, sizeof(CostInterval));
        return 0;
}

void home_sum_done(HomeSum *h) {
        if (h->hours)
                g_hash_table_unref(h->hours);
        if (h->odd)
                g_array_unref(h->odd);
        *h = (HomeSum) {};
}

static HourCell *hour_cell(HomeSum *h, int64_t hour, bool minutes) {
        HourCell *c = g_hash_table_lookup(h->hours, &hour);
        if (!c) {
                c = calloc(1, sizeof(HourCell));
                if (!c)
                        return NULL;
                c->hour = hour;
                g_hash_table_insert(h->hours, &c->hour, c);
        }
        if (minutes && !c->minutes) {
                c->minutes = calloc(60, sizeof(int64_t));
                if (!c->minutes)
                        return NULL;
        }
        return c;
}

int home_sum_add(HomeSum *h, CostInterval p) {
        int64_t len = p.end_ms - p.start_ms;
        if ((len == MINUTE_MS || len == HOUR_MS) && p.start_ms >= h->origin && (p.start_ms - h->origin) % len == 0) {
                int64_t off = p.start_ms - h->origin;
                HourCell *c = hour_cell(h, off / HOUR_MS, len == MINUTE_MS);
                if (!c)
                        return -ENOMEM;
                if (len == HOUR_MS)
                        c->energy_mwh += p.energy_mwh;
                else
                        c->minutes[off % HOUR_MS / MINUTE_MS] += p.energy_mwh;
                return 0;
        }
        g_array_append_val(h->odd, p);
        return 0;
}

int home_sum_pieces(HomeSum *h, Intervals *ret) {
        GArray *pieces = h->odd;
        GHashTableIter it;
        gpointer key, value;
        g_hash_table_iter_init(&it, h->hours);
        while (g_hash_table_iter_next(&it, &key, &value)) {
                const HourCell *c = value;
                int64_t t = h->origin + *(const int64_t *) key * HOUR_MS;
                if (c->energy_mwh > 0) {
                        CostInterval p = { t, t + HOUR_MS, c->energy_mwh };
                        g_array_append_val(pieces, p);
                }
                for (int64_t k = 0; c->minutes && k < 60; k++)
                        if (c->minutes[k] > 0) {
                                CostInterval p = { t + k * MINUTE_MS, t + (k + 1) * MINUTE_MS, c->minutes[k] };
                                g_array_append_val(pieces, p);
                        }
        }
        size_t n = pieces->len, np = 0;
        const CostInterval *p = (const CostInterval *) pieces->data;
        _cleanup_free_ int64_t *pts = malloc(MAX(n, (size_t) 1) * 2 * sizeof(int64_t));
        if (!pts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                pts[2 * i] = p[i].start_ms;
                pts[2 * i + 1] = p[i].end_ms;
        }
        qsort(pts, 2 * n, sizeof(int64_t), cmp_i64);
        for (size_t i = 0; i < 2 * n; i++)
                if (np == 0 || pts[np - 1] != pts[i])
                        pts[np++] = pts[i];
        if (np < 2) {
                *ret = (Intervals) {};
                return 0;
        }
        CostInterval *cells = calloc(np - 1, sizeof(CostInterval));
        if (!cells)
                return -ENOMEM;
        for (size_t i = 0; i + 1 < np; i++)
                cells[i] = (CostInterval) { pts[i], pts[i + 1], 0 };
        for (size_t i = 0; i < n; i++) {
                int64_t *at = bsearch(&p[i].start_ms, pts, np, sizeof(int64_t), cmp_i64);
                int64_t d = p[i].end_ms - p[i].start_ms;
                for (size_t k = (size_t) (at - pts); k + 1 < np && cells[k].start_ms < p[i].end_ms; k++)
                        cells[k].energy_mwh += cost_share(p[i].energy_mwh, cells[k].end_ms - p[i].start_ms, d) -
                                               cost_share(p[i].energy_mwh, cells[k].start_ms - p[i].start_ms, d);
        }
        /* Cells of no energy (between pieces, or idle) say nothing. */
        size_t m = 0;
        for (size_t i = 0; i + 1 < np; i++)
                if (cells[i].energy_mwh > 0)
                        cells[m++] = cells[i];
        *ret = (Intervals) { cells, m };
        return 0;
}
