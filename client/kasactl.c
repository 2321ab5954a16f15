/* SPDX-License-Identifier: MIT */

/* kasactl: the command line of kasamond. Every verb is one or two D-Bus
 * calls, in a kasactl-<group>.c of its own; this file has the verb table,
 * the options (each verb says which apply to it), the help generated from
 * both, and main(). A verb of a group is two words in the table ("tariff
 * list"), with its own options and help like any other. */

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdlib.h>
#include <unistd.h>

#include "kasa-dbus.h"
#include "kasactl.h"
#include "log.h"

/* Exit statuses, documented in kasactl(1). main() derives them from the
 * negative errno a verb returns. */
enum {
        EXIT_USAGE = 2,     /* -EINVAL, -ENOTUNIQ */
        EXIT_NOT_FOUND = 3, /* -ENXIO */
        EXIT_DENIED = 4,    /* -EACCES */
        EXIT_OFFLINE = 5,   /* -EHOSTDOWN */
};

JsonMode arg_json = JSON_OFF;
bool arg_legend = true;
bool arg_ask_password = true;
bool arg_no_ask_password = false; /* given on the command line */
bool arg_colors = false;
double arg_timeout = 2.0;
const char *arg_since = NULL;
const char *arg_until = NULL;
const char *arg_resolution = "minute";
const char *arg_by = NULL; /* per verb: energy "day", costs the whole range */
const char *arg_name = NULL;
const char *arg_role = NULL;
const char *arg_expires = NULL;
bool arg_cancel = false;
const char *arg_at = NULL;
const char *arg_sun_event = NULL;
const char *arg_sun_offset = NULL;
const char *arg_random = NULL;
bool arg_persistent = false;
const char *arg_date = NULL;
const char *arg_location = NULL;
const char *arg_tariff = NULL;
const char *arg_energy = NULL;
const char *arg_time_zone = NULL;
const char *arg_format = "csv";
const char *arg_fields = NULL;
const char *arg_threshold = NULL;
const char *arg_for = NULL;
const char *arg_cooldown = NULL;
bool arg_costs = false;

/* The options a verb may take; --help and --version go with every verb. */
typedef enum Option {
        OPT_JSON = 1 << 0,
        OPT_NO_LEGEND = 1 << 1,
        OPT_NO_ASK_PASSWORD = 1 << 2,
        OPT_TIMEOUT = 1 << 3,
        OPT_SINCE = 1 << 4,
        OPT_UNTIL = 1 << 5,
        OPT_RESOLUTION = 1 << 6,
        OPT_BY = 1 << 7,
        OPT_NAME = 1 << 8,
        OPT_ROLE = 1 << 9,
        OPT_EXPIRES = 1 << 10,
        OPT_CANCEL = 1 << 11,
        OPT_AT = 1 << 12,
        OPT_SUNRISE = 1 << 13,
        OPT_SUNSET = 1 << 14,
        OPT_DAWN = 1 << 15,
        OPT_DUSK = 1 << 16,
        OPT_RANDOM = 1 << 17,
        OPT_PERSISTENT = 1 << 18,
        OPT_DATE = 1 << 19,
        OPT_LOCATION = 1 << 20,
        OPT_TARIFF = 1 << 21,
        OPT_ENERGY = 1 << 22,
        OPT_TIME_ZONE = 1 << 23,
        OPT_FORMAT = 1 << 24,
        OPT_FIELDS = 1 << 25,
        OPT_THRESHOLD = 1 << 26,
        OPT_FOR = 1 << 27,
        OPT_COOLDOWN = 1 << 28,
        OPT_COSTS = 1 << 29,
} Option;

#define OPT_SUN (OPT_SUNRISE | OPT_SUNSET | OPT_DAWN | OPT_DUSK)
#define OPT_SCHEDULE (OPT_BUS | OPT_NO_LEGEND | OPT_AT | OPT_SUN | OPT_RANDOM | OPT_PERSISTENT | OPT_RANGE)

#define OPT_RANGE (OPT_SINCE | OPT_UNTIL)
/* Every verb that talks to kasamond takes --no-ask-password, so that a
 * script can always pass it; only the verbs that change something ask. */
#define OPT_BUS (OPT_JSON | OPT_NO_ASK_PASSWORD)

static const struct OptionInfo {
        Option option;
        const char *name;   /* as getopt_long knows it */
        const char *value;  /* what follows "=" in the help, NULL for flags */
        const char *values; /* the values, in words, for a missing one */
        const char *help;
} option_info[] = {
        { OPT_JSON, "json", "pretty|short|off", "pretty, short or off", "Print JSON instead of tables" },
        { OPT_NO_LEGEND, "no-legend", NULL, NULL, "Leave out headers, summaries and footers" },
        { OPT_NO_ASK_PASSWORD, "no-ask-password", NULL, NULL, "Never let polkit ask for a password" },
        { OPT_TIMEOUT, "timeout", "SECONDS", "seconds, 0.1 to 60", "How long discover listens (default 2)" },
        { OPT_SINCE, "since", "TIME", "a TIME such as -24h, today or 2026-11-27",
          "Start of the range (default: 1 hour ago for\nhistory; for energy 7 days, or 12 months by\nmonth; for costs this month, or 12 months by\nmonth)" },
        { OPT_UNTIL, "until", "TIME", "a TIME such as now, -1h or 2026-11-27", "End of the range (default: now)" },
        { OPT_RESOLUTION, "resolution", "raw|minute|hour|day", "raw, minute, hour or day",
          "Sample size of history (default minute)" },
        { OPT_BY, "by", "day|month", "day or month",
          "Buckets of energy (default day) or of costs\n(default: the whole range)" },
        { OPT_NAME, "name", "NAME", "a token name", "Name of the token to create" },
        { OPT_ROLE, "role", "viewer|operator|admin", "viewer, operator or admin", "Role of the token to create" },
        { OPT_EXPIRES, "expires", "TIME|DURATION", "a TIME such as 2027-01-01, or a DURATION such as 30d",
          "When the token stops working (default never)" },
        { OPT_CANCEL, "cancel", NULL, NULL, "Stop the running countdown" },
        { OPT_AT, "at", "CALENDAR", "a systemd calendar expression such as 'Mon..Fri 07:00'",
          "When a schedule runs (systemd.time(7))" },
        { OPT_SUNRISE, "sunrise", "[OFFSET]", NULL, "Run at sunrise, OFFSET (+15min, -1h) after it" },
        { OPT_SUNSET, "sunset", "[OFFSET]", NULL, "Run at sunset, OFFSET after it" },
        { OPT_DAWN, "dawn", "[OFFSET]", NULL, "Run at civil dawn, OFFSET after it" },
        { OPT_DUSK, "dusk", "[OFFSET]", NULL, "Run at civil dusk, OFFSET after it" },
        { OPT_RANDOM, "random", "SPAN", "a time span such as 30min", "Delay each run by a random time up to\nSPAN" },
        { OPT_PERSISTENT, "persistent", NULL, NULL, "Catch up once at boot on a run missed while\nthe machine was off" },
        { OPT_DATE, "date", "YYYY-MM-DD", "a date such as 2026-12-21", "The day to show (default today)" },
        { OPT_LOCATION, "location", "LAT,LON", "latitude,longitude in degrees such as 52.52,13.40",
          "Where (default: [Location] of kasamond.conf)" },
        { OPT_TARIFF, "tariff", "FILE|ID", "a tariff file or a tariff's id",
          "Price with this tariff instead of the active\nones (what if)" },
        { OPT_ENERGY, "energy", "CSV", "a CSV file of start,energy_wh rows", "The energy to price, as CSV" },
        { OPT_TIME_ZONE, "time-zone", "ZONE", "a time zone such as Europe/Berlin",
          "Local time of the energy (default: kasamond's)" },
        { OPT_FORMAT, "format", "csv|json", "csv or json", "Format of the export (default csv)" },
        { OPT_FIELDS, "fields", "LIST", "field names such as start,energy_wh",
          "Columns of the export, in this order\n(default: all)" },
        { OPT_COSTS, "costs", NULL, NULL, "Add what each row's energy cost (rollups)" },
        { OPT_THRESHOLD, "threshold", "NUMBER", "a number such as 5 or 2.5",
          "Watts, watt-hours or currency of an alert rule" },
        { OPT_FOR, "for", "SPAN", "a time span such as 10min", "How long an alert's condition must hold\n(default 0)" },
        { OPT_COOLDOWN, "cooldown", "SPAN", "a time span such as 1h",
          "Quiet time after an alert resolved (default 0)" },
};

typedef enum VerbFlags {
        VERB_DEFAULT = 1 << 0, /* runs when no verb is given */
        VERB_HIDDEN = 1 << 1,  /* for completion scripts: not in --help or --list-verbs */
        VERB_NO_BUS = 1 << 2,  /* needs no connection to the bus */
} VerbFlags;

typedef struct Verb {
        const char *name;
        int min_args; /* counting the verb itself */
        int max_args; /* INT32_MAX: any number */
        VerbFlags flags;
        Option options;
        int (*fn)(int argc, char **argv, void *userdata);
        const char *args_help;
        const char *help;
} Verb;

static int verb_help(int argc, char **argv, void *userdata);
static int verb_complete_options(int argc, char **argv, void *userdata);

static const Verb verbs[] = {
        { "status", 1, 1, VERB_DEFAULT, OPT_BUS | OPT_NO_LEGEND, verb_status, "",
          "Total power, today's energy and every device" },
        { "list", 1, 1, 0, OPT_BUS | OPT_NO_LEGEND, verb_list, "", "List devices with id, model and address" },
        { "show", 2, 2, 0, OPT_BUS, verb_show, "DEV", "Show everything known about a device" },
        { "on", 2, INT32_MAX, 0, OPT_BUS, verb_switch, "DEV...", "Switch devices on" },
        { "off", 2, INT32_MAX, 0, OPT_BUS, verb_switch, "DEV...", "Switch devices off" },
        { "toggle", 2, INT32_MAX, 0, OPT_BUS, verb_switch, "DEV...", "Switch devices to the opposite state" },
        { "rename", 3, 3, 0, OPT_BUS, verb_rename, "DEV NAME", "Change the name stored in a device" },
        { "discover", 1, 1, 0, OPT_BUS | OPT_NO_LEGEND | OPT_TIMEOUT, verb_discover, "",
          "Look for devices on the network" },
        { "add", 2, 2, 0, OPT_BUS | OPT_NO_LEGEND, verb_add, "ADDRESS", "Add a device by its address" },
        { "remove", 2, 2, 0, OPT_BUS, verb_remove, "DEV", "Forget a device (its history is kept)" },
        { "history", 2, 2, 0, OPT_BUS | OPT_NO_LEGEND | OPT_RANGE | OPT_RESOLUTION, verb_history, "DEV",
          "Power over time, as a table and a chart" },
        { "energy", 1, 2, 0, OPT_BUS | OPT_NO_LEGEND | OPT_RANGE | OPT_BY, verb_energy, "[DEV]",
          "Energy per day or month, with totals" },
        { "backfill", 2, 2, 0, OPT_BUS, verb_backfill, "DEV",
          "Import the days before kasamond saw a device from its own statistics" },
        { "watch", 1, 2, 0, OPT_BUS | OPT_NO_LEGEND, verb_watch, "[DEV]", "Follow changes as they happen" },
        { "token", 2, 3, 0, OPT_BUS | OPT_NO_LEGEND | OPT_NAME | OPT_ROLE | OPT_EXPIRES, verb_token,
          "create|list|revoke [ID|NAME]", "Create, list or revoke API tokens of the HTTP bridge" },
        { "countdown", 2, 4, 0, OPT_BUS | OPT_CANCEL, verb_countdown, "DEV [SPAN ACTION]",
          "Switch a device once after a while" },
        { "schedule", 2, INT32_MAX, 0, OPT_SCHEDULE, verb_schedule, "SUBCOMMAND ...",
          "Timers that switch devices: list, show ID,\n                         add ACTION DEV..., remove, enable, disable,\n                         run ID" },
        { "sun", 1, 1, 0, OPT_BUS | OPT_DATE | OPT_LOCATION, verb_sun, "",
          "Sunrise, sunset and civil twilight of a day" },
        { "costs", 1, INT32_MAX, 0, OPT_BUS | OPT_NO_LEGEND | OPT_RANGE | OPT_BY | OPT_TARIFF, verb_costs, "[DEV...]",
          "What the energy cost, as a bill" },
        { "tariff list", 1, 1, 0, OPT_BUS | OPT_NO_LEGEND, verb_tariff_list, "",
          "List tariffs and what each one prices" },
        { "tariff show", 2, 2, 0, OPT_BUS, verb_tariff_show, "ID", "Show a tariff" },
        { "tariff add", 2, 2, 0, OPT_BUS, verb_tariff_add, "FILE", "Add a tariff from a kasamond-tariff(5) file" },
        { "tariff import", 2, 2, 0, OPT_BUS, verb_tariff_add, "FILE", "Import tariffs from OpenEI URDB JSON" },
        { "tariff remove", 2, 2, 0, OPT_BUS, verb_tariff_remove, "ID", "Remove a tariff that was never assigned" },
        { "tariff activate", 2, INT32_MAX, 0, OPT_BUS | OPT_SINCE, verb_tariff_activate, "ID|home [DEV...]",
          "Price the home, or devices, with a tariff" },
        { "tariff price", 2, 2, 0, OPT_BUS | OPT_NO_LEGEND | OPT_BY | OPT_ENERGY | OPT_TIME_ZONE, verb_tariff_price,
          "FILE", "Price an energy series with a tariff file" },
        { "export", 1, INT32_MAX, 0, OPT_BUS | OPT_RANGE | OPT_RESOLUTION | OPT_FORMAT | OPT_FIELDS | OPT_COSTS,
          verb_export,
          "[DEV...]", "Recorded readings as CSV or JSON" },
        { "backup", 2, 2, 0, OPT_BUS | OPT_NO_LEGEND, verb_backup, "FILE",
          "Write kasamond's whole state to a new archive" },
        { "restore", 2, 2, 0, OPT_BUS | OPT_NO_LEGEND, verb_restore, "FILE",
          "Replace kasamond's whole state with an archive" },
        { "alert list", 1, 1, 0, OPT_BUS | OPT_NO_LEGEND, verb_alert_list, "", "List the open alerts" },
        { "alert show", 2, 2, 0, OPT_BUS, verb_alert_show, "ID", "Show an alert and its rule" },
        { "alert add", 4, INT32_MAX, 0, OPT_BUS | OPT_THRESHOLD | OPT_FOR | OPT_COOLDOWN, verb_alert_add,
          "NAME KIND DEV|all [HOOK ARG...]", "Add an alert rule" },
        { "alert remove", 2, 2, 0, OPT_BUS, verb_alert_remove, "RULE", "Remove an alert rule" },
        { "alert ack", 2, 2, 0, OPT_BUS, verb_alert_ack, "ID", "Acknowledge an alert" },
        { "alert rules", 1, 1, 0, OPT_BUS | OPT_NO_LEGEND, verb_alert_rules, "", "List the alert rules" },
        { "help", 1, 3, VERB_NO_BUS, 0, verb_help, "[COMMAND]", "Show this help, or the help of a command" },
        { "__complete-devices", 1, 1, VERB_HIDDEN, 0, verb_complete_devices, "", NULL },
        { "__complete-tariffs", 1, 1, VERB_HIDDEN, 0, verb_complete_tariffs, "", NULL },
        { "__complete-options", 1, 3, VERB_HIDDEN | VERB_NO_BUS, 0, verb_complete_options, "[COMMAND]", NULL },
};

static const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* A verb of a group is named by two words ("tariff list"): the verb that
 * argv's first one or two words name, and how many they are. */
static const Verb *verb_lookup(int argc, char **argv, int *ret_words) {
        *ret_words = 1;
        if (argc >= 2) {
                _cleanup_free_ char *name = NULL;
                const Verb *v;

                if (asprintf(&name, "%s %s", argv[0], argv[1]) < 0)
                        return NULL;
                v = verb_find(name);
                if (v) {
                        *ret_words = 2;
                        return v;
                }
        }
        return argc >= 1 ? verb_find(argv[0]) : NULL;
}

/* Whether v is of the group ("tariff list" of "tariff"). */
static bool verb_in_group(const Verb *v, const char *group) {
        size_t n = strlen(group);
        return strncmp(v->name, group, n) == 0 && v->name[n] == ' ';
}

/* Whether word is the first word of a group of verbs. */
static bool verb_is_group(const char *word) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (verb_in_group(&verbs[i], word))
                        return true;
        return false;
}

static int log_group_error(const char *group) {
        fprintf(stderr, "'kasactl %s' needs a command:", group);
        for (size_t i = 0, k = 0; i < ELEMENTSOF(verbs); i++)
                if (verb_in_group(&verbs[i], group))
                        fprintf(stderr, "%s %s", k++ ? "," : "", verbs[i].name + strlen(group) + 1);
        fprintf(stderr, ". \"kasactl help %s\" describes them.\n", group);
        return -EINVAL;
}

static const struct OptionInfo *option_find(Option o) {
        for (size_t i = 0; i < ELEMENTSOF(option_info); i++)
                if (option_info[i].option == o)
                        return &option_info[i];
        return NULL;
}

static void print_options(Option options) {
        printf("\nOptions:\n"
               "  -h --help              Show this help\n"
               "     --version           Show the version\n");
        for (size_t i = 0; i < ELEMENTSOF(option_info); i++) {
                const struct OptionInfo *o = &option_info[i];
                char buf[64];

                if (!(options & o->option))
                        continue;
                if (o->value && o->value[0] == '[') /* an optional value */
                        snprintf(buf, sizeof(buf), "--%s[=%s", o->name, o->value + 1);
                else
                        snprintf(buf, sizeof(buf), "--%s%s%s", o->name, o->value ? "=" : "", o->value ? o->value : "");
                if (strlen(buf) > 19)
                        printf("     %s\n%25s", buf, "");
                else
                        printf("     %-19s ", buf);
                for (const char *h = o->help; *h; h++)
                        if (*h == '\n')
                                printf("\n%25s", "");
                        else
                                putchar(*h);
                putchar('\n');
        }
}

static const char *const dev_help = "DEV is a device id, an address (ADDRESS or ADDRESS:PORT), or a name (any unique\n"
                                    "prefix, any case).\n";
static const char *const time_help = "TIME: 2026-11-27, \"2026-11-27 08:00\", 2026-11-27T08:00+01:00, -24h, -30min,\n"
                                     "-7d, now, today, yesterday.\n";

/* "  show DEV               Show ...", the help on a line of its own
 * after a long name. */
static void print_verb_line(const Verb *v) {
        char buf[64];

        snprintf(buf, sizeof(buf), "%s %s", v->name, v->args_help);
        if (strlen(buf) > 22)
                printf("  %s\n%25s", buf, "");
        else
                printf("  %-22s ", buf);
        printf("%s%s\n", v->help, v->flags & VERB_DEFAULT ? " (default)" : "");
}

static void help(void) {
        Option all = 0;

        printf("%s [OPTIONS...] COMMAND ...\n\n"
               "Find, switch, watch and chart TP-Link Kasa plugs through kasamond.\n\n"
               "Commands:\n",
               program_invocation_short_name);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (verbs[i].flags & VERB_HIDDEN)
                        continue;
                all |= verbs[i].options;
                print_verb_line(&verbs[i]);
        }
        printf("\n%s", dev_help);
        print_options(all);
        printf("\nEach command takes only the options that apply to it: \"kasactl COMMAND --help\"\n"
               "lists them.\n"
               "\n%s"
               "\nExit status: 0 ok, 1 failure, 2 usage or ambiguous name, 3 no such device,\n"
               "4 access denied, 5 device offline.\n"
               "See the kasactl(1) man page for details.\n",
               time_help);
}

static void help_verb(const Verb *v) {
        printf("%s [OPTIONS...] %s%s%s\n\n%s%s.\n", program_invocation_short_name, v->name,
               *v->args_help ? " " : "", v->args_help, v->help, v->flags & VERB_DEFAULT ? " (the default command)" : "");
        if (strstr(v->args_help, "DEV"))
                printf("\n%s", dev_help);
        print_options(v->options);
        if (v->options & OPT_RANGE)
                printf("\n%s", time_help);
        printf("\nSee the kasactl(1) man page for details.\n");
}

/* The commands of a group, for "kasactl help tariff" and "kasactl tariff --help". */
static void help_group(const char *group) {
        printf("%s [OPTIONS...] %s COMMAND ...\n\nCommands:\n", program_invocation_short_name, group);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (verb_in_group(&verbs[i], group))
                        print_verb_line(&verbs[i]);
        printf("\n\"kasactl %s COMMAND --help\" lists the options of each.\n"
               "See the kasactl(1) man page for details.\n",
               group);
}

static int verb_help(int argc, char **argv, void *userdata) {
        const Verb *v;
        int words;

        if (argc < 2) {
                help();
                return 0;
        }
        v = verb_lookup(argc - 1, argv + 1, &words);
        if (argc == 2 && !v && verb_is_group(argv[1])) {
                help_group(argv[1]);
                return 0;
        }
        if (!v || (v->flags & VERB_HIDDEN) || words != argc - 1)
                return log_error_errno(EINVAL, "Unknown command '%s%s%s'. \"kasactl help\" lists the commands.",
                                       argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] : "");
        help_verb(v);
        return 0;
}

/* For the completion scripts: the options COMMAND takes (without one, or
 * for an unknown one, every option), so they are never stale. */
static int verb_complete_options(int argc, char **argv, void *userdata) {
        int words;
        const Verb *v = verb_lookup(argc - 1, argv + 1, &words);
        Option options = 0;

        if (v)
                options = v->options;
        else
                for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                        options |= verbs[i].options;
        printf("--help\n--version\n");
        for (size_t i = 0; i < ELEMENTSOF(option_info); i++)
                if (options & option_info[i].option)
                        printf("--%s%s\n", option_info[i].name, option_info[i].value ? "=" : "");
        return 0;
}

static int parse_argv(int argc, char *argv[], Option *ret_given) {
        enum {
                ARG_VERSION = 0x100,
                ARG_JSON,
                ARG_NO_LEGEND,
                ARG_NO_ASK_PASSWORD,
                ARG_TIMEOUT,
                ARG_SINCE,
                ARG_UNTIL,
                ARG_RESOLUTION,
                ARG_BY,
                ARG_NAME,
                ARG_ROLE,
                ARG_EXPIRES,
                ARG_CANCEL,
                ARG_AT,
                ARG_SUNRISE,
                ARG_SUNSET,
                ARG_DAWN,
                ARG_DUSK,
                ARG_RANDOM,
                ARG_PERSISTENT,
                ARG_DATE,
                ARG_LOCATION,
                ARG_TARIFF,
                ARG_ENERGY,
                ARG_TIME_ZONE,
                ARG_FORMAT,
                ARG_FIELDS,
                ARG_THRESHOLD,
                ARG_FOR,
                ARG_COOLDOWN,
                ARG_COSTS,
                ARG_LIST_VERBS, /* the first that is not an Option */
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "json", required_argument, NULL, ARG_JSON },
                { "no-legend", no_argument, NULL, ARG_NO_LEGEND },
                { "no-ask-password", no_argument, NULL, ARG_NO_ASK_PASSWORD },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "since", required_argument, NULL, ARG_SINCE },
                { "until", required_argument, NULL, ARG_UNTIL },
                { "resolution", required_argument, NULL, ARG_RESOLUTION },
                { "by", required_argument, NULL, ARG_BY },
                { "name", required_argument, NULL, ARG_NAME },
                { "role", required_argument, NULL, ARG_ROLE },
                { "expires", required_argument, NULL, ARG_EXPIRES },
                { "cancel", no_argument, NULL, ARG_CANCEL },
                { "at", required_argument, NULL, ARG_AT },
                { "sunrise", optional_argument, NULL, ARG_SUNRISE },
                { "sunset", optional_argument, NULL, ARG_SUNSET },
                { "dawn", optional_argument, NULL, ARG_DAWN },
                { "dusk", optional_argument, NULL, ARG_DUSK },
                { "random", required_argument, NULL, ARG_RANDOM },
                { "persistent", no_argument, NULL, ARG_PERSISTENT },
                { "date", required_argument, NULL, ARG_DATE },
                { "location", required_argument, NULL, ARG_LOCATION },
                { "tariff", required_argument, NULL, ARG_TARIFF },
                { "energy", required_argument, NULL, ARG_ENERGY },
                { "time-zone", required_argument, NULL, ARG_TIME_ZONE },
                { "format", required_argument, NULL, ARG_FORMAT },
                { "fields", required_argument, NULL, ARG_FIELDS },
                { "threshold", required_argument, NULL, ARG_THRESHOLD },
                { "for", required_argument, NULL, ARG_FOR },
                { "cooldown", required_argument, NULL, ARG_COOLDOWN },
                { "costs", no_argument, NULL, ARG_COSTS },
                { "list-verbs", no_argument, NULL, ARG_LIST_VERBS },
                {},
        };
        /* The Option of each ARG_, in the order above. */
        static const Option arg_option[] = {
                [ARG_JSON - ARG_JSON] = OPT_JSON,
                [ARG_NO_LEGEND - ARG_JSON] = OPT_NO_LEGEND,
                [ARG_NO_ASK_PASSWORD - ARG_JSON] = OPT_NO_ASK_PASSWORD,
                [ARG_TIMEOUT - ARG_JSON] = OPT_TIMEOUT,
                [ARG_SINCE - ARG_JSON] = OPT_SINCE,
                [ARG_UNTIL - ARG_JSON] = OPT_UNTIL,
                [ARG_RESOLUTION - ARG_JSON] = OPT_RESOLUTION,
                [ARG_BY - ARG_JSON] = OPT_BY,
                [ARG_NAME - ARG_JSON] = OPT_NAME,
                [ARG_ROLE - ARG_JSON] = OPT_ROLE,
                [ARG_EXPIRES - ARG_JSON] = OPT_EXPIRES,
                [ARG_CANCEL - ARG_JSON] = OPT_CANCEL,
                [ARG_AT - ARG_JSON] = OPT_AT,
                [ARG_SUNRISE - ARG_JSON] = OPT_SUNRISE,
                [ARG_SUNSET - ARG_JSON] = OPT_SUNSET,
                [ARG_DAWN - ARG_JSON] = OPT_DAWN,
                [ARG_DUSK - ARG_JSON] = OPT_DUSK,
                [ARG_RANDOM - ARG_JSON] = OPT_RANDOM,
                [ARG_PERSISTENT - ARG_JSON] = OPT_PERSISTENT,
                [ARG_DATE - ARG_JSON] = OPT_DATE,
                [ARG_LOCATION - ARG_JSON] = OPT_LOCATION,
                [ARG_TARIFF - ARG_JSON] = OPT_TARIFF,
                [ARG_ENERGY - ARG_JSON] = OPT_ENERGY,
                [ARG_TIME_ZONE - ARG_JSON] = OPT_TIME_ZONE,
                [ARG_FORMAT - ARG_JSON] = OPT_FORMAT,
                [ARG_FIELDS - ARG_JSON] = OPT_FIELDS,
                [ARG_THRESHOLD - ARG_JSON] = OPT_THRESHOLD,
                [ARG_FOR - ARG_JSON] = OPT_FOR,
                [ARG_COOLDOWN - ARG_JSON] = OPT_COOLDOWN,
                [ARG_COSTS - ARG_JSON] = OPT_COSTS,
        };
        bool want_help = false;
        Option given = 0;
        int c;

        opterr = 0; /* the messages below say what to do instead */
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                if (c >= ARG_JSON && c < ARG_LIST_VERBS)
                        given |= arg_option[c - ARG_JSON];
                switch (c) {
                case 'h':
                        want_help = true;
                        break;
                case ARG_VERSION:
                        printf("kasactl %s\n", PROJECT_VERSION);
                        return 0;
                case ARG_JSON:
                        if (streq(optarg, "pretty"))
                                arg_json = JSON_PRETTY;
                        else if (streq(optarg, "short"))
                                arg_json = JSON_SHORT;
                        else if (streq(optarg, "off"))
                                arg_json = JSON_OFF;
                        else
                                return log_error_errno(EINVAL, "Invalid --json='%s': use pretty, short or off.",
                                                       optarg);
                        break;
                case ARG_NO_LEGEND:
                        arg_legend = false;
                        break;
                case ARG_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        arg_no_ask_password = true;
                        break;
                case ARG_TIMEOUT: {
                        char *end;

                        errno = 0;
                        arg_timeout = strtod(optarg, &end);
                        if (errno != 0 || end == optarg || *end || !(arg_timeout >= 0.1 && arg_timeout <= 60))
                                return log_error_errno(EINVAL, "Invalid --timeout='%s': 0.1 to 60 seconds.",
                                                       optarg);
                        break;
                }
                case ARG_SINCE:
                        arg_since = optarg;
                        break;
                case ARG_UNTIL:
                        arg_until = optarg;
                        break;
                case ARG_RESOLUTION:
                        arg_resolution = optarg;
                        break;
                case ARG_BY:
                        arg_by = optarg;
                        break;
                case ARG_NAME:
                        arg_name = optarg;
                        break;
                case ARG_ROLE:
                        arg_role = optarg;
                        break;
                case ARG_EXPIRES:
                        arg_expires = optarg;
                        break;
                case ARG_CANCEL:
                        arg_cancel = true;
                        break;
                case ARG_AT:
                        arg_at = optarg;
                        break;
                case ARG_SUNRISE:
                case ARG_SUNSET:
                case ARG_DAWN:
                case ARG_DUSK:
                        if (arg_sun_event)
                                return log_error_errno(EINVAL, "Only one of --sunrise, --sunset, --dawn and --dusk.");
                        arg_sun_event = c == ARG_SUNRISE ? "sunrise" : c == ARG_SUNSET ? "sunset" :
                                        c == ARG_DAWN ? "civil-dawn" : "civil-dusk";
                        arg_sun_offset = optarg;
                        break;
                case ARG_RANDOM:
                        arg_random = optarg;
                        break;
                case ARG_PERSISTENT:
                        arg_persistent = true;
                        break;
                case ARG_DATE:
                        arg_date = optarg;
                        break;
                case ARG_LOCATION:
                        arg_location = optarg;
                        break;
                case ARG_TARIFF:
                        arg_tariff = optarg;
                        break;
                case ARG_ENERGY:
                        arg_energy = optarg;
                        break;
                case ARG_TIME_ZONE:
                        arg_time_zone = optarg;
                        break;
                case ARG_FORMAT:
                        arg_format = optarg;
                        break;
                case ARG_FIELDS:
                        arg_fields = optarg;
                        break;
                case ARG_THRESHOLD:
                        arg_threshold = optarg;
                        break;
                case ARG_FOR:
                        arg_for = optarg;
                        break;
                case ARG_COOLDOWN:
                        arg_cooldown = optarg;
                        break;
                case ARG_COSTS:
                        arg_costs = true;
                        break;
                case ARG_LIST_VERBS:
                        /* For the man page test and completion scripts. */
                        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                                if (!(verbs[i].flags & VERB_HIDDEN))
                                        printf("%s\n", verbs[i].name);
                        return 0;
                case ':': {
                        const struct OptionInfo *o = optopt >= ARG_JSON && optopt < ARG_LIST_VERBS
                                                             ? option_find(arg_option[optopt - ARG_JSON])
                                                             : NULL;

                        if (o)
                                return log_error_errno(EINVAL, "--%s needs a value: %s.", o->name, o->values);
                        return log_error_errno(EINVAL, "%s needs a value.", argv[optind - 1]);
                }
                case '?':
                        if (optopt >= 0x100)
                                return log_error_errno(EINVAL, "%.*s takes no value.",
                                                       (int) strcspn(argv[optind - 1], "="), argv[optind - 1]);
                        if (optopt)
                                return log_error_errno(EINVAL,
                                                       "Unknown option '-%c'. \"kasactl --help\" lists the options.",
                                                       optopt);
                        return log_error_errno(EINVAL, "Unknown option '%s'. \"kasactl --help\" lists the options.",
                                               argv[optind - 1]);
                default:
                        abort();
                }
        }
        if (want_help) {
                int words;
                const Verb *v = verb_lookup(argc - optind, argv + optind, &words);

                if (!v && optind < argc && verb_is_group(argv[optind])) {
                        help_group(argv[optind]);
                        return 0;
                }
                if (optind < argc && (!v || (v->flags & VERB_HIDDEN)))
                        return log_error_errno(EINVAL, "Unknown command '%s'. \"kasactl --help\" lists the commands.",
                                               argv[optind]);
                if (v && v->fn != verb_help)
                        help_verb(v);
                else
                        help();
                return 0;
        }
        *ret_given = given;
        return 1;
}

static int dispatch_verb(int argc, char **argv, Option given, sd_bus **bus) {
        static char *default_argv[] = { (char *) "status", NULL };
        const Verb *v = NULL;
        int words = 1, r;

        if (argc == 0) {
                for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                        if (verbs[i].flags & VERB_DEFAULT)
                                v = &verbs[i];
                argc = 1;
                argv = default_argv;
        } else
                v = verb_lookup(argc, argv, &words);
        if (!v && verb_is_group(argv[0]))
                return log_group_error(argv[0]);
        if (!v)
                return log_error_errno(EINVAL, "Unknown command '%s'. \"kasactl --help\" lists the commands.",
                                       argv[0]);
        /* A group's verb sees its own word first: argv[0] "list" of "tariff list". */
        argc -= words - 1;
        argv += words - 1;
        for (size_t i = 0; i < ELEMENTSOF(option_info); i++)
                if (given & option_info[i].option & ~v->options)
                        return log_error_errno(EINVAL,
                                               "--%s does not apply to '%s'. \"kasactl %s --help\" lists the "
                                               "options it takes.",
                                               option_info[i].name, v->name, v->name);
        if (argc < v->min_args)
                return log_error_errno(EINVAL, "Too few arguments: kasactl %s %s", v->name, v->args_help);
        if (argc > v->max_args)
                return log_error_errno(EINVAL, "Too many arguments: '%s' is one too many for kasactl %s %s",
                                       argv[v->max_args], v->name, v->args_help);
        if (v->flags & VERB_NO_BUS)
                return v->fn(argc, argv, NULL);

        r = sd_bus_open_system(bus);
        if (r < 0)
                return log_error_errno(r,
                                       "Failed to connect to the system bus: %m. Is D-Bus running? (kasactl talks "
                                       "to kasamond there.)");
        return v->fn(argc, argv, *bus);
}

static int exit_status(int r) {
        switch (r) {
        case 0:
                return EXIT_SUCCESS;
        case -EINVAL:
        case -ENOTUNIQ:
                return EXIT_USAGE;
        case -ENXIO:
                return EXIT_NOT_FOUND;
        case -EACCES:
        case -EPERM:
                return EXIT_DENIED;
        case -EHOSTDOWN:
                return EXIT_OFFLINE;
        default:
                return EXIT_FAILURE;
        }
}

int main(int argc, char *argv[]) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *term = getenv("TERM"), *no_color = getenv("NO_COLOR");
        Option given = 0;
        int r;

        /* Tree lines and the chart in UTF-8 where the locale allows it. */
        setlocale(LC_ALL, "");
        log_parse_environment();
        arg_ask_password = isatty(STDIN_FILENO);
        arg_colors = isatty(STDOUT_FILENO) && !(no_color && *no_color) && !(term && streq(term, "dumb"));

        r = parse_argv(argc, argv, &given);
        if (r <= 0)
                return exit_status(r);
        if (arg_json != JSON_OFF)
                arg_colors = false;
        r = dispatch_verb(argc - optind, argv + optind, given, &bus);
        return exit_status(r);
}
