"""Logging: [server] log_format = json for the error log and the access log (one JSON object
per line, fixed keys), and request ids (from the client's request_id_header, else generated)
echoed in the response and carried into the error log lines written during the request."""
import json
import re

from fdt import wait_for
from http_util import Client, hello_server

ERROR_KEYS = {"time", "level", "pid", "role", "generation", "module", "request_id", "message"}
ACCESS_KEYS = {"time", "level", "pid", "generation", "request_id", "remote", "method", "path",
               "status", "bytes", "duration", "txn"}
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(text):
    """Every line of text as a JSON object (any other line fails the test)."""
    out = []
    for line in text.splitlines():
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def json_server(make_server, **server):
    conf = {"log_format": "json", "request_id_header": "X-Request-Id"}
    conf.update(server)
    s = hello_server(make_server, workers=2, threads=2, server=conf, start=False)
    s.access_path = s.dir / "access.log"
    s.server["access_log"] = str(s.access_path)
    s.write_config()
    return s.start()


def access_lines(s, n):
    wait_for(lambda: len(s.access_path.read_text().splitlines()) >= n, what=f"{n} access lines")
    return json_lines(s.access_path.read_text())


def test_54_01_json_lines_with_fixed_keys_and_request_ids(make_server):
    s = json_server(make_server)
    c = Client(s.port)
    r1 = c.request("GET", "/", headers={"X-Request-Id": "client-id-1"})
    assert r1.status == 200 and r1.header("X-Request-Id") == "client-id-1"
    r2 = c.request("GET", "/missing")
    generated = r2.header("X-Request-Id")
    assert r2.status == 404 and re.fullmatch(r"[0-9a-f]{16}", generated)
    # A client's id that could forge a log field is replaced by a generated one.
    r3 = c.request("GET", "/", headers={"X-Request-Id": 'a"b{}' + "x" * 70})
    assert re.fullmatch(r"[0-9a-f]{16}", r3.header("X-Request-Id"))
    c.close()
    lines = access_lines(s, 3)
    for obj in lines:
        assert set(obj) == ACCESS_KEYS, obj
        assert TIME_RE.match(obj["time"]) and obj["level"] == "info"
        assert obj["generation"] == 1 and obj["remote"] == "127.0.0.1"
        assert obj["txn"] is None and isinstance(obj["duration"], float)
    by_id = {o["request_id"]: o for o in lines}
    assert by_id["client-id-1"]["path"] == "/" and by_id["client-id-1"]["status"] == 200
    assert by_id["client-id-1"]["bytes"] == 13 and by_id["client-id-1"]["method"] == "GET"
    assert by_id[generated]["status"] == 404 and by_id[generated]["path"] == "/missing"
    assert r3.header("X-Request-Id") in by_id
    # The error log (the server's stderr here): every line JSON, fixed keys.
    errors = json_lines(s.log())
    assert errors
    for obj in errors:
        assert set(obj) == ERROR_KEYS, obj
        assert TIME_RE.match(obj["time"]) and obj["level"] in ("error", "warn", "info", "debug")
    assert any(o["role"] == "master" and o["generation"] == 0 for o in errors)
    assert any(o["role"] == "worker" and o["generation"] == 1 and "ready" in o["message"]
               for o in errors)


def test_54_02_error_lines_of_a_view_carry_its_request_id(make_server):
    s = json_server(make_server)
    c = Client(s.port)
    r = c.request("GET", "/error/500", headers={"X-Request-Id": "view-err-7"})
    assert r.status == 500 and r.header("X-Request-Id") == "view-err-7"
    r = c.request("GET", "/error/502")
    gen = r.header("X-Request-Id")
    c.close()
    s.wait_log("answering 502")
    errors = json_lines(s.log())
    mine = [o for o in errors if o["module"] == "app"]
    assert {(o["request_id"], o["message"]) for o in mine} == {
        ("view-err-7", "answering 500, as asked"), (gen, "answering 502, as asked")}
    assert all(o["level"] == "warn" for o in mine)
    # Lines written outside a request carry none.
    assert all(o["request_id"] is None for o in errors if o["module"] != "app")


def test_54_03_text_format_carries_the_request_id_and_generates_without_header(make_server):
    s = hello_server(make_server, workers=1, threads=2)
    c = Client(s.port)
    r = c.request("GET", "/error/503", headers={"X-Request-Id": "ignored-1"})
    assert r.status == 503
    # Without request_id_header no header is read or sent, but an id is still generated.
    assert r.header("X-Request-Id") is None
    c.close()
    line = s.wait_log("answering 503") and next(
        ln for ln in s.log().splitlines() if "answering 503" in ln)
    m = re.search(r" WARN \d+ worker/1 app: req=([0-9a-f]{16}) answering 503, as asked$", line)
    assert m, line
