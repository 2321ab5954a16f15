/* SPDX-License-Identifier: MIT */
#pragma once

#include <netinet/in.h>
#include <stddef.h>

/* "a.b.c.d" or "a.b.c.d:port"; the port defaults to KASA_PORT. */
int parse_address(const char *s, struct sockaddr_in *ret);
/* The same form back, without the port when it is KASA_PORT. */
void format_address(const struct sockaddr_in *sa, char *buf, size_t size);
