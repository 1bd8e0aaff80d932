"""Many clients at once through mxguard into Postfix."""

import asyncio
import re
import resource
import subprocess
import time

import pytest

from mxgtest import (RawSMTP, client_ip_block, control, header_values, make_message, new_message_id,
                     split_message)

N_SESSIONS = 1000
TEST_BUDGET = 180.0  # seconds for the whole 1,000-session test


SESSION_TIMEOUT = 60.0  # one session, normally well under 10 s


class SessionError(Exception):
    pass


def _listen_queue(port):
    p = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=10)
    return p.stdout.decode().strip() or "?"


async def _reply(reader):
    code = None
    for _ in range(100):
        line = await reader.readline()
        if not line:
            raise SessionError("connection closed (last code %r)" % code)
        code = int(line[:3])
        if line[3:4] != b"-":
            return code, line
    raise SessionError("reply too long")


async def _session(port, ip, mid, msg, progress):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0),
                                                   limit=1 << 16)
    progress["local"] = "%s:%d" % writer.get_extra_info("sockname")[:2]
    try:
        steps = [(None, 220), (b"EHLO c%s.client.test\r\n" % ip.encode(), 250),
                 (b"MAIL FROM:<load@client.test>\r\n", 250),
                 (b"RCPT TO:<user@example.test>\r\n", 250), (b"DATA\r\n", 354),
                 (msg + b".\r\n", 250), (b"QUIT\r\n", 221)]
        for send, want in steps:
            progress["step"] = send[:12] if send else b"greeting"
            if send is not None:
                writer.write(send)
                await writer.drain()
            code, line = await _reply(reader)
            if code != want:
                raise SessionError("after %r: got %r, wanted %d" % (send and send[:20], line, want))
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _run_all(port, jobs, timeout):
    async def guarded(job):
        ip, mid, msg = job
        progress = {"step": b"connect", "local": ip}
        try:
            await asyncio.wait_for(_session(port, ip, mid, msg, progress), timeout)
            return None
        except Exception as e:  # noqa: BLE001 - collected and reported
            return "%s %s: %r waiting for the reply to %r" % (progress["local"], mid, e,
                                                              progress["step"])
    return await asyncio.gather(*(guarded(j) for j in jobs))


def test_1000_concurrent_sessions_delivered_exactly_once(postfix, mxguard):
    t_start = time.monotonic()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft >= 4 * N_SESSIONS, "RLIMIT_NOFILE %d too low (conftest raises it)" % soft
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="pass", backend_timeout="60s", shutdown_timeout="5s")
    ips = client_ip_block(N_SESSIONS)
    jobs = []
    for ip in ips:
        mid = new_message_id("load")
        jobs.append((ip, mid, make_message(mid, body="load test from %s\r\n" % ip)))
    errors = asyncio.run(_run_all(mx.port, jobs, timeout=SESSION_TIMEOUT))
    failed = [e for e in errors if e]
    if failed:
        accepted = len(mx.close_lines())
        pytest.fail("%d of %d sessions failed; mxguard logged %d close lines (connections it "
                    "accepted and ended); listener accept queue: %s; e.g.:\n%s" % (
                        len(failed), N_SESSIONS, accepted, _listen_queue(mx.port),
                        "\n".join(failed[:10])), pytrace=False)
    t_sessions = time.monotonic() - t_start

    remaining = max(10.0, TEST_BUDGET - (time.monotonic() - t_start))
    by_id = postfix.wait_for_message_ids([mid for _, mid, _ in jobs], timeout=remaining)
    time.sleep(1.0)  # a duplicate delivery would show up right behind
    by_id_all = postfix.messages_by_id()
    dups = {m: len(by_id_all[m]) for m, _ in by_id.items() if len(by_id_all[m]) != 1}
    assert not dups, "delivered more than once: %r" % list(dups.items())[:5]
    # Each message arrived with its own client's address (no mix-up of
    # PROXY headers between concurrent sessions).
    wrong = []
    for ip, mid, _ in jobs:
        with open(by_id_all[mid][0], "rb") as f:
            headers, _ = split_message(f.read(16384))
        received = header_values(headers, "Received")[0]
        if not re.search(r"from c%s\.client\.test \(\S* ?\[%s\]\)" % (re.escape(ip), re.escape(ip)),
                         received):
            wrong.append((ip, received))
    assert not wrong, "wrong client address in %d messages, e.g. %r" % (len(wrong), wrong[:3])
    assert time.monotonic() - t_start < TEST_BUDGET, "took %.1fs (sessions %.1fs)" % (
        time.monotonic() - t_start, t_sessions)


def test_max_connections_refuses_with_421(postfix, mxguard):
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect", max_connections=2)
    held = [RawSMTP(mx.port), RawSMTP(mx.port)]
    try:
        for c in held:
            assert c.read_reply().code == 220
        with RawSMTP(mx.port) as extra:
            replies = extra.read_all_replies_until_close(timeout=5)
        assert len(replies) == 1 and replies[0].code == 421, replies
        assert replies[0].raw[-1].startswith("421 4.7.0 "), replies
        assert "too many connections" in replies[0].raw[-1], replies
        # Refused at accept by the shield: one refusal line, no connection state.
        mx.wait_for_log(r"refuse client=%s listener=127\.0\.0\.1:%d service=smtp "
                        r"reason=overload" % (re.escape(extra.client_id.rsplit(":", 1)[0]),
                                              mx.port))
        # A slot that frees up is usable again.
        held[0].cmd("QUIT")
        held[0].close()
        mx.close_line_for(held[0].client_id)
        with RawSMTP(mx.port) as again:
            assert again.read_reply().code == 220
            assert again.cmd("EHLO again.client.test").code == 250
    finally:
        for c in held:
            c.close()


def test_descriptor_limit_caps_clients_and_keeps_the_control_socket(postfix, mxguard):
    """A daemon whose descriptor limit cannot carry max_connections says so
    at start and refuses the clients past what the limit carries (421),
    instead of running out of descriptors: the control socket still answers
    while the clients hold every slot."""
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 default_action="inspect", start=False)
    mx.nofile = 200
    mx.start()
    cap = (200 - 64) // 2
    mx.wait_for_log(r"max_connections = 8000 \(8000 per process\) needs about 16064"
                    r" descriptors, but the limit is 200: at most %d clients are taken"
                    % cap)
    held, refused = [], 0
    try:
        # Bounded: 150 clients, more than the cap and than the limit itself.
        for i in range(150):
            c = RawSMTP(mx.port, source_ip="127.0.7.%d" % (i + 1))
            r = c.read_reply(strict=False)
            if r.code == 421:
                refused += 1
                c.close()
            else:
                assert r.code == 220, r
                held.append(c)
        assert len(held) == cap and refused == 150 - cap, (len(held), refused)
        status = control(mx, "status")
        assert status["ok"] and status["connections"] == cap, status
        assert "Too many open files" not in mx.log()
    finally:
        for c in held:
            c.close()
