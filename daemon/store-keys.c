/* SPDX-License-Identifier: MIT */

/* The store's LMDB keys (their layouts: store-db.c's format notes). */

#include <errno.h>

#include "store-internal.h"

void key_make(uint8_t k[static KEY_SIZE], uint32_t device, int64_t t) {
        uint64_t u = (uint64_t) t;

        for (unsigned i = 0; i < 4; i++)
                k[i] = (uint8_t) (device >> (24 - 8 * i));
        for (unsigned i = 0; i < 8; i++)
                k[4 + i] = (uint8_t) (u >> (56 - 8 * i));
}

int key_parse(const MDB_val *k, uint32_t *ret_device, int64_t *ret_t) {
        const uint8_t *b = k->mv_data;
        uint32_t d = 0;
        uint64_t u = 0;

        if (k->mv_size != KEY_SIZE)
                return -EBADMSG;
        for (unsigned i = 0; i < 4; i++)
                d = d << 8 | b[i];
        for (unsigned i = 0; i < 8; i++)
                u = u << 8 | b[4 + i];
        *ret_device = d;
        *ret_t = (int64_t) u;
        return 0;
}

void tkey_make(uint8_t k[static SEG_KEY_SIZE], int64_t t, uint32_t device, int64_t t0) {
        put_be(k, (uint64_t) t, 8);
        put_be(k + 8, device, 4);
        put_be(k + 12, (uint64_t) t0, 8);
}

int tkey_parse(const MDB_val *k, int64_t *ret_t, uint32_t *ret_device, int64_t *ret_t0) {
        const uint8_t *b = k->mv_data;

        if (k->mv_size != SEG_KEY_SIZE && k->mv_size != KEY_SIZE)
                return -EBADMSG;
        *ret_t = (int64_t) get_be(b, 8);
        *ret_device = (uint32_t) get_be(b + 8, 4);
        if (ret_t0)
                *ret_t0 = k->mv_size == SEG_KEY_SIZE ? (int64_t) get_be(b + 12, 8) : *ret_t;
        return 0;
}

void ckey_make(uint8_t k[static CSEG_KEY_SIZE], int64_t hour, uint64_t gen, uint32_t device, int64_t t0) {
        put_be(k, (uint64_t) hour, 8);
        put_be(k + 8, gen, 8);
        put_be(k + 16, device, 4);
        put_be(k + 20, (uint64_t) (t0 - hour), 4);
}

int ckey_parse(const MDB_val *k, int64_t *ret_hour, uint64_t *ret_gen, uint32_t *ret_device, int64_t *ret_t0) {
        const uint8_t *b = k->mv_data;
        int64_t hour;
        uint64_t off;

        if (k->mv_size != CSEG_KEY_SIZE)
                return -EBADMSG;
        hour = (int64_t) get_be(b, 8);
        off = get_be(b + 20, 4);
        if (off >= HOUR_MS)
                return -EBADMSG;
        *ret_hour = hour;
        if (ret_gen)
                *ret_gen = get_be(b + 8, 8);
        *ret_device = (uint32_t) get_be(b + 16, 4);
        if (ret_t0)
                *ret_t0 = hour + (int64_t) off;
        return 0;
}

int time_key_parse(unsigned db, const MDB_val *k, int64_t *ret_t, uint32_t *ret_device, int64_t *ret_t0) {
        return db == DB_CSEG ? ckey_parse(k, ret_t, NULL, ret_device, ret_t0) : tkey_parse(k, ret_t, ret_device, ret_t0);
}

void device_key(uint8_t k[static 4], uint32_t device) {
        for (unsigned i = 0; i < 4; i++)
                k[i] = (uint8_t) (device >> (24 - 8 * i));
}
