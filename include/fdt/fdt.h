/* Umbrella header for fdtserver applications: includes every public header.
 *
 * Conventions of the whole public API (each header's comments rely on them):
 *  - Errors: a function that can fail returns int: 0 on success or a negative code,
 *    -errno where one fits (FDT_ENOMEM, FDT_EINVAL, ...) or one of fdtserver's own
 *    (FDT_ECONFIG, FDT_ETXNSTATE, FDT_EOUTCOME, ...; fdt/error.h); never -1 with errno.
 *    An optional struct fdt_error *err (may be NULL) receives the code and a message a
 *    person can act on. Callbacks the application provides follow the same rule: return 0,
 *    or a negative code and fill err (process_init, thread_init, on_open, views, methods).
 *  - Yes/no answers are bool (fdt_conn_draining, fdt_json_bool_value).
 *  - Verbs: begin/end bracket a thing (fdt_txn_begin, fdt_http_begin ... fdt_http_end);
 *    vote/finish are the two phases of a transaction (fdt_txn_vote, fdt_txn_finish);
 *    commit/abort end a transaction in one step.
 *  - Descriptors the application fills (struct fdt_app, fdt_http_app,
 *    fdt_http_resource_type, fdt_jsonrpc_app) start with abi_version = their header's
 *    FDT_<X>_ABI_VERSION and size = sizeof(the struct), and end with reserved slots that
 *    stay zero; the server refuses a descriptor whose version differs or whose size does
 *    not reach the reserved slots.
 *  - Ownership and threads are said per function: "borrowed" results stay valid for the
 *    stated time; "Thread:" names who may call it.
 *  - Names: fdt_<object>_<verb>; types are struct fdt_<object>, never typedefs, except
 *    callback signatures (fdt_..._fn). */
#ifndef FDT_FDT_H
#define FDT_FDT_H

#include <fdt/app.h>
#include <fdt/code.h>
#include <fdt/common.h>
#include <fdt/conn.h>
#include <fdt/error.h>
#include <fdt/http.h>
#include <fdt/json.h>
#include <fdt/jsonrpc.h>
#include <fdt/log.h>
#include <fdt/txn.h>

/* The version of libfdt, e.g. "0.1.0". */
FDT_API const char *fdt_version(void);

/* Entry point of the fdtserver binary; its main() only calls this. */
FDT_API int fdt_server_main(int argc, char **argv);

/* Entry point of `fdtserver txn ...`, which the fdtserver binary's main() calls instead of
 * fdt_server_main: argv[0] is "txn", then list | commit GID | rollback GID and -c FILE.
 * Returns the exit status. */
FDT_API int fdt_server_txn_main(int argc, char **argv);

#endif
