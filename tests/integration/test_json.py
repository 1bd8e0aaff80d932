"""JSON and metric labels from hostile text, against a running daemon:
a service group name with a quote, a backslash and UTF-8 keeps the
Prometheus scrape and the status JSON whole; a HELO with invalid and
valid UTF-8 shows in `top --json` as valid JSON, U+FFFD for the bad byte;
`classify --json` and `geo --json` print JSON; `--help` (and `-h`) on
every command prints its usage and exits 0, bad usage exits 2 with usage
on stderr."""
import json
import re
import socket
import subprocess

import pytest

from mxgtest import REPO_ROOT, RawSMTP, free_port
from test_control import ctl, ctl_bin, strict_object
from test_metrics import parse_exposition, start, value
from test_targrey import BOT, engine

GROUP = 'we"ird\\caf\u00e9'  # a quote, a backslash, UTF-8


def strict_json(raw):
    """stdout bytes as one JSON object: strict UTF-8, no duplicate member."""
    text = raw.decode("utf-8")  # raises on invalid UTF-8
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return json.loads(text, object_pairs_hook=strict_object)


def ctl_raw(mx, *args):
    p = subprocess.run([str(ctl_bin()), "-c", str(mx.config_file)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def test_group_name_with_quote_backslash_and_utf8(mxguard, postfix):
    svc = free_port()
    mx, scraper = start(mxguard, postfix,
                        service_imap="listen=127.0.0.1:%d backend=%s proxy=none group=%s"
                        % (svc, postfix.backend_for("none"), GROUP))
    # The whole scrape parses (strict text-format checker), the label escaped.
    text = scraper.text()
    assert 'group="we\\"ird\\\\caf\u00e9"' in text, text
    samples = parse_exposition(text)
    assert value(samples, "mxguard_attack_state", group=GROUP) == 0
    assert value(samples, "mxguard_attack_state", group="smtp") == 0
    assert value(samples, "mxguard_group_distinct_sources", group=GROUP) is not None
    # status --json: one valid object, the name as it was written.
    rc, out, err = ctl_raw(mx, "--json", "status")
    assert rc == 0, err
    status = strict_json(out)
    names = [g["name"] for g in status["shield"]["groups"]]
    assert names == ["smtp", GROUP], names
    # The table shows it too (it reads the same JSON).
    rc, out, err = ctl_raw(mx, "status", "--table")
    assert rc == 0 and GROUP in out.decode("utf-8"), (out, err)


def test_helo_with_invalid_and_valid_utf8_in_top_json(mxguard, postfix):
    mx = engine(mxguard, postfix, tarpit_delay="20s")
    c = RawSMTP(mx.port, source_ip=BOT, timeout=10)
    try:
        assert c.read_reply(strict=False).code == 220
        # "h\xc3\xa9lo\xff.test": a valid "\u00e9", then a byte never in UTF-8.
        assert c.cmd(b"EHLO h\xc3\xa9lo\xff.test").code == 250
        assert c.cmd("MAIL FROM:<a@b.test>").code == 250
        c.send("RCPT TO:<user@example.test>\r\n")
        mx.wait_for_log(r"tarpit start client=%s" % BOT.replace(".", r"\."))
        rc, out, err = ctl_raw(mx, "--json", "top")
        assert rc == 0, err
        snap = strict_json(out)
        mine = [v for v in snap["recent"] if v["client"] == BOT]
        assert mine and mine[0]["helo"] == "h\u00e9lo\ufffd.test", snap["recent"]
        assert mine[0]["verdict"] == "suspect"
    finally:
        c.close()


def test_classify_json(tmp_path):
    conf = tmp_path / "mxguard.conf"
    conf.write_text("client_lists =\n")
    p = subprocess.run([str(ctl_bin()), "classify", "-c", str(conf), "--json",
                        "mx1.example.org", "192.0.2.1", "q56-78.dyn.example.test"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 0, p.stderr
    r = strict_json(p.stdout)
    assert r["ok"] is True
    assert r["results"] == [
        {"name": "mx1.example.org", "address": "192.0.2.1", "verdict": "clean",
         "reason": "s25r:none"},
        {"name": "q56-78.dyn.example.test", "verdict": "suspect", "reason": "s25r:r1"}]
    # --json before the command works as well.
    p = subprocess.run([str(ctl_bin()), "--json", "classify", "-c", str(conf), "a.example"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 0 and strict_json(p.stdout)["results"][0]["name"] == "a.example"


def test_geo_json():
    spec = str(REPO_ROOT / "tests" / "unit" / "geo" / "geoip")
    p = subprocess.run([str(ctl_bin()), "geo", "-d", spec, "--json", "198.51.100.7",
                        "1.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 0, p.stderr
    r = strict_json(p.stdout)
    assert r == {"ok": True, "results": [{"address": "198.51.100.7", "country": "DE"},
                                          {"address": "1.0.0.1", "country": "AU"}]}, r
    # A bad argument: still one JSON object, exit 1, the bad one named.
    p = subprocess.run([str(ctl_bin()), "--json", "geo", "-d", spec, "nope\u00e9"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    r = strict_json(p.stdout)
    assert p.returncode == 1 and r["ok"] is False, (p.returncode, r)
    assert r["results"] == [{"address": "nope\u00e9", "error": "not an IP address"}]


COMMANDS = [[], ["status"], ["top"], ["list"], ["add"], ["del"], ["flush"], ["reload"],
            ["ping"], ["notify-test"], ["classify"], ["geo"], ["tcpstat"], ["logstat"],
            ["list", "white"], ["geo", "-d", "x"], ["explain"], ["explain", "192.0.2.7"]]


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "none")
def test_help_on_every_command_exits_0(cmd, flag):
    p = subprocess.run([str(ctl_bin())] + cmd + [flag], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    out = p.stdout.decode()
    assert p.returncode == 0 and p.stderr == b"", (p.returncode, p.stderr)
    assert out.startswith("usage: mxguardctl "), out
    if cmd:
        # The command's own usage line first.
        assert cmd[0] in re.sub(r"\[[^]]*\]", "", out.splitlines()[0]), out


@pytest.mark.parametrize("args", [[], ["classify"], ["geo"], ["tcpstat", "--bogus"],
                                  ["logstat"], ["frobnicate"], ["classify", "--bogus", "x"],
                                  ["explain"], ["explain", "nope"]],
                         ids=lambda a: " ".join(a) or "none")
def test_bad_usage_exits_2_with_usage(args):
    p = subprocess.run([str(ctl_bin())] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 2 and b"usage: mxguardctl" in p.stderr, (p.returncode, p.stderr)
    assert p.stdout == b""


def control_raw(mx, request):
    """One request (bytes) on the control socket; the answer as a dict,
    after checking it is one line of strict UTF-8 JSON without a
    duplicate member."""
    path = mx.params.get("control_socket") or str(mx.workdir / "state" / "control.sock")
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(request + b"\n")
        data = b""
        for _ in range(10000):  # bounded: the daemon closes after one answer
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return strict_json(data)


STATUS_KEYS = ["ok", "pid", "uptime", "stopping", "accepted", "refused", "passed",
               "backend_fail", "connections", "held", "stages", "listeners", "refusals",
               "verdicts", "workers", "store", "shield", "engine"]
TOP_KEYS = ["ok", "now_ms", "uptime", "accepted", "refused", "passed", "connections", "held",
            "stages", "listeners", "refusals", "verdicts", "holds", "recent"]
HOSTILE = 'q"b\\c\u00e9\x01'  # a quote, a backslash, UTF-8, a control character


def test_every_control_answer_is_one_json_line_with_its_keys(mxguard, postfix):
    mx = engine(mxguard, postfix)
    answers = {
        b"status": STATUS_KEYS, b"top": TOP_KEYS, b"ping": ["ok"], b"reload": ["ok"],
        b"add white hostile.example": ["ok"], b"del white hostile.example": ["ok"],
        b"add block 192.0.2.9": ["ok"], b"del block 192.0.2.9": ["ok"],
        b"frobnicate": ["ok", "error"], b"list": ["ok", "error"],
        b"list nosuch": ["ok", "error"], b"del white nosuch.example": ["ok", "error"],
        b"explain nonsense": ["ok", "error"], b"x" * 2000: ["ok", "error"],
    }
    for kind in [k.encode() for k in ["tarpit", "grey", "awl", "white", "block"]]:
        answers[b"list " + kind] = ["ok", "kind", "records"]
        answers[b"flush " + kind] = ["ok", "kind", "flushed"]
    for request, keys in answers.items():
        answer = control_raw(mx, request)
        assert list(answer) == keys, (request[:40], answer)
        assert answer["ok"] is (keys != ["ok", "error"]), (request[:40], answer)
    # The shapes mxguardctl's views read.
    st = control_raw(mx, b"status")
    assert isinstance(st["stopping"], bool) and isinstance(st["store"]["records"], dict)
    assert st["store"]["backend"] == "lmdb" and isinstance(st["store"]["connected"], bool)
    assert list(st["shield"])[:2] == ["groups", "blocks_active"]
    assert list(st["shield"]["groups"][0]) == ["name", "state", "remote", "distinct",
                                               "threshold", "since"]
    assert list(st["engine"]) == ["held", "verdicts", "tarpit", "greylist", "awl", "store",
                                  "dns_cache"]
    assert control_raw(mx, b"x" * 2000)["error"] == "request longer than 1024 bytes"
    ex = control_raw(mx, b"explain 192.0.2.1")
    assert ex["ok"] is True and list(ex)[:4] == ["ok", "address", "name", "shield"], ex
    nt = control_raw(mx, b"notify-test")
    assert list(nt) in (["ok"], ["ok", "error"]), nt
    assert mx.alive()


def test_hostile_text_in_status_top_and_list_stays_valid_json(mxguard, postfix):
    svc = free_port()
    mx = engine(mxguard, postfix, tarpit_delay="20s",
                service_imap="listen=127.0.0.1:%d backend=%s proxy=none group=%s"
                % (svc, postfix.backend_for("none"), HOSTILE))
    c = RawSMTP(mx.port, source_ip=BOT, timeout=10)
    try:
        assert c.read_reply(strict=False).code == 220
        # A quote, a backslash, a control character, valid and invalid UTF-8.
        assert c.cmd(b'EHLO q"b\\c\x01h\xc3\xa9lo\xff.test').code == 250
        assert c.cmd("MAIL FROM:<a@b.test>").code == 250
        c.send("RCPT TO:<user@example.test>\r\n")
        mx.wait_for_log(r"tarpit start client=%s" % BOT.replace(".", r"\."))
        st = control_raw(mx, b"status")
        assert [g["name"] for g in st["shield"]["groups"]] == ["smtp", HOSTILE], st["shield"]
        assert st["held"] == 1 and st["engine"]["held"] == 1
        top = control_raw(mx, b"top")
        mine = [v for v in top["recent"] if v["client"] == BOT]
        assert mine and mine[0]["helo"] == 'q"b\\c\x01h\u00e9lo\ufffd.test', top["recent"]
        assert [h["client"] for h in top["holds"]] == [BOT]
        assert isinstance(top["holds"][0]["age"], float)
        # A store record whose key holds the same bytes: kept or refused,
        # the answers stay valid JSON.
        added = control_raw(mx, b'add white q"b\\c\x01\xffx.example')
        listed = control_raw(mx, b"list white")
        if added["ok"]:
            assert any("\ufffd" in r["key"] for r in listed["records"]), listed
        else:
            assert added["error"], added
    finally:
        c.close()
