"""The control socket, through mxguardctl against a running daemon."""
import json
import socket
import subprocess

from mxgtest import mxguard_bin


def ctl(mx, *args):
    """Run mxguardctl (beside the mxguard under test) with mx's config."""
    bin_ = mxguard_bin().parent / "mxguardctl"
    p = subprocess.run([str(bin_), "-c", str(mx.config_file)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def greeting(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        data = b""
        while not data.endswith(b"\r\n") or data.count(b"\r\n") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.sendall(b"QUIT\r\n")
    return data.decode()


def test_status_counts_connections(mxguard):
    mx = mxguard(default_action="inspect")
    held = socket.create_connection(("127.0.0.1", mx.port), timeout=10)
    try:
        held.recv(4096)
        rc, out, err = ctl(mx, "status")
        assert rc == 0, err
        st = json.loads(out)
        assert st["pid"] == mx.pid
        assert st["connections"] == 1
        assert st["stages"]["dialogue"] == 1
        assert st["accepted"] >= 1
        assert st["stopping"] is False
    finally:
        held.close()


def test_ping(mxguard):
    mx = mxguard()
    rc, out, err = ctl(mx, "ping")
    assert rc == 0 and json.loads(out) == {"ok": True}, (out, err)


def test_reload_applies_and_refuses_a_broken_file(mxguard):
    mx = mxguard(default_action="inspect", myhostname="before.test")
    assert "220 before.test ESMTP" in greeting(mx.port)

    mx.params["myhostname"] = "after.test"
    mx.write_config()
    rc, out, err = ctl(mx, "reload")
    assert rc == 0 and json.loads(out) == {"ok": True}, (out, err)
    assert "220 after.test ESMTP" in greeting(mx.port)

    # A broken file: mxguardctl reads it too (to find the socket) and says
    # where it is broken; the daemon, told by SIGHUP, keeps what it runs.
    text = mx.config_file.read_text()
    mx.config_file.write_text(text + "smtp_timeout = soon\n")
    rc, out, err = ctl(mx, "reload")
    assert rc == 1
    line = len(text.splitlines()) + 1
    assert "mxguard.conf:%d: smtp_timeout: bad time 'soon'" % line in err, err
    mx.reload()
    mx.wait_for_log(r"reload failed, keeping the running configuration: .*mxguard\.conf:\d+: smtp_timeout")
    assert "220 after.test ESMTP" in greeting(mx.port)


def test_not_running_is_a_clear_error(mxguard):
    mx = mxguard(start=False)
    mx.write_config()
    rc, out, err = ctl(mx, "status")
    assert rc == 1
    assert "cannot reach mxguard" in err and "is it running?" in err
