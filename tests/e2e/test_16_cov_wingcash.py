"""wingcash paths no other test takes (issue #14 coverage): a bearer token after several
spaces, JSON null for a required field, page parameters that are not numbers, a database
error answered over JSON-RPC, and the start refused with its reason for a bad [app] key, a
missing ledger, a ledger file that is not a database, and schemas that cannot be
migrated (in the SQLite ledger, and in a PostgreSQL payouts database)."""
import json
import sqlite3

from fdt import wait_for
from http_util import Client
from wingcash_util import Api, Backend, Rpc, wingcash_server


def test_16_20_request_details(make_server, tmp_path):
    s = wingcash_server(make_server, Backend("sqlite", tmp_path))
    api = Api(s.port)
    a = api.account("a", deposit=500)
    c = Client(s.port)
    r = c.request("GET", f"/accounts/{a['id']}",
                  headers={"Authorization": "Bearer    " + a["token"]})
    assert r.status == 200, r
    assert json.loads(r.body)["balance"] == 500
    c.close()

    st, e = api.call("POST", "/accounts", {"name": None})
    assert st == 422, e
    assert e["error"] == {"code": "missing_field", "field": "name",
                          "message": "name is required"}

    path = f"/accounts/{a['id']}/transfers"
    st, e = api.call("GET", path + "?before=12x", token=a["token"])
    assert st == 422, e
    assert e["error"]["field"] == "before"
    assert e["error"]["message"] == "before must be a transfer id"
    st, e = api.call("GET", path + "?limit=1a", token=a["token"])
    assert st == 422, e
    assert e["error"]["message"] == "limit must be an integer from 1 to 100"
    st, page = api.call("GET", path + "?limit=1", token=a["token"])
    assert st == 200 and page == {"items": [], "next": None}, page  # a deposit is no transfer
    api.close()


def test_16_21_database_error_over_jsonrpc(make_server, tmp_path):
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend)
    api = Api(s.port)
    a = api.account("a", deposit=300)
    api.close()
    con = sqlite3.connect(f"{tmp_path}/wingcash.db", timeout=30)
    con.execute("ALTER TABLE movements RENAME TO movements_gone")
    con.commit()
    con.close()
    rpc = Rpc(s.rpc_port)
    ans = rpc.call("wingcash.deposit", {"token": a["token"], "account": a["id"], "amount": 7})
    err = ans["error"]
    assert "no such table: movements" in err["message"], ans
    assert err["code"] == -32000, ans  # the method failed: not a validation error
    rpc.close()
    assert backend.balance(a["id"]) == 300


class Raw:
    """A backend given as its configuration text."""

    def __init__(self, ini):
        self.text = ini

    def ini(self):
        return self.text


def refused(s, text):
    s.start(wait=False)
    wait_for(lambda: text in s.log(), timeout=15, what=f"the start refused: {text}")
    assert "process_init failed" in s.log()
    st = s.status(quiet=True)
    assert not st or not any(w["state"] == "ready" for g in st["generations"]
                             for w in g["workers"])


def test_16_22_start_refused_with_its_reason(make_server, tmp_path):
    lite = f"driver = sqlite\npath = {tmp_path}/%s\n"
    s = wingcash_server(make_server, Raw("[resource.ledger]\n" + lite % "a.db"),
                        app_keys={"history_max": 300}, start=False)
    refused(s, "[app] history_max must be an integer from 1 to 256")

    s = wingcash_server(make_server, Raw("[resource.books]\n" + lite % "b.db"), start=False)
    refused(s, "wingcash needs a [resource.ledger] section")

    (tmp_path / "c.db").write_bytes(b"this is not a database file, " * 100)
    s = wingcash_server(make_server, Raw("[resource.ledger]\n" + lite % "c.db"), start=False)
    refused(s, "file is not a database")

    # A view where the schema's bookkeeping table should be: its versions cannot be read.
    con = sqlite3.connect(f"{tmp_path}/d.db")
    con.execute("CREATE VIEW wc_schema AS SELECT 1 AS x")
    con.close()
    s = wingcash_server(make_server, Raw("[resource.ledger]\n" + lite % "d.db"), start=False)
    refused(s, "no such column: part")

    # A view where a table is created: the migration's index on it fails, nothing applied.
    con = sqlite3.connect(f"{tmp_path}/e.db")
    con.execute("CREATE VIEW credits AS SELECT 1 AS account_id")
    con.close()
    s = wingcash_server(make_server, Raw("[resource.ledger]\n" + lite % "e.db"), start=False)
    refused(s, "views may not be indexed")
    con = sqlite3.connect(f"{tmp_path}/e.db")
    assert con.execute("SELECT count(*) FROM wc_schema").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'accounts'"
                       ).fetchone()[0] == 0
    con.close()


def test_16_23_payouts_schema_cannot_be_migrated(make_server, tmp_path, postgres, pgdb):
    backend = Backend("sqlite+pg", tmp_path, postgres, pgdb)
    postgres.psql("CREATE VIEW wc_schema AS SELECT 1 AS x", dbname=backend.payouts_db)
    s = wingcash_server(make_server, backend, start=False)
    refused(s, 'column "part" does not exist')
    # The ledger was migrated; the payouts database has no payouts table.
    assert backend.value("SELECT count(*) FROM wc_schema WHERE part = 'ledger'") == 1
    assert postgres.psql("SELECT to_regclass('payouts') IS NULL",
                         dbname=backend.payouts_db) == [["t"]]


def test_16_24_database_errors_in_the_middle_of_an_operation(make_server, tmp_path):
    """A table an operation needs is gone (renamed behind the server's back) when it is
    reached: the request is answered 500 "internal", the reason is logged, and nothing
    changed once the table is back."""
    backend = Backend("sqlite", tmp_path)
    s = wingcash_server(make_server, backend)
    api = Api(s.port)
    a = api.account("a", deposit=100)  # a pending credit, not yet in the balance
    b = api.account("b")
    before = backend.fingerprint()
    code = "1" * 12
    cases = [
        # The debit rolls the pending credits up: the credits are gone.
        ("credits", "POST", f"/accounts/{a['id']}/transfers", {"to": b["id"], "amount": 50},
         a["token"]),
        # Who asks for a claim is looked up before the transaction.
        ("accounts", "POST", f"/claims/{code}/redeem", {"to": b["id"]}, b["token"]),
        # Then how many wrong codes they tried this minute, then the code itself.
        ("claim_failures", "POST", f"/claims/{code}/redeem", {"to": b["id"]}, b["token"]),
        ("claims", "POST", f"/claims/{code}/redeem", {"to": b["id"]}, b["token"]),
    ]
    con = sqlite3.connect(f"{tmp_path}/wingcash.db", timeout=30)
    for table, method, path, body, token in cases:
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")
        con.commit()
        st, e = api.call(method, path, body, token=token)
        con.execute(f"ALTER TABLE {table}_gone RENAME TO {table}")
        con.commit()
        assert st == 500, (table, e)
        assert e["error"]["code"] == "internal", (table, e)
        s.wait_log(f"no such table: {table}")
    con.close()
    assert backend.fingerprint() == before
    st, m = api.call("POST", f"/accounts/{a['id']}/transfers", {"to": b["id"], "amount": 50},
                     token=a["token"])
    assert st == 201, m
    api.close()
