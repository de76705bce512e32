"""wingcash's error view names every status the framework refuses a request with (a JSON
error code per status, issue #14 coverage), on SQLite: 408, 413, 417, 431, 501 and 505, each
as a client reads it, with the connection closed after; HEAD on a GET operation; and a
withdrawal whose fee takes it over max_amount."""
import json

from http_util import Client
from wingcash_util import Api, Backend, wingcash_server


def refused_json(c, status, code):
    r = c.read_response()
    assert r.status == status, r
    assert r.header("Content-Type") == "application/json"
    assert r.header("Connection") == "close"
    err = json.loads(r.body)["error"]
    assert err["code"] == code, err
    assert err["message"]
    assert c.closed_by_server()


def test_14_30_framework_refusals_have_their_own_error_codes(make_server, tmp_path):
    s = wingcash_server(make_server, Backend("sqlite", tmp_path),
                        server={"max_header_size": "2k", "max_body_size": "1k",
                                "header_timeout": 0.3})
    cases = [
        (b"POST /accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413,
         "body_too_large"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417, "expectation_failed"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n", 431,
         "headers_too_large"),
        (b"POST /accounts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
         "not_implemented"),
        (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
        # The head never ends: header_timeout.
        (b"GET / HTTP/1.1\r\nHost: x\r\n", 408, "request_timeout"),
    ]
    for raw, status, code in cases:
        c = Client(s.port)
        c.send(raw)
        refused_json(c, status, code)


def test_14_31_head_is_answered_by_the_get_operation_without_a_body(make_server, tmp_path):
    s = wingcash_server(make_server, Backend("sqlite", tmp_path))
    c = Client(s.port)
    get = c.request("GET", "/accounts/1")
    head = c.request("HEAD", "/accounts/1")
    assert get.status == head.status and get.status in (401, 404), get
    assert head.header("Content-Length") == get.header("Content-Length")
    assert get.body and head.body == b""
    c.close()


def test_14_32_withdrawal_plus_fee_over_the_maximum_is_refused(make_server, tmp_path):
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend, app_keys={"max_amount": 1000})
    api = Api(s.port)
    a = api.account("a", deposit=1000)
    # 990 is a valid amount, but 990 plus the fee of 25 is over max_amount.
    st, e = api.call("POST", f"/accounts/{a['id']}/withdrawals",
                     {"amount": 990, "bank_account": "DE89 3704 0044"}, token=a["token"])
    assert st == 422, e
    assert e["error"]["code"] == "invalid_field" and e["error"]["field"] == "amount"
    assert e["error"]["message"] == "amount plus the fee of 25 must not exceed 1000"
    assert backend.balance(a["id"]) == 1000
    assert backend.value("SELECT count(*) FROM payouts") == 0
    api.close()
