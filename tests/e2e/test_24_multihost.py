"""Design §5, scale-out: any host recovers a dead host's transactions.

Real separate hosts: each fdtserver runs in a network namespace of its own, with a veth
pair to a bridge that lives in a namespace of its own; PostgreSQL runs in a fourth
namespace and is reached over TCP (10.200.N.0/24, addresses only inside the namespaces).
The test talks to the servers through unix sockets (not namespaced) and to PostgreSQL
through its unix socket. Each host holds its node's "alive" advisory lock in PostgreSQL; a
host that can take a dead node's lock exclusively resolves that node's in-doubt
transactions (docs/transactions.md, "Several hosts")."""
import os
import signal
import socket
import subprocess
import threading

import pytest

from fdt import FDTSERVER, FdtServer, LineClient, proc_children, wait_for
from pg import Postgres

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or subprocess.run(["ip", "netns", "list"], capture_output=True)
    .returncode != 0, reason="needs root and ip netns")

HOSTS = ("a", "b", "c")


def ip(*args, check=True):
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr}")
    return r


class Net:
    """A bridge namespace, a database namespace and one namespace per host, all made here
    and removed by remove() (also after a failure)."""

    def __init__(self):
        tag = os.getpid() % 250 + 1
        self.prefix = f"fdtmh{os.getpid()}"
        self.subnet = f"10.200.{tag}"
        self.made = []
        self.br = self._ns("br")
        ip("-n", self.br, "link", "add", "br0", "type", "bridge")
        ip("-n", self.br, "link", "set", "br0", "up")
        self.addr = {}
        self.ns = {}
        for i, name in enumerate(("db",) + HOSTS):
            ns = self._ns(name)
            addr = f"{self.subnet}.{i + 1}"
            # Both ends made inside the namespaces: the root namespace never sees them.
            ip("-n", self.br, "link", "add", f"v{name}", "type", "veth", "peer", "name", "eth0",
               "netns", ns)
            ip("-n", self.br, "link", "set", f"v{name}", "master", "br0")
            ip("-n", self.br, "link", "set", f"v{name}", "up")
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            ip("-n", ns, "link", "set", "eth0", "up")
            self.addr[name] = addr
            self.ns[name] = ns

    def _ns(self, name):
        ns = f"{self.prefix}-{name}"
        ip("netns", "add", ns)
        self.made.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def cut(self, name):
        ip("-n", self.ns[name], "link", "set", "eth0", "down")

    def remove(self):
        for ns in reversed(self.made):
            ip("netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def cluster():
    net = Net()
    pg = None
    try:
        pg = Postgres(listen_addresses=net.addr["db"], netns=net.ns["db"],
                      trust_net=f"{net.subnet}.0/24").start()
        yield net, pg
    finally:
        if pg:
            pg.stop()
        net.remove()


class UnixLineClient(LineClient):
    def __init__(self, path, timeout=20.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.answered = self.received = self.received_at_send = 0


class Host(FdtServer):
    """An fdtserver in a host's namespace, serving the line protocol on a unix socket."""

    def __init__(self, tmp_path, net, name, node, dsns, workers=1, server=None, env=None):
        self.ns = net.ns[name]
        self.sock = tmp_path / "line.sock"
        extra = (f"[resource.r1]\ndriver = postgresql\ndsn = {dsns[0]}\nlog = yes\n"
                 f"[resource.r2]\ndriver = postgresql\ndsn = {dsns[1]}\n")
        super().__init__(tmp_path, workers=workers, threads=4,
                         server=dict({"node": node, "log_level": "debug"}, **(server or {})),
                         listeners={"main": {"address": f"unix:{self.sock}",
                                             "protocol": "raw"}},
                         extra_ini=extra, env=env)

    def start(self, wait=True, args=()):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, str(FDTSERVER), "-c",
                                      str(self.conf_path), *args],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def client(self, port=None):
        return UnixLineClient(self.sock)

    def kill_tree(self):
        """SIGKILL the master and every worker: stopped first, so that it forks no more."""
        if self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGSTOP)
        for pid in proc_children(self.proc.pid):
            os.kill(pid, signal.SIGKILL)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def hosts(cluster, tmp_path, request):
    net, pg = cluster
    name = f"mh_{request.node.name[-40:].lower()}".replace("[", "_").replace("]", "")
    dbs = [f"{name}_1", f"{name}_2"]
    for db in dbs:
        pg.psql(f'DROP DATABASE IF EXISTS "{db}"')
        pg.psql(f'CREATE DATABASE "{db}"')
        pg.psql("CREATE TABLE acc (id int PRIMARY KEY, v int NOT NULL)", dbname=db)
    dsns = [f"host={net.addr['db']} port={pg.port} user=postgres dbname={db} "
            "connect_timeout=5" for db in dbs]
    made = []

    def make(name, node, **kw):
        d = tmp_path / name
        d.mkdir()
        h = Host(d, net, name, node, dsns, **kw)
        made.append(h)
        return h.start()

    try:
        yield net, pg, dbs, make
    finally:
        for h in made:
            if h.proc and h.proc.poll() is None:
                h.kill_tree()
            h.logf.close()


def prepared(pg, dbs):
    return [r[0] for db in dbs for r in pg.psql(
        "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()", dbname=db)]


def ids(pg, db):
    return {int(r[0]) for r in pg.psql("SELECT id FROM acc", dbname=db)}


def commit_both(c, k):
    """One two-resource commit of row k; the answer to TXN COMMIT, or None if the connection
    died (answered neither way)."""
    try:
        assert c.call("TXN BEGIN") == "OK"
        assert c.call(f"SQL r1 INSERT INTO acc VALUES ({k}, {k})") == "OK 1"
        assert c.call(f"SQL r2 INSERT INTO acc VALUES ({k}, {k})") == "OK 1"
        return c.call("TXN COMMIT")
    except (ConnectionError, OSError):
        return None


def txn_list(h, *args):
    """`fdtserver txn list` run on host h (in its namespace: the database is reached there)."""
    r = subprocess.run(["ip", "netns", "exec", h.ns, str(FDTSERVER), "txn", "list", *args, "-c",
                        str(h.conf_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


# recovery_grace 1: a live host's own commits in flight are left alone.
LIVE = {"recovery_grace": 1, "recovery_interval": 0.3}
# The victim never resolves its own transactions here: only a peer can.
VICTIM = {"recovery_grace": 3600, "recovery_interval": 0.3}


@pytest.mark.parametrize("point", ["after_prepare", "before_decision", "after_decision"])
def test_24_01_a_dead_hosts_transactions_are_resolved_by_a_live_one(hosts, tmp_path, point):
    net, pg, dbs, make = hosts
    fault = tmp_path / "fault"
    a = make("a", "hosta", server=VICTIM, env={"FDT_FAULT_FILE": str(fault)})
    b = make("b", "hostb", server=LIVE)
    c = make("c", "hostc", server=LIVE)
    answers = {}
    # Commits answered OK on every host, before anything fails.
    for k, h in enumerate((a, b, c, a)):
        cl = h.client()
        answers[k] = commit_both(cl, k)
        cl.close()
    assert all(v == "OK" for v in answers.values()), answers
    # A second client keeps committing on host a while the first one hits the fault point.
    stop = threading.Event()

    def load():
        cl = a.client()
        for k in range(100, 300):
            if stop.is_set():
                break
            answers[k] = commit_both(cl, k)
            if answers[k] is None:
                break
        cl.close()

    loader = threading.Thread(target=load)
    loader.start()
    fault.write_text(point)
    cl = a.client()
    answers[50] = commit_both(cl, 50)
    a.wait_log(f"fault point {point}")
    a.kill_tree()
    stop.set()
    loader.join(60)
    assert not loader.is_alive()
    # The worker died at the fault point in whichever transaction reached it first: this
    # client's, or the loader's (the master may then have restarted the worker in time to
    # answer this one before the whole tree was killed).
    assert answers[50] is None or any(v is None for k, v in answers.items() if k >= 100), \
        answers
    # Host a is gone with its sessions: b or c takes over and leaves nothing prepared.
    wait_for(lambda: prepared(pg, dbs) == [], timeout=60, what="takeover of hosta")
    in1, in2 = ids(pg, dbs[0]), ids(pg, dbs[1])
    assert in1 == in2, "half-applied: " + str(in1 ^ in2)
    ok = {k for k, v in answers.items() if v == "OK"}
    assert ok <= in1
    assert in1 <= set(answers)
    # What the fault point stopped was resolved by a peer, as hosta itself would have.
    expect = "committed" if point == "after_decision" else "rolled back"
    log = pg.psql("SELECT gid, outcome, comment FROM fdt_txn_log WHERE comment LIKE "
                  "'%takeover: node hosta had no live session%'", dbname=dbs[0])
    assert expect in [r[1] for r in log], log
    for gid, _, comment in log:
        assert gid.startswith("fdt1:hosta:_:")
        assert "by node hostb" in comment or "by node hostc" in comment
    # The operator sees who resolved it, from any host's configuration.
    out = txn_list(b)
    assert "0 prepared transactions" in out
    assert "takeover: node hosta had no live session" in out and log[0][0] in out
    # The live hosts' own transactions were never touched: b and c still commit.
    for k, h in ((400, b), (401, c)):
        cl = h.client()
        assert commit_both(cl, k) == "OK"
        cl.close()


def passes_see_a_alive(b, pg, dbs, gids):
    """Three more recovery passes of b find hosta alive, and a's transactions stay prepared
    meanwhile."""
    seen = b.log().count("node hosta is alive")
    wait_for(lambda: b.log().count("node hosta is alive") >= seen + 3
             or sorted(prepared(pg, dbs)) != gids, timeout=30, what="b's passes")
    assert sorted(prepared(pg, dbs)) == gids, "a live host was taken over"


def test_24_02_a_host_cut_off_is_taken_over_only_once_its_sessions_are_gone(hosts, tmp_path):
    net, pg, dbs, make = hosts
    fault = tmp_path / "fault"
    # Two workers: when one dies at the fault point, the other keeps holding a's alive lock.
    a = make("a", "hosta", workers=2, server=VICTIM, env={"FDT_FAULT_FILE": str(fault)})
    b = make("b", "hostb", server=LIVE)
    # A worker of a dies after its decision, so host a is alive with a root transaction in
    # doubt (its own recovery_grace keeps it from resolving it).
    fault.write_text("after_decision")
    cl = a.client()
    assert commit_both(cl, 7) is None
    a.wait_log("fault point after_decision")
    wait_for(lambda: len(prepared(pg, dbs)) == 2, what="two branches in doubt")
    gids = sorted(prepared(pg, dbs))
    assert all(g.startswith("fdt1:hosta:") for g in gids)
    out = txn_list(b)
    assert out.count(" hosta ") >= 2 and "root" in out and "commit" in out
    assert "2 prepared transactions" in out
    assert "0 prepared transactions" in txn_list(b, "--node", "hostb")
    assert "2 prepared transactions" in txn_list(b, "--node", "hosta")
    # While a is alive, b's passes see it and leave its transactions alone.
    passes_see_a_alive(b, pg, dbs, gids)
    # Cut a's network. PostgreSQL still holds a's sessions (nothing tells it yet): a is
    # not taken over.
    net.cut("a")
    passes_see_a_alive(b, pg, dbs, gids)
    assert ids(pg, dbs[0]) == set() and ids(pg, dbs[1]) == set()
    # PostgreSQL drops a's sessions (what tcp_keepalives_* or tcp_user_timeout do after
    # their time, done at once here): now b has its proof and takes over.
    pg.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE client_addr = '{net.addr['a']}'")
    wait_for(lambda: prepared(pg, dbs) == [], timeout=60, what="takeover of hosta")
    assert ids(pg, dbs[0]) == {7} and ids(pg, dbs[1]) == {7}
    out = txn_list(b)
    assert "0 prepared transactions" in out
    assert "committed by node hostb" in out and "takeover: node hosta had no live session" in out
