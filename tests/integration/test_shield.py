"""The shield: admission at accept on SMTP and guarded service listeners.

Floods from one source are blocked within their window and released when
the block ends, a repeat offence doubles the block, allow-listed sources
are never blocked or limited; per-source and per-prefix limits refuse
with the configured reply (SMTP) or a reset (other services); static
blocks and bogus sources are refused; a distributed flood of 2,000
sources on a guarded service turns the attack state on, applies the
attack policy, mails the notices to a real SMTP sink, and ends by itself.
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mxgtest import (client_ip_block, free_port, next_client_ip, probe, smtp_first_line,
                     wait_until)


def hold(port, source_ip):
    """An open connection from source_ip (the caller closes it)."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    return s


def test_one_source_flood_is_blocked_released_and_doubled(postfix, mxguard):
    flooder, friend = next_client_ip(), next_client_ip()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1 %s" % friend, flood_window="3s",
                 flood_threshold=8, block_time="2s", block_memory="1m",
                 conn_per_source=0, conn_per_prefix=0)
    # Seven attempts pass; the eighth within the window makes the block.
    for i in range(7):
        assert smtp_first_line(mx.port, flooder).startswith("220"), i
    first = smtp_first_line(mx.port, flooder)
    assert first.startswith("421 4.7.0"), first
    m = mx.wait_for_log(r"block client=%s seconds=(\d+) level=1 attempts=8 window=3s"
                        % re.escape(flooder))
    assert m.group(1) == "2"
    # Refused at once while blocked (one line, then close).
    t0 = time.monotonic()
    assert smtp_first_line(mx.port, flooder).startswith("421 4.7.0")
    assert time.monotonic() - t0 < 1.0
    mx.wait_for_log(r"refuse client=%s .*reason=blocked" % re.escape(flooder))
    # An allow-listed source floods three times the threshold and is never blocked.
    for i in range(24):
        assert smtp_first_line(mx.port, friend).startswith("220"), i
    assert "block client=%s " % friend not in mx.log()
    # The block releases itself.
    time.sleep(2.3)
    assert smtp_first_line(mx.port, flooder).startswith("220")
    # A repeat offence within block_memory doubles the block.
    for i in range(10):
        line = smtp_first_line(mx.port, flooder)
        if line.startswith("421"):
            break
    else:
        pytest.fail("the second flood was not blocked")
    m = mx.wait_for_log(r"block client=%s seconds=(\d+) level=2 " % re.escape(flooder))
    assert m.group(1) == "4"


def test_flood_on_a_service_is_reset_and_shared_across_listeners(postfix, mxguard):
    flooder = next_client_ip()
    svc = free_port()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", flood_window="5s", flood_threshold=6,
                 block_time="30s", conn_per_source=0, conn_per_prefix=0,
                 service_pop3="listen=127.0.0.1:%d backend=%s proxy=none"
                 % (svc, postfix.backend_for("none")))
    for i in range(5):
        kind, data = probe(svc, flooder)
        assert data.startswith(b"220 "), (i, kind, data)  # the backend's own greeting
    kind, data = probe(svc, flooder)
    assert kind == "reset", (kind, data)
    mx.wait_for_log(r"block client=%s seconds=30 level=1 attempts=6 .*service=pop3"
                    % re.escape(flooder))
    # Attempts count across all listeners, and the block applies on SMTP too.
    assert smtp_first_line(mx.port, flooder).startswith("421 4.7.0")


def test_per_source_and_per_prefix_limits(postfix, mxguard):
    a = next_client_ip()
    same_net = [x for x in client_ip_block(40) if x.rsplit(".", 1)[0] == a.rsplit(".", 1)[0]][:3]
    assert len(same_net) == 3, "the test needs four addresses in one /24"
    svc = free_port()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", conn_per_source=2, conn_per_prefix=3,
                 smtp_refuse_temp="421 4.7.0 Slow down please",
                 service_imap="listen=127.0.0.1:%d backend=%s proxy=none refuse=close"
                 % (svc, postfix.backend_for("none")))
    held = [hold(mx.port, a), hold(mx.port, a)]
    try:
        for s in held:
            assert s.recv(100).startswith(b"220")
        assert smtp_first_line(mx.port, a) == "421 4.7.0 Slow down please"
        mx.wait_for_log(r"refuse client=%s .*reason=conn_source" % re.escape(a))
        # A third address of the /24 takes the prefix to its limit of three.
        held.append(hold(mx.port, same_net[0]))
        assert held[-1].recv(100).startswith(b"220")
        assert smtp_first_line(mx.port, same_net[1]) == "421 4.7.0 Slow down please"
        mx.wait_for_log(r"refuse client=%s .*reason=conn_prefix" % re.escape(same_net[1]))
        # The service refuses the same way, with a plain close (refuse=close).
        kind, data = probe(svc, same_net[2])
        assert (kind, data) == ("eof", b""), (kind, data)
    finally:
        for s in held:
            s.close()
    # Closed connections free their places.
    wait_until(lambda: smtp_first_line(mx.port, a).startswith("220"), 5, what="limit released")


def test_rate_limit_per_source(postfix, mxguard):
    a = next_client_ip()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", rate_per_source=3, flood_threshold=100)
    for i in range(3):
        assert smtp_first_line(mx.port, a).startswith("220"), i
    assert smtp_first_line(mx.port, a).startswith("421 4.7.0 Too many connections")
    mx.wait_for_log(r"refuse client=%s .*reason=rate_source" % re.escape(a))
    # Another source is not affected.
    assert smtp_first_line(mx.port, next_client_ip()).startswith("220")


def test_static_blocks_and_bogus_sources(postfix, mxguard, tmp_path):
    listed, other = next_client_ip(), next_client_ip()
    cidr = tmp_path / "block.cidr"
    cidr.write_text("# a Postfix cidr table works as it is\n%s/32 REJECT\n" % listed)
    svc = free_port()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", block_clients="cidr:%s" % cidr,
                 service_imap="listen=127.0.0.1:%d backend=%s proxy=none bogus=yes"
                 % (svc, postfix.backend_for("none")))
    assert smtp_first_line(mx.port, listed) == "554 5.7.1 Service refused to your address"
    mx.wait_for_log(r"refuse client=%s .*reason=static" % re.escape(listed))
    # 127/8 is bogus on the Internet: the service checks it, SMTP (default) does not.
    kind, data = probe(svc, other)
    assert kind == "reset", (kind, data)
    mx.wait_for_log(r"refuse client=%s .*service=imap reason=bogus" % re.escape(other))
    assert smtp_first_line(mx.port, other).startswith("220")


def test_bad_lists_are_reported_and_reload_keeps_the_running_ones(mxguard, tmp_path):
    bad = tmp_path / "bad.cidr"
    bad.write_text("10.0.0.1/8\n")
    r = subprocess.run([str(Path(os.environ.get("MXGUARD_BIN", "build/mxguard"))), "-n",
                        "-o", "block_clients=cidr:%s" % bad, "-o", "run_as="],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "block_clients: %s:1: '10.0.0.1/8': host bits set after /8" % bad in r.stderr, r.stderr
    listed = next_client_ip()
    mx = mxguard(allow_clients="127.0.0.1", block_clients=listed)
    assert smtp_first_line(mx.port, listed).startswith("554")
    mx.set(block_clients="cidr:%s" % bad)
    mx.reload()
    mx.wait_for_log(r"reload failed, keeping the running configuration: block_clients: ")
    assert smtp_first_line(mx.port, listed).startswith("554")


# ---------------------------------------------------------------------------
# A distributed flood


class SmtpSink:
    """Postfix's smtp-sink on loopback, dumping every message to a file."""

    def __init__(self, base):
        # smtp-sink writes as nobody: a directory it can reach and write.
        self.dir = Path(tempfile.mkdtemp(prefix="mxguard-sink-", dir="/tmp"))
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["/usr/sbin/smtp-sink", "-u", "nobody", "-d", str(self.dir) + "/%M%S.",
             "127.0.0.1:%d" % self.port, "50"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: _listening(self.port), 10, what="smtp-sink listening")

    def messages(self):
        return [p.read_bytes().decode(errors="replace") for p in sorted(self.dir.iterdir())]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def spread_sources(count):
    """count distinct sources spread over 127.0.0.0/8 (one per /24, never
    the addresses next_client_ip hands out)."""
    out = []
    for i in range(count):
        out.append("127.%d.%d.%d" % (130 + i // 250 % 120, i % 250, 7 + i // 30000))
    return out


def test_distributed_flood_on_a_service(postfix, mxguard, tmp_path):
    sink = SmtpSink(tmp_path)
    try:
        svc = free_port()
        known = next_client_ip()
        mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                     allow_clients="127.0.0.1", conn_per_prefix=0,
                     ddos_window="8s", ddos_threshold=600, ddos_release=100,
                     ddos_quiet="2s", notify_recipient="postmaster@example.test",
                     notify_relay="127.0.0.1:%d" % sink.port, notify_interval="10m",
                     service_imap="listen=127.0.0.1:%d backend=%s proxy=none group=mailbox"
                     % (svc, postfix.backend_for("none")))
        # A source in good standing before the attack: it talked to the backend.
        kind, data = probe(svc, known, send=b"EHLO known.test\r\nQUIT\r\n")
        assert data.startswith(b"220 "), (kind, data)
        mx.wait_for_log(r"close client=%s:\d+ listener=127\.0\.0\.1:%d .*stage=relay"
                        % (re.escape(known), svc))

        sources = spread_sources(2000)
        refused = 0
        deadline = time.monotonic() + 30
        for ip in sources:
            assert time.monotonic() < deadline, "the flood loop took too long"
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.bind((ip, 0))
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", svc))
            except OSError:
                refused += 1
            s.close()
        mx.wait_for_log(r"attack group=mailbox state normal -> attack", timeout=5)
        # The policy: an unknown source is refused, the known one still passes.
        kind, data = probe(svc, next_client_ip())
        assert kind in ("reset", "eof"), (kind, data)
        mx.wait_for_log(r"service=imap reason=attack")
        kind, data = probe(svc, known)
        assert data.startswith(b"220 "), (kind, data)
        # SMTP is its own group: not under attack, a new client passes.
        assert smtp_first_line(mx.port, next_client_ip()).startswith("220")

        start = wait_until(lambda: [m for m in sink.messages() if "distributed flood on mailbox" in m],
                           10, what="attack start notice")[0]
        assert "To: postmaster@example.test" in start or "<postmaster@example.test>" in start
        assert re.search(r"Group: +mailbox \(imap 127\.0\.0\.1:%d\)" % svc, start), start
        # Counted exactly below 65,536 distinct sources: the threshold was crossed.
        m = re.search(r"peak (\d+) within 8s", start)
        assert m and int(m.group(1)) >= 600, start

        # Quiet: the window slides past the flood, converging, then normal.
        mx.wait_for_log(r"attack group=mailbox state attack -> converging", timeout=15)
        mx.wait_for_log(r"attack group=mailbox state converging -> normal", timeout=10)
        end = wait_until(lambda: [m for m in sink.messages() if "flood on mailbox ended" in m],
                         10, what="attack end notice")[0]
        # Exact below 65,536: the 2,000 flood sources, the known source and
        # the new one refused during the attack, all within one window.
        m = re.search(r"peak (\d+) within 8s", end)
        assert m and int(m.group(1)) == 2002, end
        m = re.search(r"Refused by the attack policy: (\d+)", end)
        assert m and int(m.group(1)) >= 1, end
        assert "The normal policy applies again." in end
        # Normal policy again: a new source passes.
        kind, data = probe(svc, next_client_ip())
        assert data.startswith(b"220 "), (kind, data)
    finally:
        sink.stop()


def test_operator_blocks_and_status(postfix, mxguard):
    """mxguardctl add/del/flush block, the block survives a restart (kept in
    the store), and status shows the shield."""
    import json
    ctl = [str(Path(os.environ.get("MXGUARD_BIN", "build/mxguard")).parent / "mxguardctl")]
    a, b = next_client_ip(), next_client_ip()
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1")
    sock = ["-s", str(Path(mx.params["state_dir"]) / "control.sock")]

    def run(*args):
        r = subprocess.run(ctl + sock + ["--json"] + list(args), capture_output=True, text=True,
                           timeout=10)
        return r.returncode, json.loads(r.stdout)

    assert run("add", "block", a, "3600") == (0, {"ok": True})
    assert run("add", "block", b) == (0, {"ok": True})
    assert smtp_first_line(mx.port, a).startswith("421 4.7.0")
    mx.wait_for_log(r"block client=%s seconds=3600 level=1 from=operator" % re.escape(a))
    rc, st = run("status")
    assert rc == 0 and st["shield"]["blocks_active"] == 2, st
    assert [g["name"] for g in st["shield"]["groups"]] == ["smtp"]
    assert st["shield"]["groups"][0]["state"] == "normal"
    assert st["refusals"]["blocked"] >= 1, st
    # The table shows each group under its name, with its state.
    table = subprocess.run(ctl + sock + ["status", "--table"], capture_output=True, text=True,
                           timeout=10).stdout
    assert re.search(r"(?m)^shield\n  groups\n    smtp\n      name +smtp\n      state +normal$",
                     table), table
    # Kept in the store: a restart re-applies them.
    mx.stop()
    mx.start()
    mx.wait_for_log(r"blocks: 2 restored from the store, 2 in force")
    assert smtp_first_line(mx.port, a).startswith("421 4.7.0")
    assert run("del", "block", a) == (0, {"ok": True})
    assert smtp_first_line(mx.port, a).startswith("220")
    rc, answer = run("flush", "block")
    assert rc == 0 and answer["flushed"] == 1, answer
    assert smtp_first_line(mx.port, b).startswith("220")
    rc, st = run("status")
    assert st["shield"]["blocks_active"] == 0, st


def test_smtp_attack_policy_inspects_unknown_clients_and_tightens_limits(postfix, mxguard):
    """With default_action = pass, an attack on the smtp group makes clients
    not known before suspects (tarpitted at RCPT, reason attack:unknown),
    while a client known before still passes at once; limits are divided."""
    from mxgtest import full_session
    from test_targrey import to_rcpt
    known, fresh = "127.10.1.1", "127.10.0.1"  # both verified, clean names
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass", client_lists="", allow_clients="127.0.0.1",
                 ddos_window="10s", ddos_threshold=30, ddos_release=5, ddos_quiet="2s",
                 tarpit_delay="2s", conn_per_source=8, attack_limit_divisor=4,
                 conn_per_prefix=0)
    full_session(mx.port, source_ip=known)
    mx.wait_for_log(r"close client=%s:\d+ .*stage=relay" % re.escape(known))
    for ip in spread_sources(40):
        probe(mx.port, ip, timeout=0.5)
    mx.wait_for_log(r"attack group=smtp state normal -> attack", timeout=5)
    # The known client is handed over at once, as in normal times.
    c, r, took = to_rcpt(mx, known)
    assert r.code == 250 and took < 1.5, (r, took)
    c.close()
    # A clean client unknown before the attack is inspected and tarpitted.
    c, r, took = to_rcpt(mx, fresh)
    assert r.code == 250 and took >= 1.8, (r, took)
    c.close()
    mx.wait_for_log(r"verdict client=%s .*verdict=suspect reason=attack:unknown"
                    % re.escape(fresh))
    # conn_per_source 8 / 4: a third connection from one source is refused.
    x = next_client_ip()
    held = [hold(mx.port, x), hold(mx.port, x)]
    try:
        assert smtp_first_line(mx.port, x).startswith("421 4.7.0")
        mx.wait_for_log(r"refuse client=%s .*reason=conn_source" % re.escape(x))
    finally:
        for s in held:
            s.close()


def test_block_burst_notice(postfix, mxguard, tmp_path):
    """block_burst blocks within a minute make one notice, by mail, with the
    sources; more blocks in the same minute do not make more notices."""
    sink = SmtpSink(tmp_path)
    try:
        mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                     allow_clients="127.0.0.1", flood_threshold=3, block_burst=3,
                     conn_per_prefix=0, notify_recipient="postmaster@example.test",
                     notify_relay="127.0.0.1:%d" % sink.port)
        flooders = client_ip_block(4)
        for ip in flooders:
            for _ in range(3):
                smtp_first_line(mx.port, ip)
        for ip in flooders:
            mx.wait_for_log(r"block client=%s seconds=600 level=1 " % re.escape(ip))
        mails = wait_until(lambda: [m for m in sink.messages() if "sources blocked" in m], 10,
                           what="block burst notice")
        assert len(mails) == 1, mails
        body = mails[0]
        assert "Subject: mxguard mxguard.test: 3 sources blocked within a minute" in body, body
        for ip in flooders[:3]:
            assert "  %s for 600s" % ip in body, body
        time.sleep(1)
        assert len([m for m in sink.messages() if "sources blocked" in m]) == 1
    finally:
        sink.stop()
