"""The README's tours, run as the README writes them (swaks, nc) against the
real daemon, with the harness's ports and paths in place of make run's."""
import re
import socket
import subprocess
from pathlib import Path

from mxgtest import free_port, next_client_ip

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _run(argv, timeout=60):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def test_inspect_tour_swaks_on_the_server_itself_is_handed_over(postfix, mxguard):
    """README: make run ARGS="-o default_action=inspect -o tarpit_delay=5s",
    then swaks --server 127.0.0.1:2525 --to you@example.org. make run keeps
    the default myhostname (the host name, which swaks sends as its HELO) and
    lists only the shipped whitelist; the client is 127.0.0.1, mxguard
    itself. It is classified and handed over, not refused as a HELO that
    claims to be this server."""
    assert 'make run ARGS="-o default_action=inspect -o tarpit_delay=5s"' in README
    assert "swaks --server 127.0.0.1:2525 --to you@example.org" in README
    mx = mxguard(default_action="inspect", tarpit_delay="5s",
                 myhostname=socket.gethostname(),
                 client_lists="regexp:%s" % (REPO / "etc" / "whitelist_clients.regexp"),
                 backend=postfix.backend_for("proxy2"))
    # swaks's own HELO is the host name: the one mxguard answers with.
    r = _run(["swaks", "--server", "127.0.0.1:%d" % mx.port, "--to", "you@example.org"])
    out = r.stdout + r.stderr
    assert "HELO claims to be this server" not in out, out
    assert re.search(r"<-  220-%s ESMTP mxguard" % re.escape(socket.gethostname()), out), out
    verdict = mx.wait_for_log(r"verdict client=127\.0\.0\.1 .*verdict=(clean|suspect)", timeout=20)
    assert verdict
    assert "reason=helo:own" not in mx.log()
    # Handed over: the RCPT reply is the backend's (the harness's Postfix
    # refuses every domain but example.test with its own text).
    assert re.search(r"<\*\* 5\d\d .*mxguard test instance", out), out


def test_shield_tour_fifth_attempt_makes_the_block(postfix, mxguard):
    """README: with flood_threshold=5, six nc connections from 127.0.0.9 to a
    guarded service: the first four reach the backend, the fifth is refused
    and makes the block (attempts=5), the sixth is refused too."""
    assert "-o allow_clients=127.0.0.1 -o flood_threshold=5 -o block_time=30s" in README
    assert "for i in 1 2 3 4 5 6; do nc -w1 -s 127.0.0.9 127.0.0.1 2110 </dev/null; done" in README
    assert "the fifth attempt" in README
    port = free_port()
    mx = mxguard(allow_clients="127.0.0.1", flood_threshold=5, block_time="30s",
                 service_pop3="listen=127.0.0.1:%d backend=%s proxy=none"
                 % (port, postfix.backend_for("none")))
    src = next_client_ip()  # the README's 127.0.0.9, fresh for each run
    for _ in range(6):
        _run(["nc", "-w1", "-s", src, "127.0.0.1", str(port)], timeout=10)
    block = mx.wait_for_log(r"block client=%s seconds=30 level=1 attempts=5 " % re.escape(src),
                            timeout=10)
    assert block
    served = len([line for line in mx.close_lines() if "client=%s:" % src in line])
    refused = len(re.findall(r"refuse client=%s .*reason=blocked" % re.escape(src), mx.log()))
    # The count is a sliding-window estimate (man mxguard.conf, flood_threshold):
    # a burst that straddles the edge of a window may be counted one short.
    assert (served, refused) in ((4, 2), (5, 1)), (served, refused, mx.log())
