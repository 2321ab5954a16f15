/* SPDX-License-Identifier: MIT */

/* A device's commands (switching, renaming) and raw queries: each a
 * request on the root's transport, its reply checked for the method's
 * err_code. */

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "device-internal.h"
#include "kasa-smart.h"
#include "macro.h"

/* A reply that lacks the command's err_code counts as the device refusing
 * the command's arguments (err_code -3), the answer firmwares give to a
 * command they cannot apply. */
#define ERR_CODE_NOT_ANSWERED (-3)

typedef struct Command Command;

/* One request of a command: a strip is switched outlet by outlet. */
typedef struct CommandPart {
        Command *cmd;
        Device *target;
        int error;
        int32_t device_err;
} CommandPart;

struct Command {
        Device *device;
        DeviceCommandFn cb;
        void *userdata;
        size_t pending;
        bool on;
        char alias[DEVICE_ALIAS_MAX];
        size_t n_parts;
        CommandPart parts[];
};

static Command *command_new(Device *d, size_t n_parts, DeviceCommandFn cb, void *userdata) {
        Command *cmd = calloc(1, sizeof(Command) + n_parts * sizeof(CommandPart));

        if (!cmd)
                return NULL;
        cmd->device = d;
        cmd->cb = cb;
        cmd->userdata = userdata;
        cmd->n_parts = n_parts;
        for (size_t i = 0; i < n_parts; i++)
                cmd->parts[i].cmd = cmd;
        return cmd;
}

static bool part_failed(const CommandPart *p) {
        return p->error < 0 || p->device_err != 0;
}

/* Errors of a part, from the reply's err_code for the method. */
static void part_set_result(CommandPart *p, int error, const char *json, size_t len, bool relay) {
        KasaResponse *resp = error < 0 ? NULL : device_parse_reply(p->target, json, len);
        int32_t err;

        if (!resp) {
                p->error = error ?: -EBADMSG;
                return;
        }
        err = relay ? resp->relay_err : resp->alias_err;
        p->device_err = err == KASA_ERR_ABSENT ? ERR_CODE_NOT_ANSWERED : err;
}

static void command_done(Command *cmd) {
        Device *d = cmd->device;
        _cleanup_free_ Device **lists = calloc(MAX(cmd->n_parts, 1u) * 2, sizeof(Device *));
        DeviceCommandResult res = { .on = cmd->on };

        if (lists) {
                res.switched = lists;
                res.failed = lists + cmd->n_parts;
        }
        for (size_t i = 0; i < cmd->n_parts; i++) {
                const CommandPart *p = &cmd->parts[i];
                if (part_failed(p)) {
                        if (res.error == 0 && res.device_err == 0) {
                                res.error = p->error;
                                res.device_err = p->device_err;
                        }
                        if (lists)
                                res.failed[res.n_failed++] = p->target;
                } else if (lists)
                        res.switched[res.n_switched++] = p->target;
        }
        device_notify(d);
        cmd->cb(d, &res, cmd->userdata);
        free(cmd);
}

static void set_on_state(Device *d, bool on) {
        if (d->on != on) {
                d->on = on;
                d->changes |= DEVICE_CHANGED_ON;
        }
}

/* A strip is on when any outlet is. */
static void strip_follow_outlets(Device *strip) {
        bool any = false;

        for (size_t i = 0; i < strip->n_outlets; i++)
                any = any || (strip->outlets[i] && strip->outlets[i]->on);
        set_on_state(strip, any);
}

static void on_relay_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        CommandPart *part = userdata;
        Command *cmd = part->cmd;
        Device *d = cmd->device;
        bool any = false;

        part_set_result(part, error, json, len, true);
        if (--cmd->pending > 0)
                return;

        /* What switched shows its new state, what did not keeps its old. */
        for (size_t i = 0; i < cmd->n_parts; i++) {
                Device *o = cmd->parts[i].target;
                if (part_failed(&cmd->parts[i]))
                        continue;
                any = true;
                set_on_state(o, cmd->on);
                if (o != d)
                        device_notify(o);
        }
        if (d->n_outlets > 0)
                strip_follow_outlets(d);
        if (d->parent) {
                strip_follow_outlets(d->parent);
                device_notify(d->parent);
        }
        /* Power follows the relay: read it now, not at the next tick. */
        if (any)
                (void) device_poll_now(d);
        command_done(cmd);
}

int device_set_on(Device *d, bool on, DeviceCommandFn cb, void *userdata) {
        Device *root = device_root(d);
        Device *single[] = { d };
        Command *cmd;
        size_t n = 0;
        int r;

        r = device_ensure_transport(root);
        if (r < 0)
                return r;
        /* A strip is switched outlet by outlet: firmwares differ on what a
         * request without context does. */
        Device **targets = d->n_outlets > 0 ? d->outlets : single;
        size_t n_targets = d->n_outlets > 0 ? d->n_outlets : 1;
        for (size_t i = 0; i < n_targets; i++)
                n += !!targets[i];
        if (n == 0)
                return -ENODEV;
        cmd = command_new(d, n, cb, userdata);
        if (!cmd)
                return -ENOMEM;
        cmd->on = on;

        n = 0;
        for (size_t i = 0; i < n_targets; i++)
                if (targets[i])
                        cmd->parts[n++].target = targets[i];
        for (size_t k = 0; k < n; k++) {
                Device *t = cmd->parts[k].target;
                const char *child = t->outlet >= 0 ? t->child_id : NULL;
                _cleanup_free_ char *q = root->smart ? kasa_smart_request_set_on(on, child)
                                                     : kasa_request_set_relay(on, child);

                r = q ? transport_request(root->transport, q, on_relay_reply, &cmd->parts[k]) : -ENOMEM;
                if (r < 0) {
                        if (cmd->pending == 0) {
                                free(cmd);
                                return r;
                        }
                        /* What is queued completes through the callback;
                         * the rest is reported as not switched. */
                        for (; k < n; k++)
                                cmd->parts[k].error = r;
                        break;
                }
                cmd->pending++;
        }
        return 0;
}

int device_toggle(Device *d, DeviceCommandFn cb, void *userdata) {
        /* A strip partly on is on: toggling switches every outlet off. */
        return device_set_on(d, !d->on, cb, userdata);
}

static void on_alias_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        CommandPart *part = userdata;
        Command *cmd = part->cmd;
        Device *d = cmd->device;

        part_set_result(part, error, json, len, false);
        /* The change mask tells the manager, which saves the new alias. */
        if (!part_failed(part))
                device_set_string(d, d->alias, sizeof(d->alias), cmd->alias, DEVICE_CHANGED_ALIAS);
        command_done(cmd);
}

int device_rename(Device *d, const char *alias, DeviceCommandFn cb, void *userdata) {
        _cleanup_free_ char *q = NULL;
        Device *root = device_root(d);
        Command *cmd;
        int r;

        /* The devices keep at most 31 bytes; refuse rather than truncate. */
        if (alias[0] == 0 || strlen(alias) > 31 || !g_utf8_validate(alias, -1, NULL))
                return -EINVAL;
        r = device_ensure_transport(root);
        if (r < 0)
                return r;
        q = (root->smart ? kasa_smart_request_set_nickname : kasa_request_set_alias)(
                alias, d->outlet >= 0 ? d->child_id : NULL);
        if (!q)
                return -ENOMEM;
        cmd = command_new(d, 1, cb, userdata);
        if (!cmd)
                return -ENOMEM;
        cmd->parts[0].target = d;
        cmd->pending = 1;
        snprintf(cmd->alias, sizeof(cmd->alias), "%s", alias);
        r = transport_request(root->transport, q, on_alias_reply, &cmd->parts[0]);
        if (r < 0) {
                free(cmd);
                return r;
        }
        return 0;
}

/* ---- queries ---- */

typedef struct Query {
        Device *device;
        DeviceReplyFn cb;
        void *userdata;
} Query;

static void on_query_reply(Transport *t, int error, const char *json, size_t len, void *userdata) {
        _cleanup_free_ Query *q = userdata;
        static KasaResponse resp;
        KasaError err = {};

        if (error == 0 && (device_root(q->device)->smart ? kasa_smart_response_parse
                                                          : kasa_response_parse)(json, len, &resp, &err) < 0)
                error = -EBADMSG;
        q->cb(q->device, error, error < 0 ? NULL : &resp, error == -EBADMSG ? err.message : NULL, q->userdata);
}

int device_query(Device *d, const char *json, DeviceReplyFn cb, void *userdata) {
        Device *root = device_root(d);
        Query *q;
        int r;

        r = device_ensure_transport(root);
        if (r < 0)
                return r;
        q = malloc(sizeof(Query));
        if (!q)
                return -ENOMEM;
        *q = (Query) { .device = d, .cb = cb, .userdata = userdata };
        r = transport_request(root->transport, json, on_query_reply, q);
        if (r < 0)
                free(q);
        return r;
}
