/* SPDX-License-Identifier: MIT */

/* AddDevice and Discover: operations that outlive the call that started
 * them, and the periodic and address-change discoveries. */

#include "manager.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "kasa-dbus.h"
#include "kasa-time.h"
#include "log.h"
#include "manager-internal.h"

typedef struct PendingOp PendingOp;
struct PendingOp {
        Manager *manager;
        PendingOp *next;
        /* AddDevice */
        Transport *transport;
        char address[32];
        struct sockaddr_in sa;
        ManagerAddFn add_cb;
        KasaSysinfo *sysinfo;      /* what the device said, registered from the loop */
        int add_error;
        char add_message[256];
        /* Discover */
        DiscoveryRun *run;
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
        discovery_run_free(op->run);
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

static void on_add_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        PendingOp *op = userdata;
        static KasaResponse resp;
        char *msg = op->add_message;
        size_t size = sizeof(op->add_message);
        KasaError err;
        int r = error;

        if (error == -ECANCELED)
                return; /* manager shutting down: op_free answers */
        if (r < 0)
                snprintf(msg, size, "No Kasa device answered at %s: %s.", op->address, strerror(-r));
        else if (kasa_response_parse(json, len, &resp, &err) < 0) {
                r = -EBADMSG;
                if (snprintf(msg, size, "The device at %s sent a malformed reply: %s", op->address, err.message) >=
                    (int) size)
                        msg[size - 1] = 0;
        } else if (resp.sysinfo_err != 0) {
                r = -EBADMSG;
                snprintf(msg, size, "The device at %s refused get_sysinfo: err_code %d (%s).", op->address,
                         resp.sysinfo_err, kasa_err_to_string(resp.sysinfo_err));
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

int manager_add_address(Manager *m, const char *address, ManagerAddFn cb, void *userdata) {
        _cleanup_free_ char *q = NULL;
        PendingOp *op;
        int r;

        op = op_new(m, userdata);
        if (!op)
                return -ENOMEM;
        op->add_cb = cb;
        r = parse_address(address, &op->sa);
        if (r < 0)
                goto fail;
        format_address(&op->sa, op->address, sizeof(op->address));
        r = transport_xor_new(&(TransportConfig) {
                        .event = m->event,
                        .address = op->sa,
                        .timeout_usec = m->config.poll_timeout_usec,
                        .max_reply = m->config.max_frame_size,
                }, &op->transport);
        if (r < 0)
                goto fail;
        q = kasa_request_query(KASA_QUERY_SYSINFO, NULL);
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

static void on_discovery_done(DiscoveryRun *run, int error, void *userdata) {
        PendingOp *op = userdata;
        Manager *m = op->manager;

        op->run = NULL; /* freed by discovery itself after this */
        m->discovering--;
        register_queued(op);
        if (op->discover_cb)
                op->discover_cb(m, error, (Device **) (op->found ? op->found->pdata : NULL),
                                op->found ? op->found->len : 0, op->userdata);
        op->discover_cb = NULL;
        op_finish_later(op);
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
