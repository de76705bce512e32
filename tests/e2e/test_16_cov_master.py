"""The master in the cases the other tests leave out: descriptors running out while it
supervises (a respawn, a reload, a recycle, a binary upgrade, the control socket) and at its
start, reloads queued behind a failing one, binary upgrades refused or failing (before the
new master runs, as it takes over, with the old master dying), a retiring master told to
stop, workers that cannot switch user or whose loop stops, systemd's socket not read,
control clients gone before their answer, and --check with odd interpreters and modules."""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import time

import pytest

from fdt import FDTSERVER, LineClient, alive, wait_for
from test_52_upgrade import upgradable, whoami  # noqa: F401 (upgradable: a fixture)


def open_fds(pid):
    return sorted(int(f) for f in os.listdir(f"/proc/{pid}/fd"))


def leave_free_fds(pid, n=0):
    """Lower pid's descriptor limit so that exactly n descriptor numbers are free below it
    (the kernel gives the lowest free number, and none at or above the limit). Returns the
    old limits."""
    used = set(open_fds(pid))
    limit, free = 0, 0
    while limit in used or free < n:
        free += limit not in used
        limit += 1
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, old[1]))
    return old


def test_16_01_a_worker_that_cannot_be_respawned_is_tried_again(make_server):
    s = make_server(workers=1)
    (old,) = s.worker_pids()
    limits = leave_free_fds(s.pid)
    # Its channel closed, the master has one descriptor free: a channel needs two.
    os.kill(old, signal.SIGKILL)
    s.wait_log("socketpair: Too many open files")
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, limits)
    # The index is not left without a worker: the master tries again.
    s.wait_ready()
    (new,) = s.worker_pids()
    assert new != old
    assert s.client().call("PING") == "PONG"
    # The same for a worker added by `fdtctl workers`: one descriptor left takes the control
    # client, none the channel; the count is taken and the worker comes once it can.
    leave_free_fds(s.pid, 1)
    assert s.ctl("workers", "+1").stdout == "OK 2 workers (was 1)\n"
    assert s.log().count("socketpair: Too many open files") >= 2, s.log()
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, limits)
    s.wait_ready()
    assert len(s.worker_pids()) == 2


def test_16_01b_a_worker_without_its_own_reuseport_socket(make_server):
    s = make_server(workers=1, start=False)
    s.listeners["main"]["reuseport"] = "yes"
    s.write_config()
    s.start()
    (old,) = s.worker_pids()
    # With its channel closed, two free: the new channel takes them, and the worker's own
    # socket of the reuseport listener cannot be made. Tried again until it can.
    limits = leave_free_fds(s.pid, 1)
    os.kill(old, signal.SIGKILL)
    s.wait_log("[listen.main] socket: Too many open files")
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, limits)
    s.wait_ready()
    assert s.worker_pids() != [old]
    assert s.client().call("PING") == "PONG"


def test_16_02_reload_and_upgrade_without_descriptors(make_server):
    s = make_server(workers=1)
    (worker,) = s.worker_pids()
    limits = leave_free_fds(s.pid)
    # A binary upgrade needs a channel to the new master first: refused, nothing started.
    s.signal(signal.SIGUSR2)
    s.wait_log("binary upgrade: socketpair: Too many open files")
    # One descriptor free reads the configuration (SIGHUP: no control client), but the new
    # worker's channel needs two: the reload fails and says why.
    leave_free_fds(s.pid, 1)
    s.signal(signal.SIGHUP)
    s.wait_log("reload failed, generation 1 keeps serving: cannot start worker 0: "
               "Too many open files")
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, limits)
    st = s.status()
    assert st["last_reload"]["ok"] is False
    assert "cannot start worker 0: Too many open files" in st["last_reload"]["message"]
    assert s.worker_pids() == [worker]
    assert s.client().call("PING") == "PONG"
    assert "binary upgrade: started" not in s.log()


def test_16_03_a_reload_queued_behind_a_failing_one_runs(make_server):
    s = make_server(workers=1)
    (old,) = s.worker_pids()
    s.app_keys.update(init_delay_ms=1500, fail_init="yes")
    s.write_config()
    s.reload(wait=False)
    wait_for(lambda: s.status()["last_reload"]["in_progress"], what="reload 1 under way")
    del s.app_keys["fail_init"]
    s.app_keys["init_delay_ms"] = 0
    s.write_config()
    s.reload(wait=False)  # queued: it reads the file when it runs
    s.wait_log("reload queued until the current one finishes")
    s.wait_log("reload failed, generation 1 keeps serving")
    s.wait_ready(generation=3)
    wait_for(lambda: s.status()["last_reload"]["ok"] is True, what="the queued reload done")
    assert [g["id"] for g in s.status()["generations"] if g["state"] == "active"] == [3]
    assert old not in s.worker_pids()
    assert s.client().call("PING") == "PONG"


def started_pids(s):
    """The pids of the new masters started so far, in order."""
    return [int(p) for p in re.findall(r"binary upgrade: started \S+ as pid (\d+)", s.log())]


def new_master_pid(s):
    m = wait_for(lambda: re.search(r"binary upgrade: started \S+ as pid (\d+)", s.log()), 30,
                 what="the new master started")
    return int(m.group(1))


def test_16_04_upgrades_refused_while_something_starts(upgradable):  # noqa: F811
    u = upgradable(workers=1).start()
    s = u.s
    old = u.master
    s.app_keys["init_delay_ms"] = 2000
    s.write_config()
    s.reload(wait=False)
    wait_for(lambda: s.status()["last_reload"]["in_progress"], what="reload under way")
    os.kill(old, signal.SIGUSR2)
    s.wait_log("SIGUSR2: binary upgrade refused: a generation is starting; try again when it "
               "serves")
    wait_for(lambda: s.status()["last_reload"]["ok"] is True, 30, what="the reload done")
    # Now the upgrade starts; its new master's workers take 2 s: a second one is refused.
    os.kill(old, signal.SIGUSR2)
    new = new_master_pid(s)
    os.kill(old, signal.SIGUSR2)
    s.wait_log("SIGUSR2: binary upgrade refused: an upgrade is already in progress")
    s.wait_log(f"binary upgrade: master {new} serves in place of master {old}", 30)
    u.master = new
    wait_for(lambda: not alive(old), 30, what="old master gone")
    assert s.log().count("binary upgrade: started") == 1
    assert s.status()["pid"] == new


def test_16_05_a_new_binary_that_cannot_be_executed(upgradable, tmp_path):  # noqa: F811
    u = upgradable(workers=1).start()
    s = u.s
    plain = tmp_path / "plain-fdtserver"
    shutil.copyfile(FDTSERVER, plain)
    plain.chmod(0o644)  # not executable, even by root
    u.install(plain)
    os.kill(u.master, signal.SIGUSR2)
    s.wait_log(f"binary upgrade: cannot execute {u.bin}: Permission denied")
    s.wait_log("exited with status 127 before it was ready; this master keeps serving")
    assert s.status()["pid"] == u.master and u.pid_file() == u.master
    assert s.client().call("PING") == "PONG"


def test_16_06_a_new_master_closes_the_sockets_its_configuration_dropped(upgradable):  # noqa: F811
    u = upgradable(workers=1)
    s = u.s
    extra = socket.socket()
    extra.bind(("127.0.0.1", 0))
    port = extra.getsockname()[1]
    extra.close()
    s.listeners["extra"] = {"address": f"127.0.0.1:{port}", "protocol": "raw"}
    s.write_config()
    u.start()
    assert LineClient(port).call("PING") == "PONG"
    del s.listeners["extra"]
    s.write_config()
    new = u.upgrade()
    assert re.search(rf"INFO {new} \S+ master: the old master's socket 127.0.0.1:{port} is not "
                     "in the configuration: closed", s.log()), s.log()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert s.client().call("PING") == "PONG"


def test_16_07_a_retiring_master_told_to_stop(upgradable):  # noqa: F811
    u = upgradable(workers=1, server={"graceful_timeout": 30}).start()
    s = u.s
    old = u.master
    busy = s.client()
    busy.send("SLEEP 4000\n")
    wait_for(lambda: any(w["threads_busy"] for w in s.workers()), what="request running")
    os.kill(old, signal.SIGUSR2)
    new = new_master_pid(s)
    s.wait_log(f"binary upgrade: master {new} serves in place of master {old}", 30)
    u.master = new
    assert alive(old)  # its worker still runs the request
    # The new master stops first: the retiring one notes it and goes on draining.
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not alive(new), 30, what="new master stopped")
    s.wait_log(f"new master {new} exited with status 0")
    # Told to stop, the retiring master closes idle connections too, but lets the request
    # in flight end.
    os.kill(old, signal.SIGTERM)
    s.wait_log("graceful stop of the retiring master")
    assert busy.readline() == "SLEPT 4000"
    assert s.wait_exit(30) == 0


def run_master(s, limit=None, pre=(), env=None):
    """Run the configured master in the foreground (it is expected to stop by itself): its
    exit status and everything it printed."""
    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    r = subprocess.run([*pre, str(FDTSERVER), "-c", str(s.conf_path)], capture_output=True,
                       text=True, timeout=60, preexec_fn=lower if limit else None, env=env)
    return r.returncode, r.stdout + r.stderr


def test_16_08_the_master_cannot_start_without_descriptors(make_server):
    s = make_server(workers=1, start=False)
    # Descriptors 0-2, then (one for the loader first) the signalfd, the epoll, the
    # listening socket, the control socket, the pid file and a worker's channel (two): each
    # limit leaves the master one short of the next, and it says which.
    for limit, error in ((4, "start: Too many open files"),
                         (5, "[listen.main] socket: Too many open files"),
                         (6, "control socket: Too many open files"),
                         (7, f"pid file {s.pid_path}: Too many open files"),
                         (9, "cannot start: cannot start worker 0: Too many open files")):
        code, out = run_master(s, limit=limit)
        assert code == 1 and error in out, (limit, out)
        assert not s.pid_path.exists() and not s.ctl_path.exists()


def test_16_09_an_error_log_that_cannot_be_opened(make_server, tmp_path):
    s = make_server(workers=1, start=False)
    missing = tmp_path / "no" / "such" / "error.log"
    s.server["error_log"] = str(missing)
    s.write_config()
    code, out = run_master(s)
    assert code != 0
    assert f"fdtserver: cannot open error_log {missing}: No such file or directory" in out, out
    assert not s.pid_path.exists()


def proc_ids(pid):
    """(uid, gid) of a process, from /proc."""
    st = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines()
              if ":" in line)
    return int(st["Uid"].split()[0]), int(st["Gid"].split()[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_16_10_workers_take_the_users_group(make_server):
    import grp
    nogroup = grp.getgrnam("nogroup").gr_gid
    s = make_server(workers=1, start=False, server={"user": "root"})
    s.logf = open(s.log_path, "ab")
    # The master runs with another group: `user` alone gives the workers the user's own.
    s.proc = subprocess.Popen([str(FDTSERVER), "-c", str(s.conf_path)], stdout=s.logf,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=s.env,
                              group=nogroup, extra_groups=[])
    s.wait_ready()
    assert proc_ids(s.pid) == (0, nogroup)
    (pid,) = s.worker_pids()
    assert proc_ids(pid) == (0, 0)
    assert s.client().call("PING") == "PONG"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv")
def test_16_11_workers_that_cannot_switch_user(make_server):
    s = make_server(workers=1, start=False, server={"user": "root"})
    # Root without the capabilities to change its groups and ids.
    code, out = run_master(s, pre=("setpriv", "--bounding-set", "-setgid,-setuid", "--"))
    assert code == 1, out
    assert "cannot start: worker 0: cannot switch to user root: Operation not permitted" in out, \
        out


def test_16_12_control_clients_gone_before_their_answer(make_server):
    s = make_server(workers=1)
    # While the master is stopped, clients connect (the kernel queues them), ask and leave:
    # the master reads each request and finds nobody to answer. 70 of them, more than the
    # 64 clients it serves at once: none may stay counted.
    for _ in range(7):
        s.signal(signal.SIGSTOP)
        try:
            for _ in range(10):
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                    c.connect(str(s.ctl_path))
                    c.sendall(b"status\n")
        finally:
            s.signal(signal.SIGCONT)
        wait_for(lambda: s.status(quiet=True), what="the master answering again")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(str(s.ctl_path))
        c.sendall(b"status\n")
        assert c.recv(100).startswith(b"OK\nmaster pid ")
    assert s.proc.poll() is None
    assert s.client().call("PING") == "PONG"


def test_16_13_a_new_master_whose_control_socket_cannot_be_made(upgradable):  # noqa: F811
    # The new master makes its control socket under PATH.PID and renames it: a path that
    # fits, but not with the suffix, leaves the new master without one (it says so).
    path = f"/tmp/fdt16-{os.getpid()}-"
    path += "c" * (107 - len(path) - len(".sock")) + ".sock"
    u = upgradable(workers=1, server={"control_socket": path})
    s = u.s
    s.ctl_path = path
    try:
        u.start()
        new = u.upgrade()
        s.wait_log(f"binary upgrade: control_socket path too long: {path}")
        assert u.pid_file() == new
        assert not os.path.exists(path)  # the old master removed its own
        # The new master serves all the same: its worker answers.
        worker = int(whoami(s)["pid"])
        assert open(f"/proc/{worker}/stat").read().rsplit(")", 1)[1].split()[1] == str(new)
    finally:
        u.stop()
        if os.path.exists(path):
            os.unlink(path)


def test_16_14_a_successor_or_its_recycled_worker_dying(make_server):
    s = make_server(workers=1, server={"max_requests": 3}, app_keys={"init_delay_ms": 1000})
    (old,) = s.worker_pids()
    c = s.client()
    for _ in range(3):
        assert c.call("PING") == "PONG"
    (succ,) = wait_for(lambda: s.worker_pids("starting"), what="its successor starting")
    os.kill(succ, signal.SIGKILL)
    s.wait_log(f"worker 0 (pid {succ}, generation 1) killed by signal 9 (KILL) while starting "
               "as a successor")
    # The recycled worker serves on, no longer waiting for a successor.
    wait_for(lambda: not s.workers("starting"), what="the successor gone")
    (w,) = s.workers()
    assert (w["pid"], w["state"], w["recycling"]) == (old, "ready", False)
    assert c.call("PING") == "PONG"
    c.close()
    # A new worker (the old one killed: a crash, respawned) is recycled in turn, and dies
    # while its successor starts: the successor serves in its place, nothing is respawned.
    os.kill(old, signal.SIGKILL)
    def new_worker():  # one look at the list: the killed worker may go between two
        pids = s.worker_pids()
        return pids if pids and pids != [old] else None

    (second,) = wait_for(new_worker, what="a new worker")
    c = s.client()
    for _ in range(3):
        assert c.call("PING") == "PONG"
    (succ,) = wait_for(lambda: s.worker_pids("starting"), what="its successor starting")
    os.kill(second, signal.SIGKILL)
    s.wait_log(f"worker 0 (pid {second}, generation 1) killed by signal 9 (KILL) while its "
               "successor was starting")
    wait_for(lambda: s.worker_pids() == [succ], what="the successor serving")
    assert s.client().call("PING") == "PONG"
    assert f"pid {second}, generation 1) killed by signal 9 (KILL); restarting" not in s.log()
    assert len(s.workers()) == 1


def test_16_15_notifications_to_an_abstract_socket_that_reads_nothing(make_server):
    from sd_util import NotifySocket
    name = f"fdt16-notify-{os.getpid()}"
    ns = NotifySocket("\0" + name, paused=True)
    try:
        # Pings every millisecond (WATCHDOG_USEC under 2 ms): at most one per loop turn.
        s = make_server(workers=1, env={"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000"})
        # Nobody reads: the kernel queues a few datagrams, the master 16 more, then drops.
        for _ in range(12):
            s.reload()
        s.wait_log(f"notify @{name}: systemd reads nothing; a notification is lost")
        assert s.client().call("PING") == "PONG"
        ns.resume()
        ns.wait(lambda pid, f: f.get("READY") == "1" and pid == s.pid, "READY=1")
        ns.wait(lambda pid, f: f.get("WATCHDOG") == "1" and pid == s.pid, "a watchdog ping")
    finally:
        ns.close()


def test_16_16_notify_socket_that_is_not_unix(make_server):
    s = make_server(workers=1, env={"NOTIFY_SOCKET": "127.0.0.1:9"})
    assert ("NOTIFY_SOCKET=127.0.0.1:9: only unix sockets are supported; not notifying"
            in s.log())
    assert s.client().call("PING") == "PONG"


def test_16_17_upgrade_variables_not_meant_for_this_master(make_server):
    s = make_server(workers=1, start=False,
                    env={"FDT_UPGRADE_FROM": "x", "FDT_UPGRADE_CHANNEL": "3",
                         "FDT_UPGRADE_FDS": ""})
    code, out = run_master(s, env=s.env)
    assert code != 0
    assert ("binary upgrade: bad FDT_UPGRADE_FROM, FDT_UPGRADE_CHANNEL or FDT_UPGRADE_FDS"
            in out), out
    # Another process's variables (pid 1 is not this master's parent): ignored.
    s.env["FDT_UPGRADE_FROM"] = "1"
    s.start()
    assert "ignoring FDT_UPGRADE_FROM=1: that process is not this master's parent" in s.log()
    assert s.client().call("PING") == "PONG"
    assert int(s.pid_path.read_text()) == s.pid


def test_16_18_a_new_master_that_cannot_write_the_pid_file(upgradable, tmp_path):  # noqa: F811
    u = upgradable(workers=1).start()
    s = u.s
    missing = tmp_path / "gone" / "fdt.pid"
    s.server["pid_file"] = str(missing)
    s.write_config()
    new = u.upgrade()
    assert re.search(rf"ERROR {new} \S+ master: binary upgrade: pid file {missing}\S*: No such "
                     "file or directory", s.log()), s.log()
    # It serves all the same, and answers on the control socket.
    assert s.status()["pid"] == new
    assert s.client().call("PING") == "PONG"


def test_16_19_a_worker_whose_event_loop_stops_is_replaced(make_server):
    s = make_server(workers=1, server={"worker_timeout": 1})
    (old,) = s.worker_pids()
    os.kill(old, signal.SIGSTOP)  # its loop stops beating
    s.wait_log(f"worker 0 (pid {old}, generation 1) event loop silent for ")
    wait_for(lambda: not alive(old), what="the stopped worker killed")
    s.wait_ready()
    assert s.worker_pids() != [old]
    assert s.client().call("PING") == "PONG"
    assert s.status()["worker_restarts"]["timeout"] == 1


def test_16_20_the_old_master_dies_while_the_new_one_starts(upgradable):  # noqa: F811
    u = upgradable(workers=1).start()
    s = u.s
    old = u.master
    s.app_keys["init_delay_ms"] = 1500
    s.write_config()
    os.kill(old, signal.SIGUSR2)
    new = new_master_pid(s)
    s.wait_log("binary upgrade: taking over from master")
    os.kill(old, signal.SIGKILL)
    u.master = new
    # Ready, the new master finds nobody to tell: it serves alone, on the inherited socket.
    s.wait_log(f"binary upgrade: master {new} serves in place of master {old}", 30)
    worker = int(whoami(s)["pid"])
    assert open(f"/proc/{worker}/stat").read().rsplit(")", 1)[1].split()[1] == str(new)
    assert s.status()["pid"] == new


def test_16_21_an_upgrade_waits_for_systemd_to_read(upgradable):  # noqa: F811
    from sd_util import NotifySocket
    name = f"fdt16-ack-{os.getpid()}"
    ns = NotifySocket("\0" + name, paused=True)
    try:
        u = upgradable(workers=1, env={"NOTIFY_SOCKET": "@" + name})
        u.start()
        s = u.s
        old = u.master
        for _ in range(6):  # enough to fill the kernel's queue: the master keeps the rest
            s.reload()
        # The new master is ready, but systemd has not read MAINPID= yet: the old master
        # waits before it answers. The new master dies meanwhile: the old one serves on.
        os.kill(old, signal.SIGUSR2)
        new = new_master_pid(s)
        s.wait_log("binary upgrade: taking over from master")
        # The new master answers on the control socket only after it told the old one that
        # it is ready.
        wait_for(lambda: s.status(quiet=True) and s.status()["pid"] == new, 30,
                 what="the new master ready")
        time.sleep(0.5)  # not an assertion: lets the old master read that message first
        os.kill(new, signal.SIGKILL)
        s.wait_log(f"binary upgrade failed: the new master (pid {new}", 30)
        assert re.search(rf"binary upgrade failed: the new master \(pid {new}\S* .*this master "
                         "keeps serving", s.log())
        # The new master had made the control socket and the pid file its own: the old one
        # makes them again, and answers there.
        s.wait_log(f"binary upgrade failed: control socket {s.ctl_path} made again")
        s.wait_log(f"binary upgrade failed: pid file {s.pid_path} written again")
        assert s.status()["pid"] == old
        assert u.pid_file() == old
        assert s.client().call("PING") == "PONG"
        # The next one: the new master is ready while systemd still reads nothing; once it
        # reads (or after 5 s), the old master answers, and retires.
        os.kill(old, signal.SIGUSR2)
        new = wait_for(lambda: [p for p in started_pids(s) if p != new], 30,
                       what="another new master")[0]
        wait_for(lambda: s.status(quiet=True) and s.status()["pid"] == new, 30,
                 what="the new master ready")
        ns.resume()
        s.wait_log(f"binary upgrade: master {new} serves in place of master {old}", 30)
        u.master = new
        wait_for(lambda: not alive(old), 30, what="old master gone")
        ns.wait(lambda pid, f: f.get("MAINPID") == str(new), "MAINPID of the new master")
    finally:
        ns.close()


def check(conf, limit=None):
    def lower():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    return subprocess.run([str(FDTSERVER), "--check", "-c", str(conf)], capture_output=True,
                          text=True, timeout=30, preexec_fn=lower if limit else None)


def python_conf(tmp_path, spec, key="wsgi"):
    conf = tmp_path / "py.ini"
    conf.write_text("[listen.a]\naddress = 127.0.0.1:1\nprotocol = http\n[app]\n"
                    f"{key} = {spec}\n[python]\nhome = venv\npath = {tmp_path / 'pp'}\n")
    return conf


def fake_python(tmp_path, script):
    exe = tmp_path / "venv" / "bin" / "python3"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\n" + script + "\n")
    exe.chmod(0o755)
    return exe


def test_16_22_check_with_odd_interpreters_and_modules(tmp_path):
    pp = tmp_path / "pp"
    (pp / "nspkg").mkdir(parents=True)  # no __init__.py: a namespace package
    ext = pp / "extmod.cpython-311-x86_64-linux-gnu.so"
    ext.write_bytes(b"")
    conf = python_conf(tmp_path, "extmod:application")
    # An interpreter that fails, or is killed: only [python] path is searched.
    exe = fake_python(tmp_path, "exit 3")
    r = check(conf)
    assert (f"[python]: cannot read the interpreter's sys.path: {exe} did not run (exit status "
            "3); only [python] path is searched") in r.stderr, r.stderr
    assert f"# python: module extmod: {ext}" in r.stdout, r.stdout
    fake_python(tmp_path, "kill -9 $$")
    r = check(conf)
    assert f"{exe} did not run (signal 9)" in r.stderr, r.stderr
    # Its last line without a newline is an entry all the same.
    fake_python(tmp_path, "printf '/nowhere/a\\n/nowhere/b'")
    r = check(python_conf(tmp_path, "nspkg.app:application"))
    assert "#   /nowhere/a\n#   /nowhere/b\n" in r.stdout, r.stdout
    assert "# python: module nspkg.app" not in r.stdout
    r = check(python_conf(tmp_path, "nspkg:application"))
    assert f"# python: module nspkg: {pp}/nspkg/ (a namespace package)" in r.stdout, r.stdout
    # No descriptors left for the pipe to the interpreter: said, and the rest goes on.
    r = check(conf, limit=4)
    assert "cannot read the interpreter's sys.path: pipe: Too many open files" in r.stderr, \
        r.stderr
    # One more: the pipe, but no /dev/null for the child's stdin.
    r = check(conf, limit=5)
    assert f"{exe} did not run (exit status 127)" in r.stderr, r.stderr


def test_16_23_check_of_a_module_and_a_database_directory(tmp_path, make_server):
    s = make_server(start=False)
    plain = tmp_path / "plain"
    plain.write_text("")
    s.extra_ini = f"[resource.lite]\ndriver = sqlite\npath = {plain}/x.db\n"
    s.write_config()
    r = check(s.conf_path)
    assert r.returncode == 2
    assert f"[resource.lite] path {plain}/x.db: {plain} is not a directory" in r.stderr, r.stderr
    s.extra_ini = ""
    s.write_config()
    assert check(s.conf_path).returncode == 0
    # No descriptors left for the pipe from the child that loads the module.
    r = check(s.conf_path, limit=4)
    assert r.returncode == 2
    assert "[app] module: cannot check: pipe: Too many open files" in r.stderr, r.stderr


def test_16_24_a_recycle_whose_successor_cannot_start(make_server):
    s = make_server(workers=1, server={"max_requests": 3})
    (old,) = s.worker_pids()
    limits = leave_free_fds(s.pid)
    c = s.client()
    for _ in range(3):
        assert c.call("PING") == "PONG"
    s.wait_log("starting its successor")
    s.wait_log("socketpair: Too many open files")
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, limits)
    # The worker serves on, no longer counted as waiting for a successor.
    assert c.call("PING") == "PONG"
    (w,) = s.workers()
    assert (w["pid"], w["state"], w["recycling"]) == (old, "ready", False)


def test_16_25_a_request_in_two_pieces_and_a_stop_that_does_not_end(make_server):
    s = make_server(workers=1, server={"graceful_timeout": 0.1})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(str(s.ctl_path))
        c.sendall(b"sta")
        time.sleep(0.3)  # not an assertion: the master reads the first piece alone
        c.sendall(b"tus\n")
        assert c.recv(65536).decode().startswith("OK\nmaster pid ")
    # fdtserver -s stop waits for the master to exit (graceful_timeout + 10 s); a master
    # that cannot run (stopped) outlasts it: said, exit status 1.
    s.signal(signal.SIGSTOP)
    try:
        r = subprocess.run([str(FDTSERVER), "-s", "stop", "-c", str(s.conf_path)],
                           capture_output=True, text=True, timeout=60)
    finally:
        s.signal(signal.SIGCONT)
    assert r.returncode == 1
    assert r.stderr == f"fdtserver: master {s.pid} still running after 10 s\n", r.stderr
    assert s.wait_exit() == 0  # the SIGTERM it sent takes effect once the master runs


def test_16_26_status_shows_why_a_generation_failed(make_server):
    s = make_server(workers=2)
    s.app_keys["init_delay_ms"] = 3000
    s.write_config()
    s.reload(wait=False)
    starting = wait_for(lambda: len(s.worker_pids("starting")) == 2 and s.worker_pids("starting"),
                        what="the new workers starting")
    os.kill(starting[0], signal.SIGKILL)
    wait_for(lambda: s.status()["last_reload"]["ok"] is False, what="the reload failed")
    # The other new worker still finishes its start: the failed generation is listed, with
    # its reason, until it has ended.
    text = s.ctl("status").stdout
    assert re.search(r"generation 2 failed: 2 workers x 4 threads\n  error: worker \d \(pid "
                     rf"{starting[0]}\) killed by signal 9 \(KILL\) before it was ready\n",
                     text), text
    wait_for(lambda: [g["id"] for g in s.status()["generations"]] == [1],
             what="the failed generation gone")


def test_16_27_an_immediate_stop_kills_a_worker_that_does_not_exit(make_server):
    s = make_server(workers=1)
    (w,) = s.worker_pids()
    os.kill(w, signal.SIGSTOP)  # it cannot act on the master's SIGQUIT
    s.signal(signal.SIGQUIT)
    assert s.wait_exit(30) == 0  # 2 s later the master kills it, and exits
    assert not alive(w)
    assert f"worker 0 (pid {w}, generation 1) killed by signal 9 (KILL)" in s.log()


def test_16_28_a_control_client_waits_while_descriptors_run_out(make_server):
    s = make_server(workers=1)
    limits = leave_free_fds(s.pid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(30)
        c.connect(str(s.ctl_path))  # queued by the kernel: the master cannot accept it
        c.sendall(b"status\n")
        # It says so, and stops listening for a while rather than fail on every loop turn.
        s.wait_log("control socket: accept: Too many open files: trying again in 1 s")
        resource.prlimit(s.pid, resource.RLIMIT_NOFILE, limits)
        assert c.recv(65536).decode().startswith("OK\nmaster pid ")
    assert s.client().call("PING") == "PONG"


def test_16_40_a_ready_worker_of_a_starting_generation_that_dies(make_server):
    """A new generation's worker that was ready dies while a sibling is still starting: the
    reload fails, and the reason says the worker died while its generation was starting
    (it said "before it was ready")."""
    s = make_server(workers=2)
    s.app_keys["init_delay_ms"] = 1000
    s.write_config()
    s.reload(wait=False)
    starting = wait_for(lambda: len(s.worker_pids("starting")) == 2 and s.worker_pids("starting"),
                        what="the new workers starting")
    os.kill(starting[1], signal.SIGSTOP)  # it cannot become ready
    try:
        wait_for(lambda: starting[0] in [w["pid"] for w in s.workers("ready")
                                         if w["generation"] == 2],
                 what="the other new worker ready")
        os.kill(starting[0], signal.SIGKILL)
        wait_for(lambda: s.status()["last_reload"]["ok"] is False, what="the reload failed")
    finally:
        os.kill(starting[1], signal.SIGCONT)
    assert re.search(rf"worker \d \(pid {starting[0]}\) killed by signal 9 \(KILL\) while its "
                     r"generation was starting", s.log()), s.log()[-2000:]
    c = s.client()
    assert c.call("PING") == "PONG"  # generation 1 serves on
    c.close()
