"""Failures inside a worker (tests/shim/failshim.so preloaded into the real fdtserver): its
start (epoll, eventfd, signalfd, epoll_ctl, pthread_create, every allocation), accepting
(accept4 errors, the listener or a new connection that cannot go into epoll), and a worker
whose replacement fails once. The promise: nothing a failure does crashes a worker
silently. A start that fails is reported by the worker and by the master, which exits with
a clear message when it was the first generation and starts a replacement when a serving
worker's successor failed; an accept that fails costs at most that one connection, and the
worker serves on."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from fdt import APPS, BUILD, FDTSERVER, alive, free_port, wait_for

SHIM = BUILD / "tests" / "shim" / "failshim.so"

needs_shim = pytest.mark.skipif(not SHIM.exists(),
                                reason="failshim.so is not built (sanitizer build)")


def failing(make_server, spec, fork=None, start=False, **kw):
    """A server whose processes fail as FDT_FAIL=spec says (FDT_FAIL_FORK=fork: only in that
    forked child); its failures are listed in <dir>/fail.log."""
    env = {"LD_PRELOAD": str(SHIM), "FDT_FAIL": spec}
    s = make_server(start=False, env=env, **kw)
    s.fail_log = s.dir / "fail.log"
    s.env["FDT_FAIL_LOG"] = str(s.fail_log)
    if fork is not None:
        s.env["FDT_FAIL_FORK"] = str(fork)
    if start:
        s.start()
    return s


def failures(s):
    try:
        return s.fail_log.read_text().splitlines()
    except FileNotFoundError:
        return []


def assert_start_fails(s, reason):
    """The first generation cannot start: the worker says why, the master repeats it and
    exits 1; no worker crashed."""
    s.start(wait=False)
    rc = s.wait_exit()
    log = s.log()
    assert rc == 1, log
    assert f"worker 0 start failed: {reason}" in log, log
    assert f"cannot start: worker 0: {reason}" in log, log
    assert "killed by signal" not in log, log
    assert failures(s), "the failure did not happen"


def answer(c):
    """The line c reads; b"" when the server closed it (a reset: it had sent a request)."""
    try:
        return c.makefile("rb").readline()
    except ConnectionResetError:
        return b""


def ping(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"PING\n")
        return c.makefile("rb").readline()


# -- the start of a worker ------------------------------------------------------------------

@needs_shim
@pytest.mark.parametrize("spec,reason", [
    ("epoll_create1@1", "epoll/eventfd/signalfd: Too many open files"),
    ("epoll_create1@2", "epoll/eventfd/signalfd: Too many open files"),
    ("eventfd@1", "epoll/eventfd/signalfd: Too many open files"),
    ("eventfd@2:ENFILE", "epoll/eventfd/signalfd: Too many open files in system"),
    ("signalfd@1:ENOMEM", "epoll/eventfd/signalfd: Cannot allocate memory"),
    # Each registration is needed: without the signalfd's the worker would never hear
    # SIGTERM (before the fix it started, and a stop waited for the master's SIGKILL).
    ("epoll_ctl@1:ENOMEM", "epoll_ctl signalfd: Cannot allocate memory"),
    ("epoll_ctl@2:ENOMEM", "epoll_ctl master channel: Cannot allocate memory"),
    ("epoll_ctl@3:ENOSPC", "epoll_ctl wake-up eventfd: No space left on device"),
    ("epoll_ctl@4:ENOMEM", "epoll_ctl run queue: Cannot allocate memory"),
    ("epoll_ctl@5:ENOSPC", "epoll_ctl listener: No space left on device"),
    ("pthread_create@1:EAGAIN", "pthread_create: Resource temporarily unavailable"),
    # The second thread: the first one is running already.
    ("pthread_create@2:EAGAIN", "pthread_create: Resource temporarily unavailable"),
])
def test_17_01_a_setup_failure_of_the_first_worker_stops_the_start_with_its_reason(
        make_server, spec, reason):
    s = failing(make_server, spec + "/child", threads=2)
    assert_start_fails(s, reason)


@needs_shim
def test_17_02_a_replacement_that_fails_once_is_reported_and_retried(make_server):
    """The second worker the master forks (the replacement of a killed one) cannot make its
    epoll set: the master says why and tries again; the third serves."""
    s = failing(make_server, "epoll_create1@1/child", fork=2, start=True)
    assert ping(s.port) == b"PONG\n"
    first = s.worker_pids()
    os.kill(first[0], signal.SIGKILL)
    s.wait_log("failed to start: epoll/eventfd/signalfd: Too many open files", timeout=30)
    s.wait_log("exited with status 3; restarting in", timeout=30)
    wait_for(lambda: s.worker_pids() and s.worker_pids() != first, 30,
             what="a replacement ready")
    assert ping(s.port) == b"PONG\n"
    assert len(failures(s)) == 1, failures(s)
    assert s.stop() == 0


@needs_shim
@pytest.mark.parametrize("protocols", [(), ("http", "jsonrpc", "metrics")])
def test_17_03_allocation_failures_over_a_worker_start(make_server, protocols):
    """Walk the n-th allocation of the worker over its start (and its first request): each
    failure is reported (the master says why it cannot start) or the worker serves on; no
    worker dies of a signal. The walk ends when nothing failed. With an HTTP, a JSON-RPC
    and a metrics listener besides the raw one, their servers' allocations are walked too."""
    for n in range(1, 400):
        s = failing(make_server, f"alloc@{n}/child", sub=f"a{n}", threads=2)
        for proto in protocols:
            s.listeners[proto] = {"address": f"127.0.0.1:{free_port()}", "protocol": proto}
        s.write_config()
        s.start(wait=False)

        def settled():
            if s.proc.poll() is not None:
                return "exited"
            st = s.status(quiet=True)
            if st and any(w["state"] == "ready" for g in st["generations"]
                          for w in g["workers"]):
                return "ready"
            return None
        how = wait_for(settled, 30, what=f"alloc@{n}: an exit or a ready worker")
        if how == "ready":
            try:
                got = ping(s.port)
            except OSError:
                got = None  # the failed allocation was this connection's: closed
            assert got in (b"PONG\n", b"", None), got
            assert s.stop() == 0, s.log()
        else:
            assert s.proc.returncode == 1, s.log()
            assert "cannot start: worker 0: " in s.log(), s.log()
        log = s.log()
        assert "killed by signal" not in log, f"alloc@{n}:\n{log}"
        if not failures(s):
            assert how == "ready"
            break
    else:
        pytest.fail("the walk did not end")
    assert n > 5


# -- accepting -------------------------------------------------------------------------------

@needs_shim
@pytest.mark.parametrize("err", ["ECONNABORTED", "EPROTO", "EPERM"])
def test_17_04_an_accept_error_of_one_connection_does_not_stop_the_worker(make_server, err):
    """accept4 reports an error of one connection (aborted, protocol error, refused by a
    firewall): the connection behind it is served, and the worker goes on accepting."""
    s = failing(make_server, f"accept4@1:{err}/child", start=True)
    assert ping(s.port) == b"PONG\n"
    assert ping(s.port) == b"PONG\n"
    assert len(failures(s)) == 1
    if err != "ECONNABORTED":  # an aborted connection is nothing to report
        text = {"EPROTO": "Protocol error", "EPERM": "Operation not permitted"}[err]
        assert f"accept on main: {text}" in s.log(), s.log()
    assert s.stop() == 0


@needs_shim
@pytest.mark.parametrize("err,text", [("ENOBUFS", "No buffer space available"),
                                      ("ENOMEM", "Cannot allocate memory")])
def test_17_05_accept_out_of_memory_turns_the_connection_away_and_pauses(make_server, err,
                                                                        text):
    """accept4 out of kernel memory: handled as a shortage of descriptors, the connection
    queued is turned away with the reserve descriptor, accepting pauses, then serves on."""
    s = failing(make_server, f"accept4@1:{err}/child", start=True)
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"PING\n")
        assert c.makefile("rb").readline() == b"ERR busy\n"  # the application's busy_reply
    s.wait_log(f"accept on main: {text}: 1 connections turned away; accepting again in")
    assert ping(s.port) == b"PONG\n"
    assert s.stop() == 0


@needs_shim
def test_17_06_a_listener_that_cannot_go_back_into_epoll_is_retried(make_server):
    """After an accept pause, putting the listener back into epoll fails once: the worker
    says so and tries again after another pause (before the fix, the listener stayed out of
    epoll and the worker never accepted again)."""
    # epoll_ctl calls of the worker: 4 at setup, 5 the listener, 6 its removal for the
    # pause, 7 its return.
    s = failing(make_server, "accept4@1:ENOBUFS/child,epoll_ctl@7:ENOMEM/child", start=True)
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"PING\n")
        assert c.makefile("rb").readline() == b"ERR busy\n"
    s.wait_log("re-adding listener main: Cannot allocate memory: accepting again in 500 ms")
    assert ping(s.port) == b"PONG\n"
    assert len(failures(s)) == 2, failures(s)
    assert s.stop() == 0


@needs_shim
def test_17_07_a_new_connection_that_cannot_go_into_epoll_is_closed(make_server):
    """Two connections queued at once: the thread that accepts runs the first itself and
    puts the second into epoll, which fails: that one is closed (and said so), the first is
    served, and the worker serves on."""
    s = failing(make_server, "epoll_ctl@6:ENOMEM/child", start=True, threads=1)
    pid = s.worker_pids()[0]
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: stopped(pid), 10, what="the worker stopped")
    try:
        a = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        b = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    finally:
        os.kill(pid, signal.SIGCONT)
    a.sendall(b"PING\n")
    b.sendall(b"PING\n")
    answers = sorted([answer(a), answer(b)])
    a.close()
    b.close()
    assert answers == [b"", b"PONG\n"], answers
    s.wait_log("epoll_ctl for a new connection: Cannot allocate memory: connection closed")
    assert ping(s.port) == b"PONG\n"
    assert alive(pid)
    assert s.stop() == 0


def test_17_08_connections_queued_when_the_drain_begins_are_served(make_server):
    """The only application thread is busy; a connection waits in the accept queue; the
    server is told to stop: the drain takes it from the queue and serves it."""
    s = make_server(threads=1)
    busy = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    busy.sendall(b"SLEEP 1500\n")
    # Past its accept: the thread runs the sleeping connection.
    wait_for(lambda: s.workers("ready")[0]["threads_busy"] == 1, 10, what="the thread busy")
    waiting = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    waiting.sendall(b"PING\n")
    s.signal(signal.SIGTERM)
    s.wait_log("1 taken from the accept queue")
    assert waiting.makefile("rb").readline() == b"PONG\n"
    assert busy.makefile("rb").readline() == b"SLEPT 1500\n"
    waiting.close()
    busy.close()
    assert s.wait_exit() == 0


# -- the application's module, and the error log ------------------------------------------------

PYTHON_SO = BUILD / "fdt_python.so"


def copied_server(tmp_path):
    """fdtserver and libfdt.so.0 copied to tmp_path/inst (the binary in inst/bin/sbin, its
    RUNPATH $ORIGIN/../.. finds the library): fdtserver's modules are then looked for in
    inst/fdtserver/, and the installation directory, not in the build tree."""
    inst = tmp_path / "inst"
    (inst / "bin" / "sbin").mkdir(parents=True)
    shutil.copy2(FDTSERVER, inst / "bin" / "sbin" / "fdtserver")
    shutil.copy2(BUILD / "libfdt.so.0", inst / "libfdt.so.0")
    return inst


FOREIGN_HOST = """
#include <stddef.h>
/* A module of another build: its entry refuses, and says nothing. */
const void *fdt_python_app_v1(const void *cfg, void *err);
const void *fdt_python_app_v1(const void *cfg, void *err)
{
    (void)cfg;
    (void)err;
    return NULL;
}
"""


@pytest.mark.skipif(not PYTHON_SO.exists(), reason="built without Python")
@pytest.mark.parametrize("module,reason", [
    (None, "[app] wsgi/jsonrpc: fdt_python.so not found (built without Python?)"),
    ("empty", "cannot load {inst}/fdtserver/fdt_python.so: "),
    ("lineapp", "{inst}/fdtserver/fdt_python.so does not export fdt_python_app_v1"),
    # Before the fix the start failed with an empty reason.
    ("foreign", "{inst}/fdtserver/fdt_python.so: fdt_python_app_v1 returned no application"),
])
def test_17_09_a_python_host_module_missing_or_broken(make_server, tmp_path, module, reason):
    """[app] wsgi names a Python application, but fdt_python.so is not where fdtserver's
    modules are, or is not a loadable object, or not the host: the worker says which, and
    the master exits 1 with it."""
    inst = copied_server(tmp_path)
    if module:
        (inst / "fdtserver").mkdir()
        target = inst / "fdtserver" / "fdt_python.so"
        if module == "empty":
            target.write_bytes(b"")
        elif module == "foreign":
            if not shutil.which("cc"):
                pytest.skip("no C compiler")
            (tmp_path / "foreign.c").write_text(FOREIGN_HOST)
            subprocess.run(["cc", "-shared", "-fPIC", "-o", str(target),
                            str(tmp_path / "foreign.c")], check=True)
        else:
            shutil.copy2(APPS / "lineapp.so", target)
    s = make_server(start=False)
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.conf_path.write_text(s.conf_path.read_text().replace(
        f"module = {s.app}", "wsgi = wsgiapps:application"))
    s.logf = open(s.log_path, "ab")
    s.proc = subprocess.Popen([str(inst / "bin" / "sbin" / "fdtserver"), "-c", str(s.conf_path)],
                              stdout=s.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert s.wait_exit() == 1, s.log()
    want = reason.format(inst=inst.resolve())
    assert f"worker 0 start failed: {want}" in s.log(), s.log()
    assert "killed by signal" not in s.log(), s.log()


def test_17_10_an_error_log_that_cannot_be_reopened_is_said_in_the_old_one(make_server,
                                                                           tmp_path):
    """SIGUSR1 after the log directory was moved away (a rotation gone wrong): the master and
    the worker cannot reopen the error log, and say so in the file they keep writing to;
    once the directory is back, the next SIGUSR1 reopens it."""
    logs = tmp_path / "logs"
    logs.mkdir()
    s = make_server(server={"error_log": str(logs / "error.log")})
    assert ping(s.port) == b"PONG\n"
    moved = tmp_path / "logs.old"
    logs.rename(moved)
    s.signal(signal.SIGUSR1)
    text = f"cannot reopen the error log {logs / 'error.log'}: No such file or directory"

    def both_said():
        lines = [ln for ln in (moved / "error.log").read_text().splitlines() if text in ln]
        return {" master/" in ln for ln in lines} == {True, False}
    wait_for(both_said, 10, what="the master's and the worker's warning")
    assert ping(s.port) == b"PONG\n"
    logs.mkdir()
    s.signal(signal.SIGUSR1)
    wait_for(lambda: (logs / "error.log").exists(), 10, what="the error log reopened")
    assert s.stop() == 0
    assert "master exiting (0)" in (logs / "error.log").read_text()


# -- accept balancing between two workers on one listening socket ------------------------------

def stopped(pid):
    """Whether every thread of pid is stopped (kill returns before they are)."""
    states = []
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/stat") as f:
            states.append(f.read().rsplit(")", 1)[1].split()[0])
    return all(st in ("T", "t") for st in states)


def connect(s, unix):
    if not unix:
        return socket.create_connection(("127.0.0.1", s.port), timeout=20)
    c = socket.socket(socket.AF_UNIX)
    c.settimeout(20)
    c.connect(str(s.dir / "l.sock"))
    return c


@pytest.mark.parametrize("unix", [False, True])
def test_17_11_a_stopped_sibling_does_not_keep_connections_waiting(make_server, unix):
    """Two workers share the listener; one is stopped (SIGSTOP) while a burst arrives. The
    other takes its share, pauses, tells the stopped one (SIGWINCH), and when nobody takes
    anything, takes the rest of the queue part by part (on a unix socket, whose queue
    length cannot be read, one at a time): every connection is answered, and the stopped
    worker, once continued, takes its hand-on and serves on."""
    s = make_server(workers=2, threads=2, server={"max_connections": 64}, start=False)
    if unix:
        s.listeners = {"main": {"address": f"unix:{s.dir / 'l.sock'}", "protocol": "raw"}}
    # A listener of its own per worker besides: not balanced, left alone by the balance tick.
    s.listeners["own"] = {"address": f"127.0.0.1:{free_port()}", "protocol": "raw",
                          "reuseport": "true"}
    s.write_config()
    s.start()
    a, b = s.worker_pids()
    os.kill(b, signal.SIGSTOP)
    wait_for(lambda: stopped(b), 10, what="the worker stopped")
    socks = []
    try:
        for _ in range(12):
            c = connect(s, unix)
            c.sendall(b"WHOAMI\n")
            socks.append(c)
        answers = [c.makefile("rb").readline() for c in socks]
    finally:
        os.kill(b, signal.SIGCONT)
    assert all(x.startswith(f"pid={a} ".encode()) for x in answers), answers
    for c in socks:
        c.close()
    # The continued worker serves on: behind by a dozen, it takes (at least some of) the next.
    socks = [connect(s, unix) for _ in range(8)]
    for c in socks:
        c.sendall(b"WHOAMI\n")
    pids = {c.makefile("rb").readline().split()[0] for c in socks}
    for c in socks:
        c.close()
    assert f"pid={b}".encode() in pids and pids <= {f"pid={a}".encode(), f"pid={b}".encode()}, pids
    assert s.stop() == 0


# -- draining ----------------------------------------------------------------------------------

def busy_server(make_server, **kw):
    """A server with one application thread, busy with a SLEEP (its connection returned)."""
    s = make_server(threads=1, **kw)
    busy = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    busy.sendall(b"SLEEP 2500\n")
    # Past its accept: the thread runs the sleeping connection.
    wait_for(lambda: s.workers("ready")[0]["threads_busy"] == 1, 10, what="the thread busy")
    return s, busy


def test_17_12_signals_to_a_draining_worker_change_nothing(make_server):
    """A worker already draining is sent SIGTERM and SIGHUP again: it drains once, finishes
    the request in flight and exits cleanly."""
    s, busy = busy_server(make_server)
    pid = s.worker_pids()[0]
    s.signal(signal.SIGTERM)
    s.wait_log("draining (SIGTERM)")
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGHUP)
    assert busy.makefile("rb").readline() == b"SLEPT 2500\n"
    busy.close()
    assert s.wait_exit() == 0
    assert s.log().count(" worker: draining (") == 1, s.log()


@needs_shim
def test_17_13_out_of_descriptors_while_the_drain_takes_the_queue(make_server):
    """The drain takes a queued connection, and accept4 says the worker is out of
    descriptors: the connection is turned away with the reserve descriptor (the busy
    answer), no pause begins (the listeners are closed), and the worker exits cleanly."""
    # accept4 calls: 1 the sleeping connection, 2 the empty queue, 3 the drain's.
    s, busy = busy_server(make_server, env={"LD_PRELOAD": str(SHIM),
                                            "FDT_FAIL": "accept4@3:EMFILE/child"})
    waiting = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    waiting.sendall(b"PING\n")
    s.signal(signal.SIGTERM)
    assert answer(waiting) == b"ERR busy\n"
    s.wait_log("accept on main: Too many open files: 1 connections turned away")
    assert busy.makefile("rb").readline() == b"SLEPT 2500\n"
    waiting.close()
    busy.close()
    assert s.wait_exit() == 0


@needs_shim
def test_17_14_an_accept_pause_that_ends_during_the_drain(make_server):
    """Accepting paused (out of kernel memory), then the drain begins: the pause's end puts
    no listener back, and the worker finishes its request and exits cleanly."""
    # accept4 calls: 1 the sleeping connection, 2 the empty queue behind it (fails).
    s, busy = busy_server(make_server, env={"LD_PRELOAD": str(SHIM),
                                            "FDT_FAIL": "accept4@2:ENOBUFS/child"})
    s.wait_log("accept on main: No buffer space available: 0 connections turned away; "
               "accepting again in 500 ms")
    s.signal(signal.SIGTERM)
    s.wait_log("draining (SIGTERM)")
    assert busy.makefile("rb").readline() == b"SLEPT 2500\n"
    busy.close()
    assert s.wait_exit() == 0


def test_17_15_a_connection_handed_over_to_a_listener_that_takes_none_is_closed(make_server):
    """An idle raw connection of a retiring worker goes on to the new generation, whose
    listener of that name now speaks HTTP (which takes no hand-offs): the new worker closes
    it and says why; the listener serves HTTP."""
    s = make_server()
    c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    c.sendall(b"PING\n")
    assert c.makefile("rb").readline() == b"PONG\n"
    s.listeners["main"]["protocol"] = "http"
    s.write_config()
    s.reload()
    s.wait_log("a connection handed over for listener main: no such listener takes hand-offs: "
               "closed")
    assert answer(c) == b""
    c.close()
    with socket.create_connection(("127.0.0.1", s.port), timeout=20) as h:
        h.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert h.makefile("rb").readline().startswith(b"HTTP/1.1 ")
    assert s.stop() == 0


@needs_shim
def test_17_16_a_recovery_thread_that_cannot_start(make_server, pgdb):
    """With a transaction log (a PostgreSQL resource, log = yes) each worker runs a recovery
    thread; when it cannot be started, the worker's start fails with that reason."""
    s = failing(make_server, "pthread_create@3:EAGAIN/child", threads=2,
                extra_ini=f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n")
    # pthread_create calls: 1 and 2 the application threads, 3 the recovery thread.
    assert_start_fails(s, "cannot start the recovery thread: Resource temporarily unavailable")


@needs_shim
@pytest.mark.skipif(not shutil.which("openssl"), reason="no openssl command")
def test_17_17_allocation_failures_over_a_tls_connection(make_server, tmp_path):
    """Walk the n-th allocation of the worker over its start and its first TLS connection:
    the connection whose TLS state cannot be made is dropped (and said so); the worker
    serves the next one."""
    import ssl
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem", "-out", "c.pem",
                    "-days", "30", "-subj", "/CN=localhost"], cwd=tmp_path, check=True,
                   capture_output=True)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def tls_ping(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
                with ctx.wrap_socket(raw) as c:
                    c.sendall(b"PING\n")
                    return c.makefile("rb").readline()
        except (OSError, ssl.SSLError):
            return b""

    dropped = 0
    for n in range(1, 60):
        s = failing(make_server, f"alloc@{n}/child", sub=f"t{n}", start=False)
        s.listeners["main"].update({"tls": "yes", "certificate": str(tmp_path / "c.pem"),
                                    "private_key": str(tmp_path / "k.pem")})
        s.write_config()
        s.start(wait=False)

        def settled():
            if s.proc.poll() is not None:
                return "exited"
            st = s.status(quiet=True)
            if st and any(w["state"] == "ready" for g in st["generations"]
                          for w in g["workers"]):
                return "ready"
            return None
        how = wait_for(settled, 30, what=f"alloc@{n}: an exit or a ready worker")
        if how == "ready":
            first = tls_ping(s.port)
            if first != b"PONG\n":
                dropped += "out of memory: connection dropped" in s.log()
                assert tls_ping(s.port) == b"PONG\n", s.log()
            assert s.stop() == 0, s.log()
        else:
            assert s.proc.returncode == 1 and "cannot start: worker 0: " in s.log(), s.log()
        assert "killed by signal" not in s.log(), f"alloc@{n}:\n{s.log()}"
        if not failures(s):
            break
    else:
        pytest.fail("the walk did not end")
    assert dropped >= 2, dropped  # the connection, then its TLS state


@needs_shim
@pytest.mark.parametrize("who", ["child", "master"])
def test_17_30_a_handed_over_connection_whose_descriptor_does_not_arrive(make_server, who):
    """An idle connection of a retiring worker is handed over at a reload, but its
    descriptor does not arrive (the receiving process, the new worker or the master, is out of
    descriptors: recvmsg delivers the message with MSG_CTRUNC): the connection is lost, and
    the log says so (it was lost silently before); the server serves on."""
    # The new worker's first recvmsg reads the hand-over; in the master every recvmsg loses
    # its descriptors (the other messages, a worker's "ready", carry none).
    spec = "recvmsg@1/child" if who == "child" else "recvmsg@1+/master"
    s = make_server(env={"LD_PRELOAD": str(SHIM), "FDT_FAIL": spec})
    c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    c.sendall(b"PING\n")
    assert c.makefile("rb").readline() == b"PONG\n"
    s.reload()
    if who == "child":
        s.wait_log("a connection handed over for listener main was lost: its descriptor did "
                   "not arrive (out of descriptors?)")
    else:
        s.wait_log("handed over a connection for listener main: its descriptor did not arrive "
                   "(out of descriptors?): lost")
    assert answer(c) == b""
    c.close()
    with socket.create_connection(("127.0.0.1", s.port), timeout=20) as p:
        p.sendall(b"PING\n")
        assert p.makefile("rb").readline() == b"PONG\n"
    assert s.stop() == 0


@needs_shim
def test_17_31_a_worker_that_cannot_list_its_descriptors_serves_and_says_so(make_server):
    """A worker born out of descriptors cannot list /proc/self/fd to close what it inherited
    from the master: it says so and serves (it used to keep them silently)."""
    s = make_server(env={"LD_PRELOAD": str(SHIM), "FDT_FAIL": "opendir@1:EMFILE/child"})
    s.wait_log("cannot list /proc/self/fd: Too many open files: inherited descriptors stay "
               "open")
    c = s.client()
    assert c.call("PING") == "PONG"
    c.close()
    assert s.stop() == 0


@needs_shim
def test_17_32_an_accept_error_that_persists_is_tried_a_bounded_number_of_times(
        make_server, tmp_path):
    """accept4 fails with a per-connection error (EPROTO) on every call: the worker tries
    16 times for the event that woke it, logs the error once, and then waits for the next
    arrival instead of spinning."""
    log = tmp_path / "fail.log"
    s = make_server(workers=1, threads=1,
                    env={"LD_PRELOAD": str(SHIM), "FDT_FAIL": "accept4@1+:EPROTO/child",
                         "FDT_FAIL_LOG": str(log)})
    c = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    s.wait_log("accept on main: Protocol error")
    wait_for(lambda: log.exists() and log.read_text().count("accept4") >= 16,
             what="16 tries")
    time.sleep(0.5)
    assert log.read_text().count("accept4") == 16
    c.close()
    assert s.stop() == 0


def test_17_33_a_database_driver_a_worker_cannot_load(make_server, tmp_path):
    """A [resource] whose driver module is broken in the installation (here not an ELF
    object): the master does not load drivers, so the workers find out. Each says which
    module and why, the start fails with that reason, and the master exits 1."""
    inst = copied_server(tmp_path)
    (inst / "fdtserver").mkdir()
    module = inst / "fdtserver" / "fdt_rm_sqlite.so"
    module.write_bytes(b"not an ELF object\n" * 64)
    s = make_server(start=False, extra_ini=f"[resource.lite]\ndriver = sqlite\n"
                                           f"path = {tmp_path}/lite.db\n")
    s.write_config()
    s.logf = open(s.log_path, "ab")
    s.proc = subprocess.Popen([str(inst / "bin" / "sbin" / "fdtserver"), "-c", str(s.conf_path)],
                              stdout=s.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert s.wait_exit() == 1, s.log()
    assert f"driver sqlite: cannot load {module.resolve()}: " in s.log(), s.log()
    assert ("worker 0 start failed: [resource.lite] driver sqlite is not available (its module "
            "could not be loaded: see the line before)") in s.log(), s.log()
    assert not (tmp_path / "lite.db").exists()
