/* libFuzzer target for the Python WSGI host: each input is an HTTP exchange (the same
 * format and corpus as fuzz_http: the first byte picks how the rest is cut into reads),
 * parsed by the HTTP session, and every request that reaches the application goes through
 * fdt__py_wsgi_run in an embedded interpreter: the environ is built, wsgi.input reads the
 * (streamed) body, start_response and the result are checked, exactly as in a worker.
 *
 * The application is wrapped in the standard library's wsgiref.validate.validator, which
 * checks the environ (types, required keys, PATH_INFO, the input and errors objects) and
 * the server's side of the protocol; a failed check, or a CGI key whose value is not a
 * str, aborts. Also checked: nothing crashes or leaks under the sanitizers, and every
 * byte written starts with a status line.
 *
 * Linked with fuzz_replay.c (fuzz_wsgi_replay) it replays fuzz/corpus/http/ in every
 * build (meson test --suite fuzz). */
#include "fdt_config.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* Python.h first (the Python C API's rule). */
#include "../tests/unit/http_harness.h"
#include "log/log.h"
#include "python/python_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char app_source[] =
    "import warnings\n"
    "from wsgiref.validate import validator\n"
    "warnings.simplefilter('ignore')\n"
    "failures = []\n"
    "def inner(environ, start_response):\n"
    "    for k, v in environ.items():\n"
    "        if not isinstance(k, str) or (k.isupper() and not isinstance(v, str)):\n"
    "            failures.append(('environ', k, v))\n"
    "    environ['PATH_INFO'].encode('latin-1')\n"
    "    inp = environ['wsgi.input']\n"
    "    try:\n"
    "        line = inp.readline()\n"
    "        body = line + inp.read(1 << 20)\n"
    "        rest = inp.readlines()\n"
    "    except OSError:\n"
    "        body, rest = b'', []\n"
    "    start_response('200 Fine', [('Content-Type', 'text/plain')])\n"
    "    return [b'%d %d' % (len(body), len(rest))]\n"
    "checked = validator(inner)\n"
    "def app(environ, start_response):\n"
    "    try:\n"
    "        return checked(environ, start_response)\n"
    "    except AssertionError as e:\n"
    "        failures.append(repr(e))\n"
    "        raise\n";

static struct fdt__py_host g_host;
static PyObject *g_failures;
static PyThreadState *g_ts;

static void py_start(void)
{
    /* Python objects from malloc rather than pymalloc's arenas: AddressSanitizer then
     * checks every access to them, and LeakSanitizer sees what they point to. */
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;
    if (PyStatus_Exception(Py_PreInitialize(&pre)))
        abort();
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    PyStatus st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        abort();
    PyObject *tb = PyImport_ImportModule("traceback");
    g_host.format_exc = tb ? PyObject_GetAttrString(tb, "format_exception") : NULL;
    Py_XDECREF(tb);
    PyObject *globals = PyDict_New();
    PyObject *builtins = PyEval_GetBuiltins();
    if (!g_host.format_exc || !globals || PyDict_SetItemString(globals, "__builtins__", builtins))
        abort();
    PyObject *r = PyRun_String(app_source, Py_file_input, globals, globals);
    if (!r) {
        PyErr_Print();
        abort();
    }
    Py_DECREF(r);
    g_host.app = PyDict_GetItemString(globals, "app");
    g_failures = PyDict_GetItemString(globals, "failures");
    if (!g_host.app || !g_failures || fdt__py_wsgi_init(&g_host) < 0)
        abort();
    Py_INCREF(g_host.app);
    Py_INCREF(g_failures);
    Py_DECREF(globals);
    g_ts = PyEval_SaveThread();
}

static int w_view(struct fdt_http_request *req, struct fdt_http_resource *ctx)
{
    (void)ctx;
    PyEval_RestoreThread(g_ts);
    fdt__py_wsgi_run(&g_host, req);
    if (PyList_GET_SIZE(g_failures) > 0) {
        PyObject_Print(g_failures, stderr, 0);
        fputc('\n', stderr);
        abort();
    }
    g_ts = PyEval_SaveThread();
    return 0;
}

static const struct fdt_http_resource_type w_root = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_resource_type),
    .name = "wsgi",
};

static const struct fdt_http_view w_views[] = {
    {.fn = w_view,
     .flags = FDT_HTTP_VIEW_ANY_NAME | FDT_HTTP_VIEW_SUBPATH | FDT_HTTP_VIEW_STREAM_BODY},
};

static const struct fdt_http_app w_app = {
    .abi_version = FDT_HTTP_ABI_VERSION,
    .size = sizeof(struct fdt_http_app),
    .root_type = &w_root,
    .views = w_views,
    .n_views = 1,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ts) {
        fdt__log_set_level(-1); /* the 500s' tracebacks would flood the output */
        py_start();
    }
    if (size == 0)
        return 0;
    unsigned mode = data[0];
    data++;
    size--;
    struct harness h;
    harness_init(&h, 512, 256);
    h.srv.app = &w_app;
    h.srv.stream_body = true;
    h.draining = (mode & 0x80) != 0;
    size_t piece = (mode & 0x3f) == 0 ? size : (mode & 0x3f);
    size_t off = 0;
    while (off < size && !h.closed) {
        size_t n = size - off < piece ? size - off : piece;
        size_t before = h.in.len;
        harness_send(&h, (const char *)data + off, n);
        if (h.in.len > before + n)
            abort();
        off += n;
    }
    if (!h.closed && (mode & 0x20))
        fdt__http_session_timeout(&h.s);
    const char *out = harness_out(&h);
    if (h.out.len > 0 && strncmp(out, "HTTP/1.1 ", 9) != 0)
        abort();
    harness_deinit(&h);
    return 0;
}
