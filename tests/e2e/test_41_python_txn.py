"""Transactions from Python (issue #11): the fdt module in the HTTP request's and the
JSON-RPC call's transaction, Zope's transaction package bound to it, and JSON-RPC methods
in Python. The applications are in tests/apps/python/txnapps.py (and txnplain.py)."""
import base64
import json
import re
import socket
import subprocess
import time

import psycopg2
from fdt import FDTSERVER, ROOT, RpcClient, free_port
from http_util import Client, build
from test_21_txn import fdt_txn

PYAPPS = ROOT / "tests" / "apps" / "python"


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Db:
    """The test's own session on the test database (autocommit), to look from outside."""

    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True

    def run(self, sql):
        with self.conn.cursor() as cur:
            cur.execute(sql)

    def rows(self, sql="SELECT x FROM t ORDER BY x"):
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return [int(r[0]) for r in cur.fetchall()]

    def prepared(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()")
            return [r[0] for r in cur.fetchall()]


def txn_server(make_server, postgres, pgdb, tmp_path, wsgi="txnapps:application",
               jsonrpc="txnapps:methods", threads=2):
    """fdtserver with a Python WSGI application (http) and Python JSON-RPC methods, on
    PostgreSQL (pg) and SQLite (lite), each with a table t (x int PRIMARY KEY)."""
    db = Db(pgdb)
    db.run("CREATE TABLE IF NOT EXISTS t (x int PRIMARY KEY)")
    s = make_server(workers=1, threads=threads, server={"node": "pynode"}, start=False)
    s.rpc_port = free_port()
    listeners = {"web": {"address": f"127.0.0.1:{s.port}", "protocol": "http"},
                 "rpc": {"address": f"127.0.0.1:{s.rpc_port}", "protocol": "jsonrpc",
                         "txn_recovery": "yes"}}
    lines = ["[server]"] + [f"{k} = {v}" for k, v in s.server.items()]
    for name, kv in listeners.items():
        lines += [f"[listen.{name}]"] + [f"{k} = {v}" for k, v in kv.items()]
    lines += ["[app]"] + ([f"wsgi = {wsgi}"] if wsgi else []) + (
        [f"jsonrpc = {jsonrpc}"] if jsonrpc else [])
    lines += ["[python]", f"path = {PYAPPS}",
              "[resource.pg]", "driver = postgresql", f"dsn = {pgdb}", "log = yes",
              "[resource.lite]", "driver = sqlite", f"path = {tmp_path}/lite.db"]
    s.conf_path.write_text("\n".join(lines) + "\n")
    s.start()
    return s, db


def post(c, path, body=""):
    c.send(build("POST", path, body=body.encode()))
    return c.read_response()


def lite_rows(c):
    r = post(c, "/query/lite", json.dumps({"sql": "SELECT x FROM t ORDER BY x", "params": []}))
    assert r.status == 200, r
    return [int(x[0]) for x in json.loads(r.body)]


def check_status_rule(s, db):
    c = Client(s.port)
    for status, x in ((200, 1), (201, 2), (303, 3), (404, 4), (409, 5), (500, 6)):
        r = post(c, f"/exec/pg/{status}", f"INSERT INTO t VALUES ({x})")
        assert r.status == status and json.loads(r.body) == {"rows": 1}, r
    # An exception after the statement: 500, rolled back; the worker goes on.
    r = post(c, "/raise/pg", "INSERT INTO t VALUES (7)")
    assert r.status == 500 and b"Traceback" not in r.body
    # A statement that fails: fdt.DatabaseError, uncaught: 500, nothing kept.
    r = post(c, "/exec/pg/200", "INSERT INTO t VALUES (1)")
    assert r.status == 500
    assert db.rows() == [1, 2, 3]
    s.wait_log("DatabaseError")
    s.wait_log("the application failed after its statement")


def test_41_01_status_decides_commit_or_rollback(make_server, postgres, pgdb, tmp_path):
    """2xx/3xx commit; 4xx, 5xx and exceptions roll back — with Zope's package loaded by
    the application (txnapps imports transaction) and without it (txnplain)."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    check_status_rule(s, db)
    c = Client(s.port)
    # SQLite (one phase).
    assert post(c, "/exec/lite/200", "CREATE TABLE t (x int PRIMARY KEY)").status == 200
    assert post(c, "/exec/lite/201", "INSERT INTO t VALUES (1)").status == 201
    assert post(c, "/exec/lite/500", "INSERT INTO t VALUES (2)").status == 500
    assert lite_rows(c) == [1]
    s.stop()
    db.run("DELETE FROM t")
    s2, _ = txn_server(make_server, postgres, pgdb, tmp_path, wsgi="txnplain:application",
                       jsonrpc="")
    check_status_rule(s2, db)
    assert db.prepared() == []


def test_41_12_client_gone_before_commit_rolls_back(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(build("POST", "/slow/pg/700", body=b"INSERT INTO t VALUES (42)"))
    time.sleep(0.2)  # the application is sleeping with its row inserted, not committed
    sock.close()
    s.wait_log("closed the connection before the commit")
    assert db.rows() == []
    # A client that stays gets its answer and its row.
    assert post(Client(s.port), "/slow/pg/10", "INSERT INTO t VALUES (43)").status == 200
    assert db.rows() == [43]


def test_41_02_parameters_rows_and_errors(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    q = {"sql": "SELECT $1::int + 1, $2::text, $3::text IS NULL, $4::float8 * 2",
         "params": [41, "x'; DROP TABLE t; --", None, 1.25]}
    r = post(c, "/query/pg", json.dumps(q))
    assert json.loads(r.body) == [["42", "x'; DROP TABLE t; --", "t", "2.5"]]
    q = {"sql": "SELECT $1 + 1, $2, $3 IS NULL", "params": [41, "é", None]}
    assert json.loads(post(c, "/query/lite", json.dumps(q)).body) == [["42", "é", "1"]]
    # Bad input: a clear error, nothing done.
    r = post(c, "/badparam")
    assert r.status == 400 and "parameter 1 is a list" in json.loads(r.body)["error"]
    # Outside a request's thread there is no transaction.
    r = post(c, "/outside")
    assert json.loads(r.body)["error"].startswith("TransactionStateError: no fdtserver "
                                                  "transaction here")
    # An unknown resource is an fdt.Error, not a crash.
    r = post(c, "/query/nosuch", json.dumps({"sql": "SELECT 1", "params": []}))
    assert r.status == 500
    s.wait_log("fdt.Error")


def test_41_03_savepoints(make_server, postgres, pgdb, tmp_path):
    """with fdt.savepoint(), sp.rollback(), and a failed statement undone by a savepoint."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    r = post(c, "/savepoint/pg")
    assert r.status == 200, (r, s.log()[-3000:])
    assert db.rows() == [1, 4, 5]


def test_41_04_random_code(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    for digits in (1, 6, 40):
        r = post(c, f"/code/{digits}")
        codes = json.loads(r.body)
        assert all(re.fullmatch(rf"[1-9][0-9]{{{digits - 1}}}", x) for x in codes), codes
        if digits > 1:
            assert len(set(codes)) > 1
    r = post(c, "/code/0")
    assert r.status == 500
    s.wait_log("ValueError: digits must be 1..128, not 0")


def test_41_05_conflict_runs_the_request_again(make_server, postgres, pgdb, tmp_path):
    """A serialization failure (40001) raises fdt.ConflictError; left uncaught, the
    framework rolls back and runs the application again, as for C views."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    db.run("CREATE SEQUENCE runs")
    conflict_twice = ("INSERT INTO t VALUES (10); DO $$ BEGIN IF nextval('runs') <= 2 THEN "
                      "RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END IF; END $$")
    c = Client(s.port)
    r = post(c, "/exec/pg/201", conflict_twice)
    assert r.status == 201, r
    assert db.rows() == [10]
    assert db.rows("SELECT last_value FROM runs") == [3]  # three runs, counted
    # The same through Zope, with a foreign data manager joined: the same re-run.
    db.run("ALTER SEQUENCE runs RESTART")
    r = post(c, "/zope/foreign/pg", conflict_twice.replace("(10)", "(11)"))
    assert r.status == 200, r
    assert db.rows() == [10, 11]
    assert db.rows("SELECT last_value FROM runs") == [3]
    ev = json.loads(post(c, "/events").body)
    # Two aborted runs, then one that committed.
    assert ev.count("tpc_finish") == 1 and ev.count("abort") == 2, ev
    always = ("INSERT INTO t VALUES (12); DO $$ BEGIN PERFORM nextval('runs'); "
              "RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
    r = post(c, "/exec/pg/200", always)
    assert r.status == 503, r
    assert db.rows() == [10, 11]


def test_41_06_zope_transaction_bound_to_the_request(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    r = post(c, "/zope/bound/pg")
    assert r.status == 200 and json.loads(r.body) == {"resources": ["_DataManager"]}
    assert db.rows() == [1]
    db.run("DELETE FROM t")
    # doom(): rolled back, the application's response is sent as it made it.
    r = post(c, "/zope/doom/pg")
    assert r.status == 200 and json.loads(r.body) == {"doomed": True}
    assert db.rows() == []
    # abort() undoes what came before it; the work after it commits with the request.
    assert post(c, "/zope/abort/pg").status == 200
    assert db.rows() == [2]
    db.run("DELETE FROM t")
    # commit() commits at once; what follows belongs to the request (500: rolled back).
    assert post(c, "/zope/early/pg").status == 500
    assert db.rows() == [1]
    db.run("DELETE FROM t")
    # transaction.savepoint() rolls back fdtserver's work since it.
    assert post(c, "/zope/savepoint/pg").status == 200
    assert db.rows() == [1, 3]


def test_41_07_foreign_data_manager_votes_before_the_decision(make_server, postgres, pgdb,
                                                               tmp_path):
    """A foreign data manager votes before fdtserver's commit and finishes after it: its
    'no' rolls fdtserver's resources back; fdtserver's failed commit aborts it."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    db.run("CREATE TABLE d (x int, CONSTRAINT u UNIQUE (x) DEFERRABLE INITIALLY DEFERRED)")
    c = Client(s.port)
    assert post(c, "/zope/foreign/pg", "INSERT INTO t VALUES (1)").status == 200
    assert json.loads(post(c, "/events").body) == ["tpc_begin", "commit", "tpc_vote",
                                                   "tpc_finish"]
    assert db.rows() == [1]
    # The foreign data manager votes no: fdtserver's work rolls back, the client gets 500.
    r = post(c, "/zope/foreign-no/pg", "INSERT INTO t VALUES (2)")
    assert r.status == 500 and b"Traceback" not in r.body
    ev = json.loads(post(c, "/events").body)
    assert ev[:3] == ["tpc_begin", "commit", "tpc_vote"] and "tpc_finish" not in ev, ev
    assert "tpc_abort" in ev
    assert db.rows() == [1]
    s.wait_log("the foreign data manager votes no")
    # fdtserver's commit fails (a deferred constraint): the foreign one is aborted.
    r = post(c, "/zope/foreign/pg", "INSERT INTO d VALUES (1), (1)")
    assert r.status == 500
    ev = json.loads(post(c, "/events").body)
    assert "tpc_vote" in ev and "tpc_abort" in ev and "tpc_finish" not in ev, ev
    assert db.rows("SELECT count(*) FROM d") == [0]
    # An error answer: everything aborts, nothing voted.
    assert post(c, "/zope/foreign-error/pg", "INSERT INTO t VALUES (3)").status == 409
    assert json.loads(post(c, "/events").body) == ["abort"]
    assert db.rows() == [1]
    assert db.prepared() == []


def test_41_08_jsonrpc_methods_in_python(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    # Outside txn.begin: a root transaction of the call's own, committed on success.
    r = c.call("exec", {"resource": "pg", "sql": "INSERT INTO t VALUES (1)"})
    assert r["result"] == {"rows": 1}
    r = c.call("echo", [1, "two", None, {"x": 1.5}])
    assert r["result"] == {"params": [1, "two", None, {"x": 1.5}], "code_digits": 8}
    assert c.call("echo")["result"]["params"] is None
    r = c.call("fail", {"resource": "pg", "sql": "INSERT INTO t VALUES (2)"})
    assert r["error"] == {"code": -32000,
                          "message": "ValueError: the method failed after its statement"}
    r = c.call("unserializable")
    assert r["error"]["code"] == -32000 and "not JSON serializable" in r["error"]["message"]
    assert c.call("nosuch")["error"]["code"] == -32601
    assert db.rows() == [1]
    # Inside txn.begin: a failing method leaves the transaction as it was.
    xid = {"format_id": 7, "gtrid": b64(b"py-coord-1"), "bqual": b64(b"b1")}
    assert c.call("txn.begin", {"xid": xid})["result"]["state"] == "active"
    assert c.call("exec", {"resource": "pg", "sql": "INSERT INTO t VALUES (3)"})["result"]
    r = c.call("fail", {"resource": "pg", "sql": "INSERT INTO t VALUES (4)"})
    assert r["error"]["code"] == -32000
    rr = c.call("query", {"resource": "pg", "sql": "SELECT x FROM t WHERE x > $1 ORDER BY x",
                          "params": [1]})
    assert rr["result"] == [["3"]]
    # A foreign data manager cannot join a JSON-RPC call's transaction: the call fails.
    r = c.call("zope_foreign", {"resource": "pg", "sql": "INSERT INTO t VALUES (5)"})
    assert r["error"]["code"] == -32000 and "cannot take part" in r["error"]["message"], r
    # transaction.abort() undoes the call; transaction.commit() cannot end the transaction.
    r = c.call("zope_abort", {"resource": "pg", "sql": "INSERT INTO t VALUES (6)"})
    assert r["error"] == {"code": -32000, "message": "the method aborted its transaction"}
    r = c.call("zope_commit", {"resource": "pg", "sql": "INSERT INTO t VALUES (7)"})
    assert r["error"]["code"] == -32000 and "cannot end a JSON-RPC call" in r["error"]["message"]
    # A conflict inside the client's transaction: -32014, and the transaction goes on.
    db.run("CREATE SEQUENCE runs")
    conflict_once = ("INSERT INTO t VALUES (8); DO $$ BEGIN IF nextval('runs') <= 1 THEN "
                     "RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END IF; END $$")
    r = c.call("exec", {"resource": "pg", "sql": conflict_once})
    assert r["error"]["code"] == -32014, r
    assert c.call("txn.finish")["result"] == {"state": "committed"}
    assert db.rows() == [1, 3]
    # Outside a client's transaction a conflict runs the call again: one answer, one row.
    conflict_twice = conflict_once.replace("(8)", "(9)").replace("<= 1", "<= 3")
    r = c.call("exec", {"resource": "pg", "sql": conflict_twice})
    assert r["result"] == {"rows": 0}, r  # the script's last statement (DO) changed none
    assert db.rows() == [1, 3, 9]
    assert db.rows("SELECT last_value FROM runs") == [4]  # runs 2, 3 and 4


def test_41_09_jsonrpc_disconnect_rule(make_server, postgres, pgdb, tmp_path):
    """Python methods inside txn.begin ... txn.vote: closing before the vote rolls back;
    after it every branch stays prepared and listed until txn.commit_prepared."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    c.call("txn.begin", {"xid": {"gtrid": b64(b"py-before")}})
    assert c.call("exec", {"resource": "pg", "sql": "INSERT INTO t VALUES (1)"})["result"]
    c.close()
    s.wait_log("closed before the vote")
    assert db.rows() == [] and db.prepared() == []
    xid = {"format_id": 3, "gtrid": b64(b"py-after"), "bqual": b64(b"q")}
    c = RpcClient(s.rpc_port)
    c.call("txn.begin", {"xid": xid})
    assert c.call("exec", {"resource": "pg", "sql": "INSERT INTO t VALUES (2)"})["result"]
    assert c.call("txn.vote")["result"]["prepared"] == 1
    c.close()
    s.wait_log("stays prepared")
    gids = db.prepared()
    assert len(gids) == 1 and db.rows() == []
    listed = fdt_txn(s, "list")
    assert listed.returncode == 0 and gids[0] in listed.stdout, listed
    d = RpcClient(s.rpc_port)
    assert d.call("txn.commit_prepared", {"xid": xid})["result"] == {"state": "committed",
                                                                     "already": False}
    assert db.rows() == [2] and db.prepared() == []


def run_check(conf):
    return subprocess.run([str(FDTSERVER), "-c", str(conf), "--check"], capture_output=True,
                          text=True, timeout=10)


def test_41_10_configuration(tmp_path):
    conf = tmp_path / "c.ini"
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = jsonrpc\n[app]\n"
                    "module = x.so\njsonrpc = a:b\n")
    r = run_check(conf)
    assert r.returncode == 2 and f"{conf}:6" in r.stderr and "cannot be served together" in r.stderr
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\n[app]\njsonrpc = nocolon\n")
    r = run_check(conf)
    assert r.returncode == 2 and "expected pkg.module:mapping" in r.stderr
    # JSON-RPC methods alone cannot serve an http listener (the default protocol).
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\n[app]\njsonrpc = a:b\n")
    r = run_check(conf)
    assert r.returncode == 2 and "[listen.a] protocol = http, but the Python application has " \
        "no [app] wsgi" in r.stderr, r.stderr
    # --check imports nothing: a module that does not exist passes, named with a warning
    # (test_40_22).
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = jsonrpc\n[app]\n"
                    "jsonrpc = not_there:methods\nwsgi = nor_this:app\n[python]\npath = src\n")
    r = run_check(conf)
    assert r.returncode == 0, r.stderr
    assert "jsonrpc = not_there:methods" in r.stdout
    assert "module not_there is not found on sys.path" in r.stderr, r.stderr


def test_41_11_bad_mappings_fail_the_start(make_server, tmp_path):
    for spec, needle in (("txnapps:not_a_mapping", "is not a mapping of method names"),
                         ("txnapps:bad_method", "['broken'] is not callable"),
                         ("txnapps:missing", "AttributeError")):
        s = make_server(workers=1, start=False, sub=spec.replace(":", "_"))
        s.conf_path.write_text(
            "\n".join(["[server]"] + [f"{k} = {v}" for k, v in s.server.items()] +
                      ["[listen.rpc]", f"address = 127.0.0.1:{s.port}", "protocol = jsonrpc",
                       "[app]", f"jsonrpc = {spec}", "[python]", f"path = {PYAPPS}"]) + "\n")
        s.start(wait=False)
        from fdt import wait_for
        wait_for(lambda: needle in s.log(), what=f"{needle} for {spec}")
        s.stop()


def test_41_13_concurrent_requests_and_calls(make_server, postgres, pgdb, tmp_path):
    """Several HTTP clients and JSON-RPC clients at once on a worker's threads: each works
    in its own transaction (the binding is per thread), every answer says what happened."""
    import threading
    s, db = txn_server(make_server, postgres, pgdb, tmp_path, threads=4)
    failures = []

    def http_client(base):
        c = Client(s.port)
        for i in range(15):
            status = 200 if i % 3 else 500
            r = post(c, f"/exec/pg/{status}", f"INSERT INTO t VALUES ({base + i})")
            if r.status != status:
                failures.append(r)

    def rpc_client(base):
        c = RpcClient(s.rpc_port)
        for i in range(15):
            method = "exec" if i % 3 else "fail"
            r = c.call(method, {"resource": "pg", "sql": f"INSERT INTO t VALUES ({base + i})"})
            if ("result" in r) != (method == "exec"):
                failures.append(r)

    threads = [threading.Thread(target=http_client, args=(1000 * k,)) for k in range(1, 4)]
    threads += [threading.Thread(target=rpc_client, args=(1000 * k,)) for k in range(4, 6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []
    expected = sorted(1000 * k + i for k in range(1, 6) for i in range(15) if i % 3)
    assert db.rows() == expected


def test_41_14_conflict_error_is_a_zope_transient_error(make_server, postgres, pgdb, tmp_path):
    """With Zope's transaction package imported by the application, fdt.ConflictError is
    also a transaction.interfaces.TransientError (still an fdt.DatabaseError), so code
    that sorts errors the Zope way (transaction's managers, pyramid_tm, pyramid_retry)
    takes a conflict as retryable; without it, it is fdt's alone."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    r = json.loads(post(c, "/zope/transient/pg").body)
    assert r["transient"] and r["database_error"], r
    assert r["mro"][:4] == ["ConflictError", "DatabaseError", "Error", "TransientError"]
    always = ("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
    post(c, "/events")
    r = post(c, "/zope/caught/pg", always)
    assert r.status == 503  # the conflict holds whatever the application answers
    seen = json.loads(post(c, "/events").body)
    assert seen == [{"transient": True}] * 5, seen
    # Zope's retry loop inside a request: the conflicted transaction cannot go on in that
    # request, so the framework runs the request again, and the work is done once.
    db.run("CREATE SEQUENCE runs")
    conflict_twice = ("INSERT INTO t VALUES (10); DO $$ BEGIN IF nextval('runs') <= 2 THEN "
                      "RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END IF; END $$")
    r = post(c, "/zope/attempts/pg", conflict_twice)
    assert r.status == 200, r
    assert db.rows() == [10] and db.rows("SELECT last_value FROM runs") == [3]
    s.stop()
    s2, _ = txn_server(make_server, postgres, pgdb, tmp_path, wsgi="txnplain:application",
                       jsonrpc="")
    r = post(Client(s2.port), "/bases")
    assert json.loads(r.body) == ["ConflictError", "DatabaseError", "Error", "Exception",
                                  "BaseException", "object"]


def pyquery(c, resource, sql, params):
    r = post(c, f"/pyquery/{resource}", repr({"sql": sql, "params": params}))
    return r.status, json.loads(r.body) if r.status != 500 else r.body


def test_41_15_parameter_types(make_server, postgres, pgdb, tmp_path):
    """None, bool, int (also beyond 64 bits on PostgreSQL), float, str and bytes
    (PostgreSQL) are bound by value as each database takes them; values come back as the
    database's text, or None. Any other type is a TypeError naming the parameter, and
    nothing runs."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    big = 2 ** 70
    blob = bytes(range(256))
    status, rows = pyquery(c, "pg", "SELECT $1::boolean, $2::boolean, $3::bytea = "
                           "decode($4, 'hex'), length($3::bytea), $5::numeric + 1, $6::text, "
                           "$7::float8, $8::int IS NULL, $9::bytea",
                           (True, False, blob, blob.hex(), big, True, 1e300, None,
                            b"\x00a"))
    assert status == 200, rows
    assert rows == [["t", "f", "t", "256", str(big + 1), "true", "1e+300", "t", "\\x0061"]]
    # A bool where PostgreSQL wants an integer is refused by the database, as in SQL.
    assert pyquery(c, "pg", "SELECT $1::int", (True,))[0] == 500
    s.wait_log('invalid input syntax for type integer: "true"')
    # SQLite: booleans are 1 and 0, floats and texts as given.
    assert pyquery(c, "lite", "SELECT $1, $2, typeof($1), $3 * 2, $4 IS NULL, $5",
                   (True, False, 1.25, None, -2 ** 63)) == \
        (200, [["1", "0", "integer", "2.5", "1", str(-2 ** 63)]])
    # Refused before anything runs, with the parameter named.
    for res, params, error in (
            ("lite", (1, b"ab"), "TypeError: parameter 2 is bytes: a SQLite resource takes "
                                 "no bytes parameters"),
            ("lite", (2 ** 64,), "OverflowError: parameter 1 is an int out of SQLite's "
                                 "64-bit range"),
            ("pg", (1, 2, {1}), "TypeError: parameter 3 is a set: parameters are None, bool, "
                                "int, float, str or bytes (PostgreSQL)"),
            ("pg", ("a\0b",), "ValueError: parameter 1 contains a NUL character")):
        status, body = pyquery(c, res, "SELECT 1" + "".join(f", ${i + 1}" for i in
                                                           range(len(params))), params)
        assert (status, body["error"][:len(error)]) == (400, error), body


def test_41_16_misused_fdt_calls_raise_clear_errors(make_server, postgres, pgdb, tmp_path):
    """Wrong calls to the fdt module raise exceptions that say what is wrong, and the
    request's transaction goes on; a savepoint kept from an ended request refuses."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    for res in ("pg", "lite"):
        r = post(c, f"/misuse/{res}")
        assert r.status == 200, r
        assert json.loads(r.body) == [
            "params not a sequence: TypeError: params must be a sequence (a tuple or list)",
            "101 params: ValueError: at most 100 parameters",
            "random_code str: TypeError: 'str' object cannot be interpreted as an integer",
            "released savepoint: TransactionStateError: the savepoint was released",
            "17th savepoint: Error: more than 16 savepoints",
            "42"], res
        r = post(c, f"/misuse-later/{res}")
        assert json.loads(r.body) == ["old savepoint: TransactionStateError: the savepoint's "
                                      "transaction has ended"]
