import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fdt import FdtServer  # noqa: E402
from pg import Postgres  # noqa: E402


@pytest.fixture
def make_server(tmp_path):
    """Factory: make_server(**options) -> a started FdtServer, stopped after the test."""
    servers = []

    def make(start=True, sub=None, **kw):
        d = tmp_path / (sub or f"s{len(servers)}")
        d.mkdir(exist_ok=True)
        s = FdtServer(d, **kw)
        servers.append(s)
        if start:
            s.start()
        return s

    yield make
    reports = []
    for s in servers:
        s.stop()
        log = s.log()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "WARNING: ThreadSanitizer"):
            if marker in log:
                i = log.index(marker)
                reports.append(log[max(0, i - 200):i + 3000])
    assert not reports, "sanitizer report in the server log:\n" + "\n".join(reports)


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster for the whole run (initdb in a temporary directory)."""
    pg = Postgres().start()
    yield pg
    pg.stop()


@pytest.fixture
def pgdb(postgres, request):
    """A fresh database in that cluster for one test; returns its DSN."""
    import re
    name = "t_" + re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:50]
    postgres.psql(f'DROP DATABASE IF EXISTS "{name}"')
    return postgres.create_db(name)
