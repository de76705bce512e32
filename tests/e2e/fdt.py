"""Test harness: start the real fdtserver binary, talk to it, signal it, read its log."""
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("FDT_BUILD", "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
FDTSERVER = BUILD / "src" / "bin" / "fdtserver"
FDTCTL = BUILD / "src" / "bin" / "fdtctl"
APPS = BUILD / "tests" / "apps"


_PORTS_GIVEN = set()


def sanitizer_build():
    """Whether fdtserver links a sanitizer runtime (make asan, make tsan)."""
    out = subprocess.run(["ldd", str(FDTSERVER)], capture_output=True, text=True).stdout
    return "libasan" in out or "libtsan" in out


def free_port():
    """A loopback port nobody listens on (allocated by binding port 0), and never one this
    process was given before: the kernel may hand out the port just released again, and two
    listeners of one server then collided (a CI run failed on "address ... is also used")."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError("no loopback port left that this test run has not used")


def free_port_pair():
    """Two consecutive loopback ports nobody listens on (for a program that takes PORT and
    uses PORT + 1 as well)."""
    while True:
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port


def wait_for(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ClosedByServer(ConnectionError):
    """The server closed the connection (EOF) while an answer was awaited."""


class StreamClient:
    """One TCP connection to the server with a receive buffer; the protocol clients below
    (line, JSON-RPC, HTTP in http_util.py) add their framing on top.

    It keeps what a retry decision needs: `answered` counts the answers read whole on this
    connection, `received` every byte the server sent, and `received_at_send` that count
    when the last request was sent (see idle_close_race)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.answered = 0
        self.received = 0
        self.received_at_send = 0

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.received_at_send = self.received
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ClosedByServer("closed by server")
        self.received += len(chunk)
        self.buf += chunk

    def closed_by_server(self, timeout=5.0):
        """True once the server has closed the connection (EOF or reset), with nothing
        more sent."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def idle_close_race(client, err):
    """True for the one failure a client may retry without counting it as lost: the server
    closed an idle keep-alive connection before it read the request (RFC 9112 section
    9.3.1, RFC 9110 section 9.2.2). That is: the connection had already served an answer,
    not one byte of the answer to this request arrived, and the send failed with EPIPE or
    ECONNRESET or the read saw EOF or ECONNRESET. A timeout, a refusal, a new connection
    or a partial answer is never this case."""
    return (client.answered > 0 and client.received == client.received_at_send
            and not client.buf
            and isinstance(err, (BrokenPipeError, ConnectionResetError, ClosedByServer)))


class LineClient(StreamClient):
    """A client of the line-protocol test application."""

    def readline(self):
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        self.answered += 1
        return line.decode()

    def call(self, line):
        self.send(line + "\n")
        return self.readline()


class RpcClient(LineClient):
    """A JSON-RPC 2.0 client: one JSON object a line each way."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        super().__init__(port, host, timeout)
        self.next_id = 0

    def send_raw(self, data):
        self.send(data)

    def read(self):
        return json.loads(self.readline())

    def call(self, method, params=None):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "method": method, "id": self.next_id}
        if params is not None:
            msg["params"] = params
        self.send(json.dumps(msg) + "\n")
        answer = self.read()
        assert answer["id"] == self.next_id and answer["jsonrpc"] == "2.0", answer
        return answer


class FdtServer:
    """One fdtserver master with its workers, configured through an INI file."""

    def __init__(self, tmp_path, app="lineapp.so", workers=1, threads=4, server=None,
                 app_keys=None, listeners=None, extra_ini="", env=None):
        self.dir = Path(tmp_path)
        self.port = free_port()
        self.ctl_path = self.dir / "ctl.sock"
        self.pid_path = self.dir / "fdt.pid"
        self.log_path = self.dir / "fdt.log"
        self.conf_path = self.dir / "fdt.ini"
        self.app = app if os.path.isabs(str(app)) else str(APPS / app)
        self.server = {"workers": workers, "threads": threads, "graceful_timeout": 10,
                       "control_socket": str(self.ctl_path), "pid_file": str(self.pid_path),
                       "log_level": "info"}
        self.server.update(server or {})
        self.app_keys = app_keys or {}
        self.listeners = listeners or {"main": {"address": f"127.0.0.1:{self.port}",
                                                "protocol": "raw"}}
        self.extra_ini = extra_ini
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.write_config()

    def write_config(self, **changes):
        lines = ["[server]"] + [f"{k} = {v}" for k, v in self.server.items()]
        for name, kv in self.listeners.items():
            lines.append(f"[listen.{name}]")
            lines += [f"{k} = {v}" for k, v in kv.items()]
        lines.append("[app]")
        lines.append(f"module = {self.app}")
        lines += [f"{k} = {v}" for k, v in self.app_keys.items()]
        self.conf_path.write_text("\n".join(lines) + "\n" + self.extra_ini)

    def start(self, wait=True, args=()):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(FDTSERVER), "-c", str(self.conf_path), *args],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, generation=None, timeout=15.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"fdtserver exited with {self.proc.returncode}:\n{self.log()}")
            st = self.status(quiet=True)
            if not st:
                return None
            for g in st["generations"]:
                if g["state"] == "active" and (generation is None or g["id"] >= generation):
                    ws = [w for w in g["workers"] if w["state"] == "ready"]
                    if len(ws) >= g["workers_wanted"]:
                        return st
            return None
        return wait_for(ready, timeout, what="workers ready")

    def ctl(self, *args, check=True, timeout=60):
        r = subprocess.run([str(FDTCTL), "--socket", str(self.ctl_path), *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"fdtctl {args} failed ({r.returncode}): {r.stderr}")
        return r

    def status(self, quiet=False):
        r = subprocess.run([str(FDTCTL), "--socket", str(self.ctl_path), "status", "--json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode not in (0, 3):  # 3: answered, but no generation is serving
            if quiet:
                return None
            raise AssertionError(r.stderr)
        return json.loads(r.stdout)

    def workers(self, state=None):
        """(generation, worker) dicts of every worker, optionally of one state."""
        st = self.status()
        out = []
        for g in st["generations"]:
            for w in g["workers"]:
                if state is None or w["state"] == state:
                    out.append(dict(w, generation=g["id"], generation_state=g["state"]))
        return out

    def worker_pids(self, state="ready"):
        return sorted(w["pid"] for w in self.workers(state))

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, wait=True, check=True):
        args = ["reload", "--wait"] if wait else ["reload"]
        return self.ctl(*args, check=check)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=10.0):
        return wait_for(lambda: text in self.log(), timeout, what=f"log line {text!r}")

    def wait_exit(self, timeout=20.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"fdtserver did not exit within {timeout}s:\n{self.log()[-3000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        return self.proc.returncode if self.proc else None

    def client(self, port=None):
        return LineClient(port or self.port)


def proc_children(pid):
    """Direct children of pid."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append(int(d.name))
    return out


def kill_tree(pid, timeout=30.0):
    """SIGKILL pid and its children at once, as a machine failing would, and wait until
    each has let go of its descriptors (a zombie has; a process still being torn down, as
    a big sanitizer address space can be for a while, still holds the listening sockets).
    pid is stopped first, so that no child it forks is missed. Returns the pids killed."""
    os.kill(pid, signal.SIGSTOP)
    tree = [pid] + proc_children(pid)
    for p in tree:
        os.kill(p, signal.SIGKILL)
    wait_for(lambda: not any(alive(p) for p in tree), timeout, what="the killed tree gone")
    return tree


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
