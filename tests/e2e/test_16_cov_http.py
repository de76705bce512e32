"""The HTTP and JSON-RPC protocols' paths no other test takes: the access log for clients
on IPv6 and unix sockets, an access log that cannot be opened (at start and when reopened
on SIGUSR1) or is reopened after a rotation, the Keep-Alive timeout bounded by
graceful_timeout, JSON-RPC answers over max_output, unknown txn.* methods and an xid too
long for a GID, and apps/hello's /grow refusing a size or running out of memory."""
import base64
import json
import os
import re
import resource
import signal
import socket
import struct
import subprocess

import pytest

from fdt import FDTSERVER, RpcClient, free_port, wait_for
from http_util import Client, get, hello_server
from test_11_http_hardening import sanitized
from test_22_jsonrpc import rpc_server


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def log_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_16_01_access_log_names_ipv6_and_unix_clients(make_server, tmp_path):
    log = tmp_path / "access.log"
    sock = tmp_path / "http.sock"
    s = hello_server(make_server, server={"access_log": str(log)}, start=False)
    s.listeners = {"v6": {"address": f"[::1]:{s.port}", "protocol": "http"},
                   "unix": {"address": f"unix:{sock}", "protocol": "http"}}
    s.write_config()
    s.start()
    c = socket.create_connection(("::1", s.port), timeout=10)
    c.sendall(b"GET /?from=v6 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert b"200 OK" in c.recv(65536).split(b"\r\n")[0]
    c.close()
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(10)
    u.connect(str(sock))
    u.sendall(b"GET /?from=unix HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert b"200 OK" in u.recv(65536).split(b"\r\n")[0]
    u.close()
    s.stop()
    lines = log_lines(log)
    assert any(re.match(r'^::1 - - \[.*\] "GET /\?from=v6 HTTP/1.1" 200 ', l) for l in lines), lines
    assert any(re.match(r'^unix - - \[.*\] "GET /\?from=unix HTTP/1.1" 200 ', l)
               for l in lines), lines


def test_16_09_access_log_of_a_client_gone_before_the_answer(make_server, tmp_path):
    """A client that resets its connection while its view runs: the request is logged with
    "-" for the address, which the socket no longer has."""
    log = tmp_path / "access.log"
    s = hello_server(make_server, server={"access_log": str(log)})
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(b"GET /sleep/2000 HTTP/1.1\r\nHost: a\r\n\r\n")
    # Wait until the view runs (its thread is busy), then reset the connection.
    wait_for(lambda: any(w.get("threads_busy", 0) >= 1 for w in s.workers()),
             what="the view running")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    wait_for(lambda: any("/sleep/2000" in l for l in log_lines(log)), what="the log line")
    line = next(l for l in log_lines(log) if "/sleep/2000" in l)
    assert line.startswith("- - - ["), line


def test_16_02_access_log_that_cannot_be_opened_stops_the_start(make_server, tmp_path):
    bad = tmp_path / "no-such-dir" / "access.log"
    s = hello_server(make_server, server={"access_log": str(bad)}, start=False)
    s.start(wait=False)
    assert s.wait_exit() != 0
    assert f"access_log {bad}: " in s.log(), s.log()[-2000:]


def test_16_03_access_log_reopened_on_sigusr1(make_server, tmp_path):
    log = tmp_path / "access.log"
    s = hello_server(make_server, server={"access_log": str(log)})
    assert get(s.port, "/?n=1").status == 200
    wait_for(lambda: any("/?n=1" in l for l in log_lines(log)), what="first line")
    rotated = tmp_path / "access.log.1"
    os.rename(log, rotated)
    # A directory where the log was: the reopen fails and the old file is kept.
    log.mkdir()
    s.signal(signal.SIGUSR1)
    s.wait_log("cannot reopen the access log: keeping the old file")
    assert get(s.port, "/?n=2").status == 200
    wait_for(lambda: any("/?n=2" in l for l in log_lines(rotated)), what="line in the old file")
    # With the path free again, the reopen moves the log to a new file.
    log.rmdir()
    s.signal(signal.SIGUSR1)
    wait_for(lambda: log.exists(), what="the new access log")
    assert get(s.port, "/?n=3").status == 200
    wait_for(lambda: any("/?n=3" in l for l in log_lines(log)), what="line in the new file")
    assert not any("/?n=3" in l for l in log_lines(rotated))


def test_16_04_keepalive_advertised_below_graceful_timeout(make_server):
    s = hello_server(make_server, server={"keepalive_timeout": 30, "graceful_timeout": 4})
    r = get(s.port, "/")
    assert r.status == 200 and r.header("Keep-Alive") == "timeout=3", r.headers


def test_16_08_json_access_log_names_the_transaction_outcome(make_server, tmp_path):
    log = tmp_path / "access.log"
    db = tmp_path / "lite.db"
    s = make_server(start=False, server={"access_log": str(log), "log_format": "json"},
                    extra_ini=f"[resource.lite]\ndriver = sqlite\npath = {db}\n")
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.start()
    c = Client(s.port)
    r = c.request("POST", "/sql/lite/200", body=b"CREATE TABLE t (a INTEGER)")
    assert r.status == 200 and r.body == b"rows=0\n", (r.status, r.body)
    r = c.request("POST", "/sql/lite/404", body=b"INSERT INTO t VALUES (1)")
    assert r.status == 404
    assert c.request("GET", "/nope").status == 404
    c.close()
    s.stop()
    entries = [json.loads(line) for line in log_lines(log)]
    assert [(e["path"], e["status"], e["txn"]) for e in entries] == [
        ("/sql/lite/200", 200, "committed"), ("/sql/lite/404", 404, "rolled_back"),
        ("/nope", 404, None)], entries


def test_16_05_jsonrpc_answers_over_max_output(make_server, tmp_path):
    s = rpc_server(make_server, tmp_path, server={"max_output": "100"})
    c = RpcClient(s.rpc_port)
    # The method's result does not fit: a limit error for that call.
    r = c.call("echo", ["x" * 200])
    assert r["error"] == {"code": -32020, "message": "limit reached"}, r
    assert c.call("echo", [1])["result"] == [1]
    # A result that fits max_output in an answer that does not (the envelope and id).
    r = c.call("echo", ["x" * 80])
    assert r["error"] == {"code": -32020,
                          "message": "answer larger than max_output (100 bytes)"}, r
    # A built-in answer that does not fit (txn.begin echoes a long xid): a limit error with
    # the call's id, and the connection keeps working.
    c.send_raw('{"jsonrpc":"2.0","method":"txn.begin","id":7,"params":{"xid":{"format_id":1,'
               f'"gtrid":"{b64(b"g" * 60)}"}}}}}}\n')
    assert c.read() == {"jsonrpc": "2.0", "id": 7, "error": {
        "code": -32020, "message": "answer larger than max_output (100 bytes)"}}
    assert c.call("echo", [2])["result"] == [2]


def test_16_06_jsonrpc_unknown_txn_method_and_xid_too_long(make_server, tmp_path):
    s = rpc_server(make_server, tmp_path, server={"node": "a-node-with-a-long-name"})
    c = RpcClient(s.rpc_port)
    r = c.call("txn.nope")
    assert r["error"] == {"code": -32601, "message": "method not found: txn.nope"}, r
    r = c.call("txn.begin", {"xid": {"format_id": 1, "gtrid": 5}})
    assert r["error"] == {"code": -32602, "message": "xid.gtrid must be a base64url string"}, r
    # Parts of 64 bytes each are allowed, but with this node name the GID would be longer
    # than PostgreSQL's 199 bytes.
    r = c.call("txn.begin", {"xid": {"format_id": -2147483648, "gtrid": b64(b"g" * 64),
                                     "bqual": b64(b"b" * 64)}})
    assert r["error"]["code"] == -32602 and "xid too long" in r["error"]["message"], r
    # Nothing began: a root transaction can start.
    assert c.call("txn.begin")["result"]["state"] == "active"
    assert c.call("txn.abort")["result"] == {"state": "rolled back"}


def test_16_07_hello_grow_refuses_a_size_and_runs_out_of_memory(make_server, tmp_path):
    s = hello_server(make_server)
    r = get(s.port, "/grow/0")
    assert r.status == 400 and b"Expected /grow/MB, 1 to 1024." in r.body
    if sanitized(s.pid):
        pytest.skip("a sanitizer's shadow memory does not fit an address-space limit")
    s.stop()
    # Under an address-space limit of 512 MiB, a 1 GiB block cannot be had: 503.
    limited = make_server(app=s.app, start=False, sub="limited")
    limited.listeners = {"main": {"address": f"127.0.0.1:{limited.port}", "protocol": "http"}}
    limited.write_config()
    limit = 512 << 20
    limited.logf = open(limited.log_path, "ab")
    limited.proc = subprocess.Popen(
        [str(FDTSERVER), "-c", str(limited.conf_path)], stdout=limited.logf,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=limited.env,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    limited.wait_ready()
    r = get(limited.port, "/grow/1024")
    assert r.status == 503 and b"Out of memory." in r.body, (r.status, r.body)
    assert get(limited.port, "/").status == 200
