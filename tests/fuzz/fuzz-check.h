/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Invariants every codec result must keep, whatever the input. A fuzzer
 * only notices crashes, so a broken invariant is turned into one.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-proto.h"

#define fuzz_assert(cond)                 \
        do {                              \
                if (!(cond))              \
                        abort();          \
        } while (0)

static inline void fuzz_check_string(const char *s, size_t size) {
        fuzz_assert(memchr(s, 0, size));
}

/* A refusal is -EBADMSG with a non-empty, terminated reason. */
static inline void fuzz_check_refusal(int r, const KasaError *err) {
        fuzz_assert(r == -EBADMSG);
        fuzz_check_string(err->message, sizeof(err->message));
        fuzz_assert(err->message[0] != 0);
}

static inline void fuzz_check_sysinfo(const KasaSysinfo *si) {
        char mac[18];

        fuzz_check_string(si->alias, sizeof(si->alias));
        fuzz_check_string(si->model, sizeof(si->model));
        fuzz_check_string(si->device_id, sizeof(si->device_id));
        fuzz_check_string(si->type, sizeof(si->type));
        fuzz_check_string(si->feature, sizeof(si->feature));
        fuzz_assert(si->model[0] && si->device_id[0]);
        /* The MAC is canonical: normalising it again changes nothing. */
        fuzz_assert(strlen(si->mac) == 17);
        fuzz_assert(kasa_mac_normalize(si->mac, mac) == 0 && strcmp(mac, si->mac) == 0);
        fuzz_assert(si->n_children <= KASA_CHILDREN_MAX);
        for (size_t i = 0; i < si->n_children; i++) {
                fuzz_check_string(si->children[i].id, sizeof(si->children[i].id));
                fuzz_check_string(si->children[i].alias, sizeof(si->children[i].alias));
                fuzz_assert(si->children[i].id[0] && si->children[i].on_time >= 0);
        }
        fuzz_assert(!si->has_rssi || (si->rssi <= 0 && si->rssi >= -200));
}

static inline void fuzz_check_response(const KasaResponse *resp) {
        if (resp->sysinfo_err == 0)
                fuzz_check_sysinfo(&resp->sysinfo);
        if (resp->realtime_err == 0) {
                const KasaRealtime *rt = &resp->realtime;
                fuzz_assert(rt->style == KASA_UNITS_FLOAT || rt->style == KASA_UNITS_MILLI);
                fuzz_assert(rt->voltage_mv >= 0 && rt->current_ma >= 0 && rt->total_mwh >= 0);
        }
        fuzz_assert(resp->n_stats <= KASA_STATS_MAX);
        if (resp->energy_data_err == 0) {
                const KasaEnergyData *e = &resp->energy_data;
                fuzz_assert(e->n <= KASA_ENERGY_DATA_MAX && e->start_s >= 0);
                fuzz_assert(e->interval_min == 60 || e->interval_min == 1440 || e->interval_min == 43200);
                for (size_t i = 0; i < e->n; i++)
                        fuzz_assert(e->energy_mwh[i] >= 0 && e->energy_mwh[i] <= KASA_ENERGY_MAX_MWH);
        }
        for (size_t i = 0; i < resp->n_stats; i++) {
                const KasaStat *s = &resp->stats[i];
                fuzz_assert(s->month >= 1 && s->month <= 12 && s->day >= 0 && s->day <= 31);
                fuzz_assert(s->energy_mwh >= 0);
        }
}
