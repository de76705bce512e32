"""HTTP across graceful stop and reload: a request in flight is answered with
Connection: close, idle keep-alive connections are closed, and no request is lost."""
import random
import signal
import threading
import time

from fdt import wait_for
from http_util import Client, build, hello_server


def test_10_60_graceful_stop_answers_in_flight_with_connection_close(make_server):
    s = hello_server(make_server, workers=1, threads=2)
    busy = Client(s.port)
    assert busy.request("GET", "/").status == 200  # a keep-alive connection, reused
    busy.send(build("GET", "/sleep/1000"))
    idle = Client(s.port)
    assert idle.request("GET", "/").status == 200
    wait_for(lambda: any(w["threads_busy"] for w in s.workers()), what="view busy")
    s.signal(signal.SIGTERM)
    # The idle keep-alive connection is closed with nothing sent.
    assert idle.closed_by_server(timeout=5)
    r = busy.read_response()
    assert r.status == 200 and r.body == b"slept 1000"
    assert r.header("Connection") == "close"
    assert busy.closed_by_server(timeout=5)
    assert s.wait_exit() == 0


class HttpLoad:
    """Concurrent HTTP clients, some reusing keep-alive connections, some not, with and
    without bodies. As with any HTTP/1.1 server, a reused connection that closes before
    any byte of the answer arrived was not served, and the request is sent again on a new
    connection; every other failure counts."""

    def __init__(self, port, clients=6):
        self.port = port
        self.clients = clients
        self.stop = threading.Event()
        self.ok = 0
        self.retried = 0
        self.failures = []
        self.lock = threading.Lock()

    def run_client(self, seed):
        rnd = random.Random(seed)
        c = None
        while not self.stop.is_set():
            n = rnd.randrange(0, 3000)
            body = bytes(rnd.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
            body = body[:n]
            reused = c is not None
            try:
                if c is None:
                    c = Client(self.port, timeout=10)
                if n % 3 == 0:
                    c.send(build("GET", "/"))
                    want = b"Hello, world!"
                else:
                    c.send(build("POST", "/echo", body=body))
                    want = body
                r = c.read_response()
            except (ConnectionError, OSError) as e:
                partial = c.buf if c else b""
                if c:
                    c.close()
                c = None
                if reused and not partial:
                    with self.lock:
                        self.retried += 1
                    continue
                with self.lock:
                    self.failures.append(f"{'reused' if reused else 'new'}: {e!r}")
                continue
            if r.status != 200 or r.body != want:
                with self.lock:
                    self.failures.append(f"wrong answer {r!r}")
            else:
                with self.lock:
                    self.ok += 1
            if r.header("Connection") == "close":
                c.close()
                c = None
            elif rnd.random() < 0.3:
                c.close()
                c = None
        if c:
            c.close()

    def __enter__(self):
        self.threads = [threading.Thread(target=self.run_client, args=(i,))
                        for i in range(self.clients)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_10_61_no_http_request_lost_across_reloads(make_server):
    s = hello_server(make_server, workers=2, threads=4)
    reloads = 25
    with HttpLoad(s.port) as load:
        wait_for(lambda: load.ok > 50, what="load running")
        for _ in range(reloads):
            r = s.reload(check=False)
            assert r.returncode == 0, r.stderr
        time.sleep(0.2)
    print(f"{reloads} reloads: {load.ok} HTTP requests answered, {load.retried} idle-close "
          f"retries, {len(load.failures)} failures")
    assert not load.failures, load.failures[:10]
    assert load.ok > reloads
    assert s.status()["last_reload"]["reloads_ok"] == reloads
