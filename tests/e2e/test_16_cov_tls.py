"""TLS and listening sockets, the paths test_50 and test_51 leave out: TLS files that are
directories or a key of another type than the certificate; the debug log line of each
handshake (version, cipher, resumption); a client that resets or closes during the
handshake, or sends garbage after it; a stale unix socket file left by a dead server
(removed and bound again) next to a live one (never removed); the file of a unix listener
that a reload drops; a socket systemd passed that a reload drops and a later one adds
again."""
import hashlib
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import time

from fdt import APPS, BUILD, FDTSERVER, free_port, wait_for
from sd_util import listening_inodes, socket_activate
from test_40_python import py_server
from test_50_tls import HELLO, curl, pki, read_all, tls_listener, tls_server  # noqa: F401 (pki: a fixture)
from test_51_systemd import activated_server, first_call

# The start of a ClientHello record (a 512-byte handshake message announced, 2 bytes sent).
PARTIAL_HELLO = b"\x16\x03\x01\x02\x00\x01"


def check_fails(make_server, pki, **listener):
    s = tls_server(make_server, pki, start=False, **listener)
    r = subprocess.run([str(FDTSERVER), "-c", str(s.conf_path), "--check"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r
    return r.stderr


def test_16_01_a_directory_or_a_key_of_another_type_is_refused_by_name(make_server, pki,
                                                                       tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    for key in ("certificate", "private_key", "ca"):
        extra = {"verify_client": "require"} if key == "ca" else {}
        out = check_fails(make_server, pki, **{key: str(d)}, **extra)
        assert f"[listen.main] {key} {d}: Is a directory" in out, out
    # An RSA key beside an EC certificate: OpenSSL keeps keys per type, so the key loads
    # and only the pair check finds that it is not the certificate's.
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", "rsa.key"], cwd=tmp_path, check=True,
                   capture_output=True)
    out = check_fails(make_server, pki, private_key=str(tmp_path / "rsa.key"))
    assert (f"[listen.main] private_key {tmp_path}/rsa.key does not match certificate "
            f"{pki}/server.pem") in out, out


def test_16_02_the_debug_log_names_version_cipher_and_resumption(make_server, pki):
    s = tls_server(make_server, pki, server={"log_level": "debug"})
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    session = None
    for expect_resumed in (False, True):
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                data = b""
                while chunk := c.recv(65536):
                    data += chunk
                assert data.endswith(b"Hello, world!"), data
                assert c.session_reused == expect_resumed
                session = c.session
    done = wait_for(lambda: re.findall(r"TLS handshake done: (.*)", s.log()) if
                    len(re.findall(r"TLS handshake done", s.log())) >= 2 else None,
                    what="two handshake lines")
    assert done == ["TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
                    "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256 resumed"], done


def test_16_03_a_client_that_resets_or_closes_during_the_handshake(make_server, pki):
    from metrics_util import scrape_ctl, value
    s = tls_server(make_server, pki, threads=1)
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(PARTIAL_HELLO)
        wait_for(lambda: value(scrape_ctl(s), "fdt_connections_open") == 1,
                 what="the connection accepted")
        # SO_LINGER 0: close sends a reset instead of a FIN.
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.wait_log("TLS handshake failed: Connection reset by peer")
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(PARTIAL_HELLO)
        c.shutdown(socket.SHUT_WR)
        data, how = read_all(c)
    assert data == b"" and how == "eof"
    s.wait_log("TLS handshake failed: the client closed the connection")
    assert curl(s.port, "/", ca=pki / "ca.pem").stdout == "Hello, world!"
    m = scrape_ctl(s)
    assert value(m, "fdt_tls_handshake_errors_total") == 2, m


def test_16_04_garbage_after_the_handshake_closes_that_connection_only(make_server, pki):
    s = tls_server(make_server, pki, threads=1)
    pids = s.worker_pids()
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    # TLS 1.2: the handshake ends before wrap_socket returns (no TLS 1.3 tickets follow it),
    # and an alert's record says that it is one.
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
        c = ctx.wrap_socket(raw, server_hostname="localhost")
        # An application data record the server cannot decrypt, written under the session.
        with socket.socket(fileno=os.dup(c.fileno())) as under:
            under.settimeout(10)
            under.sendall(b"\x17\x03\x03\x00\x20" + bytes(range(32)))
            data, how = read_all(under)
        c.close()
    # At most a fatal alert (content type 21) before the close; never an answer.
    assert how in ("eof", "reset") and (data == b"" or data[0] == 21), data
    assert curl(s.port, "/", ca=pki / "ca.pem").stdout == "Hello, world!"
    assert s.worker_pids() == pids


def unix_call(path, line=b"WHOAMI\n"):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(10)
        c.connect(str(path))
        c.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(4096)
            assert chunk, data
            data += chunk
        return data.decode()


def test_16_05_unix_socket_files_stale_live_and_dropped(make_server, tmp_path):
    path = tmp_path / "app.sock"
    # A server that died left its socket file: nobody listens on it.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    assert path.is_socket()
    unix = {"address": f"unix:{path}", "protocol": "raw"}
    s = make_server(listeners={"local": unix})
    assert unix_call(path).startswith("pid=")
    inode = path.stat().st_ino

    # A second server on the same path while the first listens there: refused, and the
    # live server's file is left alone.
    t = make_server(start=False, listeners={"local": unix})
    t.start(wait=False)
    assert t.wait_exit() != 0
    assert f"[listen.local] bind unix:{path}: Address already in use" in t.log(), t.log()
    assert path.stat().st_ino == inode
    assert unix_call(path).startswith("pid=")

    # A reload that drops the unix listener removes its file.
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "raw"}}
    s.write_config()
    s.reload()
    assert not path.exists()
    assert first_call(s.port).startswith("pid=")


def test_16_06_a_systemd_socket_dropped_by_a_reload_is_kept_for_the_next(make_server):
    port, spare = free_port(), free_port()
    s = activated_server(make_server, port,
                         extra={"spare": {"address": f"127.0.0.1:{spare}", "protocol": "raw"}})
    socket_activate(s, [f"127.0.0.1:{port}", f"127.0.0.1:{spare}"], names=["web", "spare"])
    assert first_call(port).startswith("pid=")
    s.wait_ready()
    passed = listening_inodes(spare)
    assert len(passed) == 1 and first_call(spare).startswith("pid=")
    spare_cfg = s.listeners.pop("spare")
    s.write_config()
    s.reload()
    assert [l["name"] for l in s.status()["listeners"]] == ["web"]
    # The master still holds systemd's socket: the address stays taken, not re-bindable.
    assert listening_inodes(spare) == passed
    s.listeners["spare"] = spare_cfg
    s.write_config()
    s.reload()
    assert "generation=3" in first_call(spare)
    assert {l["name"]: l["socket"] for l in s.status()["listeners"]} == {"web": "systemd",
                                                                         "spare": "systemd"}
    assert listening_inodes(spare) == passed


def test_16_07_a_client_that_resets_in_the_middle_of_a_large_answer(make_server, pki):
    # /big/16 streams 16 MiB: the client reads the start, stops reading (the server's TLS
    # writes then wait for the socket), and resets the connection; the server's next write
    # fails, and that connection alone is closed.
    s = tls_server(make_server, pki, threads=2, app=str(APPS / "lineapp.so"))
    pids = s.worker_pids()
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c = ctx.wrap_socket(raw, server_hostname="localhost")
    c.sendall(b"GET /big/16 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = b""
    while len(got) < 256 * 1024:
        chunk = c.recv(65536)
        assert chunk, got[:200]
        got += chunk
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # a reset, with the rest of the answer unread
    r = curl(s.port, "/big/1", "-o", "/dev/null", "-w", "%{size_download}", ca=pki / "ca.pem")
    assert r.stdout == str(1 << 20), r
    assert s.worker_pids() == pids
    # Both connections end: the reset one too, however far the view had got.
    from metrics_util import scrape_ctl, value
    wait_for(lambda: value(scrape_ctl(s), "fdt_connections_open") == 0, timeout=20,
             what="no connection open")


def test_16_08_a_bad_request_over_tls_ends_with_close_notify(make_server, pki):
    """A malformed request over TLS is answered 400, and the connection then ends the TLS
    way (close_notify before the TCP FIN, while the server drops what the client still
    sends): the client reads a clean end, not an unexpected EOF."""
    s = tls_server(make_server, pki, threads=2)
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with socket.create_connection(("127.0.0.1", s.port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as c:
            c.sendall(b"GET / HTTP/1.1 junk\r\nHost: localhost\r\n\r\nmore after it")
            data = b""
            while True:
                chunk = c.recv(65536)  # an EOF without close_notify raises SSLEOFError
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 400 "), data[:200]


def test_16_09_output_queued_on_a_tls_connection_for_a_slow_reader(make_server, pki):
    """A raw TLS connection whose answer (16 MiB written at once, fdt_conn_write) is queued
    while the client does not read: the connection waits for the socket (EPOLLOUT through
    TLS) and the client, reading slowly, gets every byte in order, then the answer line."""
    s = tls_server(make_server, pki, threads=2, app=str(APPS / "lineapp.so"),
                   server={"max_output": "32m"}, protocol="raw")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    n = 16 << 20  # more than the socket buffers hold
    raw = socket.create_connection(("127.0.0.1", s.port), timeout=20)
    c = ctx.wrap_socket(raw, server_hostname="localhost")
    c.sendall(f"FLOOD {n}\n".encode())
    time.sleep(0.5)  # the server fills the socket and queues the rest
    want = bytes(range(251)) * (n // 251 + 1)
    got = bytearray()
    while len(got) < n + len(f"FLOODED {n} 0\n"):
        chunk = c.recv(1 << 20)
        assert chunk, len(got)
        got += chunk
    assert bytes(got[:n]) == want[:n]
    assert bytes(got[n:]) == f"FLOODED {n} 0\n".encode()
    c.close()


KEYUPDATE = BUILD / "tests" / "tools" / "tls_keyupdate"
FLOOD_PATTERN = bytes(i % 251 for i in range(251))


def test_16_20_a_key_update_while_the_output_is_backed_up(make_server, pki):
    """A TLS 1.3 client asks for a key update while it has not read a 7.5 MB answer (its
    receive buffer is small: the server's socket is full, most of the answer waits in the
    connection). The server reads the key update and the next command while its output is
    backed up, and answers the update with its own (OpenSSL sends it with its next write):
    the client gets every byte under the old keys and the new, then the next command's
    answer, and a clean close."""
    s = tls_server(make_server, pki, app="lineapp.so", protocol="raw")
    n = 7_500_000
    r = subprocess.run([str(KEYUPDATE), str(s.port), "1000", f"FLOOD {n}\\n", "PING\\nQUIT\\n"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout[:n] == (FLOOD_PATTERN * (n // 251 + 1))[:n]
    assert r.stdout[n:] == f"FLOODED {n} 0\nPONG\nBYE\n".encode()


def dechunk(data):
    """The body of a chunked HTTP/1.1 response (data: the whole response)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    body = b""
    while True:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return head, body
        body, rest = body + rest[:n], rest[n + 2:]


def test_16_21_a_key_update_while_a_view_reads_its_body(make_server, pki):
    """The same over HTTP, inside a view: a WSGI application writes 4 MB, which the client
    does not read, then reads the request body (streamed: the view waits for it). The
    client's key update arrives with the body, while the answer is backed up: the view
    reads the body and the client reads the whole answer."""
    s = py_server(make_server, start=False)
    s.listeners["main"] = tls_listener(pki, s.port)
    s.write_config()
    s.start(wait=False)
    s.wait_ready()
    n = 4_000_000
    body = "five!"
    r = subprocess.run([str(KEYUPDATE), str(s.port), "500",
                        f"POST /write-then-upload?{n} HTTP/1.1\\r\\nHost: localhost\\r\\n"
                        f"Content-Length: {len(body)}\\r\\nConnection: close\\r\\n\\r\\n", body],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    head, got = dechunk(r.stdout)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert got[:n] == b"w" * n
    assert got[n:] == b"|" + json.dumps(
        {"bytes": 5, "sha256": hashlib.sha256(b"five!").hexdigest()}).encode()
