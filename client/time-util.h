/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kasa-time.h"

/* Times are microseconds since the epoch, as on the bus. */

uint64_t now_usec(void);

/* Parses a time as a person writes it, relative to now (local time zone):
 * "now", "today", "yesterday", "tomorrow"; a relative span "-24h", "+1h30min",
 * "-7d"; "@SECONDS" since the epoch; ISO 8601 "2026-11-27",
 * "2026-11-27T08:00", "2026-11-27 08:00:30", optionally followed by "Z" or an
 * offset "+01:00" / "-0500" (without one the time is local). */
int parse_time(const char *s, uint64_t now, uint64_t *ret);

/* A span such as "30min", "1h30min", "90" (seconds), with an optional
 * sign ("+15min", "-1h"), in usec. */
int parse_span(const char *s, int64_t *ret);

/* Start of the local day containing t, plus days (may be negative). */
uint64_t local_day_start(uint64_t t, int days);
/* Start of the local month containing t, plus months (may be negative). */
uint64_t local_month_start(uint64_t t, int months);

/* "2026-11-27 08:00:30" in local time (iso: "2026-11-27T08:00:30+01:00"). */
char *format_time(char *buf, size_t size, uint64_t t, bool iso);
#define TIME_BUF_MAX 40
