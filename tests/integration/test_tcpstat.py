"""mxguardctl tcpstat: socket states, the accept queue and the overflow
counters, against a listener the test owns on loopback.

The listener has backlog 2 and never accepts: Linux queues backlog + 1
completed connections, then drops further SYNs and counts ListenOverflows
and ListenDrops. The counters are per network namespace and other
processes may move them too, so they are only compared with >=.
"""
import errno
import json
import select
import socket
import subprocess
import time

from mxgtest import mxguard_bin, netstat

BACKLOG = 2
CLIENTS = 6
COUNTERS = ("ListenOverflows", "ListenDrops")


def tcpstat(*args, timeout=20):
    bin_ = mxguard_bin().parent / "mxguardctl"
    p = subprocess.run([str(bin_), "tcpstat"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    err = p.stderr.decode()
    # The ASan build reports to stderr; any report fails the test.
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return p.returncode, p.stdout.decode(), err


def listener(backlog=BACKLOG):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(backlog)
    return s


def connect_clients(port, n, wait=2.0):
    """n non-blocking connects; returns (sockets, how many completed)."""
    clients = []
    for _ in range(n):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        rc = c.connect_ex(("127.0.0.1", port))
        assert rc in (0, errno.EINPROGRESS), rc
        clients.append(c)
    done = set()
    deadline = time.monotonic() + wait
    while len(done) < n and time.monotonic() < deadline:
        pending = [c for c in clients if c not in done]
        _, w, _ = select.select([], pending, [], max(0.0, deadline - time.monotonic()))
        if not w:
            break
        done.update(w)
    completed = sum(1 for c in done if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
    return clients, completed


def port_json(port):
    rc, out, err = tcpstat("--port", str(port), "--json")
    assert rc == 0, err
    return json.loads(out)


def test_full_accept_queue_and_overflow_counters():
    before = netstat()
    srv = listener()
    port = srv.getsockname()[1]
    clients = []
    try:
        clients, completed = connect_clients(port, CLIENTS)
        # The kernel completes backlog + 1 handshakes; wait (bounded) until
        # the tool sees the queue full.
        deadline = time.monotonic() + 5
        while True:
            st = port_json(port)
            lst = [x for x in st["listeners"] if x["port"] == port]
            if (lst and lst[0]["queue"] >= BACKLOG + 1) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        after = netstat()

        assert lst == [{"family": "ipv4", "address": "127.0.0.1", "port": port,
                        "queue": BACKLOG + 1, "backlog": BACKLOG}], st
        assert list(st["ports"]) == [str(port)], st
        states = st["ports"][str(port)]
        assert states["LISTEN"] == 1
        # Server side: the completed connections waiting in the queue.
        assert states["ESTABLISHED"] == lst[0]["queue"]
        assert completed >= states["ESTABLISHED"]
        assert states["SYN_SENT"] == 0  # the clients' ports are not ours

        for name in COUNTERS:
            assert before[name] <= st["counters"][name] <= after[name], (name, st)
        # More clients than the queue holds: their handshakes overflowed.
        assert any(after[name] > before[name] for name in COUNTERS), (before, after)

        assert set(st["sysctls"]) == {"somaxconn", "tcp_max_syn_backlog",
                                      "tcp_syncookies", "tcp_abort_on_overflow"}
        assert st["sysctls"]["tcp_syncookies"] == int(
            open("/proc/sys/net/ipv4/tcp_syncookies").read())
        ho = st["half_open"]
        assert ho["bogus"] <= ho["total"] and ho["dot0_255"] <= ho["total"]
        # On loopback every peer is 127/8: a half-open socket here is "bogus".
        assert ho["bogus"] == ho["total"] == states["SYN_RECV"]
        assert "deltas" not in st
    finally:
        for c in clients:
            c.close()
        srv.close()


def test_human_output_names_port_and_listen_row():
    srv = listener()
    port = srv.getsockname()[1]
    try:
        rc, out, err = tcpstat("--port", str(port))
        assert rc == 0, err
        lines = out.splitlines()
        assert f"port {port}" in lines, out
        listen = [ln.split() for ln in lines if ln.strip().startswith("LISTEN ")]
        assert listen == [["LISTEN", "1", "0"]], out
        assert any(ln.split()[:4] == ["127.0.0.1", str(port), "0", str(BACKLOG)]
                   for ln in lines), out
        assert "ListenOverflows" in out and "tcp_syncookies" in out
    finally:
        srv.close()


def test_watch_prints_deltas_and_stops():
    srv = listener()
    port = srv.getsockname()[1]
    try:
        rc, out, err = tcpstat("--port", str(port), "--json", "--watch", "1", "--count", "2")
        assert rc == 0, err
        snaps = [json.loads(ln) for ln in out.splitlines()]
        assert len(snaps) == 2
        assert "deltas" not in snaps[0]
        for name in COUNTERS:
            assert snaps[1]["deltas"][name] == (snaps[1]["counters"][name]
                                                - snaps[0]["counters"][name])
            assert snaps[1]["deltas"][name] >= 0
    finally:
        srv.close()


def test_bad_usage_exits_2():
    for args in (["--bogus"], ["--port"], ["--port", "0"], ["--port", "70000"],
                 ["--port", "25x"], ["--watch", "0"], ["--count", "2"],
                 ["--watch", "1", "--count", "1001"]):
        rc, out, err = tcpstat(*args)
        assert rc == 2, (args, out, err)
        assert "usage:" in err and out == "", (args, out, err)
