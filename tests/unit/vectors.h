/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Test vectors computed by a Python script (klap-vectors.py,
 * aes-vectors.py): lines of "case.field hex", "#" comments. One test
 * binary is one translation unit, so the table is a static here, as in
 * tap.h. vector() ends the test when a field is missing.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "tap.h"

typedef struct Field {
        char name[64];
        uint8_t *data;
        size_t len;
} Field;

static Field fields[256];
static size_t n_fields;

static int unhex(const char *s, uint8_t **ret, size_t *ret_len) {
        size_t n = strlen(s);
        uint8_t *b;

        if (n % 2)
                return -EINVAL;
        b = malloc(n / 2 + 1);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        return free(b), -EINVAL;
                b[i] = (uint8_t) v;
        }
        b[n / 2] = 0;
        *ret = b;
        *ret_len = n / 2;
        return 0;
}

static int vectors_load(const char *path) {
        _cleanup_free_ char *line = NULL;
        size_t size = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return -errno;
        while (getline(&line, &size, f) > 0 && n_fields < ELEMENTSOF(fields)) {
                char *sp;

                line[strcspn(line, "\n")] = 0;
                if (line[0] == '#' || !line[0])
                        continue;
                sp = strchr(line, ' ');
                if (!sp || (size_t) (sp - line) >= sizeof(fields[0].name))
                        continue;
                *sp = 0;
                snprintf(fields[n_fields].name, sizeof(fields[0].name), "%s", line);
                if (unhex(sp + 1, &fields[n_fields].data, &fields[n_fields].len) < 0)
                        continue;
                n_fields++;
        }
        fclose(f);
        return n_fields > 0 ? 0 : -ENODATA;
}

static const Field *vector(const char *c, const char *name) {
        char full[64];

        snprintf(full, sizeof(full), "%s.%s", c, name);
        for (size_t i = 0; i < n_fields; i++)
                if (strcmp(fields[i].name, full) == 0)
                        return &fields[i];
        diag("vector %s missing", full);
        exit(EXIT_FAILURE);
}

static bool same(const void *a, size_t a_len, const Field *f) {
        return a_len == f->len && memcmp(a, f->data, a_len) == 0;
}
