"""Metrics in the Prometheus text format: `fdtctl metrics` and a `protocol = metrics`
listener, checked with a strict parser of the format; counters move by exactly what the test
did, and never go backwards across a reload."""
from fdt import free_port, wait_for
from http_util import HELLO, Client, get
from metrics_util import parse, scrape_ctl, value


def metrics_server(make_server, workers=2, server=None):
    s = make_server(app=HELLO, workers=workers, threads=2, server=server, start=False)
    s.metrics_port = free_port()
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"},
                   "metrics": {"address": f"127.0.0.1:{s.metrics_port}",
                               "protocol": "metrics"}}
    s.write_config()
    return s.start()


def http(samples, cls):
    return value(samples, "fdt_requests_total", protocol="http", **{"class": cls})


def hist_count(samples, proto="http"):
    return value(samples, "fdt_request_duration_seconds_count", protocol=proto)


def test_53_01_counters_move_by_exactly_the_requests_made(make_server):
    s = metrics_server(make_server)
    before = scrape_ctl(s)
    c = Client(s.port)
    n = 7
    sent = 0
    for _ in range(n):
        r = c.request("GET", "/")
        assert r.status == 200 and r.body == b"Hello, world!"
    assert c.request("GET", "/missing").status == 404
    assert c.request("GET", "/error/503").status == 503
    c.close()
    # The server counts a request once its answer is queued: wait for the third class.
    wait_for(lambda: http(scrape_ctl(s), "5xx") == http(before, "5xx") + 1, what="5xx counted")
    after = scrape_ctl(s)
    assert http(after, "2xx") - http(before, "2xx") == n
    assert http(after, "4xx") - http(before, "4xx") == 1
    assert http(after, "5xx") - http(before, "5xx") == 1
    assert http(after, "1xx") == http(before, "1xx") and http(after, "3xx") == http(before, "3xx")
    assert hist_count(after) - hist_count(before) == n + 2
    # One connection, made by this test (fdtctl does not go through a listener).
    assert (value(after, "fdt_connections_accepted_total")
            - value(before, "fdt_connections_accepted_total")) == 1
    sent = sum(len(f"GET {p} HTTP/1.1\r\nHost: test\r\n\r\n")
               for p in ["/"] * n + ["/missing", "/error/503"])
    assert value(after, "fdt_received_bytes_total") - value(before, "fdt_received_bytes_total") \
        == sent
    assert value(after, "fdt_sent_bytes_total") > value(before, "fdt_sent_bytes_total")
    assert value(after, "fdt_up") == 1 and value(after, "fdt_generation") == 1
    assert value(after, "fdt_workers", state="ready") == 2
    assert value(after, "fdt_tls_handshakes_total") == 0
    for cause in ("crash", "timeout", "max_requests", "max_memory"):
        assert value(after, "fdt_worker_restarts_total", cause=cause) == 0


def test_53_02_metrics_listener_serves_the_same_format(make_server):
    s = metrics_server(make_server)
    for _ in range(3):
        assert get(s.port, "/").status == 200
    r = get(s.metrics_port, "/metrics")
    assert r.status == 200
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    samples, types = parse(r.body.decode())
    assert types["fdt_request_duration_seconds"] == "histogram"
    assert types["fdt_requests_total"] == "counter"
    assert types["fdt_worker_busy_threads"] == "gauge"
    assert http(samples, "2xx") == 3
    # Scrapes are counted apart from the application's HTTP requests.
    assert value(samples, "fdt_requests_total", protocol="metrics", **{"class": "2xx"}) == 0
    busy = [k for k in samples if k[0] == "fdt_worker_busy_threads"]
    assert len(busy) == 2
    assert get(s.metrics_port, "/").status == 404
    c = Client(s.metrics_port)
    r = c.request("POST", "/metrics", body=b"x")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    c.close()
    wait_for(lambda: value(scrape_ctl(s), "fdt_requests_total", protocol="metrics",
                           **{"class": "4xx"}) == 2, what="scrape errors counted")
    after = scrape_ctl(s)
    assert value(after, "fdt_requests_total", protocol="metrics", **{"class": "2xx"}) == 1
    assert http(after, "2xx") == 3 and http(after, "4xx") == 0


def test_53_03_counters_survive_reloads_and_never_go_back(make_server):
    s = metrics_server(make_server)
    total = 0
    seen = []
    for round_ in range(3):
        for _ in range(5):
            assert get(s.port, "/").status == 200
        total += 5
        wait_for(lambda: http(scrape_ctl(s), "2xx") == total, what="requests counted")
        seen.append(scrape_ctl(s))
        s.reload()
        # The old generation drains and exits meanwhile: its counters are folded in.
        wait_for(lambda: len(s.status()["generations"]) == 1, what="old generation gone")
        seen.append(scrape_ctl(s))
    last = seen[-1]
    assert http(last, "2xx") == total
    assert value(last, "fdt_reloads_total", result="ok") == 3
    assert value(last, "fdt_reloads_total", result="refused") == 0
    assert value(last, "fdt_generations_started_total") == 4
    assert value(last, "fdt_generation") == 4
    assert value(last, "fdt_connections_accepted_total") == total
    for a, b in zip(seen, seen[1:]):
        for key, v in a.items():
            if key[0].endswith("_total") or key[0].endswith(("_bucket", "_count", "_sum")):
                assert b.get(key, 0) >= v, (key, v, b.get(key))


def test_53_04_refused_reload_is_counted(make_server):
    s = metrics_server(make_server, workers=1)
    s.app_keys = {}
    s.server["threads"] = "nonsense"
    s.write_config()
    r = s.reload(check=False)
    assert r.returncode != 0
    m = scrape_ctl(s)
    assert value(m, "fdt_reloads_total", result="refused") == 1
    assert value(m, "fdt_reloads_total", result="ok") == 0
    assert value(m, "fdt_up") == 1 and value(m, "fdt_generation") == 1
