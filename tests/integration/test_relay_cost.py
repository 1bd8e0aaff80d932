"""What a relayed session costs the daemon, counted in system calls.

The relay is what every accepted message goes through, so its system calls
are a correctness property of the design (docs/DESIGN.md, relay.c), not
only a speed: strace(1) attached to the daemon counts them over a batch of
plain sessions in pass mode, and the test checks the counts that used to be
wasted (an mmap and a munmap per relayed chunk, a read event removed and
added again at the end) stay gone.  epoll_wait is left out: how many
wake-ups a session takes depends on how fast the two ends answer.

Needs strace and the right to ptrace the daemon (root); skipped with the
reason printed otherwise.  All traffic stays on 127.0.0.0/8; every loop is
bounded in count and time.
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

from mxgtest import full_session, next_client_ip, wait_until

SESSIONS = 30


def _strace_counts(path):
    """{syscall: calls} from an `strace -c` summary."""
    counts = {}
    with open(path) as f:
        for line in f:
            words = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(words) < 5 or not words[-1].isidentifier() or words[-1] == "total":
                continue
            try:
                float(words[0])
                counts[words[-1]] = int(words[3])
            except ValueError:
                continue
    return counts


def test_relayed_session_makes_no_allocation_calls_and_few_syscalls(mxguard, postfix,
                                                                     tmp_path):
    """Before: about 75 calls per session (13 mmap + 13 munmap: a 64 KiB
    read buffer taken from the evbuffer per chunk); after: under 50, and no
    mmap/munmap per chunk."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed: cannot count the daemon's system calls")
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass")
    # Warm up: the first sessions grow the heap and the caches.
    for _ in range(3):
        full_session(mx.port, source_ip=next_client_ip())

    out = tmp_path / "strace.txt"
    err = tmp_path / "strace.err"
    with open(err, "wb") as ferr:
        st = subprocess.Popen([strace, "-c", "-f", "-p", str(mx.pid), "-o", str(out)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=ferr)
    try:
        try:
            wait_until(lambda: b"attached" in err.read_bytes() or st.poll() is not None,
                       timeout=10, what="strace attached")
        except AssertionError:
            pytest.skip("strace did not attach within 10 s")
        if st.poll() is not None:
            pytest.skip("strace cannot attach to the daemon: %s"
                        % err.read_bytes().decode("utf-8", "replace").strip())
        for _ in range(SESSIONS):
            full_session(mx.port, source_ip=next_client_ip())
        # The last close happens after the client's QUIT: let it land.
        wait_until(lambda: len(mx.close_lines()) >= SESSIONS + 3, timeout=10,
                   what="every close line")
        time.sleep(0.3)
    finally:
        if st.poll() is None:
            st.send_signal(signal.SIGINT)
        try:
            st.wait(timeout=15)
        except subprocess.TimeoutExpired:
            st.kill()
            st.wait(timeout=5)
    counts = _strace_counts(out)
    assert counts, "no strace summary: " + err.read_bytes().decode("utf-8", "replace")
    calls = sum(v for k, v in counts.items() if k != "epoll_wait")
    per_session = calls / SESSIONS
    alloc = (counts.get("mmap", 0) + counts.get("munmap", 0)) / SESSIONS
    print("system calls per relayed session: %.1f (mmap+munmap %.1f): %s"
          % (per_session, alloc, sorted(counts.items())))
    assert alloc < 1, counts
    assert per_session < 50, counts
