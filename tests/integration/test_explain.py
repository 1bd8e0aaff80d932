"""mxguardctl explain ADDR [NAME]: one address through every module of the
running daemon (control.c's verb, explain.c).

A flooding address shows its own block with its end and level; an address
inside an operator's network block shows the network's block; a white
address shows the list file and the line that made it white (client_lists)
and the allow_clients line; a dynamic name shows its S25R rule, the verdict
suspect and the tarpit it would get; after a tarpit drop the tarpit record
and the greylist triplet of its key are shown and the retry is said to be
greylisted. Text output by default, --json with the same content; bad input
is a usage error (exit 2) in mxguardctl and a clear error on the socket.
Sources are 127.10.x.y (conftest.DNS_HOSTS) and 127.N.x.y networks of this
file's own.
"""
import json
import os
import re
import subprocess
import time

from mxgtest import RawSMTP, control, mxguard_bin, smtp_first_line

BOT = "127.10.0.2"  # a1-2-3.dyn.example.test (S25R r1)
# allow_clients: the harness allows 127.0.0.0/8, which the shield never blocks.
FAST = dict(default_action="inspect", client_lists="", tarpit_delay="3s",
            greylist_delay="2s", greylist_retries="2", awl_interval="0",
            allow_clients="127.0.0.1")
# A /24 the other tests never use (test_netblock uses 200..249).
NET = "127.%d.%d" % (150 + os.getpid() % 40, 7)


def engine(mxguard, postfix, **params):
    p = dict(FAST, backend=postfix.backend_for("proxy2"), backend_protocol="proxy2")
    p.update(params)
    return mxguard(**p)


def ctl(mx, *args):
    p = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-c", str(mx.config_file)]
                       + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def explain(mx, *args):
    """--json: one line, one object, ok."""
    rc, out, err = ctl(mx, "--json", "explain", *args)
    assert rc == 0 and out.count("\n") == 1, (rc, out, err)
    answer = json.loads(out)
    assert answer["ok"] is True, answer
    return answer


def text_line(out, key):
    """The value of 'key' in the text output (aligned 'key  value' lines)."""
    m = re.search(r"^[ ]*%s[ ]{2,}(.*)$" % re.escape(key), out, re.M)
    assert m, (key, out)
    return m.group(1)


def test_flooding_address_shows_its_block_and_level(mxguard, postfix):
    ip = NET[:-1] + "8.5"
    mx = engine(mxguard, postfix, flood_window="10s", flood_threshold=3, block_time="30s",
                block_memory="1h", conn_per_source=0, conn_per_prefix=0)
    for _ in range(10):
        if smtp_first_line(mx.port, ip).startswith("421"):
            break
    mx.wait_for_log(r"block client=%s seconds=30 level=1 " % re.escape(ip))
    a = explain(mx, ip)
    blk = a["shield"]["blocks"]["address"]
    assert blk["active"] is True and blk["level"] == 1, blk
    assert 0 < blk["remaining"] <= 30 and blk["until"] - time.time() <= 31, blk
    assert a["shield"]["blocks"]["network"] is None
    assert a["shield"]["refused"] == "blocked (address)"
    assert a["verdict"]["outcome"] == "refused at accept by the shield: blocked (address)"
    rc, out, err = ctl(mx, "explain", ip)
    assert rc == 0, err
    assert text_line(out, "blocks.address.level") == "1", out
    assert text_line(out, "blocks.address.active") == "yes", out
    assert re.match(r"\d{4}-\d\d-\d\dT", text_line(out, "blocks.address.until")), out


def test_address_inside_a_network_block(mxguard, postfix):
    net = NET[:-1] + "9"
    mx = engine(mxguard, postfix, block_time="60s")
    assert control(mx, "add block %s.0/24" % net)["ok"] is True
    a = explain(mx, "%s.77" % net)
    nb = a["shield"]["blocks"]["network"]
    assert nb["key"] == "%s.0/24" % net and nb["active"] is True and nb["level"] == 1, nb
    assert 50 <= nb["remaining"] <= 60, nb
    assert a["shield"]["blocks"]["address"] is None
    assert a["shield"]["refused"] == "blocked (network)"
    # Another /24 is not covered.
    b = explain(mx, NET[:-1] + "10.77")
    assert b["shield"]["blocks"]["network"] is None and b["shield"]["refused"] is None


def test_white_address_shows_the_list_file_and_line(mxguard, postfix, tmp_path):
    lists = tmp_path / "white.cidr"
    lists.write_text("# white\n127.9.9.0/24 REJECT\n127.10.0.0/24 OK\n")
    allow = tmp_path / "allow.cidr"
    allow.write_text("# partners\n10.1.0.0/16\n\n127.10.0.0/24\n")
    mx = engine(mxguard, postfix, client_lists="cidr:%s" % lists,
                allow_clients="cidr:%s" % allow)
    a = explain(mx, "127.10.0.1")
    cl = a["lists"]["client_lists"]
    assert cl["verdict"] == "white" and cl["rule"] == "list:%s:3" % lists, cl
    assert cl["operator_white"] is False
    assert a["shield"]["allow_clients"] == "%s:4: 127.10.0.0/24" % allow, a["shield"]
    assert a["verdict"]["verdict"] == "white" and a["verdict"]["action"] == "pass", a["verdict"]
    # An operator's white entry is named as such.
    assert control(mx, "add white 127.11.0.0/16")["ok"] is True
    w = explain(mx, "127.11.3.4")["lists"]["client_lists"]
    assert w["rule"] == "list:store:white:127.11.0.0/16" and w["operator_white"] is True, w
    # Not listed: nothing matches.
    n = explain(mx, "127.12.0.1", "mx.example.org")
    assert n["lists"]["client_lists"] is None and n["shield"]["allow_clients"] is None, n


def test_dynamic_name_is_suspect_and_tarpitted(mxguard, postfix):
    mx = engine(mxguard, postfix)
    a = explain(mx, BOT, "a1-2-3.dyn.example.test")
    assert a["name"] == {"name": "a1-2-3.dyn.example.test", "source": "given"}, a["name"]
    assert a["lists"]["s25r"] == "r1"
    assert a["lists"]["helo_lists"].startswith("not applicable")
    assert a["verdict"]["verdict"] == "suspect" and a["verdict"]["reason"] == "s25r:r1"
    assert a["verdict"]["outcome"].startswith("tarpit: suspect"), a["verdict"]
    assert a["keys"]["net"] == "127.10.0.0/24"
    # Without a name the daemon knows none: r0, said so.
    u = explain(mx, "127.13.0.9")
    assert u["name"]["source"] == "unknown" and "no DNS lookup" in u["name"]["note"]
    assert u["lists"]["s25r"].startswith("r0") and u["verdict"]["verdict"] == "suspect"
    rc, out, err = ctl(mx, "explain", BOT, "a1-2-3.dyn.example.test")
    assert rc == 0 and text_line(out, "s25r") == "r1" and text_line(out, "verdict") == "suspect"


def test_tarpit_drop_leaves_records_explain_shows(mxguard, postfix):
    mx = engine(mxguard, postfix, greylist_key="net", tarpit_delay="6s")
    c = RawSMTP(mx.port, source_ip=BOT, timeout=10)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO bot.test").code == 250
    assert c.cmd("MAIL FROM:<sender@client.test>").code == 250
    c.send("RCPT TO:<user@example.test>\r\n")
    time.sleep(1.0)
    c.close()
    mx.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")
    a = explain(mx, BOT)
    # The name comes from the engine's recent verdicts, not from a lookup.
    assert a["name"] == {"name": "a1-2-3.dyn.example.test", "source": "recent"}, a["name"]
    assert [r["key"] for r in a["store"]["tarpit"]] == ["127.10.0.0/24"], a["store"]
    grey = a["store"]["grey"]
    assert [r["key"] for r in grey] == ["127.10.0.0/24|sender@client.test|user@example.test"]
    assert grey[0]["count"] >= 0 and grey[0]["expires"] > time.time(), grey
    assert a["verdict"]["outcome"].startswith("greylist: a tarpit record"), a["verdict"]
    assert a["recent"][0]["verdict"] == "suspect" and a["recent"][0]["reason"] == "s25r:r1"
    rc, out, err = ctl(mx, "explain", BOT)
    assert rc == 0 and "127.10.0.0/24|sender@client.test|user@example.test" in out, out


def test_json_parses_and_text_holds_the_same(mxguard, postfix):
    mx = engine(mxguard, postfix)
    a = explain(mx, "::1")
    for section in ("name", "shield", "lists", "keys", "store", "verdict"):
        assert section in a, section
    assert a["address"] == "::1" and a["keys"]["net"].endswith("/64")
    rc, out, err = ctl(mx, "explain", "::1")
    assert rc == 0 and text_line(out, "address") == "::1"
    for section in ("shield", "lists", "keys", "store", "verdict"):
        assert re.search(r"^%s$" % section, out, re.M), (section, out)


def test_bad_input_is_a_clear_error(mxguard, postfix):
    mx = engine(mxguard, postfix)
    for args, msg in [(["not-an-address"], "not an IP address"),
                      (["192.0.2.1", "a" * 254], "longer than 253"),
                      (["192.0.2.1", "bad/name"], "host name"),
                      ([], "expected ADDR")]:
        rc, out, err = ctl(mx, "explain", *args)
        assert rc == 2 and msg in err and out == "", (args, rc, out, err)
        rc, out, err = ctl(mx, "--json", "explain", *args)
        assert rc == 2 and msg in json.loads(out)["error"], (args, out)
    # The socket itself checks too (mxguardctl is not the only client).
    for line, msg in [("explain not-an-address", "not an IP address"),
                      ("explain 192.0.2.1 " + "a" * 300, "longer than 253"),
                      ("explain", "usage: explain ADDR [NAME]")]:
        answer = control(mx, line)
        assert answer["ok"] is False and msg in answer["error"], (line, answer)
    assert control(mx, "ping")["ok"] is True
