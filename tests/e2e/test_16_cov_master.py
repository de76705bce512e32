"""The master in the cases the other tests leave out: descriptors running out while it
supervises (a respawn, a reload, a binary upgrade), reloads queued behind a failing one,
binary upgrades refused or failing before the new master runs, a retiring master told to
stop, a new master that drops a listener of the old one, the start failing (no error log,
no descriptors), workers that cannot switch user, and a control client gone before its
answer."""
import os
import re
import resource
import shutil
import signal
import socket
import subprocess

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
