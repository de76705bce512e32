/* Internal interface of the JSON-RPC module to the worker. */
#ifndef FDT_SRC_JSONRPC_H
#define FDT_SRC_JSONRPC_H

#include "config/config.h"
#include "conn/conn.h"

#include <fdt/app.h>
#include <fdt/json.h>
#include <fdt/txn.h>
#include <stdbool.h>

struct fdt__jsonrpc_server;

/* The JSON-RPC side of one listener of a worker: the application's methods, the limits and
 * node of cfg, and what the listener allows (borrowed: both must outlive the server).
 * Returns NULL with a reason. Thread: the worker's main, before the application threads
 * start. */
struct fdt__jsonrpc_server *fdt__jsonrpc_server_new(const struct fdt_app *app,
                                                    const struct fdt_cfg *cfg,
                                                    const struct fdt_listen_cfg *listener,
                                                    char *reason, size_t rsize);
/* After the last connection. NULL is a no-op. */
void fdt__jsonrpc_server_free(struct fdt__jsonrpc_server *srv);

/* Fill p with the JSON-RPC protocol served by srv (which must outlive the connections). */
void fdt__proto_jsonrpc_init(struct fdt_proto *p, const struct fdt__jsonrpc_server *srv);

/* ---- The half of the protocol that needs no connection ----
 * Framing, request validation, the parameters of the built-in txn.* methods and error
 * answers are pure functions of their input, so that fuzz/fuzz_jsonrpc.c can drive them
 * without a worker; jsonrpc_proto.c's connection callbacks are built on them. */

/* Cut the next message out of buf[*pos, len): skip blank lines, trim spaces, tabs and a CR
 * around the message, move *pos past its newline. Returns true with the message in *line
 * and *n (at least one byte, inside buf), or false when no complete line is left (*pos is
 * then past the blank lines, at the start of an incomplete line or at len). */
bool fdt__jsonrpc_next_line(const char *buf, size_t len, size_t *pos, const char **line, size_t *n);

/* A message that is a valid JSON-RPC 2.0 request. Borrowed from the document it was parsed
 * into. */
struct fdt__jsonrpc_request {
    const struct fdt_json *id;     /* string, integer or null; NULL: a notification */
    const char *method;            /* 1 to 128 bytes, NUL-terminated, no NUL inside */
    const struct fdt_json *params; /* an object, an array, or NULL */
};

/* Parse one message (without its newline) into doc, cleared first, and check it is a
 * request. A message longer than max_line bytes is refused unread; limits (NULL: the
 * defaults) bound the parse. Returns 0 with *req filled, or the JSON-RPC error code to
 * answer (FDT_JSONRPC_PARSE_ERROR, FDT_JSONRPC_INVALID_REQUEST) with the message in
 * err->msg and req->id the id to answer with (NULL until the id itself is known valid).
 * err is required. Thread: the owner of doc. */
int fdt__jsonrpc_request_parse(struct fdt_json_doc *doc, const char *line, size_t len,
                               size_t max_line, const struct fdt_json_limits *limits,
                               struct fdt__jsonrpc_request *req, struct fdt_error *err);

/* Check the name and parameters of a built-in "txn.*" method before it runs. Returns 0
 * (with the xid of txn.begin, txn.commit_prepared and txn.rollback_prepared in *xid and
 * *has_xid), FDT_ENOENT for an unknown name (answered -32601) or FDT_EINVAL for bad
 * parameters (-32602), with err. */
int fdt__jsonrpc_builtin_params(const char *method, const struct fdt_json *params,
                                struct fdt_xid *xid, bool *has_xid, struct fdt_error *err);

/* Write the error answer {"jsonrpc":"2.0","error":{code,message},"id":...} to w, reset
 * first (id NULL writes null). The newline that ends it on the wire is the caller's. */
void fdt__jsonrpc_error_write(struct fdt_json_writer *w, const struct fdt_json *id, int code,
                              const char *message);

#endif
