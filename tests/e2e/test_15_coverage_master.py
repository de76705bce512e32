"""The master's control socket and pid file in the cases the other tests leave out: odd
requests (empty, too long, in pieces, CRLF), more clients than it serves, a client that
gives up waiting for its reload, commands refused while the server stops; a control socket or pid file that cannot be made, and `-s` with a
pid file that cannot be read or names another process than the one holding it."""
import fcntl
import os
import signal
import socket
import subprocess

from fdt import FDTSERVER, LineClient, wait_for


def hold_control_clients(s, idle, n=64):
    """Connect n clients (the master's limit) to the control socket, appended to idle."""
    for _ in range(n):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(str(s.ctl_path))
        idle.append(c)


def ctl_raw(s, data, timeout=10):
    """Send data (if any) on a new control connection and read the answer until the master
    closes. The master reads nothing after a request it refuses whole: data is then sent
    only up to where it stops reading, lest the close turn into a reset."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        # Connect blocking: with the master's backlog (16) full of clients it has not
        # accepted yet (a slow master: ThreadSanitizer), a connect with a timeout fails with
        # EAGAIN at once, where a blocking one waits for room.
        c.connect(str(s.ctl_path))
        c.settimeout(timeout)
        if data:
            c.sendall(data)
        out = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return out.decode()
            out += chunk


def start_fails(s):
    """Run the configured master in the foreground: it must refuse to start."""
    r = subprocess.run([str(FDTSERVER), "-c", str(s.conf_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0, r
    return r.stdout + r.stderr


def test_15_30_odd_control_requests(make_server):
    s = make_server(workers=1)
    assert ctl_raw(s, b"\n") == "ERR empty request\n"
    assert ctl_raw(s, b"x" * 511) == "ERR request too long\n"  # 511: all it reads
    assert ctl_raw(s, b"reopen\r\n") == "OK reopening logs\n"
    # A request in two pieces, the second sent once the master has read the first.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(str(s.ctl_path))
        c.sendall(b"stat")
        c.sendall(b"us\r\n")
        assert c.recv(65536).decode().startswith("OK\nmaster pid ")


def test_15_31_too_many_control_clients(make_server):
    s = make_server(workers=1)
    idle = []
    try:
        hold_control_clients(s, idle)
        # The master accepts all 64 before it serves the next one (accept is in order).
        assert ctl_raw(s, b"") == "ERR too many control clients\n"
        for c in idle[1:]:
            c.close()
        del idle[1:]
        wait_for(lambda: s.status(quiet=True), what="control socket serving again")
        # The master stops with a client still connected: the client sees the end.
        s.stop()
        idle[0].settimeout(10)
        assert idle[0].recv(100) == b""
    finally:
        for c in idle:
            c.close()


def test_15_32_a_client_that_stops_waiting_for_its_reload(make_server):
    s = make_server(workers=1)
    s.app_keys["init_delay_ms"] = 1000
    s.write_config()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(str(s.ctl_path))
        c.sendall(b"reload wait\n")
        wait_for(lambda: s.status()["last_reload"]["in_progress"], what="reload under way")
    # The reload goes on without its client; the master answers the next ones.
    wait_for(lambda: s.status()["last_reload"]["ok"] is True, what="the reload done")
    wait_for(lambda: [g["id"] for g in s.status()["generations"]] == [2],
             what="generation 1 gone")


def test_15_33_commands_refused_while_stopping(make_server):
    s = make_server(workers=1)
    c = LineClient(s.port)
    c.send("SLEEP 5000\n")  # long enough to outlast the checks below on a loaded machine
    wait_for(lambda: any(w["threads_busy"] for w in s.workers()), what="request running")
    s.signal(signal.SIGTERM)
    wait_for(lambda: ctl_raw(s, b"status\n").startswith("OK not serving: the server is stopping"),
             what="master stopping")
    assert ctl_raw(s, b"workers +1\n") == "ERR the server is stopping\n"
    assert ctl_raw(s, b"reload\n") == "ERR the server is stopping\n"
    assert c.readline() == "SLEPT 5000"  # the request in flight still ends
    assert s.wait_exit() == 0


def test_15_35_control_socket_that_cannot_be_made(make_server, tmp_path):
    s = make_server(start=False)
    s.server["control_socket"] = "/tmp/" + "c" * 120 + ".sock"
    s.write_config()
    assert "control_socket path too long: /tmp/ccc" in start_fails(s)
    missing = tmp_path / "no" / "such" / "dir" / "ctl.sock"
    s.server["control_socket"] = str(missing)
    s.write_config()
    assert f"control socket {missing}: No such file or directory" in start_fails(s)


def test_15_36_pid_file_that_cannot_be_written(make_server, tmp_path):
    s = make_server(start=False)
    missing = tmp_path / "no" / "such" / "fdt.pid"
    s.server["pid_file"] = str(missing)
    s.write_config()
    out = start_fails(s)
    assert f"pid file {missing}." in out and "No such file or directory" in out, out
    a_file = tmp_path / "plain"
    a_file.write_text("")
    s.server["pid_file"] = str(a_file / "fdt.pid")
    s.write_config()
    assert f"pid file {a_file}/fdt.pid: Not a directory" in start_fails(s)
    a_dir = tmp_path / "piddir"
    a_dir.mkdir()
    s.server["pid_file"] = str(a_dir)
    s.write_config()
    assert f"pid file {a_dir}: Is a directory" in start_fails(s)
    assert os.listdir(tmp_path / "piddir") == []
    assert not [p for p in os.listdir(tmp_path) if p.startswith("piddir.")]  # no temporary left


def test_15_37_dash_s_with_a_pid_file_it_cannot_trust(tmp_path):
    a_file = tmp_path / "plain"
    a_file.write_text("")
    r = subprocess.run([str(FDTSERVER), "-s", "reload", "--pid-file", str(a_file / "x.pid")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr == f"fdtserver: pid file {a_file}/x.pid: Not a directory; nothing signalled\n"
    # A file naming pid 1 but locked by this test: neither is signalled.
    pid_file = tmp_path / "other.pid"
    pid_file.write_text("1\n")
    with open(pid_file, "r+") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = subprocess.run([str(FDTSERVER), "-s", "reload", "--pid-file", str(pid_file)],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr == (f"fdtserver: pid file {pid_file} names pid 1 but is held by pid "
                        f"{os.getpid()}; nothing signalled\n")


def fdtserver(*args):
    return subprocess.run([str(FDTSERVER), *[str(a) for a in args]], capture_output=True,
                          text=True, timeout=60)


def test_15_38_command_line_mistakes(tmp_path):
    r = fdtserver("-c", "/dev/null", "--workers")
    assert r.returncode == 2 and r.stderr.startswith("fdtserver: bad option --workers\n"), r
    r = fdtserver("-s", "bogus", "--pid-file", tmp_path / "x.pid")
    assert r.returncode == 2
    assert r.stderr == "fdtserver: -s takes stop, quit, reload, reopen or upgrade\n"
    empty = tmp_path / "empty.ini"
    empty.write_text("[server]\npid_file =\n")
    r = fdtserver("-s", "reload", "-c", empty)
    assert r.returncode == 2
    assert r.stderr == ("fdtserver: -s needs a pid file: --pid-file F, or -c FILE with "
                        "[server] pid_file\n")


def test_15_39_dash_s_with_a_broken_file_and_options_spelled_out(make_server, tmp_path):
    pid_file = tmp_path / "by-option.pid"
    s = make_server(workers=1, start=False)
    s.server["pid_file"] = ""
    s.write_config()
    s.start(args=("--pid-file", pid_file, "--log-level", "warn"))
    assert int(pid_file.read_text()) == s.pid
    assert " INFO " not in s.log()  # --log-level took effect
    broken = tmp_path / "broken.ini"
    broken.write_text("[server]\nworkers_typo = 3\n")
    # Without --pid-file the broken file is an error; with it, the master is signalled.
    r = fdtserver("-s", "reload", "-c", broken)
    assert r.returncode == 2 and f"{broken}:2: " in r.stderr, r
    r = fdtserver("-s", "reload", "-c", broken, "--pid-file", pid_file)
    assert r.returncode == 0, r
    s.wait_ready(generation=2)
    # quit returns once the master is gone.
    r = fdtserver("-s", "quit", "--pid-file", pid_file)
    assert r.returncode == 0, r
    assert s.proc.poll() is not None


def proc_ids(pid):
    """(uid, gid) of a process, from /proc."""
    st = {k: v.split() for k, v in (line.split(":", 1) for line in
                                    open(f"/proc/{pid}/status").read().splitlines() if ":" in line)}
    return int(st["Uid"][0]), int(st["Gid"][0])


def test_15_40_workers_drop_to_user_and_group(make_server, tmp_path):
    import grp
    import pwd
    if os.geteuid() != 0:
        import pytest
        pytest.skip("needs root")
    nobody = pwd.getpwnam("nobody")
    s = make_server(workers=1, server={"user": "nobody"})
    (pid,) = s.worker_pids()
    assert proc_ids(pid) == (nobody.pw_uid, nobody.pw_gid)  # the user's own group
    assert s.client().call("PING") == "PONG"
    nogroup = grp.getgrnam("nogroup")
    s.server["group"] = "nogroup"
    s.write_config()
    s.reload()
    (pid,) = s.worker_pids()
    assert proc_ids(pid) == (nobody.pw_uid, nogroup.gr_gid)
    # Names that do not exist fail the reload; the workers serving go on.
    for key, name, what in (("user", "no_such_user_x", "unknown user no_such_user_x"),
                            ("group", "no_such_group_x", "unknown group no_such_group_x")):
        s.server[key] = name
        s.write_config()
        r = s.reload(check=False)
        assert r.returncode != 0 and what in r.stdout + r.stderr, r
        s.server[key] = "nobody" if key == "user" else "nogroup"
    assert s.worker_pids() == [pid]


def test_15_41_a_new_worker_killed_before_it_is_ready_fails_the_reload(make_server):
    s = make_server(workers=1)
    (old,) = s.worker_pids()
    s.app_keys["init_delay_ms"] = 3000
    s.write_config()
    s.reload(wait=False)
    starting = wait_for(lambda: s.worker_pids("starting"), what="the new worker starting")
    os.kill(starting[0], signal.SIGKILL)
    wait_for(lambda: s.status()["last_reload"]["ok"] is False, what="the reload failed")
    msg = s.status()["last_reload"]["message"]
    assert f"worker 0 (pid {starting[0]}) killed by signal 9" in msg, msg
    assert "before it was ready" in msg, msg
    assert s.worker_pids() == [old]  # generation 1 serves on
    assert s.client().call("PING") == "PONG"


def backlog(port):
    """The backlog of the socket listening on port, as ss shows it (Send-Q)."""
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=10).stdout.split()
    return int(out[2])


def test_15_42_reloads_that_cannot_take_their_listeners(make_server, tmp_path):
    s = make_server(workers=1)
    main = s.listeners["main"]
    # A changed backlog applies to the kept socket.
    main["backlog"] = 77
    s.write_config()
    assert s.reload().returncode == 0
    assert backlog(s.port) == 77
    # reuseport cannot change on a socket that is kept.
    main["reuseport"] = "yes"
    s.write_config()
    r = s.reload(check=False)
    assert r.returncode != 0
    assert (f"[listen.main] reuseport cannot change on a reload of 127.0.0.1:{s.port}: "
            "restart the server to change it") in r.stdout + r.stderr, r
    del main["reuseport"]
    # A new listener on an address somebody else holds.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        s.listeners["extra"] = {"address": f"127.0.0.1:{busy.getsockname()[1]}",
                                "protocol": "raw"}
        s.write_config()
        r = s.reload(check=False)
    assert r.returncode != 0 and "Address already in use" in r.stdout + r.stderr, r
    del s.listeners["extra"]
    # The configuration file is gone: the error names the file.
    s.conf_path.unlink()
    r = s.reload(check=False)
    assert r.returncode != 0
    assert f"configuration error: {s.conf_path}: " in r.stdout + r.stderr, r
    # A configuration with no listener at all: an error of no file line.
    listeners, s.listeners = s.listeners, {}
    s.write_config()
    r = s.reload(check=False)
    assert r.returncode != 0
    assert "configuration error: no listener: add a [listen.NAME] section or --listen" in \
        r.stdout + r.stderr, r
    s.listeners = listeners
    s.write_config()
    assert s.reload().returncode == 0
    assert s.client().call("PING") == "PONG"


def test_15_43_the_master_raises_its_descriptor_limit_to_the_hard_one(make_server):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, hard // 2)
    s = make_server(workers=1, start=False)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        s.start()  # inherits the low soft limit
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    limits = open(f"/proc/{s.pid}/limits").read()
    line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line
