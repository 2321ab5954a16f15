/* SPDX-License-Identifier: MIT */

/* AddDevice and Discover: operations that outlive the call that started
 * them, and the periodic and address-change discoveries. */

#include "manager.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "discovery-tdp.h"
#include "kasa-dbus.h"
#include "kasa-smart.h"
#include "kasa-time.h"
#include "klap.h"
#include "log.h"
#include "manager-internal.h"

typedef struct PendingOp PendingOp;
struct PendingOp {
        Manager *manager;
        PendingOp *next;
        /* AddDevice */
        Transport *transport;
        Transport *klap_transport; /* the second try, on port 80 */
        bool port_given;           /* no second try: the user said where */
        bool smart;                /* asking in the smart dialect (kasa-smart.h) */
        char address[32];
        struct sockaddr_in sa;
        ManagerAddFn add_cb;
        KasaSysinfo *sysinfo;      /* what the device said, registered from the loop */
        int add_error;
        char add_message[256];
        /* Discover */
        DiscoveryRun *run;
        TdpRun *tdp;               /* UDP 20002 beside run */
        unsigned runs_left;
        unsigned probes_pending;   /* KLAP devices 20002 found, being asked for sysinfo */
        int discover_error;
        GPtrArray *replies;        /* QueuedReply: new devices, registered by flush */
        sd_event_source *flush;
        GPtrArray *found;
        ManagerDiscoverFn discover_cb;
        void *userdata;
        sd_event_source *cleanup;  /* frees the op outside its own callbacks */
};

static PendingOp *op_new(Manager *m, void *userdata) {
        PendingOp *op = calloc(1, sizeof(PendingOp));

        if (op) {
                op->manager = m;
                op->userdata = userdata;
        }
        return op;
}

static void op_unlink(Manager *m, PendingOp *op) {
        for (PendingOp **p = &m->ops; *p; p = &(*p)->next)
                if (*p == op) {
                        *p = op->next;
                        return;
                }
}

static PendingOp *op_free(PendingOp *op) {
        if (!op)
                return NULL;
        transport_free(op->transport);
        transport_free(op->klap_transport);
        discovery_run_free(op->run);
        tdp_run_free(op->tdp);
        if (op->replies)
                g_ptr_array_unref(op->replies);
        sd_event_source_disable_unref(op->flush);
        if (op->found)
                g_ptr_array_unref(op->found);
        sd_event_source_disable_unref(op->cleanup);
        free(op->sysinfo);
        free(op);
        return NULL;
}

static void add_finish(PendingOp *op);

static int on_op_cleanup(sd_event_source *s, void *userdata) {
        PendingOp *op = userdata;

        if (op->add_cb)
                add_finish(op);
        op_unlink(op->manager, op);
        op_free(op);
        return 0;
}

/* Callbacks of op->transport run inside it: free the op from the loop later. */
static void op_finish_later(PendingOp *op) {
        if (sd_event_add_defer(op->manager->event, &op->cleanup, on_op_cleanup, op) < 0)
                log_oom(); /* leaks one op until exit, harmless */
}

/* From the loop, not the connection's callback: registers what the
 * device said (writing the registry) and answers the caller. */
static void add_finish(PendingOp *op) {
        Manager *m = op->manager;
        char id[REGISTRY_ID_MAX], old_address[sizeof(((Device *) NULL)->address)] = "";
        Device *d = NULL, *known;
        int r = op->add_error;
        char *msg = op->add_message;
        size_t size = sizeof(op->add_message);

        if (r >= 0 && registry_make_id(op->sysinfo->mac, -1, id) < 0) {
                r = -EBADMSG;
                snprintf(msg, size, "The device at %s sent an invalid MAC address.", op->address);
        }
        if (r >= 0) {
                known = manager_find(m, id);
                if (known)
                        snprintf(old_address, sizeof(old_address), "%s", known->address);
                r = manager_register(m, &op->sa, op->sysinfo, &d);
                if (r == -ENOSPC)
                        snprintf(msg, size, "MaxDevices=%u devices are known already.", m->config.max_devices);
                else if (r < 0)
                        snprintf(msg, size, "Failed to register the device at %s: %s.", op->address, strerror(-r));
                else if (known && strcmp(old_address, d->address) == 0) {
                        r = -EEXIST;
                        snprintf(msg, size, "Device %s (%s) is known already, at %s.", d->id, d->alias, d->address);
                } else if (known) {
                        r = -EEXIST;
                        snprintf(msg, size, "Device %s (%s) is known already; its address changed from %s to %s.",
                                 d->id, d->alias, old_address, d->address);
                } else {
                        /* Added again after a removal: monitored again. */
                        r = registry_set_monitored(m->registry, d->id, true);
                        for (size_t i = 0; r >= 0 && i < d->n_outlets; i++)
                                if (d->outlets[i])
                                        r = registry_set_monitored(m->registry, d->outlets[i]->id, true);
                        if (r < 0)
                                log_warning_errno(r, "Failed to mark %s as monitored, ignoring: %s", d->id,
                                                  registry_last_error(m->registry));
                        r = 0;
                }
        }
        op->add_cb(m, r, msg, d, op->userdata);
        op->add_cb = NULL;
}

static void on_add_reply(Transport *t, int error, const char *json, size_t len, void *userdata);

/* What a smart device is asked: identity, whether it has a meter, and a
 * strip's outlets (a plug answers get_child_device_list -10000: none). */
static char *add_query(bool smart) {
        return smart ? kasa_smart_request_query(KASA_SMART_DEVICE_INFO | KASA_SMART_ENERGY_USAGE |
                                                KASA_SMART_CURRENT_POWER | KASA_SMART_EMETER_DATA |
                                                KASA_SMART_CHILD_LIST, NULL)
                     : kasa_request_query(KASA_QUERY_SYSINFO, NULL);
}

/* aes: a 20002 reply said the device speaks AES securePassthrough. */
static int add_transport(Manager *m, const struct sockaddr_in *sa, bool aes, Transport **ret) {
        TransportConfig c = {
                .event = m->event,
                .address = *sa,
                .timeout_usec = m->config.poll_timeout_usec,
                .max_reply = m->config.max_frame_size,
                .user = m->credentials.user,
                .password = m->credentials.password,
                .aes = aes,
                .rsa_keys = m->rsa_keys,
        };

        return ntohs(sa->sin_port) == KLAP_HTTP_PORT ? transport_http_new(&c, ret) : transport_xor_new(&c, ret);
}

/* The first transport stays until the op is freed: this runs inside its
 * callback. */
static int add_try_klap(PendingOp *op) {
        _cleanup_free_ char *q = add_query(op->smart);
        struct sockaddr_in sa = op->sa;
        int r;

        if (!q)
                return -ENOMEM;
        sa.sin_port = htons(KLAP_HTTP_PORT);
        r = add_transport(op->manager, &sa, false, &op->klap_transport);
        if (r < 0)
                return r;
        r = transport_request(op->klap_transport, q, on_add_reply, op);
        if (r < 0)
                return r;
        op->sa = sa;
        return 0;
}

/* A smart device answers the IOT get_sysinfo with a bare error_code. */
static int add_try_smart(PendingOp *op, Transport *t) {
        _cleanup_free_ char *q = add_query(true);

        if (!q)
                return -ENOMEM;
        op->smart = true;
        return transport_request(t, q, on_add_reply, op);
}

static void on_add_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        PendingOp *op = userdata;
        static KasaResponse resp;
        char *msg = op->add_message;
        size_t size = sizeof(op->add_message);
        KasaError err;
        int r = error;

        if (error == -ECANCELED)
                return; /* manager shutting down: op_free answers */
        if (r >= 0 && !op->smart && kasa_smart_is_reply(json, len) && add_try_smart(op, t) >= 0)
                return;
        /* No XOR device there: newer firmware speaks KLAP on port 80. */
        if (r < 0 && !op->port_given && !op->klap_transport && add_try_klap(op) >= 0)
                return;
        if (r < 0 && transport_error_message(t))
                snprintf(msg, size, "The device at %s failed: %s (%s).", op->address, transport_error_message(t),
                         strerror(-r));
        else if (r < 0)
                snprintf(msg, size, "No Kasa device answered at %s: %s.", op->address, strerror(-r));
        else if ((op->smart ? kasa_smart_response_parse : kasa_response_parse)(json, len, &resp, &err) < 0) {
                r = -EBADMSG;
                if (snprintf(msg, size, "The device at %s sent a malformed reply: %s", op->address, err.message) >=
                    (int) size)
                        msg[size - 1] = 0;
        } else if (resp.sysinfo_err != 0) {
                r = -EBADMSG;
                snprintf(msg, size, "The device at %s refused %s: %s %d (%s).", op->address,
                         op->smart ? "get_device_info" : "get_sysinfo", op->smart ? "error_code" : "err_code",
                         resp.sysinfo_err, op->smart ? "smart dialect" : kasa_err_to_string(resp.sysinfo_err));
        } else {
                op->sysinfo = malloc(sizeof(KasaSysinfo));
                if (op->sysinfo)
                        *op->sysinfo = resp.sysinfo;
                else {
                        r = -ENOMEM;
                        snprintf(msg, size, "Out of memory.");
                }
        }
        op->add_error = r;
        op_finish_later(op);
}

/* smart, aes: the device said so in its 20002 reply (SMART.* device
 * type, encrypt_type AES). */
static int add_address(Manager *m, const char *address, bool smart, bool aes, ManagerAddFn cb,
                       void *userdata) {
        _cleanup_free_ char *q = NULL;
        PendingOp *op;
        int r;

        op = op_new(m, userdata);
        if (!op)
                return -ENOMEM;
        op->add_cb = cb;
        op->smart = smart;
        r = parse_address(address, &op->sa);
        if (r < 0)
                goto fail;
        format_address(&op->sa, op->address, sizeof(op->address));
        op->port_given = strchr(address, ':') != NULL;
        r = add_transport(m, &op->sa, aes, &op->transport);
        if (r < 0)
                goto fail;
        q = add_query(op->smart);
        if (!q) {
                r = -ENOMEM;
                goto fail;
        }
        r = transport_request(op->transport, q, on_add_reply, op);
        if (r < 0)
                goto fail;
        op->next = m->ops;
        m->ops = op;
        return 0;
fail:
        op->add_cb = NULL;
        op_free(op);
        return r;
}

int manager_add_address(Manager *m, const char *address, ManagerAddFn cb, void *userdata) {
        return add_address(m, address, false, false, cb, userdata);
}

/* Replies to one probe come within milliseconds of each other: those of
 * new devices are registered together this long after the first of them,
 * in one transaction, outside the socket's callback. */
#define DISCOVERY_BURST_USEC (200 * USEC_PER_MSEC)

/* A discovery reply kept until its burst is registered: the sysinfo
 * without its unused outlets (a plug's is 2.4 kB of the struct's 10.8). */
typedef struct QueuedReply {
        struct sockaddr_in from;
        size_t size;
        uint8_t sysinfo[];
} QueuedReply;

static int on_discovery_flush(sd_event_source *s, uint64_t usec, void *userdata);

static int queue_reply(PendingOp *op, const struct sockaddr_in *from, const KasaSysinfo *si) {
        size_t size = offsetof(KasaSysinfo, children) + MIN(si->n_children, (size_t) KASA_CHILDREN_MAX) * sizeof(KasaChild);
        QueuedReply *q;
        int r;

        if (!op->replies)
                op->replies = g_ptr_array_new_with_free_func(free);
        if (op->replies->len == 0) {
                if (!op->flush)
                        r = sd_event_add_time_relative(op->manager->event, &op->flush, CLOCK_MONOTONIC,
                                                       DISCOVERY_BURST_USEC, 0, on_discovery_flush, op);
                else {
                        r = sd_event_source_set_time_relative(op->flush, DISCOVERY_BURST_USEC);
                        if (r >= 0)
                                r = sd_event_source_set_enabled(op->flush, SD_EVENT_ONESHOT);
                }
                if (r < 0)
                        return r;
        }
        q = malloc(offsetof(QueuedReply, sysinfo) + size);
        if (!q)
                return -ENOMEM;
        q->from = *from;
        q->size = size;
        memcpy(q->sysinfo, si, size);
        g_ptr_array_add(op->replies, q);
        return 0;
}

static void found_device(PendingOp *op, Device *d) {
        if (!op->found)
                return;
        g_ptr_array_add(op->found, d);
        for (size_t i = 0; i < d->n_outlets; i++)
                if (d->outlets[i])
                        g_ptr_array_add(op->found, d->outlets[i]);
}

static void register_reply(PendingOp *op, const struct sockaddr_in *from, const KasaSysinfo *si) {
        Manager *m = op->manager;
        char id[REGISTRY_ID_MAX];
        Device *d;
        int r;

        if (registry_make_id(si->mac, -1, id) < 0)
                return;
        if (!manager_find(m, id)) {
                /* No discovery brings back what was removed: only
                 * AddDevice does. */
                RegistryDevice rd = {};
                bool removed = registry_get(m->registry, id, &rd) >= 0 && !rd.monitored;
                registry_device_done(&rd);
                if (removed)
                        return;
                manager_batch_begin(m);
        }
        r = manager_register(m, from, si, &d);
        if (r == -ENOSPC) {
                log_warning("Not adding %s: MaxDevices=%u reached", id, m->config.max_devices);
                return;
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to register %s, ignoring: %m", id);
                return;
        }
        found_device(op, d);
}

/* Inside the run's socket callback: a device known with all its outlets
 * is updated at once (nothing to write then but what the deferred
 * registry save writes); a new one, or a strip with new outlets, needs
 * registry rows, which are written with the rest of its burst, so that no
 * write happens in this callback and no transaction stays open while the
 * run waits for more replies. */
static void on_discovered(DiscoveryRun *run, const struct sockaddr_in *from, const KasaSysinfo *si, void *userdata) {
        PendingOp *op = userdata;
        char id[REGISTRY_ID_MAX];
        Device *d;
        int r;

        if (registry_make_id(si->mac, -1, id) < 0)
                return;
        d = manager_find(op->manager, id);
        bool complete = d && si->n_children <= d->n_outlets;
        for (size_t i = 0; complete && i < si->n_children; i++)
                complete = d->outlets[i];
        if (complete) {
                register_reply(op, from, si);
                return;
        }
        r = queue_reply(op, from, si);
        if (r < 0)
                log_warning_errno(r, "Failed to keep the discovery reply of %s, ignoring: %m", id);
}

/* The burst's new devices in one transaction, then polled. */
static void register_queued(PendingOp *op) {
        static KasaSysinfo si;

        if (op->flush)
                (void) sd_event_source_set_enabled(op->flush, SD_EVENT_OFF);
        if (!op->replies || op->replies->len == 0)
                return;
        for (guint i = 0; i < op->replies->len; i++) {
                const QueuedReply *q = op->replies->pdata[i];
                memcpy(&si, q->sysinfo, q->size);
                register_reply(op, &q->from, &si);
        }
        g_ptr_array_set_size(op->replies, 0);
        manager_batch_end(op->manager);
}

static int on_discovery_flush(sd_event_source *s, uint64_t usec, void *userdata) {
        register_queued(userdata);
        return 0;
}

/* Once both runs and the KLAP devices' sysinfo probes are over. */
static void discovery_finish(PendingOp *op, int error) {
        if (error < 0 && op->discover_error == 0)
                op->discover_error = error;
        if (op->runs_left > 0 || op->probes_pending > 0)
                return;
        op->manager->discovering--;
        if (op->discover_cb)
                op->discover_cb(op->manager, op->discover_error,
                                (Device **) (op->found ? op->found->pdata : NULL), op->found ? op->found->len : 0,
                                op->userdata);
        op->discover_cb = NULL;
        op_finish_later(op);
}

static void on_discovery_done(DiscoveryRun *run, int error, void *userdata) {
        PendingOp *op = userdata;

        op->run = NULL; /* freed by discovery itself after this */
        register_queued(op);
        op->runs_left--;
        discovery_finish(op, error);
}

static void on_tdp_probed(Manager *m, int error, const char *message, Device *d, void *userdata) {
        PendingOp *op = userdata;

        if (error == -ECANCELED)
                return; /* shutting down: op may be gone already */
        /* -EEXIST: an earlier round's probe of the same device won. */
        if (error < 0 && error != -EEXIST)
                log_warning("A device answered 20002 discovery, but asking it for its sysinfo failed, ignoring: %s",
                            message);
        else
                found_device(op, d);
        op->probes_pending--;
        discovery_finish(op, 0);
}

/* A 20002 reply names the device but not its state: ask it over KLAP or
 * AES, as AddDevice does, and register what it says. */
static void on_tdp_found(TdpRun *run, const struct sockaddr_in *from, const KasaTdpInfo *info, void *userdata) {
        PendingOp *op = userdata;
        Manager *m = op->manager;
        char id[REGISTRY_ID_MAX], address[32], ip[INET_ADDRSTRLEN];
        RegistryDevice rd = {};
        Device *known;
        bool removed;

        if (registry_make_id(info->mac, -1, id) < 0)
                return;
        known = manager_find(m, id);
        /* A known device that moved (DHCP) is probed like a new one: its
         * registration moves it, as on 9999. */
        if (known && known->sockaddr.sin_addr.s_addr == from->sin_addr.s_addr &&
            ntohs(known->sockaddr.sin_port) == info->http_port)
                return;
        removed = !known && registry_get(m->registry, id, &rd) >= 0 && !rd.monitored;
        registry_device_done(&rd);
        if (removed)
                return;
        snprintf(address, sizeof(address), "%s:%u", inet_ntop(AF_INET, &from->sin_addr, ip, sizeof(ip)),
                 info->http_port);
        if (add_address(m, address, strncmp(info->device_type, "SMART.", 6) == 0, info->encrypt == KASA_ENCRYPT_AES,
                        on_tdp_probed, op) >= 0)
                op->probes_pending++;
}

static void on_tdp_done(TdpRun *run, void *userdata) {
        PendingOp *op = userdata;

        op->tdp = NULL;
        op->runs_left--;
        discovery_finish(op, 0);
}

static int start_discovery(Manager *m, uint64_t duration, ManagerDiscoverFn cb, void *userdata) {
        PendingOp *op;
        int r;

        op = op_new(m, userdata);
        if (!op)
                return -ENOMEM;
        op->discover_cb = cb;
        if (cb)
                op->found = g_ptr_array_new();
        r = discovery_run(m->event, m->config.discovery_targets, m->config.discovery_attempts, duration,
                          on_discovered, on_discovery_done, op, &op->run);
        if (r < 0) {
                op->discover_cb = NULL;
                op_free(op);
                return r;
        }
        op->runs_left = 1;
        r = tdp_run(m->event, m->config.discovery_targets, m->config.discovery_attempts, duration, on_tdp_found,
                    on_tdp_done, op, &op->tdp);
        if (r < 0)
                log_warning_errno(r, "Failed to start 20002 discovery, ignoring: %m");
        else
                op->runs_left++;
        m->discovering++;
        op->next = m->ops;
        m->ops = op;
        return 0;
}

int manager_discover(Manager *m, uint64_t timeout_usec, ManagerDiscoverFn cb, void *userdata) {
        return start_discovery(m, timeout_usec, cb, userdata);
}

int manager_on_rediscover(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r;

        r = start_discovery(m, m->config.discovery_timeout_usec, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to start discovery, ignoring: %m");
        if (m->config.discovery_interval_usec == 0)
                return 0;
        (void) sd_event_source_set_time(s, usec + m->config.discovery_interval_usec);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

void manager_on_address_change(void *userdata) {
        Manager *m = userdata;
        int r;

        log_info("Network addresses changed, discovering again");
        r = start_discovery(m, m->config.discovery_timeout_usec, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to start discovery, ignoring: %m");
}


void manager_ops_forget(Manager *m, Device *d) {
        for (PendingOp *op = m->ops; op; op = op->next)
                if (op->found) {
                        for (size_t i = 0; i < d->n_outlets; i++)
                                g_ptr_array_remove(op->found, d->outlets[i]);
                        g_ptr_array_remove(op->found, d);
                }
}

void manager_ops_cancel(Manager *m) {
        while (m->ops) {
                PendingOp *op = m->ops;
                m->ops = op->next;
                if (op->add_cb)
                        op->add_cb(m, -ECANCELED, "kasamond is shutting down.", NULL, op->userdata);
                if (op->discover_cb)
                        op->discover_cb(m, -ECANCELED, NULL, 0, op->userdata);
                op_free(op);
        }
}
