"""Command line, configuration file, signals, and the per-connection log line."""

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mxgtest import mxguard_bin, RawSMTP, free_port, full_session, make_message, new_message_id

# Every parameter, in the table's order, with its documented default
# (None: depends on the machine).
PARAMS = [
    ("myhostname", None),
    ("smtp_listen", "127.0.0.1:2525"),
    ("listen_backlog", "0"),
    ("backend", "127.0.0.1:25"),
    ("backend_protocol", "proxy2"),
    ("backend_timeout", 30),
    ("default_action", "pass"),
    ("smtp_timeout", 300),
    ("relay_timeout", 600),
    ("smtp_error_limit", "10"),
    ("max_connections", "8000"),
    ("shutdown_timeout", 30),
    ("state_dir", "/var/lib/mxguard"),
    ("control_socket", "control.sock"),
    ("run_as", "mxguard"),
    ("log_target", "stderr"),
    ("client_lists", ""),
]
TIME_PARAMS = {"backend_timeout", "smtp_timeout", "relay_timeout", "shutdown_timeout"}

CLOSE_RE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) mxguard\[(?P<pid>\d+)\]: info: close "
    r"client=(?P<client>\S+) listener=(?P<listener>\S+) action=(?P<action>pass|inspect) "
    r"stage=(?P<stage>greet|dialogue|connect|handshake|replay|relay|tarpit) "
    r"duration=(?P<duration>\d+\.\d{3}) in=(?P<inb>\d+) out=(?P<outb>\d+) "
    r"end=(?P<end>quit|client_eof|client_error|backend_eof|backend_error|backend_fail|timeout|"
    r"errors|shutdown|tarpit_drop)(?P<extra>( [a-z_]+=\S.*)?)$")


def to_seconds(v):
    m = re.fullmatch(r"(\d+)([smhd]?)", v.strip())
    assert m, "not a time value: %r" % v
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def run_check(tmp_path, text, *args, name="mxguard.conf"):
    path = tmp_path / name
    path.write_text(text)
    p = subprocess.run([str(mxguard_bin()), "-n", "-c", str(path)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), path


def parse_check_output(out):
    pairs = []
    for line in out.splitlines():
        m = re.fullmatch(r"([a-z_0-9]+) = ?(.*)", line)
        assert m, "not a `name = value` line: %r" % line
        pairs.append((m.group(1), m.group(2)))
    return pairs


@pytest.fixture(autouse=True)
def _need_binary():
    if not mxguard_bin().exists():
        pytest.fail("mxguard binary %s does not exist (set MXGUARD_BIN)" % mxguard_bin())


# ---------------------------------------------------------------------------
# -n, -o, errors


def test_check_prints_every_parameter_in_table_order_with_defaults(tmp_path):
    rc, out, err, _ = run_check(tmp_path, "# nothing set\n\n", "-a")
    assert rc == 0, err
    pairs = parse_check_output(out)
    names = [n for n, _ in pairs]
    assert len(names) == len(set(names)), names
    spec_names = [n for n, _ in PARAMS]
    missing = [n for n in spec_names if n not in names]
    assert not missing, "missing parameters %r in:\n%s" % (missing, out)
    assert [n for n in names if n in spec_names] == spec_names, names
    values = dict(pairs)
    for name, default in PARAMS:
        if default is None:
            continue
        if name in TIME_PARAMS:
            assert to_seconds(values[name]) == default, (name, values[name])
        else:
            assert values[name] == default, (name, values[name])
    assert values["myhostname"], "myhostname defaults to gethostname()"


def test_check_shows_file_values(tmp_path):
    text = ("# a comment\n"
            "myhostname = cfg.test\n"
            "\n"
            "smtp_listen = 127.0.0.1:2727,\n"
            "    127.0.0.2:2728\n"
            "backend = 127.0.0.1:2626\n"
            "backend_protocol = xclient\n"
            "backend_timeout = 2m\n"
            "default_action = inspect\n"
            "smtp_timeout = 1h\n"
            "smtp_error_limit = 7\n"
            "max_connections = 123\n"
            "shutdown_timeout = 45\n"
            "run_as =\n"
            "log_target = syslog\n")
    rc, out, err, _ = run_check(tmp_path, text)
    assert rc == 0, err
    v = dict(parse_check_output(out))
    assert v["myhostname"] == "cfg.test"
    assert "127.0.0.1:2727" in v["smtp_listen"] and "127.0.0.2:2728" in v["smtp_listen"], v
    assert v["backend"] == "127.0.0.1:2626"
    assert v["backend_protocol"] == "xclient"
    assert to_seconds(v["backend_timeout"]) == 120
    assert v["default_action"] == "inspect"
    assert to_seconds(v["smtp_timeout"]) == 3600
    assert v["smtp_error_limit"] == "7"
    assert v["max_connections"] == "123"
    assert to_seconds(v["shutdown_timeout"]) == 45
    assert v["run_as"] == ""
    assert v["log_target"] == "syslog"


@pytest.mark.parametrize("line", [
    "backend_timeout = banana",
    "backend_protocol = smtp",
    "default_action = drop",
    "smtp_error_limit = ten",
    "max_connections = -5",
    "backend = no-port-here",
    "smtp_listen = 127.0.0.1:99999",
    "log_target = file",
])
def test_check_bad_value_reports_file_and_line(tmp_path, line):
    rc, out, err, path = run_check(tmp_path, "# line 1\nmyhostname = x.test\n%s\nrun_as =\n" % line)
    assert rc == 1, (rc, out, err)
    assert "%s:3:" % path in err, err


def test_check_unknown_parameter_reports_file_and_line(tmp_path):
    rc, out, err, path = run_check(tmp_path, "myhostname = x.test\n\n# c\nfrobnicate = 1\n")
    assert rc == 1, (rc, out, err)
    assert "%s:4:" % path in err, err
    assert "frobnicate" in err


def test_check_continuation_line_counts_for_line_numbers(tmp_path):
    rc, out, err, path = run_check(tmp_path, "smtp_listen = 127.0.0.1:2525,\n  127.0.0.1:2526\n"
                                   "backend_protocol = nonsense\n")
    assert rc == 1, (rc, out, err)
    assert "%s:3:" % path in err, err


def test_override_shows_in_check_output(tmp_path):
    rc, out, err, _ = run_check(tmp_path, "myhostname = file.test\nsmtp_error_limit = 4\n",
                                "-o", "myhostname=override.test", "-o", "backend_protocol=proxy1")
    assert rc == 0, err
    v = dict(parse_check_output(out))
    assert v["myhostname"] == "override.test"
    assert v["backend_protocol"] == "proxy1"
    assert v["smtp_error_limit"] == "4"


def test_override_bad_value_is_an_error(tmp_path):
    rc, out, err, _ = run_check(tmp_path, "myhostname = file.test\n", "-o", "default_action=maybe")
    assert rc != 0
    assert "default_action" in err or "maybe" in err, err


def test_missing_explicit_config_file_is_an_error(tmp_path):
    missing = tmp_path / "does-not-exist.conf"
    p = subprocess.run([str(mxguard_bin()), "-n", "-c", str(missing)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    assert p.returncode != 0
    assert str(missing) in p.stderr.decode("utf-8", "replace")


def test_run_as_unknown_user_is_a_startup_error(tmp_path):
    user = "nosuchuser-mxg%d" % os.getpid()
    conf = tmp_path / "mxguard.conf"
    conf.write_text("smtp_listen = 127.0.0.1:%d\nstate_dir = %s\nrun_as = %s\nbackend = 127.0.0.1:%d\n"
                    % (free_port(), tmp_path / "state", user, free_port()))
    p = subprocess.Popen([str(mxguard_bin()), "-c", str(conf)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=10)
        pytest.fail("mxguard kept running with run_as = %s" % user)
    assert p.returncode != 0
    assert user in (out + err).decode("utf-8", "replace")


def _start_until_exit(conf, timeout=20):
    """Start mxguard -c conf, expecting it to refuse: (exit status, output)."""
    p = subprocess.Popen([str(mxguard_bin()), "-c", str(conf)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.terminate()
        p.communicate(timeout=10)
        pytest.fail("mxguard started with %s" % conf.read_text())
    return p.returncode, out.decode("utf-8", "replace")


# Each is a configuration that cfg_load accepts and start-up refuses (issue 13).
REFUSED_AT_START = [
    ("client_lists", "regexp:/nonexistent/mxguard-it.regexp"),
    ("helo_lists", "cidr:/nonexistent/mxguard-it.cidr"),
    ("metrics_listen", "localhost:9425"),
    ("store", "redis://[bad"),
    ("run_as", "nosuchuser-mxg"),
    ("dnsbl_sites", "list.dnswl.example=*-2"),
    ("dns_resolvers", "resolver.example"),
    ("block_clients", "cidr:/nonexistent/mxguard-it.cidr"),
]


@pytest.mark.parametrize("param,value", REFUSED_AT_START, ids=[p for p, _ in REFUSED_AT_START])
def test_check_refuses_what_startup_refuses_with_its_message(tmp_path, param, value):
    """mxguard -n runs start-up's checks: a setting that makes start-up fail
    makes -n exit 1 with the very message start-up logs as fatal."""
    base = {"smtp_listen": "127.0.0.1:%d" % free_port(), "backend": "127.0.0.1:%d" % free_port(),
            "state_dir": str(tmp_path / "state"), "run_as": "", "log_target": "stderr",
            "myhostname": "mxguard.test", param: value}
    text = "".join("%s = %s\n" % kv for kv in base.items())
    rc, out, err, conf = run_check(tmp_path, text)
    assert rc == 1, (rc, out, err)
    assert err.startswith("mxguard: ") and err.count("\n") == 1, err
    message = err[len("mxguard: "):].rstrip("\n")
    rc, log = _start_until_exit(conf)
    assert rc == 1, (rc, log)
    fatal = [line for line in log.splitlines() if "fatal: " in line]
    assert fatal, log
    assert fatal[-1].endswith("fatal: " + message), (fatal, message)


def test_check_prints_only_the_parameters_set_unless_asked_for_all(tmp_path):
    """mxguard -n is postconf -n: the parameters the file or -o set (even to
    their default), in table order; -n -a prints every parameter."""
    text = "smtp_timeout = 5m\nrun_as =\nstate_dir = /var/lib/mxguard\n"
    rc, out, err, _ = run_check(tmp_path, text, "-o", "max_connections=77")
    assert rc == 0, err
    assert out == ("smtp_timeout = 5m\nmax_connections = 77\nstate_dir = /var/lib/mxguard\n"
                   "run_as = \n"), out
    rc, out_all, err, _ = run_check(tmp_path, text, "-a", "-o", "max_connections=77")
    assert rc == 0, err
    pairs = dict(parse_check_output(out_all))
    assert len(pairs) > 50 and pairs["smtp_timeout"] == "5m" and pairs["backend"] == "127.0.0.1:25"
    assert pairs["max_connections"] == "77"


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["-n", "--help"]])
def test_help_prints_usage_and_exits_0(argv):
    r = subprocess.run([str(mxguard_bin())] + argv, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, (r.returncode, r.stderr)
    assert r.stdout.startswith("usage: mxguard "), r.stdout
    assert "-n " in r.stdout and "-a " in r.stdout, r.stdout


def test_bad_option_prints_usage_and_exits_2():
    r = subprocess.run([str(mxguard_bin()), "--frobnicate"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 2 and "usage: mxguard " in r.stderr, (r.returncode, r.stderr)


def test_startup_logs_listening_and_ready_once(mxguard):
    mx = mxguard(backend="127.0.0.1:%d" % free_port())
    mx.wait_for_log(r" info: ready")
    log = mx.log()
    assert len(re.findall(r"(?m)^\S+ mxguard\[%d\]: info: ready(:.*)?$" % mx.pid, log)) == 1, log
    assert re.search(r"(?m)^\S+ mxguard\[%d\]: info: listening on 127\.0\.0\.1:%d backlog=\d+ service=smtp$"
                     % (mx.pid, mx.port), log), log
    assert log.index("listening on") < log.index("info: ready")


def _effective_backlog(port):
    """The accept queue length the kernel uses for 127.0.0.1:port (ss shows
    it as Send-Q of a listening socket)."""
    p = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    for line in p.stdout.decode().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "LISTEN" and parts[3].endswith(":%d" % port):
            return int(parts[2])
    raise AssertionError("no listener on port %d in: %r" % (port, p.stdout))


def _somaxconn():
    with open("/proc/sys/net/core/somaxconn") as f:
        return int(f.read())


@pytest.mark.parametrize("setting", ["0", "100", "huge"])
def test_listen_backlog_is_the_kernel_accept_queue(mxguard, setting):
    """A short accept queue loses clients under load (SYN cookies, dropped
    ACKs) before mxguard ever sees them: the backlog mxguard logs must be
    the one the kernel really uses."""
    somax = _somaxconn()
    value = {"0": "0", "100": "100", "huge": str(somax + 1000)}[setting]
    expected = {"0": somax, "100": 100, "huge": somax}[setting]
    mx = mxguard(backend="127.0.0.1:%d" % free_port(), listen_backlog=value)
    m = mx.wait_for_log(r"listening on 127\.0\.0\.1:%d backlog=(\d+)" % mx.port)
    assert int(m.group(1)) == expected, m.group(0)
    assert _effective_backlog(mx.port) == expected, \
        "mxguard logs backlog=%s but the kernel queue is %d" % (m.group(1), _effective_backlog(mx.port))
    if setting == "huge":
        assert re.search(r"(?m)^\S+ mxguard\[%d\]: warning: .*listen_backlog" % mx.pid, mx.log()), mx.log()


# ---------------------------------------------------------------------------
# signals


def test_sighup_keeps_connection_and_changes_myhostname(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect", myhostname="before.test")
    mid = new_message_id("sighup")
    a = RawSMTP(mx.port)
    try:
        g = a.read_reply()
        assert g.lines[0] == "before.test ESMTP mxguard"
        assert a.cmd("EHLO hup.client.test").code == 250
        assert a.cmd("MAIL FROM:<hup@client.test>").code == 250
        mx.set(myhostname="after.test")
        mx.reload()
        # The next clients see the new name (bounded polling: the reload is
        # asynchronous).
        deadline = time.monotonic() + 5
        seen = None
        for _ in range(50):
            with RawSMTP(mx.port) as b:
                seen = b.read_reply().raw[0]
                b.cmd("QUIT")
            if seen == "220-after.test ESMTP mxguard" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert seen == "220-after.test ESMTP mxguard", seen
        # The old connection is still there and completes its delivery.
        r = a.cmd("RCPT TO:<user@example.test>")
        assert r.code == 250, r
        assert a.cmd("DATA").code == 354
        a.send_message_data(make_message(mid))
        assert a.read_reply().code == 250
        assert a.cmd("QUIT").code == 221
    finally:
        a.close()
    postfix.wait_for_message(mid)
    assert mx.alive()


def _connect_refused(port, timeout=3.0):
    """True once connecting to port is refused (bounded polling)."""
    deadline = time.monotonic() + timeout
    for _ in range(100):
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            pass  # queued when the listener closed: poll again
        finally:
            s.close()
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


def test_sigterm_lets_live_relay_finish_and_exits_0(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass", shutdown_timeout="6s")
    mid = new_message_id("sigterm")
    a = RawSMTP(mx.port)
    try:
        assert a.read_reply(strict=False).code == 220
        assert a.cmd("EHLO term.client.test").code == 250
        t0 = time.monotonic()
        mx.terminate()
        assert _connect_refused(mx.port), "still accepting connections after SIGTERM"
        assert a.cmd("MAIL FROM:<term@client.test>").code == 250
        assert a.cmd("RCPT TO:<user@example.test>").code == 250
        assert a.cmd("DATA").code == 354
        a.send_message_data(make_message(mid))
        assert a.read_reply().code == 250
        r = a.cmd("QUIT")
        assert r.code == 221, r
        assert a.is_closed(5)
    finally:
        a.close()
    rc = mx.proc.wait(timeout=max(0.1, 6 + 1.5 - (time.monotonic() - t0)))
    assert rc == 0, mx.log()[-3000:]
    # Exited because the last relay ended, not because shutdown_timeout ran out.
    assert time.monotonic() - t0 < 5.5
    postfix.wait_for_message(mid)


def test_sigterm_cuts_relays_after_shutdown_timeout(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass", shutdown_timeout="2s")
    a = RawSMTP(mx.port)
    try:
        assert a.read_reply(strict=False).code == 220
        assert a.cmd("EHLO stuck.client.test").code == 250
        t0 = time.monotonic()
        mx.terminate()
        try:
            rc = mx.proc.wait(timeout=8)
        except subprocess.TimeoutExpired:
            pytest.fail("mxguard still running 8 s after SIGTERM with shutdown_timeout = 2s")
        elapsed = time.monotonic() - t0
        assert rc == 0
        assert 1.5 <= elapsed <= 4.5, elapsed
        assert a.is_closed(3)
    finally:
        a.close()
    line = mx.close_line_for(a.client_id)
    assert " end=shutdown" in line, line


def test_sigterm_ends_idle_dialogue_with_421(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect", shutdown_timeout="10s")
    a = RawSMTP(mx.port)
    try:
        assert a.read_reply().code == 220
        assert a.cmd("EHLO idle.client.test").code == 250
        t0 = time.monotonic()
        mx.terminate()
        replies = a.read_all_replies_until_close(timeout=5)
        assert [r.code for r in replies] == [421], replies
        a.close()  # a client closes its side after the server's EOF
        rc = mx.proc.wait(timeout=5)
        assert rc == 0
        assert time.monotonic() - t0 < 5, "waited for shutdown_timeout with no relay live"
    finally:
        a.close()


# ---------------------------------------------------------------------------
# the close log line


def test_every_connection_logs_exactly_one_close_line(postfix, mxguard):
    insp = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                   default_action="inspect", smtp_error_limit=2)
    pasm = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                   default_action="pass")
    expect = {}  # client id -> (mx, action or None, stage or None, end or None)

    # inspect: QUIT in mxguard's own dialogue
    c = RawSMTP(insp.port)
    c.read_reply()
    c.cmd("EHLO q.client.test")
    c.cmd("QUIT")
    c.is_closed(5)
    expect[c.client_id] = (insp, "inspect", "dialogue", "quit")
    c.close()
    # inspect: client closes without QUIT
    c = RawSMTP(insp.port)
    c.read_reply()
    c.close()
    expect[c.client_id] = (insp, "inspect", "dialogue", "client_eof")
    # inspect: reset at once
    c = RawSMTP(insp.port)
    expect[c.client_id] = (insp, None, None, None)
    c.reset()
    # inspect: too many errors
    c = RawSMTP(insp.port)
    c.read_reply()
    c.send(b"A\r\nB\r\nC\r\nD\r\n")
    c.read_all_replies_until_close(timeout=5)
    expect[c.client_id] = (insp, "inspect", "dialogue", "errors")
    c.close()
    # inspect: handed off, delivered, QUIT answered by Postfix
    mid = new_message_id("closeline")
    _, ip, _ = full_session(insp.port, message_id=mid)
    # full_session does not expose the socket: find its line by address.
    # pass: full session
    _, ip2, _ = full_session(pasm.port)

    insp.stop()
    pasm.stop()
    lines = {insp: [l for l in insp.log().splitlines() if " close " in l],
             pasm: [l for l in pasm.log().splitlines() if " close " in l]}
    parsed = {}
    for mx, ls in lines.items():
        for l in ls:
            m = CLOSE_RE.match(l)
            assert m, "malformed close line: %r" % l
            assert int(m.group("pid")) == mx.pid
            assert m.group("listener") == "127.0.0.1:%d" % mx.port, l
            assert m.group("client") not in parsed, "two close lines for %s" % m.group("client")
            parsed[m.group("client")] = (mx, m)
    assert len(lines[insp]) == 5, lines[insp]
    assert len(lines[pasm]) == 1, lines[pasm]
    for cid, (mx, action, stage, end) in expect.items():
        assert cid in parsed, "no close line for %s" % cid
        got_mx, m = parsed[cid]
        assert got_mx is mx
        if action:
            assert m.group("action") == action, m.group(0)
        if stage:
            assert m.group("stage") == stage, m.group(0)
        if end:
            assert m.group("end") == end, m.group(0)
    handed = [m for cid, (mx, m) in parsed.items() if cid.startswith(ip + ":")]
    assert len(handed) == 1 and handed[0].group("stage") == "relay", handed
    assert handed[0].group("action") == "inspect"
    passed = [m for cid, (mx, m) in parsed.items() if cid.startswith(ip2 + ":")]
    assert len(passed) == 1 and passed[0].group("stage") == "relay", passed
    assert passed[0].group("action") == "pass"
    postfix.wait_for_message(mid)


@pytest.mark.parametrize("action", ["inspect", "pass"])
def test_close_line_counts_client_bytes(postfix, mxguard, action):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action=action)
    sent = 0
    with RawSMTP(mx.port) as c:
        c.read_reply(strict=False)
        for line in (b"EHLO count.client.test\r\n", b"NOOP\r\n", b"QUIT\r\n"):
            c.send(line)
            sent += len(line)
            c.read_reply()
        assert c.is_closed(5)
        received = len(c.raw_in)
        cid = c.client_id
    line = mx.close_line_for(cid)
    m = CLOSE_RE.match(line)
    assert m, line
    assert int(m.group("inb")) == sent, line
    assert int(m.group("outb")) == received, line
    assert m.group("end") in (("quit",) if action == "inspect" else ("quit", "backend_eof", "client_eof")), line


def test_close_line_action_is_inspect_even_when_client_resets_at_once(mxguard):
    """In an inspect-mode daemon every connection is an inspect one, also
    one that resets before the greeting was written."""
    mx = mxguard(backend="127.0.0.1:%d" % free_port(), backend_protocol="proxy2",
                 default_action="inspect")
    ids = []
    for _ in range(30):
        c = RawSMTP(mx.port)
        ids.append(c.client_id)
        c.reset()
    wrong = []
    for cid in ids:
        line = mx.close_line_for(cid)
        m = CLOSE_RE.match(line)
        assert m, line
        if m.group("action") != "inspect":
            wrong.append(line)
    assert not wrong, "%d of %d close lines of an inspect daemon say otherwise, e.g.:\n%s" % (
        len(wrong), len(ids), "\n".join(wrong[:3]))


def test_example_configuration_names_every_parameter():
    """etc/mxguard.conf.example is the admin's reference: every parameter
    mxguard -n prints is there with a comment, and the file is valid."""
    path = Path(__file__).resolve().parents[2] / "etc" / "mxguard.conf.example"
    example = path.read_text()
    r = subprocess.run([str(mxguard_bin()), "-n", "-a", "-o", "run_as=", "-o", "myhostname=x.test"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    names = [line.split(" =", 1)[0] for line in r.stdout.splitlines()]
    # myhostname has no fixed default: the example shows it commented out.
    missing = [n for n in names
               if not re.search(r"(?m)^%s%s =" % ("#" if n == "myhostname" else "", re.escape(n)),
                                example)]
    assert not missing, "not in the example: %s" % missing
    uncommented = [n for n in names
                   if not re.search(r"(?m)^#[^\n]*\n(?:#?[a-z_0-9]+ =.*\n)*#?%s =" % re.escape(n),
                                    example)]
    assert not uncommented, "no comment above: %s" % uncommented
    # The lists it names are installed under /etc/mxguard: here, the tree's copies.
    lists = ", ".join("regexp:%s" % (path.parent / n)
                      for n in ("local_clients.regexp", "whitelist_clients.regexp"))
    r = subprocess.run([str(mxguard_bin()), "-n", "-c", str(path), "-o", "run_as=",
                        "-o", "client_lists=%s" % lists], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
