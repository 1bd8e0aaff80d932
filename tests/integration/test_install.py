"""make install DESTDIR=...: every file lands under DESTDIR, and the unit is valid.

Writes only under its temporary directory (besides `make all` being a no-op
on an up-to-date build/); `deps` is skipped (-o deps) so no package manager
and no network are involved.
"""
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = "lib/systemd/system/mxguard.service"


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    r = subprocess.run(["make", "-C", str(REPO), "-o", "deps", "install", "DESTDIR=%s" % dest],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert r.returncode == 0, r.stdout
    return dest


def _exec_start(unit_text):
    lines = [l for l in unit_text.splitlines() if l.startswith("ExecStart=")]
    assert len(lines) == 1, lines
    return lines[0][len("ExecStart="):].split()


def test_files_in_place(destdir):
    for rel in ("usr/local/sbin/mxguard", "usr/local/sbin/mxguardctl"):
        p = destdir / rel
        assert p.is_file() and os.access(p, os.X_OK), rel
    for rel in ("usr/local/share/man/man8/mxguard.8", "usr/local/share/man/man8/mxguardctl.8",
                "usr/local/share/man/man5/mxguard.conf.5"):
        assert (destdir / rel).is_file(), rel
    conf = destdir / "etc/mxguard/mxguard.conf"
    assert conf.read_text() == (REPO / "etc/mxguard.conf.example").read_text()
    unit = destdir / UNIT
    assert unit.is_file()
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert (destdir / "var/lib/mxguard").is_dir()


def test_unit_exec_start_points_at_installed_files(destdir):
    argv = _exec_start((destdir / UNIT).read_text())
    assert Path(argv[0]).is_absolute()
    assert (destdir / argv[0].lstrip("/")).is_file(), argv[0]
    assert argv[1:] == ["-c", "/etc/mxguard/mxguard.conf"]
    assert (destdir / argv[2].lstrip("/")).is_file()


def test_installed_config_checks(destdir):
    argv = _exec_start((destdir / UNIT).read_text())
    r = subprocess.run([str(destdir / argv[0].lstrip("/")), "-n", "-c",
                        str(destdir / "etc/mxguard/mxguard.conf"), "-o", "run_as="],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    # The unit's sandbox is written for these paths.
    assert re.search(r"^state_dir = /var/lib/mxguard$", r.stdout, re.M), r.stdout
    assert re.search(r"^control_socket = /run/mxguard/control.sock$", r.stdout, re.M), r.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_unit_verifies(destdir, tmp_path):
    text = (destdir / UNIT).read_text()
    binary = _exec_start(text)[0]
    copy = tmp_path / "mxguard.service"
    copy.write_text(text.replace("ExecStart=" + binary, "ExecStart=%s/%s" % (
        destdir, binary.lstrip("/"))))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    bad = [l for l in r.stdout.splitlines()
           if re.search(r"Unknown (key|section|lvalue)|Failed to parse|[Ii]nvalid|not executable",
                        l)]
    assert not bad, r.stdout
    assert r.returncode == 0, r.stdout
