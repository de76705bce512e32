/* Metrics in the Prometheus text exposition format (version 0.0.4), rendered from the
 * scoreboard alone: every figure is a sum or a reading of shared memory that the workers
 * and the master keep up to date as they go, so a scrape never asks a worker anything and
 * never waits for one. The master renders them for `fdtctl metrics`; a worker renders the
 * same for a listener with `protocol = metrics`. docs/operations.md lists every metric. */
#ifndef FDT_SRC_METRICS_H
#define FDT_SRC_METRICS_H

#include "proc/proc.h"
#include "util/buf.h"

/* The content type of the exposition format. */
#define FDT_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Append the metrics of sb to out. Returns 0, or FDT_ENOMEM / FDT_ELIMIT when out cannot
 * hold them (out then holds a part). Thread: any; never blocks. */
int fdt__metrics_render(const struct fdt_scoreboard *sb, struct fdt_buf *out);

#endif
