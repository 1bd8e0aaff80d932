"""make install / make uninstall DESTDIR=...: every file lands under DESTDIR, the unit is
valid, and uninstall removes what install put but keeps a changed configuration and the state.

Writes only under its temporary directories (besides `make all` being a no-op
on an up-to-date build/); `deps-install` is skipped (-o deps-install) so no package manager
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
TMPFILES = "usr/lib/tmpfiles.d/mxguard.conf"


def _make(target, dest):
    r = subprocess.run(["make", "-C", str(REPO), "-o", "deps-install", target,
                        "DESTDIR=%s" % dest],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert r.returncode == 0, r.stdout
    return r.stdout


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    _make("install", dest)
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
    assert (destdir / TMPFILES).read_text() == (REPO / "etc/mxguard.tmpfiles").read_text()
    assert (destdir / "etc/mxguard/whitelist_clients.regexp").is_file()
    assert (destdir / "etc/mxguard/local_clients.regexp").is_file()


def _installed_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def test_uninstall_removes_what_install_put(tmp_path):
    """An untouched install: uninstall leaves no file, only the state directory (and says so)."""
    dest = tmp_path / "dest"
    dest.mkdir()
    _make("install", dest)
    assert (dest / "usr/local/sbin/mxguard").is_file()
    out = _make("uninstall", dest)
    assert _installed_files(dest) == [], _installed_files(dest)
    assert not (dest / "etc/mxguard").exists()
    assert (dest / "var/lib/mxguard").is_dir()
    assert "kept %s/var/lib/mxguard" % dest in out, out


def test_uninstall_keeps_changed_config(tmp_path):
    """A changed mxguard.conf stays, and uninstall says so; the shipped list goes."""
    dest = tmp_path / "dest"
    dest.mkdir()
    _make("install", dest)
    conf = dest / "etc/mxguard/mxguard.conf"
    conf.write_text(conf.read_text() + "\nbackend = 127.0.0.1:10026\n")
    changed = conf.read_text()
    out = _make("uninstall", dest)
    assert conf.read_text() == changed
    assert "kept %s (changed since install)" % conf in out, out
    assert _installed_files(dest) == ["etc/mxguard/mxguard.conf"], _installed_files(dest)
    assert (dest / "var/lib/mxguard").is_dir()


def test_install_never_asks_for_test_packages():
    """`make install` may install run-time (and build) packages, never the test set (an MTA,
    Redis, test tools): its prerequisites, as make would run them, name no test set."""
    r = subprocess.run(["make", "-C", str(REPO), "-n", "install"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    deps_lines = [l for l in r.stdout.splitlines() if "deps.sh" in l]
    assert deps_lines, r.stdout
    for line in deps_lines:
        words = line.split("deps.sh", 1)[1].split()
        assert words and not {"test"} & set(words), line
    assert "scripts/deps.sh run" in r.stdout, r.stdout


def test_unit_exec_start_points_at_installed_files(destdir):
    argv = _exec_start((destdir / UNIT).read_text())
    assert Path(argv[0]).is_absolute()
    assert (destdir / argv[0].lstrip("/")).is_file(), argv[0]
    assert argv[1:] == ["-c", "/etc/mxguard/mxguard.conf"]
    assert (destdir / argv[2].lstrip("/")).is_file()


def _under_destdir(conf, destdir):
    """-o overrides for the installed config's parameters that name files
    under /etc/mxguard: the same files, as installed under destdir (-n
    opens the lists, as the start does)."""
    lines, out = conf.read_text().splitlines(), []
    for i, line in enumerate(lines):
        m = re.match(r"^([a-z_]+)\s*=\s*(.*)$", line)
        if not m:
            continue
        value = [m.group(2)]
        for more in lines[i + 1:]:
            if not more[:1].isspace() or not more.strip():
                break
            value.append(more.strip())
        value = " ".join(value)
        if "/etc/mxguard/" in value:
            for path in re.findall(r"/etc/mxguard/[^\s,]+", value):
                assert (destdir / path.lstrip("/")).is_file(), "%s is not installed" % path
            out += ["-o", "%s=%s" % (m.group(1),
                                     value.replace("/etc/mxguard/", str(destdir) + "/etc/mxguard/"))]
    return out


def test_installed_config_checks(destdir):
    argv = _exec_start((destdir / UNIT).read_text())
    conf = destdir / "etc/mxguard/mxguard.conf"
    r = subprocess.run([str(destdir / argv[0].lstrip("/")), "-n", "-a", "-c", str(conf),
                        "-o", "run_as="] + _under_destdir(conf, destdir),
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


def _deps(tmp_path, *sets):
    """Run scripts/deps.sh SETS with dpkg-query saying nothing is installed and apt-get,
    debconf-set-selections, useradd recording their arguments instead of acting."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    for name in ("dpkg-query", "apt-get", "debconf-set-selections", "useradd", "sudo"):
        f = fake / name
        if name == "dpkg-query":
            f.write_text("#!/bin/sh\nexit 1\n")
        elif name == "sudo":
            f.write_text('#!/bin/sh\nexec "$@"\n')
        else:
            f.write_text('#!/bin/sh\necho "%s $*" >> "%s"\ncat >/dev/null </dev/null\n'
                         % (name, log))
        f.chmod(0o755)
    log.write_text("")
    env = dict(os.environ, PATH="%s:%s" % (fake, os.environ.get("PATH", "/usr/bin:/bin")))
    r = subprocess.run(["sh", str(REPO / "scripts/deps.sh")] + list(sets), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    installs = [l.split()[1:] for l in log.read_text().splitlines()
                if l.startswith("apt-get ") and " install " in l]
    assert len(installs) <= 1, installs
    pkgs = set(installs[0]) - {"install", "-y", "-qq", "--no-install-recommends"} if installs \
        else set()
    return r, pkgs, log.read_text()


TEST_ONLY = {"postfix", "redis-server", "swaks", "python3-pytest", "dnsmasq-base", "strace",
             "clang", "libfuzzer-14-dev"}
BUILD_ONLY = {"gcc", "meson", "ninja-build", "pkg-config", "libevent-dev", "debhelper",
              "dpkg-dev", "lintian"}


def test_deps_run_set_has_no_mta_compiler_or_test_tool(tmp_path):
    r, pkgs, calls = _deps(tmp_path, "run")
    assert r.returncode == 0, r.stdout
    assert {"libevent-core-2.1-7", "nftables", "tor-geoipdb", "publicsuffix"} <= pkgs, pkgs
    assert not pkgs & (TEST_ONLY | BUILD_ONLY), pkgs & (TEST_ONLY | BUILD_ONLY)
    # No Postfix preseed without the test set.
    assert "debconf-set-selections" not in calls, calls


def test_deps_sets_split_and_default_is_all(tmp_path):
    r, build, calls = _deps(tmp_path, "build")
    assert r.returncode == 0, r.stdout
    assert BUILD_ONLY <= build and not build & TEST_ONLY, build
    r, test, calls = _deps(tmp_path, "test")
    assert r.returncode == 0, r.stdout
    assert TEST_ONLY <= test and not test & BUILD_ONLY, test
    assert "debconf-set-selections" in calls, calls
    r, run, _ = _deps(tmp_path, "run")
    r, every, _ = _deps(tmp_path)
    assert r.returncode == 0, r.stdout
    assert every == run | build | test, every ^ (run | build | test)
    r, _, _ = _deps(tmp_path, "bogus")
    assert r.returncode == 2 and "usage" in r.stdout, r.stdout
