"""wingcash, transactions and drivers: paths no other test takes (session 7 coverage).

Database errors in the middle of each operation (SQLite triggers that refuse one
statement, a table or column renamed behind the server's back), idempotency rows no
wingcash operation writes (a key with no movement, a movement that is gone), no randomness
for a token and a claim code that collides on every draw (tests/shim/failshim.so), a claim
code redeemed twice at once (PostgreSQL), and a driver module whose entry refuses this
fdtserver. Each asserts what the client is told and that the books did not change."""
import json
import os
import shutil
import sqlite3
import subprocess
import threading

import pytest

from fdt import BUILD, FDTSERVER, LineClient, wait_for
from wingcash_util import Api, Backend, Rpc, wingcash_server

SHIM = BUILD / "tests" / "shim" / "failshim.so"


def need_shim():
    if not SHIM.exists():
        pytest.skip("failshim.so is not built (sanitizer build)")


def shim_env(fail, **more):
    return dict({"LD_PRELOAD": str(SHIM), "FDT_FAIL": fail}, **more)


def refuse(table, op):
    """SQL for a trigger that makes every `op` on `table` fail with a message naming it."""
    return (f"CREATE TRIGGER refuse_{table}_{op} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'refused by the test: {op} {table}'); END")


def drop_refusal(table, op):
    return f"DROP TRIGGER refuse_{table}_{op}"


def test_17_01_database_errors_in_each_operation(make_server, tmp_path):
    """Each statement of each operation fails in turn: the request is answered 500
    "internal" with the reason in the log, and nothing changed in the books."""
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend)
    api = Api(s.port)
    a = api.account("a", deposit=1000)
    b = api.account("b")
    acc, tok = f"/accounts/{a['id']}", a["token"]
    # A live claim, and transfers with idempotency keys, to replay later.
    st, claim = api.call("POST", f"{acc}/claims", {"amount": 10}, token=tok)
    assert st == 201, claim
    for key in ("k1", "k2"):
        st, m = api.call("POST", f"{acc}/transfers",
                         {"to": b["id"], "amount": 1, "idempotency_key": key}, token=tok)
        assert st == 201, m
    redeem = (f"/claims/{claim['code']}/redeem", {"to": b["id"]}, b["token"])
    transfer = (f"{acc}/transfers", {"to": b["id"], "amount": 5}, tok)
    cases = [
        # (statements that break it, statements that mend it, request, what the log says)
        ([refuse("accounts", "INSERT")], [drop_refusal("accounts", "INSERT")],
         ("/accounts", {"name": "c"}, None), "refused by the test: INSERT accounts"),
        (["ALTER TABLE credits RENAME TO credits_gone"],
         ["ALTER TABLE credits_gone RENAME TO credits"], (acc, None, tok),
         "no such table: credits"),
        # Someone else's account: whether it exists is asked (a user account: the kind).
        (["ALTER TABLE accounts RENAME COLUMN kind TO kind_gone"],
         ["ALTER TABLE accounts RENAME COLUMN kind_gone TO kind"],
         (f"/accounts/{b['id']}", None, tok), "no such column: kind"),
        (["ALTER TABLE accounts RENAME COLUMN kind TO kind_gone"],
         ["ALTER TABLE accounts RENAME COLUMN kind_gone TO kind"], transfer,
         "no such column: kind"),
        ([refuse("entries", "INSERT")], [drop_refusal("entries", "INSERT")],
         (f"{acc}/deposits", {"amount": 3}, tok), "refused by the test: INSERT entries"),
        ([refuse("credits", "INSERT")], [drop_refusal("credits", "INSERT")],
         (f"{acc}/deposits", {"amount": 3}, tok), "refused by the test: INSERT credits"),
        ([refuse("entries", "INSERT")], [drop_refusal("entries", "INSERT")],
         (f"{acc}/withdrawals", {"amount": 3, "bank_account": "DE00 1234"}, tok),
         "refused by the test: INSERT entries"),
        ([refuse("entries", "INSERT")], [drop_refusal("entries", "INSERT")],
         (f"{acc}/claims", {"amount": 3}, tok), "refused by the test: INSERT entries"),
        ([refuse("claims", "INSERT")], [drop_refusal("claims", "INSERT")],
         (f"{acc}/claims", {"amount": 3}, tok), "refused by the test: INSERT claims"),
        ([refuse("claims", "DELETE")], [drop_refusal("claims", "DELETE")], redeem,
         "refused by the test: DELETE claims"),
        # A repeated key: the first movement is read again; or the key's row itself.
        (["ALTER TABLE movements RENAME TO movements_gone"],
         ["ALTER TABLE movements_gone RENAME TO movements"],
         (f"{acc}/transfers", {"to": b["id"], "amount": 1, "idempotency_key": "k1"}, tok),
         "no such table: movements"),
        (["ALTER TABLE idempotency RENAME COLUMN movement_id TO movement_gone"],
         ["ALTER TABLE idempotency RENAME COLUMN movement_gone TO movement_id"],
         (f"{acc}/transfers", {"to": b["id"], "amount": 1, "idempotency_key": "k2"}, tok),
         "no such column: movement_id"),
        (["ALTER TABLE entries RENAME TO entries_gone"],
         ["ALTER TABLE entries_gone RENAME TO entries"], (f"{acc}/transfers", None, tok),
         "no such table: entries"),
    ]
    before = backend.fingerprint()
    con = sqlite3.connect(f"{tmp_path}/wingcash.db", timeout=30)
    for i, (breaks, mends, (path, body, token), logged) in enumerate(cases):
        for sql in breaks:
            con.execute(sql)
        con.commit()
        st, e = api.call("POST" if body is not None else "GET", path, body, token=token)
        for sql in mends:
            con.execute(sql)
        con.commit()
        assert st == 500, (i, e)
        assert e["error"] == {"code": "internal", "message": "internal error"}, (i, e)
        s.wait_log(logged)
        assert backend.fingerprint() == before, i
    con.close()

    # A wrong code is counted outside the transaction: when that fails, it is logged,
    # and the client still hears that the code is wrong.
    con = sqlite3.connect(f"{tmp_path}/wingcash.db", timeout=30)
    con.execute(refuse("claim_failures", "INSERT"))
    con.execute(refuse("claim_failures", "UPDATE"))
    con.commit()
    st, e = api.call("POST", "/claims/999999999999/redeem", {"to": b["id"]}, token=b["token"])
    assert st == 404, e
    assert e["error"]["message"] == "no live claim has this code"
    s.wait_log("wingcash: counting a wrong claim code: statement failed: refused by the test")
    con.execute(drop_refusal("claim_failures", "INSERT"))
    con.execute(drop_refusal("claim_failures", "UPDATE"))
    con.commit()
    con.close()

    # The longest page asked for is served (100 items at most).
    st, page = api.call("GET", f"{acc}/transfers?limit=100", token=tok)
    assert st == 200 and len(page["items"]) == 2 and page["next"] is None, page
    # And everything works again.
    st, m = api.call("POST", *transfer[:2], token=tok)
    assert st == 201, m
    st, m = api.call("POST", redeem[0], redeem[1], token=redeem[2])
    assert st == 200, m
    backend.check_invariant()
    api.close()


def test_17_02_idempotency_rows_without_their_movement(make_server, tmp_path):
    """An idempotency key whose row names no movement (left by a first request still in
    progress), or a movement that is not there: the repeat is refused with 409, and
    nothing is moved twice."""
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend)
    api = Api(s.port)
    a = api.account("a", deposit=100)
    b = api.account("b")
    path = f"/accounts/{a['id']}/transfers"
    body = {"to": b["id"], "amount": 7, "idempotency_key": "once"}
    st, m = api.call("POST", path, body, token=a["token"])
    assert st == 201, m
    con = sqlite3.connect(f"{tmp_path}/wingcash.db", timeout=30)
    for movement in ("NULL", "999999"):
        con.execute(f"UPDATE idempotency SET movement_id = {movement} WHERE key = 'once'")
        con.commit()
        before = backend.fingerprint()
        st, e = api.call("POST", path, body, token=a["token"])
        assert st == 409, (movement, e)
        assert e["error"] == {"code": "idempotency_conflict", "field": "idempotency_key",
                              "message": "the first request with this key is still in "
                                         "progress"}, e
        assert backend.fingerprint() == before
    con.execute(f"UPDATE idempotency SET movement_id = {m['id']} WHERE key = 'once'")
    con.commit()
    con.close()
    st, again = api.call("POST", path, body, token=a["token"])
    assert st == 201 and again["id"] == m["id"], again
    assert backend.balance(b["id"]) == 7
    backend.check_invariant()
    api.close()


def test_17_03_no_randomness_for_a_token(make_server, tmp_path):
    """getrandom fails in the worker when the account's token is drawn: opening the
    account is answered 503 "unavailable" (try again), no account is made, and the server
    serves on. The transaction draws its id first: the walk fails the n-th call of the
    worker, n = 1, 2, ..., until the token's draw is the one that fails."""
    need_shim()
    backend = Backend("sqlite", tmp_path)
    seen = []
    for n in range(1, 9):
        s = wingcash_server(make_server, backend, env=shim_env(f"getrandom@{n}:EAGAIN/child"))
        api = Api(s.port)
        before = backend.fingerprint()
        st, e = api.call("POST", "/accounts", {"name": "a"})
        seen.append((n, st, e))
        if st != 201:
            assert backend.fingerprint() == before
        st2, r = api.call("GET", "/")
        assert st2 == 200 and r["service"] == "wingcash", r
        api.close()
        s.stop()
        if st == 503 and e["error"]["message"] == "no randomness; try again":
            # Before it: the transaction's id could not be drawn (503 too: try again).
            assert e["error"]["code"] == "unavailable", e
            continue
        if st == 503:
            assert e["error"] == {"code": "unavailable",
                                  "message": "no randomness for a token; try again"}, e
            break
        assert st == 201, seen  # nothing failed yet
    else:
        raise AssertionError(f"the token's draw never failed: {seen}")
    assert any(st == 503 and e["error"]["message"] == "no randomness; try again"
               for _, st, e in seen), seen


def test_17_04_no_free_claim_code(make_server, tmp_path):
    """Every draw of a claim code gives the live one (getrandom gives zeros): after the
    last draw the claim is refused 503 "unavailable", and the amount stays the payer's."""
    need_shim()
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend)
    api = Api(s.port)
    a = api.account("a", deposit=100)
    api.close()
    s.stop()
    s.env.update(shim_env("getrandom@1000000000/child", FDT_FAIL_GETRANDOM_ZERO="1"))
    s.start()
    api = Api(s.port)
    path = f"/accounts/{a['id']}/claims"
    st, c = api.call("POST", path, {"amount": 10}, token=a["token"])
    assert st == 201, c
    before = backend.fingerprint()
    st, e = api.call("POST", path, {"amount": 10}, token=a["token"])
    assert st == 503, e
    assert e["error"] == {"code": "unavailable",
                          "message": "could not draw a free claim code; try again"}, e
    assert backend.fingerprint() == before
    assert backend.balance(a["id"]) == 90
    backend.check_invariant()
    api.close()


def test_17_05_claim_redeemed_twice_at_once(make_server, tmp_path, postgres, pgdb):
    """Two redeems of one code both find it live, then queue on its row (held by the
    test): the first takes the money, the second is told the code is gone (404), and the
    claim is paid once."""
    backend = Backend("pg", tmp_path, postgres, pgdb)
    s = wingcash_server(make_server, backend, threads=4)
    api = Api(s.port)
    a = api.account("a", deposit=100)
    b = api.account("b")
    st, c = api.call("POST", f"/accounts/{a['id']}/claims", {"amount": 40}, token=a["token"])
    assert st == 201, c
    api.close()
    # Hold the claim's row lock: both redeems pass the lookup and wait at the DELETE.
    db = pgdb.split("dbname=")[1]
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-A", "-t", "-h", str(postgres.dir), "-p", str(postgres.port),
         "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    holder.stdin.write(f"BEGIN;\nSELECT 1 FROM claims WHERE code = '{c['code']}' FOR UPDATE;\n"
                       "SELECT 'locked';\n")
    holder.stdin.flush()
    line = ""
    while "locked" not in line:
        line = holder.stdout.readline()
        assert line, "psql ended"
    answers = []

    def redeem():
        api = Api(s.port)
        answers.append(api.call("POST", f"/claims/{c['code']}/redeem", {"to": b["id"]},
                                token=b["token"]))
        api.close()
    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: int(postgres.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND query LIKE 'DELETE FROM claims%'", dbname=db)[0][0]) == 2,
        timeout=30, what="both redeems waiting for the claim's row")
    holder.stdin.write("COMMIT;\n")
    holder.stdin.close()
    holder.wait(30)
    for t in threads:
        t.join(60)
    statuses = sorted(st for st, _ in answers)
    assert statuses == [200, 404], answers
    lost = [e for st, e in answers if st == 404][0]
    assert lost["error"] == {"code": "not_found", "field": "code",
                             "message": "no live claim has this code"}, lost
    assert backend.balance(b["id"]) == 40
    backend.check_invariant()


MODULE_REFUSING = r"""
#include <stddef.h>
const void *fdt_rm_driver_v1(const void *host);
const void *fdt_rm_driver_v1(const void *host) { (void)host; return NULL; }
"""


def test_17_06_driver_module_refusing_this_host(tmp_path):
    """A module whose entry point refuses this fdtserver (returns no driver): the driver
    is not available, and the log says the module refused the host's ABI version."""
    cc = shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler")
    lib = tmp_path / "lib"
    (lib / "fdtserver").mkdir(parents=True)
    shutil.copy(BUILD / "libfdt.so.0", lib / "libfdt.so.0")
    src = tmp_path / "refusing.c"
    src.write_text(MODULE_REFUSING)
    module = lib / "fdtserver" / "fdt_rm_sqlite.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(module), str(src)], check=True,
                   timeout=60)
    conf = tmp_path / "txn.ini"
    conf.write_text("[server]\nnode = nodec\n[listen.main]\naddress = 127.0.0.1:1\n"
                    "protocol = raw\n[app]\nmodule = /nonexistent.so\n"
                    f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n")
    r = subprocess.run([str(FDTSERVER), "txn", "rollback", "fdt1:nodec:lite:1:AQID:", "-c",
                        str(conf)], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, LD_LIBRARY_PATH=str(lib)))
    assert r.returncode == 1, r
    assert f"driver sqlite: {module} refused this fdtserver (ABI version " in r.stderr, r
    assert "fdtserver txn: [resource.lite] driver sqlite is not available" in r.stderr, r
    assert not (tmp_path / "lite.db").exists()


def test_17_07_pages_methods_and_accounts_of_another_kind(make_server, tmp_path):
    """The longest page history_max allows (256: one short of the page's room plus the
    look-ahead row), a method no view serves (405 in wingcash's error shape), and a token
    whose account is not a user account (no balance to show: 404)."""
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend, app_keys={"history_max": 256})
    api = Api(s.port)
    a = api.account("a", deposit=1000)
    b = api.account("b")
    path = f"/accounts/{a['id']}/transfers"
    for _ in range(3):
        st, m = api.call("POST", path, {"to": b["id"], "amount": 1}, token=a["token"])
        assert st == 201, m
    st, page = api.call("GET", path + "?limit=256", token=a["token"])
    assert st == 200 and len(page["items"]) == 3 and page["next"] is None, page

    st, e = api.call("PUT", f"/accounts/{a['id']}", {"name": "x"}, token=a["token"])
    assert st == 405, e
    assert e["error"]["code"] == "method_not_allowed", e

    con = sqlite3.connect(f"{tmp_path}/wingcash.db", timeout=30)
    con.execute(f"UPDATE accounts SET kind = 'system' WHERE id = {b['id']}")
    con.commit()
    st, e = api.call("GET", f"/accounts/{b['id']}", token=b["token"])
    assert st == 404, e
    assert e["error"] == {"code": "not_found", "message": f"no account {b['id']}"}, e
    con.execute(f"UPDATE accounts SET kind = 'user' WHERE id = {b['id']}")
    con.commit()
    con.close()
    st, acc = api.call("GET", f"/accounts/{b['id']}", token=b["token"])
    assert st == 200 and acc["balance"] == 3, acc
    backend.check_invariant()
    api.close()


def test_17_08_conflict_on_every_attempt(make_server, tmp_path, postgres, pgdb):
    """PostgreSQL reports a serialization failure (40001) on every attempt of a deposit:
    the view answers "conflict", the framework runs it again, and after the last attempt
    the client gets 503 "unavailable" in wingcash's error shape; nothing was deposited."""
    backend = Backend("pg", tmp_path, postgres, pgdb)
    s = wingcash_server(make_server, backend)
    api = Api(s.port)
    a = api.account("a", deposit=100)
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "RAISE EXCEPTION 'made up by the test' USING ERRCODE = '40001'; END $$; "
                  "CREATE TRIGGER conflict BEFORE INSERT ON credits "
                  "FOR EACH ROW EXECUTE FUNCTION conflict()", dbname=db)
    before = backend.fingerprint()
    st, e = api.call("POST", f"/accounts/{a['id']}/deposits", {"amount": 5}, token=a["token"])
    assert st == 503, e
    assert e["error"] == {"code": "unavailable",
                          "message": "The request conflicted with others; try again."}, e
    assert backend.fingerprint() == before
    # Over JSON-RPC: the conflict's own code, for the client to try again.
    rpc = Rpc(s.rpc_port)
    ans = rpc.call("wingcash.deposit", {"token": a["token"], "account": a["id"], "amount": 5})
    assert ans["error"]["code"] == -32014, ans
    assert "made up by the test" in ans["error"]["message"], ans
    rpc.close()
    assert backend.fingerprint() == before
    postgres.psql("DROP TRIGGER conflict ON credits", dbname=db)
    st, d = api.call("POST", f"/accounts/{a['id']}/deposits", {"amount": 5}, token=a["token"])
    assert st == 201, d
    assert backend.balance(a["id"]) == 105
    backend.check_invariant()
    api.close()


def test_17_09_builtin_methods_misused(make_server, tmp_path):
    """The built-in txn.* methods: one that does not exist, an xid part that is not a
    string, and aborting with no transaction: each a JSON-RPC error that says why, and the connection serves on."""
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend)
    rpc = Rpc(s.rpc_port)
    ans = rpc.call("txn.nosuch")
    assert ans["error"] == {"code": -32601, "message": "method not found: txn.nosuch"}, ans
    ans = rpc.call("txn.begin", {"xid": {"format_id": 1, "gtrid": 5}})
    assert ans["error"]["code"] == -32602, ans
    assert ans["error"]["message"] == "xid.gtrid must be a base64url string", ans
    ans = rpc.call("txn.abort")
    assert ans["error"]["message"] == "no transaction: call txn.begin first", ans
    ans = rpc.call("txn.begin", {"xid": {"format_id": 1, "gtrid": "AQID"}})
    assert ans["result"]["role"] == "participant", ans
    ans = rpc.call("txn.abort")
    assert ans["result"]["state"] == "rolled back", ans
    rpc.close()


def test_17_10_sqlite_statement_with_a_trailing_comment(make_server, tmp_path):
    """A SQLite statement followed by a comment runs (the comment is no statement): the
    client gets OK with the rows changed."""
    s = make_server(extra_ini=f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/l.db\n")
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL lite CREATE TABLE t (x INTEGER); -- made by the test") == "OK 0"
    assert c.call("SQL lite INSERT INTO t VALUES (1); /* one row */ ") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    con = sqlite3.connect(f"{tmp_path}/l.db")
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    con.close()


def test_17_11_query_dead_pooled_sessions_and_unknown_resource(make_server, tmp_path, postgres,
                                                                 pgdb):
    """fdt_txn_query's first statement meets a pooled PostgreSQL session that died (every
    session terminated): it runs again on a fresh one and the client sees no error; and
    a query naming no configured resource is an error answer, nothing else."""
    from http_util import Client, build
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE kv (k text PRIMARY KEY, v bigint)", dbname=db)
    s = make_server(extra_ini=f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n",
                    threads=2, start=False)
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.start()
    c = Client(s.port)

    def post(path, sql):
        c.send(build("POST", path, body=sql.encode()))
        return c.read_response()
    for i in range(3):
        r = post(f"/query/pg?k{i}&{i}", "INSERT INTO kv VALUES ($1, $2) RETURNING v")
        assert r.status == 200 and r.body == f"{i}\nchanges=1\n".encode(), r
    killed = postgres.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                           dbname=db)
    assert int(killed[0][0]) >= 1
    r = post("/query/pg?k9&9", "INSERT INTO kv VALUES ($1, $2) RETURNING v")
    assert r.status == 200 and r.body == b"9\nchanges=1\n", r
    s.wait_log("a pooled session was dead")
    r = post("/query/nosuch?1", "SELECT $1")
    assert r.status == 500, r
    assert b"nosuch" in r.body, r
    assert postgres.psql("SELECT count(*) FROM kv", dbname=db) == [["4"]]
    c.close()


def test_17_12_decision_log_when_postgresql_is_down(make_server, tmp_path):
    """The PostgreSQL server of the decision log cannot be reached when a worker starts:
    the worker says so, serves on, and creates the log table on first use instead."""
    dsn = f"host={tmp_path}/nopg port=1 user=postgres dbname=none connect_timeout=2"
    s = make_server(extra_ini=f"[resource.pg]\ndriver = postgresql\ndsn = {dsn}\nlog = yes\n",
                    server={"node": "downnode"})
    s.wait_log("decision log: ")
    assert "(created on first use instead)" in s.log()
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg SELECT 1").startswith("ERR"), s.log()[-2000:]
    assert c.call("TXN ABORT").startswith(("OK", "ERR"))


def test_17_13_empty_fault_file(make_server, tmp_path, postgres, pgdb):
    """FDT_FAULT_FILE names an empty file: no fault point matches, the transaction votes
    and finishes, and the file stays for a later test step."""
    fault = tmp_path / "fault"
    fault.write_text("")
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE ft (x int)", dbname=db)
    s = make_server(extra_ini=f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n",
                    server={"node": "faultnode"}, env={"FDT_FAULT_FILE": str(fault)})
    c = s.client()
    assert c.call("TXN BEGIN 0a0b0c") == "OK"
    assert c.call("SQL pg INSERT INTO ft VALUES (1)") == "OK 1"
    assert c.call("TXN VOTE") == "OK"
    assert c.call("TXN FINISH") == "OK"
    assert fault.exists() and fault.read_text() == ""
    assert postgres.psql("SELECT x FROM ft", dbname=db) == [["1"]]


def test_17_14_savepoint_names_refused(make_server, tmp_path):
    """A savepoint name longer than 63 characters is refused, and releasing a savepoint
    that was never set says so; the transaction goes on and commits."""
    s = make_server(extra_ini=f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/l.db\n")
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL lite CREATE TABLE t (x INTEGER)") == "OK 0"
    long_name = "s" * 64
    assert c.call(f"TXN SAVEPOINT {long_name}") == "ERR bad savepoint name"
    assert c.call("TXN RELEASE nosuch") == "ERR no savepoint nosuch"
    assert c.call("SQL lite INSERT INTO t VALUES (1)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    con = sqlite3.connect(f"{tmp_path}/l.db")
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    con.close()


LOG_TABLE = ("CREATE TABLE fdt_txn_log (gid TEXT PRIMARY KEY, role TEXT NOT NULL, "
             "outcome TEXT NOT NULL, created BIGINT NOT NULL, comment TEXT)")


def test_17_15_decision_that_cannot_be_forgotten(make_server, tmp_path, postgres, pgdb):
    """After a two-phase commit (PostgreSQL prepared, SQLite the last resource holding the
    decision), deleting the decision record is refused: the commit stands (the client is
    told OK), the failure is logged, and the record stays for recovery to clear."""
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE acc (id int PRIMARY KEY)", dbname=db)
    con = sqlite3.connect(f"{tmp_path}/lite.db")
    con.executescript(LOG_TABLE + "; CREATE TABLE t (x INTEGER); "
                      "CREATE TRIGGER keep_log BEFORE DELETE ON fdt_txn_log BEGIN "
                      "SELECT RAISE(ABORT, 'the test keeps decisions'); END;")
    con.close()
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n")
    s = make_server(extra_ini=extra, server={"node": "keepnode"})
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (1)") == "OK 1"
    assert c.call("SQL lite INSERT INTO t VALUES (1)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    s.wait_log("forgetting decision ")
    assert "the test keeps decisions" in s.log()
    assert postgres.psql("SELECT id FROM acc", dbname=db) == [["1"]]
    con = sqlite3.connect(f"{tmp_path}/lite.db")
    assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert con.execute("SELECT outcome FROM fdt_txn_log").fetchall() == [("commit",)]
    con.close()


def test_17_16_sqlite_file_locked_by_another_process(make_server, tmp_path):
    """Another process holds the SQLite file: while it reads a file not yet in WAL mode,
    the switch to WAL is retried and then refused with its reason; while it holds the
    write lock, a write waits its bounded time and fails as busy. Each time the client is
    told, and once the other process lets go, the same statements work."""
    path = tmp_path / "l.db"
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("CREATE TABLE t (x INTEGER)")
    other.execute("BEGIN")
    other.execute("SELECT * FROM t").fetchall()  # a shared lock: no switch to WAL
    s = make_server(extra_ini=f"[resource.lite]\ndriver = sqlite\npath = {path}\n")
    c = LineClient(s.port, timeout=60)
    assert c.call("TXN BEGIN") == "OK"
    ans = c.call("SQL lite INSERT INTO t VALUES (1)")
    assert ans.startswith("ERR") and "cannot switch" in ans and "to WAL mode" in ans, ans
    c.call("TXN ABORT")
    other.execute("COMMIT")
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL lite INSERT INTO t VALUES (1)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    other.execute("BEGIN IMMEDIATE")  # the write lock
    assert c.call("TXN BEGIN") == "OK"
    ans = c.call("SQL lite INSERT INTO t VALUES (2)")
    assert ans.startswith("ERR") and "locked" in ans, ans
    c.call("TXN ABORT")
    other.execute("ROLLBACK")
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL lite INSERT INTO t VALUES (2)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    assert other.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    other.close()


def test_17_18_postgresql_session_dies_inside_a_transaction(make_server, tmp_path, postgres,
                                                            pgdb):
    """The PostgreSQL session of an open transaction is terminated: the next statement
    fails, the rollback finds the connection gone (the server rolled it back), and the
    next transaction works on a fresh session."""
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE acc (id int PRIMARY KEY)", dbname=db)
    s = make_server(extra_ini=f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n")
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (1)") == "OK 1"
    postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND pid <> pg_backend_pid()", dbname=db)
    assert c.call("SQL pg INSERT INTO acc VALUES (2)").startswith("ERR")
    assert c.call("TXN ABORT") == "OK"
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (3)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT id FROM acc", dbname=db) == [["3"]]


def test_17_19_framework_400_in_wingcash_shape(make_server, tmp_path):
    """A request the framework refuses as malformed (a Content-Length that is no number)
    is answered 400 in wingcash's error shape, code "bad_request"."""
    import socket
    s = wingcash_server(make_server, Backend("sqlite", tmp_path))
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
        sock.sendall(b"POST /accounts HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), data
    assert json.loads(body)["error"]["code"] == "bad_request", data


def test_17_20_rollback_of_a_branch_without_a_log_record(tmp_path, postgres, pgdb):
    """`fdtserver txn rollback` of a prepared branch no decision log knows (prepared by
    hand): it is rolled back, and the missing record is no error."""
    db = pgdb.split("dbname=")[1]
    gid = "fdt1:handnode:pg:1:AQID:"
    postgres.psql("CREATE TABLE hand (x int)", dbname=db)
    postgres.psql(f"BEGIN; INSERT INTO hand VALUES (1); PREPARE TRANSACTION '{gid}'", dbname=db)
    conf = tmp_path / "txn.ini"
    conf.write_text("[server]\nnode = handnode\n[listen.main]\naddress = 127.0.0.1:1\n"
                    "protocol = raw\n[app]\nmodule = /nonexistent.so\n"
                    f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n")
    r = subprocess.run([str(FDTSERVER), "txn", "rollback", gid, "-c", str(conf)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    assert f"rolled back: {gid}" in r.stdout, r
    assert postgres.psql("SELECT count(*) FROM pg_prepared_xacts WHERE gid = "
                         f"'{gid}'", dbname=db) == [["0"]]
    assert postgres.psql("SELECT count(*) FROM hand", dbname=db) == [["0"]]


def test_17_21_txn_finish_whose_commit_fails(make_server, tmp_path, postgres, pgdb):
    """txn.finish of a transaction whose COMMIT fails (a deferred unique constraint): the
    client is told it was rolled back (-32012) and why, nothing stays, and the connection has no
    transaction left (txn.abort: no transaction)."""
    from fdt import RpcClient, free_port
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE chk (x int, CONSTRAINT u UNIQUE (x) DEFERRABLE INITIALLY "
                  "DEFERRED)", dbname=db)
    port = free_port()
    s = make_server(listeners={"rpc": {"address": f"127.0.0.1:{port}", "protocol": "jsonrpc"}},
                    extra_ini=f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n")
    c = RpcClient(port)
    assert c.call("txn.begin")["result"]["state"] == "active"
    for _ in range(2):
        ans = c.call("sql", {"resource": "pg", "sql": "INSERT INTO chk VALUES (1)"})
        assert ans["result"] == {"rows": 1}, ans
    ans = c.call("txn.finish")
    assert ans["error"]["code"] == -32012, ans
    assert ans["error"]["message"].startswith("rolled back: COMMIT: 23505 "), ans
    ans = c.call("txn.abort")
    assert ans["error"]["message"] == "no transaction: call txn.begin first", ans
    assert postgres.psql("SELECT count(*) FROM chk", dbname=db) == [["0"]]
    c.close()
