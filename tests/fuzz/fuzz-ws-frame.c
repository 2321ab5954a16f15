/* SPDX-License-Identifier: MIT */

/* WebSocket frames from clients, as the bridge reads a stream of them; and
 * the handshake key. */

#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "fuzz-check.h"
#include "ws-frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        g_autofree uint8_t *buf = g_memdup2(data, size);
        size_t off = 0;
        WsFrame f;

        while (off < size) {
                ssize_t n = ws_frame_parse(buf + off, size - off, 4096, &f);

                if (n <= 0) {
                        fuzz_assert(n == 0 || n == -EPROTO || n == -EMSGSIZE);
                        break;
                }
                fuzz_assert((size_t) n <= size - off && f.size <= 4096);
                fuzz_assert(f.payload >= buf + off && f.payload + f.size == buf + off + n);
                fuzz_assert(f.opcode <= 2 || (f.opcode >= 8 && f.opcode <= 10));
                fuzz_assert(f.opcode < 8 || (f.fin && f.size <= 125));
                off += (size_t) n;
        }
        if (size <= 64) {
                g_autofree char *key = g_strndup((const char *) data, size);
                g_autofree char *accept = ws_accept_key(key);
                fuzz_assert(!accept || strlen(accept) == 28);
        }
        return 0;
}
