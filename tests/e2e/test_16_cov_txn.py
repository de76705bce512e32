"""Transactions' paths no other test takes (issue #14 coverage): a database driver module
that is missing, not loadable, without its entry point, or another driver than its file
name says. `fdtserver txn` loads the module itself, from <dir of libfdt.so>/fdtserver when
libfdt.so lies outside the build tree: here a copy of it in a temporary directory, put
first by LD_LIBRARY_PATH (the programs find libfdt.so by RUNPATH, which it overrides)."""
import os
import re
import shutil
import subprocess

import pytest

from fdt import BUILD, FDTSERVER

GID = "fdt1:nodec:lite:1:AQID:"


def install_dir():
    text = (BUILD / "fdt_config.h").read_text()
    return re.search(r'#define FDT_RM_INSTALL_DIR "(.*)"', text).group(1)


@pytest.fixture
def lib(tmp_path):
    """A directory with a copy of libfdt.so and an empty module directory beside it."""
    d = tmp_path / "lib"
    (d / "fdtserver").mkdir(parents=True)
    shutil.copy(BUILD / "libfdt.so.0", d / "libfdt.so.0")
    return d


def run_rollback(tmp_path, lib, extra=""):
    conf = tmp_path / "txn.ini"
    conf.write_text("[server]\nnode = nodec\n[listen.main]\naddress = 127.0.0.1:1\n"
                    "protocol = raw\n[app]\nmodule = /nonexistent.so\n"
                    f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n" + extra)
    r = subprocess.run([str(FDTSERVER), "txn", "rollback", GID, "-c", str(conf)],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, LD_LIBRARY_PATH=str(lib)))
    assert r.returncode == 1, r
    return r


def rollback(tmp_path, lib):
    r = run_rollback(tmp_path, lib)
    assert "fdtserver txn: [resource.lite] driver sqlite is not available" in r.stderr, r
    assert not (tmp_path / "lite.db").exists()
    return r.stderr


def test_16_10_driver_module_missing(tmp_path, lib):
    if os.path.exists(os.path.join(install_dir(), "fdt_rm_sqlite.so")):
        pytest.skip("an installed fdt_rm_sqlite.so would be found")
    err = rollback(tmp_path, lib)
    assert (f"driver sqlite: fdt_rm_sqlite.so not found in {lib}/fdtserver, {install_dir()}"
            in err)


def test_16_11_driver_module_not_loadable(tmp_path, lib):
    module = lib / "fdtserver" / "fdt_rm_sqlite.so"
    module.write_bytes(b"not an ELF object\n" * 64)
    err = rollback(tmp_path, lib)
    assert f"driver sqlite: cannot load {module}: " in err


def test_16_12_driver_module_without_its_entry_point(tmp_path, lib):
    module = lib / "fdtserver" / "fdt_rm_sqlite.so"
    shutil.copy(BUILD / "apps" / "hello.so", module)
    err = rollback(tmp_path, lib)
    assert f"driver sqlite: {module}: " in err
    assert "undefined symbol: fdt_rm_driver_v1" in err


def test_16_13_driver_module_of_another_driver(tmp_path, lib):
    module = lib / "fdtserver" / "fdt_rm_sqlite.so"
    shutil.copy(BUILD / "fdt_rm_postgresql.so", module)
    err = rollback(tmp_path, lib)
    assert re.search(f"driver sqlite: {re.escape(str(module))} is driver postgresql of ABI "
                     r"version (\d+), not sqlite of \1", err), err


LOG_TABLE = ("CREATE TABLE fdt_txn_log (gid TEXT PRIMARY KEY, role TEXT NOT NULL, "
             "outcome TEXT NOT NULL, created BIGINT NOT NULL, comment TEXT)")
# Refuses a log record of each role listed in table refuse: the database says no on a
# session that stays alive, so the outcome of the refusal is known.
REFUSE = ("CREATE TABLE refuse (role text); "
          "CREATE FUNCTION refuse_log() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "IF EXISTS (SELECT 1 FROM refuse WHERE role = NEW.role) THEN "
          "RAISE EXCEPTION 'log refused for %', NEW.role; END IF; RETURN NEW; END $$; "
          "CREATE TRIGGER refuse_log BEFORE INSERT ON fdt_txn_log "
          "FOR EACH ROW EXECUTE FUNCTION refuse_log()")


def prepared(postgres, db):
    return postgres.psql("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
                         dbname=db)


def test_16_20_decision_and_vote_records_refused(make_server, postgres, pgdb):
    """The log table refuses the decision of a two-phase commit, then a vote record: each
    is rolled back whole, with the database's reason, and nothing stays prepared; once the
    log takes records again the same commit succeeds."""
    db = pgdb.split("dbname=")[1]
    other = db[:40] + "_r"
    postgres.psql(f'DROP DATABASE IF EXISTS "{other}"')
    dsn_b = postgres.create_db(other)
    for d in (db, other):
        postgres.psql("CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)", dbname=d)
    postgres.psql(LOG_TABLE, dbname=db)
    postgres.psql(REFUSE, dbname=db)
    extra = (f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
             f"[resource.pg2]\ndriver = postgresql\ndsn = {dsn_b}\n")
    s = make_server(extra_ini=extra, workers=1, threads=2, server={"node": "refused"})
    c = s.client()

    def both(x):
        assert c.call("TXN BEGIN") == "OK"
        assert c.call(f"SQL pg INSERT INTO acc VALUES ({x}, 1)") == "OK 1"
        assert c.call(f"SQL pg2 INSERT INTO acc VALUES ({x}, 1)") == "OK 1"

    postgres.psql("INSERT INTO refuse VALUES ('root')", dbname=db)
    both(1)
    r = c.call("TXN COMMIT")
    assert r.startswith("ERR rolled back: decision: ") and "log refused for root" in r, r
    postgres.psql("DELETE FROM refuse; INSERT INTO refuse VALUES ('participant')", dbname=db)
    assert c.call("TXN BEGIN 0a0b") == "OK"
    assert c.call("SQL pg INSERT INTO acc VALUES (2, 1)") == "OK 1"
    r = c.call("TXN VOTE")
    assert r.startswith("ERR rolled back: vote record: ") and "refused for participant" in r, r
    for d in (db, other):
        assert prepared(postgres, d) == []
        assert postgres.psql("SELECT count(*) FROM acc", dbname=d) == [["0"]]
    assert postgres.psql("SELECT count(*) FROM fdt_txn_log", dbname=db) == [["0"]]

    postgres.psql("DELETE FROM refuse", dbname=db)
    both(3)
    assert c.call("TXN COMMIT") == "OK"
    for d in (db, other):
        assert postgres.psql("SELECT id FROM acc", dbname=d) == [["3"]]
    c.close()


def test_16_14_log_lookup_skips_a_resource_without_its_driver(tmp_path, lib):
    """The GID's own resource (SQLite) loads; the log look-up meets a PostgreSQL resource
    whose module is missing, says so, and goes on: SQLite never has a prepared branch."""
    if os.path.exists(os.path.join(install_dir(), "fdt_rm_postgresql.so")):
        pytest.skip("an installed fdt_rm_postgresql.so would be found")
    shutil.copy(BUILD / "fdt_rm_sqlite.so", lib / "fdtserver" / "fdt_rm_sqlite.so")
    r = run_rollback(tmp_path, lib, "[resource.pg]\ndriver = postgresql\n"
                                    "dsn = dbname=nothing host=/nonexistent\n")
    assert "fdtserver txn: [resource.pg] driver postgresql is not available" in r.stderr, r
    assert "no prepared transaction" in r.stderr, r


def test_16_21_list_when_prepared_branches_cannot_be_read(postgres, pgdb, tmp_path):
    """`fdtserver txn list` as a role that may not read pg_prepared_xacts: the resource and
    the database's reason are named, and the command fails."""
    db = pgdb.split("dbname=")[1]
    postgres.psql("DROP ROLE IF EXISTS fdt_lister")
    postgres.psql("CREATE ROLE fdt_lister LOGIN")
    try:
        postgres.psql("REVOKE SELECT ON pg_catalog.pg_prepared_xacts FROM PUBLIC", dbname=db)
        conf = tmp_path / "txn.ini"
        conf.write_text("[server]\nnode = nodec\n[listen.main]\naddress = 127.0.0.1:1\n"
                        "protocol = raw\n[app]\nmodule = /nonexistent.so\n"
                        "[resource.pg]\ndriver = postgresql\n"
                        f"dsn = {pgdb.replace('user=postgres', 'user=fdt_lister')}\n")
        r = subprocess.run([str(FDTSERVER), "txn", "list", "-c", str(conf)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r
        assert "fdtserver txn: [resource.pg] " in r.stderr, r
        assert "permission denied" in r.stderr, r
    finally:
        postgres.psql("DROP ROLE fdt_lister")
