"""workers = 2 on an IPv6 listener: the reuseport program keeps one /64 on
one worker.

With workers > 1 the kernel runs listen.c's classic-BPF program on every
connection: for IPv6 it loads the source address words at SKF_NET_OFF + 8
and on, keeps prefix_v6 (64) bits and hashes them. Loopback has only ::1,
so everything here runs in a network namespace the test creates
(test_shield_nft's Netns): an AnyIP route (`local 2001:db8:100::/48 dev
lo`) makes every address of that /48 a local source, which a client binds
with IPV6_FREEBIND (an IPv6 bind checks for an assigned address, not for a
local route; the client checks that it got the very source it asked for).
mxguard listens on [2001:db8:25::25]:2525 in the namespace; its control
socket is a file, so status and explain are read from outside.

The tests check what the program promises for IPv6: addresses of one /64
that differ in bits 64..127 (also in the third word, which a program
reading the wrong words would hash) land on one worker, the one explain
names (the daemon's listen_worker_of and the kernel's program agree);
16 /64s reach both workers; conn_per_source and conn_per_prefix stay
exact for one /64, whose connections all go to one worker.

Which worker took a connection: the one whose "accepted" + "refused" moved
in status (worker 0 answers status; the other workers' counters are
refreshed about every second, so every read polls with a bound).
"""
import ipaddress
import json
import re
import subprocess
import sys

import pytest

from mxgtest import wait_until
from test_shield_nft import NsMxguard, Netns, open_dir  # noqa: F401 (fixture)
from test_workers import ctl, seen, status, wait_settled

SMTP_PORT = 2525
LISTEN = "2001:db8:25::25"
ANYIP = "2001:db8:100::/48"  # every /64 of the tests: 2001:db8:100:K::/64
SETTLE = 5  # seconds: status refreshes the other workers' counters about every second

# A client in the namespace, driven by JSON lines on stdin, one answer line
# each: ["probe", src] connects from src, reads the first line, closes;
# ["hold", src] does the same but keeps the connection; ["release"] closes
# every held one. Answers {"kind", "line", "local"} ("local": the source
# address the socket really had). Bounded: 5 s per socket, 128 held, 300 s
# in all, and it ends with its stdin.
DRIVER_SCRIPT = r"""
import json, socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
IPV6_FREEBIND = 78
held = []
end = time.monotonic() + 300

def connect(src):
    s = socket.socket(socket.AF_INET6)
    s.settimeout(5)
    s.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    s.bind((src, 0))
    out = {"kind": None, "line": "", "local": s.getsockname()[0]}
    try:
        s.connect((host, port))
    except ConnectionResetError:
        out["kind"] = "reset"
        return s, out
    except OSError as e:
        out["kind"] = "error: %s" % e
        return s, out
    data = b""
    while out["kind"] is None:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            out["kind"] = "reset"
        except socket.timeout:
            out["kind"] = "timeout"
        else:
            data += chunk
            if not chunk:
                out["kind"] = "eof"
            elif data.endswith(b"\r\n"):
                out["kind"] = "data"
    out["line"] = data.split(b"\r\n")[0].decode("latin-1")
    return s, out

for raw in sys.stdin:
    if time.monotonic() > end:
        break
    req = json.loads(raw)
    if req[0] == "release":
        for s in held:
            s.close()
        held = []
        out = {"kind": "released"}
    else:
        s, out = connect(req[1])
        if req[0] == "hold" and len(held) < 128:
            held.append(s)
        else:
            s.close()
    print(json.dumps(out), flush=True)
"""


class Driver:
    """The test's side of DRIVER_SCRIPT (one process in the namespace)."""

    def __init__(self, ns):
        # Netns.popen gives stdin DEVNULL: this one needs a pipe. ns.close kills it.
        self.proc = subprocess.Popen(
            ns.cmd([sys.executable, "-u", "-c", DRIVER_SCRIPT, LISTEN, str(SMTP_PORT)]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ns.procs.append(self.proc)

    def ask(self, *req):
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # the driver answers within 5 s (its timeout)
        assert line, "the client driver died: %s" % self.proc.stderr.read(2000)
        return json.loads(line)

    def connect(self, op, src):
        """The first line the server sends to a client from src."""
        a = self.ask(op, src)
        # The AnyIP route works: the connection came from src itself.
        assert ipaddress.ip_address(a["local"]) == ipaddress.ip_address(src), (src, a)
        return a["line"]

    def probe(self, src):
        return self.connect("probe", src)

    def hold(self, src):
        return self.connect("hold", src)

    def release(self):
        assert self.ask("release") == {"kind": "released"}


@pytest.fixture
def ns6(tmp_path, open_dir):  # noqa: F811
    """(namespace, driver, mxguard factory): the AnyIP /48 and the listening
    address set up in a fresh namespace; mxguard started with workers = 2."""
    ns = Netns(tmp_path)
    started = []
    try:
        ns.run([ns.ip, "-6", "route", "add", "local", ANYIP, "dev", "lo"])
        ns.run([ns.ip, "-6", "addr", "add", LISTEN + "/128", "dev", "lo", "nodad"])
        driver = Driver(ns)

        def start(**params):
            p = dict(workers=2, smtp_listen="[%s]:%d" % (LISTEN, SMTP_PORT),
                     backend="127.0.0.1:11025", dns_timeout="1s")
            p.update(params)
            mx = NsMxguard(ns, open_dir / ("mx%d" % len(started)), **p)
            mx.params.pop("service_imap")
            started.append(mx)
            mx.start()
            wait_until(lambda: (lambda ws: len(ws) == 2 and all(w["alive"] for w in ws))(
                status(mx)["workers"]), SETTLE, interval=0.1, what="2 live workers in status")
            return mx
        yield ns, driver, start
    finally:
        try:
            for mx in started:
                assert mx.stop() == 0, mx.log()[-3000:]
        finally:
            ns.close()


def worker_of(mx, driver, src):
    """The index of the worker that took one probe from src (nothing else
    connects meanwhile): the one worker whose counters moved."""
    before = seen(status(mx)["workers"])
    line = driver.probe(src)
    assert line.startswith("220"), (src, line, mx.log()[-2000:])

    def moved():
        now = seen(status(mx)["workers"])
        return now if sum(now) > sum(before) else None
    now = wait_until(moved, SETTLE, interval=0.1, what="the probe from %s in status" % src)
    diff = [i for i, (a, b) in enumerate(zip(before, now)) if a != b]
    assert sum(now) - sum(before) == 1 and len(diff) == 1, (src, before, now)
    return diff[0]


def explained_worker(mx, src):
    rc, a = ctl(mx, "explain", src)
    assert rc == 0 and a.get("ok") is True, (src, a)
    return a["worker"]


def net(k):
    """The k-th /64 of the AnyIP /48, as "2001:db8:100:K" (add "::host")."""
    return "2001:db8:100:%x" % k


# Hosts of one /64 that differ in every word of the interface ID: the
# program must hash words 0 and 1 (bytes 8..15 of the IPv6 header) only.
HOSTS = ["::1", "::ffff", ":ffff:ffff:ffff:ffff", ":8000::1"]


def test_one_v6_network_lands_on_the_worker_explain_names(ns6):
    ns, driver, start = ns6
    mx = start()
    got = []
    for k in range(1, 7):
        ws = [worker_of(mx, driver, net(k) + h) for h in HOSTS]
        named = explained_worker(mx, net(k) + "::abcd")
        got.append((net(k), ws, named))
    # Every host of a /64 went to one worker, the one explain names.
    bad = [g for g in got if set(g[1]) != {g[2]}]
    assert not bad, "per /64: (network, workers of %s, explain's worker): %s" % (HOSTS, got)
    mx.wait_for_log(r"client=\[?%s\]?" % re.escape(net(1) + "::1"))


def test_sixteen_v6_networks_reach_both_workers(ns6):
    ns, driver, start = ns6
    mx = start()
    nets = [net(k) for k in range(0x20, 0x30)]
    for n in nets:
        assert driver.probe(n + "::1").startswith("220"), n
    want = [0, 0]
    for n in nets:
        want[explained_worker(mx, n + "::1")] += 1

    def settled():
        now = seen(status(mx)["workers"])
        return now if sum(now) == len(nets) else None
    try:
        per = wait_until(settled, SETTLE, interval=0.1, what="16 connections in status")
    except AssertionError:
        pytest.fail("16 probes; workers %s" % status(mx)["workers"])
    assert all(n > 0 for n in per), per
    # And each worker took the networks explain gives it.
    assert per == want, (per, want)


def _flood_one_v6_network(mx, driver, sources, reason, limit):
    """One held connection per entry of sources: exactly `limit` admitted
    (220), the rest refused (421) and counted as `reason`, all on the worker
    explain names, none on the other."""
    try:
        lines = [driver.hold(src) for src in sources]
        admitted = [l for l in lines if l.startswith("220")]
        refused = [l for l in lines if l.startswith("421 4.7.0")]
        assert len(admitted) == limit and len(refused) == len(sources) - limit, lines
        mx.wait_for_log(r"refuse client=\[?%s\]? .*reason=%s" % (re.escape(sources[-1]), reason))
        want = len(sources) - limit
        st = wait_settled(mx, reason, want, limit, "%d connections from one /64"
                          % len(sources))
        ws = st["workers"]
        w = explained_worker(mx, sources[0])
        busy, idle = ws[w], ws[1 - w]
        assert (busy["accepted"], busy["refused"], busy["connections"]) == (limit, want, limit), \
            (w, ws)
        assert (idle["accepted"], idle["refused"], idle["connections"]) == (0, 0, 0), (w, ws)
    finally:
        driver.release()


def test_one_v6_source_limit_is_exact_across_workers(ns6):
    ns, driver, start = ns6
    mx = start(conn_per_source=3, conn_per_prefix=0)
    _flood_one_v6_network(mx, driver, [net(0x40) + "::7"] * 8, "conn_source", 3)


def test_one_v6_prefix_limit_is_exact_across_workers(ns6):
    ns, driver, start = ns6
    mx = start(conn_per_source=0, conn_per_prefix=3)
    # 8 addresses of one /64, different in every word of the interface ID.
    hosts = ["::10", "::ffff", ":1::1", ":ffff::2", ":0:1::3", ":0:ffff::4",
             ":8000:8000:8000:8000", ":ffff:ffff:ffff:ffff"]
    _flood_one_v6_network(mx, driver, [net(0x41) + h for h in hosts], "conn_prefix", 3)
