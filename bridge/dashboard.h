/* SPDX-License-Identifier: MIT */
#pragma once

#include "bridge.h"

/* The static files of the dashboard from config.dashboard_dir ("/" is
 * index.html); only plain names in that directory are served. Answers and
 * frees the request. */
void dashboard_serve(Request *r, const char *path);
