/* SPDX-License-Identifier: MIT */
#pragma once

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* kasamond.conf: a key file (GKeyFile syntax). Every group and key is
 * optional; config_keys[] below is the single source of the keys, their
 * defaults, ranges and documentation (the man page and config_dump() are
 * written from it):
 *
 * [Daemon]
 *   StateDirectory=/var/lib/kasamond  where the databases live; $STATE_DIRECTORY
 *                                     (set by systemd's StateDirectory=) wins
 *   TimeZone=                         IANA zone for days, months and tariffs;
 *                                     empty = the system's local zone
 * [Polling]
 *   Interval=10s       0.2s..3600s   time between polls of one device
 *   Timeout=2s         0.1s..60s     a poll not answered by then fails
 *   MaxBackoff=300s    1s..1d        longest retry delay of a failing device
 *   Jitter=0.1         0..0.5        random spread, fraction of Interval (+-)
 * [Discovery]
 *   Targets=auto       where probes go: "auto" (the broadcast address of each
 *                      interface), IPv4 unicast or broadcast addresses, or
 *                      blocks a.b.c.d/n (n >= 16), each optionally
 *                      "addr:port"; separated by ';' or ' '
 *   Interval=300s      10s..1d, or 0 = only at start and on address changes
 *   Attempts=3         1..10         probes per discovery round
 *   Timeout=2s         0.1s..60s     how long replies are awaited
 * [Storage]
 *   RawRetention=7d    1h..3650d     raw readings are kept this long, then
 *                                    only rollups; not below CompactAfter
 *   CompactAfter=1h    1min..1d      readings are packed from the log into
 *                                    the database this often
 *   MaxSizeMiB=0       0..1048576    cap of the readings database; 0 = auto
 * [Limits]
 *   MaxDevices=1024    1..65536
 *   MaxFrameSize=65536 4096..1048576 largest device reply accepted (bytes)
 * [Bridge]
 *   User=kasamond-bridge  the HTTP bridge's user: its calls are decided by
 *                         API tokens (access.h); empty or unknown = none
 * [Location]           where sun schedules are computed; empty = none
 *   Latitude=          -90..90       degrees north
 *   Longitude=         -180..180     degrees east
 * [Credentials]
 *   File=/etc/kasamond/tplink-credentials  the TP-Link account for KLAP
 *                      devices (e-mail and password, two lines, mode 600);
 *                      $CREDENTIALS_DIRECTORY/tplink wins
 *
 * Durations: seconds ("2.5") or a number with a unit: ms, s, min, h, d. */

#define CONFIG_TARGETS_MAX 64


typedef struct Config {
        char *state_directory;
        char *time_zone;         /* "" = system local zone */

        uint64_t poll_interval_usec;
        uint64_t poll_timeout_usec;
        uint64_t poll_max_backoff_usec;
        double poll_jitter;

        char **discovery_targets;  /* NULL-terminated; see discovery_check_target() */
        uint64_t discovery_interval_usec;
        unsigned discovery_attempts;
        uint64_t discovery_timeout_usec;

        uint64_t raw_retention_usec;
        uint64_t compact_after_usec;
        unsigned max_size_mib;

        unsigned max_devices;
        unsigned max_frame_size;

        char *bridge_user;       /* "" = no bridge */
        double latitude, longitude; /* NAN: not configured */
        char *credentials_file;
} Config;

typedef enum ConfigType {
        CONFIG_PATH,      /* absolute */
        CONFIG_TIME_ZONE,
        CONFIG_DURATION,  /* min/max in seconds */
        CONFIG_DURATION_OR_NEVER, /* the same, or 0 */
        CONFIG_FRACTION,
        CONFIG_UNSIGNED,
        CONFIG_TARGETS,
        CONFIG_USER,      /* a user name, or empty */
        CONFIG_DEGREES,   /* a number in min..max, or empty: NAN */
} ConfigType;

typedef struct ConfigKey {
        const char *group;
        const char *key;
        ConfigType type;
        const char *default_value; /* parsed like a value from the file */
        double min, max;
        size_t offset;             /* into Config */
        const char *doc;
} ConfigKey;

extern const ConfigKey config_keys[];
extern const size_t config_keys_count;

/* path NULL: defaults only. On failure returns negative errno and, if
 * ret_error is given, a message naming file, line, group and key (free()).
 * *ret is only written on success; release it with config_done(). */
int config_load(const char *path, Config *ret, char **ret_error);

/* The same for text already in memory; name is used in messages. */
int config_load_data(const char *text, size_t len, const char *name, Config *ret, char **ret_error);

void config_done(Config *c);

/* $STATE_DIRECTORY (its first entry) if set, else StateDirectory.
 * Returns a new string (free()), NULL on OOM. */
char *config_state_directory(const Config *c);

/* The effective configuration as key file text with every key (free()). */
char *config_dump(const Config *c);
