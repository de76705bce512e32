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


def leave_no_free_fd(pid):
    """Lower pid's descriptor limit so that it has none left: every descriptor it holds is
    below the limit and no number below the limit is free. Returns the old limits."""
    fds = open_fds(pid)
    assert fds == list(range(len(fds))), fds  # no hole: the limit leaves none free
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(fds), old[1]))
    return old


def test_16_01_a_worker_that_cannot_be_respawned_is_tried_again(make_server):
    s = make_server(workers=1)
    (old,) = s.worker_pids()
    limits = leave_no_free_fd(s.pid)
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
    leave_no_free_fd(s.pid)
    limits = resource.prlimit(s.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (limits[0] + 1, limits[1]))
    assert s.ctl("workers", "+1").stdout == "OK 2 workers (was 1)\n"
    assert s.log().count("socketpair: Too many open files") >= 2, s.log()
    resource.prlimit(s.pid, resource.RLIMIT_NOFILE, (limits[1], limits[1]))
    s.wait_ready()
    assert len(s.worker_pids()) == 2
