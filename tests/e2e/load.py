"""Load generator for the reload tests (promise 4): bounded concurrent clients on new and
reused connections, requests with bodies, every answer checked.

One retry is allowed, and counted: a reused keep-alive connection that the server closed
while idle, before any byte of the answer (idle_close_race, RFC 9112 section 9.3.1). The
request is then sent again, once, on a new connection. Anything else is a failure: a
refusal, a reset or timeout on a new connection, a timeout anywhere, a wrong or partial
answer, or a failure of the retry itself.

The clients honour what the server advertises (RFC 9112 section 9.3, and the Keep-Alive
header): an HTTP connection is not reused once it has been idle for the `Keep-Alive:
timeout=N` of its last answer (such a connection is closed and a new one made, counted as
`expired`), so that a client thread starved of CPU on a loaded machine for longer than the
advertised time does not count as a failure of the server. A request the server lost still
shows: the server would close that connection only at its own keep-alive deadline, after the
client sent within the advertised time."""
import json
import random
import threading
import time

from fdt import LineClient, RpcClient, idle_close_race, wait_for
from http_util import Client, build


def random_body(rnd):
    n = rnd.randrange(0, 3000)
    body = bytes(rnd.getrandbits(8) for _ in range(min(n, 64))) * (n // 64 + 1)
    return n, body[:n]


class LineBody:
    """The line application's BODY request, answered with the size and byte sum."""

    name = "line"
    client = LineClient
    clients = 8
    close_ratio = 0.4

    @staticmethod
    def request(rnd):
        n, body = random_body(rnd)
        return f"BODY {n}\n".encode() + body, f"GOT {n} {sum(body) & 0xffffffff}"

    @staticmethod
    def read(c):
        return c.readline()

    @staticmethod
    def wrong(answer, want):
        return None if answer == want else f"wrong answer {answer!r} != {want!r}"

    @staticmethod
    def must_close(answer):
        return False


class RpcEcho:
    """lineapp's JSON-RPC echo method: params come back as the result."""

    name = "JSON-RPC"
    client = RpcClient
    clients = 8
    close_ratio = 0.2

    @staticmethod
    def request(rnd):
        n = rnd.randrange(0, 2000)
        params = {"n": n, "s": "".join(rnd.choice("abcxyz") for _ in range(min(n, 300)))}
        call_id = rnd.getrandbits(40)
        msg = {"jsonrpc": "2.0", "method": "echo", "params": params, "id": call_id}
        return (json.dumps(msg) + "\n").encode(), (call_id, params)

    @staticmethod
    def read(c):
        return c.read()

    @staticmethod
    def wrong(answer, want):
        call_id, params = want
        ok = answer.get("id") == call_id and answer.get("result") == params
        return None if ok else f"wrong answer {answer!r} for id {call_id}"

    @staticmethod
    def must_close(answer):
        return False


class HttpEcho:
    """apps/hello: GET / or POST /echo with a body, with keep-alive."""

    name = "HTTP"
    client = Client
    clients = 6
    close_ratio = 0.3

    @staticmethod
    def request(rnd):
        n, body = random_body(rnd)
        if n % 3 == 0:
            return build("GET", "/"), b"Hello, world!"
        return build("POST", "/echo", body=body), body

    @staticmethod
    def read(c):
        return c.read_response()

    @staticmethod
    def wrong(r, want):
        return None if r.status == 200 and r.body == want else f"wrong answer {r!r}"

    @staticmethod
    def must_close(r):
        return r.header("Connection") == "close"

    @staticmethod
    def keep_alive(r):
        """The idle time after which the answer's connection may not be reused (seconds)."""
        v = r.header("Keep-Alive") or ""
        for part in v.split(","):
            k, _, n = part.strip().partition("=")
            if k.strip().lower() == "timeout" and n.strip().isdigit():
                return float(n)
        return None


class Load:
    """Concurrent clients of one protocol (LineBody or HttpEcho) until the block ends.

    After the block: `ok` answers checked, `retried` idle-close retries, `failures` the
    rest, each described."""

    def __init__(self, port, proto, clients=None):
        self.port = port
        self.proto = proto
        self.clients = clients or proto.clients
        self.stop = threading.Event()
        self.ok = 0
        self.retried = 0
        self.expired = 0
        self.failures = []
        self.lock = threading.Lock()

    def exchange(self, c, payload):
        """Send payload on c (a new connection if None) and read the answer; returns
        (answer, connection). Raises on any failure but the one retry allows."""
        if c is None:
            c = self.proto.client(self.port, timeout=10)
        try:
            c.send(payload)
            return self.proto.read(c), c
        except OSError as e:
            c.close()
            if not idle_close_race(c, e):
                raise
        with self.lock:
            self.retried += 1
        c = self.proto.client(self.port, timeout=10)
        try:
            c.send(payload)
            return self.proto.read(c), c
        except BaseException:
            c.close()
            raise

    def run_client(self, seed):
        rnd = random.Random(seed)
        c = None
        idle_limit = None  # Keep-Alive: timeout of c's last answer
        answered_at = 0.0
        keep_alive = getattr(self.proto, "keep_alive", None)
        while not self.stop.is_set():
            payload, want = self.proto.request(rnd)
            if c is not None and idle_limit is not None and \
                    time.monotonic() - answered_at >= idle_limit:
                c.close()  # idle past what the server advertised: not reused
                c = None
                with self.lock:
                    self.expired += 1
            reused = c is not None
            try:
                answer, c = self.exchange(c, payload)
            except Exception as e:  # noqa: BLE001 - every failure is recorded
                with self.lock:
                    self.failures.append(f"{'reused' if reused else 'new'}: {e!r}")
                if c:
                    c.close()
                c = None
                continue
            answered_at = time.monotonic()
            idle_limit = keep_alive(answer) if keep_alive else None
            wrong = self.proto.wrong(answer, want)
            with self.lock:
                if wrong:
                    self.failures.append(wrong)
                else:
                    self.ok += 1
            if self.proto.must_close(answer) or rnd.random() < self.proto.close_ratio:
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
        stuck = [t for t in self.threads if t.is_alive()]
        if stuck:
            self.failures.append(f"{len(stuck)} clients still running 30 s after the end")

    def report(self, what):
        line = (f"{what}: {self.ok} {self.proto.name} requests answered, {self.retried} "
                f"idle-close retries, {len(self.failures)} failures, {self.expired} connections "
                f"not reused past their Keep-Alive timeout")
        print(line)
        return line


def reload_under_load(s, reloads, proto, port=None):
    """reloads reloads of s, one after another, while Load(proto) runs on port (s.port by
    default); nothing may fail."""
    with Load(port or s.port, proto) as load:
        wait_for(lambda: load.ok > 50, what="load running")
        for _ in range(reloads):
            r = s.reload(check=False)
            assert r.returncode == 0, r.stderr
        time.sleep(0.2)
    load.report(f"{reloads} reloads")
    assert not load.failures, load.failures[:10]
    assert load.ok > reloads
    assert s.status()["last_reload"]["reloads_ok"] == reloads
    return load
