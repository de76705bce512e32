"""HTTP across graceful stop and reload: a request in flight is answered with
Connection: close, idle keep-alive connections are closed, and no request is lost."""
import signal

from fdt import wait_for
from http_util import Client, build, hello_server
from load import HttpEcho, reload_under_load


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


def test_10_61_no_http_request_lost_across_reloads(make_server):
    s = hello_server(make_server, workers=2, threads=4)
    reload_under_load(s, 25, HttpEcho)
