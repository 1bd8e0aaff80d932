"""Privileges: started as root, mxguard binds, then serves as run_as."""
import os
import pwd
import shutil
import socket
import stat
import tempfile

import pytest

from conftest import MxguardStartError, free_port


def _ids(pid):
    """Real, effective, saved and filesystem uids and gids of a process."""
    uids = gids = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uids = [int(x) for x in line.split()[1:]]
            elif line.startswith("Gid:"):
                gids = [int(x) for x in line.split()[1:]]
    return uids, gids


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test the privilege drop")
def test_drops_to_run_as_after_binding(mxguard, tmp_path):
    try:
        pw = pwd.getpwnam("mxguard")
    except KeyError:
        pytest.skip("system user mxguard missing: make deps creates it")
    # Nothing listens on the backend: the client must still be greeted, by
    # the unprivileged process, with a 4xx. The unprivileged user must reach its state (opened after the drop) but
    # cannot enter pytest's private tmp dir: a world-traversable one, and no
    # client lists (read after the drop too, as on every later reload).
    top = tempfile.mkdtemp(prefix="mxguard-priv-")
    os.chmod(top, 0o755)
    state = os.path.join(top, "state")
    mx = None
    try:
        mx = mxguard(run_as="mxguard", backend="127.0.0.1:%d" % free_port(),
                     backend_timeout="2s", client_lists="", state_dir=state)
        _check_dropped(mx, pw)
    finally:
        if mx is not None:
            mx.stop()
        shutil.rmtree(top, ignore_errors=True)


def _check_dropped(mx, pw):
    mx.wait_for_log(r"info: ready")
    uids, gids = _ids(mx.pid)
    assert uids == [pw.pw_uid] * 4, uids
    assert gids == [pw.pw_gid] * 4, gids
    state = os.stat(mx.params["state_dir"])
    assert (state.st_uid, state.st_gid) == (pw.pw_uid, pw.pw_gid)
    store = os.stat(os.path.join(mx.params["state_dir"], "store.lmdb"))
    assert store.st_uid == pw.pw_uid
    with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as s:
        s.settimeout(10)
        data = b""
        while b"\n421 " not in data and not data.startswith(b"421 "):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"220-mxguard.test ESMTP"), data
    assert b"\r\n421 4.3.2 " in data, data



def _mxguard_user():
    try:
        return pwd.getpwnam("mxguard")
    except KeyError:
        pytest.skip("system user mxguard missing: make deps creates it")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test directory ownership")
def test_existing_shared_socket_dir_is_not_chowned(mxguard):
    """A root-owned 1777 directory holding the control socket stays root:root 1777:
    mxguard hands over to run_as only the directories it creates itself."""
    pw = _mxguard_user()
    top = tempfile.mkdtemp(prefix="mxguard-priv-")
    os.chmod(top, 0o755)
    shared = os.path.join(top, "shared")
    os.mkdir(shared)
    os.chmod(shared, 0o1777)
    mx = None
    try:
        mx = mxguard(run_as="mxguard", backend="127.0.0.1:%d" % free_port(),
                     backend_timeout="2s", client_lists="",
                     state_dir=os.path.join(top, "state"),
                     control_socket=os.path.join(shared, "control.sock"))
        mx.wait_for_log(r"info: ready")
        st = os.stat(shared)
        assert (st.st_uid, st.st_gid) == (0, 0), (st.st_uid, st.st_gid)
        assert stat.S_IMODE(st.st_mode) == 0o1777, oct(st.st_mode)
        # The socket itself is run_as's (bound with its filesystem ids).
        sock = os.stat(os.path.join(shared, "control.sock"))
        assert stat.S_ISSOCK(sock.st_mode)
        assert sock.st_uid == pw.pw_uid
        # The state directory it created is handed over, as before.
        state = os.stat(os.path.join(top, "state"))
        assert (state.st_uid, state.st_gid) == (pw.pw_uid, pw.pw_gid)
    finally:
        if mx is not None:
            mx.stop()
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test directory ownership")
def test_existing_state_dir_not_writable_is_a_clear_startup_error(mxguard):
    """An existing root-owned 0755 state_dir is not chowned: mxguard stops at start and says
    run_as cannot write it."""
    pw = _mxguard_user()
    top = tempfile.mkdtemp(prefix="mxguard-priv-")
    os.chmod(top, 0o755)
    state = os.path.join(top, "state")
    os.mkdir(state)
    os.chmod(state, 0o755)
    mx = None
    try:
        mx = mxguard(start=False, run_as="mxguard", backend="127.0.0.1:%d" % free_port(),
                     backend_timeout="2s", client_lists="", state_dir=state)
        try:
            mx.start()
        except MxguardStartError:
            pass
        rc = mx.proc.wait(timeout=15)
        assert rc != 0
        assert "fatal: %s: not writable by uid %d (run_as)" % (state, pw.pw_uid) in mx.log(), mx.log()
        st = os.stat(state)
        assert (st.st_uid, st.st_gid) == (0, 0), (st.st_uid, st.st_gid)
        assert stat.S_IMODE(st.st_mode) == 0o755
    finally:
        if mx is not None and mx.proc is not None and mx.proc.poll() is None:
            mx.stop()
        shutil.rmtree(top, ignore_errors=True)
