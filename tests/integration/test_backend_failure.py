"""The backend fails: the client must get a temporary (4xx) error, never 5xx."""

import os
import re
import signal
import time

import pytest

from mxgtest import FakeBackend, RawSMTP, ConnectionClosed, unused_port


def _no_5xx(replies):
    for r in replies:
        assert not (500 <= r.code < 600), "5xx reply from mxguard: %r" % (replies,)


def _assert_final_4_3_2(replies, code=421):
    assert replies, "no reply at all"
    last = replies[-1]
    assert last.code == code, replies
    assert "4.3.2" in last.raw[-1], replies


@pytest.mark.parametrize("protocol", ["proxy2", "xclient"])
def test_pass_backend_refused_421_in_greeting(mxguard, protocol):
    mx = mxguard(backend="127.0.0.1:%d" % unused_port(), backend_protocol=protocol,
                 default_action="pass", backend_timeout="5s")
    t0 = time.monotonic()
    with RawSMTP(mx.port) as c:
        replies = c.read_all_replies_until_close(timeout=10)
    _no_5xx(replies)
    _assert_final_4_3_2(replies, 421)
    assert replies[0].raw[0] == "220-mxguard.test ESMTP mxguard", replies
    # Refused is immediate: no need to wait for backend_timeout.
    assert time.monotonic() - t0 < 4


def test_inspect_backend_refused_451_at_rcpt_helo(mxguard):
    mx = mxguard(backend="127.0.0.1:%d" % unused_port(), backend_protocol="proxy2",
                 default_action="inspect", backend_timeout="5s")
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        assert c.cmd("HELO refused.client.test").code == 250
        assert c.cmd("MAIL FROM:<a@client.test>").code == 250
        c.send("RCPT TO:<user@example.test>\r\n")
        replies = c.read_all_replies_until_close(timeout=10)
    _no_5xx(replies)
    assert [r.code for r in replies] == [451], replies
    assert "4.3.2" in replies[0].raw[-1]


def test_inspect_backend_refused_ehlo_never_5xx(mxguard):
    mx = mxguard(backend="127.0.0.1:%d" % unused_port(), backend_protocol="proxy2",
                 default_action="inspect", backend_timeout="5s")
    replies = []
    with RawSMTP(mx.port) as c:
        try:
            replies.append(c.read_reply())
            for cmd in ("EHLO refused.client.test", "MAIL FROM:<a@client.test>",
                        "RCPT TO:<user@example.test>"):
                r = c.cmd(cmd)
                replies.append(r)
                if r.code >= 400:
                    break
            replies.extend(c.read_all_replies_until_close(timeout=10))
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            pass
    _no_5xx(replies)
    assert replies[-1].code in (421, 451), replies
    assert "4.3.2" in replies[-1].raw[-1], replies


def test_pass_silent_backend_times_out_with_421(mxguard):
    fb = FakeBackend("silent")
    try:
        mx = mxguard(backend=fb.address, backend_protocol="proxy2", default_action="pass",
                     backend_timeout="2s")
        t0 = time.monotonic()
        with RawSMTP(mx.port) as c:
            replies = c.read_all_replies_until_close(timeout=12)
        elapsed = time.monotonic() - t0
        _no_5xx(replies)
        _assert_final_4_3_2(replies, 421)
        assert 1.5 <= elapsed <= 8, elapsed
        assert fb.accepted >= 1
    finally:
        fb.close()


def test_inspect_silent_backend_times_out_with_451(mxguard):
    fb = FakeBackend("silent")
    try:
        mx = mxguard(backend=fb.address, backend_protocol="none", default_action="inspect",
                     backend_timeout="2s")
        with RawSMTP(mx.port) as c:
            assert c.read_reply().code == 220
            assert c.cmd("HELO silent.client.test").code == 250
            assert c.cmd("MAIL FROM:<a@client.test>").code == 250
            t0 = time.monotonic()
            c.send("RCPT TO:<user@example.test>\r\n")
            replies = c.read_all_replies_until_close(timeout=12)
            elapsed = time.monotonic() - t0
        _no_5xx(replies)
        assert [r.code for r in replies] == [451], replies
        assert "4.3.2" in replies[0].raw[-1]
        assert elapsed <= 8, elapsed
    finally:
        fb.close()


@pytest.mark.parametrize("how", ["rst", "fin"])
def test_pass_backend_dies_mid_session_421(mxguard, how):
    fb = FakeBackend("die_after_mail", how=how)
    try:
        mx = mxguard(backend=fb.address, backend_protocol="none", default_action="pass",
                     backend_timeout="5s")
        with RawSMTP(mx.port) as c:
            g = c.read_reply(strict=False)
            assert g.code == 220 and g.raw[-1] == "220 fake.backend.test ESMTP fake", g
            r = c.cmd("EHLO dies.client.test")
            assert r.code == 250 and r.lines[0] == "fake.backend.test", r
            c.send("MAIL FROM:<a@client.test>\r\n")
            replies = c.read_all_replies_until_close(timeout=10)
        _no_5xx(replies)
        assert [r.code for r in replies] == [421], replies
        assert "4.3.2" in replies[0].raw[-1]
        line = mx.close_line_for(c.client_id)
        assert re.search(r" end=backend_(eof|error) ", line + " "), line
    finally:
        fb.close()


def _smtpd_pid_for(postfix, ip):
    m = postfix.wait_for_log(r"postfix/proxy/smtpd\[(\d+)\]: connect from \S*\[%s\]" % re.escape(ip))
    return int(m.group(1))


def test_pass_postfix_smtpd_killed_mid_session_421(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass")
    with RawSMTP(mx.port) as c:
        g = c.read_reply(strict=False)
        assert g.code == 220 and g.raw[-1] == "220 " + postfix.banner, g
        assert c.cmd("EHLO killed.client.test").code == 250
        assert c.cmd("MAIL FROM:<a@client.test>").code == 250
        pid = _smtpd_pid_for(postfix, c.source_ip)
        # This smtpd belongs to the test's own Postfix instance.
        assert pid in postfix._session_pids()
        os.kill(pid, signal.SIGKILL)
        replies = c.read_all_replies_until_close(timeout=10)
    # Do not leave a throttled Postfix service behind for later tests.
    postfix.wait_service_ok("proxy")
    _no_5xx(replies)
    assert [r.code for r in replies] == [421], replies
    assert "4.3.2" in replies[0].raw[-1]
