/* SPDX-License-Identifier: MIT */

/* schedule list|show|add|remove|enable|disable|run (and fire, for the
 * timers' services), and sun: what kasamond's schedules do and when. */

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"
#include "time-util.h"

static const char *const sun_names[][2] = {
        { "sunrise", "sunrise" }, { "sunset", "sunset" }, { "civil-dawn", "dawn" }, { "civil-dusk", "dusk" },
};

/* "3" or /org/kasamond/Kasa1/schedule/3. */
static int schedule_path(const char *arg, char **ret) {
        char *end;
        unsigned long id;

        if (strncmp(arg, KASA_SCHEDULE_PREFIX "/", strlen(KASA_SCHEDULE_PREFIX "/")) == 0)
                arg += strlen(KASA_SCHEDULE_PREFIX "/");
        errno = 0;
        id = strtoul(arg, &end, 10);
        if (!*arg || *end || errno || id == 0 || id > UINT32_MAX)
                return log_error_errno(EINVAL, "Invalid schedule '%s': a number, as \"kasactl schedule list\" shows.",
                                       arg);
        if (asprintf(ret, KASA_SCHEDULE_PREFIX "/%lu", id) < 0)
                return log_oom();
        return 0;
}

static int describe_schedule(sd_bus *bus, const char *path, json_t **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_error_t e;
        const char *s;
        int r;

        r = sd_bus_call_method(bus, KASA_BUS_NAME, path, KASA_SCHEDULE_IFACE, "Describe", &error, &reply, NULL);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT))
                        return log_error_errno(ENXIO, "No schedule %s.", path + strlen(KASA_SCHEDULE_PREFIX "/"));
                return log_call_error(&error, r, "describe the schedule", NULL, NULL);
        }
        r = sd_bus_message_read(reply, "s", &s);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        *ret = json_loads(s, 0, &e);
        if (!*ret)
                return log_error_errno(EBADMSG, "kasamond's Describe() is not JSON: %s", e.text);
        return 0;
}

/* Every schedule's Describe(), by id. */
static int fetch_schedules(sd_bus *bus, json_t **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(json_decrefp) json_t *a = json_array();
        const char *path;
        int r;

        r = get_managed_objects(bus, "list the schedules", &reply);
        if (r < 0 && !reply)
                return r;
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                r = sd_bus_message_read(reply, "o", &path);
                if (r >= 0)
                        r = sd_bus_message_skip(reply, "a{sa{sv}}");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                if (strncmp(path, KASA_SCHEDULE_PREFIX "/", strlen(KASA_SCHEDULE_PREFIX "/")) != 0)
                        continue;
                json_t *o;
                r = describe_schedule(bus, path, &o);
                if (r < 0)
                        return r;
                json_array_append_new(a, o);
                r = 1;
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the list of objects: %m");
        *ret = TAKE_PTR(a);
        return 0;
}

/* "Mon..Fri *-*-* 07:00:00", or "sunset +15min". */
static void format_when(char *buf, size_t size, json_t *o) {
        if (json_is_string(json_object_get(o, "calendar"))) {
                snprintf(buf, size, "%s", json_str(o, "calendar"));
                return;
        }
        int64_t off = json_integer_value(json_object_get(o, "sun_offset_usec"));
        int64_t min = (off < 0 ? -off : off) / (int64_t) USEC_PER_MINUTE;
        if (off == 0)
                snprintf(buf, size, "%s", json_str(o, "sun_event"));
        else
                snprintf(buf, size, "%s %c%" PRId64 "min", json_str(o, "sun_event"), off < 0 ? '-' : '+', min);
}

static const char *format_opt_time(char *buf, size_t size, uint64_t t) {
        return t ? format_time(buf, size, t, false) : "-";
}

/* Times in Describe() are microseconds; --json prints them as ISO 8601 as
 * everywhere else in kasactl. */
static void json_times_to_iso(json_t *o) {
        static const char *const keys[] = { "valid_from", "valid_until", "next_elapse", "last_trigger", "last_run" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                json_object_set_new(o, keys[i], json_time(json_u64(o, keys[i])));
}

static int schedule_list(sd_bus *bus) {
        static const Column cols[] = {
                { "ID", SCOLS_FL_RIGHT }, { "ACTION", 0 }, { "DEVICES", 0 }, { "WHEN", 0 },
                { "NEXT", 0 },            { "LAST", 0 },   { "ENABLED", 0 }, { "RESULT", SCOLS_FL_TRUNC },
        };
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *a = NULL;
        size_t i;
        json_t *o;
        int r;

        r = fetch_schedules(bus, &a);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                json_array_foreach(a, i, o)
                        json_times_to_iso(o);
                return json_print(a);
        }
        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb)
                return log_oom();
        json_array_foreach(a, i, o) {
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                char devices[1024] = "", when[256], next[TIME_BUF_MAX], last[TIME_BUF_MAX];
                size_t k, len = 0;
                json_t *v;

                if (!ln)
                        return log_oom();
                json_array_foreach(json_object_get(o, "devices"), k, v)
                        if (len < sizeof devices)
                                len += (size_t) snprintf(devices + len, sizeof devices - len, "%s%s", k ? "," : "",
                                                         json_string_value(v));
                format_when(when, sizeof when, o);
                r = cell(ln, 0, NULL, "%" PRIu64, json_u64(o, "id"));
                if (r >= 0)
                        r = cell(ln, 1, NULL, "%s", json_str(o, "action"));
                if (r >= 0)
                        r = cell(ln, 2, NULL, "%s", devices);
                if (r >= 0)
                        r = cell(ln, 3, NULL, "%s", when);
                if (r >= 0)
                        r = cell(ln, 4, NULL, "%s", format_opt_time(next, sizeof next, json_u64(o, "next_elapse")));
                if (r >= 0)
                        r = cell(ln, 5, NULL, "%s", format_opt_time(last, sizeof last, json_u64(o, "last_trigger")));
                if (r >= 0)
                        r = cell(ln, 6, NULL, "%s", json_is_true(json_object_get(o, "enabled")) ? "yes" : "no");
                if (r >= 0)
                        r = cell(ln, 7, NULL, "%s", json_str(o, "last_result"));
                if (r < 0)
                        return log_oom();
        }
        r = table_print(tb);
        if (r >= 0 && arg_legend)
                printf("\n%zu %s.\n", json_array_size(a), plural(json_array_size(a), "schedule", "schedules"));
        return r;
}

static int schedule_show(sd_bus *bus, const char *arg) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        _cleanup_free_ char *path = NULL;
        char buf[TIME_BUF_MAX], when[256];
        size_t k;
        json_t *v;
        int r;

        r = schedule_path(arg, &path);
        if (r < 0)
                return r;
        r = describe_schedule(bus, path, &o);
        if (r < 0)
                return r;
        if (arg_json != JSON_OFF) {
                json_times_to_iso(o);
                return json_print(o);
        }
        format_when(when, sizeof when, o);
        printf("Schedule %" PRIu64 ": %s at %s\n", json_u64(o, "id"), json_str(o, "action"), when);
        printf("    Devices:");
        json_array_foreach(json_object_get(o, "devices"), k, v)
                printf(" %s", json_string_value(v));
        printf("\n    Enabled: %s\n", json_is_true(json_object_get(o, "enabled")) ? "yes" : "no");
        printf("      Timer: %s\n", json_is_string(json_object_get(o, "timer")) ? json_str(o, "timer") : "-");
        if (json_u64(o, "random_delay_usec"))
                printf("     Random: up to %" PRIu64 " s\n", json_u64(o, "random_delay_usec") / USEC_PER_SEC);
        printf(" Persistent: %s\n", json_is_true(json_object_get(o, "persistent")) ? "yes" : "no");
        if (json_u64(o, "valid_from"))
                printf(" Valid from: %s\n", format_time(buf, sizeof buf, json_u64(o, "valid_from"), false));
        if (json_u64(o, "valid_until"))
                printf("Valid until: %s\n", format_time(buf, sizeof buf, json_u64(o, "valid_until"), false));
        printf("       Next: %s\n", format_opt_time(buf, sizeof buf, json_u64(o, "next_elapse")));
        if (json_is_string(json_object_get(o, "sun_remark")))
                printf("      Today: %s\n", json_str(o, "sun_remark"));
        printf("       Last: %s\n", format_opt_time(buf, sizeof buf, json_u64(o, "last_run")));
        printf("     Result: %s\n", *json_str(o, "last_result") ? json_str(o, "last_result") : "-");
        return 0;
}

static int schedule_add(sd_bus *bus, int argc, char **argv) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(device_list_done) DeviceList l = {};
        _cleanup_free_ char **ids = NULL;
        int64_t offset = 0, random = 0;
        uint64_t now = now_usec(), from = 0, until = 0;
        const char *path;
        int r;

        if (argc < 3)
                return log_error_errno(EINVAL, "Usage: kasactl schedule add ACTION DEV... --at=CALENDAR|--sunrise|...");
        if (!streq(argv[1], "on") && !streq(argv[1], "off") && !streq(argv[1], "toggle"))
                return log_error_errno(EINVAL, "Invalid ACTION '%s': on, off or toggle.", argv[1]);
        if (!!arg_at == !!arg_sun_event)
                return log_error_errno(EINVAL, "Say when: one of --at=, --sunrise, --sunset, --dawn or --dusk.");
        if (arg_sun_offset && parse_span(arg_sun_offset, &offset) < 0)
                return log_error_errno(EINVAL, "Invalid offset '%s': a span such as +15min or -1h.", arg_sun_offset);
        if (arg_random && (parse_span(arg_random, &random) < 0 || random < 0))
                return log_error_errno(EINVAL, "Invalid --random='%s': a span such as 30min.", arg_random);
        if (arg_since && parse_time(arg_since, now, &from) < 0)
                return log_error_errno(EINVAL, "Invalid --since='%s'.", arg_since);
        if (arg_until && parse_time(arg_until, now, &until) < 0)
                return log_error_errno(EINVAL, "Invalid --until='%s'.", arg_until);

        r = fetch_devices(bus, &l);
        if (r < 0)
                return r;
        ids = calloc(argc, sizeof(char *));
        if (!ids)
                return log_oom();
        for (int i = 2; i < argc; i++) {
                Device *d;
                r = resolve_device(&l, argv[i], &d);
                if (r < 0)
                        return r;
                ids[i - 2] = d->id;
        }
        r = new_call(bus, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "AddSchedule", true, &m);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, ids);
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", argv[1], arg_at ?: arg_sun_event);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && offset)
                r = sd_bus_message_append(m, "{sv}", "Offset", "x", offset);
        if (r >= 0 && random)
                r = sd_bus_message_append(m, "{sv}", "RandomizedDelay", "t", (uint64_t) random);
        if (r >= 0 && arg_persistent)
                r = sd_bus_message_append(m, "{sv}", "Persistent", "b", 1);
        if (r >= 0 && from)
                r = sd_bus_message_append(m, "{sv}", "ValidFrom", "t", from);
        if (r >= 0 && until)
                r = sd_bus_message_append(m, "{sv}", "ValidUntil", "t", until);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(bus, m, KASA_ACTION_MANAGE_SCHEDULES, NULL, &reply, "add the schedule");
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        const char *id = path + strlen(KASA_SCHEDULE_PREFIX "/");
        if (arg_json != JSON_OFF) {
                _cleanup_(json_decrefp) json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t) strtoull(id, NULL, 10),
                                                              "path", path);
                return json_print(o);
        }
        printf("Added schedule %s.\n", id);
        return 0;
}

/* remove, enable, disable, run, fire: one call on the schedule's object. */
static int schedule_call(sd_bus *bus, const char *verb, const char *arg) {
        static const struct {
                const char *verb, *method, *what, *done;
        } calls[] = {
                { "remove", "Remove", "remove", "Removed" },    { "enable", "Enable", "enable", "Enabled" },
                { "disable", "Disable", "disable", "Disabled" }, { "run", "RunNow", "run", NULL },
                { "fire", "Fire", "fire", NULL },
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *path = NULL;
        size_t i;
        int r;

        for (i = 0; i < ELEMENTSOF(calls) && !streq(calls[i].verb, verb); i++)
                ;
        if (i == ELEMENTSOF(calls))
                return log_error_errno(EINVAL, "Unknown schedule command '%s': list, show, add, remove, enable, "
                                               "disable or run.", verb);
        r = schedule_path(arg, &path);
        if (r < 0)
                return r;
        /* fire runs in a timer's service, where nobody can type a password. */
        r = new_call(bus, path, KASA_SCHEDULE_IFACE, calls[i].method, !streq(verb, "fire"), &m);
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(bus, m, KASA_ACTION_MANAGE_SCHEDULES, NULL, &reply, "%s schedule %s", calls[i].what, arg);
        if (r < 0)
                return r;
        if (!calls[i].done) {
                const char *result;
                r = sd_bus_message_read(reply, "s", &result);
                if (r < 0)
                        return log_error_errno(r, "Failed to parse the reply: %m");
                if (arg_json != JSON_OFF) {
                        _cleanup_(json_decrefp) json_t *o = json_pack("{s:s}", "result", result);
                        return json_print(o);
                }
                printf("%s\n", result);
        } else if (arg_json == JSON_OFF)
                printf("%s schedule %s.\n", calls[i].done, arg);
        return 0;
}

int verb_schedule(int argc, char **argv, void *userdata) {
        sd_bus *bus = userdata;
        const char *sub = argv[1];
        bool adding = streq(sub, "add");

        if (!adding && (arg_at || arg_sun_event || arg_random || arg_persistent || arg_since || arg_until))
                return log_error_errno(EINVAL, "--at, --sunrise, --sunset, --dawn, --dusk, --random, --persistent, "
                                               "--since and --until apply to 'schedule add' only.");
        if (streq(sub, "list")) {
                if (argc != 2)
                        return log_error_errno(EINVAL, "Usage: kasactl schedule list");
                return schedule_list(bus);
        }
        if (adding)
                return schedule_add(bus, argc - 1, argv + 1);
        if (argc != 3)
                return log_error_errno(EINVAL, "Usage: kasactl schedule %s ID", sub);
        if (streq(sub, "show"))
                return schedule_show(bus, argv[2]);
        return schedule_call(bus, sub, argv[2]);
}

/* ---- sun ---- */

int verb_sun(int argc, char **argv, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(scols_unref_tablep) struct libscols_table *tb = NULL;
        _cleanup_(json_decrefp) json_t *a = json_array();
        static const Column cols[] = { { "EVENT", 0 }, { "UTC", 0 }, { "LOCAL", 0 } };
        double loc[2];
        size_t n = 0;
        const char *name, *remark;
        uint64_t t;
        int r;

        if (arg_location) {
                char *end;
                errno = 0;
                loc[0] = strtod(arg_location, &end);
                if (errno || *end != ',' || !(loc[0] >= -90 && loc[0] <= 90))
                        return log_error_errno(EINVAL, "Invalid --location='%s': LAT,LON in degrees.", arg_location);
                loc[1] = strtod(end + 1, &end);
                if (errno || *end || !(loc[1] >= -180 && loc[1] <= 180))
                        return log_error_errno(EINVAL, "Invalid --location='%s': LAT,LON in degrees.", arg_location);
                n = 2;
        }
        r = new_call(userdata, KASA_MANAGER_PATH, KASA_MANAGER_IFACE, "GetSunTimes", false, &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", arg_date ?: "");
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'd', loc, n * sizeof(double));
        if (r < 0)
                return log_error_errno(r, "Failed to build the call: %m");
        r = call_kasamond(userdata, m, NULL, NULL, &reply, "compute the sun's times");
        if (r < 0)
                return r;
        tb = table_new(cols, ELEMENTSOF(cols), stdout);
        if (!tb || !a)
                return log_oom();
        r = sd_bus_message_enter_container(reply, 'a', "(sts)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(sts)", &name, &t, &remark)) > 0) {
                char utc[32] = "", local[TIME_BUF_MAX] = "";
                const char *shown = name;

                for (size_t i = 0; i < ELEMENTSOF(sun_names); i++)
                        if (streq(sun_names[i][0], name))
                                shown = sun_names[i][1];
                if (t) {
                        time_t s = (time_t) (t / USEC_PER_SEC);
                        struct tm tm;
                        strftime(utc, sizeof utc, "%Y-%m-%d %H:%M:%S", gmtime_r(&s, &tm));
                        format_time(local, sizeof local, t, false);
                }
                json_array_append_new(a, json_pack("{s:s,s:o,s:o}", "event", name, "time", json_time(t), "remark",
                                                   *remark ? json_string(remark) : json_null()));
                struct libscols_line *ln = scols_table_new_line(tb, NULL);
                if (!ln || cell(ln, 0, NULL, "%s", shown) < 0 || cell(ln, 1, NULL, "%s", t ? utc : remark) < 0 ||
                    cell(ln, 2, NULL, "%s", t ? local : "-") < 0)
                        return log_oom();
        }
        if (r < 0)
                return log_error_errno(r, "Failed to parse the reply: %m");
        if (arg_json != JSON_OFF)
                return json_print(a);
        return table_print(tb);
}
