"""The taRgrey engine: classification on verified names, tarpit, greylist
rescue, pool keys, auto-whitelist, modes, DNS failure, durable state.

Sources are 127.10.x.y, named by the session's dnsmasq (conftest.DNS_HOSTS).
Short delays: tarpit 3 s, greylist 2 s, so every test runs in seconds.
"""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from mxgtest import (RawSMTP, ConnectionClosed, free_port, make_message, mxguard_bin,
                     new_message_id)

CLEAN = "127.10.0.1"       # mx1.relay.example.test
BOT = "127.10.0.2"         # a1-2-3.dyn.example.test (S25R r1)
FORGED = "127.10.0.3"      # PTR not confirmed: unknown
NOPTR = "127.10.0.4"       # no PTR: unknown
POOL_A = "127.10.1.1"      # mta1-23.out.bigsender.test
POOL_B = "127.10.2.1"      # mta4-56.out.bigsender.test (another /24, same pool)

FAST = dict(default_action="inspect", client_lists="", tarpit_delay="3s",
            greylist_delay="2s", greylist_retries="2", awl_interval="0")


def engine(mxguard, postfix, **params):
    p = dict(FAST, backend=postfix.backend_for("proxy2"), backend_protocol="proxy2")
    p.update(params)
    return mxguard(**p)


def to_rcpt(mx, source, rcpt="user@example.test", sender="sender@client.test",
            helo="client.test", timeout=20):
    """Connect from source, EHLO, MAIL; send RCPT and return (client,
    RCPT reply or None if the server closed, seconds the reply took)."""
    c = RawSMTP(mx.port, source_ip=source, timeout=timeout)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO " + helo).code == 250
    assert c.cmd("MAIL FROM:<%s>" % sender).code == 250
    t0 = time.monotonic()
    c.send("RCPT TO:<%s>\r\n" % rcpt)
    try:
        r = c.read_reply(timeout=timeout)
    except ConnectionClosed:
        r = None
    return c, r, time.monotonic() - t0


def finish(c, message_id, rcpt="user@example.test"):
    """DATA and QUIT after an accepted RCPT."""
    assert c.cmd("DATA").code == 354
    c.send_message_data(make_message(message_id, rcpt=rcpt))
    assert c.read_reply().code == 250
    assert c.cmd("QUIT").code == 221
    c.close()


def status(mx):
    """The engine's part of `mxguardctl status`."""
    p = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-c", str(mx.config_file),
                        "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["engine"]


def drop_out_of_tarpit(mx, source, after=1.0, **kw):
    """A bot: RCPT, then give up before the reply."""
    c = RawSMTP(mx.port, source_ip=source, timeout=10)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO " + kw.get("helo", "bot.test")).code == 250
    assert c.cmd("MAIL FROM:<%s>" % kw.get("sender", "sender@client.test")).code == 250
    c.send("RCPT TO:<%s>\r\n" % kw.get("rcpt", "user@example.test"))
    time.sleep(after)
    c.close()


def test_clean_name_passes_at_once(mxguard, postfix):
    mx = engine(mxguard, postfix)
    mid = new_message_id("clean")
    c, r, took = to_rcpt(mx, CLEAN)
    assert r.code == 250 and took < 2.0, (r, took)
    finish(c, mid)
    postfix.wait_for_message(mid)
    mx.wait_for_log(r"verdict client=127\.10\.0\.1 name=mx1\.relay\.example\.test .*"
                    r"verdict=clean reason=s25r:none")


def test_bot_is_tarpitted_recorded_and_its_retry_greylisted(mxguard, postfix):
    mx = engine(mxguard, postfix, tarpit_delay="6s")
    # The maillog is the session's: other tests may have passed BOT before.
    maillog_start = len(postfix.maillog_text())
    drop_out_of_tarpit(mx, BOT, after=3.0)
    line = mx.wait_for_log(r"tarpit drop client=127\.10\.0\.2 name=a1-2-3\.dyn\.example\.test "
                           r".* after=(\d+\.\d)s").group(0)
    after = float(re.search(r"after=(\d+\.\d)s", line).group(1))
    assert 2.5 <= after < 6.0, line
    mx.wait_for_log(r"verdict client=127\.10\.0\.2 .*verdict=suspect reason=s25r:r1")
    # It never reached the backend.
    assert "[127.10.0.2]" not in postfix.maillog_text()[maillog_start:]
    assert status(mx)["store"]["tarpit"] == 1
    # Its retry is greylisted at once instead of tarpitted again: the drop
    # was the triplet's first sighting, so the quick retry is early.
    c, r, took = to_rcpt(mx, BOT)
    assert r.code == 450 and "4.7.1" in r.text and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"greylist early client=127\.10\.0\.2 .*retries=1")


def test_patient_client_survives_and_is_delivered_once(mxguard, postfix):
    mx = engine(mxguard, postfix)
    mid = new_message_id("survivor")
    c, r, took = to_rcpt(mx, NOPTR)
    assert r.code == 250, r
    assert took >= 2.9, took
    finish(c, mid)
    postfix.wait_for_message(mid)
    assert len(postfix.messages_by_id().get(mid, [])) == 1
    mx.wait_for_log(r"tarpit survived client=127\.10\.0\.4 name=unknown .* after=3\.\ds")
    mx.wait_for_log(r"verdict client=127\.10\.0\.4 .*verdict=suspect reason=s25r:r0")


def test_forged_ptr_is_unknown(mxguard, postfix):
    mx = engine(mxguard, postfix, mode="warn")
    c, r, took = to_rcpt(mx, FORGED)
    assert r.code == 250
    c.close()
    mx.wait_for_log(r"verdict client=127\.10\.0\.3 name=unknown .*reason=s25r:r0")


def test_greylist_rescue_delivers_exactly_once(mxguard, postfix):
    """A sender with a short timeout: drops out of the tarpit (the triplet's
    first sighting), retries, is greylisted until the delay has passed and
    it came back twice, then its message is delivered once."""
    mx = engine(mxguard, postfix)
    drop_out_of_tarpit(mx, "127.10.0.6", after=0.5)
    mx.wait_for_log(r"tarpit drop client=127\.10\.0\.6 ")
    mx.wait_for_log(r"greylist first key=127\.10\.0\.0/24\|")
    c, r, _ = to_rcpt(mx, "127.10.0.6")
    assert r.code == 450, r          # came back, but too early
    c.close()
    mx.wait_for_log(r"greylist early client=127\.10\.0\.6 .*retries=1")
    time.sleep(2.2)
    mid = new_message_id("rescued")
    c, r, took = to_rcpt(mx, "127.10.0.6")
    assert r.code == 250 and took < 2.0, (r, took)
    finish(c, mid)
    postfix.wait_for_message(mid)
    time.sleep(0.5)
    assert len(postfix.messages_by_id().get(mid, [])) == 1
    mx.wait_for_log(r"greylist pass client=127\.10\.0\.6 .*retries=2")


def test_dynamic_pool_names_are_keyed_by_network(mxguard, postfix):
    """mta1-23.out.bigsender.test looks dynamic (S25R r1): with greylist_key
    = auto it is keyed by its /24, so another host of its pool in another
    /24 starts over in the tarpit (a farm that does not look dynamic keeps
    its pool key: test_targrey_senders.py)."""
    mx = engine(mxguard, postfix, tarpit_delay="2s")
    drop_out_of_tarpit(mx, POOL_A, after=0.5)
    mx.wait_for_log(r"tarpit drop client=127\.10\.1\.1 name=mta1-23\.out\.bigsender\.test")
    c, r, took = to_rcpt(mx, POOL_B)
    assert r.code == 250 and took >= 1.9, (r, took)
    c.close()


def test_auto_whitelist_after_deliveries(mxguard, postfix):
    mx = engine(mxguard, postfix, awl_count="2", tarpit_delay="1s")
    for i in range(2):
        mid = new_message_id("awl-%d" % i)
        c, r, took = to_rcpt(mx, "127.10.0.7")
        assert r.code == 250 and took >= 0.9, (i, r, took)
        finish(c, mid)
        mx.wait_for_log(r"awl add key=127\.10\.0\.0/24 count=%d" % (i + 1))
    c, r, took = to_rcpt(mx, "127.10.0.7")
    assert r.code == 250 and took < 0.9, (r, took)
    c.close()
    mx.wait_for_log(r"awl pass client=127\.10\.0\.7 ")


def test_warn_mode_enforces_nothing_and_logs_everything(mxguard, postfix):
    mx = engine(mxguard, postfix, mode="warn", tarpit_delay="10s")
    mid = new_message_id("warn")
    c, r, took = to_rcpt(mx, "127.10.0.8", sender="a@sender.test", helo="bot.helo.test")
    assert r.code == 250 and took < 2.0, (r, took)
    finish(c, mid)
    postfix.wait_for_message(mid)
    line = mx.wait_for_log(r"warn: would tarpit or greylist client=127\.10\.0\.8 .*").group(0)
    assert 'name=r90-12.dyn.example.test helo="bot.helo.test" from=<a@sender.test> ' \
           'to=<user@example.test>' in line, line


def test_black_listed_client_is_refused_with_the_list_reply(mxguard, postfix, tmp_path):
    lst = tmp_path / "black.cidr"
    lst.write_text("127.10.0.5 REJECT Listed here\n127.10.0.9 450 Busy, later\n"
                   "127.10.0.10 554 5.7.0 Own code kept\n")
    mx = engine(mxguard, postfix, client_lists="cidr:%s" % lst)
    c, r, _ = to_rcpt(mx, "127.10.0.5")
    assert r.code == 550 and "5.7.1 Listed here" in r.text, r
    assert c.cmd("QUIT").code == 221
    c, r, _ = to_rcpt(mx, "127.10.0.9")
    assert r.code == 450 and "4.7.1 Busy, later" in r.text, r
    c.close()
    c, r, _ = to_rcpt(mx, "127.10.0.10")
    assert r.code == 554 and r.text.startswith("5.7.0 Own code kept"), r


@pytest.mark.parametrize("action,code", [("tempfail", 451), ("pass", 250), ("suspect", None)])
def test_dns_down_is_never_a_5xx(mxguard, postfix, action, code):
    dead = "127.0.0.1:%d" % free_port()   # nothing answers there
    mx = engine(mxguard, postfix, dns_resolvers=dead, dns_timeout="1s",
                dns_failure_action=action, tarpit_delay="2s")
    c, r, took = to_rcpt(mx, CLEAN)
    if code is None:
        # Unknown name: a suspect, tarpitted, then passed.
        assert r.code == 250 and took >= 1.9, (r, took)
    else:
        assert r.code == code, r
    assert r.code < 500
    c.close()
    mx.wait_for_log(r"verdict client=127\.10\.0\.1 ")


def test_kill_9_and_restart_keep_every_record(mxguard, postfix):
    mx = engine(mxguard, postfix)
    drop_out_of_tarpit(mx, "127.10.0.2", after=0.5, rcpt="kill9@example.test")
    mx.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")
    c, r, _ = to_rcpt(mx, "127.10.0.2", rcpt="kill9@example.test")
    assert r.code == 450
    c.close()
    mx.wait_for_log(r"greylist early client=127\.10\.0\.2 .*retries=1")
    before = status(mx)["store"]
    os.kill(mx.pid, signal.SIGKILL)
    mx.proc.wait(10)
    mx.start()
    after = status(mx)["store"]
    assert (after["tarpit"], after["grey"]) == (before["tarpit"], before["grey"]) == (1, 1)
    # The retry after the restart is still known: greylisted, counted as a comeback.
    c, r, took = to_rcpt(mx, "127.10.0.2", rcpt="kill9@example.test")
    assert r.code == 450 and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"greylist early client=127\.10\.0\.2 .*retries=2")


def test_sigterm_answers_held_clients_at_once(mxguard, postfix):
    mx = engine(mxguard, postfix, tarpit_delay="60s", shutdown_timeout="30s")
    c = RawSMTP(mx.port, source_ip=BOT, timeout=20)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO bot.test").code == 250
    assert c.cmd("MAIL FROM:<a@b.test>").code == 250
    c.send("RCPT TO:<user@example.test>\r\n")
    mx.wait_for_log(r"tarpit start client=127\.10\.0\.2 ")
    t0 = time.monotonic()
    mx.proc.send_signal(signal.SIGTERM)
    r = c.read_reply(timeout=10)
    assert r.code == 421 and "4.3.2" in r.text, r
    c.close()
    assert mx.proc.wait(10) == 0
    assert time.monotonic() - t0 < 10
