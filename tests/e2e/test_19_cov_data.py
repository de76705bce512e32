"""Coverage of the request transaction's commit (src/http/http_txn.c, cov-data): wingcash
on PostgreSQL, its commit refused by a deferred constraint trigger that raises a
serialization failure (40001) at COMMIT, the way a SERIALIZABLE conflict found at commit
is."""
from test_17_fail_master import LIMIT, SHIM, Countdown, needs_shim
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



def oom_walk(s, cd, path, token, check):
    """GET path with the worker's k-th allocation failing, k = 1, 2, ...: check(status,
    body) when nothing failed; otherwise a 500/503 or a closed connection. Returns the
    statuses seen."""
    pid = s.worker_pids()
    seen = set()
    for k in range(1, LIMIT):
        api = Api(s.port)
        cd.arm(k)
        try:
            st, body = api.call("GET", path, token=token)
        except (OSError, ValueError):
            st, body = "closed", None
        left = cd.left()
        cd.disarm()
        api.close()
        seen.add(st)
        if left > 0 or st not in (500, 503, "closed"):
            check(st, body)
        else:
            assert left == 0, (k, st, body)
        assert s.worker_pids() == pid, k
        if left > 0:
            return seen
    raise AssertionError(f"still allocating after {LIMIT}")


@needs_shim
def test_19_20_wingcash_views_out_of_memory(make_server, tmp_path):
    """wingcash's first answer on a fresh worker (a refusal without a token, whose JSON
    buffer is allocated then), then GET /accounts/{id}, each of the worker's allocations
    failed in turn (tests/shim/failshim.so): the right answer, or a 500/503, or the
    connection closed; never a wrong answer, and the worker serves on."""
    cd = Countdown(tmp_path / "countdown")
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend, threads=1,
                        env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
                             "FDT_FAIL_COUNTDOWN": str(cd.path),
                             "FDT_FAIL_COUNTDOWN_IN": "child"})

    def refused(st, body):
        assert st == 401 and body["error"]["code"], (st, body)
    seen = oom_walk(s, cd, "/accounts/1", None, refused)
    assert 401 in seen and 500 in seen, seen
    a = Api(s.port).account("oom", deposit=100)

    def account(st, body):
        assert st == 200 and body["id"] == a["id"] and body["balance"] == 100, (st, body)
    seen = oom_walk(s, cd, f"/accounts/{a['id']}", a["token"], account)
    assert 200 in seen and 500 in seen, seen
