"""wingcash across resources and under faults: withdrawals committed with their payout by
two-phase commit, JSON-RPC methods inside a client's distributed transaction, and the books
after a concurrent run with SIGKILLed workers, reloads and dropped connections."""
import os
import random
import signal
import socket
import threading
import time

import pytest

from fdt import wait_for
from test_21_txn import prepared
from wingcash_util import Api, Backend, Rpc, wingcash_server


@pytest.mark.parametrize("kind", ["pg+pg", "sqlite+pg"])
def test_31_01_withdrawal_commits_with_its_payout(make_server, postgres, pgdb, tmp_path, kind):
    """Ledger and payouts in two databases: both commit or neither does."""
    db = Backend(kind, tmp_path, postgres, pgdb)
    s = wingcash_server(make_server, db)
    api = Api(s.port)
    a = api.account("a", deposit=1000)
    st, w = api.call("POST", f"/accounts/{a['id']}/withdrawals",
                     {"amount": 100, "bank_account": "NL91ABNA0417164300"}, token=a["token"])
    assert st == 201, w
    assert db.rows("SELECT movement_id, amount FROM payouts", payouts=True) == [[w["id"], 100]]
    assert db.balance(a["id"]) == 875
    # The payouts database refuses the next payout: the ledger's debit is rolled back too.
    postgres.psql("ALTER TABLE payouts ADD CONSTRAINT no_fail CHECK (bank_account <> 'FAIL')",
                  dbname=db.payouts_db)
    before = db.fingerprint()
    st, e = api.call("POST", f"/accounts/{a['id']}/withdrawals",
                     {"amount": 100, "bank_account": "FAIL"}, token=a["token"])
    assert st == 500 and e["error"]["code"] == "internal"
    assert db.fingerprint() == before
    # A deferred failure at PREPARE (phase one) also leaves both sides as they were.
    postgres.psql("ALTER TABLE payouts DROP CONSTRAINT no_fail; "
                  "CREATE TABLE gate (x int UNIQUE DEFERRABLE INITIALLY DEFERRED); "
                  "CREATE FUNCTION twice() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$ BEGIN IF NEW.bank_account = 'LATE' THEN INSERT INTO gate VALUES (1), (1); "
                  "END IF; RETURN NEW; END $$; "
                  "CREATE TRIGGER t AFTER INSERT ON payouts FOR EACH ROW EXECUTE FUNCTION twice()",
                  dbname=db.payouts_db)
    st, e = api.call("POST", f"/accounts/{a['id']}/withdrawals",
                     {"amount": 100, "bank_account": "LATE"}, token=a["token"])
    assert st == 500, e
    assert db.fingerprint() == before
    assert prepared(postgres, db.payouts_db) == []
    if kind == "pg+pg":
        assert prepared(postgres, db.db) == []
    db.check_invariant()


def test_31_02_jsonrpc_methods_and_errors(make_server, tmp_path):
    db = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, db)
    rpc = Rpc(s.rpc_port)
    r = rpc.call("wingcash.create_account", {"name": "ann"})["result"]
    ann = r
    ben = rpc.call("wingcash.create_account", {"name": "ben"})["result"]
    assert ann["balance"] == 0 and ann["token"].startswith("wc_")
    r = rpc.call("wingcash.deposit", {"token": ann["token"], "account": ann["id"], "amount": 500})
    assert r["result"]["amount"] == 500
    r = rpc.call("wingcash.transfer", {"token": ann["token"], "from": ann["id"], "to": ben["id"],
                                       "amount": 120, "idempotency_key": "k"})
    t = r["result"]
    assert (t["from"], t["to"], t["amount"], t["fee"]) == (ann["id"], ben["id"], 120, 0)
    again = rpc.call("wingcash.transfer", {"token": ann["token"], "from": ann["id"],
                                           "to": ben["id"], "amount": 120, "idempotency_key": "k"})
    assert again["result"] == t
    r = rpc.call("wingcash.balance", {"token": ben["token"], "account": ben["id"]})
    assert r["result"]["balance"] == 120
    r = rpc.call("wingcash.transfers", {"token": ben["token"], "account": ben["id"]})
    assert [x["id"] for x in r["result"]["items"]] == [t["id"]] and r["result"]["next"] is None
    r = rpc.call("wingcash.claim", {"token": ann["token"], "account": ann["id"], "amount": 30})
    code = r["result"]["code"]
    r = rpc.call("wingcash.redeem", {"token": ben["token"], "code": code, "to": ben["id"]})
    assert r["result"]["amount"] == 30
    r = rpc.call("wingcash.withdraw", {"token": ben["token"], "account": ben["id"], "amount": 50,
                                       "bank_account": "x"})
    assert r["result"]["fee"] == 25
    before = db.fingerprint()
    cases = [
        ("wingcash.transfer", {"token": ann["token"], "from": ann["id"], "to": ben["id"],
                               "amount": 10**6}, 409, "insufficient_funds"),
        ("wingcash.transfer", {"token": ann["token"], "from": ann["id"], "to": ben["id"],
                               "amount": "ten"}, -32602, "invalid_field"),
        ("wingcash.transfer", {"token": ben["token"], "from": ann["id"], "to": ben["id"],
                               "amount": 1}, 403, "forbidden"),
        ("wingcash.balance", {"account": ann["id"]}, 401, "unauthorized"),
        ("wingcash.balance", [1, 2], -32602, "invalid_params"),
        ("wingcash.redeem", {"token": ben["token"], "code": code, "to": ben["id"]}, 404,
         "not_found"),
    ]
    for method, params, code_, word in cases:
        r = rpc.call(method, params)
        assert r["error"]["code"] == code_ and r["error"]["message"].startswith(word), r
        # JSON-RPC has no HTTP headers: its messages say how to do it over JSON-RPC.
        assert "Authorization" not in r["error"]["message"], r
    r = rpc.call("wingcash.balance", {"account": ann["id"]})
    assert "token" in r["error"]["message"] and "params" in r["error"]["message"], r
    assert db.fingerprint() == before
    # The connection still works after the errors.
    assert rpc.call("wingcash.balance", {"token": ann["token"], "account": ann["id"]})["result"]
    db.check_invariant()


def test_31_03_transfer_inside_a_distributed_transaction(make_server, postgres, pgdb, tmp_path):
    """A remote coordinator puts a wingcash transfer in its own transaction: begin with its
    xid, transfer, vote (prepared, in doubt if the client vanishes), finish."""
    db = Backend("pg", tmp_path, postgres, pgdb)
    s = wingcash_server(make_server, db, server={"node": "wc1"})
    api = Api(s.port)
    a = api.account("a", deposit=100)
    b = api.account("b")
    rpc = Rpc(s.rpc_port)
    assert "result" in rpc.call("txn.begin", {"xid": {"format_id": 7, "gtrid": "b3JkZXI"}})
    r = rpc.call("wingcash.transfer", {"token": a["token"], "from": a["id"], "to": b["id"],
                                       "amount": 40})
    assert r["result"]["amount"] == 40
    assert db.balance(b["id"]) == 0  # not committed yet
    assert rpc.call("txn.vote")["result"]
    assert len(prepared(postgres, db.db)) == 1
    assert rpc.call("txn.finish")["result"]
    assert db.balance(b["id"]) == 40 and prepared(postgres, db.db) == []
    # Voted, then the coordinator vanishes: the transfer stays prepared and listed, and it
    # blocks no other payment to the same recipient.
    rpc2 = Rpc(s.rpc_port)
    rpc2.call("txn.begin", {"xid": {"format_id": 7, "gtrid": "c2Vjb25k"}})
    assert rpc2.call("wingcash.transfer", {"token": a["token"], "from": a["id"], "to": b["id"],
                                           "amount": 10})["result"]
    assert rpc2.call("txn.vote")["result"]
    rpc2.close()
    s.wait_log("stays prepared (in doubt)")
    assert len(prepared(postgres, db.db)) == 1
    c = api.account("c", deposit=5)
    st, t = api.call("POST", f"/accounts/{c['id']}/transfers", {"to": b["id"], "amount": 5},
                     token=c["token"])
    assert st == 201
    st, got = api.call("GET", f"/accounts/{b['id']}", token=b["token"])
    assert got["balance"] == 45
    # Rolling the in-doubt transfer back restores the payer; the books balance.
    r = rpc.call("txn.rollback_prepared", {"xid": {"format_id": 7, "gtrid": "c2Vjb25k"}})
    assert "result" in r, r
    assert db.balance(a["id"]) == 60
    db.check_invariant()
    # SQLite cannot prepare: the vote is refused with a clear error and nothing is done;
    # following its hint, the coordinator commits the transfer in one phase.
    lite = Backend("sqlite", tmp_path / "lite")
    (tmp_path / "lite").mkdir()
    s2 = wingcash_server(make_server, lite)
    api2 = Api(s2.port)
    x = api2.account("x", deposit=10)
    y = api2.account("y")
    rpc3 = Rpc(s2.rpc_port)
    rpc3.call("txn.begin", {"xid": {"format_id": 7, "gtrid": "dGhpcmQ"}})
    assert "result" in rpc3.call("wingcash.transfer", {"token": x["token"], "from": x["id"],
                                                       "to": y["id"], "amount": 3})
    r = rpc3.call("txn.vote")
    assert "cannot prepare" in r["error"]["message"], r
    assert "nothing was done" in r["error"]["message"], r
    assert lite.balance(x["id"]) == 10
    assert rpc3.call("txn.finish")["result"] == {"state": "committed"}
    assert lite.balance(x["id"]) == 7
    lite.check_invariant()


def test_31_04_books_balance_after_kills_reloads_and_drops(make_server, backend_kind, request,
                                                          tmp_path):
    """Concurrent transfers, deposits, withdrawals and claims while workers are SIGKILLed,
    the server reloads and clients drop connections mid-request: afterwards the books
    balance and every transfer that got a 201 is in the ledger."""
    if backend_kind == "sqlite":
        db = Backend("sqlite", tmp_path)
    else:
        db = Backend("pg", tmp_path, request.getfixturevalue("postgres"),
                     request.getfixturevalue("pgdb"))
    s = wingcash_server(make_server, db, workers=2, threads=4)
    api = Api(s.port)
    accounts = [api.account(f"u{i}", deposit=10000) for i in range(6)]
    confirmed = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(seed):
        rnd = random.Random(seed)
        c = Api(s.port)
        while not stop.is_set():
            src, dst = rnd.sample(accounts, 2)
            op = rnd.random()
            try:
                if op < 0.05:
                    # Drop the connection in the middle of a request.
                    sock = socket.create_connection(("127.0.0.1", s.port))
                    body = b'{"to": %d, "amount": 3}' % dst["id"]
                    sock.sendall(b"POST /accounts/%d/transfers HTTP/1.1\r\nHost: t\r\n"
                                 b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
                                 % (src["id"], src["token"].encode(), len(body), body))
                    sock.close()
                    continue
                if op < 0.75:
                    st, t = c.call("POST", f"/accounts/{src['id']}/transfers",
                                   {"to": dst["id"], "amount": rnd.randint(1, 50)},
                                   token=src["token"])
                    if st == 201:
                        with lock:
                            confirmed.append(t)
                    else:
                        assert st in (409, 503), (st, t)
                elif op < 0.85:
                    st, _ = c.call("POST", f"/accounts/{src['id']}/deposits",
                                   {"amount": rnd.randint(1, 100)}, token=src["token"])
                    assert st in (201, 503)
                elif op < 0.93:
                    st, _ = c.call("POST", f"/accounts/{src['id']}/withdrawals",
                                   {"amount": rnd.randint(1, 100), "bank_account": "b"},
                                   token=src["token"])
                    assert st in (201, 409, 503)
                else:
                    st, cl = c.call("POST", f"/accounts/{src['id']}/claims",
                                    {"amount": rnd.randint(1, 20)}, token=src["token"])
                    if st == 201 and rnd.random() < 0.7:
                        c.call("POST", f"/claims/{cl['code']}/redeem", {"to": dst["id"]},
                               token=dst["token"])
            except (ConnectionError, OSError):
                c.close()  # the worker was killed under this request: outcome unknown
    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        for round_ in range(6):
            time.sleep(0.7)
            pids = s.worker_pids()
            if pids and round_ % 2 == 0:
                os.kill(random.choice(pids), signal.SIGKILL)
            else:
                s.reload(wait=False, check=False)
        time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    wait_for(lambda: len(s.worker_pids()) == 2, timeout=30, what="workers back")
    assert len(confirmed) > 50, len(confirmed)
    ids = {r[0]: r[1:] for r in db.rows("SELECT id, from_id, to_id, amount FROM movements "
                                        "WHERE kind = 'transfer'")}
    for t in confirmed:
        assert ids.get(t["id"]) == [t["from"], t["to"], t["amount"]], t
    db.check_invariant()


@pytest.fixture(params=["sqlite", "pg"])
def backend_kind(request):
    return request.param


def test_31_05_two_sqlite_resources_are_refused_at_start(make_server, tmp_path):
    """Ledger and payouts on two SQLite files can never commit a withdrawal atomically
    (neither can prepare): the worker refuses to start, saying why, instead of answering
    every withdrawal with a 500."""

    class TwoLite:
        def ini(self):
            return (f"[resource.ledger]\ndriver = sqlite\npath = {tmp_path}/ledger.db\n"
                    f"[resource.payouts]\ndriver = sqlite\npath = {tmp_path}/payouts.db\n")

    s = wingcash_server(make_server, TwoLite(), start=False)
    s.start(wait=False)
    wait_for(lambda: "could never commit atomically" in s.log(), timeout=15,
             what="the start refused with its reason")
    assert "[resource.ledger] and [resource.payouts]" in s.log()
    st = s.status(quiet=True)
    assert not st or not any(w["state"] == "ready" for g in st["generations"]
                             for w in g["workers"])
