"""The engine's lists at work: the operator's whitelist and the record
commands of mxguardctl, HELO checks, recipients that opt out."""
import json
import subprocess

from mxgtest import mxguard_bin
from test_targrey import BOT, NOPTR, drop_out_of_tarpit, engine, to_rcpt


def ctl(mx, *args):
    p = subprocess.run([str(mxguard_bin().parent / "mxguardctl"), "-c", str(mx.config_file)]
                       + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def records(mx, kind):
    rc, out, err = ctl(mx, "list", kind, "--json")
    assert rc == 0, err
    answer = json.loads(out)
    assert answer["ok"] is True and answer["kind"] == kind
    return {r["key"]: r for r in answer["records"]}


def test_operator_whitelist_passes_a_suspect_and_survives_restart(mxguard, postfix):
    mx = engine(mxguard, postfix, tarpit_delay="5s")
    rc, out, err = ctl(mx, "add", "white", "127.10.0.0/24")
    assert rc == 0 and json.loads(out) == {"ok": True}, (out, err)
    c, r, took = to_rcpt(mx, BOT)          # S25R suspect, but whitelisted by hand
    assert r.code == 250 and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"verdict client=127\.10\.0\.2 .*verdict=white reason=list:store:white:"
                    r"127\.10\.0\.0/24")
    # Restart: the entry is in the store.
    mx.stop()
    mx.start()
    assert "127.10.0.0/24" in records(mx, "white")
    c, r, took = to_rcpt(mx, BOT)
    assert r.code == 250 and took < 2.0, (r, took)
    c.close()
    # Deleted: the suspect is tarpitted again.
    rc, out, err = ctl(mx, "del", "white", "127.10.0.0/24")
    assert rc == 0, (out, err)
    c, r, took = to_rcpt(mx, BOT)
    assert r.code == 250 and took >= 4.9, (r, took)
    c.close()


def test_add_refuses_what_is_not_an_address_network_or_domain(mxguard, postfix):
    mx = engine(mxguard, postfix)
    for bad in ["10.0.0.1/24", "/regexp/", "300.1.2.3"]:
        rc, out, err = ctl(mx, "add", "white", bad)
        assert rc == 1 and json.loads(out)["ok"] is False, (bad, out)
    rc, out, err = ctl(mx, "add", "grey", "x")
    assert rc == 1 and "only white" in json.loads(out)["error"]
    rc, out, err = ctl(mx, "del", "white", "not-there.example")
    assert rc == 1 and json.loads(out)["error"] == "no such record"


def test_list_shows_and_del_removes_a_tarpit_record(mxguard, postfix):
    mx = engine(mxguard, postfix, greylist_key="net")
    drop_out_of_tarpit(mx, BOT, after=0.5)
    mx.wait_for_log(r"tarpit drop client=127\.10\.0\.2 ")
    recs = records(mx, "tarpit")
    assert list(recs) == ["127.10.0.0/24"], recs
    rec = recs["127.10.0.0/24"]
    assert rec["count"] == 1 and rec["expires"] > rec["first"]
    rc, out, err = ctl(mx, "list", "tarpit")                 # the human table
    assert rc == 0 and "127.10.0.0/24" in out and "1 record" in out, out
    rc, out, err = ctl(mx, "del", "tarpit", "127.10.0.0/24")
    assert rc == 0, (out, err)
    assert records(mx, "tarpit") == {}
    # Without its record the client is tarpitted again, not greylisted.
    c, r, took = to_rcpt(mx, BOT)
    assert r.code == 250 and took >= 2.9, (r, took)
    c.close()


def test_helo_claiming_to_be_this_server_is_refused(mxguard, postfix):
    mx = engine(mxguard, postfix)
    for helo in ["mxguard.test", "MXGUARD.TEST", "[127.0.0.1]", "127.0.0.1"]:
        c, r, took = to_rcpt(mx, NOPTR, helo=helo)
        assert r.code == 550 and "HELO claims to be this server" in r.text, (helo, r)
        c.close()
    mx.wait_for_log(r"verdict=black reason=helo:own")


def test_helo_lists(mxguard, postfix, tmp_path):
    lst = tmp_path / "helo.regexp"
    lst.write_text("/^ylmf-pc$/ REJECT Known bot HELO\n/^friendly\\./ OK\n")
    mx = engine(mxguard, postfix, helo_lists="regexp:%s" % lst, tarpit_delay="5s")
    c, r, _ = to_rcpt(mx, NOPTR, helo="ylmf-pc")
    assert r.code == 550 and "Known bot HELO" in r.text, r
    c.close()
    c, r, took = to_rcpt(mx, NOPTR, helo="friendly.example")
    assert r.code == 250 and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"verdict=white reason=helo:list:%s:2" % str(lst).replace(".", r"\."))


def test_recipients_that_opt_out(mxguard, postfix, tmp_path):
    lst = tmp_path / "whitelist_recipients"
    lst.write_text("# postgrey syntax\nopen.example.test\nsales@\nboss@example.test\n"
                   "/^list-.*@example\\.test$/\n")
    mx = engine(mxguard, postfix, recipient_whitelist=str(lst), tarpit_delay="5s")
    for rcpt in ["postmaster@example.test", "abuse@example.test", "x@open.example.test",
                 "y@sub.open.example.test", "sales@example.test", "boss@example.test",
                 "list-users@example.test"]:
        c, r, took = to_rcpt(mx, BOT, rcpt=rcpt)
        # Opted out: not slowed down (the backend then answers for itself).
        assert took < 2.0, (rcpt, r, took)
        c.close()
    c, r, took = to_rcpt(mx, BOT, rcpt="other@example.test")
    assert r.code == 250 and took >= 4.9, (r, took)
    c.close()
    mx.wait_for_log(r"verdict=white reason=rcpt:builtin:1")
    mx.wait_for_log(r"verdict=white reason=rcpt:%s:3" % str(lst).replace(".", r"\."))


def test_sender_domain_ns_list(mxguard, postfix, tmp_path):
    lst = tmp_path / "ns.regexp"
    lst.write_text("/\\.bulkdns\\.test$/ REJECT Sender domain served by a bulk mailer's DNS\n")
    mx = engine(mxguard, postfix, sender_ns_lists="regexp:%s" % lst, tarpit_delay="2s")
    c, r, took = to_rcpt(mx, NOPTR, sender="offers@spamco.test")
    assert r.code == 550 and "bulk mailer" in r.text and took < 2.0, (r, took)
    c.close()
    mx.wait_for_log(r"verdict=black reason=ns:ns1\.bulkdns\.test:list:")
    # Another domain, and one without NS records: the usual chain (tarpit).
    for sender in ["a@goodco.test", "b@no-ns.example.test"]:
        c, r, took = to_rcpt(mx, NOPTR, sender=sender)
        assert r.code == 250 and took >= 1.9, (sender, r, took)
        c.close()
