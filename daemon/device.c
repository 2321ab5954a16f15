/* SPDX-License-Identifier: MIT */

/* A device's state and its poll round; its commands are in
 * device-command.c, its countdown in device-countdown.c. */

#include "device.h"
#include "device-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "address.h"
#include "kasa-dbus.h"
#include "kasa-smart.h"
#include "kasa-time.h"
#include "klap.h"
#include "log.h"
#include "macro.h"

/* Poll timers may fire up to a tenth of the interval late, and at most
 * this much, so that sd-event wakes once for a batch of devices instead of
 * once for each: with 1000 plugs at 1 s that halves kasamond's CPU, and
 * going from 50 to 100 ms at 1 s saved a fifth more with 100 plugs (see
 * BENCHMARKS.md, Polling). Polls stay due at exact steps (schedule_next()),
 * so the slack never stretches the interval, and edge-triggered sockets
 * keep a batch of replies cheap. */
#define POLL_TIMER_SLACK_MAX_USEC (250 * 1000ULL)

int device_new(const DeviceHost *host, const char *id, Device *parent, Device **ret) {
        _cleanup_free_ Device *d = calloc(1, sizeof(Device));

        if (!d)
                return -ENOMEM;
        if (strlen(id) >= sizeof(d->id))
                return -EINVAL;
        strcpy(d->id, id);
        if (asprintf(&d->path, KASA_DEVICE_PREFIX "/%s", id) < 0)
                return -ENOMEM;
        d->host = host;
        d->manager = host->userdata;
        d->parent = parent;
        d->outlet = -1;
        strcpy(d->protocol, "xor/iot");
        energy_account_init(&d->energy);
        *ret = TAKE_PTR(d);
        return 0;
}

Device *device_free(Device *d) {
        if (!d)
                return NULL;
        /* The connection first: its cancelled callbacks still see every
         * outlet alive. */
        transport_free(d->transport);
        d->host->net->disable_unref(d->poll_timer);
        d->host->net->disable_unref(d->countdown_timer);
        free(d->outlets);
        free(d->poll_request);
        free(d->child_id);
        free(d->auth_message);
        free(d->path);
        free(d);
        return NULL;
}

/* Fields are sized for real devices; longer values are cut, not refused. */
void device_set_string(Device *d, char *field, size_t size, const char *value, unsigned change) {
        size_t n = strnlen(value, size - 1);

        if (strncmp(field, value, n) == 0 && field[n] == 0)
                return;
        memcpy(field, value, n);
        field[n] = 0;
        d->changes |= change;
}

unsigned device_apply_sysinfo(Device *d, const KasaSysinfo *si) {
        unsigned before = d->changes;

        d->changes = 0;
        if (d->outlet < 0)
                device_set_string(d, d->alias, sizeof(d->alias), si->alias, DEVICE_CHANGED_ALIAS);
        device_set_string(d, d->model, sizeof(d->model), si->model, DEVICE_CHANGED_MODEL);
        device_set_string(d, d->hw_ver, sizeof(d->hw_ver), si->hw_ver, DEVICE_CHANGED_VERSIONS);
        device_set_string(d, d->sw_ver, sizeof(d->sw_ver), si->sw_ver, DEVICE_CHANGED_VERSIONS);
        device_set_string(d, d->mac, sizeof(d->mac), si->mac, 0);
        device_set_string(d, d->device_id, sizeof(d->device_id), si->device_id, 0);

        if (d->outlet >= 0 && (size_t) d->outlet < si->n_children) {
                const KasaChild *c = &si->children[d->outlet];
                device_set_string(d, d->alias, sizeof(d->alias), c->alias, DEVICE_CHANGED_ALIAS);
                if (d->on != c->on) {
                        d->on = c->on;
                        d->changes |= DEVICE_CHANGED_ON;
                }
        } else if (si->n_children > 0) {
                /* A strip is on when any outlet is. */
                bool any = false;
                for (size_t i = 0; i < si->n_children; i++)
                        any = any || si->children[i].on;
                if (d->on != any) {
                        d->on = any;
                        d->changes |= DEVICE_CHANGED_ON;
                }
        } else if (si->has_relay && d->on != si->on) {
                d->on = si->on;
                d->changes |= DEVICE_CHANGED_ON;
        }
        /* The dialect follows from what the device calls itself: a smart
         * device's type is "SMART.TAPOPLUG", "SMART.KASAPLUG"... */
        if (d->outlet < 0 && si->type[0] && d->smart != (strncmp(si->type, "SMART.", 6) == 0)) {
                d->smart = !d->smart;
                device_forget_request(d);
                for (size_t i = 0; i < d->n_outlets; i++)
                        if (d->outlets[i])
                                device_forget_request(d->outlets[i]);
        }
        if (si->has_rssi && d->rssi != si->rssi) {
                d->rssi = si->rssi;
                d->changes |= DEVICE_CHANGED_RSSI;
        }

        unsigned changed = d->changes;
        d->changes |= before;
        return changed;
}

const char *device_auth_to_string(DeviceAuth a) {
        static const char *const names[] = {
                [DEVICE_AUTH_NONE] = "none",
                [DEVICE_AUTH_UNKNOWN] = "unknown",
                [DEVICE_AUTH_OK] = "ok",
                [DEVICE_AUTH_FAILED] = "failed",
        };
        return names[a];
}

/* Outlets show their strip's. */
static void set_transport_state(Device *o, const char *protocol, DeviceAuth auth, const char *msg) {
        if (strcmp(o->protocol, protocol) != 0) {
                snprintf(o->protocol, sizeof(o->protocol), "%s", protocol);
                o->changes |= DEVICE_CHANGED_PROTOCOL;
        }
        if (o->auth != auth || strcmp(o->auth_message ?: "", msg) != 0) {
                /* Out of memory the state is still right, its message "". */
                char *m = *msg ? strdup(msg) : NULL;

                free(o->auth_message);
                o->auth_message = m;
                o->auth = auth;
                o->changes |= DEVICE_CHANGED_AUTH;
        }
}

/* What the transport learnt in a round: the protocol it speaks, and
 * whether the device took our credentials. */
static void update_transport_state(Device *d) {
        const char *proto = d->transport ? transport_protocol(d->transport) : (d->klap ? "klap" : "xor");
        DeviceAuth auth = d->auth;
        const char *msg = "";
        const char *dialect = d->smart ? "/smart" : "/iot";
        char p[sizeof(d->protocol)];
        size_t n = strnlen(proto, sizeof(p) - sizeof("/smart"));

        /* Not snprintf(): once per poll, it was a tenth of what a poll
         * costs outside parsing and signals. */
        memcpy(p, proto, n);
        strcpy(p + n, dialect);
        if (!d->klap)
                auth = DEVICE_AUTH_NONE;
        else if (d->round_error == 0)
                auth = DEVICE_AUTH_OK;
        else if (d->round_error == -EACCES) {
                auth = DEVICE_AUTH_FAILED;
                msg = (d->transport ? transport_error_message(d->transport) : NULL) ?: "credentials refused";
        } else if (auth == DEVICE_AUTH_NONE)
                auth = DEVICE_AUTH_UNKNOWN;
        /* Still failed from an earlier round (this one failed otherwise):
         * the message stays what it was. */
        if (auth == DEVICE_AUTH_FAILED && d->round_error != -EACCES)
                msg = d->auth_message ?: "";
        if (auth == DEVICE_AUTH_FAILED && d->auth != DEVICE_AUTH_FAILED)
                log_warning("%s (%s): %s", d->id, d->address, msg);
        if (auth != DEVICE_AUTH_FAILED)
                msg = "";
        /* The outlets first: msg may be the device's own message, which
         * its update replaces (after copying it). */
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i])
                        set_transport_state(d->outlets[i], p, auth, msg);
        set_transport_state(d, p, auth, msg);
}

int device_set_address(Device *d, const struct sockaddr_in *sa) {
        char buf[sizeof(d->address)];
        bool klap = ntohs(sa->sin_port) == KLAP_HTTP_PORT;

        if (klap != d->klap) {
                /* Another protocol: another transport, made at the next poll. */
                d->transport = transport_free(d->transport);
                d->polling = false;
                d->round_pending = 0;
                d->klap = klap;
                d->auth = klap ? DEVICE_AUTH_UNKNOWN : DEVICE_AUTH_NONE;
        }
        d->sockaddr = *sa;
        format_address(sa, buf, sizeof(buf));
        device_set_string(d, d->address, sizeof(d->address), buf, DEVICE_CHANGED_ADDRESS);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i]) {
                        d->outlets[i]->sockaddr = *sa;
                        device_set_string(d->outlets[i], d->outlets[i]->address, sizeof(d->address), buf,
                                          DEVICE_CHANGED_ADDRESS);
                }
        if (d->transport && transport_set_address(d->transport, sa) > 0) {
                /* The reset cancelled a round still waiting on the old
                 * address, and the poll callbacks ignore -ECANCELED (it
                 * also means "being freed"): drop that round here, or
                 * polling would wait for it forever. The caller polls
                 * again at once. */
                d->polling = false;
                d->round_pending = 0;
        }
        return 0;
}

/* ---- polling ---- */

static uint64_t random_u64(void) {
        static uint64_t state;

        if (state == 0 && getrandom(&state, sizeof(state), GRND_NONBLOCK) != sizeof(state))
                state = 0x9e3779b97f4a7c15ULL;
        /* xorshift64*: only spreads poll times, no secrecy involved */
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return state * 0x2545F4914F6CDD1DULL;
}

static uint64_t next_delay(Device *d) {
        const Config *c = d->host->config;
        uint64_t interval = c->poll_interval_usec;

        if (d->failures > 0) {
                /* Exponential backoff for an unreachable device, capped. */
                unsigned shift = MIN(d->failures - 1, 16u);
                uint64_t backoff = interval << shift;
                interval = MIN(backoff, MAX(c->poll_max_backoff_usec, interval));
        }
        double j = c->poll_jitter * ((double) (random_u64() >> 11) / (double) (1ULL << 53) * 2.0 - 1.0);
        return (uint64_t) ((double) interval * (1.0 + j));
}

static int on_poll_timer(NetSource *s, uint64_t usec, void *userdata);

/* Polls are due at fixed steps from the previous due time, not from when
 * the last poll ended, so timer slack and reply times do not stretch the
 * interval. A device far behind (a hung loop, a suspend) starts afresh. */
static int schedule_at(Device *d, uint64_t due) {
        const DeviceHost *h = d->host;
        int r;

        d->poll_due_usec = MAX(due, h->net->now(h->event, CLOCK_MONOTONIC));
        if (!d->poll_timer)
                return h->net->add_time(h->event, &d->poll_timer, d->poll_due_usec,
                                        MIN(h->config->poll_interval_usec / 10, POLL_TIMER_SLACK_MAX_USEC),
                                        on_poll_timer, d);
        r = h->net->set_time(d->poll_timer, d->poll_due_usec);
        if (r < 0)
                return r;
        return h->net->set_enabled(d->poll_timer, SD_EVENT_ONESHOT);
}

static int schedule(Device *d, uint64_t delay) {
        return schedule_at(d, d->host->net->now(d->host->event, CLOCK_MONOTONIC) + delay);
}

static int schedule_next(Device *d) {
        return schedule_at(d, d->poll_due_usec + next_delay(d));
}

void device_set_online(Device *d, bool online) {
        if (d->online == online)
                return;
        d->online = online;
        d->changes |= DEVICE_CHANGED_ONLINE;
        /* What a device that does not answer draws is unknown, not 0 W. */
        if (!online && d->have_reading) {
                d->have_reading = false;
                d->changes |= DEVICE_CHANGED_READING;
        }
}

static void apply_reading(Device *d, const KasaRealtime *rt, int64_t ts_ms) {
        EnergyUpdate u;

        if (!d->have_reading || d->power_mw != rt->power_mw || d->voltage_mv != rt->voltage_mv ||
            d->current_ma != rt->current_ma) {
                d->have_reading = true;
                d->power_mw = rt->power_mw;
                d->voltage_mv = rt->voltage_mv;
                d->current_ma = rt->current_ma;
                d->changes |= DEVICE_CHANGED_READING;
        }

        int64_t day = d->host->ops->day_start(d->host->userdata, ts_ms);
        int64_t prev_ts = d->last_sample_ms, prev_cum = d->energy.cumulative_mwh;

        /* A reading the account refuses (clock stepped back) adds nothing;
         * a slightly negative power (meter noise at no load) counts as 0. */
        if (energy_account_update(&d->energy, ts_ms, rt->total_mwh, MAX(rt->power_mw, 0), &u) < 0)
                u = (EnergyUpdate) { .cumulative_mwh = d->energy.cumulative_mwh };
        if ((u.flags & ENERGY_RESET) && !(u.flags & ENERGY_IMPLAUSIBLE))
                log_info("%s: energy counter went back to %" PRId64 " mWh, counted as a reset", d->id,
                         rt->total_mwh);
        if (u.flags & ENERGY_IMPLAUSIBLE)
                log_warning("%s: energy counter jumped implausibly, used power x time instead", d->id);
        if (u.delta_mwh != 0)
                d->changes |= DEVICE_CHANGED_ENERGY;
        if (day != d->day_start_ms) {
                /* As the store splits a poll interval that crosses midnight:
                 * by time, unless it is a gap, whose energy belongs to the
                 * day it ends in. So EnergyToday agrees with the day rollup. */
                int64_t dt = ts_ms - prev_ts;

                d->day_start_ms = day;
                d->energy_today_base = prev_cum;
                if (prev_ts > 0 && prev_ts < day && dt > 0 && dt <= STORE_GAP_MS_DEFAULT)
                        d->energy_today_base += (int64_t) ((__int128) u.delta_mwh * (day - prev_ts) / dt);
                d->changes |= DEVICE_CHANGED_ENERGY; /* EnergyToday starts again */
        }
        /* The store takes strictly increasing times per device; a wall
         * clock stepped back (NTP) must not make it refuse a whole round. */
        if (ts_ms <= d->last_sample_ms)
                return;
        d->last_sample_ms = ts_ms;
        d->host->ops->record(d->host->userdata, d, &(StoreSample) {
                .device = d->number,
                .ts_ms = ts_ms,
                .power_mw = rt->power_mw,
                .voltage_mv = rt->voltage_mv,
                .current_ma = rt->current_ma,
                .energy_mwh = d->energy.cumulative_mwh,
        });
}

int64_t device_energy_today(Device *d, int64_t now_ms) {
        if (d->host->ops->day_start(d->host->userdata, now_ms) != d->day_start_ms)
                return 0;
        return d->energy.cumulative_mwh - d->energy_today_base;
}

void device_notify(Device *d) {
        d->host->ops->changed(d->host->userdata, d);
}

static void finish_round(Device *d) {
        bool ok = d->round_error == 0;
        int r;

        d->polling = false;
        if (ok) {
                if (d->failures > 0)
                        log_info("%s (%s): back online", d->id, d->address);
                d->failures = 0;
                d->last_seen_usec = (uint64_t) d->round_ts_ms * 1000;
                d->changes |= DEVICE_CHANGED_SEEN;
        } else {
                if (d->failures == 0 && d->round_error != -EACCES)
                        log_warning_errno(d->round_error, "%s (%s): poll failed, offline: %m%s%s", d->id, d->address,
                                          d->transport && transport_error_message(d->transport) ? ": " : "",
                                          (d->transport ? transport_error_message(d->transport) : NULL) ?: "");
                d->failures++;
        }
        update_transport_state(d);
        device_set_online(d, ok);
        for (size_t i = 0; i < d->n_outlets; i++) {
                Device *o = d->outlets[i];
                if (!o)
                        continue;
                device_set_online(o, ok);
                if (ok) {
                        o->last_seen_usec = d->last_seen_usec;
                        o->changes |= DEVICE_CHANGED_SEEN;
                }
                device_notify(o);
        }
        device_notify(d);

        r = schedule_next(d);
        if (r < 0)
                log_error_errno(r, "%s: failed to schedule the next poll: %m", d->id);
}

/* Returns NULL for a reply that cannot be trusted; said once per outage. */
KasaResponse *device_parse_reply(Device *d, const char *json, size_t len) {
        /* One reply at a time in this single-threaded daemon; too big for
         * the stack of a callback. */
        static KasaResponse resp;
        KasaError err;

        if ((device_root(d)->smart ? kasa_smart_response_parse : kasa_response_parse)(json, len, &resp, &err) < 0) {
                if (device_root(d)->failures == 0)
                        log_warning("%s (%s): refused reply: %s", d->id, d->address, err.message);
                return NULL;
        }
        return &resp;
}

static void round_fail(Device *d, int error) {
        if (d->round_error == 0)
                d->round_error = error;
}

static const char *poll_request(Device *d);
static void on_sysinfo_reply(Transport *t, int error, const char *json, size_t len, void *userdata);

/* A KLAP device whose dialect kasamond does not know yet (one loaded
 * from the registry, which does not keep it) is asked in IOT first; a
 * smart device answers that with a bare error_code. Asks again in the
 * smart dialect, within the same round. Returns whether it did. */
static bool switch_to_smart(Device *d, const char *json, size_t len) {
        const char *q;

        if (d->smart || !d->klap || !kasa_smart_is_reply(json, len))
                return false;
        log_info("%s (%s) speaks the smart dialect", d->id, d->address);
        d->smart = true;
        device_forget_request(d);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i])
                        device_forget_request(d->outlets[i]);
        q = poll_request(d);
        return q && transport_request(d->transport, q, on_sysinfo_reply, d) >= 0;
}

static void on_sysinfo_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        Device *d = userdata;
        KasaResponse *resp;

        if (error == -ECANCELED)
                return;
        if (error == 0 && switch_to_smart(d, json, len))
                return;
        resp = error < 0 ? NULL : device_parse_reply(d, json, len);
        if (!resp)
                round_fail(d, error ?: -EBADMSG);
        else {
                if (resp->sysinfo_err != 0) {
                        round_fail(d, -EBADMSG);
                } else if (strcmp(resp->sysinfo.mac, d->mac) != 0) {
                        /* Another device now answers at this address: none
                         * of what it says is this device's. */
                        if (d->failures == 0)
                                log_warning("%s: %s now answers as %s", d->id, d->address, resp->sysinfo.mac);
                        round_fail(d, -ESTALE);
                } else {
                        /* The readings are of when the device answered:
                         * a request retried on a fresh connection, or
                         * queued behind another, went out after the round
                         * began, and power x time must use the real time. */
                        d->round_ts_ms = MAX(d->host->ops->now_ms(d->host->userdata), d->round_ts_ms);
                        device_apply_sysinfo(d, &resp->sysinfo);
                        for (size_t i = 0; i < d->n_outlets; i++)
                                if (d->outlets[i])
                                        device_apply_sysinfo(d->outlets[i], &resp->sysinfo);
                }
                if (d->round_error == 0 && d->metered && d->n_outlets == 0) {
                        if (resp->realtime_err == 0)
                                apply_reading(d, &resp->realtime, d->round_ts_ms);
                        else
                                round_fail(d, -EBADMSG);
                }
        }
        if (--d->round_pending == 0)
                finish_round(d);
}

static void on_outlet_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        Device *o = userdata, *d;
        KasaResponse *resp;

        if (error == -ECANCELED)
                return;
        d = o->parent;
        resp = error < 0 ? NULL : device_parse_reply(o, json, len);
        if (!resp)
                round_fail(d, error ?: -EBADMSG);
        else if (resp->realtime_err == 0)
                apply_reading(o, &resp->realtime, d->round_ts_ms);
        else
                round_fail(d, -EBADMSG);
        if (--d->round_pending == 0)
                finish_round(d);
}

int device_ensure_transport(Device *d) {
        if (d->transport)
                return 0;
        return d->host->ops->new_transport(d->host->userdata, d, &d->transport);
}

/* The smart dialect's request for what an IOT query asks. */
static char *smart_query(Device *d) {
        if (d->outlet >= 0)
                return kasa_smart_request_query(KASA_SMART_ENERGY_USAGE | KASA_SMART_CURRENT_POWER |
                                                KASA_SMART_EMETER_DATA, d->child_id);
        if (d->n_outlets > 0)
                return kasa_smart_request_query(KASA_SMART_DEVICE_INFO | KASA_SMART_CHILD_LIST, NULL);
        /* Which energy method a model knows differs by firmware: ask all
         * three, the parser takes the best that answered. */
        return kasa_smart_request_query(KASA_SMART_DEVICE_INFO |
                                        (d->metered ? KASA_SMART_ENERGY_USAGE | KASA_SMART_CURRENT_POWER |
                                                              KASA_SMART_EMETER_DATA : 0), NULL);
}

/* The poll request of a device never changes: build it once. (JSON only:
 * a transport with per-request encryption could not reuse a frame.) */
static const char *poll_request(Device *d) {
        if (!d->poll_request && device_root(d)->smart)
                d->poll_request = smart_query(d);
        else if (!d->poll_request) {
                unsigned what;

                /* A plug answers sysinfo and reading in one request; a
                 * strip's meters must be asked one outlet at a time. */
                if (d->outlet >= 0)
                        what = KASA_QUERY_REALTIME;
                else
                        what = KASA_QUERY_SYSINFO | (d->metered && d->n_outlets == 0 ? KASA_QUERY_REALTIME : 0);
                d->poll_request = kasa_request_query(what, d->outlet >= 0 ? d->child_id : NULL);
        }
        return d->poll_request;
}

void device_forget_request(Device *d) {
        d->poll_request = mfree(d->poll_request);
}

static int poll_start(Device *d) {
        const char *q;
        int r;

        if (d->polling)
                return 0; /* the previous round is still waiting for its timeout */
        r = device_ensure_transport(d);
        if (r < 0)
                return r;
        q = poll_request(d);
        if (!q)
                return -ENOMEM;
        r = transport_request(d->transport, q, on_sysinfo_reply, d);
        if (r < 0)
                return r;
        /* From here on the round ends through the callbacks, whatever fails. */
        d->polling = true;
        d->round_error = 0;
        d->round_ts_ms = d->host->ops->now_ms(d->host->userdata);
        d->round_pending = 1;

        for (size_t i = 0; i < d->n_outlets; i++) {
                Device *o = d->outlets[i];

                if (!o || !o->metered)
                        continue;
                q = poll_request(o);
                if (!q)
                        return -ENOMEM;
                r = transport_request(d->transport, q, on_outlet_reply, o);
                if (r < 0)
                        return r;
                d->round_pending++;
        }
        return 0;
}

static int on_poll_timer(NetSource *s, uint64_t usec, void *userdata) {
        Device *d = userdata;
        int r;

        r = poll_start(d);
        if (r < 0) {
                log_error_errno(r, "%s: failed to start a poll: %m", d->id);
                /* A round that got its first request out ends through the
                 * callbacks; one that did not needs the retry here. */
                if (!d->polling)
                        (void) schedule_next(d);
        }
        return 0;
}

int device_start(Device *d, bool now) {
        uint64_t interval = d->host->config->poll_interval_usec;
        return schedule(d, now ? 0 : random_u64() % MAX(interval, 1u));
}

int device_poll_now(Device *d) {
        d = device_root(d);
        if (d->polling)
                return 0;
        return schedule(d, 0);
}
