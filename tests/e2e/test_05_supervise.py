"""Supervision: crashes, hangs, back-off, worker count, log reopening."""
import os
import re
import signal

from fdt import alive, wait_for


def test_05_01_crashed_worker_is_replaced_and_logged(make_server):
    s = make_server(workers=2, threads=2)
    before = s.worker_pids()
    c = s.client()
    victim = int(dict(kv.split("=") for kv in c.call("WHOAMI").split())["pid"])
    c.send("CRASH\n")
    assert c.closed_by_server()
    wait_for(lambda: len(s.worker_pids()) == 2 and victim not in s.worker_pids(),
             what="replacement")
    assert re.search(rf"worker \d \(pid {victim}, generation 1\) killed by signal 6 \(ABRT\)",
                     s.log())
    others = [p for p in before if p != victim]
    assert all(alive(p) for p in others)
    assert s.client().call("PING") == "PONG"


def test_05_02_sigkilled_worker_is_replaced(make_server):
    s = make_server(workers=1)
    (pid,) = s.worker_pids()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: s.worker_pids() and s.worker_pids() != [pid], what="replacement")
    assert "killed by signal 9 (KILL)" in s.log()
    assert s.client().call("PING") == "PONG"


def test_05_03_a_worker_that_keeps_dying_is_restarted_with_back_off(make_server, tmp_path):
    flag = tmp_path / "broken"
    s = make_server(workers=1, app_keys={"fail_init_if_exists": str(flag)})
    flag.write_text("x")
    (pid,) = s.worker_pids()
    os.kill(pid, signal.SIGKILL)
    # Each failed start is followed by a longer pause, never a tight loop.
    wait_for(lambda: len(re.findall(r"restarting in (\d+) ms", s.log())) >= 5, timeout=20,
             what="five restarts")
    delays = [int(d) for d in re.findall(r"restarting in (\d+) ms", s.log())]
    assert delays[:5] == [0, 100, 200, 400, 800], delays
    assert "exists" in s.log()  # the reason the worker gave
    flag.unlink()
    wait_for(lambda: len(s.worker_pids()) == 1, timeout=20, what="recovery")
    assert s.client().call("PING") == "PONG"


def test_05_04_a_hung_thread_gets_its_worker_killed_and_replaced(make_server):
    s = make_server(workers=1, threads=2, server={"worker_timeout": 1})
    (pid,) = s.worker_pids()
    c = s.client()
    c.send("HANG\n")
    wait_for(lambda: not alive(pid), timeout=10, what="hung worker killed")
    assert re.search(r"thread \d stuck for [\d.]+s \(worker_timeout 1.0s\): killing it", s.log())
    wait_for(lambda: len(s.worker_pids()) == 1, what="replacement")
    assert s.client().call("PING") == "PONG"


def test_05_05_ttin_and_ttou_change_the_worker_count(make_server):
    s = make_server(workers=1)
    s.signal(signal.SIGTTIN)
    wait_for(lambda: len(s.worker_pids()) == 2, what="two workers")
    s.signal(signal.SIGTTIN)
    wait_for(lambda: len(s.worker_pids()) == 3, what="three workers")
    s.signal(signal.SIGTTOU)
    wait_for(lambda: len(s.worker_pids()) == 2 and len(s.workers()) == 2, what="back to two")
    s.ctl("workers", "-1")
    wait_for(lambda: len(s.workers()) == 1, what="back to one")


def test_05_06_usr1_reopens_the_log_file(make_server, tmp_path):
    log = tmp_path / "error.log"
    s = make_server(workers=1, server={"error_log": str(log)})
    wait_for(lambda: log.exists() and "ready" in log.read_text(), what="log written")
    os.rename(log, str(log) + ".1")
    s.signal(signal.SIGUSR1)
    wait_for(lambda: log.exists(), what="new log file")
    s.signal(signal.SIGHUP)
    wait_for(lambda: "reload done" in log.read_text(), what="lines in the new file")


def test_05_07_workers_exit_when_the_master_is_killed(make_server):
    s = make_server(workers=2)
    pids = s.worker_pids()
    s.proc.kill()
    s.proc.wait()
    wait_for(lambda: not any(alive(p) for p in pids), what="orphans gone")


def test_05_08_a_worker_stopped_from_outside_is_replaced_with_a_warning(make_server):
    """A worker that drains and exits cleanly because someone outside sent it SIGTERM is
    replaced, and the master says so as a warning (it logged an error for a clean exit)."""
    s = make_server(workers=1, threads=1)
    (pid,) = s.worker_pids()
    os.kill(pid, signal.SIGTERM)
    line = s.wait_log(f"worker 0 (pid {pid}, generation 1) exited with status 0; restarting")
    assert re.search(rf"WARN .*worker 0 \(pid {pid}, generation 1\) exited with status 0; "
                     r"restarting", s.log()), line
    wait_for(lambda: len(s.worker_pids()) == 1 and s.worker_pids() != [pid],
             what="a new worker")
    c = s.client()
    assert c.call("PING") == "PONG"
    c.close()
