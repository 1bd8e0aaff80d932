"""Notices to the admin (notify.c): mail through a real SMTP server, the
rate limit per kind, notify_command without a shell, and failures that are
logged without hurting the daemon.

The SMTP server is Postfix's smtp-sink, which dumps every transaction into a
file of its own (envelope as X-Helo-Args/X-Mail-Args/X-Rcpt-Args lines, then
the message, dot-unstuffed, with LF line ends); one test uses the session
Postfix backend instead, with the PROXY v2 LOCAL header mxguard must send.
Notices are triggered with the control socket verb notify-test."""
import email
import email.policy
import email.utils
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mxgtest import control, free_port, is_listening, unused_port, wait_until

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
ADMIN = "admin@example.test"


class Sink:
    """smtp-sink on a free loopback port, one dump file per transaction."""

    def __init__(self, *options):
        if not os.access(SMTP_SINK, os.X_OK):
            pytest.skip("smtp-sink (Debian package postfix) is not installed")
        # Its own directory under /tmp: smtp-sink drops to nobody when run as
        # root, and pytest's tmp_path is not reachable for nobody.
        self.dir = Path(tempfile.mkdtemp(prefix="mxg-sink-", dir="/tmp"))
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        cmd = [SMTP_SINK, "-h", "sink.test", "-d", str(self.dir) + "/%M."]
        if os.geteuid() == 0:
            cmd += ["-u", "nobody"]
        cmd += list(options) + ["127.0.0.1:%d" % self.port, "10"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: is_listening(self.port) or self.proc.poll() is not None, 10,
                   what="smtp-sink listening")
        if self.proc.poll() is not None:
            raise AssertionError("smtp-sink exited: %s" % self.proc.stderr.read().decode())

    @property
    def relay(self):
        return "127.0.0.1:%d" % self.port

    def files(self):
        return sorted((p for p in self.dir.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)

    def wait_files(self, count, timeout=15):
        """At least count dump files, each complete: smtp-sink writes a dump
        while the transaction runs, so a file is taken once it is not empty
        and has not changed for 0.3 s."""
        def done():
            f = self.files()
            now = time.time()
            if len(f) < count or any(p.stat().st_size == 0 or now - p.stat().st_mtime < 0.3
                                     for p in f):
                return None
            return f
        return wait_until(done, timeout, what="%d mails in smtp-sink" % count)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sink():
    started = []

    def factory(*options):
        s = Sink(*options)
        started.append(s)
        return s

    yield factory
    for s in started:
        s.stop()


def read_dump(path):
    """(envelope dict, message) of one smtp-sink dump file."""
    raw = Path(path).read_bytes()
    env = {}
    lines = raw.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"X-") and lines[i].split(b":")[0] in (
            b"X-Client-Addr", b"X-Client-Proto", b"X-Helo-Args", b"X-Mail-Args", b"X-Rcpt-Args"):
        k, v = lines[i].decode().split(":", 1)
        env.setdefault(k, []).append(v.strip())
        i += 1
    msg = email.message_from_bytes(b"\n".join(lines[i:]), policy=email.policy.default)
    return env, msg


def notice_lines(mx, kind="test"):
    return [l for l in mx.log().splitlines() if " notice kind=%s " % kind in l]


def test_mail_headers_and_body(mxguard, sink):
    s = sink()
    mx = mxguard(notify_recipient=ADMIN, notify_relay=s.relay)
    # 990 characters, then a dot: the line is broken before RFC 5322's 998
    # and the continuation starts with the dot, which must be stuffed.
    text = "x" * 990 + ".tail of a long line"
    assert control(mx, "notify-test " + text) == {"ok": True}
    env, msg = read_dump(s.wait_files(1)[0])

    assert env["X-Client-Proto"] == ["ESMTP"]
    assert env["X-Helo-Args"] == ["mxguard.test"]
    assert env["X-Mail-Args"] == ["<mxguard@mxguard.test>"]
    assert env["X-Rcpt-Args"] == ["<%s>" % ADMIN]
    assert msg["From"] == "mxguard@mxguard.test"
    assert msg["To"] == ADMIN
    assert msg["Subject"] == "mxguard test notice from mxguard.test"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Mxguard-Event"] == "test"
    sent = email.utils.parsedate_to_datetime(msg["Date"])
    assert sent.tzinfo is not None and abs(time.time() - sent.timestamp()) < 60, msg["Date"]
    assert re.fullmatch(r"<[0-9.]+@mxguard\.test>", msg["Message-ID"]), msg["Message-ID"]
    body = msg.get_content()
    assert "This is a test notice" in body
    lines = body.split("\n")
    assert "TEXT: " + "x" * 990 in lines, body
    assert ".tail of a long line" in lines, body
    assert all(len(l) <= 998 for l in lines)

    # Logged at once as one line, and the delivery with the Message-ID.
    (line,) = notice_lines(mx)
    assert 'subject="mxguard test notice from mxguard.test"' in line
    assert " TEXT=xxxx" in line and " out=mail" in line
    m = mx.wait_for_log(r"notice mail sent: kind=test relay=%s recipients=1 message_id=(\S+)"
                        % re.escape(s.relay))
    assert m.group(1) == msg["Message-ID"]


def test_interval_holds_back_and_reports(mxguard, sink):
    s = sink()
    mx = mxguard(notify_recipient=ADMIN, notify_relay=s.relay, notify_interval="2s")
    t0 = time.monotonic()
    assert control(mx, "notify-test first") == {"ok": True}
    assert control(mx, "notify-test second") == {"ok": True}
    s.wait_files(1)
    # The second notice is logged, but held back: no second mail.
    wait_until(lambda: len(notice_lines(mx)) == 2, 5, what="two notice lines")
    assert " TEXT=second out=held" in notice_lines(mx)[1]
    time.sleep(max(0.0, t0 + 2.3 - time.monotonic()))
    assert len(s.files()) == 1, "the held-back notice was mailed"

    assert control(mx, "notify-test third") == {"ok": True}
    files = s.wait_files(2)
    assert len(files) == 2
    _, msg = read_dump(files[1])
    body = msg.get_content()
    assert "TEXT: third" in body
    assert "1 similar notice was held back since" in body, body
    assert "held_back=1" in notice_lines(mx)[2]
    # Nothing more: the count was reset by the mail that reported it.
    time.sleep(0.5)
    assert len(s.files()) == 2


SCRIPT = """#!/usr/bin/python3
import json, os, sys
out = sys.argv[1]
data = {"argv": sys.argv[1:], "env": dict(os.environ),
        "stdin": os.readlink("/proc/self/fd/0"), "ppid": os.getppid()}
with open(out + ".tmp", "w") as f:
    json.dump(data, f)
os.rename(out + ".tmp", out)
"""


def zombies_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = Path("/proc/%s/status" % d).read_text()
        except OSError:
            continue
        if re.search(r"^PPid:\s*%d$" % pid, st, re.M) and re.search(r"^State:\s*Z", st, re.M):
            out.append(int(d))
    return out


def test_command_gets_environment_without_shell(mxguard, tmp_path):
    script = tmp_path / "record.py"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    out = tmp_path / "env.json"
    touched = tmp_path / "touched"
    # With a shell, ';' would end the command and $(touch ...) would run.
    mx = mxguard(notify_command="%s %s a;b $(touch %s) 'q'" % (script, out, touched))
    text = "hello $(touch %s); `id` \"quoted\"" % touched
    assert control(mx, "notify-test " + text) == {"ok": True}
    wait_until(out.exists, 15, what="the command's output")
    data = json.loads(out.read_text())

    assert data["argv"] == [str(out), "a;b", "$(touch", "%s)" % touched, "'q'"]
    assert not touched.exists()
    env = data["env"]
    assert env["MXG_EVENT"] == "test"
    assert env["MXG_SUBJECT"] == "mxguard test notice from mxguard.test"
    assert env["MXG_HOST"] == "mxguard.test"
    assert env["MXG_TEXT"] == text
    assert env["MXG_HELD"] == "0"
    assert data["stdin"] == "/dev/null"
    # Started by the command helper, the network process's child: the
    # network process itself may not exec (seccomp).
    helper = data["ppid"]
    assert helper != mx.pid
    status = Path("/proc/%d/status" % helper).read_text()
    assert re.search(r"^PPid:\s*%d$" % mx.pid, status, re.M), status
    assert re.search(r"^Name:\s*mxguard-notify$", status, re.M), status
    # Without notify_recipient: no mail, only the log and the command.
    assert " out=command" in notice_lines(mx)[0]
    # The child is reaped by the helper: no zombie stays behind.
    wait_until(lambda: not zombies_of(helper) and not zombies_of(mx.pid), 10,
               what="the command reaped")
    assert control(mx, "ping") == {"ok": True}


def test_command_failures_are_logged(mxguard, tmp_path):
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    mx = mxguard(notify_command=str(script), notify_interval="0")
    assert control(mx, "notify-test") == {"ok": True}
    mx.wait_for_log(r"notify_command for test exited with status 3")
    wait_until(lambda: not zombies_of(mx.pid), 10, what="the command reaped")

    missing = tmp_path / "no-such-program"
    mx.set(notify_command=str(missing))
    mx.reload()
    mx.wait_for_log(r"reloaded configuration")
    assert control(mx, "notify-test") == {"ok": True}
    mx.wait_for_log(r"notify_command for test: cannot run %s: No such file or directory"
                    % re.escape(str(missing)))
    assert control(mx, "ping") == {"ok": True}


def test_refused_relay_is_logged_and_daemon_serves(mxguard):
    port = unused_port()
    mx = mxguard(notify_recipient=ADMIN, notify_relay="127.0.0.1:%d" % port)
    assert control(mx, "notify-test") == {"ok": True}
    m = mx.wait_for_log(r"notice mail failed: kind=test relay=127\.0\.0\.1:%d "
                        r"stage=connect/greeting reply=\"([^\"]*)\"; one retry in 60s" % port)
    assert "refused" in m.group(1).lower(), m.group(0)
    assert control(mx, "ping") == {"ok": True}
    with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as c:
        c.settimeout(10)
        assert c.recv(4096).startswith(b"220")
    assert mx.alive()


def test_refused_recipient_logs_stage_and_reply(mxguard, sink):
    # 4xx to RCPT: the stage and the server's reply are in the log.
    s = sink("-r", "RCPT")
    mx = mxguard(notify_recipient=ADMIN, notify_relay=s.relay)
    assert control(mx, "notify-test") == {"ok": True}
    mx.wait_for_log(r"notice mail failed: kind=test relay=%s stage=RCPT TO reply=\"4\d\d [^\"]*\"; "
                    r"one retry in 60s" % re.escape(s.relay))
    assert not s.files()


def test_helo_fallback(mxguard, sink):
    # A server that refuses EHLO (5xx) gets HELO.
    s = sink("-f", "EHLO")
    mx = mxguard(notify_recipient=ADMIN, notify_relay=s.relay)
    assert control(mx, "notify-test") == {"ok": True}
    env, msg = read_dump(s.wait_files(1)[0])
    assert env["X-Client-Proto"] == ["SMTP"]
    assert env["X-Helo-Args"] == ["mxguard.test"]
    assert msg["X-Mxguard-Event"] == "test"


def test_mail_through_backend_with_proxy_v2(mxguard, postfix):
    # notify_relay empty: the backend, which expects a PROXY v2 header first.
    mx = mxguard(notify_recipient="notices@example.test", backend=postfix.backend_for("proxy2"),
                 backend_protocol="proxy2")
    assert control(mx, "notify-test through the backend") == {"ok": True}
    m = mx.wait_for_log(r"notice mail sent: kind=test relay=\S+ recipients=1 message_id=(\S+)")
    headers, body = postfix.wait_for_message(m.group(1))
    assert b"TEXT: through the backend" in body
    assert b"X-Mxguard-Event: test" in headers
