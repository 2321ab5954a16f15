/* SPDX-License-Identifier: MIT */
/* The list kasamond writes and kasamond-schedule-generator, as root,
 * makes units from: what it accepts, what it refuses, what it writes. */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "schedule-units.h"
#include "tap.h"

#define HEADER "kasamond-schedule-units 1\n"

static int parse(const char *text, ScheduleUnit **units, size_t *n, char **error) {
        return schedule_units_parse(text, strlen(text), units, n, error);
}

static void refused(const char *text, size_t len, const char *name) {
        ScheduleUnit *units = NULL;
        size_t n = 0;
        char *error = NULL;
        int r = schedule_units_parse(text, len, &units, &n, &error);

        ok(r == -EBADMSG && error && !units, "refused: %s (%s)", name, error ?: "no message");
        free(error);
        free(units);
}

/* A literal, NUL bytes inside included. */
#define REFUSED(lit, name) refused(lit, sizeof(lit) - 1, name)

static void test_parse(void) {
        const char *good = HEADER "1 - off 1 1800000000 Mon..Fri *-*-* 07:00:00\n"
                                  "2 20240621 on 0 0 2024-06-21 20:36:10 UTC\n"
                                  "3 - toggle 0 0 *-*-* 06:30:00 Europe/Berlin\n"
                                  "4 - on 0 0 hourly\n";
        ScheduleUnit *units = NULL;
        size_t n = 0;
        char *error = NULL, *text = NULL;

        ok(parse(good, &units, &n, &error) == 0 && n == 4, "a list kasamond writes is read");
        ok(n == 4 && units[0].id == 1 && units[0].persistent && units[0].random_delay_usec == 1800000000 &&
           strcmp(units[0].calendar, "Mon..Fri *-*-* 07:00:00") == 0 && strcmp(units[0].action, "off") == 0 &&
           !*units[0].day, "its fields");
        ok(n == 4 && strcmp(units[1].day, "20240621") == 0 && strcmp(units[1].calendar, "2024-06-21 20:36:10 UTC") == 0,
           "a sun event's day");
        ok(schedule_units_format(units, n, &text) == 0 && strcmp(text, good) == 0, "written back the same");
        free(text);
        free(units);
        ok(parse(HEADER, &units, &n, &error) == 0 && n == 0, "an empty list");
        free(units);

        REFUSED("", "empty file");
        REFUSED("kasamond-schedule-units 2\n", "another version");
        REFUSED(HEADER "1 - on 0 0 daily", "no newline at the end");
        REFUSED(HEADER "1 - on 0 0 daily\n1 - off 0 0 hourly\n", "a schedule twice");
        REFUSED(HEADER "0 - on 0 0 daily\n", "id 0");
        REFUSED(HEADER "01 - on 0 0 daily\n", "a leading zero");
        REFUSED(HEADER "4294967296 - on 0 0 daily\n", "an id past 32 bits");
        REFUSED(HEADER "1 - dim 0 0 daily\n", "an unknown action");
        REFUSED(HEADER "1 - on 2 0 daily\n", "Persistent 2");
        REFUSED(HEADER "1 - on 0 86400000001 daily\n", "a delay over a day");
        REFUSED(HEADER "1 - on 0 -5 daily\n", "a negative delay");
        REFUSED(HEADER "1 -  on 0 0 daily\n", "two spaces");
        REFUSED(HEADER "1 - on 0 0\n", "no calendar");
        REFUSED(HEADER "1 - on 0 0 daily \n", "a trailing space");
        REFUSED(HEADER "1 - on 0 0 daily\r\n", "a carriage return");
        REFUSED(HEADER "1 - on 0 0 daily\\\n", "a line continuation");
        REFUSED(HEADER "1 - on 0 0 %h\n", "a specifier");
        REFUSED(HEADER "1 - on 0 0 daily\"\n", "a quote");
        REFUSED(HEADER "1 - on 0 0 dai\001ly\n", "a control character");
        REFUSED(HEADER "1 - on 0 0 daily\0ExecStart=/bin/sh\n", "a NUL byte");
        /* Found by fuzz-schedule-units: NULs as the day read as no day. */
        REFUSED(HEADER "1 \0\0\0\0\0\0\0- off 1 180000 0 0 - off 1 18000036:10 UTC\n", "NUL bytes as the day");
        REFUSED(HEADER "1 20240230 on 0 0 2024-02-30 10:00:00 UTC\n", "the 30th of February");
        REFUSED(HEADER "1 20240621 on 0 0 daily\n", "a day's unit that is not a one-off");
        REFUSED(HEADER "1 20240621 on 0 0 2024-06-22 10:00:00 UTC\n", "a one-off on another day");
        REFUSED(HEADER "1 2024062 on 0 0 daily\n", "a short day");

        GString *big = g_string_new(HEADER);
        g_string_append(big, "1 - on 0 0 ");
        for (int i = 0; i <= SCHEDULE_CALENDAR_MAX; i++)
                g_string_append_c(big, '*');
        g_string_append_c(big, '\n');
        refused(big->str, big->len, "a calendar too long");
        g_string_assign(big, HEADER);
        for (int i = 1; i <= SCHEDULE_UNITS_MAX + 1; i++)
                g_string_append_printf(big, "%d - on 0 0 daily\n", i);
        refused(big->str, big->len, "too many units");
        g_string_free(big, TRUE);
}

static char *read_at(const char *dir, const char *name) {
        char *path = g_build_filename(dir, name, NULL), *text = NULL;

        g_file_get_contents(path, &text, NULL, NULL);
        g_free(path);
        return text;
}

static void test_generate(const char *analyze) {
        char dir[] = "/tmp/test-schedule-units-XXXXXX";
        ScheduleUnit u[2];
        char *error = NULL, *text;
        int fd;

        g_assert(mkdtemp(dir));
        ok(schedule_unit_init(&u[0], 3, "", "off", true, 600000000, "Mon..Fri *-*-* 07:00:00", NULL) == 0 &&
           schedule_unit_init(&u[1], 4, "20240621", "on", false, 0, "2024-06-21 20:36:10 UTC", NULL) == 0,
           "two units");
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok(schedule_units_generate(fd, u, 2, "/bin/true", &error) == 0, "are generated (%s)", error ?: "");

        text = read_at(dir, "kasamond-schedule-3.timer");
        ok(text && strstr(text, "\nOnCalendar=Mon..Fri *-*-* 07:00:00\n") && strstr(text, "\nAccuracySec=1s\n") &&
           strstr(text, "\nRandomizedDelaySec=600000000us\n") && strstr(text, "\nPersistent=yes\n") &&
           strstr(text, "\nUnit=kasamond-schedule-3.service\n"),
           "the timer: calendar, accuracy, delay, Persistent, its service");
        g_free(text);
        text = read_at(dir, "kasamond-schedule-3.service");
        ok(text && strstr(text, "\nUser=kasamond\n") && strstr(text, "\nExecStart=/bin/true schedule fire 3\n") &&
           strstr(text, "\nType=oneshot\n") && strstr(text, "\nAfter=kasamond.service\n"),
           "the service: kasactl schedule fire 3 as the user kasamond, after kasamond");
        g_free(text);
        text = read_at(dir, "kasamond-schedule-4-20240621.timer");
        ok(text && strstr(text, "\nOnCalendar=2024-06-21 20:36:10 UTC\n") && strstr(text, "\nPersistent=no\n"),
           "a sun event's timer, named after its day");
        g_free(text);
        char *link = g_build_filename(dir, "kasamond.service.wants", "kasamond-schedule-3.timer", NULL);
        char *target = g_file_read_link(link, NULL);
        is_str(target, "../kasamond-schedule-3.timer", "kasamond.service wants each timer");
        g_free(target);

        /* systemd's own reading of what the templates make. */
        const char *units[] = { "kasamond-schedule-3.timer", "kasamond-schedule-3.service",
                          "kasamond-schedule-4-20240621.timer", "kasamond-schedule-4-20240621.service" };
        GPtrArray *argv = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(argv, g_strdup(analyze));
        g_ptr_array_add(argv, g_strdup("verify"));
        g_ptr_array_add(argv, g_strdup("--man=no"));
        for (size_t i = 0; i < G_N_ELEMENTS(units); i++)
                g_ptr_array_add(argv, g_build_filename(dir, units[i], NULL));
        g_ptr_array_add(argv, NULL);
        char *out = NULL, *err = NULL;
        int status = -1;
        bool ran = g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                                NULL);
        ok(ran && g_spawn_check_wait_status(status, NULL) && !*out && !*err,
           "systemd-analyze verify accepts them without a word (%s%s)", out ?: "", err ?: "");
        g_free(out);
        g_free(err);
        g_ptr_array_free(argv, TRUE);

        ok(schedule_units_generate(fd, u, 1, "/bin/true", &error) == -EEXIST,
           "an existing file is never overwritten");
        free(error);
        close(fd);

        g_unlink(link);
        g_free(link);
        link = g_build_filename(dir, "kasamond.service.wants", "kasamond-schedule-4-20240621.timer", NULL);
        g_unlink(link);
        g_free(link);
        char *wants = g_build_filename(dir, "kasamond.service.wants", NULL);
        g_rmdir(wants);
        g_free(wants);
        for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
                char *p = g_build_filename(dir, units[i], NULL);
                g_unlink(p);
                g_free(p);
        }
        ok(g_rmdir(dir) == 0, "nothing else was written");
}

int main(int argc, char **argv) {
        test_parse();
        test_generate(argc > 1 ? argv[1] : "/usr/bin/systemd-analyze");
        return done_testing();
}
