/* SPDX-License-Identifier: MIT */

/* What a schedule reads as: its timer's times from systemd, its JSON
 * description, and the day's sun times for a place. */

#include <errno.h>
#include <jansson.h>
#include <math.h>

#include "macro.h"
#include "schedule.h"
#include "schedule-internal.h"

void scheduler_timer_times(Scheduler *s, Schedule *sch, uint64_t *ret_next, uint64_t *ret_last) {
        uint64_t next = 0, last = 0;

        if (sch->armed_timer &&
            s->config.systemd->timer_times(s->config.systemd_userdata, sch->armed_timer, &next, &last) < 0)
                next = last = 0;
        /* systemd says "never" with USEC_INFINITY. */
        if (next == UINT64_MAX)
                next = 0;
        if (last == UINT64_MAX)
                last = 0;
        /* A sun schedule's timer is new each day: before it elapses, the
         * last trigger is that of the day before, which kasamond recorded. */
        if (last == 0 && sch->sun_event >= 0)
                last = sch->rec.last_run_usec;
        *ret_next = next;
        *ret_last = last;
}

static json_t *time_or_null(uint64_t t) {
        return t ? json_integer((json_int_t) t) : json_null();
}

char *schedule_describe(Scheduler *s, Schedule *sch) {
        _cleanup_(json_decrefp) json_t *o = NULL, *devices = json_array();
        uint64_t next, last;

        if (!devices)
                return NULL;
        for (char **d = sch->rec.devices; *d; d++)
                json_array_append_new(devices, json_string(*d));
        scheduler_timer_times(s, sch, &next, &last);
        o = json_pack("{s:I,s:s,s:O,s:s,s:o,s:o,s:I,s:I,s:b,s:b,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:o}",
                      "id", (json_int_t) sch->rec.id,
                      "path", sch->path,
                      "devices", devices,
                      "action", sch->rec.action,
                      "calendar", sch->rec.calendar ? json_string(sch->rec.calendar) : json_null(),
                      "sun_event", sch->rec.sun_event ? json_string(sch->rec.sun_event) : json_null(),
                      "sun_offset_usec", (json_int_t) sch->rec.sun_offset_usec,
                      "random_delay_usec", (json_int_t) sch->rec.random_delay_usec,
                      "persistent", sch->rec.persistent,
                      "enabled", sch->rec.enabled,
                      "valid_from", time_or_null(sch->rec.valid_from_usec),
                      "valid_until", time_or_null(sch->rec.valid_until_usec),
                      "next_elapse", time_or_null(next),
                      "last_trigger", time_or_null(last),
                      "last_run", time_or_null(sch->rec.last_run_usec),
                      "last_result", sch->rec.last_result,
                      "timer", sch->armed_timer ? json_string(sch->armed_timer) : json_null(),
                      "sun_remark", sch->sun_remark ? json_string(sch->sun_remark) : json_null());
        if (!o)
                return NULL;
        return json_dumps(o, JSON_COMPACT);
}

int scheduler_sun_times(Scheduler *s, uint64_t t, double lat, double lon, uint64_t times[static _SUN_EVENT_MAX],
                        const char *remarks[static _SUN_EVENT_MAX]) {
        if (isnan(lat) || isnan(lon)) {
                if (!scheduler_have_location(s))
                        return -ENODATA;
                lat = s->config.latitude;
                lon = s->config.longitude;
        }
        if (sun_check_location(lat, lon) < 0)
                return -EINVAL;
        int64_t noon = s->config.host->local_noon(s->config.host_userdata, t, 0);
        for (SunEvent e = 0; e < _SUN_EVENT_MAX; e++) {
                int64_t at = 0;
                int r = sun_event_time(lat, lon, noon, e, &at);

                if (r < 0)
                        return r;
                times[e] = r == SUN_OK && at > 0 ? (uint64_t) at : 0;
                remarks[e] = sun_result_to_string(e, r);
        }
        return 0;
}
