/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Sunrise, sunset and civil twilight with NOAA's solar equations (the
 * "General Solar Position" of the NOAA Solar Calculator, after Meeus).
 * Pure arithmetic: no clock, no time zone, no D-Bus.
 *
 * A day's events are those of the solar day whose noon (the sun's transit
 * at the longitude) is nearest the civil day's noon, which the caller
 * computes in the place's time zone: so Samoa at UTC+13 gets its own
 * date's sunrise, not that of the date UTC or the longitude suggest. */

typedef enum SunEvent {
        SUN_SUNRISE,
        SUN_SUNSET,
        SUN_CIVIL_DAWN,
        SUN_CIVIL_DUSK,
        _SUN_EVENT_MAX,
        _SUN_EVENT_INVALID = -1,
} SunEvent;

typedef enum SunResult {
        SUN_OK = 0,
        SUN_ALWAYS_ABOVE = 1, /* polar day (or, for twilight, a night that stays light) */
        SUN_ALWAYS_BELOW = 2, /* polar night (or no civil twilight at all) */
} SunResult;

/* "sunrise", "sunset", "civil-dawn", "civil-dusk". */
const char *sun_event_to_string(SunEvent e);
SunEvent sun_event_from_string(const char *s);

/* What a result means for event e, in words ("polar day", ...); NULL for SUN_OK. */
const char *sun_result_to_string(SunEvent e, SunResult r);

/* The event of the day whose local noon is noon_usec (UTC usec since the
 * epoch) at latitude lat (degrees north, -90..90) and longitude lon
 * (degrees east, -180..180): SUN_OK with *ret_usec the UTC time, or
 * SUN_ALWAYS_ABOVE/BELOW when the sun does not cross the event's altitude
 * that day; -EINVAL for a bad position or event. */
int sun_event_time(double lat, double lon, int64_t noon_usec, SunEvent e, int64_t *ret_usec);

/* Whether lat and lon are a position sun_event_time() accepts. */
int sun_check_location(double lat, double lon);
