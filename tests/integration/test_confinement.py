"""Confinement of the network process: seccomp filter, Landlock, no exec.

After start-up the network process runs under a seccomp filter (Seccomp: 2
and NoNewPrivs: 1 in /proc/PID/status), notify_command is started by a
helper process forked before the filter (the network process itself never
execs), and where the kernel has Landlock a list file outside the
directories known at start cannot be read by a reload.
"""
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from mxgtest import control, wait_until

ASAN_SKIP = "seccomp and landlock skipped: an ASan build"


def status(pid):
    """/proc/PID/status as a dict of field -> value (tabs stripped)."""
    out = {}
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def children(pid):
    return [int(p) for p in Path("/proc/%d/task/%d/children" % (pid, pid)).read_text().split()]


def skip_if_asan(mx):
    if ASAN_SKIP in mx.log():
        print("skip reason: this build has AddressSanitizer, which the daemon does not confine")
        pytest.skip("AddressSanitizer build: the daemon logs that it is not confined")


def test_network_process_runs_under_seccomp_filter(mxguard):
    mx = mxguard()
    mx.wait_for_log(r"info: ready")
    skip_if_asan(mx)
    st = status(mx.pid)
    assert st["Seccomp"] == "2", st.get("Seccomp")
    assert st["NoNewPrivs"] == "1", st.get("NoNewPrivs")
    assert re.search(r"info: seccomp: filter loaded \(\d+ system calls allowed\)", mx.log())
    # Still serving under the filter: a client, a control request, a reload.
    with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as c:
        c.settimeout(10)
        assert c.recv(4096).startswith(b"220")
    assert control(mx, "ping") == {"ok": True}
    mx.reload()
    mx.wait_for_log(r"reloaded configuration")
    assert "seccomp: system call" not in mx.log(), mx.log()


def test_seccomp_no_leaves_the_process_unconfined(mxguard):
    mx = mxguard(seccomp="no")
    mx.wait_for_log(r"seccomp = no: the network process is not confined")
    st = status(mx.pid)
    assert st["Seccomp"] == "0", st.get("Seccomp")


def test_notify_command_runs_from_the_helper_not_the_network_process(mxguard, tmp_path):
    out = tmp_path / "ppid"
    script = tmp_path / "ppid.sh"
    script.write_text("#!/bin/sh\necho $PPID > %s.tmp && mv %s.tmp %s\n" % (out, out, out))
    script.chmod(0o755)
    mx = mxguard(notify_command=str(script), notify_interval="0")
    mx.wait_for_log(r"info: ready")
    skip_if_asan(mx)
    helpers = [p for p in children(mx.pid)
               if Path("/proc/%d/comm" % p).read_text().strip() == "mxguard-notify"]
    assert len(helpers) == 1, children(mx.pid)
    helper = helpers[0]
    # The helper may exec (it is not filtered); the network process may not.
    assert status(helper)["Seccomp"] == "0"
    assert status(mx.pid)["Seccomp"] == "2"
    assert control(mx, "notify-test") == {"ok": True}
    wait_until(out.exists, 15, what="the command's output")
    assert int(out.read_text()) == helper
    # A second notice: the helper keeps serving, the network process too.
    out.unlink()
    assert control(mx, "notify-test") == {"ok": True}
    wait_until(out.exists, 15, what="the second command's output")
    assert int(out.read_text()) == helper
    assert control(mx, "ping") == {"ok": True}
    assert "seccomp: system call" not in mx.log(), mx.log()


def _landlock_or_skip(mx):
    skip_if_asan(mx)
    log = mx.log()
    m = re.search(r"landlock: not supported by this kernel \(([^)]*)\)", log)
    if m:
        print("skip reason: kernel %s has no Landlock (%s)" % (os.uname().release, m.group(1)))
        pytest.skip("kernel without Landlock: %s" % m.group(1))
    assert re.search(r"info: landlock: ABI \d+, \d+ paths allowed", log), log


def test_landlock_refuses_a_list_outside_the_known_directories(mxguard, tmp_path):
    mx = mxguard()
    mx.wait_for_log(r"info: ready")
    _landlock_or_skip(mx)
    # In a directory known at start (the one of the default client list): loads.
    inside = tmp_path / "inside.cidr"
    inside.write_text("127.0.0.0/8 OK\n")
    mx.set(client_lists="cidr:%s" % inside)
    mx.reload()
    mx.wait_for_log(r"reloaded configuration")
    outside_dir = tempfile.mkdtemp(prefix="mxguard-landlock-")
    try:
        outside = Path(outside_dir) / "outside.cidr"
        outside.write_text("127.0.0.0/8 OK\n")
        os.chmod(outside_dir, 0o755)
        mx.set(client_lists="cidr:%s" % outside)
        mx.reload()
        m = mx.wait_for_log(r"reload failed, keeping the running configuration: (.*)")
        assert str(outside) in m.group(1), m.group(0)
        assert "Permission denied" in m.group(1), m.group(0)
        # The daemon goes on with the list it had.
        assert control(mx, "ping") == {"ok": True}
        with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as c:
            c.settimeout(10)
            assert c.recv(4096).startswith(b"220")
    finally:
        shutil.rmtree(outside_dir, ignore_errors=True)


def test_without_confinement_the_same_list_loads(mxguard, tmp_path):
    """The control for the test above: the refusal is Landlock's, not the file's."""
    mx = mxguard(seccomp="no")
    mx.wait_for_log(r"info: ready")
    outside_dir = tempfile.mkdtemp(prefix="mxguard-landlock-")
    try:
        outside = Path(outside_dir) / "outside.cidr"
        outside.write_text("127.0.0.0/8 OK\n")
        os.chmod(outside_dir, 0o755)
        mx.set(client_lists="cidr:%s" % outside)
        mx.reload()
        mx.wait_for_log(r"reloaded configuration")
    finally:
        shutil.rmtree(outside_dir, ignore_errors=True)
