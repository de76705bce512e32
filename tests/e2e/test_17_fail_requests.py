"""A worker out of memory while it serves: tests/shim/failshim.so's countdown, counted in the
worker (FDT_FAIL_COUNTDOWN_IN=child), fails the k-th allocation from the moment a test arms
it, for k = 1, 2, ... through one request. At each step the client gets its answer, or an
error answer that says the server ran out of memory (with the call's id where the request
was read), or its connection closed with the reason in the log; never a wrong answer, a
hang, or a crashed worker. After each step, with nothing armed, the same worker serves."""
import json
import socket

import pytest

from fdt import RpcClient, free_port, wait_for
from test_17_fail_master import LIMIT, SHIM, Countdown, failures, names_oom, needs_shim

pytestmark = needs_shim


def rpc_server(make_server, tmp_path, max_output="4k"):
    cd = Countdown(tmp_path / "countdown")
    port = free_port()
    s = make_server(
        workers=1, threads=1,
        listeners={"rpc": {"address": f"127.0.0.1:{port}", "protocol": "jsonrpc"}},
        server={"max_output": max_output},
        env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
             "FDT_FAIL_COUNTDOWN": str(cd.path), "FDT_FAIL_COUNTDOWN_IN": "child"})
    s.rpc_port = port
    s.countdown = cd
    s.fail_dir = tmp_path
    return s


def exchange(port, lines):
    """Send the lines on a new connection and read one answer per line; returns the answers
    read (dicts) and whether the server closed the connection before all came."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    answers = []
    try:
        sock.sendall("".join(line + "\n" for line in lines).encode())
        buf = b""
        while len(answers) < len(lines):
            while b"\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return answers, True
                buf += data
            line, buf = buf.split(b"\n", 1)
            answers.append(json.loads(line))
    except ConnectionResetError:
        return answers, True
    finally:
        sock.close()
    return answers, False


def walk(s, lines, expect):
    """Walk the allocations of one exchange of lines; expect(i, answer) checks the i-th
    answer when nothing failed. Returns how many allocations the exchange makes."""
    pid = s.worker_pids()[0]
    for k in range(1, LIMIT):
        mark = len(s.log())
        s.countdown.arm(k)
        answers, closed = exchange(s.rpc_port, lines)
        left = s.countdown.left()
        s.countdown.disarm()
        for i, a in enumerate(answers):
            if "error" in a and (names_oom(a["error"]["message"]) or
                                 "MemoryError" in a["error"]["message"]):  # Python's
                # The id, unless the request itself could not be read.
                assert a["id"] in (i + 1, None), (k, a)
            else:
                expect(i, a)
        if closed:
            assert left == 0, f"k={k}: closed without a failure: {answers}"
            # (The line may be written just after the close.)
            wait_for(lambda: names_oom(s.log()[mark:]), 5, what=f"k={k}: the reason in the log")
        # Nothing armed: the same worker serves.
        assert s.worker_pids() == [pid], (k, s.log()[-2000:])
        c = RpcClient(s.rpc_port)
        assert c.call("echo", [k])["result"] == [k]
        c.close()
        if left > 0:
            assert len(answers) == len(lines) and not closed
            return k - 1
    raise AssertionError(f"still allocating after {LIMIT}")


def call(i, method, params=None):
    msg = {"jsonrpc": "2.0", "method": method, "id": i}
    if params is not None:
        msg["params"] = params
    return json.dumps(msg)


def test_17_40_jsonrpc_calls_out_of_memory(make_server, tmp_path):
    """Calls, a transaction, errors and an answer over max_output, each allocation failed in
    turn."""
    rpc = rpc_server(make_server, tmp_path)
    lines = [call(1, "echo", {"a": [1, 2, "x"]}), call(2, "txn.begin"), call(3, "echo", [3]),
             call(4, "txn.finish"), call(5, "nope"), '{"jsonrpc": "2.0", "method": ',
             call(7, "echo", ["y" * 5000])]

    def expect(i, a):
        if i == 0:
            assert a["result"] == {"a": [1, 2, "x"]}, a
        elif i == 1:
            assert a.get("result", {}).get("state") == "active" or "error" in a, a
        elif i == 2:
            assert a.get("result") == [3] or "error" in a, a
        elif i == 3:
            assert a.get("result") == {"state": "committed"} or "error" in a, a
        elif i == 4:
            assert a["error"]["code"] == -32601, a
        elif i == 5:
            assert a["error"]["code"] == -32700 and a["id"] is None, a
        else:
            assert a["error"] == {"code": -32020, "message": "limit reached"}, a
    n = walk(rpc, lines, expect)
    assert n > 10, n
    assert "countdown" in failures(rpc.fail_dir)


def test_17_42_jsonrpc_answer_over_max_output_out_of_memory(make_server, tmp_path):
    """A built-in method's answer that does not fit max_output is answered with a limit
    error that carries the call's id; out of memory there, with id null and saying so."""
    rpc = rpc_server(make_server, tmp_path, max_output="100")
    xid = {"format_id": 1, "gtrid": "Z" * 80}
    lines = [call(1, "txn.begin", {"xid": xid}), call(2, "txn.abort")]

    def expect(i, a):
        if i == 0:
            assert a["error"] == {"code": -32020, "message":
                                  "answer larger than max_output (100 bytes)"}, a
        else:
            assert a.get("result") == {"state": "rolled back"} or "error" in a, a
    assert walk(rpc, lines, expect) > 3


def http_exchange(port, raw, n):
    """Send raw (n requests, keep-alive) on a new connection; returns the statuses read and
    whether the server closed the connection before all n came."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = sock.makefile("rb")
    statuses = []
    try:
        sock.sendall(raw)
        while len(statuses) < n:
            line = f.readline()
            if not line:
                return statuses, True
            status = int(line.split()[1])
            length, chunked = 0, False
            while True:
                h = f.readline()
                if h in (b"\r\n", b""):
                    break
                k, _, v = h.decode().partition(":")
                if k.lower() == "content-length":
                    length = int(v)
                elif k.lower() == "transfer-encoding":
                    chunked = True
            if chunked:
                while True:
                    size = int(f.readline().split(b";")[0], 16)
                    f.read(size + 2)
                    if size == 0:
                        break
            else:
                f.read(length)
            statuses.append(status)
    except ConnectionResetError:
        return statuses, True
    finally:
        f.close()
        sock.close()
    return statuses, False


def http_walk(s, cd, raw, want, last_closes=False):
    """Walk the worker's allocations over one exchange of raw (len(want) keep-alive
    requests): each answer is the wanted status, or 500/503 once an allocation failed; a
    close before the end follows a 500/503 or is said in the log; the same worker serves
    after each step. Returns how many allocations the exchange makes."""
    pid = s.worker_pids()[0]
    for k in range(1, LIMIT):
        mark = len(s.log())
        cd.arm(k)
        statuses, closed = http_exchange(s.port, raw, len(want))
        left = cd.left()
        cd.disarm()
        for got, w in zip(statuses, want):
            assert got == w or (left == 0 and got in (500, 503)), (k, statuses)
        told = any(st in (500, 503) for st in statuses)
        early = len(statuses) < len(want) - (1 if last_closes else 0)
        if closed and (early or not last_closes):
            assert left == 0, f"k={k}: closed without a failure: {statuses}"
            if not told:
                wait_for(lambda: names_oom(s.log()[mark:]), 5,
                         what=f"k={k}: the reason in the log")
        assert s.worker_pids() == [pid], (k, s.log()[-2000:])
        assert http_exchange(s.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1)[0] == [200]
        if left > 0:
            assert statuses == want, (k, statuses)
            return k - 1
    raise AssertionError(f"still allocating after {LIMIT}")


def test_17_41_http_requests_out_of_memory(make_server, tmp_path):
    """Keep-alive requests (a page, a POST with a body, a streamed answer, a 404, a bad
    request), each allocation failed in turn: the right status, or 500/503, or the connection
    closed with the reason in the log; the worker serves on."""
    from http_util import HELLO
    cd = Countdown(tmp_path / "countdown")
    s = make_server(app=HELLO, workers=1, threads=1, start=False,
                    env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
                         "FDT_FAIL_COUNTDOWN": str(cd.path), "FDT_FAIL_COUNTDOWN_IN": "child"})
    s.listeners = {"main": {"address": f"127.0.0.1:{s.port}", "protocol": "http"}}
    s.write_config()
    s.start()
    raw = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
           b"GET /stream/3 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET / HTTP/1.1 junk\r\nHost: x\r\n\r\n")
    want = [200, 200, 200, 404, 400]
    # The last answer (400) closes the connection; any earlier close is a failure's.
    assert http_walk(s, cd, raw, want, last_closes=True) > 10


def wingcash_walk_server(make_server, tmp_path):
    """wingcash on SQLite, one worker of one thread under the countdown, with account a
    (1000 deposited) and account b. Returns (server, countdown, backend, a, b)."""
    from wingcash_util import Api, Backend, wingcash_server
    backend = Backend("sqlite", tmp_path)
    cd = Countdown(tmp_path / "countdown")
    s = wingcash_server(make_server, backend, threads=1,
                        env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
                             "FDT_FAIL_COUNTDOWN": str(cd.path),
                             "FDT_FAIL_COUNTDOWN_IN": "child", "FDT_FAIL_BACKTRACE": "1"})
    api = Api(s.port)
    a = api.account("a", deposit=1000)
    b = api.account("b")
    api.close()
    return s, cd, backend, a, b


def test_17_43_wingcash_requests_out_of_memory(make_server, tmp_path):
    """wingcash on SQLite: a transfer, a balance and a new account, each allocation of the
    worker failed in turn. Each request is answered as it should be, or 500/503 (or its
    connection closed, with the reason in the log); a transfer answered 201 moved the money
    and one answered otherwise did not; the books balance after every step."""
    from wingcash_util import Api
    s, cd, backend, a, b = wingcash_walk_server(make_server, tmp_path)
    pid = s.worker_pids()[0]
    moved = 0

    def request(method, path, body=None, token=None):
        mark = len(s.log())
        try:
            st, data = Api(s.port).call(method, path, body, token=token)
            return st, data
        except (OSError, ValueError):
            wait_for(lambda: names_oom(s.log()[mark:]), 5, what="the reason in the log")
            return None, None

    for k in range(1, LIMIT):
        cd.arm(k)
        st1, t = request("POST", f"/accounts/{a['id']}/transfers",
                         {"to": b["id"], "amount": 1, "idempotency_key": f"k{k}"}, a["token"])
        st2, acc = request("GET", f"/accounts/{a['id']}", token=a["token"])
        st3, new = request("POST", "/accounts", {"name": f"n{k}"})
        left = cd.left()
        cd.disarm()
        for st, ok in ((st1, 201), (st2, 200), (st3, 201)):
            assert st in (ok, 500, 503, None), (k, st1, st2, st3, t, acc, new)
            assert st == ok or left == 0, (k, st1, st2, st3)
        if st1 == 201:
            moved += 1
        assert backend.balance(a["id"]) == 1000 - moved, (k, st1, t)
        backend.check_invariant()
        assert s.worker_pids() == [pid], (k, s.log()[-2000:])
        if left > 0:
            assert st1 == 201 and st2 == 200 and st3 == 201
            assert k > 20, k
            return
    raise AssertionError(f"still allocating after {LIMIT}")


def test_17_44_python_wsgi_requests_out_of_memory(make_server, tmp_path):
    """A Python WSGI application (fdt_python.so's own allocations; CPython's are not
    counted): a page and a POST read through wsgi.input, each allocation failed in turn: the
    right answer, or 500/503, or a close with the reason in the log; the worker serves on."""
    from test_40_python import py_server
    cd = Countdown(tmp_path / "countdown")
    s = py_server(make_server, threads=1, start=False)
    s.env.update({"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
                  "FDT_FAIL_COUNTDOWN": str(cd.path), "FDT_FAIL_COUNTDOWN_IN": "child"})
    s.start(wait=False)
    s.wait_ready()
    body = b"x" * 3000
    raw = (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
           b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + body)
    assert http_walk(s, cd, raw, [200, 200]) > 10


def test_17_45_wingcash_jsonrpc_out_of_memory(make_server, tmp_path):
    """wingcash's JSON-RPC methods on SQLite, each allocation failed in turn: a transfer in
    its own transaction, and one inside txn.begin ... txn.finish. Each call gets its result
    or an error; money moved for every transfer answered as committed and for none answered
    with an error (an answer lost with its connection may go either way); the books
    balance after every step."""
    s, cd, backend, a, b = wingcash_walk_server(make_server, tmp_path)
    pid = s.worker_pids()[0]
    moved = 0
    t = {"token": a["token"], "from": a["id"], "to": b["id"], "amount": 1}
    for k in range(1, LIMIT):
        lines = [call(1, "wingcash.transfer", t), call(2, "txn.begin"),
                 call(3, "wingcash.transfer", t), call(4, "txn.finish")]
        mark = len(s.log())
        cd.arm(k)
        answers, closed = exchange(s.rpc_port, lines)
        left = cd.left()
        cd.disarm()
        if closed:
            assert left == 0, (k, answers)
            wait_for(lambda: names_oom(s.log()[mark:]), 5, what=f"k={k}: the reason in the log")
        by_id = {a_["id"]: a_ for a_ in answers}
        # Each transfer moved the money if answered so, did not if answered with an error,
        # and either when no answer came (the connection closed: outcome unknown to the
        # client, as after a crash; an idempotency key makes the retry safe).
        sure = unknown = 0
        if "result" in by_id.get(1, {}):
            sure += 1
        elif 1 not in by_id:
            unknown += 1
        if "error" in by_id.get(2, {}):
            # No transaction began: call 3 ran in its own, as call 1 did.
            sure += "result" in by_id.get(3, {})
            unknown += 3 not in by_id
        elif 4 not in by_id:
            unknown += "error" not in by_id.get(3, {})
        elif by_id[4].get("result") == {"state": "committed"} and "result" in by_id.get(3, {}):
            sure += 1
        delta = (1000 - moved) - backend.balance(a["id"])
        assert sure <= delta <= sure + unknown, (k, delta, answers)
        moved += delta
        for a_ in answers:
            assert "result" in a_ or left == 0, (k, answers)
        backend.check_invariant()
        assert s.worker_pids() == [pid], (k, s.log()[-2000:])
        if left > 0:
            assert len(answers) == 4 and all("result" in a_ for a_ in answers), answers
            assert k > 20, k
            return
    raise AssertionError(f"still allocating after {LIMIT}")


def test_17_46_two_phase_withdrawals_out_of_memory(make_server, tmp_path, postgres, pgdb):
    """wingcash with the ledger and the payouts in two PostgreSQL databases (two-phase
    commit with fdtserver's decision log): a withdrawal, each allocation of the worker failed
    in turn. The withdrawal is answered 201 or an error (or its connection closes); whatever
    happened, once recovery has finished what was left in doubt, both databases agree (every
    withdrawal has its payout and no payout is without one), nothing stays prepared, and the
    money moved for a 201 and not for an error answer."""
    from wingcash_util import Api, Backend, wingcash_server
    backend = Backend("pg+pg", tmp_path, postgres, pgdb)
    cd = Countdown(tmp_path / "countdown")
    s = wingcash_server(make_server, backend, threads=1,
                        server={"recovery_interval": "0.2", "recovery_grace": "0.5"},
                        env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
                             "FDT_FAIL_COUNTDOWN": str(cd.path),
                             "FDT_FAIL_COUNTDOWN_IN": "child", "FDT_FAIL_BACKTRACE": "1"})
    api = Api(s.port)
    a = api.account("a", deposit=100000)
    api.close()
    pid = s.worker_pids()[0]
    balance = backend.balance(a["id"])
    for k in range(1, LIMIT):
        mark = len(s.log())
        cd.arm(k)
        try:
            st, w = Api(s.port).call("POST", f"/accounts/{a['id']}/withdrawals",
                                     {"amount": 100, "bank_account": "DE89 3704 0044"},
                                     token=a["token"])
        except (OSError, ValueError):
            st = w = None
            wait_for(lambda: names_oom(s.log()[mark:]), 5, what=f"k={k}: the reason in the log")
        left = cd.left()
        cd.disarm()
        assert st in (201, 500, 503, None), (k, st, w)
        assert st == 201 or left == 0, (k, st, w)
        # Recovery finishes what a failure left in doubt (promise: within a few intervals;
        # 30 s allows for a loaded machine).
        in_doubt = ("SELECT count(*) FROM pg_prepared_xacts WHERE database IN "
                    f"('{backend.db}', '{backend.payouts_db}')")
        wait_for(lambda: postgres.psql(in_doubt) == [["0"]], 30,
                 what=f"k={k}: nothing left prepared")
        backend.check_invariant()
        now = backend.balance(a["id"])
        if st == 201:
            assert now == balance - 125, (k, balance, now, w)
        elif st is not None:
            assert now == balance, (k, balance, now, w)
        else:
            assert now in (balance, balance - 125), (k, balance, now)
        balance = now
        assert s.worker_pids() == [pid], (k, s.log()[-2000:])
        if left > 0:
            assert st == 201 and k > 20, (k, st)
            return
    raise AssertionError(f"still allocating after {LIMIT}")


def test_17_47_python_jsonrpc_out_of_memory(make_server, tmp_path):
    """Python JSON-RPC methods (fdt_python.so's allocations), each failed in turn: a call
    with parameters, a result to convert, an unknown method: each answered with its result
    or an error with its id, or a close with the reason in the log; the worker serves on."""
    from test_16_cov_python import rpc_server as py_rpc_server
    cd = Countdown(tmp_path / "countdown")
    s = py_rpc_server(make_server, "covpyrpc:methods", start=False)
    s.env.update({"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
                  "FDT_FAIL_COUNTDOWN": str(cd.path), "FDT_FAIL_COUNTDOWN_IN": "child"})
    s.start()
    s.rpc_port = s.port
    s.countdown = cd
    lines = [call(1, "echo", [1, {"a": None}]), call(2, "big", {"size": 100}), call(3, "nope")]

    def expect(i, a):
        if i == 0:
            assert a["result"] == [1, {"a": None}], a
        elif i == 1:
            assert a["result"] == "x" * 100, a
        else:
            assert a["error"]["code"] == -32601, a
    assert walk(s, lines, expect) > 5


def test_17_48_txn_recover_out_of_memory(make_server, tmp_path, postgres, pgdb):
    """txn.recover's list of prepared branches (long enough to grow its writers), each
    allocation failed in turn: the list, or an error that says out of memory with the id;
    nothing is resolved by it."""
    from test_22_jsonrpc import b64
    db = pgdb.split("dbname=")[1]
    postgres.psql("CREATE TABLE acc (id int PRIMARY KEY, bal int NOT NULL)", dbname=db)
    cd = Countdown(tmp_path / "countdown")
    port = free_port()
    s = make_server(
        workers=1, threads=1, server={"node": "walknode"},
        listeners={"rpc": {"address": f"127.0.0.1:{port}", "protocol": "jsonrpc",
                           "txn_recovery": "yes"}},
        extra_ini=f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\n",
        env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
             "FDT_FAIL_COUNTDOWN": str(cd.path), "FDT_FAIL_COUNTDOWN_IN": "child"})
    s.rpc_port, s.countdown = port, cd
    for i in range(4):  # prepared, then their coordinator goes away
        c = RpcClient(port)
        xid = {"format_id": 7, "gtrid": b64(f"walk-{i}".encode())}
        assert c.call("txn.begin", {"xid": xid})["result"]["state"] == "active"
        assert "result" in c.call("sql", {"resource": "pg",
                                          "sql": f"INSERT INTO acc VALUES ({i}, {i})"})
        assert c.call("txn.vote")["result"]["state"] == "prepared"
        c.close()

    def expect(i, a):
        assert len(a["result"]) == 4, a
    assert walk(s, [call(1, "txn.recover")], expect) >= 1
    rows = postgres.psql("SELECT count(*) FROM pg_prepared_xacts WHERE database = "
                         f"'{db}'")
    assert rows == [["4"]], rows
    for i in range(4):
        c = RpcClient(port)
        xid = {"format_id": 7, "gtrid": b64(f"walk-{i}".encode())}
        c.call("txn.rollback_prepared", {"xid": xid})
        c.close()


@pytest.mark.parametrize("errno_name", ["ECONNRESET", "ENOMEM"])
def test_17_49_two_phase_commit_with_a_database_read_failing(make_server, tmp_path, postgres,
                                                             pgdb, errno_name):
    """A transaction over two PostgreSQL databases committed with txn.finish (two phases
    inside), and each recv of the worker failed in turn: libpq's reads of PostgreSQL's
    answers (between a statement's result and its pipeline's end, between PREPARE
    TRANSACTION and its check, the recovery thread's), and the worker's reads of the client.
    ECONNRESET is a lost connection to libpq; ENOMEM leaves the connection open with the
    server's answer unread, and before the fix the session went back to the pool, so that
    a later statement read an earlier one's answer: a transaction answered "committed" that
    one database did not hold, and a worker killed by SIGSEGV (the recovery thread reading
    a one-column answer as its list of prepared transactions). Whatever is lost, the client
    is answered "committed" only for work both databases hold, an error answer leaves
    nothing, and once recovery has run nothing stays prepared and both databases agree; the
    same worker serves on."""
    db = pgdb.split("dbname=")[1]
    other = db[:40] + "_r"
    postgres.psql(f'DROP DATABASE IF EXISTS "{other}"')
    dsn_b = postgres.create_db(other)
    for d in (db, other):
        postgres.psql("CREATE TABLE acc (id int PRIMARY KEY)", dbname=d)
    cd = Countdown(tmp_path / "countdown")
    port = free_port()
    s = make_server(
        workers=1, threads=1,
        listeners={"rpc": {"address": f"127.0.0.1:{port}", "protocol": "jsonrpc"}},
        extra_ini=(f"[resource.pg]\ndriver = postgresql\ndsn = {pgdb}\nlog = yes\n"
                   f"[resource.pg2]\ndriver = postgresql\ndsn = {dsn_b}\n"),
        server={"node": "resetnode", "recovery_interval": "0.2", "recovery_grace": "0.5"},
        env={"LD_PRELOAD": str(SHIM), "FDT_FAIL_LOG": str(tmp_path / "fail.log"),
             "FDT_FAIL_COUNTDOWN": str(cd.path), "FDT_FAIL_COUNTDOWN_IN": "child",
             "FDT_FAIL_COUNTDOWN_OF": f"recv:{errno_name}", "FDT_FAIL_BACKTRACE": "1"})
    pid = s.worker_pids()[0]
    in_doubt = ("SELECT count(*) FROM pg_prepared_xacts WHERE database IN "
                f"('{db}', '{other}')")

    def ids(d):
        return {int(r[0]) for r in postgres.psql("SELECT id FROM acc", dbname=d)}

    for k in range(1, LIMIT):
        cd.arm(k)
        answers, closed = exchange(port, [
            call(1, "txn.begin"),
            call(2, "sql", {"resource": "pg", "sql": f"INSERT INTO acc VALUES ({k})"}),
            call(3, "sql", {"resource": "pg2", "sql": f"INSERT INTO acc VALUES ({k})"}),
            call(4, "txn.finish")])
        left = cd.left()
        cd.disarm()
        assert closed or left == 0 or len(answers) == 4, (k, answers)
        wait_for(lambda: postgres.psql(in_doubt) == [["0"]], 30,
                 what=f"k={k}: nothing left prepared")  # 30 s: a loaded machine
        held = (k in ids(db), k in ids(other))
        assert held[0] == held[1], (k, held, answers)  # both databases agree
        finish = answers[3] if len(answers) == 4 else None
        if finish and finish.get("result") == {"state": "committed"}:
            assert held == (True, True), (k, answers)
        elif finish and "error" in finish and finish["error"]["code"] != -32013:
            assert held == (False, False), (k, answers)  # -32013: the outcome is unknown
        assert s.worker_pids() == [pid], (k, s.log()[-2000:])
        if left > 0:
            assert finish == {"jsonrpc": "2.0", "result": {"state": "committed"}, "id": 4}, k
            return
    raise AssertionError(f"still reading after {LIMIT}")
