"""Coverage of src/python (issue #14): the failure paths of the embedded CPython host that
test_40 to test_43 do not take, each driven from outside through a real server, and what a
user sees asserted (the status, the body, the log line, that the worker goes on serving).
The applications are tests/apps/python/covpyapps.py (WSGI), covpytxn.py (the fdt module
and Zope's transaction package) and covpyrpc.py (JSON-RPC mappings)."""
import json
import os
import socket
import stat

import pytest
from fdt import RpcClient, wait_for
from http_util import Client, build, get
from test_40_python import PYAPPS, chunked, py_server, req


def cov_server(make_server, **kw):
    return py_server(make_server, wsgi="covpyapps:application", threads=1, **kw)


def read_all(c):
    """Everything the server sends until it closes the connection."""
    try:
        while True:
            c._fill()
    except ConnectionError:
        pass
    return c.buf


def test_16_01_environ_edges(make_server):
    s = cov_server(make_server)
    # A path longer than the environ's stack buffer (1 KiB) is decoded just the same.
    long_path = "/env" + "/%41bc" * 400
    r = req(s, "GET", long_path)
    assert r.status == 404 and r.body == b"no such page"
    r = req(s, "GET", "/env", headers={"Long-Path": "x"})
    assert json.loads(r.body)["PATH_INFO"] == "/env"
    # Header names whose HTTP_ key would not fit 255 bytes are dropped; 250 bytes fit.
    fits, too_long = "A" * 250, "B" * 251
    e = json.loads(req(s, "GET", "/env", headers={fits: "kept", too_long: "dropped"}).body)
    assert e["HTTP_" + fits] == "kept"
    assert not any(k.startswith("HTTP_B") for k in e), sorted(e)


def test_16_02_environ_over_ipv6(make_server):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    s = cov_server(make_server, start=False)
    s.listeners = {"main": {"address": f"[::1]:{s.port}", "protocol": "http"}}
    s.write_config()
    s.start(wait=False)
    s.wait_ready()
    c = Client(s.port, host="::1")
    # HTTP/1.0 without Host: SERVER_NAME is the local address.
    c.send(build("GET", "/env", version="1.0"))
    data = read_all(c)
    c.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    e = json.loads(body)
    assert (e["SERVER_NAME"], e["SERVER_PORT"]) == ("::1", str(s.port))
    assert e["REMOTE_ADDR"] == "::1" and int(e["REMOTE_PORT"]) > 0


def test_16_03_wsgi_input_edges(make_server):
    s = cov_server(make_server)
    pid = s.worker_pids()
    # read() to the end of a chunked body of several 64 KiB pieces (the buffer grows).
    body = bytes(range(256)) * 800
    r = req(s, "POST", "/echo", headers={"Transfer-Encoding": "chunked"},
            body=b"".join(chunked([body[:100000], body[100000:]])))
    assert (r.status, r.body) == (200, body)
    r = req(s, "GET", "/misuse")
    assert json.loads(r.body) == [
        "writelines with bytes: TypeError: wsgi.errors.write() takes a str, not bytes",
        "readline(0): b''",
        "blksize 0: ValueError: file_wrapper: blksize must be positive"]
    s.wait_log("wsgi.errors: logged before")
    # readlines() over a malformed chunked body: the framework answers 400, the
    # application's OSError goes to the log.
    c = Client(s.port)
    c.send(b"POST /readlines HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"4\r\nab\ncd\r\nzz\r\n")
    r = c.read_response()
    c.close()
    assert r.status == 400
    s.wait_log("OSError: wsgi.input: the request body is malformed (400 sent)")
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


def test_16_04_refused_heads_are_500s(make_server):
    s = cov_server(make_server)
    pid = s.worker_pids()
    for path, line in (
            ("/status-surrogate", "GET /status-surrogate: bad status line '?' (not latin-1 text)"),
            ("/header-not-latin1", "GET /header-not-latin1: header 0 is not latin-1 text"),
            ("/header-too-big", "GET /header-too-big: header X-Big: "),
            ("/write-bad-header", "ValueError: bad header X-Bad (a name that is not a token"),
            ("/raises-first", "RuntimeError: the iterator failed before its first item"),
            ("/len1-str", "GET /len1-str: the application returned str, not bytes"),
            ("/len1-bad-status", "GET /len1-bad-status: bad status line 'OK'"),
            ("/stream-bad-status", "GET /stream-bad-status: bad status line 'OK'")):
        r = get(s.port, path)
        assert r.status == 500, path
        assert r.header("X-Big") is None and r.header("Injected") is None
        assert b"never" not in r.body and b"one " not in r.body
        s.wait_log(line)
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


def test_16_05_results_and_close(make_server):
    s = cov_server(make_server)
    pid = s.worker_pids()
    # A generator that yields nothing: an empty 200 with Content-Length 0.
    r = get(s.port, "/empty-generator")
    assert (r.status, r.body, r.header("Content-Length")) == (200, b"", "0")
    # A str after streamed items: the response is cut (no last chunk), the reason logged.
    c = Client(s.port)
    c.send(b"GET /stream-then-str HTTP/1.1\r\nHost: t\r\n\r\n")
    data = read_all(c)
    c.close()
    assert data.startswith(b"HTTP/1.1 200 OK") and b"first " in data
    assert not data.endswith(b"0\r\n\r\n") and b"third" not in data, data
    s.wait_log("GET /stream-then-str: the application returned str, not bytes")
    # close() failing after the response went out: the answer stands, the error is logged.
    r = get(s.port, "/close-raises")
    assert (r.status, r.body) == (200, b"body sent")
    s.wait_log("GET /close-raises: close(): RuntimeError: close failed after the response")
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


def test_16_06_file_wrapper_edges(make_server, tmp_path):
    s = cov_server(make_server)
    pid = s.worker_pids()
    f = tmp_path / "data.bin"
    f.write_bytes(b"file data")
    r = get(s.port, f"/file-bad-status?{f}")
    assert r.status == 500 and b"file data" not in r.body
    s.wait_log("GET /file-bad-status: bad status line 'OK'")
    # Not a regular file (a pipe) and a file-like object without close(): iterated.
    assert get(s.port, "/file-pipe").body == b"through a pipe"
    assert get(s.port, "/file-no-close").body == b"no close here"
    r = get(s.port, "/file-devnull")
    assert (r.status, r.body, r.header("Content-Length")) == (200, b"", "0")
    # A file that holds less than its size says (sysfs): the response is cut and logged.
    short = "/sys/devices/system/cpu/online"
    if os.path.exists(short) and os.stat(short).st_size > len(open(short, "rb").read()):
        c = Client(s.port)
        c.send(f"GET /file-short?{short} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        data = read_all(c)
        c.close()
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % os.stat(short).st_size in head
        assert len(body) < os.stat(short).st_size
        s.wait_log("GET /file-short: sending the file: ")
        assert "(the response is cut)" in s.log()
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


def test_16_07_write_after_the_client_left(make_server, tmp_path):
    s = cov_server(make_server)
    mark = tmp_path / "outcome"
    c = Client(s.port)
    c.send(f"GET /write-until-gone?{mark} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    while b"first piece" not in c.buf:
        c._fill()
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # a reset: the next write fails at once
    (tmp_path / "outcome.go").write_text("")
    wait_for(mark.exists, timeout=30, what="the application's outcome")
    wait_for(lambda: mark.read_text(), what="the outcome written")
    assert mark.read_text() == "OSError: the client closed the connection"
    assert get(s.port, "/env").status == 200


def test_16_08_answers_after_the_client_left(make_server, tmp_path):
    # The client resets the connection while the application runs: its answer (one item,
    # or a file) goes nowhere, quietly; close() is still called; the worker goes on.
    s = cov_server(make_server)
    pid = s.worker_pids()
    for kind in ("whole", "file"):
        mark = tmp_path / f"closed-{kind}"
        c = Client(s.port)
        c.send(f"GET /after-gone?{mark}&{kind} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
        (tmp_path / f"closed-{kind}.go").write_text("")
        wait_for(lambda: mark.exists() and mark.read_text() == "closed", timeout=30,
                 what=f"close() of the {kind} answer")
    assert "sending the file" not in s.log() and "Traceback" not in s.log()
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


# ---- The fdt module and Zope's transaction package (covpytxn.py) ----

def txn_server(make_server, tmp_path, pgdsn=None, wsgi="covpytxn:application", path=PYAPPS):
    """One worker, one thread: resource lite (SQLite, table t) and, given a DSN, pg."""
    import sqlite3
    lite = tmp_path / "lite.db"
    with sqlite3.connect(lite) as db:
        db.execute("CREATE TABLE IF NOT EXISTS t (x int)")
    s = make_server(workers=1, threads=1, start=False, sub="txn")
    lines = ["[server]"] + [f"{k} = {v}" for k, v in s.server.items()]
    lines += [f"[listen.web]\naddress = 127.0.0.1:{s.port}\nprotocol = http",
              f"[app]\nwsgi = {wsgi}", f"[python]\npath = {path}",
              f"[resource.lite]\ndriver = sqlite\npath = {lite}"]
    if pgdsn:
        lines.append(f"[resource.pg]\ndriver = postgresql\ndsn = {pgdsn}\nlog = yes")
    s.conf_path.write_text("\n".join(lines) + "\n")
    s.start()
    return s


def post(c, path, body=b""):
    return c.request("POST", path, body=body)


def events(c):
    return json.loads(post(c, "/events").body)


def rows(c):
    return json.loads(post(c, "/rows").body)


def test_16_10_savepoints_at_their_edges(make_server, tmp_path):
    s = txn_server(make_server, tmp_path)
    c = Client(s.port)
    # A with block that ends normally releases its savepoint, keeping the work.
    r = post(c, "/savepoint-with")
    assert r.status == 200
    assert json.loads(r.body) == [
        "rollback after the with: TransactionStateError: the savepoint was released",
        "__exit__ with 4 arguments: TypeError: __exit__ expected at most 3 arguments, got 4",
        "savepoint on a thread: TransactionStateError: no fdtserver transaction here: the fdt "
        "module works only while a request or a JSON-RPC call runs, on its thread"]
    assert rows(c) == [1, 2]
    # A savepoint the SQL released behind fdt's back: its release, its rollback and the
    # rollback of a with block fail with the database's error; the transaction is doomed
    # (its row is not committed) and the failed rollback of the with block is logged.
    for mode in ("release", "rollback", "with"):
        r = post(c, f"/savepoint-lost/{mode}")
        assert r.status != 200, (mode, r)
        ev = events(c)
        if mode == "with":  # the application's exception goes on
            assert ev == ["with: ValueError: inside the with block"]
        else:
            assert len(ev) == 1 and ev[0].startswith(f"{mode}: DatabaseError: "), ev
            assert "no such savepoint" in ev[0], ev
    s.wait_log("rolling back a savepoint after an exception failed: DatabaseError: "
               "statement failed: no such savepoint: fdt_py_1")
    assert rows(c) == [1, 2]


def test_16_11_zope_binding_edges(make_server, tmp_path):
    s = txn_server(make_server, tmp_path)
    c = Client(s.port)
    # A data manager kept from an earlier request aborting does nothing to this one.
    assert post(c, "/keep-dm").status == 200
    assert post(c, "/stale-abort").status == 200
    assert rows(c) == [10]
    # transaction.begin() failing: logged, and the request goes on (the status decides).
    assert post(c, "/refuse-next-begin").status == 200
    assert post(c, "/insert/11").status == 200
    s.wait_log("transaction.begin() failed: RuntimeError: begin refused once")
    assert rows(c) == [10, 11]
    # The application fails and so does the abort of its Zope transaction: a 500, both
    # logged, the work rolled back.
    r = post(c, "/abort-fails")
    assert r.status == 500 and b"refuses" not in r.body
    s.wait_log("RuntimeError: the application failed")
    s.wait_log("transaction.abort(): RuntimeError: this data manager refuses to abort")
    assert rows(c) == [10, 11]
    # A statement after the head went out: no transaction to work in any more.
    r = post(c, "/late-statement")
    assert r.body == b"head sent. TransactionStateError: the response has already started"
    assert rows(c) == [10, 11]


def test_16_12_fake_transaction_module(make_server, tmp_path):
    # A module called transaction that is not Zope's: fdt.ConflictError cannot take its
    # TransientError as a base; said once in the log, requests go on.
    s = txn_server(make_server, tmp_path, wsgi="covpyfaketxn:application")
    for _ in range(2):
        r = get(s.port, "/")
        assert (r.status, json.loads(r.body)) == (200, ["ConflictError", "DatabaseError",
                                                        "Error", "Exception", "BaseException",
                                                        "object"])
    s.wait_log("making fdt.ConflictError a transaction.interfaces.TransientError failed: "
               "TypeError: __bases__ assignment: 'TransientError' object layout differs")


def test_16_13_postgresql_edges(make_server, postgres, pgdb, tmp_path):
    import psycopg2
    db = psycopg2.connect(pgdb)
    db.autocommit = True
    with db.cursor() as cur:
        cur.execute("CREATE TABLE t (x int)")
        cur.execute("CREATE SEQUENCE runs")
        cur.execute("CREATE TABLE d (x int, CONSTRAINT u UNIQUE (x) DEFERRABLE INITIALLY "
                    "DEFERRED)")
    s = txn_server(make_server, tmp_path, pgdsn=pgdb)
    c = Client(s.port)
    # An int whose decimal text is over Python's limit: ValueError, nothing sent.
    r = post(c, "/bigint")
    assert r.status == 400
    assert "Exceeds the limit (4300 digits)" in json.loads(r.body)["error"]
    # transaction.commit() after a conflict the application caught: ConflictError; the
    # framework runs the request again, which commits.
    conflict_once = (b"INSERT INTO t VALUES (8); DO $$ BEGIN IF nextval('runs') <= 1 THEN "
                     b"RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END IF; END $$")
    r = post(c, "/commit-after-conflict", conflict_once)
    assert (r.status, json.loads(r.body)) == (200, {"committed": True})
    assert events(c) == ["commit: ConflictError: the transaction conflicted with another"]
    with db.cursor() as cur:
        cur.execute("SELECT x FROM t")
        assert cur.fetchall() == [(8,)]
    # The commit before a streamed head fails (a deferred constraint): the framework
    # answers the error, and the application's stream stops there.
    r = post(c, "/stream-commit-fails", b"INSERT INTO d VALUES (1), (1)")
    assert r.status >= 500 and b"first" not in r.body, r
    assert events(c) == []
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM d")
        assert cur.fetchall() == [(0,)]
    db.close()


# ---- Start-up failures and JSON-RPC methods (covpyrpc.py) ----

def rpc_server(make_server, spec, path=PYAPPS, server=None, sub=None, start=True, home=None):
    s = make_server(workers=1, threads=1, start=False, server=server, sub=sub)
    lines = ["[server]"] + [f"{k} = {v}" for k, v in s.server.items()]
    lines += [f"[listen.rpc]\naddress = 127.0.0.1:{s.port}\nprotocol = jsonrpc",
              f"[app]\njsonrpc = {spec}", f"[python]\npath = {path}"]
    if home:
        lines.append(f"home = {home}")
    s.conf_path.write_text("\n".join(lines) + "\n")
    if start:
        s.start()
    return s


def start_fails(s, needle):
    s.start(wait=False)
    wait_for(lambda: needle in s.log(), what=needle)
    s.stop()
    assert "start failed" in s.log()


def test_16_20_bad_mappings_and_modules_fail_the_start(make_server, tmp_path):
    for spec, needle in (("covpyrpc:int_key", "covpyrpc:int_key: the method name 1 is not a str"),
                         ("covpyrpc:builtin_name", "covpyrpc:builtin_name: bad method name "
                                                   "'txn.mine' (1 to 128 bytes; txn.* are built in)"),
                         ("covpyrpc:empty_name", "covpyrpc:empty_name: bad method name '' (1 "
                                                 "to 128 bytes")):
        start_fails(rpc_server(make_server, spec, sub=spec.split(":")[1], start=False),
                    f"cannot import {spec}: TypeError: {needle}" if "int_key" in spec
                    else f"cannot import {spec}: ValueError: {needle}")
    # Modules the host needs, shadowed on [python] path: json (for JSON-RPC) without
    # dumps, and a traceback module that fails to import (no traceback to log with).
    d = tmp_path / "shadow"
    d.mkdir()
    (d / "json.py").write_text("def dumps(obj):\n    return ''\n")
    (d / "rpcmod.py").write_text("methods = {}\n")
    start_fails(rpc_server(make_server, "rpcmod:methods", path=d, sub="json", start=False),
                "cannot import rpcmod:methods: AttributeError: module 'json' has no attribute "
                "'loads'")
    (d / "traceback.py").write_text("raise RuntimeError('this traceback module fails')\n")
    start_fails(rpc_server(make_server, "rpcmod:methods", path=d, sub="tb", start=False),
                "python: start-up failed: RuntimeError (no traceback)")


def test_16_21_jsonrpc_method_edges(make_server):
    s = rpc_server(make_server, "covpyrpc:methods", server={"max_output": "64k"})
    c = RpcClient(s.port)
    assert c.call("echo", [1, {"a": None}])["result"] == [1, {"a": None}]
    # A name in the mapping that a lookup by its text cannot find (its hash is another).
    r = c.call("odd", [])
    assert r["error"] == {"code": -32000, "message": "method odd is not in the mapping"}, r
    # A result over max_output.
    assert c.call("big", {"size": 1000})["result"] == "x" * 1000
    r = c.call("big", {"size": 100000})
    assert r["error"]["message"] == "the result is too large", r
    assert c.call("echo", ["still here"])["result"] == ["still here"]


def test_16_22_virtual_environment_gone_or_broken(make_server, tmp_path):
    # A "virtual environment" whose bin/python3 is the system's: serves. Once bin/python3
    # is gone, a new worker cannot start, and says why.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python3").symlink_to("/usr/bin/python3")
    s = rpc_server(make_server, "covpyrpc:methods", home=venv, sub="venv")
    c = RpcClient(s.port)
    assert c.call("echo", [1])["result"] == [1]
    c.close()
    (venv / "bin" / "python3").unlink()
    os.kill(s.worker_pids()[0], 9)
    s.wait_log(f"[python] home: {venv} is not a virtual environment")
    s.stop()
    # A home that looks like one (its stdlib landmark) but holds no encodings module:
    # the interpreter cannot start.
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True)
    exe = fake / "bin" / "python3"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    lib = fake / "lib" / "python3.11"
    lib.mkdir(parents=True)
    (lib / "os.py").write_text("")
    start_fails(rpc_server(make_server, "covpyrpc:methods", home=fake, sub="fake", start=False),
                "python: cannot start the interpreter: ")


# ---- Python out of memory (CPython's allocator hooks for tests, _testcapi) ----

def testcapi():
    try:
        import _testcapi  # noqa: F401 - the workers run the same Python
    except ImportError:
        pytest.skip("no _testcapi (Debian: libpython3.11-stdlib)")


def test_16_30_out_of_memory_around_a_request(make_server):
    # Each Python allocation from the end of one application's run through the whole next
    # request fails once in turn: each request is answered (a 500 where the failure hit
    # the host, the MemoryError logged) and the worker goes on.
    testcapi()
    s = cov_server(make_server)
    pid = s.worker_pids()
    long_path = "/env/" + "x" * 1100
    seen = {}
    for n in range(120):
        c = Client(s.port)
        r1 = c.request("GET", f"/arm?{n}")
        r2 = c.request("POST", long_path, headers={"Content-Type": "text/plain"}, body=b"b")
        c.close()
        assert r1.status in (200, 500) and r2.status in (404, 500), (n, r1, r2)
        if r1.status == 200:
            assert r1.body == b"armed %d" % n
        seen.setdefault((r1.status, r2.status), n)
    # The last ones armed may not have fired yet: disarm (that request may take the one
    # failure left, then the second one answers).
    assert 200 in [get(s.port, "/disarm").status for _ in range(2)]
    assert (200, 404) in seen and (500, 404) in seen and (200, 500) in seen, seen
    log = s.log()
    # The join of the two items, then the status line's bytes: not blamed on the text.
    assert "GET /arm: MemoryError" in log and "GET /arm: out of memory" in log
    assert "POST /env/xxx" in log and "xx: cannot build the environ" in log
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


def test_16_31_out_of_memory_in_readlines_and_queries(make_server, tmp_path):
    testcapi()
    s = cov_server(make_server)
    body = b"".join(b"line %d\n" % i for i in range(40))
    got = set()
    for n in range(150):
        r = req(s, "POST", f"/nomem-readlines?{n}", body=body)
        assert r.status == 200, (n, r)
        got.add(json.loads(r.body))
    assert got == {40, "MemoryError"}, got
    t = txn_server(make_server, tmp_path)
    c = Client(t.port)
    got = []
    for n in range(80):
        r = post(c, f"/nomem-query/{n}")
        assert r.status == 200, (n, r)
        got.append(json.loads(r.body))
    assert "MemoryError" in got and [["abc", "defg"], ["hij", "klmn"]] in got, got


def test_16_32_out_of_memory_in_jsonrpc_methods(make_server):
    # The allocation failures armed by one call hit the next one's params, its run or its
    # result: each call is answered (a result, or -32000 with the MemoryError), the worker
    # goes on.
    testcapi()
    s = rpc_server(make_server, "covpyrpc:methods")
    pid = s.worker_pids()
    c = RpcClient(s.port)
    params = {"list": [1, "two", 3.5], "text": "some text"}
    answers = set()
    for n in range(60):
        r = c.call("arm", [n])
        assert r.get("result", "x") is None or r["error"]["code"] == -32000, (n, r)
        r = c.call("echo", params)
        if "result" in r:
            assert r["result"] == params, (n, r)
            answers.add("result")
        else:
            assert r["error"]["code"] == -32000 and "MemoryError" in r["error"]["message"], r
            answers.add("MemoryError")
    assert answers == {"result", "MemoryError"}
    assert "disarmed" in [c.call("disarm", []).get("result") for _ in range(2)]
    assert c.call("echo", [1])["result"] == [1] and s.worker_pids() == pid
