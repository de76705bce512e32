"""A real PostgreSQL for the tests: initdb in a temporary directory, started on a unix
socket there, with max_prepared_transactions > 0, stopped at the end.

PostgreSQL refuses to run as root; as root the cluster is created and run as Debian's
`postgres` user (runuser) in a directory that user owns."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def pg_bindir():
    for v in ("17", "16", "15"):
        d = Path(f"/usr/lib/postgresql/{v}/bin")
        if (d / "initdb").exists():
            return d
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError("PostgreSQL server binaries not found (scripts/bootstrap installs them)")


class Postgres:
    """listen_addresses: TCP addresses to listen on besides the unix socket (none by default);
    netns: a network namespace (ip netns) to run the server in; trust_net: a CIDR whose TCP
    clients are trusted (pg_hba.conf)."""

    def __init__(self, max_prepared=64, listen_addresses="", netns=None, trust_net=None):
        self.bindir = pg_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="fdt-pg-"))
        self.data = self.dir / "data"
        self.port = 5432  # on a private unix socket directory: no clash with anything
        self.max_prepared = max_prepared
        self.listen_addresses = listen_addresses
        self.netns = netns
        self.trust_net = trust_net
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(self.dir, 0o755)

    def _run(self, *args, netns=None, **kw):
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, **kw)

    def start(self):
        r = self._run(self.bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr}")
        if self.trust_net:
            with open(self.data / "pg_hba.conf", "a") as f:
                f.write(f"host all all {self.trust_net} trust\n")
        opts = (f"-k {self.dir} -c listen_addresses='{self.listen_addresses}' -p {self.port} "
                f"-c max_prepared_transactions={self.max_prepared} -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        r = self._run(self.bindir / "pg_ctl", "-D", self.data, "-o", opts, "-l",
                      self.dir / "postgres.log", "-w", "-t", "60", "start", netns=self.netns)
        if r.returncode != 0:
            log = (self.dir / "postgres.log").read_text(errors="replace")
            raise RuntimeError(f"pg_ctl start failed: {r.stderr}\n{log}")
        return self

    def stop(self):
        self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, dbname="postgres"):
        return f"host={self.dir} port={self.port} user=postgres dbname={dbname}"

    def psql(self, sql, dbname="postgres", check=True):
        """Run SQL and return the rows as lists of strings."""
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                            "-h", str(self.dir), "-p", str(self.port), "-U", "postgres",
                            "-d", dbname, "-c", sql], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def create_db(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)
