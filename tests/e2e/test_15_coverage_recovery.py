"""Recovery of in-doubt transactions in the cases the other tests leave out, each shown
where a user sees it: a node that is not running taken over by a live one (on one machine:
nothing holds the dead node's alive lock), with and without a SQLite resource that may hold
its decision; this node's alive lock held by somebody else; a resource that cannot be
reached; and the answers of txn.commit_prepared / txn.rollback_prepared when the log says
no. The prepared transactions of the dead node are made with psql, as its crashed workers
would have left them."""
import base64
import subprocess

from fdt import RpcClient, free_port, wait_for
from test_21_txn import prepared

LOG_TABLE = ("CREATE TABLE IF NOT EXISTS fdt_txn_log (gid TEXT PRIMARY KEY, role TEXT NOT NULL, "
             "outcome TEXT NOT NULL, created BIGINT NOT NULL, comment TEXT)")
ALIVE_CLASS = 1717859377


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def xid(gtrid):
    """The JSON-RPC xid of gid(..., gtrid) (format 1, no bqual)."""
    return {"format_id": 1, "gtrid": b64(gtrid)}


def gid(node, resource, gtrid):
    return f"fdt1:{node}:{resource}:1:{b64(gtrid)}:"


def prepare(postgres, db, g, value):
    """A prepared branch g that inserted value into t."""
    postgres.psql(f"BEGIN; INSERT INTO t VALUES ({value}); PREPARE TRANSACTION '{g}'", dbname=db)


def record(postgres, db, key, role, outcome):
    postgres.psql(f"INSERT INTO fdt_txn_log VALUES ('{key}', '{role}', '{outcome}', 0, NULL)",
                  dbname=db)


def setup_db(postgres, pgdb):
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE t (x int)", dbname=db)
    postgres.psql(LOG_TABLE, dbname=db)
    return db


def rpc_server(make_server, pgdb, extra="", node="nodeb", interval=0.2, **kw):
    port = free_port()
    listeners = {"rpc": {"address": f"127.0.0.1:{port}", "protocol": "jsonrpc",
                         "txn_recovery": "yes"}}
    ini = f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n" + extra
    s = make_server(listeners=listeners, extra_ini=ini,
                    server={"node": node, "recovery_grace": 0, "recovery_interval": interval},
                    **kw)
    s.rpc_port = port
    return s


def test_15_01_a_dead_nodes_transactions_are_taken_over(make_server, postgres, pgdb, tmp_path):
    db = setup_db(postgres, pgdb)
    none, decided, voted = (gid("nodea", "pg", g) for g in (b"none", b"decided", b"voted"))
    record(postgres, db, gid("nodea", "_", b"decided"), "root", "commit")
    record(postgres, db, gid("nodea", "_", b"voted"), "participant", "voted")
    prepare(postgres, db, none, 1)
    prepare(postgres, db, decided, 2)
    prepare(postgres, db, voted, 3)
    # Not an fdtserver GID of any node: never touched.
    postgres.psql("BEGIN; INSERT INTO t VALUES (4); PREPARE TRANSACTION 'fdt1:junk'", dbname=db)
    s = rpc_server(make_server, pgdb)
    s.wait_log(f"rolled back {none} for dead node nodea")
    s.wait_log(f"committed {decided} for dead node nodea")
    s.wait_log("nodea (dead node, taken over): 1 committed, 1 rolled back, 1 left in doubt")
    assert sorted(prepared(postgres, db)) == sorted(["fdt1:junk", voted])
    assert postgres.psql("SELECT x FROM t", dbname=db) == [["2"]]
    log = dict(postgres.psql("SELECT gid, outcome || ': ' || comment FROM fdt_txn_log "
                             "WHERE comment IS NOT NULL", dbname=db))
    takeover = "by node nodeb at "
    assert takeover in log[gid("nodea", "_", b"none")]
    assert log[gid("nodea", "_", b"none")].startswith("rolled back: presumed abort")
    assert log[gid("nodea", "_", b"decided")].startswith("committed: committed by node nodeb")
    for v in log.values():
        assert v.endswith("(takeover: node nodea had no live session)"), v
    # txn.recover lists what is left (the junk GID is not fdtserver's: not listed).
    rec = RpcClient(s.rpc_port).call("txn.recover")["result"]
    assert [r["xid"]["gtrid"] for r in rec] == [b64(b"voted")]
    # The cluster is shared by the whole run: leave nothing prepared in it.
    postgres.psql("ROLLBACK PREPARED 'fdt1:junk'", dbname=db)
    postgres.psql(f"ROLLBACK PREPARED '{voted}'", dbname=db)


def test_15_02_a_takeover_with_a_sqlite_resource_leaves_undecided_ones(make_server, postgres,
                                                                      pgdb, tmp_path):
    db = setup_db(postgres, pgdb)
    none = gid("nodea", "pg", b"none")
    prepare(postgres, db, none, 1)
    s = rpc_server(make_server, pgdb,
                   extra=f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n")
    s.wait_log(f"{none}: no decision in the shared log, and node nodea may have written it in "
               "its own sqlite resource: left in doubt (resolve with fdtserver txn)")
    s.wait_log("nodea (dead node, taken over): 0 committed, 0 rolled back, 1 left in doubt")
    assert prepared(postgres, db) == [none]
    postgres.psql(f"ROLLBACK PREPARED '{none}'", dbname=db)


def test_15_03_this_nodes_alive_lock_held_by_a_peer(make_server, postgres, pgdb, tmp_path):
    setup_db(postgres, pgdb)
    holder = subprocess.Popen(
        ["psql", "-X", "-q", "-A", "-t", "-h", str(postgres.dir), "-p", str(postgres.port), "-U",
         "postgres", "-d", pgdb.split("dbname=")[1]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdin.write(f"SELECT pg_advisory_lock({ALIVE_CLASS}, hashtext('fdt-alive:nodeb')) "
                           "IS NULL AS locked;\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "f"  # void IS NULL: false, and held
        s = rpc_server(make_server, pgdb)
        s.wait_log("[resource.pg] cannot hold node nodeb's alive lock: a peer holds it: it is "
                   "taking over this node (until it is held, another host may resolve this "
                   "node's in-doubt transactions)")
        holder.stdin.write("\\q\n")
        holder.stdin.flush()
        holder.wait(10)
        s.wait_log("node nodeb's alive lock is held again")
        assert s.log().count("cannot hold node nodeb's alive lock") == 1
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_15_04_a_resource_that_cannot_be_reached(make_server, postgres, pgdb, tmp_path):
    db = setup_db(postgres, pgdb)
    down = pgdb.replace(f"dbname={db}", "dbname=no_such_database")
    s = rpc_server(make_server, pgdb, extra=f"[resource.down]\ndriver = postgresql\ndsn = {down}\n")
    s.wait_log('recovery pass: [resource.down] connect: ')
    # A branch of this node with no record: with a log that cannot be read, recovery
    # decides nothing, and neither does a resolution by hand.
    mine = gid("nodeb", "pg", b"mine")
    prepare(postgres, db, mine, 1)
    wait_for(lambda: any(w["transactions_in_doubt"] == 1 for w in s.workers()),
             what="the branch counted in doubt")
    assert prepared(postgres, db) == [mine]
    c = RpcClient(s.rpc_port)
    for method in ("txn.commit_prepared", "txn.rollback_prepared"):
        r = c.call(method, {"xid": xid(b"mine")})
        assert "a transaction log cannot be read: nothing was done" in r["error"]["message"], r
    # txn.recover still lists what the reachable resources hold.
    rec = c.call("txn.recover")["result"]
    assert [r["xid"]["gtrid"] for r in rec] == [b64(b"mine")]
    postgres.psql(f"ROLLBACK PREPARED '{mine}'", dbname=db)


def test_15_05_resolving_by_hand_against_the_log(make_server, postgres, pgdb, tmp_path):
    db = setup_db(postgres, pgdb)
    s = rpc_server(make_server, pgdb, interval=0)  # no passes: nothing is resolved behind us
    c = RpcClient(s.rpc_port)
    # Nothing prepared and nothing recorded.
    r = c.call("txn.rollback_prepared", {"xid": xid(b"never")})
    assert r["error"]["message"].endswith("no such transaction"), r
    # Recorded rolled back (by recovery, say) but still prepared: it cannot be committed.
    g = gid("nodeb", "pg", b"undone")
    record(postgres, db, gid("nodeb", "_", b"undone"), "recovery", "rolled back")
    prepare(postgres, db, g, 1)
    r = c.call("txn.commit_prepared", {"xid": xid(b"undone")})
    assert r["error"]["message"].endswith("the transaction was rolled back"), r
    assert prepared(postgres, db) == [g]
    r = c.call("txn.rollback_prepared", {"xid": xid(b"undone")})
    assert r["result"] == {"state": "rolled back", "already": False}
    assert prepared(postgres, db) == []


def test_15_06_an_abort_record_written_only_in_part(make_server, postgres, pgdb, tmp_path):
    """A SQLite log table of another shape (no created column): the abort record that
    fences a coordinator is written in the PostgreSQL log but not there, so the pass decides
    nothing and says so; the next pass finds the PostgreSQL record and rolls back."""
    import sqlite3
    db = setup_db(postgres, pgdb)
    lite = tmp_path / "lite.db"
    with sqlite3.connect(str(lite)) as c:
        c.execute("CREATE TABLE fdt_txn_log (gid TEXT PRIMARY KEY, role TEXT, outcome TEXT)")
    mine = gid("nodeb", "pg", b"fenced")
    prepare(postgres, db, mine, 1)
    s = rpc_server(make_server, pgdb, extra=f"[resource.lite]\ndriver = sqlite\npath = {lite}\n")
    s.wait_log(f"{mine}: a decision raced with recovery: next pass")
    s.wait_log(f"rolled back {mine}")
    assert prepared(postgres, db) == []
    key = gid("nodeb", "_", b"fenced")
    assert postgres.psql(f"SELECT role, outcome FROM fdt_txn_log WHERE gid = '{key}'",
                         dbname=db) == [["recovery", "rolled back"]]
