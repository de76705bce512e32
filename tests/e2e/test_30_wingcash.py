"""wingcash, the reference application (issue 6): the HTTP API on SQLite and on PostgreSQL
(the same tests on both), against the real fdtserver; the books checked in the database."""
import pytest

from wingcash_util import Api, Backend, concurrently, wingcash_server


@pytest.fixture(params=["sqlite", "pg"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return Backend("sqlite", tmp_path)
    postgres = request.getfixturevalue("postgres")
    pgdb = request.getfixturevalue("pgdb")
    return Backend("pg", tmp_path, postgres, pgdb)


@pytest.fixture
def wc(make_server, backend):
    s = wingcash_server(make_server, backend)
    return s, Api(s.port), backend


def test_30_01_accounts_and_tokens(wc):
    s, api, db = wc
    st, a = api.call("POST", "/accounts", {"name": "Alice"})
    assert st == 201
    assert set(a) == {"id", "name", "balance", "token"}
    assert a["name"] == "Alice" and a["balance"] == 0 and a["token"].startswith("wc_")
    b = api.account("Bob")
    # The token is stored only as a hash.
    stored = db.rows(f"SELECT token_hash FROM accounts WHERE id = {a['id']}")[0][0]
    assert len(stored) == 64 and a["token"] not in stored
    assert db.value(f"SELECT count(*) FROM accounts WHERE token_hash = '{a['token']}'") == 0
    st, got = api.call("GET", f"/accounts/{a['id']}", token=a["token"])
    assert st == 200 and got == {"id": a["id"], "name": "Alice", "balance": 0}
    # Missing or wrong token: 401; another account's: 403; no such account: 404.
    st, e = api.call("GET", f"/accounts/{a['id']}")
    assert st == 401 and e["error"]["code"] == "unauthorized"
    st, e = api.call("GET", f"/accounts/{a['id']}", token="wc_" + "x" * 43)
    assert st == 401
    st, e = api.call("GET", f"/accounts/{a['id']}", token=b["token"])
    assert st == 403 and e["error"]["code"] == "forbidden"
    st, e = api.call("GET", "/accounts/999999", token=b["token"])
    assert st == 404 and e["error"]["code"] == "not_found"
    # System accounts are not reachable as users.
    st, e = api.call("GET", "/accounts/1", token=b["token"])
    assert st == 404


def test_30_02_deposit_transfer_history(wc):
    s, api, db = wc
    a = api.account("a", deposit=1000)
    b = api.account("b")
    st, t = api.call("POST", f"/accounts/{a['id']}/transfers", {"to": b["id"], "amount": 1},
                     token=a["token"])
    assert st == 201
    assert set(t) == {"id", "from", "to", "amount", "fee", "created"}
    assert (t["from"], t["to"], t["amount"], t["fee"]) == (a["id"], b["id"], 1, 0)
    assert t["created"].endswith("Z")
    ids = [t["id"]]
    for i in range(6):
        src, dst = (a, b) if i % 2 else (b, a)
        if src is b:
            st, t = api.call("POST", f"/accounts/{b['id']}/transfers",
                             {"to": a["id"], "amount": 1}, token=b["token"])
        else:
            st, t = api.call("POST", f"/accounts/{a['id']}/transfers",
                             {"to": b["id"], "amount": 2}, token=a["token"])
        assert st == 201, t
        ids.append(t["id"])
    assert api.call("GET", f"/accounts/{a['id']}", token=a["token"])[1]["balance"] == 1000 - 1 - 6 + 3
    assert api.call("GET", f"/accounts/{b['id']}", token=b["token"])[1]["balance"] == 1 + 6 - 3
    # History: newest first, both directions, paged with limit/before/next.
    st, page = api.call("GET", f"/accounts/{b['id']}/transfers?limit=3", token=b["token"])
    assert st == 200 and [x["id"] for x in page["items"]] == ids[::-1][:3]
    assert page["next"] == ids[::-1][2]
    seen = [x["id"] for x in page["items"]]
    while page["next"]:
        st, page = api.call("GET", f"/accounts/{b['id']}/transfers?limit=3&before={page['next']}",
                            token=b["token"])
        seen += [x["id"] for x in page["items"]]
    assert seen == ids[::-1]
    # Deposits are not transfers.
    st, page = api.call("GET", f"/accounts/{a['id']}/transfers", token=a["token"])
    assert [x["id"] for x in page["items"]] == ids[::-1]
    st, e = api.call("GET", f"/accounts/{a['id']}/transfers?limit=0", token=a["token"])
    assert st == 422 and e["error"]["field"] == "limit"
    db.check_invariant()


def test_30_03_idempotency_keys(wc):
    s, api, db = wc
    a = api.account("a", deposit=100)
    b = api.account("b")
    body = {"to": b["id"], "amount": 10, "idempotency_key": "order-17"}
    st1, t1 = api.call("POST", f"/accounts/{a['id']}/transfers", body, token=a["token"])
    st2, t2 = api.call("POST", f"/accounts/{a['id']}/transfers", body, token=a["token"])
    assert st1 == st2 == 201 and t1 == t2
    assert db.balance(b["id"]) == 10
    st, e = api.call("POST", f"/accounts/{a['id']}/transfers", dict(body, amount=11),
                     token=a["token"])
    assert st == 409 and e["error"]["code"] == "idempotency_conflict"
    # Many clients sending the same key at once: money moves once.
    body = {"to": b["id"], "amount": 5, "idempotency_key": "race"}
    answers = []

    def send(c, _):
        answers.append(c.call("POST", f"/accounts/{a['id']}/transfers", body, token=a["token"]))
    concurrently(s.port, send, range(8))
    assert all(st == 201 for st, _ in answers), answers
    assert len({x["id"] for _, x in answers}) == 1
    assert db.balance(b["id"]) == 15
    db.check_invariant()


BAD = [
    # (body, raw, status, field)
    (None, b'{"to": 1, "amount": ', 400, None),
    (None, b'[1, 2]', 400, None),
    (None, b'\xff\xfe', 400, None),
    ({"amount": 5}, None, 422, "to"),
    ({"to": "x", "amount": 5}, None, 422, "to"),
    ({"to": "B"}, None, 422, "amount"),
    ({"to": "B", "amount": 0}, None, 422, "amount"),
    ({"to": "B", "amount": -3}, None, 422, "amount"),
    ({"to": "B", "amount": 1.5}, None, 422, "amount"),
    ({"to": "B", "amount": "5"}, None, 422, "amount"),
    ({"to": "B", "amount": 100000001}, None, 422, "amount"),
    ({"to": "B", "amount": 5, "idempotency_key": 7}, None, 422, "idempotency_key"),
    ({"to": "B", "amount": 5, "idempotency_key": "k" * 101}, None, 422, "idempotency_key"),
    ({"to": 999999, "amount": 5}, None, 404, "to"),
    ({"to": "A", "amount": 5}, None, 422, "to"),
    ({"to": "B", "amount": 51}, None, 409, "amount"),
]


def test_30_04_bad_input_changes_nothing(wc):
    s, api, db = wc
    a = api.account("a", deposit=50)
    b = api.account("b")
    before = db.fingerprint()
    for body, raw, status, field in BAD:
        if body:
            body = {k: (b["id"] if v == "B" else a["id"] if v == "A" else v)
                    for k, v in body.items()}
        st, e = api.call("POST", f"/accounts/{a['id']}/transfers", body, token=a["token"],
                         raw_body=raw)
        assert st == status, (body, raw, e)
        assert set(e) == {"error"} and e["error"]["message"], e
        assert e["error"].get("field") == field, (body, e)
    for path, body, status in [
            (f"/accounts/{a['id']}/deposits", {"amount": 0}, 422),
            (f"/accounts/{a['id']}/withdrawals", {"amount": 10}, 422),
            (f"/accounts/{a['id']}/withdrawals", {"amount": 30, "bank_account": "x"}, 409),
            (f"/accounts/{a['id']}/claims", {"amount": 51}, 409),
            ("/accounts", {"name": ""}, 422),
            ("/accounts", {}, 422),
            ("/claims/123456789012/redeem", {"to": b["id"]}, 404)]:
        st, e = api.call("POST", path, body, token=b["token"] if "claims/" in path else a["token"])
        assert st == status, (path, body, e)
        assert "error" in e
    # The framework's own errors are JSON too.
    for method, path, status in [("GET", "/nowhere", 404), ("DELETE", f"/accounts/{a['id']}", 405),
                                 ("GET", "/accounts/abc", 404)]:
        st, e = api.call(method, path, token=a["token"])
        assert st == status and e["error"]["code"], (path, e)
    st, hdrs, body = api.raw("POST", "/accounts", raw_body=b"x" * (2 * 1024 * 1024))
    assert st == 413 and b'"error"' in body
    assert db.fingerprint() == before
    db.check_invariant()


def test_30_05_withdrawals_and_claims(wc):
    s, api, db = wc
    a = api.account("a", deposit=1000)
    b = api.account("b")
    st, w = api.call("POST", f"/accounts/{a['id']}/withdrawals",
                     {"amount": 300, "bank_account": "DE89 3704 0044"}, token=a["token"])
    assert st == 201 and w == {"id": w["id"], "amount": 300, "fee": 25, "status": "pending"}
    assert db.balance(a["id"]) == 675
    assert db.rows("SELECT movement_id, amount, bank_account, status FROM payouts") == \
        [[w["id"], 300, "DE89 3704 0044", "pending"]]
    st, c = api.call("POST", f"/accounts/{a['id']}/claims", {"amount": 75}, token=a["token"])
    assert st == 201 and len(c["code"]) == 12 and c["code"].isdigit() and c["amount"] == 75
    assert db.balance(a["id"]) == 600
    st, r = api.call("POST", f"/claims/{c['code']}/redeem", {"to": b["id"]}, token=b["token"])
    assert st == 200 and r["amount"] == 75 and r["to"] == b["id"]
    assert db.balance(b["id"]) == 75
    st, e = api.call("POST", f"/claims/{c['code']}/redeem", {"to": b["id"]}, token=b["token"])
    assert st == 404 and e["error"]["field"] == "code"
    # Redeeming into an account needs that account's token.
    st, c2 = api.call("POST", f"/accounts/{a['id']}/claims", {"amount": 5}, token=a["token"])
    st, e = api.call("POST", f"/claims/{c2['code']}/redeem", {"to": b["id"]}, token=a["token"])
    assert st == 403
    st, e = api.call("POST", f"/claims/{c2['code']}/redeem", {"to": b["id"]})
    assert st == 401
    inv = db.check_invariant()
    assert inv["held"] == 5 and inv["fees"] == 25 and inv["withdrawals"] == 300
    # A withdrawal with an idempotency key is paid out once, however often it is sent.
    body = {"amount": 100, "bank_account": "DE89 3704 0044", "idempotency_key": "rent-11"}
    answers = [api.raw("POST", f"/accounts/{a['id']}/withdrawals", body, token=a["token"])
               for _ in range(3)]
    assert [st for st, _, _ in answers] == [201] * 3
    assert answers[0][2] == answers[1][2] == answers[2][2]
    assert "idempotent-replayed" not in answers[0][1]
    assert answers[1][1]["idempotent-replayed"] == "true"
    assert db.value("SELECT count(*) FROM payouts", payouts=True) == 2
    assert db.balance(a["id"]) == 595 - 125
    st, e = api.call("POST", f"/accounts/{a['id']}/withdrawals", dict(body, amount=101),
                     token=a["token"])
    assert st == 409 and e["error"]["code"] == "idempotency_conflict"
    db.check_invariant()


def test_30_06_wrong_claim_codes_are_rate_limited(make_server, backend):
    s = wingcash_server(make_server, backend, app_keys={"claim_attempts_per_minute": 4})
    api = Api(s.port)
    a = api.account("a", deposit=100)
    b = api.account("b")
    st, c = api.call("POST", f"/accounts/{a['id']}/claims", {"amount": 9}, token=a["token"])
    wrong = "1" + c["code"][1:] if c["code"][0] != "1" else "2" + c["code"][1:]
    statuses = [api.call("POST", f"/claims/{wrong}/redeem", {"to": b["id"]},
                         token=b["token"])[0] for _ in range(6)]
    assert statuses == [404] * 4 + [429] * 2
    # Even the right code waits now; another account is not affected.
    st, e = api.call("POST", f"/claims/{c['code']}/redeem", {"to": b["id"]}, token=b["token"])
    assert st == 429 and e["error"]["code"] == "too_many_attempts"
    st, r = api.call("POST", f"/claims/{c['code']}/redeem", {"to": a["id"]}, token=a["token"])
    assert st == 200
    backend.check_invariant()


def test_30_07_concurrent_debits_never_overdraw(make_server, backend):
    s = wingcash_server(make_server, backend, workers=2, threads=4)
    api = Api(s.port)
    a = api.account("payer", deposit=100)
    payees = [api.account(f"p{i}") for i in range(4)]
    results = []

    def pay(c, i):
        for j in range(6):
            results.append(c.call("POST", f"/accounts/{a['id']}/transfers",
                                  {"to": payees[(i + j) % 4]["id"], "amount": 7},
                                  token=a["token"])[0])
    concurrently(s.port, pay, range(8))
    ok = results.count(201)
    assert ok == 100 // 7 and results.count(409) == len(results) - ok, results
    assert backend.balance(a["id"]) == 100 - 7 * ok
    backend.check_invariant()


def pay_at_once(port, payers, to, payments, threads_each=1):
    """Every payer pays `to` 1 unit `payments` times in each of its threads_each threads,
    all threads at once; returns every (status, body)."""
    results = []

    def pay(c, p):
        for _ in range(payments):
            results.append(c.call("POST", f"/accounts/{p['id']}/transfers",
                                  {"to": to["id"], "amount": 1}, token=p["token"]))
    concurrently(port, pay, [p for p in payers for _ in range(threads_each)])
    return results


def test_30_08_hot_recipient(make_server, backend):
    """Many payers paying one recipient at once: every payment lands, none waits on the
    recipient's row (credits are appended), and the balance rolls up correctly."""
    s = wingcash_server(make_server, backend, workers=2, threads=4)
    api = Api(s.port)
    hot = api.account("hot")
    payers = [api.account(f"payer{i}", deposit=1000) for i in range(8)]
    results = pay_at_once(s.port, payers, hot, payments=40)
    assert [r for r in results if r[0] != 201] == [] and len(results) == 320
    # The recipient's row was never written by a payment: all 320 are pending credits...
    assert backend.value(f"SELECT balance FROM accounts WHERE id = {hot['id']}") == 0
    assert backend.value(f"SELECT count(*) FROM credits WHERE account_id = {hot['id']}") == 320
    # ... until the recipient reads its balance with that many pending (rolled up then).
    assert api.call("GET", f"/accounts/{hot['id']}", token=hot["token"])[1]["balance"] == 320
    assert backend.value(f"SELECT balance FROM accounts WHERE id = {hot['id']}") == 320
    assert backend.value(f"SELECT count(*) FROM credits WHERE account_id = {hot['id']}") == 0
    st, t = api.call("POST", f"/accounts/{hot['id']}/transfers",
                     {"to": payers[0]["id"], "amount": 320}, token=hot["token"])
    assert st == 201
    assert backend.balance(hot["id"]) == 0
    backend.check_invariant()


def test_30_09_concurrent_first_payments_from_fresh_accounts(make_server, backend):
    """Several first payments at once from accounts whose deposit is still a pending credit:
    one of them rolls the credit up, the others wait for it and then see the balance; none
    is refused for want of funds."""
    s = wingcash_server(make_server, backend, workers=2, threads=4)
    api = Api(s.port)
    payee = api.account("payee")
    payers = [api.account(f"fresh{i}", deposit=100) for i in range(6)]
    results = pay_at_once(s.port, payers, payee, payments=1, threads_each=6)
    assert [st for st, _ in results] == [201] * 36, [r for r in results if r[0] != 201]
    assert backend.balance(payee["id"]) == 36
    backend.check_invariant()
