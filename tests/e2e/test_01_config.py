"""Command line and INI configuration (design §2)."""
import subprocess

from fdt import FDTSERVER, APPS, FdtServer, free_port


def run(*args, timeout=10):
    return subprocess.run([str(FDTSERVER), *args], capture_output=True, text=True,
                          timeout=timeout)


def test_01_01_unknown_key_names_file_line_and_key(tmp_path):
    conf = tmp_path / "bad.ini"
    conf.write_text("[server]\nworkers = 1\nworkerz = 2\n[listen.a]\naddress = 127.0.0.1:0\n")
    r = run("-c", str(conf))
    assert r.returncode == 2
    assert f"{conf}:3" in r.stderr
    assert "workerz" in r.stderr


def test_01_02_bad_value_is_an_error_and_nothing_starts(tmp_path):
    port = free_port()
    conf = tmp_path / "bad.ini"
    conf.write_text(f"[listen.a]\naddress = 127.0.0.1:{port}\nprotocol = raw\n"
                    f"[server]\nthreads = lots\n[app]\nmodule = {APPS}/lineapp.so\n")
    r = run("-c", str(conf))
    assert r.returncode == 2
    assert f"{conf}:5" in r.stderr and "threads" in r.stderr and "lots" in r.stderr
    # Nothing listens: the master never got as far as binding.
    import socket
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_01_03_missing_file(tmp_path):
    r = run("-c", str(tmp_path / "nope.ini"))
    assert r.returncode == 2
    assert "nope.ini" in r.stderr and "cannot open" in r.stderr


def test_01_04_bad_flag_and_bad_set(tmp_path):
    r = run("--frobnicate")
    assert r.returncode == 2 and "--frobnicate" in r.stderr
    r = run("--listen", "127.0.0.1:0,raw", "--app", str(APPS / "lineapp.so"),
            "--set", "server.nokey=1")
    assert r.returncode == 2 and "nokey" in r.stderr
    r = run("--listen", "no-port-here,raw", "--app", str(APPS / "lineapp.so"))
    assert r.returncode == 2 and "no-port-here" in r.stderr


def test_01_05_check_mode(tmp_path):
    s = FdtServer(tmp_path)
    r = run("-c", str(s.conf_path), "--check")
    assert r.returncode == 0 and "configuration ok" in r.stdout
    # It says what it would load (the application module, the listeners), loading nothing.
    assert "lineapp.so" in r.stdout and "[listen." in r.stdout, r.stdout


def test_01_06_flags_override_the_file(make_server):
    port2 = free_port()
    s = make_server(start=False, workers=1, threads=2)
    s.start(args=["--threads", "3", "--workers", "2", "--listen", f"127.0.0.1:{port2},raw",
                  "--set", "app.version=fromflag"])
    st = s.status()
    g = [g for g in st["generations"] if g["state"] == "active"][0]
    assert g["threads"] == 3
    assert len(g["workers"]) == 2
    # --listen replaced the file's listener.
    assert [l["address"] for l in st["listeners"]] == [f"127.0.0.1:{port2}"]
    c = s.client(port2)
    assert "version=fromflag" in c.call("WHOAMI")


def test_01_07_help_and_version():
    assert run("--version").stdout.startswith("fdtserver ")
    assert "usage" in run("--help").stdout


def test_01_08_unknown_key_suggests_the_nearest(tmp_path):
    conf = tmp_path / "typo.ini"
    conf.write_text("[server]\nwrokers = 2\n[listen.a]\naddress = 127.0.0.1:0\n")
    r = run("-c", str(conf))
    assert r.returncode == 2
    assert f"{conf}:2" in r.stderr
    assert "unknown key 'wrokers' (did you mean 'workers'?)" in r.stderr
    r = run("--listen", "127.0.0.1:0,raw", "--app", str(APPS / "lineapp.so"),
            "--set", "listen.cli0.protocl=raw")
    assert r.returncode == 2 and "(did you mean 'protocol'?)" in r.stderr
    # Nothing close: no suggestion.
    r = run("--listen", "127.0.0.1:0,raw", "--app", str(APPS / "lineapp.so"),
            "--set", "server.frobnicate=1")
    assert r.returncode == 2 and "frobnicate" in r.stderr and "did you mean" not in r.stderr


def test_01_09_names_that_go_into_transaction_ids_are_checked_at_load(tmp_path):
    """[server] node and resource names are parts of every transaction id: a name with other
    characters (node = web.1) is refused at load with file:line, instead of loading and
    then failing every transaction with a misleading xid message."""
    conf = tmp_path / "node.ini"
    conf.write_text(f"[server]\nnode = web.1\n[listen.a]\naddress = 127.0.0.1:0\n"
                    f"protocol = raw\n[app]\nmodule = {APPS / 'lineapp.so'}\n")
    r = run("-c", str(conf), "--check")
    assert r.returncode == 2, r.stdout
    assert f"{conf}:2" in r.stderr and "node" in r.stderr and "letters, digits" in r.stderr
    conf.write_text(f"[server]\nnode = web-1\n[listen.a]\naddress = 127.0.0.1:0\n"
                    f"protocol = raw\n[app]\nmodule = {APPS / 'lineapp.so'}\n"
                    f"[resource.led.ger]\ndriver = sqlite\npath = {tmp_path}/x.db\n")
    r = run("-c", str(conf), "--check")
    assert r.returncode == 2 and "led.ger" in r.stderr and "bad resource name" in r.stderr


def test_01_20_a_line_too_long_for_the_parser_is_named(tmp_path):
    """The INI parser reads lines into a fixed buffer: a longer line is an error naming
    its line, not a "syntax error" somewhere after it."""
    conf = tmp_path / "long.ini"
    conf.write_text("[server]\nworkers = 1\n[app]\nnote = " + "x" * 400 + "\n"
                    "[listen.a]\naddress = 127.0.0.1:0\n")
    r = run("-c", str(conf), "--check")
    assert r.returncode == 2, r
    assert f"{conf}:4" in r.stderr and "line longer than" in r.stderr, r.stderr
