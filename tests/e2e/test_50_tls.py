"""TLS on a listener (docs/operations.md): the real binary with certificates made by
`openssl req` for each run, spoken to by curl, `openssl s_client` and Python's ssl module.
Versions and ALPN, resumption across workers and ticket-key rotation, hostname and expiry
failures on the client, client certificates, plain HTTP and garbage on a TLS port, a stalled
handshake, reloads (bad key refused, new certificate for new connections only), JSON-RPC
over TLS, close_notify at shutdown, a root-only key with workers that drop privileges."""
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from fdt import APPS, FDTSERVER, free_port, wait_for
from http_util import HELLO


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_cert(d, name, cn, ca="ca", days="30", key=None, ext="server"):
    """name.pem signed by ca (name.key is made unless key names an existing one)."""
    key = key or name
    if not (d / f"{key}.key").exists():
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", f"{key}.key", cwd=d)
    openssl("req", "-new", "-key", f"{key}.key", "-subj", f"/CN={cn}", "-out", f"{name}.csr",
            cwd=d)
    exts = {"server": "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                      "extendedKeyUsage=serverAuth\n",
            "client": "extendedKeyUsage=clientAuth\n"}
    (d / f"{name}.ext").write_text(exts[ext])
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", days, "-extfile", f"{name}.ext", "-out", f"{name}.pem",
            cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, two server certificates for localhost, an expired one, a client certificate, a
    client certificate of another CA, and a key that matches nothing."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "otherca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "30",
                "-subj", f"/CN=fdt test {ca}", cwd=d)
    make_cert(d, "server", "localhost")
    make_cert(d, "server2", "localhost")
    make_cert(d, "expired", "localhost", key="server", days="-1")  # notAfter in the past
    make_cert(d, "client", "alice", ext="client")
    make_cert(d, "stranger", "mallory", ca="otherca", ext="client")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "other.key", cwd=d)
    return d


def tls_listener(pki, port, cert="server", key="server", **kw):
    l = {"address": f"127.0.0.1:{port}", "protocol": "http", "tls": "yes",
         "certificate": str(pki / f"{cert}.pem"), "private_key": str(pki / f"{key}.key")}
    l.update(kw)
    return l


def tls_server(make_server, pki, workers=1, threads=4, server=None, app=HELLO, start=True,
               **listener):
    s = make_server(app=app, workers=workers, threads=threads, server=server, start=False)
    s.listeners = {"main": tls_listener(pki, s.port, **listener)}
    s.write_config()
    if start:
        s.start()
    return s


def curl(port, path="/", *args, host="localhost", ca=None):
    """curl over https; returns the CompletedProcess (stdout: body, stderr: -v output)."""
    cmd = ["curl", "-sS", "-v", "--max-time", "20", "--resolve", f"{host}:{port}:127.0.0.1"]
    if ca:
        cmd += ["--cacert", str(ca)]
    cmd += [*args, f"https://{host}:{port}{path}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


REQUEST = b"GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def s_client(port, *args, data=REQUEST):
    """openssl s_client sending data and reading until the server closes; returns stdout +
    stderr and the exit status."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-servername", "localhost", "-ign_eof", *args],
                       input=data, capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"), r.returncode


def worker_pid_of(out):
    m = re.search(r'"pid":(\d+)', out)
    return int(m.group(1)) if m else None


def test_50_01_tls12_and_tls13_with_alpn_http11(make_server, pki):
    s = tls_server(make_server, pki)
    for flags, version in ((["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
                           (["--tlsv1.3"], "TLSv1.3")):
        r = curl(s.port, "/", *flags, ca=pki / "ca.pem")
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Hello, world!"
        assert f"SSL connection using {version}" in r.stderr
        assert "ALPN: server accepted http/1.1" in r.stderr
    # A client that offers only h2 is served HTTP/1.1 without ALPN, not refused.
    out, rc = s_client(s.port, "-CAfile", str(pki / "ca.pem"), "-alpn", "h2")
    assert rc == 0 and "No ALPN negotiated" in out and "HTTP/1.1 200 OK" in out
    assert "listening on" in s.log() and "over TLS" in s.log()
    assert [(l["name"], l["tls"]) for l in s.status()["listeners"]] == [("main", True)]
    assert "(http over TLS)" in s.ctl("status").stdout


def test_50_02_min_version_and_ciphers_are_enforced(make_server, pki):
    s = tls_server(make_server, pki, min_version="1.3")
    r = curl(s.port, "/", "--tlsv1.2", "--tls-max", "1.2", ca=pki / "ca.pem")
    assert r.returncode != 0 and r.stdout == ""
    s.wait_log("TLS handshake failed")
    assert curl(s.port, "/", "--tlsv1.3", ca=pki / "ca.pem").stdout == "Hello, world!"
    s.stop()
    s = tls_server(make_server, pki, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    r = curl(s.port, "/", "--tlsv1.2", "--tls-max", "1.2", ca=pki / "ca.pem")
    assert "ECDHE-ECDSA-AES128-GCM-SHA256" in r.stderr and r.stdout == "Hello, world!"
    r = curl(s.port, "/", "--tlsv1.2", "--tls-max", "1.2", "--ciphers",
             "ECDHE-ECDSA-AES256-GCM-SHA384", ca=pki / "ca.pem")
    assert r.returncode != 0


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_50_03_sessions_resume_on_every_worker_of_the_generation(make_server, pki, tmp_path,
                                                                 version):
    # reuseport: the kernel spreads connections over both workers by their source port.
    s = tls_server(make_server, pki, workers=2, reuseport="yes")
    workers = set(s.worker_pids())
    sess = tmp_path / "sess.pem"
    out, rc = s_client(s.port, version, "-CAfile", str(pki / "ca.pem"), "-sess_out", str(sess))
    assert rc == 0 and "New, TLSv1" in out, out
    first = worker_pid_of(out)
    resumed_on = set()
    attempts = 0
    # Every connection must resume; 40 connections all landing on one worker would have a
    # chance of 2**-39.
    while resumed_on != workers and attempts < 40:
        attempts += 1
        out, rc = s_client(s.port, version, "-CAfile", str(pki / "ca.pem"),
                           "-sess_in", str(sess))
        assert rc == 0 and "Reused, TLSv1" in out, out
        resumed_on.add(worker_pid_of(out))
    assert resumed_on == workers, (first, resumed_on, workers, attempts)
    # A reload makes a new ticket key: the old generation's tickets start full handshakes.
    s.reload()
    out, rc = s_client(s.port, version, "-CAfile", str(pki / "ca.pem"), "-sess_in", str(sess))
    assert rc == 0 and "New, TLSv1" in out and "Reused" not in out, out


def test_50_04_session_tickets_off(make_server, pki, tmp_path):
    s = tls_server(make_server, pki, session_tickets="no")
    sess = tmp_path / "sess.pem"
    for version in ("-tls1_2", "-tls1_3"):
        out, rc = s_client(s.port, version, "-CAfile", str(pki / "ca.pem"), "-sess_out",
                           str(sess))
        assert rc == 0 and "HTTP/1.1 200 OK" in out
        assert "TLS session ticket lifetime hint" not in out, out
        if sess.exists():  # s_client saves no session that cannot be resumed
            out, rc = s_client(s.port, version, "-CAfile", str(pki / "ca.pem"), "-sess_in",
                               str(sess))
            assert rc == 0 and "New, TLSv1" in out and "Reused" not in out
            sess.unlink()


def test_50_05_wrong_hostname_fails_verification_on_the_client(make_server, pki):
    s = tls_server(make_server, pki)
    r = curl(s.port, "/", host="wrong.example", ca=pki / "ca.pem")
    assert r.returncode == 60, r.stderr  # peer certificate cannot be authenticated
    assert "wrong.example" in r.stderr and r.stdout == ""
    out, rc = s_client(s.port, "-CAfile", str(pki / "ca.pem"), "-verify_hostname",
                       "wrong.example", "-verify_return_error")
    assert rc != 0 and "hostname mismatch" in out
    # The server is unharmed, and the right name verifies.
    assert curl(s.port, "/", ca=pki / "ca.pem").stdout == "Hello, world!"


def test_50_06_expired_certificate_is_served_with_a_warning_and_refused_by_clients(
        make_server, pki):
    s = tls_server(make_server, pki, cert="expired")
    assert "certificate " + str(pki / "expired.pem") + " has expired" in s.log()
    r = curl(s.port, "/", ca=pki / "ca.pem")
    assert r.returncode == 60 and "expired" in r.stderr, r.stderr
    r = curl(s.port, "/", "--insecure")
    assert r.returncode == 0 and r.stdout == "Hello, world!"


def test_50_07_client_certificates(make_server, pki):
    s = tls_server(make_server, pki, ca=str(pki / "ca.pem"), verify_client="require")
    ca = pki / "ca.pem"
    for version in (["--tlsv1.2", "--tls-max", "1.2"], ["--tlsv1.3"]):
        r = curl(s.port, "/", *version, ca=ca)
        assert r.returncode != 0 and r.stdout == "", r.stderr
        r = curl(s.port, "/", *version, "--cert", str(pki / "stranger.pem"), "--key",
                 str(pki / "stranger.key"), ca=ca)
        assert r.returncode != 0 and r.stdout == "", r.stderr
        r = curl(s.port, "/", *version, "--cert", str(pki / "client.pem"), "--key",
                 str(pki / "client.key"), ca=ca)
        assert r.returncode == 0 and r.stdout == "Hello, world!", r.stderr
    log = s.log()
    assert "peer did not return a certificate" in log
    assert "certificate verify failed" in log
    s.stop()
    # optional: no certificate is fine, a bad one is not.
    s = tls_server(make_server, pki, ca=str(ca), verify_client="optional")
    assert curl(s.port, "/", ca=ca).stdout == "Hello, world!"
    r = curl(s.port, "/", "--cert", str(pki / "stranger.pem"), "--key",
             str(pki / "stranger.key"), ca=ca)
    assert r.returncode != 0 and r.stdout == ""


def read_all(sock):
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "eof"
        data += chunk


def test_50_08_plain_http_and_garbage_on_the_tls_port_are_refused_cleanly(make_server, pki):
    s = tls_server(make_server, pki, threads=1)
    pids = s.worker_pids()
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: plain\r\n\r\n")
        data, how = read_all(c)
    assert how == "eof", data
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close" in data and data.endswith(b"sent to a TLS port: use https.\n")
    s.wait_log("plain HTTP on a TLS listener: answered 400")
    for junk in (b"\x00" * 10, b"hello there\r\n" * 50, b"\x16\x03\x01\x00\x05zzzzz"):
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(junk)
            data, how = read_all(c)
        assert not data.startswith(b"HTTP/"), data
    wait_for(lambda: s.log().count("TLS handshake failed") >= 3, what="three handshake failures")
    assert curl(s.port, "/", ca=pki / "ca.pem").stdout == "Hello, world!"
    assert s.worker_pids() == pids  # no worker died
    # The metrics count them: four refused (plain HTTP and three kinds of garbage), one done.
    from metrics_util import scrape_ctl, value
    m = scrape_ctl(s)
    assert value(m, "fdt_tls_handshake_errors_total") == 4, m
    assert value(m, "fdt_tls_handshakes_total") == 1, m


def test_50_09_a_stalled_handshake_times_out_and_stalls_nobody(make_server, pki):
    s = tls_server(make_server, pki, threads=1, handshake_timeout=1)
    silent = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    partial = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, then nothing
    # One thread in the worker: still, other clients are served meanwhile.
    for _ in range(3):
        assert curl(s.port, "/", ca=pki / "ca.pem").stdout == "Hello, world!"
    for c in (silent, partial):
        data, how = read_all(c)  # the server closes them (the socket timeout is 10 s)
        assert how in ("eof", "reset")
        c.close()
    assert s.log().count("TLS handshake not done in time") == 2


def test_50_10_reload_with_a_bad_key_or_certificate_is_refused(make_server, pki):
    s = tls_server(make_server, pki)
    (gen1_pid,) = s.worker_pids()
    for change, reason in (({"private_key": str(pki / "other.key")}, "does not match"),
                           ({"certificate": str(pki / "missing.pem")}, "No such file"),
                           ({"private_key": str(pki / "server.pem")}, "private_key")):
        s.listeners["main"].update(change)
        s.write_config()
        r = s.reload(check=False)
        assert r.returncode != 0, r
        assert reason in r.stdout + r.stderr, r
        assert "old generation keeps serving" in s.log()
        assert s.worker_pids() == [gen1_pid]
        r = curl(s.port, "/whoami", ca=pki / "ca.pem")
        assert f'"pid":{gen1_pid}' in r.stdout
        s.listeners["main"] = tls_listener(pki, s.port)
    s.write_config()
    s.reload()
    assert s.worker_pids() != [gen1_pid]
    # No key material in the log, whatever happened.
    key_body = "".join((pki / "server.key").read_text().splitlines()[1:-1])
    assert key_body[:40] not in s.log().replace("\n", "")


def peer_der(sock):
    return sock.getpeercert(binary_form=True)


def https_keepalive(port, ca):
    ctx = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)


def get_on(sock, path="/whoami"):
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    n = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < n:
        body += sock.recv(65536)
    return head.decode(), body.decode()


def test_50_11_reload_serves_a_new_certificate_old_connections_keep_theirs(make_server, pki):
    s = tls_server(make_server, pki)
    ca = pki / "ca.pem"
    old = https_keepalive(s.port, ca)
    _, body = get_on(old)
    assert '"generation":1' in body
    cert1 = peer_der(old)
    s.listeners["main"] = tls_listener(pki, s.port, cert="server2", key="server2")
    s.write_config()
    s.reload()
    new = https_keepalive(s.port, ca)
    _, body = get_on(new)
    assert '"generation":2' in body
    cert2 = peer_der(new)
    assert cert1 != cert2
    assert cert2 == ssl.PEM_cert_to_DER_cert((pki / "server2.pem").read_text())
    # The old connection goes on with its generation and its certificate (promise 4: the
    # next answer says Connection: close).
    head, body = get_on(old)
    assert '"generation":1' in body and peer_der(old) == cert1
    assert "Connection: close" in head
    old.close()
    new.close()


def test_50_12_jsonrpc_over_tls(make_server, pki):
    port = free_port()
    rpc = tls_listener(pki, port, protocol="jsonrpc")
    s = make_server(listeners={"rpc": rpc})
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                         server_hostname="localhost") as c:
        assert c.selected_alpn_protocol() is None
        f = c.makefile("rwb")
        for i in range(3):
            f.write(b'{"jsonrpc":"2.0","method":"echo","params":{"n":%d},"id":%d}\n' % (i, i))
            f.flush()
            assert f.readline() == b'{"jsonrpc":"2.0","result":{"n":%d},"id":%d}\n' % (i, i)
    assert "over TLS" in s.log()


def test_50_13_graceful_shutdown_sends_close_notify(make_server, pki):
    s = tls_server(make_server, pki)
    c = https_keepalive(s.port, pki / "ca.pem")
    get_on(c, "/")
    s.signal(signal.SIGTERM)
    # suppress_ragged_eofs=False: an EOF without close_notify would raise SSLEOFError.
    assert c.recv(100) == b""
    c.close()
    assert s.wait_exit() == 0


def test_50_14_a_key_readable_by_root_only_with_workers_as_nobody(make_server, pki):
    nobody = pwd.getpwnam("nobody")
    if os.getuid() != 0:
        pytest.skip("needs root to drop privileges")
    d = Path(tempfile.mkdtemp(prefix="fdt-tls-nobody-"))
    try:
        os.chmod(d, 0o755)
        shutil.copy(HELLO, d)
        key = d / "server.key"
        shutil.copy(pki / "server.key", key)
        os.chmod(key, 0o600)  # root only
        s = make_server(app=str(d / "hello.so"), workers=1, server={"user": "nobody"},
                        start=False)
        s.listeners = {"main": tls_listener(pki, s.port, private_key=str(key))}
        s.write_config()
        s.start()
        (pid,) = s.worker_pids()
        status = Path(f"/proc/{pid}/status").read_text()
        uid = [line for line in status.splitlines() if line.startswith("Uid:")][0].split()[1:]
        assert all(int(u) == nobody.pw_uid for u in uid)
        assert curl(s.port, "/", ca=pki / "ca.pem").stdout == "Hello, world!"
        s.reload()  # read again by the master, still root
        assert curl(s.port, "/", ca=pki / "ca.pem").stdout == "Hello, world!"
        s.stop()
    finally:
        shutil.rmtree(d)


def test_50_15_configuration_errors_are_named(make_server, pki, tmp_path):
    cases = [({"tls": "yes", "certificate": "", "private_key": ""}, "tls = yes needs certificate"),
             ({"tls": "no"}, "certificate is set but tls is not yes"),
             ({"verify_client": "require"}, "verify_client needs ca"),
             ({"private_key": str(pki / "other.key")}, "does not match certificate"),
             ({"min_version": "1.1"}, "min_version"),
             ({"ciphers": "NOPE-NOTHING"}, "ciphers 'NOPE-NOTHING'")]
    for change, message in cases:
        s = tls_server(make_server, pki, start=False)
        s.listeners["main"].update(change)
        s.listeners["main"] = {k: v for k, v in s.listeners["main"].items() if v != ""}
        s.write_config()
        r = subprocess.run([str(FDTSERVER), "-c", str(s.conf_path), "--check"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and message in r.stderr, (change, r.stderr)
        s.start(wait=False)
        assert s.wait_exit() != 0
        assert message in s.log(), (change, s.log())


def test_50_16_raw_protocol_and_many_bytes_both_ways(make_server, pki):
    # A large response crosses many TLS records and fills the socket: the write path
    # through TLS with backpressure. lineapp's raw protocol echoes lines.
    port = free_port()
    s = make_server(listeners={"main": tls_listener(pki, port, protocol="raw")},
                    app=str(APPS / "lineapp.so"))
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                         server_hostname="localhost") as c:
        f = c.makefile("rwb")
        lines = [b"%05d" % i + b"x" * 1000 for i in range(2000)]  # 2 MB each way
        f.write(b"".join(b"ECHO " + line + b"\n" for line in lines))
        f.flush()
        for line in lines:
            assert f.readline() == line + b"\n"
    assert s.stop() == 0


def test_50_17_a_large_streamed_http_body_over_tls(make_server, pki, tmp_path):
    # 16 MiB through a TLS connection, written by the view thread with backpressure.
    port = free_port()
    s = make_server(listeners={"main": tls_listener(pki, port)}, app=str(APPS / "lineapp.so"))
    out = tmp_path / "big"
    r = curl(port, "/big/16", "-o", str(out), ca=pki / "ca.pem")
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert len(data) == 16 << 20
    chunk = 64 * 1024
    for k in (0, 1, 128, 255):
        expect = bytes((j + k) % 256 for j in range(chunk))
        assert data[k * chunk:(k + 1) * chunk] == expect
    assert s.stop() == 0


def test_50_18_reloads_under_https_load_fail_no_request(make_server, pki):
    # Promise 4 over TLS: clients on new and reused TLS connections, with bodies, while the
    # server reloads (new ticket key, new contexts) three times; only the counted idle-close
    # retry is allowed, and a connection the server closes must end with close_notify
    # (suppress_ragged_eofs=False: a bare EOF would be an SSLEOFError, a failure).
    from http_util import Client
    from load import HttpEcho, reload_under_load

    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))

    class TlsClient(Client):
        def __init__(self, port, host="127.0.0.1", timeout=10.0):
            super().__init__(port, host, timeout)
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost",
                                        suppress_ragged_eofs=False)

    class HttpsEcho(HttpEcho):
        name = "HTTPS"
        client = TlsClient

    s = tls_server(make_server, pki, workers=2)
    load = reload_under_load(s, 3, HttpsEcho)
    assert load.ok > 0


def test_50_19_python_streams_bodies_and_sends_files_over_tls(make_server, pki, tmp_path):
    """A WSGI application on a TLS listener: wsgi.input streams a chunked upload through
    the TLS session (read as it comes, peeking for chunk sizes), and wsgi.file_wrapper
    sends a file through it (no sendfile over TLS: blocks), bytes intact both ways."""
    import hashlib
    import json
    from test_40_python import py_server
    s = py_server(make_server, start=False, server={"max_body_size": "16m"})
    s.listeners = {"main": tls_listener(pki, s.port)}
    s.write_config()
    s.start()
    body = bytes(range(256)) * (6 * 4096)  # 6 MiB
    up = tmp_path / "up.bin"
    up.write_bytes(body)
    r = curl(s.port, "/upload", "-H", "Transfer-Encoding: chunked", "--data-binary",
             f"@{up}", ca=pki / "ca.pem")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["bytes"] == len(body) and got["sha256"] == hashlib.sha256(body).hexdigest(), got
    big = tmp_path / "big.bin"
    big.write_bytes(body[::-1])
    out = tmp_path / "out.bin"
    r = curl(s.port, f"/file?{big}", "-o", str(out), ca=pki / "ca.pem")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == body[::-1]
    r = curl(s.port, "/env", ca=pki / "ca.pem")
    assert json.loads(r.stdout)["wsgi.url_scheme"] == "https", r.stdout
