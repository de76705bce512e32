"""Command lines of fdtctl and fdtserver: worker counts, --version and --help, what
fdtserver --check finds, and fdtctl status's exit status (issue #12)."""
import signal
import subprocess

from fdt import APPS, BUILD, FDTCTL, FDTSERVER, FdtServer, wait_for


def run(*cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=10)


def ready_workers(s, n):
    """Exactly n workers, all ready, in a single active generation that wants n."""
    (g,) = s.status()["generations"]
    return (g["workers_wanted"] == n and len(g["workers"]) == n
            and all(w["state"] == "ready" for w in g["workers"]))


def test_09_01_workers_changes_by_exactly_n_or_sets_n(make_server):
    s = make_server(workers=1)
    r = s.ctl("workers", "+3")
    assert "4 workers (was 1)" in r.stdout
    wait_for(lambda: ready_workers(s, 4), what="four workers")
    r = s.ctl("workers", "-2")
    assert "2 workers (was 4)" in r.stdout
    wait_for(lambda: ready_workers(s, 2), what="two workers")
    r = s.ctl("workers", "3")
    assert "3 workers (was 2)" in r.stdout
    wait_for(lambda: ready_workers(s, 3), what="three workers")
    assert s.client().call("PING") == "PONG"


def test_09_02_workers_out_of_range_changes_nothing(make_server):
    s = make_server(workers=2)
    for arg in ("0", "-2", "+500", "many"):
        r = s.ctl("workers", arg, check=False)
        assert r.returncode != 0 and r.stderr.startswith("ERR"), (arg, r)
    assert s.status()["generations"][0]["workers_wanted"] == 2
    assert len(s.worker_pids()) == 2


def test_09_03_fdtctl_version_and_help_do_not_connect(tmp_path):
    nowhere = tmp_path / "none.sock"
    r = run(FDTCTL, "--socket", nowhere, "--version")
    assert r.returncode == 0 and r.stdout.startswith("fdtctl ") and not r.stderr
    r = run(FDTCTL, "--socket", nowhere, "--help")
    assert r.returncode == 0 and not r.stderr
    for option in ("--socket", "--config", "--version", "--help", "workers +N | -N | N"):
        assert option in r.stdout
    assert not nowhere.exists()


def test_09_04_fdtserver_version_and_help_do_not_start(make_server):
    s = make_server(start=False, workers=1)
    r = run(FDTSERVER, "-c", s.conf_path, "--version")
    assert r.returncode == 0 and r.stdout.startswith("fdtserver ") and not r.stderr
    r = run(FDTSERVER, "-c", s.conf_path, "--help")
    assert r.returncode == 0 and not r.stderr
    for option in ("--config", "--listen", "--workers", "--set", "--check", "--version", "-s "):
        assert option in r.stdout
    assert not s.pid_path.exists() and not s.ctl_path.exists()


def test_09_05_fdtserver_txn_is_dispatched_before_the_server(make_server):
    s = make_server(start=False, workers=1)
    r = run(FDTSERVER, "txn", "list")
    assert r.returncode == 2 and "-c FILE is required" in r.stderr
    r = run(FDTSERVER, "txn", "list", "-c", s.conf_path)
    assert r.returncode == 0, r.stderr
    assert not s.pid_path.exists() and not s.ctl_path.exists()


def check(conf, *args):
    return run(FDTSERVER, "-c", conf, "--check", *args)


def test_09_06_check_resolves_user_and_group(tmp_path):
    s = FdtServer(tmp_path, server={"user": "nosuchuser-fdt", "group": "nosuchgroup-fdt"})
    r = check(s.conf_path)
    assert r.returncode == 2 and "configuration ok" not in r.stdout
    assert "[server] user: unknown user nosuchuser-fdt" in r.stderr
    assert "[server] group: unknown group nosuchgroup-fdt" in r.stderr
    s = FdtServer(tmp_path, server={"user": "root", "group": "root"})
    r = check(s.conf_path)
    assert r.returncode == 0 and "configuration ok" in r.stdout, r.stderr


def test_09_07_check_finds_the_application_and_loads_it_in_a_child(tmp_path):
    s = FdtServer(tmp_path, app=str(tmp_path / "gone.so"))
    r = check(s.conf_path)
    assert r.returncode == 2 and f"[app] module {tmp_path / 'gone.so'}: No such file" in r.stderr
    # Present but unloadable: a missing symbol (RTLD_NOW, as a worker loads it) ...
    s = FdtServer(tmp_path, app="lineapp_broken.so")
    r = check(s.conf_path)
    assert r.returncode == 2 and "lineapp_symbol_that_does_not_exist" in r.stderr, r.stderr
    # ... or a shared object that is no application.
    s = FdtServer(tmp_path, app=str(BUILD / "fdt_rm_sqlite.so"))
    r = check(s.conf_path)
    assert r.returncode == 2 and "does not export fdt_app_v1" in r.stderr, r.stderr
    # A bare name would be searched in the library path by dlopen, not here.
    (tmp_path / "here.so").write_bytes((APPS / "lineapp.so").read_bytes())
    r = run(FDTSERVER, "--check", "--listen", "127.0.0.1:0,raw", "--app", "here.so")
    assert r.returncode == 2 and "write a path with a '/'" in r.stderr


def test_09_08_check_finds_the_directory_of_sqlite_databases(tmp_path):
    ini = "[resource.lite]\ndriver = sqlite\npath = {}\n"
    s = FdtServer(tmp_path, extra_ini=ini.format(tmp_path / "nodir" / "x.db"))
    r = check(s.conf_path)
    assert r.returncode == 2
    assert f"[resource.lite] path {tmp_path}/nodir/x.db: directory {tmp_path}/nodir" in r.stderr
    (tmp_path / "nodir").mkdir()
    r = check(s.conf_path)
    assert r.returncode == 0 and "configuration ok" in r.stdout, r.stderr
    assert not (tmp_path / "nodir" / "x.db").exists()  # --check creates nothing


def status_code(s):
    return run(FDTCTL, "--socket", s.ctl_path, "status")


def test_09_09_status_exits_3_while_no_generation_serves(make_server):
    s = make_server(start=False, workers=1, app_keys={"init_delay_ms": 1500})
    s.start(wait=False)
    # Answered, but the first generation is still starting: 3, with the status on stdout.
    r = wait_for(lambda: (lambda r: r if r.returncode != 1 else None)(status_code(s)),
                 what="the control socket")
    assert r.returncode == 3, r
    assert "not serving: the first generation is starting" in r.stderr
    assert "generation 1 starting" in r.stdout
    s.wait_ready()
    r = status_code(s)
    assert r.returncode == 0 and "generation 1 active" in r.stdout and not r.stderr, r
    # Stopping, with a request in flight: not serving any more.
    c = s.client()
    c.send("SLEEP 3000\n")
    wait_for(lambda: any(w["threads_busy"] for g in s.status()["generations"]
                         for w in g["workers"]), what="the request running")
    s.signal(signal.SIGTERM)
    r = wait_for(lambda: (lambda r: r if r.returncode == 3 else None)(
        run(FDTCTL, "--socket", s.ctl_path, "status", "--json")), what="status 3")
    assert "not serving: the server is stopping" in r.stderr
    assert '"state":"stopping"' in r.stdout.replace(" ", "")
    assert c.readline() == "SLEPT 3000"
    assert s.wait_exit() == 0
