/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* CRC-32 (IEEE 802.3, as zlib's): of the store's log records and of the
 * 20002 discovery header. Start with crc = 0; feed pieces in order. */
uint32_t crc32_update(uint32_t crc, const void *p, size_t n);
