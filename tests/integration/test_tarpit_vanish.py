"""A peer that vanishes during the tarpit hold (host gone, NAT state
expired: no FIN, no RST) is found before the hand-off and never handed off.

Everything runs in a network namespace the test creates (test_shield_nft's
Netns: loopback only, held by one sleep process, emptied at the end).
mxguard inspects every client; with nothing answering DNS in the namespace
each client is a suspect (no verified name) and is tarpitted. A client
sends its RCPT, and once it is held the test drops every packet from and to
its address (an nft table in the namespace, input hook: on loopback every
packet goes through it), so it vanishes without a word. mxguard's keepalive
probes go unanswered, the kernel fails the socket with ETIMEDOUT, and the
hold ends in a drop: logged as one, with a tarpit record, and the backend
(a recording fake in the namespace) never sees a connection. A live client
of the same kind, held the same way, survives and is handed off: the test
can see a hand-off when there is one.
"""
import json
import re
import subprocess
import sys
import time

import pytest

from mxgtest import mxguard_bin, wait_until
from test_shield_nft import NsMxguard, Netns, open_dir  # noqa: F401 (fixture)

SMTP_PORT = 2525
BACKEND_PORT = 11025
# Keepalive from tarpit.c for this hold: idle 10/4 = 2 s, then 3 probes
# 10/10 = 1 s apart: a vanished peer is failed about 5 s into the hold.
TARPIT_DELAY = 10
VANISHING = "127.77.0.2"
LIVE = "127.78.0.3"  # another /24: the drop above keys 127.77.0.0/24

# A recording backend: reads the PROXY v2 header and prints one line per
# connection ("connection SOURCE", or "probe" for mxguard's own LOCAL
# capability probe), then a minimal SMTP server (the hand-off replays EHLO,
# MAIL and RCPT). Bounded.
BACKEND_SCRIPT = r"""
import socket, struct, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
s.settimeout(0.2)
print("listening", flush=True)

def header(c):
    h = b""
    while len(h) < 16:
        d = c.recv(16 - len(h))
        if not d:
            return None
        h += d
    n = struct.unpack("!H", h[14:16])[0]
    body = b""
    while len(body) < n:
        d = c.recv(n - len(body))
        if not d:
            return None
        body += d
    if h[12] & 0x0f == 0:
        return "probe"
    if h[13] >> 4 == 1:
        return socket.inet_ntoa(body[:4])
    return "other"

def serve(c):
    c.settimeout(20)
    try:
        print("connection", header(c), flush=True)
        c.sendall(b"220 nsbackend.test ESMTP\r\n")
        buf = b""
        while True:
            d = c.recv(4096)
            if not d:
                return
            buf += d
            while b"\r\n" in buf:
                line, buf = buf.split(b"\r\n", 1)
                if line.upper().startswith(b"EHLO"):
                    c.sendall(b"250 nsbackend.test\r\n")
                elif line.upper().startswith(b"QUIT"):
                    c.sendall(b"221 bye\r\n")
                    return
                elif line[:1].isalpha():
                    c.sendall(b"250 ok\r\n")
    except OSError:
        pass
    finally:
        c.close()

end = time.monotonic() + 120
n = 0
while time.monotonic() < end and n < 50:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    n += 1
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# A suspect client: EHLO, MAIL, RCPT; prints "held" once the RCPT is sent,
# then what the RCPT got (or how the connection ended). Bounded by argv[3].
CLIENT_SCRIPT = r"""
import socket, sys
src, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket()
s.settimeout(limit)
s.bind((src, 0))
s.connect(("127.0.0.1", port))
f = s.makefile("rb")

def reply():
    while True:
        line = f.readline()
        if not line:
            return "eof"
        if line[3:4] != b"-":
            return line.decode("latin-1").strip()

print("greeting", reply(), flush=True)
for cmd in (b"EHLO client.test", b"MAIL FROM:<a@sender.test>"):
    s.sendall(cmd + b"\r\n")
    print("reply", reply(), flush=True)
s.sendall(b"RCPT TO:<user@example.test>\r\n")
print("held", flush=True)
try:
    print("rcpt", reply(), flush=True)
except socket.timeout:
    print("rcpt timeout", flush=True)
except OSError as e:
    print("rcpt error", e, flush=True)
"""


class Lines:
    """The stdout lines of a process in the namespace, read without blocking."""

    def __init__(self, proc):
        import threading
        self.proc = proc
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("latin-1").rstrip("\n"))

    def wait_for(self, prefix, timeout):
        return wait_until(lambda: next((l for l in self.lines if l.startswith(prefix)), None),
                          timeout, what="%r from the client (%s)" % (prefix, self.lines))


def backend_connections(lines, addr):
    return sum(1 for l in lines.lines if l == "connection " + addr)


def engine_status(mx):
    p = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-c", str(mx.config_file),
                        "status"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["engine"]


def drop_all_traffic_of(ns, addr):
    """The client vanishes: every packet from or to it is dropped (no RST)."""
    rules = ("table inet h3vanish {\n"
             " chain in { type filter hook input priority -300; policy accept;\n"
             "  ip saddr %s drop\n  ip daddr %s drop\n }\n}\n" % (addr, addr))
    p = subprocess.run(ns.cmd([ns.nft, "-f", "-"]), input=rules, capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0, p.stderr


@pytest.fixture
def netns(tmp_path):
    ns = Netns(tmp_path)
    try:
        yield ns
    finally:
        ns.close()


def test_vanished_peer_is_dropped_not_handed_off(netns, open_dir):  # noqa: F811
    for addr in (VANISHING, LIVE):
        netns.run([netns.ip, "addr", "add", addr + "/32", "dev", "lo"])
    backend = netns.popen([sys.executable, "-u", "-c", BACKEND_SCRIPT, str(BACKEND_PORT)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    seen = Lines(backend)
    seen.wait_for("listening", 10)
    mx = NsMxguard(netns, open_dir / "mx", default_action="inspect", client_lists="",
                   tarpit_delay="%ds" % TARPIT_DELAY, backend="127.0.0.1:%d" % BACKEND_PORT,
                   dns_timeout="1s", allow_clients="")
    mx.params.pop("service_imap")
    mx.start()

    # The vanishing client: held, then cut off without FIN or RST.
    gone = netns.popen([sys.executable, "-u", "-c", CLIENT_SCRIPT, VANISHING, str(SMTP_PORT),
                        str(TARPIT_DELAY + 20)], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    out = Lines(gone)
    out.wait_for("held", 15)
    mx.wait_for_log(r"tarpit start client=%s " % re.escape(VANISHING), timeout=10)
    t_cut = time.monotonic()
    drop_all_traffic_of(netns, VANISHING)

    # Found and dropped before the hold ends: keepalive's ETIMEDOUT.
    line = mx.wait_for_log(r"tarpit drop client=%s .* after=(\d+\.\d)s" % re.escape(VANISHING),
                           timeout=TARPIT_DELAY + 10).group(0)
    after = float(re.search(r"after=(\d+\.\d)s", line).group(1))
    assert after < TARPIT_DELAY, line
    assert re.search(r"tarpit peer lost client=%s error=Connection timed out"
                     % re.escape(VANISHING), mx.log()), mx.log()[-3000:]
    mx.wait_for_log(r"close client=%s:\d+ .*stage=tarpit .*end=tarpit_drop"
                    % re.escape(VANISHING), timeout=5)
    # Past the end of the hold: no survival, no hand-off, nothing at the backend.
    time.sleep(max(0.0, t_cut + TARPIT_DELAY + 2 - time.monotonic()))
    assert "tarpit survived client=%s " % VANISHING not in mx.log()
    assert backend_connections(seen, VANISHING) == 0, seen.lines
    # Recorded as a drop: its retry will be greylisted.
    assert engine_status(mx)["store"]["tarpit"] == 1

    # Control: a live client of the same kind survives and reaches the backend.
    live = netns.popen([sys.executable, "-u", "-c", CLIENT_SCRIPT, LIVE, str(SMTP_PORT),
                        str(TARPIT_DELAY + 20)], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    lout = Lines(live)
    r = lout.wait_for("rcpt", TARPIT_DELAY + 15)
    assert r == "rcpt 250 ok", (r, mx.log()[-3000:])
    mx.wait_for_log(r"tarpit survived client=%s " % re.escape(LIVE), timeout=5)
    # The backend's lines are read by a thread: give it a moment (bounded).
    wait_until(lambda: backend_connections(seen, LIVE) >= 1, 5,
               what="the live client at the backend (%s)" % seen.lines)
    assert backend_connections(seen, LIVE) == 1, seen.lines
    assert "tarpit peer lost client=%s " % LIVE not in mx.log()
    mx.stop()
