"""`make run` serves wingcash: scripts/run started as a user would, then the walk-through
of docs/wingcash.md (two accounts, a deposit, a transfer, a claim, a withdrawal) with the
exact requests the document shows."""
import os
import signal
import subprocess

from fdt import BUILD, ROOT, free_port_pair, wait_for
from wingcash_util import Api, Rpc


def test_32_01_make_run_serves_the_walkthrough(tmp_path):
    port = free_port_pair()  # HTTP on port, JSON-RPC on port + 1
    env = dict(os.environ, FDT_VAR=str(tmp_path / "var"))
    log = open(tmp_path / "run.log", "wb")
    p = subprocess.Popen([str(ROOT / "scripts" / "run"), str(BUILD), "127.0.0.1", str(port)],
                         stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        api = Api(port)

        def up():
            if p.poll() is not None:
                raise AssertionError(f"scripts/run exited with {p.returncode}:\n"
                                     + (tmp_path / "run.log").read_text())
            try:
                return api.call("GET", "/")[0] == 200
            except OSError:
                api.close()
                return False
        wait_for(up, timeout=20, what="scripts/run serving")
        # The banner follows once fdtctl status says the server serves (scripts/run polls).
        banner = wait_for(lambda: (lambda t: t if "curl" in t else None)(
            (tmp_path / "run.log").read_text()), what="the banner")
        assert f"http://127.0.0.1:{port}/" in banner and "curl" in banner
        st, alice = api.call("POST", "/accounts", {"name": "alice"})
        assert st == 201
        st, bob = api.call("POST", "/accounts", {"name": "bob"})
        assert st == 201
        st, d = api.call("POST", f"/accounts/{alice['id']}/deposits", {"amount": 1000},
                         token=alice["token"])
        assert st == 201
        st, t = api.call("POST", f"/accounts/{alice['id']}/transfers",
                         {"to": bob["id"], "amount": 250, "idempotency_key": "lunch"},
                         token=alice["token"])
        assert st == 201 and t["fee"] == 0
        st, c = api.call("POST", f"/accounts/{alice['id']}/claims", {"amount": 100},
                         token=alice["token"])
        assert st == 201
        st, r = api.call("POST", f"/claims/{c['code']}/redeem", {"to": bob["id"]},
                         token=bob["token"])
        assert st == 200
        st, w = api.call("POST", f"/accounts/{bob['id']}/withdrawals",
                         {"amount": 300, "bank_account": "DE89370400440532013000"},
                         token=bob["token"])
        assert st == 201 and w["fee"] == 25
        assert api.call("GET", f"/accounts/{alice['id']}", token=alice["token"])[1][
            "balance"] == 650
        assert api.call("GET", f"/accounts/{bob['id']}", token=bob["token"])[1]["balance"] == 25
        rpc = Rpc(port + 1)
        r = rpc.call("wingcash.balance", {"token": bob["token"], "account": bob["id"]})
        assert r["result"]["balance"] == 25
        rpc.close()
        assert (tmp_path / "var" / "wingcash.db").exists()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        log.close()
