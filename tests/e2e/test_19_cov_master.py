"""Coverage of the master's last lines (session 9): what `fdtserver --check` says of a module
it cannot use (a directory, a file it may not read, a file cut short that kills the loader)
and of a Python interpreter it cannot start; `fdtserver -s` refused by the kernel; a pid file
that names no pid; fdtctl whose request cannot be written."""
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from fdt import (APPS, BUILD, FDTCTL, FDTSERVER, FdtServer, LineClient, alive, free_port,
                 wait_for)
from test_17_fail_master import SHIM, Countdown, failures, needs_shim, shim_env
from test_15_coverage_master import hold_control_clients
from test_16_cov_master import new_master_pid, started_pids
from test_52_upgrade import upgradable  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
PYAPPS = ROOT / "tests" / "apps" / "python"
# Root without its capabilities: the permission checks of an ordinary user, while the
# process keeps uid 0 (and so may still write the coverage counters of a coverage build).
NO_CAPS = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]


def _sanitizer_build():
    """Whether fdtserver links a sanitizer runtime (make asan, make tsan)."""
    out = subprocess.run(["ldd", str(FDTSERVER)], capture_output=True, text=True).stdout
    return "libasan" in out or "libtsan" in out


# These tests provoke what a sanitizer runtime intercepts or changes: a loader killed by
# SIGBUS (ASan reports it itself), a process under ptrace (LeakSanitizer refuses it), no
# /proc (the runtimes read it at start), and the order of a stopped master's events (their
# slowness changes it). They are for the line coverage of the plain build, which CI
# measures; the sanitizers run the rest of the suite.
pytestmark = pytest.mark.skipif(_sanitizer_build(), reason="not under a sanitizer (see above)")


needs_setpriv = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                   reason="needs root and setpriv")


def check(conf, prefix=(), **kw):
    return subprocess.run([*prefix, str(FDTSERVER), "--check", "-c", str(conf)],
                          capture_output=True, text=True, timeout=60, **kw)


def module_conf(tmp_path, module):
    conf = tmp_path / "c.ini"
    conf.write_text(f"[listen.x]\naddress = 127.0.0.1:1\n[app]\nmodule = {module}\n")
    return conf


def python_conf(tmp_path):
    conf = tmp_path / "py.ini"
    conf.write_text(f"[listen.x]\naddress = 127.0.0.1:1\nprotocol = http\n[app]\n"
                    f"wsgi = wsgiapps:application\n[python]\npath = {PYAPPS}\n")
    return conf


def test_19_01_check_says_a_module_that_is_a_directory_is_not_a_file(tmp_path):
    """[app] module naming a directory: --check fails and says it is not a regular file."""
    d = tmp_path / "app.so"
    d.mkdir()
    r = check(module_conf(tmp_path, d))
    assert r.returncode == 2 and f"[app] module {d}: not a regular file" in r.stderr, r


@needs_setpriv
def test_19_02_check_says_a_module_it_may_not_read(tmp_path):
    """A module file the checking user may not read: --check names the permission error."""
    so = tmp_path / "app.so"
    shutil.copy(APPS / "lineapp.so", so)
    so.chmod(0)
    r = check(module_conf(tmp_path, so), prefix=NO_CAPS)
    assert r.returncode == 2 and f"[app] module {so}: Permission denied" in r.stderr, r


def test_19_03_check_says_a_module_cut_short_kills_the_loader(tmp_path):
    """A module copied only in part (its segments past the end of the file): loading it
    kills the throwaway child with SIGBUS, and --check says so instead of passing."""
    so = tmp_path / "app.so"
    so.write_bytes((APPS / "lineapp.so").read_bytes()[:8192])
    r = check(module_conf(tmp_path, so))
    assert r.returncode == 2, r
    assert (f"[app] module {so}: loading it killed the process (signal {int(signal.SIGBUS)})"
            in r.stderr), r


def test_19_04_check_says_the_interpreter_did_not_run_without_descriptors(tmp_path):
    """With no descriptor free for /dev/null in the child that asks the interpreter for
    its sys.path, the child gives up (127): --check warns that it cannot read sys.path and
    searches [python] path only. Walks the descriptor limit up until the check passes."""
    conf = python_conf(tmp_path)
    said = []
    for n in range(3, 40):
        def low(n=n):
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        r = check(conf, preexec_fn=low)
        if "did not run (exit status 127)" in r.stderr:
            assert r.returncode == 0, r
            assert "only [python] path is searched" in r.stderr, r
            assert f"# python: module wsgiapps: {PYAPPS}/wsgiapps.py" in r.stdout, r
            said.append(n)
        elif r.returncode == 0 and "cannot read the interpreter" not in r.stderr:
            break
    else:
        raise AssertionError("--check never passed")
    assert said, "no limit made the interpreter's child fail"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare")
def test_19_04b_check_without_dev_null_warns_the_interpreter_did_not_run(tmp_path):
    """Where /dev has no null device (an empty /dev in a container), the child that would
    ask the interpreter for its sys.path gives up (127): --check warns and still finds the
    module on [python] path."""
    conf = python_conf(tmp_path)
    r = subprocess.run(["unshare", "-m", "--", "bash", "-c",
                        'mount -t tmpfs tmpfs /dev && exec "$0" --check -c "$1"',
                        str(FDTSERVER), str(conf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    assert re.search(r"cannot read the interpreter's sys.path: \S+ did not run \(exit status "
                     r"127\); only \[python\] path is searched", r.stderr), r
    assert f"# python: module wsgiapps: {PYAPPS}/wsgiapps.py" in r.stdout, r


@needs_shim
def test_19_05_python_check_out_of_memory_is_a_problem(tmp_path):
    """--check of a Python application out of memory, allocation after allocation: it
    fails naming the memory (for the search path: '[python]: cannot check') or passes."""
    conf = python_conf(tmp_path)
    seen = False
    for n in range(1, 400):
        d = tmp_path / f"c{n}"
        d.mkdir()
        r = subprocess.run([str(FDTSERVER), "--check", "-c", str(conf)], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, **shim_env(d, f"alloc@{n}")))
        if not failures(d):
            assert r.returncode == 0 and "configuration ok" in r.stdout, r
            break
        assert r.returncode in (0, 1, 2), r
        if r.returncode:
            assert "out of memory" in r.stderr or "Cannot allocate memory" in r.stderr, r
        seen = seen or "[python]: cannot check: out of memory" in r.stderr
    else:
        raise AssertionError("--check still allocating")
    assert seen


def signal_cmd(pid_file, prefix=()):
    return subprocess.run([*prefix, str(FDTSERVER), "-s", "reload", "--pid-file", str(pid_file)],
                          capture_output=True, text=True, timeout=60)


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.pwrite(fd, sys.argv[2].replace("PID", str(os.getpid())).encode() + b"\\n", 0)
print("locked", flush=True)
time.sleep(60)
"""


def hold(pid_file, content="PID", user=None):
    """A process (not a master) that holds the pid file's write lock and wrote content in it
    (PID: its own pid)."""
    pid_file.write_text("")
    if user is not None:
        os.chown(pid_file, user, user)
    p = subprocess.Popen(["/usr/bin/python3", "-c", HOLDER, str(pid_file), content],
                         stdout=subprocess.PIPE, text=True, user=user, group=user)
    assert p.stdout.readline() == "locked\n"
    return p


def test_19_06_a_pid_file_that_names_no_pid_says_so(tmp_path):
    """`fdtserver -s` on a pid file that holds no number: stale, it 'names no pid' (not
    'pid 0'); held by a process, the file names no pid but is held by that process."""
    pid_file = tmp_path / "fdt.pid"
    pid_file.write_text("not a pid\n")
    r = signal_cmd(pid_file)
    assert r.returncode == 1 and r.stderr == (
        f"fdtserver: pid file {pid_file} is stale: no running master holds it (it names no "
        "pid); nothing signalled\n"), r
    p = hold(pid_file, "garbage")
    try:
        r = signal_cmd(pid_file)
        assert r.returncode == 1 and r.stderr == (
            f"fdtserver: pid file {pid_file} names no pid but is held by pid {p.pid}; nothing "
            "signalled\n"), r
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


@needs_setpriv
def test_19_07_a_signal_the_kernel_refuses_is_said(tmp_path):
    """The master (here a stand-in holding the pid file's lock) runs as another user, and
    the signaller lacks the capability to signal it: `fdtserver -s reload` says kill failed
    and exits 1; nothing was signalled."""
    pub = Path(tempfile.mkdtemp(prefix="fdt19-"))
    try:
        pub.chmod(0o755)
        pid_file = pub / "fdt.pid"
        p = hold(pid_file, user=65534)
        try:
            r = signal_cmd(pid_file, prefix=NO_CAPS)
            assert r.returncode == 1, r
            assert r.stderr == f"fdtserver: kill {p.pid}: Operation not permitted\n", r
            assert p.poll() is None  # SIGHUP would have ended it
        finally:
            p.kill()
            p.wait()
    finally:
        shutil.rmtree(pub, ignore_errors=True)


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_19_08_fdtctl_whose_request_cannot_be_written_says_why(tmp_path):
    """Something at the control socket that closes the connection without a word, and the
    request's write fails (EPIPE, injected by strace into fdtctl's first write): fdtctl
    says the write failed and exits 1."""
    path = tmp_path / "ctl.sock"
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(str(path))
    lsock.listen(1)

    def refuse():
        c, _ = lsock.accept()
        c.close()

    t = threading.Thread(target=refuse)
    t.start()
    try:
        r = subprocess.run(["strace", "-qq", "-o", "/dev/null", "-e", "trace=write", "-e",
                            "inject=write:error=EPIPE:when=1", str(FDTCTL), "--socket",
                            str(path), "status"], capture_output=True, text=True, timeout=60)
    finally:
        t.join(10)
        lsock.close()
    assert r.returncode == 1 and r.stderr == "fdtctl: write: Broken pipe\n", r


@needs_shim
def test_19_09_upgrade_whose_answer_cannot_be_sent(upgradable, tmp_path):  # noqa: F811
    """The old master's answer to the ready new master cannot be sent (sendmsg fails): it
    drops the channel and retires all the same; the new master, seeing the channel end,
    serves in its place. An idle connection of the old worker has nowhere to go then: it
    is closed, and the old master says so."""
    cd = Countdown(tmp_path / "countdown")
    env = shim_env(tmp_path, countdown=cd.path)
    env["FDT_FAIL_COUNTDOWN_OF"] = "sendmsg:EPIPE"
    u = upgradable(workers=1, threads=1, env=env)
    u.start()
    s = u.s
    idle = s.client()
    assert idle.call("PING") == "PONG"
    worker = s.worker_pids()[0]
    cd.arm(1)
    new = u.upgrade()
    assert cd.left() == 0
    log = s.log()
    assert (f"binary upgrade: cannot answer new master {new}: Broken pipe; its idle "
            "connections are closed instead of handed over") in log, log
    assert f"binary upgrade: new master {new} serves; this master drains and exits" in log
    assert (f"a connection of listener main from worker 0 (pid {worker}): the new master did "
            "not take it: closed") in log, log
    assert idle.closed_by_server()
    idle.close()
    c = s.client()
    assert c.call("PING") == "PONG"
    c.close()
    assert s.status()["pid"] == new


@needs_shim
def test_19_10_a_control_answer_the_socket_does_not_take_at_once(tmp_path):
    """The control client's socket takes nothing for a moment (send: EAGAIN): the master
    waits until it can write and sends the answer whole."""
    cd = Countdown(tmp_path / "countdown")
    d = tmp_path / "srv"
    d.mkdir()
    env = shim_env(d, countdown=cd.path)
    env["FDT_FAIL_COUNTDOWN_OF"] = "send:EAGAIN"
    s = FdtServer(d, workers=1, threads=1, env=env)
    try:
        s.start()
        cd.arm(1)
        r = s.ctl("status", "--json")
        assert cd.left() == 0
        st = json.loads(r.stdout)
        assert st["state"] == "running" and st["pid"] == s.pid
    finally:
        s.stop()


def test_19_11_upgrade_and_more_workers_refused_while_stopping(make_server):
    """SIGUSR2 and SIGTTIN while a graceful stop waits for a request: refused and ignored
    (the server is stopping), each said in the log; the request is answered and the master
    exits 0."""
    s = make_server(workers=1, threads=1)
    c = s.client()
    c.send("SLEEP 1500\n")
    time.sleep(0.2)  # not an assertion: lets the worker start the request
    s.signal(signal.SIGTERM)
    s.wait_log("graceful stop: closing listeners")
    s.signal(signal.SIGUSR2)
    s.wait_log("SIGUSR2: binary upgrade refused: the server is stopping")
    s.signal(signal.SIGTTIN)
    s.wait_log("SIGTTIN ignored: the server is stopping")
    assert c.readline() == "SLEPT 1500"
    c.close()
    assert s.wait_exit() == 0
    assert "binary upgrade: started" not in s.log()


def test_19_12_upgrade_refused_by_a_master_still_taking_over(upgradable):  # noqa: F811
    """SIGUSR2 to a new master whose generation is still starting: it refuses (it is still
    taking over from the old one), and the upgrade under way completes."""
    u = upgradable(workers=1, threads=1, app_keys={"init_delay_ms": 1500}).start()
    s = u.s
    old = u.master
    os.kill(old, signal.SIGUSR2)
    new = new_master_pid(s)
    s.wait_log("binary upgrade: taking over from master")
    os.kill(new, signal.SIGUSR2)
    s.wait_log("SIGUSR2: binary upgrade refused: this master is still taking over from the "
               "old one")
    s.wait_log(f"binary upgrade: master {new} serves in place of master {old}", 30)
    u.master = new
    wait_for(lambda: not alive(old), 30, what="the old master gone")
    assert s.status()["pid"] == new
    assert len(started_pids(s)) == 1


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare")
def test_19_13_upgrade_refused_when_the_binary_path_is_unknown(make_server):
    """A master started by a bare name (through PATH) where /proc is not mounted cannot
    tell which file it runs: SIGUSR2 is refused, saying so, and it serves on."""
    # The loader finds libfdt through $ORIGIN, which needs /proc too: named here instead.
    s = make_server(start=False, workers=1, threads=1, env={"LD_LIBRARY_PATH": str(BUILD)})
    s.logf = open(s.log_path, "ab")
    s.proc = subprocess.Popen(
        ["unshare", "-m", "--", "bash", "-c", 'umount -l /proc && exec -a fdtserver "$0" -c "$1"',
         str(FDTSERVER), str(s.conf_path)],
        stdout=s.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=s.env)
    s.wait_ready()
    s.signal(signal.SIGUSR2)
    s.wait_log("SIGUSR2: binary upgrade refused: the path of the binary is unknown")
    c = s.client()
    assert c.call("PING") == "PONG"
    c.close()
    assert s.stop() == 0


def test_19_14_reload_refused_when_a_systemd_socket_no_longer_fits(make_server):
    """Under socket activation, a reload that moves the listener systemd's socket is named
    for to another address is refused, saying why; the old generation serves on."""
    from sd_util import socket_activate
    port, other = free_port(), free_port()
    s = make_server(start=False, workers=1, threads=1,
                    listeners={"web": {"address": f"127.0.0.1:{port}", "protocol": "raw"}})
    socket_activate(s, [f"127.0.0.1:{port}"], names=["web"])
    c = LineClient(port, timeout=30)
    assert c.call("PING") == "PONG"
    c.close()
    s.wait_ready()
    s.listeners["web"]["address"] = f"127.0.0.1:{other}"
    s.write_config()
    r = s.reload(check=False)
    said = (f"[listen.web] the socket systemd passed as web is bound to 127.0.0.1:{port}, not "
            f"to address 127.0.0.1:{other}")
    assert r.returncode == 1 and said in r.stderr, r
    assert f"reload failed, old generation keeps serving: {said}" in s.log()
    assert [g["id"] for g in s.status()["generations"]] == [1]
    c = LineClient(port, timeout=30)
    assert c.call("PING") == "PONG"
    c.close()


@needs_shim
def test_19_15_a_connection_the_new_master_cannot_pass_on_is_closed_and_said(upgradable,
                                                                           tmp_path):  # noqa: F811
    """At a binary upgrade the old master passes an idle connection to the new one, whose
    channel to its worker does not take it (sendmsg: EAGAIN, its 2nd after the 'ready' it
    sent): the new master closes it and says so."""
    env = {"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
           "FDT_FAIL_EXEC": "sendmsg@2:EAGAIN"}
    u = upgradable(workers=1, threads=1, env=env).start()
    s = u.s
    idle = s.client()
    assert idle.call("PING") == "PONG"
    new = u.upgrade()
    s.wait_log("a connection of listener main from the old master: Resource temporarily "
               "unavailable: closed")
    assert f"pid {new} sendmsg #2" in failures(tmp_path), failures(tmp_path)
    assert idle.closed_by_server()
    idle.close()
    c = s.client()
    assert c.call("PING") == "PONG"
    c.close()


# ---- The master frozen (SIGSTOP) while its workers go on: what it finds when it runs again.
# Before anything else happens, a signal it ignores (SIGPIPE) makes its signalfd the first
# ready descriptor, so it reads its signals (and reaps) before the workers' messages.

def proc_state(pid):
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def freeze(s):
    os.kill(s.pid, signal.SIGSTOP)
    wait_for(lambda: proc_state(s.pid) == "T", what="the master stopped")
    os.kill(s.pid, signal.SIGPIPE)


def thaw(s):
    os.kill(s.pid, signal.SIGCONT)


def said_ready(s, pid):
    """Waits until worker pid logged that it is ready (just after it told the master)."""
    wait_for(lambda: re.search(rf" {pid} \S+ worker: worker \d+ ready", s.log()), 20,
             what=f"worker {pid} ready")


def test_19_16_a_connection_handed_over_by_a_worker_that_then_exited(make_server):
    """A worker drains (SIGHUP), hands its idle connection to the master and exits before
    the master read the message: the master, reaping it, still passes the connection on to
    the other worker, and the client goes on."""
    s = make_server(workers=2, threads=1)
    idle = s.client()
    first = int(dict(kv.split("=") for kv in idle.call("WHOAMI").split())["pid"])
    other = [p for p in s.worker_pids() if p != first][0]
    freeze(s)
    try:
        os.kill(first, signal.SIGHUP)
        wait_for(lambda: proc_state(first) == "Z", what="the worker exited")
    finally:
        thaw(s)
    after = dict(kv.split("=") for kv in idle.call("WHOAMI").split())
    assert int(after["pid"]) == other, after
    idle.close()
    wait_for(lambda: re.search(rf"worker \d \(pid {first}, generation 1\) exited with status 0",
                               s.log()), what="the worker reaped")
    assert "a connection of listener" not in s.log()


def frozen_with_a_starting_worker(make_server):
    """A server of one worker given a second by `fdtctl workers 2` (its start takes 0.5 s),
    its master then frozen (freeze): returns the server and [the new worker's pid]."""
    s = make_server(workers=1, threads=1, app_keys={"init_delay_ms": 500})
    s.ctl("workers", "2")
    new = [w["pid"] for w in s.workers() if w["state"] == "starting"]
    assert len(new) == 1
    freeze(s)
    return s, new


def test_19_17_a_worker_ready_then_killed_before_the_master_heard(make_server):
    """A worker added by `fdtctl workers 2` says it is ready and is killed before the master
    read that: counted as a serving worker that died, it is restarted."""
    s, new = frozen_with_a_starting_worker(make_server)
    try:
        said_ready(s, new[0])
        os.kill(new[0], signal.SIGKILL)
        wait_for(lambda: proc_state(new[0]) == "Z", what="the worker killed")
    finally:
        thaw(s)
    s.wait_log(f"worker 1 (pid {new[0]}, generation 1) killed by signal 9 (KILL); restarting "
               "in 0 ms")
    s.wait_ready()
    assert len(s.worker_pids()) == 2


def test_19_18_a_worker_ready_while_the_master_stops_now(make_server):
    """A worker added by `fdtctl workers 2` is ready when the master reads SIGQUIT first:
    the master tells it to stop too, and exits."""
    s, new = frozen_with_a_starting_worker(make_server)
    try:
        said_ready(s, new[0])
        os.kill(s.pid, signal.SIGQUIT)
    finally:
        thaw(s)
    assert s.wait_exit() == 0
    assert "immediate stop" in s.log()


def test_19_19_a_recycle_asked_as_the_master_stops_starts_no_successor(make_server):
    """A worker reaches max_requests and asks for a successor just as the master is told to
    stop (read first): no successor starts, the master stops cleanly."""
    s = make_server(workers=1, threads=1, server={"max_requests": 2})
    worker = s.worker_pids()[0]
    freeze(s)
    try:
        os.kill(s.pid, signal.SIGTERM)
        c = s.client()
        assert c.call("PING") == "PONG"
        assert c.call("PING") == "PONG"
        c.close()
        s.wait_log("asking for a successor: 2 requests served")
    finally:
        thaw(s)
    assert s.wait_exit() == 0
    log = s.log()
    assert "recycled" not in log and f"worker 0 (pid {worker}, generation 1) exited" in log, log


def test_19_20_paths_that_cannot_be_made_again_after_a_failed_takeover(upgradable):  # noqa: F811
    """A new master dies as it takes over (after it made the control socket and the pid file
    its own, before the old master answered), and both paths are now directories: the old
    master serves on and says that neither can be made again, and what that means."""
    from sd_util import NotifySocket
    # systemd reads nothing: once its queue is full (6 reloads' notes), the old master waits
    # before it answers the new one.
    ns = NotifySocket(f"\0fdt19-ack-{os.getpid()}", paused=True)
    try:
        u = upgradable(workers=1, env={"NOTIFY_SOCKET": f"@fdt19-ack-{os.getpid()}"}).start()
        s, old = u.s, u.master
        [s.reload() for _ in range(6)]
        os.kill(old, signal.SIGUSR2)
        new = new_master_pid(s)
        s.wait_log("binary upgrade: taking over from master")
        wait_for(lambda: s.status(quiet=True) and s.status()["pid"] == new, 30,
                 what="the new master ready")
        time.sleep(0.5)  # not an assertion: lets the old master read that message first
        for p in (s.ctl_path, s.pid_path):
            p.unlink()
            p.mkdir()
            (p / "f").write_text("")
        os.kill(new, signal.SIGKILL)
        s.wait_log(f"binary upgrade failed: the new master (pid {new}", 30)
        s.wait_log("binary upgrade failed, and the control socket cannot be made again (fdtctl "
                   f"cannot reach this master): control socket {s.ctl_path}: Address already "
                   "in use")
        s.wait_log("binary upgrade failed, and the pid file cannot be written again (fdtserver "
                   f"-s cannot find this master): pid file {s.pid_path}: Is a directory")
        c = s.client()
        assert c.call("PING") == "PONG"
        c.close()
        assert alive(old)
    finally:
        ns.close()


def kill_next_worker(s, killed):
    pid = wait_for(lambda: [p for p in s.worker_pids() if p not in killed], 30,
                   what="a new worker ready")[0]
    killed.append(pid)
    os.kill(pid, signal.SIGKILL)
    s.wait_log(f"worker 0 (pid {pid}, generation 1) killed by signal 9 (KILL); restarting in")
    return pid


def restart_delays(s):
    return [int(d) for d in re.findall(r"restarting in (\d+) ms", s.log())]


def test_19_21_restarts_back_off_to_at_most_10_s(make_server):
    """A worker killed each time it is ready: its restarts wait 0, 100, 200 ... ms, doubling,
    but never more than 10 s (the 9th)."""
    s = make_server(workers=1, threads=1)
    killed = []
    for _ in range(9):
        kill_next_worker(s, killed)
    assert restart_delays(s) == [0, 100, 200, 400, 800, 1600, 3200, 6400, 10000]


def test_19_22_a_worker_that_served_a_while_restarts_at_once(make_server):
    """A worker that died soon after a restart would wait 100 ms; one that served for more
    than 5 s first is restarted at once (its count of failures starts again)."""
    s = make_server(workers=1, threads=1)
    killed = []
    kill_next_worker(s, killed)
    wait_for(lambda: [p for p in s.worker_pids() if p not in killed], 30, what="a new worker")
    time.sleep(5.5)  # not an assertion: the new worker serves longer than 5 s
    kill_next_worker(s, killed)
    assert restart_delays(s) == [0, 0]


def test_19_23_a_new_master_not_ready_in_time_is_stopped(upgradable):  # noqa: F811
    """A new master that is not ready ready_timeout + 30 s after the upgrade began (here:
    stopped with SIGSTOP while its worker got ready) is sent SIGTERM, saying so. Running
    again, it reads its worker's ready first (not a ready_timeout) and says it is ready
    before it reads the SIGTERM: too late, the old master takes nothing, says so, and serves
    on once the new one has ended."""
    u = upgradable(workers=1, threads=1, server={"ready_timeout": 2}).start()
    s = u.s
    s.app_keys["init_delay_ms"] = 1000  # the new master's worker: ready 1 s after it starts
    s.write_config()
    os.kill(u.master, signal.SIGUSR2)
    new = new_master_pid(s)
    s.wait_log("binary upgrade: taking over from master")
    os.kill(new, signal.SIGSTOP)
    try:
        s.wait_log(f"binary upgrade: new master {new} not ready in time: sending SIGTERM", 45)
    finally:
        os.kill(new, signal.SIGCONT)
    s.wait_log(f"binary upgrade failed: the new master (pid {new}", 30)
    log = s.log()
    # Running again, the new master has its worker's ready and the SIGTERM pending: it
    # reads the ready first (then the old master refuses it) or, depending on the order
    # epoll reports them, stops first; either way the old master takes nothing back from
    # a stopping master and serves on, and no worker was killed as not ready.
    late = (f"binary upgrade: new master {new} ready after it was told to stop: not taken; "
            "this master keeps serving")
    gone = "exited with status 1 before it was ready; this master keeps serving"
    assert late in log or gone in log, log
    assert "not ready after ready_timeout" not in log, log
    c = s.client()
    assert c.call("PING") == "PONG"
    c.close()
    assert s.status()["pid"] == u.master and u.pid_file() == u.master


def test_19_24_a_failed_upgrade_leaves_the_control_socket_alone(upgradable,
                                                                 tmp_path):  # noqa: F811
    """A new master that fails before it took anything: the old master's control socket is
    the same file as before (not made again, which would refuse clients meanwhile)."""
    u = upgradable(workers=1, threads=1).start()
    s = u.s
    ino = s.ctl_path.stat().st_ino
    plain = tmp_path / "plain-fdtserver"
    plain.write_bytes(b"")  # not executable, even by root
    u.install(plain)
    os.kill(u.master, signal.SIGUSR2)
    s.wait_log("exited with status 127 before it was ready; this master keeps serving")
    assert "made again" not in s.log() and "written again" not in s.log(), s.log()
    assert s.ctl_path.stat().st_ino == ino
    assert s.status()["pid"] == u.master and u.pid_file() == u.master


OFD_HOLDER = """
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
F_OFD_SETLK = 37
fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
os.pwrite(fd, b"%d\\n" % os.getpid(), 0)
print("locked", flush=True)
time.sleep(60)
"""


def test_19_25_a_pid_file_locked_by_a_process_the_master_cannot_see(make_server):
    """A pid file whose lock the kernel reports without a pid (an open file description
    lock; a master of another pid namespace looks the same): a master does not start over
    it, and `fdtserver -s` signals nothing, both saying it is locked by a process they
    cannot see (it was 'lock: Operation not permitted', from the pid -1 taken for -EPERM)."""
    s = make_server(start=False, workers=1, threads=1)
    p = subprocess.Popen(["/usr/bin/python3", "-c", OFD_HOLDER, str(s.pid_path)],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "locked\n"
        said = (f"pid file {s.pid_path} is locked by a process this one cannot see (a master in "
                "another pid namespace, a container?)")
        s.start(wait=False)
        assert s.wait_exit() == 1
        assert said in s.log(), s.log()
        r = signal_cmd(s.pid_path)
        assert r.returncode == 1 and r.stderr == f"fdtserver: {said}; nothing signalled\n", r
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare")
def test_19_26_a_pid_file_held_from_another_pid_namespace_is_not_stale(tmp_path):
    """Seen from a new pid namespace (a container), the holder of the pid file's lock has
    no pid: `fdtserver -s` there says it is locked by a process it cannot see (before, the
    file was taken for stale, and a master started there replaced it)."""
    pid_file = tmp_path / "fdt.pid"
    p = hold(pid_file)
    try:
        r = subprocess.run(["unshare", "-p", "-f", "--mount-proc", str(FDTSERVER), "-s",
                            "reload", "--pid-file", str(pid_file)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "is locked by a process this one cannot see" in r.stderr, r
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_19_27_fdtctl_refused_by_a_busy_master_prints_the_masters_reason(make_server):
    """64 control clients hold the master's control socket; fdtctl connects, and its request
    is written only after the master refused it (strace delays fdtctl's first write by 1 s):
    the write fails, and fdtctl prints the reason the master sent before it closed, not the
    bare write error, and exits 1."""
    s = make_server(workers=1)
    idle = []
    try:
        hold_control_clients(s, idle)
        r = subprocess.run(["strace", "-qq", "-o", "/dev/null", "-e", "trace=write", "-e",
                            "inject=write:delay_enter=1000000:when=1", str(FDTCTL), "--socket",
                            str(s.ctl_path), "status"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1 and r.stderr == "ERR too many control clients\n", r
    finally:
        for c in idle:
            c.close()


def test_19_28_a_starting_worker_that_failed_and_exited_before_the_master_read_it(make_server,
                                                                                  tmp_path):
    """A reload's worker fails its process_init and exits while the master is frozen: the
    master reads its signals first (freeze), so it reaps the worker before it read the
    worker's message. It still reads that message then: the reload fails with the worker's
    own reason (not "exited before it was ready"), and generation 1 serves on."""
    flag = tmp_path / "refuse"
    s = make_server(workers=1, threads=1,
                    app_keys={"init_delay_ms": 300, "fail_init_if_exists": str(flag)})
    flag.write_text("")
    s.reload(wait=False)
    m = wait_for(lambda: re.search(r"spawned worker 0 of generation 2: pid (\d+)", s.log()), 20,
                 what="generation 2's worker")
    new = int(m.group(1))
    freeze(s)
    try:
        wait_for(lambda: proc_state(new) == "Z", 20, what="the new worker failed and exited")
    finally:
        thaw(s)
    s.wait_log("reload failed")
    assert f"worker 0: process_init failed: {flag} exists" in s.log(), s.log()
    assert "before it was ready" not in s.log()
    # Read while reaping: not the line of a message read as it came.
    assert f"worker 0 (pid {new}) failed to start" not in s.log()
    st = s.status()
    assert [g["id"] for g in st["generations"] if g["state"] == "active"] == [1], st
    assert s.client().call("PING") == "PONG"
