/* SPDX-License-Identifier: MIT */

#include "schedule-units.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_alnum(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* What systemd's normalized calendar expressions are made of: weekday
 * names, numbers, "*", ",", "..", ":", "/", "~", and time zones such as
 * UTC, Europe/Berlin or Etc/GMT+5. No "%" (unit files expand specifiers in
 * OnCalendar=), no "\" (a line continuation), no quotes, no control
 * characters: the value cannot reach beyond its line or mean more than a
 * calendar. */
static bool calendar_char_ok(char c) {
        return is_alnum(c) || strchr(" *,.:/~+-_", c) != NULL;
}

static bool all_digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!is_digit(s[i]))
                        return false;
        return true;
}

static int num(const char *s, size_t n) {
        int v = 0;
        for (size_t i = 0; i < n; i++)
                v = v * 10 + (s[i] - '0');
        return v;
}

static bool day_ok(const char *day) {
        if (strlen(day) != 8 || !all_digits(day, 8))
                return false;
        int y = num(day, 4), m = num(day + 4, 2), d = num(day + 6, 2);
        static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        if (y < 1970 || m < 1 || m > 12 || d < 1)
                return false;
        return d <= mdays[m - 1] && !(m == 2 && d == 29 && !leap);
}

/* A sun event's one-off time: "YYYY-MM-DD HH:MM:SS UTC" on that day. */
static bool one_off_ok(const char *cal, const char *day) {
        if (strlen(cal) != 23 || strcmp(cal + 19, " UTC") != 0)
                return false;
        if (!all_digits(cal, 4) || cal[4] != '-' || !all_digits(cal + 5, 2) || cal[7] != '-' ||
            !all_digits(cal + 8, 2) || cal[10] != ' ' || !all_digits(cal + 11, 2) || cal[13] != ':' ||
            !all_digits(cal + 14, 2) || cal[16] != ':' || !all_digits(cal + 17, 2))
                return false;
        if (memcmp(cal, day, 4) != 0 || memcmp(cal + 5, day + 4, 2) != 0 || memcmp(cal + 8, day + 6, 2) != 0)
                return false;
        return num(cal + 11, 2) < 24 && num(cal + 14, 2) < 60 && num(cal + 17, 2) < 60;
}

static const char *calendar_why(const char *cal, const char *day) {
        size_t n = strlen(cal);

        if (n == 0 || n > SCHEDULE_CALENDAR_MAX)
                return "calendar empty or too long";
        if (cal[0] == ' ' || cal[n - 1] == ' ' || strstr(cal, "  "))
                return "calendar with stray spaces";
        for (size_t i = 0; i < n; i++)
                if (!calendar_char_ok(cal[i]))
                        return "calendar with a character no calendar expression has";
        if (*day && !one_off_ok(cal, day))
                return "a day's unit without a one-off time of that day";
        return NULL;
}

int schedule_unit_init(ScheduleUnit *u, uint32_t id, const char *day, const char *action, bool persistent,
                       uint64_t random_delay_usec, const char *calendar, const char **ret_why) {
        const char *why = NULL;

        if (id == 0)
                why = "id 0";
        else if (*day && !day_ok(day))
                why = "not a day";
        else if (strcmp(action, "on") != 0 && strcmp(action, "off") != 0 && strcmp(action, "toggle") != 0)
                why = "unknown action";
        else if (random_delay_usec > SCHEDULE_UNIT_RANDOM_MAX_USEC)
                why = "randomized delay over a day";
        else
                why = calendar_why(calendar, day);
        if (why) {
                if (ret_why)
                        *ret_why = why;
                return -EINVAL;
        }
        *u = (ScheduleUnit) { .id = id, .persistent = persistent, .random_delay_usec = random_delay_usec };
        strcpy(u->day, day);
        strcpy(u->action, action);
        strcpy(u->calendar, calendar);
        return 0;
}

void schedule_unit_name(const ScheduleUnit *u, const char *suffix, char buf[static 64]) {
        if (*u->day)
                snprintf(buf, 64, SCHEDULE_UNITS_PREFIX "%" PRIu32 "-%s.%s", u->id, u->day, suffix);
        else
                snprintf(buf, 64, SCHEDULE_UNITS_PREFIX "%" PRIu32 ".%s", u->id, suffix);
}

int schedule_units_format(const ScheduleUnit *units, size_t n, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fputs(SCHEDULE_UNITS_HEADER, f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%" PRIu32 " %s %s %d %" PRIu64 " %s\n", units[i].id, *units[i].day ? units[i].day : "-",
                        units[i].action, units[i].persistent, units[i].random_delay_usec, units[i].calendar);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

static int parse_error(char **ret_error, size_t line, const char *why) {
        if (ret_error && asprintf(ret_error, "line %zu: %s", line, why) < 0)
                *ret_error = NULL;
        return -EBADMSG;
}

/* A decimal number without sign or leading zeros, at most max. */
static bool parse_u64(const char *s, size_t n, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;

        if (n == 0 || n > 20 || !all_digits(s, n) || (n > 1 && s[0] == '0'))
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned d = (unsigned) (s[i] - '0');
                if (d > max || v > (max - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *ret = v;
        return true;
}

/* The next field of a line, up to a space (or the end of the line when
 * last). */
static bool next_field(const char **p, const char *end, bool last, const char **ret, size_t *ret_n) {
        const char *s = *p, *e = last ? end : memchr(s, ' ', (size_t) (end - s));

        if (!e || e == s)
                return false;
        *ret = s;
        *ret_n = (size_t) (e - s);
        *p = last ? end : e + 1;
        return true;
}

static int parse_line(const char *s, const char *end, ScheduleUnit *u, const char **ret_why) {
        const char *f[6];
        size_t n[6];
        char day[9] = "", action[8], calendar[SCHEDULE_CALENDAR_MAX + 1];
        uint64_t id, persistent, random;

        /* A NUL would end a field early for the string checks below. */
        if (memchr(s, 0, (size_t) (end - s))) {
                *ret_why = "a NUL byte";
                return -EINVAL;
        }
        for (int i = 0; i < 6; i++)
                if (!next_field(&s, end, i == 5, &f[i], &n[i])) {
                        *ret_why = "not six fields separated by single spaces";
                        return -EINVAL;
                }
        if (!parse_u64(f[0], n[0], UINT32_MAX, &id)) {
                *ret_why = "not an id";
                return -EINVAL;
        }
        if (n[1] == 8)
                memcpy(day, f[1], 8);
        else if (n[1] != 1 || f[1][0] != '-') {
                *ret_why = "not a day or -";
                return -EINVAL;
        }
        if (n[2] >= sizeof action || !parse_u64(f[3], n[3], 1, &persistent) ||
            !parse_u64(f[4], n[4], SCHEDULE_UNIT_RANDOM_MAX_USEC, &random) || n[5] > SCHEDULE_CALENDAR_MAX) {
                *ret_why = "bad action, Persistent, delay or calendar";
                return -EINVAL;
        }
        memcpy(action, f[2], n[2]);
        action[n[2]] = 0;
        memcpy(calendar, f[5], n[5]);
        calendar[n[5]] = 0;
        return schedule_unit_init(u, (uint32_t) id, day, action, persistent, random, calendar, ret_why);
}

int schedule_units_parse(const char *data, size_t size, ScheduleUnit **ret, size_t *ret_n, char **ret_error) {
        size_t hlen = strlen(SCHEDULE_UNITS_HEADER), n = 0, line = 1;
        const char *p = data, *end = data + size;
        ScheduleUnit *units = NULL;

        if (size > SCHEDULE_UNITS_FILE_MAX)
                return parse_error(ret_error, 0, "file too large");
        if (size < hlen || memcmp(data, SCHEDULE_UNITS_HEADER, hlen) != 0)
                return parse_error(ret_error, 1, "not a kasamond-schedule-units 1 file");
        p += hlen;
        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p)), *why = NULL;
                ScheduleUnit *grown;

                line++;
                if (!nl) {
                        free(units);
                        return parse_error(ret_error, line, "no newline at the end (a truncated file?)");
                }
                if (n >= SCHEDULE_UNITS_MAX) {
                        free(units);
                        return parse_error(ret_error, line, "too many units");
                }
                grown = realloc(units, (n + 1) * sizeof(ScheduleUnit));
                if (!grown) {
                        free(units);
                        return -ENOMEM;
                }
                units = grown;
                if (parse_line(p, nl, &units[n], &why) < 0) {
                        free(units);
                        return parse_error(ret_error, line, why);
                }
                for (size_t i = 0; i < n; i++)
                        if (units[i].id == units[n].id) {
                                free(units);
                                return parse_error(ret_error, line, "a schedule listed twice");
                        }
                n++;
                p = nl + 1;
        }
        *ret = units;
        *ret_n = n;
        return 0;
}

#define GENERATED "# Generated by kasamond-schedule-generator from " SCHEDULE_UNITS_PATH ", see kasamond(8).\n"

int schedule_unit_timer_text(const ScheduleUnit *u, char **ret) {
        char service[64];

        schedule_unit_name(u, "service", service);
        /* AccuracySec=1s: a schedule at 07:00 switches at 07:00, not within
         * the default minute. */
        if (asprintf(ret,
                     GENERATED
                     "[Unit]\n"
                     "Description=kasamond schedule %" PRIu32 ": %s\n"
                     "Documentation=man:kasamond(8)\n"
                     "SourcePath=" SCHEDULE_UNITS_PATH "\n"
                     "\n"
                     "[Timer]\n"
                     "OnCalendar=%s\n"
                     "AccuracySec=1s\n"
                     "RandomizedDelaySec=%" PRIu64 "us\n"
                     "Persistent=%s\n"
                     "Unit=%s\n",
                     u->id, u->action, u->calendar, u->random_delay_usec, u->persistent ? "yes" : "no",
                     service) < 0)
                return -ENOMEM;
        return 0;
}

int schedule_unit_service_text(const ScheduleUnit *u, const char *kasactl, char **ret) {
        /* The service only makes one D-Bus call, as kasamond's user, and
         * only after kasamond is up (a Persistent timer catching up at
         * boot). */
        if (asprintf(ret,
                     GENERATED
                     "[Unit]\n"
                     "Description=kasamond schedule %" PRIu32 ": %s\n"
                     "Documentation=man:kasamond(8)\n"
                     "SourcePath=" SCHEDULE_UNITS_PATH "\n"
                     "After=" SCHEDULE_UNITS_WANTED_BY "\n"
                     "\n"
                     "[Service]\n"
                     "Type=oneshot\n"
                     "User=" SCHEDULE_UNITS_USER "\n"
                     "ExecStart=%s schedule fire %" PRIu32 "\n"
                     "NoNewPrivileges=yes\n"
                     "ProtectSystem=strict\n"
                     "ProtectHome=yes\n"
                     "PrivateTmp=yes\n",
                     u->id, u->action, kasactl, u->id) < 0)
                return -ENOMEM;
        return 0;
}

static int generate_error(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int generate_error(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

static int write_file(int dir_fd, const char *name, const char *text) {
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        size_t len = strlen(text), done = 0;

        if (fd < 0)
                return -errno;
        while (done < len) {
                ssize_t w = write(fd, text + done, len - done);
                if (w < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                done += (size_t) w;
        }
        return close(fd) < 0 ? -errno : 0;
}

int schedule_units_generate(int dir_fd, const ScheduleUnit *units, size_t n, const char *kasactl,
                            char **ret_error) {
        const char *wants = SCHEDULE_UNITS_WANTED_BY ".wants";
        int r;

        if (n > 0 && mkdirat(dir_fd, wants, 0755) < 0 && errno != EEXIST)
                return generate_error(ret_error, -errno, "Failed to create %s: %s", wants, strerror(errno));
        for (size_t i = 0; i < n; i++) {
                char timer[64], service[64], link[128], target[80];
                char *text = NULL;

                schedule_unit_name(&units[i], "timer", timer);
                schedule_unit_name(&units[i], "service", service);
                r = schedule_unit_timer_text(&units[i], &text);
                if (r >= 0) {
                        r = write_file(dir_fd, timer, text);
                        free(text);
                        text = NULL;
                }
                if (r < 0)
                        return generate_error(ret_error, r, "Failed to write %s: %s", timer, strerror(-r));
                r = schedule_unit_service_text(&units[i], kasactl, &text);
                if (r >= 0) {
                        r = write_file(dir_fd, service, text);
                        free(text);
                }
                if (r < 0)
                        return generate_error(ret_error, r, "Failed to write %s: %s", service, strerror(-r));
                snprintf(link, sizeof link, "%s/%s", wants, timer);
                snprintf(target, sizeof target, "../%s", timer);
                if (symlinkat(target, dir_fd, link) < 0)
                        return generate_error(ret_error, -errno, "Failed to link %s: %s", link, strerror(errno));
        }
        return 0;
}
