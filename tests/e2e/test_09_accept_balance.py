"""Accept balancing between workers sharing one listening socket: a burst of connects is
spread over the workers instead of landing on whichever woke first (with one thread per
worker, one worker taking all would halve the throughput of CPU-bound work)."""
import socket
import time

from fdt import LineClient, wait_for


def pid_of(c):
    reply = c.call("WHOAMI")
    return int(reply.split()[0].split("=")[1])


def test_09_01_a_burst_of_connections_is_spread_over_the_workers(make_server):
    s = make_server(workers=2, threads=1)
    wait_for(lambda: len(s.worker_pids()) == 2, what="two workers ready")
    worst = []
    for _ in range(8):
        conns = [LineClient(s.port) for _ in range(8)]
        counts = {}
        for c in conns:
            pid = pid_of(c)
            counts[pid] = counts.get(pid, 0) + 1
        worst.append(max(counts.values()))
        for c in conns:
            c.close()
        wait_for(lambda: all(w["connections_open"] == 0 for w in s.workers()),
                 what="connections closed")
        time.sleep(0.05)
    # Balanced would be 4 each; allow some slack for accepts racing, never 7/1 or 8/0.
    assert max(worst) <= 6, worst


def test_09_02_a_lone_connection_is_not_stranded_by_the_balance(make_server):
    """One worker holds several long-lived connections, the other none: a new connection
    that wakes the busy one (which then pauses accepting) is still served at once — the
    other worker is woken only by new arrivals, so the paused one takes it after its pause."""
    s = make_server(workers=2, threads=2)
    wait_for(lambda: len(s.worker_pids()) == 2, what="two workers ready")
    held = [LineClient(s.port) for _ in range(6)]
    for c in held:
        assert c.call("PING") == "PONG"
    for _ in range(20):
        t0 = time.monotonic()
        c = LineClient(s.port)
        assert c.call("PING") == "PONG"
        assert time.monotonic() - t0 < 1.0
        c.close()
        time.sleep(0.02)
    for c in held:
        c.close()
