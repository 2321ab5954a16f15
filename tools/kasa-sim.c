/* SPDX-License-Identifier: MIT */
/*
 * kasa-sim: simulated Kasa devices. Command line, config file and the main
 * loop; the device model is in kasa-sim-device.c, sockets and faults in
 * kasa-sim-net.c, the control interface in kasa-sim-control.c.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "kasa-sim.h"
#include "macro.h"

#define _cleanup_json_ _cleanup_(json_decrefp)
#define SIM_DEVICES_MAX 65536

static void help(void) {
        printf("Usage: kasa-sim [OPTIONS] PROFILE@ADDRESS[:PORT] [PROFILE@ADDRESS[:PORT] ...]\n"
               "\n"
               "Simulates TP-Link Kasa devices speaking the legacy XOR protocol. Each device\n"
               "listens on its own IPv4 address: TCP (4-byte length + XOR payload, persistent\n"
               "connections, several modules per request) and UDP (unframed discovery).\n"
               "Any address in 127.0.0.0/8 works without setup. Discovery probes sent to\n"
               "the broadcast address of a local interface address (e.g. 192.0.2.255 of\n"
               "192.0.2.1/24) are answered by every device inside that block, each from\n"
               "its own address, as by plugs on a LAN; for that kasa-sim also listens on\n"
               "0.0.0.0 at each UDP port in use (never answering unicast there).\n"
               "\n"
               "Profiles:\n"
               "  hs100   HS100(US) hw 2.0, plug without energy meter\n"
               "  hs110   HS110(EU) hw 1.0, plug with meter in float units (W, V, A, kWh), 230 V\n"
               "  kp115   KP115(US) hw 1.0, plug with meter in integer milli-units, 120 V\n"
               "  hs300   HS300(US) hw 2.0, 6 outlets, each with its own meter (use context)\n"
               "  kp303   KP303(US) hw 2.0, 3 outlets, no meter\n"
               "  kp125m  KP125M(US) hw 1.0, plug with meter in milli-units, 120 V (new\n"
               "          firmware: give it \"klap\" in the config file)\n"
               "  p110    Tapo P110 hw 1.0, plug with meter, the smart dialect, 230 V\n"
               "          (over KLAP or AES: give it \"klap\" or \"aes\" in the config file)\n"
               "  p300    Tapo P300 hw 1.0, 3 outlets, no meter, the smart dialect\n"
               "          (get_child_device_list, control_child; give it \"klap\" or \"aes\")\n"
               "\n"
               "Options:\n"
               "  --config=FILE   JSON file describing devices and faults (see below)\n"
               "  --control=PATH  UNIX socket for the control interface (see below)\n"
               "  --seed=N        seed for identities (MAC, deviceId, hwId, oemId) and noise\n"
               "                  (default 0); the same seed gives the same devices\n"
               "  --noise=PERCENT noise on power and voltage readings, +-PERCENT (default 1,\n"
               "                  0..50); 0 makes every reading exact\n"
               "  --port=N        port for TCP and UDP (default 9999)\n"
               "  --help          show this help\n"
               "\n"
               "Once every socket is bound, kasa-sim prints one line \"READY\" on stdout\n"
               "(nothing else ever goes to stdout; logs go to stderr). SIGTERM or SIGINT\n"
               "stop it and remove the control socket. Exit status 2: bad arguments or\n"
               "config (the message names the problem); 1: a socket could not be bound.\n"
               "\n"
               "Commands: system.get_sysinfo, system.set_relay_state, system.set_dev_alias,\n"
               "system.set_led_off, system.reboot (offline %d s after the delay),\n"
               "emeter.get_realtime, emeter.get_daystat, emeter.get_monthstat,\n"
               "emeter.erase_emeter_stat; schedule.get_rules, add_rule, edit_rule,\n"
               "delete_rule, delete_all_rules, set_overall_enable, get_next_action,\n"
               "get_daystat, get_monthstat (relay-on minutes), erase_runtime_stat;\n"
               "count_down.get_rules, add_rule, edit_rule, delete_rule, delete_all_rules\n"
               "(one rule at most); anti_theft as schedule without the statistics;\n"
               "cnCloud.get_info (never bound), get_intl_fw_list; time.get_time,\n"
               "get_timezone; netif.get_stainfo, get_scaninfo. Rules are kept and\n"
               "answered, never carried out: get_next_action always answers type -1.\n"
               "Unknown module: err_code -1 \"module not support\"; unknown method: -2\n"
               "\"member not support\"; bad arguments: -3; unknown rule id: -14 \"entry not\n"
               "exist\"; a full rule table: -10 \"table is full\". Strips take\n"
               "\"context\":{\"child_ids\":[ID]} (ID = deviceId + two-digit outlet index);\n"
               "without context set_relay_state switches every outlet, emeter and\n"
               "runtime reads answer for outlet 0, erasing erases all, rules are the\n"
               "strip's own; system, cnCloud, time and netif answer for the strip with\n"
               "or without one. An unknown child id answers -3 in every module.\n"
               "Devices without meter answer emeter methods with -1 \"module not\n"
               "support\". The clock is the system's in the process's TZ, the zone the\n"
               "day statistics follow; get_timezone answers the vendor's zone index for\n"
               "its standard UTC offset.\n"
               "\n"
               "Model: relay off -> 0 W; relay on -> the load (profile default or set) with\n"
               "seeded noise (--noise); voltage nominal with the same noise; current = P/V.\n"
               "Energy is the load integrated over CLOCK_MONOTONIC, exact in mWh, reported\n"
               "in whole Wh (HS110: kWh with 3 decimals). Day and month statistics follow\n"
               "local days (TZ of the process). on_time counts seconds since the relay went\n"
               "on (or the device rebooted).\n"
               "\n"
               "Config file (--config), JSON:\n"
               "  {\"seed\": N, \"port\": N,                 (both optional; options win)\n"
               "   \"devices\": [\n"
               "     {\"profile\": \"hs300\", \"address\": \"127.0.0.5\",   (required)\n"
               "      \"port\": N,            this device's port (default: the global one)\n"
               "      \"count\": N,           N devices on consecutive addresses (default 1)\n"
               "      \"alias\": \"Desk\",\n"
               "      \"load_w\": 25.0,       load of every outlet in watts\n"
               "      \"relay\": true,        initial relay of every outlet (default on)\n"
               "      \"history_wh\": [W, ...], energy of the days before today (oldest\n"
               "                            first, the last is yesterday), in the day and\n"
               "                            month statistics and the counter of every outlet\n"
               "      \"led_off\": false,\n"
               "      \"outlets\": [{\"alias\": \"Lamp\", \"load_w\": 10, \"relay\": false}, ...],\n"
               "      \"faults\": {\"delay\": MS, \"hang\": B, \"drop\": B, \"garbage\": B,\n"
               "                 \"bad_length\": B, \"handshake_hang\": B, \"bad_signature\": B},\n"
               "      \"klap\": {\"version\": 1|2, \"user\": S, \"password\": S,\n"
               "               \"session_timeout\": SEC},\n"
               "      \"aes\": {\"login_version\": 1|2, \"user\": S, \"password\": S,\n"
               "              \"session_timeout\": SEC}}]}          (klap or aes)\n"
               "  With \"klap\" the device speaks KLAP (v1 or v2) over HTTP/1.1 on its TCP\n"
               "  port instead of XOR (POST /app/handshake1, /app/handshake2,\n"
               "  /app/request?seq=N; session cookie TP_SESSIONID with TIMEOUT, default\n"
               "  86400 s; a request outside the session is answered 403), the owner's\n"
               "  credentials user/password (default blank, as an unbound device), and\n"
               "  answers discovery on UDP 20002 (16-byte header + JSON, mgt_encrypt_schm)\n"
               "  instead of XOR on its port.\n"
               "  With \"aes\" (smart profiles only) it speaks AES securePassthrough, the\n"
               "  firmware before KLAP: POST /app with JSON (handshake with the client's\n"
               "  RSA key, then securePassthrough: login_device, then calls with\n"
               "  ?token=T; outside the session error_code 9999), the same credentials and\n"
               "  session cookie, and encrypt_type AES in its 20002 reply.\n"
               "  Unknown keys are errors. Config devices come first (index 0...), then\n"
               "  those of the command line.\n"
               "\n"
               "%s",
               SIM_REBOOT_DOWN_SEC, sim_control_help);
}

static void sim_done(Sim *s) {
        sim_control_close(s);
        sim_broadcast_close(s);
        for (size_t i = 0; i < s->n_devices; i++)
                sim_device_free(s->devices[i]);
        free(s->devices);
        sd_event_unref(s->event);
}

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        va_list ap;
        fputs("kasa-sim: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -EINVAL;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        errno = 0;
        if (!s[0] || s[0] == '-')
                return -EINVAL;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int add_device(Sim *s, const SimProfile *p, struct in_addr addr, uint16_t port, SimDevice **ret) {
        for (size_t i = 0; i < s->n_devices; i++)
                if (s->devices[i]->addr.s_addr == addr.s_addr && s->devices[i]->port == port) {
                        char a[INET_ADDRSTRLEN];
                        inet_ntop(AF_INET, &addr, a, sizeof(a));
                        return usage_error("two devices on %s:%u", a, port);
                }
        if (s->n_devices >= SIM_DEVICES_MAX)
                return usage_error("more than %d devices", SIM_DEVICES_MAX);

        SimDevice **n = realloc(s->devices, (s->n_devices + 1) * sizeof(SimDevice *));
        if (!n)
                return -ENOMEM;
        s->devices = n;
        int r = sim_device_new(s, p, addr, port, &s->devices[s->n_devices]);
        if (r < 0)
                return r;
        *ret = s->devices[s->n_devices++];
        return 0;
}

/* PROFILE@ADDRESS[:PORT] */
static int parse_device_arg(Sim *s, const char *arg) {
        const char *at = strchr(arg, '@');
        if (!at)
                return usage_error("\"%s\": expected PROFILE@ADDRESS", arg);
        _cleanup_free_ char *name = strndup(arg, (size_t) (at - arg));
        _cleanup_free_ char *addr_str = strdup(at + 1);
        if (!name || !addr_str)
                return -ENOMEM;

        const SimProfile *p = sim_profile_find(name);
        if (!p)
                return usage_error("\"%s\": unknown profile \"%s\" (known: %s)", arg, name, sim_profile_names());
        if (p->smart)
                return usage_error("\"%s\": profile %s speaks KLAP or AES only: give it \"klap\" or \"aes\" in the "
                                   "config file", arg, name);

        uint16_t port = s->port;
        char *colon = strchr(addr_str, ':');
        if (colon) {
                uint64_t v;
                *colon = 0;
                if (parse_uint(colon + 1, 65535, &v) < 0 || v == 0)
                        return usage_error("\"%s\": bad port \"%s\"", arg, colon + 1);
                port = (uint16_t) v;
        }
        struct in_addr addr;
        if (inet_pton(AF_INET, addr_str, &addr) != 1)
                return usage_error("\"%s\": \"%s\" is not an IPv4 address", arg, addr_str);

        SimDevice *d;
        return add_device(s, p, addr, port, &d);
}

static int check_keys(json_t *obj, const char *where, const char *const *keys) {
        const char *key;
        json_t *v;
        json_object_foreach(obj, key, v) {
                bool ok = false;
                for (const char *const *k = keys; *k; k++)
                        ok = ok || strcmp(*k, key) == 0;
                if (!ok)
                        return usage_error("%s: unknown key \"%s\"", where, key);
        }
        return 0;
}

/* with_alias is false for the device-wide defaults, whose "alias" names
 * the device itself. */
static int config_outlet(SimDevice *d, unsigned i, json_t *o, bool with_alias, const char *where) {
        json_t *v;

        if (with_alias && (v = json_object_get(o, "alias"))) {
                if (!json_is_string(v) || strlen(json_string_value(v)) >= SIM_ALIAS_MAX)
                        return usage_error("%s: \"alias\" must be a string under %d bytes", where, SIM_ALIAS_MAX);
                snprintf(d->outlets[i].alias, sizeof(d->outlets[i].alias), "%s", json_string_value(v));
        }
        if ((v = json_object_get(o, "load_w"))) {
                if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 10000)
                        return usage_error("%s: \"load_w\" must be a number of watts, 0..10000", where);
                sim_device_set_load(d, i, (int64_t) (json_number_value(v) * 1000.0 + 0.5));
        }
        if ((v = json_object_get(o, "relay"))) {
                if (!json_is_boolean(v))
                        return usage_error("%s: \"relay\" must be true or false", where);
                sim_device_set_relay(d, i, json_is_true(v));
        }
        if ((v = json_object_get(o, "history_wh"))) {
                _cleanup_free_ int64_t *mwh = NULL;
                size_t n = json_array_size(v);

                if (!json_is_array(v) || n > SIM_HISTORY_DAYS_MAX)
                        return usage_error("%s: \"history_wh\" must be an array of at most %d numbers", where,
                                           SIM_HISTORY_DAYS_MAX);
                mwh = calloc(MAX(n, (size_t) 1), sizeof(int64_t));
                if (!mwh)
                        return -ENOMEM;
                for (size_t k = 0; k < n; k++) {
                        json_t *x = json_array_get(v, k);
                        if (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 1e6)
                                return usage_error("%s: \"history_wh\"[%zu] must be a number of Wh, 0..1000000",
                                                   where, k);
                        mwh[k] = (int64_t) (json_number_value(x) * 1000.0 + 0.5);
                }
                if (sim_device_set_history(d, i, mwh, n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* where.name: "klap" {"version" (required), ...} or "aes"
 * {"login_version" (default 1), ...}, with "user", "password" and
 * "session_timeout". */
static int config_http(json_t *o, const char *where, const char *name, json_int_t *ret_version,
                       json_int_t *ret_timeout) {
        bool klap = strcmp(name, "klap") == 0;
        const char *version_key = klap ? "version" : "login_version";
        const char *const keys[] = { version_key, "user", "password", "session_timeout", NULL };
        char kwhere[80];
        json_t *v;
        int r;

        snprintf(kwhere, sizeof(kwhere), "%s.%s", where, name);
        if (!json_is_object(o))
                return usage_error("%s: must be an object", kwhere);
        r = check_keys(o, kwhere, keys);
        if (r < 0)
                return r;
        v = json_object_get(o, version_key);
        if (v || klap) {
                if (!json_is_integer(v) || (json_integer_value(v) != 1 && json_integer_value(v) != 2))
                        return usage_error("%s: \"%s\" must be 1 or 2", kwhere, version_key);
                *ret_version = json_integer_value(v);
        }
        for (const char *const *k = keys + 1; k < keys + 3; k++) {
                json_t *c = json_object_get(o, *k);
                if (c && (!json_is_string(c) || json_string_length(c) > 256))
                        return usage_error("%s: \"%s\" must be a string of at most 256 bytes", kwhere, *k);
        }
        if ((v = json_object_get(o, "session_timeout"))) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 7 * 86400)
                        return usage_error("%s: \"session_timeout\" must be 1..604800 seconds", kwhere);
                *ret_timeout = json_integer_value(v);
        }
        return 0;
}

static int config_device(Sim *s, json_t *e, size_t idx) {
        static const char *const keys[] = { "profile", "address", "port", "count", "alias", "load_w",
                                            "relay", "history_wh", "led_off", "outlets", "faults", "klap", "aes",
                                            NULL };
        static const char *const outlet_keys[] = { "alias", "load_w", "relay", "history_wh", NULL };
        char where[64];
        int r;

        snprintf(where, sizeof(where), "devices[%zu]", idx);
        if (!json_is_object(e))
                return usage_error("%s: must be an object", where);
        r = check_keys(e, where, keys);
        if (r < 0)
                return r;

        const char *pname = json_string_value(json_object_get(e, "profile"));
        const SimProfile *p = pname ? sim_profile_find(pname) : NULL;
        if (!p)
                return usage_error("%s: \"profile\" must be one of: %s", where, sim_profile_names());
        if (p->smart && !json_object_get(e, "klap") && !json_object_get(e, "aes"))
                return usage_error("%s: profile %s speaks KLAP or AES only and needs \"klap\" or \"aes\"", where,
                                   pname);
        if (json_object_get(e, "klap") && json_object_get(e, "aes"))
                return usage_error("%s: a device speaks \"klap\" or \"aes\", not both", where);
        if (json_object_get(e, "aes") && !p->smart)
                return usage_error("%s: \"aes\" firmware speaks the smart dialect: profile %s does not", where,
                                   pname);
        const char *astr = json_string_value(json_object_get(e, "address"));
        struct in_addr addr;
        if (!astr || inet_pton(AF_INET, astr, &addr) != 1)
                return usage_error("%s: \"address\" must be an IPv4 address", where);

        json_t *v;
        uint16_t port = s->port;
        if ((v = json_object_get(e, "port"))) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
                        return usage_error("%s: \"port\" must be 1..65535", where);
                port = (uint16_t) json_integer_value(v);
        }
        json_int_t count = 1;
        if ((v = json_object_get(e, "count"))) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > SIM_DEVICES_MAX)
                        return usage_error("%s: \"count\" must be 1..%d", where, SIM_DEVICES_MAX);
                count = json_integer_value(v);
        }
        json_t *alias = json_object_get(e, "alias");
        if (alias && (!json_is_string(alias) || strlen(json_string_value(alias)) >= SIM_ALIAS_MAX))
                return usage_error("%s: \"alias\" must be a string under %d bytes", where, SIM_ALIAS_MAX);
        json_t *led = json_object_get(e, "led_off");
        if (led && !json_is_boolean(led))
                return usage_error("%s: \"led_off\" must be true or false", where);
        json_t *outlets = json_object_get(e, "outlets");
        unsigned n_outlets = p->n_outlets > 0 ? p->n_outlets : 1;
        if (outlets && (!json_is_array(outlets) || json_array_size(outlets) > n_outlets))
                return usage_error("%s: \"outlets\" must be an array of at most %u entries for %s", where,
                                   n_outlets, p->name);
        json_t *faults = json_object_get(e, "faults");
        if (faults && !json_is_object(faults))
                return usage_error("%s: \"faults\" must be an object", where);
        /* "klap" or "aes": the firmware's transport, credentials, session. */
        json_t *klap = json_object_get(e, "klap"), *aes = json_object_get(e, "aes"), *http = klap ?: aes;
        json_int_t http_version = 1, http_timeout = SIM_KLAP_TIMEOUT_DEFAULT;
        if (http) {
                r = config_http(http, where, klap ? "klap" : "aes", &http_version, &http_timeout);
                if (r < 0)
                        return r;
        }

        uint32_t base = ntohl(addr.s_addr);
        for (json_int_t k = 0; k < count; k++) {
                struct in_addr a = { .s_addr = htonl(base + (uint32_t) k) };
                SimDevice *d;
                r = add_device(s, p, a, port, &d);
                if (r < 0)
                        return r;
                if (alias)
                        snprintf(d->alias, sizeof(d->alias), "%s", json_string_value(alias));
                if (led)
                        d->led_off = json_is_true(led);
                if (http) {
                        const char *user = json_string_value(json_object_get(http, "user"));
                        const char *password = json_string_value(json_object_get(http, "password"));

                        d->klap.timeout_sec = d->aes.timeout_sec = (unsigned) http_timeout;
                        r = klap ? sim_klap_setup(d, (unsigned) http_version, user, password)
                                 : sim_aes_setup(d, (unsigned) http_version, user, password);
                        if (r < 0)
                                return r;
                }
                for (unsigned i = 0; i < d->n_outlets; i++) {
                        r = config_outlet(d, i, e, false, where);
                        if (r < 0)
                                return r;
                }
                size_t i;
                json_t *o;
                json_array_foreach(outlets, i, o) {
                        char owhere[96];
                        snprintf(owhere, sizeof(owhere), "%s.outlets[%zu]", where, i);
                        if (!json_is_object(o))
                                return usage_error("%s: must be an object", owhere);
                        r = check_keys(o, owhere, outlet_keys);
                        if (r < 0)
                                return r;
                        r = config_outlet(d, (unsigned) i, o, true, owhere);
                        if (r < 0)
                                return r;
                }
                if (faults) {
                        _cleanup_free_ char *error = NULL;
                        r = sim_apply_faults(d, faults, false, &error);
                        if (r < 0)
                                return usage_error("%s.faults: %s", where, error ? error : strerror(-r));
                }
        }
        return 0;
}

static int load_config(Sim *s, const char *path, bool seed_set, bool port_set) {
        static const char *const keys[] = { "seed", "port", "devices", NULL };
        json_error_t jerr;
        int r;

        _cleanup_json_ json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
        if (!root && jerr.line < 0)
                return usage_error("%s", jerr.text);
        if (!root)
                return usage_error("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        if (!json_is_object(root))
                return usage_error("%s: must hold a JSON object", path);
        r = check_keys(root, path, keys);
        if (r < 0)
                return r;

        json_t *v;
        if ((v = json_object_get(root, "seed")) && !seed_set) {
                if (!json_is_integer(v) || json_integer_value(v) < 0)
                        return usage_error("%s: \"seed\" must be an integer >= 0", path);
                s->seed = (uint64_t) json_integer_value(v);
        }
        if ((v = json_object_get(root, "port")) && !port_set) {
                if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
                        return usage_error("%s: \"port\" must be 1..65535", path);
                s->port = (uint16_t) json_integer_value(v);
        }
        json_t *devices = json_object_get(root, "devices");
        if (devices && !json_is_array(devices))
                return usage_error("%s: \"devices\" must be an array", path);
        size_t i;
        json_array_foreach(devices, i, v) {
                r = config_device(s, v, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void raise_nofile(void) {
        /* Two sockets per device plus connections: 1000 devices exceed the
         * usual soft limit of 1024. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        fprintf(stderr, "kasa-sim: cannot raise RLIMIT_NOFILE: %m, ignoring\n");
        }
}

static int run(int argc, char *argv[]) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "control", required_argument, NULL, 'C' },
                { "seed", required_argument, NULL, 's' },
                { "port", required_argument, NULL, 'p' },
                { "noise", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        _cleanup_(sim_done) Sim s = {
                .port = KASA_PORT,
                .noise = 1.0,
                .control_fd = -1,
        };
        const char *config = NULL, *control = NULL;
        bool seed_set = false, port_set = false;
        uint64_t v;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case 'C':
                        control = optarg;
                        break;
                case 's':
                        if (parse_uint(optarg, UINT64_MAX, &v) < 0)
                                return usage_error("--seed: \"%s\" is not a non-negative integer", optarg), 2;
                        s.seed = v;
                        seed_set = true;
                        break;
                case 'p':
                        if (parse_uint(optarg, 65535, &v) < 0 || v == 0)
                                return usage_error("--port: \"%s\" is not a port (1..65535)", optarg), 2;
                        s.port = (uint16_t) v;
                        port_set = true;
                        break;
                case 'n': {
                        char *end;
                        errno = 0;
                        double n = strtod(optarg, &end);
                        /* Above 50 % a reading says little about the load. */
                        if (errno || end == optarg || *end || !(n >= 0 && n <= 50))
                                return usage_error("--noise: \"%s\" is not a percentage (0..50)", optarg), 2;
                        s.noise = n;
                        break;
                }
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "kasa-sim: see --help\n");
                        return 2;
                }

        r = sd_event_new(&s.event);
        if (r < 0) {
                fprintf(stderr, "kasa-sim: cannot create event loop: %s\n", strerror(-r));
                return 1;
        }

        if (config) {
                r = load_config(&s, config, seed_set, port_set);
                if (r < 0)
                        return r == -EINVAL ? 2 : (fprintf(stderr, "kasa-sim: %s\n", strerror(-r)), 1);
        }
        for (int i = optind; i < argc; i++) {
                r = parse_device_arg(&s, argv[i]);
                if (r < 0)
                        return r == -EINVAL ? 2 : (fprintf(stderr, "kasa-sim: %s\n", strerror(-r)), 1);
        }
        if (s.n_devices == 0)
                return usage_error("no devices: give PROFILE@ADDRESS or --config=FILE (see --help)"), 2;

        raise_nofile();

        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if ((r = sd_event_add_signal(s.event, NULL, SIGTERM, NULL, NULL)) < 0 ||
            (r = sd_event_add_signal(s.event, NULL, SIGINT, NULL, NULL)) < 0) {
                fprintf(stderr, "kasa-sim: cannot watch signals: %s\n", strerror(-r));
                return 1;
        }

        for (size_t i = 0; i < s.n_devices; i++) {
                SimDevice *d = s.devices[i];
                r = sim_device_bind(d);
                if (r < 0) {
                        fprintf(stderr, "kasa-sim: cannot bind %s:%u for %s: %s\n", d->address, d->port,
                                d->profile->name, strerror(-r));
                        return 1;
                }
        }
        r = sim_broadcast_open(&s);
        if (r < 0) {
                fprintf(stderr, "kasa-sim: cannot bind 0.0.0.0 for broadcast discovery: %s\n", strerror(-r));
                return 1;
        }
        if (control) {
                r = sim_control_open(&s, control);
                if (r < 0) {
                        fprintf(stderr, "kasa-sim: cannot open control socket %s: %s\n", control, strerror(-r));
                        return 1;
                }
        }

        fprintf(stderr, "kasa-sim: %zu devices up (seed %" PRIu64 ")\n", s.n_devices, s.seed);
        printf("READY\n");
        fflush(stdout);

        r = sd_event_loop(s.event);
        if (r < 0) {
                fprintf(stderr, "kasa-sim: event loop failed: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
