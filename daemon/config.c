/* SPDX-License-Identifier: MIT */
#include "macro.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "config.h"
#include "discovery.h"
#include "kasa-time.h"

#define streq(a, b) (strcmp((a), (b)) == 0)
#define DAY ((double) (USEC_PER_DAY / USEC_PER_SEC))

#define KEY(g, k, t, d, lo, hi, field, text) \
        { g, k, t, d, lo, hi, offsetof(Config, field), text }

const ConfigKey config_keys[] = {
        KEY("Daemon", "StateDirectory", CONFIG_PATH, "/var/lib/kasamond", 0, 0, state_directory,
            "Where the databases live. $STATE_DIRECTORY, as set by systemd's StateDirectory=, takes precedence."),
        KEY("Daemon", "TimeZone", CONFIG_TIME_ZONE, "", 0, 0, time_zone,
            "IANA time zone for day, month and tariff boundaries; empty means the system's local zone."),
        KEY("Polling", "Interval", CONFIG_DURATION, "10s", 0.2, 3600, poll_interval_usec,
            "Time between two polls of one device."),
        KEY("Polling", "Timeout", CONFIG_DURATION, "2s", 0.1, 60, poll_timeout_usec,
            "A poll not answered within this time fails."),
        KEY("Polling", "MaxBackoff", CONFIG_DURATION, "300s", 1, DAY, poll_max_backoff_usec,
            "Longest delay between retries of a failing device."),
        KEY("Polling", "Jitter", CONFIG_FRACTION, "0.1", 0, 0.5, poll_jitter,
            "Random spread of poll times, as a fraction of Interval (0.1 = +-10 %)."),
        KEY("Discovery", "Targets", CONFIG_TARGETS, "auto", 0, 0, discovery_targets,
            "Where discovery probes go, separated by ';' or ' ': 'auto' (the broadcast address of each interface), "
            "IPv4 unicast or broadcast addresses, or blocks a.b.c.d/n (n >= 16, every host probed), "
            "each optionally as addr:port."),
        KEY("Discovery", "Interval", CONFIG_DURATION_OR_NEVER, "300s", 10, DAY, discovery_interval_usec,
            "Time between discovery rounds; 0 = only at start and when addresses change."),
        KEY("Discovery", "Attempts", CONFIG_UNSIGNED, "3", 1, 10, discovery_attempts,
            "Probes sent per discovery round."),
        KEY("Discovery", "Timeout", CONFIG_DURATION, "2s", 0.1, 60, discovery_timeout_usec,
            "How long discovery replies are awaited."),
        KEY("Storage", "RawRetention", CONFIG_DURATION, "7d", 3600, 3650 * DAY, raw_retention_usec,
            "Raw readings are kept this long, then only rollups; not below CompactAfter."),
        KEY("Storage", "CompactAfter", CONFIG_DURATION, "1h", 60, DAY, compact_after_usec,
            "Readings wait in the write-ahead log this long (aligned to multiples of it) before they are packed "
            "into the database."),
        KEY("Storage", "MaxSizeMiB", CONFIG_UNSIGNED, "0", 0, 1048576, max_size_mib,
            "Largest size of the readings database, in MiB; 0 = 1024 on 32-bit systems, 65536 otherwise."),
        KEY("Limits", "MaxDevices", CONFIG_UNSIGNED, "1024", 1, 65536, max_devices,
            "Most devices (outlets included) the daemon manages."),
        KEY("Limits", "MaxFrameSize", CONFIG_UNSIGNED, "65536", 4096, 1048576, max_frame_size,
            "Largest device reply accepted, in bytes."),
        KEY("Bridge", "User", CONFIG_USER, "kasamond-bridge", 0, 0, bridge_user,
            "The user the HTTP bridge runs as. Its calls are never decided by polkit: each needs an API token "
            "bound to the calling connection whose role allows it. Looked up at start and after each successful "
            "BindToken of another uid; empty, or a user that does not exist: no bridge."),
        KEY("Location", "Latitude", CONFIG_DEGREES, "", -90, 90, latitude,
            "Degrees north (negative: south) of the place sun schedules and kasactl sun use; empty = none."),
        KEY("Location", "Longitude", CONFIG_DEGREES, "", -180, 180, longitude,
            "Degrees east (negative: west) of that place; empty = none."),
        KEY("Credentials", "File", CONFIG_PATH, "/etc/kasamond/tplink-credentials", 0, 0, credentials_file,
            "The TP-Link account KLAP devices are bound to: two lines, its e-mail and its password, in a file "
            "no one but its owner may read (mode 600); a missing file means none. $CREDENTIALS_DIRECTORY/tplink (systemd's "
            "LoadCredential=tplink:PATH) takes precedence."),
};
const size_t config_keys_count = ELEMENTSOF(config_keys);

static void keyfilep(GKeyFile **k) {
        if (*k)
                g_key_file_free(*k);
}

static void gfreep(void *p) {
        g_free(*(void **) p);
}

static void gstrvp(char ***p) {
        g_strfreev(*p);
}

static void gerrorp(GError **e) {
        if (*e)
                g_error_free(*e);
}

_printf_(2, 3)
static int set_error(char **ret_error, const char *fmt, ...) {
        if (!ret_error)
                return 0;

        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(ret_error, fmt, ap);
        va_end(ap);
        if (r < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return 0;
}

/* The number grammar of durations and fractions: digits with an optional
 * fraction, nothing else (strtod would also take "inf", "0x1p3", "-1"). */
static size_t number_prefix(const char *s) {
        size_t i = 0, digits = 0;
        for (; g_ascii_isdigit(s[i]); i++)
                digits++;
        if (s[i] == '.')
                for (i++; g_ascii_isdigit(s[i]); i++)
                        digits++;
        return digits > 0 ? i : 0;
}

static int parse_number(const char *s, size_t len, double *ret) {
        if (len == 0 || len > 64)
                return -EINVAL;

        char buf[65];
        memcpy(buf, s, len);
        buf[len] = 0;
        double v = g_ascii_strtod(buf, NULL);
        if (!isfinite(v))
                return -ERANGE;
        *ret = v;
        return 0;
}

/* For parsing and for --dump-config: largest first. */
static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        { "d",   USEC_PER_DAY },
        { "h",   USEC_PER_HOUR },
        { "min", USEC_PER_MINUTE },
        { "s",   USEC_PER_SEC },
        { "ms",  USEC_PER_MSEC },
};

static int parse_duration(const char *s, double *ret_seconds) {
        size_t n = number_prefix(s);
        double v;

        if (parse_number(s, n, &v) < 0)
                return -EINVAL;

        const char *unit = s + n;
        while (*unit == ' ')
                unit++;
        if (*unit == 0) {
                *ret_seconds = v;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++)
                if (streq(unit, duration_units[i].suffix)) {
                        *ret_seconds = v * ((double) duration_units[i].usec / USEC_PER_SEC);
                        return 0;
                }
        return -EINVAL;
}

/* Parses one value into the config; on failure *ret_why (if given) says
 * what is wrong, for the caller to prefix with file, line, group and key. */
static int parse_value(const ConfigKey *k, const char *raw, Config *c, char **ret_why) {
        _cleanup_(gfreep) char *value = g_strstrip(g_strdup(raw));
        void *field = (uint8_t *) c + k->offset;
        double v;

        switch (k->type) {

        case CONFIG_PATH: {
                if (value[0] != '/')
                        return set_error(ret_why, "'%s' is not an absolute path", value), -EINVAL;
                char *copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
                free(*(char **) field);
                *(char **) field = copy;
                return 0;
        }

        case CONFIG_TIME_ZONE: {
                if (*value) {
                        Calendar *cal = calendar_new(value);
                        if (!cal)
                                return set_error(ret_why, "unknown time zone '%s'", value), -EINVAL;
                        calendar_free(cal);
                }
                char *copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
                free(*(char **) field);
                *(char **) field = copy;
                return 0;
        }

        case CONFIG_USER: {
                /* The characters of user names, as useradd accepts them. */
                if (strlen(value) > 256 || value[0] == '-' || strspn(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                            "abcdefghijklmnopqrstuvwxyz"
                                                                            "0123456789._-") != strlen(value))
                        return set_error(ret_why, "'%s' is not a user name", value), -EINVAL;
                char *copy = strdup(value);
                if (!copy)
                        return -ENOMEM;
                free(*(char **) field);
                *(char **) field = copy;
                return 0;
        }

        case CONFIG_DURATION:
        case CONFIG_DURATION_OR_NEVER:
                if (parse_duration(value, &v) < 0)
                        return set_error(ret_why, "'%s' is not a duration (seconds, or a number with ms, s, min, h or d)", value), -EINVAL;
                if (v == 0 && k->type == CONFIG_DURATION_OR_NEVER) {
                        *(uint64_t *) field = 0;
                        return 0;
                }
                if (v < k->min || v > k->max)
                        return set_error(ret_why, "'%s' is out of range (%gs..%gs)", value, k->min, k->max), -ERANGE;
                *(uint64_t *) field = (uint64_t) llround(v * USEC_PER_SEC);
                return 0;

        case CONFIG_FRACTION:
                if (number_prefix(value) != strlen(value) || parse_number(value, strlen(value), &v) < 0)
                        return set_error(ret_why, "'%s' is not a number", value), -EINVAL;
                if (v < k->min || v > k->max)
                        return set_error(ret_why, "'%s' is out of range (%g..%g)", value, k->min, k->max), -ERANGE;
                *(double *) field = v;
                return 0;

        case CONFIG_DEGREES:
                if (!*value) {
                        *(double *) field = NAN;
                        return 0;
                }
                const char *digits = value + (value[0] == '-' || value[0] == '+');
                if (!*digits || number_prefix(digits) != strlen(digits) ||
                    parse_number(digits, strlen(digits), &v) < 0)
                        return set_error(ret_why, "'%s' is not a number of degrees", value), -EINVAL;
                if (value[0] == '-')
                        v = -v;
                if (v < k->min || v > k->max)
                        return set_error(ret_why, "'%s' is out of range (%g..%g)", value, k->min, k->max), -ERANGE;
                *(double *) field = v;
                return 0;

        case CONFIG_UNSIGNED: {
                size_t n = strspn(value, "0123456789");
                if (n == 0 || value[n] != 0)
                        return set_error(ret_why, "'%s' is not an unsigned integer", value), -EINVAL;
                unsigned long long u = n > 19 ? ULLONG_MAX : strtoull(value, NULL, 10);
                if (u < k->min || u > k->max)
                        return set_error(ret_why, "'%s' is out of range (%g..%g)", value, k->min, k->max), -ERANGE;
                *(unsigned *) field = (unsigned) u;
                return 0;
        }

        case CONFIG_TARGETS: {
                _cleanup_(gstrvp) char **words = g_strsplit_set(value, "; \t", -1);
                GPtrArray *targets = g_ptr_array_new_with_free_func(g_free);

                for (char **w = words; *w; w++) {
                        if (**w == 0)
                                continue;
                        if (targets->len >= CONFIG_TARGETS_MAX) {
                                g_ptr_array_free(targets, TRUE);
                                return set_error(ret_why, "more than %d targets", CONFIG_TARGETS_MAX), -E2BIG;
                        }
                        if (discovery_check_target(*w) < 0) {
                                g_ptr_array_free(targets, TRUE);
                                return set_error(ret_why,
                                                 "'%s' is not 'auto', an IPv4 address or a block a.b.c.d/n "
                                                 "(n >= 16), each optionally followed by :port", *w), -EINVAL;
                        }
                        g_ptr_array_add(targets, g_strdup(*w));
                }
                if (targets->len == 0) {
                        g_ptr_array_free(targets, TRUE);
                        return set_error(ret_why, "no targets (use 'auto' for the default)"), -EINVAL;
                }
                g_ptr_array_add(targets, NULL);
                g_strfreev(c->discovery_targets);
                c->discovery_targets = (char **) g_ptr_array_free(targets, FALSE);
                return 0;
        }
        }

        return -EINVAL;
}

static const ConfigKey *find_key(const char *group, const char *key) {
        for (size_t i = 0; i < config_keys_count; i++)
                if (streq(config_keys[i].group, group) && (!key || streq(config_keys[i].key, key)))
                        return &config_keys[i];
        return NULL;
}

/* The next line of text with its blanks trimmed: [*ret_b, *ret_e). */
static bool next_line(const char **p, const char *end, const char **ret_b, const char **ret_e) {
        if (*p >= end)
                return false;
        const char *nl = memchr(*p, '\n', (size_t) (end - *p));
        const char *eol = nl ? nl : end, *b = *p, *e = eol;
        while (b < e && g_ascii_isspace(*b))
                b++;
        while (e > b && g_ascii_isspace(e[-1]))
                e--;
        *p = eol + 1;
        *ret_b = b;
        *ret_e = e;
        return true;
}

/* GKeyFile reports no line numbers, so find them in the text: the header of
 * a group (key NULL), or the last line setting group/key (the one GKeyFile
 * uses). 0 if not found. */
static unsigned find_line(const char *text, size_t len, const char *group, const char *key) {
        const char *p = text, *end = text + len, *b, *q;
        bool in_group = false;
        unsigned line = 0, found = 0;

        while (next_line(&p, end, &b, &q)) {
                size_t n = (size_t) (q - b);
                line++;
                if (n >= 2 && b[0] == '[' && q[-1] == ']') {
                        in_group = strlen(group) == n - 2 && memcmp(b + 1, group, n - 2) == 0;
                        if (in_group && !key)
                                return line;
                } else if (in_group && key && n > 0 && b[0] != '#') {
                        const char *eq = memchr(b, '=', n);
                        if (eq) {
                                const char *k = eq;
                                while (k > b && g_ascii_isspace(k[-1]))
                                        k--;
                                if ((size_t) (k - b) == strlen(key) && memcmp(b, key, strlen(key)) == 0)
                                        found = line;
                        }
                }
        }
        return found;
}

/* GKeyFile's syntax errors do not say where either: the first line that is
 * neither blank, comment, group header nor key=value, a key before any group,
 * or a localized key (which GKeyFile would silently set aside). 0 if none. */
static unsigned find_bad_line(const char *text, size_t len, const char **ret_why) {
        const char *p = text, *end = text + len, *b, *q;
        bool have_group = false;
        unsigned line = 0;

        while (next_line(&p, end, &b, &q)) {
                line++;
                if (b == q || *b == '#')
                        continue;
                const char *eq = memchr(b, '=', (size_t) (q - b));
                if (*b == '[' && q[-1] == ']')
                        have_group = true;
                else if (!eq || eq == b) {
                        *ret_why = "not a group header, key=value pair or comment";
                        return line;
                } else if (!have_group) {
                        *ret_why = "key=value before any [group]";
                        return line;
                } else if (memchr(b, '[', (size_t) (eq - b))) {
                        *ret_why = "localized keys (Key[lang]=) are not supported";
                        return line;
                }
        }
        return 0;
}

void config_done(Config *c) {
        if (!c)
                return;
        free(c->state_directory);
        free(c->credentials_file);
        free(c->time_zone);
        g_strfreev(c->discovery_targets);
        free(c->bridge_user);
        *c = (Config) {};
}

static int config_defaults(Config *c) {
        *c = (Config) {};
        for (size_t i = 0; i < config_keys_count; i++) {
                /* Defaults go through the parser so the table is their only
                 * definition; only -ENOMEM can fail here. */
                int r = parse_value(&config_keys[i], config_keys[i].default_value, c, NULL);
                if (r < 0) {
                        config_done(c);
                        return r;
                }
        }
        return 0;
}

static int key_error(char **ret_error, const char *name, const char *text, size_t len,
                     const char *group, const char *key, const char *why, int r) {
        unsigned line = find_line(text, len, group, key);
        int q = line > 0 ?
                set_error(ret_error, "%s:%u: [%s] %s: %s", name, line, group, key, why) :
                set_error(ret_error, "%s: [%s] %s: %s", name, group, key, why);
        return q < 0 ? q : r;
}

int config_load_data(const char *text, size_t len, const char *name, Config *ret, char **ret_error) {
        _cleanup_(config_done) Config c = {};
        _cleanup_(keyfilep) GKeyFile *kf = NULL;
        _cleanup_(gerrorp) GError *err = NULL;
        int r;

        r = config_defaults(&c);
        if (r < 0)
                return r;

        if (text) {
                const char *syntax;
                unsigned bad = find_bad_line(text, len, &syntax);
                if (bad > 0)
                        return set_error(ret_error, "%s:%u: %s", name, bad, syntax) ?: -EINVAL;

                kf = g_key_file_new();
                if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, &err))
                        return set_error(ret_error, "%s: %s", name, err->message) ?: -EINVAL;

                _cleanup_(gstrvp) char **groups = g_key_file_get_groups(kf, NULL);
                for (char **g = groups; *g; g++) {
                        if (!find_key(*g, NULL)) {
                                unsigned line = find_line(text, len, *g, NULL);
                                return set_error(ret_error, "%s:%u: unknown group [%s]", name, line, *g) ?: -EINVAL;
                        }

                        _cleanup_(gstrvp) char **keys = g_key_file_get_keys(kf, *g, NULL, NULL);
                        for (char **k = keys; keys && *k; k++) {
                                const ConfigKey *ck = find_key(*g, *k);
                                if (!ck)
                                        return key_error(ret_error, name, text, len, *g, *k, "unknown key", -EINVAL);

                                _cleanup_(gfreep) char *value = g_key_file_get_string(kf, *g, *k, &err);
                                if (!value)
                                        return key_error(ret_error, name, text, len, *g, *k, err->message, -EINVAL);

                                _cleanup_free_ char *why = NULL;
                                r = parse_value(ck, value, &c, &why);
                                if (r < 0)
                                        return key_error(ret_error, name, text, len, *g, *k, why ?: strerror(-r), r);
                        }
                }
        }

        /* Compacting raw rows later than they are dropped makes no sense. */
        if (c.raw_retention_usec < c.compact_after_usec)
                return key_error(ret_error, name, text ?: "", text ? len : 0, "Storage", "RawRetention",
                                 "shorter than CompactAfter", -EINVAL);

        *ret = c;
        c = (Config) {};
        return 0;
}

int config_load(const char *path, Config *ret, char **ret_error) {
        _cleanup_(gfreep) char *text = NULL;
        _cleanup_(gerrorp) GError *err = NULL;
        gsize len = 0;

        if (!path)
                return config_load_data(NULL, 0, "(defaults)", ret, ret_error);

        if (!g_file_get_contents(path, &text, &len, &err)) {
                int r = err->domain == G_FILE_ERROR && err->code == G_FILE_ERROR_NOENT ? -ENOENT :
                        err->domain == G_FILE_ERROR && err->code == G_FILE_ERROR_ACCES ? -EACCES : -EIO;
                return set_error(ret_error, "%s", err->message) ?: r;
        }

        return config_load_data(text, len, path, ret, ret_error);
}

char *config_state_directory(const Config *c) {
        const char *e = getenv("STATE_DIRECTORY");

        /* systemd passes several directories separated by ':' when the unit
         * lists several; ours is the first. */
        if (e && *e)
                return strndup(e, strcspn(e, ":"));
        return strdup(c->state_directory);
}

static char *format_duration(uint64_t usec) {
        if (usec == 0)
                return g_strdup("0");
        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++)
                if (usec % duration_units[i].usec == 0)
                        return g_strdup_printf("%" G_GUINT64_FORMAT "%s", usec / duration_units[i].usec,
                                               duration_units[i].suffix);

        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        return g_strdup(g_ascii_formatd(buf, sizeof buf, "%.6f", (double) usec / USEC_PER_SEC));
}

static char *format_targets(const Config *c) {
        return g_strjoinv(" ", c->discovery_targets);
}

char *config_dump(const Config *c) {
        _cleanup_(keyfilep) GKeyFile *kf = g_key_file_new();

        for (size_t i = 0; i < config_keys_count; i++) {
                const ConfigKey *k = &config_keys[i];
                const void *field = (const uint8_t *) c + k->offset;
                _cleanup_(gfreep) char *value = NULL;
                char buf[G_ASCII_DTOSTR_BUF_SIZE];

                switch (k->type) {
                case CONFIG_PATH:
                case CONFIG_TIME_ZONE:
                case CONFIG_USER:
                        value = g_strdup(*(char *const *) field);
                        break;
                case CONFIG_DURATION:
                case CONFIG_DURATION_OR_NEVER:
                        value = format_duration(*(const uint64_t *) field);
                        break;
                case CONFIG_FRACTION:
                        value = g_strdup(g_ascii_formatd(buf, sizeof buf, "%.15g", *(const double *) field));
                        break;
                case CONFIG_DEGREES:
                        value = isnan(*(const double *) field)
                                        ? g_strdup("")
                                        : g_strdup(g_ascii_formatd(buf, sizeof buf, "%.15g", *(const double *) field));
                        break;
                case CONFIG_UNSIGNED:
                        value = g_strdup_printf("%u", *(const unsigned *) field);
                        break;
                case CONFIG_TARGETS:
                        value = format_targets(c);
                        break;
                }

                g_key_file_set_string(kf, k->group, k->key, value);
                _cleanup_(gfreep) char *comment = g_strconcat(" ", k->doc, NULL);
                g_key_file_set_comment(kf, k->group, k->key, comment, NULL);
        }

        _cleanup_(gfreep) char *text = g_key_file_to_data(kf, NULL, NULL);
        return strdup(text);
}
