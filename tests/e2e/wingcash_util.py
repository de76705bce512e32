"""wingcash test helpers: start the real application on SQLite or PostgreSQL, a small JSON
HTTP client, and the ledger invariant read straight from the database."""
import json
import sqlite3
import threading

from fdt import BUILD, RpcClient, free_port, idle_close_race
from http_util import Client

WINGCASH = str(BUILD / "apps" / "wingcash.so")


class Backend:
    """Where the ledger (and payouts) live: 'sqlite', 'pg', or a mix for two-phase commit:
    'pg+pg' (ledger and payouts in two PostgreSQL databases), 'sqlite+pg' (SQLite ledger as
    the logging last resource, payouts in PostgreSQL)."""

    def __init__(self, kind, tmp_path, postgres=None, pgdb=None):
        self.kind = kind
        self.tmp = tmp_path
        self.postgres = postgres
        self.pgdb = pgdb
        self.db = pgdb.split("dbname=")[1] if pgdb else None
        self.payouts_db = None
        if kind in ("pg+pg", "sqlite+pg"):
            self.payouts_db = self.db + "_p"
            postgres.psql(f'DROP DATABASE IF EXISTS "{self.payouts_db}"')
            postgres.create_db(self.payouts_db)

    def ini(self):
        lite = f"driver = sqlite\npath = {self.tmp}/wingcash.db\n"
        if self.kind == "sqlite":
            return f"[resource.ledger]\n{lite}"
        pg = f"driver = postgresql\ndsn = {self.pgdb}\n"
        if self.kind == "pg":
            return f"[resource.ledger]\n{pg}"
        payouts = (f"[resource.payouts]\ndriver = postgresql\n"
                   f"dsn = {self.postgres.dsn(self.payouts_db)}\n")
        if self.kind == "pg+pg":
            return f"[resource.ledger]\n{pg}log = yes\n{payouts}"
        return f"[resource.ledger]\n{lite}{payouts}"

    def rows(self, sql, payouts=False):
        """Rows of a query on the ledger (or payouts) database; numbers as ints."""
        if payouts and self.payouts_db:
            out = self.postgres.psql(sql, dbname=self.payouts_db)
        elif self.kind.startswith("sqlite"):
            con = sqlite3.connect(f"{self.tmp}/wingcash.db", timeout=30)
            try:
                out = [list(r) for r in con.execute(sql).fetchall()]
            finally:
                con.close()
        else:
            out = self.postgres.psql(sql, dbname=self.db)
        return [[int(v) if isinstance(v, str) and v.lstrip("-").isdigit() else v for v in r]
                for r in out]

    def value(self, sql, payouts=False):
        r = self.rows(sql, payouts)
        return r[0][0] if r and r[0][0] is not None else 0

    def balance(self, acc):
        return self.value(f"SELECT a.balance + coalesce((SELECT sum(c.amount) FROM credits c "
                          f"WHERE c.account_id = a.id), 0) FROM accounts a WHERE a.id = {acc}")

    def fingerprint(self):
        """Everything a failed request must leave unchanged."""
        out = {}
        for t in ("accounts", "credits", "movements", "entries", "idempotency", "claims"):
            out[t] = self.rows(f"SELECT * FROM {t} ORDER BY 1, 2")
        out["payouts"] = self.rows("SELECT * FROM payouts ORDER BY 1", payouts=True)
        return out

    def check_invariant(self):
        """The books balance; returns the figures."""
        v = self.value
        assert v("SELECT coalesce(sum(amount), 0) FROM entries") == 0
        bad = self.rows("SELECT movement_id FROM entries GROUP BY movement_id "
                        "HAVING sum(amount) <> 0")
        assert bad == [], f"movements whose entries do not sum to zero: {bad}"
        mismatch = self.rows(
            "SELECT a.id, a.balance + coalesce((SELECT sum(c.amount) FROM credits c "
            "WHERE c.account_id = a.id), 0), coalesce((SELECT sum(e.amount) FROM entries e "
            "WHERE e.account_id = a.id), 0) FROM accounts a")
        mismatch = [r for r in mismatch if r[1] != r[2]]
        assert mismatch == [], f"balances that differ from their entries: {mismatch}"
        assert v("SELECT count(*) FROM accounts WHERE kind = 'user' AND balance < 0") == 0
        users = v("SELECT coalesce(sum(e.amount), 0) FROM entries e JOIN accounts a "
                  "ON a.id = e.account_id WHERE a.kind = 'user'")
        held, fees = self.balance(3), self.balance(2)
        deposits = v("SELECT coalesce(sum(amount), 0) FROM movements WHERE kind = 'deposit'")
        withdrawals = v("SELECT coalesce(sum(amount), 0) FROM payouts", payouts=True)
        assert users + held + fees == deposits - withdrawals, \
            (users, held, fees, deposits, withdrawals)
        assert held == v("SELECT coalesce(sum(amount), 0) FROM claims")
        assert fees == v("SELECT coalesce(sum(fee), 0) FROM movements")
        assert withdrawals == self.balance(4)
        # Every withdrawal movement has its payout and every payout its movement.
        ws = [r[0] for r in self.rows("SELECT id FROM movements WHERE kind = 'withdrawal' "
                                      "ORDER BY id")]
        ps = [r[0] for r in self.rows("SELECT movement_id FROM payouts ORDER BY movement_id",
                                      payouts=True)]
        assert ws == ps
        return {"users": users, "held": held, "fees": fees, "deposits": deposits,
                "withdrawals": withdrawals}


def wingcash_server(make_server, backend, workers=1, threads=4, server=None, app_keys=None,
                    start=True, env=None):
    s = make_server(app=WINGCASH, workers=workers, threads=threads, server=server,
                    app_keys=app_keys, extra_ini=backend.ini(), start=False, env=env)
    s.rpc_port = free_port()
    s.listeners = {"http": {"address": f"127.0.0.1:{s.port}", "protocol": "http"},
                   "rpc": {"address": f"127.0.0.1:{s.rpc_port}", "protocol": "jsonrpc",
                           "txn_recovery": "yes"}}
    s.write_config()
    if start:
        s.start()
    return s


class Api:
    """A keep-alive JSON client for one server (one connection, reopened when closed).

    `retried` counts the requests sent again after the server's idle close (the one case
    idle_close_race allows); every other failure is raised."""

    def __init__(self, port, timeout=30.0):
        self.port = port
        self.timeout = timeout
        self.conn = None
        self.retried = 0

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def _exchange(self, msg):
        if self.conn is None:
            self.conn = Client(self.port, timeout=self.timeout)
        self.conn.send(msg)
        return self.conn.read_response()

    def raw(self, method, path, body=None, token=None, raw_body=None, fresh=False):
        """Send one request and return (status, headers with lower-case names, body).
        A keep-alive connection the server closed while idle is retried once on a new
        connection, as HTTP allows, and counted; fresh=True never reuses a connection."""
        data = raw_body if raw_body is not None else (
            json.dumps(body).encode() if body is not None else b"")
        hdr = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(data)}\r\n"
        if token:
            hdr += f"Authorization: Bearer {token}\r\n"
        msg = hdr.encode() + b"\r\n" + data
        if fresh:
            self.close()
        try:
            r = self._exchange(msg)
        except OSError as e:
            conn = self.conn
            self.close()
            if conn is None or not idle_close_race(conn, e):
                raise
            self.retried += 1
            r = self._exchange(msg)
        if (r.header("Connection") or "").lower() == "close":
            self.close()
        return r.status, {k.lower(): v for k, v in r.headers}, r.body

    def call(self, method, path, body=None, token=None, raw_body=None):
        status, headers, data = self.raw(method, path, body, token, raw_body)
        return status, (json.loads(data) if data else None)

    def account(self, name="someone", deposit=0):
        st, a = self.call("POST", "/accounts", {"name": name})
        assert st == 201, a
        if deposit:
            st, d = self.call("POST", f"/accounts/{a['id']}/deposits", {"amount": deposit},
                              token=a["token"])
            assert st == 201, d
        return a


def concurrently(port, fn, args):
    """fn(api, arg) for each arg, each in its own thread with its own Api on port (closed
    afterwards). Returns once all are done; raises the first exception a thread raised."""
    errors = []

    def run(arg):
        api = Api(port)
        try:
            fn(api, arg)
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            errors.append(e)
        finally:
            api.close()
    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


class Rpc(RpcClient):
    """A JSON-RPC client of the wingcash listener (calls run transactions: a longer timeout)."""

    def __init__(self, port):
        super().__init__(port, timeout=30.0)
