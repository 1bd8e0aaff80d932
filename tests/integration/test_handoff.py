"""Hand-off to the real Postfix backend: pass and inspect modes."""

import random
import re
import ssl
import subprocess
import time

import pytest

from mxgtest import (RawSMTP, ehlo_keywords, header_values, make_message, new_message_id,
                     next_client_ip, smtp_client, wait_until)

INSPECT_KEEP = {"PIPELINING", "SIZE", "STARTTLS", "AUTH", "ENHANCEDSTATUSCODES", "8BITMIME", "DSN",
                "SMTPUTF8", "CHUNKING", "BINARYMIME"}


def _body(tag):
    return ("Body of %s.\r\nSecond line with trailing spaces   \r\n\r\n"
            "..a line that starts with a dot\r\n.\r\nlast line\r\n" % tag).encode()


def _lf(b):
    return b.replace(b"\r\n", b"\n")


def _received_from(headers):
    """The topmost Received header (the one Postfix added)."""
    values = header_values(headers, "Received")
    assert values, headers
    return values[0]


# ---------------------------------------------------------------------------
# pass mode


@pytest.mark.parametrize("protocol", ["proxy2", "proxy1", "xclient"])
def test_pass_delivers_with_real_client_address(postfix, mxguard, protocol):
    mx = mxguard(backend=postfix.backend_for(protocol), backend_protocol=protocol,
                 default_action="pass")
    mid = new_message_id("pass-" + protocol)
    body = _body(mid)
    s, code, greeting, ip = smtp_client(mx.port)
    try:
        assert code == 220
        lines = greeting.decode().split("\n")
        assert lines[0] == "mxguard.test ESMTP mxguard", lines
        # The backend's 220 is forwarded as the final greeting line.
        assert lines[-1] == postfix.banner, lines
        s.ehlo()
        assert s.does_esmtp
        s.sendmail("sender@client.test", ["user@example.test"], make_message(mid, body=body))
        code, _ = s.quit()
        assert code == 221
    finally:
        s.close()
    headers, got = postfix.wait_for_message(mid)
    assert got == _lf(body)
    service, name, addr = postfix.smtpd_client_for(mid)
    assert addr == ip, (name, ip)
    assert re.search(r"from client\.test \(\S* ?\[%s\]\)" % re.escape(ip), _received_from(headers))
    if protocol in ("proxy1", "proxy2"):
        assert service == "proxy"
        postfix.wait_for_log(r"postfix/proxy/smtpd\[\d+\]: connect from \S*\[%s\]" % re.escape(ip))
    else:
        # Postfix logs `connect from` for the TCP peer (mxguard, 127.0.0.1)
        # before XCLIENT; everything after XCLIENT names the real client.
        assert service == "xclient"
        postfix.wait_for_log(r"postfix/xclient/smtpd\[\d+\]: disconnect from \S*\[%s\]" % re.escape(ip))


def test_pass_none_protocol_backend_sees_mxguard(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("none"), backend_protocol="none", default_action="pass")
    mid = new_message_id("pass-none")
    body = _body(mid)
    s, code, greeting, ip = smtp_client(mx.port)
    try:
        assert code == 220
        assert greeting.decode().split("\n")[-1] == postfix.banner
        s.sendmail("sender@client.test", ["user@example.test"], make_message(mid, body=body))
        s.quit()
    finally:
        s.close()
    headers, got = postfix.wait_for_message(mid)
    assert got == _lf(body)
    # Without PROXY/XCLIENT the backend only knows mxguard's address.
    service, name, addr = postfix.smtpd_client_for(mid)
    assert (service, addr) == ("plain", "127.0.0.1")
    assert addr != ip
    assert "[%s]" % ip not in postfix.maillog_text()


def test_pass_with_swaks(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass")
    ip = next_client_ip()
    mid = new_message_id("swaks")
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(mx.port), "--local-interface", ip,
         "--ehlo", "swaks.client.test", "--from", "swaks@client.test", "--to", "user@example.test",
         "--header", "Message-Id: %s" % mid, "--header", "Subject: swaks through mxguard",
         "--body", "swaks body line 1\nswaks body line 2\n", "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "<-  220-mxguard.test ESMTP mxguard" in out, out
    assert "<-  220 " + postfix.banner in out, out
    headers, body = postfix.wait_for_message(mid)
    assert b"swaks body line 1\nswaks body line 2\n" in body
    assert postfix.smtpd_client_for(mid)[2] == ip
    assert re.search(r"from swaks\.client\.test \(\S* ?\[%s\]\)" % re.escape(ip), _received_from(headers))


def test_pass_50mb_8bit_message_byte_exact(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass")
    rnd = random.Random(0x6d78)
    width = 998
    nlines = (50 * 1024 * 1024) // (width + 2) + 16
    # Every byte value except NUL, CR and LF; many 8-bit bytes.
    table = bytes(range(256)).replace(b"\x00", b"\x01").replace(b"\n", b"\x80").replace(b"\r", b"\xff")
    blob = rnd.randbytes(width * nlines).translate(table)
    lines = [blob[i * width:(i + 1) * width] for i in range(nlines)]
    # SMTP transparency: a lone dot, dot-prefixed lines, an empty line.
    lines[10] = b"."
    lines[11] = b".." + lines[11][2:]
    lines[12] = b""
    lines[13] = b"." + lines[13][1:]
    lines[-1] = b"."
    body = b"\r\n".join(lines) + b"\r\n"
    size = len(body)
    assert size >= 50 * 1024 * 1024, size
    mid = new_message_id("big8bit")
    head = ("From: <big@client.test>\r\nTo: <user@example.test>\r\nSubject: 50 MB 8bit\r\n"
            "Message-ID: %s\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" % mid).encode()
    s, code, greeting, ip = smtp_client(mx.port, timeout=120)
    try:
        assert code == 220
        s.ehlo()
        assert s.has_extn("8bitmime")
        refused = s.sendmail("big@client.test", ["user@example.test"], head + body,
                             mail_options=["BODY=8BITMIME"])
        assert refused == {}
        s.quit()
    finally:
        s.close()
    headers, got = postfix.wait_for_message(mid, timeout=120)
    expected = _lf(body)
    assert len(got) == len(expected), (len(got), len(expected))
    if got != expected:
        step = 1 << 16
        blk = next(i for i in range(0, len(got), step) if got[i:i + step] != expected[i:i + step])
        first = next(i for i in range(blk, blk + step) if got[i] != expected[i])
        pytest.fail("body differs at byte %d: got %r expected %r"
                    % (first, got[first:first + 40], expected[first:first + 40]))
    assert postfix.smtpd_client_for(mid)[2] == ip


# ---------------------------------------------------------------------------
# inspect mode


@pytest.mark.parametrize("protocol", ["proxy2", "xclient"])
def test_inspect_ehlo_mirrors_backend_capabilities(postfix, mxguard, protocol):
    mx = mxguard(backend=postfix.backend_for(protocol), backend_protocol=protocol,
                 default_action="inspect")
    offered = postfix.ehlo_keywords("xclient")
    assert "XCLIENT" in offered and "PIPELINING" in offered and "8BITMIME" in offered
    # The EHLO answer mirrors what the start-up probe learnt: until it has
    # learnt it (on a busy machine, the first client may come first),
    # mxguard offers its safe minimum. Bounded: 50 tries, 0.1 s apart.
    for attempt in range(50):
        c = RawSMTP(mx.port)
        g = c.read_reply()
        assert g.code == 220
        assert g.lines == ["mxguard.test ESMTP mxguard"] * 2, g
        r = c.cmd("EHLO mirror.client.test")
        assert r.code == 250, r
        if "SIZE" in ehlo_keywords(r) or attempt == 49:
            break
        assert c.cmd("QUIT").code == 221
        c.close()
        time.sleep(0.1)
    with c:
        # Answered by mxguard itself, not by the backend.
        assert r.lines[0].split()[0] == "mxguard.test", r
        got = ehlo_keywords(r)
        assert len(got) == len(set(got)), r
        assert "XCLIENT" not in got and "XFORWARD" not in got
        assert "PIPELINING" in got and "8BITMIME" in got
        assert set(got) == set(offered) & INSPECT_KEEP, r
        size = [l for l in r.lines[1:] if l.upper().startswith("SIZE")]
        assert size == ["SIZE 100000000"], r
        assert c.cmd("QUIT").code == 221


@pytest.mark.parametrize("protocol", ["proxy2", "proxy1", "xclient"])
def test_inspect_replays_helo_mail_rcpt(postfix, mxguard, protocol):
    mx = mxguard(backend=postfix.backend_for(protocol), backend_protocol=protocol,
                 default_action="inspect")
    mid = new_message_id("inspect-" + protocol)
    helo = "inspect-%s.client.test" % protocol
    body = _body(mid)
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO " + helo).code == 250
        r = c.cmd("MAIL FROM:<replay-%s@client.test>" % protocol)
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<user@example.test>")
        assert r.code == 250, r
        r = c.cmd("DATA")
        assert r.code == 354, r
        c.send_message_data(make_message(mid, body=body))
        r = c.read_reply()
        assert r.code == 250, r
        assert c.cmd("QUIT").code == 221
        ip = c.source_ip
    headers, got = postfix.wait_for_message(mid)
    assert got == _lf(body)
    service, name, addr = postfix.smtpd_client_for(mid)
    assert addr == ip
    received = _received_from(headers)
    assert re.search(r"from %s \(\S* ?\[%s\]\)" % (re.escape(helo), re.escape(ip)), received), received
    assert header_values(headers, "Return-Path") == ["<replay-%s@client.test>" % protocol]


def test_inspect_replays_plain_helo(postfix, mxguard):
    """HELO (not EHLO) is replayed as HELO: Postfix records `with SMTP`."""
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect")
    mid = new_message_id("inspect-helo")
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        r = c.cmd("HELO plain-helo.client.test")
        assert r.code == 250 and len(r.lines) == 1, r
        assert c.cmd("MAIL FROM:<helo@client.test>").code == 250
        assert c.cmd("RCPT TO:<user@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send_message_data(make_message(mid))
        assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
        ip = c.source_ip
    headers, _ = postfix.wait_for_message(mid)
    received = _received_from(headers)
    assert re.search(r"from plain-helo\.client\.test \(\S* ?\[%s\]\)" % re.escape(ip), received), received
    assert re.search(r"\bwith SMTP\b", received), received


def test_inspect_rset_before_mail_and_between_mails(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect")
    mid = new_message_id("inspect-rset")
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO rset.client.test").code == 250
        assert c.cmd("RSET").code == 250
        assert c.cmd("NOOP").code == 250
        assert c.cmd("MAIL FROM:<first@client.test>").code == 250
        assert c.cmd("RSET").code == 250
        # The transaction was reset: the replayed MAIL must be this one.
        assert c.cmd("MAIL FROM:<second@client.test>").code == 250
        assert c.cmd("RCPT TO:<user@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send_message_data(make_message(mid))
        assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
    headers, _ = postfix.wait_for_message(mid)
    assert header_values(headers, "Return-Path") == ["<second@client.test>"]


def test_inspect_pipelined_mail_rcpt_data(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect")
    mid = new_message_id("inspect-pipe")
    body = _body(mid)
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        r = c.cmd("EHLO pipe.client.test")
        assert "PIPELINING" in ehlo_keywords(r)
        c.send(b"MAIL FROM:<pipe@client.test>\r\nRCPT TO:<user@example.test>\r\nDATA\r\n")
        codes = [c.read_reply().code for _ in range(3)]
        assert codes == [250, 250, 354]
        c.send_message_data(make_message(mid, body=body))
        assert c.read_reply().code == 250
        assert c.cmd("QUIT").code == 221
        ip = c.source_ip
    headers, got = postfix.wait_for_message(mid)
    assert got == _lf(body)
    assert postfix.smtpd_client_for(mid)[2] == ip
    assert header_values(headers, "Return-Path") == ["<pipe@client.test>"]


def test_inspect_pipelined_mail_rcpt_rcpt_data_quit(postfix, mxguard):
    """Two RCPTs (the second arrives while the hand-off for the first is in
    progress) and the whole transaction in a single write."""
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect")
    mid = new_message_id("inspect-pipe2")
    data = make_message(mid)
    with RawSMTP(mx.port) as c:
        assert c.read_reply().code == 220
        assert c.cmd("EHLO pipe2.client.test").code == 250
        c.send(b"MAIL FROM:<pipe2@client.test>\r\nRCPT TO:<a@example.test>\r\n"
               b"RCPT TO:<b@example.test>\r\nDATA\r\n" + data + b".\r\nQUIT\r\n")
        codes = [c.read_reply().code for _ in range(6)]
        assert codes == [250, 250, 250, 354, 250, 221]
        assert c.is_closed(5)
    # One queue file with two recipients: virtual delivers it to the one
    # Maildir twice (once per recipient).
    postfix.wait_for_message_ids([mid])
    wait_until(lambda: len(postfix.messages_by_id().get(mid, [])) >= 2, 20,
               what="both recipients delivered")
    time.sleep(0.5)
    assert len(postfix.messages_by_id()[mid]) == 2
    qid = postfix.queue_id_for(mid)
    postfix.wait_for_log(r"%s: to=<a@example\.test>.*status=sent" % qid)
    postfix.wait_for_log(r"%s: to=<b@example\.test>.*status=sent" % qid)


def _wait_for_probe(mx, keyword):
    """The capability probe runs once the daemon is ready; a client racing it
    sees the built-in capabilities. Wait (bounded) until the probe is in."""
    def offered():
        with RawSMTP(mx.port, timeout=5) as c:
            c.read_reply()
            return any(keyword in line for line in c.cmd("EHLO wait.test").raw)
    wait_until(offered, 10, what="the backend's %s in mxguard's EHLO" % keyword)


def test_inspect_starttls_reaches_backend(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect")
    _wait_for_probe(mx, "STARTTLS")
    mid = new_message_id("inspect-tls")
    body = _body(mid)
    s, code, greeting, ip = smtp_client(mx.port)
    try:
        assert code == 220
        s.ehlo("tls.client.test")
        assert s.has_extn("starttls")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        code, _ = s.starttls(context=ctx)
        assert code == 220
        peer = s.sock.getpeercert(binary_form=True)
        with open(postfix.cert_file) as f:
            expected = ssl.PEM_cert_to_DER_cert(f.read())
        assert peer == expected, "TLS peer certificate is not the backend's"
        s.ehlo("tls.client.test")
        # After STARTTLS the EHLO answer comes from Postfix itself.
        assert "STARTTLS" not in s.esmtp_features and "starttls" not in s.esmtp_features
        s.sendmail("tls@client.test", ["user@example.test"], make_message(mid, body=body))
        s.quit()
    finally:
        s.close()
    headers, got = postfix.wait_for_message(mid)
    assert got == _lf(body)
    received = _received_from(headers)
    assert "ESMTPS" in received, received
    assert postfix.smtpd_client_for(mid)[2] == ip
