/* JSON-RPC 2.0 over TCP: one JSON object per line, the protocol where a connection owns a
 * transaction across calls (listeners with protocol = jsonrpc).
 *
 * Each call of an application method runs in a transaction: the connection's, between
 * txn.begin and its end, or else a root transaction of its own, committed when the method
 * succeeds (and run again on a conflict, as fdt_txn_run does) and rolled back when it
 * fails. Built-in methods: txn.begin, txn.vote, txn.finish, txn.abort, txn.recover,
 * txn.commit_prepared, txn.rollback_prepared (see docs/jsonrpc.md). */
#ifndef FDT_JSONRPC_H
#define FDT_JSONRPC_H

#include <fdt/common.h>
#include <fdt/conn.h>
#include <fdt/error.h>
#include <fdt/json.h>
#include <fdt/txn.h>

/* Standard JSON-RPC 2.0 error codes. */
#define FDT_JSONRPC_PARSE_ERROR      (-32700)
#define FDT_JSONRPC_INVALID_REQUEST  (-32600)
#define FDT_JSONRPC_METHOD_NOT_FOUND (-32601)
#define FDT_JSONRPC_INVALID_PARAMS   (-32602)
#define FDT_JSONRPC_INTERNAL_ERROR   (-32603)
/* Ours (the server-error range -32000..-32099). */
#define FDT_JSONRPC_TXN_STATE       (-32010) /* not valid in this transaction state */
#define FDT_JSONRPC_TXN_UNKNOWN     (-32011) /* no such transaction (xid) */
#define FDT_JSONRPC_ROLLED_BACK     (-32012) /* the transaction was rolled back (reason given) */
#define FDT_JSONRPC_OUTCOME_UNKNOWN (-32013) /* phase two failed: recovery will finish it */
#define FDT_JSONRPC_CONFLICT        (-32014) /* a conflict; the client may try again */
#define FDT_JSONRPC_APP_ERROR       (-32000) /* the method failed (message given) */
#define FDT_JSONRPC_LIMIT           (-32020) /* a configured limit was reached */

/* One call being handled. Valid until the method returns. */
struct fdt_jsonrpc_call;

/* A method: read params (may be NULL when the call has none), write exactly one JSON value
 * (the result) with w, return 0. Or return a negative code with err filled: the client gets
 * an error object (FDT_EINVAL: -32602 invalid params; FDT_ERETRY: the call's own root
 * transaction runs again; any other: -32000 with err->msg, or set a code with
 * fdt_jsonrpc_set_error_code()). Runs on an application thread; may block. */
typedef int (*fdt_jsonrpc_fn)(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                              struct fdt_json_writer *w, struct fdt_error *err);

struct fdt_jsonrpc_method {
    const char *name;
    fdt_jsonrpc_fn fn;
};

/* What an application exports for JSON-RPC: struct fdt_app's jsonrpc member. */
#define FDT_JSONRPC_ABI_VERSION 1

struct fdt_jsonrpc_app {
    uint32_t abi_version; /* FDT_JSONRPC_ABI_VERSION */
    uint32_t size;        /* sizeof(struct fdt_jsonrpc_app) */
    const struct fdt_jsonrpc_method *methods;
    size_t n_methods;
    void *reserved[8];
};

/* The transaction the call runs in (never NULL for application methods). */
FDT_API struct fdt_txn *fdt_jsonrpc_txn(struct fdt_jsonrpc_call *call);
/* The connection the call came on. */
FDT_API struct fdt_conn *fdt_jsonrpc_conn(struct fdt_jsonrpc_call *call);
/* The name of the method called (as in the method table). Borrowed until the method
 * returns. Lets one function serve several methods (the Python host does). */
FDT_API const char *fdt_jsonrpc_method(const struct fdt_jsonrpc_call *call);
/* Answer with this JSON-RPC error code instead of the default for the returned error. */
FDT_API void fdt_jsonrpc_set_error_code(struct fdt_jsonrpc_call *call, int code);

#endif
