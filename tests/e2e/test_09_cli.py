"""Command lines of fdtctl and fdtserver: worker counts, --version and --help (issue #12)."""
import subprocess

from fdt import FDTCTL, FDTSERVER, wait_for


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
