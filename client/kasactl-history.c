/* SPDX-License-Identifier: MIT */

/* history, energy: what kasamond recorded, as tables, a chart and JSON;
 * backfill: the days before, from the device's own statistics. */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "chart.h"
#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

static int parse_bound(const char *option, const char *value, const char *examples, uint64_t now, uint64_t *t) {
        if (value && parse_time(value, now, t) < 0)
                return log_error_errno(EINVAL, "Invalid --%s='%s': use e.g. 2026-11-27, \"2026-11-27 08:00\", %s.",
                                       option, value, examples);
        return 0;
}

int parse_range(uint64_t default_since, uint64_t now, uint64_t *ret_since, uint64_t *ret_until) {
        uint64_t since = default_since, until = now;
        int r;

        r = parse_bound("since", arg_since, "-24h, today or yesterday", now, &since);
        if (r >= 0)
                r = parse_bound("until", arg_until, "-1h, now or today", now, &until);
        if (r < 0)
                return r;
        if (since >= until)
                return log_error_errno(EINVAL, "--since must be before --until.");
        *ret_since = since;
        *ret_until = until;
        return 0;
}

static int require_meter(const Device *d) {
        if (d->metered)
                return 0;
        log_error("%s (%s) has no energy meter, so there is no history to show.", device_name(d),
                  d->model ? d->model : d->id);
        return -EMEDIUMTYPE;
}

/* The one metered device a verb acts on. */
static int fetch_meter(sd_bus *bus, const char *name, DeviceList *ret_list, Device **ret) {
        int r = fetch_device(bus, name, ret_list, ret);
        return r < 0 ? r : require_meter(*ret);
}

static unsigned terminal_width(void) {
        struct winsize ws;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 80;
}

int verb_history(int argc, char **argv, void *userdata) {
        static const Column cols[] = {
                { "TIME", 0 },
                { "AVERAGE", SCOLS_FL_RIGHT },
                { "MIN", SCOLS_FL_RIGHT },
                { "MAX", SCOLS_FL_RIGHT },
                { "ENERGY", SCOLS_FL_RIGHT },
                { "SOURCE", 0 },
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *samples = json_array();
        _cleanup_free_ ChartPoint *points = NULL;
        uint64_t now = now_usec(), since, until, t;
        double avg, min, max, wh, total = 0;
        char buf[32];
        size_t n = 0;
        Device *d;
        int r;

        if (!streq(arg_resolution, "raw") && !streq(arg_resolution, "minute") && !streq(arg_resolution, "hour") &&
            !streq(arg_resolution, "day"))
                return log_error_errno(EINVAL, "Invalid --resolution='%s': use raw, minute, hour or day.",
                                       arg_resolution);
        r = parse_range(now - USEC_PER_HOUR, now, &since, &until);
        if (r < 0)
                return r;
        r = fetch_meter(userdata, argv[1], &l, &d);
        if (r < 0)
                return r;

        r = new_call(userdata, d->path, KASA_METER_IFACE, "GetHistory", false, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "tts", since, until, arg_resolution);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, NULL, d, &reply, "read the history of %s", device_name(d));
        if (r < 0)
                return r;

        /* Only days can be imported: the source column is theirs. */
        bool days = streq(arg_resolution, "day");
        tb = table_new(cols, ELEMENTSOF(cols) - !days, stdout);
        if (!tb || !samples)
                return log_oom();
        r = sd_bus_message_enter_container(reply, 'a', "(tdddd)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(tdddd)", &t, &avg, &min, &max, &wh)) > 0) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char tbuf[TIME_BUF_MAX];
                ChartPoint *p;

                /* A day imported from the device's statistics has no
                 * minimum or maximum: GetHistory gives NaN for them. */
                bool imported = isnan(min) && isnan(max);
                if (!ln || cell(ln, 0, NULL, "%s", format_time(tbuf, sizeof(tbuf), t, false)) < 0 ||
                    cell(ln, 1, NULL, "%.1f W", avg) < 0 ||
                    (imported ? cell(ln, 2, NULL, "-") : cell(ln, 2, NULL, "%.1f W", min)) < 0 ||
                    (imported ? cell(ln, 3, NULL, "-") : cell(ln, 3, NULL, "%.1f W", max)) < 0 ||
                    cell(ln, 4, NULL, "%.2f Wh", wh) < 0 ||
                    (days && cell(ln, 5, NULL, "%s", imported ? "device" : "kasamond") < 0))
                        return log_oom();
                json_array_append_new(samples, json_pack("{s:o,s:o,s:o,s:o,s:o,s:b}", "time", json_time(t),
                                                         "power_avg", json_reading(avg), "power_min",
                                                         json_reading(min), "power_max", json_reading(max),
                                                         "energy", json_reading(wh), "imported", imported));
                p = reallocarray(points, n + 1, sizeof(ChartPoint));
                if (!p)
                        return log_oom();
                points = p;
                points[n++] = (ChartPoint) { .time = t, .value = avg };
                total += wh;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the history: %m");

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack(
                        "{s:s,s:s,s:s,s:o,s:o,s:O,s:o}", "id", d->id, "alias", d->alias ? d->alias : "",
                        "resolution", arg_resolution, "since", json_time(since), "until", json_time(until),
                        "samples", samples, "energy", json_reading(total));
                return json_print(o);
        }
        if (n == 0) {
                if (arg_legend)
                        printf("No samples of %s in this range.\n", device_name(d));
                return 0;
        }
        r = table_print(tb);
        if (r < 0)
                return r;
        if (arg_legend) {
                if (fabs(total) >= 1000)
                        snprintf(buf, sizeof(buf), "%.3f kWh", total / 1000);
                else
                        snprintf(buf, sizeof(buf), "%.2f Wh", total);
                printf("\n%zu %s, %s.\n", n, plural(n, "sample", "samples"), buf);
        }
        /* The chart is for a person at a terminal; a pipe gets the table only. */
        if (isatty(STDOUT_FILENO)) {
                putchar('\n');
                chart_draw(stdout, points, n, since, until, MIN(terminal_width(), 160u), 10, "W", arg_colors);
        }
        return 0;
}

int verb_backfill(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        uint32_t n;
        Device *d;
        int r;

        r = fetch_meter(userdata, argv[1], &l, &d);
        if (r < 0)
                return r;
        r = new_call(userdata, d->path, KASA_METER_IFACE, "Backfill", true, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, KASA_ACTION_MANAGE_DEVICES, d, &reply, "backfill %s", device_name(d));
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "u", &n);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:s,s:I}", "id", d->id, "days_imported", (json_int_t) n);
                return json_print(o);
        }
        printf("%" PRIu32 " %s imported from the statistics of %s.\n", n, plural(n, "day", "days"), device_name(d));
        return 0;
}

typedef struct EnergySeries {
        Device *device;
        uint64_t *start;
        double *wh;
        size_t n;
        double total;
        bool kwh; /* the column's unit, from its largest value */
} EnergySeries;

static int fetch_energy(sd_bus *bus, EnergySeries *s, uint64_t since, uint64_t until) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        uint64_t t;
        double wh;
        int r;

        r = new_call(bus, s->device->path, KASA_METER_IFACE, "GetEnergy", false, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "tts", since, until, arg_by);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(bus, m, NULL, s->device, &reply, "read the energy of %s", device_name(s->device));
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(td)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(td)", &t, &wh)) > 0) {
                uint64_t *ns = reallocarray(s->start, s->n + 1, sizeof(uint64_t));
                double *nw;

                if (!ns)
                        return log_oom();
                s->start = ns;
                nw = reallocarray(s->wh, s->n + 1, sizeof(double));
                if (!nw)
                        return log_oom();
                s->wh = nw;
                s->start[s->n] = t;
                s->wh[s->n++] = wh;
                s->total += wh;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the energy of %s: %m", device_name(s->device));
        return 0;
}

static void energy_series_free(EnergySeries **s) {
        for (EnergySeries *i = *s; i && i->device; i++) {
                free(i->start);
                free(i->wh);
        }
        free(*s);
}

static const char *format_bucket(char *buf, size_t size, uint64_t t) {
        time_t s = (time_t) (t / USEC_PER_SEC);
        struct tm tm;

        localtime_r(&s, &tm);
        strftime(buf, size, streq(arg_by, "month") ? "%Y-%m" : "%Y-%m-%d", &tm);
        return buf;
}

static double series_at(const EnergySeries *s, uint64_t t) {
        for (size_t i = 0; i < s->n; i++)
                if (s->start[i] == t)
                        return s->wh[i];
        return 0;
}

/* A column in kWh as soon as its largest value (its total) reaches 1 kWh,
 * so that the digits of one column line up. */
static bool wants_kwh(const EnergySeries *s) {
        double max = fabs(s->total);

        for (size_t i = 0; i < s->n; i++)
                max = MAX(max, fabs(s->wh[i]));
        return max >= 1000;
}

/* Outlet columns are called "Outlet 1" on every strip: a line above the
 * headers names the strip over its outlets. Column j + 1 is series j. */
static int print_strip_line(const DeviceList *l, struct libscols_table *tb, const EnergySeries *series,
                            size_t n) {
        _cleanup_free_ char *line = NULL;
        size_t width = 0, *x = calloc(n + 2, sizeof(size_t));
        bool any = false;

        if (!x)
                return log_oom();
        for (size_t c = 0; c < n + 2; c++) {
                struct libscols_column *cl = scols_table_get_column(tb, c);

                x[c] = width;
                if (cl)
                        width += scols_column_get_width(cl) + 1;
        }
        line = malloc(width + 1);
        if (!line) {
                free(x);
                return log_oom();
        }
        memset(line, ' ', width);
        line[width] = 0;
        for (size_t j = 0; j < n;) {
                const Device *d = series[j].device;
                const char *strip = NULL;
                size_t k = j + 1, span, len;

                for (size_t i = 0; i < l->n && !streq(d->parent, "/"); i++)
                        if (streq(l->devices[i].path, d->parent))
                                strip = device_name(&l->devices[i]);
                while (strip && k < n && streq(series[k].device->parent, d->parent))
                        k++;
                if (strip) {
                        span = x[k + 1] - x[j + 1] - 1;
                        len = MIN(strlen(strip), span);
                        while (len > 0 && len < strlen(strip) && ((unsigned char) strip[len] & 0xC0) == 0x80)
                                len--; /* not inside a UTF-8 character */
                        memcpy(line + x[j + 1], strip, len);
                        any = true;
                }
                j = k;
        }
        free(x);
        while (width > 0 && line[width - 1] == ' ')
                line[--width] = 0;
        if (any)
                printf("%s\n", line);
        return 0;
}

static int print_energy(const DeviceList *l, EnergySeries *series, size_t n) {
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = scols_new_table();
        _cleanup_free_ char *text = NULL;
        const EnergySeries *rows = &series[0];
        struct libscols_line *ln;
        char buf[32];
        double total = 0, max_sum = 0;
        bool total_kwh;
        int r;

        if (!tb)
                return log_oom();
        scols_table_enable_noheadings(tb, !arg_legend);
        scols_table_enable_colors(tb, arg_colors);
        if (!scols_table_new_column(tb, streq(arg_by, "month") ? "MONTH" : "DAY", 0, 0))
                return log_oom();
        for (size_t j = 0; j < n; j++) {
                series[j].kwh = wants_kwh(&series[j]);
                if (!scols_table_new_column(tb, device_name(series[j].device), 0, SCOLS_FL_RIGHT))
                        return log_oom();
                if (device_in_total(l, series[j].device))
                        total += series[j].total;
        }
        if (n > 1 && !scols_table_new_column(tb, "TOTAL", 0, SCOLS_FL_RIGHT))
                return log_oom();
        for (size_t i = 0; i < rows->n; i++) {
                double sum = 0;

                for (size_t j = 0; j < n; j++)
                        if (device_in_total(l, series[j].device))
                                sum += series_at(&series[j], rows->start[i]);
                max_sum = MAX(max_sum, fabs(sum));
        }
        total_kwh = MAX(max_sum, fabs(total)) >= 1000;

        /* Every series has the same buckets (one calendar); rows follow the first. */
        for (size_t i = 0; i < rows->n; i++) {
                double sum = 0;

                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "%s", format_bucket(buf, sizeof(buf), rows->start[i])) < 0)
                        return log_oom();
                for (size_t j = 0; j < n; j++) {
                        double wh = series_at(&series[j], rows->start[i]);

                        if (device_in_total(l, series[j].device))
                                sum += wh;
                        if (cell(ln, j + 1, NULL, "%s", format_energy(buf, sizeof(buf), wh, series[j].kwh)) < 0)
                                return log_oom();
                }
                if (n > 1 && cell(ln, n + 1, NULL, "%s", format_energy(buf, sizeof(buf), sum, total_kwh)) < 0)
                        return log_oom();
        }
        if (arg_legend) {
                ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "Total") < 0)
                        return log_oom();
                for (size_t j = 0; j < n; j++)
                        if (cell(ln, j + 1, NULL, "%s",
                                 format_energy(buf, sizeof(buf), series[j].total, series[j].kwh)) < 0)
                                return log_oom();
                if (n > 1 && cell(ln, n + 1, NULL, "%s", format_energy(buf, sizeof(buf), total, total_kwh)) < 0)
                        return log_oom();
        }
        /* Printed to a string first: the widths of the columns place the strip names. */
        r = scols_print_table_to_string(tb, &text);
        if (r < 0)
                return log_error_errno(r, "Failed to format the table: %m");
        if (arg_legend) {
                r = print_strip_line(l, tb, series, n);
                if (r < 0)
                        return r;
        }
        fputs(text, stdout);
        fputc('\n', stdout);
        return 0;
}

int verb_energy(int argc, char **argv, void *userdata) {
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_(energy_series_free) EnergySeries *series = NULL;
        uint64_t now = now_usec(), since, until;
        size_t n = 0;
        int r;

        if (!arg_by)
                arg_by = "day";
        if (!streq(arg_by, "day") && !streq(arg_by, "month"))
                return log_error_errno(EINVAL, "Invalid --by='%s': use day or month.", arg_by);
        /* By default the last 7 days, or the last 12 months, this one included. */
        r = parse_range(streq(arg_by, "day") ? local_day_start(now, -6) : local_month_start(now, -11), now, &since,
                        &until);
        if (r < 0)
                return r;
        r = fetch_devices(userdata, &l);
        if (r < 0)
                return r;
        series = calloc(l.n + 1, sizeof(EnergySeries));
        if (!series)
                return log_oom();
        if (argc > 1) {
                Device *d;

                r = resolve_device(&l, argv[1], &d);
                if (r < 0)
                        return r;
                r = require_meter(d);
                if (r < 0)
                        return r;
                series[n++].device = d;
        } else
                for (size_t i = 0; i < l.n; i++)
                        if (l.devices[i].metered)
                                series[n++].device = &l.devices[i];
        for (size_t j = 0; j < n; j++) {
                r = fetch_energy(userdata, &series[j], since, until);
                if (r < 0)
                        return r;
        }

        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *devs = json_array(), *o = NULL;
                double total = 0;

                for (size_t j = 0; j < n; j++) {
                        json_t *e = json_array();

                        for (size_t i = 0; i < series[j].n; i++)
                                json_array_append_new(e, json_pack("{s:o,s:o}", "start",
                                                                   json_time(series[j].start[i]), "energy",
                                                                   json_reading(series[j].wh[i])));
                        json_array_append_new(devs, json_pack("{s:s,s:s,s:o,s:o}", "id", series[j].device->id,
                                                              "alias", device_name(series[j].device), "energy", e,
                                                              "total", json_reading(series[j].total)));
                        if (n == 1 || device_in_total(&l, series[j].device))
                                total += series[j].total;
                }
                o = json_pack("{s:s,s:o,s:o,s:O,s:o}", "by", arg_by, "since", json_time(since), "until",
                              json_time(until), "devices", devs, "total", json_reading(total));
                return json_print(o);
        }
        if (n == 0) {
                if (arg_legend)
                        printf("No device has an energy meter.\n");
                return 0;
        }
        return print_energy(&l, series, n);
}
