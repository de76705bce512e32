#include "fdt_config.h"

/* The Python host's descriptor: starts CPython in the worker after fork, imports the WSGI
 * application, gives each application thread its own thread state, and serves every HTTP
 * request through one catch-all view. The worker loads this module only when [app] wsgi is
 * set (worker/app_load.c), so the master never maps libpython. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FDT_LOG_MODULE "python"
#include "python/python.h"
#include "python/python_int.h"

#include <dlfcn.h>
#include <fdt/fdt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The process's one interpreter. The descriptor's callbacks take no context, so these are
 * the module's process-wide state: written by the entry and process_init on the main thread
 * before any application thread exists, read-only afterwards. */
static struct fdt_python_cfg g_cfg;
static struct fdt__py_host g_host;
static PyThreadState *g_main_state; /* the main thread's, saved once the import is done */
/* The JSON-RPC side: its methods are filled in by process_init from [app] jsonrpc. */
static struct fdt_jsonrpc_app g_jsonrpc_app = {
    .abi_version = FDT_JSONRPC_ABI_VERSION,
    .size = sizeof(struct fdt_jsonrpc_app),
};
/* Each application thread's state, created in thread_init and kept for the thread's life
 * (mod_wsgi and uWSGI do the same): the GIL is taken and released with it per request. */
static _Thread_local PyThreadState *t_state;

/* ---- Start-up ---- */

/* Extension modules (in lib-dynload) are not linked against libpython: they expect its
 * symbols to be global, as they are in the python3 program. libpython came in with this
 * module under RTLD_LOCAL, so make it global (RTLD_NOLOAD: only the copy already mapped;
 * its path comes from the dynamic linker, never from a fixed location). */
static int libpython_global(struct fdt_error *err)
{
    Dl_info info;
    /* Py_None lies in libpython, which this module is linked against, so dladdr names it,
     * and that library is mapped (RTLD_NOLOAD finds it): neither check fails. */
    if (!dladdr(Py_None, &info) || !info.dli_fname)
        /* GCOVR_EXCL_START: unreachable: dladdr finds Py_None (above) */
        return fdt_error_set(err, FDT_EAPP, "python: cannot find libpython: %s", dlerror());
    /* GCOVR_EXCL_STOP */
    if (!dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_GLOBAL))
        /* GCOVR_EXCL_START: unreachable: the library is mapped (above) */
        return fdt_error_set(err, FDT_EAPP, "python: %s: %s", info.dli_fname, dlerror());
    /* GCOVR_EXCL_STOP */
    return 0;
}

static int status_error(PyStatus st, struct fdt_error *err)
{
    return fdt_error_set(err, FDT_EAPP, "python: cannot start the interpreter: %s%s%s",
                         st.func ? st.func : "", st.func ? ": " : "",
                         st.err_msg ? st.err_msg : "exit requested");
}

/* Py_InitializeFromConfig with the settings of an embedded, isolated interpreter: no
 * environment variables (PYTHONPATH, PYTHONHOME), no user site directory, and no signal
 * handlers: the worker reads its signals from a signalfd, and Python must not install
 * SIGINT or SIGPIPE handlers of its own. */
static int start_interpreter(struct fdt_error *err)
{
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    config.configure_c_stdio = 0;
    config.user_site_directory = 0;
    PyStatus st = PyStatus_Ok();
    if (g_cfg.home[0]) {
        /* A virtual environment is found from its interpreter's path (pyvenv.cfg beside
         * bin/), as when its bin/python3 runs. */
        char exe[4096];
        snprintf(exe, sizeof(exe), "%s/bin/python3", g_cfg.home);
        if (access(exe, X_OK) != 0) {
            PyConfig_Clear(&config);
            return fdt_error_set(err, FDT_EAPP, "[python] home: %s is not a virtual environment",
                                 g_cfg.home);
        }
        st = PyConfig_SetBytesString(&config, &config.program_name, exe);
    }
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        return status_error(st, err);
    return 0;
}

/* Put [python] path first on sys.path. */
static int path_prepend(void)
{
    if (!g_cfg.path[0])
        return 0;
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    PyObject *dir = PyUnicode_DecodeFSDefault(g_cfg.path);
    int rc = sys_path && dir ? PyList_Insert(sys_path, 0, dir) : -1;
    Py_XDECREF(dir);
    return rc;
}

/* Import "pkg.module:attr" (the attribute may be dotted: "module:obj.attr"). Returns a
 * new reference, or NULL with a Python exception set. */
PyObject *fdt__py_import(const char *spec)
{
    const char *colon = strchr(spec, ':');
    PyObject *mod_name = PyUnicode_FromStringAndSize(spec, colon - spec);
    /* NULL only when out of memory in libpython at start-up: the name is ASCII (config.c's
     * wsgi_spec_ok), so it always decodes, and no Python code has run to arm a failure. */
    if (!mod_name)
        return NULL; /* GCOVR_EXCL_LINE: unreachable: out of memory in libpython (above) */
    PyObject *obj = PyImport_Import(mod_name);
    Py_DECREF(mod_name);
    for (const char *p = colon + 1; obj && *p;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        PyObject *attr = PyUnicode_FromStringAndSize(p, (Py_ssize_t)n);
        PyObject *next = attr ? PyObject_GetAttr(obj, attr) : NULL;
        Py_XDECREF(attr);
        Py_DECREF(obj);
        obj = next;
        p += n + (dot ? 1 : 0);
    }
    return obj;
}

/* Import the WSGI callable. */
static PyObject *import_app(const char *spec)
{
    PyObject *obj = fdt__py_import(spec);
    if (obj && !PyCallable_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s is not callable (it is a %s)", spec,
                     Py_TYPE(obj)->tp_name);
        Py_CLEAR(obj);
    }
    return obj;
}

/* Modules and objects the host uses on every request. */
static int host_init(struct fdt__py_host *h)
{
    PyObject *tb = PyImport_ImportModule("traceback");
    h->format_exc = tb ? PyObject_GetAttrString(tb, "format_exception") : NULL;
    Py_XDECREF(tb);
    if (!h->format_exc)
        return -1;
    /* Static types and constants at the interpreter's start: fails only out of memory. */
    if (fdt__py_wsgi_init(h) < 0)
        return -1; /* GCOVR_EXCL_LINE: unreachable: out of memory at start-up */
    return fdt__py_fdtmod_init();
}

struct fdt__py_host *fdt__py_host(void)
{
    return &g_host;
}

PyThreadState *fdt__py_thread_state(void)
{
    return t_state;
}

/* Import what [app] wsgi and [app] jsonrpc name. Returns 0, or -1 with a Python exception
 * set and what failed in what. */
static int import_apps(char *what, size_t wsize)
{
    if (g_cfg.wsgi[0]) {
        snprintf(what, wsize, "cannot import %s", g_cfg.wsgi);
        g_host.app = import_app(g_cfg.wsgi);
        if (!g_host.app)
            return -1;
    }
    if (g_cfg.jsonrpc[0]) {
        snprintf(what, wsize, "cannot import %s", g_cfg.jsonrpc);
        if (fdt__py_jsonrpc_init(g_cfg.jsonrpc, &g_jsonrpc_app) < 0)
            return -1;
    }
    return 0;
}

static int process_init(const struct fdt_worker_info *w, struct fdt_error *err)
{
    (void)w;
    /* Before the interpreter starts, PyImport_AppendInittab fails only when libpython's own
     * malloc does (no test reaches that allocator). */
    if (fdt__py_fdtmod_register() < 0)
        /* GCOVR_EXCL_START: unreachable: out of memory in libpython (above) */
        return fdt_error_set(err, FDT_EAPP, "python: cannot register the fdt module");
    /* GCOVR_EXCL_STOP */
    if (libpython_global(err) < 0 || start_interpreter(err) < 0)
        return FDT_EAPP;
    int rc = 0;
    if (path_prepend() < 0 || host_init(&g_host) < 0) {
        char last[200] = "";
        fdt__py_log_exception(&g_host, "python: start-up failed", last, sizeof(last));
        rc = fdt_error_set(err, FDT_EAPP, "python: %s", last);
    } else {
        char what[300] = "";
        if (import_apps(what, sizeof(what)) < 0) {
            char last[200] = "";
            fdt__py_log_exception(&g_host, what, last, sizeof(last));
            rc = fdt_error_set(err, FDT_EAPP, "%s: %s", what, last);
        }
    }
    /* From here on the main thread holds the GIL only to leave. The interpreter is never
     * finalized: the worker ends with _exit, and a failed start exits at once. */
    g_main_state = PyEval_SaveThread();
    if (rc == 0)
        fdt_log(FDT_LOG_INFO, "python %s: serving %s%s%s", Py_GetVersion(), g_cfg.wsgi,
                g_cfg.wsgi[0] && g_cfg.jsonrpc[0] ? " and " : "", g_cfg.jsonrpc);
    return rc;
}

static int thread_init(unsigned index, struct fdt_error *err)
{
    /* Allowed without the GIL (Python's documentation of PyThreadState_New). Made on the
     * thread itself, so that PyGILState_Ensure() in C extensions finds it. */
    t_state = PyThreadState_New(g_main_state->interp);
    /* NULL only when out of memory in libpython at a thread's start, before any Python code
     * could arm an allocation failure. */
    if (!t_state)
        /* GCOVR_EXCL_START: unreachable: out of memory in libpython (above) */
        return fdt_error_set(err, FDT_ENOMEM, "python: no thread state for thread %u", index);
    /* GCOVR_EXCL_STOP */
    return 0;
}

/* Only on a thread whose thread_init succeeded (worker_main.c): t_state is set. */
static void thread_fini(unsigned index)
{
    (void)index;
    PyEval_RestoreThread(t_state);
    PyThreadState_Clear(t_state);
    PyThreadState_DeleteCurrent(); /* releases the GIL */
    t_state = NULL;
}

/* ---- The HTTP side: one resource, one view for every path and method ---- */

static void *root_data(struct fdt_http_request *req)
{
    (void)req;
    return &g_host;
}

static int wsgi_view(struct fdt_http_request *req, struct fdt_http_resource *context)
{
    struct fdt__py_host *h = fdt_http_resource_data(context);
    PyEval_RestoreThread(t_state);
    /* The fdt module and transaction.get() work in the request's transaction while it
     * runs; a Zope transaction the head did not end (an error answer) is aborted here. */
    struct fdt__py_bind b;
    fdt__py_bind_enter(&b, req, NULL);
    fdt__py_wsgi_run(h, req);
    if (fdt__py_bind_leave(&b, false) < 0)
        fdt__py_log_exception(h, "transaction.abort()", NULL, 0);
    PyEval_SaveThread();
    return 0;
}

static const struct fdt_http_resource_type root_type = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_resource_type),
    .name = "wsgi",
};

/* The root has no getitem: traversal stops at the first segment, and this view (any
 * name, any method, any subpath) answers. PATH_INFO is built from the request's path,
 * not from traversal. */
static const struct fdt_http_view views[] = {
    {.type = NULL,
     .name = NULL,
     .method = NULL,
     .fn = wsgi_view,
     .flags = FDT_HTTP_VIEW_ANY_NAME | FDT_HTTP_VIEW_SUBPATH | FDT_HTTP_VIEW_STREAM_BODY},
};

static const struct fdt_http_app http_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_app),
    .root_type = &root_type,
    .root_data = root_data,
    .views = views,
    .n_views = 1,
};

/* Filled by the entry: the HTTP side with [app] wsgi, the JSON-RPC side with jsonrpc. */
static struct fdt_app python_app = {
    .abi_version = FDT_APP_ABI_VERSION,
    .size = sizeof(struct fdt_app),
    .name = "python",
    .process_init = process_init,
    .thread_init = thread_init,
    .thread_fini = thread_fini,
};

__attribute__((visibility("default"))) const struct fdt_app *
fdt_python_app_v1(const struct fdt_python_cfg *cfg, struct fdt_error *err);

const struct fdt_app *fdt_python_app_v1(const struct fdt_python_cfg *cfg, struct fdt_error *err)
{
    /* The worker (app_load.c) calls the entry of the module built with it, with the cfg of
     * a configuration that passed these checks (config.c): they guard against a module of
     * another build or a host that skipped them. */
    if (!cfg || cfg->abi_version != FDT_PYTHON_ABI_VERSION) {
        /* GCOVR_EXCL_START: unreachable: a module of another build only (above) */
        fdt_error_set(err, FDT_EAPP, "%s: host interface version %d, this module speaks %d",
                      FDT_PYTHON_MODULE, cfg ? cfg->abi_version : 0, FDT_PYTHON_ABI_VERSION);
        return NULL;
        /* GCOVR_EXCL_STOP */
    }
    if (!cfg->wsgi || !cfg->jsonrpc || (!cfg->wsgi[0] && !cfg->jsonrpc[0]) ||
        (cfg->wsgi[0] && !strchr(cfg->wsgi, ':')) ||
        (cfg->jsonrpc[0] && !strchr(cfg->jsonrpc, ':'))) {
        /* GCOVR_EXCL_START: unreachable: config.c checked the same (above) */
        fdt_error_set(err, FDT_EAPP,
                      "[app] wsgi = pkg.module:callable and/or jsonrpc = pkg.module:mapping");
        return NULL;
        /* GCOVR_EXCL_STOP */
    }
    g_cfg = *cfg;
    python_app.http = cfg->wsgi[0] ? &http_app : NULL;
    python_app.jsonrpc = cfg->jsonrpc[0] ? &g_jsonrpc_app : NULL;
    return &python_app;
}
