/* SPDX-License-Identifier: MIT */
/*
 * Control interface of kasa-sim: a UNIX stream socket (--control=PATH)
 * speaking JSON lines. Each request is one JSON object on one line; each
 * gets exactly one reply line, in order. Several clients may be connected.
 *
 * Every reply has "ok": true, or "ok": false with "error": "<reason>".
 * A device is selected by "device": its index (integer, in start order),
 * or a string equal to its address ("127.0.0.2"), deviceId or MAC.
 *
 *   {"cmd":"list"}
 *     -> {"ok":true,"devices":[{"index":0,"profile":"hs110","model":"HS110(EU)",
 *         "address":"127.0.0.2","port":9999,"mac":"..","deviceId":"..","alias":"..",
 *         "online":true,"children":["<deviceId>00",...]}]}   (children on strips)
 *
 *   {"cmd":"set","device":D, "outlet":N?, "load_w":W?, "relay":B?}
 *     load in watts (number >= 0), relay true/false. Without "outlet" the
 *     change applies to every outlet (a plug has one, outlet 0).
 *
 *   {"cmd":"fault","device":D, <one or more of>:
 *       "delay":MS          hold each TCP reply back MS milliseconds (0 = off)
 *       "hang":true         accept and read requests, never answer
 *       "drop":true         close the connection when a request arrives
 *       "garbage":true      answer with random bytes instead of a frame
 *       "bad_length":true   answer with a length prefix of 0x7fffffff
 *       "counter_reset":true  the energy counter restarts at 0, once
 *       "reboot":S          offline now: sockets closed for S seconds, then
 *                           back with on_time reset and counters kept
 *       "move":"ADDR"       rebind TCP and UDP to a new IPv4 address
 *       "refuse_relay":[N,...]  set_relay_state naming one of these
 *                           outlets answers err_code -10 ([] = off)
 *     hang/drop/garbage/bad_length accept false to switch them off.}
 *
 *   {"cmd":"clear","device":D?, "fault":NAME?}
 *     switch off the persistent faults (delay, hang, drop, garbage,
 *     bad_length, refuse_relay), or only NAME; without "device" on every device.
 *
 *   {"cmd":"truth","device":D?}
 *     -> {"ok":true,"devices":[{"index","profile","address","port","deviceId",
 *         "mac","online","relay" (plugs),"energy_mwh","energy_mwh_exact",
 *         "counter_resets","outlets":[{"id","alias","relay","load_mw",
 *         "energy_mwh","energy_mwh_exact","counter_mwh","counter_resets","history_mwh",
 *         "days":[{"date","energy_mwh"}]}]}]}
 *     energy_mwh: energy delivered since the simulator started (whole mWh,
 *     never reset); counter_mwh: what the device's counter holds now;
 *     counter_resets: counter_reset faults plus erase_emeter_stat calls;
 *     days: the day statistics (the history_wh ones first, history_mwh
 *     their sum), those since the start adding up to energy_mwh.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "kasa-sim.h"
#include "macro.h"

#define _cleanup_json_ _cleanup_(json_decrefp)
#define SIM_CONTROL_LINE_MAX (64u * 1024u)

const char sim_control_help[] =
        "Control protocol (--control=PATH): a UNIX stream socket, one JSON object\n"
        "per line in, one JSON line out. Replies carry \"ok\":true, or \"ok\":false and\n"
        "\"error\". \"device\" is an index (start order) or an address, deviceId or MAC.\n"
        "  {\"cmd\":\"list\"}\n"
        "      devices with index, profile, model, address, port, mac, deviceId,\n"
        "      alias, online, children (strip child ids)\n"
        "  {\"cmd\":\"set\",\"device\":D,\"outlet\":N,\"load_w\":W,\"relay\":true|false}\n"
        "      outlet optional (default: every outlet); load_w and relay optional\n"
        "  {\"cmd\":\"fault\",\"device\":D, ...one or more of:}\n"
        "      \"delay\":MS          hold each TCP reply back MS ms (0 = off)\n"
        "      \"hang\":true         accept and read, never answer\n"
        "      \"drop\":true         close the connection when a request arrives\n"
        "      \"garbage\":true      answer with random bytes\n"
        "      \"bad_length\":true   answer with length prefix 0x7fffffff\n"
        "      \"counter_reset\":true  energy counter restarts at 0, once\n"
        "      \"reboot\":S          offline for S s (sockets closed), then back with\n"
        "                          on_time reset and counters kept\n"
        "      \"move\":\"ADDR\"       rebind TCP and UDP to another IPv4 address\n"
        "      \"refuse_relay\":[N]    set_relay_state of outlet N fails, err_code -10\n"
        "                          ([] = off)\n"
        "      (hang/drop/garbage/bad_length take false to switch off; on UDP only\n"
        "      hang, drop and garbage act)\n"
        "    KLAP and AES devices only:\n"
        "      \"handshake_hang\":true  read handshake1 (AES: the handshake), never\n"
        "                          answer it\n"
        "      \"bad_signature\":true   corrupt the signature of every reply (AES: its\n"
        "                          ciphertext)\n"
        "      \"expire_session\":true  drop the session now (next request: 403; AES:\n"
        "                          error_code 9999)\n"
        "      \"credentials\":{\"user\":S,\"password\":S}  the owner's from now on\n"
        "                          (the session is dropped)\n"
        "  {\"cmd\":\"clear\",\"device\":D,\"fault\":NAME}\n"
        "      switch persistent faults off (all, or NAME); no device = all devices\n"
        "  {\"cmd\":\"truth\",\"device\":D}\n"
        "      per device (all without D): energy_mwh delivered since start (exact,\n"
        "      never reset; energy_mwh_exact with the fraction), relay, online,\n"
        "      counter_resets, and per outlet: id, relay, load_mw, energy_mwh,\n"
        "      energy_mwh_exact, counter_mwh (the device's counter), counter_resets,\n"
        "      history_mwh, days [{date, energy_mwh}] (its day statistics)\n";

typedef struct SimClient {
        Sim *sim;
        struct SimClient *prev, *next;
        int fd;
        sd_event_source *io;
        char *in;
        size_t in_len;
        char *out;
        size_t out_len;
} SimClient;

static void client_free(SimClient *c) {
        if (c->prev)
                c->prev->next = c->next;
        else
                c->sim->clients = c->next;
        if (c->next)
                c->next->prev = c->prev;
        sd_event_source_disable_unref(c->io);
        close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
}

_printf_(1, 2) static char *error_string(const char *fmt, ...) {
        va_list ap;
        char *s;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

/* ---- faults ---- */

static const struct {
        const char *name;
        SimFault fault;
} persistent_faults[] = {
        { "hang", SIM_FAULT_HANG },
        { "drop", SIM_FAULT_DROP },
        { "garbage", SIM_FAULT_GARBAGE },
        { "bad_length", SIM_FAULT_BAD_LENGTH },
        { "handshake_hang", SIM_FAULT_HANDSHAKE_HANG },
        { "bad_signature", SIM_FAULT_BAD_SIGNATURE },
};

int sim_apply_faults(SimDevice *d, json_t *spec, bool actions, char **ret_error) {
        unsigned set = 0, unset = 0;
        json_int_t delay = -1, reboot = -1;
        bool counter_reset = false;
        struct in_addr move = {};
        bool have_move = false;
        long refuse = -1;
        bool expire = false;
        json_t *credentials = NULL;
        const char *key;
        json_t *v;

        *ret_error = NULL;
        json_object_foreach(spec, key, v) {
                bool known = false;
                if (strcmp(key, "cmd") == 0 || strcmp(key, "device") == 0)
                        continue;
                for (size_t i = 0; i < ELEMENTSOF(persistent_faults); i++) {
                        if (strcmp(key, persistent_faults[i].name) != 0)
                                continue;
                        if (!json_is_boolean(v)) {
                                *ret_error = error_string("fault \"%s\" takes true or false", key);
                                return -EINVAL;
                        }
                        if (json_is_true(v))
                                set |= persistent_faults[i].fault;
                        else
                                unset |= persistent_faults[i].fault;
                        known = true;
                }
                if (known)
                        continue;
                if (strcmp(key, "delay") == 0) {
                        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 3600000) {
                                *ret_error = error_string("fault \"%s\" takes milliseconds, 0..3600000", key);
                                return -EINVAL;
                        }
                        delay = json_integer_value(v);
                } else if (actions && strcmp(key, "counter_reset") == 0) {
                        if (!json_is_true(v)) {
                                *ret_error = error_string("fault \"%s\" takes true", key);
                                return -EINVAL;
                        }
                        counter_reset = true;
                } else if (actions && strcmp(key, "reboot") == 0) {
                        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 86400) {
                                *ret_error = error_string("fault \"%s\" takes seconds, 0..86400", key);
                                return -EINVAL;
                        }
                        reboot = json_integer_value(v);
                } else if (strcmp(key, "refuse_relay") == 0) {
                        size_t i;
                        json_t *e;
                        if (!json_is_array(v)) {
                                *ret_error = error_string("fault \"%s\" takes an array of outlet indexes", key);
                                return -EINVAL;
                        }
                        refuse = 0;
                        json_array_foreach(v, i, e) {
                                if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                                    json_integer_value(e) >= (json_int_t) d->n_outlets) {
                                        *ret_error = error_string("fault \"%s\": no outlet %s", key,
                                                                  json_is_integer(e) ? "of that index" : "named so");
                                        return -EINVAL;
                                }
                                refuse |= 1L << json_integer_value(e);
                        }
                } else if (actions && strcmp(key, "expire_session") == 0) {
                        if (!json_is_true(v) || !sim_device_http(d)) {
                                *ret_error = error_string("fault \"%s\" takes true, on KLAP and AES devices", key);
                                return -EINVAL;
                        }
                        expire = true;
                } else if (actions && strcmp(key, "credentials") == 0) {
                        if (!sim_device_http(d) || !json_is_object(v) ||
                            !json_is_string(json_object_get(v, "user")) ||
                            !json_is_string(json_object_get(v, "password"))) {
                                *ret_error = error_string("fault \"%s\" takes {\"user\":S,\"password\":S}, "
                                                          "on KLAP and AES devices", key);
                                return -EINVAL;
                        }
                        credentials = v;
                } else if (actions && strcmp(key, "move") == 0) {
                        const char *a = json_string_value(v);
                        if (!a || inet_pton(AF_INET, a, &move) != 1) {
                                *ret_error = error_string("fault \"%s\" takes an IPv4 address", key);
                                return -EINVAL;
                        }
                        have_move = true;
                } else {
                        *ret_error = error_string("unknown fault \"%s\"", key);
                        return -EINVAL;
                }
        }

        if (have_move) {
                int r = sim_device_move(d, move);
                if (r < 0) {
                        *ret_error = error_string("cannot move: %s", strerror(-r));
                        return r;
                }
        }
        d->faults = (d->faults | set) & ~unset;
        if (refuse >= 0)
                d->refuse_relay = (unsigned) refuse;
        if (delay >= 0)
                d->delay_ms = (unsigned) delay;
        if (counter_reset)
                sim_device_counter_reset(d);
        if (expire)
                (d->aes.login_version ? sim_aes_expire : sim_klap_expire)(d);
        if (credentials) {
                const char *user = json_string_value(json_object_get(credentials, "user"));
                const char *password = json_string_value(json_object_get(credentials, "password"));
                int r = d->aes.login_version ? sim_aes_setup(d, d->aes.login_version, user, password)
                                             : sim_klap_setup(d, d->klap.version, user, password);
                if (r < 0) {
                        *ret_error = error_string("cannot set credentials: %s", strerror(-r));
                        return r;
                }
        }
        if (reboot >= 0) {
                int r = sim_device_schedule_reboot(d, 0, (uint64_t) reboot * 1000000ULL);
                if (r < 0) {
                        *ret_error = error_string("cannot reboot: %s", strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* ---- commands ---- */

static SimDevice *find_device(Sim *s, json_t *sel) {
        if (json_is_integer(sel)) {
                json_int_t i = json_integer_value(sel);
                return i >= 0 && (size_t) i < s->n_devices ? s->devices[i] : NULL;
        }
        const char *str = json_string_value(sel);
        if (!str)
                return NULL;
        for (size_t i = 0; i < s->n_devices; i++) {
                SimDevice *d = s->devices[i];
                if (strcmp(d->address, str) == 0 || strcmp(d->device_id, str) == 0 ||
                    strcasecmp(d->mac, str) == 0)
                        return d;
        }
        return NULL;
}

static json_t *list_entry(SimDevice *d) {
        json_t *e = json_pack("{s:i,s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:b}", "index", d->index, "profile",
                              d->profile->name, "model", d->profile->model, "address", d->address, "port",
                              d->port, "mac", d->mac, "deviceId", d->device_id, "alias", d->alias, "online",
                              sim_device_online(d));
        if (e && d->profile->n_outlets > 0) {
                json_t *ids = json_array();
                for (unsigned i = 0; i < d->n_outlets; i++) {
                        char id[SIM_CHILD_ID_MAX];
                        sim_device_child_id(d, i, id);
                        json_array_append_new(ids, json_string(id));
                }
                json_object_set_new(e, "children", ids);
        }
        return e;
}

static int cmd_set(SimDevice *d, json_t *req, char **ret_error) {
        json_t *outlet = json_object_get(req, "outlet");
        json_t *load = json_object_get(req, "load_w");
        json_t *relay = json_object_get(req, "relay");
        unsigned first = 0, last = d->n_outlets - 1;

        if (outlet) {
                if (!json_is_integer(outlet) || json_integer_value(outlet) < 0 ||
                    json_integer_value(outlet) >= d->n_outlets) {
                        *ret_error = error_string("\"outlet\" out of range for %s", d->profile->name);
                        return -EINVAL;
                }
                first = last = (unsigned) json_integer_value(outlet);
        }
        if (load && (!json_is_number(load) || json_number_value(load) < 0 || json_number_value(load) > 10000)) {
                *ret_error = error_string("\"load_w\" must be a number of watts, 0..%s", "10000");
                return -EINVAL;
        }
        if (relay && !json_is_boolean(relay)) {
                *ret_error = error_string("\"relay\" must be %s", "true or false");
                return -EINVAL;
        }
        for (unsigned i = first; i <= last; i++) {
                if (load)
                        sim_device_set_load(d, i, (int64_t) (json_number_value(load) * 1000.0 + 0.5));
                if (relay)
                        sim_device_set_relay(d, i, json_is_true(relay));
        }
        return 0;
}

static int cmd_clear(SimDevice *d, const char *fault, char **ret_error) {
        if (!fault) {
                d->faults = 0;
                d->delay_ms = 0;
                d->refuse_relay = 0;
                return 0;
        }
        if (strcmp(fault, "delay") == 0) {
                d->delay_ms = 0;
                return 0;
        }
        if (strcmp(fault, "refuse_relay") == 0) {
                d->refuse_relay = 0;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(persistent_faults); i++)
                if (strcmp(fault, persistent_faults[i].name) == 0) {
                        d->faults &= ~persistent_faults[i].fault;
                        return 0;
                }
        *ret_error = error_string("unknown persistent fault \"%s\"", fault);
        return -EINVAL;
}

/* Returns the reply object; never NULL unless out of memory. */
static json_t *control_dispatch(Sim *s, const char *line, size_t len) {
        _cleanup_free_ char *error = NULL;
        json_error_t jerr;
        int r = 0;

        _cleanup_json_ json_t *req = json_loadb(line, len, 0, &jerr);
        if (!req || !json_is_object(req))
                return json_pack("{s:b,s:s}", "ok", 0, "error", req ? "request is not a JSON object" : jerr.text);

        const char *cmd = json_string_value(json_object_get(req, "cmd"));
        json_t *sel = json_object_get(req, "device");
        SimDevice *d = sel ? find_device(s, sel) : NULL;
        if (!cmd)
                return json_pack("{s:b,s:s}", "ok", 0, "error", "missing \"cmd\"");
        if (sel && !d)
                return json_pack("{s:b,s:s}", "ok", 0, "error", "no such device");

        if (strcmp(cmd, "list") == 0 || strcmp(cmd, "truth") == 0) {
                bool truth = cmd[0] == 't';
                json_t *arr = json_array();
                for (size_t i = 0; i < s->n_devices; i++)
                        if (!d || d == s->devices[i])
                                json_array_append_new(arr, truth ? sim_device_truth(s->devices[i])
                                                                 : list_entry(s->devices[i]));
                return json_pack("{s:b,s:o}", "ok", 1, "devices", arr);
        }

        if (strcmp(cmd, "clear") == 0) {
                json_t *f = json_object_get(req, "fault");
                if (f && !json_is_string(f))
                        return json_pack("{s:b,s:s}", "ok", 0, "error", "\"fault\" must be a string");
                for (size_t i = 0; i < s->n_devices && r >= 0; i++)
                        if (!d || d == s->devices[i])
                                r = cmd_clear(s->devices[i], json_string_value(f), &error);
        } else if (strcmp(cmd, "set") == 0 || strcmp(cmd, "fault") == 0) {
                if (!d)
                        return json_pack("{s:b,s:s}", "ok", 0, "error", "missing \"device\"");
                if (cmd[0] == 's')
                        r = cmd_set(d, req, &error);
                else
                        r = sim_apply_faults(d, req, true, &error);
        } else
                return json_pack("{s:b,s:s}", "ok", 0, "error", "unknown \"cmd\"");

        if (r < 0)
                return json_pack("{s:b,s:s}", "ok", 0, "error", error ? error : strerror(-r));
        return json_pack("{s:b}", "ok", 1);
}

/* ---- socket ---- */

static int client_flush(SimClient *c) {
        return sim_send_buffered(c->fd, c->io, (uint8_t *) c->out, &c->out_len);
}

static int client_reply(SimClient *c, const char *line, size_t len) {
        _cleanup_json_ json_t *reply = control_dispatch(c->sim, line, len);
        _cleanup_free_ char *s = reply ? json_dumps(reply, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
        if (!s)
                return -ENOMEM;
        size_t n = strlen(s);
        char *out = realloc(c->out, c->out_len + n + 1);
        if (!out)
                return -ENOMEM;
        memcpy(out + c->out_len, s, n);
        out[c->out_len + n] = '\n';
        c->out = out;
        c->out_len += n + 1;
        return 0;
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        SimClient *c = userdata;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char buf[4096];
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n <= 0 || c->in_len + (size_t) n > SIM_CONTROL_LINE_MAX)
                        goto close;
                char *in = realloc(c->in, c->in_len + (size_t) n);
                if (!in)
                        goto close;
                memcpy(in + c->in_len, buf, (size_t) n);
                c->in = in;
                c->in_len += (size_t) n;

                char *start = c->in, *nl;
                while ((nl = memchr(start, '\n', c->in_len - (size_t) (start - c->in)))) {
                        if (nl > start && client_reply(c, start, (size_t) (nl - start)) < 0)
                                goto close;
                        start = nl + 1;
                }
                c->in_len -= (size_t) (start - c->in);
                memmove(c->in, start, c->in_len);
        }
        if (client_flush(c) < 0)
                goto close;
        return 0;

close:
        client_free(c);
        return 0;
}

static int on_control_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Sim *sim = userdata;

        _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        SimClient *c = calloc(1, sizeof(*c));
        if (!c)
                return 0;
        c->sim = sim;
        c->fd = TAKE_FD(cfd);
        c->next = sim->clients;
        if (sim->clients)
                sim->clients->prev = c;
        sim->clients = c;
        if (sd_event_add_io(sim->event, &c->io, c->fd, EPOLLIN, on_client_io, c) < 0)
                client_free(c);
        return 0;
}

int sim_control_open(Sim *s, const char *path) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } sa = { .un.sun_family = AF_UNIX };
        int r;

        if (strlen(path) >= sizeof(sa.un.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.un.sun_path, path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A stale socket from an earlier run, never a regular file. */
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
                (void) unlink(path);
        if (bind(fd, &sa.sa, sizeof(sa.un)) < 0)
                return -errno;
        s->control_path = strdup(path);
        if (!s->control_path) {
                (void) unlink(path);
                return -ENOMEM;
        }
        if (listen(fd, 16) < 0)
                return -errno;
        r = sd_event_add_io(s->event, &s->control_source, fd, EPOLLIN, on_control_accept, s);
        if (r < 0)
                return r;
        s->control_fd = TAKE_FD(fd);
        return 0;
}

void sim_control_close(Sim *s) {
        while (s->clients)
                client_free(s->clients);
        s->control_source = sd_event_source_disable_unref(s->control_source);
        if (s->control_fd >= 0)
                close(s->control_fd);
        s->control_fd = -1;
        if (s->control_path)
                (void) unlink(s->control_path);
        free(s->control_path);
        s->control_path = NULL;
}
