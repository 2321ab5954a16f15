/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The owner's TP-Link account, for KLAP devices bound to it: from systemd's
 * credentials directory (LoadCredential=tplink:PATH gives
 * $CREDENTIALS_DIRECTORY/tplink) or else from [Credentials] File=. The
 * file holds two lines, the account's e-mail and its password; it must
 * not be readable by group or others. The strings are never logged and
 * never put on the bus.
 */

#define CREDENTIALS_NAME "tplink"
#define CREDENTIALS_LINE_MAX 256

typedef struct Credentials {
        char *user;
        char *password;
} Credentials;

/* 0 with both set, 0 with both NULL when there is no file (the vendor's
 * default and blank credentials still work for unbound devices), or a
 * negative errno with *ret_error saying why (caller frees): -EPERM for a
 * file readable by others, -EBADMSG for one not of two lines. */
int credentials_load(const char *credentials_dir, const char *file, Credentials *ret, char **ret_error);
void credentials_done(Credentials *c);
