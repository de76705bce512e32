"""Install (issue #12): `meson install` into a staging directory gives binaries that run from
there with no library path set, man pages, headers and fdt.pc that build an out-of-tree
application, which the installed server then serves; the example configurations of contrib/
pass --check; fault points are off unless the build asks for them; `make run` (scripts/run)
shows its banner only once it serves."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from fdt import BUILD, ROOT, free_port, free_port_pair, wait_for

# The environment of a user's shell: no library path pointing into the build tree.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}


def run(cmd, **kw):
    kw.setdefault("env", CLEAN_ENV)
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120,
                          **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The build installed with `meson install --destdir`: (destdir, prefix in it, libdir)."""
    dest = tmp_path_factory.mktemp("destdir")
    r = run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest, "--quiet"],
            env=dict(CLEAN_ENV, DESTDIR=""))
    assert r.returncode == 0, r.stdout + r.stderr
    (server,) = dest.rglob("bin/fdtserver")
    prefix = server.parent.parent
    (lib,) = prefix.rglob("libfdt.so")
    return dest, prefix, lib.parent


def test_13_01_installed_binaries_run_from_their_prefix(installed):
    dest, prefix, libdir = installed
    for prog in ("fdtserver", "fdtctl"):
        r = run([prefix / "bin" / prog, "--version"])
        assert r.returncode == 0 and r.stdout.startswith(f"{prog} "), r.stderr
        r = run([prefix / "bin" / prog, "--help"])
        assert r.returncode == 0 and "--version" in r.stdout, r.stderr
    # Nothing but the installed tree: the build directory is not on any path they use.
    r = run(["ldd", prefix / "bin" / "fdtserver"])
    found = [line.split()[2] for line in r.stdout.splitlines() if "libfdt.so" in line]
    assert found and os.path.realpath(found[0]) == os.path.realpath(libdir / "libfdt.so.0"), \
        r.stdout
    # The database drivers beside libfdt.so, headers, fdt.pc, man pages, contrib/.
    for f in ("fdtserver/fdt_rm_sqlite.so", "fdtserver/fdt_rm_postgresql.so",
              "pkgconfig/fdt.pc"):
        assert (libdir / f).is_file(), f
    assert (prefix / "include" / "fdt" / "fdt.h").is_file()
    for page in ("man8/fdtserver.8", "man8/fdtctl.8", "man5/fdtserver.conf.5"):
        (found,) = prefix.rglob(page)
        r = run(["man", "--warnings", "-l", found], env=dict(CLEAN_ENV, MANWIDTH="80"))
        assert r.returncode == 0 and not r.stderr, (page, r.stderr)
        assert "SYNOPSIS" in r.stdout or "fdtserver.conf" in r.stdout, page
    (docs,) = prefix.rglob("doc/fdtserver/contrib")
    for f in ("examples/hello.ini", "examples/wingcash-sqlite.ini",
              "examples/wingcash-postgresql.ini", "logrotate/fdtserver"):
        assert (docs / f).is_file(), f


def test_13_02_out_of_tree_application_builds_and_is_served(installed, tmp_path):
    dest, prefix, libdir = installed
    src = tmp_path / "myapp"
    src.mkdir()
    shutil.copy(ROOT / "apps" / "hello" / "hello.c", src / "myapp.c")
    # fdt.pc names the configured prefix; point it at the staging directory.
    env = dict(CLEAN_ENV, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    r = run(["pkg-config", f"--define-variable=prefix={prefix}", "--cflags", "--libs", "fdt"],
            env=env)
    assert r.returncode == 0 and str(prefix) in r.stdout, r.stderr
    flags = r.stdout.split()
    r = run(["cc", "-shared", "-fPIC", "-Wall", "-Werror", "-o", src / "myapp.so",
             src / "myapp.c", *flags], cwd=src)
    assert r.returncode == 0, r.stderr
    port = free_port()
    conf = tmp_path / "myapp.ini"
    conf.write_text("[server]\nworkers = 1\nthreads = 2\ncontrol_socket = ctl.sock\n"
                    "pid_file = fdt.pid\n"
                    f"[listen.main]\naddress = 127.0.0.1:{port}\nprotocol = http\n"
                    "[app]\nmodule = myapp/myapp.so\nversion = out-of-tree\n"
                    "[resource.lite]\ndriver = sqlite\npath = lite.db\n")
    fdtctl = prefix / "bin" / "fdtctl"
    log = open(tmp_path / "fdt.log", "wb")
    p = subprocess.Popen([prefix / "bin" / "fdtserver", "-c", conf], stdout=log,
                         stderr=subprocess.STDOUT, env=CLEAN_ENV)
    try:
        def serving():
            assert p.poll() is None, (tmp_path / "fdt.log").read_text()
            return run([fdtctl, "--socket", tmp_path / "ctl.sock", "status"]).returncode == 0
        wait_for(serving, timeout=20, what="the installed server serving")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/whoami", timeout=10) as resp:
            who = json.loads(resp.read())
        assert who["version"] == "out-of-tree"
        # The worker mapped the installed libfdt.so, the application and the SQLite driver
        # found beside libfdt.so (the request ran in a transaction over [resource.lite]).
        maps = open(f"/proc/{who['pid']}/maps").read()
        assert str(libdir / "libfdt.so.0.") in maps
        assert str(src / "myapp.so") in maps
        assert str(libdir / "fdtserver" / "fdt_rm_sqlite.so") in maps
        assert str(BUILD) not in maps
    finally:
        p.terminate()
        assert p.wait(30) == 0, (tmp_path / "fdt.log").read_text()
        log.close()


def examples_tree(tmp_path):
    """contrib/examples as in the source tree, beside a build/ (the build under test) and an
    empty var/, which the examples' relative paths name."""
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "contrib" / "examples", tree / "contrib" / "examples")
    (tree / "build").symlink_to(BUILD)
    (tree / "var").mkdir()
    return tree


@pytest.mark.parametrize("name", ["hello", "wingcash-sqlite", "wingcash-postgresql"])
def test_13_03_example_configurations_pass_check(tmp_path, name):
    tree = examples_tree(tmp_path)
    conf = tree / "contrib" / "examples" / f"{name}.ini"
    r = run([BUILD / "src" / "bin" / "fdtserver", "-c", conf, "--check"])
    assert r.returncode == 0 and "configuration ok" in r.stdout, r.stdout + r.stderr
    # Relative paths resolve from the file: the module in build/, the state in var/.
    assert f"module = {tree}/contrib/examples/../../build/apps/" in r.stdout, r.stdout
    # Without var/ (where the SQLite ledger goes), --check says so.
    (tree / "var").rmdir()
    r = run([BUILD / "src" / "bin" / "fdtserver", "-c", conf, "--check"])
    if name == "wingcash-sqlite":
        assert r.returncode == 2 and "var: No such file or directory" in r.stderr, r.stderr


def test_13_04_hello_example_serves(tmp_path):
    tree = examples_tree(tmp_path)
    port = free_port()
    conf = tree / "contrib" / "examples" / "hello.ini"
    log = open(tmp_path / "fdt.log", "wb")
    p = subprocess.Popen([BUILD / "src" / "bin" / "fdtserver", "-c", conf,
                          "--listen", f"127.0.0.1:{port},http"], stdout=log,
                         stderr=subprocess.STDOUT)
    try:
        ctl = BUILD / "src" / "bin" / "fdtctl"
        wait_for(lambda: run([ctl, "-c", conf, "status"]).returncode == 0, timeout=20,
                 what="the example serving")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.read().startswith(b"Hello, world!")
        assert (tree / "var" / "hello.pid").exists()
    finally:
        p.terminate()
        assert p.wait(30) == 0, (tmp_path / "fdt.log").read_text()
        log.close()


def test_13_05_fault_points_only_when_the_build_asks(tmp_path):
    """Off by default (meson_options.txt); on in the test build, which the Makefile
    configures with -Dfault_points=true (tests/e2e/test_21_txn.py needs them)."""
    r = run(["meson", "introspect", "--buildoptions", ROOT / "meson.build"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    opts = {o["name"]: o["value"] for o in json.loads(r.stdout)}
    assert opts["fault_points"] is False
    lib = (BUILD / "libfdt.so").read_bytes()
    assert b"FDT_FAULT_FILE" in lib, "this build has no fault points: -Dfault_points=true"


def start_run(tmp_path, port):
    log = tmp_path / "run.log"
    env = dict(os.environ, FDT_VAR=str(tmp_path / "var"))
    with open(log, "wb") as f:
        p = subprocess.Popen([ROOT / "scripts" / "run", BUILD, "127.0.0.1", str(port)],
                             stdout=f, stderr=subprocess.STDOUT, env=env)
    return p, log


def test_13_06_make_run_prints_its_banner_once_serving_and_stops_on_ctrl_c(tmp_path):
    port = free_port_pair()
    p, log = start_run(tmp_path, port)
    try:
        banner = wait_for(lambda: "fdtserver: serving wingcash" in log.read_text(),
                          timeout=20, what="the banner")
        assert banner
        # The moment the banner shows, both ports answer.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.status == 200
        socket.create_connection(("127.0.0.1", port + 1), timeout=5).close()
        text = log.read_text()
        assert "Ctrl-C" in text and "make run PORT=9090" in text
        # Ctrl-C: the terminal sends SIGINT to the foreground process, the server itself.
        p.send_signal(signal.SIGINT)
        assert p.wait(20) == 0, log.read_text()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_13_07_make_run_prints_no_banner_when_it_cannot_serve(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p, log = start_run(tmp_path, port)
        assert p.wait(20) != 0
    time.sleep(0.3)  # the watcher polls every 0.1 s: give a wrong banner time to show
    text = log.read_text()
    assert "Address already in use" in text, text
    assert "fdtserver: serving" not in text, text


def test_13_08_readme_and_docs_link_only_inside_the_repository():
    """The README stands alone: every relative link of README.md and docs/ names a file of
    this repository, and none climbs out of it (issue #12 found ../shared/design.md)."""
    bad = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = md.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (md.parent / target.split("#")[0]).resolve()
            if ROOT.resolve() not in path.parents or not path.exists():
                bad.append(f"{md.relative_to(ROOT)}: {target}")
        bad += [f"{md.relative_to(ROOT)}: {m}" for m in re.findall(r"\.\./shared/\S*", text)]
    assert not bad, bad
    readme = (ROOT / "README.md").read_text()
    assert "docs/promises.md" in readme and "Ctrl-C" in readme and "PORT=9090" in readme
