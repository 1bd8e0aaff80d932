"""Where mxguard's lines go: the journal (log_target = journal, and stderr
that is systemd's journal stream) and syslog.

This machine may run no journald and have no /dev/log, so each test runs
mxguard inside a mount namespace it creates (unshare -m): a tmpfs on /run
with a private systemd-journald whose journal files land in the test's
directory (read back with journalctl -D), or a tmpfs on /dev whose /dev/log
is a datagram socket bound by the test. Nothing outside the namespace
changes. Without unshare, mount rights or systemd-journald the tests skip
and say why.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from mxgtest import is_listening, mxguard_bin, next_client_ip, wait_until

JOURNALD = "/lib/systemd/systemd-journald"

# The namespace: $1 journal dir, $2 socket for /dev/log or "-", $3 pid file,
# then the command. The command runs in the background so that journald
# can be stopped (and its files closed) after it.
NS_SCRIPT = r"""
set -e
jdir=$1; devlog=$2; pidfile=$3; shift 3
mount -t tmpfs tmpfs /run
mkdir -p /run/log/journal /run/systemd/journal
mount --bind "$jdir" /run/log/journal
if [ "$devlog" != - ]; then
    old=$jdir/../olddev; mkdir -p "$old"
    mount --rbind /dev "$old"
    mount -t tmpfs tmpfs /dev
    for n in null zero full random urandom; do
        touch /dev/$n; mount --bind "$old/$n" /dev/$n
    done
    touch /dev/log; mount --bind "$devlog" /dev/log
fi
@JOURNALD@ >/dev/null 2>&1 &
jp=$!
i=0
while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
set +e
"$@" &
echo $! > "$pidfile"
wait $!
rc=$?
kill $jp; wait $jp
exit $rc
"""


def _need_namespace():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    if not os.access(JOURNALD, os.X_OK) or shutil.which("journalctl") is None:
        pytest.skip("needs %s and journalctl (Debian package systemd)" % JOURNALD)
    p = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /run"],
                       stderr=subprocess.PIPE, timeout=10)
    if p.returncode != 0:
        pytest.skip("cannot mount in a new mount namespace: %s" % p.stderr.decode().strip())


class NsRun:
    """mxguard (or a wrapper around it) inside the namespace."""

    def __init__(self, tmp, cmd, devlog="-"):
        self.jdir = tmp / "journal"
        self.jdir.mkdir()
        self.pidfile = tmp / "inner.pid"
        script = tmp / "ns.sh"
        script.write_text(NS_SCRIPT.replace("@JOURNALD@", JOURNALD))
        self.out = open(tmp / "ns.out", "wb")
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh",
                                      str(script), str(self.jdir), str(devlog),
                                      str(self.pidfile)] + cmd,
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT)

    def stop(self, timeout=15):
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            pass
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.out.close()

    def entries(self, ident="mxguard"):
        p = subprocess.run(["journalctl", "-D", str(self.jdir), "-o", "json", "--no-pager",
                            "--identifier=" + ident], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        return [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]


def _session(port, helo):
    """EHLO with a name holding spaces, then QUIT: a close line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(next_client_ip(), 0)) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"EHLO " + helo + b"\r\n")
        while True:
            line = f.readline()
            if not line or line[3:4] != b"-":
                break
        s.sendall(b"QUIT\r\n")
        f.readline()


def _start(mxguard, tmp_path, wrap=None, devlog="-", **params):
    _need_namespace()
    # listen_backlog above the kernel's somaxconn: a warning at start.
    params.setdefault("default_action", "inspect")  # mxguard itself answers EHLO
    mx = mxguard(start=False, listen_backlog=65535, **params)
    mx.write_config()
    cmd = [str(mxguard_bin()), "-c", str(mx.config_file)]
    run = NsRun(tmp_path, wrap(cmd) if wrap else cmd, devlog)
    try:
        wait_until(lambda: is_listening(mx.port) or run.proc.poll() is not None, 15,
                   what="mxguard listening in the namespace")
    except Exception:
        run.stop()
        raise
    assert run.proc.poll() is None, (tmp_path / "ns.out").read_text()
    return mx, run


def _check_journal(entries, port):
    by_msg = {e["MESSAGE"]: e for e in entries}
    close = [e for e in entries if e["MESSAGE"].startswith("close client=")]
    assert len(close) == 1, entries
    c = close[0]
    assert c["PRIORITY"] == "6" and c["SYSLOG_FACILITY"] == "2"
    assert c["LISTENER"] and c["END"] and c["ACTION"] and "CODE_FILE" not in c
    assert c["CLIENT"].startswith("127.") and c["CLIENT"] in c["MESSAGE"]
    # The quoted helo= is one field, spaces and all, without its quotes.
    assert c.get("HELO") == "two words=x", c["MESSAGE"]
    # No second timestamp: the line is the message alone, no "info:".
    assert not c["MESSAGE"][:4].isdigit() and not c["MESSAGE"].startswith("info:")
    warn = [e for e in entries if e["MESSAGE"].startswith("warning: listen_backlog")]
    assert warn and warn[0]["PRIORITY"] == "4", by_msg.keys()


def test_journal_target_priorities_and_fields(mxguard, tmp_path):
    mx, run = _start(mxguard, tmp_path, log_target="journal")
    try:
        _session(mx.port, b"two words=x")
        time.sleep(0.3)
    finally:
        assert run.stop() == 0, (tmp_path / "ns.out").read_text()
    entries = run.entries()
    _check_journal(entries, mx.port)
    assert all(e.get("_TRANSPORT") == "journal" for e in entries)
    # Nothing went to stderr instead.
    assert b"close client=" not in (tmp_path / "ns.out").read_bytes()


def test_journal_stream_detected(mxguard, tmp_path):
    """log_target = stderr, but stderr is the journal stream systemd would
    give a unit (JOURNAL_STREAM = its device:inode): entries, not text."""
    def wrap(cmd):
        return ["systemd-cat", "-t", "mxg-stream", "sh", "-c",
                'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"', "sh"] + cmd
    mx, run = _start(mxguard, tmp_path, wrap=wrap, log_target="stderr")
    try:
        _session(mx.port, b"two words=x")
        time.sleep(0.3)
    finally:
        run.stop()
    _check_journal(run.entries(), mx.port)
    # The stream itself carries no mxguard line at priority info.
    assert not [e for e in run.entries("mxg-stream") if "close client=" in e["MESSAGE"]]


def test_journal_fatal_priority(mxguard, tmp_path):
    _need_namespace()
    mx = mxguard(start=False, log_target="journal", run_as="nosuchuser-journal")
    mx.write_config()
    run = NsRun(tmp_path, [str(mxguard_bin()), "-c", str(mx.config_file)])
    assert run.stop(timeout=20) == 1
    fatal = [e for e in run.entries() if e["MESSAGE"].startswith("fatal: run_as")]
    assert fatal and fatal[0]["PRIORITY"] == "2", run.entries()


def test_syslog_like_postfix(mxguard, tmp_path):
    """log_target = syslog: facility mail (PRI 22 for info = 2*8+6), no
    "info:" prefix; warnings keep "warning:" (PRI 20)."""
    path = tmp_path / "devlog.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    os.chmod(path, 0o666)
    sock.settimeout(0.5)
    mx, run = _start(mxguard, tmp_path, devlog=path, log_target="syslog")
    try:
        _session(mx.port, b"two words=x")
        got = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(b"close client=" in g for g in got):
            try:
                got.append(sock.recv(4096))
            except socket.timeout:
                pass
    finally:
        run.stop()
        sock.close()
    close = [g for g in got if b"close client=" in g]
    assert close, got
    assert close[0].startswith(b"<22>"), close[0]
    assert b"]: close client=" in close[0] and b"info:" not in close[0]
    warn = [g for g in got if b"listen_backlog" in g]
    assert warn and warn[0].startswith(b"<20>") and b"]: warning: listen_backlog" in warn[0], got
