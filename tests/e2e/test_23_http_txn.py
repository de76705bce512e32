"""HTTP requests as root transactions (issue 4): committed on 2xx/3xx, rolled back on an
error status or when the client leaves before the commit, run again after a conflict; and
fdt_txn_query() with parameters on both drivers."""
import json
import socket
import time

from fdt import wait_for
from http_util import Client, build
from test_21_txn import prepared


def http_server(make_server, postgres, pgdb, tmp_path, **kw):
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE t (x int PRIMARY KEY)", dbname=db)
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n")
    server = dict({"node": "httpnode"}, **kw.pop("server", {}))
    s = make_server(extra_ini=extra, server=server, start=False, **kw)
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.start()
    return s, db


def post(c, path, sql):
    c.send(build("POST", path, body=sql.encode()))
    return c.read_response()


def rows(postgres, db, sql="SELECT x FROM t ORDER BY x"):
    return [int(r[0]) for r in postgres.psql(sql, dbname=db)]


def test_23_01_status_decides_commit_or_rollback(make_server, postgres, pgdb, tmp_path):
    s, db = http_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    for status, x in ((200, 1), (201, 2), (303, 3), (404, 4), (409, 5), (500, 6)):
        r = post(c, f"/sql/pg/{status}", f"INSERT INTO t VALUES ({x})")
        assert r.status == status and r.body == b"rows=1\n", r
    assert rows(postgres, db) == [1, 2, 3]
    # A failing statement: the view answers 500, nothing stays, the connection still works.
    r = post(c, "/sql/pg/200", "INSERT INTO t VALUES (1)")
    assert r.status == 500 and b"duplicate key" in r.body
    r = post(c, "/sql/pg/200", "INSERT INTO t VALUES (7)")
    assert r.status == 200
    assert rows(postgres, db) == [1, 2, 3, 7]
    # Two resources in one request: two-phase commit, nothing left prepared.
    r = post(c, "/sql/lite/200", "CREATE TABLE IF NOT EXISTS l (x int)")
    assert r.status == 200
    assert prepared(postgres, db) == []


def test_23_02_failed_commit_replaces_the_response(make_server, postgres, pgdb, tmp_path):
    """A deferred constraint fails at COMMIT: the client never sees the view's 200."""
    s, db = http_server(make_server, postgres, pgdb, tmp_path)
    postgres.psql("CREATE TABLE d (x int, CONSTRAINT u UNIQUE (x) DEFERRABLE INITIALLY DEFERRED)",
                  dbname=db)
    c = Client(s.port)
    r = post(c, "/sql/pg/200", "INSERT INTO d VALUES (1), (1)")
    assert r.status == 500, r
    assert b"could not be committed" in r.body
    assert rows(postgres, db, "SELECT count(*) FROM d") == [0]
    # The same through a streamed response: the commit happens before the head goes out.
    r = post(c, "/stream/pg/200", "INSERT INTO d VALUES (2), (2)")
    assert r.status == 500, r
    r = post(c, "/stream/pg/200", "INSERT INTO d VALUES (3)")
    assert r.status == 200 and r.body == b"rows=1\n"
    assert r.header("Transfer-Encoding") == "chunked"
    assert rows(postgres, db, "SELECT x FROM d") == [3]


def test_23_03_client_gone_before_commit_rolls_back(make_server, postgres, pgdb, tmp_path):
    s, db = http_server(make_server, postgres, pgdb, tmp_path)
    sock = socket.create_connection(("127.0.0.1", s.port))
    sock.sendall(build("POST", "/sql/pg/200/700", body=b"INSERT INTO t VALUES (42)"))
    time.sleep(0.2)  # the view is sleeping with its row inserted, not committed
    sock.close()
    s.wait_log("closed the connection before the commit")
    assert rows(postgres, db) == []
    # No lock left behind: the same key can be written at once.
    postgres.psql("SET lock_timeout = '2s'; INSERT INTO t VALUES (42)", dbname=db)
    # A client that stays gets its answer and its row.
    c = Client(s.port)
    assert post(c, "/sql/pg/200/100", "INSERT INTO t VALUES (43)").status == 200
    assert rows(postgres, db) == [42, 43]


def test_23_04_conflicts_run_the_view_again(make_server, postgres, pgdb, tmp_path):
    """A serialization failure (SQLSTATE 40001) rolls back and runs the view again; the
    client sees one answer and the work is done once. Past 5 runs: 503, nothing kept."""
    s, db = http_server(make_server, postgres, pgdb, tmp_path)
    postgres.psql("CREATE SEQUENCE runs", dbname=db)
    conflict_twice = ("DO $$ BEGIN IF nextval('runs') <= 2 THEN RAISE EXCEPTION 'conflict' "
                      "USING ERRCODE = '40001'; END IF; END $$; INSERT INTO t VALUES (10)")
    c = Client(s.port)
    r = post(c, "/sql/pg/201", conflict_twice)
    assert r.status == 201 and r.body == b"rows=1\n", r
    assert rows(postgres, db) == [10]
    assert rows(postgres, db, "SELECT last_value FROM runs") == [3]
    always = ("INSERT INTO t VALUES (11); DO $$ BEGIN PERFORM nextval('runs'); "
              "RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
    r = post(c, "/sql/pg/200", always)
    assert r.status == 503, r
    assert rows(postgres, db) == [10]
    assert rows(postgres, db, "SELECT last_value FROM runs") == [8]


def test_23_05_query_with_parameters(make_server, postgres, pgdb, tmp_path):
    s, db = http_server(make_server, postgres, pgdb, tmp_path)
    c = Client(s.port)
    postgres.psql("CREATE TABLE kv (k text PRIMARY KEY, v bigint)", dbname=db)
    r = post(c, "/query/pg?o'brien&9000000000",
             "INSERT INTO kv VALUES ($1, $2) RETURNING k, v, NULL")
    assert r.status == 200 and r.body == b"o'brien|9000000000|NULL\nchanges=1\n", r
    r = post(c, "/query/pg?o'brien", "SELECT v + 1 FROM kv WHERE k = $1")
    assert r.body == b"9000000001\nchanges=1\n"
    # SQLite: the same API, $N placeholders bound by value.
    assert post(c, "/sql/lite/200", "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)").status == 200
    r = post(c, "/query/lite?x;DROP_TABLE_kv&5", "INSERT INTO kv VALUES ($1, $2) RETURNING v * 2")
    assert r.body == b"10\nchanges=1\n", r
    r = post(c, "/query/lite?5", "SELECT k FROM kv WHERE v = $1")
    assert r.body == b"x;DROP_TABLE_kv\nchanges=0\n", r
    # Bad SQL: an error answer, nothing kept.
    r = post(c, "/query/pg?a", "INSERT INTO nosuch VALUES ($1)")
    assert r.status == 500 and b"nosuch" in r.body
    # The rollback after it is clean: no raw libpq line in the error log, and no ROLLBACK
    # sent on a session with nothing open (PostgreSQL would warn of it).
    c.close()
    s.stop()
    assert "no transaction in progress" not in s.log()
    assert not [ln for ln in s.log().splitlines() if ln.startswith("WARNING:")]


def test_23_06_a_held_answer_over_max_output_rolls_back(make_server, postgres, pgdb, tmp_path):
    """The answer is held until the commit; one that outgrows max_output cannot be sent
    whole, so the work is rolled back and the client gets a 500 instead of a cut 200."""
    s, db = http_server(make_server, postgres, pgdb, tmp_path, server={"max_output": "2k"})
    c = Client(s.port)
    r = post(c, "/query/pg", "WITH i AS (INSERT INTO t VALUES (77) RETURNING x) "
                             "SELECT repeat('x', 3000) FROM i")
    assert r.status == 500 and b"too large" in r.body, r
    assert rows(postgres, db) == []
    r = post(c, "/query/pg", "WITH i AS (INSERT INTO t VALUES (78) RETURNING x) "
                             "SELECT repeat('x', 100) FROM i")
    assert r.status == 200
    assert rows(postgres, db) == [78]


def test_23_07_prepared_statements_recover_from_a_changed_table(make_server, postgres, pgdb,
                                                                tmp_path):
    """Statements are prepared once per database session. When the table under a cached
    statement changes (ALTER TABLE: "cached plan must not change result type"), the stale
    session is discarded; as that happens on the transaction's first round trip, where
    nothing can have been done yet, the statement runs again on a fresh session and no
    request fails. COPY is refused up front (it needs its own protocol)."""
    s, db = http_server(make_server, postgres, pgdb, tmp_path)
    postgres.psql("CREATE TABLE kv (k text PRIMARY KEY, v bigint); INSERT INTO kv VALUES ('a', 1)",
                  dbname=db)
    c = Client(s.port)
    for _ in range(8):  # cached on every pooled session that served it
        assert post(c, "/query/pg", "SELECT * FROM kv").body == b"a|1\nchanges=1\n"
    postgres.psql("ALTER TABLE kv ADD COLUMN w int DEFAULT 7", dbname=db)
    answers = [post(c, "/query/pg", "SELECT * FROM kv") for _ in range(12)]
    assert all(r.status == 200 and r.body == b"a|1|7\nchanges=1\n" for r in answers), answers
    s.wait_log("a pooled session was dead")
    r = post(c, "/query/pg", "COPY kv TO STDOUT")
    assert r.status == 500 and b"COPY is not supported" in r.body
    assert post(c, "/query/pg", "SELECT count(*) FROM kv").body == b"1\nchanges=1\n"


def test_23_08_a_commit_whose_outcome_is_unknown_says_so(make_server, postgres, pgdb, tmp_path):
    """A request over two PostgreSQL databases: both branches are prepared, and the session
    that must write the decision dies before the decision is known to be durable. The client
    gets a 500 that says the outcome is unknown (not "rolled back", not the view's 200), the
    access log records the outcome as "unknown", and recovery, finding no decision, rolls
    both branches back."""
    db = pgdb.split("dbname=")[1]
    other = db[:40] + "_h"
    postgres.psql(f'DROP DATABASE IF EXISTS "{other}"')
    dsn_b = postgres.create_db(other)
    for d in (db, other):
        postgres.psql("CREATE TABLE acc (id int PRIMARY KEY)", dbname=d)
    fault = tmp_path / "fault"
    access = tmp_path / "access.log"
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.pg2]\ndriver = postgresql\ndsn = {dsn_b}\n")
    s = make_server(extra_ini=extra, workers=1, threads=2, start=False,
                    env={"FDT_FAULT_FILE": str(fault)},
                    server={"node": "httpunknown", "recovery_grace": 8,
                            "recovery_interval": 0.3, "access_log": str(access),
                            "log_format": "json"})
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.start()
    c = Client(s.port)
    r = post(c, "/sql/pg+pg2/200", "INSERT INTO acc VALUES (1)")
    assert r.status == 200 and r.body == b"rows=2\n", r  # two branches, committed
    # Pause with the decision's session in hand (well inside recovery_grace), and end it.
    fault.write_text("before_decision_write sleep 4000\n")
    c.send(build("POST", "/sql/pg+pg2/200", body=b"INSERT INTO acc VALUES (2)"))
    s.wait_log("fault point before_decision_write: sleeping")
    postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND pid <> pg_backend_pid()", dbname=db)
    r = c.read_response()
    assert r.status == 500 and b"outcome of the transaction is unknown" in r.body, r
    fault.write_text("")
    wait_for(lambda: prepared(postgres, db) == [] and prepared(postgres, other) == [],
             timeout=20, what="recovery ends both branches")
    for d in (db, other):
        assert postgres.psql("SELECT id FROM acc", dbname=d) == [["1"]]
    s.wait_log("outcome unknown")
    outcomes = [json.loads(line)["txn"] for line in access.read_text().splitlines()]
    assert outcomes == ["committed", "unknown"], outcomes
