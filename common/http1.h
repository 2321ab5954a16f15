/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Just enough HTTP/1.1 for KLAP and AES devices: a request writer and an
 * incremental parser of one message (a device's response, or a client's
 * request for kasa-sim). Pure code, no sockets. The devices' web servers
 * are small and always send Content-Length; the parser is strict about
 * everything else and refuses, with a clear message, whatever it does not
 * need: chunked or other transfer codings, 1xx interim responses, header
 * blocks or bodies past their limits, bytes that are not HTTP.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kasa-proto.h"

/* Status line (or request line) and headers together. */
#define HTTP1_HEADER_MAX 8192u
#define HTTP1_HEADERS_MAX 64u
#define HTTP1_BODY_MAX_DEFAULT (64u * 1024u)
#define HTTP1_COOKIE_MAX 256u
#define HTTP1_TARGET_MAX 256u

typedef enum Http1Kind {
        HTTP1_RESPONSE,
        HTTP1_REQUEST,
} Http1Kind;

/* What the parser keeps of one message. */
typedef struct Http1Message {
        int status;                          /* responses */
        char method[8];                      /* requests */
        char target[HTTP1_TARGET_MAX];       /* requests */
        /* First cookie of the first Set-Cookie (responses) or of Cookie
         * (requests), as "name=value". */
        char cookie[HTTP1_COOKIE_MAX];
        /* The Set-Cookie's TIMEOUT attribute (seconds; the TP-Link devices'
         * own) or Max-Age, 0 when absent. */
        uint64_t cookie_timeout;
        bool close;                          /* "Connection: close" */
        uint8_t *body;                       /* NUL-terminated, owned */
        size_t body_len;
} Http1Message;

typedef struct Http1Parser {
        Http1Kind kind;
        size_t max_body;
        char head[HTTP1_HEADER_MAX];
        size_t head_have;
        bool in_body;
        bool failed;
        size_t body_have;
        Http1Message msg;
} Http1Parser;

void http1_parser_init(Http1Parser *p, Http1Kind kind, size_t max_body);
/* Forget a partial message (and a complete one not taken). */
void http1_parser_reset(Http1Parser *p);
/* Consumes up to len bytes (*ret_consumed says how many). Returns 1 when a
 * message is complete: take it with http1_parser_take(). Returns 0 when
 * more bytes are needed. Returns -EBADMSG (malformed), -EMSGSIZE (past a
 * limit) or -EPROTONOSUPPORT (chunked, 1xx, HTTP/2...), with err saying
 * why; the parser must then be reset. */
int http1_parser_feed(Http1Parser *p, const uint8_t *data, size_t len, size_t *ret_consumed, KasaError *err);
/* Moves the complete message out (its body becomes the caller's) and makes
 * the parser ready for the next one. */
void http1_parser_take(Http1Parser *p, Http1Message *ret);
bool http1_parser_busy(const Http1Parser *p);

void http1_message_done(Http1Message *m);

#define HTTP1_OCTET_STREAM "application/octet-stream"
#define HTTP1_JSON "application/json"

/* "POST <path> HTTP/1.1" with Host, Content-Type, Content-Length, the
 * cookie ("name=value", may be NULL) and the body. -EINVAL for a CR, LF
 * or NUL in path, host or cookie. KLAP's body is binary, AES's JSON. */
int http1_request_write(const char *path, const char *host, const char *cookie, const uint8_t *body,
                        size_t body_len, uint8_t **ret, size_t *ret_len);
int http1_request_write_type(const char *path, const char *host, const char *content_type, const char *cookie,
                             const uint8_t *body, size_t body_len, uint8_t **ret, size_t *ret_len);
/* A response with Content-Length, the Set-Cookie value (may be NULL) and
 * the body; for kasa-sim. */
int http1_response_write(int status, const char *set_cookie, bool close, const uint8_t *body, size_t body_len,
                         uint8_t **ret, size_t *ret_len);
int http1_response_write_type(int status, const char *content_type, const char *set_cookie, bool close,
                              const uint8_t *body, size_t body_len, uint8_t **ret, size_t *ret_len);
