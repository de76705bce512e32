"""`fdtserver txn` when part of the configuration cannot be used: a resource whose
database cannot be reached, a prepared transaction that is
not fdtserver's, resolutions of another node, and rolling back what is already rolled
back. No server runs: the command asks the databases itself."""
import subprocess

from fdt import FDTSERVER
from test_15_coverage_recovery import gid, record, setup_db
from test_21_txn import prepared


def fdt_txn(conf, *args):
    return subprocess.run([str(FDTSERVER), "txn", *args, "-c", str(conf)], capture_output=True,
                          text=True, timeout=60)


def config(tmp_path, pgdb, extra=""):
    """extra's resources come first: every look-up meets them before the log."""
    conf = tmp_path / "txn.ini"
    conf.write_text("[server]\nnode = nodec\n[listen.main]\naddress = 127.0.0.1:1\n"
                    "protocol = raw\n[app]\nmodule = /nonexistent.so\n" + extra +
                    f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n")
    return conf


def test_15_20_list_and_resolve_around_what_cannot_be_used(postgres, pgdb, tmp_path):
    db = setup_db(postgres, pgdb)
    down = pgdb.replace(f"dbname={db}", "dbname=no_such_database")
    conf = config(tmp_path, pgdb, f"[resource.down]\ndriver = postgresql\ndsn = {down}\n")
    mine = gid("nodec", "pg", b"one")
    postgres.psql(f"BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION '{mine}'", dbname=db)
    postgres.psql("BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION 'fdt1:junk'", dbname=db)
    # A resolution recorded by another node, and a record that is not an fdtserver GID.
    postgres.psql("INSERT INTO fdt_txn_log VALUES "
                  f"('{gid('noded', '_', b'other')}', 'recovery', 'rolled back', 2, 'by noded'), "
                  "('junk', 'recovery', 'rolled back', 1, 'by nobody')", dbname=db)
    r = fdt_txn(conf, "list")
    assert r.returncode == 1, r
    assert "fdtserver txn: [resource.down] connect: " in r.stderr
    assert mine in r.stdout and "fdt1:junk" not in r.stdout
    assert "1 prepared transaction\n" in r.stdout
    assert "by noded" in r.stdout and "by nobody" not in r.stdout
    r = fdt_txn(conf, "list", "--node", "nodec")
    assert "1 prepared transaction\n" in r.stdout and "by noded" not in r.stdout
    # A GID of the unreachable resource cannot be resolved; the message says why.
    r = fdt_txn(conf, "commit", gid("nodec", "down", b"one"))
    assert r.returncode == 1 and r.stderr.startswith("fdtserver txn: [resource.down] connect: ")
    # Roll back a voted branch, and again: the second time the log answers.
    record(postgres, db, gid("nodec", "_", b"one"), "participant", "voted")
    r = fdt_txn(conf, "rollback", mine)
    assert r.returncode == 0 and r.stdout == f"rolled back: {mine}\n", r
    r = fdt_txn(conf, "rollback", mine)
    assert r.returncode == 0 and r.stdout == f"already rolled back: {mine}\n", r
    assert prepared(postgres, db) == ["fdt1:junk"]
    postgres.psql("ROLLBACK PREPARED 'fdt1:junk'", dbname=db)
