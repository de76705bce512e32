"""The connection API as an application uses it (include/fdt/conn.h), through the line test
application: its accessors, a write and a close from another thread while the connection
waits for its client, output the client takes slowly, output over max_output, and an
application built for another ABI."""
import socket
import subprocess
import time

from fdt import APPS, FDTSERVER, FdtServer, LineClient, wait_for
from http_util import HELLO


def pattern(n, start=0):
    """The bytes FLOOD writes: byte i is i mod 251."""
    whole = bytes(range(251))
    out = bytearray()
    i = start % 251
    while len(out) < n:
        out += whole[i:]
        i = 0
    return bytes(out[:n])


def start_fails(s):
    """Starts the server's master and returns True once it has exited non-zero."""
    with open(s.log_path, "ab") as logf:
        p = subprocess.Popen([str(FDTSERVER), "-c", str(s.conf_path)], stdout=logf,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        return p.wait(timeout=30) != 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_16_01_the_connection_accessors(make_server):
    s = make_server(workers=1)
    a, b = s.client(), s.client()
    first = dict(kv.split("=") for kv in a.call("CONN").split())
    assert first["listener"] == "main" and first["tls"] == "0" and first["calls"] == "1"
    again = dict(kv.split("=") for kv in a.call("CONN").split())
    assert again["id"] == first["id"] and again["calls"] == "2"  # set_data kept its value
    other = dict(kv.split("=") for kv in b.call("CONN").split())
    assert other["id"] != first["id"] and other["calls"] == "1"  # per connection


def test_16_02_another_thread_writes_and_closes_while_the_client_waits(make_server):
    s = make_server(workers=1, threads=2)
    pids = s.worker_pids()
    c = s.client()
    c.send("LATER 300 written later\n")
    # The connection is idle and armed in epoll meanwhile; its thread is free.
    assert s.client().call("PING") == "PONG"
    assert c.readline() == "written later"
    assert c.closed_by_server()
    # Only a close, nothing to send first.
    c = s.client()
    c.send("LATER 200 -\n")
    assert c.closed_by_server()
    # The client leaves before the other thread writes: the write finds the connection
    # closed, the reference keeps the object until that thread lets go.
    c = s.client()
    c.send("LATER 300 too late\n")
    time.sleep(0.05)
    c.close()
    time.sleep(0.5)
    assert s.client().call("PING") == "PONG"
    assert s.worker_pids() == pids and "ERROR" not in s.log()


def test_16_03_output_a_slow_client_takes_arrives_whole(make_server):
    n = 12 << 20
    s = make_server(workers=1, server={"max_output": "32m"})
    c = LineClient(s.port)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    c.send(f"FLOOD {n}\n")
    time.sleep(0.5)  # the server buffers what the socket does not take
    got = bytearray()
    deadline = time.monotonic() + 60
    c.sock.settimeout(10)
    while len(got) < n + len(f"FLOODED {n} 0\n") and time.monotonic() < deadline:
        chunk = c.sock.recv(65536)
        assert chunk, f"closed after {len(got)} bytes"
        got += chunk
        if len(got) < 1 << 20:
            time.sleep(0.001)  # slow at first: partial sends, then EPOLLOUT flushes
    assert len(got) >= n, f"{len(got)} of {n} bytes in 60 s"
    assert bytes(got[:n]) == pattern(n)
    assert bytes(got[n:]) == f"FLOODED {n} 0\n".encode()
    assert "over max_output" not in s.log()


def test_16_04_output_over_max_output_closes_the_connection(make_server):
    s = make_server(workers=1, server={"max_output": "64k"})
    c = LineClient(s.port)
    c.send("FLOOD 67108864\n")  # 64 MiB, never read until the server gave up
    wait_for(lambda: "over max_output" in s.log(), what="the max_output warning")
    got = 0
    c.sock.settimeout(10)
    while True:
        chunk = c.sock.recv(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    assert 0 < got < 64 << 20
    assert "FLOODED" not in s.log()
    assert s.client().call("PING") == "PONG"  # the worker goes on


def test_16_05_an_application_for_another_abi_is_refused(tmp_path):
    s = FdtServer(tmp_path, app="lineapp_badabi.so")
    r = subprocess.run([str(FDTSERVER), "--check", "-c", str(s.conf_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "application ABI 99" in r.stderr and "this server speaks 1" in r.stderr, r.stderr
    assert start_fails(s)
    assert "application ABI 99" in s.log(), s.log()
    assert (APPS / "lineapp_badabi.so").exists()


def test_16_06_a_raw_listener_needs_an_application_that_reads_bytes(tmp_path):
    """hello answers HTTP only (no on_data): a raw listener for it stops the start with the
    reason, instead of a worker that accepts and cannot answer."""
    s = FdtServer(tmp_path, app=HELLO)
    assert start_fails(s)
    assert "[listen.main] protocol raw but the application has no on_data" in s.log(), s.log()


def test_16_07_an_application_with_connection_hooks(make_server, tmp_path):
    """on_open may refuse a connection, on_close runs once per connection whoever closed
    it, process_fini runs when the worker stops gracefully; and since the application keeps
    state per connection, a reload closes its idle connection between requests instead of
    handing it to the new generation."""
    flag = tmp_path / "refuse"
    fini = tmp_path / "fini.txt"
    s = make_server(app="lineapp_hooks.so", workers=1, threads=2,
                    app_keys={"refuse_open_if_exists": str(flag), "fini_file": str(fini)})
    (pid,) = s.worker_pids()
    c = s.client()
    conn_id = dict(kv.split("=") for kv in c.call("CONN").split())["id"]
    c.close()
    s.wait_log(f"lineapp: closed conn={conn_id}")
    c = s.client()
    assert c.call("QUIT") == "BYE"
    assert c.closed_by_server()
    flag.write_text("")
    refused = s.client()
    assert refused.closed_by_server()
    flag.unlink()
    idle = s.client()
    assert idle.call("PING") == "PONG"
    s.reload()
    assert idle.closed_by_server(timeout=15)  # closed between requests, not handed over
    wait_for(lambda: fini.exists() and f"fini {pid}" in fini.read_text(),
             what="process_fini of the old worker")
    assert s.log().count("lineapp: closed conn=") >= 3
    assert "handed over to a successor" not in s.log()


def test_16_08_a_connection_with_application_data_is_not_handed_over(make_server):
    """The rule of app.h: a connection the application attached data to keeps state the
    new generation would not have, so a reload closes it between requests; a plain idle
    connection beside it goes on in the new generation."""
    s = make_server(workers=1, threads=2)
    plain, marked = s.client(), s.client()
    assert plain.call("PING") == "PONG"
    assert "calls=1" in marked.call("CONN")
    s.reload()
    assert marked.closed_by_server(timeout=15)
    wait_for(lambda: {w["generation"] for w in s.workers()} == {2}, what="generation 1 gone")
    assert dict(kv.split("=") for kv in plain.call("WHOAMI").split())["generation"] == "2"


def test_16_09_a_client_that_takes_no_output_for_idle_timeout_is_closed(make_server):
    """A view streaming to a client that stops reading waits for it (backpressure), for at
    most idle_timeout without progress; then the connection is closed, the view's write
    fails, and its thread is free again."""
    s = make_server(workers=1, threads=2, start=False,
                    server={"max_output": "256k", "idle_timeout": 1})
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.start()
    (pid,) = s.worker_pids()
    c = socket.create_connection(("127.0.0.1", s.port))
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sendall(b"GET /big/64 HTTP/1.1\r\nHost: t\r\n\r\n")  # 64 MiB, never read
    s.wait_log("the client took no output for", timeout=30)
    wait_for(lambda: sum(w["threads_busy"] for w in s.workers()) == 0, what="thread free")
    c.close()
    get = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    get.sendall(b"GET /big/0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert get.recv(100).startswith(b"HTTP/1.1 200")
    get.close()
    assert s.worker_pids() == [pid]

