/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-event.h>

#include "export.h"

/* Streams an export into a pipe from the event loop: returns the pipe's
 * read end (the caller's, close-on-exec) and writes the export into the
 * other end as the reader takes it, one export_step() per time the pipe
 * has room, so the daemon holds one window of rows at a time however slow
 * the reader is. Takes e (freed on every path). The writer ends quietly
 * when the reader goes away; a store error ends the text early (the
 * reader sees a truncated export: CSV without its last rows, JSON without
 * its closing bracket) and is logged. */
int export_pipe_start(sd_event *event, Export *e, int *ret_fd);
