"""Shared state on Redis: two mxguard instances (the MX farm) on one real
redis-server the test starts on a free loopback port, without persistence.

* a suspect that drops out of A's tarpit is greylisted on B (not tarpitted
  again), and passes on B once the greylist delay has gone by;
* Redis killed mid-test: both instances keep deciding locally (4xx or 250,
  never a 5xx), the fallback is in the log and in `mxguardctl status`, and
  the records written meanwhile reach Redis once it is back.

* a block made on A (a one-source flood) refuses the same source on B
  within a second, through the events channel; so does an operator's
  unblock; an attack on A puts B's group under the attack policy too.

Publish/subscribe itself is also tested in tests/unit/test_store.c.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

import re
import socket

from mxgtest import free_port, mxguard_bin, new_message_id, next_client_ip
from test_targrey import BOT, CLEAN, drop_out_of_tarpit, engine, finish, to_rcpt

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"

pytestmark = pytest.mark.skipif(
    not (shutil.which(REDIS_SERVER) and shutil.which(REDIS_CLI)),
    reason="redis-server or redis-cli is not installed (Debian packages redis-server, "
    "redis-tools)")


class Redis:
    """A redis-server on 127.0.0.1:port, no persistence; start/kill at will."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path / "redis"
        self.dir.mkdir()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING", check=False) == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start on port %d" % self.port)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def cli(self, *args, check=True):
        p = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=10, check=False)
        if check:
            assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    def keys(self, kind):
        out = self.cli("--scan", "--pattern", "mxg:%s:*" % kind)
        return [k for k in out.splitlines() if k]

    @property
    def spec(self):
        return "redis://127.0.0.1:%d" % self.port


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path)
    r.start()
    yield r
    r.kill()


def full_status(mx):
    p = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-c", str(mx.config_file),
                        "status"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def wait_store(mx, pred, timeout=15):
    """Wait until pred(status["store"]) holds; return that store status."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = full_status(mx)["store"]
        if pred(st):
            return st
        time.sleep(0.2)
    raise AssertionError("store status never matched: %r" % st)


def wait_grey_count(redis, n, timeout=10):
    """Wait until the one greylist record in Redis counts n comebacks (its
    value is "1 FIRST LAST EXPIRES COUNT"): a write follows the reply that
    the test saw, and another instance must not read the record before it."""
    deadline = time.monotonic() + timeout
    vals = []
    while time.monotonic() < deadline:
        vals = [redis.cli("GET", k) for k in redis.keys("grey")]
        if len(vals) == 1 and vals[0].split()[-1:] == [str(n)]:
            return
        time.sleep(0.05)
    raise AssertionError("greylist records in Redis: %r, want one counting %d" % (vals, n))


def farm(mxguard, postfix, redis, **params):
    a = engine(mxguard, postfix, store=redis.spec, **params)
    b = engine(mxguard, postfix, store=redis.spec, **params)
    for mx in (a, b):
        st = wait_store(mx, lambda s: s["connected"] and not s["fallback"])
        assert st["backend"] == "redis", st
    return a, b


def test_suspect_dropped_on_a_is_greylisted_on_b(mxguard, postfix, redis):
    a, b = farm(mxguard, postfix, redis)
    drop_out_of_tarpit(a, BOT, after=0.5)
    a.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")
    assert len(redis.keys("tarpit")) == 1, redis.keys("tarpit")
    ttl = int(redis.cli("TTL", redis.keys("tarpit")[0]))
    assert ttl > 0, ttl  # expiry is Redis' job
    # B has never seen it: greylisted at once, not held in B's tarpit.
    c, r, took = to_rcpt(b, BOT)
    assert r.code == 450 and "4.7.1" in r.text and took < 2.0, (r, took)
    c.close()
    # The drop on A was the triplet's first sighting: B counts a comeback.
    b.wait_for_log(r"greylist early client=127\.10\.0\.2 .*retries=1")
    assert "tarpit start client=127.10.0.2" not in b.log()
    # B writes the count after its reply: wait for it in Redis before A reads it.
    wait_grey_count(redis, 1)
    # The triplet is shared too: its comeback on A counts.
    c, r, _ = to_rcpt(a, BOT)
    assert r.code == 450, r
    c.close()
    a.wait_for_log(r"greylist early client=127\.10\.0\.2 .*retries=2")
    wait_grey_count(redis, 2)
    time.sleep(2.2)
    mid = new_message_id("farm")
    c, r, took = to_rcpt(b, BOT)
    assert r.code == 250 and took < 2.0, (r, took)
    finish(c, mid)
    postfix.wait_for_message(mid)
    b.wait_for_log(r"greylist pass client=127\.10\.0\.2 .*retries=3")
    assert full_status(b)["store"]["timeouts"] == 0


def test_redis_down_decides_locally_and_replays(mxguard, postfix, redis):
    a, b = farm(mxguard, postfix, redis)
    redis.kill()
    for mx in (a, b):
        mx.wait_for_log(r"store: redis 127\.0\.0\.1:%d unavailable \(" % redis.port)
        st = wait_store(mx, lambda s: s["fallback"])
        assert not st["connected"] and st["fallback_since"] > 0 and st["fallbacks"] == 1, st
    # A: a bot drops out of the tarpit, then its retry is greylisted, all locally.
    drop_out_of_tarpit(a, BOT, after=0.5)
    a.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")
    c, r, took = to_rcpt(a, BOT)
    assert r.code == 450 and took < 2.0, (r, took)
    c.close()
    # B: a clean client is delivered; a suspect is tarpitted (B has not heard of it).
    mid = new_message_id("redis-down")
    c, r, took = to_rcpt(b, CLEAN)
    assert r.code == 250 and took < 2.0, (r, took)
    finish(c, mid)
    postfix.wait_for_message(mid)
    c, r, took = to_rcpt(b, BOT)
    assert r.code in (250, 450) and took >= 2.5, (r, took)
    c.close()
    pending = full_status(a)["store"]["replay_pending"]
    assert pending >= 2, pending  # the tarpit record and the triplet
    # The fallback is logged once, however many decisions were made meanwhile.
    assert a.log().count("store: redis 127.0.0.1:%d unavailable" % redis.port) == 1
    # Redis returns (empty: no persistence). What A wrote meanwhile arrives.
    redis.start()
    for mx in (a, b):
        st = wait_store(mx, lambda s: not s["fallback"] and s["replay_pending"] == 0)
        assert st["connected"] and st["fallback_since"] == 0, st
        mx.wait_for_log(r"store: redis 127\.0\.0\.1:%d back after \d+s" % redis.port)
    assert len(redis.keys("tarpit")) == 1, redis.keys("tarpit")
    grey = redis.keys("grey")
    assert len(grey) >= 1, grey
    value = redis.cli("GET", grey[0]).split()
    assert value[0] == "1" and len(value) == 5, value
    assert int(redis.cli("TTL", grey[0])) > 0
    # And the shared state is used again: B greylists A's bot at once.
    c, r, took = to_rcpt(b, BOT, sender="other@client.test")
    assert r.code == 450 and took < 2.0, (r, took)
    c.close()


def _first_line(port, source_ip):
    s = socket.socket()
    s.settimeout(3)
    s.bind((source_ip, 0))
    try:
        s.connect(("127.0.0.1", port))
        return s.recv(200).split(b"\r\n")[0].decode()
    except ConnectionResetError:
        return "reset"
    finally:
        s.close()


def test_blocks_and_attack_state_are_shared(mxguard, postfix, redis):
    params = dict(allow_clients="127.0.0.1", flood_window="10s", flood_threshold=5,
                  block_time="10m", conn_per_prefix=0, backend_protocol="proxy2",
                  backend=postfix.backend_for("proxy2"), store=redis.spec,
                  ddos_window="10s", ddos_threshold=40, ddos_release=5, ddos_quiet="2s")
    a = mxguard(**params)
    b = mxguard(**params)
    for mx in (a, b):
        wait_store(mx, lambda s: s["connected"] and not s["fallback"])
    flooder = next_client_ip()
    for _ in range(4):
        assert _first_line(a.port, flooder).startswith("220")
    assert _first_line(a.port, flooder).startswith("421 4.7.0")
    a.wait_for_log(r"block client=%s seconds=600 level=1 " % re.escape(flooder))
    t0 = time.monotonic()
    b.wait_for_log(r"block client=%s seconds=\d+ level=1 from=peer" % re.escape(flooder),
                   timeout=1.0)
    assert time.monotonic() - t0 <= 1.0
    # B never saw this source before, and refuses it.
    assert _first_line(b.port, flooder).startswith("421 4.7.0")
    b.wait_for_log(r"refuse client=%s .*reason=blocked" % re.escape(flooder))
    assert redis.keys("block") == ["mxg:block:%s" % flooder]
    # The operator lifts it on B: A lets it in again.
    p = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-c", str(b.config_file),
                        "--json", "del", "block", flooder], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    a.wait_for_log(r"unblock client=%s from=peer" % re.escape(flooder), timeout=2)
    assert _first_line(a.port, flooder).startswith("220")

    # 50 distinct sources on A: A's smtp group is attacked, and B hears it.
    for ip in ["127.140.%d.9" % i for i in range(50)]:
        _first_line(a.port, ip)
    a.wait_for_log(r"attack group=smtp state normal -> attack", timeout=5)
    b.wait_for_log(r"attack group=smtp state=attack from=peer", timeout=5)
    st = full_status(b)["shield"]["groups"][0]
    assert st["name"] == "smtp" and st["remote"] is True and st["state"] == "normal", st
    a.wait_for_log(r"attack group=smtp state converging -> normal", timeout=20)
    b.wait_for_log(r"attack group=smtp state=normal from=peer", timeout=5)
    assert full_status(b)["shield"]["groups"][0]["remote"] is False


def test_network_blocks_are_shared(mxguard, postfix, redis):
    """Four addresses of one /24 blocked on A: A blocks the /24, B hears it
    and refuses a fresh address of that /24 it never saw; the record's key
    carries the prefix."""
    params = dict(allow_clients="127.0.0.1", flood_window="10s", flood_threshold=3,
                  block_time="10m", conn_per_prefix=0, conn_per_source=0,
                  netblock_threshold=4, backend_protocol="proxy2",
                  backend=postfix.backend_for("proxy2"), store=redis.spec)
    a = mxguard(**params)
    b = mxguard(**params)
    for mx in (a, b):
        wait_store(mx, lambda s: s["connected"] and not s["fallback"])
    net = "127.141.%d" % (os.getpid() % 200 + 1)
    for h in range(1, 5):
        for _ in range(10):
            if _first_line(a.port, "%s.%d" % (net, h)).startswith("421"):
                break
    a.wait_for_log(r"block network=%s\.0/24 seconds=600 level=1 addresses=4 "
                   % re.escape(net))
    b.wait_for_log(r"block network=%s\.0/24 seconds=\d+ level=1 from=peer" % re.escape(net),
                   timeout=2.0)
    assert _first_line(b.port, "%s.99" % net).startswith("421 4.7.0")
    b.wait_for_log(r"refuse client=%s\.99 .*reason=blocked" % re.escape(net))
    assert "mxg:block:%s.0/24" % net in redis.keys("block")


def test_planted_network_blocks_are_checked_at_start(mxguard, postfix, redis):
    """A network record read back from the shared store is hostile: one wider
    than the configured prefix, or one ending past block_time_max, is logged
    and skipped; a good one is restored and refuses its network."""
    now = int(time.time())
    good, wide, long_ = "127.142.1.0/24", "127.0.0.0/8", "127.142.2.0/24"
    for key, until in ((good, now + 300), (wide, now + 300), (long_, now + 10 * 86400)):
        redis.cli("SET", "mxg:block:%s" % key, "1 %d %d %d 1" % (now, until, until + 60))
    mx = mxguard(allow_clients="127.0.0.1", block_time_max="1d", conn_per_prefix=0,
                 backend_protocol="proxy2", backend=postfix.backend_for("proxy2"),
                 store=redis.spec)
    for key in (wide, long_):
        mx.wait_for_log(r"blocks: bad record in the store skipped: key=\"%s\""
                        % re.escape(key))
    mx.wait_for_log(r"blocks: 1 restored from the store, 1 in force \(1 networks\)")
    assert _first_line(mx.port, "127.142.1.7").startswith("421 4.7.0")
    assert _first_line(mx.port, "127.142.2.7").startswith("220")


def test_a_net_with_an_awl_record_is_not_blocked(mxguard, postfix, redis):
    """The AWL is read from the store before a network block: a /24 with an
    AWL record is not blocked; its flooding addresses keep their blocks."""
    net = "127.143.%d" % (os.getpid() % 200 + 1)
    now = int(time.time())
    redis.cli("SET", "mxg:awl:%s.0/24" % net, "1 %d %d %d 3" % (now, now, now + 86400))
    mx = mxguard(allow_clients="127.0.0.1", flood_window="10s", flood_threshold=3,
                 conn_per_prefix=0, conn_per_source=0, netblock_threshold=4,
                 backend_protocol="proxy2", backend=postfix.backend_for("proxy2"),
                 store=redis.spec)
    wait_store(mx, lambda s: s["connected"] and not s["fallback"])
    for h in range(1, 5):
        for _ in range(10):
            if _first_line(mx.port, "%s.%d" % (net, h)).startswith("421"):
                break
    mx.wait_for_log(r"netblock network=%s\.0/24 not blocked: AWL network %s\.0/24"
                    % (re.escape(net), re.escape(net)))
    assert ": block network=" not in mx.log()
    assert _first_line(mx.port, "%s.99" % net).startswith("220")
