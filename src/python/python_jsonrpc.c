#include "fdt_config.h"

/* JSON-RPC methods in Python ([app] jsonrpc = pkg.module:mapping): each key of the mapping
 * (read once, at import) is a method, its value called with the params (converted with
 * Python's json module: an object becomes a dict, an array a list, none None). The
 * framework runs the call in the connection's transaction (under a savepoint, so a failed
 * call is undone alone) or in a root transaction of its own, exactly as for C methods. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FDT_LOG_MODULE "python"
#include "python/python_int.h"

#include <fdt/fdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Written at process_init on the main thread, read-only afterwards. */
static PyObject *g_methods; /* dict: name -> callable */
static PyObject *g_loads, *g_dumps;

/* Fail the call with the current Python exception: its last line is the message, the
 * traceback goes to the error log. A conflict makes the framework run a root transaction
 * again (or answers -32014 inside a client's transaction). */
static int method_failed(const char *name, struct fdt_error *err)
{
    bool conflict = PyErr_ExceptionMatches(fdt__py_error_type(FDT_ERETRY));
    char what[200], last[200] = "";
    snprintf(what, sizeof(what), "jsonrpc %s", name);
    fdt__py_log_exception(fdt__py_host(), what, last, sizeof(last));
    return fdt_error_set(err, conflict ? FDT_ERETRY : FDT_EAPP, "%s", last);
}

static PyObject *params_in(const struct fdt_json *params)
{
    if (!params)
        return Py_NewRef(Py_None);
    char *text = NULL;
    size_t len = 0;
    /* Params the parser made encode, unless out of memory (test_17_11). */
    if (fdt_json_encode(params, 0, &text, &len) < 0)
        return PyErr_NoMemory();
    PyObject *s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "strict");
    free(text);
    PyObject *v = s ? PyObject_CallOneArg(g_loads, s) : NULL;
    Py_XDECREF(s);
    return v;
}

static int python_method(struct fdt_jsonrpc_call *call, const struct fdt_json *params,
                         struct fdt_json_writer *w, struct fdt_error *err)
{
    const char *name = fdt_jsonrpc_method(call);
    PyEval_RestoreThread(fdt__py_thread_state());
    int rc = 0;
    struct fdt__py_bind b;
    /* Not PyDict_GetItemString, which would take running out of memory for a missing
     * key. */
    PyObject *key = PyUnicode_FromString(name);
    PyObject *fn = key ? PyDict_GetItemWithError(g_methods, key) : NULL; /* borrowed */
    Py_XDECREF(key);
    PyObject *args = fn ? params_in(params) : NULL;
    PyObject *result = NULL, *text = NULL;
    if (!fn) { /* out of memory, or a key whose hash is not its text's */
        rc = PyErr_Occurred()
                 ? method_failed(name, err)
                 : fdt_error_set(err, FDT_EAPP, "method %s is not in the mapping", name);
        goto out;
    }
    if (!args) { /* json.loads of what the parser accepted: only out of memory */
        rc = method_failed(name, err);
        goto out;
    }
    fdt__py_bind_enter(&b, NULL, call);
    result = PyObject_CallOneArg(fn, args);
    bool ok = result != NULL;
    if (!ok) {
        rc = method_failed(name, err);
        fdt__py_bind_leave(&b, false);
        PyErr_Clear();
        goto out;
    }
    if (fdt__py_bind_leave(&b, true) < 0) {
        rc = method_failed(name, err);
        goto out;
    }
    if (b.aborted) {
        rc = fdt_error_set(err, FDT_EAPP, "the method aborted its transaction");
        goto out;
    }
    text = PyObject_CallOneArg(g_dumps, result);
    Py_ssize_t len = 0;
    const char *s = text ? PyUnicode_AsUTF8AndSize(text, &len) : NULL;
    if (!s) {
        rc = method_failed(name, err);
        goto out;
    }
    int wrc = fdt_json_writer_raw(w, s, (size_t)len);
    if (wrc < 0)
        rc = fdt_error_set(err, wrc, "%s",
                           wrc == FDT_ENOMEM ? "out of memory" : "the result is too large");
out:
    Py_XDECREF(text);
    Py_XDECREF(result);
    Py_XDECREF(args);
    PyEval_SaveThread();
    return rc;
}

int fdt__py_jsonrpc_init(const char *spec, struct fdt_jsonrpc_app *app)
{
    PyObject *json = PyImport_ImportModule("json");
    /* Each step only after the one before succeeded: a call made with an exception set
     * would lose it. */
    PyObject *dumps = json ? PyObject_GetAttrString(json, "dumps") : NULL;
    g_loads = dumps ? PyObject_GetAttrString(json, "loads") : NULL;
    Py_XDECREF(json);
    if (!dumps || !g_loads) {
        Py_XDECREF(dumps);
        return -1;
    }
    /* Strict JSON out: NaN and Infinity are errors, not invalid text. */
    PyObject *functools = PyImport_ImportModule("functools");
    PyObject *partial = functools ? PyObject_GetAttrString(functools, "partial") : NULL;
    PyObject *kw =
        partial ? Py_BuildValue("{s:O,s:(ss)}", "allow_nan", Py_False, "separators", ",", ":")
                : NULL;
    PyObject *pargs = kw ? PyTuple_Pack(1, dumps) : NULL;
    g_dumps = partial && kw && pargs ? PyObject_Call(partial, pargs, kw) : NULL;
    Py_XDECREF(pargs);
    Py_XDECREF(kw);
    Py_XDECREF(partial);
    Py_XDECREF(functools);
    Py_DECREF(dumps);
    if (!g_dumps)
        return -1;
    PyObject *mapping = fdt__py_import(spec);
    if (!mapping)
        return -1;
    g_methods = PyDict_New();
    int rc = g_methods ? PyDict_Merge(g_methods, mapping, 1) : -1;
    if (rc < 0 && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s is not a mapping of method names (it is a %s)", spec,
                     Py_TYPE(mapping)->tp_name);
    }
    Py_DECREF(mapping);
    if (rc < 0)
        return -1;
    Py_ssize_t n = PyDict_GET_SIZE(g_methods);
    struct fdt_jsonrpc_method *methods = calloc((size_t)n + 1, sizeof(*methods));
    if (!methods) { /* test_17_11 */
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (PyDict_Next(g_methods, &pos, &key, &value)) {
        const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
        if (!name) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: the method name %R is not a str", spec, key);
        } else if (name[0] == '\0' || strlen(name) > 128 || strncmp(name, "txn.", 4) == 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s: bad method name '%s' (1 to 128 bytes; txn.* are built in)", spec,
                         name);
        } else if (!PyCallable_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s['%s'] is not callable (it is a %s)", spec, name,
                         Py_TYPE(value)->tp_name);
        }
        if (PyErr_Occurred()) {
            free(methods);
            return -1;
        }
        /* The name lives as long as g_methods, which is never freed. */
        methods[i].name = name;
        methods[i].fn = python_method;
        i++;
    }
    app->methods = methods;
    app->n_methods = (size_t)n;
    return 0;
}
