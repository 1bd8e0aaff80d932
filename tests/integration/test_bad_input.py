"""Hostile or broken clients in inspect mode.  Every case checks the exact
reply and then that a fresh client is still served end to end."""

import re
import socket
import threading
import time

import pytest

from mxgtest import ConnectionClosed, RawSMTP


@pytest.fixture
def inspect_mx(postfix, mxguard):
    def start(**params):
        base = dict(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                    default_action="inspect")
        base.update(params)
        return mxguard(**base)
    return start


def assert_serves(mx, postfix):
    """A fresh client gets the greeting, EHLO, MAIL, and a RCPT answered by
    Postfix after the hand-off; QUIT is answered by Postfix too."""
    with RawSMTP(mx.port, timeout=15) as c:
        g = c.read_reply()
        assert g.code == 220 and g.lines[-1] == "%s ESMTP mxguard" % mx.myhostname, g
        assert c.cmd("EHLO fresh.client.test").code == 250
        assert c.cmd("MAIL FROM:<fresh@client.test>").code == 250
        r = c.cmd("RCPT TO:<user@example.test>")
        assert r.code == 250, r
        assert c.cmd("QUIT").code == 221
    assert mx.alive()


def _greet(c):
    g = c.read_reply()
    assert g.code == 220, g
    r = c.cmd("EHLO bad.client.test")
    assert r.code == 250, r


def _exact(reply, line):
    assert reply.raw == [line], reply


def test_line_too_long_500(inspect_mx, postfix):
    """Over Postfix's own limit (2048 with CRLF) the line is refused as
    Postfix would; 600 bytes (a DSN line) are not too long."""
    mx = inspect_mx()
    with RawSMTP(mx.port) as c:
        _greet(c)
        assert c.cmd("NOOP " + "x" * 593).code == 250
        line = b"NOOP " + b"x" * 2044 + b"\r\n"
        assert len(line) == 2051
        c.send(line)
        _exact(c.read_reply(), "500 5.5.2 Error: line too long")
        # The session goes on after the error.
        assert c.cmd("NOOP").code == 250
    assert_serves(mx, postfix)


def test_nul_byte_500(inspect_mx, postfix):
    mx = inspect_mx()
    with RawSMTP(mx.port) as c:
        _greet(c)
        c.send(b"NOOP\x00x\r\n")
        _exact(c.read_reply(), "500 5.5.2 Error: NUL byte in command")
        assert c.cmd("NOOP").code == 250
    assert_serves(mx, postfix)


def test_bare_lf_command_taken_as_postfix_does(inspect_mx, postfix):
    """Postfix 3.7 takes a command ended by a bare LF: so does mxguard
    (a 5xx here would be stricter than the MTA behind it)."""
    mx = inspect_mx()
    with RawSMTP(mx.port) as c:
        _greet(c)
        c.send(b"NOOP\n")
        _exact(c.read_reply(), "250 2.0.0 Ok")
        c.send(b"MAIL FROM:<lf@client.test>\n")
        _exact(c.read_reply(), "250 2.1.0 Ok")
        c.send(b"RCPT TO:<user@example.test>\n")
        r = c.read_reply(timeout=15)
        assert r.code == 250, r
        assert c.cmd("QUIT").code == 221
    assert_serves(mx, postfix)


def test_unknown_command_502(inspect_mx, postfix):
    mx = inspect_mx()
    with RawSMTP(mx.port) as c:
        _greet(c)
        _exact(c.cmd("XYZZY plugh"), "502 5.5.2 Error: command not recognized")
        assert c.cmd("NOOP").code == 250
    assert_serves(mx, postfix)


def test_data_before_rcpt_503(inspect_mx, postfix):
    mx = inspect_mx()
    with RawSMTP(mx.port) as c:
        _greet(c)
        _exact(c.cmd("RCPT TO:<user@example.test>"), "503 5.5.1 Error: need MAIL command")
        assert c.cmd("MAIL FROM:<a@client.test>").code == 250
        _exact(c.cmd("DATA"), "503 5.5.1 Error: need RCPT command")
        # Nothing was handed off: the session is still mxguard's.
        assert c.cmd("RSET").code == 250
    assert_serves(mx, postfix)


def test_error_limit_421_and_close(inspect_mx, postfix):
    mx = inspect_mx(smtp_error_limit=3)
    with RawSMTP(mx.port) as c:
        _greet(c)
        for i in range(3):
            r = c.cmd("BOGUS%d" % i)
            assert r.code == 502, (i, r)
        # The fourth error is one more than smtp_error_limit.
        c.send("BOGUS3\r\n")
        replies = c.read_all_replies_until_close(timeout=5)
    assert replies, "connection closed without a reply"
    assert [r.code for r in replies] in ([421], [502, 421]), replies
    assert replies[-1].raw == ["421 4.7.0 mxguard.test Error: too many errors"], replies
    line = mx.close_line_for(c.client_id)
    assert " end=errors" in line, line
    assert_serves(mx, postfix)


@pytest.mark.parametrize("after", ["greeting", "ehlo"])
def test_idle_timeout_421_and_close(inspect_mx, postfix, after):
    mx = inspect_mx(smtp_timeout="2s")
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        if after == "ehlo":
            assert c.cmd("EHLO idle.client.test").code == 250
        t0 = time.monotonic()
        replies = c.read_all_replies_until_close(timeout=10)
        elapsed = time.monotonic() - t0
    assert [r.raw for r in replies] == [["421 4.4.2 mxguard.test Error: timeout exceeded"]], replies
    assert 1.5 <= elapsed <= 6, elapsed
    line = mx.close_line_for(c.client_id)
    assert " end=timeout" in line, line
    assert_serves(mx, postfix)


def _send_in_background(c, data, chunk=65536):
    """sendall in a thread (the peer may stop reading); returns the thread
    and a dict with the number of bytes sent and any error."""
    state = {"sent": 0, "error": None}

    def run():
        try:
            for i in range(0, len(data), chunk):
                c.sock.sendall(data[i:i + chunk])
                state["sent"] = i + chunk
        except OSError as e:
            state["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, state


def test_megabyte_line_then_crlf_500_bounded_memory(inspect_mx, postfix):
    mx = inspect_mx()
    rss0 = mx.rss_kb()
    with RawSMTP(mx.port, timeout=30) as c:
        _greet(c)
        garbage = bytes((i * 7 + 33) % 94 + 33 for i in range(1 << 20))
        t, state = _send_in_background(c, garbage + b"\r\n")
        t.join(30)
        assert not t.is_alive(), "mxguard stopped reading the long line"
        assert state["error"] is None, state
        _exact(c.read_reply(timeout=10), "500 5.5.2 Error: line too long")
        assert c.cmd("NOOP").code == 250
        rss1 = mx.rss_kb()
    assert mx.alive()
    assert rss1 - rss0 < 4096, "RSS grew by %d kB for one 1 MiB line" % (rss1 - rss0)
    assert_serves(mx, postfix)


def test_megabyte_line_without_newline_gets_500(inspect_mx, postfix):
    """1 MiB of garbage and no newline at all: the 500 must come without
    waiting for a line end that never arrives."""
    mx = inspect_mx(smtp_timeout="60s")
    rss0 = mx.rss_kb()
    with RawSMTP(mx.port, timeout=30) as c:
        _greet(c)
        garbage = bytes((i * 13 + 40) % 90 + 35 for i in range(1 << 20))
        t, state = _send_in_background(c, garbage)
        try:
            r = c.read_reply(timeout=10, strict=False)
        except (ConnectionClosed, ConnectionResetError) as e:
            pytest.fail("connection closed without a reply: %r" % e)
        except socket.timeout:
            pytest.fail("no reply within 10 s to a 1 MiB line without newline (sent %d bytes, %r)"
                        % (state["sent"], state["error"]))
        assert r.code == 500 and r.raw[-1] == "500 5.5.2 Error: line too long", r
        t.join(30)
        rss1 = mx.rss_kb()
    assert mx.alive()
    assert rss1 - rss0 < 4096, "RSS grew by %d kB" % (rss1 - rss0)
    assert_serves(mx, postfix)


def test_client_reset_immediately(inspect_mx, postfix):
    mx = inspect_mx()
    ids = []
    for _ in range(5):
        c = RawSMTP(mx.port)
        ids.append(c.client_id)
        c.reset()
    for cid in ids:
        line = mx.close_line_for(cid)
        assert re.search(r" end=(client_eof|client_error)\b", line), line
    assert_serves(mx, postfix)


def test_half_open_client_does_not_block_others(inspect_mx, postfix):
    mx = inspect_mx()
    idle = RawSMTP(mx.port)
    partial = RawSMTP(mx.port)
    try:
        partial.send(b"EHL")  # an incomplete command, never finished
        t0 = time.monotonic()
        for _ in range(3):
            assert_serves(mx, postfix)
        assert time.monotonic() - t0 < 10
        # Both stalled clients are still connected.
        assert not idle.is_closed(timeout=0.3)
        assert not partial.is_closed(timeout=0.3)
    finally:
        idle.close()
        partial.close()


def test_control_bytes_are_escaped_in_log(inspect_mx, postfix):
    mx = inspect_mx()
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        c.send(b"EHLO \x01helotok\x1b[31m\x7f.test\r\n")
        c.read_reply()
        c.send(b"\x02CMDTOK\x1b[2J\r\n")
        c.read_reply()
        c.send(b"MAIL FROM:<\x03sendtok@client.test>\r\n")
        c.read_reply()
        c.send(b"NOOP\r\n")
        assert c.read_reply().code == 250
        c.send(b"QUIT\r\n")
        assert c.read_reply().code == 221
    mx.close_line_for(c.client_id)
    mx.stop()
    log = mx.log_bytes()
    bad = sorted({b for b in log if (b < 0x20 and b != 0x0a) or b == 0x7f})
    assert not bad, "raw control bytes %r in mxguard log:\n%r" % (bad, log[-3000:])
    text = log.decode("utf-8", "replace")
    for word, escaped in (("helotok", r"\x01helotok"), ("CMDTOK", r"\x02CMDTOK"),
                          ("sendtok", r"\x03sendtok")):
        for m in re.finditer(re.escape(word), text):
            before = text[max(0, m.start() - 4):m.start()]
            assert before == escaped[:4], "unescaped %r in log: %r" % (word, text[m.start() - 40:m.end() + 40])
