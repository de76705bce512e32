"""The connection layer (src/conn/conn.c) when the system calls under it fail: recv and send
interrupted, refused for now (EAGAIN) or failing for good, epoll_ctl failing when a
connection is armed again, and a writer on another thread (the line application's LATER)
meeting those. tests/shim/failshim.so fails the n-th call in the worker (`/child`); each
test asserts what the client sees (its answer, or a clean close without one) and that the
worker goes on serving the next client (the same process: it did not crash).

Counting: with one worker of one thread and one client at a time, a PING of the line
application is one recv (the line) and one send (PONG); the n-th call is the n-th of the
worker, whatever thread makes it. An errno the shim has no name for is given as its number
(EPIPE 32, ECONNRESET 104)."""
import socket
import ssl

import pytest

from fdt import BUILD
from http_util import HELLO
from test_50_tls import pki, tls_listener  # noqa: F401 (pki: a fixture)

SHIM = BUILD / "tests" / "shim" / "failshim.so"
EPIPE = 32
ECONNRESET = 104



def failing_server(make_server, tmp_path, spec, threads=1, **kw):
    """A server of one worker whose worker fails the calls `spec` names (FDT_FAIL); its
    fail log says which failures were made. Skips the test in a sanitizer build (no
    failshim.so there)."""
    if not SHIM.exists():
        pytest.skip("failshim.so is not built (sanitizer build)")
    log = tmp_path / f"fail-{len(list(tmp_path.glob('fail-*.log')))}.log"
    log.touch()
    s = make_server(workers=1, threads=threads,
                    env={"LD_PRELOAD": str(SHIM), "FDT_FAIL": spec, "FDT_FAIL_LOG": str(log)},
                    **kw)
    s.fail_log = log
    return s


def deferred(s):
    """Starts s with its listener deferring the accept until the client's first bytes are
    there, so that the connection's first run reads the request and its first arm (an
    EPOLL_CTL_ADD, which reports what is already true) comes after the answer. An answer
    the shim refused twice (EAGAIN, with room in the socket in truth) is then reported
    writable by that ADD; on a connection already in epoll no edge would come, as no
    buffer ever filled."""
    s.listeners["main"]["defer_accept"] = 5
    s.write_config()
    s.start()
    return s


def failures(s):
    """The failures failshim made: "alloc #5 (libfdt.so.0)", without the pid and the
    caller's offset (" at +0x...")."""
    return [line.split(" ", 2)[2].split(" at +0x")[0]
            for line in s.fail_log.read_text().splitlines()]


def serves_on(s, pids, expected_error=None):
    """The same worker answers a new client: the failure cost one connection at most, and
    the log has no error but the one expected."""
    c = s.client()
    assert c.call("PING") == "PONG"
    assert c.call("ECHO still here") == "still here"
    c.close()
    assert s.worker_pids() == pids
    errors = [line for line in s.log().splitlines() if " ERROR " in line]
    assert all(expected_error and expected_error in line for line in errors), errors


def closed_without_answer(c):
    """The server closed the connection (a FIN or a reset) and sent nothing."""
    c.sock.settimeout(10)
    try:
        return c.sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_17_01_recv_interrupted_is_retried(make_server, tmp_path):
    s = failing_server(make_server, tmp_path, "recv@1:EINTR/child")
    pids = s.worker_pids()
    c = s.client()
    assert c.call("PING") == "PONG"  # the interrupted read was made again
    assert failures(s) == ["recv #1 (-)"]
    serves_on(s, pids)
    assert c.call("PING") == "PONG"


def test_17_02_recv_failing_closes_that_connection_only(make_server, tmp_path):
    s = failing_server(make_server, tmp_path, f"recv@1:{ECONNRESET}/child")
    pids = s.worker_pids()
    c = s.client()
    c.send("PING\n")
    assert closed_without_answer(c)
    assert failures(s) == ["recv #1 (-)"]
    serves_on(s, pids)


@pytest.mark.parametrize("spec", [
    "send@1:EINTR/child",  # interrupted: sent again at once
    "send@1:EAGAIN/child",  # the socket takes nothing now: buffered, flushed after the run
    "send@1:EAGAIN/child,send@1:EINTR/child",  # ... and that flush is interrupted
    "send@1:EAGAIN/child,send@1:EAGAIN/child",  # ... and waits for EPOLLOUT
])
def test_17_03_a_send_that_is_interrupted_or_refused_for_now_still_answers(
        make_server, tmp_path, spec):
    s = deferred(failing_server(make_server, tmp_path, spec, start=False))
    pids = s.worker_pids()
    c = s.client()
    assert c.call("PING") == "PONG"
    assert len(failures(s)) == spec.count(",") + 1
    assert c.call("ECHO again") == "again"
    serves_on(s, pids)


@pytest.mark.parametrize("spec", [
    f"send@1:{EPIPE}/child",  # the answer's own send fails
    f"send@1:EAGAIN/child,send@1:{EPIPE}/child",  # buffered; flushing it fails
    # buffered, not taken at the end of the run either; flushing on EPOLLOUT fails
    f"send@1:EAGAIN/child,send@1:EAGAIN/child,send@1:{EPIPE}/child",
])
def test_17_04_a_send_that_fails_closes_that_connection_only(make_server, tmp_path, spec):
    s = deferred(failing_server(make_server, tmp_path, spec, start=False))
    pids = s.worker_pids()
    c = s.client()
    c.send("PING\n")
    assert closed_without_answer(c)
    assert len(failures(s)) == spec.count(",") + 1
    serves_on(s, pids)


def test_17_05_epoll_ctl_failing_when_a_connection_is_armed_again(make_server, tmp_path):
    """The worker makes 5 epoll_ctl calls while it starts (signals, channel, wake-up,
    run queue, listener: one listener, one thread); the 6th adds the first connection after
    its first request (defer_accept: the worker accepts it only once the request is there,
    so that the first run answers it before it arms the connection). It fails: the answer
    already went out, the connection closes with the reason in the log, and the next
    connection is served."""
    s = deferred(failing_server(make_server, tmp_path, "epoll_ctl@6:ENOMEM/child", start=False))
    pids = s.worker_pids()
    c = s.client()
    assert c.call("PING") == "PONG"
    assert c.closed_by_server()
    assert failures(s) == ["epoll_ctl #6 (-)"]
    s.wait_log("conn=1 epoll_ctl: Cannot allocate memory")
    serves_on(s, pids, "conn=1 epoll_ctl: ")


def test_17_06_a_writer_on_another_thread_whose_output_waits(make_server, tmp_path):
    """LATER: the connection sits armed in epoll (for input) when another thread writes;
    the socket takes nothing at that moment, so the bytes are buffered and the connection
    is armed again for output: the loop sends them, then the close follows."""
    s = failing_server(make_server, tmp_path, "send@1:EAGAIN/child", threads=2)
    pids = s.worker_pids()
    c = s.client()
    c.send("LATER 200 written later\n")
    assert c.readline() == "written later"
    assert c.closed_by_server()
    assert failures(s) == ["send #1 (-)"]
    serves_on(s, pids)


def test_17_07_a_writer_on_another_thread_whose_send_fails(make_server, tmp_path):
    """The other thread's write finds the socket broken: the connection is dead, and since
    it sits armed (no thread runs it), the writer hands it to the loop to close."""
    s = failing_server(make_server, tmp_path, f"send@1:{EPIPE}/child", threads=2)
    pids = s.worker_pids()
    c = s.client()
    c.send("LATER 200 never arrives\n")
    assert closed_without_answer(c)
    assert failures(s) == ["send #1 (-)"]
    serves_on(s, pids)


# Allocations: the worker makes 4 allocations of its own code before it is ready (one
# thread); the 5th is the first connection, the 6th and 7th the buffers that connection
# needs first (input kept for later, output the socket did not take).


def test_17_08_no_memory_for_a_new_connection(make_server, tmp_path):
    s = failing_server(make_server, tmp_path, "alloc@5/child")
    pids = s.worker_pids()
    c = s.client()
    c.sock.settimeout(10)
    try:
        c.send("PING\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert closed_without_answer(c)
    assert failures(s) == ["alloc #5 (libfdt.so.0)"]
    s.wait_log("out of memory: connection dropped")
    serves_on(s, pids, "out of memory: connection dropped")


def body_request(n):
    """BODY n and its n bytes in one send: the worker reads 16 KiB at a time, so a body
    over that is kept in the connection's input buffer until the rest arrives."""
    return b"BODY %d\n" % n + bytes(i % 256 for i in range(n))


@pytest.mark.parametrize("n", [6, 7])
def test_17_09_no_memory_to_keep_a_partial_request(make_server, tmp_path, n):
    """The 6th allocation keeps the part of the request the application has not taken
    yet, the 7th grows that buffer to read the rest. Either failing closes the connection
    with the reason in the log (it closed silently before)."""
    s = deferred(failing_server(make_server, tmp_path, f"alloc@{n}/child", start=False))
    pids = s.worker_pids()
    c = s.client()
    c.send(body_request(20000))
    assert closed_without_answer(c)
    assert failures(s) == [f"alloc #{n} (libfdt.so.0)"]
    s.wait_log("conn=1 out of memory for input: closing")
    c = s.client()
    c.send(body_request(20000))
    assert c.readline() == f"GOT 20000 {sum(i % 256 for i in range(20000))}"
    serves_on(s, pids)


def test_17_10_no_memory_for_output_the_socket_did_not_take(make_server, tmp_path):
    """The socket takes nothing of the answer (EAGAIN) and the buffer for it cannot be
    allocated: the connection closes, and the log says so (it said "output over
    max_output" before, which was not the case)."""
    s = failing_server(make_server, tmp_path, "send@1:EAGAIN/child,alloc@6/child")
    pids = s.worker_pids()
    c = s.client()
    c.send("PING\n")
    assert closed_without_answer(c)
    assert sorted(failures(s)) == ["alloc #6 (libfdt.so.0)", "send #1 (-)"]
    s.wait_log("conn=1 out of memory for output: closing")
    assert "max_output" not in s.log()
    serves_on(s, pids)


def tls_line_server(make_server, tmp_path, pki, spec, objs=None):
    """The line application over TLS (raw protocol), one worker of one thread, failing
    `spec`; objs: FDT_FAIL_OBJS (whose allocations count)."""
    s = failing_server(make_server, tmp_path, spec, start=False)
    if objs:
        s.env["FDT_FAIL_OBJS"] = objs
    s.listeners = {"main": tls_listener(pki, s.port, protocol="raw")}
    s.write_config()
    s.start()
    return s


def tls_call(s, pki, line):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as c:
            c.sendall(line.encode() + b"\n")
            return c.recv(100).decode()


@pytest.mark.parametrize("spec,objs,made", [
    ("alloc@6/child", None, "alloc #6 (libfdt.so.0)"),  # our TLS session (after the conn)
    ("alloc@1/child", "libcrypto", "alloc #1 (libcrypto.so.3)"),  # OpenSSL's (SSL_new)
])
def test_17_11_no_memory_for_a_tls_session(make_server, tmp_path, pki, spec, objs, made):
    """A TLS connection whose session cannot be made is dropped before its handshake (the
    client sees the connection closed), with the reason in the log; the next one is
    served."""
    s = tls_line_server(make_server, tmp_path, pki, spec, objs)
    pids = s.worker_pids()
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_call(s, pki, "PING")
    assert failures(s) == [made]
    s.wait_log("out of memory: connection dropped")
    assert tls_call(s, pki, "PING") == "PONG\n"
    assert s.worker_pids() == pids


def http_hello_server(make_server, tmp_path, spec):
    s = failing_server(make_server, tmp_path, spec, app=HELLO, start=False)
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    return deferred(s)  # the head comes with the accept: recv #1 reads it


def post_echo_after_continue(s, body=b"hello"):
    """POST /echo with Expect: 100-continue: the body goes only once the server asked for it,
    so the worker reads it with a recv of its own (the head's was the first). Returns what
    the server sent after the 100 Continue, or None when it reset the connection (which
    discards the 100 Continue the client had not read yet)."""
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
    got = b""
    try:
        while b"\r\n\r\n" not in got:
            chunk = c.recv(1000)
            assert chunk, got
            got += chunk
        assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got
        rest = got[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        c.sendall(body)
        while chunk := c.recv(65536):
            rest += chunk
    except (ConnectionResetError, BrokenPipeError):
        return None
    finally:
        c.close()
    return rest


def test_17_12_a_request_body_read_interrupted_or_failing(make_server, tmp_path):
    """The body comes after the head, in a read of its own (the second recv of the worker):
    interrupted, it is made again and the answer comes; failing, it ends the connection
    without one."""
    s = http_hello_server(make_server, tmp_path, "recv@2:EINTR/child")
    pids = s.worker_pids()
    answer = post_echo_after_continue(s)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello"), answer
    assert failures(s) == ["recv #2 (-)"]
    assert post_echo_after_continue(s, b"again").endswith(b"again")
    assert s.worker_pids() == pids
    s = http_hello_server(make_server, tmp_path, f"recv@2:{ECONNRESET}/child")
    pids = s.worker_pids()
    assert post_echo_after_continue(s) in (b"", None)  # closed, or reset: no answer
    assert failures(s) == ["recv #2 (-)"]
    assert post_echo_after_continue(s, b"again").endswith(b"again")
    assert s.worker_pids() == pids


# The input side without failures: what the application refuses, and what does not fit.


def test_17_13_a_line_the_application_refuses_closes_the_connection(make_server):
    """A line over lineapp's 4 KiB: on_data answers and returns -1, the connection closes;
    read at once (one read) and after a first part was kept (the kept part is offered again
    with the rest). The worker serves on."""
    s = make_server(workers=1, threads=1)
    pids = s.worker_pids()
    c = s.client()
    c.send("ECHO " + "x" * 5000 + "\n")
    assert c.readline() == "ERR line too long"
    assert c.closed_by_server()
    c = s.client()
    c.send("PING\n" + "x" * 3000)  # one send: the worker reads PING and keeps the rest
    assert c.readline() == "PONG"
    c.send("x" * 2000 + "\n")
    assert c.readline() == "ERR line too long"
    assert c.closed_by_server()
    serves_on(s, pids)


def test_17_14_input_over_max_input_after_a_kept_part(make_server):
    """max_input 8 KiB: a partial line of 5000 bytes is kept; the next read fills the
    buffer without a line end: the application's on_overflow answers, the connection
    closes."""
    s = make_server(workers=1, threads=1, server={"max_input": "8k"})
    pids = s.worker_pids()
    c = s.client()
    c.send("PING\n" + "x" * 5000)
    assert c.readline() == "PONG"
    c.send("x" * 5000)
    assert c.readline() == "ERR line too long"
    assert c.closed_by_server()
    serves_on(s, pids)


def test_17_15_an_application_that_claims_more_than_it_was_given(make_server):
    """on_data returning more than the bytes it was offered is taken as "all of them": the
    rest of that read is dropped, the connection goes on."""
    s = make_server(workers=1, threads=1)
    pids = s.worker_pids()
    c = s.client()
    c.send("GREEDY\nPING\n")
    assert c.readline() == "GREEDY"
    assert c.call("ECHO after") == "after"  # the PING went with GREEDY's claim
    serves_on(s, pids)


def test_17_16_tls_output_the_socket_does_not_take_and_no_memory(make_server, tmp_path, pki):
    """Over TLS a record the socket did not take must be offered again, so it goes into the
    output buffer; when that buffer cannot be allocated (the 7th allocation: connection,
    session, then this one) the connection closes with the reason in the log. (It went on
    before, without those bytes, and later output broke the session.)"""
    s = tls_line_server(make_server, tmp_path, pki, "alloc@7/child")
    pids = s.worker_pids()
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c = ctx.wrap_socket(raw, server_hostname="localhost")
    n = 32 << 20
    c.sendall(b"FLOOD %d\n" % n)  # more than the sockets hold, not read until the server gave up
    s.wait_log("conn=1 out of memory for output: closing")
    assert failures(s) == ["alloc #7 (libfdt.so.0)"]
    got = bytearray()
    try:
        while chunk := c.recv(1 << 20):
            got += chunk
    except (ssl.SSLError, ConnectionError):
        pass
    c.close()
    assert 0 < len(got) < n and b"FLOODED" not in got
    assert tls_call(s, pki, "PING") == "PONG\n"
    assert s.worker_pids() == pids
