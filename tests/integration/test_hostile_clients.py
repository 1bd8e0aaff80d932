"""Clients that fight the clock, the buffers or the protocol's edges.

Every stage has an absolute bound as well as an idle one; a client that
does not read cannot hold its slot; a half-close loses no reply; what the
MTA behind accepts (long DSN lines, bare addresses, bare LF) is not refused
by mxguard with a 5xx of its own; a pipelining MTA held in the tarpit is
not taken for a bot; a bot that survives the tarpit and then says nothing
does not hold a backend session.

All traffic stays on 127.0.0.0/8; every loop is bounded in count and time.
"""
import re
import socket
import threading
import time
import urllib.request

import pytest

from mxgtest import (ConnectionClosed, RawSMTP, free_port, make_message, new_message_id,
                     next_client_ip, wait_until)

SUSPECT = "127.10.0.8"     # r90-12.dyn.example.test (S25R r1), named by dnsmasq
SUSPECT2 = "127.10.0.2"    # a1-2-3.dyn.example.test (S25R r1)
EHLO_FLOOD = b"EHLO flood.test\r\n" * (1 << 19)
ENGINE = dict(default_action="inspect", client_lists="", awl_interval="0", greylist_delay="2s")


def inspect(mxguard, postfix, **params):
    p = dict(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
             default_action="inspect")
    p.update(params)
    return mxguard(**p)


def passing(mxguard, postfix, **params):
    p = dict(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
             default_action="pass")
    p.update(params)
    return mxguard(**p)


def engine(mxguard, postfix, **params):
    p = dict(ENGINE)
    p.update(params)
    return inspect(mxguard, postfix, **p)


def close_line(mx, client_id, timeout):
    return mx.close_line_for(client_id, timeout=timeout)


def flood_without_reading(c, data, limit_s):
    """Send data (over and over) in a thread, never reading; stops at the
    first error or at the time limit. Returns (thread, state)."""
    state = {"sent": 0, "error": None}
    deadline = time.monotonic() + limit_s
    c.sock.setblocking(True)

    def run():
        try:
            c.sock.settimeout(1.0)
            off = 0
            while time.monotonic() < deadline:
                try:
                    n = c.sock.send(data[off:off + 65536])
                except socket.timeout:
                    continue
                off = (off + n) % len(data)
                state["sent"] += n
        except OSError as e:
            state["error"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, state


def small_rcvbuf_client(port, source_ip=None):
    c = RawSMTP(port, source_ip=source_ip, connect=False)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.bind((c.source_ip, 0))
    c.sock.settimeout(10)
    c.sock.connect(("127.0.0.1", port))
    c._local = c.sock.getsockname()
    return c


# ---- deadlines in mxguard's own dialogue ---------------------------------

def test_client_that_never_reads_its_replies_times_out(mxguard, postfix):
    """NOOPs pipelined without ever reading: once the send queue is full,
    reading pauses; the blocked output must time out like idle input
    (before: still connected 40 s after smtp_timeout = 10s)."""
    mx = inspect(mxguard, postfix, smtp_timeout="3s")
    c = small_rcvbuf_client(mx.port)
    t0 = time.monotonic()
    t, state = flood_without_reading(c, b"NOOP\r\n" * 100000, limit_s=30)
    line = close_line(mx, c.client_id, timeout=25)
    took = time.monotonic() - t0
    assert " end=timeout" in line, line
    assert took < 20, took
    t.join(15)
    c.sock.close()
    assert mx.alive()


def test_line_trickled_a_byte_at_a_time_has_smtp_timeout_in_all(mxguard, postfix):
    """One byte a second never completes a line: the line's first byte
    started its clock (before: every byte restarted the idle timer)."""
    mx = inspect(mxguard, postfix, smtp_timeout="3s")
    with RawSMTP(mx.port, timeout=15) as c:
        assert c.read_reply().code == 220
        t0 = time.monotonic()
        reply = None
        for ch in b"NOOP xxxxxxxxxxxxxxxx":
            if time.monotonic() - t0 > 12:
                break
            try:
                c.send(bytes([ch]))
            except OSError:
                break
            try:
                c.sock.settimeout(1.0)
                data = c.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if data:
                reply = data
            break
        took = time.monotonic() - t0
    assert reply is not None and reply.startswith(b"421 4.4.2"), (reply, took)
    assert took < 6.5, took


def test_dialogue_has_a_total_bound(mxguard, postfix):
    """A NOOP every second is never idle, but the dialogue ends at
    dialogue_timeout (before: it went on as long as the client liked)."""
    mx = inspect(mxguard, postfix, smtp_timeout="5s", dialogue_timeout="10s")
    with RawSMTP(mx.port, timeout=5) as c:
        assert c.read_reply().code == 220
        t0 = time.monotonic()
        last = None
        for _ in range(25):
            try:
                last = c.cmd("NOOP", timeout=3)
            except (ConnectionClosed, OSError, socket.timeout):
                break
            if last.code != 250:
                break
            time.sleep(1)
        took = time.monotonic() - t0
    assert last is not None and last.raw[-1].startswith("421 4.4.2"), last
    assert 8 <= took <= 14, took


def test_closing_drain_ends_at_its_bound(mxguard, postfix):
    """After QUIT, a client that keeps trickling bytes is cut off at the
    drain's bound (documented as 5 s), not kept while it trickles (before:
    every byte restarted the drain's timer)."""
    mx = inspect(mxguard, postfix)
    with RawSMTP(mx.port, timeout=5) as c:
        assert c.read_reply().code == 220
        assert c.cmd("QUIT").code == 221
        t0 = time.monotonic()
        closed = False
        for _ in range(20):
            time.sleep(1)
            try:
                # Once mxguard has closed, our byte draws an RST and the
                # next send fails.
                c.send(b"x")
            except OSError:
                closed = True
                break
        took = time.monotonic() - t0
    assert closed, "still open after %.1fs of trickling" % took
    assert took < 9, took
    line = close_line(mx, c.client_id, timeout=5)
    assert " end=quit" in line, line


# ---- the relay ------------------------------------------------------------

class StuckBackend:
    """A backend that greets, then writes without end and never reads: what
    a client that floods without reading meets in a busy or hostile MTA.
    Bounded: LIFETIME seconds, at most 16 connections."""

    LIFETIME = 60.0

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._deadline = time.monotonic() + self.LIFETIME
        self._conns = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _running(self):
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _run(self):
        filler = b"250-" + b"x" * 1020 + b"\r\n"
        while self._running() and len(self._conns) < 16:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                conn = None
            except OSError:
                return
            if conn is not None:
                conn.setblocking(False)
                self._conns.append(conn)
                try:
                    conn.send(b"220 stuck.backend.test ESMTP\r\n")
                except OSError:
                    pass
            for c in self._conns:
                try:
                    c.send(filler)
                except OSError:
                    pass

    def close(self):
        self._stop.set()
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture
def stuck_backend():
    b = StuckBackend()
    yield b
    b.close()


def test_relay_with_both_sides_blocked_times_out(mxguard, stuck_backend):
    """Pass mode: the client floods and never reads, the backend writes and
    never reads. Both queues fill, both directions pause (before: no timer
    at all, held as long as both peers lived). The blocked write times out
    at relay_timeout."""
    mx = mxguard(backend=stuck_backend.address, backend_protocol="none",
                 default_action="pass", relay_timeout="10s")
    c = small_rcvbuf_client(mx.port)
    t0 = time.monotonic()
    t, state = flood_without_reading(c, EHLO_FLOOD, limit_s=45)
    line = close_line(mx, c.client_id, timeout=40)
    took = time.monotonic() - t0
    assert " end=timeout" in line, line
    assert took < 35, took
    t.join(15)
    c.sock.close()
    assert mx.alive()


def test_relay_trickle_ends_at_relay_max_time(mxguard, postfix):
    """A NOOP every second through the relay is never idle; relay_max_time
    bounds the whole session."""
    mx = passing(mxguard, postfix, relay_max_time="6s")
    with RawSMTP(mx.port, timeout=5) as c:
        assert c.read_reply(strict=False).code == 220
        t0 = time.monotonic()
        for _ in range(20):
            try:
                r = c.cmd("NOOP", timeout=3)
            except (ConnectionClosed, OSError, socket.timeout):
                break
            if r.code != 250:
                break
            time.sleep(1)
        took = time.monotonic() - t0
    assert 5 <= took <= 10, took
    line = close_line(mx, c.client_id, timeout=5)
    assert " end=timeout" in line, line


def _half_close_session(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((next_client_ip(), 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"EHLO halfclose.test\r\nQUIT\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def test_half_close_keeps_the_backends_replies(mxguard, postfix):
    """`nc -q1` style: EHLO and QUIT, then shutdown(SHUT_WR), then read.
    The backend's EHLO reply and its 221 must arrive (before: 0 of 20
    runs got the 221, the relay closed both sides on the client's EOF)."""
    mx = passing(mxguard, postfix)
    got = 0
    for _ in range(10):
        data = _half_close_session(mx.port)
        if re.search(rb"(?m)^221 ", data):
            got += 1
    assert got == 10, got


# ---- as tolerant as the MTA behind ------------------------------------------

def test_long_dsn_lines_and_bare_address_reach_postfix(mxguard, postfix):
    """RFC 3461 lines over 512 bytes, `MAIL FROM:user@domain` without
    brackets: Postfix accepts both, so mxguard must hand them over instead
    of answering 500/501 itself."""
    mx = inspect(mxguard, postfix)
    mid = new_message_id("dsn-long")
    envid = "E" * 90
    orcpt = "rfc822;" + "o" * 480 + "@example.test"
    with RawSMTP(mx.port, timeout=15) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO dsn.client.test").code == 250
        mail = "MAIL FROM:<dsn@client.test> RET=HDRS ENVID=%s" % envid
        assert c.cmd(mail).code == 250
        rcpt = "RCPT TO:<user@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=%s" % orcpt
        assert len(rcpt) > 512
        r = c.cmd(rcpt)
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send_message_data(make_message(mid))
        assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
    postfix.wait_for_message(mid, timeout=20)

    with RawSMTP(mx.port, timeout=15) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO bare.client.test").code == 250
        r = c.cmd("MAIL FROM:bare@client.test")
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<user@example.test>")
        assert r.code == 250, r
        assert c.cmd("QUIT").code == 221


def test_long_auth_line_is_the_backends_to_answer(mxguard, postfix):
    """An AUTH initial response over 512 bytes (RFC 4954 allows 12288):
    the answer is the backend's (this one has no SASL: 503), never
    mxguard's own 500 "line too long"."""
    mx = inspect(mxguard, postfix)
    with RawSMTP(mx.port, timeout=15) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO auth.client.test").code == 250
        r = c.cmd("AUTH PLAIN " + "QUFB" * 500)
        assert "line too long" not in " ".join(r.raw), r
        assert r.code != 500, r


# ---- the tarpit against real MTAs and stubborn bots --------------------------

def test_pipelined_batch_during_the_hold_is_kept_and_delivered(mxguard, postfix):
    """A suspect that pipelines MAIL, 40 RCPT and DATA in one write (RFC
    2920) is held, not dropped (before: `tarpit drop after=0.0s` and RST),
    and every recipient reaches Postfix after the hold."""
    mx = engine(mxguard, postfix, tarpit_delay="3s")
    mid = new_message_id("pipelined-40")
    rcpts = ["p%02d@example.test" % i for i in range(40)]
    with RawSMTP(mx.port, source_ip=SUSPECT, timeout=20) as c:
        assert c.read_reply(strict=False).code == 220
        assert c.cmd("EHLO r90-12.dyn.example.test").code == 250
        batch = "MAIL FROM:<list@client.test>\r\n"
        batch += "".join("RCPT TO:<%s>\r\n" % r for r in rcpts) + "DATA\r\n"
        assert len(batch) > 1024
        t0 = time.monotonic()
        c.send(batch)
        assert c.read_reply().code == 250          # MAIL, from mxguard
        replies = [c.read_reply(timeout=15) for _ in rcpts]
        held = time.monotonic() - t0
        assert [r.code for r in replies] == [250] * 40, replies
        assert c.read_reply().code == 354
        c.send_message_data(make_message(mid, rcpt=rcpts[0]))
        assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
    assert held >= 2.9, held
    mx.wait_for_log(r"tarpit survived client=127\.10\.0\.8 ")
    assert "tarpit drop client=127.10.0.8" not in mx.log()
    wait_until(lambda: len(postfix.messages_by_id().get(mid, [])) >= 40, 30,
               what="40 deliveries")


def test_bot_that_sends_data_before_354_during_the_hold_is_dropped(mxguard, postfix):
    """Bytes that break the protocol (message text before 354) mark a bot."""
    mx = engine(mxguard, postfix, tarpit_delay="3s")
    with RawSMTP(mx.port, source_ip=SUSPECT2, timeout=10) as c:
        assert c.read_reply(strict=False).code == 220
        assert c.cmd("EHLO bot.test").code == 250
        c.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n"
               "Subject: buy\r\n\r\nnow\r\n.\r\n")
        assert c.read_reply().code == 250
        assert c.is_closed(timeout=2.5), "a bot talking out of turn was kept"
    mx.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")


def test_stubborn_survivor_is_released_and_frees_the_backend(mxguard, postfix):
    """A bot that waits the tarpit out and then never sends another byte
    (nor closes) is released within survivor_timeout of the hand-off:
    QUIT to the backend, 421 to the client (before: it held the backend
    session until relay_timeout or smtpd_timeout)."""
    mx = engine(mxguard, postfix, tarpit_delay="2s", survivor_timeout="3s")
    with RawSMTP(mx.port, source_ip=SUSPECT, timeout=20) as c:
        assert c.read_reply(strict=False).code == 220
        assert c.cmd("EHLO r90-12.dyn.example.test").code == 250
        assert c.cmd("MAIL FROM:<stubborn@client.test>").code == 250
        r = c.cmd("RCPT TO:<user@example.test>", timeout=10)
        assert r.code == 250, r
        t0 = time.monotonic()
        replies = c.read_all_replies_until_close(timeout=10)
        took = time.monotonic() - t0
    assert [x.raw for x in replies] == [["421 4.4.2 mxguard.test Error: timeout exceeded"]], \
        replies
    assert 2.5 <= took <= 6, took
    line = close_line(mx, c.client_id, timeout=5)
    assert " end=silent" in line, line
    # The backend session ended with the QUIT mxguard sent for the client.
    postfix.wait_for_log(r"disconnect from \S+\[127\.10\.0\.8\].* quit=1", timeout=10)


def test_survivor_that_talks_is_not_released(mxguard, postfix):
    """A real MTA sends DATA at once after its RCPT reply: no release."""
    mx = engine(mxguard, postfix, tarpit_delay="2s", survivor_timeout="3s")
    mid = new_message_id("survivor-talks")
    with RawSMTP(mx.port, source_ip=SUSPECT, timeout=20) as c:
        assert c.read_reply(strict=False).code == 220
        assert c.cmd("EHLO r90-12.dyn.example.test").code == 250
        assert c.cmd("MAIL FROM:<real@client.test>").code == 250
        assert c.cmd("RCPT TO:<user@example.test>", timeout=10).code == 250
        time.sleep(1)
        assert c.cmd("DATA").code == 354
        time.sleep(3)  # slower than survivor_timeout, but it has spoken
        c.send_message_data(make_message(mid))
        assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
    postfix.wait_for_message(mid, timeout=20)
    assert " end=silent" not in close_line(mx, c.client_id, timeout=5)


def test_relay_memory_is_bounded_across_connections(mxguard, stuck_backend):
    """Eight clients flood without reading, their backend too: the bytes
    queued in all relays together stay near relay_memory_limit (1 MiB
    here), not 8 x 2 x 256 KiB."""
    port = free_port()
    mx = mxguard(backend=stuck_backend.address, backend_protocol="none",
                 default_action="pass", relay_memory_limit="1048576",
                 metrics_listen="127.0.0.1:%d" % port, relay_timeout="30s")
    clients, threads = [], []
    for _ in range(8):
        c = small_rcvbuf_client(mx.port)
        t, _ = flood_without_reading(c, EHLO_FLOOD, limit_s=12)
        clients.append(c)
        threads.append(t)
    peak = 0
    pauses = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read()
        m = re.search(rb"(?m)^mxguard_relay_buffer_bytes (\d+)", text)
        assert m, text[:2000]
        peak = max(peak, int(m.group(1)))
        p = re.search(rb"(?m)^mxguard_relay_memory_pauses_total (\d+)", text)
        pauses = int(p.group(1))
        time.sleep(0.5)
    for c in clients:
        c.sock.close()
    for t in threads:
        t.join(15)
    # The limit, plus at most one read (64 KiB) and one tight mark (16 KiB)
    # per side of each relay before it pauses.
    assert 1048576 <= peak <= 1048576 + 8 * 2 * (64 + 16) * 1024, peak
    assert pauses > 0
    assert mx.alive()


def test_real_postfix_pipelining_40_recipients_from_a_suspect(mxguard, postfix, postfix_sender):
    """A real Postfix smtp(8) pipelines MAIL, 40 RCPT and DATA (RFC 2920)
    from a dynamic-looking address: it waits the tarpit out and its first
    attempt delivers to every recipient (before: the batch overflowed the
    1 KiB input buffer, the rest arrived during the hold and counted as
    talking out of turn: `tarpit drop after=0.0s`, RST, deferred)."""
    mx = engine(mxguard, postfix, tarpit_delay="4s")
    snd = postfix_sender(mx.port, SUSPECT, helo_name="r90-12.dyn.example.test")
    mid = new_message_id("pf-pipelined-40")
    rcpts = ["list%02d@example.test" % i for i in range(40)]
    msg = ("From: <news@client.test>\nTo: <undisclosed@example.test>\nSubject: 40\n"
           "Message-ID: %s\nDate: Thu, 01 Jan 2026 00:00:00 +0000\n\nid %s\n"
           % (mid, mid)).encode()
    snd.send(msg, sender="news@client.test", rcpts=rcpts)
    qid = snd.queue_id_for(mid)

    def all_sent():
        d = snd.deliveries(qid)
        return d if sum(1 for s, _ in d if s == "sent") >= 40 else None
    lines = wait_until(all_sent, 60, interval=0.2, what="40 recipients sent")
    assert [s for s, _ in lines] == ["sent"] * 40, lines
    mx.wait_for_log(r"tarpit survived client=127\.10\.0\.8 ")
    log = mx.log()
    assert "tarpit drop client=127.10.0.8" not in log, log[-3000:]
    wait_until(lambda: len(postfix.messages_by_id().get(mid, [])) >= 40, 30,
               what="40 deliveries at the backend")


def test_clients_own_xclient_never_reaches_the_backend_as_ours(mxguard, postfix):
    """A client's XCLIENT in the dialogue is answered 502 by mxguard and is
    never replayed; pipelined behind RCPT it reaches Postfix as the
    client's own command, which Postfix refuses (its authorization is
    checked against the client mxguard named, not mxguard itself). The
    message keeps the real client address."""
    mx = mxguard(backend=postfix.backend_for("xclient"), backend_protocol="xclient",
                 default_action="inspect")
    mid = new_message_id("xclient-spoof")
    with RawSMTP(mx.port, timeout=15) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO spoof.client.test").code == 250
        assert c.cmd("XCLIENT ADDR=192.0.2.1 NAME=trusted.example").code == 502
        assert c.cmd("MAIL FROM:<spoof@client.test>").code == 250
        c.send("RCPT TO:<user@example.test>\r\nXCLIENT ADDR=192.0.2.2\r\n")
        assert c.read_reply().code == 250
        r = c.read_reply()
        assert r.code in (503, 550), r       # refused inside the transaction
        assert c.cmd("DATA").code == 354
        c.send_message_data(make_message(mid))
        assert c.read_reply().code == 250
        r = c.cmd("XCLIENT ADDR=192.0.2.3")
        assert r.code == 550, r              # and outside it: not authorized
        assert c.cmd("QUIT").code == 221
    _, _, addr = postfix.smtpd_client_for(mid)
    assert addr == c.source_ip, addr
