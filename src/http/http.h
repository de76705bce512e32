/* Internal interface of the HTTP module to the worker. */
#ifndef FDT_SRC_HTTP_H
#define FDT_SRC_HTTP_H

#include "config/config.h"
#include "conn/conn.h"

#include <fdt/app.h>
#include <stddef.h>

/* Fill p with the HTTP protocol for app. Returns 0, or -1 with a reason (for example: the
 * application has no HTTP side, or the access log cannot be opened). Called once per
 * listener on the worker's main thread, before the application threads start. */
int fdt__proto_http_init(struct fdt_proto *p, const struct fdt_app *app, const struct fdt_cfg *cfg,
                         char *reason, size_t rsize);

/* Reopen the access log (SIGUSR1, after log rotation): the new file replaces the old one
 * under the same descriptor, so threads writing meanwhile never see a closed one.
 * Returns 0 (also when there is no access log) or -errno. Thread: the worker's main. */
int fdt__http_access_log_reopen(void);

#endif
