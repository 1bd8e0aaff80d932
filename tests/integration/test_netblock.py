"""Network blocks: when netblock_threshold addresses of one /24 are blocked
within block_memory, the /24 itself is blocked.

Four addresses of one /24 flooding, interleaved with addresses of other
/24s, make one network block (logged with the addresses that caused it,
counted in the status); a fresh address of that /24 is refused at its
first connection while another /24 is served; the operator lists and lifts
it, and adds network blocks of the configured prefix only; a /24 that holds
an allow_clients entry, a white entry or a source in good standing is never
blocked as a whole (the safety rule skips the block) and its allow-listed
address is served; the network block expires by itself and doubles on a
repeat; a restart restores it from the store; sources that cannot be real
hosts are counted, not refused. (Redis sharing, planted records and the
AWL rule: test_redis.py; nftables: test_shield_nft.py.)
"""
import itertools
import os
import re
import time

from mxgtest import control, full_session, smtp_first_line, wait_until

# Networks of their own: 127.N.x.0/24 with a second octet the other tests
# (next_client_ip: 20..119) never use.
_NET_OCTET = 200 + os.getpid() % 50
_nets = itertools.count(1)


def fresh_net():
    """A /24 no other test uses: '127.A.B' (append '.host')."""
    return "127.%d.%d" % (_NET_OCTET, next(_nets))


PARAMS = dict(flood_window="10s", flood_threshold=3, block_time="30s", block_memory="1h",
              conn_per_source=0, conn_per_prefix=0, netblock_threshold=4)


def flood(mx, ip):
    """Attempts from ip until it is refused (bounded): the attempt that blocked it."""
    for i in range(10):
        if smtp_first_line(mx.port, ip).startswith("421"):
            return i
    raise AssertionError("%s was never blocked" % ip)


def test_four_addresses_of_one_net_block_the_net(postfix, mxguard):
    net, other = fresh_net(), fresh_net()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", **PARAMS)
    # Interleaved: each address of net, then one of another /24 (never escalates).
    for h in range(1, 5):
        flood(mx, "%s.%d" % (net, h))
        mx.wait_for_log(r"block client=%s\.%d " % (re.escape(net), h))
        if h < 4:
            flood(mx, "%s.%d" % (other, h))
    m = mx.wait_for_log(r"block network=%s\.0/24 seconds=30 level=1 addresses=4 "
                        r"sources=(\S+)" % re.escape(net))
    assert sorted(m.group(1).split(",")) == ["%s.%d" % (net, h) for h in range(1, 5)]
    assert len(re.findall(r": block network=", mx.log())) == 1, "one network block only"
    # A fifth (fresh) address of that /24: refused at its first connection.
    assert smtp_first_line(mx.port, "%s.5" % net).startswith("421 4.7.0")
    mx.wait_for_log(r"refuse client=%s\.5 .*reason=blocked" % re.escape(net))
    assert "block client=%s.5 " % net not in mx.log()
    # Another /24 (three addresses blocked, under the threshold) is served.
    assert smtp_first_line(mx.port, "%s.77" % other).startswith("220")
    assert ": block network=%s.0/24" % other not in mx.log()
    st = control(mx, "status")
    shield = st.get("shield") or st["status"]["shield"] if "status" in st else st["shield"]
    assert shield["network_blocks_active"] == 1, shield
    # The operator lists it, lifts it, and the /24 is served again.
    recs = control(mx, "list block")["records"]
    assert any(r.get("key") == "%s.0/24" % net for r in recs), recs
    assert control(mx, "del block %s.0/24" % net)["ok"] is True
    mx.wait_for_log(r"unblock network=%s\.0/24 from=operator" % re.escape(net))
    assert smtp_first_line(mx.port, "%s.6" % net).startswith("220")


def test_operator_network_blocks_need_the_configured_prefix(postfix, mxguard):
    net = fresh_net()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", **PARAMS)
    r = control(mx, "add block %s.0.0/16 60" % net.rsplit(".", 1)[0])
    assert r["ok"] is False and "/24" in r["error"], r
    r = control(mx, "add block %s.1/24 60" % net)
    assert r["ok"] is False and "bits set" in r["error"], r
    assert control(mx, "add block %s.0/24 60" % net)["ok"] is True
    mx.wait_for_log(r"block network=%s\.0/24 seconds=60 level=1 from=operator"
                    % re.escape(net))
    assert smtp_first_line(mx.port, "%s.9" % net).startswith("421 4.7.0")


def test_a_net_with_an_allowed_address_is_not_blocked(postfix, mxguard):
    net = fresh_net()
    friend = "%s.200" % net
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1 %s" % friend, **PARAMS)
    for h in range(1, 6):
        flood(mx, "%s.%d" % (net, h))
    mx.wait_for_log(r"netblock network=%s\.0/24 not blocked: allow_clients has an entry"
                    % re.escape(net))
    assert not re.search(r": block network=", mx.log())
    assert smtp_first_line(mx.port, friend).startswith("220")
    # The addresses keep their own blocks; a fresh one of the /24 is served.
    assert smtp_first_line(mx.port, "%s.1" % net).startswith("421")
    assert smtp_first_line(mx.port, "%s.99" % net).startswith("220")


def test_network_block_expires_and_doubles(postfix, mxguard):
    net = fresh_net()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1",
                 **dict(PARAMS, block_time="2s", flood_window="2s"))
    for h in range(1, 5):
        flood(mx, "%s.%d" % (net, h))
    mx.wait_for_log(r"block network=%s\.0/24 seconds=2 level=1 " % re.escape(net))
    assert smtp_first_line(mx.port, "%s.50" % net).startswith("421")
    # Expired by itself (the addresses' 2s blocks too).
    time.sleep(2.5)
    assert smtp_first_line(mx.port, "%s.51" % net).startswith("220")
    for h in range(11, 15):
        flood(mx, "%s.%d" % (net, h))
    mx.wait_for_log(r"block network=%s\.0/24 seconds=4 level=2 " % re.escape(net))


def test_network_block_is_restored_at_start(postfix, mxguard, tmp_path):
    net = fresh_net()
    params = dict(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                  allow_clients="127.0.0.1", **PARAMS)
    mx = mxguard(**params)
    assert control(mx, "add block %s.0/24 600" % net)["ok"] is True
    mx.stop()
    # A restart restores the network block from the store.
    mx.start()
    mx.wait_for_log(r"blocks: 1 restored from the store, 1 in force \(1 networks\)")
    assert smtp_first_line(mx.port, "%s.3" % net).startswith("421")


def test_spoofed_sources_are_counted_not_refused(postfix, mxguard):
    """Sources that cannot be real hosts: the network and broadcast
    addresses of their /24 are counted always, special-purpose (RFC 6890)
    sources on a listener that admits them while the group is attacked;
    neither is refused for it, and the attack notice reports both."""
    net = fresh_net()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", conn_per_source=0, conn_per_prefix=0,
                 ddos_window="10s", ddos_threshold=10, ddos_release=2, ddos_quiet="2s")
    for ip in ("%s.0" % net, "%s.255" % net):
        assert smtp_first_line(mx.port, ip).startswith("220"), ip
    st = control(mx, "status")["shield"]["spoofed"]
    assert st == {"network_broadcast": 2, "special_purpose": 0}, st
    for h in range(1, 13):
        smtp_first_line(mx.port, "%s.%d" % (net, h))
    mx.wait_for_log(r"attack group=smtp state=attack .* spoofed_netbcast=2 spoofed_special=\d+",
                    timeout=5)
    # Under attack, 127/8 sources (special-purpose, admitted: smtp_bogus_check = no) count.
    assert smtp_first_line(mx.port, "%s.100" % net).startswith("220")
    st = control(mx, "status")["shield"]["spoofed"]
    assert st["network_broadcast"] == 2 and st["special_purpose"] >= 1, st


def test_a_net_with_a_white_entry_is_not_blocked(postfix, mxguard):
    net = fresh_net()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", **PARAMS)
    assert control(mx, "add white %s.128/25" % net)["ok"] is True
    for h in range(1, 6):
        flood(mx, "%s.%d" % (net, h))
    mx.wait_for_log(r"netblock network=%s\.0/24 not blocked: whitelist entry %s\.128/25"
                    % (re.escape(net), re.escape(net)))
    assert not re.search(r": block network=", mx.log())


def test_a_net_with_a_source_in_good_standing_is_not_blocked(postfix, mxguard):
    net = fresh_net()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", **PARAMS)
    # One session of the /24 reaches Postfix and sends mail: good standing.
    full_session(mx.port, source_ip="%s.200" % net)
    wait_until(lambda: re.search(r"close client=%s\.200:\d+ .*stage=relay" % re.escape(net),
                                 mx.log()), 10, what="the good session to end")
    for h in range(1, 6):
        flood(mx, "%s.%d" % (net, h))
    mx.wait_for_log(r"netblock network=%s\.0/24 not blocked: a source in it is in good "
                    r"standing" % re.escape(net))
    assert not re.search(r": block network=", mx.log())
