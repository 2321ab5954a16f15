/* SPDX-License-Identifier: MIT */

#include "ws-frame.h"

#include <errno.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ssize_t ws_frame_parse(uint8_t *buf, size_t size, size_t max_payload, WsFrame *ret) {
        size_t head = 2, len;
        uint8_t *mask;

        if (size < 2)
                return 0;
        if (buf[0] & 0x70)
                return -EPROTO; /* no extension was negotiated */
        ret->fin = buf[0] & 0x80;
        ret->opcode = buf[0] & 0x0f;
        if ((ret->opcode > WS_OP_BINARY && ret->opcode < WS_OP_CLOSE) || ret->opcode > WS_OP_PONG)
                return -EPROTO;
        if (!(buf[1] & 0x80))
                return -EPROTO; /* clients must mask */
        len = buf[1] & 0x7f;
        if (ret->opcode >= WS_OP_CLOSE && (len > 125 || !ret->fin))
                return -EPROTO;
        if (len == 126) {
                if (size < 4)
                        return 0;
                len = (size_t) buf[2] << 8 | buf[3];
                if (len < 126)
                        return -EPROTO; /* not the shortest form */
                head = 4;
        } else if (len == 127) {
                uint64_t l = 0;
                if (size < 10)
                        return 0;
                for (int i = 0; i < 8; i++)
                        l = l << 8 | buf[2 + i];
                if (l >> 63)
                        return -EPROTO;
                if (l < 65536)
                        return -EPROTO;
                if (l > max_payload)
                        return -EMSGSIZE;
                len = (size_t) l;
                head = 10;
        }
        if (len > max_payload)
                return -EMSGSIZE;
        if (size < head + 4 || size - head - 4 < len)
                return 0;
        mask = buf + head;
        ret->payload = buf + head + 4;
        ret->size = len;
        for (size_t i = 0; i < len; i++)
                ret->payload[i] ^= mask[i & 3];
        return (ssize_t) (head + 4 + len);
}

void ws_frame_append(GByteArray *out, uint8_t opcode, const void *data, size_t size) {
        uint8_t head[10];
        size_t n = 2;

        head[0] = 0x80 | opcode;
        if (size < 126)
                head[1] = (uint8_t) size;
        else if (size <= 0xffff) {
                head[1] = 126;
                head[2] = (uint8_t) (size >> 8);
                head[3] = (uint8_t) size;
                n = 4;
        } else {
                head[1] = 127;
                for (int i = 0; i < 8; i++)
                        head[2 + i] = (uint8_t) ((uint64_t) size >> (56 - 8 * i));
                n = 10;
        }
        g_byte_array_append(out, head, (guint) n);
        if (size > 0)
                g_byte_array_append(out, data, (guint) size);
}

char *ws_accept_key(const char *key) {
        g_autoptr(GChecksum) sha1 = NULL;
        g_autofree guchar *raw = NULL;
        guint8 digest[20];
        gsize n = sizeof(digest), raw_size = 0;

        if (!key || strlen(key) != 24)
                return NULL;
        for (const char *p = key; *p; p++)
                if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=')
                        return NULL;
        raw = g_base64_decode(key, &raw_size);
        if (raw_size != 16)
                return NULL;
        sha1 = g_checksum_new(G_CHECKSUM_SHA1);
        g_checksum_update(sha1, (const guchar *) key, -1);
        g_checksum_update(sha1, (const guchar *) WS_GUID, -1);
        g_checksum_get_digest(sha1, digest, &n);
        return g_base64_encode(digest, n);
}
