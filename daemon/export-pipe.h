/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-event.h>

#include "export.h"

/* The exports in progress, each streamed into a pipe. A step of an export
 * (export_step(): the store's next window, the costs of its rows, the
 * text) runs on a worker thread once the text before it is written, so
 * the daemon holds one window of rows per export however slow the reader
 * is, and its loop never waits on the store or the pricing. The writer
 * ends quietly when the reader goes away; an error ends the text early
 * (the reader sees a truncated export: CSV without its last rows, JSON
 * without its closing bracket) and is logged. */
typedef struct ExportPipes ExportPipes;

/* At most max exports at once. */
int export_pipes_new(sd_event *event, unsigned max, ExportPipes **ret);
/* Ends every export (waiting for a step that runs): before the store goes. */
ExportPipes *export_pipes_free(ExportPipes *l);
unsigned export_pipes_running(const ExportPipes *l);

/* Takes e (freed on every path) and returns the pipe's read end (the
 * caller's, close-on-exec). -EAGAIN when max exports run already. */
int export_pipes_start(ExportPipes *l, Export *e, int *ret_fd);
