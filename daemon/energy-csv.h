/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "cost.h"

/* An energy series for what-if pricing, as CSV: rows "start,energy_wh",
 * start an RFC 3339 time with offset, energy_wh a decimal number of Wh
 * (at most 3 decimals); an optional header "start,energy_wh"; fields may
 * be quoted. Each row's interval runs to the next row's start, the last
 * one as long as the one before, so starts must increase and there must be
 * two rows at least. A refusal is -EBADMSG with "NAME:LINE: expected WHAT"
 * in *ret_error. */

#define ENERGY_CSV_MAX (64 * 1024 * 1024)
#define ENERGY_CSV_ROWS_MAX 2000000
#define ENERGY_CSV_LINE_MAX 256

int energy_csv_parse(const char *data, size_t size, const char *name, CostInterval **ret, size_t *ret_n,
                     char **ret_error);
