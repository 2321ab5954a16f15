/* SPDX-License-Identifier: MIT */

#include "address.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kasa-proto.h"

int parse_address(const char *s, struct sockaddr_in *ret) {
        char host[INET_ADDRSTRLEN];
        const char *colon = strchr(s, ':');
        size_t n = colon ? (size_t) (colon - s) : strlen(s);
        unsigned long port = KASA_PORT;
        struct in_addr a;

        if (n == 0 || n >= sizeof(host))
                return -EINVAL;
        memcpy(host, s, n);
        host[n] = 0;
        if (inet_pton(AF_INET, host, &a) != 1)
                return -EINVAL;
        if (colon) {
                char *end;
                errno = 0;
                port = strtoul(colon + 1, &end, 10);
                if (errno || *end || end == colon + 1 || port == 0 || port > 65535)
                        return -EINVAL;
        }
        *ret = (struct sockaddr_in) {
                .sin_family = AF_INET,
                .sin_port = htons((uint16_t) port),
                .sin_addr = a,
        };
        return 0;
}

void format_address(const struct sockaddr_in *sa, char *buf, size_t size) {
        char host[INET_ADDRSTRLEN];

        inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
        if (ntohs(sa->sin_port) == KASA_PORT)
                snprintf(buf, size, "%s", host);
        else
                snprintf(buf, size, "%s:%u", host, ntohs(sa->sin_port));
}
