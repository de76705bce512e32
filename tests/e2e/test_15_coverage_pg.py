"""The PostgreSQL driver's error paths (tests/unit/test_pg_cov.c), run against a fresh
database of the PostgreSQL fixture: a failed transaction that cannot be prepared or
committed, a GID that cannot be quoted, fdt_txn_query's refusals (COPY hidden behind a
comment included), a session the server ended (before a statement, and known closed before
a statement with BEGIN), the raw handle (and a command left
unread on it) and retryable errors, the driver's allocations
failing."""
import os
import subprocess

from fdt import BUILD


def test_15_10_postgresql_driver_errors(postgres, pgdb):
    exe = BUILD / "tests" / "unit" / "test_pg_cov"
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, FDT_TEST_PG_DSN=pgdb))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[  PASSED  ] 10 test(s)." in r.stderr, r.stdout + r.stderr
