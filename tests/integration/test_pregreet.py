"""Postscreen's pregreet test (greet_wait): the final "220 " line of a
suspect's greeting is held; a client that talks before it is a bot.

Sources and names come from the session's dnsmasq (conftest.DNS_HOSTS):
127.10.0.2 is a1-2-3.dyn.example.test (S25R r1), 127.10.0.4 has no PTR
(unverified), 127.10.0.1 is mx1.relay.example.test (clean).
"""
import json
import subprocess
import time

from mxgtest import RawSMTP, ConnectionClosed, make_message, mxguard_bin, new_message_id

CLEAN = "127.10.0.1"
BOT = "127.10.0.2"
NOPTR = "127.10.0.4"
GREET_WAIT = 3


def engine(mxguard, postfix, **params):
    p = dict(default_action="inspect", client_lists="", tarpit_delay="1s",
             greylist_delay="2s", greylist_retries="2", awl_interval="0",
             greet_wait="%ds" % GREET_WAIT, backend=postfix.backend_for("proxy2"),
             backend_protocol="proxy2")
    p.update(params)
    return mxguard(**p)


def store_tarpit_records(mx):
    p = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-c", str(mx.config_file),
                        "status"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["engine"]["store"]["tarpit"]


def greeting(c):
    """Read the whole greeting; returns (reply, seconds from connect to its last line)."""
    t0 = time.monotonic()
    first = c.read_line(timeout=5)
    assert first.startswith(b"220-"), first
    r = c.read_reply(timeout=GREET_WAIT + 5)
    return r, time.monotonic() - t0


def test_bot_that_talks_before_the_greeting_is_dropped_and_recorded(mxguard, postfix):
    mx = engine(mxguard, postfix)
    maillog_start = len(postfix.maillog_text())
    c = RawSMTP(mx.port, source_ip=BOT, timeout=10)
    assert c.read_line(timeout=5).startswith(b"220-")
    # A bot: it sees a 220 and starts at once.
    c.send("EHLO bot.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<user@example.test>\r\n")
    r = c.read_reply(timeout=GREET_WAIT + 5)
    assert r.code == 421 and r.text.startswith("4.7.0"), r
    assert c.is_closed(10)
    c.close()
    line = mx.wait_for_log(r"pregreet drop client=127\.10\.0\.2 name=a1-2-3\.dyn\.example\.test "
                           r".*after=\d+\.\ds").group(0)
    mx.wait_for_log(r"close client=127\.10\.0\.2:\d+ .*stage=greet .*end=tarpit_drop")
    assert store_tarpit_records(mx) == 1, line
    # It never reached the backend.
    assert "[127.10.0.2]" not in postfix.maillog_text()[maillog_start:]
    # Its retry, polite this time, is greylisted at once (recorded like a tarpit drop).
    c = RawSMTP(mx.port, source_ip=BOT, timeout=20)
    r, _ = greeting(c)
    assert r.code == 220
    assert c.cmd("EHLO bot.test").code == 250
    assert c.cmd("MAIL FROM:<a@sender.test>").code == 250
    t0 = time.monotonic()
    r = c.cmd("RCPT TO:<user@example.test>", timeout=10)
    assert r.code == 450 and "4.7.1" in r.text and time.monotonic() - t0 < 0.9, r
    c.close()
    mx.wait_for_log(r"greylist new client=127\.10\.0\.2 ")


def test_polite_suspect_waits_and_passes(mxguard, postfix):
    mx = engine(mxguard, postfix)
    c = RawSMTP(mx.port, source_ip=NOPTR, timeout=20)
    r, took = greeting(c)
    assert r.code == 220 and "mxguard.test" in r.text, r
    assert took >= GREET_WAIT - 0.2, took
    mx.wait_for_log(r"pregreet pass client=127\.10\.0\.4 after=\d+\.\ds")
    assert c.cmd("EHLO polite.test").code == 250
    assert c.cmd("MAIL FROM:<a@sender.test>").code == 250
    r = c.cmd("RCPT TO:<user@example.test>", timeout=10)
    assert r.code == 250, r          # then the tarpit (1 s), survived
    mid = new_message_id("pregreet-polite")
    assert c.cmd("DATA").code == 354
    c.send_message_data(make_message(mid))
    assert c.read_reply().code == 250
    c.cmd("QUIT")
    c.close()
    postfix.wait_for_message(mid)
    assert "pregreet drop" not in mx.log()


def test_clean_client_is_not_delayed(mxguard, postfix):
    mx = engine(mxguard, postfix, greet_wait="10s")
    c = RawSMTP(mx.port, source_ip=CLEAN, timeout=20)
    r, took = greeting(c)
    assert r.code == 220 and took < 3.0, (r, took)
    assert c.cmd("EHLO mx1.relay.example.test").code == 250
    c.cmd("QUIT")
    c.close()
    log = mx.log()
    assert "pregreet pass client=127.10.0.1 " not in log
    assert "pregreet drop client=127.10.0.1 " not in log


def test_off_by_default_and_in_warn_mode(mxguard, postfix):
    """greet_wait = 0 (the default), or mode = warn: no hold, no drop."""
    for params in (dict(greet_wait="0"), dict(mode="warn")):
        mx = engine(mxguard, postfix, **params)
        c = RawSMTP(mx.port, source_ip=NOPTR, timeout=10)
        r, took = greeting(c)
        assert r.code == 220 and took < 2.0, (params, r, took)
        c.close()
        assert "pregreet" not in mx.log()
