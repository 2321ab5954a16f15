/* SPDX-License-Identifier: MIT */

/* HTTP/1.1 responses from a KLAP device (or whatever answers on its port),
 * and requests to kasa-sim. The first byte picks the kind and how the rest
 * is chunked, since the parser must give the same answer in any chunking. */

#include <stdint.h>

#include "fuzz-check.h"
#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Http1Parser p;
        KasaError err = {};
        size_t off = 1, chunk;
        int r = 0;

        if (size < 1)
                return 0;
        chunk = (data[0] & 0x7f) + 1u;
        http1_parser_init(&p, data[0] & 0x80 ? HTTP1_REQUEST : HTTP1_RESPONSE, 4096);
        while (off < size) {
                size_t used, n = chunk < size - off ? chunk : size - off;

                r = http1_parser_feed(&p, data + off, n, &used, &err);
                fuzz_assert(used <= n);
                off += used;
                if (r < 0) {
                        fuzz_assert(r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT);
                        fuzz_check_string(err.message, sizeof(err.message));
                        fuzz_assert(err.message[0]);
                        break;
                }
                if (r == 1) {
                        Http1Message m;

                        http1_parser_take(&p, &m);
                        fuzz_assert(m.body_len <= 4096 && m.body[m.body_len] == 0);
                        fuzz_check_string(m.cookie, sizeof(m.cookie));
                        fuzz_check_string(m.target, sizeof(m.target));
                        fuzz_check_string(m.method, sizeof(m.method));
                        if (!(data[0] & 0x80))
                                fuzz_assert(m.status >= 200 && m.status <= 599);
                        else
                                fuzz_assert(m.target[0] == '/' && m.method[0]);
                        http1_message_done(&m);
                } else
                        fuzz_assert(used == n);
        }
        http1_parser_reset(&p);
        return 0;
}
