"""Edges of the fdt module and of its binding to Zope's transaction package, for
tests/e2e/test_16_cov_python.py ([app] wsgi = covpytxn:application, resources lite (SQLite)
and pg, each with a table t (x int)). Routes by PATH_INFO; what a route saw that the
answer cannot carry (its transaction is rolled back, or run again) goes to EVENTS, read
with /events (one worker, one thread)."""
import json
import threading

import fdt
import transaction

EVENTS = []
KEPT = {}


def answer(start_response, data, status="200 OK"):
    start_response(status, [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]


def attempt(name, fn):
    try:
        fn()
        EVENTS.append(f"{name}: no error")
    except Exception as e:  # noqa: BLE001 - reported to the test
        EVENTS.append(f"{name}: {type(e).__name__}: {e}")


class AbortFails:
    """A data manager whose abort raises."""

    transaction_manager = transaction.manager

    def sortKey(self):
        return "abort-fails"

    def abort(self, txn):
        raise RuntimeError("this data manager refuses to abort")

    tpc_begin = commit = tpc_vote = tpc_finish = tpc_abort = abort


def begin_refused_once():
    del transaction.manager.begin  # the next begin works again
    raise RuntimeError("begin refused once")


def savepoint_lost(mode):
    """A savepoint the SQL released behind fdt's back: its rollback or release fails."""
    fdt.execute("lite", "INSERT INTO t VALUES (100)")
    sp = fdt.savepoint()
    fdt.execute("lite", 'RELEASE "fdt_py_1"')
    if mode == "release":
        attempt("release", sp.release)
    elif mode == "rollback":
        attempt("rollback", sp.rollback)
    else:
        def in_with():
            with sp:
                raise ValueError("inside the with block")
        attempt("with", in_with)


def application(environ, start_response):
    parts = environ["PATH_INFO"].strip("/").split("/")
    what = parts[0]
    if what == "insert":  # /insert/N on lite
        fdt.execute("lite", f"INSERT INTO t VALUES ({int(parts[1])})")
        return answer(start_response, {"inserted": int(parts[1])})
    if what == "rows":
        return answer(start_response, [int(r[0]) for r in
                                       fdt.query("lite", "SELECT x FROM t ORDER BY x")])
    if what == "events":
        ev = list(EVENTS)
        EVENTS.clear()
        return answer(start_response, ev)
    if what == "savepoint-with":  # a with block that ends normally releases the savepoint
        fdt.execute("lite", "INSERT INTO t VALUES (1)")
        with fdt.savepoint() as sp:
            fdt.execute("lite", "INSERT INTO t VALUES (2)")
        with sp:  # released already: nothing to do at its end
            pass
        out = []
        for name, fn in (("rollback after the with", sp.rollback),
                         ("__exit__ with 4 arguments", lambda: sp.__exit__(1, 2, 3, 4))):
            try:
                fn()
                out.append(f"{name}: no error")
            except Exception as e:  # noqa: BLE001 - reported to the test
                out.append(f"{name}: {type(e).__name__}: {e}")
        # fdt.savepoint() on a thread of the application's own: no transaction there.
        th = threading.Thread(target=attempt, args=("savepoint on a thread", fdt.savepoint))
        th.start()
        th.join()
        out.append(EVENTS.pop())
        return answer(start_response, out)
    if what == "savepoint-lost":  # /savepoint-lost/MODE
        savepoint_lost(parts[1])
        return answer(start_response, {})
    if what == "keep-dm":  # keep this request's fdtserver data manager
        KEPT["dm"] = [r for r in transaction.get()._resources
                      if type(r).__name__ == "_DataManager"][0]
        return answer(start_response, {})
    if what == "stale-abort":  # an earlier request's data manager aborts: nothing happens
        fdt.execute("lite", "INSERT INTO t VALUES (10)")
        KEPT["dm"].abort(None)
        fdt._abort("not a generation")
        return answer(start_response, {})
    if what == "refuse-next-begin":
        transaction.manager.begin = begin_refused_once
        return answer(start_response, {})
    if what == "abort-fails":  # the application fails; aborting its transaction fails too
        transaction.get().join(AbortFails())
        fdt.execute("lite", "INSERT INTO t VALUES (20)")
        raise RuntimeError("the application failed")
    if what == "nomem-query":  # /nomem-query/N: fdt.query with the N+1-th allocation failing
        import _testcapi
        _testcapi.set_nomemory(int(parts[1]), int(parts[1]) + 1)
        try:
            out = fdt.query("lite", "SELECT 'abc', $1 UNION ALL SELECT 'hij', 'klmn'",
                            ("defg",))
        except MemoryError:
            out = "MemoryError"
        finally:
            _testcapi.remove_mem_hooks()
        return answer(start_response, out)
    if what == "nomem-savepoint":  # /nomem-savepoint/N: fdt.savepoint(), N+1-th alloc fails
        import _testcapi
        fdt.execute("lite", "INSERT INTO t VALUES (30)")
        fdt.savepoint()  # the transaction is joined: what follows is the savepoint's own
        _testcapi.set_nomemory(int(parts[1]), int(parts[1]) + 1)
        try:
            fdt.savepoint()
            out = "savepoint"
        except MemoryError:
            out = "MemoryError"
        finally:
            _testcapi.remove_mem_hooks()
        return answer(start_response, out)
    if what == "late-statement":  # a statement once the head has gone out
        return late_statement(start_response)
    if what == "bigint":  # an int over 4300 digits as a PostgreSQL parameter
        try:
            fdt.query("pg", "SELECT $1::text", (10 ** 5000,))
        except ValueError as e:
            return answer(start_response, {"error": str(e)}, "400 Bad Request")
        return answer(start_response, {})
    if what == "commit-after-conflict":  # /commit-after-conflict with the SQL as the body
        sql = environ["wsgi.input"].read().decode()
        try:
            fdt.execute("pg", sql)
        except fdt.ConflictError:
            try:
                transaction.commit()
            except fdt.ConflictError as e:
                EVENTS.append(f"commit: {type(e).__name__}: {e}")
                transaction.abort()
            return answer(start_response, {}, "409 Conflict")
        transaction.commit()
        return answer(start_response, {"committed": True})
    if what == "stream-commit-fails":  # the body's SQL, then a stream: the commit fails
        fdt.execute("pg", environ["wsgi.input"].read().decode())
        return stream(start_response)
    return answer(start_response, {"error": "no such path"}, "404 Not Found")


def late_statement(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"head sent. "
    try:
        fdt.execute("lite", "INSERT INTO t VALUES (30)")
        yield b"no error"
    except fdt.Error as e:
        yield f"{type(e).__name__}: {e}".encode()


def stream(start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first "
    EVENTS.append("the stream went on")
    yield b"second"
