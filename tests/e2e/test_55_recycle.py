"""Worker recycling (issue 11): [server] max_requests (with jitter) and max_worker_memory
replace a worker gracefully: its successor starts, and only once it is ready does the old
one drain, so no request fails. Counted in `fdtctl status` and in the metrics."""
from fdt import wait_for
from http_util import Client, get, hello_server
from load import HttpEcho, Load
from metrics_util import scrape_ctl, value


def restarts(s):
    return s.status()["worker_restarts"]


def test_55_01_max_requests_recycles_without_a_failed_request(make_server):
    s = hello_server(make_server, workers=2, threads=2,
                     server={"max_requests": 20, "max_requests_jitter": 5})
    first = set(s.worker_pids())
    with Load(s.port, HttpEcho) as load:
        # At least 100 requests, and as many more as four recycles take.
        wait_for(lambda: load.ok >= 100 and restarts(s)["max_requests"] >= 4, timeout=60,
                 what="100 requests and 4 recycles")
    load.report("max_requests = 20")
    assert not load.failures, load.failures[:10]
    r = restarts(s)
    assert r["max_requests"] >= 4
    assert r["crash"] == 0 and r["timeout"] == 0 and r["max_memory"] == 0
    wait_for(lambda: len(s.worker_pids()) == 2 and not s.workers("draining"),
             what="two workers again")
    assert not first & set(s.worker_pids())
    assert "recycled: " in s.log() and "max_requests 20" in s.log()
    m = scrape_ctl(s)
    assert value(m, "fdt_worker_restarts_total", cause="max_requests") >= r["max_requests"]
    assert value(m, "fdt_worker_restarts_total", cause="crash") == 0
    # Every request answered is counted once, recycled workers' included.
    wait_for(lambda: value(scrape_ctl(s), "fdt_requests_total", protocol="http",
                           **{"class": "2xx"}) == load.ok, what="every answer counted")
    text = s.ctl("status").stdout
    assert "worker restarts: crash 0 timeout 0 max_requests" in text


def test_55_02_kept_connection_survives_its_worker_recycling(make_server):
    """A keep-alive connection whose worker is recycled is not closed under the client: it
    is answered, and the answer says Connection: close when the worker retires."""
    s = hello_server(make_server, workers=1, threads=2, server={"max_requests": 5})
    (old,) = s.worker_pids()
    c = Client(s.port)

    def one_more():
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == b"Hello, world!"
        return r.header("Connection") == "close"

    # Requests on the one connection until the worker retires: each is answered.
    wait_for(one_more, timeout=30, interval=0.01, what="Connection: close from the old worker")
    assert c.closed_by_server()
    c.close()
    assert restarts(s)["max_requests"] == 1
    wait_for(lambda: s.worker_pids() and old not in s.worker_pids(), what="successor alone")
    assert get(s.port, "/").status == 200


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_55_03_max_worker_memory_recycles_a_growing_worker(make_server):
    s = hello_server(make_server, workers=1, threads=2)
    # The limit: 48 MiB over what a worker of this build takes (sanitizers take more).
    limit = rss_bytes(s.worker_pids()[0]) + (48 << 20)
    s.server["max_worker_memory"] = limit
    s.write_config()
    s.reload()
    wait_for(lambda: len(s.worker_pids()) == 1 and not s.workers("draining"),
             what="the new generation alone")
    (old,) = s.worker_pids()
    grown = 0
    # 16 MiB a request, until the worker has asked for its successor (the memory check runs
    # once a second, so it may serve a few more meanwhile).
    while restarts(s)["max_memory"] == 0:
        assert grown < 1024, "no recycle after growing by 1 GiB"
        r = get(s.port, "/grow/16")
        assert r.status == 200 and r.body == b"grew 16"
        grown += 16
    wait_for(lambda: s.worker_pids() and old not in s.worker_pids(), timeout=30,
             what="the old worker replaced")
    assert get(s.port, "/").status == 200
    assert "over max_worker_memory" in s.log()
    assert restarts(s) == {"crash": 0, "timeout": 0, "max_requests": 0, "max_memory": 1}
    m = scrape_ctl(s)
    assert value(m, "fdt_worker_restarts_total", cause="max_memory") == 1
    # The successor has not grown: it stays.
    (new,) = s.worker_pids()
    assert get(s.port, "/").status == 200
    assert s.worker_pids() == [new] and rss_bytes(new) < limit


def test_55_04_a_worker_whose_successor_failed_asks_again(make_server):
    """The successor of a recycled worker dies while it starts: the worker serves on, and
    10 s later (RECYCLE_ASK_AGAIN_MS) asks again, so it is still replaced. It used to ask
    only once and then served forever past max_requests."""
    import os
    import signal
    s = make_server(workers=1, server={"max_requests": 3}, app_keys={"init_delay_ms": 500})
    (old,) = s.worker_pids()
    c = s.client()
    for _ in range(3):
        assert c.call("PING") == "PONG"
    (succ,) = wait_for(lambda: s.worker_pids("starting"), what="its successor starting")
    os.kill(succ, signal.SIGKILL)
    s.wait_log("while starting as a successor")
    assert c.call("PING") == "PONG"  # it serves on meanwhile
    s.wait_log("asking again for a successor", timeout=30)

    def replaced():
        pids = s.worker_pids()
        return pids if pids and old not in pids else None

    (new,) = wait_for(replaced, timeout=30, what="the worker replaced by its second successor")
    assert new != succ
    assert restarts(s)["max_requests"] == 2  # asked twice, recycled once
