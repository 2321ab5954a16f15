/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Time units, as systemd spells them; microseconds are what sd-event and
 * the bus use. */
#define NSEC_PER_USEC UINT64_C(1000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MINUTE (60 * USEC_PER_SEC)
#define USEC_PER_HOUR (60 * USEC_PER_MINUTE)
#define USEC_PER_DAY (24 * USEC_PER_HOUR)
