"""Promises 1, 2 and 6: processes, threads, no proxying."""
import os
import socket
import threading
from collections import Counter
from pathlib import Path

from fdt import LineClient, free_port, proc_children, wait_for


def socket_inodes(pid):
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


def tcp_states():
    """inode -> TCP state (hex) for every IPv4/IPv6 TCP socket."""
    out = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            f = line.split()
            out[int(f[9])] = f[3]
    return out


def test_02_01_workers_times_threads(make_server):
    s = make_server(workers=2, threads=3)
    pids = s.worker_pids()
    assert len(pids) == 2
    assert sorted(proc_children(s.pid)) == pids
    for pid in pids:
        # `threads` application threads plus the worker's event-loop thread (sanitizer
        # builds add threads of their own, so count ours by name).
        names = [Path(f"/proc/{pid}/task/{t}/comm").read_text().strip()
                 for t in os.listdir(f"/proc/{pid}/task")]
        assert sorted(n for n in names if n.startswith("fdt-app-")) == \
            ["fdt-app-0", "fdt-app-1", "fdt-app-2"]
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "fdt-worker"
    seen = set()
    for _ in range(30):
        c = s.client()
        who = dict(kv.split("=") for kv in c.call("WHOAMI").split())
        seen.add(int(who["pid"]))
        assert 0 <= int(who["thread"]) < 3
        assert who["generation"] == "1"
        c.close()
    assert seen == set(pids)


def test_02_02_master_never_holds_a_client_connection(make_server):
    s = make_server(workers=2, threads=2)
    clients = [s.client() for _ in range(20)]
    for c in clients:
        assert c.call("PING") == "PONG"
    states = tcp_states()
    master = socket_inodes(s.pid)
    # Only listening sockets (state 0A): never an accepted, established connection.
    assert all(states.get(i, "0A") == "0A" for i in master), \
        [states.get(i) for i in master]
    established_in_workers = sum(
        1 for pid in s.worker_pids() for i in socket_inodes(pid) if states.get(i) == "01")
    assert established_in_workers == 20
    for c in clients:
        c.close()


def test_02_03_application_is_loaded_in_workers_only(make_server):
    s = make_server(workers=2)
    assert "lineapp.so" not in Path(f"/proc/{s.pid}/maps").read_text()
    for pid in s.worker_pids():
        assert "lineapp.so" in Path(f"/proc/{pid}/maps").read_text()


def test_02_04_a_blocked_handler_stalls_no_other_connection(make_server):
    s = make_server(workers=1, threads=4)
    slow = s.client()
    slow.send("SLEEP 5000\n")
    wait_for(lambda: any(w["threads_busy"] == 1 for w in s.workers()), what="sleeper busy")
    # While one thread sleeps, other connections of the same worker are served.
    for _ in range(3):
        c = s.client()
        for _ in range(20):
            assert c.call("PING") == "PONG"
        c.close()
    slow.sock.settimeout(0.05)
    try:
        early = slow.sock.recv(100)
    except socket.timeout:
        early = b""
    assert early == b"", "the sleeper answered before the others: nothing was concurrent"
    slow.sock.settimeout(10)
    assert slow.readline() == "SLEPT 5000"


def test_02_05_unix_and_ipv6_listeners(make_server, tmp_path):
    port6 = free_port()
    path = tmp_path / "app.sock"
    s = make_server(listeners={
        "v4": {"address": f"127.0.0.1:{free_port()}", "protocol": "raw"},
        "v6": {"address": f"[::1]:{port6}", "protocol": "raw"},
        "unix": {"address": f"unix:{path}", "protocol": "raw"},
    })
    with socket.create_connection(("::1", port6)) as c6:
        c6.sendall(b"PING\n")
        assert c6.recv(10) == b"PONG\n"
    with socket.socket(socket.AF_UNIX) as cu:
        cu.connect(str(path))
        cu.sendall(b"PING\n")
        assert cu.recv(10) == b"PONG\n"
    s.stop()
    assert not path.exists(), "the unix socket file outlived the server"


def test_02_06_fair_spread_and_no_thundering_herd(make_server):
    s = make_server(workers=2, threads=2)
    per_pid = Counter()
    n = 300
    for _ in range(n):
        c = s.client()
        who = dict(kv.split("=") for kv in c.call("WHOAMI").split())
        per_pid[who["pid"]] += 1
        c.close()
    counts = sorted(per_pid.values())
    assert len(counts) == 2 and counts[1] <= 1.2 * counts[0], per_pid
    ws = s.workers()
    wakeups = sum(w["listen_wakeups"] for w in ws)
    accepted = sum(w["connections_accepted"] for w in ws)
    assert accepted >= n
    assert wakeups <= 1.1 * accepted, (wakeups, accepted)


def test_02_07_concurrent_clients_all_answered(make_server):
    s = make_server(workers=2, threads=4)
    errors = []

    def run(i):
        try:
            c = LineClient(s.port)
            for j in range(50):
                assert c.call(f"ECHO {i}-{j}") == f"{i}-{j}"
            c.close()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    ts = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_02_08_reuseport_listener(make_server):
    s = make_server(workers=2, threads=2, start=False)
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "raw",
                            "reuseport": "yes"}}
    s.write_config()
    s.start()
    pids = set()
    for _ in range(60):
        c = s.client()
        who = dict(kv.split("=") for kv in c.call("WHOAMI").split())
        pids.add(int(who["pid"]))
        c.close()
    # Each worker listens on a socket of its own; the kernel spreads connections.
    assert pids == set(s.worker_pids())
    master = socket_inodes(s.pid)
    states = tcp_states()
    assert not any(states.get(i) == "0A" for i in master), "the master's anchor must not listen"
    for pid in s.worker_pids():
        assert any(states.get(i) == "0A" for i in socket_inodes(pid))
    # Reload keeps serving; stop refuses new connections.
    assert s.reload().returncode == 0
    assert s.client().call("PING") == "PONG"
    s.stop()
    with socket.socket() as c:
        assert c.connect_ex(("127.0.0.1", s.port)) != 0


def test_02_09_workers_drop_privileges(make_server):
    import pwd
    import shutil
    import tempfile
    from fdt import APPS
    nobody = pwd.getpwnam("nobody")
    # The worker loads the app after dropping to nobody: put it where nobody can read it.
    d = tempfile.mkdtemp(prefix="fdt-nobody-")
    os.chmod(d, 0o755)
    shutil.copy(APPS / "lineapp.so", d)
    s = make_server(workers=1, server={"user": "nobody"}, app=os.path.join(d, "lineapp.so"))
    (pid,) = s.worker_pids()
    status = Path(f"/proc/{pid}/status").read_text()
    uid = [line for line in status.splitlines() if line.startswith("Uid:")][0].split()[1:]
    assert all(int(u) == nobody.pw_uid for u in uid)
    assert s.client().call("PING") == "PONG"
    s.stop()
    shutil.rmtree(d)


def without_runtime(names):
    """names without _init/_fini and, in a coverage build, libgcov's symbols (__gcov_*, and
    GCC 12's mangle_path), which stay exported there so that one dump covers every object of
    the process (fdt__exit, docs/coverage.md)."""
    from fdt import BUILD
    coverage = "FDT_COVERAGE 1" in (BUILD / "fdt_config.h").read_text()
    return [n for n in names if n not in ("_init", "_fini")
            and not (coverage and (n.startswith("__gcov_") or n == "mangle_path"))]


def test_02_10_libfdt_exports_only_fdt_symbols():
    import subprocess
    from fdt import BUILD
    out = subprocess.run(["nm", "-D", "--defined-only", str(BUILD / "libfdt.so")],
                         capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert "fdt_conn_write" in names
    stray = [n for n in without_runtime(names) if not n.startswith("fdt_")]
    assert not stray, stray


def maps(pid):
    return Path(f"/proc/{pid}/maps").read_text()


def check_drivers_in_workers_only(s):
    master = maps(s.pid)
    for lib in ("libpq", "libsqlite3", "fdt_rm_"):
        assert lib not in master, f"the master maps {lib}"
    pids = s.worker_pids()
    assert len(pids) == 2
    for pid in pids:
        assert "fdt_rm_sqlite.so" in maps(pid)
        assert "libsqlite3" in maps(pid)
        assert "fdt_rm_postgresql.so" not in maps(pid)


def test_02_11_database_drivers_are_loaded_in_workers_only(make_server, tmp_path):
    # The drivers are modules (fdt_rm_*.so) that a worker loads at start; libfdt.so, which
    # the master maps, links neither libpq nor SQLite. The same after a reload.
    s = make_server(workers=2,
                    extra_ini=f"[resource.x]\ndriver = sqlite\npath = {tmp_path}/x.db\n")
    check_drivers_in_workers_only(s)
    old = s.worker_pids()
    assert "generation 2" in s.reload().stdout
    wait_for(lambda: all(not os.path.exists(f"/proc/{p}") for p in old), what="old workers gone")
    assert set(s.worker_pids()).isdisjoint(old)
    check_drivers_in_workers_only(s)



def test_02_12_driver_modules_export_one_entry_symbol():
    import subprocess
    from fdt import BUILD
    for mod in ("fdt_rm_postgresql.so", "fdt_rm_sqlite.so"):
        out = subprocess.run(["nm", "-D", "--defined-only", str(BUILD / mod)],
                             capture_output=True, text=True, check=True).stdout
        names = [line.split()[-1] for line in out.splitlines() if line.strip()]
        assert without_runtime(names) == ["fdt_rm_driver_v1"], names
