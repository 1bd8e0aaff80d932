"""The control socket, through mxguardctl against a running daemon: every
command round-trips, every --json output parses, and the errors (no
daemon, no permission, bad commands) are clear and have their exit codes
(0 ok, 1 refused, 2 usage, 3 not running, 4 permission)."""
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import termios
import time
from pathlib import Path

import pytest

from mxgtest import RawSMTP, mxguard_bin
from test_targrey import BOT, CLEAN, NOPTR, drop_out_of_tarpit, engine, to_rcpt

KINDS = ["tarpit", "grey", "awl", "white", "block"]
REFUSALS = ["overload", "blocked", "static", "bogus", "country", "conn_source",
            "conn_prefix", "rate_source", "rate_prefix", "attack"]
VERDICTS = ["clean", "suspect", "white", "black"]


def ctl_bin():
    return mxguard_bin().parent / "mxguardctl"


def ctl(mx, *args, **kw):
    """Run mxguardctl (beside the mxguard under test) with mx's config."""
    p = subprocess.run([str(ctl_bin()), "-c", str(mx.config_file)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, **kw)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def strict_object(pairs):
    """json.loads hook: a member name twice in one object is an error
    (several modules write members of status)."""
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), "duplicate member in %s" % keys
    return dict(pairs)


def ctl_json(mx, *args):
    """Run with --json: stdout must be one JSON object whatever happened."""
    rc, out, err = ctl(mx, "--json", *args)
    assert out.count("\n") == 1, (args, out, err)
    return rc, json.loads(out, object_pairs_hook=strict_object)


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


def raw_request(mx, line):
    """One request on the control socket itself, without mxguardctl."""
    path = mx.params.get("control_socket") or str(mx.workdir / "state" / "control.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def test_status_counts_connections(mxguard):
    mx = mxguard(default_action="inspect")
    held = socket.create_connection(("127.0.0.1", mx.port), timeout=10)
    try:
        held.recv(4096)
        # Piped without options: the JSON of earlier versions.
        rc, out, err = ctl(mx, "status")
        assert rc == 0, err
        st = json.loads(out)
        assert st["pid"] == mx.pid
        assert st["connections"] == 1
        assert st["stages"]["dialogue"] == 1
        assert st["accepted"] >= 1
        assert st["stopping"] is False
        rc, st2 = ctl_json(mx, "status")
        assert rc == 0
        assert st2["listeners"] == {"127.0.0.1:%d" % mx.port: 1}
        assert st2["held"] == 0
        assert sorted(st2["refusals"]) == sorted(REFUSALS)
        assert sorted(st2["verdicts"]) == sorted(VERDICTS)
        assert st2["store"]["backend"] == "lmdb"
        assert sorted(st2["store"]["records"]) == sorted(KINDS)
        # The table: one row per value, sections indented.
        rc, out, err = ctl(mx, "status", "--table")
        assert rc == 0, err
        rows = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.strip()}
        assert rows["pid"] == [str(mx.pid)]
        assert rows["connections"] == ["1"]
        assert rows["127.0.0.1:%d" % mx.port] == ["1"]
        assert rows["backend"] == ["lmdb"]
        assert rows["stopping"] == ["no"]
        assert rows["uptime"][0].count(":") == 2
        for name in REFUSALS:
            assert rows[name] == ["0"], (name, out)
        assert "{" not in out
    finally:
        held.close()


def test_status_refusal_counts_move(mxguard):
    # max_connections = 1: the second client is refused for overload.
    mx = mxguard(default_action="inspect", max_connections="1")
    first = socket.create_connection(("127.0.0.1", mx.port), timeout=10)
    try:
        first.recv(4096)
        with socket.create_connection(("127.0.0.1", mx.port), timeout=10) as second:
            second.settimeout(10)
            second.recv(4096)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rc, st = ctl_json(mx, "status")
            if st["refusals"]["overload"] >= 1:
                break
            time.sleep(0.1)
        assert st["refusals"]["overload"] == 1, st
        assert st["refused"] >= 1
    finally:
        first.close()


def test_ping(mxguard):
    mx = mxguard()
    rc, out, err = ctl(mx, "ping")
    assert rc == 0 and json.loads(out) == {"ok": True}, (out, err)
    assert ctl_json(mx, "ping") == (0, {"ok": True})


def test_reload_applies_and_refuses_a_broken_file(mxguard):
    mx = mxguard(default_action="inspect", myhostname="before.test")
    assert "220 before.test ESMTP" in greeting(mx.port)

    mx.params["myhostname"] = "after.test"
    mx.write_config()
    rc, out, err = ctl(mx, "reload")
    assert rc == 0 and json.loads(out) == {"ok": True}, (out, err)
    assert "220 after.test ESMTP" in greeting(mx.port)
    assert ctl_json(mx, "reload") == (0, {"ok": True})

    # A broken file: mxguardctl reads it too (to find the socket) and says
    # where it is broken; the daemon, told by SIGHUP, keeps what it runs.
    text = mx.config_file.read_text()
    mx.config_file.write_text(text + "smtp_timeout = soon\n")
    rc, out, err = ctl(mx, "reload")
    assert rc == 1
    line = len(text.splitlines()) + 1
    assert "mxguard.conf:%d: smtp_timeout: bad time 'soon'" % line in err, err
    rc, answer = ctl_json(mx, "reload")
    assert rc == 1 and "smtp_timeout: bad time 'soon'" in answer["error"]
    # With -s the configuration is not read: the daemon reloads, and
    # answers that the file is broken.
    sock = str(mx.workdir / "state" / "control.sock")
    p = subprocess.run([str(ctl_bin()), "-s", sock, "--json", "reload"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    answer = json.loads(p.stdout)
    assert p.returncode == 1 and answer["ok"] is False, (p.stdout, p.stderr)
    assert "smtp_timeout" in answer["error"]
    mx.reload()
    mx.wait_for_log(r"reload failed, keeping the running configuration: .*mxguard\.conf:\d+: smtp_timeout")
    assert "220 after.test ESMTP" in greeting(mx.port)


def test_top_shows_holds_oldest_first_and_recent_verdicts(mxguard, postfix):
    mx = engine(mxguard, postfix, tarpit_delay="20s")
    c, r, took = to_rcpt(mx, CLEAN)          # clean: passes at once
    assert r.code == 250, r
    c.close()
    held = []
    try:
        for source in (BOT, NOPTR):            # both suspect: held
            h = RawSMTP(mx.port, source_ip=source, timeout=10)
            assert h.read_reply(strict=False).code == 220
            assert h.cmd("EHLO bot.test").code == 250
            assert h.cmd("MAIL FROM:<a@b.test>").code == 250
            h.send("RCPT TO:<user@example.test>\r\n")
            held.append(h)
            mx.wait_for_log(r"tarpit start client=%s" % source.replace(".", r"\."))
            time.sleep(1.1)
        rc, snap = ctl_json(mx, "top")
        assert rc == 0 and snap["ok"] is True
        assert snap["held"] == 2 and snap["stages"]["tarpit"] == 2
        assert [h["client"] for h in snap["holds"]] == [BOT, NOPTR]
        assert snap["holds"][0]["name"] == "a1-2-3.dyn.example.test"
        assert snap["holds"][1]["name"] == "unknown"
        assert snap["holds"][0]["age"] > snap["holds"][1]["age"] >= 1.0
        recent = [(v["client"], v["verdict"]) for v in snap["recent"]]
        assert recent == [(NOPTR, "suspect"), (BOT, "suspect"), (CLEAN, "clean")], recent
        assert snap["recent"][2]["reason"] == "s25r:none"
        assert snap["recent"][1]["reason"] == "s25r:r1"
        assert snap["verdicts"]["suspect"] == 2 and snap["verdicts"]["clean"] == 1
        assert sorted(snap["refusals"]) == sorted(REFUSALS)

        t0 = time.monotonic()
        rc, out, err = ctl(mx, "top", "--once")
        assert rc == 0, err
        assert time.monotonic() - t0 >= 1.0    # two snapshots, for the rates
        assert "\033" not in out
        lines = out.splitlines()
        assert lines[0].startswith("mxguard top")
        hold_rows = [l for l in lines if l.startswith(BOT + " ") or l.startswith(NOPTR + " ")]
        assert [l.split()[0] for l in hold_rows] == [BOT, NOPTR], out
        assert hold_rows[0].split()[2] == "a1-2-3.dyn.example.test"
        for name in REFUSALS:
            row = [l for l in lines if l.split()[:1] == [name]]
            assert row and row[0].split()[1:] == ["0", "0.0"], (name, out)
        assert any(l.split()[1:4] == [CLEAN, "clean", "mx1.relay.example.test"]
                   for l in lines if len(l.split()) > 3), out
    finally:
        for h in held:
            h.close()


def records(mx, kind):
    rc, answer = ctl_json(mx, "list", kind)
    assert rc == 0 and answer["ok"] is True and answer["kind"] == kind, answer
    return {r["key"]: r for r in answer["records"]}


def test_list_add_del_flush_every_kind(mxguard, postfix):
    mx = engine(mxguard, postfix, greylist_key="net", tarpit_delay="3s")
    for kind in KINDS:
        assert records(mx, kind) == {}, kind
        rc, out, err = ctl(mx, "list", kind)
        assert rc == 0 and out.splitlines()[-1] == "0 records", out
        assert ctl_json(mx, "flush", kind) == (0, {"ok": True, "kind": kind, "flushed": 0})

    # tarpit and grey records, made by the engine: a drop, then a retry.
    drop_out_of_tarpit(mx, BOT, after=0.5)
    mx.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")
    c, r, took = to_rcpt(mx, BOT)
    assert r.code == 450, r
    c.close()
    assert list(records(mx, "tarpit")) == ["127.10.0.0/24"]
    grey = records(mx, "grey")
    assert len(grey) == 1, grey
    rc, out, err = ctl(mx, "list", "grey")
    assert rc == 0 and out.splitlines()[-1] == "1 record" and list(grey)[0] in out, out
    assert ctl_json(mx, "flush", "grey") == (0, {"ok": True, "kind": "grey", "flushed": 1})
    assert records(mx, "grey") == {}
    assert ctl_json(mx, "del", "tarpit", "127.10.0.0/24") == (0, {"ok": True})
    rc, answer = ctl_json(mx, "del", "tarpit", "127.10.0.0/24")
    assert rc == 1 and answer == {"ok": False, "error": "no such record"}
    assert records(mx, "tarpit") == {}

    # white: added by hand, flushed from the store and from memory.
    for entry in ["127.10.0.0/24", "192.0.2.1", "example.org"]:
        assert ctl_json(mx, "add", "white", entry) == (0, {"ok": True})
    assert sorted(records(mx, "white")) == ["127.10.0.0/24", "192.0.2.1", "example.org"]
    c, r, took = to_rcpt(mx, BOT)
    assert r.code == 250 and took < 2.0, (r, took)
    c.close()
    assert ctl_json(mx, "del", "white", "192.0.2.1") == (0, {"ok": True})
    assert ctl_json(mx, "flush", "white") == (0, {"ok": True, "kind": "white", "flushed": 2})
    assert records(mx, "white") == {}
    c, r, took = to_rcpt(mx, BOT)              # tarpitted again
    assert r.code == 250 and took >= 2.9, (r, took)
    c.close()

    # tarpit, grey and awl records are the engine's: the errors say so.
    for kind in ["awl", "grey", "tarpit"]:
        rc, answer = ctl_json(mx, "add", kind, "192.0.2.7")
        assert rc == 1 and answer["ok"] is False and "only white" in answer["error"], (kind, answer)
    # Blocks are the shield's: added and lifted by hand (test_shield.py shows
    # a blocked client refused).
    assert ctl_json(mx, "add", "block", "192.0.2.7", "60") == (0, {"ok": True})
    assert "192.0.2.7" in records(mx, "block")
    assert ctl_json(mx, "del", "block", "192.0.2.7") == (0, {"ok": True})
    for kind in ["awl", "block"]:
        rc, answer = ctl_json(mx, "del", kind, "192.0.2.7")
        assert rc == 1 and answer["error"] == "no such record"
    # Without --json a refusal is also said on stderr.
    rc, out, err = ctl(mx, "add", "block", "mail.example")
    assert rc == 1 and json.loads(out)["ok"] is False and "not an IP address" in err


def test_every_json_output_parses(mxguard):
    mx = mxguard(default_action="inspect")
    commands = [["status"], ["top"], ["ping"], ["reload"]] + \
        [["list", k] for k in KINDS] + [["flush", k] for k in KINDS]
    for cmd in commands:
        rc, answer = ctl_json(mx, *cmd)
        assert rc == 0 and isinstance(answer, dict), (cmd, answer)
    # --json after the command works as well.
    rc, out, err = ctl(mx, "status", "--json")
    assert rc == 0 and json.loads(out)["pid"] == mx.pid


@pytest.mark.parametrize("args,rc,words", [
    (["frobnicate"], 2, "unknown command 'frobnicate'"),
    (["status", "extra"], 2, "status takes no arguments"),
    (["list"], 2, "expected a record kind"),
    (["list", "nosuchkind"], 2, "expected a record kind"),
    (["del", "white"], 2, "expected one KEY"),
    (["add", "white", "a", "b"], 2, "expected one ENTRY"),
    (["add", "block", "192.0.2.1", "soon"], 2, "ADDRESS [SECONDS]"),
    (["list", "--bogus"], 2, "unknown option '--bogus'"),
    (["ping", "--once"], 2, "--once goes with top only"),
    (["add", "grey", "x"], 1, "only white"),
])
def test_bad_commands(mxguard, args, rc, words):
    mx = mxguard(default_action="inspect")
    got, out, err = ctl(mx, *args)
    assert got == rc and words in err, (args, got, out, err)
    if rc == 2:
        assert "usage:" in err and out == ""
    got, answer = ctl_json(mx, *args)
    assert got == rc and answer["ok"] is False and words in answer["error"], (args, answer)


def test_bad_verbs_on_the_socket(mxguard):
    mx = mxguard(default_action="inspect")
    assert raw_request(mx, "frobnicate") == {"ok": False, "error": "unknown command: frobnicate"}
    assert raw_request(mx, "list nosuch")["error"].startswith("unknown record kind 'nosuch'")
    assert raw_request(mx, "flush white extra")["error"].startswith("usage:")
    # Control characters come back escaped, still one JSON line.
    answer = raw_request(mx, "x\x1b[2J\x01")
    assert answer["ok"] is False and "\x1b" in answer["error"]
    assert ctl(mx, "ping")[0] == 0


def test_not_running_is_a_clear_error(mxguard):
    mx = mxguard(start=False)
    mx.write_config()
    sock = str(mx.workdir / "state" / "control.sock")
    rc, out, err = ctl(mx, "status")
    assert rc == 3 and out == ""
    assert "cannot reach mxguard at %s" % sock in err and "is it running?" in err, err
    assert "-s SOCKET" in err
    rc, answer = ctl_json(mx, "ping")
    assert rc == 3 and answer["ok"] is False and sock in answer["error"]
    # A socket file nobody listens on: connection refused, the same answer.
    os.makedirs(os.path.dirname(sock), exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock)
    s.close()
    rc, out, err = ctl(mx, "top", "--once")
    assert rc == 3 and "Connection refused: is it running?" in err, err


def _nobody():
    import pwd
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def test_permission_denied_names_who_may(mxguard):
    nobody = _nobody()
    if os.geteuid() != 0 or nobody is None:
        pytest.skip("needs root and a user nobody to run mxguardctl unprivileged")
    binary = ctl_bin().resolve()
    # A socket directory nobody may enter, so that the socket's own mode
    # (0660 root:root) is what refuses.
    sockdir = tempfile.mkdtemp(prefix="mxg-ctl-")
    try:
        os.chmod(sockdir, 0o755)
        # A build in a directory nobody cannot enter (a clone made with
        # mktemp -d is 0700): nobody runs a copy of the binary instead.
        if not all(os.stat(d).st_mode & stat.S_IXOTH for d in [binary] + list(binary.parents)):
            copy = os.path.join(sockdir, "mxguardctl")
            shutil.copy2(binary, copy)
            os.chmod(copy, 0o755)
            binary = Path(copy)
        sock = os.path.join(sockdir, "control.sock")
        mxguard(default_action="inspect", control_socket=sock)
        st = os.stat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o660

        def as_nobody():
            os.setgid(nobody.pw_gid)
            os.setgroups([])
            os.setuid(nobody.pw_uid)

        for args in (["ping"], ["--json", "ping"]):
            p = subprocess.run([str(binary), "-s", sock] + args, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=20, preexec_fn=as_nobody)
            assert p.returncode == 4, (p.stdout, p.stderr)
            msg = p.stderr.decode() if args == ["ping"] else json.loads(p.stdout)["error"]
            assert "permission denied on the control socket %s" % sock in msg, msg
            assert "owner root, group root, mode 0660" in msg, msg
            assert "run mxguardctl as root, as user root or as a member of group root" in msg
        # Root gets through the same socket.
        p = subprocess.run([str(binary), "-s", sock, "ping"], stdout=subprocess.PIPE,
                           timeout=20)
        assert p.returncode == 0 and json.loads(p.stdout) == {"ok": True}
    finally:
        shutil.rmtree(sockdir, ignore_errors=True)


def _top_on_a_terminal(mx, stop):
    """Run top live on a new pseudo-terminal; stop it with stop(proc,
    master); return (exit code, everything it wrote, terminal modes before
    and after)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x28\x00\x78\x00\x00\x00\x00\x00")  # 40x120
    before = termios.tcgetattr(slave)

    def controlling_tty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([str(ctl_bin()), "-c", str(mx.config_file), "top"],
                            stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=controlling_tty)
    output = b""

    def read_until(pred, timeout):
        nonlocal output
        deadline = time.monotonic() + timeout
        while not pred() and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    output += os.read(master, 65536)
                except OSError:
                    break
        return pred()

    try:
        # Two frames: the second one has rates.
        assert read_until(lambda: output.count(b"mxguard top") >= 2, 10), output
        stop(proc, master)
        proc.wait(timeout=10)
        read_until(lambda: False, 0.3)
        after = termios.tcgetattr(slave)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        os.close(slave)
    return proc.returncode, output, before, after


@pytest.mark.parametrize("how", ["q", "ctrl-c", "sigterm"])
def test_top_live_restores_the_terminal(mxguard, how):
    mx = mxguard(default_action="inspect")
    stops = {
        "q": lambda proc, master: os.write(master, b"q"),
        "ctrl-c": lambda proc, master: os.write(master, b"\x03"),
        "sigterm": lambda proc, master: proc.send_signal(signal.SIGTERM),
    }
    rc, out, before, after = _top_on_a_terminal(mx, stops[how])
    assert rc == 0, out
    assert out.startswith(b"\033[?1049h\033[?25l"), out[:40]
    assert out.rstrip(b"\r\n").endswith(b"\033[?25h\033[?1049l"), out[-40:]
    assert b"REFUSALS" in out and b"RECENT VERDICTS" in out
    assert after == before      # echo, canonical mode: all as they were


def test_top_needs_a_terminal(mxguard):
    mx = mxguard(default_action="inspect")
    rc, out, err = ctl(mx, "top", stdin=subprocess.DEVNULL)
    assert rc == 2 and "top needs a terminal" in err, err


class FakeDaemon:
    """A control socket that answers every request with one canned line:
    for answers the real daemon never gives (malformed, hostile)."""

    def __init__(self, path, answer):
        import threading
        self.answer = answer
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        deadline = time.monotonic() + 30
        while not self.stop and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(2048)
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


SNAPSHOT = {"ok": True, "now_ms": 1795389212184, "uptime": 5, "accepted": 1, "refused": 0,
            "passed": 0, "connections": 1, "held": 1, "stages": {"tarpit": 1},
            "listeners": {"127.0.0.1:25": 1}, "refusals": {"overload": 0},
            "verdicts": {"suspect": 1},
            "holds": [{"client": "192.0.2.1", "age": 3.5, "name": "evil\u001b[2J\u009b.test"}],
            "recent": [{"age": 1, "client": "192.0.2.1", "verdict": "suspect",
                        "name": "evil\u001b[2J.test", "reason": "s25r:r1\u0007"}]}


@pytest.mark.parametrize("answer,cmd", [
    (b"garbage\n", ["ping"]),
    (b'{"ok":true,"records":[{"key":"x"\n', ["list", "white"]),
    (b"[" * 5000 + b"]" * 5000 + b"\n", ["status", "--table"]),
    (b'{"ok":true,"x":"\\u12"}\n', ["top", "--once"]),
    (b"", ["reload"]),
])
def test_malformed_answers_are_errors(tmp_path, answer, cmd):
    path = str(tmp_path / "fake.sock")
    fake = FakeDaemon(path, answer)
    try:
        p = subprocess.run([str(ctl_bin()), "-s", path] + cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        want = 3 if answer == b"" else 1
        assert p.returncode == want, (p.returncode, p.stdout, p.stderr)
        assert (b"no answer" if answer == b"" else b"malformed answer") in p.stderr
        p = subprocess.run([str(ctl_bin()), "-s", path, "--json"] + cmd,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        assert p.returncode == want and json.loads(p.stdout)["ok"] is False, p.stdout
    finally:
        fake.close()


def test_top_never_sends_the_daemons_control_characters_to_the_terminal(tmp_path):
    path = str(tmp_path / "fake.sock")
    fake = FakeDaemon(path, json.dumps(SNAPSHOT).encode() + b"\n")
    try:
        p = subprocess.run([str(ctl_bin()), "-s", path, "top", "--once"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        assert p.returncode == 0, p.stderr
        out = p.stdout.decode()
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, out
        assert "192.0.2.1" in out and "evil?[2J?.test" in out and "s25r:r1?" in out, out
    finally:
        fake.close()
