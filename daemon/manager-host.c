/* SPDX-License-Identifier: MIT */

/* The manager as its devices see it (DeviceHostOps). */

#include "manager.h"

static void host_record(void *userdata, Device *d, const StoreSample *sample) {
        manager_record(userdata, d, sample);
}

static void host_changed(void *userdata, Device *d) {
        manager_device_changed(userdata, d);
}

static int64_t host_now_ms(void *userdata) {
        return manager_now_ms(userdata);
}

static int64_t host_day_start(void *userdata, int64_t ts_ms) {
        return manager_day_start(userdata, ts_ms);
}

static int host_new_transport(void *userdata, Device *d, Transport **ret) {
        Manager *m = userdata;
        TransportConfig c = {
                .event = m->event,
                .net = m->device_host.net,
                .address = d->sockaddr,
                .timeout_usec = m->config.poll_timeout_usec,
                .max_reply = m->config.max_frame_size,
                .user = m->credentials.user,
                .password = m->credentials.password,
                .rsa_keys = m->rsa_keys,
        };

        return d->klap ? transport_http_new(&c, ret) : transport_xor_new(&c, ret);
}

const DeviceHostOps manager_device_host_ops = {
        .record = host_record,
        .changed = host_changed,
        .now_ms = host_now_ms,
        .day_start = host_day_start,
        .new_transport = host_new_transport,
};
