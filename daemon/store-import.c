/* SPDX-License-Identifier: MIT */

/*
 * Days imported from a device's own day statistics (the "imported"
 * database, format in store-db.c): written by the backfill, read beside
 * the day rollups. They are kept out of the rollups so that those stay
 * kasamond's own count, which costs and EnergyTotal rest on; an imported
 * day is only ever a day before kasamond's first sample of the device.
 */

#include <errno.h>
#include <stdlib.h>

#include "macro.h"
#include "store-internal.h"

#define IMPORTED_VALUE_MAX (1 + VARINT_MAX)

static int imported_decode(const MDB_val *v, int64_t *ret) {
        Reader r = reader_make(v->mv_data, v->mv_size);
        int64_t e;

        if (r.p >= r.end || *r.p++ != 1)
                return -EBADMSG;
        e = get_zz(&r);
        if (!reader_done(&r) || e < 0)
                return -EBADMSG;
        *ret = e;
        return 0;
}

typedef struct ImportTxn {
        uint32_t device;
        const StoreImportedDay *days;
        size_t n;
        int64_t cutoff;
        size_t written;
} ImportTxn;

static int import_txn(Store *s, MDB_txn *txn, void *userdata) {
        ImportTxn *w = userdata;

        /* store_write() may run this again after growing the map. */
        w->written = 0;
        for (size_t i = 0; i < w->n; i++) {
                const StoreImportedDay *d = &w->days[i];
                uint8_t kb[KEY_SIZE], vb[IMPORTED_VALUE_MAX];
                MDB_val k = { .mv_size = sizeof kb, .mv_data = kb }, v;
                int64_t old;
                uint8_t *p = vb;
                int r;

                if (d->day_start_ms >= w->cutoff)
                        continue;
                key_make(kb, w->device, d->day_start_ms);
                r = store_errno(mdb_get(txn, s->dbi[DB_IMPORTED], &k, &v));
                if (r >= 0) {
                        r = imported_decode(&v, &old);
                        if (r < 0)
                                return r;
                        if (old == d->energy_mwh)
                                continue;
                } else if (r != -ENOENT)
                        return r;
                *p++ = 1;
                p = put_zz(p, d->energy_mwh);
                r = db_put(s, txn, DB_IMPORTED, kb, sizeof kb, vb, (size_t) (p - vb));
                if (r < 0)
                        return r;
                w->written++;
        }
        return 0;
}

static int day_cmp(const void *a, const void *b) {
        int64_t x = ((const StoreImportedDay *) a)->day_start_ms, y = ((const StoreImportedDay *) b)->day_start_ms;
        return (x > y) - (x < y);
}

/* The start of the local day of the device's first recorded sample, or
 * INT64_MAX when it has none. Rollups are kept forever, so the first day
 * rollup is that day whatever raw retention removed. */
static int first_recorded_day(Store *s, uint32_t device, int64_t *ret) {
        _cleanup_free_ StoreRollup *r = NULL;
        size_t n = 0;
        int e;

        e = store_query_rollup(s, device, STORE_DAY, 0, INT64_MAX / 2, SIZE_MAX, &r, &n);
        if (e < 0)
                return e;
        *ret = n > 0 ? r[0].period_start_ms : INT64_MAX;
        return 0;
}

int store_import_days(Store *s, uint32_t device, const StoreImportedDay *days, size_t n, int64_t before_ms,
                      size_t *ret_written) {
        _cleanup_free_ StoreImportedDay *sorted = NULL;
        ImportTxn w = { .device = device, .n = n };
        int64_t first;
        int r;

        if (!s || (!days && n > 0) || !ret_written)
                return -EINVAL;
        sorted = malloc(MAX(n, (size_t) 1) * sizeof(StoreImportedDay));
        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (days[i].day_start_ms < 0 || days[i].energy_mwh < 0 ||
                    s->o.day_start(days[i].day_start_ms, s->o.userdata) != days[i].day_start_ms)
                        return -EINVAL;
                sorted[i] = days[i];
        }
        qsort(sorted, n, sizeof(StoreImportedDay), day_cmp);
        for (size_t i = 1; i < n; i++)
                if (sorted[i].day_start_ms == sorted[i - 1].day_start_ms)
                        return -EINVAL;

        /* Readers skip what waits behind an fdatasync; this one must not,
         * or a day kasamond recorded would be imported on top of it. */
        r = store_wait_written(s);
        if (r >= 0)
                r = first_recorded_day(s, device, &first);
        if (r < 0)
                return r;
        /* A day is taken only when it ends by the cutoff: it must not
         * reach into the day kasamond began recording, nor into today. */
        w.cutoff = INT64_MIN;
        for (size_t i = 0; i < n; i++) {
                int64_t next = s->o.day_start(sorted[i].day_start_ms + NEXT_DAY_PROBE_MS, s->o.userdata);
                if (next <= MIN(first, before_ms))
                        w.cutoff = sorted[i].day_start_ms + 1;
        }
        w.days = sorted;
        r = disk_error(s, store_write(s, import_txn, &w));
        if (r < 0)
                return r;
        *ret_written = w.written;
        return 0;
}

int store_query_imported(Store *s, uint32_t device, int64_t from_ms, int64_t to_ms, size_t max,
                         StoreImportedDay **ret, size_t *ret_n) {
        _cleanup_free_ StoreImportedDay *items = NULL;
        _cleanup_cursor_ MDB_cursor *c = NULL;
        size_t n = 0, allocated = 0;
        MDB_txn *txn;
        MDB_val k, v;
        int r;

        if (!s || !ret || !ret_n)
                return -EINVAL;
        r = db_read_begin(s, &txn);
        if (r < 0)
                return r;
        r = cursor_open(s, txn, DB_IMPORTED, &c);
        for (r = r < 0 ? r : cursor_seek(c, device, from_ms, &k, &v); r >= 0;
             r = store_errno(mdb_cursor_get(c, &k, &v, MDB_NEXT))) {
                uint32_t d;
                int64_t t, e;

                r = key_parse(&k, &d, &t);
                if (r < 0 || d != device || t >= to_ms)
                        break;
                if (n >= max) {
                        r = -E2BIG;
                        break;
                }
                r = imported_decode(&v, &e);
                if (r < 0)
                        break;
                if (n == allocated) {
                        StoreImportedDay *p = reallocarray(items, MAX(allocated * 2, (size_t) 16),
                                                           sizeof(StoreImportedDay));
                        if (!p) {
                                r = -ENOMEM;
                                break;
                        }
                        items = p;
                        allocated = MAX(allocated * 2, (size_t) 16);
                }
                items[n++] = (StoreImportedDay) { .day_start_ms = t, .energy_mwh = e };
        }
        cursor_closep(&c);
        c = NULL;
        db_read_end(s, txn);
        if (r < 0 && r != -ENOENT)
                return r;
        if (!items) {
                items = calloc(1, sizeof(StoreImportedDay));
                if (!items)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(items);
        *ret_n = n;
        return 0;
}
