"""Readiness for systemd (Type=notify): READY=1 once listening with
privileges dropped, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM,
through a real notification socket as systemd provides it."""
import signal
import socket
import time

import pytest


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    # mxguard inherits the environment of the test process (conftest).
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield s
    s.close()


def messages(sock, until, timeout=10):
    """Notifications received until one contains `until` (bounded)."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if until in got[-1]:
            return got
    raise AssertionError("no %r among %r" % (until, got))


def test_ready_reloading_stopping(mxguard, notify_socket):
    mx = mxguard()
    got = messages(notify_socket, "READY=1")
    # Ready only once it serves: the port answers by now.
    with socket.create_connection(("127.0.0.1", mx.port), timeout=5):
        pass
    mx.proc.send_signal(signal.SIGHUP)
    got = messages(notify_socket, "READY=1")
    assert any("RELOADING=1" in m for m in got), got
    mx.proc.send_signal(signal.SIGTERM)
    got = messages(notify_socket, "STOPPING=1")
    assert mx.proc.wait(10) == 0
