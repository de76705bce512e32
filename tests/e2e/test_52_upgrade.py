"""Binary upgrade (SIGUSR2): a new master executed from the path the old one was started
as, on the same listening sockets; the old one drains only when the new one serves."""
import os
import re
import signal
import socket
import subprocess

import pytest

from fdt import BUILD, FDTSERVER, LineClient, alive, free_port, wait_for
from http_util import HELLO
from load import HttpEcho, Load, LineBody
from sd_util import NotifySocket, listening_inodes, socket_activate


class Upgradable:
    """An FdtServer started as tmp/bin/fdtserver (a symbolic link to the build's binary, so
    a test can put another binary there) and followed through its upgrades: `master` is the
    pid of the current master, which after an upgrade is no child of the test."""

    def __init__(self, s, tmp_path):
        self.s = s
        self.bin = tmp_path / "bin" / "fdtserver"
        self.bin.parent.mkdir(exist_ok=True)
        self.install(FDTSERVER)
        self.master = None
        self.upgrades = 0

    def install(self, target):
        tmp = self.bin.with_name("fdtserver.new")
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, self.bin)

    def start(self, pre=()):
        s = self.s
        s.logf = open(s.log_path, "ab")
        s.proc = subprocess.Popen([*pre, str(self.bin), "-c", str(s.conf_path)],
                                  stdout=s.logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=s.env)
        s.wait_ready()
        self.master = s.pid
        return self

    def pid_file(self):
        try:
            return int(self.s.pid_path.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def upgrade(self):
        """SIGUSR2 to the current master; returns once the new master serves in its place
        (it said so) and the old one has exited."""
        old = self.master
        os.kill(old, signal.SIGUSR2)
        n = self.upgrades + 1
        pattern = re.compile(rf"binary upgrade: master (\d+) serves in place of master {old}\b")
        m = wait_for(lambda: pattern.search(self.s.log()), 30, what=f"upgrade {n}")
        new = int(m.group(1))
        assert new != old
        wait_for(lambda: not alive(old), 30, what=f"old master {old} gone")
        self.master = new
        self.upgrades = n
        return new

    def stop(self):
        if self.master and alive(self.master):
            os.kill(self.master, signal.SIGTERM)
            wait_for(lambda: not alive(self.master), 30, what="master stopped")


@pytest.fixture
def upgradable(make_server, tmp_path):
    made = []

    def make(**kw):
        u = Upgradable(make_server(start=False, **kw), tmp_path)
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


def whoami(s):
    c = s.client()
    who = dict(kv.split("=") for kv in c.call("WHOAMI").split())
    c.close()
    return who


def test_52_01_ten_upgrades_under_load_lose_nothing(upgradable):
    u = upgradable(workers=2).start()
    s = u.s
    inodes = listening_inodes(s.port)
    assert len(inodes) == 1
    with Load(s.port, LineBody) as load:
        wait_for(lambda: load.ok > 50, what="load running")
        for _ in range(10):
            before = load.ok
            new = u.upgrade()
            # The pid file and the control socket are the new master's.
            assert u.pid_file() == new
            assert s.status()["pid"] == new
            wait_for(lambda: load.ok > before + 20, what="load served by the new master")
    load.report("10 upgrades")
    assert not load.failures, load.failures[:10]
    # As on a reload (test_04_07), the old workers hand their idle connections over, here to
    # the new master's: no client even meets a closed connection.
    assert load.retried == 0, load.report("10 upgrades")
    # The same socket all along: never closed, never bound again.
    assert listening_inodes(s.port) == inodes
    workers = {int(whoami(s)["pid"])}
    assert workers <= set(s.worker_pids())
    assert s.status()["generations"][0]["state"] == "active"


def test_52_09_http_clients_that_never_retry_lose_nothing_across_upgrades(upgradable):
    """As for reloads (test_10_62): the old master's workers retire like a reload's, so an
    HTTP client with keep-alive is never closed under: no retry at all."""
    u = upgradable(app=HELLO, workers=2)
    u.s.listeners = {"main": {"address": f"127.0.0.1:{u.s.port}", "protocol": "http"}}
    u.s.write_config()
    u.start()
    with Load(u.s.port, HttpEcho) as load:
        wait_for(lambda: load.ok > 50, what="load running")
        for _ in range(10):
            before = load.ok
            u.upgrade()
            wait_for(lambda: load.ok > before + 20, what="load served by the new master")
    load.report("10 upgrades")
    assert not load.failures, load.failures[:10]
    assert load.retried == 0


def broken_binary(tmp_path):
    script = tmp_path / "broken.sh"
    script.write_text("#!/bin/sh\necho 'broken binary: cannot start' >&2\nexit 1\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize("breakage", ["binary", "configuration", "application"])
def test_52_02_a_new_master_that_fails_leaves_the_old_one_serving(upgradable, tmp_path,
                                                                  breakage):
    u = upgradable(workers=2).start()
    s = u.s
    old = u.master
    workers = s.worker_pids()
    if breakage == "binary":
        u.install(broken_binary(tmp_path))
        why = "broken binary: cannot start"
    elif breakage == "configuration":
        s.server["threads"] = "nine"
        s.write_config()
        why = "threads"
    else:
        s.app_keys["fail_init"] = "yes"
        s.write_config()
        why = "fail_init is set"
    os.kill(old, signal.SIGUSR2)
    s.wait_log(f"binary upgrade failed: the new master (pid", timeout=30)
    assert why in s.log()
    # The old master serves on, untouched, and still owns the pid file and control socket.
    assert alive(old) and u.pid_file() == old
    st = s.status()
    assert st["pid"] == old and s.worker_pids() == workers
    assert int(whoami(s)["pid"]) in workers
    assert "serves in place of" not in s.log()

    # Fixed, the next upgrade goes through.
    u.install(FDTSERVER)
    s.app_keys.pop("fail_init", None)
    s.server["threads"] = 4
    s.write_config()
    new = u.upgrade()
    assert u.pid_file() == new and s.status()["pid"] == new
    assert int(whoami(s)["pid"]) in s.worker_pids()


def test_52_03_upgrade_under_systemd_moves_mainpid(upgradable, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    u = upgradable(workers=1, env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
    # WATCHDOG_PID names the first master, as systemd sets it.
    u.start(pre=["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh"])
    old = u.master
    notify.wait(lambda p, f: f.get("READY") == "1", "READY=1")
    new = u.upgrade()
    notify.wait(lambda p, f: p == new and f.get("READY") == "1", "READY=1 from the new master")
    notify.wait(lambda p, f: p == new and f.get("WATCHDOG") == "1", "WATCHDOG=1 from the new one")
    # After the upgrade a reload of the new master is announced by it.
    os.kill(new, signal.SIGHUP)
    notify.wait(lambda p, f: p == new and f.get("RELOADING") == "1", "RELOADING=1")
    notify.wait(lambda p, f: p == new and "generation 2" in f.get("STATUS", "")
                and f.get("READY") == "1", "READY=1 after the reload")
    u.stop()
    notify.wait(lambda p, f: p == new and f.get("STOPPING") == "1", "STOPPING=1")
    # Every message came from the main process of its moment (NotifyAccess=main): the old
    # master until it named the new one, then the new one, which first says MAINPID itself.
    main = old
    said_mainpid = False
    for pid, f in notify.read():
        assert pid == main, (pid, main, f, notify.messages)
        if "MAINPID" in f:
            if pid == old and int(f["MAINPID"]) == new:
                main = new
            else:
                assert int(f["MAINPID"]) == pid
                said_mainpid = said_mainpid or pid == new
    assert main == new and said_mainpid
    assert not any("STOPPING" in f for p, f in notify.messages if p == old)
    notify.close()


def test_52_04_the_new_binary_comes_from_the_path_started(upgradable, tmp_path):
    # A deployment replaces the file at the path the server was started as (here a link
    # switched to another file): the upgrade runs the file found there then.
    # A copy where its run path ($ORIGIN/../..) finds the build's libfdt.
    copy = tmp_path / "v2" / "src" / "bin" / "fdtserver"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(FDTSERVER.read_bytes())
    copy.chmod(0o755)
    for lib in BUILD.glob("libfdt.so*"):
        (tmp_path / "v2" / lib.name).symlink_to(lib)
    u = upgradable(workers=1).start()
    u.install(copy)
    new = u.upgrade()
    assert os.readlink(f"/proc/{new}/exe") == str(copy)
    assert int(whoami(u.s)["pid"]) in u.s.worker_pids()


def test_52_05_unix_and_reuseport_listeners_cross_over(upgradable, tmp_path):
    sock = tmp_path / "app.sock"
    u = upgradable(workers=2, listeners=None)
    s = u.s
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "raw",
                            "reuseport": "yes"},
                   "local": {"address": f"unix:{sock}", "protocol": "raw"}}
    s.write_config()
    u.start()
    ino = sock.stat().st_ino
    new = u.upgrade()
    # The old master left the socket file to the new one, which serves on it.
    assert sock.stat().st_ino == ino
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(sock))
    c.sendall(b"WHOAMI\n")
    assert c.recv(200).startswith(b"pid=")
    c.close()
    assert int(whoami(s)["pid"]) in s.worker_pids()
    assert {l["name"]: l["socket"] for l in s.status()["listeners"]} == {"main": "bound",
                                                                         "local": "bound"}
    # It is the new master's now: removed when it stops.
    os.kill(new, signal.SIGTERM)
    wait_for(lambda: not alive(new), 30, what="new master stopped")
    assert not sock.exists()


def test_52_06_fdtserver_s_upgrade_and_generations_go_on(upgradable):
    u = upgradable(workers=1).start()
    s = u.s
    assert whoami(s)["generation"] == "1"
    s.reload()
    assert whoami(s)["generation"] == "2"
    old = u.master
    r = subprocess.run([str(FDTSERVER), "-s", "upgrade", "--pid-file", str(s.pid_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    m = wait_for(lambda: re.search(rf"master (\d+) serves in place of master {old}\b", s.log()),
                 30, what="upgrade")
    u.master = int(m.group(1))
    wait_for(lambda: not alive(old), 30, what="old master gone")
    # Numbers are never reused: the new master's first generation is 3.
    assert whoami(s)["generation"] == "3"
    assert s.status()["generations"][0]["id"] == 3
    # The new master holds the pid file's lock: -s stop finds it and waits for its exit.
    r = subprocess.run([str(FDTSERVER), "-s", "stop", "--pid-file", str(s.pid_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not s.pid_path.exists()
    # The lock goes with the process's files, a moment before it is a zombie.
    wait_for(lambda: not alive(u.master), 10, what="new master gone")


def test_52_07_stopping_during_an_upgrade_stops_the_new_master_too(upgradable):
    u = upgradable(workers=1, server={"graceful_timeout": 2})
    u.start()
    s = u.s
    old = u.master
    s.app_keys["init_delay_ms"] = 60000  # the new master's workers never get ready
    s.write_config()
    os.kill(old, signal.SIGUSR2)
    m = wait_for(lambda: re.search(r"INFO (\d+) \S+ master: binary upgrade: taking over", s.log()),
                 30, what="new master started")
    new = int(m.group(1))
    s.signal(signal.SIGTERM)
    assert s.wait_exit(30) == 0
    assert "the binary upgrade is abandoned" in s.log()
    wait_for(lambda: not alive(new), 30, what="new master stopped")
    assert not s.pid_path.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=5).close()


def test_52_08_sockets_from_systemd_go_over_as_systemds(make_server):
    port, spare = free_port(), free_port()
    s = make_server(start=False, workers=1,
                    listeners={"web": {"address": f"127.0.0.1:{port}", "protocol": "raw"}})
    socket_activate(s, [f"127.0.0.1:{port}", f"127.0.0.1:{spare}"], names=["web", "spare"])
    c = LineClient(port, timeout=30)
    assert c.call("WHOAMI").startswith("pid=")
    c.close()
    s.wait_ready()
    inodes = listening_inodes(port)
    old = s.pid
    os.kill(old, signal.SIGUSR2)
    m = wait_for(lambda: re.search(rf"master (\d+) serves in place of master {old}\b", s.log()),
                 30, what="upgrade")
    new = int(m.group(1))
    try:
        assert s.wait_exit(30) == 0
        st = s.status()
        assert st["pid"] == new
        assert [(l["name"], l["socket"]) for l in st["listeners"]] == [("web", "systemd")]
        assert listening_inodes(port) == inodes
        # The unused socket came along too, still systemd's: a reload that names it serves it.
        s.listeners["spare"] = {"address": f"127.0.0.1:{spare}", "protocol": "raw"}
        s.write_config()
        s.reload()
        c = LineClient(spare, timeout=30)
        assert "generation=3" in c.call("WHOAMI")  # 1 the old master's, 2 the new one's
        c.close()
    finally:
        os.kill(new, signal.SIGTERM)
        wait_for(lambda: not alive(new), 30, what="new master stopped")


def test_52_10_an_idle_connection_goes_on_with_the_new_master(upgradable):
    """The old master's retiring worker hands its idle connection (of a protocol that keeps
    no state per connection) to the old master, which passes it to the new master, which
    gives it to one of its workers: the client never notices."""
    u = upgradable(workers=2, threads=2).start()
    s = u.s
    idle = s.client()
    before = dict(kv.split("=") for kv in idle.call("WHOAMI").split())
    old_workers = set(s.worker_pids())
    assert int(before["pid"]) in old_workers
    u.upgrade()  # returns once the old master, and so its workers, are gone
    after = dict(kv.split("=") for kv in idle.call("WHOAMI").split())
    assert int(after["pid"]) in s.worker_pids() and int(after["pid"]) not in old_workers
    assert after["generation"] == "2", after
    assert "a connection of listener" not in s.log()
    idle.close()
