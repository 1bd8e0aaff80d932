"""The Postfix policy service (policy_listen, issue 14).

A private Postfix per test calls mxguard with check_policy_service (inet or
unix) in smtpd_recipient_restrictions; smtpd_peername_lookup = no, so every
client reaches the engine as client_name=unknown (a suspect by S25R). The
raw tests speak the protocol directly: a verified client_name, malformed
and oversized requests, other protocol states, several requests on one
connection. Redis: a front and a policy host share their records.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import Postfix
from mxgtest import RawSMTP, free_port, mxguard_bin, new_message_id, wait_until
from test_redis import Redis, wait_store
from test_targrey import BOT, finish, to_rcpt

# Fast clocks: a retry after 2 s with one earlier try passes the greylist.
POLICY = dict(client_lists="", mode="rgrey", greylist_delay="2s", greylist_retries="1",
              awl_interval="0")


class PolicyPostfix(Postfix):
    """The test Postfix with check_policy_service in front of its relay rules."""

    def __init__(self, base, target):
        super().__init__(base)
        self.target = target

    def write_config(self):
        super().write_config()
        with open(self.config_dir / "main.cf", "a") as f:
            f.write("smtpd_recipient_restrictions = check_policy_service %s,"
                    " permit_mynetworks, reject_unauth_destination\n"
                    "smtpd_policy_service_timeout = 20s\n" % self.target)


@pytest.fixture
def policy_postfix():
    """Factory: policy_postfix(target) -> a started PolicyPostfix (stopped at teardown)."""
    started = []

    def factory(target):
        base = tempfile.mkdtemp(prefix="mxguard-it-policy-", dir="/tmp")
        os.chmod(base, 0o755)
        pf = PolicyPostfix(base, target)
        started.append((pf, base))
        pf.start()
        return pf

    yield factory
    for pf, base in started:
        pf.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def sockdir():
    """A directory Postfix's unprivileged smtpd can enter (pytest's tmp_path is 0700)."""
    d = tempfile.mkdtemp(prefix="mxguard-policy-sock-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def rcpt_via(pf, source, rcpt="user@example.test"):
    """EHLO, MAIL, RCPT to the Postfix instance from source: (client, RCPT reply)."""
    c = RawSMTP(pf.plain_port, source_ip=source, timeout=30)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO client.test").code == 250
    assert c.cmd("MAIL FROM:<sender@client.test>").code == 250
    return c, c.cmd("RCPT TO:<%s>" % rcpt)


def deliver_via(pf, source, rcpt="user@example.test"):
    """A whole session; returns the message id once Postfix delivered it."""
    c, r = rcpt_via(pf, source, rcpt)
    assert r.code == 250, r
    mid = new_message_id("policy")
    finish(c, mid, rcpt=rcpt)
    pf.wait_for_message(mid)
    return mid


def ask(sock, **attrs):
    """One policy request on sock; returns the answer line (without the empty line)."""
    req = {"request": "smtpd_access_policy", "protocol_state": "RCPT",
           "client_address": "192.0.2.7", "client_name": "unknown", "helo_name": "bot.test",
           "sender": "sender@client.test", "recipient": "user@example.test",
           "instance": "1.2.3"}
    req.update(attrs)
    sock.sendall(("".join("%s=%s\n" % kv for kv in req.items()) + "\n").encode())
    return read_answer(sock)


def read_answer(sock):
    buf = b""
    while not buf.endswith(b"\n\n"):
        chunk = sock.recv(4096)
        if not chunk:
            return buf.decode() + "<EOF>"
        buf += chunk
        assert len(buf) < 4096, buf
    return buf.decode()[:-2]


def policy_mx(mxguard, **params):
    port = free_port()
    p = dict(POLICY, policy_listen="127.0.0.1:%d" % port)
    p.update(params)
    mx = mxguard(**p)
    wait_until(lambda: _connects(port), 10, what="policy listener")
    mx.policy_port = port
    return mx


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


# -- with a real Postfix --------------------------------------------------------


def test_postfix_inet_suspect_deferred_then_delivered(mxguard, policy_postfix, client_ip):
    mx = policy_mx(mxguard)
    pf = policy_postfix("inet:127.0.0.1:%d" % mx.policy_port)
    c, r = rcpt_via(pf, client_ip)
    assert r.code == 450 and "Greylisted, please try again later" in r.text, r
    c.close()
    mx.wait_for_log(r"greylist new client=%s " % client_ip.replace(".", r"\."))
    mx.wait_for_log(r"policy answer client=%s .*action=defer" % client_ip.replace(".", r"\."))
    time.sleep(2.3)
    deliver_via(pf, client_ip)
    mx.wait_for_log(r"greylist pass client=%s " % client_ip.replace(".", r"\."))


def test_postfix_unix_whitelisted_recipient_and_client_at_once(mxguard, policy_postfix,
                                                              client_ip, sockdir, tmp_path):
    rcpts = tmp_path / "whitelist_recipients"
    rcpts.write_text("vip@example.test\n")
    white = tmp_path / "white.cidr"
    white.write_text("127.99.0.0/16 OK\n")
    path = os.path.join(sockdir, "policy.sock")
    mx = mxguard(**dict(POLICY, policy_listen="unix:" + path,
                        recipient_whitelist=str(rcpts),
                        client_lists="cidr:%s" % white))
    wait_until(lambda: os.path.exists(path), 10, what="policy socket")
    assert os.stat(path).st_mode & 0o777 == 0o666
    pf = policy_postfix("unix:" + path)
    # The recipient opts out: no greylisting, even for a suspect.
    deliver_via(pf, client_ip, rcpt="vip@example.test")
    # A whitelisted client: delivered at its first try.
    deliver_via(pf, "127.99.1.2")
    # Anybody else is still deferred through the same socket.
    c, r = rcpt_via(pf, client_ip)
    assert r.code == 450, r
    c.close()


# -- the protocol, spoken directly ----------------------------------------------


def test_raw_clean_name_dunno_and_several_requests(mxguard):
    mx = policy_mx(mxguard)
    with socket.create_connection(("127.0.0.1", mx.policy_port), timeout=10) as s:
        # A verified name that is not dynamic: clean, DUNNO at once.
        assert ask(s, client_address="198.51.100.9",
                   client_name="mail.bigsender.example") == "action=DUNNO"
        # Not at RCPT: not decided.
        assert ask(s, protocol_state="DATA") == "action=DUNNO"
        assert ask(s, protocol_state="END-OF-MESSAGE") == "action=DUNNO"
        # A suspect (no verified name) on the same connection: deferred.
        assert ask(s).startswith("action=DEFER_IF_PERMIT Greylisted")
    mx.wait_for_log(r"verdict client=198\.51\.100\.9 name=mail\.bigsender\.example "
                    r"helo=\"bot\.test\" from=<sender@client\.test> to=<user@example\.test> "
                    r"verdict=clean")


def test_raw_malformed_and_oversized_get_dunno(mxguard):
    mx = policy_mx(mxguard)
    with socket.create_connection(("127.0.0.1", mx.policy_port), timeout=10) as s:
        s.sendall(b"request=smtpd_access_policy\nno equals sign\n\n")
        assert read_answer(s) == "action=DUNNO"
        s.sendall(b"request=smtpd_access_policy\nclient_address=\x01\x02\n\n")
        assert read_answer(s) == "action=DUNNO"
        s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=nope\n\n")
        assert read_answer(s) == "action=DUNNO"
        # The connection still serves the next, well-formed request.
        assert ask(s).startswith("action=DEFER_IF_PERMIT")
    mx.wait_for_log(r"policy: malformed request \(line without name=value\)")
    mx.wait_for_log(r'policy: malformed request \(control byte in a line\), answered DUNNO: '
                    r'".*\\x01\\x02')
    with socket.create_connection(("127.0.0.1", mx.policy_port), timeout=10) as s:
        try:
            s.sendall(b"request=smtpd_access_policy\n" + b"x=" + b"a" * 20000)
        except OSError:
            pass
        assert read_answer(s) == "action=DUNNO"
        s.settimeout(5)
        # Closed after the answer (a reset: the rest of the 20 KB is unread).
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    assert mx.alive()


def test_raw_warn_mode_dunno(mxguard):
    mx = policy_mx(mxguard, mode="warn")
    with socket.create_connection(("127.0.0.1", mx.policy_port), timeout=10) as s:
        assert ask(s) == "action=DUNNO"
    mx.wait_for_log(r"verdict client=192\.0\.2\.7 .*verdict=suspect")


def test_policy_refuses_bad_listen(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("run_as =\npolicy_listen = unix:relative.sock\n")
    p = subprocess.run([str(mxguard_bin()), "-n", "-c", str(conf)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=20)
    assert p.returncode == 1 and "policy_listen: unix:relative.sock: a unix socket needs an" \
        " absolute path" in p.stderr, p.stderr


# -- a farm: a front and a policy host share Redis --------------------------------


@pytest.mark.skipif(not shutil.which("/usr/bin/redis-server"),
                    reason="redis-server is not installed (Debian package redis-server)")
def test_redis_shared_between_front_and_policy_host(mxguard, postfix, tmp_path):
    redis = Redis(tmp_path)
    redis.start()
    try:
        front = mxguard(default_action="inspect", client_lists="", mode="targrey",
                        tarpit_delay="3s", greylist_delay="2s", greylist_retries="1",
                        awl_interval="0", store=redis.spec,
                        backend=postfix.backend_for("proxy2"), backend_protocol="proxy2")
        pol = policy_mx(mxguard, mode="targrey", store=redis.spec)
        for mx in (front, pol):
            wait_store(mx, lambda st: st["connected"] and not st["fallback"])
        # The policy host's first answer stands in for the tarpit: it leaves
        # the tarpit record and the triplet's first sighting in Redis...
        with socket.create_connection(("127.0.0.1", pol.policy_port), timeout=10) as s:
            assert ask(s, client_address=BOT).startswith("action=DEFER_IF_PERMIT")
        pol.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")
        assert len(redis.keys("tarpit")) == 1, redis.keys("tarpit")
        # ... so the front greylists the client at once instead of holding it.
        c, r, took = to_rcpt(front, BOT)
        assert r.code == 450 and took < 2.0, (r, took)
        c.close()
        front.wait_for_log(r"greylist early client=127\.10\.0\.2 .*retries=1")
        assert "tarpit start client=127.10.0.2" not in front.log()
        # And the front's record is the policy host's: after the delay it passes there.
        time.sleep(2.2)
        with socket.create_connection(("127.0.0.1", pol.policy_port), timeout=10) as s:
            assert ask(s, client_address=BOT) == "action=DUNNO"
        pol.wait_for_log(r"greylist pass client=127\.10\.0\.2 .*retries=2")
    finally:
        redis.kill()


def test_policy_answers_in_metrics(mxguard):
    """The policy service's answers by action, and its connections, on
    /metrics (the exposition parsed by test_metrics' strict parser)."""
    from test_metrics import parse_exposition, value

    port = free_port()
    mx = policy_mx(mxguard, metrics_listen="127.0.0.1:%d" % port)
    mx.wait_for_log(r"metrics on http://127\.0\.0\.1:%d/metrics" % port)
    scrape = lambda: parse_exposition(urllib.request.urlopen(
        "http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode())
    before = scrape()
    assert value(before, "mxguard_policy_answers_total", action="dunno") == 0
    assert value(before, "mxguard_policy_answers_total", action="defer") == 0
    with socket.create_connection(("127.0.0.1", mx.policy_port), timeout=10) as s:
        assert ask(s, client_address="198.51.100.9",
                   client_name="mail.bigsender.example") == "action=DUNNO"
        assert ask(s).startswith("action=DEFER_IF_PERMIT")
        during = scrape()
        assert value(during, "mxguard_policy_connections") == 1
    after = scrape()
    assert value(after, "mxguard_policy_answers_total", action="dunno") == 1
    assert value(after, "mxguard_policy_answers_total", action="defer") == 1
