"""workers = N|auto: one master, N worker processes sharing every listener.

The master binds each listener N times (SO_REUSEPORT) and a classic-BPF
program sends every connection of one source network (/24 for IPv4) to the
same worker. These tests check what that promises: status lists one live
process per worker, a killed worker comes back, per-source and per-prefix
limits stay exact, the distributed-flood detector counts over all workers,
operator blocks and white entries reach every worker, SIGHUP and SIGTERM
reach them all, and /metrics sums the workers and labels each one.

Which worker a network lands on is the kernel's business: the tests find
one by connecting from a network and watching which worker's "accepted"
moves in status (status refreshes the other workers' counters about every
second, so every read of them polls with a bound).
"""
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import MxguardStartError
from mxgtest import (control, full_session, mxguard_bin, new_message_id, probe,
                     smtp_first_line, wait_until)
from test_targrey import engine, to_rcpt

# Sources of this file: 127.120.0.0/16 to 127.129.0.0/16, one /24 at a time
# (next_client_ip hands out 127.20-119, test_shield's floods 127.130-249,
# 127.10 is the DNS-named range of the taRgrey tests).
_nets = itertools.count()


def fresh_net():
    """A /24 no other test of this file uses, as "127.A.B" (add ".host")."""
    n = next(_nets)
    assert n < 10 * 250, "source networks exhausted"
    return "127.%d.%d" % (120 + n // 250, n % 250)


# Children of the daemon that exist without workers (checked on the code
# before workers: ps --ppid shows the notification helper only).
HELPER_COMMS = {"mxguard-notify"}

SETTLE = 5  # seconds: status/metrics refresh the workers' counters about every second


def start(mxguard, n, **params):
    """mxguard with workers = n; waits (bounded) until status shows n live
    workers. Skips, saying why, when the kernel lacks reuseport BPF."""
    try:
        mx = mxguard(workers=n, **params)
    except MxguardStartError as e:
        if "SO_ATTACH_REUSEPORT_CBPF" in str(e):
            pytest.skip("this kernel has no classic-BPF reuseport programs: %s"
                        % [l for l in str(e).splitlines() if "SO_ATTACH_REUSEPORT_CBPF" in l][0])
        raise
    if n != "auto":
        wait_until(lambda: len(workers(mx)) == n and all(w["alive"] for w in workers(mx)),
                   SETTLE, interval=0.1, what="%s live workers in status" % n)
    return mx


def status(mx):
    st = control(mx, "status")
    assert st["ok"] is True, st
    return st


def workers(mx):
    return status(mx)["workers"]


def ctl(mx, *args):
    """mxguardctl --json ARGS against mx's control socket: (rc, answer)."""
    sock = os.path.join(mx.params["state_dir"], "control.sock")
    r = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-s", sock, "--json"]
                       + list(args), capture_output=True, text=True, timeout=20)
    return r.returncode, json.loads(r.stdout) if r.stdout.strip() else r.stderr


def ppid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    return None


def children(pid):
    """{child pid: comm} of pid, from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if ppid(int(d)) == pid:
                with open("/proc/%s/comm" % d) as f:
                    out[int(d)] = f.read().strip()
        except (OSError, ValueError):
            continue
    return out


def gone(pid):
    """True when pid no longer exists (or is a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def seen(ws):
    """Connections each worker has taken in: admitted + refused."""
    return [w["accepted"] + w["refused"] for w in ws]


def worker_of(mx, ip):
    """The index of the worker that takes connections from ip: one probe,
    then the one worker whose counters moved (nothing else may connect
    meanwhile)."""
    before = seen(workers(mx))
    smtp_first_line(mx.port, ip)

    def moved():
        now = seen(workers(mx))
        return now if sum(now) > sum(before) else None
    now = wait_until(moved, SETTLE, interval=0.1, what="the probe from %s in status" % ip)
    diff = [i for i, (a, b) in enumerate(zip(before, now)) if a != b]
    assert sum(now) - sum(before) == 1 and len(diff) == 1, (ip, before, now)
    return diff[0]


def net_on(mx, worker, tries=16):
    """A fresh /24 ("127.A.B") whose connections land on `worker`."""
    tried = []
    for _ in range(tries):
        net = fresh_net()
        w = worker_of(mx, net + ".1")
        tried.append((net, w))
        if w == worker:
            return net
    pytest.fail("no network among %d landed on worker %d: %s" % (tries, worker, tried))


def hold(port, source_ip):
    """A connection from source_ip and its first line (the caller closes it)."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    data = b""
    try:
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return s, data.split(b"\r\n")[0].decode(errors="replace")


def shield(mxguard, postfix, n=2, **params):
    """Workers with the shield on for 127/8 (127.0.0.1 alone allow-listed)."""
    p = dict(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
             allow_clients="127.0.0.1")
    p.update(params)
    return start(mxguard, n, **p)


# ---------------------------------------------------------------------------
# 1. status lists the workers


def test_status_lists_two_live_workers_children_of_the_master(mxguard):
    t0 = time.time()
    mx = start(mxguard, 2)
    rc, st = ctl(mx, "status")
    assert rc == 0 and st["ok"] is True, st
    # "pid" is the daemon's: the master, the process systemd and kill know.
    assert st["pid"] == mx.pid, (st["pid"], mx.pid)
    ws = st["workers"]
    assert [w["worker"] for w in ws] == [0, 1], ws
    pids = [w["pid"] for w in ws]
    assert len(set(pids)) == 2 and mx.pid not in pids, (mx.pid, ws)
    for w in ws:
        assert w["alive"] is True and w["restarts"] == 0, w
        assert w["connections"] == 0 and w["accepted"] == 0 and w["refused"] == 0, w
        assert t0 - 2 <= w["started"] <= time.time() + 1, (t0, w)
        assert os.path.exists("/proc/%d" % w["pid"]), w
        assert ppid(w["pid"]) == mx.pid, (w, ppid(w["pid"]))
    # The worker processes are the master's children, besides the helpers.
    kids = children(mx.pid)
    assert set(pids) <= set(kids), (pids, kids)


@pytest.mark.parametrize("params", [{}, {"workers": "1"}], ids=["default", "workers=1"])
def test_one_worker_is_the_daemon_itself(mxguard, params):
    mx = mxguard(**params)
    ws = wait_until(lambda: status(mx).get("workers"), SETTLE, interval=0.1,
                    what="a workers array in status")
    assert len(ws) == 1, ws
    w = ws[0]
    assert w["worker"] == 0 and w["pid"] == mx.pid and w["alive"] is True, (mx.pid, w)
    assert w["restarts"] == 0, w
    # No worker process: only the helpers that existed before workers.
    kids = children(mx.pid)
    assert set(kids.values()) <= HELPER_COMMS, kids
    # One client moves the one worker's counters like the totals.
    assert smtp_first_line(mx.port, fresh_net() + ".1").startswith("220")
    # (the close reaches the daemon a moment after the client's: polled too)
    wait_until(lambda: (lambda s: s["accepted"] == 1 and s["workers"][0]["accepted"] == 1
                        and s["connections"] == 0 and s["workers"][0]["connections"] == 0)(
        status(mx)), SETTLE, interval=0.1,
        what="accepted 1 and 0 open, in the totals and on worker 0")


def test_workers_auto_is_one_per_online_cpu_and_bad_values_are_refused(mxguard):
    ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
    mx = start(mxguard, "auto")
    ws = wait_until(lambda: (lambda w: w if len(w) == ncpu and all(x["alive"] for x in w)
                             else None)(workers(mx)), SETTLE, interval=0.1,
                    what="%d live workers (online CPUs)" % ncpu)
    assert [w["worker"] for w in ws] == list(range(ncpu)), ws
    for bad in ["0", "-1", "two", "2x", ""]:
        r = subprocess.run([str(mxguard_bin()), "-n", "-o", "run_as=", "-o", "workers=%s" % bad],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1 and "workers" in r.stderr, (bad, r.returncode, r.stderr)


# ---------------------------------------------------------------------------
# 2. a killed worker comes back


def test_killed_worker_is_restarted_and_serves_again(mxguard, postfix):
    mx = start(mxguard, 2, backend=postfix.backend_for("proxy2"), backend_protocol="proxy2")
    net = net_on(mx, 1)
    # Long after the start (the case right after it: the next test).
    mx.wait_for_log(r"ready: 2 workers")
    old = workers(mx)
    os.kill(old[1]["pid"], signal.SIGKILL)
    t0 = time.monotonic()

    def back():
        ws = workers(mx)
        w = ws[1]
        return ws if w["pid"] != old[1]["pid"] and w["alive"] else None
    ws = wait_until(back, SETTLE, interval=0.1, what="worker 1 restarted")
    took = time.monotonic() - t0
    assert ws[1]["restarts"] == 1, ws
    assert ppid(ws[1]["pid"]) == mx.pid, (ws[1], ppid(ws[1]["pid"]))
    # Worker 0 was left alone.
    assert ws[0]["pid"] == old[0]["pid"] and ws[0]["restarts"] == 0, (old, ws)
    log = mx.wait_for_log(r"(?im)^.*worker.*restart.*$|^.*restart.*worker.*$")
    print("worker 1 back after %.2fs; log: %s" % (took, log.group(0)))
    # Its network is served again, by the new worker, through to Postfix.
    before = seen(workers(mx))
    mid, _, _ = full_session(mx.port, source_ip=net + ".2", message_id=new_message_id("respawn"))
    postfix.wait_for_message(mid)
    now = wait_until(lambda: (lambda s: s if sum(s) == sum(before) + 1 else None)(
        seen(workers(mx))), SETTLE, interval=0.1, what="the session in status")
    assert now[1] == before[1] + 1 and now[0] == before[0], (before, now)
    assert mx.alive()


def test_worker_killed_soon_after_start_is_restarted_too(mxguard):
    """A worker that said it was ready and served a client, killed within
    the master's first second: restarted like any other, the daemon goes on."""
    mx = start(mxguard, 2)
    assert smtp_first_line(mx.port, fresh_net() + ".1").startswith("220")
    old = workers(mx)
    if "ready: 2 workers" in mx.log():
        pytest.skip("the master announced its workers before the test could kill one "
                    "(slow start): the window this test is about has passed")
    os.kill(old[1]["pid"], signal.SIGKILL)

    def back():
        assert mx.alive(), "the daemon stopped: %s" % [
            l for l in mx.log().splitlines() if "worker" in l or "stop" in l]
        ws = workers(mx)
        return ws if ws[1]["pid"] not in (0, old[1]["pid"]) and ws[1]["alive"] else None
    ws = wait_until(back, SETTLE, interval=0.1, what="worker 1 restarted")
    assert ws[1]["restarts"] == 1 and ws[0]["pid"] == old[0]["pid"], (old, ws)
    assert smtp_first_line(mx.port, fresh_net() + ".1").startswith("220")


# ---------------------------------------------------------------------------
# 3. per-source and per-prefix limits are exact over the workers


def wait_settled(mx, reason, want, limit, what):
    """The status once one network's flood is counted: `want` refusals for
    `reason`, `limit` accepted, and `limit` open on one worker, none on the
    other (bounded wait; the failure says what was counted instead)."""
    def settled():
        st = status(mx)
        ok = (st["refusals"][reason] == want and st["refused"] == want
              and st["accepted"] == limit
              and sorted(w["connections"] for w in st["workers"]) == [0, limit])
        return st if ok else None
    try:
        return wait_until(settled, SETTLE, interval=0.1, what="the counters to settle")
    except AssertionError:
        st = status(mx)
        pytest.fail("after %s: refusals %s, accepted %s, workers %s"
                    % (what, st["refusals"], st["accepted"], st["workers"]))


def _flood_one_network(mx, sources, reason, limit):
    """Open one connection per entry of sources (held); exactly `limit`
    admitted (220), the rest refused (421) and counted as `reason`, all on
    one worker."""
    held, lines = [], []
    try:
        for ip in sources:
            s, line = hold(mx.port, ip)
            held.append(s)
            lines.append(line)
        admitted = [l for l in lines if l.startswith("220")]
        refused = [l for l in lines if l.startswith("421 4.7.0")]
        assert len(admitted) == limit and len(refused) == len(sources) - limit, lines
        mx.wait_for_log(r"refuse client=%s .*reason=%s" % (re.escape(sources[-1]), reason))
        want = len(sources) - limit
        st = wait_settled(mx, reason, want, limit, "%d connections from one network"
                          % len(sources))
        ws = st["workers"]
        busy = [w for w in ws if w["connections"] == limit][0]
        idle = [w for w in ws if w is not busy][0]
        # Every connection of the network reached the busy worker alone.
        assert (busy["accepted"], busy["refused"]) == (limit, want), ws
        assert (idle["accepted"], idle["refused"], idle["connections"]) == (0, 0, 0), ws
    finally:
        for s in held:
            s.close()


def test_one_source_limit_is_exact_across_workers(mxguard, postfix):
    mx = shield(mxguard, postfix, conn_per_source=3, conn_per_prefix=0)
    src = fresh_net() + ".7"
    _flood_one_network(mx, [src] * 8, "conn_source", 3)


def test_one_prefix_limit_is_exact_across_workers(mxguard, postfix):
    mx = shield(mxguard, postfix, conn_per_source=0, conn_per_prefix=3)
    net = fresh_net()
    _flood_one_network(mx, ["%s.%d" % (net, h) for h in range(10, 18)], "conn_prefix", 3)


# ---------------------------------------------------------------------------
# 4. the distributed-flood detector counts over all workers


def test_distributed_flood_is_detected_over_the_workers(mxguard, postfix):
    mx = shield(mxguard, postfix, ddos_window="20s", ddos_threshold=30, ddos_release=5,
                ddos_quiet="10s", conn_per_prefix=0, conn_per_source=8,
                attack_limit_divisor=4)
    for i in range(40):
        probe(mx.port, fresh_net() + ".1", timeout=0.5)

    def attacked():
        st = status(mx)
        g = [g for g in st["shield"]["groups"] if g["name"] == "smtp"][0]
        return st if g["state"] == "attack" and sum(seen(st["workers"])) == 40 else None
    try:
        st = wait_until(attacked, SETTLE, interval=0.1, what="group smtp in attack")
    except AssertionError:
        st = status(mx)
        pytest.fail("40 distinct sources, ddos_threshold 30: groups %s, workers %s"
                    % (st["shield"]["groups"], st["workers"]))
    group = [g for g in st["shield"]["groups"] if g["name"] == "smtp"][0]
    assert group["distinct"] >= 30, group
    per = seen(st["workers"])
    # Neither worker saw the threshold alone: the sum made the attack.
    assert all(0 < n < 30 for n in per), per
    mx.wait_for_log(r"attack group=smtp state normal -> attack")
    # Both workers apply the attack policy: conn_per_source 8 / 4 = 2.
    for i in (0, 1):
        src = net_on(mx, i) + ".3"
        held = [hold(mx.port, src) for _ in range(2)]
        try:
            assert [line[:3] for _, line in held] == ["220", "220"], (i, held)
            assert smtp_first_line(mx.port, src).startswith("421 4.7.0"), i
            mx.wait_for_log(r"refuse client=%s .*reason=conn_source" % re.escape(src))
        finally:
            for s, _ in held:
                s.close()


# ---------------------------------------------------------------------------
# 5. operator blocks and white entries reach every worker


def test_operator_block_reaches_worker_one(mxguard, postfix):
    mx = shield(mxguard, postfix)
    net = net_on(mx, 1)
    victim = net + ".9"
    assert ctl(mx, "add", "block", victim) == (0, {"ok": True})
    wait_until(lambda: (lambda l: l if l.startswith("421 4.7.0") else None)(
        smtp_first_line(mx.port, victim)), SETTLE, interval=0.2,
        what="%s refused as blocked (on worker 1)" % victim)
    mx.wait_for_log(r"refuse client=%s .*reason=blocked" % re.escape(victim))
    st = wait_until(lambda: (lambda s: s if s["workers"][1]["refused"] >= 1 else None)(
        status(mx)), SETTLE, interval=0.1, what="worker 1 counting the refusal")
    assert st["workers"][0]["refused"] == 0, st["workers"]
    assert st["refusals"]["blocked"] >= 1, st["refusals"]
    # Deleted: every worker lets it in again.
    assert ctl(mx, "del", "block", victim) == (0, {"ok": True})
    wait_until(lambda: smtp_first_line(mx.port, victim).startswith("220"), SETTLE, interval=0.2,
               what="%s admitted again after del block" % victim)


def test_operator_white_entry_reaches_worker_one(mxguard, postfix):
    """An unknown client (no PTR) is tarpitted; `add white` for its /24
    makes it white on the worker its network lands on."""
    mx = engine(mxguard, postfix, workers=2, tarpit_delay="3s")
    wait_until(lambda: len(workers(mx)) == 2, SETTLE, interval=0.1, what="2 workers")
    # 127.10.K.x has no PTR for K >= 4 (conftest.DNS_HOSTS): unknown, suspect.
    for k in range(20, 40):
        net = "127.10.%d" % k
        if worker_of(mx, net + ".200") == 1:
            break
    else:
        pytest.fail("no 127.10.K.0/24 (K 20..39) landed on worker 1")
    c, r, took = to_rcpt(mx, net + ".4")
    assert r is not None and r.code == 250 and took >= 2.8, (r, took)
    c.close()
    rc, answer = ctl(mx, "add", "white", net + ".0/24")
    assert (rc, answer) == (0, {"ok": True}), answer
    time.sleep(1)  # bound for the entry to reach every worker
    c, r, took = to_rcpt(mx, net + ".5")
    assert r is not None and r.code == 250 and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"verdict client=%s .*verdict=white reason=list:store:white:%s"
                    % (re.escape(net + ".5"), re.escape(net + ".0/24")))
    # Deleted: worker 1 forgets it too (it may have kept the entry in memory).
    rc, answer = ctl(mx, "del", "white", net + ".0/24")
    assert (rc, answer) == (0, {"ok": True}), answer
    time.sleep(1)
    c, r, took = to_rcpt(mx, net + ".6")
    c.close()
    m = mx.wait_for_log(r"verdict client=%s .*verdict=(\w+) reason=(\S+)" % re.escape(net + ".6"))
    assert m.group(1) != "white", m.group(0)


def test_flood_block_made_by_worker_one_holds_everywhere(mxguard, postfix):
    """A one-source flood blocked by the worker it lands on: worker 0 (which
    answers explain and status) knows the block, and a restarted worker 1
    still refuses the source."""
    mx = shield(mxguard, postfix, flood_window="20s", flood_threshold=4, block_time="60s",
                conn_per_source=0, conn_per_prefix=0)
    net = net_on(mx, 1)
    flooder = net + ".5"
    for _ in range(10):
        if smtp_first_line(mx.port, flooder).startswith("421"):
            break
    else:
        pytest.fail("the flood from %s was not blocked" % flooder)
    m = mx.wait_for_log(r"(?m)^.*mxguard\[(\d+)\]: .*block client=%s seconds=60 level=1 .*$"
                        % re.escape(flooder))
    old = workers(mx)
    assert int(m.group(1)) == old[1]["pid"], (m.group(0), old)  # made by worker 1
    rc, a = ctl(mx, "explain", flooder)
    assert rc == 0 and a["worker"] == 1, a

    def known():
        rc, a = ctl(mx, "explain", flooder)
        blk = a["shield"]["blocks"]["address"]
        return blk if blk is not None and blk["active"] is True else None
    try:
        wait_until(known, SETTLE, interval=0.2, what="worker 0 knowing the block")
    except AssertionError:
        pytest.fail("worker 1 blocked %s; %ss later explain (worker 0) shows blocks %s"
                    % (flooder, SETTLE, ctl(mx, "explain", flooder)[1]["shield"]["blocks"]))
    wait_until(lambda: status(mx)["shield"]["blocks_active"] >= 1, SETTLE, interval=0.1,
               what="blocks_active in status (worker 0)")
    # A new worker 1 starts with the block in force.
    mx.wait_for_log(r"ready: 2 workers")
    os.kill(old[1]["pid"], signal.SIGKILL)
    wait_until(lambda: (lambda w: w["pid"] not in (0, old[1]["pid"]) and w["alive"])(
        workers(mx)[1]), SETTLE, interval=0.1, what="worker 1 restarted")
    assert smtp_first_line(mx.port, flooder).startswith("421 4.7.0")
    mx.wait_for_log(r"refuse client=%s .*reason=blocked" % re.escape(flooder))


def test_explain_names_the_worker_the_kernel_picks(mxguard):
    """explain's "worker" (the daemon's copy of the program's hash) is where
    the kernel sends the network's connections."""
    mx = start(mxguard, 2)
    got = []
    for _ in range(8):
        net = fresh_net()
        w = worker_of(mx, net + ".1")
        rc, a = ctl(mx, "explain", net + ".200")
        assert rc == 0, a
        got.append((net, w, a.get("worker")))
    assert all(w == e for _, w, e in got), got
    assert {w for _, w, _ in got} == {0, 1}, got


def test_worker_zero_alone_serves_policy_metrics_and_control(mxguard):
    from mxgtest import _socket_inodes, free_port, is_listening
    from test_policy import POLICY, ask
    pport, mport = free_port(), free_port()
    mx = start(mxguard, 2, policy_listen="127.0.0.1:%d" % pport,
               metrics_listen="127.0.0.1:%d" % mport, **POLICY)
    w0, w1 = [w["pid"] for w in workers(mx)]
    for port in (pport, mport):
        assert is_listening(port, pid=w0), port
        assert not is_listening(port, pid=w1), port
    assert is_listening(mx.port, pid=w0) and is_listening(mx.port, pid=w1)
    # The control socket (a listening unix socket) too.
    path = os.path.join(mx.params["state_dir"], "control.sock")
    with open("/proc/net/unix") as f:
        inodes = {l.split()[6] for l in f if l.split()[-1] == path and len(l.split()) == 8}
    assert inodes and inodes & _socket_inodes(w0) and not inodes & _socket_inodes(w1), inodes
    with socket.create_connection(("127.0.0.1", pport), timeout=10) as s:
        assert ask(s).startswith("action=DEFER_IF_PERMIT Greylisted")
    m = mx.wait_for_log(r"mxguard\[(\d+)\]: info: verdict client=192\.0\.2\.7 ")
    assert int(m.group(1)) == w0, m.group(0)


# ---------------------------------------------------------------------------
# 6. SIGHUP and SIGTERM to the master


def test_sighup_reloads_every_worker_and_sigterm_stops_them_all(mxguard, postfix):
    mx = shield(mxguard, postfix, conn_per_source=1, conn_per_prefix=0,
                smtp_refuse_temp="421 4.7.0 Before reload")
    nets = [net_on(mx, 0), net_on(mx, 1)]
    held = []

    def refusal(ip):
        """The line a second connection from ip gets while one is held."""
        return smtp_first_line(mx.port, ip)
    try:
        for i, net in enumerate(nets):
            s, line = hold(mx.port, net + ".3")
            held.append(s)
            assert line.startswith("220"), (i, line)
            assert refusal(net + ".3") == "421 4.7.0 Before reload", i
        old = [w["pid"] for w in workers(mx)]
        mx.set(smtp_refuse_temp="421 4.7.0 After reload")
        mx.reload()
        mx.wait_for_log(r"reloaded configuration from")
        for i, net in enumerate(nets):
            wait_until(lambda: refusal(net + ".3") == "421 4.7.0 After reload", SETTLE,
                       interval=0.2, what="worker %d using the reloaded text" % i)
        # Reloaded in place: the same processes.
        assert [w["pid"] for w in workers(mx)] == old
        # workers itself is fixed at start.
        mark = len(mx.log())
        mx.set(workers=3)
        mx.reload()
        wait_until(lambda: re.search(r"reload: workers changed; it takes effect only after a "
                                     r"restart", mx.log()[mark:]), SETTLE,
                   what="the log saying workers takes effect after a restart")
        ws = workers(mx)
        assert [w["pid"] for w in ws] == old and all(w["alive"] for w in ws), ws
    finally:
        for s in held:
            s.close()
    # SIGTERM: every worker stops, then the master, with status 0.
    rc = mx.stop(timeout=20)
    assert rc == 0, (rc, mx.log()[-3000:])
    wait_until(lambda: all(gone(p) for p in old), SETTLE, interval=0.1,
               what="no worker process left (%s)" % old)


# ---------------------------------------------------------------------------
# 7. /metrics


def test_metrics_label_each_worker_and_sum_them(mxguard, postfix):
    from test_metrics import start as metrics_start, value
    mx, m = metrics_start(mxguard, postfix, workers=2)
    wait_until(lambda: len(workers(mx)) == 2, SETTLE, interval=0.1, what="2 workers")
    lst = "127.0.0.1:%d" % mx.port
    for i in range(12):
        assert smtp_first_line(mx.port, fresh_net() + ".1").startswith("220"), i

    def settled():
        s = m.scrape()
        per = [value(s, "mxguard_worker_accepted_total", worker=str(i)) for i in range(2)]
        total = value(s, "mxguard_connections_accepted_total", listener=lst)
        open_now = [value(s, "mxguard_worker_connections", worker=str(i)) for i in range(2)]
        return s if (None not in per and total == 12 and sum(per) == 12
                     and open_now == [0, 0]) else None
    try:
        s = wait_until(settled, SETTLE, interval=0.2, what="the accepted series to settle")
    except AssertionError:
        text = m.text()
        pytest.fail("after 12 connections:\n%s" % "\n".join(
            l for l in text.splitlines() if "accepted" in l or "mxguard_worker" in l))
    ws = status(mx)["workers"]
    for i in range(2):
        w = str(i)
        assert value(s, "mxguard_worker_up", worker=w) == 1, w
        assert value(s, "mxguard_worker_restarts_total", worker=w) == 0, w
        assert value(s, "mxguard_worker_accepted_total", worker=w) == ws[i]["accepted"], (w, ws)
    assert value(s, "mxguard_worker_up", worker="2") is None
