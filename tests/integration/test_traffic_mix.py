"""A traffic mix against the real daemon: bots of several behaviours and
legit senders of several kinds at once, with a real Postfix backend and
names from a dnsmasq of this module (127.12.0.0/16, each sender in its own
/24 and, for names, its own domain, so that no two share a key).

Bots (no verified name, S25R r0):
  quitter    gives up and closes 1 s into the tarpit
  silent     survives the tarpit, then says nothing and never closes
  early      talks before the greeting: EHLO..DATA, a message, QUIT in one write
  retrier    drops after 0.5 s and comes back at once, twice (each visit
             takes greet_wait + 0.5 s, all within greylist_delay: a bot
             that waited greylist_delay would pass, as any sender does)
Legit senders:
  clean      a server name: passes at once
  patient    a dynamic-looking MTA that waits out the tarpit
  short      a short-timeout MTA (1 s per reply) retrying every greylist_delay
  pipeliner  a dynamic-looking MTA: MAIL + 40 RCPT + DATA in one write
             (RFC 2920), retrying after a failure

Printed, one line: "traffic-mix: ..." with the bots that reached the
backend (Postfix's connect lines), the backend seconds held by bots (from
the bots' side: the backend's first reply to the connection's end), legit
messages delivered and legit delays (first attempt to the 250 after DATA).
"""
import re
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mxgtest import free_port, is_listening, make_message, mxguard_bin, new_message_id, wait_until

# The bound on a silent survivor's backend session after the hand-off (the
# lead's relay_first_timeout-like parameter). Adjust here.
RELAY_FIRST_PARAM = "survivor_timeout"
RELAY_FIRST_TIMEOUT = 5
GREET_WAIT = 2
TARPIT = 3
# Longer than the retrier's whole retry span (3 visits of greet_wait + 0.5 s
# from the first sighting at its first drop): greylisting stops bots that do
# not wait, and lets through any sender that waits, bot or not.
GREYLIST = 6
LEGIT_DEADLINE = 36     # seconds for every legit sender to deliver
SILENT_CAP = RELAY_FIRST_TIMEOUT + 10

HOSTS = {
    "127.12.1.1": "mail.cleanco.test",           # clean
    "127.12.2.1": "h12-34.dyn.legita.test",      # S25R r1, legit
    "127.12.3.1": "h56-78.dyn.legitb.test",      # S25R r1, legit
    "127.12.4.1": "h90-12.dyn.legitc.test",      # S25R r1, legit
}
BOTS = {"quitter": "127.12.21.1", "silent": "127.12.22.1", "early": "127.12.23.1",
        "retrier": "127.12.24.1"}
LEGIT = {"clean": "127.12.1.1", "patient": "127.12.2.1", "short": "127.12.3.1",
         "pipeliner": "127.12.4.1"}


def _known_params():
    """Parameter names this build knows (mxguard -n -a on an empty config)."""
    p = subprocess.run([str(mxguard_bin()), "-n", "-a", "-o", "run_as=", "-c", "/dev/null"],
                       capture_output=True, text=True, timeout=20)
    return set(re.findall(r"^(\w+) =", p.stdout, re.M))


KNOWN = _known_params() if mxguard_bin().exists() else set()


@pytest.fixture(scope="module")
def mixdns(tmp_path_factory):
    base = tmp_path_factory.mktemp("mixdns")
    port = free_port()
    args = ["/usr/sbin/dnsmasq", "--no-daemon", "--port=%d" % port,
            "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", "--user=root", "--pid-file=", "--local-ttl=600",
            "--local=/test/", "--local=/in-addr.arpa/", "--log-facility=%s" % (base / "log")]
    args += ["--host-record=%s,%s" % (name, ip) for ip, name in HOSTS.items()]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None or is_listening(port), 10, what="dnsmasq")
        assert proc.poll() is None, "dnsmasq exited"
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


class Client:
    """A line-level SMTP client with a deadline on every read."""

    def __init__(self, port, source, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                          source_address=(source, 0))
        self.f = self.s.makefile("rb")

    def reply(self, timeout):
        """The code of the next complete reply; None when the server closed."""
        self.s.settimeout(max(0.05, timeout))
        code = None
        for _ in range(100):
            line = self.f.readline()
            if not line:
                return None
            code = int(line[:3])
            if line[3:4] != b"-":
                return code
        return code

    def send(self, data):
        self.s.sendall(data.encode() if isinstance(data, str) else data)

    def close(self):
        # The file object holds the socket too: both must go for the FIN.
        for obj in (self.f, self.s):
            try:
                obj.close()
            except OSError:
                pass


def message_bytes(mid, rcpt="user@example.test"):
    body = make_message(mid, rcpt=rcpt)
    body = body.replace(b"\r\n.", b"\r\n..")
    return body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def to_rcpt(c, helo, rcpt_timeout):
    """Greeting, EHLO, MAIL, RCPT: the RCPT's code (None: closed or no reply in time)."""
    try:
        if c.reply(GREET_WAIT + 5) != 220 or (c.send("EHLO %s\r\n" % helo) or
                                              c.reply(5)) != 250:
            return None
        c.send("MAIL FROM:<sender@%s>\r\n" % helo)
        if c.reply(5) != 250:
            return None
        c.send("RCPT TO:<user@example.test>\r\n")
        return c.reply(rcpt_timeout)
    except (socket.timeout, OSError, ValueError):
        return None


def deliver(c, mid):
    """DATA after an accepted RCPT: True when the message was accepted."""
    try:
        c.send("DATA\r\n")
        if c.reply(10) != 354:
            return False
        c.send(message_bytes(mid))
        ok = c.reply(10) == 250
        c.send("QUIT\r\n")
        return ok
    except (socket.timeout, OSError, ValueError):
        return False


# ---- the senders: each fills its own dict in out -------------------------

def bot_quitter(port, out):
    c = Client(port, BOTS["quitter"], 10)
    out["rcpt"] = to_rcpt(c, "quitter.test", 1.0)
    c.close()


def bot_silent(port, out):
    c = Client(port, BOTS["silent"], 10)
    code = to_rcpt(c, "silent.test", TARPIT + 10)
    out["rcpt"] = code
    if code is None or code >= 400:
        c.close()
        return
    t0 = time.monotonic()
    # Handed off: say nothing, never close; see when the server lets go.
    c.s.settimeout(SILENT_CAP)
    try:
        while time.monotonic() - t0 < SILENT_CAP and c.s.recv(4096):
            pass
    except (socket.timeout, OSError):
        pass
    out["backend_s"] = time.monotonic() - t0
    c.close()


def bot_early(port, out):
    c = Client(port, BOTS["early"], 10)
    out["mid"] = new_message_id("bot-early")
    c.send(b"EHLO early.test\r\nMAIL FROM:<a@early.test>\r\nRCPT TO:<user@example.test>\r\n"
           b"DATA\r\n" + message_bytes(out["mid"]) + b"QUIT\r\n")
    t0 = time.monotonic()
    codes = []
    try:
        while time.monotonic() - t0 < TARPIT + 10:
            code = c.reply(TARPIT + 10)
            if code is None:
                break
            codes.append(code)
    except (socket.timeout, OSError, ValueError):
        pass
    out["codes"] = codes
    c.close()


def bot_retrier(port, out):
    out["codes"] = []
    for i in range(3):
        c = Client(port, BOTS["retrier"], 10)
        code = to_rcpt(c, "retrier.test", 0.5)
        out["codes"].append(code)
        if code == 250:
            out.setdefault("mids", []).append(new_message_id("bot-retrier"))
            deliver(c, out["mids"][-1])
        c.close()


def legit(port, kind, out, rcpt_timeout, retry_every):
    """A legit sender: retries (after retry_every) until delivered or the deadline."""
    out["mid"] = new_message_id("legit-" + kind)
    t0 = time.monotonic()
    out["attempts"] = 0
    while time.monotonic() - t0 < LEGIT_DEADLINE:
        out["attempts"] += 1
        c = Client(port, LEGIT[kind], 10)
        code = to_rcpt(c, HOSTS[LEGIT[kind]], rcpt_timeout)
        if code == 250 and deliver(c, out["mid"]):
            out["delay"] = time.monotonic() - t0
            c.close()
            return
        c.close()
        time.sleep(retry_every)


def legit_pipeliner(port, out, nrcpt=40):
    out["mid"] = new_message_id("legit-pipeliner")
    t0 = time.monotonic()
    out["attempts"] = 0
    helo = HOSTS[LEGIT["pipeliner"]]
    while time.monotonic() - t0 < LEGIT_DEADLINE:
        out["attempts"] += 1
        c = Client(port, LEGIT["pipeliner"], 10)
        try:
            if c.reply(GREET_WAIT + 5) == 220:
                c.send("EHLO %s\r\n" % helo)
                if c.reply(5) == 250:
                    c.send("MAIL FROM:<news@%s>\r\n" % helo +
                           "".join("RCPT TO:<user%d@example.test>\r\n" % i
                                   for i in range(nrcpt)) + "DATA\r\n")
                    codes = []
                    for _ in range(nrcpt + 2):
                        code = c.reply(TARPIT + 10)
                        if code is None:
                            break
                        codes.append(code)
                    out.setdefault("tries", []).append(codes[:1] + codes[-1:])
                    if len(codes) == nrcpt + 2 and codes[-1] == 354:
                        c.send(message_bytes(out["mid"]))
                        if c.reply(10) == 250:
                            out["delay"] = time.monotonic() - t0
                            c.send("QUIT\r\n")
                            c.close()
                            return
        except (socket.timeout, OSError, ValueError):
            pass
        c.close()
        time.sleep(GREYLIST + 0.5)


@pytest.mark.xfail(RELAY_FIRST_PARAM not in KNOWN or "greet_wait" not in KNOWN, strict=False,
                   reason="needs %s and greet_wait. Without %s the silent survivor holds its "
                          "backend session until the bot lets go (SILENT_CAP): the assertion "
                          "bot_backend_s <= RELAY_FIRST_TIMEOUT + 5 fails. Without greet_wait "
                          "the early talker is tarpitted, survives and its pipelined message "
                          "is delivered: bot_delivered == 0 and bots_at_backend['early'] == 0 "
                          "fail" % (RELAY_FIRST_PARAM, RELAY_FIRST_PARAM))
def test_traffic_mix(mxguard, postfix, mixdns):
    params = dict(default_action="inspect", client_lists="", tarpit_delay="%ds" % TARPIT,
                  greylist_delay="%ds" % GREYLIST, greylist_retries="2", awl_interval="0",
                  backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                  dns_resolvers="127.0.0.1:%d" % mixdns)
    if "greet_wait" in KNOWN:
        params["greet_wait"] = "%ds" % GREET_WAIT
    if RELAY_FIRST_PARAM in KNOWN:
        params[RELAY_FIRST_PARAM] = "%ds" % RELAY_FIRST_TIMEOUT
    mx = mxguard(**params)
    maillog_start = len(postfix.maillog_text())
    out = {k: {} for k in list(BOTS) + list(LEGIT)}
    jobs = [
        (bot_quitter, (mx.port, out["quitter"])),
        (bot_silent, (mx.port, out["silent"])),
        (bot_early, (mx.port, out["early"])),
        (bot_retrier, (mx.port, out["retrier"])),
        (legit, (mx.port, "clean", out["clean"], 10, GREYLIST + 0.5)),
        (legit, (mx.port, "patient", out["patient"], TARPIT + 10, GREYLIST + 0.5)),
        (legit, (mx.port, "short", out["short"], 1.0, GREYLIST + 0.2)),
        (legit_pipeliner, (mx.port, out["pipeliner"])),
    ]
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LEGIT_DEADLINE + SILENT_CAP + 15)
    assert not any(t.is_alive() for t in threads), out

    legit_mids = [out[k]["mid"] for k in LEGIT]
    try:
        postfix.wait_for_message_ids([m for m in legit_mids
                                      if "delay" in out[LEGIT_KEY(m)]], timeout=20)
    except AssertionError:
        pass
    time.sleep(1.0)
    by_id = postfix.messages_by_id()
    log = postfix.maillog_text()[maillog_start:]
    bots_at_backend = {k: len(re.findall(r"\]: connect from \S*\[%s\]" % re.escape(ip), log))
                       for k, ip in BOTS.items()}
    bot_mids = [out["early"]["mid"]] + out["retrier"].get("mids", [])
    bot_delivered = sum(1 for m in bot_mids if by_id.get(m))
    bot_backend_s = out["silent"].get("backend_s", 0.0)
    delivered = {k: bool(by_id.get(out[k]["mid"])) for k in LEGIT}
    delays = [out[k]["delay"] for k in LEGIT if "delay" in out[k]]
    print("traffic-mix: bots reaching the backend %d sessions (%s); backend seconds held by "
          "bots %.1f (silent survivor); bot messages delivered %d; legit delivered %d of %d "
          "(%s); legit delay max %.1fs median %.1fs (%s); attempts %s"
          % (sum(bots_at_backend.values()),
             ",".join("%s=%d" % kv for kv in bots_at_backend.items()), bot_backend_s,
             bot_delivered, sum(delivered.values()), len(LEGIT),
             ",".join("%s=%s" % (k, "yes" if v else "no") for k, v in delivered.items()),
             max(delays) if delays else -1, statistics.median(delays) if delays else -1,
             ",".join("%s=%.1f" % (k, out[k]["delay"]) for k in LEGIT if "delay" in out[k]),
             ",".join("%s=%s" % (k, out[k].get("attempts")) for k in LEGIT)))
    print("traffic-mix detail: %r" % out)

    # Bots never deliver, and the ones that talk out of turn never reach the backend.
    assert bot_delivered == 0, out
    assert bots_at_backend["early"] == 0, log
    assert bots_at_backend["quitter"] == 0, log
    # Every legit message is delivered.
    assert all(delivered.values()), (delivered, out)
    # A silent survivor is released within the post-hand-off bound (generous slack).
    assert bot_backend_s <= RELAY_FIRST_TIMEOUT + 5, out["silent"]


def LEGIT_KEY(mid):
    return next(k for k in LEGIT if mid.startswith("<legit-%s." % k))
