"""fdtctl: status and control."""
import subprocess

from fdt import FDTCTL, wait_for


def test_07_01_status_shows_generations_workers_and_counters(make_server):
    s = make_server(workers=2, threads=3)
    c = s.client()
    for _ in range(5):
        c.call("PING")
    st = s.status()
    assert st["pid"] == s.pid and st["state"] == "running"
    (g,) = st["generations"]
    assert g["id"] == 1 and g["state"] == "active" and g["threads"] == 3
    assert sorted(w["pid"] for w in g["workers"]) == s.worker_pids()
    for w in g["workers"]:
        assert w["state"] == "ready" and w["heartbeat_age_s"] < 5
    assert sum(w["connections_open"] for w in g["workers"]) == 1
    assert sum(w["requests"] for w in g["workers"]) >= 1
    text = s.ctl("status").stdout
    assert "generation 1 active" in text and str(s.worker_pids()[0]) in text
    assert "last reload: none" in text


def test_07_02_reload_and_stop_through_fdtctl(make_server):
    s = make_server(workers=1)
    r = s.ctl("reload", "--wait")
    assert "generation 2" in r.stdout
    st = s.status()
    assert st["last_reload"]["ok"] is True and st["last_reload"]["reloads_ok"] == 1
    s.ctl("stop")
    assert s.wait_exit() == 0


def test_07_03_errors(make_server, tmp_path):
    s = make_server(workers=1)
    r = s.ctl("frobnicate", check=False)
    assert r.returncode != 0 and "unknown command" in r.stderr
    r = subprocess.run([str(FDTCTL), "--socket", str(tmp_path / "none.sock"), "status"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "cannot connect" in r.stderr


def test_07_04_concurrent_reload_requests_coalesce(make_server):
    s = make_server(workers=1)
    procs = [subprocess.Popen([str(FDTCTL), "--socket", str(s.ctl_path), "reload", "--wait"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    st = s.status()
    assert 2 <= st["last_reload"]["reloads_ok"] <= 4
    wait_for(lambda: len(s.status()["generations"]) == 1, what="old generations gone")
