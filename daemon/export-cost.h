/* SPDX-License-Identifier: MIT */
#pragma once

/* The cost columns of an export (export.h, ExportCosts): each row's energy
 * priced as GetCost prices its device's bill, the parts of that bill
 * (CostQuery.part) summed per row. Pure: the tariffs, assignments and
 * energy come through a CostQuery (the store's in the daemon, a fake in
 * tests), nothing here knows D-Bus.
 *
 * A window of rows is priced by one query over the rows' periods: the
 * tiers of a billing cycle count its energy before the window (the query
 * reads it back from the cycle's start, as GetCost does for a range that
 * begins inside a cycle), so the rows of a cycle are priced in order, as
 * the bill prices them. Minute rows are priced from minute rollups, hour
 * and day rows from what GetCost reads (hours, minutes where hours would
 * blur a price); a row's parts lie within it, so a row's cost is its own
 * energy's.
 *
 * Rounding: for each line of the bill (tariff, assignment, period or
 * adder, tier), the running sum of its exact amount is rounded at the end
 * of every row and a row gets the difference from the row before; so the
 * rows of a device add up, line by line, to the device's bill of GetCost
 * for the same range (one bucket), to the minor unit. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cost-query.h"
#include "export.h"

typedef struct ExportPricer ExportPricer;

/* q: tariffs, assignments, what_if, devices (the export's, in its order),
 * source and time zone, and it must outlive the pricer; its range, bucket
 * and options are the pricer's to set. minutes: the rows are minutes. */
int export_pricer_new(const CostQuery *q, bool minutes, ExportPricer **ret);
ExportPricer *export_pricer_free(ExportPricer *p);

/* The currency of the tariffs that may price the devices from from_ms to
 * to_ms, for the columns' names; reads no energy. -ENODATA (no tariff) or
 * -EINVAL (two currencies) with a message in *ret_error (free()). */
int export_pricer_currency(ExportPricer *p, int64_t from_ms, int64_t to_ms, char ret_currency[static 4],
                           unsigned *ret_digits, char **ret_error);

/* ExportCosts.price, userdata the pricer, once its currency was asked
 * (it rounds to its minor unit). Rows no tariff prices any of are not
 * priced; the query's errors as they are. */
int export_pricer_price(void *userdata, size_t device, const ExportPeriod *rows, size_t n, ExportCost *ret,
                        char **ret_error);
