"""The taRgrey engine against real senders: the greylist clock starts at the
tarpit drop, keys that strangers cannot share, XCLIENT NAME, and an
auto-whitelist that counts deliveries, not survivals.

Sources are 127.11.x.y, named by a dnsmasq of this module (the session's
dnsmasq knows only 127.10/16): every name below is verified (PTR and A
agree); everything else in 127.11/16 has no PTR.
"""
import subprocess
import time

import pytest

from conftest import DnsMasq
from mxgtest import RawSMTP, is_listening, new_message_id, wait_until
from test_targrey import drop_out_of_tarpit, engine, finish, to_rcpt

HOSTS = {
    "127.11.0.1": "dhcp-81-5-1.example.net",   # S25R r1, directly under example.net
    "127.11.1.1": "dhcp-12.example.net",       # S25R r6, the same domain, another /24
    "127.11.2.1": "mta.out.pool.test",         # a sender's farm: not dynamic
    "127.11.3.1": "mtb.out.pool.test",         # the same farm, another /24
    "127.11.5.1": "mx.named.test",             # a verified, clean name (XCLIENT)
}


class SendersDns(DnsMasq):
    """dnsmasq with this module's names only."""

    def start(self):
        args = ["/usr/sbin/dnsmasq", "--no-daemon", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--user=root", "--pid-file=", "--local-ttl=600",
                "--local=/test/", "--local=/net/", "--local=/in-addr.arpa/",
                "--log-facility=%s" % (self.base / "dnsmasq.log")]
        for ip, name in HOSTS.items():
            args.append("--host-record=%s,%s" % (name, ip))
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_until(lambda: self.proc.poll() is not None or is_listening(self.port), 10,
                   what="dnsmasq listening")
        assert self.proc.poll() is None, self.proc.stderr.read().decode(errors="replace")
        return self


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = SendersDns(tmp_path_factory.mktemp("dns-senders")).start()
    yield d
    d.stop()


def eng(mxguard, postfix, dns, **params):
    params.setdefault("dns_resolvers", "127.0.0.1:%d" % dns.port)
    return engine(mxguard, postfix, **params)


# ---- 1. taRgrey's clock ----------------------------------------------------

def test_retry_after_greylist_delay_from_the_drop_passes(mxguard, postfix, dns):
    """Dropped at t=1 s, retried at t=8 s with greylist_delay = 6s: the
    tarpitted attempt was the first sighting, so the retry is on time (250;
    it was 450 `greylist new` when the clock started at the retry)."""
    mx = eng(mxguard, postfix, dns, tarpit_delay="5s", greylist_delay="6s",
             greylist_retries="1")
    src = "127.11.4.1"
    t0 = time.monotonic()
    drop_out_of_tarpit(mx, src, after=1.0, rcpt="clock@example.test")
    mx.wait_for_log(r"tarpit drop client=127\.11\.4\.1 ")
    time.sleep(max(0.0, 8.0 - (time.monotonic() - t0)))
    mid = new_message_id("clock")
    c, r, took = to_rcpt(mx, src, rcpt="clock@example.test")
    assert r.code == 250 and took < 2.0, (r, took)
    finish(c, mid, rcpt="clock@example.test")
    postfix.wait_for_message(mid)
    mx.wait_for_log(r"greylist pass client=127\.11\.4\.1 .*retries=1")


def test_greylist_retries_counts_comebacks_after_the_drop(mxguard, postfix, dns):
    """greylist_retries = 2: the drop is the first sighting; the first
    comeback (old enough) is early, the second passes. Before, the first
    comeback only created the triplet, so it took three."""
    mx = eng(mxguard, postfix, dns, tarpit_delay="5s", greylist_delay="2s",
             greylist_retries="2")
    src = "127.11.4.2"
    drop_out_of_tarpit(mx, src, after=0.5, rcpt="twice@example.test")
    mx.wait_for_log(r"tarpit drop client=127\.11\.4\.2 ")
    time.sleep(2.2)
    c, r, _ = to_rcpt(mx, src, rcpt="twice@example.test")
    assert r.code == 450, r
    c.close()
    mx.wait_for_log(r"greylist early client=127\.11\.4\.2 .*retries=1")
    c, r, took = to_rcpt(mx, src, rcpt="twice@example.test")
    assert r.code == 250 and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"greylist pass client=127\.11\.4\.2 .*retries=2")


# ---- 2. keys that strangers cannot share -----------------------------------

def test_a_host_of_the_same_domain_is_not_let_through_by_another(mxguard, postfix, dns):
    """dhcp-81-5-1.example.net is rescued by the greylist; dhcp-12.example.net
    on its first contact with the same sender and recipient is tarpitted,
    not passed at once (both were keyed example.net before)."""
    mx = eng(mxguard, postfix, dns, tarpit_delay="3s", greylist_delay="1s",
             greylist_retries="1")
    drop_out_of_tarpit(mx, "127.11.0.1", after=0.5)
    mx.wait_for_log(r"tarpit drop client=127\.11\.0\.1 name=dhcp-81-5-1\.example\.net ")
    time.sleep(1.2)
    c, r, _ = to_rcpt(mx, "127.11.0.1")
    assert r.code == 250, r
    c.close()
    mx.wait_for_log(r"greylist pass client=127\.11\.0\.1 ")
    c, r, took = to_rcpt(mx, "127.11.1.1")
    assert r.code == 250 and took >= 2.9, (r, took)   # the tarpit, not a pass
    c.close()
    mx.wait_for_log(r"tarpit start client=127\.11\.1\.1 name=dhcp-12\.example\.net ")
    assert "greylist pass client=127.11.1.1 " not in mx.log()


def test_a_sender_farm_keeps_its_pool_key(mxguard, postfix, dns, tmp_path):
    """Names that do not look dynamic, two labels below the registrable
    domain, share the pool key: a farm that retries from another host (and
    another /24) is recognised and greylisted, not tarpitted again."""
    lst = tmp_path / "suspect.regexp"
    lst.write_text("/\\.out\\.pool\\.test$/ SUSPECT\n")
    mx = eng(mxguard, postfix, dns, tarpit_delay="3s", client_lists="regexp:%s" % lst)
    drop_out_of_tarpit(mx, "127.11.2.1", after=0.5, rcpt="farm@example.test")
    mx.wait_for_log(r"greylist first key=out\.pool\.test\|sender@client\.test\|farm@")
    c, r, took = to_rcpt(mx, "127.11.3.1", rcpt="farm@example.test")
    assert r.code == 450 and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"greylist early client=127\.11\.3\.1 name=mtb\.out\.pool\.test ")


# ---- 3. XCLIENT NAME ---------------------------------------------------------

@pytest.mark.parametrize("action", ["pass", "inspect"])
def test_xclient_name_is_the_verified_name(mxguard, postfix, dns, action):
    mx = mxguard(default_action=action, client_lists="", backend_protocol="xclient",
                 backend=postfix.backend_for("xclient"),
                 dns_resolvers="127.0.0.1:%d" % dns.port)
    mid = new_message_id("xname-" + action)
    c = RawSMTP(mx.port, source_ip="127.11.5.1", timeout=20)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO named.test").code == 250
    assert c.cmd("MAIL FROM:<a@named.test>").code == 250
    assert c.cmd("RCPT TO:<user@example.test>").code == 250
    finish(c, mid)
    postfix.wait_for_message(mid)
    service, client, addr = postfix.smtpd_client_for(mid)
    assert client == "mx.named.test[127.11.5.1]", (service, client)


def test_xclient_name_unavailable_without_a_name(mxguard, postfix, dns):
    mx = mxguard(default_action="pass", client_lists="", backend_protocol="xclient",
                 backend=postfix.backend_for("xclient"),
                 dns_resolvers="127.0.0.1:%d" % dns.port)
    mid = new_message_id("xname-none")
    c = RawSMTP(mx.port, source_ip="127.11.5.2", timeout=20)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO nameless.test").code == 250
    assert c.cmd("MAIL FROM:<a@nameless.test>").code == 250
    assert c.cmd("RCPT TO:<user@example.test>").code == 250
    finish(c, mid)
    postfix.wait_for_message(mid)
    assert postfix.smtpd_client_for(mid)[1] == "unknown[127.11.5.2]"


# ---- 5. the auto-whitelist counts deliveries ---------------------------------

AWL = dict(awl_count="2", awl_interval="0", tarpit_delay="1s")


def test_survivor_that_sends_nothing_never_earns_the_awl(mxguard, postfix, dns):
    """A client that survives the tarpit and then says nothing (QUIT at
    once, or a bare close) is never counted: its fourth visit is tarpitted
    again (before: `awl pass` after two survivals)."""
    mx = eng(mxguard, postfix, dns, **AWL)
    for i in range(3):
        c, r, took = to_rcpt(mx, "127.11.6.1")
        assert r.code == 250 and took >= 0.9, (i, r, took)
        if i % 2 == 0:
            c.cmd("QUIT")
        c.close()
        mx.wait_for_log(r"(?s)(tarpit survived client=127\.11\.6\.1 .*){%d}" % (i + 1))
    c, r, took = to_rcpt(mx, "127.11.6.1")
    assert r.code == 250 and took >= 0.9, (r, took)
    c.close()
    time.sleep(0.5)
    assert "awl add" not in mx.log() and "awl pass" not in mx.log()


def test_survivor_that_delivers_earns_the_awl(mxguard, postfix, dns):
    mx = eng(mxguard, postfix, dns, **AWL)
    for i in range(2):
        mid = new_message_id("awl%d" % i)
        c, r, took = to_rcpt(mx, "127.11.7.1")
        assert r.code == 250 and took >= 0.9, (i, r, took)
        finish(c, mid)
        postfix.wait_for_message(mid)
        mx.wait_for_log(r"awl add key=127\.11\.7\.0/24 count=%d" % (i + 1))
    c, r, took = to_rcpt(mx, "127.11.7.1")
    assert r.code == 250 and took < 0.9, (r, took)
    c.close()
    mx.wait_for_log(r"awl pass client=127\.11\.7\.1 ")

