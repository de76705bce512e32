#include "fdt_config.h"

/* wsgi.file_wrapper (PEP 3333, "Optional Platform-Specific File Handling"):
 * FileWrapper(filelike, blksize=8192) is an iterable of blocks of filelike.read(blksize),
 * whose close() closes filelike. When the application returns one around a regular file
 * (one with fileno() and tell()), python_wsgi.c sends the file with sendfile(2) instead
 * of iterating (fdt__py_filewrapper_file); otherwise, or when it is wrapped in something
 * else (wsgiref.validate does that), it is iterated like any result. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FDT_LOG_MODULE "python"
#include "python/python_int.h"

#include <sys/stat.h>

typedef struct {
    PyObject_HEAD PyObject *filelike;
    Py_ssize_t blksize;
} FileWrapperObject;

static PyObject *fw_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper", kwlist, &filelike, &blksize))
        return NULL;
    if (blksize <= 0)
        return PyErr_Format(PyExc_ValueError, "file_wrapper: blksize must be positive");
    FileWrapperObject *fw = (FileWrapperObject *)type->tp_alloc(type, 0);
    if (!fw)
        return NULL;
    Py_INCREF(filelike);
    fw->filelike = filelike;
    fw->blksize = blksize;
    return (PyObject *)fw;
}

static void fw_dealloc(PyObject *self)
{
    FileWrapperObject *fw = (FileWrapperObject *)self;
    Py_XDECREF(fw->filelike);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *fw_next(PyObject *self)
{
    FileWrapperObject *fw = (FileWrapperObject *)self;
    PyObject *data = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
    if (data && PyObject_Length(data) == 0) {
        Py_DECREF(data);
        return NULL; /* StopIteration */
    }
    return data;
}

static PyObject *fw_close(PyObject *self, PyObject *unused)
{
    (void)unused;
    FileWrapperObject *fw = (FileWrapperObject *)self;
    PyObject *close = PyObject_GetAttrString(fw->filelike, "close");
    if (!close) {
        PyErr_Clear(); /* a file-like object without close() */
        Py_RETURN_NONE;
    }
    PyObject *r = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return r;
}

static PyMethodDef fw_methods[] = {
    {"close", fw_close, METH_NOARGS, "Close the wrapped file-like object."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FileWrapperType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fdtserver.FileWrapper",
    .tp_basicsize = sizeof(FileWrapperObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.file_wrapper(filelike, blksize=8192): a file sent with sendfile(2).",
    .tp_new = fw_new,
    .tp_dealloc = fw_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fw_next,
    .tp_methods = fw_methods,
};

int fdt__py_filewrapper_init(void)
{
    return PyType_Ready(&FileWrapperType);
}

PyObject *fdt__py_filewrapper_type(void)
{
    return (PyObject *)&FileWrapperType;
}

bool fdt__py_filewrapper_file(PyObject *result, int *fd, int64_t *offset, int64_t *size)
{
    if (Py_TYPE(result) != &FileWrapperType)
        return false;
    FileWrapperObject *fw = (FileWrapperObject *)result;
    PyObject *fno = PyObject_CallMethod(fw->filelike, "fileno", NULL);
    PyObject *pos = fno ? PyObject_CallMethod(fw->filelike, "tell", NULL) : NULL;
    long long f = fno ? PyLong_AsLongLong(fno) : -1;
    long long p = pos ? PyLong_AsLongLong(pos) : -1;
    Py_XDECREF(fno);
    Py_XDECREF(pos);
    if (PyErr_Occurred()) {
        PyErr_Clear(); /* not a real file (io.BytesIO has no fileno): iterate it */
        return false;
    }
    struct stat stt;
    if (f < 0 || f > INT32_MAX || p < 0 || fstat((int)f, &stt) != 0 || !S_ISREG(stt.st_mode))
        return false;
    *fd = (int)f;
    *offset = p;
    *size = p < (long long)stt.st_size ? (int64_t)stt.st_size - p : 0;
    return true;
}
