"""Self-test of the Postfix backend harness (no mxguard involved).

If these fail, every other result in the suite is meaningless: the backend
itself does not deliver or does not log what the other tests look for.
"""

import re

from mxgtest import (RawSMTP, make_message, new_message_id, next_client_ip, proxy_v1_header,
                     proxy_v2_header, header_values, smtp_client)


def _direct_session(c, message_id, helo="direct.test"):
    assert c.read_reply().code == 220
    assert c.cmd("EHLO " + helo).code == 250
    assert c.cmd("MAIL FROM:<s@client.test>").code == 250
    assert c.cmd("RCPT TO:<user@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send_message_data(make_message(message_id))
    r = c.read_reply()
    assert r.code == 250, r
    assert c.cmd("QUIT").code == 221


def test_postfix_plain_delivers(postfix):
    mid = new_message_id("selftest-plain")
    s, code, msg, ip = smtp_client(postfix.plain_port)
    assert code == 220 and postfix.banner.encode() in msg
    s.sendmail("s@client.test", ["user@example.test"], make_message(mid))
    s.quit()
    headers, body = postfix.wait_for_message(mid)
    assert b"Hello from the mxguard integration tests." in body
    service, name, addr = postfix.smtpd_client_for(mid)
    assert (service, addr) == ("plain", ip)


def test_postfix_haproxy_v1_and_v2(postfix):
    for hdr in (proxy_v1_header, proxy_v2_header):
        fake = next_client_ip()
        mid = new_message_id("selftest-proxy")
        with RawSMTP(postfix.proxy_port, source_ip="127.0.0.1") as c:
            c.send(hdr(fake, 40000, "127.0.0.1", postfix.proxy_port))
            _direct_session(c, mid)
        postfix.wait_for_message(mid)
        postfix.wait_for_log(r"postfix/proxy/smtpd\[\d+\]: connect from \S*\[%s\]" % re.escape(fake))
        assert postfix.smtpd_client_for(mid)[2] == fake


def test_postfix_xclient(postfix):
    fake = next_client_ip()
    mid = new_message_id("selftest-xclient")
    with RawSMTP(postfix.xclient_port, source_ip="127.0.0.1") as c:
        assert c.read_reply().code == 220
        r = c.cmd("EHLO probe.test")
        assert "XCLIENT" in r.text
        r = c.cmd("XCLIENT NAME=[UNAVAILABLE] ADDR=%s PORT=40001 PROTO=ESMTP HELO=xc.test" % fake)
        assert r.code == 220, r
        assert c.cmd("EHLO xc.test").code == 250
        assert c.cmd("MAIL FROM:<s@client.test>").code == 250
        assert c.cmd("RCPT TO:<user@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send_message_data(make_message(mid))
        assert c.read_reply().code == 250
        c.cmd("QUIT")
    headers, body = postfix.wait_for_message(mid)
    assert postfix.smtpd_client_for(mid)[2] == fake
    received = header_values(headers, "Received")[0]
    assert re.search(r"from xc\.test \(.*\[%s\]\)" % re.escape(fake), received), received


def test_postfix_rejects_missing_proxy_header(postfix):
    # The haproxy service must not accept a plain SMTP client: proves the
    # PROXY tests really exercise the header.
    with RawSMTP(postfix.proxy_port, source_ip=next_client_ip()) as c:
        c.send("EHLO x\r\n")
        try:
            data = c.read_reply(timeout=15)
            assert data.code != 220
        except Exception:
            pass
        assert c.is_closed(timeout=15)
