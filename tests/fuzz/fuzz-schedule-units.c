/* SPDX-License-Identifier: MIT */

/* The list of schedule units is written by kasamond and read by
 * kasamond-schedule-generator as root: a kasamond taken over could write
 * anything. A refusal is -EBADMSG with "line N: ..."; whatever is accepted
 * is written back the same, and every unit made of it has each value on
 * its own line, with no character a unit file would read as more. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "schedule-units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *text) {
        fuzz_assert(!strchr(text, '\\') && !strchr(text, '%') && !strchr(text, '\r') && !strchr(text, '"'));
        for (const char *p = text; *p; p++)
                fuzz_assert(*p == '\n' || (*p >= 0x20 && *p < 0x7f));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ScheduleUnit *units = NULL;
        char *err = NULL, *text = NULL;
        size_t n = 0;

        int r = schedule_units_parse((const char *) data, size, &units, &n, &err);
        if (r < 0) {
                fuzz_assert(r == -ENOMEM || (r == -EBADMSG && err && strncmp(err, "line ", 5) == 0));
                free(err);
                return 0;
        }
        fuzz_assert(!err && n <= SCHEDULE_UNITS_MAX);
        fuzz_assert(schedule_units_format(units, n, &text) == 0);
        fuzz_assert(strlen(text) == size && memcmp(text, data, size) == 0);
        free(text);
        for (size_t i = 0; i < n; i++) {
                char *timer = NULL, *service = NULL;

                fuzz_assert(schedule_unit_timer_text(&units[i], &timer) == 0);
                fuzz_assert(schedule_unit_service_text(&units[i], "/usr/bin/kasactl", &service) == 0);
                check_text(timer);
                check_text(service);
                /* One OnCalendar= line, the template's. */
                fuzz_assert(strstr(timer, "\nOnCalendar=") && !strstr(strstr(timer, "\nOnCalendar=") + 1, "\nOnCalendar="));
                free(timer);
                free(service);
        }
        free(units);
        return 0;
}
