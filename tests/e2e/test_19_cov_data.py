"""Coverage of the request transaction's commit (src/http/http_txn.c, cov-data): wingcash
on PostgreSQL, its commit refused by a deferred constraint trigger that raises a
serialization failure (40001) at COMMIT, the way a SERIALIZABLE conflict found at commit
is."""
from wingcash_util import Api, Backend, wingcash_server

TRIGGER = """
CREATE SEQUENCE commits;
CREATE TABLE refuse (always boolean NOT NULL);
INSERT INTO refuse VALUES (false);
CREATE FUNCTION refuse_commit() RETURNS trigger AS $$
BEGIN
  IF nextval('commits') <= 1 OR (SELECT always FROM refuse) THEN
    RAISE EXCEPTION 'conflict found at commit' USING ERRCODE = '40001';
  END IF;
  RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON accounts
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit();
"""


def test_19_10_conflict_at_commit_runs_the_request_again(make_server, postgres, pgdb,
                                                         tmp_path):
    """A request whose COMMIT fails with a serialization failure runs again from the start
    and its client sees only the second run's answer; when every run's COMMIT fails, the
    client gets a 503 that says to try again, the reason is logged, and nothing stays."""
    backend = Backend("pg", tmp_path, postgres, pgdb)
    s = wingcash_server(make_server, backend, threads=1)
    postgres.psql(TRIGGER, dbname=backend.db)
    api = Api(s.port)
    a = api.account("again")  # a 201: the second run committed
    assert backend.value("SELECT last_value FROM commits") == 2
    assert backend.rows("SELECT name FROM accounts WHERE name IN ('again', 'never')") == [["again"]]
    assert "commit of a request's transaction failed" not in s.log()

    postgres.psql("UPDATE refuse SET always = true", dbname=backend.db)
    st, e = api.call("POST", "/accounts", {"name": "never"})
    assert st == 503, e
    assert "try again" in str(e), e
    assert "commit of a request's transaction failed" in s.log()
    assert "conflict found at commit" in s.log()
    assert backend.rows("SELECT name FROM accounts WHERE name IN ('again', 'never')") == [["again"]]
    assert a["id"]
    api.close()
