/* Internal interface of the JSON-RPC module to the worker. */
#ifndef FDT_JSONRPC_INT_H
#define FDT_JSONRPC_INT_H

#include "config/config.h"
#include "conn/conn.h"

#include <fdt/app.h>

/* Fill p with the JSON-RPC protocol for app. Returns 0, or -1 with a reason. */
int fdt__proto_jsonrpc_init(struct fdt_proto *p, const struct fdt_app *app,
                            const struct fdt_cfg *cfg, char *reason, size_t rsize);

#endif
