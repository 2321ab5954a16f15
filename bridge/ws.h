/* SPDX-License-Identifier: MIT */
#pragma once

#include "bridge.h"

/* The live stream at /ws: one JSON message per device change, device
 * added/removed, kasamond up/down (with the open alerts), alert fired,
 * acknowledged or resolved. Each client's unsent bytes are bounded
 * by max_queue: a client that falls further behind is dropped, so a
 * client that never reads costs at most that much memory. */

#define WS_CLIENTS_MAX 256
#define WS_MESSAGE_MAX 4096 /* what a client may send in one message */
#define WS_CLOSE_TIMEOUT_SEC 5 /* a close frame not read by then: the client is dropped */

struct WsServer {
        Bridge *bridge;
        GList *clients;
        unsigned n_clients;
        size_t max_queue;
        uint64_t dropped;
        uint64_t sent;
};

int ws_server_new(Bridge *b, size_t max_queue, WsServer **ret);
WsServer *ws_server_free(WsServer *ws);

/* TokenRevoked: closes that token's WebSockets with 1008. */
void ws_revoked(WsServer *ws, const char *token_id);

/* Upgrades an authenticated request on /ws; answers and frees it. */
void ws_accept(WsServer *ws, Request *r);
