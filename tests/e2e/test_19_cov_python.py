"""Coverage of src/python's remaining failure paths (cov-data): each driven through a real
server serving tests/apps/python/covpyapps.py (or covpytxn.py), with what the application or the client
sees asserted."""
import json

from fdt import wait_for
from http_util import Client, get
from test_16_cov_python import (cov_server, post, rows, rpc_server, start_fails,
                                 testcapi as need_testcapi, txn_server)
from test_40_python import req


def test_19_01_read_all_out_of_memory(make_server):
    """wsgi.input.read() of a body larger than its first piece (64 KiB), with each of its
    allocations failing in turn (the first buffer, each doubling, the final shrink): the
    application gets a MemoryError, never a short or wrong body, and the next read of the
    same body in full succeeds."""
    need_testcapi()
    s = cov_server(make_server)
    body = bytes(range(256)) * 600  # 153,600 bytes: two doublings and a shrink
    got = []
    for n in range(20):
        r = req(s, "POST", f"/nomem-read?{n}", body=body)
        assert r.status == 200, (n, r)
        got.append(json.loads(r.body))
    assert set(got) == {len(body), "MemoryError"}, got
    # Failures first (the call's own allocations and the read's), then whole bodies.
    k = got.index(len(body))
    assert got[:k] == ["MemoryError"] * k and got[k:] == [len(body)] * (20 - k), got


def test_19_02_says_one_item_yields_three(make_server):
    """A result whose len() says one item but that yields three: every item reaches the
    client, in order, streamed (no Content-Length), and the worker goes on."""
    s = cov_server(make_server)
    r = get(s.port, "/len1-three")
    assert (r.status, r.body) == (200, b"one two three")
    assert r.header("Content-Length") is None
    assert get(s.port, "/env").status == 200


def test_19_03_errors_write_without_utf8(make_server):
    """wsgi.errors.write() of a str with a lone surrogate (no UTF-8 form): the application
    gets a UnicodeEncodeError it can catch, nothing is logged, and its answer stands."""
    s = cov_server(make_server)
    r = get(s.port, "/errors-surrogate")
    assert (r.status, json.loads(r.body)) == (200, "UnicodeEncodeError: surrogates not allowed")
    assert "lone" not in s.log()


def test_19_04_file_wrapper_and_savepoint_out_of_memory(make_server, tmp_path):
    """wsgi.file_wrapper() and fdt.savepoint() with each of their allocations failing in
    turn: the application gets a MemoryError it can catch, or the object; the request is
    answered and its transaction commits what it did."""
    need_testcapi()
    s = cov_server(make_server)
    got = [json.loads(req(s, "POST", f"/nomem-file-wrapper?{n}", body=b"x").body)
           for n in range(6)]
    assert got[0] == "MemoryError" and got[-1] == 1, got
    t = txn_server(make_server, tmp_path)
    c = Client(t.port)
    got = [json.loads(post(c, f"/nomem-savepoint/{n}").body) for n in range(6)]
    assert got[0] == "MemoryError" and got[-1] == "savepoint", got
    assert rows(c) == [30] * 6


def test_19_05_out_of_memory_building_a_post_environ(make_server):
    """Each Python allocation from the end of one request through the environ of the next,
    a POST with a two-digit Content-Length, fails once in turn: each request is answered
    (a 500 where the environ could not be built, the reason logged), and the worker goes
    on."""
    need_testcapi()
    s = cov_server(make_server)
    pid = s.worker_pids()
    statuses = set()
    for n in range(60):
        c = Client(s.port)
        r1 = c.request("GET", f"/arm?{n}")
        r2 = c.request("POST", "/nope", headers={"Content-Type": "text/plain"},
                       body=b"0123456789")
        c.close()
        assert r1.status in (200, 500) and r2.status in (404, 500), (n, r1, r2)
        statuses.add(r2.status)
    assert 200 in [get(s.port, "/disarm").status for _ in range(2)]
    assert statuses == {404, 500}
    assert "POST /nope: cannot build the environ" in s.log()
    assert get(s.port, "/env").status == 200 and s.worker_pids() == pid


def test_19_06_json_dumps_not_callable_fails_the_start(make_server, tmp_path):
    """A json module on [python] path whose dumps is not a function: the JSON-RPC host
    cannot make its strict encoder, and the start fails saying why."""
    d = tmp_path / "shadow"
    d.mkdir()
    (d / "json.py").write_text("dumps = 42\n\n\ndef loads(text):\n    return None\n")
    (d / "rpcmod.py").write_text("methods = {}\n")
    start_fails(rpc_server(make_server, "rpcmod:methods", path=d, sub="json", start=False),
                "cannot import rpcmod:methods: TypeError: the first argument must be callable")


def test_19_07_module_name_not_ascii_is_refused(make_server):
    """[app] jsonrpc naming a module with a byte that is not ASCII is refused when the
    configuration is read (so the host only ever imports ASCII names: python_app.c)."""
    s = rpc_server(make_server, "covpy\xffrpc:methods", start=False)
    s.conf_path.write_bytes(s.conf_path.read_text().encode("latin-1"))
    s.start(wait=False)
    wait_for(lambda: "rpc:methods': expected pkg.module:mapping" in s.log(),
             what="the refusal")
