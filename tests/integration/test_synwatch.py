"""synwatch: the daemon notices its own accept queue overflowing.

mxguard listens with a small backlog and is stopped (SIGSTOP), so it
cannot accept(): the kernel completes backlog + 1 handshakes, then drops
further ones and counts ListenOverflows. When mxguard runs again, the
first synwatch reading finds the counter moved and logs one warning.

The counters are per network namespace and other processes may move them
too, so the test asserts only what its own overflow guarantees: a reading
taken before the stop and one taken after it differ by at least what the
test saw move while mxguard was stopped.
"""
import errno
import os
import re
import signal
import socket
import time

from mxgtest import client_ip_block, netstat, wait_until

BACKLOG = 4
CLIENTS = 30
OFF_RECHECK = 5  # seconds: SW_OFF_RECHECK in src/synwatch.c
ADVICE = ("raise listen_backlog, net.core.somaxconn and net.ipv4.tcp_max_syn_backlog "
          "together; keep net.ipv4.tcp_syncookies = 1")
SYSCTLS = {"net.core.somaxconn": "/proc/sys/net/core/somaxconn",
           "net.ipv4.tcp_max_syn_backlog": "/proc/sys/net/ipv4/tcp_max_syn_backlog",
           "net.ipv4.tcp_syncookies": "/proc/sys/net/ipv4/tcp_syncookies"}
WARNING = re.compile(r"(?m)^.*synwatch: host-wide TCP listen counters moved.*$")


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        # "pid (comm) S ...": comm may hold spaces, the state follows ')'.
        return f.read().rsplit(")", 1)[1].split()[0]


def greeting(port, source_ip):
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source_ip, 0)) as s:
        s.settimeout(10)
        data = b""
        # The greeting may be multi-line ("220-"): read to its last line.
        while not re.search(rb"(?m)^220 .*\r\n", data) and len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        s.sendall(b"QUIT\r\n")
    return data.decode("ascii", "replace")


def overflow_while_stopped(mx):
    """SIGSTOP mx, open CLIENTS connections from distinct sources until
    ListenOverflows moves, SIGCONT. Returns (sockets, log length at the
    stop, ListenOverflows moved while stopped)."""
    clients = []
    os.kill(mx.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: proc_state(mx.pid) == "T", 5, what="mxguard stopped")
        # Nothing is written to the log while stopped: what follows this
        # offset was written after SIGCONT.
        offset = len(mx.log_bytes())
        before = netstat()["ListenOverflows"]
        for ip in client_ip_block(CLIENTS):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            clients.append(c)
            c.setblocking(False)
            c.bind((ip, 0))
            rc = c.connect_ex(("127.0.0.1", mx.port))
            assert rc in (0, errno.EINPROGRESS), rc
        # A SYN to a full accept queue is dropped and counted at once; the
        # bounded wait covers loopback's softirq delay.
        wait_until(lambda: netstat()["ListenOverflows"] > before, 5,
                   what="ListenOverflows to move")
        moved = netstat()["ListenOverflows"] - before
    finally:
        os.kill(mx.pid, signal.SIGCONT)
    return clients, offset, moved


def close_all(clients):
    for c in clients:
        c.close()


def synwatch_lines(mx, offset=0):
    text = mx.log_bytes()[offset:].decode("utf-8", "replace")
    return [ln for ln in text.splitlines() if "synwatch:" in ln]


def test_overflow_is_warned_once_and_daemon_recovers(mxguard):
    mx = mxguard(default_action="inspect", listen_backlog=BACKLOG, synwatch_interval="1s")
    mx.wait_for_log(r"listening on 127\.0\.0\.1:%d backlog=%d" % (mx.port, BACKLOG))
    mx.wait_for_log(r"synwatch: reading host-wide TCP listen counters every 1s")
    clients = []
    try:
        clients, offset, moved = overflow_while_stopped(mx)
        assert moved > 0
        wait_until(lambda: any(WARNING.match(ln) for ln in synwatch_lines(mx, offset)), 10,
                   what="synwatch warning")
        # The first reading after the stop compares with one taken before
        # it: it must be the warning, and count at least our overflows.
        first = synwatch_lines(mx, offset)[0]
        assert WARNING.match(first), synwatch_lines(mx, offset)
        m = re.search(r" ListenOverflows \+(\d+)", first)
        assert m and int(m.group(1)) >= moved, (first, moved)
        assert "host-wide" in first
        # Our only listener, with the backlog the kernel holds it to.
        m = re.search(r"fullest listener of ours: 127\.0\.0\.1:%d queue (\d+)/(\d+)"
                      % mx.port, first)
        assert m, first
        assert int(m.group(2)) == BACKLOG and 0 <= int(m.group(1)) <= BACKLOG + 1, first
        assert ADVICE in first, first
        for key, path in SYSCTLS.items():
            with open(path) as f:
                assert "%s = %d" % (key, int(f.read())) in first, (key, first)
    finally:
        close_all(clients)

    # At most one warning per reading: with a 1s interval, two warnings
    # are never stamped with the same second.
    time.sleep(2.5)
    stamps = [ln.split(".", 1)[0] for ln in synwatch_lines(mx) if WARNING.match(ln)]
    assert len(stamps) == len(set(stamps)), stamps

    # mxguard serves normally afterwards.
    assert "220 mxguard.test ESMTP" in greeting(mx.port, client_ip_block(1)[0])
    assert mx.alive()


def test_interval_zero_reads_nothing_until_a_reload_sets_it(mxguard):
    mx = mxguard(default_action="inspect", listen_backlog=BACKLOG, synwatch_interval="0")
    mx.wait_for_log(r"synwatch: off \(synwatch_interval = 0\)")
    off_at = time.monotonic()
    clients = []
    try:
        clients, offset, moved = overflow_while_stopped(mx)
        assert moved > 0
        # While off, the timer only wakes every OFF_RECHECK seconds to see
        # whether a reload turned it on. Past that wake-up (and several
        # times the 1s interval of the other test), a reading would have
        # warned about our overflow: there must be none.
        time.sleep(max(3.0, off_at + OFF_RECHECK + 1.5 - time.monotonic()))
        assert synwatch_lines(mx, offset) == [], mx.log()[-2000:]
    finally:
        close_all(clients)
    assert "220 mxguard.test ESMTP" in greeting(mx.port, client_ip_block(1)[0])

    # A reload turns it on at the next wake-up; its first reading is a
    # baseline, the next one after an overflow warns.
    offset = len(mx.log_bytes())
    mx.set(synwatch_interval="1s")
    mx.reload()
    mx.wait_for_log(r"reloaded configuration")
    wait_until(lambda: any("every 1s" in ln for ln in synwatch_lines(mx, offset)),
               OFF_RECHECK + 3, what="synwatch on after reload")
    clients = []
    try:
        clients, offset, moved = overflow_while_stopped(mx)
        wait_until(lambda: any(WARNING.match(ln) for ln in synwatch_lines(mx, offset)), 10,
                   what="synwatch warning after reload")
        m = re.search(r" ListenOverflows \+(\d+)", synwatch_lines(mx, offset)[0])
        assert m and int(m.group(1)) >= moved
    finally:
        close_all(clients)
    assert "220 mxguard.test ESMTP" in greeting(mx.port, client_ip_block(1)[0])
