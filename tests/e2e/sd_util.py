"""What systemd does for a service, played by the tests: a notification socket that reads
sd_notify(3) datagrams with the sender's credentials, and systemd-socket-activate."""
import os
import re
import socket
import struct
import subprocess
import threading
from pathlib import Path

from fdt import FDTSERVER, wait_for

# Variables the server needs from the test's environment (sanitizers, fault points) that
# systemd-socket-activate does not pass on by itself.
PASS_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS", "FDT_FAULT_FILE")


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET. A thread reads every datagram as it
    arrives, as systemd does (the kernel queues only net.unix.max_dgram_qlen datagrams,
    often 10, for a reader that does not read); `messages` holds (sender pid, {VAR: VALUE})
    in arrival order."""

    def __init__(self, path, paused=False):
        self.path = str(path)
        self.reading = threading.Event()
        if not paused:
            self.reading.set()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            if not self.reading.wait(0.1):
                continue
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid, _, _ = struct.unpack("iII", cdata[:12])
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
            with self.lock:
                self.messages.append((pid, fields))

    def resume(self):
        """Start reading (a manager that was busy)."""
        self.reading.set()

    def read(self):
        """A copy of the messages received so far."""
        with self.lock:
            return list(self.messages)

    def wait(self, pred, what, timeout=20.0):
        """Wait for a message for which pred(pid, fields) holds; returns its index."""
        def found():
            for i, (pid, f) in enumerate(self.read()):
                if pred(pid, f):
                    return i + 1
            return None
        return wait_for(found, timeout, what=what) - 1

    def with_key(self, key, value=None):
        return [(p, f) for p, f in self.read()
                if key in f and (value is None or f[key] == value)]

    def close(self):
        self.done.set()
        self.thread.join(5)
        self.sock.close()


def socket_activate(s, listens, names=None, env=None, datagram=False):
    """Start s (an FdtServer, not started) the way systemd's socket activation does:
    systemd-socket-activate binds listens (["127.0.0.1:PORT", ...]), waits for the first
    connection and then executes fdtserver with LISTEN_FDS. Returns the Popen."""
    cmd = ["systemd-socket-activate"] + (["--datagram"] if datagram else [])
    for a in listens:
        cmd += ["-l", a]
    if names:
        cmd.append("--fdname=" + ":".join(names))
    for k in PASS_ENV:
        if k in s.env:
            cmd += ["-E", f"{k}={s.env[k]}"]
    for k, v in (env or {}).items():
        cmd += ["-E", f"{k}={v}"]
    cmd += [str(FDTSERVER), "-c", str(s.conf_path)]
    s.logf = open(s.log_path, "ab")
    s.proc = subprocess.Popen(cmd, stdout=s.logf, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=s.env)
    wait_for(lambda: "Listening on" in s.log() or s.proc.poll() is not None,
             what="systemd-socket-activate listening")
    return s.proc


def listening_inodes(port):
    """Inodes of the TCP sockets listening on 127.0.0.1:port (from /proc/net/tcp)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, state, inode = f[1], f[3], f[9]
        if state == "0A" and local == f"0100007F:{port:04X}":
            out.add(int(inode))
    return out


def socket_inodes(pid):
    """Inodes of the sockets process pid holds open."""
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(fd))
        except OSError:
            continue
        if m:
            out.add(int(m.group(1)))
    return out
