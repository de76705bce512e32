import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fdt import FdtServer  # noqa: E402


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
