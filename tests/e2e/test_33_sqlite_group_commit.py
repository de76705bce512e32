"""SQLite group commit ([resource.NAME] group_commit): the requests of a worker share one
write transaction and one fsync, each in a savepoint of its own, and each is answered only
once its batch is durable. Checked with wingcash: a batch whose members fail alone, and the
books after SIGKILLs of workers and of the whole process tree under load."""
import os
import random
import re
import signal
import threading
import time

from fdt import kill_tree, wait_for
from wingcash_util import Api, Backend, Rpc, wingcash_server


class GroupCommit(Backend):
    """A SQLite ledger with group commit spelt out (and any other resource keys)."""

    def __init__(self, tmp_path, **keys):
        super().__init__("sqlite", tmp_path)
        self.keys = dict({"group_commit": "yes"}, **keys)

    def ini(self):
        return super().ini() + "".join(f"{k} = {v}\n" for k, v in self.keys.items())


def open_txns(s):
    return sum(w["transactions_open"] for w in s.workers("ready"))


def test_33_01_a_failing_request_does_not_fail_its_batch(make_server, tmp_path):
    """A JSON-RPC client's open transaction holds the writer while 16 transfers queue
    behind it; they then run in one batch (the window is long). Overdrawing ones get 409,
    one to a missing account 404, and each of the others commits: the payer's balance
    checks see the debits released before them in the batch, so exactly as many pass as
    the money allows and the books balance."""
    db = GroupCommit(tmp_path, group_commit_window=5)
    s = wingcash_server(make_server, db, workers=1, threads=20, server={"log_level": "debug"})
    api = Api(s.port)
    payer = api.account("payer", deposit=100)
    rich = api.account("rich", deposit=1000)
    dest = api.account("dest")
    holder = Rpc(s.rpc_port)
    assert "result" in holder.call("txn.begin")
    r = holder.call("wingcash.transfer", {"token": rich["token"], "from": rich["id"],
                                          "to": dest["id"], "amount": 1})
    assert r["result"]["amount"] == 1, r
    answers = []
    lock = threading.Lock()

    def send(src, to, amount):
        st, body = Api(s.port).call("POST", f"/accounts/{src['id']}/transfers",
                                    {"to": to, "amount": amount}, token=src["token"])
        with lock:
            answers.append((src["id"], to, amount, st, body))

    jobs = [(payer, dest["id"], 15)] * 10 + [(rich, dest["id"], 2)] * 5 + \
        [(rich, 999999, 3)]
    threads = [threading.Thread(target=send, args=j) for j in jobs]
    for t in threads:
        t.start()
    # Every one of them waits for the writer, inside its request's transaction.
    wait_for(lambda: open_txns(s) == 1 + len(jobs), timeout=20, what="requests queued")
    assert answers == []
    mark = len(s.log())
    assert holder.call("txn.finish")["result"] == {"state": "committed"}
    for t in threads:
        t.join(timeout=30)
    by = {}
    for src, to, amount, st, body in answers:
        by.setdefault((src, to, amount), []).append(st)
    assert sorted(by[(payer["id"], dest["id"], 15)]) == [201] * 6 + [409] * 4
    assert by[(rich["id"], dest["id"], 2)] == [201] * 5
    assert by[(rich["id"], 999999, 3)] == [404]
    assert db.balance(payer["id"]) == 10
    assert db.balance(rich["id"]) == 1000 - 1 - 10
    assert db.balance(dest["id"]) == 1 + 90 + 10
    done = {r[0] for r in db.rows("SELECT id FROM movements WHERE kind = 'transfer'")}
    for src, to, amount, st, body in answers:
        if st == 201:
            assert body["id"] in done, body
    # The holder's transfer and the 11 that passed were committed, the 5 that failed rolled
    # back alone; they queued together, so batches of several requests.
    batches = [(int(n), int(m)) for n, m in re.findall(
        r"\[resource\.ledger\] batch of (\d+) committed \((\d+) rolled back alone\)",
        s.log()[mark:])]
    assert sum(n for n, _ in batches) == 12 and sum(m for _, m in batches) == 5, batches
    assert max(n for n, _ in batches) > 1, batches
    db.check_invariant()


def test_33_02_kills_during_group_commits_lose_no_answered_transfer(make_server, tmp_path):
    """Transfers and deposits from 12 clients into 2 workers with group commit while single
    workers are SIGKILLed, and then the whole process tree (master and workers) at once;
    a new server on the same file carries on. Every transfer answered 201 is in the ledger
    and the books balance: nothing answered was lost, nothing half-applied."""
    db = GroupCommit(tmp_path)
    s = wingcash_server(make_server, db, workers=2, threads=8)
    api = Api(s.port)
    accounts = [api.account(f"u{i}", deposit=5000) for i in range(8)]
    confirmed = []
    unexpected = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(seed):
        rnd = random.Random(seed)
        c = Api(s.port)
        while not stop.is_set():
            src, dst = rnd.sample(accounts, 2)
            try:
                if rnd.random() < 0.85:
                    st, t = c.call("POST", f"/accounts/{src['id']}/transfers",
                                   {"to": dst["id"], "amount": rnd.randint(1, 400)},
                                   token=src["token"])
                    with lock:
                        if st == 201:
                            confirmed.append(t)
                        elif st not in (409, 503):
                            unexpected.append((st, t))
                else:
                    st, d = c.call("POST", f"/accounts/{src['id']}/deposits",
                                   {"amount": rnd.randint(1, 100)}, token=src["token"])
                    if st not in (201, 503):
                        with lock:
                            unexpected.append((st, d))
            except (ConnectionError, OSError):
                c.close()  # killed under this request: its outcome is unknown
                time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(0.8)
            pids = s.worker_pids()
            if pids:
                os.kill(random.choice(pids), signal.SIGKILL)
        wait_for(lambda: len(s.worker_pids()) == 2, timeout=30, what="workers back")
        time.sleep(0.8)
        before = len(confirmed)
        # The whole tree at once: nothing gets to finish or roll back anything.
        kill_tree(s.pid)
        s.proc.wait()
        s.logf.close()
        s.start()
        wait_for(lambda: len(confirmed) > before + 50, timeout=30, what="transfers again")
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert unexpected == []
    assert len(confirmed) > 200, len(confirmed)
    ids = {r[0]: r[1:] for r in db.rows("SELECT id, from_id, to_id, amount FROM movements "
                                        "WHERE kind = 'transfer'")}
    for t in confirmed:
        assert ids.get(t["id"]) == [t["from"], t["to"], t["amount"]], t
    db.check_invariant()


def test_33_03_group_commit_off_still_commits_each_request(make_server, tmp_path):
    """group_commit = no: each request commits on its own connection, as before."""
    db = GroupCommit(tmp_path, group_commit="no")
    s = wingcash_server(make_server, db, workers=1, threads=4)
    api = Api(s.port)
    a = api.account("a", deposit=100)
    b = api.account("b")
    st, t = api.call("POST", f"/accounts/{a['id']}/transfers", {"to": b["id"], "amount": 30},
                     token=a["token"])
    assert st == 201, t
    st, e = api.call("POST", f"/accounts/{a['id']}/transfers", {"to": b["id"], "amount": 300},
                     token=a["token"])
    assert st == 409, e
    assert db.balance(a["id"]) == 70 and db.balance(b["id"]) == 30
    db.check_invariant()
