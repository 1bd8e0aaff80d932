"""mxguardctl logstat: smtpd session durations from Postfix logs.

The logs are generated here with a known distribution of sessions, so the
histogram, the shares, the ways sessions ended and the S25R classes can be
compared exactly.  No daemon and no Postfix are needed.
"""
import csv
import gzip
import io
import json
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from mxgtest import mxguard_bin

T0 = datetime(2026, 11, 22, 20, 0, 0, tzinfo=timezone.utc)
SVG = "{http://www.w3.org/2000/svg}"


def logstat(*args, stdin=None, timeout=30):
    bin_ = mxguard_bin().parent / "mxguardctl"
    p = subprocess.run([str(bin_), "logstat"] + [str(a) for a in args], input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    err = p.stderr.decode()
    # The ASan build reports to stderr; any report fails the test.
    assert "Sanitizer" not in err and "runtime error" not in err, err
    return p.returncode, p.stdout.decode(), err


def rfc3339(t):
    return t.isoformat(timespec="microseconds")


def names(i):
    """Client NAME of session i: S25R suspect for i % 3 in (0, 2)."""
    return [f"a1-2-{i}.dyn.example", "mx.example", "unknown"][i % 3]


def distribution():
    """100 sessions: 50 of 0.05 s, 30 of 2 s, 20 of 150 s, interleaved.

    Of the 2 s sessions, 5 end with a lost connection after RCPT; of the
    0.05 s sessions, 10 are rejected (and then quit). Returns (lines, facts).
    """
    events = []
    durations = [0.05] * 50 + [2.0] * 30 + [150.0] * 20
    facts = {"suspect": [0, 0.0], "other": [0, 0.0], "lost": 0, "rejected": 0, "quit": 0}
    for i, d in enumerate(durations):
        pid = 1000 + i
        start = T0 + timedelta(seconds=i * 0.5)
        end = start + timedelta(seconds=d)
        client = f"{names(i)}[192.0.2.{i + 1}]"
        tag = f"mx1 postfix/smtpd[{pid}]:"
        events.append((start, f"{tag} connect from {client}"))
        if d == 2.0 and i < 55:
            events.append((end, f"{tag} lost connection after RCPT from {client}"))
            events.append((end, f"{tag} disconnect from {client} ehlo=1 mail=1 rcpt=0/1 "
                                "commands=2/3"))
            facts["lost"] += 1
        elif d == 0.05 and i < 10:
            events.append((start + timedelta(seconds=0.01),
                           f"{tag} NOQUEUE: reject: RCPT from {client}: 450 4.7.1 <c@d>: "
                           "Recipient address rejected; from=<a@b> to=<c@d> proto=ESMTP "
                           "helo=<x>"))
            events.append((end, f"{tag} disconnect from {client} ehlo=1 mail=1 rcpt=0/1 "
                                "quit=1 commands=3/4"))
            facts["rejected"] += 1
        else:
            events.append((end, f"{tag} disconnect from {client} ehlo=1 mail=1 rcpt=1 "
                                "data=1 quit=1 commands=5"))
            facts["quit"] += 1
        cls = "other" if i % 3 == 1 else "suspect"
        facts[cls][0] += 1
        facts[cls][1] += d
    # A postscreen line and a line of another program: not sessions.
    events.append((T0, "mx1 postfix/postscreen[9]: CONNECT from [192.0.2.200]:4711 to "
                       "[192.0.2.25]:25"))
    events.append((T0, "mx1 sshd[77]: Accepted publickey for root"))
    events.sort(key=lambda e: e[0])
    return [f"{rfc3339(t)} {m}" for t, m in events], facts


def write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("".join(line + "\n" for line in lines))
    return p


def by_label(report):
    return {b["label"]: b for b in report["buckets"]}


def ended(report):
    return {e["how"]: e["sessions"] for e in report["ended"]}


def test_known_distribution_json(tmp_path):
    lines, facts = distribution()
    rc, out, err = logstat("--json", write(tmp_path, "mail.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    assert r["sessions"] == 100
    assert r["unparseable"] == 0 and r["missing_disconnect"] == 0
    assert r["postscreen"] == 1
    assert r["lines"] == len(lines)
    b = by_label(r)
    assert [x["label"] for x in r["buckets"]] == [
        "<0.1s", "<0.3s", "<1s", "<3s", "<10s", "<30s", "<100s", "<300s", ">=300s"]
    counts = {k: v["sessions"] for k, v in b.items() if v["sessions"]}
    assert counts == {"<0.1s": 50, "<3s": 30, "<300s": 20}
    assert sum(x["sessions"] for x in r["buckets"]) == r["sessions"]
    assert b["<0.1s"]["share"] == pytest.approx(50.0)
    assert b["<3s"]["share"] == pytest.approx(30.0)
    assert b["<300s"]["share"] == pytest.approx(20.0)
    total = 50 * 0.05 + 30 * 2 + 20 * 150
    assert r["time"] == pytest.approx(total, abs=1e-6)
    assert b["<0.1s"]["occupancy"] == pytest.approx(100 * 2.5 / total, abs=1e-3)
    assert b["<3s"]["occupancy"] == pytest.approx(100 * 60 / total, abs=1e-3)
    assert b["<300s"]["occupancy"] == pytest.approx(100 * 3000 / total, abs=1e-3)
    assert sum(x["occupancy"] for x in r["buckets"]) == pytest.approx(100, abs=1e-2)
    assert ended(r) == {"quit": facts["quit"], "rejected": facts["rejected"],
                        "lost after RCPT": facts["lost"]}
    assert facts["lost"] == 5 and facts["rejected"] == 10
    for cls, key in (("suspect", "s25r"), ("other", "other")):
        assert r["class"][key]["sessions"] == facts[cls][0]
        assert r["class"][key]["time"] == pytest.approx(facts[cls][1], abs=1e-6)
    top = r["top_clients"]
    assert len(top) == 10
    # The 20 sessions of 150 s are the longest; each has its own address.
    assert all(c["time"] == pytest.approx(150) for c in top)
    assert all(c["client"].endswith("]") for c in top)


def test_text_default_table(tmp_path):
    lines, _ = distribution()
    rc, out, err = logstat(write(tmp_path, "mail.log", lines))
    assert rc == 0, err
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.strip()}
    assert rows["<0.1s"][1:3] == ["50", "50.0%"]
    assert rows["<3s"][1:3] == ["30", "30.0%"]
    assert rows["<300s"][1:4] == ["20", "20.0%", "98.0%"]
    assert "sessions 100," in out
    assert "top clients by occupied time" in out


def test_custom_buckets_and_csv(tmp_path):
    lines, _ = distribution()
    rc, out, err = logstat("--csv", "--buckets", "1,5,10,60", write(tmp_path, "m.log", lines))
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["section", "key", "sessions", "share_pct", "time_s", "occupancy_pct"]
    buckets = {r[1]: int(r[2]) for r in rows[1:] if r[0] == "bucket"}
    assert buckets == {"<1s": 50, "<5s": 30, "<10s": 0, "<60s": 0, ">=60s": 20}
    total = [r for r in rows if r[0] == "total"][0]
    assert int(total[2]) == 100 == sum(buckets.values())
    assert any(r[0] == "client" for r in rows)
    assert all(len(r) == 6 for r in rows)


@pytest.mark.parametrize("spec", ["5,1", "0,1", "1,x", "", "1,,2"])
def test_bad_buckets_exit_2(tmp_path, spec):
    rc, _, err = logstat("--buckets", spec, write(tmp_path, "m.log", []))
    assert rc == 2 and err


def test_pid_reuse_missing_disconnect_and_hosts(tmp_path):
    lines = [
        "Nov 22 20:00:00 mx1 postfix/smtpd[5]: connect from mx.example[192.0.2.1]",
        # The same pid on another host is another session.
        "Nov 22 20:00:01 mx2 postfix/smtpd[5]: connect from mx.example[192.0.2.1]",
        # pid 5 again on mx1 without a disconnect: the first one is missing.
        "Nov 22 20:00:10 mx1 postfix/smtpd[5]: connect from mx.example[192.0.2.2]",
        "Nov 22 20:00:12 mx1 postfix/smtpd[5]: disconnect from mx.example[192.0.2.2] quit=1",
        "Nov 22 20:00:21 mx2 postfix/smtpd[5]: disconnect from mx.example[192.0.2.1] quit=1",
        # Never disconnected before the end of the input.
        "Nov 22 20:00:30 mx1 postfix-in/smtpd[6]: connect from unknown[192.0.2.3]",
        # A disconnect whose connect is not in the log.
        "Nov 22 20:00:31 mx1 postfix/smtpd[7]: disconnect from unknown[192.0.2.4]",
        # A service name of postfix/<name>/smtpd.
        "Nov 22 20:00:40 mx1 postfix/submission/smtpd[8]: connect from unknown[192.0.2.5]",
        "Nov 22 20:00:44 mx1 postfix/submission/smtpd[8]: timeout after EHLO from "
        "unknown[192.0.2.5]",
        "Nov 22 20:00:44 mx1 postfix/submission/smtpd[8]: disconnect from unknown[192.0.2.5] "
        "ehlo=1 commands=1",
    ]
    rc, out, err = logstat("--json", write(tmp_path, "m.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    assert r["sessions"] == 3
    assert r["missing_disconnect"] == 2
    assert r["orphan_disconnect"] == 1
    assert r["time"] == pytest.approx(2 + 20 + 4)
    assert ended(r) == {"quit": 2, "missing disconnect": 2, "timeout after EHLO": 1}
    b = by_label(r)
    assert b["<3s"]["sessions"] == 1 and b["<10s"]["sessions"] == 1
    assert b["<30s"]["sessions"] == 1


def test_year_rollover(tmp_path):
    lines = [
        "Dec 31 23:59:59 mx1 postfix/smtpd[42]: connect from mx.example[192.0.2.1]",
        "Jan  1 00:00:01 mx1 postfix/smtpd[42]: disconnect from mx.example[192.0.2.1] quit=1",
    ]
    rc, out, err = logstat("--json", "--year", "2025", write(tmp_path, "m.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    assert r["sessions"] == 1 and r["negative"] == 0
    assert r["time"] == pytest.approx(2.0)
    assert by_label(r)["<3s"]["sessions"] == 1



def test_impossible_durations_are_counted_and_cut(tmp_path):
    """A mangled timestamp (a session from year 0 to year 9999) is counted
    with the impossible durations and cut at 30 days: the sums stay exact
    and cannot overflow, however many such sessions a log holds."""
    lines = []
    for pid in range(1, 31):
        lines.append("0000-01-01T00:00:00+00:00 mx1 postfix/smtpd[%d]: connect from a[192.0.2.1]"
                     % pid)
    for pid in range(1, 31):
        lines.append("9999-12-31T23:59:59+00:00 mx1 postfix/smtpd[%d]: disconnect from "
                     "a[192.0.2.1] quit=1" % pid)
    rc, out, err = logstat("--json", write(tmp_path, "m.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    assert r["sessions"] == 30 and r["negative"] == 30, r
    assert r["time"] == pytest.approx(30 * 30 * 86400.0)

def overlapping_sessions():
    """3000 sessions on 12 hosts, hundreds open at once, in both formats.

    Every third session has traditional timestamps (whole seconds, many
    lines a second); the others RFC 3339 with microseconds, in UTC or at
    +02:00. Sessions end in order of their end, so a session's two lines
    are far apart and far from its neighbours'. Every other session ends
    with quit=1; the rest have a quit=12 first (the first " quit=1"
    decides) or no quit at all. Returns (lines, expected report facts).
    """
    edges = [0.1, 0.3, 1, 3, 10, 30, 100, 300]
    trad_d = [0, 1, 2, 5, 40, 400]
    rfc_d = [0.05, 0.2, 0.5, 2.25, 5.5, 20.125, 50.0625, 200.5, 400.75]
    events = []
    bucket = [0] * (len(edges) + 1)
    total = 0
    quit = noquit = 0
    for i in range(3000):
        host, pid = f"host{i % 12}", 100 + i // 12
        client = f"{names(i)}[198.51.100.{i % 50}]"
        start = T0 + timedelta(seconds=i * 0.2)
        if i % 3 == 0:
            start = start.replace(microsecond=0)
            d = trad_d[i % len(trad_d)]
            stamp = lambda t: t.strftime("%b %e %H:%M:%S")
        else:
            d = rfc_d[i % len(rfc_d)]
            tz = timezone(timedelta(hours=2)) if i % 2 else timezone.utc
            stamp = lambda t, tz=tz: rfc3339(t.astimezone(tz))
        end = start + timedelta(seconds=d)
        tag = f"{host} postfix/smtpd[{pid}]:"
        tail = " quit=1" if i % 2 else [" quit=12 x=1 quit=1", ""][i % 4 // 2]
        # The sort key keeps a connect before its disconnect at equal times.
        events.append((start, 0, i, f"{stamp(start)} {tag} connect from {client}"))
        events.append((end, 1, i, f"{stamp(end)} {tag} disconnect from {client} ehlo=1"
                                  f"{tail} commands=2"))
        quit += tail == " quit=1"
        noquit += tail != " quit=1"
        bucket[sum(d >= e for e in edges)] += 1
        total += d
    events.sort(key=lambda e: e[:3])
    return [e[3] for e in events], {"bucket": bucket, "time": total, "quit": quit,
                                    "noquit": noquit}


def test_many_overlapping_sessions_exact(tmp_path):
    """Pairing holds however far apart a session's lines are, on many hosts."""
    lines, facts = overlapping_sessions()
    path = write(tmp_path, "m.log", lines)
    for src in (path, "-"):
        rc, out, err = logstat("--json", "--year", "2026", src,
                               stdin=path.read_bytes() if src == "-" else None)
        assert rc == 0, err
        r = json.loads(out)
        assert r["lines"] == len(lines) and r["unparseable"] == 0
        assert r["sessions"] == 3000 and r["negative"] == 0
        assert r["missing_disconnect"] == 0 and r["orphan_disconnect"] == 0
        assert [b["sessions"] for b in r["buckets"]] == facts["bucket"]
        assert r["time"] == pytest.approx(facts["time"], abs=1e-5)
        assert ended(r) == {"quit": facts["quit"],
                            "disconnect without quit": facts["noquit"]}


def test_garbage_lines_counted(tmp_path):
    lines = [
        "this is not a log line",
        "",
        "Nov 99 20:00:00 mx1 postfix/smtpd[1]: connect from a[1.2.3.4]",
        "Nov 22 20:00:00 mx1 postfix/smtpd[12x]: connect from a[1.2.3.4]",
        "Nov 22 20:00:00 mx1 postfix/smtpd[1]: connect from no-brackets",
        "\x00\xff binary",
        "Nov 22 20:00:00 mx1 postfix/smtpd[3]: connect from mx.example[192.0.2.1]",
        "Nov 22 20:00:01 mx1 postfix/smtpd[3]: disconnect from mx.example[192.0.2.1] quit=1",
    ]
    rc, out, err = logstat("--json", write(tmp_path, "m.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    assert r["unparseable"] == 6
    assert r["lines"] == len(lines)
    assert r["sessions"] == 1


def test_rfc3339_offsets(tmp_path):
    lines = [
        "2026-11-22T20:39:08.123456+01:00 mx1 postfix/smtpd[9]: connect from "
        "mx.example[192.0.2.1]",
        # 0.5 s later, written in another offset.
        "2026-11-22T19:39:08.623456Z mx1 postfix/smtpd[9]: disconnect from "
        "mx.example[192.0.2.1] quit=1",
    ]
    rc, out, err = logstat("--json", write(tmp_path, "m.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    assert r["sessions"] == 1
    assert r["time"] == pytest.approx(0.5, abs=1e-6)
    assert by_label(r)["<1s"]["sessions"] == 1


def test_gzip_and_stdin_and_several_files(tmp_path):
    lines, _ = distribution()
    gz = tmp_path / "mail.log.1.gz"
    with gzip.open(gz, "wt") as f:
        f.write("".join(line + "\n" for line in lines))
    rc, out, err = logstat("--json", gz)
    assert rc == 0, err
    assert json.loads(out)["sessions"] == 100
    data = "".join(line + "\n" for line in lines).encode()
    rc, out, err = logstat("--json", "-", stdin=data)
    assert rc == 0, err
    assert json.loads(out)["sessions"] == 100
    # A session may start in the rotated file and end in the current one.
    half = len(lines) // 2
    a, b = write(tmp_path, "a.log", lines[:half]), write(tmp_path, "b.log", lines[half:])
    rc, out, err = logstat("--json", a, b)
    assert rc == 0, err
    r = json.loads(out)
    assert r["sessions"] == 100 and r["files"] == 2 and r["missing_disconnect"] == 0


def test_svg_well_formed(tmp_path):
    """Bars per bucket (share of sessions, share of time), a title, the
    totals and the dates, and every label inside the picture."""
    lines, _ = distribution()
    svg = tmp_path / "chart.svg"
    rc, out, err = logstat("--json", "--svg", svg, write(tmp_path, "m.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    root = ET.parse(svg).getroot()
    assert root.tag == SVG + "svg"
    width = float(root.get("width"))
    texts = [t for t in root.iter(SVG + "text")]
    words = [t.text or "" for t in texts]
    assert "smtpd session durations" in words
    # The totals and the span of the sessions (the generated log's dates).
    totals = [w for w in words if w.startswith("%d sessions" % r["sessions"])]
    assert totals and T0.strftime("%Y-%m-%d") in totals[0], words
    assert "%.0f s of smtpd time" % r["time"] in totals[0], totals
    labels = [x["label"] for x in r["buckets"]]
    assert all(l in words for l in labels), (labels, words)
    # Two bars per bucket, as tall as their shares (0-100 % on one axis).
    bars = [b for b in root.findall(SVG + "rect") if b.find(SVG + "title") is not None]
    assert len(bars) == 2 * len(labels)
    heights = [float(b.get("height")) for b in bars]
    full = max(heights) / (max(max(x["share"], x["occupancy"]) for x in r["buckets"]) / 100)
    for i, x in enumerate(r["buckets"]):
        assert heights[2 * i] == pytest.approx(full * x["share"] / 100, abs=0.2)
        assert heights[2 * i + 1] == pytest.approx(full * x["occupancy"] / 100, abs=0.2)
    # No label cut at the edges: about 6.5 px per character at 11-12 px.
    for t in texts:
        x, n = float(t.get("x")), len(t.text or "") * 6.5
        left = x - n / 2 if t.get("text-anchor") == "middle" else x - n if \
            t.get("text-anchor") == "end" else x
        assert left >= 0 and left + n <= width, (t.text, x, width)


def test_svg_many_buckets_widen_the_chart(tmp_path):
    lines, _ = distribution()
    svg = tmp_path / "wide.svg"
    edges = ",".join(str(x) for x in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 180, 240, 300))
    rc, out, err = logstat("--buckets", edges, "--svg", svg, write(tmp_path, "m.log", lines))
    assert rc == 0, err
    root = ET.parse(svg).getroot()
    xs = sorted(float(t.get("x")) for t in root.iter(SVG + "text")
                if (t.text or "").startswith(("<", ">")))
    assert len(xs) == 15
    # Neighbouring labels at least a label's width apart: none overlaps.
    assert min(b - a for a, b in zip(xs, xs[1:])) >= 45, xs
    assert xs[-1] + 25 <= float(root.get("width"))


def test_unreadable_exits_1(tmp_path):
    missing = tmp_path / "nope.log"
    rc, out, err = logstat(missing)
    assert rc == 1 and str(missing) in err
    rc, out, err = logstat(tmp_path)
    assert rc == 1 and "directory" in err
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"x" * 10000)[:-20] + b"\x00" * 40)
    rc, out, err = logstat(bad)
    assert rc == 1 and str(bad) in err


def test_bad_usage_exits_2():
    assert logstat()[0] == 2
    assert logstat("--nope", "x")[0] == 2
    assert logstat("--csv", "--json", "x")[0] == 2


# One session of 2.5 s (1 s where the format has whole seconds) in every
# "journalctl -o" short format: (format, connect stamp, disconnect stamp,
# duration, fine resolution).
JOURNAL_FORMATS = [
    ("short", "Dec 03 12:00:00", "Dec 03 12:00:01", 1.0, False),
    ("short-precise", "Dec 03 12:00:00.250000", "Dec 03 12:00:02.750000", 2.5, True),
    ("short-iso-252", "2026-12-03T12:00:00+0000", "2026-12-03T13:00:01+0100", 1.0, False),
    ("short-iso-253", "2026-12-03T12:00:00+00:00", "2026-12-03T12:00:01+00:00", 1.0, False),
    ("short-iso-precise", "2026-12-03T12:00:00.250000+0000",
     "2026-12-03T12:00:02.750000+0000", 2.5, True),
    ("short-full", "Thu 2026-12-03 12:00:00 UTC", "Thu 2026-12-03 12:00:01 UTC", 1.0, False),
    ("short-unix", "1796299200.250000", "1796299202.750000", 2.5, True),
    ("short-monotonic", "[ 1234.250000]", "[ 1236.750000]", 2.5, True),
]


@pytest.mark.parametrize("fmt,t1,t2,dur,fine", JOURNAL_FORMATS, ids=[f[0] for f in JOURNAL_FORMATS])
def test_journalctl_short_formats(tmp_path, fmt, t1, t2, dur, fine):
    lines = [
        f"{t1} mx1 postfix/smtpd[4711]: connect from mail.example.org[198.51.100.7]",
        f"{t1} mx1 postfix/smtpd[4711]: Anonymous TLS connection established from "
        "mail.example.org[198.51.100.7]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)",
        f"{t2} mx1 postfix/smtpd[4711]: disconnect from mail.example.org[198.51.100.7] "
        "ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7",
    ]
    rc, out, err = logstat("--json", write(tmp_path, "j.log", lines))
    assert rc == 0, err
    r = json.loads(out)
    assert r["unparseable"] == 0 and r["sessions"] == 1, out
    assert r["time"] == pytest.approx(dur, abs=1e-6)
    assert ("resolution of 1 second" in err) == (not fine), err


def test_nothing_parses_exits_1_with_a_sample(tmp_path):
    lines = ["2026-12-03 12:00:00 mx1 postfix/smtpd[1]: connect from a[192.0.2.1]",
             "hello \x01 world"]
    rc, out, err = logstat("--json", write(tmp_path, "bad.log", lines))
    assert rc == 1
    assert "none of the 2 lines" in err
    assert '"2026-12-03 12:00:00 mx1 postfix/smtpd[1]: connect from a[192.0.2.1]"' in err


def test_resolution_warning_only_for_sub_second_buckets(tmp_path):
    lines = ["Dec 03 12:00:00 mx1 postfix/smtpd[1]: connect from a[192.0.2.1]",
             "Dec 03 12:00:05 mx1 postfix/smtpd[1]: disconnect from a[192.0.2.1] quit=1"]
    f = write(tmp_path, "c.log", lines)
    rc, out, err = logstat(f)
    assert rc == 0 and "resolution of 1 second" in err
    rc, out, err = logstat("--buckets", "1,10,60", f)
    assert rc == 0 and "resolution" not in err, err


def test_service_separates_submission(tmp_path):
    lines = [
        "2026-12-03T12:00:00.000000+00:00 mx1 postfix/smtpd[10]: connect from a.example[192.0.2.1]",
        "2026-12-03T12:00:00.000000+00:00 mx1 postfix/submission/smtpd[11]: connect from "
        "b.example[192.0.2.2]",
        "2026-12-03T12:00:01.000000+00:00 mx1 postfix/smtpd[10]: disconnect from "
        "a.example[192.0.2.1] quit=1",
        "2026-12-03T12:00:03.000000+00:00 mx1 postfix/submission/smtpd[11]: disconnect from "
        "b.example[192.0.2.2] quit=1",
    ]
    f = write(tmp_path, "s.log", lines)
    rc, out, err = logstat("--json", f)
    assert rc == 0 and json.loads(out)["sessions"] == 2
    rc, out, err = logstat("--json", "--service", "smtpd", f)
    r = json.loads(out)
    assert rc == 0 and r["sessions"] == 1 and r["time"] == pytest.approx(1.0)
    rc, out, err = logstat("--json", "--service", "submission", f)
    r = json.loads(out)
    assert rc == 0 and r["sessions"] == 1 and r["time"] == pytest.approx(3.0)
    rc, out, err = logstat("--json", "--service", "smtps", f)
    assert rc == 0 and json.loads(out)["sessions"] == 0 and "no smtpd line of service" in err


# Postfix's lines as journald receives them from syslog: identifier and pid
# as fields. The sender waits between connect and disconnect, so the
# journal's own (microsecond) timestamps give the durations.
JOURNAL_SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(ident, pid, msg):
    s.sendto(("MESSAGE=%s\nSYSLOG_IDENTIFIER=%s\nSYSLOG_PID=%d\nPRIORITY=6\n"
              % (msg, ident, pid)).encode(), "/run/systemd/journal/socket")
send("postfix/smtpd", 4711, "connect from mail.example.org[198.51.100.7]")
send("postfix/submission/smtpd", 4712, "connect from laptop.example[192.0.2.9]")
send("sshd", 99, "Accepted publickey for root from 192.0.2.1 port 4242")
time.sleep(0.3)
send("postfix/smtpd", 4711, "disconnect from mail.example.org[198.51.100.7] ehlo=1 mail=1 "
     "rcpt=1 data=1 quit=1 commands=5")
send("postfix/submission/smtpd", 4712, "disconnect from laptop.example[192.0.2.9] quit=1")
time.sleep(0.5)
"""


def test_journal_input(tmp_path):
    """--journal reads Postfix's entries (and no one else's) through
    sd-journal, with microsecond timestamps; --service and -u filter."""
    from test_logging import NsRun, _need_namespace
    import sys

    _need_namespace()
    run = NsRun(tmp_path, [sys.executable, "-c", JOURNAL_SENDER])
    try:
        run.proc.wait(timeout=30)
    finally:
        run.stop()
    rc, out, err = logstat("--json", "--buckets", "0.1,1,10", "--journal", "-D", run.jdir)
    assert rc == 0, err
    r = json.loads(out)
    assert r["sessions"] == 2, out
    assert r["unparseable"] == 0 and r["lines"] == 4, out
    # Two sessions of about 0.3 s each: whole-second stamps would make them 0 or 1.
    assert 0.55 < r["time"] < 3.0, out
    assert by_label(r)["<1s"]["sessions"] == 2, out
    assert "resolution" not in err, err
    rc, out, err = logstat("--json", "--service", "submission", "--journal", "-D", run.jdir)
    assert rc == 0 and json.loads(out)["sessions"] == 1, (out, err)
    rc, out, err = logstat("--journal", "-D", run.jdir, "-u", "nosuch.service")
    assert rc == 1 and "no Postfix entries in the journal for unit nosuch.service" in err, err
    # Files or the journal, not both; -u only with the journal.
    assert logstat("--journal", "-D", run.jdir, "x.log")[0] == 2
    assert logstat("-u", "postfix@-.service", "x.log")[0] == 2
