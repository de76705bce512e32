"""A binary upgrade of a master started the ways people start programs: found through PATH
(argv[0] without a slash: the master asks the kernel which file it runs) and by a relative
path (resolved against the directory it started in). Either way the new master runs and
serves in place of the old one."""
import os
import subprocess

import pytest

from test_52_upgrade import upgradable, whoami  # noqa: F401 (upgradable: a fixture)


@pytest.mark.parametrize("how", ["path", "relative"])
def test_15_60_upgrade_of_a_master_started_without_an_absolute_path(upgradable, how):  # noqa: F811
    u = upgradable(workers=1)
    s = u.s
    s.logf = open(s.log_path, "ab")
    env = dict(s.env)
    if how == "path":
        argv0, cwd = "fdtserver", None  # the master then runs /proc/self/exe
        env["PATH"] = f"{u.bin.parent}:{env.get('PATH', '')}"
    else:
        argv0, cwd = "bin/fdtserver", str(u.bin.parent.parent)
    s.proc = subprocess.Popen([argv0, "-c", str(s.conf_path)], stdout=s.logf,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                              cwd=cwd)
    s.wait_ready()
    u.master = s.pid
    new = u.upgrade()
    assert int(s.pid_path.read_text()) == new
    assert whoami(s)["version"] == "1"
    assert os.readlink(f"/proc/{new}/exe") == os.path.realpath(u.bin)
    started = os.path.realpath(u.bin) if how == "path" else f"{cwd}/bin/fdtserver"
    assert f"binary upgrade: started {started} as pid {new}" in s.log()
