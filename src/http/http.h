/* Internal interface of the HTTP module to the worker. */
#ifndef FDT_SRC_HTTP_H
#define FDT_SRC_HTTP_H

#include "config/config.h"
#include "conn/conn.h"
#include "proc/proc.h"

#include <fdt/app.h>
#include <stddef.h>

struct fdt__http_server;

/* The HTTP side of a worker, shared by all its http listeners: the application, the
 * limits of cfg (borrowed: it must outlive the server) and the access log. Returns NULL
 * with a reason (for example: the application has no HTTP side, or the access log cannot
 * be opened). Thread: the worker's main, before the application threads start. */
struct fdt__http_server *fdt__http_server_new(const struct fdt_app *app, const struct fdt_cfg *cfg,
                                              char *reason, size_t rsize);
/* The HTTP server of a `protocol = metrics` listener: no application; GET /metrics answers
 * with the metrics of sb (which must outlive it), anything else 404. */
struct fdt__http_server *fdt__http_metrics_server_new(const struct fdt_cfg *cfg,
                                                      const struct fdt_scoreboard *sb, char *reason,
                                                      size_t rsize);
/* After the last connection. NULL is a no-op. */
void fdt__http_server_free(struct fdt__http_server *srv);

/* Fill p with the HTTP protocol served by srv (which must outlive the connections). */
void fdt__proto_http_init(struct fdt_proto *p, const struct fdt__http_server *srv);

/* Reopen the access log (SIGUSR1, after log rotation): the new file replaces the old one
 * under the same descriptor, so threads writing meanwhile never see a closed one.
 * Returns 0 (also when there is no access log) or -errno. Thread: the worker's main. */
int fdt__http_access_log_reopen(const struct fdt__http_server *srv);

#endif
