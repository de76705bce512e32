"""JSON-RPC 2.0 over TCP: framing, errors, and client-driven two-phase commit."""
import base64
import json

from fdt import RpcClient, free_port, wait_for
from load import RpcEcho, reload_under_load
from test_21_txn import prepared


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def rpc_server(make_server, tmp_path, extra="", recovery=True, **kw):
    port = free_port()
    rpc = {"address": f"127.0.0.1:{port}", "protocol": "jsonrpc"}
    if recovery:
        rpc["txn_recovery"] = "yes"  # coordinators reach this listener: they may resolve
    s = make_server(listeners={"rpc": rpc}, extra_ini=extra, **kw)
    s.rpc_port = port
    return s


def test_22_01_calls_and_standard_errors(make_server, tmp_path):
    s = rpc_server(make_server, tmp_path)
    c = RpcClient(s.rpc_port)
    assert c.call("echo", {"a": [1, 2, "x"]})["result"] == {"a": [1, 2, "x"]}
    assert c.call("echo", [1, 2])["result"] == [1, 2]
    r = c.call("nope")
    assert r["error"]["code"] == -32601 and "nope" in r["error"]["message"]
    r = c.call("sleep", {"ms": "ten"})
    assert r["error"]["code"] == -32602 and "ms" in r["error"]["message"]
    r = c.call("fail")
    assert r["error"] == {"code": -32001, "message": "failing on purpose"}
    # Malformed JSON: -32700 with id null; the connection keeps working.
    c.send_raw('{"jsonrpc": "2.0", "method": \n')
    r = c.read()
    assert r["error"]["code"] == -32700 and r["id"] is None
    for bad, code in (('[1, 2]', -32600), ('"just a string"', -32600),
                      ('{"jsonrpc": "1.0", "method": "echo", "id": 1}', -32600),
                      ('{"jsonrpc": "2.0", "method": 5, "id": 1}', -32600),
                      ('{"jsonrpc": "2.0", "method": "echo", "id": [1]}', -32600),
                      ('{"jsonrpc": "2.0", "method": "echo", "params": 3, "id": 1}', -32600)):
        c.send_raw(bad + "\n")
        assert c.read()["error"]["code"] == code, bad
    # A notification (no id) gets no answer; the next call does.
    c.send_raw('{"jsonrpc": "2.0", "method": "echo", "params": [9]}\n')
    assert c.call("echo", [10])["result"] == [10]
    # Deep nesting is refused, not a crash.
    c.send_raw('{"jsonrpc": "2.0", "method": "echo", "id": 1, "params": ' + "[" * 5000 +
               "]" * 5000 + "}\n")
    r = c.read()
    assert "error" in r
    assert c.call("echo", [11])["result"] == [11]
    # An empty transaction votes (nothing prepared) and finishes; and again, aborted.
    assert c.call("txn.begin")["result"]["state"] == "active"
    assert c.call("txn.vote")["result"]["prepared"] == 0
    assert c.call("txn.finish")["result"] == {"state": "committed"}
    assert c.call("txn.begin")["result"]["state"] == "active"
    assert c.call("txn.vote")["result"]["prepared"] == 0
    assert c.call("txn.abort")["result"] == {"state": "rolled back"}
    # A method knows its connection (fdt_jsonrpc_conn): the same for each call of one
    # connection, another for another.
    me = c.call("whoami")["result"]
    assert me["listener"] == "rpc" and c.call("whoami")["result"]["conn"] == me["conn"], me
    other = RpcClient(s.rpc_port)
    assert other.call("whoami")["result"]["conn"] != me["conn"]
    other.close()


def test_22_02_a_line_over_the_limit_is_refused(make_server, tmp_path):
    s = rpc_server(make_server, tmp_path, server={"max_input": "4k"})
    c = RpcClient(s.rpc_port)
    c.send_raw('{"jsonrpc": "2.0", "method": "echo", "params": ["' + "x" * 10000 + '"]}\n')
    r = c.read()
    assert r["error"]["code"] == -32600 and "max_input" in r["error"]["message"]
    # The rest of that line is dropped; the connection keeps working (as after any error),
    # also when the long line comes in pieces and is followed by more on the same write.
    assert c.call("echo", [1])["result"] == [1]
    c.send_raw('{"jsonrpc": "2.0", "method": "echo", "params": ["' + "y" * 5000)
    c.send_raw("y" * 5000 + '"], "id": 2}\n{"jsonrpc": "2.0", "method": "echo", '
               '"params": [3], "id": 3}\n')
    r = c.read()
    assert r["error"]["code"] == -32600 and r["id"] is None
    assert c.read() == {"jsonrpc": "2.0", "result": [3], "id": 3}


def pg_rpc_server(make_server, postgres, pgdb, tmp_path, **kw):
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)", dbname=db)
    extra = f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n"
    server = dict({"node": "rpcnode"}, **kw.pop("server", {}))
    s = rpc_server(make_server, tmp_path, extra=extra, server=server, **kw)
    return s, db


def test_22_03_calls_outside_a_transaction_commit_on_their_own(make_server, postgres, pgdb,
                                                               tmp_path):
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    r = c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (1, 10)"})
    assert r["result"] == {"rows": 1}
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["10"]]
    r = c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (1, 10)"})
    assert r["error"]["code"] == -32000 and "duplicate key" in r["error"]["message"]
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["1"]]
    # A method that succeeds without writing a result is answered an internal error, and
    # its work is rolled back: an error answer means nothing was done (it used to commit).
    r = c.call("sql_silent", {"resource": "pg", "sql": "INSERT INTO acc VALUES (2, 20)"})
    assert r["error"] == {"code": -32603, "message":
                          "internal error: the method did not write one JSON value"}, r
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["1"]]


def test_22_08_an_abort_whose_rollback_fails_says_so(make_server, postgres, pgdb, tmp_path):
    """txn.abort of a prepared transaction after PostgreSQL dropped its session: the
    ROLLBACK PREPARED cannot be sent, and the answer says so (an error, not "rolled back"),
    since the branch is still prepared; txn.recover lists it and txn.rollback_prepared
    resolves it. (A session dropped before the vote needs nothing: the server rolled the
    work back with it, and txn.abort truly answers "rolled back".)"""
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    kill = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert c.call("txn.begin")["result"]["state"] == "active"
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (8, 8)"})[
        "result"] == {"rows": 1}
    postgres.psql(kill, dbname=db)
    assert c.call("txn.abort")["result"] == {"state": "rolled back"}
    assert c.call("txn.begin")["result"]["state"] == "active"
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (9, 9)"})[
        "result"] == {"rows": 1}
    xid = c.call("txn.vote")["result"]["xid"]
    postgres.psql(kill, dbname=db)
    r = c.call("txn.abort")
    assert r["error"]["code"] == -32013 and "it stays prepared" in r["error"]["message"], r
    assert len(prepared(postgres, db)) == 1
    other = RpcClient(s.rpc_port)
    rec = other.call("txn.recover")["result"]
    assert [e["xid"] for e in rec] == [xid], rec
    assert other.call("txn.rollback_prepared", {"xid": xid})["result"]["state"] == "rolled back"
    assert prepared(postgres, db) == []
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]


def test_22_04_client_driven_two_phase_commit(make_server, postgres, pgdb, tmp_path):
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    xid = {"format_id": 7, "gtrid": b64(b"coordinator-1"), "bqual": b64(b"b1")}
    assert c.call("txn.vote")["error"]["code"] == -32010
    assert c.call("txn.begin", {"xid": xid})["result"] == {"state": "active",
                                                           "role": "participant", "xid": xid}
    assert c.call("txn.begin")["error"]["code"] == -32010
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (2, 5)"})[
        "result"] == {"rows": 1}
    assert c.call("txn.vote")["result"] == {"state": "prepared", "prepared": 1, "xid": xid}
    # Another connection sees it in doubt and cannot see the row yet.
    other = RpcClient(s.rpc_port)
    rec = other.call("txn.recover")["result"]
    assert len(rec) == 1 and rec[0]["xid"] == xid and rec[0]["record"] == "voted"
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    assert c.call("txn.finish")["result"] == {"state": "committed"}
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["5"]]
    assert other.call("txn.recover")["result"] == []


def test_22_05_resolution_from_another_connection_after_a_disconnect(make_server, postgres,
                                                                     pgdb, tmp_path):
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    xid = {"format_id": 1, "gtrid": b64(b"g2")}
    c = RpcClient(s.rpc_port)
    c.call("txn.begin", {"xid": xid})
    c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (3, 3)"})
    assert c.call("txn.vote")["result"]["state"] == "prepared"
    c.close()
    s.wait_log("stays prepared")
    d = RpcClient(s.rpc_port)
    r = d.call("txn.commit_prepared", {"xid": xid})
    assert r["result"] == {"state": "committed", "already": False}
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["3"]]
    # Idempotent; and a committed transaction cannot be rolled back.
    assert d.call("txn.commit_prepared", {"xid": xid})["result"] == {"state": "committed",
                                                                     "already": True}
    r = d.call("txn.rollback_prepared", {"xid": xid})
    assert r["error"]["code"] == -32010 and "committed" in r["error"]["message"]
    r = d.call("txn.commit_prepared", {"xid": {"gtrid": b64(b"never-seen")}})
    assert r["error"]["code"] == -32011
    r = d.call("txn.commit_prepared", {"xid": {"gtrid": "not base64!"}})
    assert r["error"]["code"] == -32602


def test_22_06_disconnect_before_the_vote_rolls_back(make_server, postgres, pgdb, tmp_path):
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    c.call("txn.begin", {"xid": {"gtrid": b64(b"g3")}})
    c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (4, 4)"})
    c.close()
    s.wait_log("closed before the vote")
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    assert postgres.psql("SELECT count(*) FROM pg_prepared_xacts "
                         "WHERE database = current_database()", dbname=db) == [["0"]]


def test_22_07_root_transaction_over_several_calls_and_expiry(make_server, postgres, pgdb,
                                                              tmp_path):
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path,
                          server={"transaction_timeout": 0.5})
    c = RpcClient(s.rpc_port)
    assert c.call("txn.begin")["result"]["role"] == "root"
    c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (5, 5)"})
    c.call("sql", {"resource": "pg", "sql": "UPDATE acc SET bal = 6 WHERE id = 5"})
    assert c.call("txn.finish")["result"] == {"state": "committed"}
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["6"]]
    # Left idle: rolled back, and the client is told with a notification.
    c.call("txn.begin")
    c.call("sql", {"resource": "pg", "sql": "UPDATE acc SET bal = 7 WHERE id = 5"})
    note = c.read()
    assert note["method"] == "txn.expired" and "id" not in note
    assert c.call("txn.finish")["error"]["code"] == -32010
    assert postgres.psql("SELECT bal FROM acc", dbname=db) == [["6"]]
    # The transaction state is clean: a new one starts.
    assert c.call("txn.begin")["result"]["state"] == "active"
    assert c.call("txn.abort")["result"] == {"state": "rolled back"}


def test_22_11_a_failed_call_leaves_the_connection_transaction_as_it_was(make_server, postgres,
                                                                        pgdb, tmp_path):
    """Inside txn.begin, each call runs under a savepoint: a call that fails (a duplicate
    key here) is undone alone, the transaction is not doomed, earlier work stays."""
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    assert c.call("txn.begin")["result"]["state"] == "active"
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (1, 1)"})["result"]
    r = c.call("sql", {"resource": "pg",
                       "sql": "INSERT INTO acc VALUES (2, 2); INSERT INTO acc VALUES (1, 1)"})
    assert r["error"]["code"] == -32000 and "duplicate key" in r["error"]["message"]
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (3, 3)"})["result"]
    assert c.call("txn.finish")["result"]["state"] == "committed"
    assert postgres.psql("SELECT id FROM acc ORDER BY id", dbname=db) == [["1"], ["3"]]


def test_22_12_a_failed_first_call_leaves_nothing_to_vote_or_commit(make_server, postgres, pgdb,
                                                                     tmp_path):
    """The only call inside txn.begin fails: its branch is rolled back whole, and vote,
    finish and commit then have nothing to do (and do not fail on that empty branch)."""
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    assert c.call("txn.begin", {"xid": {"gtrid": b64(b"empty-vote")}})["result"]
    r = c.call("sql", {"resource": "pg", "sql": "INSERT INTO nosuch VALUES (1)"})
    assert r["error"]["code"] == -32000
    # Nothing to prepare: the vote says so (no branch holds locks in doubt).
    v = c.call("txn.vote")["result"]
    assert v["state"] == "prepared" and v["prepared"] == 0, v
    assert postgres.psql("SELECT count(*) FROM pg_prepared_xacts WHERE database = "
                         "current_database()", dbname=db) == [["0"]]
    assert c.call("txn.finish")["result"]["state"] == "committed"
    # A root transaction: the failed call on one resource, real work on another.
    assert c.call("txn.begin")["result"]["role"] == "root"
    r = c.call("sql", {"resource": "pg", "sql": "INSERT INTO nosuch VALUES (1)"})
    assert r["error"]["code"] == -32000
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (9, 9)"})["result"]
    assert c.call("txn.finish")["result"]["state"] == "committed"
    assert postgres.psql("SELECT id FROM acc", dbname=db) == [["9"]]


def test_22_13_a_root_transaction_votes_and_is_resolved_by_its_xid(make_server, postgres, pgdb,
                                                                   tmp_path):
    """txn.begin without an xid: fdtserver names the transaction and returns its xid; the
    client may still vote (becoming the coordinator), and after it vanishes the branch is
    prepared, listed, and resolved with that xid from another connection."""
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    r = c.call("txn.begin")["result"]
    assert r["state"] == "active" and r["role"] == "root"
    xid = r["xid"]
    assert xid["gtrid"] and set(xid) == {"format_id", "gtrid", "bqual"}
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (13, 13)"})["result"]
    v = c.call("txn.vote")["result"]
    assert v == {"state": "prepared", "prepared": 1, "xid": xid}, v
    c.close()
    s.wait_log("stays prepared (in doubt) in 1 resource")
    other = RpcClient(s.rpc_port)
    rec = other.call("txn.recover")["result"]
    assert [x["xid"] for x in rec] == [xid] and rec[0]["record"] == "voted"
    assert postgres.psql("SELECT count(*) FROM acc", dbname=db) == [["0"]]
    r = other.call("txn.commit_prepared", {"xid": xid})["result"]
    assert r == {"state": "committed", "already": False}
    assert postgres.psql("SELECT bal FROM acc WHERE id = 13", dbname=db) == [["13"]]
    assert other.call("txn.recover")["result"] == []


def test_22_14_recovery_methods_only_where_the_listener_allows_them(make_server, postgres, pgdb,
                                                                   tmp_path):
    """txn.recover / txn.commit_prepared / txn.rollback_prepared act on any coordinator's
    transactions: a listener without txn_recovery = yes refuses them (-32601, saying how to
    allow them) and resolves nothing; the rest of the protocol is unchanged there."""
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path, recovery=False)
    c = RpcClient(s.rpc_port)
    xid = {"format_id": 1, "gtrid": b64(b"locked-down"), "bqual": ""}
    assert c.call("txn.begin", {"xid": xid})["result"]["state"] == "active"
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (14, 14)"})["result"]
    assert c.call("txn.vote")["result"]["prepared"] == 1
    c.close()
    other = RpcClient(s.rpc_port)
    for method, params in (("txn.recover", None), ("txn.commit_prepared", {"xid": xid}),
                           ("txn.rollback_prepared", {"xid": xid})):
        r = other.call(method, params)
        assert r["error"]["code"] == -32601 and "txn_recovery" in r["error"]["message"], r
    assert len(prepared(postgres, db)) == 1  # still in doubt, untouched
    # The operator's way stays open (control socket / fdtserver txn).
    r = s.ctl("txn", "commit", prepared(postgres, db)[0])
    assert "committed" in r.stdout
    assert postgres.psql("SELECT bal FROM acc WHERE id = 14", dbname=db) == [["14"]]


def test_22_40_no_call_lost_across_100_reloads(make_server, tmp_path):
    """Promise 4 for JSON-RPC, whose clients cannot be told to close: a retiring worker
    hands each idle connection (between calls, no transaction) to a worker of the new
    generation, so clients that never retry lose nothing and never meet a closed
    connection over 100 reloads under load."""
    s = rpc_server(make_server, tmp_path, workers=2, threads=4)
    load = reload_under_load(s, 100, RpcEcho, port=s.rpc_port)
    assert load.retried == 0, load.report("100 reloads")


def test_22_41_a_connection_goes_on_after_its_transaction(make_server, tmp_path):
    """An idle connection moves to the new generation on reload; one with an open
    transaction stays with its worker until the transaction ends, then moves too: the
    transaction is never cut by a reload."""
    s = rpc_server(make_server, tmp_path, workers=1, threads=2,
                   server={"graceful_timeout": 60})
    idle, busy = RpcClient(s.rpc_port), RpcClient(s.rpc_port)
    first = idle.call("whoami")["result"]
    assert busy.call("txn.begin")["result"] is not None
    s.reload()
    # The idle one is served by the new generation while the old worker still serves the
    # open transaction.
    wait_for(lambda: idle.call("whoami")["result"]["generation"] == 2,
             what="the idle connection served by generation 2")
    assert {w["generation"] for w in s.workers()} == {1, 2}
    still = busy.call("whoami")["result"]
    assert (still["pid"], still["generation"]) == (first["pid"], first["generation"]), still
    r = busy.call("txn.abort")
    assert "error" not in r, r
    wait_for(lambda: {w["generation"] for w in s.workers()} == {2},
             what="the old generation gone once the transaction ended")
    moved = busy.call("whoami")["result"]
    assert moved["generation"] == 2 and moved["pid"] != first["pid"], moved


def test_22_42_a_coordinator_resolves_a_dead_hosts_branches_through_another(
        make_server, postgres, pgdb, tmp_path):
    """Two hosts (node names hosta, hostb) share PostgreSQL. A coordinator votes a
    transaction on hosta, whose whole process tree then dies. hostb's txn.recover lists
    the branch with the node that prepared it, and txn.commit_prepared with that node
    commits it there: the coordinator's decision does not wait for hosta to come back. A
    branch with no vote recorded cannot be committed that way; rolling one back fences it."""
    a, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path, server={"node": "hosta"})
    extra = f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n"
    b = rpc_server(make_server, tmp_path, extra=extra, server={"node": "hostb"})
    xid = {"format_id": 7, "gtrid": b64(b"coordinated-42")}
    c = RpcClient(a.rpc_port)
    c.call("txn.begin", {"xid": xid})
    c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (42, 42)"})
    assert c.call("txn.vote")["result"]["state"] == "prepared"
    import os
    import signal
    from fdt import proc_children
    for pid in [a.pid] + proc_children(a.pid):
        os.kill(pid, signal.SIGKILL)
    a.proc.wait(10)
    c.close()
    other = RpcClient(b.rpc_port)
    rec = other.call("txn.recover")["result"]
    mine = [x for x in rec if x["xid"]["gtrid"] == xid["gtrid"]]
    assert len(mine) == 1 and mine[0]["node"] == "hosta" and mine[0]["record"] == "voted", rec
    # Without the node, hostb looks for its own branches: none.
    r = other.call("txn.commit_prepared", {"xid": xid})
    assert r["error"]["code"] == -32011, r
    r = other.call("txn.commit_prepared", {"xid": xid, "node": "hosta"})
    assert r["result"] == {"state": "committed", "already": False}, r
    assert postgres.psql("SELECT bal FROM acc WHERE id = 42", dbname=db) == [["42"]]
    assert not [x for x in other.call("txn.recover")["result"]
                if x["xid"]["gtrid"] == xid["gtrid"]]
    r = other.call("txn.commit_prepared", {"xid": xid, "node": "no such node!"})
    assert r["error"]["code"] == -32602 and "node" in r["error"]["message"], r
    # A prepared branch with no vote recorded (made by hand here, as a root transaction's
    # would be between its prepare and its decision): commit is refused, rollback fences.
    gid = "fdt1:hosta:pg:7:" + b64(b"by-hand") + ":"
    postgres.psql(f"BEGIN; INSERT INTO acc VALUES (43, 43); PREPARE TRANSACTION '{gid}'",
                  dbname=db)
    hand = {"format_id": 7, "gtrid": b64(b"by-hand")}
    r = other.call("txn.commit_prepared", {"xid": hand, "node": "hosta"})
    assert r["error"]["code"] == -32010 and "no vote" in r["error"]["message"], r
    r = other.call("txn.rollback_prepared", {"xid": hand, "node": "hosta"})
    assert r["result"] == {"state": "rolled back", "already": False}, r
    assert postgres.psql("SELECT count(*) FROM acc WHERE id = 43", dbname=db) == [["0"]]
    rows = postgres.psql("SELECT role, outcome FROM fdt_txn_log WHERE gid = "
                         "'fdt1:hosta:_:7:" + b64(b"by-hand") + ":'", dbname=db)
    assert rows == [["recovery", "rolled back"]], rows


def rpc_line(method, params=None, id=None):
    msg = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    if id is not None:
        msg["id"] = id
    return json.dumps(msg) + "\n"


def test_22_50_pipelined_calls_are_answered_in_order(make_server, tmp_path):
    """Calls sent together (one write) are answered in order, errors and all, whatever the
    answers are collected into (one send per batch, docs/jsonrpc.md "Pipelining"); a
    notification in the batch answers nothing; a call whose line is not complete yet is
    answered once its end comes, and the complete calls before it are answered without it."""
    s = rpc_server(make_server, tmp_path)
    c = RpcClient(s.rpc_port)
    batch = [rpc_line("echo", [1], 1), "\n", '{"jsonrpc": "2.0", "method": \n',
             rpc_line("nope", None, 3), rpc_line("fail", None, 4),
             rpc_line("echo", [5]),  # a notification
             rpc_line("sleep", {"ms": 30}, 6), rpc_line("sleep", {"ms": "x"}, 7), "  \r\n",
             '[1, 2]\n', rpc_line("echo", {"k": "v"}, 9)]
    c.send_raw("".join(batch))
    got = [c.read() for _ in range(8)]
    assert [g.get("id") for g in got] == [1, None, 3, 4, 6, 7, None, 9]
    assert got[0]["result"] == [1]
    assert got[1]["error"]["code"] == -32700
    assert got[2]["error"]["code"] == -32601
    assert got[3]["error"]["code"] == -32001
    assert got[4]["result"] == 30
    assert got[5]["error"]["code"] == -32602
    assert got[6]["error"]["code"] == -32600
    assert got[7]["result"] == {"k": "v"}
    # Complete calls followed by the start of another: the complete ones are answered now
    # (the read below would time out if they waited for the rest).
    c.send_raw(rpc_line("echo", [10], 10) + rpc_line("echo", [11], 11) + '{"jsonrpc": "2.0", ')
    assert [c.read()["id"] for _ in range(2)] == [10, 11]
    c.send_raw('"method": "echo", "params": [12], "id": 12}\n')
    assert c.read() == {"jsonrpc": "2.0", "result": [12], "id": 12}
    # Many calls in one write, more answer bytes than the collecting threshold (16 KiB) and
    # more than one read of the server: every answer, in order.
    big = "x" * 300
    c.send_raw("".join(rpc_line("echo", [i, big], i) for i in range(100, 400)))
    for i in range(100, 400):
        assert c.read() == {"jsonrpc": "2.0", "result": [i, big], "id": i}
    assert c.call("echo", [1])["result"] == [1]


def test_22_51_answers_are_not_held_behind_a_database_wait(make_server, postgres, pgdb,
                                                           tmp_path):
    """The rule for a call that blocks in the middle of a batch: the answers collected before
    it are sent before its transaction waits on a database (here a row lock held by another
    connection), so the client reads them while the call is still blocked."""
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    postgres.psql("INSERT INTO acc VALUES (1, 0)", dbname=db)
    holder = RpcClient(s.rpc_port)
    xid = {"format_id": 5, "gtrid": b64(b"lock-holder")}
    assert holder.call("txn.begin", {"xid": xid})["result"]["state"] == "active"
    upd = {"resource": "pg", "sql": "UPDATE acc SET bal = bal + 1 WHERE id = 1"}
    assert holder.call("sql", upd)["result"] == {"rows": 1}
    c = RpcClient(s.rpc_port)
    c.send_raw(rpc_line("echo", [1], 1) + rpc_line("nope", None, 2) + rpc_line("sql", upd, 3) +
               rpc_line("echo", [4], 4))
    # Answered while call 3 waits for the lock (a read that would otherwise time out).
    assert c.read() == {"jsonrpc": "2.0", "result": [1], "id": 1}
    assert c.read()["error"]["code"] == -32601
    assert holder.call("txn.abort")["result"] == {"state": "rolled back"}
    assert c.read() == {"jsonrpc": "2.0", "result": {"rows": 1}, "id": 3}
    assert c.read() == {"jsonrpc": "2.0", "result": [4], "id": 4}
    assert postgres.psql("SELECT bal FROM acc WHERE id = 1", dbname=db) == [["1"]]


def test_22_52_every_transaction_has_its_own_xid(make_server, postgres, pgdb, tmp_path):
    """Root transactions are named with 16 random bytes: at txn.begin, and for a call's own
    transaction only once it enlists a resource (tests/unit/test_txn_name.c checks those).
    The names txn.begin returns are all different, also with calls that need no name in
    between, and the prepared branch's GID carries the name."""
    s, db = pg_rpc_server(make_server, postgres, pgdb, tmp_path)
    c = RpcClient(s.rpc_port)
    seen = set()
    for _ in range(20):
        r = c.call("txn.begin")["result"]
        assert r["role"] == "root" and r["xid"]["format_id"] == 0x66647431
        assert len(base64.urlsafe_b64decode(r["xid"]["gtrid"] + "==")) == 16
        seen.add(r["xid"]["gtrid"])
        assert c.call("txn.abort")["result"] == {"state": "rolled back"}
    assert len(seen) == 20
    # Calls outside a transaction that touch no resource, pipelined, between them.
    c.send_raw("".join(rpc_line("echo", [i], i) for i in range(50)))
    assert [c.read()["id"] for _ in range(50)] == list(range(50))
    r = c.call("txn.begin")["result"]
    assert r["xid"]["gtrid"] not in seen
    c.call("txn.abort")
    # A root transaction over several calls, voted: its GID carries the name txn.begin gave.
    r = c.call("txn.begin")["result"]
    assert c.call("sql", {"resource": "pg", "sql": "INSERT INTO acc VALUES (52, 1)"})["result"]
    assert c.call("txn.vote")["result"]["xid"] == r["xid"]
    gids = prepared(postgres, db)
    assert len(gids) == 1 and r["xid"]["gtrid"] in gids[0]
    assert c.call("txn.abort")["result"] == {"state": "rolled back"}
    assert prepared(postgres, db) == []
