/* The Python application host: a loadable module, fdt_python.so, that serves a WSGI
 * application ([app] wsgi) and Python JSON-RPC methods ([app] jsonrpc) as an ordinary
 * struct fdt_app. The worker loads it after fork
 * in place of an application .so (worker/app_load.c), so that only workers ever map
 * libpython: the master never does (design §3b, §5).
 *
 * The module exports one symbol, FDT_PYTHON_ENTRY (a fdt_python_entry_fn): given the
 * settings below it returns the application descriptor, whose process_init starts the
 * interpreter and imports the application. It uses only libfdt's public FDT_API functions.
 * docs/internals/python.md describes how it works inside. */
#ifndef FDT_SRC_PYTHON_H
#define FDT_SRC_PYTHON_H

#include <fdt/app.h>
#include <fdt/error.h>

/* Bumped whenever struct fdt_python_cfg or the entry's signature changes. */
#define FDT_PYTHON_ABI_VERSION 2
#define FDT_PYTHON_ENTRY       "fdt_python_app_v1"
#define FDT_PYTHON_MODULE      "fdt_python.so"

/* What the host needs from the configuration. Strings are borrowed for the life of the
 * process (they point into the worker's struct fdt_cfg) and never NULL ("" when unset). */
struct fdt_python_cfg {
    int abi_version;     /* FDT_PYTHON_ABI_VERSION */
    const char *wsgi;    /* [app] wsgi: "pkg.module:callable" ("" when only jsonrpc) */
    const char *jsonrpc; /* [app] jsonrpc: "pkg.module:mapping" ("" when only wsgi) */
    const char *path;    /* [python] path: put first on sys.path */
    const char *home;    /* [python] home: a virtual environment */
};

/* The module's entry: check cfg and return the application descriptor (static, valid for
 * the life of the process), or NULL with err filled. Starts nothing: the interpreter
 * starts in the descriptor's process_init. Thread: the worker's main thread, once. */
typedef const struct fdt_app *fdt_python_entry_fn(const struct fdt_python_cfg *cfg,
                                                  struct fdt_error *err);

#endif
