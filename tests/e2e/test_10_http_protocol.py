"""HTTP/1.1 and 1.0 over real sockets: keep-alive, pipelining, bodies, 100-continue, HEAD,
Connection: close, streaming, the framework's headers, the access log."""
import email.utils
import http.client
import re
import socket
import time

from http_util import Client, build, get, hello_server


def test_10_01_hello_with_the_framework_headers(make_server):
    s = hello_server(make_server)
    r = get(s.port, "/")
    assert r.status == 200 and r.body == b"Hello, world!"
    assert r.header("Server") == "fdtserver"
    assert r.header("Content-Length") == "13"
    assert r.header("Content-Type").startswith("text/plain")
    # An IMF-fixdate within a few seconds of now.
    date = email.utils.parsedate_to_datetime(r.header("Date")).timestamp()
    assert abs(date - time.time()) < 5
    assert r.header("Connection") is None


def test_10_02_keep_alive_in_1_1_and_http_client_reuses_the_connection(make_server):
    s = hello_server(make_server)
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    socks = set()
    for i in range(20):
        conn.request("GET", "/whoami")
        r = conn.getresponse()
        assert r.status == 200
        assert b'"generation":1' in r.read()
        socks.add(id(conn.sock))
    assert len(socks) == 1
    conn.close()


def test_10_03_http_1_0_closes_unless_keep_alive_is_asked(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    r = c.request("GET", "/", version="1.0")
    assert r.body == b"Hello, world!" and r.header("Connection") == "close"
    assert c.closed_by_server()
    c = Client(s.port)
    for _ in range(3):
        r = c.request("GET", "/", headers={"Connection": "keep-alive"}, version="1.0")
        assert r.status == 200 and r.header("Connection") == "keep-alive"
    r = c.request("GET", "/", version="1.0")
    assert r.header("Connection") == "close"
    assert c.closed_by_server()


def test_10_04_connection_close_is_honoured_both_ways(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    r = c.request("GET", "/", headers={"Connection": "close"})
    assert r.status == 200 and r.header("Connection") == "close"
    assert c.closed_by_server()


def test_10_05_pipelined_requests_are_answered_in_order(make_server):
    s = hello_server(make_server, threads=4)
    c = Client(s.port)
    # A slow request first: the fast ones after it must still come back after it.
    reqs = [("GET", "/sleep/300"), ("GET", "/"), ("POST", "/echo"), ("HEAD", "/"),
            ("GET", "/tree/x/"), ("GET", "/nope"), ("GET", "/whoami")]
    data = b"".join(build(m, p, body=b"pipelined body" if m == "POST" else b"")
                    for m, p in reqs)
    c.send(data)
    got = [c.read_response(head=(m == "HEAD")) for m, _ in reqs]
    assert got[0].body == b"slept 300"
    assert got[1].body == b"Hello, world!"
    assert got[2].body == b"pipelined body"
    assert got[3].status == 200 and got[3].body == b"" and got[3].header("Content-Length") == "13"
    assert got[4].body.startswith(b"url=/tree/x/")
    assert got[5].status == 404
    assert b'"pid"' in got[6].body
    # Still open afterwards.
    assert c.request("GET", "/").status == 200


def test_10_06_pipelined_requests_cut_anywhere(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    data = b"".join(build("POST", "/echo", body=f"body {i}") for i in range(30))
    # Cut into odd pieces, with pauses so that they arrive as separate reads.
    for i in range(0, len(data), 37):
        c.send(data[i:i + 37])
        if i % 111 == 0:
            time.sleep(0.01)
    for i in range(30):
        assert c.read_response().body == f"body {i}".encode()


def test_10_07_request_bodies_by_content_length_and_chunked(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    big = bytes(range(256)) * 1000
    r = c.request("POST", "/echo", body=big, headers={"Content-Type": "application/x-test"})
    assert r.body == big and r.header("Content-Type") == "application/x-test"
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"hello ", b"chunked ", b"world"))
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked +
           b"0\r\nX-Trailer: yes\r\n\r\n")
    r = c.read_response()
    assert r.body == b"hello chunked world"
    # http.client's own chunked upload.
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
    conn.request("POST", "/echo", body=iter([b"a" * 5000, b"b" * 7000]), encode_chunked=True)
    r = conn.getresponse()
    assert r.read() == b"a" * 5000 + b"b" * 7000
    conn.close()


def test_10_08_expect_100_continue(make_server):
    s = hello_server(make_server, server={"max_body_size": "1k"})
    c = Client(s.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    r = c.read_response()
    assert r.status == 100 and r.reason == "Continue"
    c.send(b"hello")
    r = c.read_response()
    assert r.status == 200 and r.body == b"hello"
    # Too large: 413 at once, no 100, and the connection is closed.
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
           b"Content-Length: 5000\r\n\r\n")
    r = c.read_response()
    assert r.status == 413 and r.header("Connection") == "close"
    assert c.closed_by_server()


def test_10_09_head_has_the_length_of_get_and_no_body(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    c.send(build("HEAD", "/") + build("GET", "/"))
    h = c.read_response(head=True)
    assert h.status == 200 and h.header("Content-Length") == "13" and h.body == b""
    # If a body had been sent after the HEAD response, this would not parse.
    g = c.read_response()
    assert g.body == b"Hello, world!"


def test_10_10_streamed_responses(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    r = c.request("GET", "/stream/1000")
    assert r.header("Transfer-Encoding") == "chunked" and r.header("Content-Length") is None
    assert r.body == b"".join(b"line %d\n" % i for i in range(1000))
    assert c.request("GET", "/").status == 200
    # HTTP/1.0 has no chunked coding: the body ends with the connection.
    c = Client(s.port)
    r = c.request("GET", "/stream/3", headers={"Connection": "keep-alive"}, version="1.0")
    assert r.header("Connection") == "close" and r.header("Transfer-Encoding") is None
    assert r.body == b"line 0\nline 1\nline 2\n"


def test_10_11_blocking_view_does_not_stall_others(make_server):
    s = hello_server(make_server, threads=2)
    slow = Client(s.port)
    slow.send(build("GET", "/sleep/1500"))
    t0 = time.monotonic()
    for _ in range(5):
        assert get(s.port, "/").status == 200
    assert time.monotonic() - t0 < 1.0
    assert slow.read_response().body == b"slept 1500"


def test_10_12_access_log_one_line_per_request(make_server, tmp_path):
    log = tmp_path / "access.log"
    s = hello_server(make_server, workers=2, server={"access_log": str(log)})
    c = Client(s.port)
    c.request("GET", "/?q=1")
    c.request("POST", "/echo", body=b"12345")
    c.request("GET", "/nope")
    c.request("HEAD", "/")
    c.send(b"GET /bad\x01 HTTP/1.1\r\n\r\n")
    assert c.read_response().status == 400
    s.stop()
    lines = log.read_text().splitlines()
    pat = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                     r'"(.*)" (\d{3}) (\d+|-) (\d+)$')
    parsed = [pat.match(line) for line in lines]
    assert all(parsed), lines
    assert [(m[1], m[2], m[3]) for m in parsed] == [
        ("GET /?q=1 HTTP/1.1", "200", "13"),
        ("POST /echo HTTP/1.1", "200", "5"),
        ("GET /nope HTTP/1.1", "404", parsed[2][3]),
        ("HEAD / HTTP/1.1", "200", "-"),
        ("-", "400", parsed[4][3]),
    ]


def test_10_13_access_log_is_off_by_default(make_server):
    s = hello_server(make_server)
    get(s.port, "/")
    s.stop()
    assert not list(s.dir.glob("*access*"))
    assert '"GET / HTTP/1.1"' not in s.log()


def test_10_14_busy_worker_refuses_with_503(make_server):
    s = hello_server(make_server, server={"max_connections": 2})
    a, b = Client(s.port), Client(s.port)
    a.send(build("GET", "/sleep/500"))
    b.send(build("GET", "/sleep/500"))
    time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as third:
        data = b""
        while True:
            chunk = third.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert a.read_response().status == 200 and b.read_response().status == 200
