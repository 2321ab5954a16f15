/* SPDX-License-Identifier: MIT */
/*
 * The simulated device: identity, relays, loads, energy meter and the
 * answers to protocol commands. No sockets here.
 *
 * Energy is integrated lazily: nothing ticks while nobody asks. Every read
 * or change first integrates each outlet's load from the last integration
 * time to now (CLOCK_MONOTONIC), splitting the interval at local midnights
 * (wall clock, the process's TZ) so day statistics land on the right day.
 * Internally energy is exact: whole mWh plus a remainder in mW*usec.
 *
 * Behaviour choices where real devices were not checked:
 * - system.set_relay_state on a strip without context switches every outlet.
 * - emeter requests on a strip without context answer for outlet 0 (the
 *   HS300 dump shows slot_id 0 there); erase_emeter_stat without context
 *   erases every outlet.
 * - a context naming an unknown child id (or any context on a plug) answers
 *   err_code -3 "invalid argument" in every module of the request.
 * - emeter on a device without a meter answers each method with err_code
 *   -1 "module not support" (as the HS100 dump shows).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kasa-sim.h"
#include "kasa-time.h"
#include "macro.h"

#define MWUS_PER_MWH 3600000000LL
/* Keeps load * (one day in usec) inside int64. */
#define SIM_LOAD_MAX_MW (10LL * 1000 * 1000)

#define _cleanup_json_ _cleanup_(json_decrefp)

uint64_t sim_now(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t splitmix64(uint64_t *state) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

uint64_t sim_device_random(SimDevice *d) {
        return splitmix64(&d->rng);
}

/* Uniform in [-1, 1). */
static double noise(SimDevice *d) {
        return (double) (sim_device_random(d) >> 11) / 4503599627370496.0 - 1.0;
}

static void hex_id(uint64_t *state, char *out, size_t n_chars) {
        static const char digits[] = "0123456789ABCDEF";
        uint64_t bits = 0;
        for (size_t i = 0; i < n_chars; i++) {
                if (i % 16 == 0)
                        bits = splitmix64(state);
                out[i] = digits[bits & 0xF];
                bits >>= 4;
        }
        out[n_chars] = 0;
}

int sim_device_new(Sim *sim, const SimProfile *p, struct in_addr addr, uint16_t port, SimDevice **ret) {
        SimDevice *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;

        uint32_t ip = ntohl(addr.s_addr);
        uint64_t now = sim_now(CLOCK_MONOTONIC);

        *d = (SimDevice) {
                .sim = sim,
                .index = (unsigned) sim->n_devices,
                .profile = p,
                .addr = addr,
                .port = port,
                .udp_port = port,
                .n_outlets = p->n_outlets > 0 ? p->n_outlets : 1,
                .integrated_at = now,
                .tcp_fd = -1,
                .udp_fd = -1,
        };
        inet_ntop(AF_INET, &addr, d->address, sizeof(d->address));

        /* Identity from seed and the first address, so it survives a move
         * and is the same on every run with the same seed. */
        uint64_t state = sim->seed ^ ((uint64_t) ip << 16 | port);
        hex_id(&state, d->device_id, 40);
        hex_id(&state, d->hw_id, 32);
        hex_id(&state, d->oem_id, 32);
        d->rng = splitmix64(&state);
        d->rssi = -40 - (int) (splitmix64(&state) % 30);

        /* The low 24 address bits XOR a seed mask: distinct addresses in
         * 127/8 (on one port) always get distinct MACs. */
        uint64_t seed_state = sim->seed;
        uint32_t low = ((ip ^ (uint32_t) splitmix64(&seed_state)) + (uint32_t) (port - KASA_PORT) * 40503u) &
                       0xFFFFFF;
        snprintf(d->mac, sizeof(d->mac), "%02X:%02X:%02X:%02X:%02X:%02X", p->oui[0], p->oui[1], p->oui[2],
                 low >> 16, (low >> 8) & 0xFF, low & 0xFF);

        snprintf(d->alias, sizeof(d->alias), "Sim %s %u", p->name, d->index);
        for (unsigned i = 0; i < d->n_outlets; i++) {
                SimOutlet *o = &d->outlets[i];
                snprintf(o->alias, sizeof(o->alias), "Outlet %u", i + 1);
                o->on = true;
                o->on_since = now;
                o->load_mw = p->default_load_mw;
        }

        *ret = d;
        return 0;
}

SimDevice *sim_device_free(SimDevice *d) {
        if (!d)
                return NULL;
        sim_device_unbind(d);
        sd_event_source_disable_unref(d->reboot_timer);
        for (unsigned i = 0; i < d->n_outlets; i++) {
                free(d->outlets[i].days);
                free(d->outlets[i].run_days);
                sim_rules_done(&d->outlets[i].rules);
        }
        sim_rules_done(&d->strip_rules);
        sim_aes_done(d);
        free(d);
        return NULL;
}

static void energy_add(int64_t *mwh, int64_t *rem, int64_t mw_us) {
        *mwh += mw_us / MWUS_PER_MWH;
        *rem += mw_us % MWUS_PER_MWH;
        if (*rem >= MWUS_PER_MWH) {
                *mwh += 1;
                *rem -= MWUS_PER_MWH;
        }
}

static SimDay *day_entry(SimDay **days, size_t *n_days, const struct tm *tm) {
        int y = tm->tm_year + 1900, m = tm->tm_mon + 1, day = tm->tm_mday;

        /* Newest first: almost always the last one. */
        for (size_t i = *n_days; i > 0; i--) {
                SimDay *e = &(*days)[i - 1];
                if (e->year == y && e->month == m && e->day == day)
                        return e;
        }
        SimDay *n = realloc(*days, (*n_days + 1) * sizeof(SimDay));
        if (!n)
                return NULL;
        *days = n;
        n[*n_days] = (SimDay) { .year = y, .month = m, .day = day };
        return &n[(*n_days)++];
}

/* Local day containing wall time t (usec): its struct tm and its end.
 * Cached, since mktime() may stat the zone file each call. */
static void local_day(int64_t t, struct tm *ret_tm, int64_t *ret_end) {
        static int64_t start = 1, end = 0;
        static struct tm day_tm;

        if (t < start || t >= end) {
                time_t sec = (time_t) (t / (int64_t) USEC_PER_SEC);
                struct tm tm, b;
                localtime_r(&sec, &tm);
                b = tm;
                b.tm_hour = b.tm_min = b.tm_sec = 0;
                b.tm_isdst = -1;
                start = (int64_t) mktime(&b) * (int64_t) USEC_PER_SEC;
                b = tm;
                b.tm_mday++;
                b.tm_hour = b.tm_min = b.tm_sec = 0;
                b.tm_isdst = -1;
                end = (int64_t) mktime(&b) * (int64_t) USEC_PER_SEC;
                day_tm = tm;
                if (end <= t || start > t) {
                        /* Zone rules we cannot follow: treat this one second as the day. */
                        start = t;
                        end = t + (int64_t) USEC_PER_SEC;
                }
        }
        *ret_tm = day_tm;
        *ret_end = end;
}

void sim_device_integrate(SimDevice *d) {
        uint64_t now = sim_now(CLOCK_MONOTONIC);
        if (now <= d->integrated_at)
                return;
        int64_t dt = (int64_t) (now - d->integrated_at);
        d->integrated_at = now;

        int64_t wall_end = (int64_t) sim_now(CLOCK_REALTIME);
        for (int64_t t = wall_end - dt; t < wall_end;) {
                struct tm tm;
                int64_t day_end;
                local_day(t, &tm, &day_end);
                int64_t seg_end = MIN(day_end, wall_end);
                int64_t seg = seg_end - t;

                for (unsigned i = 0; i < d->n_outlets; i++) {
                        SimOutlet *o = &d->outlets[i];
                        if (!o->on)
                                continue;
                        SimDay *run = day_entry(&o->run_days, &o->n_run_days, &tm);
                        if (run)
                                run->on_usec += seg;
                        if (o->load_mw <= 0)
                                continue;
                        int64_t e = o->load_mw * seg, before = o->delivered_mwh;
                        energy_add(&o->delivered_mwh, &o->delivered_rem, e);
                        /* The day gets the whole mWh the truth counts, so
                         * that the days since the start add up to it. */
                        SimDay *day = day_entry(&o->days, &o->n_days, &tm);
                        if (day)
                                day->mwh += o->delivered_mwh - before;
                }
                t = seg_end;
        }
}

int sim_device_set_history(SimDevice *d, unsigned outlet, const int64_t *mwh, size_t n) {
        SimOutlet *o = &d->outlets[outlet];
        time_t now = (time_t) (sim_now(CLOCK_REALTIME) / USEC_PER_SEC);
        SimDay *days;
        size_t k = 0;
        struct tm tm;

        if (n > SIM_HISTORY_DAYS_MAX)
                return -E2BIG;
        days = calloc(n + o->n_days + 1, sizeof(SimDay));
        if (!days)
                return -ENOMEM;
        /* A history given again (an outlet's after the device's) replaces it. */
        o->counter_base_mwh += o->history_mwh;
        o->history_mwh = 0;
        /* Days before today, oldest first, ahead of what was counted since
         * the start; noon, so that a DST change cannot skip a date. */
        for (size_t i = 0; i < n; i++) {
                localtime_r(&now, &tm);
                tm.tm_mday -= (int) (n - i);
                tm.tm_hour = 12;
                tm.tm_min = tm.tm_sec = 0;
                tm.tm_isdst = -1;
                if (mktime(&tm) == (time_t) -1) {
                        free(days);
                        return -EINVAL;
                }
                days[k++] = (SimDay) { .year = tm.tm_year + 1900, .month = tm.tm_mon + 1, .day = tm.tm_mday,
                                       .mwh = mwh[i] };
                /* The device's counter went up by them too. */
                o->counter_base_mwh -= mwh[i];
                o->history_mwh += mwh[i];
        }
        for (size_t i = o->n_history; i < o->n_days; i++)
                days[k++] = o->days[i];
        free(o->days);
        o->days = days;
        o->n_days = k;
        o->n_history = n;
        return 0;
}

void sim_device_set_relay(SimDevice *d, unsigned outlet, bool on) {
        SimOutlet *o = &d->outlets[outlet];
        sim_device_integrate(d);
        if (on && !o->on)
                o->on_since = sim_now(CLOCK_MONOTONIC);
        o->on = on;
}

void sim_device_set_load(SimDevice *d, unsigned outlet, int64_t load_mw) {
        sim_device_integrate(d);
        d->outlets[outlet].load_mw = MAX(0, MIN(load_mw, SIM_LOAD_MAX_MW));
}

static void outlet_erase(SimOutlet *o) {
        o->counter_base_mwh = o->delivered_mwh;
        o->history_mwh = 0;
        o->n_history = 0;
        o->counter_resets++;
        free(o->days);
        o->days = NULL;
        o->n_days = 0;
}

void sim_device_counter_reset(SimDevice *d) {
        sim_device_integrate(d);
        for (unsigned i = 0; i < d->n_outlets; i++) {
                d->outlets[i].counter_base_mwh = d->outlets[i].delivered_mwh;
                d->outlets[i].counter_resets++;
        }
        d->counter_resets++;
}

void sim_device_booted(SimDevice *d) {
        uint64_t now = sim_now(CLOCK_MONOTONIC);
        sim_device_integrate(d);
        for (unsigned i = 0; i < d->n_outlets; i++)
                d->outlets[i].on_since = now;
}

static int64_t on_time_sec(const SimOutlet *o, uint64_t now) {
        return o->on ? (int64_t) ((now - o->on_since) / USEC_PER_SEC) : 0;
}

void sim_device_child_id(const SimDevice *d, unsigned outlet, char out[static SIM_CHILD_ID_MAX]) {
        snprintf(out, SIM_CHILD_ID_MAX, "%s%02u", d->device_id, outlet % 100);
}

/* ---- replies ---- */

json_t *sim_err(int code, const char *msg) {
        return json_pack("{s:i,s:s}", "err_code", code, "err_msg", msg);
}

json_t *sim_ok(void) {
        return json_pack("{s:i}", "err_code", 0);
}

static double round_to(double v, double scale) {
        return round(v * scale) / scale;
}

static json_t *energy_json(const SimDevice *d, int64_t mwh) {
        /* Devices count whole Wh; HS110 hw1 shows them as kWh with 3 decimals. */
        int64_t wh = mwh / 1000;
        if (d->profile->units == KASA_UNITS_FLOAT)
                return json_real((double) wh / 1000.0);
        return json_integer(wh);
}

static const char *energy_key(const SimDevice *d) {
        return d->profile->units == KASA_UNITS_FLOAT ? "energy" : "energy_wh";
}

static json_t *sysinfo(SimDevice *d) {
        const SimProfile *p = d->profile;
        uint64_t now = sim_now(CLOCK_MONOTONIC);
        json_t *si = json_object();
        if (!si)
                return NULL;

        json_object_set_new(si, "alias", json_string(d->alias));
        if (p->dev_name)
                json_object_set_new(si, "dev_name", json_string(p->dev_name));
        json_object_set_new(si, "deviceId", json_string(d->device_id));
        json_object_set_new(si, "err_code", json_integer(0));
        json_object_set_new(si, "feature", json_string(p->feature));
        json_object_set_new(si, "hwId", json_string(d->hw_id));
        json_object_set_new(si, "hw_ver", json_string(p->hw_ver));
        json_object_set_new(si, p->geo_float ? "latitude" : "latitude_i", json_integer(0));
        json_object_set_new(si, p->geo_float ? "longitude" : "longitude_i", json_integer(0));
        json_object_set_new(si, "led_off", json_integer(d->led_off));
        json_object_set_new(si, "mac", json_string(d->mac));
        json_object_set_new(si, "model", json_string(p->model));
        json_object_set_new(si, "oemId", json_string(d->oem_id));
        json_object_set_new(si, "rssi", json_integer(d->rssi));
        json_object_set_new(si, "sw_ver", json_string(p->sw_ver));
        json_object_set_new(si, p->type_key, json_string("IOT.SMARTPLUGSWITCH"));
        json_object_set_new(si, "updating", json_integer(0));
        if (p->has_status)
                json_object_set_new(si, "status", json_string("new"));
        if (p->has_obd) {
                json_object_set_new(si, "ntc_state", json_integer(0));
                json_object_set_new(si, "obd_src", json_string("tplink"));
        }

        if (p->n_outlets == 0) {
                const SimOutlet *o = &d->outlets[0];
                json_object_set_new(si, "active_mode", json_string("none"));
                json_object_set_new(si, "fwId", json_string("00000000000000000000000000000000"));
                json_object_set_new(si, "icon_hash", json_string(""));
                json_object_set_new(si, "relay_state", json_integer(o->on));
                json_object_set_new(si, "on_time", json_integer(on_time_sec(o, now)));
                if (!p->geo_float)
                        json_object_set_new(si, "next_action", json_pack("{s:i}", "type", -1));
                return si;
        }

        json_t *children = json_array();
        for (unsigned i = 0; i < d->n_outlets; i++) {
                const SimOutlet *o = &d->outlets[i];
                char id[SIM_CHILD_ID_MAX];
                sim_device_child_id(d, i, id);
                json_array_append_new(children,
                                      json_pack("{s:s,s:s,s:{s:i},s:I,s:i}", "alias", o->alias, "id", id,
                                                "next_action", "type", -1, "on_time",
                                                (json_int_t) on_time_sec(o, now), "state", o->on ? 1 : 0));
        }
        json_object_set_new(si, "child_num", json_integer(d->n_outlets));
        json_object_set_new(si, "children", children);
        return si;
}

static json_t *realtime(SimDevice *d, unsigned outlet) {
        const SimOutlet *o = &d->outlets[outlet];
        double v_mv = (double) d->profile->mains_mv * (1.0 + d->sim->noise / 100.0 * noise(d));
        double p_mw = o->on ? (double) o->load_mw * (1.0 + d->sim->noise / 100.0 * noise(d)) : 0.0;
        int64_t counter = o->delivered_mwh - o->counter_base_mwh;

        if (d->profile->units == KASA_UNITS_FLOAT)
                return json_pack("{s:f,s:i,s:f,s:o,s:f}", "current", round_to(p_mw / v_mv, 1e6), "err_code", 0,
                                 "power", round_to(p_mw / 1000.0, 1e6), "total", energy_json(d, counter),
                                 "voltage", round_to(v_mv / 1000.0, 1e6));

        json_t *rt = json_pack("{s:I,s:i,s:I,s:o,s:I}", "current_ma", (json_int_t) llround(p_mw * 1000.0 / v_mv),
                               "err_code", 0, "power_mw", (json_int_t) llround(p_mw), "total_wh",
                               energy_json(d, counter), "voltage_mv", (json_int_t) llround(v_mv));
        if (rt && d->profile->n_outlets > 0)
                json_object_set_new(rt, "slot_id", json_integer(outlet));
        return rt;
}

int sim_get_arg(json_t *args, const char *key, int64_t min, int64_t max, int64_t *ret) {
        json_t *v = json_object_get(args, key);
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return -EINVAL;
        *ret = (int64_t) json_integer_value(v);
        return 0;
}

static unsigned first_outlet(unsigned outlets) {
        return outlets ? (unsigned) __builtin_ctz(outlets) : 0;
}

static unsigned all_outlets(const SimDevice *d) {
        return (1u << d->n_outlets) - 1;
}

static json_t *m_get_sysinfo(SimDevice *d, json_t *args, unsigned outlets) {
        return sysinfo(d);
}

static json_t *m_set_relay_state(SimDevice *d, json_t *args, unsigned outlets) {
        int64_t state;
        if (sim_get_arg(args, "state", 0, 1, &state) < 0)
                return sim_err(-3, "invalid argument");
        unsigned mask = outlets ? outlets : all_outlets(d);
        /* The refuse_relay fault: the request fails as a whole, nothing
         * switches. */
        if (mask & d->refuse_relay)
                return sim_err(-10, "relay failure");
        for (unsigned i = 0; i < d->n_outlets; i++)
                if (mask & (1u << i))
                        sim_device_set_relay(d, i, state == 1);
        return sim_ok();
}

static json_t *m_set_dev_alias(SimDevice *d, json_t *args, unsigned outlets) {
        const char *alias = json_string_value(json_object_get(args, "alias"));
        if (!alias || strlen(alias) >= SIM_ALIAS_MAX)
                return sim_err(-3, "invalid argument");
        if (!outlets)
                snprintf(d->alias, sizeof(d->alias), "%s", alias);
        for (unsigned i = 0; i < d->n_outlets; i++)
                if (outlets & (1u << i))
                        snprintf(d->outlets[i].alias, sizeof(d->outlets[i].alias), "%s", alias);
        return sim_ok();
}

static json_t *m_set_led_off(SimDevice *d, json_t *args, unsigned outlets) {
        int64_t off;
        if (sim_get_arg(args, "off", 0, 1, &off) < 0)
                return sim_err(-3, "invalid argument");
        d->led_off = off == 1;
        return sim_ok();
}

static json_t *m_reboot(SimDevice *d, json_t *args, unsigned outlets) {
        int64_t delay = 1;
        if (json_object_get(args, "delay") && sim_get_arg(args, "delay", 0, 3600, &delay) < 0)
                return sim_err(-3, "invalid argument");
        /* At least 1 s: the reply must leave before the sockets close, and
         * this runs inside the connection's own handler. */
        if (sim_device_schedule_reboot(d, (uint64_t) MAX(delay, 1) * USEC_PER_SEC,
                                       SIM_REBOOT_DOWN_SEC * USEC_PER_SEC) < 0)
                return sim_err(-5, "internal error");
        return sim_ok();
}

static json_t *m_get_realtime(SimDevice *d, json_t *args, unsigned outlets) {
        return realtime(d, first_outlet(outlets));
}

static json_t *m_get_daystat(SimDevice *d, json_t *args, unsigned outlets) {
        const SimOutlet *o = &d->outlets[first_outlet(outlets)];
        int64_t year, month;
        if (sim_get_arg(args, "year", 1970, 9999, &year) < 0 || sim_get_arg(args, "month", 1, 12, &month) < 0)
                return sim_err(-3, "invalid argument");
        json_t *list = json_array();
        for (size_t i = 0; i < o->n_days; i++) {
                const SimDay *e = &o->days[i];
                if (e->year != year || e->month != month)
                        continue;
                json_array_append_new(list, json_pack("{s:i,s:o,s:i,s:i}", "day", e->day, energy_key(d),
                                                      energy_json(d, e->mwh), "month", e->month, "year",
                                                      e->year));
        }
        return json_pack("{s:o,s:i}", "day_list", list, "err_code", 0);
}

static json_t *m_get_monthstat(SimDevice *d, json_t *args, unsigned outlets) {
        const SimOutlet *o = &d->outlets[first_outlet(outlets)];
        int64_t months[12] = {};
        bool seen[12] = {};
        int64_t year;
        if (sim_get_arg(args, "year", 1970, 9999, &year) < 0)
                return sim_err(-3, "invalid argument");
        for (size_t i = 0; i < o->n_days; i++)
                if (o->days[i].year == year) {
                        months[o->days[i].month - 1] += o->days[i].mwh;
                        seen[o->days[i].month - 1] = true;
                }
        json_t *list = json_array();
        for (int m = 0; m < 12; m++)
                if (seen[m])
                        json_array_append_new(list, json_pack("{s:o,s:i,s:i}", energy_key(d),
                                                              energy_json(d, months[m]), "month", m + 1,
                                                              "year", (int) year));
        return json_pack("{s:i,s:o}", "err_code", 0, "month_list", list);
}

static json_t *m_erase_emeter_stat(SimDevice *d, json_t *args, unsigned outlets) {
        unsigned mask = outlets ? outlets : all_outlets(d);
        for (unsigned i = 0; i < d->n_outlets; i++)
                if (mask & (1u << i))
                        outlet_erase(&d->outlets[i]);
        d->counter_resets++;
        return sim_ok();
}

static const SimMethod methods[] = {
        { "system", "get_sysinfo", m_get_sysinfo },
        { "system", "set_relay_state", m_set_relay_state },
        { "system", "set_dev_alias", m_set_dev_alias },
        { "system", "set_led_off", m_set_led_off },
        { "system", "reboot", m_reboot },
        { "emeter", "get_realtime", m_get_realtime },
        { "emeter", "get_daystat", m_get_daystat },
        { "emeter", "get_monthstat", m_get_monthstat },
        { "emeter", "erase_emeter_stat", m_erase_emeter_stat },
};

static const SimMethod *method_find(const char *module, const char *method) {
        for (size_t i = 0; i < ELEMENTSOF(methods); i++)
                if (strcmp(methods[i].module, module) == 0 && (!method || strcmp(methods[i].method, method) == 0))
                        return &methods[i];
        for (size_t i = 0; i < sim_module_methods_len; i++)
                if (strcmp(sim_module_methods[i].module, module) == 0 &&
                    (!method || strcmp(sim_module_methods[i].method, method) == 0))
                        return &sim_module_methods[i];
        return NULL;
}

static json_t *handle_module(SimDevice *d, const char *module, json_t *calls, unsigned outlets) {
        if (!json_is_object(calls))
                return sim_err(-3, "invalid argument");

        bool no_meter = strcmp(module, "emeter") == 0 && !d->profile->emeter;
        json_t *reply = json_object();
        const char *method;
        json_t *args;
        json_object_foreach(calls, method, args) {
                json_t *r = NULL;
                if (no_meter)
                        r = sim_err(-1, "module not support");
                const SimMethod *m = r ? NULL : method_find(module, method);
                if (m)
                        r = m->fn(d, args, outlets);
                if (!r)
                        r = sim_err(-2, "member not support");
                json_object_set_new(reply, method, r);
        }
        return reply;
}

/* Returns the mask of outlets the context names, 0 when there is none. */
static int parse_context(const SimDevice *d, json_t *ctx, unsigned *ret_outlets) {
        *ret_outlets = 0;
        if (!ctx)
                return 0;
        json_t *ids = json_object_get(ctx, "child_ids");
        if (!json_is_array(ids) || json_array_size(ids) == 0 || d->profile->n_outlets == 0)
                return -EINVAL;
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v) {
                const char *id = json_string_value(v);
                size_t n = strlen(d->device_id);
                /* Clients send either the full child id or just the index. */
                if (!id)
                        return -EINVAL;
                if (strlen(id) == n + 2 && strncmp(id, d->device_id, n) == 0)
                        id += n;
                char *end;
                unsigned long k = strtoul(id, &end, 10);
                if (end == id || *end || strlen(id) != 2 || k >= d->n_outlets)
                        return -EINVAL;
                *ret_outlets |= 1u << k;
        }
        return 0;
}

int sim_device_handle(SimDevice *d, const char *request, size_t len, char **ret_reply) {
        _cleanup_json_ json_t *root = json_loadb(request, len, 0, NULL);
        if (!root || !json_is_object(root))
                return -EBADMSG;

        sim_device_integrate(d);

        unsigned outlets;
        bool bad_context = parse_context(d, json_object_get(root, "context"), &outlets) < 0;

        _cleanup_json_ json_t *reply = json_object();
        if (!reply)
                return -ENOMEM;
        const char *module;
        json_t *calls;
        json_object_foreach(root, module, calls) {
                json_t *r;
                if (strcmp(module, "context") == 0)
                        continue;
                if (bad_context)
                        r = sim_err(-3, "invalid argument");
                else if (!method_find(module, NULL))
                        r = sim_err(-1, "module not support");
                else
                        r = handle_module(d, module, calls, outlets);
                json_object_set_new(reply, module, r);
        }

        char *s = json_dumps(reply, JSON_COMPACT | JSON_REAL_PRECISION(12));
        if (!s)
                return -ENOMEM;
        *ret_reply = s;
        return 0;
}

json_t *sim_device_truth(SimDevice *d) {
        sim_device_integrate(d);

        json_t *outlets = json_array();
        int64_t total = 0, total_rem = 0;
        for (unsigned i = 0; i < d->n_outlets; i++) {
                const SimOutlet *o = &d->outlets[i];
                char id[SIM_CHILD_ID_MAX];
                if (d->profile->n_outlets > 0)
                        sim_device_child_id(d, i, id);
                else
                        snprintf(id, sizeof(id), "%s", d->device_id);
                energy_add(&total, &total_rem, o->delivered_rem);
                total += o->delivered_mwh;
                json_t *days = json_array();
                for (size_t k = 0; days && k < o->n_days; k++) {
                        char date[16];
                        snprintf(date, sizeof(date), "%04d-%02d-%02d", o->days[k].year, o->days[k].month,
                                 o->days[k].day);
                        json_array_append_new(days, json_pack("{s:s,s:I}", "date", date, "energy_mwh",
                                                              (json_int_t) o->days[k].mwh));
                }
                json_array_append_new(
                        outlets,
                        json_pack("{s:s,s:s,s:b,s:I,s:I,s:f,s:I,s:i,s:I,s:o}", "id", id, "alias", o->alias, "relay",
                                  o->on, "load_mw", (json_int_t) o->load_mw, "energy_mwh",
                                  (json_int_t) o->delivered_mwh, "energy_mwh_exact",
                                  (double) o->delivered_mwh + (double) o->delivered_rem / MWUS_PER_MWH,
                                  "counter_mwh", (json_int_t) (o->delivered_mwh - o->counter_base_mwh),
                                  "counter_resets", o->counter_resets, "history_mwh", (json_int_t) o->history_mwh,
                                  "days", days));
        }

        json_t *t = json_pack("{s:i,s:s,s:s,s:i,s:s,s:s,s:b,s:I,s:f,s:i,s:o}", "index", d->index, "profile",
                              d->profile->name, "address", d->address, "port", d->port, "deviceId", d->device_id,
                              "mac", d->mac, "online", sim_device_online(d), "energy_mwh", (json_int_t) total,
                              "energy_mwh_exact", (double) total + (double) total_rem / MWUS_PER_MWH,
                              "counter_resets", d->counter_resets, "outlets", outlets);
        if (t && d->profile->n_outlets == 0)
                json_object_set_new(t, "relay", json_boolean(d->outlets[0].on));
        if (t && d->klap.version) {
                json_object_set_new(t, "klap", json_integer(d->klap.version));
                json_object_set_new(t, "handshakes", json_integer(d->klap.handshakes));
        }
        if (t && d->aes.login_version) {
                json_object_set_new(t, "aes", json_integer(d->aes.login_version));
                json_object_set_new(t, "handshakes", json_integer(d->aes.handshakes));
                json_object_set_new(t, "logins", json_integer(d->aes.logins));
        }
        return t;
}
