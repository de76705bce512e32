/* The application interface: a shared object exporting one descriptor symbol.
 *
 *     FDT_APP_EXPORT const struct fdt_app fdt_app_v1 = {
 *         .abi_version = FDT_APP_ABI_VERSION,
 *         .size = sizeof(struct fdt_app),
 *         .name = "hello",
 *         ...
 *     };
 *
 * The worker loads the object with dlopen(RTLD_NOW | RTLD_LOCAL) after fork; the master
 * never loads it. Callbacks may run on any of the worker's `threads` application threads,
 * never two at once for the same connection. */
#ifndef FDT_APP_H
#define FDT_APP_H

#include <fdt/common.h>
#include <fdt/conn.h>
#include <fdt/error.h>
#include <sys/types.h>

struct fdt_http_app;
struct fdt_jsonrpc_app;

#define FDT_APP_ABI_VERSION 1
#define FDT_APP_SYMBOL      "fdt_app_v1"
#define FDT_APP_EXPORT      __attribute__((visibility("default")))

/* Facts about the running worker, for the application. */
struct fdt_worker_info {
    pid_t pid;
    unsigned generation; /* 1 for the first generation, +1 per reload */
    unsigned index;      /* worker slot within its generation */
    unsigned threads;    /* application threads in this worker */
};

struct fdt_app {
    uint32_t abi_version; /* FDT_APP_ABI_VERSION */
    uint32_t size;        /* sizeof(struct fdt_app) */
    const char *name;
    const char *version; /* shown in logs and status; [app] version overrides it */

    /* After fork, before any thread starts. Returns 0, or a negative FDT_E* code with err
     * filled: the worker start fails (and so a reload). May be NULL. */
    int (*process_init)(const struct fdt_worker_info *w, struct fdt_error *err);
    /* When the worker exits normally. May be NULL. */
    void (*process_fini)(void);
    /* On each application thread before it serves anything; index is 0..threads-1.
     * Returns 0, or a negative FDT_E* code with err: the worker start fails. May be NULL. */
    int (*thread_init)(unsigned index, struct fdt_error *err);
    void (*thread_fini)(unsigned index);

    /* Raw protocol (listeners with protocol = raw). */
    /* A connection was accepted. Returns 0, or a negative FDT_E* code: the connection is
     * closed at once. May be NULL. */
    int (*on_open)(struct fdt_conn *c);
    /* Bytes arrived. Return how many were consumed (0..len); unconsumed bytes are kept and
     * offered again with more data. A negative return closes the connection. The data
     * stays valid until the callback returns. */
    long (*on_data)(struct fdt_conn *c, const char *data, size_t len);
    /* The input buffer reached [server] max_input and on_data consumed nothing: write an
     * error if the protocol has one; the connection is closed afterwards. May be NULL. */
    void (*on_overflow)(struct fdt_conn *c);
    /* The connection is gone (peer closed, error, timeout, or fdt_conn_close). May be NULL.
     * An application with neither on_open nor on_close whose connection has no data
     * attached (fdt_conn_set_data) keeps no state per connection: on a reload, a retiring
     * worker hands such a connection, when it is between requests (all input consumed),
     * to a worker of the new generation, and the client never sees it close. Otherwise
     * the connection is closed between requests (docs/promises.md, promise 4). */
    void (*on_close)(struct fdt_conn *c);
    /* Sent to a connection refused because the worker is at max_connections. May be NULL. */
    const char *busy_reply;

    /* HTTP (listeners with protocol = http): see fdt/http.h. May be NULL. */
    const struct fdt_http_app *http;
    /* JSON-RPC (listeners with protocol = jsonrpc): see fdt/jsonrpc.h. May be NULL (the
     * built-in txn.* methods only). */
    const struct fdt_jsonrpc_app *jsonrpc;

    void *reserved[16];
};

/* Value of a key in the [app] section, or NULL. Borrowed for the life of the worker.
 * Thread: any. */
FDT_API const char *fdt_app_config(const char *key);

/* The running worker. Thread: any. */
FDT_API const struct fdt_worker_info *fdt_worker_info(void);

/* Index (0..threads-1) of the calling application thread, or -1 on any other thread. */
FDT_API int fdt_thread_index(void);

#endif
