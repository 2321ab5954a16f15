/* SPDX-License-Identifier: MIT */

#include "crc32.h"

#include <pthread.h>

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (unsigned k = 0; k < 8; k++)
                        c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
                table[i] = c;
        }
}

uint32_t crc32_update(uint32_t crc, const void *p, size_t n) {
        const uint8_t *b = p;

        /* The store's writer and its checkpoint thread may be first. */
        pthread_once(&table_once, make_table);
        crc = ~crc;
        while (n--)
                crc = table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
        return ~crc;
}
