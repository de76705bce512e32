"""The master out of memory (and out of descriptors) at start, at a reload, answering fdtctl, at
a binary upgrade, in --check and in `fdtserver txn`: tests/shim/failshim.so fails the n-th
allocation of our code, for n = 1, 2, ... until no allocation fails any more. At each step
the process either exits non-zero with a message that names what failed (never silently,
never by a signal) or serves; a running master keeps serving and says what failed."""
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from fdt import BUILD, FDTCTL, FDTSERVER, FdtServer, LineClient, free_port, wait_for

SHIM = BUILD / "tests" / "shim" / "failshim.so"

needs_shim = pytest.mark.skipif(not SHIM.exists(), reason="failshim.so is not built here "
                                "(sanitizer build)")

LIMIT = 400  # no walk goes beyond this many allocations
OOM = ("out of memory", "Cannot allocate memory")


def names_oom(text):
    return any(w in text for w in OOM)


def shim_env(d, fail=None, countdown=None):
    env = {"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(d / "fail.log")}
    if fail:
        env["FDT_FAIL"] = fail
    if countdown:
        env["FDT_FAIL_COUNTDOWN"] = str(countdown)
    return env


def failures(d):
    p = d / "fail.log"
    return p.read_text() if p.exists() else ""


def start(d, fail=None, countdown=None, **kw):
    """A master (1 worker, 1 thread) under the shim; returns it once it exited or its first
    generation is ready (read from its log: a status request would allocate in the
    master)."""
    d.mkdir(parents=True, exist_ok=True)
    opts = dict(workers=1, threads=1)
    opts.update(kw)
    s = FdtServer(d, env=shim_env(d, fail, countdown), **opts)
    s.start(wait=False)
    wait_for(lambda: s.proc.poll() is not None or "generation 1 ready" in s.log(), 30,
             what="exit or generation 1 ready")
    return s


def assert_serves(s):
    assert s.proc.poll() is None, s.log()[-2000:]
    c = s.client()
    try:
        assert c.call("PING")
    finally:
        c.close()
    assert s.status()["state"] == "running"


def assert_exit_says(rc, out, what):
    assert rc is not None and rc > 0, f"{what}: exit {rc} (a signal?):\n{out}"
    assert names_oom(out), f"{what}: exit {rc} without naming the failure:\n{out!r}"


_start_allocs = []


def start_allocs(tmp_path):
    """The number of allocations the master makes until its first generation is ready (each
    one failed in turn: the master exits saying so, or serves)."""
    if _start_allocs:
        return _start_allocs[0]
    for n in range(1, LIMIT):
        d = tmp_path / f"start{n}"
        s = start(d, fail=f"alloc@{n}")
        try:
            failed = failures(d)
            if s.proc.poll() is not None:
                assert failed, s.log()
                assert_exit_says(s.proc.returncode, s.log(), f"alloc@{n}")
            elif failed:
                assert_serves(s)
            else:
                # Started without a failure: the next allocation of the master fails, the
                # control client's own.
                r = s.ctl("status", check=False)
                assert r.returncode == 1 and "out of memory" in r.stderr, r
                assert_serves(s)
                assert "control socket: a client refused: out of memory" in s.log()
                _start_allocs.append(n - 1)
                return n - 1
        finally:
            s.stop()
    raise AssertionError(f"the master still allocates at start after {LIMIT} allocations")


class Countdown:
    """FDT_FAIL_COUNTDOWN's file: arm(k) fails the k-th allocation of the master from now."""

    def __init__(self, path):
        self.path = path
        path.write_bytes(struct.pack("=q", 0))

    def arm(self, k):
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.pwrite(fd, struct.pack("=q", k), 0)
        finally:
            os.close(fd)

    def left(self):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return struct.unpack("=q", os.pread(fd, 8, 0))[0]
        finally:
            os.close(fd)

    def disarm(self):
        self.arm(0)


def walk(s, cd, step, what, after=None):
    """Fail the k-th allocation of the master in step(k), k = 1, 2, ...; then after(k), with
    nothing armed; then the master serves. Returns how many allocations step makes."""
    for k in range(1, LIMIT):
        cd.arm(k)
        step(k)
        left = cd.left()
        cd.disarm()
        if after:
            after(k)
        assert_serves(s)
        if left > 0:
            return k - 1
    raise AssertionError(f"{what}: still allocating after {LIMIT} allocations")


@pytest.fixture
def counted(tmp_path):
    """A master serving under the shim, with a countdown to arm."""
    cd = Countdown(tmp_path / "countdown")
    s = start(tmp_path / "srv", countdown=cd.path)
    assert s.proc.poll() is None, s.log()
    yield s, cd
    s.stop()


@needs_shim
def test_17_01_start_fails_with_a_message_or_serves(tmp_path):
    assert start_allocs(tmp_path) >= 3


@needs_shim
def test_17_02_no_memory_for_the_configuration_or_the_master_is_said(tmp_path):
    # The first allocations: the configuration, then the master's state: before the log
    # is open, so on stderr.
    for n in (1, 2, 3):
        d = tmp_path / f"n{n}"
        s = start(d, fail=f"alloc@{n}")
        rc = s.wait_exit()
        assert_exit_says(rc, s.log(), f"alloc@{n}")
    assert "cannot read the configuration: out of memory" in (tmp_path / "n1" / "fdt.log").read_text()
    assert "cannot start: out of memory" in (tmp_path / "n2" / "fdt.log").read_text()


def ctl_step(s, *args):
    def step(k):
        r = s.ctl(*args, check=False)
        if r.returncode != 0:
            assert r.returncode == 1 and (names_oom(r.stderr) or "no answer" in r.stderr), \
                (k, r.returncode, r.stdout, r.stderr)
            assert "no answer" not in r.stderr, (k, r.stderr)
        return r
    return step


@pytest.mark.parametrize("args", [("status",), ("status", "--json"), ("metrics",)],
                         ids=["status", "json", "metrics"])
@needs_shim
def test_17_03_status_and_metrics_answer_or_say_out_of_memory(counted, args):
    s, cd = counted
    n = walk(s, cd, ctl_step(s, *args), " ".join(args))
    assert n >= 2
    r = s.ctl(*args)
    assert r.stdout


def reload_over(s):
    def after(k):
        wait_for(lambda: not s.status()["last_reload"]["in_progress"] and
                 len(s.status()["generations"]) == 1, 20, what="the reload over")
    return after


@needs_shim
def test_17_04_reload_fails_with_its_reason_and_the_old_generation_serves(counted):
    s, cd = counted
    results = []

    def step(k):
        r = s.ctl("reload", "--wait", check=False)
        results.append(r)
        if r.returncode != 0:
            assert r.returncode == 1 and names_oom(r.stderr), (k, r.stdout, r.stderr)
        else:
            assert "generation" in r.stdout

    n = walk(s, cd, step, "reload", after=reload_over(s))
    assert n >= 3 and any(r.returncode != 0 for r in results)
    st = s.status()
    assert st["last_reload"]["ok"] is True


@needs_shim
def test_17_05_sighup_reload_fails_in_the_log_and_serves(counted):
    s, cd = counted

    def step(k):
        done = s.log().count("reload done") + s.log().count("reload failed")
        s.signal(signal.SIGHUP)
        wait_for(lambda: s.log().count("reload done") + s.log().count("reload failed") > done,
                 20, what="the reload over")
        tail = s.log().split("reloading configuration")[-1]
        assert "reload done" in tail or names_oom(tail), tail

    walk(s, cd, step, "SIGHUP", after=reload_over(s))
    st = s.status()
    assert st["last_reload"]["ok"] is True


@needs_shim
def test_17_06_workers_command(counted):
    s, cd = counted

    def step(k):
        r = s.ctl("workers", "+1", check=False)
        if r.returncode != 0:
            assert names_oom(r.stderr), (k, r.stderr)

    def after(k):
        s.ctl("workers", "1", check=False)
        wait_for(lambda: len(s.workers()) == 1, 20, what="one worker")

    walk(s, cd, step, "workers", after=after)


def run_failing(args, d, fail, cwd=None):
    d.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, **shim_env(d, fail))
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, cwd=cwd)


@needs_shim
def test_17_07_check_fails_with_a_message_or_passes(tmp_path):
    (tmp_path / "cfg").mkdir()
    s = FdtServer(tmp_path / "cfg", workers=1, threads=1)
    for n in range(1, LIMIT):
        d = tmp_path / f"c{n}"
        r = run_failing([str(FDTSERVER), "--check", "-c", str(s.conf_path)], d, f"alloc@{n}")
        if not failures(d):
            assert r.returncode == 0 and "configuration ok" in r.stdout, r
            assert n > 1
            return
        if r.returncode != 0:
            assert_exit_says(r.returncode, r.stdout + r.stderr, f"--check alloc@{n}")
        else:
            assert "configuration ok" in r.stdout
    raise AssertionError("--check still allocating")


@needs_shim
def test_17_08_signal_command_says_out_of_memory(tmp_path):
    (tmp_path / "cfg").mkdir()
    s = FdtServer(tmp_path / "cfg", workers=1, threads=1)
    r = run_failing([str(FDTSERVER), "-c", str(s.conf_path), "-s", "reload"], tmp_path / "s1",
                    "alloc@1")
    assert_exit_says(r.returncode, r.stderr, "-s reload")


@needs_shim
def test_17_09_txn_cli_says_out_of_memory(tmp_path):
    (tmp_path / "cfg").mkdir()
    s = FdtServer(tmp_path / "cfg", workers=1, threads=1)
    for n in range(1, LIMIT):
        d = tmp_path / f"t{n}"
        r = run_failing([str(FDTSERVER), "txn", "-c", str(s.conf_path), "list"], d,
                        f"alloc@{n}")
        if not failures(d):
            return
        assert_exit_says(r.returncode, r.stdout + r.stderr, f"txn alloc@{n}")
    raise AssertionError("txn still allocating")


def upgrade_once(d, n):
    """A master whose new master (SIGUSR2) fails its n-th allocation. Returns whether an
    allocation failed."""
    d.mkdir(parents=True)
    s = FdtServer(d, workers=1, threads=1,
                  env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(d / "fail.log"),
                       "FDT_FAIL_EXEC": f"alloc@{n}"})
    s.start(wait=False)
    old = s.pid
    new = None
    try:
        wait_for(lambda: "generation 1 ready" in s.log(), 15, what="generation 1 ready")
        s.signal(signal.SIGUSR2)
        done = re.compile(rf"serves in place of master {old}\b|binary upgrade failed")
        wait_for(lambda: done.search(s.log()), 30, what="the upgrade over")
        log = s.log()
        failed = failures(d)
        if "binary upgrade failed" in log:
            assert failed and f"pid {old} " not in failed, failed
            # The new master said what failed, then the old one that it serves on.
            assert names_oom(log), log
            assert re.search(r"the new master \(pid \d+, .*\) exited with status [12] before",
                             log), log
            assert_serves(s)
        else:
            new = int(s.pid_path.read_text())
            assert new != old
            s.wait_exit()
            c = s.client()
            try:
                assert c.call("PING")
            finally:
                c.close()
        return bool(failed)
    finally:
        if new:
            os.kill(new, signal.SIGTERM)
            wait_for(lambda: not s.pid_path.exists(), 30, what="the new master gone")
        s.stop()


@needs_shim
def test_17_10_upgrade_whose_new_master_fails_keeps_the_old_serving(tmp_path):
    for n in range(1, LIMIT):
        if not upgrade_once(tmp_path / f"u{n}", n):
            assert n > 3
            return
    raise AssertionError("the new master still allocating")


@needs_shim
@pytest.mark.parametrize("call,said", [
    ("signalfd", "cannot start: Cannot allocate memory (signalfd)"),
    ("epoll_create1", "cannot start: Cannot allocate memory (epoll_create1)"),
    ("mmap", "cannot start: Cannot allocate memory (the scoreboard (shared memory))"),
])
def test_17_21_the_start_says_which_call_failed(tmp_path, call, said):
    d = tmp_path / "srv"
    s = start(d, fail=f"{call}@1:ENOMEM")
    assert s.wait_exit() == 1
    assert failures(d) and said in s.log(), s.log()


@needs_shim
@pytest.mark.parametrize("call", ["socketpair", "pipe2", "epoll_create1", "signalfd"])
def test_17_11_descriptor_calls_at_start(tmp_path, call):
    for n in range(1, 20):
        d = tmp_path / f"{call}{n}"
        s = start(d, fail=f"{call}@{n}:EMFILE")
        try:
            failed = failures(d)
            if s.proc.poll() is not None:
                rc = s.proc.returncode
                assert rc > 0 and ("Too many open files" in s.log()), (call, n, rc, s.log())
            else:
                assert_serves(s)
            if not failed:
                return
        finally:
            s.stop()


@needs_shim
@pytest.mark.parametrize("args", [("status",), ("txn", "list")], ids=["socket", "txn"])
def test_17_12_fdtctl_says_out_of_memory_for_the_configuration(tmp_path, args):
    (tmp_path / "cfg").mkdir()
    s = FdtServer(tmp_path / "cfg", workers=1, threads=1)
    d = tmp_path / "f"
    d.mkdir()
    env = dict(os.environ, **shim_env(d, "alloc@1"), FDT_FAIL_OBJS="/fdtctl:libfdt.so")
    r = subprocess.run([str(FDTCTL), "-c", str(s.conf_path), *args], capture_output=True,
                       text=True, env=env, timeout=60)
    assert failures(d)
    assert r.returncode == 1 and "fdtctl: cannot read the configuration: out of memory" in \
        r.stderr, r


def test_17_13_upgrade_refused_when_the_socket_names_do_not_fit(make_server):
    # 64 sockets from systemd (the most a master takes), one of them a listener's and 63
    # kept unused, with names of 63 characters: more than the 4096 bytes the new master's
    # environment carries.
    from sd_util import socket_activate
    ports = [free_port() for _ in range(64)]
    s = make_server(start=False, workers=1, threads=1,
                    listeners={"web": {"address": f"127.0.0.1:{ports[0]}", "protocol": "raw"}})
    names = ["web"] + [f"n{i:02d}" + "x" * 60 for i in range(1, 64)]
    socket_activate(s, [f"127.0.0.1:{p}" for p in ports], names=names)
    c = LineClient(ports[0], timeout=30)
    try:
        assert c.call("PING")
    finally:
        c.close()
    s.wait_ready()
    s.signal(signal.SIGUSR2)
    s.wait_log("binary upgrade refused: too many listening sockets")
    c = LineClient(ports[0], timeout=30)
    try:
        assert c.call("PING")
    finally:
        c.close()
    assert s.status()["state"] == "running"
    assert "serves in place of" not in s.log()


def test_17_14_a_signal_that_kill_refuses_is_said(make_server):
    # The pid file where another user can read it; that user may not signal root's master.
    pub = Path(tempfile.mkdtemp(prefix="fdt17-"))
    try:
        pub.chmod(0o755)
        pid_file = pub / "fdt.pid"
        s = make_server(workers=1, threads=1, server={"pid_file": str(pid_file)})
        pid_file.chmod(0o644)
        r = subprocess.run([str(FDTSERVER), "-s", "reload", "--pid-file", str(pid_file)],
                           capture_output=True, text=True, timeout=60, user=65534, group=65534)
        assert r.returncode == 1, r
        assert f"fdtserver: kill {s.pid}: Operation not permitted" in r.stderr, r
        assert_serves(s)
        assert "reloading configuration" not in s.log()
        s.stop()
    finally:
        shutil.rmtree(pub, ignore_errors=True)


def test_17_15_sigpipe_to_the_master_is_ignored(make_server):
    s = make_server(workers=1, threads=1)
    s.signal(signal.SIGPIPE)
    s.signal(signal.SIGHUP)  # read after it: the SIGPIPE was read and ignored
    s.wait_log("reload done")
    assert_serves(s)


def test_17_16_a_new_master_that_cannot_make_the_control_socket_says_so(make_server):
    s = make_server(workers=1, threads=1)
    old = s.pid
    # The control socket's path is a directory that is not empty now: the new master's
    # rename of its socket onto it fails.
    s.ctl_path.unlink()
    s.ctl_path.mkdir()
    (s.ctl_path / "f").write_text("")
    s.signal(signal.SIGUSR2)
    s.wait_log(f"serves in place of master {old}", timeout=30)
    assert re.search(r"binary upgrade: control socket .*ctl\.sock: Is a directory", s.log())
    new = int(s.pid_path.read_text())
    assert new != old
    assert s.wait_exit() == 0
    c = s.client()
    try:
        assert c.call("PING")
    finally:
        c.close()
    assert not list(s.dir.glob("ctl.sock.*"))  # its own socket file was removed
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not s.pid_path.exists(), 30, what="the new master gone")


def test_17_17_status_leaves_out_a_config_path_that_is_not_utf8(make_server):
    s = make_server(start=False, workers=1, threads=1)
    s.conf_path = s.dir / os.fsdecode(b"fdt-\xff.ini")
    s.write_config()
    s.start()
    st = s.status()
    assert "config_file" not in st and st["state"] == "running"


def test_17_18_no_control_socket_and_no_pid_file(make_server):
    s = make_server(start=False, workers=1, threads=1,
                    server={"control_socket": "", "pid_file": ""})
    s.start(wait=False)
    s.wait_log("generation 1 ready")
    assert not s.ctl_path.exists() and not s.pid_path.exists()
    c = s.client()
    try:
        assert c.call("PING")
    finally:
        c.close()
    assert s.stop() == 0


@pytest.mark.parametrize("ini,args,said", [
    ("[listen.x]\naddress = 127.0.0.1:1\n[app]\nwsgi = .a:b\n", (),
     "[app] wsgi = '.a:b': expected pkg.module:callable"),
    ("[listen.x]\naddress = 127.0.0.1:1\n[app]\nwsgi = a-b:c\n", (),
     "[app] wsgi = 'a-b:c': expected pkg.module:callable"),
    # A value longer than its field (only --set can give one): the reason is not cut off.
    # (a port of 1100 digits with leading zeros is a valid address)
    ("[app]\nmodule = /x.so\n", ("--set", "listen.x.address=127.0.0.1:" + "0" * 1100 + "80"),
     "[listen.x] address = '127.0.0.1:" + "0" * 54 + "...': too long (at most 1023 bytes)"),
    ("[app]\nmodule = /x.so\n", ("--set", "listen.x.protocol=" + "p" * 300),
     "[listen.x] protocol = '" + "p" * 64 + "...': expected"),
    ("[listen.]\naddress = 127.0.0.1:1\n[app]\nmodule = /x.so\n", (),
     "[listen.] bad listener name"),
], ids=["wsgi-dot", "wsgi-dash", "too-long", "bad-long", "no-name"])
def test_17_19_configuration_errors_say_why(tmp_path, ini, args, said):
    conf = tmp_path / "c.ini"
    conf.write_text(ini)
    r = subprocess.run([str(FDTSERVER), "--check", "-c", str(conf), *args], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and said in r.stderr, r.stderr


@needs_shim
@pytest.mark.parametrize("kind", ["socketpair", "alloc"])
def test_17_20_a_reload_whose_worker_cannot_be_made_is_freed(tmp_path, kind):
    # The new generation has no worker: it is freed at once (it was listed for good).
    cd = Countdown(tmp_path / "countdown")
    d = tmp_path / "srv"
    d.mkdir()
    env = shim_env(d, countdown=cd.path)
    if kind == "socketpair":
        env["FDT_FAIL_COUNTDOWN_OF"] = "socketpair:EMFILE"
    s = FdtServer(d, workers=1, threads=1, env=env)
    try:
        s.start()
        for _ in range(3):
            # socketpair: its first call; alloc: the 4th allocation (the worker's record)
            cd.arm(1 if kind == "socketpair" else 4)
            r = s.ctl("reload", "--wait", check=False)
            assert cd.left() == 0
            cd.disarm()
            assert r.returncode == 1 and "cannot start worker 0: " in r.stderr, r
            assert [g["id"] for g in s.status()["generations"]] == [1]
        if kind == "socketpair":
            assert "socketpair: Too many open files" in s.log()
        assert_serves(s)
        s.reload()
        assert [g["id"] for g in s.status()["generations"]] == [5]
    finally:
        s.stop()
