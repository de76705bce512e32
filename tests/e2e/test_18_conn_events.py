"""A keep-alive connection keeps being served whatever arrives while a request runs.

A plain connection stays in the worker's epoll set edge-triggered between requests (no
re-arm per request: src/conn/conn.h), so every way bytes can arrive or room can appear
while a thread runs the connection is tried here on one connection, several times over:
a body that arrives in pieces while the application reads it (wsgi.input), a large answer
to a slow reader (the writer waits for room), two requests in one segment, a request head
split across segments, and a request sent while the previous one still runs (lineapp).
Each answer is checked, and the connection must still answer the next request."""
import socket
import time

from fdt import LineClient, wait_for

from test_40_python import py_server

HELLO = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def read_response(sock, buf=b""):
    """One HTTP/1.1 response with Content-Length: (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the head; got {buf!r}"
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    n = int(headers["content-length"])
    while len(buf) < n:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the body"
        buf += chunk
    return status, headers, buf[:n], buf[n:]


def hello_ok(sock):
    sock.sendall(HELLO)
    status, _, body, rest = read_response(sock)
    assert (status, body, rest) == (200, b"Hello, world!", b"")


def test_18_01_http_keepalive_connection_survives_every_kind_of_wait(make_server, tmp_path):
    s = py_server(make_server, threads=2)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (8 * 4096))  # 8 MiB
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    try:
        for rnd in range(3):
            # A body that arrives in four pieces while the application reads it.
            body = bytes((i * 7 + rnd) % 256 for i in range(200_000))
            sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(body))
            for k in range(4):
                time.sleep(0.03)
                sock.sendall(body[k * 50_000:(k + 1) * 50_000])
            status, _, got, rest = read_response(sock)
            assert (status, got == body, rest) == (200, True, b"")
            hello_ok(sock)

            # A large answer to a slow reader: the writer waits for room many times.
            sock.sendall(b"GET /file?%s HTTP/1.1\r\nHost: x\r\n\r\n" % str(big).encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            head, _, buf = buf.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            want = 8 * 1024 * 1024
            reads = 0
            while len(buf) < want:
                chunk = sock.recv(256 * 1024)
                assert chunk, "closed in the middle of the file"
                buf += chunk
                reads += 1
                if reads % 4 == 0:
                    time.sleep(0.005)
            assert buf == big.read_bytes()
            hello_ok(sock)

            # Two requests in one segment, then a head split across two segments.
            sock.sendall(HELLO + HELLO)
            status, _, b1, rest = read_response(sock)
            status2, _, b2, rest = read_response(sock, rest)
            assert (status, b1, status2, b2, rest) == (200, b"Hello, world!", 200,
                                                       b"Hello, world!", b"")
            sock.sendall(HELLO[:10])
            time.sleep(0.05)
            sock.sendall(HELLO[10:])
            status, _, got, rest = read_response(sock)
            assert (status, got, rest) == (200, b"Hello, world!", b"")
    finally:
        sock.close()


def test_18_02_a_request_sent_while_the_previous_runs_is_answered_after_it(make_server):
    s = make_server(workers=1, threads=2)
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
        f = sock.makefile("rb")
        for i in range(20):
            sock.sendall(b"SLEEP 30\n")
            time.sleep(0.01)  # the first runs (blocks its thread) when the second arrives
            sock.sendall(b"ECHO after-%d\n" % i)
            assert f.readline() == b"SLEPT 30\n"
            assert f.readline() == b"after-%d\n" % i
        sock.sendall(b"PING\n")
        assert f.readline() == b"PONG\n"


def test_18_03_the_clients_end_that_came_with_its_last_bytes_closes_the_connection(make_server):
    """A FIN or a reset that arrives together with a client's last bytes, before any thread
    reads them, is reported once (edge-triggered): the read that takes the bytes must go on
    to the end, or the connection would sit open until idle_timeout (60 s here). The one
    thread is kept busy so that everything arrives before it reads."""
    s = make_server(workers=1, threads=1)
    (pid,) = s.worker_pids()
    kept = LineClient(s.port)  # served once, then idle in the epoll set
    assert kept.call("PING") == "PONG"
    busy = LineClient(s.port)
    busy.send("SLEEP 400\n")
    time.sleep(0.1)  # the thread sleeps now
    fresh = LineClient(s.port)  # a new connection whose bytes and reset come together
    fresh.send("BODY 100000\nabc")  # promises more than it sends
    fresh.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    fresh.close()
    half = LineClient(s.port)  # a new connection: a request, then the client's FIN
    half.send("PING\n")
    half.sock.shutdown(socket.SHUT_WR)
    kept.send("PING\n")  # the idle keep-alive connection: a request, then the FIN
    kept.sock.shutdown(socket.SHUT_WR)
    assert busy.readline() == "SLEPT 400"
    for c in (half, kept):
        assert c.readline() == "PONG"
        assert c.closed_by_server()
    busy.close()
    # The server's own bound is idle_timeout (60 s): well inside it, all are closed.
    wait_for(lambda: s.workers()[0]["connections_open"] == 0, what="all closed")
    assert s.worker_pids() == [pid]


def test_18_04_a_long_request_does_not_hold_up_the_others(make_server):
    """With one poller ([server] pollers = 1, the default), the thread polling runs what it
    takes: a request that computes or sleeps for long must not stall the others. The loop
    thread hands the poller's turn to a parked thread after 2 ms, so each PING is answered
    while the long request still runs. pollers = 0 (every thread polls) serves the same."""
    for pollers, cmds in ((1, ("SPIN 2000", "SLEEP 2000")), (0, ("SLEEP 2000",))):
        s = make_server(workers=1, threads=2, server={"pollers": pollers})
        for cmd in cmds:
            long_ = LineClient(s.port)
            long_.send(cmd + "\n")
            time.sleep(0.1)  # it runs now
            for _ in range(3):
                c = LineClient(s.port)
                assert c.call("PING") == "PONG"
                c.close()
            # The PINGs came first: the long request has not answered yet. (The promise is
            # 2 ms; the slack, 2 s less three PINGs, is for a loaded machine.)
            long_.sock.setblocking(False)
            try:
                early = long_.sock.recv(100)
            except BlockingIOError:
                early = None
            assert early is None, f"the PINGs waited for {cmd}: {early!r}"
            long_.sock.setblocking(True)
            assert long_.readline() == cmd.replace("SPIN", "SPUN").replace("SLEEP", "SLEPT")
            long_.close()
        s.stop()


def test_18_05_the_gate_opens_wide_while_requests_wait_on_a_database(make_server, tmp_path):
    """Giving the poller's turn up costs a wake-up per block: while most requests wait on a
    database, every thread polls (the log says so at debug level), and once they stop
    waiting, one poller again. Counted every 250 ms; each loop below is bounded."""
    s = make_server(workers=1, threads=2, server={"pollers": 1, "log_level": "debug"},
                    extra_ini=f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n")
    c = LineClient(s.port)
    deadline = time.monotonic() + 20
    while "pollers: every thread polls now" not in s.log():
        assert time.monotonic() < deadline, "the gate never opened wide"
        for _ in range(20):
            assert c.call("TXN BEGIN") == "OK"
            assert c.call("SQL lite SELECT 1").startswith("OK")
            assert c.call("TXN COMMIT") == "OK"
    deadline = time.monotonic() + 20
    while "pollers: 1 again" not in s.log():
        assert time.monotonic() < deadline, "the gate never narrowed again"
        for _ in range(50):
            assert c.call("PING") == "PONG"
    assert c.call("PING") == "PONG"
