"""HTTP limits and bad input: each refusal has its status and a short body, the connection
is closed after it, nothing bad reaches the application, and no worker crashes."""
import json
import random
import socket
import time

from http_util import Client, build, get, hello_server


def refused(c, status):
    r = c.read_response()
    assert r.status == status, r
    assert r.header("Connection") == "close"
    assert r.body.startswith(f"{status} ".encode()), r.body
    assert c.closed_by_server()
    return r


def test_10_20_headers_over_the_limit_get_431(make_server):
    s = hello_server(make_server, server={"max_header_size": "4k"})
    c = Client(s.port)
    c.send(build("GET", "/", headers={"X-Big": "a" * 5000}))
    refused(c, 431)
    # Many small headers add up the same way; a long URL too.
    c = Client(s.port)
    c.send(build("GET", "/", headers={f"X-{i}": "v" * 20 for i in range(300)}))
    refused(c, 431)
    c = Client(s.port)
    c.send(build("GET", "/" + "a" * 5000))
    refused(c, 431)
    # Just under the limit is served.
    assert get(s.port, "/", headers={"X-Big": "a" * 3900}).status == 200


def test_10_21_bodies_over_the_limit_get_413(make_server):
    s = hello_server(make_server, server={"max_body_size": "1k"})
    c = Client(s.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n")
    refused(c, 413)
    c = Client(s.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(5):
        c.send(b"200\r\n" + b"x" * 512 + b"\r\n")
    refused(c, 413)
    c = Client(s.port)
    assert c.request("POST", "/echo", body=b"y" * 1024).body == b"y" * 1024


def test_10_22_malformed_requests_get_400(make_server):
    s = hello_server(make_server)
    for raw in [b"GET/ HTTP/1.1\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
                b"GET / HTTP/1.1\nHost: x\n\n",
                b"GET / HTTP/1.1\r\n\r\n",  # no Host
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
                b"GET /%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]:
        c = Client(s.port)
        c.send(raw)
        r = c.read_response()
        assert r.status == 400, (raw, r)
        assert c.closed_by_server()


def test_10_23_no_request_smuggling(make_server):
    s = hello_server(make_server)
    smuggled = build("GET", "/sleep/1")
    attacks = [
        # CL.TE and TE.CL: both headers at once.
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n0\r\n\r\n%s" % (5 + len(smuggled), smuggled),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3"
        b"\r\n\r\n0\r\n\r\n%s" % smuggled,
        # Two Content-Lengths, equal or not.
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: %d\r\n\r\n%s"
        % (len(smuggled), smuggled),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
        b"hello",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
        # A space before the colon must not make a header nobody else sees.
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 3"
        b"\r\n\r\n0\r\n\r\n",
    ]
    for raw in attacks:
        c = Client(s.port)
        c.send(raw)
        r = c.read_response()
        assert r.status == 400, (raw, r)
        assert c.closed_by_server(), raw
    # The smuggled request never ran: the log shows no slept request and the server is
    # fine.
    assert get(s.port, "/").status == 200


def test_10_24_unsupported_transfer_coding_gets_501(make_server):
    s = hello_server(make_server)
    for te in ["gzip", "gzip, chunked", "identity"]:
        c = Client(s.port)
        c.send(f"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n")
        refused(c, 501)
    # A malformed list (an empty element after chunked): 400, as documented (docs/http.md).
    c = Client(s.port)
    c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked ,\r\n\r\n0\r\n\r\n")
    refused(c, 400)


def test_10_25_slow_headers_and_slow_bodies_get_408(make_server):
    s = hello_server(make_server, server={"header_timeout": 0.5, "body_timeout": 0.5})
    c = Client(s.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    # Trickling bytes does not extend header_timeout.
    for _ in range(3):
        time.sleep(0.1)
        c.send(b"X: y\r\n")
    refused(c, 408)
    assert time.monotonic() - t0 < 2.0
    c = Client(s.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    refused(c, 408)
    # A connection that sends nothing is closed without a response.
    c = Client(s.port)
    assert c.closed_by_server(timeout=3)


def test_10_26_idle_keep_alive_connections_are_closed(make_server):
    s = hello_server(make_server, server={"keepalive_timeout": 0.5})
    c = Client(s.port)
    assert c.request("GET", "/").status == 200
    t0 = time.monotonic()
    assert c.closed_by_server(timeout=3)
    assert 0.4 < time.monotonic() - t0 < 2.0


def test_10_27_expectations_other_than_100_continue_get_417(make_server):
    s = hello_server(make_server)
    c = Client(s.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n")
    refused(c, 417)


def test_10_28_errors_rendered_by_the_application_as_json(make_server):
    s = hello_server(make_server, app_keys={"json_errors": "yes"},
                     server={"max_header_size": "1k"})

    def check(r, status):
        assert r.status == status, r
        assert r.header("Content-Type") == "application/json"
        doc = json.loads(r.body)
        assert doc["error"]["status"] == status and doc["error"]["message"]
        return doc

    check(get(s.port, "/nope"), 404)
    c = Client(s.port)
    r = c.request("DELETE", "/")
    check(r, 405)
    assert r.header("Allow") == "GET, HEAD"
    c = Client(s.port)
    c.send(b"GET/ HTTP/1.1\r\n\r\n")
    check(c.read_response(), 400)
    c = Client(s.port)
    c.send(build("GET", "/", headers={"X": "a" * 2000}))
    check(c.read_response(), 431)
    check(get(s.port, "/error/503"), 503)
    check(get(s.port, "/error/500"), 500)


def test_10_29_garbage_never_crashes_a_worker(make_server):
    s = hello_server(make_server, workers=2, server={"max_header_size": "2k",
                                                     "max_body_size": "2k",
                                                     "header_timeout": 1})
    pids = s.worker_pids()
    rnd = random.Random(1234)
    pieces = [b"GET ", b"POST ", b"/", b"/tree/", b"%", b"%2f", b"%00", b"..", b" HTTP/1.1",
              b" HTTP/1.0", b"\r\n", b"\n", b"Host: x", b"Content-Length: ", b"12",
              b"Transfer-Encoding: chunked", b"Expect: 100-continue", b":", b" ", b"\x00",
              b"\xff", b"0\r\n\r\n", b"ffffffffffffffffff\r\n", b"Connection: close"]
    for i in range(300):
        raw = b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(1, 40)))
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=2) as c:
                c.sendall(raw)
                c.shutdown(socket.SHUT_WR)
                while c.recv(65536):
                    pass
        except (ConnectionError, socket.timeout):
            pass
    assert s.worker_pids() == pids
    assert get(s.port, "/").status == 200

