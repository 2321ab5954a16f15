/* SPDX-License-Identifier: MIT */

#include "chart.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "time-util.h"

#define AXIS_WIDTH 10 /* "1234.5 W ┤" */

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

void chart_draw(FILE *f, const ChartPoint *points, size_t n, uint64_t from, uint64_t to, unsigned width,
                unsigned height, const char *unit, bool colors) {
        /* Eighth blocks: a cell shows 0..8 eighths of its height. */
        static const char *const eighths[] = { " ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
        _cleanup_free_ double *cols = NULL;
        _cleanup_free_ unsigned *count = NULL;
        char a[TIME_BUF_MAX], b[TIME_BUF_MAX];
        double max = 0;
        unsigned w;

        if (n == 0 || to <= from || width <= AXIS_WIDTH + 10 || height == 0)
                return;
        w = width - AXIS_WIDTH - 1;
        cols = calloc(w, sizeof(double));
        count = calloc(w, sizeof(unsigned));
        if (!cols || !count)
                return;

        /* Several points in one column: the column shows their mean. */
        for (size_t i = 0; i < n; i++) {
                unsigned x;

                if (points[i].time < from || points[i].time >= to)
                        continue;
                x = (unsigned) ((double) (points[i].time - from) / (double) (to - from) * w);
                x = MIN(x, w - 1);
                cols[x] += points[i].value;
                count[x]++;
        }
        for (unsigned x = 0; x < w; x++)
                if (count[x] > 0) {
                        cols[x] /= count[x];
                        max = MAX(max, cols[x]);
                }

        /* Points sparser than columns would leave holes that look like gaps:
         * a column between two points closer than 2.5 typical steps shows
         * the earlier one. Only longer silences stay empty. */
        if (n >= 2) {
                _cleanup_free_ uint64_t *steps = calloc(n - 1, sizeof(uint64_t));
                uint64_t max_gap;
                unsigned last = UINT_MAX;

                if (!steps)
                        return;
                for (size_t i = 1; i < n; i++)
                        steps[i - 1] = points[i].time - points[i - 1].time;
                qsort(steps, n - 1, sizeof(uint64_t), compare_u64);
                max_gap = steps[(n - 1) / 2] * 5 / 2;
                for (unsigned x = 0; x < w; x++) {
                        if (count[x] > 0) {
                                if (last != UINT_MAX && (double) (x - last) * (double) (to - from) / w <= max_gap)
                                        for (unsigned k = last + 1; k < x; k++) {
                                                cols[k] = cols[last];
                                                count[k] = 1;
                                        }
                                last = x;
                        }
                }
        }
        if (max <= 0)
                max = 1;

        for (unsigned row = 0; row < height; row++) {
                unsigned level = height - row; /* counted from the bottom, 1-based */

                if (row == 0)
                        fprintf(f, "%8.1f %s┤", max, unit);
                else if (row == height - 1)
                        fprintf(f, "%8.1f %s┤", 0.0, unit);
                else
                        fprintf(f, "%*s┤", AXIS_WIDTH, "");
                if (colors)
                        fputs("\033[36m", f);
                for (unsigned x = 0; x < w; x++) {
                        long e;

                        if (count[x] == 0) {
                                fputc(' ', f);
                                continue;
                        }
                        /* At least one eighth, so a small non-zero load is visible. */
                        e = lround(cols[x] / max * height * 8);
                        if (cols[x] > 0 && e == 0)
                                e = 1;
                        e -= (long) (level - 1) * 8;
                        fputs(eighths[e <= 0 ? 0 : MIN(e, 8)], f);
                }
                if (colors)
                        fputs("\033[0m", f);
                fputc('\n', f);
        }
        fprintf(f, "%*s└", AXIS_WIDTH, "");
        for (unsigned x = 0; x < w; x++)
                fputs("─", f);
        format_time(a, sizeof(a), from, false);
        format_time(b, sizeof(b), to, false);
        fprintf(f, "\n%*s%s%*s\n", AXIS_WIDTH + 1, "", a, (int) (w > strlen(a) ? w - strlen(a) : 1), b);
}
