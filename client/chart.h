/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ChartPoint {
        uint64_t time; /* usec since the epoch */
        double value;
} ChartPoint;

/* Draws value over time from..to as a filled area of Unicode blocks, with a
 * value axis on the left and the two ends of the time axis below. Columns
 * between points closer than 2.5 typical steps are filled; longer gaps stay
 * empty: a gap in the data is not a zero. */
void chart_draw(FILE *f, const ChartPoint *points, size_t n, uint64_t from, uint64_t to, unsigned width,
                unsigned height, const char *unit, bool colors);
