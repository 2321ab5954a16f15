/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * kasa-sim: simulated TP-Link Kasa devices (legacy XOR protocol, or KLAP
 * or AES securePassthrough over HTTP, see kasa-sim-klap.c and
 * kasa-sim-aes.c) for tests and benchmarks. One process, one sd-event loop, any number of devices,
 * each with its own address. See kasa-sim-control.c for the control
 * protocol and kasa-sim.c for the command line and config file.
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "kasa-proto.h"
#include "aes-passthrough.h"
#include "http1.h"
#include "klap.h"

#define SIM_OUTLETS_MAX 6
#define SIM_ALIAS_MAX 64
#define SIM_CHILD_ID_MAX 64
/* A request bigger than this is not something a real client sends. */
#define SIM_REQUEST_MAX (16u * 1024u)
/* How long a device stays offline after system.reboot. */
#define SIM_REBOOT_DOWN_SEC 2

typedef struct Sim Sim;
typedef struct SimConn SimConn;

typedef struct SimProfile {
        const char *name;          /* command-line name: "hs110" */
        const char *model;         /* "HS110(EU)" */
        const char *hw_ver;
        const char *sw_ver;
        const char *dev_name;      /* NULL: field absent, as on strips */
        const char *type_key;      /* "type" or "mic_type" */
        const char *feature;       /* "TIM" or "TIM:ENE" */
        uint8_t oui[3];            /* MAC prefix */
        unsigned n_outlets;        /* 0: plain plug, relay at top level */
        bool emeter;
        KasaUnitStyle units;
        int64_t mains_mv;          /* nominal voltage */
        int64_t default_load_mw;   /* per outlet */
        bool geo_float;            /* "latitude"/"longitude" instead of *_i */
        bool has_status;           /* "status": "new" */
        bool has_obd;              /* "ntc_state", "obd_src" */
        bool smart;                /* Tapo: the smart dialect (kasa-sim-smart.c), KLAP or AES only */
} SimProfile;

const SimProfile *sim_profile_find(const char *name);
/* Space-separated profile names, for messages. */
const char *sim_profile_names(void);

typedef struct SimDay {
        int year, month, day;
        int64_t mwh, rem;          /* rem: mW*usec below one mWh */
        int64_t on_usec;           /* relay on (schedule.get_daystat "time") */
} SimDay;

/* On-device rules, kept and answered, never carried out (see
 * kasa-sim-modules.c). */
typedef enum SimRuleKind {
        SIM_RULES_SCHEDULE,
        SIM_RULES_COUNT_DOWN,
        SIM_RULES_ANTI_THEFT,
        _SIM_RULES_MAX,
} SimRuleKind;

typedef struct SimRules {
        struct json_t *list[_SIM_RULES_MAX]; /* arrays of rule objects; NULL: none */
        bool enable[_SIM_RULES_MAX];         /* set_overall_enable */
} SimRules;

typedef struct SimOutlet {
        char alias[SIM_ALIAS_MAX];
        bool on;
        uint64_t on_since;         /* CLOCK_MONOTONIC usec: relay on or device booted */
        int64_t load_mw;
        /* Ground truth: energy delivered since start, never reset. */
        int64_t delivered_mwh, delivered_rem;
        /* delivered_mwh when the device's counter last restarted at 0. */
        int64_t counter_base_mwh;
        unsigned counter_resets;
        SimDay *days;              /* energy per local day, oldest first: those of
                                    * the history, then the delivered energy's */
        int64_t history_mwh;       /* the history's days (before the start), in the counter too */
        size_t n_history;          /* the first n_history of days */
        size_t n_days;
        SimDay *run_days;          /* relay-on time per local day (on_usec only) */
        size_t n_run_days;
        SimRules rules;            /* a plug's, or a strip outlet's (context) */
} SimOutlet;

typedef enum SimFault {
        SIM_FAULT_HANG       = 1 << 0,
        SIM_FAULT_DROP       = 1 << 1,
        SIM_FAULT_GARBAGE    = 1 << 2,
        SIM_FAULT_BAD_LENGTH = 1 << 3,
        /* KLAP and AES devices */
        SIM_FAULT_HANDSHAKE_HANG = 1 << 4,   /* handshake(1) read, never answered */
        SIM_FAULT_BAD_SIGNATURE  = 1 << 5,   /* replies' signature (AES: ciphertext) corrupted */
} SimFault;

/* Discovery port of KLAP/AES firmware (16-byte header + JSON). */
#define SIM_TDP_PORT 20002
#define SIM_KLAP_TIMEOUT_DEFAULT 86400

/* A KLAP device's credentials and its one session (kasa-sim-klap.c). */
typedef struct SimKlap {
        unsigned version;          /* 0: XOR device; 1 or 2: KLAP over HTTP */
        KlapAuth auth;             /* the owner's; blank ones when unbound */
        unsigned timeout_sec;      /* session lifetime, in the cookie's TIMEOUT */
        char cookie[48];           /* "TP_SESSIONID=..." of the session; "" none */
        uint8_t local[KLAP_SEED_SIZE], remote[KLAP_SEED_SIZE];
        bool established;          /* handshake2 passed */
        uint64_t expires;          /* CLOCK_MONOTONIC usec */
        KlapSession session;
        unsigned handshakes;       /* handshake2s passed, for the truth */
} SimKlap;

/* An AES device's credentials and its one session (kasa-sim-aes.c). */
typedef struct SimAes {
        unsigned login_version;    /* 0: not an AES device; 1 or 2 */
        char *username, *password; /* the login_device fields the owner's credentials give */
        unsigned timeout_sec;      /* session lifetime, in the cookie's TIMEOUT */
        char cookie[48];           /* "TP_SESSIONID=..." of the session; "" none */
        AesptSession session;
        char token[33];            /* login_device's; "" before it */
        uint64_t expires;          /* CLOCK_MONOTONIC usec */
        unsigned handshakes, logins; /* for the truth */
} SimAes;

typedef struct SimDevice {
        Sim *sim;
        unsigned index;
        const SimProfile *profile;

        struct in_addr addr;
        uint16_t port;
        char address[INET_ADDRSTRLEN];

        char mac[18];
        char device_id[41];
        char hw_id[33];
        char oem_id[33];
        char alias[SIM_ALIAS_MAX];
        bool led_off;
        int rssi;
        uint64_t rng;              /* noise state, seeded per device */

        unsigned n_outlets;        /* 1 for plugs */
        SimOutlet outlets[SIM_OUTLETS_MAX];
        uint64_t integrated_at;    /* CLOCK_MONOTONIC usec energy is integrated up to */
        unsigned counter_resets;
        SimRules strip_rules;      /* a strip's own, asked without context */

        unsigned faults;           /* SimFault mask */
        unsigned delay_ms;
        unsigned refuse_relay;     /* outlets whose set_relay_state fails */

        SimKlap klap;
        SimAes aes;
        uint16_t udp_port;         /* the port for XOR devices, 20002 for KLAP and AES ones */

        int tcp_fd, udp_fd;
        sd_event_source *tcp_source, *udp_source;
        sd_event_source *reboot_timer;
        bool reboot_pending;       /* timer armed to go down (system.reboot delay) */
        uint64_t reboot_down_usec; /* how long to stay down once it goes down */
        SimConn *conns;
} SimDevice;

/* The wildcard socket of one UDP port, for probes sent to a broadcast
 * address (see kasa-sim-net.c). */
typedef struct SimBroadcast {
        Sim *sim;
        struct SimBroadcast *next;
        uint16_t port;
        int fd;
        sd_event_source *source;
} SimBroadcast;

struct Sim {
        sd_event *event;
        uint64_t seed;
        double noise;              /* +- percent on power and voltage readings */
        uint16_t port;
        SimDevice **devices;
        size_t n_devices;
        SimBroadcast *broadcasts;

        char *control_path;
        int control_fd;
        sd_event_source *control_source;
        struct SimClient *clients;
};

/* kasa-sim-device.c: the device model, no sockets */
int sim_device_new(Sim *sim, const SimProfile *p, struct in_addr addr, uint16_t port, SimDevice **ret);
SimDevice *sim_device_free(SimDevice *d);
void sim_device_integrate(SimDevice *d);
void sim_device_set_relay(SimDevice *d, unsigned outlet, bool on);
void sim_device_set_load(SimDevice *d, unsigned outlet, int64_t load_mw);
void sim_device_counter_reset(SimDevice *d);
/* The energy of the n days before today (oldest first) in the outlet's
 * day statistics and its counter, as if counted before the start. */
#define SIM_HISTORY_DAYS_MAX 800
int sim_device_set_history(SimDevice *d, unsigned outlet, const int64_t *mwh, size_t n);
void sim_device_booted(SimDevice *d);
/* Answers one decrypted request. Returns -EBADMSG when it is not a JSON
 * object (a real device closes the connection then). */
int sim_device_handle(SimDevice *d, const char *request, size_t len, char **ret_reply);
/* Ground truth for the control interface; new reference. */
struct json_t *sim_device_truth(SimDevice *d);
uint64_t sim_device_random(SimDevice *d);
/* A strip outlet's id: deviceId + two-digit index. */
void sim_device_child_id(const SimDevice *d, unsigned outlet, char out[static SIM_CHILD_ID_MAX]);
uint64_t sim_now(clockid_t clock);
struct json_t *sim_err(int code, const char *msg);
struct json_t *sim_ok(void);
/* The integer args[key] in [min, max], or -EINVAL. */
int sim_get_arg(struct json_t *args, const char *key, int64_t min, int64_t max, int64_t *ret);

/* outlets: mask of the outlets the request's context names, 0 without one. */
typedef struct json_t *(*SimMethodFn)(SimDevice *d, struct json_t *args, unsigned outlets);
typedef struct SimMethod {
        const char *module;
        const char *method;
        SimMethodFn fn;
} SimMethod;

/* kasa-sim-modules.c: schedule, count_down, anti_theft, cnCloud, time,
 * netif */
extern const SimMethod sim_module_methods[];
extern const size_t sim_module_methods_len;
void sim_rules_done(SimRules *r);

/* kasa-sim-net.c: the device's sockets and faults */
/* Writes what the socket takes of out (moving the rest to the front) and
 * asks for EPOLLOUT while something is left; < 0 when the peer is gone. */
int sim_send_buffered(int fd, sd_event_source *io, uint8_t *out, size_t *out_len);
int sim_device_bind(SimDevice *d);
void sim_device_unbind(SimDevice *d);
bool sim_device_online(const SimDevice *d);
int sim_device_move(SimDevice *d, struct in_addr addr);
/* Goes down after delay_usec (at once when 0, which must not be called from
 * the device's own socket handlers), stays down for down_usec, comes back. */
int sim_device_schedule_reboot(SimDevice *d, uint64_t delay_usec, uint64_t down_usec);
/* One wildcard UDP socket per port the devices use. */
int sim_broadcast_open(Sim *s);
void sim_broadcast_close(Sim *s);

/* kasa-sim-klap.c: KLAP over HTTP and 20002 discovery */
int sim_klap_setup(SimDevice *d, unsigned version, const char *user, const char *password);
/* Answers one HTTP request: 1 with the response in *ret, 0 to stay silent
 * (hang), < 0 to close the connection. */
int sim_klap_handle(SimDevice *d, const Http1Message *req, uint8_t **ret, size_t *ret_len);
/* The reply to a 20002 probe (header + JSON), or -EBADMSG to ignore it. */
int sim_tdp_answer(SimDevice *d, const uint8_t *probe, size_t len, uint8_t **ret, size_t *ret_len);
void sim_klap_expire(SimDevice *d);

/* KLAP or AES over HTTP, not XOR. */
static inline bool sim_device_http(const SimDevice *d) {
        return d->klap.version || d->aes.login_version;
}

/* kasa-sim-aes.c: AES securePassthrough over HTTP; as the KLAP ones */
int sim_aes_setup(SimDevice *d, unsigned login_version, const char *user, const char *password);
int sim_aes_handle(SimDevice *d, const Http1Message *req, uint8_t **ret, size_t *ret_len);
void sim_aes_expire(SimDevice *d);
void sim_aes_done(SimDevice *d);

/* kasa-sim-smart.c: the smart dialect of Tapo profiles; as sim_device_handle() */
int sim_smart_handle(SimDevice *d, const char *request, size_t len, char **ret_reply);

/* kasa-sim-control.c */
int sim_control_open(Sim *s, const char *path);
void sim_control_close(Sim *s);
extern const char sim_control_help[];
/* Applies a fault spec (see the control protocol). With actions false only
 * the persistent faults are allowed (the config file's "faults"). On error
 * nothing is applied and *ret_error says why (caller frees). */
int sim_apply_faults(SimDevice *d, struct json_t *spec, bool actions, char **ret_error);
