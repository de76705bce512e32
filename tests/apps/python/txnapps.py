"""Test applications for transactions from Python (tests/e2e/test_41_python_txn.py):
a WSGI application working in the request's transaction through the fdt module and
Zope's transaction package, and a mapping of JSON-RPC methods."""
import ast
import json
import threading
import time

import fdt
import transaction

# What the foreign data manager was told, in order (one worker: read back with /events).
EVENTS = []
KEPT = {}


class ForeignDM:
    """A data manager that is not fdtserver's: it records the calls it gets."""

    def __init__(self, fail_vote=False):
        self.fail_vote = fail_vote
        self.transaction_manager = transaction.manager

    def sortKey(self):
        return "foreign"

    def abort(self, txn):
        EVENTS.append("abort")

    def tpc_begin(self, txn):
        EVENTS.append("tpc_begin")

    def commit(self, txn):
        EVENTS.append("commit")

    def tpc_vote(self, txn):
        EVENTS.append("tpc_vote")
        if self.fail_vote:
            raise RuntimeError("the foreign data manager votes no")

    def tpc_finish(self, txn):
        EVENTS.append("tpc_finish")

    def tpc_abort(self, txn):
        EVENTS.append("tpc_abort")


def body_of(environ):
    n = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(n).decode()


def answer(start_response, status, data):
    text = data if isinstance(data, bytes) else json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json")])
    return [text]


STATUS = {200: "200 OK", 201: "201 Created", 303: "303 See Other", 404: "404 Not Found",
          409: "409 Conflict", 500: "500 Internal Server Error"}


def application(environ, start_response):
    parts = environ["PATH_INFO"].strip("/").split("/")
    sql = body_of(environ)
    what = parts[0]
    if what == "exec":  # /exec/RESOURCE/STATUS: run the body's statement, answer STATUS
        n = fdt.execute(parts[1], sql)
        return answer(start_response, STATUS[int(parts[2])], {"rows": n})
    if what == "slow":  # /slow/RESOURCE/MS: the statement runs, then the application waits
        n = fdt.execute(parts[1], sql)
        time.sleep(int(parts[2]) / 1000)
        return answer(start_response, "200 OK", {"rows": n})
    if what == "raise":  # the statement runs, then the application fails
        fdt.execute(parts[1], sql)
        raise RuntimeError("the application failed after its statement")
    if what == "query":  # /query/RESOURCE with a JSON body {"sql", "params"}
        q = json.loads(sql)
        return answer(start_response, "200 OK", fdt.query(parts[1], q["sql"], q["params"]))
    if what == "pyquery":  # /pyquery/RESOURCE with a Python literal {"sql", "params"}
        q = ast.literal_eval(sql)
        try:
            return answer(start_response, "200 OK", fdt.query(parts[1], q["sql"], q["params"]))
        except (TypeError, ValueError, OverflowError) as e:
            return answer(start_response, "400 Bad Request",
                          {"error": f"{type(e).__name__}: {e}"})
    if what in ("misuse", "misuse-later"):  # /misuse/RESOURCE: wrong calls, each reported
        out = []

        def attempt(name, fn):
            try:
                fn()
                out.append(f"{name}: no error")
            except Exception as e:  # noqa: BLE001 - reported to the test
                out.append(f"{name}: {type(e).__name__}: {e}")
        res = parts[1]
        if what == "misuse-later":  # a savepoint kept from an earlier request
            attempt("old savepoint", lambda: KEPT["sp"].rollback())
            return answer(start_response, "200 OK", out)
        attempt("params not a sequence", lambda: fdt.query(res, "SELECT 1", 5))
        attempt("101 params", lambda: fdt.query(res, "SELECT 1", tuple(range(101))))
        attempt("random_code str", lambda: fdt.random_code("6"))
        sp = fdt.savepoint()
        sp.release()
        attempt("released savepoint", sp.rollback)
        KEPT["sp"] = fdt.savepoint()
        held = [fdt.savepoint() for _ in range(15)]
        attempt("17th savepoint", fdt.savepoint)
        held[0].rollback()
        out.append(fdt.query(res, "SELECT 40 + $1", (2,))[0][0])
        return answer(start_response, "200 OK", out)
    if what == "savepoint":
        res = parts[1]
        fdt.execute(res, "INSERT INTO t VALUES (1)")
        try:
            with fdt.savepoint():
                fdt.execute(res, "INSERT INTO t VALUES (2)")
                raise ValueError("undo 2")
        except ValueError:
            pass
        sp = fdt.savepoint()
        fdt.execute(res, "INSERT INTO t VALUES (3)")
        sp.rollback()
        fdt.execute(res, "INSERT INTO t VALUES (4)")
        # A failed statement after a savepoint: rolling back to it lifts the doom.
        sp2 = fdt.savepoint()
        try:
            fdt.execute(res, "INSERT INTO t VALUES (1)")
        except fdt.DatabaseError:
            sp2.rollback()
        fdt.execute(res, "INSERT INTO t VALUES (5)")
        return answer(start_response, "200 OK", {"ok": True})
    if what == "code":
        return answer(start_response, "200 OK", [fdt.random_code(int(parts[1]))
                                                 for _ in range(20)])
    if what == "outside":  # no transaction on a thread of the application's own
        out = {}

        def run():
            try:
                fdt.query("pg", "SELECT 1")
            except fdt.Error as e:
                out["error"] = f"{type(e).__name__}: {e}"
        th = threading.Thread(target=run)
        th.start()
        th.join()
        return answer(start_response, "200 OK", out)
    if what == "badparam":
        try:
            fdt.query("pg", "SELECT $1", ([1],))
        except TypeError as e:
            return answer(start_response, "400 Bad Request", {"error": str(e)})
    if what == "zope":
        return zope(parts[1:], sql, start_response)
    if what == "events":
        ev = list(EVENTS)
        EVENTS.clear()
        return answer(start_response, "200 OK", ev)
    return answer(start_response, "404 Not Found", {"error": "no such path"})


def zope(parts, sql, start_response):
    """/zope/MODE/RESOURCE: the same work through Zope's transaction package."""
    mode, res = parts[0], parts[1]
    txn = transaction.get()
    if mode == "bound":  # transaction.get() is this request's, with fdtserver's in it
        fdt.execute(res, "INSERT INTO t VALUES (1)")
        assert transaction.get() is txn
        names = sorted(type(r).__name__ for r in txn._resources)
        return answer(start_response, "200 OK", {"resources": names})
    if mode == "doom":  # doomed: rolled back, the response goes out as the application made it
        fdt.execute(res, "INSERT INTO t VALUES (1)")
        transaction.doom()
        return answer(start_response, "200 OK", {"doomed": transaction.isDoomed()})
    if mode == "abort":  # abort undoes what came before; the work after it commits
        fdt.execute(res, "INSERT INTO t VALUES (1)")
        transaction.abort()
        fdt.execute(res, "INSERT INTO t VALUES (2)")
        return answer(start_response, "200 OK", {})
    if mode == "early":  # commit() commits at once; the request's later work is its own
        fdt.execute(res, "INSERT INTO t VALUES (1)")
        transaction.commit()
        fdt.execute(res, "INSERT INTO t VALUES (2)")
        return answer(start_response, "500 Internal Server Error", {})
    if mode == "savepoint":
        fdt.execute(res, "INSERT INTO t VALUES (1)")
        sp = transaction.savepoint()
        fdt.execute(res, "INSERT INTO t VALUES (2)")
        sp.rollback()
        fdt.execute(res, "INSERT INTO t VALUES (3)")
        return answer(start_response, "200 OK", {})
    if mode == "transient":  # fdt.ConflictError is a Zope TransientError, still a DatabaseError
        from transaction.interfaces import TransientError
        return answer(start_response, "200 OK", {
            "transient": issubclass(fdt.ConflictError, TransientError),
            "database_error": issubclass(fdt.ConflictError, fdt.DatabaseError),
            "mro": [c.__name__ for c in fdt.ConflictError.__mro__]})
    if mode == "caught":  # a real conflict, caught: what the application sees
        from transaction.interfaces import TransientError
        try:
            fdt.execute(res, sql)
        except fdt.ConflictError as e:  # seen by /events: the framework runs this again
            EVENTS.append({"transient": isinstance(e, TransientError)})
            return answer(start_response, "409 Conflict", {})
        return answer(start_response, "200 OK", {})
    if mode == "attempts":  # Zope's own retry loop around the work
        runs = []
        for attempt in transaction.manager.attempts(3):
            with attempt:
                runs.append(len(runs) + 1)
                fdt.execute(res, sql)
        return answer(start_response, "200 OK", {"runs": runs})
    if mode in ("foreign", "foreign-no"):  # a data manager that is not fdtserver's joins
        txn.join(ForeignDM(fail_vote=mode == "foreign-no"))
        fdt.execute(res, sql)
        return answer(start_response, "200 OK", {})
    if mode == "foreign-error":  # the application answers an error: everything aborts
        txn.join(ForeignDM())
        fdt.execute(res, sql)
        return answer(start_response, "409 Conflict", {})
    return answer(start_response, "404 Not Found", {})


# ---- JSON-RPC methods ([app] jsonrpc = txnapps:methods) ----

def rpc_exec(params):
    return {"rows": fdt.execute(params["resource"], params["sql"], params.get("params", ()))}


def rpc_query(params):
    return fdt.query(params["resource"], params["sql"], params.get("params", ()))


def rpc_fail(params):
    fdt.execute(params["resource"], params["sql"])
    raise ValueError("the method failed after its statement")


def rpc_echo(params):
    return {"params": params, "code_digits": len(fdt.random_code(8))}


def rpc_unserializable(params):
    return {"value": object()}


def rpc_zope_foreign(params):
    transaction.get().join(ForeignDM())
    return {"rows": fdt.execute(params["resource"], params["sql"])}


def rpc_zope_abort(params):
    fdt.execute(params["resource"], params["sql"])
    transaction.abort()
    return {"aborted": True}


def rpc_zope_commit(params):
    fdt.execute(params["resource"], params["sql"])
    transaction.commit()
    return {"committed": True}


methods = {
    "zope_abort": rpc_zope_abort,
    "zope_commit": rpc_zope_commit,
    "exec": rpc_exec,
    "query": rpc_query,
    "fail": rpc_fail,
    "echo": rpc_echo,
    "unserializable": rpc_unserializable,
    "zope_foreign": rpc_zope_foreign,
}

not_a_mapping = 42
bad_method = {"ok": rpc_echo, "broken": "not callable"}
