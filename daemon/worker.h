/* SPDX-License-Identifier: MIT */
#pragma once

/* Work off the event loop: a few threads run jobs that take long (a cost
 * query over a year of a hundred plugs), and each job's done() runs on
 * the loop when its thread has finished with it, woken by an eventfd.
 * run() must touch nothing the loop touches (it gets its inputs copied
 * into the job, and reads only what is safe from any thread, as the
 * store is); done() may use everything (the bus, the manager). */

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct Worker Worker;
typedef struct WorkerJob WorkerJob;

struct WorkerJob {
        /* On a worker thread. */
        void (*run)(WorkerJob *j);
        /* On the loop, once: after run(); cancelled when the worker is
         * freed first (run() may or may not have run). Frees the job. */
        void (*done)(WorkerJob *j, bool cancelled);
        WorkerJob *next;
};

/* threads running at once, and queued: jobs waiting beyond them. */
int worker_new(sd_event *e, unsigned threads, unsigned queued, Worker **ret);
/* Cancels what waits, waits for what runs, calls every done() left. */
Worker *worker_free(Worker *w);
/* -EAGAIN when threads + queued jobs are pending already; the job is not
 * taken then. */
int worker_submit(Worker *w, WorkerJob *j);
/* Jobs submitted and not yet done. */
unsigned worker_pending(const Worker *w);
