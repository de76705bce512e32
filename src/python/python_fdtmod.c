#include "fdt_config.h"

/* The built-in module "fdt": the current fdtserver transaction for Python code — the HTTP
 * request's root transaction (begun on first use) or the JSON-RPC call's — with queries,
 * savepoints and fdt.random_code(); and the binding of Zope's transaction package to it
 * (a data manager that votes last and whose vote is fdtserver's commit). Every database
 * round trip runs with the GIL released. docs/python.md says what applications see. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define FDT_LOG_MODULE "python"
#include "python/python_int.h"

#include <fdt/fdt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The binding of the Python code running on this thread (NULL outside a request or call,
 * e.g. in threads the application starts itself). */
static _Thread_local struct fdt__py_bind *t_bind;
static _Thread_local unsigned long t_gen;

/* Made once by the module's init (the one interpreter is never finalized). */
static PyObject *g_error, *g_db_error, *g_conflict, *g_state_error, *g_outcome_error;
static PyObject *g_request_begin, *g_end, *g_join, *g_transient;
/* fdt.ConflictError is a transaction.interfaces.TransientError by now (under the GIL). */
static bool g_is_transient;

#define MAX_PARAMS 100

/* ---- Errors ---- */

static void conflict_transient(void);

PyObject *fdt__py_error_type(int code)
{
    switch (code) {
    case FDT_ERETRY:
        conflict_transient();
        return g_conflict;
    case FDT_EDB:
    case FDT_EDOWN:
        return g_db_error;
    case FDT_ETXNSTATE:
        return g_state_error;
    /* GCOVR_EXCL_START: not reached: a commit through transaction.commit() whose branch is
     * lost after the decision was written (no e2e test loses one at that moment) */
    case FDT_EOUTCOME:
        return g_outcome_error;
        /* GCOVR_EXCL_STOP */
    default:
        return g_error;
    }
}

static PyObject *raise(int code, const struct fdt_error *err)
{
    PyErr_SetString(fdt__py_error_type(code), err && err->msg[0] ? err->msg : fdt_strerror(code));
    return NULL;
}

/* Log the current Python exception in one line and clear it. */
static void log_and_clear(const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *text = value ? PyObject_Str(value) : NULL;
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    fdt_log(FDT_LOG_WARN, "%s failed: %s: %s", what,
            type ? ((PyTypeObject *)type)->tp_name : "error", s ? s : "");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* Once the application has imported Zope's transaction package, fdt.ConflictError becomes
 * a subclass of its TransientError as well, so that transaction.manager.attempts(),
 * pyramid_tm and pyramid_retry take a conflict as retryable. Not before: fdt does not
 * import transaction on the application's behalf (that would bind every request to it).
 * Checked where a conflict is raised and where a request begins. */
static void conflict_transient(void)
{
    if (g_is_transient || !g_transient ||
        !PyDict_GetItemString(PyImport_GetModuleDict(), "transaction"))
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = PyObject_CallNoArgs(g_transient);
    if (!r)
        log_and_clear("making fdt.ConflictError a transaction.interfaces.TransientError");
    g_is_transient = r == Py_True;
    Py_XDECREF(r);
    PyErr_Restore(type, value, tb);
}

static struct fdt__py_bind *bound(void)
{
    if (!t_bind)
        PyErr_SetString(g_state_error, "no fdtserver transaction here: the fdt module works "
                                       "only while a request or a JSON-RPC call runs, on its "
                                       "thread");
    return t_bind;
}

/* The transaction Python code works in. begin: an HTTP request's is begun on first use;
 * else NULL when it has none (or it ended). Called without the GIL. */
static struct fdt_txn *bind_txn(struct fdt__py_bind *b, bool begin, struct fdt_error *err)
{
    if (b->call)
        return fdt_jsonrpc_txn(b->call);
    if (begin)
        return fdt_http_txn(b->req, err);
    struct fdt_conn *c = fdt_http_conn(b->req);
    return c ? fdt_conn_txn(c) : NULL;
}

/* The work joins the Zope transaction of this thread (once per Zope transaction: after the
 * application committed or aborted, the next one). */
static int zope_join(struct fdt__py_bind *b)
{
    if (!b->zope)
        return 0;
    PyObject *r = PyObject_CallFunction(g_join, "k", b->gen);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

/* ---- fdt.query / fdt.execute ---- */

/* A text parameter made here (kept alive by keep, a list) into *p. */
static int param_text(PyObject *text, PyObject *keep, Py_ssize_t i, struct fdt_sql_param *p)
{
    if (!text || PyList_Append(keep, text) < 0) {
        Py_XDECREF(text);
        return -1;
    }
    Py_DECREF(text);
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    if (!s)
        return -1;
    if ((size_t)len != strlen(s)) {
        PyErr_Format(PyExc_ValueError, "parameter %zd contains a NUL character", i + 1);
        return -1;
    }
    *p = FDT_SQL_TEXT_P(s);
    return 0;
}

/* bytes on PostgreSQL: bytea's hex input form, "\x0aff...". */
static PyObject *bytea_hex(PyObject *v)
{
    PyObject *hex = PyObject_CallMethod(v, "hex", NULL);
    PyObject *text = hex ? PyUnicode_FromFormat("\\x%U", hex) : NULL;
    Py_XDECREF(hex);
    return text;
}

/* Fill p[] from the Python sequence seq (kept alive by the caller); texts made here go
 * into keep. Each value is bound the way the resource's driver takes it (docs/python.md,
 * "Parameters"): pg is true for PostgreSQL, whose parameters are all text. */
static int params_convert(PyObject *seq, struct fdt_sql_param *p, Py_ssize_t n, PyObject *keep,
                          bool pg)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
        int rc = 0;
        if (v == Py_None) {
            p[i] = FDT_SQL_NULL_P;
        } else if (PyBool_Check(v)) {
            /* PostgreSQL's boolean text; SQLite's booleans are the integers 1 and 0. */
            if (pg)
                p[i] = FDT_SQL_TEXT_P(v == Py_True ? "true" : "false");
            else
                p[i] = FDT_SQL_INT_P(v == Py_True);
        } else if (PyLong_Check(v)) {
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
            if (x == -1 && PyErr_Occurred())
                return -1;
            if (!overflow)
                p[i] = FDT_SQL_INT_P(x);
            else if (pg) /* numeric takes it; bigint says it is out of range */
                rc = param_text(PyObject_Str(v), keep, i, &p[i]);
            else {
                PyErr_Format(PyExc_OverflowError,
                             "parameter %zd is an int out of SQLite's 64-bit range", i + 1);
                return -1;
            }
        } else if (PyUnicode_Check(v)) {
            rc = param_text(Py_NewRef(v), keep, i, &p[i]);
        } else if (PyFloat_Check(v)) {
            rc = param_text(PyObject_Repr(v), keep, i, &p[i]);
        } else if ((PyBytes_Check(v) || PyByteArray_Check(v)) && pg) {
            rc = param_text(bytea_hex(v), keep, i, &p[i]);
        } else if (PyBytes_Check(v) || PyByteArray_Check(v)) {
            PyErr_Format(PyExc_TypeError,
                         "parameter %zd is %s: a SQLite resource takes no bytes parameters "
                         "(decode to str, or pass the hex text)",
                         i + 1, Py_TYPE(v)->tp_name);
            return -1;
        } else {
            PyErr_Format(PyExc_TypeError,
                         "parameter %zd is a %s: parameters are None, bool, int, float, str "
                         "or bytes (PostgreSQL)",
                         i + 1, Py_TYPE(v)->tp_name);
            return -1;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

static PyObject *rows_to_list(const struct fdt_sql_rows *rows)
{
    int nr = fdt_sql_nrows(rows), nc = fdt_sql_ncols(rows);
    PyObject *list = PyList_New(nr);
    for (int r = 0; list && r < nr; r++) {
        PyObject *row = PyTuple_New(nc);
        for (int c = 0; row && c < nc; c++) {
            const char *s = fdt_sql_text(rows, r, c);
            PyObject *v = s ? PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "surrogateescape")
                            : Py_NewRef(Py_None);
            if (!v)
                Py_CLEAR(row);
            else
                PyTuple_SET_ITEM(row, c, v);
        }
        if (!row)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, r, row);
    }
    return list;
}

static PyObject *run_sql(PyObject *args, PyObject *kwargs, bool want_rows)
{
    static char *kwlist[] = {"resource", "sql", "params", NULL};
    const char *resource, *sql;
    PyObject *params = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, want_rows ? "ss|O:query" : "ss|O:execute",
                                     kwlist, &resource, &sql, &params))
        return NULL;
    struct fdt__py_bind *b = bound();
    if (!b)
        return NULL;
    PyObject *seq = params && params != Py_None
                        ? PySequence_Fast(params, "params must be a sequence (a tuple or list)")
                        : PyTuple_New(0);
    if (!seq)
        return NULL;
    PyObject *keep = PyList_New(0);
    PyObject *result = NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    struct fdt_sql_param p[MAX_PARAMS];
    if (!keep)
        goto out; /* GCOVR_EXCL_LINE: unreachable: an empty list comes from CPython's free list */
    if (n > MAX_PARAMS) {
        PyErr_Format(PyExc_ValueError, "at most %d parameters", MAX_PARAMS);
        goto out;
    }
    const char *driver = fdt_resource_driver(resource);
    bool pg = driver && strcmp(driver, "postgresql") == 0;
    if (params_convert(seq, p, n, keep, pg) < 0 || zope_join(b) < 0)
        goto out;
    struct fdt_error err = {0};
    struct fdt_sql_rows *rows = NULL;
    long changed = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    struct fdt_txn *t = bind_txn(b, true, &err);
    if (!t)
        rc = err.code ? err.code : FDT_ETXNSTATE;
    else if (!want_rows && n == 0) /* a script of one or more statements */
        rc = fdt_txn_exec(t, resource, sql, &changed, &err);
    else
        rc = fdt_txn_query(t, resource, sql, p, (int)n, &rows, &err);
    Py_END_ALLOW_THREADS;
    if (rc < 0) {
        if (rc == FDT_ERETRY)
            b->conflict = true;
        raise(rc, &err);
        goto out;
    }
    result =
        want_rows ? rows_to_list(rows) : PyLong_FromLong(rows ? fdt_sql_changes(rows) : changed);
    fdt_sql_rows_free(rows);
out:
    Py_XDECREF(keep);
    Py_DECREF(seq);
    return result;
}

static PyObject *fdt_query(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    return run_sql(args, kwargs, true);
}

static PyObject *fdt_execute(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    return run_sql(args, kwargs, false);
}

/* ---- Savepoints ---- */

typedef struct {
    PyObject_HEAD unsigned long gen;
    struct fdt_txn *txn;
    bool conflict_before; /* the binding's conflict mark when it was taken */
    bool released;
    char name[32];
} SavepointObject;

/* The savepoint's transaction, still the current one and active; else NULL with an
 * exception. */
static struct fdt_txn *savepoint_txn(SavepointObject *sp)
{
    struct fdt__py_bind *b = bound();
    if (!b)
        return NULL;
    struct fdt_txn *t = bind_txn(b, false, NULL);
    if (b->gen != sp->gen || t != sp->txn || sp->released) {
        PyErr_SetString(g_state_error, sp->released ? "the savepoint was released"
                                                    : "the savepoint's transaction has ended");
        return NULL;
    }
    return t;
}

static PyObject *sp_rollback(PyObject *self, PyObject *unused)
{
    (void)unused;
    SavepointObject *sp = (SavepointObject *)self;
    struct fdt_txn *t = savepoint_txn(sp);
    if (!t)
        return NULL;
    struct fdt_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    rc = fdt_txn_rollback_to(t, sp->name, &err);
    Py_END_ALLOW_THREADS;
    if (rc < 0)
        return raise(rc, &err);
    if (!sp->conflict_before)
        t_bind->conflict = false; /* the conflicting statement was undone */
    Py_RETURN_NONE;
}

static PyObject *sp_release(PyObject *self, PyObject *unused)
{
    (void)unused;
    SavepointObject *sp = (SavepointObject *)self;
    struct fdt_txn *t = savepoint_txn(sp);
    if (!t)
        return NULL;
    struct fdt_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    rc = fdt_txn_release(t, sp->name, &err);
    Py_END_ALLOW_THREADS;
    if (rc < 0)
        return raise(rc, &err);
    sp->released = true;
    Py_RETURN_NONE;
}

static PyObject *sp_enter(PyObject *self, PyObject *unused)
{
    (void)unused;
    return Py_NewRef(self);
}

/* with fdt.savepoint(): an exception rolls back to it (and goes on); else it is released. */
static PyObject *sp_exit(PyObject *self, PyObject *args)
{
    PyObject *type = Py_None, *value = Py_None, *tb = Py_None;
    if (!PyArg_UnpackTuple(args, "__exit__", 0, 3, &type, &value, &tb))
        return NULL;
    SavepointObject *sp = (SavepointObject *)self;
    if (sp->released)
        Py_RETURN_FALSE;
    if (type != Py_None) {
        /* The application's exception goes on (it is not the raised one here); a failed
         * rollback is only logged. */
        PyObject *r = sp_rollback(self, NULL);
        PyObject *r2 = r ? sp_release(self, NULL) : NULL;
        if (!r2)
            log_and_clear("rolling back a savepoint after an exception");
        Py_XDECREF(r);
        Py_XDECREF(r2);
        Py_RETURN_FALSE;
    }
    PyObject *r = sp_release(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyMethodDef sp_methods[] = {
    {"rollback", sp_rollback, METH_NOARGS,
     "Undo everything done since the savepoint (it stays, for another rollback)."},
    {"release", sp_release, METH_NOARGS, "Forget the savepoint, keeping the work."},
    {"__enter__", sp_enter, METH_NOARGS, NULL},
    {"__exit__", sp_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SavepointType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "fdt.Savepoint",
    .tp_basicsize = sizeof(SavepointObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A savepoint of the current fdtserver transaction (fdt.savepoint()).",
    .tp_methods = sp_methods,
};

static PyObject *fdt_savepoint(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    struct fdt__py_bind *b = bound();
    if (!b || zope_join(b) < 0)
        return NULL;
    SavepointObject *sp = PyObject_New(SavepointObject, &SavepointType);
    if (!sp)
        return NULL;
    sp->gen = b->gen;
    sp->conflict_before = b->conflict;
    sp->released = false;
    snprintf(sp->name, sizeof(sp->name), "fdt_py_%u", ++b->sp_seq);
    struct fdt_error err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS;
    sp->txn = bind_txn(b, true, &err);
    rc = sp->txn ? fdt_txn_savepoint(sp->txn, sp->name, &err)
                 : (err.code ? err.code : FDT_ETXNSTATE);
    Py_END_ALLOW_THREADS;
    if (rc < 0) {
        Py_DECREF(sp);
        return raise(rc, &err);
    }
    return (PyObject *)sp;
}

/* ---- fdt.random_code ---- */

static PyObject *fdt_random_code_py(PyObject *self, PyObject *arg)
{
    (void)self;
    long digits = PyLong_AsLong(arg);
    if (digits == -1 && PyErr_Occurred())
        return NULL;
    if (digits < 1 || digits > FDT_CODE_MAX_DIGITS)
        return PyErr_Format(PyExc_ValueError, "digits must be 1..%d, not %ld", FDT_CODE_MAX_DIGITS,
                            digits);
    char code[FDT_CODE_MAX_DIGITS + 1];
    int rc = fdt_random_code(code, sizeof(code), (unsigned)digits);
    if (rc < 0)
        return raise(rc, NULL); /* GCOVR_EXCL_LINE: unreachable: only getrandom failing */
    return PyUnicode_FromString(code);
}

/* ---- What the Zope data manager (below) calls ---- */

/* The binding of gen, or NULL when it is over (a data manager left from an earlier
 * request or call does nothing). */
static struct fdt__py_bind *bind_of(PyObject *arg)
{
    unsigned long gen = PyLong_AsUnsignedLong(arg);
    if (gen == (unsigned long)-1 && PyErr_Occurred())
        PyErr_Clear();
    return t_bind && t_bind->gen == gen ? t_bind : NULL;
}

/* _vote(gen, foreign): the data manager's tpc_vote, after every other participant voted:
 * fdtserver's commit, the decision. At the end of a request with no other participant,
 * nothing: the framework commits by the status (with its held response, client check and
 * conflict re-run). */
static PyObject *fdt__vote(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *gen;
    int foreign;
    if (!PyArg_ParseTuple(args, "Op", &gen, &foreign))
        return NULL;
    struct fdt__py_bind *b = bind_of(gen);
    if (!b || (b->deferred && !foreign))
        Py_RETURN_NONE;
    if (b->call) {
        PyErr_SetString(g_state_error,
                        foreign ? "a data manager other than fdtserver's cannot take part in a "
                                  "JSON-RPC call's transaction (it is decided by txn.vote and "
                                  "txn.finish, or at the call's end)"
                                : "transaction.commit() cannot end a JSON-RPC call's "
                                  "transaction: it is decided by txn.vote and txn.finish, or at "
                                  "the call's end");
        return NULL;
    }
    if (b->conflict) {
        /* Left as it is: the framework rolls it back and runs the request again. */
        PyErr_SetString(fdt__py_error_type(FDT_ERETRY), "the transaction conflicted with another");
        return NULL;
    }
    struct fdt_error err = {0};
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS;
    struct fdt_txn *t = bind_txn(b, false, NULL);
    if (t)
        rc = fdt_txn_commit(t, &err);
    Py_END_ALLOW_THREADS;
    if (rc < 0)
        return raise(rc, &err);
    Py_RETURN_NONE;
}

/* _abort(gen): the data manager's abort and tpc_abort. */
static PyObject *fdt__abort(PyObject *self, PyObject *gen)
{
    (void)self;
    struct fdt__py_bind *b = bind_of(gen);
    if (!b)
        Py_RETURN_NONE;
    if (b->call) {
        /* The framework undoes the call's work when the call fails. */
        b->aborted = true;
        Py_RETURN_NONE;
    }
    if (b->conflict)
        Py_RETURN_NONE; /* left for the framework to roll back and run again */
    Py_BEGIN_ALLOW_THREADS;
    struct fdt_txn *t = bind_txn(b, false, NULL);
    if (t)
        fdt_txn_abort(t, NULL);
    Py_END_ALLOW_THREADS;
    Py_RETURN_NONE;
}

/* _defer(gen): the Zope transaction is being ended by the framework. */
static PyObject *fdt__defer(PyObject *self, PyObject *gen)
{
    (void)self;
    struct fdt__py_bind *b = bind_of(gen);
    if (b)
        b->deferred = true;
    Py_RETURN_NONE;
}

static PyMethodDef fdt_methods[] = {
    {"query", (PyCFunction)(void (*)(void))fdt_query, METH_VARARGS | METH_KEYWORDS,
     "query(resource, sql, params=()) -> list of row tuples (values str or None)."},
    {"execute", (PyCFunction)(void (*)(void))fdt_execute, METH_VARARGS | METH_KEYWORDS,
     "execute(resource, sql, params=()) -> the number of rows changed. Without params, sql "
     "may be a script of several statements (the count is the last one's)."},
    {"savepoint", fdt_savepoint, METH_NOARGS,
     "A savepoint of the current transaction (also a context manager)."},
    {"random_code", fdt_random_code_py, METH_O,
     "random_code(digits) -> a secure random numeric code (str) not starting with 0."},
    {"_vote", fdt__vote, METH_VARARGS, NULL},
    {"_abort", fdt__abort, METH_O, NULL},
    {"_defer", fdt__defer, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

/* The Zope side, in Python: a data manager standing for fdtserver's transaction. It sorts
 * last ('~~' is after every printable key), so it votes after every other participant,
 * and its vote is fdtserver's commit: the decision. Those others therefore vote before
 * the decision and finish after it; they have no durable record of it (docs/python.md). */
static const char zope_code[] =
    "import sys\n"
    "class _DataManager:\n"
    "    def __init__(self, manager, gen):\n"
    "        self.transaction_manager = manager\n"
    "        self._gen = gen\n"
    "    def sortKey(self):\n"
    "        return '~~fdtserver'\n"
    "    def abort(self, txn):\n"
    "        _abort(self._gen)\n"
    "    def tpc_begin(self, txn):\n"
    "        pass\n"
    "    def commit(self, txn):\n"
    "        pass\n"
    "    def tpc_vote(self, txn):\n"
    "        _vote(self._gen, any(r is not self for r in txn._resources))\n"
    "    def tpc_finish(self, txn):\n"
    "        pass\n"
    "    def tpc_abort(self, txn):\n"
    "        _abort(self._gen)\n"
    "    def savepoint(self):\n"
    "        return _DataManagerSavepoint(savepoint())\n"
    "class _DataManagerSavepoint:\n"
    "    def __init__(self, sp):\n"
    "        self._sp = sp\n"
    "    def rollback(self):\n"
    "        self._sp.rollback()\n"
    "def _join(gen):\n"
    "    m = sys.modules['transaction'].manager\n"
    "    txn = m.get()\n"
    "    if getattr(txn, '_fdtserver_gen', None) != gen:\n"
    "        txn._fdtserver_gen = gen\n"
    "        txn.join(_DataManager(m, gen))\n"
    "def _conflict_transient():\n"
    "    ti = sys.modules.get('transaction.interfaces')\n"
    "    te = getattr(ti, 'TransientError', None)\n"
    "    if not isinstance(te, type) or not issubclass(te, Exception):\n"
    "        return False\n"
    "    if not issubclass(ConflictError, te):\n"
    "        ConflictError.__bases__ = (DatabaseError, te)\n"
    "    return True\n"
    "def _request_begin(gen):\n"
    "    tm = sys.modules.get('transaction')\n"
    "    if tm is None or not hasattr(tm, 'manager'):\n"
    "        return False\n"
    "    tm.manager.begin()\n"
    "    _join(gen)\n"
    "    return True\n"
    "def _end(gen, ok):\n"
    "    m = sys.modules['transaction'].manager\n"
    "    if ok and not m.isDoomed():\n"
    "        _defer(gen)\n"
    "        try:\n"
    "            m.commit()\n"
    "        except BaseException:\n"
    "            m.abort()\n" /* a failed commit stays current until aborted */
    "            raise\n"
    "    else:\n"
    "        m.abort()\n";

static struct PyModuleDef fdt_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "fdt",
    .m_doc = "The current fdtserver transaction (docs/python.md, \"The fdt module\").",
    .m_size = -1,
    .m_methods = fdt_methods,
};

static PyObject *new_error(PyObject *mod, const char *name, PyObject *base, const char *doc)
{
    char full[64];
    snprintf(full, sizeof(full), "fdt.%s", name);
    PyObject *e = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
    if (!e || PyModule_AddObjectRef(mod, name, e) < 0) {
        /* GCOVR_EXCL_START: unreachable: at the interpreter's start, only out of memory */
        Py_XDECREF(e);
        return NULL;
        /* GCOVR_EXCL_STOP */
    }
    return e; /* the static keeps this reference for the process's life */
}

static PyObject *init_fdt(void)
{
    /* A static type and module at the interpreter's start: these fail only out of memory. */
    if (PyType_Ready(&SavepointType) < 0)
        return NULL; /* GCOVR_EXCL_LINE: unreachable: out of memory at start-up */
    PyObject *mod = PyModule_Create(&fdt_module);
    if (!mod)
        return NULL; /* GCOVR_EXCL_LINE: unreachable: out of memory at start-up */
    g_error = new_error(mod, "Error", PyExc_Exception, "An fdtserver transaction error.");
    g_db_error = g_error ? new_error(mod, "DatabaseError", g_error,
                                     "The database refused a statement, or is unreachable.")
                         : NULL;
    g_conflict = g_db_error ? new_error(mod, "ConflictError", g_db_error,
                                        "A serialization failure, deadlock or SQLite busy: the "
                                        "framework runs the request again.")
                            : NULL;
    g_state_error = g_conflict ? new_error(mod, "TransactionStateError", g_error,
                                           "Not valid in the transaction's state.")
                               : NULL;
    g_outcome_error = g_state_error ? new_error(mod, "OutcomeUnknownError", g_error,
                                                "A commit whose outcome is unknown: recovery "
                                                "ends it.")
                                    : NULL;
    /* At the interpreter's start, with constant code and names, these fail only when out of
     * memory. */
    if (!g_outcome_error || PyModule_AddObjectRef(mod, "Savepoint", (PyObject *)&SavepointType) < 0)
        goto fail; /* GCOVR_EXCL_LINE: unreachable: out of memory at start-up */
    PyObject *dict = PyModule_GetDict(mod); /* borrowed */
    PyObject *r = PyRun_String(zope_code, Py_file_input, dict, dict);
    if (!r)
        goto fail; /* GCOVR_EXCL_LINE: unreachable: out of memory at start-up */
    Py_DECREF(r);
    return mod;
    /* GCOVR_EXCL_START: unreachable: out of memory at start-up (above) */
fail:
    Py_DECREF(mod);
    return NULL;
    /* GCOVR_EXCL_STOP */
}

int fdt__py_fdtmod_register(void)
{
    return PyImport_AppendInittab("fdt", init_fdt);
}

int fdt__py_fdtmod_init(void)
{
    /* A built-in module (fdt__py_fdtmod_register: no file on sys.path can shadow it): its
     * import fails only when init_fdt does, out of memory at start-up. */
    PyObject *mod = PyImport_ImportModule("fdt");
    if (!mod)
        return -1; /* GCOVR_EXCL_LINE: unreachable: out of memory at start-up */
    g_request_begin = PyObject_GetAttrString(mod, "_request_begin");
    g_end = PyObject_GetAttrString(mod, "_end");
    g_join = PyObject_GetAttrString(mod, "_join");
    g_transient = PyObject_GetAttrString(mod, "_conflict_transient");
    Py_DECREF(mod);
    return g_request_begin && g_end && g_join && g_transient ? 0 : -1;
}

/* ---- Binding ---- */

void fdt__py_bind_enter(struct fdt__py_bind *b, struct fdt_http_request *req,
                        struct fdt_jsonrpc_call *call)
{
    *b = (struct fdt__py_bind){.req = req, .call = call, .gen = ++t_gen};
    t_bind = b;
    /* Zope's package is bound only once something imported it (one dict look-up). */
    if (!PyDict_GetItemString(PyImport_GetModuleDict(), "transaction"))
        return;
    conflict_transient();
    PyObject *r = PyObject_CallFunction(g_request_begin, "k", b->gen);
    if (!r) /* the previous Zope transaction's abort failed: this request goes on */
        log_and_clear("transaction.begin()");
    b->zope = r == Py_True;
    Py_XDECREF(r);
}

static int zope_end(struct fdt__py_bind *b, bool ok)
{
    if (!b->zope || b->ended)
        return 0;
    b->ended = true;
    PyObject *r = PyObject_CallFunction(g_end, "kO", b->gen, ok ? Py_True : Py_False);
    Py_XDECREF(r);
    return r ? 0 : -1;
}

int fdt__py_bind_head(int status, char *reason, size_t rsize)
{
    struct fdt__py_bind *b = t_bind;
    if (!b || !b->req)
        return 0;
    if (zope_end(b, status >= 200 && status < 400) < 0) {
        snprintf(reason, rsize, "the transaction could not be committed");
        return -1;
    }
    return 0;
}

int fdt__py_bind_leave(struct fdt__py_bind *b, bool ok)
{
    int rc = zope_end(b, ok);
    t_bind = NULL;
    return rc;
}
