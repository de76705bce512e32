"""Metrics in the Prometheus text format: `fdtctl metrics` and a `protocol = metrics`
listener, checked with a strict parser of the format; counters move by exactly what the test
did, and never go backwards across a reload."""
import signal
import subprocess

from fdt import FDTCTL, RpcClient, free_port, wait_for
from http_util import HELLO, Client, get, hello_server
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
    # A request is counted once its answer is queued, just after the client may see it.
    wait_for(lambda: http(scrape_ctl(s), "2xx") == 3, what="requests counted")
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

    def scrapes():
        m = scrape_ctl(s)
        return [value(m, "fdt_requests_total", protocol="metrics", **{"class": k})
                for k in ("2xx", "4xx")]

    wait_for(lambda: scrapes() == [1, 2], what="scrapes counted")
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


def health_server(make_server, workers=1):
    return hello_server(make_server, workers=workers, threads=2,
                        server={"health_path": "/healthz"})


def test_53_05_health_path_200_while_serving_503_once_stopping(make_server):
    s = health_server(make_server)
    # Without health_path the application would answer 404: it has no such view.
    r = get(s.port, "/healthz")
    assert (r.status, r.body) == (200, b"ok\n")
    c = Client(s.port)
    assert c.request("GET", "/healthz").status == 200
    # The next request is under way (its head not complete) when the stop begins: the
    # worker does not close a connection in the middle of a request, and answers it.
    c.send(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
    s.signal(signal.SIGTERM)
    s.wait_log("draining (SIGTERM)")
    r = subprocess.run([str(FDTCTL), "--socket", str(s.ctl_path), "status"],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "stopping" in r.stderr
    c.send(b"\r\n")
    r = c.read_response()
    assert (r.status, r.body) == (503, b"stopping\n")
    assert r.header("Connection") == "close"
    c.close()
    assert s.wait_exit() == 0


def test_53_06_health_stays_200_on_a_worker_retired_by_a_reload(make_server):
    s = health_server(make_server)
    c = Client(s.port)
    assert c.request("GET", "/healthz").status == 200
    s.reload()
    # The old worker keeps the idle connection (promise 4) and answers on it; its
    # successor serves, so the server is healthy.
    r = c.request("GET", "/healthz")
    assert r.status == 200 and r.header("Connection") == "close"
    c.close()
    assert get(s.port, "/healthz").status == 200


def test_53_07_jsonrpc_calls_counted_ok_and_error(make_server):
    port = free_port()
    s = make_server(listeners={"rpc": {"address": f"127.0.0.1:{port}", "protocol": "jsonrpc"}})
    c = RpcClient(port)
    for i in range(4):
        assert c.call("echo", {"i": i})["result"] == {"i": i}
    assert c.call("nope")["error"]["code"] == -32601
    assert c.call("fail")["error"]["code"] == -32001
    c.send_raw('{"jsonrpc": "2.0", "method": \n')
    assert c.read()["error"]["code"] == -32700
    c.close()

    def rpc(m, cls):
        return value(m, "fdt_requests_total", protocol="jsonrpc", **{"class": cls})

    wait_for(lambda: rpc(scrape_ctl(s), "error") == 3, what="errors counted")
    m = scrape_ctl(s)
    assert rpc(m, "ok") == 4
    assert value(m, "fdt_request_duration_seconds_count", protocol="jsonrpc") == 7
    assert http(m, "2xx") == 0
    # Each call without txn.begin runs in its own transaction: committed, or rolled back
    # when the method fails.
    assert value(m, "fdt_transactions_total", outcome="committed") == 4
    assert value(m, "fdt_transactions_total", outcome="rolled_back") == 1
