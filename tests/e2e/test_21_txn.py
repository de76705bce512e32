"""Promise 5: transactions bound to connections, against a real PostgreSQL."""
import base64
import os
import signal

from fdt import LineClient, wait_for


def gid_for(node, resource, gtrid_hex, fmt=1):
    g = base64.urlsafe_b64encode(bytes.fromhex(gtrid_hex)).decode().rstrip("=")
    return f"fdt1:{node}:{resource}:{fmt}:{g}:"


def txn_server(make_server, postgres, pgdb, tmp_path, **kw):
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)", dbname=db)
    postgres.psql("CREATE TABLE chk (x int, CONSTRAINT pos UNIQUE (x) "
                  "DEFERRABLE INITIALLY DEFERRED)", dbname=db)
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n")
    server = dict({"node": "testnode"}, **kw.pop("server", {}))
    s = make_server(extra_ini=extra, server=server, **kw)
    return s, db


def create_lite_table(c):
    """Create SQLite table t (x INTEGER) in a transaction of its own."""
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL lite CREATE TABLE IF NOT EXISTS t (x INTEGER)") == "OK 0"
    assert c.call("TXN COMMIT") == "OK"


def begin_on_both(c, gtrid, x):
    """Begin (gtrid may be empty: a root transaction) and write x to pg acc and lite t."""
    assert c.call(f"TXN BEGIN {gtrid}".rstrip()) == "OK"
    assert c.call(f"SQL pg INSERT INTO acc VALUES ({x}, {x})") == "OK 1"
    assert c.call(f"SQL lite INSERT INTO t VALUES ({x})") == "OK 1"


def insert_and_vote(c, gtrid, row_id, bal):
    """Begin gtrid, insert one acc row through pg and vote: one prepared branch."""
    assert c.call(f"TXN BEGIN {gtrid}") == "OK"
    assert c.call(f"SQL pg INSERT INTO acc VALUES ({row_id}, {bal})") == "OK 1"
    assert c.call("TXN VOTE") == "OK"


def prepared(postgres, db):
    return [r[0] for r in postgres.psql(
        "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()", dbname=db)]


def test_21_01_root_one_phase_commit_and_abort(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (1, 100)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT bal FROM acc WHERE id = 1", dbname=db) == [["100"]]
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg UPDATE acc SET bal = 0") == "OK 1"
    assert c.call("TXN ABORT") == "OK"
    assert postgres.psql("SELECT bal FROM acc WHERE id = 1", dbname=db) == [["100"]]
    # Errors: a second begin, and work after a failed statement (the transaction is doomed).
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("TXN BEGIN").startswith("ERR a transaction is already open")
    assert c.call("SQL pg INSERT INTO acc VALUES (1, 5)").startswith("ERR")
    assert c.call("TXN COMMIT").startswith("ERR rolled back")
    assert c.call("TXN COMMIT") == "ERR no transaction"


def test_21_02_disconnect_before_the_vote_rolls_back(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = s.client()
    assert c.call("TXN BEGIN a1b2") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (2, 50)") == "OK 1"
    c.close()
    s.wait_log("closed before the vote")
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    assert prepared(postgres, db) == []
    # No lock left: the same key can be written at once.
    postgres.psql("SET lock_timeout = '2s'; INSERT INTO acc VALUES (2, 1)", dbname=db)


def test_21_03_disconnect_after_the_vote_stays_prepared(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = s.client()
    insert_and_vote(c, "cafe01", 3, 70)
    c.close()
    s.wait_log("stays prepared (in doubt)")
    gid = gid_for("testnode", "pg", "cafe01")
    assert prepared(postgres, db) == [gid]
    log = postgres.psql("SELECT role, outcome FROM fdt_txn_log", dbname=db)
    assert log == [["participant", "voted"]]
    # The data is not visible until someone resolves it.
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    postgres.psql(f"COMMIT PREPARED '{gid}'", dbname=db)
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["70"]]


def test_21_04_vote_then_finish(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = s.client()
    assert c.call("TXN BEGIN 0102") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (4, 1)") == "OK 1"
    assert c.call("TXN FINISH").startswith("ERR finish: vote first")
    assert c.call("TXN VOTE") == "OK"
    assert c.call("TXN FINISH") == "OK"
    assert prepared(postgres, db) == []
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["1"]]
    assert postgres.psql("SELECT outcome FROM fdt_txn_log", dbname=db) == [["committed"]]


def test_21_05_worker_killed_before_and_after_the_vote(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path, workers=1)
    (pid,) = s.worker_pids()
    before = s.client()
    assert before.call("TXN BEGIN bb01") == "OK"
    assert before.call("SQL pg INSERT INTO acc VALUES (5, 5)") == "OK 1"
    after = s.client()
    insert_and_vote(after, "bb02", 6, 6)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: s.worker_pids() and s.worker_pids() != [pid], what="replacement")
    # Before the vote: gone with the session. After: exactly one prepared branch.
    wait_for(lambda: postgres.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state LIKE 'idle in transaction%'", dbname=db) == [["0"]], what="rollback")
    assert prepared(postgres, db) == [gid_for("testnode", "pg", "bb02")]
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]


def test_21_06_root_two_phase_with_sqlite_as_last_resource(make_server, postgres, pgdb,
                                                          tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = s.client()
    create_lite_table(c)
    begin_on_both(c, "", 7)
    assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["7"]]
    assert prepared(postgres, db) == []
    import sqlite3
    lite = sqlite3.connect(str(tmp_path / "lite.db"))
    assert lite.execute("SELECT x FROM t").fetchall() == [(7,)]
    # The decision was logged in SQLite (the last resource) and forgotten once done.
    assert lite.execute("SELECT count(*) FROM fdt_txn_log").fetchall() == [(0,)]


def test_21_07_vote_refused_by_sqlite_and_by_a_failing_prepare(make_server, postgres, pgdb,
                                                              tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = s.client()
    create_lite_table(c)
    begin_on_both(c, "dd01", 8)
    # SQLite cannot prepare: the vote is refused and nothing happens, so the hint it gives
    # can be followed: commit in one phase (fdtserver decides, SQLite as the last resource).
    r = c.call("TXN VOTE")
    assert r.startswith("ERR vote:") and "cannot prepare" in r and "nothing was done" in r, r
    assert c.call("TXN STATE") == "STATE 1"  # still FDT_TXN_ACTIVE
    assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT count(*) FROM acc WHERE id = 8", dbname=db) == [["1"]]
    # A deferred constraint fails at PREPARE: rolled back with the reason, nothing prepared.
    assert c.call("TXN BEGIN dd02") == "OK"
    assert c.call("SQL pg INSERT INTO chk VALUES (1), (1)") == "OK 2"
    r = c.call("TXN VOTE")
    assert r.startswith("ERR rolled back") and "pos" in r, r
    assert prepared(postgres, db) == []
    assert postgres.psql("SELECT count(*) FROM chk", dbname=db) == [["0"]]
    assert postgres.psql("SELECT id FROM acc", dbname=db) == [["8"]]  # only the first one


def test_21_08_an_xid_too_long_is_refused_at_begin(make_server, postgres, pgdb, tmp_path):
    db = pgdb.split("dbname=")[1]
    extra = f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n"
    s = make_server(extra_ini=extra, server={"node": "n" * 63})
    c = s.client()
    # 64 + 64 bytes of XID with a 63-byte node name: the GID would pass 199 bytes.
    r = c.call("TXN BEGIN " + "ab" * 64 + " " + "cd" * 64)
    assert r.startswith("ERR xid too long"), r
    assert c.call("TXN BEGIN " + "ab" * 64 + " " + "cd" * 20) == "OK"
    assert c.call("SQL pg SELECT 1") == "OK 1"
    assert c.call("TXN VOTE") == "OK"
    (gid,) = prepared(postgres, db)
    assert len(gid) <= 199
    postgres.psql(f"ROLLBACK PREPARED '{gid}'", dbname=db)


def fdt_txn(s, *args):
    import subprocess
    from fdt import FDTSERVER
    return subprocess.run([str(FDTSERVER), "txn", *args, "-c", str(s.conf_path)],
                          capture_output=True, text=True, timeout=30)


def test_21_09_list_and_resolve_from_the_command_line(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    gids = []
    for i, gtrid in enumerate(("e001", "e002")):
        c = s.client()
        insert_and_vote(c, gtrid, 10 + i, 1)
        c.close()
        gids.append(gid_for("testnode", "pg", gtrid))
    wait_for(lambda: s.log().count("stays prepared") == 2, what="both in doubt")
    r = fdt_txn(s, "list")
    assert r.returncode == 0, r.stderr
    for g in gids:
        assert g in r.stdout
    assert "participant" in r.stdout and "voted" in r.stdout
    assert "2 prepared transactions" in r.stdout
    # Commit one, roll back the other; both are recorded with a comment.
    r = fdt_txn(s, "commit", gids[0])
    assert r.returncode == 0 and "committed" in r.stdout, r.stderr
    r = fdt_txn(s, "rollback", gids[1])
    assert r.returncode == 0 and "rolled back" in r.stdout, r.stderr
    assert postgres.psql("SELECT id FROM acc", dbname=db) == [["10"]]
    assert prepared(postgres, db) == []
    log = postgres.psql("SELECT outcome, comment FROM fdt_txn_log ORDER BY outcome", dbname=db)
    assert [row[0] for row in log] == ["committed", "rolled back"]
    assert all(row[1].startswith("manual ") for row in log)
    # Idempotent: committing again says so; rolling back a committed one is an error.
    r = fdt_txn(s, "commit", gids[0])
    assert r.returncode == 0 and "already committed" in r.stdout
    r = fdt_txn(s, "rollback", gids[0])
    assert r.returncode != 0 and "cannot be rolled back" in r.stderr
    r = fdt_txn(s, "commit", "not-a-gid")
    assert r.returncode == 2
    assert "0 prepared transactions" in fdt_txn(s, "list").stdout


def crash_server(make_server, postgres, pgdb, tmp_path):
    fault = tmp_path / "fault"
    s, db = txn_server(make_server, postgres, pgdb, tmp_path, workers=1,
                       env={"FDT_FAULT_FILE": str(fault)},
                       server={"node": "testnode", "recovery_grace": 0,
                               "recovery_interval": 0.3})
    c = s.client()
    create_lite_table(c)
    return s, db, fault


def lite_rows(tmp_path):
    import sqlite3
    return sqlite3.connect(str(tmp_path / "lite.db")).execute("SELECT x FROM t").fetchall()


def crash_at(s, fault, point, commands):
    fault.write_text(point)
    c = s.client()
    answers = []
    try:
        for cmd in commands:
            answers.append(c.call(cmd))
    except ConnectionError:
        answers.append("closed")
    s.wait_log(f"fault point {point}")
    assert not fault.exists()
    return answers


def test_21_10_root_crash_after_the_decision_commits_everywhere(make_server, postgres, pgdb,
                                                                tmp_path):
    s, db, fault = crash_server(make_server, postgres, pgdb, tmp_path)
    a = crash_at(s, fault, "after_decision", ["TXN BEGIN", "SQL pg INSERT INTO acc VALUES (1, 1)",
                                             "SQL lite INSERT INTO t VALUES (1)", "TXN COMMIT"])
    assert a[-1] == "closed"
    # The decision is durable in SQLite (the last resource); recovery commits the branch.
    assert lite_rows(tmp_path) == [(1,)]
    wait_for(lambda: postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["1"]],
             what="recovery commits the prepared branch")
    assert prepared(postgres, db) == []
    assert "recovery" in s.log() and "committed fdt1:testnode:pg:" in s.log()


def test_21_11_root_crash_before_the_decision_rolls_back_everywhere(make_server, postgres, pgdb,
                                                                   tmp_path):
    s, db, fault = crash_server(make_server, postgres, pgdb, tmp_path)
    crash_at(s, fault, "before_decision", ["TXN BEGIN", "SQL pg INSERT INTO acc VALUES (2, 2)",
                                          "SQL lite INSERT INTO t VALUES (2)", "TXN COMMIT"])
    wait_for(lambda: prepared(postgres, db) == [], what="recovery rolls back")
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    assert lite_rows(tmp_path) == []
    assert "rolled back fdt1:testnode:pg:" in s.log()


def test_21_12_participant_crash_before_the_vote_record_rolls_back(make_server, postgres, pgdb,
                                                                   tmp_path):
    s, db, fault = crash_server(make_server, postgres, pgdb, tmp_path)
    crash_at(s, fault, "before_vote_record",
             ["TXN BEGIN f001", "SQL pg INSERT INTO acc VALUES (3, 3)", "TXN VOTE"])
    wait_for(lambda: prepared(postgres, db) == [], what="recovery rolls back")
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]


def test_21_13_participant_crash_after_the_vote_record_stays_prepared(make_server, postgres,
                                                                      pgdb, tmp_path):
    s, db, fault = crash_server(make_server, postgres, pgdb, tmp_path)
    crash_at(s, fault, "after_vote_record",
             ["TXN BEGIN f002", "SQL pg INSERT INTO acc VALUES (4, 4)", "TXN VOTE"])
    wait_for(lambda: "left in doubt" in s.log(), what="a recovery pass that saw it")
    assert prepared(postgres, db) == [gid_for("testnode", "pg", "f002")]


def test_21_14_fdtctl_txn_list_and_status_count_in_doubt(make_server, postgres, pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path, workers=1,
                       server={"recovery_grace": 0, "recovery_interval": 0.3,
                               "in_doubt_warn_age": 0})
    c = s.client()
    insert_and_vote(c, "0a0b", 20, 1)
    c.close()
    gid = gid_for("testnode", "pg", "0a0b")
    r = s.ctl("txn", "list")
    assert gid in r.stdout and "voted" in r.stdout
    wait_for(lambda: s.workers()[0]["transactions_in_doubt"] == 1, what="status counts it")
    assert s.workers()[0]["in_doubt_oldest_s"] >= 0
    s.wait_log("in doubt, the oldest prepared")
    r = s.ctl("txn", "commit", gid)
    assert "committed" in r.stdout
    wait_for(lambda: s.workers()[0]["transactions_in_doubt"] == 0, what="status clears")
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["1"]]


def test_21_15_an_idle_active_transaction_times_out_a_prepared_one_never(make_server, postgres,
                                                                          pgdb, tmp_path):
    s, db = txn_server(make_server, postgres, pgdb, tmp_path,
                       server={"transaction_timeout": 0.5})
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (30, 1)") == "OK 1"
    s.wait_log("(transaction_timeout): rolled back")
    assert c.call("TXN COMMIT") == "ERR no transaction"
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    # The connection itself still works, and a voted transaction is never timed out.
    insert_and_vote(c, "0c0d", 31, 1)
    import time
    time.sleep(1.5)
    assert c.call("TXN FINISH") == "OK"
    assert postgres.psql("SELECT id FROM acc", dbname=db) == [["31"]]


def test_21_16_a_deadlock_victim_is_retried_by_the_framework(make_server, postgres, pgdb,
                                                             tmp_path):
    # PostgreSQL's victim is the waiter whose deadlock_timeout runs out first after the
    # cycle exists. b waits first; with the default 1 s, a loaded machine can take longer
    # than that to send a's statement, b's only check then finds no cycle, and a becomes
    # the victim instead. 10 s leaves room for a loaded machine; set before the server
    # starts, so that every pooled session has it.
    db = pgdb.split("dbname=")[1]
    postgres.psql(f"ALTER DATABASE {db} SET deadlock_timeout = '10s'", dbname=db)
    s, db = txn_server(make_server, postgres, pgdb, tmp_path, threads=4)
    postgres.psql("INSERT INTO acc VALUES (1, 0), (2, 0)", dbname=db)
    # a's answer comes once PostgreSQL has chosen b as the victim: deadlock_timeout (10 s)
    # after b began to wait, a little less after a sent its statement. The clients wait 30 s
    # (the 10 s default left a margin of milliseconds: it once timed out under coverage).
    a = LineClient(s.port, timeout=30)
    assert a.call("TXN BEGIN") == "OK"
    assert a.call("SQL pg UPDATE acc SET bal = bal + 1 WHERE id = 1") == "OK 1"
    b = LineClient(s.port, timeout=30)
    # b locks row 2, then waits for row 1 (held by a).
    b.send("RETRY pg UPDATE acc SET bal = bal + 10 WHERE id = 2; "
           "UPDATE acc SET bal = bal + 10 WHERE id = 1\n")
    wait_for(lambda: postgres.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database()", dbname=db) == [["1"]], what="b waiting")
    # a now wants row 2: a deadlock. b waited first, so PostgreSQL makes b the victim;
    # the framework rolls b back and runs it again, which waits for a to finish.
    a.send("SQL pg UPDATE acc SET bal = bal + 1 WHERE id = 2\n")
    assert a.readline() == "OK 1"
    assert a.call("TXN COMMIT") == "OK"
    assert b.readline() == "OK attempts=2"
    assert postgres.psql("SELECT id, bal FROM acc ORDER BY id", dbname=db) == \
        [["1", "11"], ["2", "11"]]


def test_21_17_savepoints(make_server, postgres, pgdb, tmp_path):
    """Savepoints across branches: rollback to undoes work since (a branch joined since is
    rolled back whole), lifts the doom of a failed statement, keeps earlier work."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path)
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL lite CREATE TABLE IF NOT EXISTS l (x int)") == "OK 0"
    assert c.call("SQL pg INSERT INTO acc VALUES (1, 1)") == "OK 1"
    assert c.call("TXN SAVEPOINT a") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (2, 2)") == "OK 1"
    assert c.call("SQL lite INSERT INTO l VALUES (7)") == "OK 1"
    assert c.call("SQL pg INSERT INTO acc VALUES (1, 9)").startswith("ERR")  # duplicate: doomed
    assert c.call("TXN ROLLBACKTO a") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (3, 3)") == "OK 1"
    assert c.call("TXN SAVEPOINT b") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (4, 4)") == "OK 1"
    assert c.call("TXN RELEASE b") == "OK"
    assert c.call("TXN ROLLBACKTO b").startswith("ERR no savepoint")
    assert c.call("TXN SAVEPOINT bad-name").startswith("ERR bad savepoint name")
    assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT id FROM acc ORDER BY id", dbname=db) == [["1"], ["3"], ["4"]]
    # A branch joined after the savepoint is rolled back whole, then begins again.
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("TXN SAVEPOINT s") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (5, 5)") == "OK 1"
    assert c.call("TXN ROLLBACKTO s") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (6, 6)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT id FROM acc ORDER BY id", dbname=db) == \
        [["1"], ["3"], ["4"], ["6"]]
    import sqlite3
    con = sqlite3.connect(f"{tmp_path}/lite.db")
    assert con.execute("SELECT count(*) FROM l").fetchone()[0] == 0
    con.close()


def test_21_18_dead_pooled_sessions_fail_no_transaction(make_server, postgres, pgdb, tmp_path):
    """PostgreSQL drops every session (a restart, pg_terminate_backend): the pooled sessions
    are dead but do not know it yet. A transaction whose first round trip meets one runs it
    again on a fresh session (nothing can have happened in a dead one), so no client sees
    an error for it (before: one failure per pooled session, 57P01)."""
    s, db = txn_server(make_server, postgres, pgdb, tmp_path, threads=2)
    clients = [s.client() for _ in range(3)]
    for i, c in enumerate(clients):  # several sessions in the pool
        assert c.call("TXN BEGIN") == "OK"
        assert c.call(f"SQL pg INSERT INTO acc VALUES ({i}, 0)") == "OK 1"
    for c in clients:
        assert c.call("TXN COMMIT") == "OK"
    killed = postgres.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                           dbname=db)
    assert int(killed[0][0]) >= 1
    for i in range(10, 16):
        c = clients[i % 3]
        assert c.call("TXN BEGIN") == "OK"
        assert c.call(f"SQL pg INSERT INTO acc VALUES ({i}, 0)") == "OK 1"
        assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["9"]]
    s.wait_log("a pooled session was dead")


def test_21_19_sqlite_files_are_private(make_server, postgres, pgdb, tmp_path):
    """A SQLite resource's database (and its -wal file) is created 0600 whatever the umask:
    it holds what the application keeps. An existing one others can read is warned about."""
    old = os.umask(0o022)  # the server inherits it
    try:
        s, db = txn_server(make_server, postgres, pgdb, tmp_path)
        shared = tmp_path / "shared.db"
        shared.write_bytes(b"")
        shared.chmod(0o644)
        s2 = make_server(extra_ini=f"[resource.lite]\ndriver = sqlite\npath = {shared}\n",
                         server={"node": "other"})
    finally:
        os.umask(old)
    create_lite_table(s.client())
    for name in ("lite.db", "lite.db-wal"):
        mode = (tmp_path / name).stat().st_mode & 0o777
        assert mode == 0o600, (name, oct(mode))
    create_lite_table(s2.client())
    s2.wait_log("is readable by other users (mode 644)")


def test_21_20_the_decision_log_is_made_at_start_never_racing_a_commit(make_server, postgres,
                                                                      pgdb, tmp_path):
    """On a fresh database the decision log (fdt_txn_log) is created by the workers at start,
    under a lock, not inside the first commits: before, concurrent first two-resource
    commits raced on CREATE TABLE IF NOT EXISTS and failed with 23505 (pg_type)."""
    db = pgdb.split("dbname=")[1]
    other = db[:40] + "_b"
    postgres.psql(f'DROP DATABASE IF EXISTS "{other}"')
    dsn_b = postgres.create_db(other)
    for d in (db, other):
        postgres.psql("CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)", dbname=d)
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.pg2]\ndriver = postgresql\ndsn = {dsn_b}\n")
    s = make_server(extra_ini=extra, workers=2, threads=4, server={"node": "fresh"})
    exists = "SELECT count(*) FROM pg_tables WHERE tablename = 'fdt_txn_log'"
    wait_for(lambda: postgres.psql(exists, dbname=db) == [["1"]], timeout=15,
             what="the log made by the workers at start, before any transaction")
    results = []

    def first_commit(i):
        c = s.client()
        out = [c.call("TXN BEGIN"), c.call(f"SQL pg INSERT INTO acc VALUES ({i}, 1)"),
               c.call(f"SQL pg2 INSERT INTO acc VALUES ({i}, 1)"), c.call("TXN COMMIT")]
        results.append(out)

    import threading
    threads = [threading.Thread(target=first_commit, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [["OK", "OK 1", "OK 1", "OK"]] * 8, results
    for d in (db, other):
        assert postgres.psql("SELECT count(*) FROM acc", dbname=d) == [["8"]]
    assert "23505" not in s.log()


def test_21_21_a_decision_lost_with_its_connection_is_unknown_and_recovery_ends_it(
        make_server, postgres, pgdb, tmp_path):
    """Two PostgreSQL branches are prepared; the session that must write the decision
    dies (PostgreSQL ended it) before the decision is known to be durable: the client is
    told the outcome is unknown (FDT_EOUTCOME, not "rolled back" nor "committed"), and
    recovery, finding no decision, rolls both branches back (presumed abort)."""
    db = pgdb.split("dbname=")[1]
    other = db[:40] + "_u"
    postgres.psql(f'DROP DATABASE IF EXISTS "{other}"')
    dsn_b = postgres.create_db(other)
    for d in (db, other):
        postgres.psql("CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)", dbname=d)
    fault = tmp_path / "fault"
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.pg2]\ndriver = postgresql\ndsn = {dsn_b}\n")
    s = make_server(extra_ini=extra, workers=1, threads=2, env={"FDT_FAULT_FILE": str(fault)},
                    server={"node": "unknown", "recovery_grace": 8, "recovery_interval": 0.3})
    c = s.client()
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (1, 1)") == "OK 1"
    assert c.call("SQL pg2 INSERT INTO acc VALUES (1, 1)") == "OK 1"
    # Pause with the decision's session in hand (well inside recovery_grace), and end it.
    # The pause is long enough for psql to end the session on a loaded machine.
    fault.write_text("before_decision_write sleep 4000\n")
    c.send("TXN COMMIT\n")
    s.wait_log("fault point before_decision_write: sleeping")
    postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = current_database() AND pid <> pg_backend_pid()", dbname=db)
    r = c.readline()
    assert r.startswith("ERR outcome unknown"), r
    wait_for(lambda: prepared(postgres, db) == [] and prepared(postgres, other) == [],
             timeout=20, what="recovery ends both branches")
    for d in (db, other):
        assert postgres.psql("SELECT count(*) FROM acc", dbname=d) == [["0"]]


def test_21_22_a_transactions_own_sql_may_not_end_it(make_server, postgres, pgdb, tmp_path):
    """The framework ends transactions. An application's COMMIT on SQLite with group commit
    would end the batch other requests share; on PostgreSQL it would commit half a
    two-phase transaction. Refused before it runs, with the reason, and the transaction,
    doomed, rolls back whole. A script whose later statement ends it on PostgreSQL is seen
    afterwards and said so: what ran is as that statement left it."""
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)", dbname=db)
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n"
             "group_commit = yes\n")
    s = make_server(extra_ini=extra, server={"node": "testnode"})
    c = s.client()
    create_lite_table(c)
    refused = "ERR a transaction's own SQL may not begin or end it"
    for sql in ("COMMIT", "END", "ROLLBACK", "BEGIN", "RELEASE fdt__gc"):
        assert c.call("TXN BEGIN") == "OK"
        assert c.call("SQL lite INSERT INTO t VALUES (1)") == "OK 1"
        r = c.call(f"SQL lite {sql}")
        assert r.startswith(refused + " (BEGIN, COMMIT, ROLLBACK, END) nor touch the savepoint "
                            "fdt__gc of group commit: fdtserver ends the transaction"), (sql, r)
        assert c.call("SQL pg INSERT INTO acc VALUES (1, 1)").startswith(
            "ERR the transaction is doomed: a transaction's own SQL")
        r = c.call("TXN COMMIT")
        assert r.startswith("ERR rolled back: a transaction's own SQL"), r
    # The application's own savepoints nest inside: allowed.
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL lite SAVEPOINT a; INSERT INTO t VALUES (5); RELEASE a") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    import sqlite3
    con = sqlite3.connect(f"{tmp_path}/lite.db")
    assert con.execute("SELECT group_concat(x) FROM t").fetchone()[0] == "5"
    con.close()
    # PostgreSQL: refused before it runs (the branch's first statement, and a later one).
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg COMMIT").startswith(refused)
    assert c.call("TXN COMMIT").startswith("ERR rolled back: a transaction's own SQL")
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (1, 1)") == "OK 1"
    assert c.call("SQL pg /* why */ PREPARE TRANSACTION 'mine'").startswith(refused)
    assert c.call("TXN COMMIT").startswith("ERR rolled back")
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    # A script that commits in its second statement: seen afterwards, and said so.
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (2, 2)") == "OK 1"
    r = c.call("SQL pg INSERT INTO acc VALUES (3, 3); COMMIT")
    assert r.startswith("ERR the statement ended the transaction (COMMIT, ROLLBACK or END in a "
                        "transaction's own SQL): what ran on this database before it is as "
                        "that statement left it, outside fdtserver's transaction"), r
    assert c.call("TXN COMMIT").startswith("ERR rolled back: the statement ended the transaction")
    assert postgres.psql("SELECT id FROM acc ORDER BY id", dbname=db) == [["2"], ["3"]]
    assert prepared(postgres, db) == []
    # The connection's sessions go on serving transactions.
    assert c.call("TXN BEGIN") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (4, 4)") == "OK 1"
    assert c.call("SQL lite INSERT INTO t VALUES (6)") == "OK 1"
    assert c.call("TXN COMMIT") == "OK"
    assert postgres.psql("SELECT id FROM acc ORDER BY id", dbname=db) == [["2"], ["3"], ["4"]]
