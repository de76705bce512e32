"""TCP keepalive on accepted connections ([server] tcp_keepalive, tcp_keepidle, ...).

A client that vanishes without a FIN (network gone, host off) must be noticed, so that the
transaction its connection owns is rolled back. We cannot pull a cable here, so we check
what the kernel reports for the server's side of the connection: `ss -o` shows a
`timer:(keepalive,...)` only on a socket with SO_KEEPALIVE, counting down from TCP_KEEPIDLE.
"""
import re
import socket
import subprocess

from fdt import APPS, FDTSERVER, LineClient, free_port, wait_for


def ss_timer(server_port, client_port):
    """The ss timer field of the server's side of one established connection ('' if none)."""
    out = subprocess.run(["ss", "-tnoH", "state", "established"], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        cols = line.split()
        # Recv-Q Send-Q Local:Port Peer:Port [timer:(...)]
        if len(cols) >= 4 and cols[2].endswith(f":{server_port}") \
                and cols[3].endswith(f":{client_port}"):
            return " ".join(c for c in cols[4:] if c.startswith("timer:"))
    raise AssertionError(f"no established connection :{server_port} <- :{client_port}:\n{out}")


def timer_seconds(timer):
    """Seconds left on an ss timer: '59sec', '2min9sec', '66min', '6.892ms' (= 6 s 892 ms)."""
    m = re.fullmatch(r"timer:\(\w+,(?:(\d+)min)?(?:(\d+)(?:sec|\.))?(?:(\d+)ms)?,\d+\)", timer)
    assert m, timer
    mins, secs, ms = (int(g or 0) for g in m.groups())
    return mins * 60 + secs + ms / 1000


def connect(s):
    c = LineClient(s.port)
    assert c.call("PING") == "PONG"  # accepted and served: the options are set by now
    return c, c.sock.getsockname()[1]


def test_08_01_keepalive_is_on_with_the_configured_idle_time(make_server):
    s = make_server(workers=1, server={"tcp_keepidle": 7, "tcp_keepintvl": 3,
                                       "tcp_keepcnt": 2})
    c, cport = connect(s)
    timer = wait_for(lambda: ss_timer(s.port, cport), what="keepalive timer")
    assert timer.startswith("timer:(keepalive,"), timer
    assert 0 < timer_seconds(timer) <= 7, timer
    c.close()


def test_08_02_keepalive_is_on_by_default(make_server):
    s = make_server(workers=1)
    c, cport = connect(s)
    timer = wait_for(lambda: ss_timer(s.port, cport), what="keepalive timer")
    assert timer.startswith("timer:(keepalive,"), timer
    assert 50 < timer_seconds(timer) <= 60, timer  # tcp_keepidle defaults to 60
    c.close()


def test_08_03_tcp_keepalive_no_sets_no_timer(make_server):
    s = make_server(workers=1, server={"tcp_keepalive": "no", "tcp_keepidle": 7})
    c, cport = connect(s)
    assert ss_timer(s.port, cport) == ""
    c.close()


def test_08_04_a_unix_listener_still_works(make_server, tmp_path):
    path = tmp_path / "s.sock"
    s = make_server(workers=1, listeners={"u": {"address": f"unix:{path}", "protocol": "raw"}})
    with socket.socket(socket.AF_UNIX) as u:
        u.settimeout(5)
        u.connect(str(path))
        u.sendall(b"PING\n")
        assert u.recv(100) == b"PONG\n"
    assert "setsockopt" not in s.log()


def test_08_05_a_bad_value_is_a_config_error(tmp_path):
    for key, value in [("tcp_keepidle", "0"), ("tcp_keepintvl", "40000"),
                       ("tcp_keepcnt", "128"), ("tcp_keepalive", "maybe")]:
        conf = tmp_path / "bad.ini"
        conf.write_text(f"[listen.a]\naddress = 127.0.0.1:{free_port()}\nprotocol = raw\n"
                        f"[server]\n{key} = {value}\n[app]\nmodule = {APPS}/lineapp.so\n")
        r = subprocess.run([str(FDTSERVER), "-c", str(conf)], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, (key, r.stderr)
        assert f"{conf}:5" in r.stderr and key in r.stderr and value in r.stderr, r.stderr


def test_08_06_defer_accept_holds_a_silent_connection_in_the_kernel(make_server, tmp_path):
    """[listen] defer_accept = N (TCP_DEFER_ACCEPT): the kernel hands a connection to the
    server only once its client has sent something (or about N seconds later), so no worker
    holds a descriptor for a client that says nothing; one that speaks is served at once."""
    s = make_server(workers=1, start=False)
    s.listeners["main"]["defer_accept"] = 30
    s.write_config()
    s.start()
    silent = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    speaker = LineClient(s.port)
    assert speaker.call("PING") == "PONG"
    accepted = s.workers()[0]["connections_accepted"]
    assert accepted == 1, s.workers()  # the speaker only: the silent one waits in the kernel
    silent.sendall(b"PING\n")
    assert silent.recv(100) == b"PONG\n"  # its first bytes bring it in
    assert s.workers()[0]["connections_accepted"] == 2
    silent.close()
    speaker.close()
    # A reload that turns it off clears it on the shared socket.
    s.listeners["main"]["defer_accept"] = 0
    s.write_config()
    s.reload()
    quiet = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    wait_for(lambda: sum(w["connections_open"] for w in s.workers()
                         if w["generation"] == 2) == 1, what="the silent client accepted")
    quiet.close()
    # Unix sockets have no such option.
    s.listeners = {"u": {"address": f"unix:{tmp_path / 'u.sock'}", "defer_accept": 1}}
    s.write_config()
    r = subprocess.run([str(FDTSERVER), "--check", "-c", str(s.conf_path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "defer_accept applies to TCP addresses only" in r.stderr, r.stderr
