"""The scoreboard has 512 slots (4 x 128, FDT_MAX_SLOTS): room for the generations a reload
may keep alive at once (two draining, one serving, and one starting while fewer drain). What
can still fill it is recycling: a worker replaced for max_requests drains beside its
successor, and with a long request in flight it stays (up to graceful_timeout) while its
successor is replaced in turn. A worker that then asks for a successor gets none: the master
says why, the worker serves on and asks again later, and gets one once a slot is free."""
import os
import signal
import time

import pytest

from fdt import sanitizer_build, wait_for

SLOTS = 512  # FDT_MAX_SLOTS (src/proc/proc.h)

# 512 worker processes: too many for a sanitizer's runtime on this machine (each maps its
# shadow memory); the plain build, whose coverage CI measures, runs it.
pytestmark = pytest.mark.skipif(sanitizer_build(), reason="512 workers under a sanitizer")


def whoami(s):
    c = s.client()
    who = dict(kv.split("=") for kv in c.call("WHOAMI").split())
    return c, int(who["pid"])


def test_25_01_workers_recycled_with_every_scoreboard_slot_taken_serve_on(make_server):
    s = make_server(workers=128, threads=2,
                    server={"max_requests": 1, "graceful_timeout": 300, "worker_timeout": 600,
                            "ready_timeout": 120})
    s.wait_ready(timeout=120)
    held = {}
    full = "scoreboard full: cannot start another worker"
    try:
        # Park a long SLEEP on every worker met (each asks for a successor at its first
        # request; once the successor is ready it drains, kept alive by the SLEEP), until a
        # successor finds no slot. Bounded in connections and in time.
        deadline = time.monotonic() + 180
        for tries in range(40 * SLOTS):
            if full in s.log() or time.monotonic() > deadline:
                break
            c, pid = whoami(s)
            if pid in held:
                c.close()
            else:
                c.send("SLEEP 300000\n")
                held[pid] = c
        s.wait_log(full)
        assert len(held) <= SLOTS, len(held)
        assert len(s.workers()) == SLOTS
        # No successor: the generation's workers serve on, and the master is still there.
        for _ in range(20):
            c, pid = whoami(s)
            assert c.call("PING") == "PONG"
            c.close()
        assert s.proc.poll() is None
        # A worker that got no successor asks again (every 10 s), and slots freed (draining
        # workers ended) go to the next asks.
        s.wait_log("asking again for a successor", timeout=30)
        n = s.log().count("spawned worker")
        for pid in list(held)[:8]:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: s.log().count("spawned worker") > n, 30, what="a successor spawned")
    finally:
        for c in held.values():
            c.close()
        s.signal(signal.SIGTERM)
        s.wait_log("graceful stop")
        s.signal(signal.SIGTERM)  # a second TERM: now, not after the sleeps
        wait_for(lambda: s.proc.poll() is not None, 60, what="the master exits")
