"""Out of memory inside a real worker, on the request path of HTTP, the JSON writer, the WSGI
host and apps/hello (tests/shim/failshim.so, preloaded: FDT_FAIL=alloc@N/child fails the
N-th allocation of our own code in each worker). A walk raises N from 1 until nothing
fails any more: each failure that hits a worker's start stops the server with a clear
message; each that hits a request gets a 503/500 with a clear body, or the connection is
closed with a line in the log, and the same worker then serves the next request."""
import json
import os

import pytest
from fdt import BUILD, RpcClient, wait_for
from http_util import Client, HELLO, build
from test_40_python import py_server

FAILSHIM = BUILD / "tests" / "shim" / "failshim.so"


def need_failshim():
    if not FAILSHIM.exists():
        pytest.skip("no failshim.so (sanitizer build)")


def fail_env(n, log):
    return {"LD_PRELOAD": str(FAILSHIM), "FDT_FAIL": f"alloc@{n}/child",
            "FDT_FAIL_LOG": str(log)}


def failures(log):
    """The failures failshim made so far (one line each)."""
    return log.read_text().splitlines() if log.exists() else []


def exchange(port, raw, keep=1):
    """Send raw bytes on a new connection; the responses (keep of them, fewer when the
    server closes first), or None for a connection the server closed at once."""
    c = Client(port)
    got = []
    try:
        c.send(raw)
        for _ in range(keep):
            got.append(c.read_response())
    except (ConnectionError, OSError, ValueError):
        pass
    finally:
        c.close()
    return got or None


def walk(make_server, mk, requests, check_ok, again="/", limit=400):
    """Start a server (mk(make_server, n, env)) for n = 1, 2, ... with the n-th allocation
    of each worker failing, until one runs every request without a failure. requests: list
    of (raw bytes, number of responses); check_ok(i, responses) asserts request i's answer
    when nothing failed in it. Returns what happened: {"start", "answer", "closed"}."""
    seen = {}
    for n in range(1, limit):
        s = mk(make_server, n)
        log = s.dir / "fail.log"
        s.start(wait=False)
        try:
            s.wait_ready(timeout=60)
        except AssertionError:
            if s.proc.poll() is None:
                raise  # not started in time: not a failure of the walk
            # The worker's start took the failure: the master says so and exits.
            assert s.wait_exit() == 1, n
            assert "cannot start: worker 0: out of memory" in s.log(), s.log()[-2000:]
            seen.setdefault("start", n)
            continue
        pid = s.worker_pids()
        for i, (raw, keep) in enumerate(requests):
            before = len(failures(log))
            got = exchange(s.port, raw, keep)
            if len(failures(log)) == before:
                assert got is not None and len(got) == keep, (n, i, s.log()[-2000:])
                check_ok(i, got)
                continue
            bad = [r for r in got or [] if r.status != 200]
            if got and len(got) == keep and not bad:
                # Absorbed (say, the copy kept to replay a body): the answer is whole.
                check_ok(i, got)
                seen.setdefault("absorbed", n)
            elif not bad:
                # Closed before an answer: the log says why.
                assert got is None or len(got) < keep, (n, i)
                wait_for(lambda: "out of memory" in s.log(),
                         what=f"out of memory logged (n={n}, request {i}): {s.log()[-1500:]}")
                seen.setdefault("closed", n)
            else:
                r = bad[0]
                assert r.status in (500, 503), (n, i, r.status, r.body)
                assert r.body.strip(), (n, i, r.status)
                seen.setdefault(("answer", r.status, r.body), n)
            # The same worker serves the next request.
            r = exchange(s.port, build("GET", again))
            assert r and r[0].status == 200, (n, i, s.log()[-2000:])
            assert s.worker_pids() == pid, n
        done = not failures(log)
        assert s.stop() == 0, (n, s.log()[-2000:])
        if done:
            return seen
    raise AssertionError(f"still failing after {limit} allocations")


def hello(make_server, n, **app_keys):
    s = make_server(app=HELLO, workers=1, threads=1, start=False, sub=f"n{n}", app_keys=app_keys,
                    server={"log_level": "debug"})
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.env.update(fail_env(n, s.dir / "fail.log"))
    return s


def test_17_01_hello_requests_out_of_memory(make_server):
    need_failshim()
    long_path = "/tree" + "/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" * 14
    requests = [
        (build("GET", "/"), 1),
        (build("GET", "/whoami"), 1),
        (build("POST", "/echo", body=b"x" * 300), 1),
        (build("POST", "/echo", headers={"Transfer-Encoding": "chunked"},
               body=b"100\r\n" + b"c" * 256 + b"\r\n0\r\n\r\n"), 1),
        (build("GET", long_path), 1),
        (build("GET", "/stream/3"), 1),
        (build("GET", "/") + build("GET", "/whoami"), 2),
    ]

    def ok(i, got):
        assert all(r.status == 200 for r in got), (i, [r.status for r in got])
        if i == 1:
            assert json.loads(got[0].body)["version"] == "1"
        if i == 4:
            assert got[0].body.startswith(b"url=" + long_path.encode())

    seen = walk(make_server, hello, requests, ok)
    assert "start" in seen and any(k[0] == "answer" for k in seen if isinstance(k, tuple)), seen


def test_17_02_hello_json_errors_out_of_memory(make_server):
    # The error view renders JSON (a writer, then fdt_http_alloc): out of memory there
    # leaves the status and the framework's plain-text body.
    need_failshim()
    requests = [(build("GET", "/error/418"), 1), (build("GET", "/missing/x"), 1)]
    seen = {}
    for n in range(1, 400):
        s = hello(make_server, n, json_errors="yes")
        log = s.dir / "fail.log"
        s.start(wait=False)
        try:
            s.wait_ready(timeout=60)
        except AssertionError:
            if s.proc.poll() is None:
                raise  # not started in time: not a failure of the walk
            assert s.wait_exit() == 1 and "cannot start: worker 0: out of memory" in s.log()
            continue
        pid = s.worker_pids()
        for i, (raw, _) in enumerate(requests):
            status = 418 if i == 0 else 404
            before = len(failures(log))
            got = exchange(s.port, raw)
            if len(failures(log)) == before:
                assert got[0].status == status, (n, i, got[0].status)
                assert json.loads(got[0].body)["error"]["status"] == status
                continue
            if got is None:
                wait_for(lambda: "out of memory" in s.log(), what=f"out of memory (n={n})")
                seen.setdefault("closed", n)
            elif got[0].status == status:
                assert got[0].body.startswith(b"%d " % status), (n, got[0].body)
                seen.setdefault("plain", n)
            else:
                assert got[0].status in (500, 503) and got[0].body.strip(), (n, got[0].status)
            r = exchange(s.port, build("GET", "/"))
            assert r and r[0].status == 200 and s.worker_pids() == pid, n
        done = not failures(log)
        assert s.stop() == 0
        if done:
            break
    assert "plain" in seen, seen


def wsgi(make_server, n):
    s = py_server(make_server, wsgi="covpyapps:application", threads=1, start=False)
    s.env.update(fail_env(n, s.dir / "fail.log"))
    return s


def test_17_10_wsgi_requests_out_of_memory(make_server):
    need_failshim()
    requests = [(build("GET", "/env"), 1),
                (build("POST", "/echo", body=b"y" * 100), 1)]

    def ok(i, got):
        assert got[0].status == 200, (i, got[0].status, got[0].body)

    seen = walk(make_server, wsgi, requests, ok, again="/env")
    print(seen)


def rpc(make_server, n):
    from test_16_cov_python import rpc_server
    s = rpc_server(make_server, "covpyrpc:methods", start=False, sub=f"n{n}")
    s.env.update(fail_env(n, s.dir / "fail.log"))
    return s


def test_17_11_python_jsonrpc_out_of_memory(make_server):
    # Allocations of fdt_python.so and libfdt under a Python JSON-RPC application: the
    # method table at start-up, then the params' JSON text, the writer of the result, the
    # connection's buffers. Each call is answered (the result, or an error naming the
    # failure) or the connection is closed with the reason logged; the worker goes on.
    need_failshim()
    params = {"list": [1, "two", 3.5], "text": "some text"}
    seen = {}
    for n in range(1, 400):
        s = rpc(make_server, n)
        log = s.dir / "fail.log"
        s.start(wait=False)
        try:
            s.wait_ready(timeout=60)
        except AssertionError:
            if s.proc.poll() is None:
                raise  # not started in time: not a failure of the walk
            assert s.wait_exit() == 1, n
            assert "cannot start: worker 0: " in s.log(), s.log()[-2000:]
            seen.setdefault(("start", s.log().count("MemoryError") > 0), n)
            continue
        pid = s.worker_pids()
        before = len(failures(log))
        c = RpcClient(s.port)
        try:
            c.send(json.dumps({"jsonrpc": "2.0", "method": "echo", "params": params,
                               "id": 1}) + "\n")
            r = json.loads(c.readline())
        except ConnectionError:
            r = None
        c.close()
        if len(failures(log)) == before:
            assert r == {"jsonrpc": "2.0", "id": 1, "result": params}, (n, r)
        elif r is None:
            # The connection's state could not be made (jsonrpc_proto.c rpc_open): closed.
            # It says nothing in the log today (src/jsonrpc is not this test's area).
            seen.setdefault("closed", n)
        elif "error" in r:
            assert r["error"]["message"], (n, r)
            seen.setdefault(("error", r["error"]["code"], r["error"]["message"]), n)
        else:
            assert r["result"] == params, (n, r)
            seen.setdefault("absorbed", n)
        if len(failures(log)) > before:
            c = RpcClient(s.port)
            assert c.call("echo", [1])["result"] == [1], (n, s.log()[-2000:])
            c.close()
            assert s.worker_pids() == pid
        done = not failures(log)
        assert s.stop() == 0, (n, s.log()[-2000:])
        if done:
            break
    messages = {k[2] for k in seen if k[0] == "error"}
    # Out of memory is said so, never blamed on the params or the result's size (they were
    # "ValueError: the params cannot be encoded" and "the result is too large").
    assert "MemoryError" in messages and "out of memory" in messages, seen
    assert not any("cannot be encoded" in m or "too large" in m for m in messages
                   if "response too large" not in m), seen
    assert ("start", True) in seen, seen


def test_17_20_python_host_refuses_misuse(make_server, tmp_path):
    # Wrong arguments and misuse of the fdt module, wsgi.input, wsgi.errors, file_wrapper
    # and start_response: each an exception the application can catch, with a message
    # that names the call; the worker goes on.
    from test_16_cov_python import txn_server
    s = txn_server(make_server, tmp_path, wsgi="covpyproto:application")
    pid = s.worker_pids()
    c = Client(s.port)
    r = c.request("POST", "/misuse", body=b"one\ntwo\nthree\n")
    assert r.status == 200, r.body
    # A Connection header other than close is not the application's to send.
    assert r.header("Connection") is None and r.header("Keep-Alive") is not None
    got = json.loads(r.body)
    want = [
        "TypeError: query() argument 1 must be str, not int",
        "UnicodeEncodeError: ",
        "TransactionStateError: the savepoint was released",
        "",
        "RuntimeError: TransactionStateError: no fdtserver transaction here",
        "TypeError: function takes exactly 2 arguments (1 given)",
        "TypeError: file_wrapper() missing required argument 'filelike' (pos 1)",
        "TypeError: 'str' object cannot be interpreted as an integer",
        "TypeError: 'str' object cannot be interpreted as an integer",
        "TypeError: 'int' object is not iterable",
        "ValueError: from the generator",
        "TypeError: start_response() missing required argument 'status' (pos 1)",
    ]
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.startswith(w), (i, g, w)
    assert got[3] != "no error" and "savepoint" in got[3].lower(), got[3]
    assert got[len(want)] == ["one\n"], got
    r = c.request("GET", "/late")
    assert r.status == 200 and r.body.startswith(b"head sent\nTypeError: "), r.body
    c.close()
    # A '%' not followed by two hex digits never reaches the application.
    r = Client(s.port).request("GET", "/x%zz")
    assert r.status == 400 and b"The path is malformed" in r.body
    assert s.worker_pids() == pid


def test_17_21_wsgi_app_without_python_path(make_server):
    # No [python] path: the application comes from the standard library.
    s = py_server(make_server, wsgi="wsgiref.simple_server:demo_app", path="", start=False)
    s.write_config()
    text = s.conf_path.read_text().replace("path = \n", "")
    s.conf_path.write_text(text)
    s.start(wait=False)
    s.wait_ready()
    r = exchange(s.port, build("GET", "/"))
    assert r[0].status == 200 and r[0].body.startswith(b"Hello world!"), r[0].body[:100]


def test_17_03_hello_views_refuse_more_than_one_subpath_segment(make_server):
    from http_util import get, hello_server
    s = hello_server(make_server)
    r = get(s.port, "/sleep/1/2")
    assert r.status == 400 and b"Expected /sleep/MILLISECONDS." in r.body
