/* SPDX-License-Identifier: MIT */

#include "store-codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

uint64_t zigzag(int64_t v) {
        return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}

int64_t unzigzag(uint64_t v) {
        return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}

int64_t wrap_sub(int64_t a, int64_t b) {
        return (int64_t) ((uint64_t) a - (uint64_t) b);
}

int64_t wrap_add(int64_t a, int64_t b) {
        return (int64_t) ((uint64_t) a + (uint64_t) b);
}

int64_t floor_to(int64_t t, int64_t unit) {
        int64_t q = t / unit;

        if (t % unit < 0)
                q--;
        return q * unit;
}

uint8_t *put_uvarint(uint8_t *p, uint64_t v) {
        while (v >= 0x80) {
                *p++ = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t) v;
        return p;
}

uint8_t *put_zz(uint8_t *p, int64_t v) {
        return put_uvarint(p, zigzag(v));
}

uint64_t get_uvarint(Reader *r) {
        uint64_t v = 0;

        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (r->p >= r->end)
                        break;
                uint8_t b = *r->p++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80))
                        return v;
        }
        r->bad = true;
        return 0;
}

int64_t get_zz(Reader *r) {
        return unzigzag(get_uvarint(r));
}

int buf_reserve(Buf *b, size_t more) {
        if (b->allocated - b->size >= more)
                return 0;
        size_t m = MAX(b->allocated * 2, b->size + more);
        m = MAX(m, (size_t) 256);
        uint8_t *t = realloc(b->data, m);
        if (!t)
                return -ENOMEM;
        b->data = t;
        b->allocated = m;
        return 0;
}

void buf_trim(Buf *b) {
        uint8_t *t;

        if (b->size == 0) {
                buf_done(b);
                return;
        }
        if (b->allocated == b->size)
                return;
        t = realloc(b->data, b->size);
        if (!t)
                return;
        b->data = t;
        b->allocated = b->size;
}

void buf_done(Buf *b) {
        free(b->data);
        *b = (Buf) {};
}

int sample_array_push(SampleArray *a, const StoreSample *x) {
        if (a->n == a->allocated) {
                size_t m = MAX(a->allocated * 2, (size_t) 64);
                StoreSample *t = reallocarray(a->items, m, sizeof(StoreSample));
                if (!t)
                        return -ENOMEM;
                a->items = t;
                a->allocated = m;
        }
        a->items[a->n++] = *x;
        return 0;
}

void sample_array_done(SampleArray *a) {
        free(a->items);
        *a = (SampleArray) {};
}

/* ---- rollups ---- */

void agg_merge(Agg *into, const Agg *x) {
        if (x->count > 0) {
                if (into->count == 0) {
                        into->first = x->first;
                        into->last = x->last;
                } else {
                        into->first = MIN(into->first, x->first);
                        into->last = MAX(into->last, x->last);
                }
        }
        into->count += x->count;
        into->energy += x->energy;
        into->covered += x->covered;
        into->pmin = MIN(into->pmin, x->pmin);
        into->pmax = MAX(into->pmax, x->pmax);
        into->psum = wrap_add(into->psum, x->psum);
}

int64_t agg_average(const Agg *a) {
        if (a->covered > 0)
                return (int64_t) ((__int128) a->energy * HOUR_MS / a->covered);
        if (a->count > 0)
                return a->psum / (int64_t) a->count;
        return (a->pmin + a->pmax) / 2;
}

void agg_to_rollup(int64_t start, const Agg *a, StoreRollup *ret) {
        *ret = (StoreRollup) {
                .period_start_ms = start,
                .energy_mwh = a->energy,
                .power_min_mw = a->pmin,
                .power_avg_mw = agg_average(a),
                .power_max_mw = a->pmax,
                .count = a->count,
                .covered_ms = a->covered,
                .first_ts_ms = a->count > 0 ? a->first : start,
                .last_ts_ms = a->count > 0 ? a->last : start,
        };
}

size_t agg_encode(int64_t start, const Agg *a, uint8_t buf[static AGG_VALUE_MAX]) {
        uint8_t *p = buf;

        *p++ = 2;
        p = put_uvarint(p, a->count);
        p = put_zz(p, a->energy);
        p = put_uvarint(p, (uint64_t) a->covered);
        p = put_zz(p, a->pmin);
        p = put_zz(p, a->pmax);
        p = put_zz(p, a->psum);
        if (a->count > 0) {
                p = put_uvarint(p, (uint64_t) (a->first - start));
                p = put_uvarint(p, (uint64_t) (a->last - a->first));
        }
        return (size_t) (p - buf);
}

int agg_decode(int64_t start, const void *data, size_t size, Agg *ret) {
        Reader r = reader_make(data, size);
        unsigned version;
        Agg a = {};

        if (size < 1)
                return -EBADMSG;
        version = *r.p++;
        if (version != 1 && version != 2)
                return -EBADMSG;
        a.count = get_uvarint(&r);
        a.energy = get_zz(&r);
        if (version == 2)
                a.covered = (int64_t) get_uvarint(&r);
        a.pmin = get_zz(&r);
        a.pmax = get_zz(&r);
        a.psum = get_zz(&r);
        if (version == 1 || a.count > 0) {
                a.first = wrap_add(start, (int64_t) get_uvarint(&r));
                a.last = wrap_add(a.first, (int64_t) get_uvarint(&r));
        }
        if (!reader_done(&r) || (version == 1 && a.count == 0) || a.covered < 0)
                return -EBADMSG;
        *ret = a;
        return 0;
}

int period_array_push(PeriodArray *a, int64_t start, const Agg *g) {
        if (a->n == a->allocated) {
                size_t m = MAX(a->allocated * 2, (size_t) 64);
                Period *t = reallocarray(a->items, m, sizeof(Period));
                if (!t)
                        return -ENOMEM;
                a->items = t;
                a->allocated = m;
        }
        a->items[a->n++] = (Period) { .start = start, .a = *g };
        return 0;
}

void period_array_done(PeriodArray *a) {
        free(a->items);
        *a = (PeriodArray) {};
}

static int period_cmp(const void *x, const void *y) {
        const Period *a = x, *b = y;
        return (a->start > b->start) - (a->start < b->start);
}

void period_array_normalize(PeriodArray *a) {
        size_t j = 0;

        if (a->n == 0)
                return;
        qsort(a->items, a->n, sizeof(Period), period_cmp);
        for (size_t i = 0; i < a->n; i++) {
                if (j > 0 && a->items[j - 1].start == a->items[i].start)
                        agg_merge(&a->items[j - 1].a, &a->items[i].a);
                else
                        a->items[j++] = a->items[i];
        }
        a->n = j;
}

int periods_start(const Periods *p, int64_t ts, int64_t *ret) {
        int64_t start;

        switch (p->res) {
        case STORE_MINUTE:
                start = floor_to(ts, MINUTE_MS);
                break;
        case STORE_HOUR:
                start = floor_to(ts, HOUR_MS);
                break;
        default:
                start = p->day_start(ts, p->userdata);
                /* A wrong callback would silently corrupt every day rollup. */
                if (start > ts || ts - start >= NEXT_DAY_PROBE_MS)
                        return -ERANGE;
        }
        *ret = start;
        return 0;
}

int periods_next(const Periods *p, int64_t start, int64_t *ret) {
        switch (p->res) {
        case STORE_MINUTE:
                *ret = start + MINUTE_MS;
                return 0;
        case STORE_HOUR:
                *ret = start + HOUR_MS;
                return 0;
        default:
                *ret = p->day_start(start + NEXT_DAY_PROBE_MS, p->userdata);
                return *ret > start ? 0 : -ERANGE;
        }
}

static int add_to(PeriodArray *out, int64_t start, const Agg *g) {
        if (out->n > 0 && out->items[out->n - 1].start == start) {
                agg_merge(&out->items[out->n - 1].a, g);
                return 0;
        }
        return period_array_push(out, start, g);
}

static bool is_gap(const Periods *p, const StoreSample *prev, const StoreSample *x) {
        return x->ts_ms - prev->ts_ms > p->gap_ms;
}

/* The part of e (spread evenly over dt) up to offset u: summing the
 * differences of this at period boundaries gives back e exactly. */
static int64_t share_until(int64_t e, int64_t dt, int64_t u) {
        return (int64_t) ((__int128) e * u / dt);
}

int periods_add(const Periods *p, const StoreSample *prev, const StoreSample *x, PeriodArray *out) {
        int64_t start, here, e = prev ? x->energy_mwh - prev->energy_mwh : 0;
        bool gap = prev && is_gap(p, prev, x);
        int r;

        if (prev && !gap) {
                int64_t dt = x->ts_ms - prev->ts_ms;

                r = periods_start(p, prev->ts_ms, &start);
                if (r < 0)
                        return r;
                for (int64_t t = prev->ts_ms; t < x->ts_ms;) {
                        int64_t next, end;

                        r = periods_next(p, start, &next);
                        if (r < 0)
                                return r;
                        end = MIN(next, x->ts_ms);
                        Agg g = {
                                .energy = share_until(e, dt, end - prev->ts_ms) - share_until(e, dt, t - prev->ts_ms),
                                .covered = end - t,
                                .pmin = x->power_mw,
                                .pmax = x->power_mw,
                        };
                        r = add_to(out, start, &g);
                        if (r < 0)
                                return r;
                        t = end;
                        start = next;
                }
        }

        r = periods_start(p, x->ts_ms, &here);
        if (r < 0)
                return r;
        Agg g = {
                .count = 1,
                .energy = gap ? e : 0,
                .pmin = x->power_mw,
                .pmax = x->power_mw,
                .psum = x->power_mw,
                .first = x->ts_ms,
                .last = x->ts_ms,
        };
        return add_to(out, here, &g);
}

int64_t interval_energy(const Periods *p, const StoreSample *prev, const StoreSample *x, int64_t a, int64_t b) {
        int64_t e, dt, lo, hi;

        if (!prev)
                return 0;
        e = x->energy_mwh - prev->energy_mwh;
        if (is_gap(p, prev, x))
                return x->ts_ms >= a && x->ts_ms < b ? e : 0;
        dt = x->ts_ms - prev->ts_ms;
        lo = MIN(MAX(a, prev->ts_ms), x->ts_ms) - prev->ts_ms;
        hi = MIN(MAX(b, prev->ts_ms), x->ts_ms) - prev->ts_ms;
        return hi > lo ? share_until(e, dt, hi) - share_until(e, dt, lo) : 0;
}

/* ---- packed samples ---- */

uint8_t *samples_encode_one(uint8_t *p, StoreSample *prev, int64_t *prev_dt, const StoreSample *x) {
        int64_t dt = wrap_sub(x->ts_ms, prev->ts_ms);

        p = put_zz(p, wrap_sub(dt, *prev_dt));
        p = put_zz(p, wrap_sub(x->power_mw, prev->power_mw));
        p = put_zz(p, wrap_sub(x->voltage_mv, prev->voltage_mv));
        p = put_zz(p, wrap_sub(x->current_ma, prev->current_ma));
        p = put_zz(p, wrap_sub(x->energy_mwh, prev->energy_mwh));
        *prev = *x;
        *prev_dt = dt;
        return p;
}

int samples_decode_one(Reader *r, StoreSample *prev, int64_t *prev_dt) {
        int64_t dt = wrap_add(*prev_dt, get_zz(r));

        prev->ts_ms = wrap_add(prev->ts_ms, dt);
        prev->power_mw = wrap_add(prev->power_mw, get_zz(r));
        prev->voltage_mv = wrap_add(prev->voltage_mv, get_zz(r));
        prev->current_ma = wrap_add(prev->current_ma, get_zz(r));
        prev->energy_mwh = wrap_add(prev->energy_mwh, get_zz(r));
        *prev_dt = dt;
        return r->bad ? -EBADMSG : 0;
}

int tail_decode_one(Reader *r, StoreSample *prev, int64_t *prev_dt, uint64_t *seq) {
        *seq += get_uvarint(r);
        return samples_decode_one(r, prev, prev_dt);
}

/* ---- minute sections ---- */

uint8_t *minutes_encode_v2(uint8_t *p, int64_t base, const Period *m, size_t n) {
        Agg prev = {};
        int64_t prev_idx = 0;

        p = put_uvarint(p, n);
        for (size_t i = 0; i < n; i++) {
                const Agg *a = &m[i].a;
                int64_t idx = (m[i].start - base) / MINUTE_MS;

                if (i == 0)
                        p = put_zz(p, idx);
                else
                        p = put_uvarint(p, (uint64_t) (idx - prev_idx));
                p = put_uvarint(p, a->count);
                p = put_zz(p, a->energy);
                p = put_uvarint(p, (uint64_t) a->covered);
                p = put_zz(p, wrap_sub(a->pmin, prev.pmin));
                p = put_zz(p, wrap_sub(a->pmax, prev.pmax));
                p = put_zz(p, wrap_sub(a->psum, (int64_t) ((uint64_t) a->pmin * a->count)));
                if (a->count > 0) {
                        p = put_uvarint(p, (uint64_t) (a->first - m[i].start));
                        p = put_uvarint(p, (uint64_t) (a->last - a->first));
                }
                prev = *a;
                prev_idx = idx;
        }
        return p;
}

/* Version 1 sections index minutes 0..59 of the hour at base; version 2
 * ones index minutes from base (the minute of the block's first sample)
 * and may reach back before it, for the poll interval that led to it. */
int minutes_decode(Reader *r, unsigned version, int64_t base, int64_t from_ms, int64_t to_ms, PeriodArray *out) {
        Agg prev = {};
        int64_t idx = 0;
        uint64_t n;

        n = get_uvarint(r);
        if (r->bad || n > (version == 1 ? 60 : 1 << 20))
                return -EBADMSG;
        for (uint64_t i = 0; i < n; i++) {
                int64_t start;
                Agg a = {};

                if (version == 1) {
                        uint64_t u = get_uvarint(r);
                        if (u >= 60)
                                return -EBADMSG;
                        idx = (int64_t) u;
                } else if (i == 0)
                        idx = get_zz(r);
                else {
                        uint64_t step = get_uvarint(r);
                        if (step == 0 || step > 1 << 20)
                                return -EBADMSG;
                        idx += (int64_t) step;
                }
                if (idx < -(1 << 20) || idx > (1 << 20))
                        return -EBADMSG;
                start = base + idx * MINUTE_MS;
                a.count = get_uvarint(r);
                a.energy = get_zz(r);
                if (version >= 2)
                        a.covered = (int64_t) get_uvarint(r);
                a.pmin = wrap_add(prev.pmin, get_zz(r));
                a.pmax = wrap_add(prev.pmax, get_zz(r));
                a.psum = wrap_add(get_zz(r), (int64_t) ((uint64_t) a.pmin * a.count));
                if (version == 1 || a.count > 0) {
                        a.first = wrap_add(start, (int64_t) get_uvarint(r));
                        a.last = wrap_add(a.first, (int64_t) get_uvarint(r));
                }
                if (r->bad || (version == 1 && a.count == 0) || a.covered < 0)
                        return -EBADMSG;
                if (out && start >= from_ms && start < to_ms) {
                        int e = period_array_push(out, start, &a);
                        if (e < 0)
                                return e;
                }
                prev = a;
        }
        return 0;
}

/* ---- log record entries (store-codec.h) ---- */

uint8_t *log_entry_put(uint8_t *p, int64_t base, const StoreSample *x, const StoreCounter *c) {
        unsigned flags = (x ? ENTRY_SAMPLE : 0) | (c ? ENTRY_COUNTER : 0);

        if (x && c) {
                flags |= c->ts_ms == x->ts_ms ? ENTRY_SAME_TS : 0;
                flags |= c->cumulative_mwh == x->energy_mwh ? ENTRY_SAME_ENERGY : 0;
                flags |= c->power_mw == x->power_mw ? ENTRY_SAME_POWER : 0;
        }
        p = put_uvarint(p, x ? x->device : c->device);
        *p++ = (uint8_t) flags;
        if (x) {
                p = put_zz(p, wrap_sub(x->ts_ms, base));
                p = put_zz(p, x->power_mw);
                p = put_zz(p, x->voltage_mv);
                p = put_zz(p, x->current_ma);
                p = put_uvarint(p, (uint64_t) x->energy_mwh);
        }
        if (c) {
                if (!(flags & ENTRY_SAME_TS))
                        p = put_zz(p, wrap_sub(c->ts_ms, base));
                if (!(flags & ENTRY_SAME_ENERGY))
                        p = put_zz(p, c->cumulative_mwh);
                p = put_zz(p, wrap_sub(c->counter_mwh, c->cumulative_mwh));
                p = put_zz(p, wrap_sub(c->lo_mwh, c->counter_mwh));
                p = put_zz(p, wrap_sub(c->hi_mwh, c->counter_mwh));
                if (!(flags & ENTRY_SAME_POWER))
                        p = put_zz(p, c->power_mw);
        }
        return p;
}

int log_entry_get(Reader *r, int64_t base, StoreSample *x, StoreCounter *c, unsigned *ret_flags) {
        uint32_t device = (uint32_t) get_uvarint(r);
        unsigned flags;

        if (r->bad || r->p >= r->end)
                return -EBADMSG;
        flags = *r->p++;
        if ((flags & ~(unsigned) _ENTRY_FLAGS) || !(flags & (ENTRY_SAMPLE | ENTRY_COUNTER)) ||
            ((flags & (ENTRY_SAME_TS | ENTRY_SAME_ENERGY | ENTRY_SAME_POWER)) &&
             (flags & (ENTRY_SAMPLE | ENTRY_COUNTER)) != (ENTRY_SAMPLE | ENTRY_COUNTER)))
                return -EBADMSG;
        *x = (StoreSample) { .device = device };
        *c = (StoreCounter) { .device = device };
        if (flags & ENTRY_SAMPLE) {
                x->ts_ms = wrap_add(base, get_zz(r));
                x->power_mw = get_zz(r);
                x->voltage_mv = get_zz(r);
                x->current_ma = get_zz(r);
                x->energy_mwh = (int64_t) get_uvarint(r);
        }
        if (flags & ENTRY_COUNTER) {
                c->ts_ms = flags & ENTRY_SAME_TS ? x->ts_ms : wrap_add(base, get_zz(r));
                c->cumulative_mwh = flags & ENTRY_SAME_ENERGY ? x->energy_mwh : get_zz(r);
                c->counter_mwh = wrap_add(c->cumulative_mwh, get_zz(r));
                c->lo_mwh = wrap_add(c->counter_mwh, get_zz(r));
                c->hi_mwh = wrap_add(c->counter_mwh, get_zz(r));
                c->power_mw = flags & ENTRY_SAME_POWER ? x->power_mw : get_zz(r);
        }
        *ret_flags = flags;
        return r->bad ? -EBADMSG : 0;
}
