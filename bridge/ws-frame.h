/* SPDX-License-Identifier: MIT */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* RFC 6455 framing, pure: parsing what a client sends (masked frames) and
 * writing the server's (unmasked). Fuzzed by tests/fuzz/fuzz-ws-frame.c. */

enum {
        WS_OP_CONTINUATION = 0x0,
        WS_OP_TEXT = 0x1,
        WS_OP_BINARY = 0x2,
        WS_OP_CLOSE = 0x8,
        WS_OP_PING = 0x9,
        WS_OP_PONG = 0xa,
};

typedef struct WsFrame {
        bool fin;
        uint8_t opcode;
        uint8_t *payload; /* inside the parsed buffer, unmasked in place */
        size_t size;
} WsFrame;

/* Parses one frame at the start of buf. Returns the bytes it takes (> 0),
 * 0 when more bytes are needed, -EPROTO for a frame RFC 6455 forbids from
 * a client (unmasked, reserved bits or opcodes, a long or fragmented
 * control frame), -EMSGSIZE for a payload above max_payload. */
ssize_t ws_frame_parse(uint8_t *buf, size_t size, size_t max_payload, WsFrame *ret);

void ws_frame_append(GByteArray *out, uint8_t opcode, const void *data, size_t size);

/* The Sec-WebSocket-Accept value for a client's key; NULL if the key is not
 * 16 bytes in base64. */
char *ws_accept_key(const char *key);
