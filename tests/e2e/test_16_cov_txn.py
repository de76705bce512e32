"""Transactions' paths no other test takes (issue #14 coverage): a database driver module
that is missing, not loadable, without its entry point, or another driver than its file
name says. `fdtserver txn` loads the module itself, from <dir of libfdt.so>/fdtserver when
libfdt.so lies outside the build tree: here a copy of it in a temporary directory, put
first by LD_LIBRARY_PATH (the programs find libfdt.so by RUNPATH, which it overrides)."""
import os
import re
import shutil
import subprocess

import pytest

from fdt import BUILD, FDTSERVER

GID = "fdt1:nodec:lite:1:AQID:"


def install_dir():
    text = (BUILD / "fdt_config.h").read_text()
    return re.search(r'#define FDT_RM_INSTALL_DIR "(.*)"', text).group(1)


@pytest.fixture
def lib(tmp_path):
    """A directory with a copy of libfdt.so and an empty module directory beside it."""
    d = tmp_path / "lib"
    (d / "fdtserver").mkdir(parents=True)
    shutil.copy(BUILD / "libfdt.so.0", d / "libfdt.so.0")
    return d


def rollback(tmp_path, lib):
    conf = tmp_path / "txn.ini"
    conf.write_text("[server]\nnode = nodec\n[listen.main]\naddress = 127.0.0.1:1\n"
                    "protocol = raw\n[app]\nmodule = /nonexistent.so\n"
                    f"[resource.lite]\ndriver = sqlite\npath = {tmp_path}/lite.db\n")
    r = subprocess.run([str(FDTSERVER), "txn", "rollback", GID, "-c", str(conf)],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, LD_LIBRARY_PATH=str(lib)))
    assert r.returncode == 1, r
    assert "fdtserver txn: [resource.lite] driver sqlite is not available" in r.stderr, r
    assert not (tmp_path / "lite.db").exists()
    return r.stderr


def test_16_10_driver_module_missing(tmp_path, lib):
    if os.path.exists(os.path.join(install_dir(), "fdt_rm_sqlite.so")):
        pytest.skip("an installed fdt_rm_sqlite.so would be found")
    err = rollback(tmp_path, lib)
    assert (f"driver sqlite: fdt_rm_sqlite.so not found in {lib}/fdtserver, {install_dir()}"
            in err)


def test_16_11_driver_module_not_loadable(tmp_path, lib):
    module = lib / "fdtserver" / "fdt_rm_sqlite.so"
    module.write_bytes(b"not an ELF object\n" * 64)
    err = rollback(tmp_path, lib)
    assert f"driver sqlite: cannot load {module}: " in err


def test_16_12_driver_module_without_its_entry_point(tmp_path, lib):
    module = lib / "fdtserver" / "fdt_rm_sqlite.so"
    shutil.copy(BUILD / "apps" / "hello.so", module)
    err = rollback(tmp_path, lib)
    assert f"driver sqlite: {module}: " in err
    assert "undefined symbol: fdt_rm_driver_v1" in err


def test_16_13_driver_module_of_another_driver(tmp_path, lib):
    module = lib / "fdtserver" / "fdt_rm_sqlite.so"
    shutil.copy(BUILD / "fdt_rm_postgresql.so", module)
    err = rollback(tmp_path, lib)
    assert re.search(f"driver sqlite: {re.escape(str(module))} is driver postgresql of ABI "
                     r"version (\d+), not sqlite of \1", err), err
