#include "fdt_config.h"

/* wsgi.input: the request body as the application reads it, streamed from the client
 * (the host's view has FDT_HTTP_VIEW_STREAM_BODY, so the framework has not read the body
 * first). read(n), read(), readline(size), readlines(hint) and iteration, as PEP 3333
 * asks. Only what the application asks for is read, with the GIL released while the
 * client is waited for; readline() reads ahead in pieces of READ_PIECE bytes and keeps
 * what follows the line for the next call. The limits are the framework's: max_body_size
 * (413) and body_timeout (408), reported as OSError. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FDT_LOG_MODULE "python"
#include "python/python_int.h"

#include <fdt/error.h>
#include <fdt/http.h>
#include <string.h>

#define READ_PIECE 65536

typedef struct {
    PyObject_HEAD struct fdt_http_request *req; /* NULL once the request is over */
    char *buf;                                  /* read ahead by readline(), PyMem */
    size_t off, len, cap;                       /* unread bytes: buf[off, off + len) */
    bool eof;
} InputObject;

static void input_dealloc(PyObject *self)
{
    InputObject *in = (InputObject *)self;
    PyMem_Free(in->buf);
    Py_TYPE(self)->tp_free(self);
}

/* Read up to n bytes of the body into p (GIL released meanwhile). Returns the count, 0 at
 * the end, or -1 with an OSError set. */
static Py_ssize_t body_read(InputObject *in, char *p, size_t n)
{
    if (!in->req) {
        PyErr_SetString(PyExc_ValueError, "wsgi.input read after the request ended");
        return -1;
    }
    if (in->eof)
        return 0;
    PyThreadState *ts = PyEval_SaveThread();
    long r = fdt_http_read_body(in->req, p, n);
    PyEval_RestoreThread(ts);
    if (r > 0)
        return (Py_ssize_t)r;
    if (r == 0) {
        in->eof = true;
        return 0;
    }
    const char *why = r == FDT_ELIMIT      ? "the request body is over max_body_size (413 sent)"
                      : r == FDT_ETIMEDOUT ? "the client took too long to send the request body "
                                             "(body_timeout; 408 sent)"
                      : r == FDT_EPROTO    ? "the request body is malformed (400 sent)"
                      : r == FDT_ECLOSED   ? "the client closed the connection before the end "
                                             "of the request body"
                                           : fdt_strerror((int)r);
    PyErr_Format(PyExc_OSError, "wsgi.input: %s", why);
    return -1;
}

/* Make room for want more bytes after the unread ones. Returns 0 or -1 (MemoryError). */
static int buf_room(InputObject *in, size_t want)
{
    if (in->off > 0 && in->len > 0)
        memmove(in->buf, in->buf + in->off, in->len);
    in->off = 0;
    if (in->cap - in->len >= want)
        return 0;
    size_t cap = in->cap ? in->cap : READ_PIECE;
    while (cap - in->len < want)
        cap *= 2;
    char *nb = PyMem_Realloc(in->buf, cap);
    if (!nb) {
        PyErr_NoMemory();
        return -1;
    }
    in->buf = nb;
    in->cap = cap;
    return 0;
}

/* Take n read-ahead bytes into p. */
static void buf_take(InputObject *in, char *p, size_t n)
{
    memcpy(p, in->buf + in->off, n);
    in->off += n;
    in->len -= n;
    if (in->len == 0)
        in->off = 0;
}

/* A size argument: None or negative for "all". Returns 0 or -1 with TypeError. */
static int size_arg(PyObject *const *args, Py_ssize_t nargs, const char *fn, Py_ssize_t *size)
{
    *size = -1;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most one argument", fn);
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    *size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    return *size == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Read up to size bytes (all when size < 0) as a new bytes object. */
static PyObject *read_bytes(InputObject *in, Py_ssize_t size)
{
    size_t want = size < 0 ? READ_PIECE : (size_t)size;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)want);
    if (!out)
        return NULL;
    size_t got = 0;
    if (in->len > 0) {
        got = in->len < want ? in->len : want;
        buf_take(in, PyBytes_AS_STRING(out), got);
    }
    for (;;) {
        if (got == want) {
            if (size >= 0)
                break;
            want *= 2; /* all: bounded by max_body_size */
            if (_PyBytes_Resize(&out, (Py_ssize_t)want) < 0)
                return NULL;
        }
        Py_ssize_t r = body_read(in, PyBytes_AS_STRING(out) + got, want - got);
        if (r < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got != want && _PyBytes_Resize(&out, (Py_ssize_t)got) < 0)
        return NULL;
    return out;
}

static PyObject *input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size;
    if (size_arg(args, nargs, "read", &size) < 0)
        return NULL;
    return read_bytes((InputObject *)self, size);
}

/* One line (up to and with '\n'), at most size bytes when size >= 0; b"" at the end. */
static PyObject *read_line(InputObject *in, Py_ssize_t size)
{
    if (size == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    size_t scanned = 0;
    for (;;) {
        size_t limit = size >= 0 && (size_t)size < in->len ? (size_t)size : in->len;
        const char *nl =
            limit > scanned ? memchr(in->buf + in->off + scanned, '\n', limit - scanned) : NULL;
        size_t n = 0;
        if (nl)
            n = (size_t)(nl - (in->buf + in->off)) + 1;
        else if ((size >= 0 && in->len >= (size_t)size) || in->eof)
            n = limit;
        if (n > 0 || (in->eof && in->len == 0)) {
            PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
            if (out && n > 0)
                buf_take(in, PyBytes_AS_STRING(out), n);
            return out;
        }
        scanned = limit;
        if (buf_room(in, READ_PIECE) < 0)
            return NULL;
        Py_ssize_t r = body_read(in, in->buf + in->len, READ_PIECE);
        if (r < 0)
            return NULL;
        in->len += (size_t)r;
    }
}

static PyObject *input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size;
    if (size_arg(args, nargs, "readline", &size) < 0)
        return NULL;
    return read_line((InputObject *)self, size);
}

static PyObject *input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t hint;
    if (size_arg(args, nargs, "readlines", &hint) < 0)
        return NULL;
    PyObject *lines = PyList_New(0);
    Py_ssize_t total = 0;
    while (lines) {
        PyObject *line = read_line((InputObject *)self, -1);
        if (!line) {
            Py_CLEAR(lines);
            break;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(line);
        if (n == 0 || PyList_Append(lines, line) < 0) {
            Py_DECREF(line);
            if (n != 0)
                Py_CLEAR(lines);
            break;
        }
        Py_DECREF(line);
        total += n;
        if (hint > 0 && total >= hint)
            break;
    }
    return lines;
}

static PyObject *input_next(PyObject *self)
{
    PyObject *line = read_line((InputObject *)self, -1);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL; /* StopIteration */
    }
    return line;
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
     "read(size=-1): up to size bytes of the body (all of it by default); b'' at the end."},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
     "readline(size=-1): the next line, with its b'\\n'."},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
     "readlines(hint=-1): the remaining lines."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject InputType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fdtserver.Input",
    .tp_basicsize = sizeof(InputObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, read from the client as the application asks.",
    .tp_dealloc = input_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = input_next,
    .tp_methods = input_methods,
};

int fdt__py_input_init(void)
{
    return PyType_Ready(&InputType);
}

PyObject *fdt__py_input_new(struct fdt_http_request *req)
{
    InputObject *in = PyObject_New(InputObject, &InputType);
    if (!in)
        return NULL;
    in->req = req;
    in->buf = NULL;
    in->off = in->len = in->cap = 0;
    in->eof = false;
    return (PyObject *)in;
}

void fdt__py_input_end(PyObject *input)
{
    InputObject *in = (InputObject *)input;
    in->req = NULL;
    PyMem_Free(in->buf);
    in->buf = NULL;
    in->off = in->len = in->cap = 0;
}
