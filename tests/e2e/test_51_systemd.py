"""systemd: the notification protocol (Type=notify / notify-reload, the watchdog), socket
activation (LISTEN_FDS matched to [listen.NAME]), and the unit files of contrib/."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from fdt import FDTCTL, FDTSERVER, ROOT, LineClient, free_port, wait_for
from sd_util import NotifySocket, listening_inodes, socket_activate, socket_inodes


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path / "notify.sock")
    yield n
    n.close()


def notifying_server(make_server, notify, env=None, **kw):
    return make_server(env=dict({"NOTIFY_SOCKET": notify.path}, **(env or {})), **kw)


def test_51_01_ready_reloading_ready_stopping(make_server, notify):
    s = notifying_server(make_server, notify, workers=2)
    i_ready = notify.wait(lambda p, f: f.get("READY") == "1", "READY=1")
    pid, f = notify.messages[i_ready]
    # READY comes from the master, names it, and means serving: a request right after it
    # is answered by a worker of the first generation.
    assert pid == s.pid and f["MAINPID"] == str(s.pid)
    assert "generation 1" in f["STATUS"], f
    c = s.client()
    assert "generation=1" in c.call("WHOAMI")
    c.close()

    # SIGHUP: RELOADING=1 with the time it began, then READY=1 once the new generation serves.
    before = time.monotonic_ns() // 1000
    s.signal(signal.SIGHUP)
    i_rel = notify.wait(lambda p, f: f.get("RELOADING") == "1", "RELOADING=1")
    after = time.monotonic_ns() // 1000
    f = notify.messages[i_rel][1]
    assert before <= int(f["MONOTONIC_USEC"]) <= after, (before, f, after)
    i_ready2 = notify.wait(lambda p, f: f.get("READY") == "1" and "generation 2" in
                           f.get("STATUS", ""), "READY=1 after the reload")
    assert i_ready < i_rel < i_ready2
    c = s.client()
    assert "generation=2" in c.call("WHOAMI")
    c.close()

    # A refused reload: RELOADING, then READY with the reason; generation 2 serves on.
    s.server["threads"] = "nine"
    s.write_config()
    n_before = len(notify.read())
    s.signal(signal.SIGHUP)
    i_refused = notify.wait(lambda p, f: f.get("STATUS", "").startswith("reload refused:"),
                            "STATUS=reload refused")
    assert i_refused >= n_before
    f = notify.messages[i_refused][1]
    assert f.get("READY") == "1" and "threads" in f["STATUS"], f
    assert any(m[1].get("RELOADING") == "1" for m in notify.messages[n_before:i_refused])
    c = s.client()
    assert "generation=2" in c.call("WHOAMI")
    c.close()

    s.signal(signal.SIGTERM)
    notify.wait(lambda p, f: f.get("STOPPING") == "1", "STOPPING=1")
    assert s.wait_exit() == 0
    # Everything came from the main process, as systemd requires by default
    # (NotifyAccess=main), and no WATCHDOG without WATCHDOG_USEC.
    assert {p for p, _ in notify.read()} == {s.pid}
    assert not notify.with_key("WATCHDOG")


def test_51_02_watchdog_pings_from_the_master_loop(make_server, notify):
    # WATCHDOG_PID set to this master (as systemd sets it): exec keeps the shell's pid.
    s = make_server(start=False, workers=1)
    s.env.update(NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="300000")
    s.logf = open(s.log_path, "ab")
    s.proc = subprocess.Popen(["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" -c "$1"',
                               str(FDTSERVER), str(s.conf_path)],
                              stdout=s.logf, stderr=subprocess.STDOUT, env=s.env)
    s.wait_ready()
    wait_for(lambda: len(notify.with_key("WATCHDOG", "1")) >= 4, what="4 WATCHDOG=1 pings")
    assert {p for p, _ in notify.with_key("WATCHDOG")} == {s.pid}


def test_51_03_watchdog_for_another_pid_is_not_ours(make_server, notify):
    s = notifying_server(make_server, notify, workers=1,
                         env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    notify.wait(lambda p, f: f.get("READY") == "1", "READY=1")
    s.reload()
    s.signal(signal.SIGTERM)
    notify.wait(lambda p, f: f.get("STOPPING") == "1", "STOPPING=1")
    s.wait_exit()
    assert not notify.with_key("WATCHDOG")


def test_51_04_the_environment_of_systemd_is_not_passed_to_the_application(make_server, notify):
    # The master keeps NOTIFY_SOCKET and WATCHDOG_* to itself; the application (which might
    # run programs) sees none of them.
    s = notifying_server(make_server, notify, workers=1, env={"WATCHDOG_USEC": "5000000"})
    c = s.client()
    for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"):
        assert c.call(f"GETENV {var}") == "ENV -", var
    c.close()


def activated_server(make_server, port, name="web", extra=None, **kw):
    listeners = {name: {"address": f"127.0.0.1:{port}", "protocol": "raw"}}
    listeners.update(extra or {})
    return make_server(start=False, listeners=listeners, **kw)


def first_call(port, line="WHOAMI"):
    """The connection that makes systemd-socket-activate start the server: it waits in the
    accept queue of the passed socket until a worker takes it."""
    c = LineClient(port, timeout=30)
    answer = c.call(line)
    c.close()
    return answer


def test_51_05_socket_activation_by_name(make_server):
    port = free_port()
    s = activated_server(make_server, port, workers=2)
    socket_activate(s, [f"127.0.0.1:{port}"], names=["web"])
    assert first_call(port).startswith("pid=")
    st = s.wait_ready()
    assert [(l["name"], l["socket"]) for l in st["listeners"]] == [("web", "systemd")]
    # The server did not bind: the one socket listening on the port is the one systemd
    # passed (descriptor 3 of the master), and every worker accepts on that one.
    inodes = listening_inodes(port)
    assert len(inodes) == 1
    passed = int(re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{s.pid}/fd/3")).group(1))
    assert inodes == {passed}
    for pid in s.worker_pids():
        assert passed in socket_inodes(pid)
    assert "socket passed by systemd" in s.log()

    # Reloads keep it, with a changed configuration too.
    s.server["threads"] = 3
    s.write_config()
    for _ in range(2):
        s.reload()
    assert listening_inodes(port) == {passed}
    for pid in s.worker_pids():
        assert passed in socket_inodes(pid)
    assert "generation=3" in first_call(port)
    # Stopping closes the master's copy; systemd's socket (and its file) is systemd's.
    assert s.stop() == 0


def test_51_06_unnamed_socket_matched_by_address_and_bound_listeners_beside(make_server):
    port, other = free_port(), free_port()
    s = activated_server(make_server, port, name="main",
                         extra={"admin": {"address": f"127.0.0.1:{other}", "protocol": "raw"}})
    socket_activate(s, [f"127.0.0.1:{port}"])
    assert first_call(port).startswith("pid=")
    st = s.wait_ready()
    assert {l["name"]: l["socket"] for l in st["listeners"]} == {"main": "systemd",
                                                                  "admin": "bound"}
    assert first_call(other).startswith("pid=")


def test_51_07_named_socket_on_another_address_is_refused(make_server):
    port, wrong = free_port(), free_port()
    s = activated_server(make_server, wrong)
    socket_activate(s, [f"127.0.0.1:{port}"], names=["web"])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except OSError:
        pass
    assert s.wait_exit() != 0
    log = s.log()
    assert f"[listen.web] the socket systemd passed as web is bound to 127.0.0.1:{port}" in log
    assert f"not to address 127.0.0.1:{wrong}" in log


def test_51_08_unmatched_socket_is_kept_for_a_later_reload(make_server):
    port, spare = free_port(), free_port()
    s = activated_server(make_server, port)
    socket_activate(s, [f"127.0.0.1:{port}", f"127.0.0.1:{spare}"], names=["web", "spare"])
    assert first_call(port).startswith("pid=")
    s.wait_ready()
    s.wait_log(f"the socket 127.0.0.1:{spare} named spare passed by systemd matches no "
               "[listen.NAME]")
    # A reload that adds [listen.spare] serves the socket systemd passed (binding the
    # address would fail: systemd holds it).
    s.listeners["spare"] = {"address": f"127.0.0.1:{spare}", "protocol": "raw"}
    s.write_config()
    s.reload()
    assert "generation=2" in first_call(spare)
    st = s.status()
    assert {l["name"]: l["socket"] for l in st["listeners"]} == {"web": "systemd",
                                                                  "spare": "systemd"}


def unit_text(name, tmp_path):
    """contrib/NAME with the installed paths replaced by the build's binaries."""
    text = (ROOT / "contrib" / name).read_text()
    return (text.replace("/usr/local/bin/fdtserver", str(FDTSERVER))
                .replace("/usr/local/bin/fdtctl", str(FDTCTL)))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_51_09_unit_files_verify(tmp_path):
    for name in ("fdtserver.service", "fdtserver.socket"):
        (tmp_path / name).write_text(unit_text(name, tmp_path))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        str(tmp_path / "fdtserver.service"), str(tmp_path / "fdtserver.socket")],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # Everything systemd-analyze said about our units (it may also talk about units of the
    # machine it runs on, which are not ours).
    ours = [line for line in out.splitlines() if "fdtserver" in line]
    assert not ours, out
    service = (ROOT / "contrib" / "fdtserver.service").read_text()
    for want in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Type=notify-reload",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                 "ProtectHome=yes", "RestrictAddressFamilies="):
        assert want in service, want
    assert "FileDescriptorName=" in (ROOT / "contrib" / "fdtserver.socket").read_text()
    # The hardening as systemd scores it (0 best, 10 worst): "OK" is at most 2.0.
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                        str(tmp_path / "fdtserver.service")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr


def test_51_10_a_passed_socket_that_is_not_a_stream_is_refused(make_server):
    port = free_port()
    s = activated_server(make_server, port)
    socket_activate(s, [f"127.0.0.1:{port}"], names=["web"], datagram=True)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.sendto(b"x", ("127.0.0.1", port))
    assert s.wait_exit() != 0
    assert "passed by systemd is not a TCP or unix stream socket" in s.log()


def test_51_11_notifications_wait_for_a_busy_manager(make_server, tmp_path):
    # A manager that reads nothing for a while: the kernel queues a few datagrams (the
    # watchdog's pings fill them), the master keeps the rest in order and sends them once
    # the manager reads again, without ever blocking (the reload is served meanwhile).
    notify = NotifySocket(tmp_path / "busy.sock", paused=True)
    try:
        s = notifying_server(make_server, notify, workers=1, env={"WATCHDOG_USEC": "20000"})
        s.reload()
        c = s.client()
        assert "generation=2" in c.call("WHOAMI")
        c.close()
        notify.resume()
        i2 = notify.wait(lambda p, f: f.get("READY") == "1" and "generation 2" in
                         f.get("STATUS", ""), "READY=1 of the reload")
        msgs = notify.read()
        i1 = next(i for i, (_, f) in enumerate(msgs) if f.get("READY") == "1")
        ir = next(i for i, (_, f) in enumerate(msgs) if f.get("RELOADING") == "1")
        assert i1 < ir < i2
        assert "generation 1" in msgs[i1][1]["STATUS"]
        wait_for(lambda: len(notify.with_key("WATCHDOG")) > len(
            [m for m in msgs if "WATCHDOG" in m[1]]), what="pings again")
        assert "a notification is lost" not in s.log()
    finally:
        notify.close()
