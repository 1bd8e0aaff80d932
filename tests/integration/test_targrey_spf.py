"""SPF-aware keys (greylist_spf): a suspect whose sender domain's SPF record
passes for its address is keyed spf:<domain>, so a big sender retrying from
another address it authorises is recognised; anything else (fail, a record
over RFC 7208's limits, a DNS timeout) keeps the network key.

Sources are 127.13.x.y, named and served SPF records by a dnsmasq of this
module: only the two pool hosts below have (verified, dynamic-looking)
names; everything else in 127.13/16 has no PTR (a suspect, keyed by /24).
"""
import socket
import subprocess
import time

import pytest

from conftest import DnsMasq
from mxgtest import is_listening, new_message_id, wait_until
from test_targrey import drop_out_of_tarpit, engine, finish, to_rcpt

HOSTS = {
    "127.13.1.5": "dyn-127-13-1-5.senders.test",  # S25R r1: keyed by network
    "127.13.2.7": "dyn-127-13-2-7.senders.test",  # the same sender's other /24
}
INCLUDES = ["i%d.spf.test" % i for i in range(1, 13)]
TXT = {
    "pool.spf.test": ["v=spf1 ip4:127.13.1.0/24 ip4:127.13.2.0/24 -all"],
    "fail.spf.test": ["v=spf1 ip4:127.13.9.0/24 -all"],
    # 12 includes that do not match, then a match: over the limit of 10
    # DNS-querying terms before the match is reached. Two strings: one record.
    "many.spf.test": ["v=spf1 " + " ".join("include:" + d for d in INCLUDES[:6]),
                      " " + " ".join("include:" + d for d in INCLUDES[6:]) +
                      " ip4:127.13.0.0/16 -all"],
}
for _d in INCLUDES:
    TXT[_d] = ["v=spf1 -all"]


class SpfDns(DnsMasq):
    """dnsmasq with this module's names and TXT records; slow.spf.test is
    forwarded to a UDP socket that never answers."""

    def start(self):
        self.hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.hole.bind(("127.0.0.1", 0))
        args = ["/usr/sbin/dnsmasq", "--no-daemon", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--user=root", "--pid-file=", "--local-ttl=600",
                "--local=/test/", "--local=/in-addr.arpa/",
                "--server=/slow.spf.test/127.0.0.1#%d" % self.hole.getsockname()[1],
                "--log-facility=%s" % (self.base / "dnsmasq.log")]
        for ip, name in HOSTS.items():
            args.append("--host-record=%s,%s" % (name, ip))
        for name, strings in TXT.items():
            # On the command line dnsmasq keeps quotes: the strings go bare
            # (none has a comma).
            args.append("--txt-record=%s,%s" % (name, ",".join(strings)))
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        wait_until(lambda: self.proc.poll() is not None or is_listening(self.port), 10,
                   what="dnsmasq listening")
        assert self.proc.poll() is None, self.proc.stderr.read().decode(errors="replace")
        return self

    def stop(self):
        super().stop()
        self.hole.close()


@pytest.fixture(scope="module")
def dns(tmp_path_factory):
    d = SpfDns(tmp_path_factory.mktemp("dns-spf")).start()
    yield d
    d.stop()


def eng(mxguard, postfix, dns, **params):
    params.setdefault("dns_resolvers", "127.0.0.1:%d" % dns.port)
    params.setdefault("dns_timeout", "1s")
    return engine(mxguard, postfix, tarpit_delay="3s", greylist_delay="2s",
                  greylist_retries="1", **params)


def test_pool_sender_retry_from_another_authorised_net_passes(mxguard, postfix, dns):
    """Dropped from 127.13.1.5; the retry after greylist_delay comes from
    127.13.2.7, another /24 the domain's SPF record authorises: both are
    keyed spf:pool.spf.test, so the retry is greylisted on time and passes
    at once (with network keys it was tarpitted anew: 3 s, then 250)."""
    mx = eng(mxguard, postfix, dns)
    snd, rcpt = "news@pool.spf.test", "pool@example.test"
    drop_out_of_tarpit(mx, "127.13.1.5", after=0.5, sender=snd, rcpt=rcpt)
    mx.wait_for_log(r"tarpit drop client=127\.13\.1\.5 name=dyn-127-13-1-5\.senders\.test "
                    r".* spf=pass key=spf:pool\.spf\.test")
    mx.wait_for_log(r"greylist first key=spf:pool\.spf\.test\|news@pool\.spf\.test\|pool@")
    time.sleep(2.3)
    mid = new_message_id("spfpool")
    c, r, took = to_rcpt(mx, "127.13.2.7", sender=snd, rcpt=rcpt)
    assert r is not None and r.code == 250 and took < 2.0, (r, took)
    finish(c, mid, rcpt=rcpt)
    postfix.wait_for_message(mid)
    mx.wait_for_log(r"greylist pass client=127\.13\.2\.7 name=dyn-127-13-2-7\.senders\.test "
                    r".* spf=pass key=spf:pool\.spf\.test")
    assert "tarpit start client=127.13.2.7 " not in mx.log()


def test_spf_fail_keeps_the_network_key(mxguard, postfix, dns):
    """The domain does not authorise 127.13/24s: the retry from the other
    /24 starts over in the tarpit, and the log says why."""
    mx = eng(mxguard, postfix, dns)
    snd = "a@fail.spf.test"
    drop_out_of_tarpit(mx, "127.13.1.6", after=0.5, sender=snd)
    mx.wait_for_log(r"tarpit drop client=127\.13\.1\.6 .* spf=fail:all key=127\.13\.1\.0/24")
    time.sleep(2.3)
    c, r, took = to_rcpt(mx, "127.13.2.8", sender=snd)
    assert r is not None and r.code == 250 and took >= 2.9, (r, took)   # tarpitted again
    c.close()
    mx.wait_for_log(r"tarpit start client=127\.13\.2\.8 .* spf=fail:all key=127\.13\.2\.0/24")


def test_twelve_includes_are_a_permerror_and_keep_the_network_key(mxguard, postfix, dns):
    """A record with 12 includes (the match comes after them) is over the
    limit of 10 DNS terms: permerror, the network key, a tarpit."""
    mx = eng(mxguard, postfix, dns)
    c, r, took = to_rcpt(mx, "127.13.1.9", sender="x@many.spf.test")
    assert r is not None and r.code == 250 and took >= 2.9, (r, took)
    c.close()
    mx.wait_for_log(r"tarpit start client=127\.13\.1\.9 .* "
                    r"spf=permerror:dns-term-limit key=127\.13\.1\.0/24")
    assert "spf=pass" not in mx.log()


def test_dns_timeout_falls_back_within_the_bound(mxguard, postfix, dns):
    """The sender domain's servers never answer: after the bound (2 x
    dns_timeout = 2 s) the SPF step gives temperror and the client goes
    on with its network key: a tarpit, never a reject."""
    mx = eng(mxguard, postfix, dns)
    c, r, took = to_rcpt(mx, "127.13.1.10", sender="x@slow.spf.test")
    assert r is not None and r.code == 250, (r, took)
    # The tarpit (3 s) after at most the bound (2 s); generous for a busy machine.
    assert 2.9 <= took < 3 + 2 + 4, took
    c.close()
    mx.wait_for_log(r"tarpit start client=127\.13\.1\.10 .* spf=temperror:\w+ "
                    r"key=127\.13\.1\.0/24")


def test_greylist_spf_no_keeps_the_network_key(mxguard, postfix, dns):
    """greylist_spf = no: no SPF step; the pool retry is tarpitted anew."""
    mx = eng(mxguard, postfix, dns, greylist_spf="no")
    snd = "news@pool.spf.test"
    drop_out_of_tarpit(mx, "127.13.1.5", after=0.5, sender=snd)
    mx.wait_for_log(r"tarpit drop client=127\.13\.1\.5 ")
    time.sleep(2.3)
    c, r, took = to_rcpt(mx, "127.13.2.7", sender=snd)
    assert r is not None and r.code == 250 and took >= 2.9, (r, took)
    c.close()
    assert "spf=" not in mx.log()
