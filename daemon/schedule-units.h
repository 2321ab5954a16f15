/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The schedules' units, as kasamond asks for them and the generator
 * (kasamond-schedule-generator, run by systemd as root) makes them: a
 * line per armed schedule in SCHEDULE_UNITS_PATH, which kasamond writes
 * and nobody but root reads. The file is untrusted input to the
 * generator: a kasamond taken over could write anything there, so the
 * parser refuses anything that kasamond itself would not write, and the
 * units come from fixed templates in which only the calendar time, the
 * randomised delay and Persistent= vary.
 *
 * The file:
 *   kasamond-schedule-units 1
 *   ID DAY ACTION PERSISTENT RANDOM_USEC CALENDAR
 * one line per unit, fields separated by one space, DAY "-" or YYYYMMDD
 * (a sun event's day, whose CALENDAR is "YYYY-MM-DD HH:MM:SS UTC" of that
 * day), ACTION on, off or toggle, PERSISTENT 0 or 1, CALENDAR to the end
 * of the line; every line ends in a newline. Plain libc: the generator
 * links only this.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* systemd's StateDirectory=kasamond. */
#define SCHEDULE_UNITS_DIR "/var/lib/kasamond"
#define SCHEDULE_UNITS_NAME "schedule-units"
#define SCHEDULE_UNITS_PATH SCHEDULE_UNITS_DIR "/" SCHEDULE_UNITS_NAME
#define SCHEDULE_UNITS_HEADER "kasamond-schedule-units 1\n"
#define SCHEDULE_UNITS_PREFIX "kasamond-schedule-"
/* The user the services run as, and the unit whose start pulls in the
 * timers at boot. */
#define SCHEDULE_UNITS_USER "kasamond"
#define SCHEDULE_UNITS_WANTED_BY "kasamond.service"
#define SCHEDULE_UNITS_MAX 4096
#define SCHEDULE_UNITS_FILE_MAX (1024 * 1024)
#define SCHEDULE_CALENDAR_MAX 256
#define SCHEDULE_UNIT_RANDOM_MAX_USEC (24 * 3600 * UINT64_C(1000000))

typedef struct ScheduleUnit {
        uint32_t id;                 /* >= 1 */
        char day[9];                 /* "" or YYYYMMDD */
        char action[8];              /* on, off, toggle */
        bool persistent;
        uint64_t random_delay_usec;  /* at most SCHEDULE_UNIT_RANDOM_MAX_USEC */
        char calendar[SCHEDULE_CALENDAR_MAX + 1];
} ScheduleUnit;

/* Fills u; -EINVAL (and why, a static string) if any field is not one
 * kasamond would write. */
int schedule_unit_init(ScheduleUnit *u, uint32_t id, const char *day, const char *action, bool persistent,
                       uint64_t random_delay_usec, const char *calendar, const char **ret_why);

/* "kasamond-schedule-ID[-DAY].SUFFIX" into buf (at least 64 bytes). */
void schedule_unit_name(const ScheduleUnit *u, const char *suffix, char buf[static 64]);

/* The file's text (free()). */
int schedule_units_format(const ScheduleUnit *units, size_t n, char **ret);

/* Strict: the whole file or nothing. -EBADMSG with "line N: why" in
 * ret_error (free()); the input itself is never quoted, as root may have
 * been pointed at a file that is not ours. */
int schedule_units_parse(const char *data, size_t size, ScheduleUnit **ret, size_t *ret_n, char **ret_error);

/* The unit files' text from the fixed templates (free()). */
int schedule_unit_timer_text(const ScheduleUnit *u, char **ret);
int schedule_unit_service_text(const ScheduleUnit *u, const char *kasactl, char **ret);

/* Writes every unit into the directory dir_fd, each timer wanted by
 * SCHEDULE_UNITS_WANTED_BY. -errno and why. */
int schedule_units_generate(int dir_fd, const ScheduleUnit *units, size_t n, const char *kasactl,
                            char **ret_error);
