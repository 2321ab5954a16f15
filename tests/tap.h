/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A minimal TAP producer for meson's `protocol: 'tap'`. One test binary is
 * one translation unit, so the state lives in a static in this header.
 *
 *   plan(n);                    optional: "1..n" up front
 *   ok(cond, "name %d", i);     every check is one numbered TAP line
 *   is_int(got, want, "name");  prints got/want as diagnostics on failure
 *   is_str(got, want, "name");  NULL-safe
 *   diag("fmt", ...);           "# ..." comment line
 *   return done_testing();      prints the plan if none was given; returns
 *                               the exit code (non-zero on any failure or
 *                               when the count does not match the plan)
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static struct {
        unsigned planned;
        unsigned run;
        unsigned failed;
} tap_state;

static inline void plan(unsigned n) {
        tap_state.planned = n;
        printf("1..%u\n", n);
        fflush(stdout);
}

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...) {
        va_list ap;
        fputs("# ", stdout);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
}

__attribute__((format(printf, 2, 0))) static inline bool tap_vok(bool cond, const char *fmt, va_list ap) {
        tap_state.run++;
        if (!cond)
                tap_state.failed++;
        printf("%sok %u - ", cond ? "" : "not ", tap_state.run);
        vprintf(fmt, ap);
        fputc('\n', stdout);
        fflush(stdout);
        return cond;
}

__attribute__((format(printf, 2, 3))) static inline bool ok(bool cond, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        bool r = tap_vok(cond, fmt, ap);
        va_end(ap);
        return r;
}

__attribute__((format(printf, 3, 4))) static inline bool is_int(int64_t got, int64_t want, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        bool r = tap_vok(got == want, fmt, ap);
        va_end(ap);
        if (!r)
                diag("     got: %" PRId64 "\n#   wanted: %" PRId64, got, want);
        return r;
}

__attribute__((format(printf, 3, 4))) static inline bool is_str(const char *got, const char *want, const char *fmt,
                                                                  ...) {
        va_list ap;
        bool same = got && want ? strcmp(got, want) == 0 : got == want;
        va_start(ap, fmt);
        bool r = tap_vok(same, fmt, ap);
        va_end(ap);
        if (!r)
                diag("     got: %s%s%s\n#   wanted: %s%s%s", got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
                     want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
        return r;
}

static inline int done_testing(void) {
        if (tap_state.planned == 0)
                printf("1..%u\n", tap_state.run);
        else if (tap_state.run != tap_state.planned)
                diag("planned %u tests but ran %u", tap_state.planned, tap_state.run);
        if (tap_state.failed > 0)
                diag("failed %u of %u tests", tap_state.failed, tap_state.run);
        fflush(stdout);
        bool plan_ok = tap_state.planned == 0 || tap_state.run == tap_state.planned;
        return tap_state.failed == 0 && plan_ok && tap_state.run > 0 ? 0 : 1;
}
