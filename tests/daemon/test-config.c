/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <glib.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "tap.h"

#define SEC 1000000ULL

static bool streq0(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static bool contains(const char *s, const char *part) {
        return s && strstr(s, part);
}

/* Loads text; returns the error (or NULL) and frees the config. */
static char *load_error(const char *text, int *ret_r) {
        Config c;
        char *err = NULL;
        *ret_r = config_load_data(text, strlen(text), "test.conf", &c, &err);
        if (*ret_r >= 0)
                config_done(&c);
        return err;
}

static void check_error(const char *text, const char *want, const char *name) {
        int r;
        char *err = load_error(text, &r);
        ok(r < 0 && contains(err, want), "%s", name);
        if (!contains(err, want))
                diag("got: %s (r=%d), wanted: %s", err ?: "(none)", r, want);
        free(err);
}

static void test_defaults(void) {
        Config c;
        char *err = NULL;
        int r = config_load(NULL, &c, &err);

        is_int(r, 0, "defaults load");
        is_str(c.state_directory, "/var/lib/kasamond", "StateDirectory default");
        is_str(c.time_zone, "", "TimeZone default: local");
        is_int((int64_t) c.poll_interval_usec, 10 * SEC, "Polling.Interval default");
        is_int((int64_t) c.poll_timeout_usec, 2 * SEC, "Polling.Timeout default");
        is_int((int64_t) c.poll_max_backoff_usec, 300 * SEC, "MaxBackoff default");
        ok(c.poll_jitter == 0.1, "Jitter default");
        ok(c.discovery_targets && c.discovery_targets[0] && streq0(c.discovery_targets[0], "auto") &&
           !c.discovery_targets[1], "Targets default: auto");
        is_int((int64_t) c.discovery_interval_usec, 300 * SEC, "Discovery.Interval default");
        is_int(c.discovery_attempts, 3, "Attempts default");
        is_int((int64_t) c.discovery_timeout_usec, 2 * SEC, "Discovery.Timeout default");
        is_int((int64_t) c.raw_retention_usec, 7 * 86400 * SEC, "RawRetention default");
        is_int((int64_t) c.compact_after_usec, 3600 * SEC, "CompactAfter default");
        is_int(c.max_devices, 1024, "MaxDevices default");
        is_int(c.max_frame_size, 65536, "MaxFrameSize default");
        ok(streq0(c.bridge_user, "kasamond-bridge"), "Bridge.User default");
        is_str(c.credentials_file, "/etc/kasamond/tplink-credentials", "Credentials.File default");
        config_done(&c);

        /* every table entry is documented and its default parses (checked
         * by the load above); nothing in the table is missing from it */
        bool documented = true;
        for (size_t i = 0; i < config_keys_count; i++)
                documented = documented && config_keys[i].doc && strlen(config_keys[i].doc) > 10;
        ok(documented && config_keys_count == 19, "%zu keys, all documented", config_keys_count);
}

static void test_values(void) {
        static const char text[] =
                "# a comment\n"
                "\n"
                "[Daemon]\n"
                "StateDirectory = /srv/kasa\n"
                "TimeZone=Europe/Berlin\n"
                "[Polling]\n"
                "  Interval = 500ms  \n"
                "Timeout=0.25\n"
                "MaxBackoff=1.5min\n"
                "Jitter=0.25\n"
                "[Discovery]\n"
                "Targets=auto;127.0.0.2 127.0.0.3:10000\n"
                "Interval=0\n"
                "Attempts=10\n"
                "Timeout=100ms\n"
                "[Storage]\n"
                "RawRetention=12h\n"
                "CompactAfter=3600\n"
                "[Limits]\n"
                "MaxDevices=1\n"
                "MaxFrameSize=1048576\n";
        Config c;
        char *err = NULL;
        int r = config_load_data(text, strlen(text), "test.conf", &c, &err);

        is_int(r, 0, "a full file loads");
        if (r < 0) {
                diag("%s", err);
                free(err);
                return;
        }
        is_str(c.state_directory, "/srv/kasa", "path");
        is_str(c.time_zone, "Europe/Berlin", "time zone");
        is_int((int64_t) c.poll_interval_usec, SEC / 2, "ms suffix, whitespace trimmed");
        is_int((int64_t) c.poll_timeout_usec, SEC / 4, "plain fractional seconds");
        is_int((int64_t) c.poll_max_backoff_usec, 90 * SEC, "min suffix with a fraction");
        ok(c.poll_jitter == 0.25, "fraction");
        ok(c.discovery_targets[0] && streq0(c.discovery_targets[0], "auto") && c.discovery_targets[1] &&
           streq0(c.discovery_targets[1], "127.0.0.2") && c.discovery_targets[2] &&
           streq0(c.discovery_targets[2], "127.0.0.3:10000") && !c.discovery_targets[3],
           "targets split on ';' and ' '");
        is_int((int64_t) c.discovery_interval_usec, 0, "interval 0 allowed");
        is_int(c.discovery_attempts, 10, "attempts upper bound");
        is_int((int64_t) c.raw_retention_usec, 12 * 3600 * SEC, "h suffix");
        is_int((int64_t) c.compact_after_usec, 3600 * SEC, "3600 seconds");
        is_int(c.max_devices, 1, "MaxDevices lower bound");
        is_int(c.max_frame_size, 1048576, "MaxFrameSize upper bound");

        /* the dump loads back to the same configuration */
        char *dump = config_dump(&c);
        Config d;
        r = config_load_data(dump, strlen(dump), "dump", &d, &err);
        is_int(r, 0, "the dump loads");
        if (r >= 0) {
                char *dump2 = config_dump(&d);
                is_str(dump2, dump, "and dumps the same");
                ok(d.poll_interval_usec == c.poll_interval_usec && d.poll_jitter == c.poll_jitter &&
                   d.raw_retention_usec == c.raw_retention_usec && streq0(d.time_zone, c.time_zone),
                   "values survive the round trip");
                ok(contains(dump, "[Polling]") && contains(dump, "Interval=500ms") && contains(dump, "# Time between"),
                   "dump is a commented key file");
                free(dump2);
                config_done(&d);
        } else {
                diag("%s", err);
                free(err);
        }
        free(dump);
        config_done(&c);
}

static void test_errors(void) {
        check_error("[Polling]\nInterval=10s\n\n[Bogus]\nX=1\n", "test.conf:4: unknown group [Bogus]", "unknown group with its line");
        check_error("[Polling]\n# c\nInterval=10s\nIntervall=5\n", "test.conf:4: [Polling] Intervall: unknown key", "unknown key with its line");
        check_error("[Polling]\nInterval=10s\n[Daemon]\nInterval=1\n", "test.conf:4: [Daemon] Interval: unknown key", "key in the wrong group");
        check_error("[Polling]\nInterval=ten\n", "test.conf:2: [Polling] Interval: 'ten' is not a duration", "bad duration");
        check_error("[Polling]\nInterval=0.1\n", "test.conf:2: [Polling] Interval: '0.1' is out of range", "duration below range");
        check_error("[Polling]\nInterval=2h\n", "[Polling] Interval: '2h' is out of range", "duration above range");
        check_error("[Polling]\nInterval=-1\n", "is not a duration", "negative duration");
        check_error("[Polling]\nInterval=1e3\n", "is not a duration", "exponent refused");
        check_error("[Polling]\nInterval=inf\n", "is not a duration", "inf refused");
        check_error("[Polling]\nInterval=5 weeks\n", "is not a duration", "unknown unit");
        check_error("[Polling]\nInterval=5s\nInterval=7x\n", "test.conf:3: [Polling] Interval: '7x'", "duplicate key: the last one, with its line");
        check_error("[Discovery]\nInterval=1s\n", "[Discovery] Interval: '1s' is out of range (10s..86400s)", "discovery interval: 0 or at least 10 s");
        check_error("[Polling]\nJitter=0.6\n", "[Polling] Jitter: '0.6' is out of range (0..0.5)", "fraction out of range");
        check_error("[Polling]\nJitter=10%\n", "'10%' is not a number", "fraction with junk");
        check_error("[Discovery]\nAttempts=0\n", "test.conf:2: [Discovery] Attempts: '0' is out of range (1..10)", "integer below range");
        check_error("[Discovery]\nAttempts=3.5\n", "not an unsigned integer", "integer with a fraction");
        check_error("[Limits]\nMaxDevices=99999999999999999999999\n", "out of range", "huge integer");
        check_error("[Limits]\nMaxFrameSize=1024\n", "[Limits] MaxFrameSize: '1024' is out of range", "frame size too small");
        check_error("[Discovery]\nTargets=auto;999.1.1.1\n", "test.conf:2: [Discovery] Targets: '999.1.1.1'", "bad target");
        check_error("[Discovery]\nTargets=127.0.0.2:0\n", "'127.0.0.2:0'", "bad port");
        check_error("[Discovery]\nTargets= ; \n", "no targets", "empty target list");
        check_error("[Daemon]\nTimeZone=Mars/Olympus\n", "test.conf:2: [Daemon] TimeZone: unknown time zone 'Mars/Olympus'", "unknown zone");
        check_error("[Daemon]\nTimeZone=/etc/localtime\n", "unknown time zone", "zone as a path");
        check_error("[Daemon]\nStateDirectory=var/lib\n", "not an absolute path", "relative state directory");
        check_error("[Daemon]\nthis is not a key\n", "test.conf:2: not a group header", "syntax error with its line");
        check_error("Interval=1\n[Polling]\n", "test.conf:1: key=value before any [group]", "key before any group");
        check_error("[Daemon]\nStateDirectory[de]=/x\n", "test.conf:2: localized keys", "localized key");
        check_error("[Daemon\n", "test.conf:1: not a group header", "broken group header");
        check_error("[Storage]\nCompactAfter=1d\nRawRetention=2h\n", "test.conf:3: [Storage] RawRetention: shorter than CompactAfter", "retention below compaction");
        check_error("[Daemon]\nStateDirectory=/a\xff\n", "test.conf", "invalid UTF-8");
        check_error("[Bridge]\nUser=-x\n", "test.conf:2: [Bridge] User: '-x' is not a user name", "user name with a dash first");
        check_error("[Bridge]\nUser=a b\n", "'a b' is not a user name", "user name with a space");
}

static void test_bridge_user(void) {
        static const char text[] = "[Bridge]\nUser=\n", named[] = "[Bridge]\nUser=www_data-2.x\n";
        Config c;

        ok(config_load_data(text, strlen(text), "test.conf", &c, NULL) == 0 && streq0(c.bridge_user, ""),
           "Bridge.User empty: no bridge");
        config_done(&c);
        ok(config_load_data(named, strlen(named), "test.conf", &c, NULL) == 0 &&
           streq0(c.bridge_user, "www_data-2.x"), "Bridge.User with ._- and digits");
        config_done(&c);
}

static void test_files(void) {
        char dir[] = "/tmp/test-config-XXXXXX";
        ok(mkdtemp(dir) != NULL, "temp dir");

        char *path = g_build_filename(dir, "kasamond.conf", NULL);
        Config c;
        char *err = NULL;
        int r = config_load(path, &c, &err);
        is_int(r, -ENOENT, "a missing file given explicitly is an error");
        ok(contains(err, "kasamond.conf"), "naming it");
        free(err);
        err = NULL;

        ok(g_file_set_contents(path, "[Polling]\nInterval=15s\n\n[Limits]\nMaxDevices=0\n", -1, NULL), "write file");
        r = config_load(path, &c, &err);
        char *want = g_strdup_printf("%s:5: [Limits] MaxDevices:", path);
        ok(r == -ERANGE && contains(err, want), "file errors name path and line: %s", err ?: "");
        g_free(want);
        free(err);
        err = NULL;

        ok(g_file_set_contents(path, "[Polling]\nInterval=15s\n", -1, NULL), "write file");
        r = config_load(path, &c, &err);
        ok(r == 0 && c.poll_interval_usec == 15 * SEC, "file loads");
        if (r >= 0) {
                unsetenv("STATE_DIRECTORY");
                char *s = config_state_directory(&c);
                is_str(s, "/var/lib/kasamond", "state directory from the config");
                free(s);
                setenv("STATE_DIRECTORY", "/var/lib/kasamond-x:/var/lib/other", 1);
                s = config_state_directory(&c);
                is_str(s, "/var/lib/kasamond-x", "$STATE_DIRECTORY wins, its first entry");
                free(s);
                unsetenv("STATE_DIRECTORY");
                config_done(&c);
        }

        unlink(path);
        g_free(path);
        ok(rmdir(dir) == 0, "temp dir removed");
}

static void test_location(void) {
        Config c;
        char *err = NULL;
        const char *text = "[Location]\nLatitude=-33.8688\nLongitude=151.2093\n";

        ok(config_load_data("", 0, "empty", &c, &err) == 0 && isnan(c.latitude) && isnan(c.longitude),
           "no [Location]: latitude and longitude unset");
        config_done(&c);
        ok(config_load_data(text, strlen(text), "test.conf", &c, &err) == 0 && c.latitude == -33.8688 &&
           c.longitude == 151.2093, "[Location] degrees are read");
        char *dump = config_dump(&c);
        ok(contains(dump, "Latitude=-33.8688\n") && contains(dump, "Longitude=151.2093\n"), "and dumped");
        free(dump);
        config_done(&c);
        check_error("[Location]\nLatitude=91\n", "[Location] Latitude: '91' is out of range (-90..90)",
                    "latitude out of range");
        check_error("[Location]\nLongitude=13E\n", "[Location] Longitude: '13E' is not a number of degrees",
                    "longitude with junk");
}

int main(void) {
        test_location();
        test_defaults();
        test_values();
        test_errors();
        test_files();
        test_bridge_user();
        return done_testing();
}
