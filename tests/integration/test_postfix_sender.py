"""A real Postfix as the sending MTA in front of mxguard.

The `postfix_sender` fixture (conftest.PostfixSender) runs a second, send-only
Postfix that relays everything to mxguard (`relayhost = [127.0.0.1]:PORT`)
from a chosen 127.10.x.y source that the session's dnsmasq names
(conftest.DNS_HOSTS).  mxguard hands accepted mail to the session's backend
Postfix (`postfix`), which stores it in its Maildir.

Postfix's smtp(8) pipelines MAIL, RCPT and DATA (mxguard offers PIPELINING),
so these tests also cover a pipelining client held in the tarpit.
"""
import re
import time

from mxgtest import new_message_id

PATIENT = "127.10.0.6"       # p12-34.dyn.example.test (S25R r1: suspect)
IMPATIENT = "127.10.0.7"     # q56-78.dyn.example.test (S25R r1: suspect)
SENDER = "sender@client.test"
RCPT = "rcpt@example.test"

ENGINE = dict(default_action="inspect", client_lists="", awl_interval="0")


def engine(mxguard, postfix, **params):
    p = dict(ENGINE, backend=postfix.backend_for("proxy2"), backend_protocol="proxy2")
    p.update(params)
    return mxguard(**p)


def message(message_id, subject="via a real Postfix sender"):
    return ("From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: %s\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\n\n"
            "Relayed by a send-only Postfix through mxguard.\nid %s\n"
            % (SENDER, RCPT, subject, message_id, message_id)).encode()


def delivered_once(postfix, message_id, settle=1.5):
    """The message is in the backend Maildir, and still only once after a
    moment (a duplicate from a retry would show up by then)."""
    postfix.wait_for_message(message_id, timeout=30)
    time.sleep(settle)
    copies = postfix.messages_by_id().get(message_id, [])
    assert len(copies) == 1, "message %s delivered %d times: %s" % (message_id, len(copies), copies)


def backend_queue_id(postfix, message_id):
    return postfix.queue_id_for(message_id)


def test_real_postfix_waits_through_the_tarpit_and_is_delivered_once(
        mxguard, postfix, postfix_sender):
    mx = engine(mxguard, postfix, tarpit_delay="5s")
    # A real MTA: smtp_rcpt_timeout stays at Postfix's default (300s).
    snd = postfix_sender(mx.port, PATIENT, helo_name="p12-34.dyn.example.test")
    mid = new_message_id("pfsender-patient")
    t0 = time.monotonic()
    snd.send(message(mid))
    qid = snd.queue_id_for(mid)
    lines = snd.wait_for_status(qid, "sent", timeout=40)
    took = time.monotonic() - t0
    assert [s for s, _ in lines] == ["sent"], lines
    sent = lines[0][1]
    assert "relay=127.0.0.1[127.0.0.1]:%d" % mx.port in sent, sent
    assert took >= 4.9, took

    delivered_once(postfix, mid)
    # The backend saw the real client, and its queue id is what the sender logged.
    _, _, addr = postfix.smtpd_client_for(mid)
    assert addr == PATIENT
    assert "queued as %s" % backend_queue_id(postfix, mid) in sent, sent

    mx.wait_for_log(r"verdict client=127\.10\.0\.6 name=p12-34\.dyn\.example\.test "
                    r"helo=\"p12-34\.dyn\.example\.test\" from=<sender@client\.test> "
                    r"to=<rcpt@example\.test> verdict=suspect reason=s25r:r1")
    line = mx.wait_for_log(r"tarpit survived client=127\.10\.0\.6 .*after=(\d+\.\d)s").group(0)
    after = float(re.search(r"after=(\d+\.\d)s", line).group(1))
    assert 4.9 <= after < 7.0, line
    log = mx.log()
    assert "tarpit drop client=127.10.0.6" not in log, log[-4000:]
    assert "greylist" not in log, log[-4000:]
    assert snd.queue_empty()


def test_short_timeout_postfix_drops_out_is_greylisted_and_delivered_once(
        mxguard, postfix, postfix_sender):
    t_start = time.monotonic()
    mx = engine(mxguard, postfix, tarpit_delay="5s", greylist_delay="3s",
                greylist_retries="2")
    snd = postfix_sender(mx.port, IMPATIENT, helo_name="q56-78.dyn.example.test",
                         smtp_rcpt_timeout="2s", smtp_connect_timeout="5s")
    mid = new_message_id("pfsender-impatient")
    snd.send(message(mid))
    qid = snd.queue_id_for(mid)
    # Bounded: timeout (2s) + a few 1-2s backoffs until the 3s greylist passed.
    lines = snd.wait_for_status(qid, "sent", timeout=70)
    statuses = [s for s, _ in lines]
    assert statuses[-1] == "sent" and statuses.count("sent") == 1, lines
    assert set(statuses[:-1]) == {"deferred"}, lines
    # First attempt: gave up waiting for the RCPT reply (held in the tarpit).
    assert "timed out" in lines[0][1], lines[0][1]
    # Then at least one retry was greylisted with a 450 4.7.1 to RCPT.
    grey = [l for s, l in lines[1:-1] if "450 4.7.1" in l and "RCPT TO" in l]
    assert grey, lines
    assert len(lines) >= 3, lines
    # Nothing else: no other kind of deferral in between.
    assert len(grey) == len(lines) - 2, lines

    delivered_once(postfix, mid)
    _, _, addr = postfix.smtpd_client_for(mid)
    assert addr == IMPATIENT
    assert "queued as %s" % backend_queue_id(postfix, mid) in lines[-1][1], lines[-1][1]

    drop = mx.wait_for_log(r"tarpit drop client=127\.10\.0\.7 name=q56-78\.dyn\.example\.test "
                           r".*after=(\d+\.\d)s")
    after = float(drop.group(1))
    assert 1.9 <= after < 3.5, drop.group(0)
    assert re.search(r"tarpit drop client=127\.10\.0\.7 .* after=2\.\ds", drop.group(0)), \
        drop.group(0)
    # taRgrey's clock: the drop is the triplet's first sighting.
    new = mx.wait_for_log(r"greylist first key=127\.10\.0\.0/24\|sender@client\.test\|"
                          r"rcpt@example\.test")
    passed = mx.wait_for_log(r"greylist pass client=127\.10\.0\.7 .* age=(\d+)s retries=(\d+)")
    assert int(passed.group(1)) >= 3 and int(passed.group(2)) >= 2, passed.group(0)
    assert drop.start() < new.start() < passed.start()
    log = mx.log()
    # One tarpit episode only, one first sighting (at the drop), one pass;
    # every deferral after the tarpit is a greylist answer (early).
    assert log.count("tarpit start client=127.10.0.7") == 1, log[-4000:]
    assert log.count("tarpit survived") == 0, log[-4000:]
    assert log.count("greylist first key=127.10.0.0/24|") == 1, log[-4000:]
    assert log.count("greylist new client=127.10.0.7") == 0, log[-4000:]
    assert log.count("greylist pass client=127.10.0.7") == 1, log[-4000:]
    # With the first sighting at the drop, every greylisted retry is early.
    early = log.count("greylist early client=127.10.0.7")
    assert early == len(grey), (early, len(grey), log[-4000:])
    assert snd.queue_empty()
    assert time.monotonic() - t_start < 90
