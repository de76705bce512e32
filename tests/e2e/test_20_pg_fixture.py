"""The PostgreSQL fixture itself: a real server that can prepare transactions."""


def test_20_01_postgres_fixture_prepares_transactions(postgres, pgdb):
    dbname = pgdb.split("dbname=")[1]
    assert postgres.psql("SHOW max_prepared_transactions") == [["64"]]
    postgres.psql("CREATE TABLE t (x int)", dbname=dbname)
    postgres.psql("BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'fdt-fixture-test'",
                  dbname=dbname)
    assert postgres.psql("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
                         dbname=dbname) == [["fdt-fixture-test"]]
    postgres.psql("COMMIT PREPARED 'fdt-fixture-test'", dbname=dbname)
    assert postgres.psql("SELECT x FROM t", dbname=dbname) == [["1"]]
