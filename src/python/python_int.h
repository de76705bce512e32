/* Private to src/python: what python_app.c (the interpreter, its threads and the
 * descriptor) and python_wsgi.c (PEP 3333) share. Include after <Python.h>, which must
 * come before any system header (the Python C API's rule). */
#ifndef FDT_SRC_PYTHON_INT_H
#define FDT_SRC_PYTHON_INT_H

#include <fdt/http.h>
#include <fdt/jsonrpc.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one interpreter of a worker process and the application it runs. Filled by
 * process_init on the main thread before any application thread starts; read-only after. */
struct fdt__py_host {
    PyObject *app;        /* the WSGI callable (strong) */
    PyObject *format_exc; /* traceback.format_exception */
    PyObject *errors;     /* the wsgi.errors object (one per process) */
    PyObject *version;    /* (1, 0) */
    PyObject *keys[32];   /* interned environ keys, by enum fdt__py_key */
};

enum fdt__py_key {
    K_REQUEST_METHOD,
    K_SCRIPT_NAME,
    K_PATH_INFO,
    K_QUERY_STRING,
    K_CONTENT_TYPE,
    K_CONTENT_LENGTH,
    K_SERVER_NAME,
    K_SERVER_PORT,
    K_SERVER_PROTOCOL,
    K_REMOTE_ADDR,
    K_REMOTE_PORT,
    K_WSGI_VERSION,
    K_WSGI_URL_SCHEME,
    K_WSGI_INPUT,
    K_WSGI_ERRORS,
    K_WSGI_MULTITHREAD,
    K_WSGI_MULTIPROCESS,
    K_WSGI_RUN_ONCE,
    K_WSGI_INPUT_TERMINATED,
    K_WSGI_FILE_WRAPPER,
    K__COUNT,
};

/* Make the types and constants of python_wsgi.c (call once, with the GIL, after the
 * interpreter started). Returns 0, or -1 with a Python exception set. */
int fdt__py_wsgi_init(struct fdt__py_host *h);

/* The environ (python_environ.c): intern the keys into h->keys (once, with the GIL);
 * the environ of req and its wsgi.input in *input (a new reference, to be ended with
 * fdt__py_input_end when the request is over: the application may replace or wrap the
 * environ's). NULL with an exception set on failure. */
int fdt__py_environ_init(struct fdt__py_host *h);
PyObject *fdt__py_environ_new(struct fdt__py_host *h, struct fdt_http_request *req,
                              PyObject **input);

/* wsgi.input (python_input.c). Make its type (once, with the GIL); a new object reading
 * req's body (NULL with an exception set); the request is over: it reads no more. */
int fdt__py_input_init(void);
PyObject *fdt__py_input_new(struct fdt_http_request *req);
void fdt__py_input_end(PyObject *input);

/* wsgi.file_wrapper (python_filewrapper.c): make its type (once, with the GIL); the
 * type (borrowed), which the environ offers; whether result is one of its objects around
 * a regular file, with the file's descriptor (borrowed: the wrapper's file owns it), the
 * file object's position and the bytes from there to the end. */
int fdt__py_filewrapper_init(void);
PyObject *fdt__py_filewrapper_type(void);
bool fdt__py_filewrapper_file(PyObject *result, int *fd, int64_t *offset, int64_t *size);

/* Run the WSGI application for req and answer it (always: a failure is a 500 and a
 * traceback in the error log). Called with the GIL held; releases it around every write
 * to the client. Thread: the request's. */
void fdt__py_wsgi_run(struct fdt__py_host *h, struct fdt_http_request *req);

/* Log the current Python exception (its traceback, one log line per line, after what),
 * clear it, and write its last line ("ValueError: bad") into last (may be NULL).
 * Called with the GIL held. */
void fdt__py_log_exception(struct fdt__py_host *h, const char *what, char *last, size_t size);

/* ---- The fdt module and the binding of transactions (python_fdtmod.c) ---- */

/* What Python code running on this thread is bound to: an HTTP request (its root
 * transaction, begun on first use) or a JSON-RPC call (the connection's transaction).
 * Lives on the stack of the view or method, set with fdt__py_bind_enter() and cleared by
 * fdt__py_bind_leave(); read only by its own thread. */
struct fdt__py_bind {
    struct fdt_http_request *req;  /* or NULL */
    struct fdt_jsonrpc_call *call; /* or NULL */
    unsigned long gen;             /* distinguishes bindings (stale data managers) */
    unsigned sp_seq;               /* names fdt.savepoint()s */
    bool conflict;                 /* a statement conflicted and no savepoint undid it */
    bool zope;                     /* the transaction package's manager is bound */
    bool ended;                    /* the Zope transaction was ended (HTTP: before the head) */
    bool deferred;                 /* ending it: fdtserver's commit is the framework's */
    bool aborted;                  /* JSON-RPC: the method aborted the Zope transaction */
};

/* Register the built-in module "fdt" (before the interpreter starts). */
int fdt__py_fdtmod_register(void);
/* Import it and the helpers the host calls (with the GIL, after the interpreter started).
 * Returns 0, or -1 with a Python exception set. */
int fdt__py_fdtmod_init(void);

/* Bind this thread's Python code to a request or a call (exactly one of req, call), and
 * begin a Zope transaction joined by fdtserver's when the transaction package is loaded.
 * With the GIL. */
void fdt__py_bind_enter(struct fdt__py_bind *b, struct fdt_http_request *req,
                        struct fdt_jsonrpc_call *call);
/* HTTP: the head of the response is about to be sent with status: end the Zope
 * transaction (commit for 2xx/3xx unless doomed, else abort). Returns 0, or -1 with a
 * Python exception set and why in reason (the answer must then be a 500). */
int fdt__py_bind_head(int status, char *reason, size_t rsize);
/* Unbind. ok: the call or request succeeded. A Zope transaction still open is committed
 * (ok) or aborted. Returns 0, or -1 with a Python exception set when its end failed. */
int fdt__py_bind_leave(struct fdt__py_bind *b, bool ok);

/* The Python exception for a framework error (fdt.Error and its subclasses). */
PyObject *fdt__py_error_type(int code);

/* ---- JSON-RPC methods in Python (python_jsonrpc.c) ---- */

/* The process's host (python_app.c), for fdt__py_log_exception. */
struct fdt__py_host *fdt__py_host(void);
/* This application thread's Python thread state (python_app.c). */
PyThreadState *fdt__py_thread_state(void);
/* Import the mapping of [app] jsonrpc and fill app (with the GIL, at process_init).
 * Returns 0, or -1 with a Python exception set. */
int fdt__py_jsonrpc_init(const char *spec, struct fdt_jsonrpc_app *app);
/* Import "pkg.module:attr.attr" (python_app.c). A new reference, or NULL with an
 * exception set. */
PyObject *fdt__py_import(const char *spec);

#endif
