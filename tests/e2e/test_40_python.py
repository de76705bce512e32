"""Python WSGI applications ([app] wsgi, design §3b, issue #11): fdt_python.so embeds
CPython in each worker after fork. The applications are in tests/apps/python/wsgiapps.py."""
import hashlib
import json
import os
import signal
import subprocess

from fdt import FDTSERVER, ROOT, wait_for
from http_util import Client, get
from test_11_http_hardening import sanitized

PYAPPS = ROOT / "tests" / "apps" / "python"


def py_server(make_server, wsgi="wsgiapps:application", path=PYAPPS, home=None, workers=1,
              threads=4, start=True, server=None, ready_timeout=15.0):
    """fdtserver serving a WSGI application on one HTTP listener (s.port). ready_timeout
    bounds the wait for the workers (importing a framework under a sanitizer is slow)."""
    s = make_server(workers=workers, threads=threads, server=server, start=False)
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    if ready_timeout > 30:
        # The master's own bound (default 30 s) must not kill a slow import first.
        s.server.setdefault("ready_timeout", ready_timeout)

    def write_config(**changes):
        lines = ["[server]"] + [f"{k} = {v}" for k, v in s.server.items()]
        for name, kv in s.listeners.items():
            lines.append(f"[listen.{name}]")
            lines += [f"{k} = {v}" for k, v in kv.items()]
        lines += ["[app]", f"wsgi = {s.wsgi}", "[python]", f"path = {s.pypath}"]
        if home:
            lines.append(f"home = {home}")
        s.conf_path.write_text("\n".join(lines) + "\n")

    s.wsgi, s.pypath = wsgi, path
    s.write_config = write_config
    s.write_config()
    if start:
        s.start(wait=False)
        s.wait_ready(timeout=ready_timeout)
    return s


def req(s, method, path, body=b"", headers=None):
    c = Client(s.port)
    try:
        return c.request(method, path, headers=headers, body=body)
    finally:
        c.close()


def test_40_01_hello(make_server):
    s = py_server(make_server)
    r = get(s.port, "/")
    assert (r.status, r.body) == (200, b"Hello, world!")
    assert r.header("Content-Length") == "13" and r.header("Content-Type") == "text/plain"
    # HEAD runs the application and sends no body.
    c = Client(s.port)
    r = c.request("HEAD", "/")
    assert r.status == 200 and r.header("Content-Length") == "13"
    # Keep-alive: the same connection serves again.
    assert c.request("GET", "/").body == b"Hello, world!"
    c.close()


def test_40_02_post_body_through_wsgi_input(make_server):
    s = py_server(make_server)
    body = bytes(range(256)) * 100
    r = req(s, "POST", "/echo", body=body)
    assert (r.status, r.body) == (200, body)
    # A chunked body has no CONTENT_LENGTH: the application reads to the end.
    r = req(s, "POST", "/echo", headers={"Transfer-Encoding": "chunked"},
            body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    assert (r.status, r.body) == (200, b"hello world")
    r = req(s, "POST", "/lines", body=b"abc\ndef\nghi")
    assert json.loads(r.body) == {"first": "abc\n", "rest": 2}


def test_40_03_environ(make_server):
    s = py_server(make_server)
    r = req(s, "GET", "/env?a=1&b=%20", headers={"X-Thing": "v1", "x-thing": "v2",
                                                   "X_Smuggled": "no", "Host": "example:81"})
    e = json.loads(r.body)
    assert e["REQUEST_METHOD"] == "GET" and e["SCRIPT_NAME"] == ""
    assert e["PATH_INFO"] == "/env" and e["QUERY_STRING"] == "a=1&b=%20"
    assert e["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (e["SERVER_NAME"], e["SERVER_PORT"]) == ("example", str(s.port))
    assert e["REMOTE_ADDR"] == "127.0.0.1"
    assert e["HTTP_X_THING"] == "v1,v2"
    assert not any("SMUGGLED" in k for k in e)  # names with '_' are dropped
    assert "CONTENT_LENGTH" not in e
    assert e["wsgi.version"] == [1, 0] and e["wsgi.url_scheme"] == "http"
    assert e["wsgi.multithread"] is True and e["wsgi.multiprocess"] is True
    assert e["wsgi.run_once"] is False
    # PATH_INFO is decoded; bytes above 127 come as latin-1 characters.
    r = req(s, "GET", "/a%20b/%C3%A9")
    assert r.status == 404 and r.body == "no such page: /a b/é".encode()
    # "@@" segments, which traversal treats as view names, reach the application too.
    assert req(s, "GET", "/@@x/y").body == b"no such page: /@@x/y"
    r = req(s, "POST", "/env", body=b"xyz", headers={"Content-Type": "text/plain"})
    e = json.loads(r.body)
    assert e["CONTENT_LENGTH"] == "3" and e["CONTENT_TYPE"] == "text/plain"
    assert "HTTP_CONTENT_TYPE" not in e and "HTTP_CONTENT_LENGTH" not in e


def test_40_04_wsgiref_validator_finds_nothing(make_server):
    s = py_server(make_server)
    assert get(s.port, "/validated/").body == b"Hello, world!"
    assert req(s, "POST", "/validated/echo", body=b"x" * 1000).body == b"x" * 1000
    assert req(s, "POST", "/validated/lines", body=b"1\n2\n3\n").status == 200
    assert req(s, "GET", "/validated/env?q=1").status == 200
    assert req(s, "GET", "/validated/stream").body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert req(s, "GET", "/validated/write").body == b"written returned"
    assert req(s, "GET", "/validated/errors").status == 200
    assert req(s, "HEAD", "/validated/").status == 200
    # wsgi.file_wrapper under the validator (which wraps the result: iterated in blocks),
    # and a streamed body read in pieces through its InputWrapper.
    f = s.dir / "validated-file"
    f.write_bytes(bytes(range(256)) * 1000)
    assert req(s, "GET", f"/validated/file?{f}").body == bytes(range(256)) * 1000
    wait_for((s.dir / "validated-file.closed").exists, what="close() under the validator")
    r = req(s, "POST", "/validated/upload", headers={"Transfer-Encoding": "chunked"},
            body=b"".join(chunked([b"p" * 70000, b"q" * 70000])))
    assert json.loads(r.body)["bytes"] == 140000
    r = req(s, "POST", "/validated/upload-lines", headers={"Transfer-Encoding": "chunked"},
            body=b"".join(chunked([b"one\ntw", b"o\nthree"])))
    assert json.loads(r.body) == {"first": "one\n", "rest": ["two\n", "three"]}
    assert req(s, "GET", "/validated/status?201%20Made").reason == "Made"
    closed = s.dir / "closed-validated"
    assert req(s, "GET", f"/validated/close?{closed}").body == b"one two"
    wait_for(closed.exists, what="close() called under the validator")
    log = s.log()
    assert "AssertionError" not in log and "Exception ignored" not in log, log[-3000:]
    assert "WSGIWarning" not in log, log[-3000:]


def test_40_05_exception_is_a_500_with_the_traceback_in_the_log(make_server):
    s = py_server(make_server)
    pid = s.worker_pids()
    r = get(s.port, "/boom")
    assert r.status == 500
    assert b"secret-detail-42" not in r.body and b"Traceback" not in r.body
    assert len(r.body) < 100
    s.wait_log("ValueError: secret-detail-42")
    assert "Traceback (most recent call last)" in s.log()
    assert get(s.port, "/").status == 200 and s.worker_pids() == pid


def test_40_06_bad_responses_are_500s_and_log_lines(make_server):
    s = py_server(make_server)
    pid = s.worker_pids()
    for path, line in (("/bad-status", "bad status line 'OK'"),
                       ("/bad-header", "bad header X-Bad"),
                       ("/str", "the application returned str, not bytes"),
                       ("/none", "the application's result is not iterable"),
                       ("/bytes-status", "TypeError: status must be a str, not bytes"),
                       ("/no-start", "the application sent a body before calling "
                                     "start_response"),
                       ("/write-str", "TypeError: write() takes bytes, not str"),
                       ("/twice", "RuntimeError: start_response() called a second time")):
        r = get(s.port, path)
        assert r.status == 500, path
        assert r.header("Injected") is None and b"never" not in r.body
        s.wait_log(line if "Error:" in line else f"GET {path}: {line}")
    assert get(s.port, "/").status == 200 and s.worker_pids() == pid


def test_40_07_close_is_called(make_server):
    s = py_server(make_server)
    marker = s.dir / "closed"
    r = get(s.port, f"/close?{marker}")
    assert (r.status, r.body) == (200, b"one two")
    wait_for(marker.exists, what="close() called")
    assert marker.read_text() == "closed"


def test_40_08_streaming_write_and_late_errors(make_server):
    s = py_server(make_server)
    r = get(s.port, "/stream")
    assert r.header("Transfer-Encoding") == "chunked"
    assert r.body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert get(s.port, "/write").body == b"written returned"
    # start_response with exc_info after the head went out re-raises: the response is cut
    # (no last chunk) and the connection closed; the traceback goes to the log.
    c = Client(s.port)
    c.send(b"GET /late-error HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    try:
        while True:
            c._fill()
    except ConnectionError:
        pass
    data = c.buf
    c.close()
    assert data.startswith(b"HTTP/1.1 200 OK") and b"partial" in data
    assert not data.endswith(b"0\r\n\r\n"), data
    s.wait_log("RuntimeError: late")


def test_40_09_wsgi_errors_go_to_the_error_log(make_server):
    s = py_server(make_server)
    assert get(s.port, "/errors").body == b"logged"
    s.wait_log("wsgi.errors: first error line")
    s.wait_log("wsgi.errors: second error line")


def write_module(d, text):
    (d / "reloadme.py").write_text(text)
    # A new generation must see the new source even within the same second.
    for pyc in (d / "__pycache__").glob("reloadme.*"):
        pyc.unlink()


APP_V = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"version {v}"]
"""


def test_40_10_edit_and_reload_serves_the_new_code(make_server, tmp_path):
    d = tmp_path / "code"
    d.mkdir()
    write_module(d, APP_V.format(v=1))
    s = py_server(make_server, wsgi="reloadme:application", path=d, workers=2)
    assert get(s.port, "/").body == b"version 1"
    write_module(d, APP_V.format(v=22))
    s.signal(signal.SIGHUP)
    s.wait_ready(generation=2)
    wait_for(lambda: all(get(s.port, "/").body == b"version 22" for _ in range(4)),
             what="the new code served")


def test_40_11_syntax_error_refuses_the_reload(make_server, tmp_path):
    d = tmp_path / "code"
    d.mkdir()
    write_module(d, APP_V.format(v=1))
    s = py_server(make_server, wsgi="reloadme:application", path=d, workers=2)
    before = s.worker_pids()
    write_module(d, "def application(environ, start_response)\n    return []\n")
    r = s.reload(check=False)
    assert r.returncode != 0
    assert "SyntaxError" in r.stderr, r.stderr
    st = s.status()
    assert st["last_reload"]["ok"] is False and "SyntaxError" in st["last_reload"]["message"]
    # The old generation keeps serving, untouched.
    assert s.worker_pids() == before
    assert get(s.port, "/").body == b"version 1"
    assert "Traceback" in s.log()
    # Fixed code reloads.
    write_module(d, APP_V.format(v=333))
    assert s.reload().returncode == 0
    assert get(s.port, "/").body == b"version 333"


def test_40_12_import_errors_fail_the_start(make_server):
    for wsgi, needle in (("no_such_module:app", "ModuleNotFoundError"),
                         ("wsgiapps:no_such_callable", "AttributeError"),
                         ("wsgiapps:not_callable", "is not callable"),
                         ("syntax_error:application", "SyntaxError")):
        s = py_server(make_server, wsgi=wsgi, start=False)
        s.start(wait=False)
        wait_for(lambda: needle in s.log(), what=f"{needle} for {wsgi}")
        s.stop()
        assert "start failed" in s.log()


def test_40_13_configuration(tmp_path):
    conf = tmp_path / "both.ini"
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\n[app]\nmodule = x.so\n"
                    "wsgi = a:b\n")
    r = subprocess.run([str(FDTSERVER), "-c", str(conf), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and f"{conf}:5" in r.stderr and "cannot be served together" in r.stderr
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\n[app]\nwsgi = nocolon\n")
    r = subprocess.run([str(FDTSERVER), "-c", str(conf), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "expected pkg.module:callable" in r.stderr
    # A relative [python] path is anchored at the configuration file's directory.
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\n[app]\nwsgi = a:b\n[python]\npath = src\n")
    r = subprocess.run([str(FDTSERVER), "-c", str(conf), "--check"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert f"path = {tmp_path}/src" in r.stdout

# That the master never maps libpython (also after a reload): test_02_13 in test_02_process.py.


VENV_APP = """import sys
import venvmarker


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [(venvmarker.WHERE + " " + sys.prefix).encode()]
"""


def test_40_14_virtual_environment(make_server, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "venvmarker.py").write_text('WHERE = "from-the-venv"\n')
    d = tmp_path / "code"
    d.mkdir()
    (d / "venvapp.py").write_text(VENV_APP)
    s = py_server(make_server, wsgi="venvapp:application", path=d, home=venv)
    assert get(s.port, "/").body == f"from-the-venv {venv}".encode()


def test_40_15_concurrent_requests_on_every_thread(make_server):
    # Several application threads run Python at once (each with its thread state, the GIL
    # handed between them, released while writing): every answer is right.
    import threading
    s = py_server(make_server, threads=4)
    errors = []

    def client(n):
        c = Client(s.port)
        try:
            for i in range(25):
                body = f"{n}-{i}-".encode() * (1 + i * 50)
                r = c.request("POST", "/echo", body=body)
                if (r.status, r.body) != (200, body):
                    errors.append((n, i, r.status))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((n, repr(e)))
        finally:
            c.close()

    ts = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def chunked(pieces):
    """A chunked body of the given pieces (bytes), as a generator of wire bytes."""
    for p in pieces:
        yield b"%x\r\n" % len(p) + p + b"\r\n"
    yield b"0\r\n\r\n"


def test_40_16_wsgi_input_streams_a_large_chunked_upload(make_server):
    # 50 MB chunked, read by the application in 64 KiB pieces as it arrives: the body is
    # never held whole, so the worker's peak RSS grows by far less than the body.
    s = py_server(make_server, threads=2, server={"max_body_size": "64m"})
    import random
    rnd = random.Random(16)
    piece = rnd.randbytes(1 << 20)
    before = json.loads(get(s.port, "/rss").body)
    c = Client(s.port, timeout=60)
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
    digest = hashlib.sha256()
    pieces = []
    for i in range(50):
        p = piece[i:] + piece[:i]  # 50 different MiB
        digest.update(p)
        pieces.append(p)
    for wire in chunked(pieces):
        c.sock.sendall(wire)
    r = c.read_response()
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got == {"bytes": 50 << 20, "sha256": digest.hexdigest(), "biggest": 65536}
    # The connection stays open for the next request.
    after = json.loads(c.request("GET", "/rss").body)
    c.close()
    grown_mb = (after["VmHWM"] - before["VmHWM"]) / 1024
    if not sanitized(s.worker_pids()[0]):  # their quarantine keeps freed pieces: test_11_02
        assert grown_mb < 20, (before, after)


def test_40_17_wsgi_input_readline_over_chunks(make_server):
    s = py_server(make_server)
    # Lines cut across chunk boundaries; readline(100) stops at 100 bytes of a long line.
    body = b"x" * 150 + b"\nab" + b"c\nde" + b"f\n" + b"last"
    wire = b"".join(chunked([body[:7], body[7:151], body[151:155], body[155:]]))
    r = req(s, "POST", "/upload-lines", headers={"Transfer-Encoding": "chunked"}, body=wire)
    assert json.loads(r.body) == {"first": "x" * 100,
                                  "rest": ["x" * 50 + "\n", "abc\n", "def\n", "last"]}
    # The same with Content-Length, and readlines() through the validator.
    r = req(s, "POST", "/upload-lines", body=body)
    assert json.loads(r.body)["rest"] == ["x" * 50 + "\n", "abc\n", "def\n", "last"]
    r = req(s, "POST", "/lines", headers={"Transfer-Encoding": "chunked"},
            body=b"".join(chunked([b"a\nb", b"\nc\n"])))
    assert json.loads(r.body) == {"first": "a\n", "rest": 2}


def test_40_18_a_client_that_stalls_mid_body_gets_408(make_server):
    s = py_server(make_server, threads=2, server={"body_timeout": "1"})
    pid = s.worker_pids()
    c = Client(s.port)
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"10\r\n0123456789abcdef\r\n")
    r = c.read_response()  # then nothing more is sent
    assert r.status == 408 and r.header("Connection") == "close"
    assert c.closed_by_server()
    s.wait_log("wsgi.input: the client took too long to send the request body")
    # Content-Length body cut short: the same.
    c = Client(s.port)
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly this")
    assert c.read_response().status == 408
    c.close()
    # A client that goes away mid-body: the read raises, nothing is left behind.
    c = Client(s.port)
    c.send(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
    c.close()
    s.wait_log("wsgi.input: the client closed the connection before the end of the request body")
    assert get(s.port, "/").status == 200 and s.worker_pids() == pid


def test_40_19_body_limits_and_unread_bodies(make_server):
    s = py_server(make_server, server={"max_body_size": "100k"})
    pid = s.worker_pids()
    # Over max_body_size in chunks: 413 from the read, the connection closed.
    c = Client(s.port)
    wire = b"".join(chunked([b"y" * 60000, b"y" * 60000]))
    r = c.request("POST", "/upload", headers={"Transfer-Encoding": "chunked"}, body=wire)
    assert r.status == 413 and r.header("Connection") == "close"
    c.close()
    s.wait_log("wsgi.input: the request body is over max_body_size (413 sent)")
    # Announced over it: 413 before the application runs, as for C applications.
    r = req(s, "POST", "/upload", body=b"z" * 102401)
    assert r.status == 413
    # A body the application does not read, already all there: the connection stays.
    c = Client(s.port)
    r = c.request("POST", "/ignore", body=b"q" * 5000)
    assert (r.status, r.body, r.header("Connection")) == (200, b"ignored", None)
    r = c.request("POST", "/ignore", headers={"Transfer-Encoding": "chunked"},
                  body=b"".join(chunked([b"a" * 10, b"b" * 10])))
    assert (r.status, r.header("Connection")) == (200, None)
    assert c.request("GET", "/").body == b"Hello, world!"
    c.close()
    # Most of it still to come: answered with Connection: close, then closed.
    c = Client(s.port)
    c.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 90000\r\n\r\nstart")
    r = c.read_response()
    assert (r.status, r.header("Connection")) == (200, "close")
    assert c.closed_by_server()
    # Pipelined after a chunked body the application reads: nothing of the next request is
    # taken for the body.
    c = Client(s.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           + b"".join(chunked([b"one", b"two"])) + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert c.read_response().body == b"onetwo"
    assert c.read_response().body == b"Hello, world!"
    c.close()
    # Expect: 100-continue: "100 Continue" only once the application reads.
    c = Client(s.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
           b"Expect: 100-continue\r\n\r\n")
    assert c.read_response().status == 100
    c.send(b"hello")
    assert c.read_response().body == b"hello"
    c.send(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
           b"Expect: 100-continue\r\n\r\n")
    r = c.read_response()
    assert (r.status, r.header("Connection")) == (200, "close")
    c.close()
    assert s.worker_pids() == pid


def test_40_20_the_applications_reason_phrase(make_server):
    s = py_server(make_server)
    pid = s.worker_pids()
    for text, (status, reason) in (("200 All good", (200, "All good")),
                                   ("404 Nicht gefunden", (404, "Nicht gefunden")),
                                   ("201 Cr%C3%A9%C3%A9", (201, "Créé")),  # latin-1 bytes
                                   ("599 ", (599, ""))):
        c = Client(s.port)
        q = text.replace(" ", "%20")
        c.send(f"GET /status?{q} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        line = c._line()
        assert line == b"HTTP/1.1 %d " % status + reason.encode("latin-1"), line
        c.close()
    # Control characters, a missing reason separator, text that is not latin-1, a code out
    # of range: a 500 with the framework's phrase, and a log line naming the status.
    for bad, shown in (("200 OK%0D%0AInjected: yes", "200 OK\\x0d\\x0aInjected: yes"),
                       ("200 tab%09here", "200 tab\\x09here"),
                       ("200", "200"), ("600 Big", "600 Big"), ("099 Low", "099 Low")):
        r = get(s.port, "/status?" + bad.replace(" ", "%20"))
        assert (r.status, r.reason) == (500, "Internal Server Error"), bad
        assert r.header("Injected") is None and b"status body" not in r.body
        s.wait_log(f"bad status line '{shown}'")
    r = get(s.port, "/status?200%20%E2%9C%93")
    assert r.status == 500
    s.wait_log("(not latin-1 text)")
    assert get(s.port, "/").reason == "OK" and s.worker_pids() == pid


def test_40_21_file_wrapper_sends_the_file(make_server, tmp_path):
    s = py_server(make_server)
    import random
    data = random.Random(21).randbytes(20 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    c = Client(s.port, timeout=60)
    r = c.request("GET", f"/file?{path}")
    assert r.status == 200 and r.header("Content-Length") == str(len(data))
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(data).digest()
    wait_for((tmp_path / "big.bin.closed").exists, what="the file's close() called")
    # Part of a file: from the file object's position, as long as the Content-Length given.
    r = c.request("GET", f"/file-part?{path}")
    assert r.header("Content-Length") == "5000" and r.body == data[1000:6000]
    # HEAD: the head only, the same Content-Length; the connection goes on.
    r = c.request("HEAD", f"/file?{path}")
    assert r.status == 200 and r.header("Content-Length") == str(len(data))
    # Not a real file: iterated in blocks.
    assert c.request("GET", "/file-memory").body == b"in memory " * 1000
    c.close()


SYS_PATH_APP = """import json
import sys


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(sys.path).encode()]
"""


def check(conf, env=None):
    return subprocess.run([str(FDTSERVER), "--check", "-c", str(conf)], capture_output=True,
                          text=True, timeout=30, env=env)


def checked_sys_path(stdout):
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# python: sys.path"))
    out = []
    for line in lines[start + 1:]:
        if not line.startswith("#   "):
            break
        out.append(line[4:])
    return out


def test_40_22_check_says_what_it_would_import(make_server, tmp_path):
    # A package on a relative [python] path: --check names the module, the callable and the
    # file, and lists the sys.path a worker then really has; it imports nothing (the
    # module would raise) and never maps libpython (LD_DEBUG lists every object loaded).
    src = tmp_path / "src"
    (src / "mypkg").mkdir(parents=True)
    (src / "mypkg" / "__init__.py").write_text("")
    (src / "mypkg" / "web.py").write_text(SYS_PATH_APP)
    (src / "rpc.py").write_text("raise SystemExit('imported by --check')\n")
    conf = tmp_path / "fdt.ini"
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = http\n[app]\n"
                    "wsgi = mypkg.web:application\njsonrpc = rpc:methods\n"
                    "[python]\npath = src\n")
    r = check(conf, env=dict(os.environ, LD_DEBUG="files"))
    assert r.returncode == 0, r.stderr
    assert "# python: [app] wsgi = mypkg.web:application: imports module mypkg.web, then " \
           "takes application from it" in r.stdout
    assert f"# python: module mypkg.web: {src}/mypkg/web.py" in r.stdout
    assert f"# python: module rpc: {src}/rpc.py" in r.stdout
    assert "warning" not in r.stderr
    assert "file=libc.so" in r.stderr  # LD_DEBUG works here
    assert "libpython" not in r.stderr and "fdt_python" not in r.stderr
    listed = checked_sys_path(r.stdout)
    assert listed[0] == str(src)
    s = py_server(make_server, wsgi="mypkg.web:application", path=src)
    assert json.loads(get(s.port, "/").body) == listed
    # A module found nowhere: a warning (the import may still find it through a .pth file
    # or a hook), the check passes. A module file is not a package.
    for spec in ("nothere:app", "rpc.sub:app", "mypkg.nothere:app"):
        conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = http\n[app]\n"
                        f"wsgi = {spec}\n[python]\npath = src\n")
        r = check(conf)
        module = spec.split(":")[0]
        assert r.returncode == 0, r.stderr
        assert f"warning: [app] wsgi = {spec}: module {module} is not found on sys.path" \
               in r.stderr, r.stderr
    # A directory without __init__.py is a namespace package; a stdlib module is found too.
    (src / "ns" / "inner").mkdir(parents=True)
    (src / "ns" / "inner" / "app.py").write_text(SYS_PATH_APP)
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = http\n[app]\n"
                    "wsgi = ns.inner.app:application\njsonrpc = wsgiref.simple_server:x\n"
                    "[python]\npath = src\n")
    r = check(conf)
    assert f"# python: module ns.inner.app: {src}/ns/inner/app.py" in r.stdout, r.stdout
    assert "# python: module wsgiref.simple_server: /" in r.stdout, r.stdout


def test_40_23_check_with_a_virtual_environment(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    site = next(venv.glob("lib/python3*/site-packages"))
    (site / "venvapp.py").write_text(SYS_PATH_APP)
    conf = tmp_path / "fdt.ini"
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = http\n[app]\n"
                    "wsgi = venvapp:application\n[python]\nhome = venv\n")
    r = check(conf)
    assert r.returncode == 0, r.stderr
    assert str(site) in checked_sys_path(r.stdout)
    assert f"# python: module venvapp: {site}/venvapp.py" in r.stdout
    # Not a virtual environment: an error, as it would be for the workers.
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = http\n[app]\n"
                    "wsgi = venvapp:application\n[python]\nhome = code\n")
    (tmp_path / "code").mkdir()
    r = check(conf)
    assert r.returncode == 2
    assert f"[python] home {tmp_path}/code is not a virtual environment" in r.stderr


def test_40_24_misused_wsgi_objects_raise_clear_errors(make_server):
    # Wrong arguments to wsgi.errors, wsgi.input and start_response raise exceptions that
    # say what is wrong, and the request goes on; the objects of a request that has ended
    # refuse to work (an application that kept them, in a thread say) instead of writing
    # into another request.
    s = py_server(make_server)
    pid = s.worker_pids()
    # One connection: its next request runs only once the first one has ended (on another
    # connection it could start while the first one's thread still finishes it).
    c = Client(s.port)
    r = c.request("GET", "/misuse")
    assert r.status == 200, r
    assert json.loads(r.body) == [
        "errors.write bytes: TypeError: wsgi.errors.write() takes a str, not bytes",
        "input.read(1, 2): TypeError: read() takes at most one argument",
        "tuple headers: TypeError: headers must be a list, not tuple",
        "header not a pair: TypeError: header 0 must be a tuple (name, value) of two str"]
    s.wait_log("wsgi.errors: first of two")
    s.wait_log("wsgi.errors: second of two")
    r = c.request("GET", "/misuse-later")
    c.close()
    assert json.loads(r.body) == [
        "write: RuntimeError: write() called after the request ended",
        "start_response: RuntimeError: start_response() called after the request ended",
        "input.read: ValueError: wsgi.input read after the request ended"]
    assert get(s.port, "/").body == b"Hello, world!" and s.worker_pids() == pid
