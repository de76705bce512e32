"""Coverage of src/python, second part: failure paths of the embedded CPython host that
test_16_cov_python reached only by the luck of allocation counts. Each test here fails one
Python allocation at a time right around the call it is about (_testcapi.set_nomemory from
inside the application, walking the index over a range), so that every index is run on
every run, and asserts what a user sees: the answer, the MemoryError the application
catches, the worker that goes on serving."""
import json

from fdt import wait_for
from http_util import Client, get
from test_16_cov_python import cov_server, post, txn_server
from test_16_cov_python import testcapi as need_testcapi
from test_40_python import req


def test_19_01_errors_write_of_a_str_without_utf8(make_server):
    """wsgi.errors.write() of a lone surrogate raises UnicodeEncodeError in the
    application, logs nothing, and the request goes on."""
    s = cov_server(make_server)
    r = req(s, "GET", "/errors-surrogate")
    assert r.status == 200 and json.loads(r.body).startswith("UnicodeEncodeError"), r
    assert "bad " not in s.log()


def test_19_02_a_result_whose_len_says_one_but_gives_two(make_server):
    """An iterable whose len() is 1 yields two items: both are sent, in order."""
    s = cov_server(make_server)
    r = req(s, "GET", "/len-lies")
    assert (r.status, r.body) == (200, b"first second")
    assert get(s.port, "/env").status == 200


def walk(s, what, body=b"", steps=12):
    """/nomem-step with the N-th allocation failing, N = 0 .. steps-1: each answered 200,
    with the step's result or the MemoryError. Returns the results seen."""
    pid = s.worker_pids()
    seen = []
    for n in range(steps):
        r = req(s, "POST", f"/nomem-step?{n}&{what}", body=body)
        assert r.status == 200, (what, n, r)
        seen.append(json.loads(r.body))
    assert s.worker_pids() == pid
    return seen


def test_19_03_out_of_memory_in_file_wrapper_and_input_read(make_server):
    """wsgi.file_wrapper() and wsgi.input.read() (a few bytes; all of a body over the
    64 KiB first piece, so the buffer grows and then shrinks) raise MemoryError when an
    allocation of theirs fails, and give their result otherwise."""
    need_testcapi()
    s = cov_server(make_server)
    seen = walk(s, "wrap")
    assert "MemoryError" in seen and seen[-1] == "wrapped", seen
    seen = walk(s, "read10", body=b"0123456789abc")
    assert "MemoryError" in seen and seen[-1] == 10, seen
    body = b"x" * 100000
    seen = walk(s, "read", body=body)
    assert seen.count("MemoryError") >= 3 and seen[-1] == len(body), seen
    assert get(s.port, "/env").status == 200


def test_19_04_out_of_memory_in_fdt_savepoint(make_server, tmp_path):
    """fdt.savepoint() raises MemoryError when its allocation fails; the request is
    answered and the next savepoint is made."""
    need_testcapi()
    t = txn_server(make_server, tmp_path)
    c = Client(t.port)
    got = []
    for n in range(12):
        r = post(c, f"/nomem-savepoint/{n}")
        assert r.status == 200, (n, r)
        got.append(json.loads(r.body))
    c.close()
    assert "MemoryError" in got and got[-1] == "Savepoint", got


def test_19_05_out_of_memory_building_the_environ(make_server):
    """Each Python allocation from the end of one application's run through the next
    request's environ fails once in turn (the dict free list emptied, a Content-Length of
    two digits, so that the environ's dict and that value are new allocations): the next
    request is answered 500 with "cannot build the environ" logged, or served; the worker
    goes on."""
    need_testcapi()
    s = cov_server(make_server)
    pid = s.worker_pids()
    seen = set()
    for n in range(60):
        c = Client(s.port)
        r1 = c.request("GET", f"/arm-drained?{n}")
        r2 = c.request("POST", "/env/x", headers={"Content-Type": "text/plain"},
                       body=b"0123456789")
        c.close()
        assert r1.status in (200, 500) and r2.status in (404, 500), (n, r1, r2)
        seen.add(r2.status)
    assert 200 in [get(s.port, "/disarm").status for _ in range(2)]
    assert seen == {404, 500}, seen
    assert "POST /env/x: cannot build the environ" in s.log()
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


# ---- Out of memory while a worker starts ----
# Modules the host imports at start-up, shadowed on [python] path, load the standard ones
# and arm _testcapi.set_nomemory (FDT_NOMEM_AT: the n-th allocation from then on fails)
# at a point FDT_NOMEM_AFTER names: once traceback is imported (the host's own types and
# the environ's keys come next), when the import of fdt begins (an audit event), or when
# the JSON-RPC set-up looks up json.loads (its functools.partial, then the mapping's
# import come next).
ARM = """
import os
import sys


def _arm():
    import _testcapi
    n = int(os.environ["FDT_NOMEM_AT"])
    _testcapi.set_nomemory(n, n + 1)


_here = sys.path.pop(0)
_self = sys.modules.pop(__name__)
_real = __import__(__name__)  # the standard one, found without this directory
sys.path.insert(0, _here)
_after = os.environ.get("FDT_NOMEM_AFTER")
"""
TRACEBACK = ARM + """
sys.modules[__name__] = _real
if _after == "traceback":
    _arm()
elif _after == "fdt":
    def _hook(event, args, armed=[]):
        if event == "import" and args[0] == "fdt" and not armed:
            armed.append(1)
            _arm()
    sys.addaudithook(_hook)
"""
JSON = ARM + """
sys.modules[__name__] = _self
dumps = _real.dumps


def __getattr__(name):
    if name == "loads" and _after == "json":
        _arm()
    return getattr(_real, name)
"""


def start_with_nomem(make_server, d, after, n, app):
    """A server whose worker starts with the n-th allocation after `after` failing: True
    when it serves, False when the start fails (and says why)."""
    s = make_server(workers=1, threads=1, start=False, sub=f"{after}{n}",
                    env={"FDT_NOMEM_AFTER": after, "FDT_NOMEM_AT": str(n)})
    lines = ["[server]"] + [f"{k} = {v}" for k, v in s.server.items()]
    lines += [f"[listen.web]\naddress = 127.0.0.1:{s.port}\nprotocol = "
              + ("jsonrpc" if "jsonrpc" in app else "http"), f"[app]\n{app}",
              f"[python]\npath = {d}"]
    s.conf_path.write_text("\n".join(lines) + "\n")
    s.start(wait=False)
    wait_for(lambda: s.proc.poll() is not None or "serving" in s.log(), what="start")
    ok = "start failed" not in s.log() and s.proc.poll() is None
    s.stop()
    return ok, s.log()


def test_19_06_out_of_memory_while_a_worker_starts(make_server, tmp_path):
    """One allocation fails in turn after the host's traceback import (its own types and
    the environ's keys come next), from the start of the fdt module's import, and from
    the JSON-RPC set-up's look-up of json.loads (then the mapping's import): each such start fails
    with the Python error logged ("cannot start"), never a crash; past the walk, a start
    with nothing armed serves."""
    need_testcapi()
    d = tmp_path / "shadow"
    d.mkdir()
    (d / "traceback.py").write_text(TRACEBACK)
    (d / "json.py").write_text(JSON)
    (d / "app.py").write_text("def application(environ, start_response):\n"
                              "    start_response('200 OK', [])\n    return [b'ok']\n")
    (d / "rpcmod.py").write_text("methods = {'echo': lambda params: params}\n")
    # The walks reach (CPython 3.11) the environ's keys at 40-49 after traceback, the
    # fdt module's creation at 40-99 after its import began (its exception types and
    # names), the JSON-RPC set-up's
    # functools.partial at 0-9 and the mapping's import at 10-19 after json.loads.
    for after, app, steps in (("traceback", "wsgi = app:application", 50),
                              ("fdt", "wsgi = app:application", 100),
                              ("json", "jsonrpc = rpcmod:methods", 20)):
        failed = 0
        for n in range(steps):
            ok, log = start_with_nomem(make_server, d, after, n, app)
            assert "Segmentation" not in log and "signal" not in log, (after, n, log)
            assert ok or "cannot start: worker 0: process_init failed: " in log, (after, n, log)
            failed += not ok
        assert failed, after
    ok, log = start_with_nomem(make_server, d, "nothing", 0, "wsgi = app:application")
    assert ok, log
