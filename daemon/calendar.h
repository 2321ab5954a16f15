/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Local-time period boundaries (hour, day, month) in one time zone, DST
 * included. All timestamps are UTC milliseconds since the epoch.
 *
 * Days and months are the user's civil days and months: a day can last 23,
 * 24 or 25 hours (or, where a zone skipped a date, be absent). Hours are real
 * hours on the local wall clock: each period starts at a local full hour or
 * at an offset change, so around a transition a bucket may be shorter than an
 * hour (e.g. 30 minutes on Lord Howe Island) but buckets never overlap and
 * the repeated hour of a fall-back transition yields two separate buckets. */

typedef struct Calendar Calendar;

/* "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM:SS" plus NUL, with room for any int64 year
 * (and for what the compiler cannot prove about field widths). */
#define CALENDAR_ISO8601_MAX 96

/* tz: an IANA name ("Europe/Berlin"); NULL or "" means the system's local
 * zone. Returns NULL if the zone is unknown. */
Calendar *calendar_new(const char *tz);
Calendar *calendar_free(Calendar *c);

int64_t calendar_hour_start(const Calendar *c, int64_t ts_ms);
int64_t calendar_next_hour(const Calendar *c, int64_t ts_ms);
int64_t calendar_day_start(const Calendar *c, int64_t ts_ms);
int64_t calendar_next_day(const Calendar *c, int64_t ts_ms);
int64_t calendar_month_start(const Calendar *c, int64_t ts_ms);
int64_t calendar_next_month(const Calendar *c, int64_t ts_ms);

/* The start of local date year-month-day (month 1..12, day 1..31, a
 * date that exists); INT64_MIN when it does not. */
int64_t calendar_date_start(const Calendar *c, int year, int month, int day);
/* The local date of ts_ms. */
void calendar_date(const Calendar *c, int64_t ts_ms, int *ret_year, int *ret_month, int *ret_day);
/* Days in a month of the proleptic Gregorian calendar (0 for a month out
 * of 1..12). */
int calendar_month_days(int year, int month);

/* Local ISO 8601 with offset, e.g. "2024-03-31T03:00:00+02:00";
 * milliseconds are added only when not zero. Returns buf. */
char *calendar_format_iso8601(const Calendar *c, int64_t ts_ms, char buf[static CALENDAR_ISO8601_MAX]);
