"""What fdtctl, `fdtserver txn` and fdt-config-doc tell a person when something is off: no
command, a broken configuration file, a socket path or command too long, a server that
answers nothing or half a line, a server that cannot name its configuration file; and the
man page fdtserver.conf(5) as roff that groff reads without a warning."""
import shutil
import socket
import subprocess
import threading

import pytest

from fdt import BUILD, FDTCTL, FDTSERVER

CONFIG_DOC = BUILD / "src" / "config" / "fdt-config-doc"


def run(*cmd, timeout=20):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout)


class FakeControl:
    """A unix socket that answers each connection with the next of `answers` (bytes), then
    closes it, and records the requests it read."""

    def __init__(self, path, answers):
        self.path = str(path)
        self.answers = list(answers)
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        for answer in self.answers:
            conn, _ = self.sock.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data.decode())
                if answer:
                    conn.sendall(answer)

    def close(self):
        self.thread.join(timeout=20)
        self.sock.close()
        assert not self.thread.is_alive()


def broken_config(tmp_path):
    conf = tmp_path / "broken.ini"
    conf.write_text("[server]\nworkers = 1\nworkers_typo = 3\n")
    return conf


def test_14_01_fdtctl_without_a_command_prints_usage(tmp_path):
    for args in ((), ("--socket", tmp_path / "none.sock")):
        r = run(FDTCTL, *args)
        assert r.returncode == 2, r
        assert r.stderr.startswith("usage: fdtctl") and not r.stdout


def test_14_02_fdtctl_names_the_line_of_a_broken_config_file(tmp_path):
    conf = broken_config(tmp_path)
    for cmd in (("status",), ("txn", "list")):
        r = run(FDTCTL, "-c", conf, *cmd)
        assert r.returncode == 2, (cmd, r)
        assert r.stderr.startswith(f"fdtctl: {conf}:3: "), (cmd, r.stderr)
        assert "workers_typo" in r.stderr


def test_14_03_fdtctl_takes_the_socket_from_the_config_file(tmp_path):
    sock = tmp_path / "elsewhere.sock"
    conf = tmp_path / "fdt.ini"
    conf.write_text(f"[server]\ncontrol_socket = {sock}\n")
    r = run(FDTCTL, "-c", conf, "status")
    assert r.returncode == 1
    assert f"cannot connect to {sock}" in r.stderr and "is fdtserver running?" in r.stderr
    fake = FakeControl(sock, [b"OK\nall good\n"])
    r = run(FDTCTL, "-c", conf, "status")
    fake.close()
    assert r.returncode == 0, r
    assert r.stdout == "all good\n" and fake.requests == ["status\n"]


def test_14_04_fdtctl_refuses_a_socket_path_or_command_too_long(tmp_path):
    r = run(FDTCTL, "--socket", "/tmp/" + "s" * 200, "status")
    assert r.returncode == 2 and r.stderr == "fdtctl: socket path too long\n"
    r = run(FDTCTL, "--socket", tmp_path / "none.sock", "workers", "1" * 600)
    assert r.returncode == 2 and r.stderr == "fdtctl: command too long\n"


def test_14_05_fdtctl_reports_a_server_that_answers_nothing_or_half_a_line(tmp_path):
    sock = tmp_path / "fake.sock"
    fake = FakeControl(sock, [b"", b"OK 3 workers (was 2)", b"ERR no such command"])
    r1 = run(FDTCTL, "--socket", sock, "status")
    r2 = run(FDTCTL, "--socket", sock, "workers", "3")
    r3 = run(FDTCTL, "--socket", sock, "frobnicate")
    fake.close()
    assert r1.returncode == 1 and r1.stderr == f"fdtctl: no answer from {sock}\n"
    assert r2.returncode == 0 and r2.stdout == "OK 3 workers (was 2)\n", r2
    assert r3.returncode == 1 and r3.stderr == "ERR no such command\n", r3
    assert fake.requests == ["status\n", "workers 3\n", "frobnicate\n"]


def test_14_06_fdtctl_txn_learns_the_config_file_from_the_server(tmp_path):
    sock = tmp_path / "fake.sock"
    conf = broken_config(tmp_path)
    cannot = "fdtctl: cannot learn the configuration file from the server; use -c FILE\n"
    # Nobody listening.
    r = run(FDTCTL, "--socket", sock, "txn", "list")
    assert r.returncode == 1 and r.stderr == cannot
    # An answer that is not JSON, JSON without the file, then the (broken) file itself.
    fake = FakeControl(sock, [b"OK\n{not json\n", b'OK\n{"generations":[]}\n',
                              f'OK\n{{"config_file":"{conf}"}}\n'.encode()])
    r1 = run(FDTCTL, "--socket", sock, "txn", "list")
    r2 = run(FDTCTL, "--socket", sock, "txn", "list")
    r3 = run(FDTCTL, "--socket", sock, "txn", "list")
    fake.close()
    assert r1.returncode == 1 and r1.stderr == cannot
    assert r2.returncode == 1 and r2.stderr == cannot
    assert r3.returncode == 2 and r3.stderr.startswith(f"fdtctl: {conf}:3: "), r3
    assert fake.requests == ["status json\n"] * 3


def test_14_07_fdtserver_txn_names_the_line_of_a_broken_config_file(tmp_path):
    conf = broken_config(tmp_path)
    r = run(FDTSERVER, "txn", "list", "-c", conf)
    assert r.returncode == 2
    assert r.stderr.startswith(f"fdtserver: {conf}:3: ") and "workers_typo" in r.stderr
    missing = tmp_path / "missing.ini"
    r = run(FDTSERVER, "txn", "list", "-c", missing)
    assert r.returncode == 2
    assert r.stderr.startswith(f"fdtserver: {missing}: "), r.stderr
    # A file name too long for the configuration: the reason first, then the name.
    long_name = tmp_path.joinpath(*["d" * 200] * 5, "f" * 250)
    r = run(FDTSERVER, "txn", "list", "-c", long_name)
    assert r.returncode == 2
    assert r.stderr.startswith("fdtserver: configuration file path too long: /"), r.stderr


def test_14_08_config_doc_man_page_is_clean_roff(tmp_path):
    r = run(CONFIG_DOC, "--man")
    assert r.returncode == 0 and not r.stderr
    man = r.stdout
    assert man.startswith('.\\" Generated by fdt-config-doc')
    assert '\n.TH FDTSERVER.CONF 5 "" "fdtserver ' in man
    for section in ("server", "listen.NAME", "app", "python", "resource.NAME"):
        assert f'\n.SH "[{section}]"\n' in man, section
    # Each setting is a tagged paragraph: name, description, values and default.
    assert "\n.TP\nworkers\n" in man
    assert "\\-" in man and "\\fB" in man
    for line in man.splitlines():
        # Text lines never start with a control character (they would be requests).
        if line.startswith((".", "'")):
            assert line.split()[0] in (".\\\"", ".TH", ".SH", ".PP", ".TP", ".B", ".I",
                                       ".BR"), line
    if shutil.which("groff"):
        page = tmp_path / "fdtserver.conf.5"
        page.write_text(man)
        g = run("groff", "-man", "-Tutf8", "-ww", "-z", page)
        assert g.returncode == 0 and not g.stderr, g.stderr


def test_14_09_config_doc_check_and_usage(tmp_path):
    r = run(CONFIG_DOC, "--markdown")
    assert r.returncode == 0 and r.stdout.startswith("<!-- Generated by fdt-config-doc")
    good = tmp_path / "configuration.md"
    good.write_text(r.stdout)
    assert run(CONFIG_DOC, "--check", good).returncode == 0
    stale = tmp_path / "stale.md"
    stale.write_text(r.stdout.replace("workers", "wrokers", 1))
    missing = tmp_path / "missing.md"
    for path in (stale, missing):
        c = run(CONFIG_DOC, "--check", path)
        assert c.returncode != 0
        assert c.stderr.startswith(f"{path} is not what fdt-config-doc --markdown prints")
    for args in ((), ("--html",), ("--check",)):
        u = run(CONFIG_DOC, *args)
        assert u.returncode == 2 and u.stderr.startswith("usage: fdt-config-doc"), args


@pytest.mark.parametrize("cmd", [("txn",), ("txn", "list")])
def test_14_10_fdtserver_txn_without_config_says_it_is_required(cmd):
    r = run(FDTSERVER, *cmd)
    assert r.returncode == 2
    assert r.stderr == "fdtserver txn: -c FILE is required (the resources are in it)\n"


def sqlite_config(tmp_path, path=None):
    conf = tmp_path / "txn.ini"
    conf.write_text(f"[resource.ledger]\ndriver = sqlite\npath = {path or tmp_path / 'l.db'}\n")
    return conf


def test_14_11_fdtserver_txn_on_sqlite_lists_nothing_and_refuses_bad_gids(tmp_path):
    conf = sqlite_config(tmp_path)
    r = run(FDTSERVER, "txn", "list", "-c", conf)
    assert r.returncode == 0, r
    assert r.stdout.split()[:6] == ["RESOURCE", "NODE", "ROLE", "RECORD", "AGE(s)", "GID"]
    assert "0 prepared transactions\n" in r.stdout and not r.stderr
    r = run(FDTSERVER, "txn", "list", "--node", "bad name!", "-c", conf)
    assert r.returncode == 2 and r.stderr == "fdtserver txn: bad node name bad name!\n"
    r = run(FDTSERVER, "txn", "commit", "not-a-gid", "-c", conf)
    assert r.returncode == 2 and r.stderr == "fdtserver txn: not-a-gid is not an fdtserver GID\n"
    gid = "fdt1:n:other:1:AAAA:"
    r = run(FDTSERVER, "txn", "rollback", gid, "-c", conf)
    assert r.returncode == 2
    assert r.stderr == "fdtserver txn: no [resource.other] in the configuration\n"
    # SQLite has no prepared transactions: there is nothing to commit, and no record.
    r = run(FDTSERVER, "txn", "commit", "fdt1:n:ledger:1:AAAA:", "-c", conf)
    assert r.returncode == 1 and r.stderr.startswith("fdtserver txn: "), r
    r = run(FDTSERVER, "txn", "frobnicate", "-c", conf)
    assert r.returncode == 2 and r.stderr.startswith("usage: fdtserver txn list")


def test_14_12_fdtserver_txn_names_a_database_it_cannot_open(tmp_path):
    conf = sqlite_config(tmp_path, tmp_path / "missing" / "l.db")
    r = run(FDTSERVER, "txn", "list", "-c", conf)
    assert "0 prepared transactions\n" in r.stdout
    assert r.stderr.startswith("fdtserver txn: [resource.ledger]: "), r.stderr
