#include "fdt_config.h"

/* PEP 3333 for one request: the environ, start_response and its write(), the returned
 * iterable (close() always called), and errors (a 500 and the traceback in the error log,
 * never to the client). Runs with the GIL held and releases it around every write to the
 * client, the only blocking calls here: the framework has read the whole body already. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FDT_LOG_MODULE "python"
#include "python/python_int.h"

#include <fdt/fdt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- Logging ---- */

/* Log text (len bytes) one line per log line, each prefixed with what. */
static void log_lines(int level, const char *what, const char *text, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        if (n > 0)
            fdt_log(level, "%s%s%.*s", what, what[0] ? ": " : "", (int)n, text);
        n += nl ? 1 : 0;
        text += n;
        len -= n;
    }
}

void fdt__py_log_exception(struct fdt__py_host *h, const char *what, char *last, size_t size)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    PyObject *lines =
        h->format_exc && value ? PyObject_CallFunctionObjArgs(h->format_exc, value, NULL) : NULL;
    /* Joined with "" (a NULL separator would be a space, starting every line but the
     * first with one). */
    PyObject *empty = lines ? PyUnicode_New(0, 0) : NULL;
    PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(empty);
    Py_ssize_t n = 0;
    const char *s = text ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    if (s) {
        log_lines(FDT_LOG_ERROR, what, s, (size_t)n);
        /* The last non-empty line: "ValueError: bad". */
        const char *end = s + n;
        while (end > s && end[-1] == '\n')
            end--;
        const char *start = end;
        while (start > s && start[-1] != '\n')
            start--;
        if (last)
            snprintf(last, size, "%.*s", (int)(end - start), start);
    } else {
        PyErr_Clear();
        const char *name = type ? ((PyTypeObject *)type)->tp_name : "unknown error";
        fdt_log(FDT_LOG_ERROR, "%s: %s (no traceback)", what, name);
        if (last)
            snprintf(last, size, "%s", name);
    }
    Py_XDECREF(text);
    Py_XDECREF(lines);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* ---- wsgi.errors: each write goes to the error log, one log line per line ---- */

typedef struct {
    PyObject_HEAD
} ErrorsObject;

static PyObject *errors_write(PyObject *self, PyObject *arg)
{
    (void)self;
    if (!PyUnicode_Check(arg))
        return PyErr_Format(PyExc_TypeError, "wsgi.errors.write() takes a str, not %s",
                            Py_TYPE(arg)->tp_name);
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);
    if (!s)
        return NULL;
    log_lines(FDT_LOG_ERROR, "wsgi.errors", s, (size_t)n);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq);
    if (!it)
        return NULL;
    PyObject *line;
    while ((line = PyIter_Next(it)) != NULL) {
        PyObject *r = errors_write(self, line);
        Py_DECREF(line);
        if (!r) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *errors_flush(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_RETURN_NONE;
}

static PyMethodDef errors_methods[] = {
    {"write", errors_write, METH_O, "Write to the server's error log."},
    {"writelines", errors_writelines, METH_O, "Write each string to the error log."},
    {"flush", errors_flush, METH_NOARGS, "Nothing to do: every write is logged at once."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ErrorsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fdtserver.ErrorLog",
    .tp_basicsize = sizeof(ErrorsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.errors: the server's error log.",
    .tp_methods = errors_methods,
    .tp_new = PyType_GenericNew,
};

/* ---- start_response and write() ---- */

/* What one request's start_response has been told, and what went out. */
struct wsgi_state {
    struct fdt__py_host *h;
    struct fdt_http_request *req;
    PyObject *status;  /* str given to start_response, NULL before */
    PyObject *headers; /* its list of (name, value) */
    bool head_sent;    /* a response (or a streamed head) went out */
    bool client_gone;  /* a write said FDT_ECLOSED */
};

typedef struct {
    PyObject_HEAD struct wsgi_state *st; /* NULL once the request is over */
} StartResponseObject;

static int header_use(struct wsgi_state *st, int pass, const char *name, const char *value,
                      Py_ssize_t vlen, char *reason, size_t rsize);

/* A failed conversion ran out of memory: say so (the MemoryError stays set, for the log)
 * rather than blame the application's text. */
static bool out_of_memory(char *reason, size_t rsize)
{
    if (!PyErr_ExceptionMatches(PyExc_MemoryError))
        return false;
    snprintf(reason, rsize, "out of memory");
    return true;
}

/* Parse and check status and headers (PEP 3333: native strings, "NNN reason", no control
 * characters), then set the headers on the request. Returns the status code, or -1 with
 * why (for the log) in reason. */
static int head_prepare(struct wsgi_state *st, char *reason, size_t rsize)
{
    if (!st->status) {
        snprintf(reason, rsize, "the application sent a body before calling start_response");
        return -1;
    }
    /* A native string of latin-1 characters (PEP 3333), sent as those bytes. */
    PyObject *sbytes = PyUnicode_AsLatin1String(st->status);
    if (!sbytes) {
        if (out_of_memory(reason, rsize))
            return -1;
        PyErr_Clear();
        const char *u = PyUnicode_AsUTF8(st->status);
        if (!u)
            PyErr_Clear();
        snprintf(reason, rsize, "bad status line '%.60s' (not latin-1 text)", u ? u : "?");
        return -1;
    }
    const char *s = PyBytes_AS_STRING(sbytes);
    Py_ssize_t n = PyBytes_GET_SIZE(sbytes);
    bool ok = n >= 4 && s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' &&
              s[2] <= '9' && s[3] == ' ' && n - 4 <= 256;
    for (Py_ssize_t i = 0; ok && i < n; i++)
        ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
    int code = ok ? (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0') : 0;
    if (!ok || code < 200) {
        /* Shown with control characters escaped, so that the log line stays one line. */
        char shown[64];
        size_t k = 0;
        for (Py_ssize_t i = 0; i < n && k + 5 < sizeof(shown); i++) {
            unsigned char ch = (unsigned char)s[i];
            if (ch < 0x20 || ch == 0x7f)
                k += (size_t)snprintf(shown + k, sizeof(shown) - k, "\\x%02x", ch);
            else
                shown[k++] = (char)ch;
        }
        shown[k] = '\0';
        snprintf(reason, rsize,
                 "bad status line '%s' (expected '200 OK' and the like: a code from 200 to 599, "
                 "a space and a reason of at most 256 characters, no control characters)",
                 shown);
        Py_DECREF(sbytes);
        return -1;
    }
    /* The application's reason phrase goes out as given ("200 All good"). */
    int rrc = fdt_http_set_reason(st->req, s + 4);
    Py_DECREF(sbytes);
    if (rrc < 0) {
        snprintf(reason, rsize, "status line: %s", fdt_strerror(rrc));
        return -1;
    }
    Py_ssize_t count = PyList_GET_SIZE(st->headers);
    /* Check every header before setting any, so that a refused one leaves none behind. */
    for (int pass = 0; pass < 2; pass++) {
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *item = PyList_GET_ITEM(st->headers, i);
            const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0));
            /* Values are latin-1 (PEP 3333): encoded so, not as UTF-8. */
            PyObject *vbytes = PyUnicode_AsLatin1String(PyTuple_GET_ITEM(item, 1));
            if (!name || !vbytes) {
                Py_XDECREF(vbytes);
                if (out_of_memory(reason, rsize))
                    return -1;
                PyErr_Clear();
                snprintf(reason, rsize, "header %zd is not latin-1 text", i);
                return -1;
            }
            const char *value = PyBytes_AS_STRING(vbytes);
            Py_ssize_t vlen = PyBytes_GET_SIZE(vbytes);
            int rc = header_use(st, pass, name, value, vlen, reason, rsize);
            Py_DECREF(vbytes);
            if (rc < 0)
                return -1;
        }
    }
    /* The head goes out next: the Zope transaction ends now (python_fdtmod.c). */
    if (fdt__py_bind_head(code, reason, rsize) < 0)
        return -1;
    return code;
}

/* Pass 0 of head_prepare: check one header; pass 1: set it on the request. */
static int header_use(struct wsgi_state *st, int pass, const char *name, const char *value,
                      Py_ssize_t vlen, char *reason, size_t rsize)
{
    if (pass == 0) {
        bool good = name[0] != '\0' && (size_t)vlen == strlen(value);
        for (const char *p = name; good && *p; p++)
            good = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9') || strchr("!#$%&'*+-.^_`|~", *p);
        for (const char *p = value; good && *p; p++)
            good = ((unsigned char)*p >= 0x20 || *p == '\t') && *p != 0x7f;
        if (!good)
            snprintf(reason, rsize,
                     "bad header %.60s (a name that is not a token, or a value with a newline "
                     "or another control character)",
                     name);
        return good ? 0 : -1;
    }
    /* The framework writes these itself (Content-Length from the body); WSGI forbids
     * hop-by-hop headers, "Connection: close" excepted here. */
    static const char *const dropped[] = {"Content-Length", "Transfer-Encoding", "Date",
                                          "Server",         "Keep-Alive",        "Upgrade"};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        if (strcasecmp(name, dropped[i]) == 0)
            return 0;
    }
    if (strcasecmp(name, "Connection") == 0 && strcasecmp(value, "close") != 0)
        return 0;
    int rc = fdt_http_set_header(st->req, name, value);
    if (rc < 0) {
        snprintf(reason, rsize, "header %.60s: %s", name, fdt_strerror(rc));
        return -1;
    }
    return 0;
}

/* Answer with the application's status, headers and the whole body. */
static int send_whole(struct wsgi_state *st, const char *body, size_t len, char *reason,
                      size_t rsize)
{
    int code = head_prepare(st, reason, rsize);
    if (code < 0)
        return -1;
    st->head_sent = true;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = fdt_http_respond(st->req, code, NULL, body, len);
    PyEval_RestoreThread(ts);
    if (rc == FDT_ECLOSED)
        st->client_gone = true;
    return 0;
}

/* Send len bytes of a streamed body, starting the stream first if need be. */
static int send_chunk(struct wsgi_state *st, const char *data, size_t len, char *reason,
                      size_t rsize)
{
    if (!st->head_sent) {
        int code = head_prepare(st, reason, rsize);
        if (code < 0)
            return -1;
        st->head_sent = true;
        PyThreadState *ts = PyEval_SaveThread();
        int rc = fdt_http_begin(st->req, code, NULL);
        PyEval_RestoreThread(ts);
        if (rc < 0) {
            st->client_gone = true; /* closed, or the stream could not start: stop */
            return 0;
        }
    }
    if (len == 0 || st->client_gone)
        return 0;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = fdt_http_write_chunk(st->req, data, len);
    PyEval_RestoreThread(ts);
    if (rc < 0)
        st->client_gone = true;
    return 0;
}

static PyObject *sr_write(PyObject *self, PyObject *data)
{
    struct wsgi_state *st = ((StartResponseObject *)self)->st;
    if (!st)
        return PyErr_Format(PyExc_RuntimeError, "write() called after the request ended");
    if (!PyBytes_Check(data))
        return PyErr_Format(PyExc_TypeError, "write() takes bytes, not %s", Py_TYPE(data)->tp_name);
    char reason[200];
    if (send_chunk(st, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data), reason,
                   sizeof(reason)) < 0)
        return PyErr_Format(PyExc_ValueError, "%s", reason);
    if (st->client_gone)
        return PyErr_Format(PyExc_OSError, "the client closed the connection");
    Py_RETURN_NONE;
}

static PyObject *sr_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"status", "headers", "exc_info", NULL};
    struct wsgi_state *st = ((StartResponseObject *)self)->st;
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO|O:start_response", kwlist, &status, &headers,
                                     &exc_info))
        return NULL;
    if (!st)
        return PyErr_Format(PyExc_RuntimeError, "start_response() called after the request ended");
    if (exc_info != Py_None) {
        if (st->head_sent) {
            /* Too late to change the response: re-raise the application's error. */
            PyObject *t, *v, *tb;
            if (!PyArg_ParseTuple(exc_info, "OOO", &t, &v, &tb))
                return NULL;
            Py_INCREF(t);
            Py_INCREF(v);
            Py_INCREF(tb);
            PyErr_Restore(t, v, tb);
            return NULL;
        }
    } else if (st->status) {
        return PyErr_Format(PyExc_RuntimeError,
                            "start_response() called a second time without exc_info");
    }
    if (!PyUnicode_CheckExact(status))
        return PyErr_Format(PyExc_TypeError, "status must be a str, not %s",
                            Py_TYPE(status)->tp_name);
    if (!PyList_CheckExact(headers))
        return PyErr_Format(PyExc_TypeError, "headers must be a list, not %s",
                            Py_TYPE(headers)->tp_name);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(item, 0)) ||
            !PyUnicode_CheckExact(PyTuple_GET_ITEM(item, 1)))
            return PyErr_Format(PyExc_TypeError,
                                "header %zd must be a tuple (name, value) of two str", i);
    }
    Py_INCREF(status);
    Py_XSETREF(st->status, status);
    /* A copy: the application may change its list afterwards. */
    PyObject *copy = PyList_GetSlice(headers, 0, PyList_GET_SIZE(headers));
    if (!copy)
        return NULL;
    Py_XSETREF(st->headers, copy);
    return PyObject_GetAttrString(self, "write");
}

static PyMethodDef sr_methods[] = {
    {"write", sr_write, METH_O, "Send bytes of the response body at once (PEP 3333 write())."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject StartResponseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fdtserver.StartResponse",
    .tp_basicsize = sizeof(StartResponseObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "start_response(status, headers, exc_info=None) of PEP 3333.",
    .tp_call = sr_call,
    .tp_methods = sr_methods,
};

int fdt__py_wsgi_init(struct fdt__py_host *h)
{
    if (PyType_Ready(&ErrorsType) < 0 || PyType_Ready(&StartResponseType) < 0 ||
        fdt__py_input_init() < 0 || fdt__py_filewrapper_init() < 0 || fdt__py_environ_init(h) < 0)
        return -1;
    h->errors = PyObject_CallNoArgs((PyObject *)&ErrorsType);
    h->version = Py_BuildValue("(ii)", 1, 0);
    return h->errors && h->version ? 0 : -1;
}

/* ---- Running the application ---- */

/* The application failed: log why (the Python exception if one is set), and answer 500 if
 * nothing went out yet; after a streamed head, cut the connection so that the client sees
 * an incomplete response rather than a complete wrong one. */
static void fail(struct wsgi_state *st, const char *reason)
{
    char what[300];
    snprintf(what, sizeof(what), "%s %s", fdt_http_method(st->req), fdt_http_path(st->req));
    if (PyErr_Occurred())
        fdt__py_log_exception(st->h, what, NULL, 0);
    if (reason)
        fdt_log(FDT_LOG_ERROR, "%s: %s", what, reason);
    if (!st->head_sent) {
        st->head_sent = true;
        PyThreadState *ts = PyEval_SaveThread();
        fdt_http_error(st->req, 500, "The application failed.");
        PyEval_RestoreThread(ts);
    } else {
        fdt_conn_close(fdt_http_conn(st->req));
    }
}

/* The Content-Length the application gave, or -1 (none, or not a number). */
static int64_t app_content_length(struct wsgi_state *st)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(st->headers); i++) {
        PyObject *item = PyList_GET_ITEM(st->headers, i);
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0));
        const char *value = name ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 1)) : NULL;
        if (!value) {
            /* GCOVR_EXCL_START: unreachable: head_prepare has just encoded every header as
             * latin-1 text, so only running out of memory fails here */
            PyErr_Clear();
            continue;
            /* GCOVR_EXCL_STOP */
        }
        if (strcasecmp(name, "Content-Length") != 0)
            continue;
        int64_t n = 0;
        const char *p = value;
        for (; *p >= '0' && *p <= '9' && n < INT64_MAX / 10 - 10; p++)
            n = n * 10 + (*p - '0');
        return p > value && *p == '\0' ? n : -1;
    }
    return -1;
}

/* A wsgi.file_wrapper around a regular file, before anything was sent: the file goes out
 * with sendfile(2) (fdt_http_respond_file), from the file object's position to its end,
 * or as many bytes as the application's Content-Length says when that is fewer (PEP
 * 3333). Returns false when result is not such a wrapper (it is then iterated). */
static bool send_file(struct wsgi_state *st, PyObject *result)
{
    int fd;
    int64_t offset, size;
    if (st->head_sent || !fdt__py_filewrapper_file(result, &fd, &offset, &size))
        return false;
    char reason[200] = "";
    int code = head_prepare(st, reason, sizeof(reason));
    if (code < 0) {
        fail(st, reason);
        return true;
    }
    int64_t cl = app_content_length(st);
    if (cl >= 0 && cl < size)
        size = cl;
    st->head_sent = true;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = fdt_http_respond_file(st->req, code, NULL, fd, offset, (size_t)size);
    PyEval_RestoreThread(ts);
    if (rc == FDT_ECLOSED) {
        st->client_gone = true;
    } else if (rc < 0) {
        fdt_log(FDT_LOG_ERROR, "%s %s: sending the file: %s (the response is cut)",
                fdt_http_method(st->req), fdt_http_path(st->req), fdt_strerror(rc));
    }
    return true;
}

/* Send the items of result (any iterable of bytes). A list or tuple, or an iterator that
 * yields at most one item, becomes one response with Content-Length; anything longer is
 * streamed item by item, as PEP 3333 requires (no buffering of a generator's output). */
static void send_result(struct wsgi_state *st, PyObject *result)
{
    char reason[200] = "";
    if (send_file(st, result))
        return;
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        PyObject *seq = result;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        size_t total = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyBytes_Check(item)) {
                snprintf(reason, sizeof(reason), "the application returned %s, not bytes",
                         Py_TYPE(item)->tp_name);
                fail(st, reason);
                return;
            }
            total += (size_t)PyBytes_GET_SIZE(item);
        }
        if (st->head_sent) { /* write() was used: go on streaming */
            for (Py_ssize_t i = 0; i < n && !st->client_gone; i++) {
                PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
                send_chunk(st, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item), reason,
                           sizeof(reason));
            }
            return;
        }
        PyObject *joined = NULL;
        const char *body = "";
        if (n == 1) {
            body = PyBytes_AS_STRING(PySequence_Fast_GET_ITEM(seq, 0));
        } else if (n > 1) {
            joined = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
            if (!joined) {
                fail(st, NULL);
                return;
            }
            char *p = PyBytes_AS_STRING(joined);
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
                memcpy(p, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
                p += PyBytes_GET_SIZE(item);
            }
            body = PyBytes_AS_STRING(joined);
        }
        if (send_whole(st, body, total, reason, sizeof(reason)) < 0)
            fail(st, reason);
        Py_XDECREF(joined);
        return;
    }
    /* Any other iterable: one response only when it says it has at most one item
     * (len()); otherwise each item goes out as it comes, never held back. */
    Py_ssize_t len_hint = PyObject_Size(result);
    if (len_hint < 0)
        PyErr_Clear();
    bool whole = !st->head_sent && (len_hint == 0 || len_hint == 1);
    PyObject *it = PyObject_GetIter(result);
    if (!it) {
        fail(st, "the application's result is not iterable");
        return;
    }
    PyObject *first = PyIter_Next(it);
    PyObject *second = first && whole ? PyIter_Next(it) : NULL;
    if (PyErr_Occurred()) {
        fail(st, NULL);
    } else if (!st->head_sent && (!first || (whole && !second))) {
        if (first && !PyBytes_Check(first)) {
            snprintf(reason, sizeof(reason), "the application returned %s, not bytes",
                     Py_TYPE(first)->tp_name);
            fail(st, reason);
        } else if (send_whole(st, first ? PyBytes_AS_STRING(first) : "",
                              first ? (size_t)PyBytes_GET_SIZE(first) : 0, reason,
                              sizeof(reason)) < 0) {
            fail(st, reason);
        }
    } else {
        PyObject *cur = first;
        first = NULL;
        while (cur) {
            if (!PyBytes_Check(cur)) {
                snprintf(reason, sizeof(reason), "the application returned %s, not bytes",
                         Py_TYPE(cur)->tp_name);
                Py_DECREF(cur);
                fail(st, reason);
                break;
            }
            int rc = st->client_gone
                         ? 0
                         : send_chunk(st, PyBytes_AS_STRING(cur), (size_t)PyBytes_GET_SIZE(cur),
                                      reason, sizeof(reason));
            Py_DECREF(cur);
            if (rc < 0) {
                fail(st, reason);
                break;
            }
            if (st->client_gone)
                break;
            if (second) {
                cur = second;
                second = NULL;
            } else {
                cur = PyIter_Next(it);
            }
            if (!cur && PyErr_Occurred())
                fail(st, NULL);
        }
    }
    Py_XDECREF(first);
    Py_XDECREF(second);
    Py_DECREF(it);
}

void fdt__py_wsgi_run(struct fdt__py_host *h, struct fdt_http_request *req)
{
    struct wsgi_state st = {.h = h, .req = req};
    StartResponseObject *sr = NULL;
    PyObject *result = NULL;
    PyObject *input = NULL;
    PyObject *env = fdt__py_environ_new(h, req, &input);
    if (!env) {
        fail(&st, "cannot build the environ");
        goto out;
    }
    sr = PyObject_New(StartResponseObject, &StartResponseType);
    if (!sr) {
        fail(&st, NULL);
        goto out;
    }
    sr->st = &st;
    result = PyObject_CallFunctionObjArgs(h->app, env, (PyObject *)sr, NULL);
    if (!result) {
        fail(&st, NULL);
        goto out;
    }
    send_result(&st, result);
    /* PEP 3333: close() is called whatever happened while iterating. The response has
     * gone out by now (send_result answers or fails), so a failing close() is only
     * logged. */
    PyObject *close = PyObject_GetAttrString(result, "close");
    if (close) {
        PyObject *r = PyObject_CallNoArgs(close);
        if (!r) {
            char what[300];
            snprintf(what, sizeof(what), "%s %s: close()", fdt_http_method(req),
                     fdt_http_path(req));
            fdt__py_log_exception(h, what, NULL, 0);
        }
        Py_XDECREF(r);
        Py_DECREF(close);
    } else {
        PyErr_Clear();
    }
out:
    if (input)
        fdt__py_input_end(input); /* kept by the application, it reads no more */
    Py_XDECREF(input);
    if (sr)
        sr->st = NULL; /* the application may keep start_response: it no longer works */
    Py_XDECREF(sr);
    Py_XDECREF(result);
    Py_XDECREF(env);
    Py_XDECREF(st.status);
    Py_XDECREF(st.headers);
}
