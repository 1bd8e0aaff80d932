"""The Prometheus endpoint (metrics_listen): exposition format, counters
that move with real sessions through the Postfix backend and with a bot
that drops out of the tarpit, and the endpoint's own defences (404/405,
headers bounded in size and time).

Every scrape is parsed by a small checker of the text format 0.0.4: HELP
and TYPE once per family and before its samples, metric and label syntax,
label escaping, no duplicate series, histogram buckets ascending and
cumulative with +Inf equal to _count.
"""
import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from mxgtest import REPO_ROOT, RawSMTP, free_port, make_message, new_message_id, smtp_client

BOT = "127.10.0.7"  # q56-78.dyn.example.test: S25R r1, suspect (conftest.DNS_HOSTS)

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABELS = r"\{(?:%s=%s(?:,%s=%s)*)?\}" % (NAME, LABEL_VALUE, NAME, LABEL_VALUE)
SAMPLE_RX = re.compile(r"^(%s)(%s)? (\S+)$" % (NAME, LABELS))
LABEL_RX = re.compile(r"(%s)=(%s)" % (NAME, LABEL_VALUE))
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v[1:-1])


def parse_exposition(text):
    """{(name, frozenset(labels.items())): value} from a scrape; an
    AssertionError names the first line that breaks the format."""
    assert text.endswith("\n"), "exposition must end with a newline"
    helps, types, samples, seen = {}, {}, {}, set()
    hist_series = {}  # (family, other labels) -> [(le, value)], plus sum/count
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (%s) (.*)$" % NAME, line)
            assert m, where
            kind, name, rest = m.groups()
            # Ours, and the process_* families every client library exports.
            assert name.startswith(("mxguard_", "process_")), where
            table = helps if kind == "HELP" else types
            assert name not in table, "second %s for %s: %s" % (kind, name, where)
            if kind == "TYPE":
                assert rest in TYPES, where
                assert name not in seen, "TYPE after samples: " + where
            table[name] = rest
            continue
        m = SAMPLE_RX.match(line)
        assert m, "bad sample syntax: " + where
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        labels = {k: _unescape(v) for k, v in LABEL_RX.findall(labels_text)}
        assert len(labels) == labels_text.count("=\""), where
        v = float(value)  # raises on anything but a float, +Inf, NaN
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        assert family in types and family in helps, "sample before HELP/TYPE: " + where
        seen.add(family)
        key = (name, frozenset(labels.items()))
        assert key not in samples, "duplicate series: " + where
        samples[key] = v
        if types[family] == "histogram":
            rest = frozenset((k, x) for k, x in labels.items() if k != "le")
            h = hist_series.setdefault((family, rest), {"buckets": []})
            if name.endswith("_bucket"):
                assert "le" in labels, where
                h["buckets"].append((float(labels["le"]), v))
            else:
                h[name[len(family) + 1:]] = v
        elif types[family] == "counter":
            assert v >= 0, where
    for (family, rest), h in hist_series.items():
        b = h["buckets"]
        assert b and b[-1][0] == float("inf"), "%s: no +Inf bucket" % family
        assert [le for le, _ in b] == sorted(le for le, _ in b), "%s: le not ascending" % family
        counts = [c for _, c in b]
        assert counts == sorted(counts), "%s: buckets not cumulative %r" % (family, counts)
        assert "count" in h and "sum" in h, "%s: no _sum or _count" % family
        assert b[-1][1] == h["count"], "%s: +Inf %s != _count %s" % (family, b[-1][1],
                                                                      h["count"])
    return samples


class Scraper:
    def __init__(self, port):
        self.port = port
        self.url = "http://127.0.0.1:%d/metrics" % port

    def text(self):
        with urllib.request.urlopen(self.url, timeout=10) as r:
            assert r.status == 200
            ctype = r.headers["Content-Type"]
            assert ctype == "text/plain; version=0.0.4; charset=utf-8", ctype
            assert r.headers["Connection"] == "close"
            return r.read().decode("utf-8")

    def scrape(self):
        return parse_exposition(self.text())


def value(samples, name, **labels):
    """The sample's value, or None when the series is absent."""
    return samples.get((name, frozenset(labels.items())))


def start(mxguard, postfix, **params):
    """mxguard with metrics on a free loopback port; (mx, scraper)."""
    for attempt in range(3):
        port = free_port()
        p = dict(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 metrics_listen="127.0.0.1:%d" % port)
        p.update(params)
        mx = mxguard(**p)
        s = Scraper(port)
        # The port was free a moment ago: the daemon exits if it lost it.
        try:
            mx.wait_for_log(r"metrics on http://127\.0\.0\.1:%d/metrics" % port, timeout=5)
            return mx, s
        except AssertionError:
            if mx.alive() or attempt == 2:
                raise
    raise AssertionError("unreachable")


def send_one(mx, postfix, tag):
    mid = new_message_id(tag)
    s, code, _, _ = smtp_client(mx.port)
    try:
        assert code == 220
        s.sendmail("sender@client.test", ["user@example.test"], make_message(mid))
        s.quit()
    finally:
        s.close()
    postfix.wait_for_message(mid)


def test_format_and_sessions_move_counters(mxguard, postfix):
    mx, m = start(mxguard, postfix, default_action="pass")
    before = m.scrape()
    lst = "127.0.0.1:%d" % mx.port
    for name in ("connections_accepted_total", "connections_refused_total",
                 "connections_passed_total"):
        assert value(before, "mxguard_" + name, listener=lst) == 0, name
    assert value(before, "mxguard_build_info", version=re.search(
        r'mxguard_build_info\{version="([^"]+)"\}', m.text()).group(1)) == 1
    assert value(before, "mxguard_uptime_seconds") >= 0
    # Every declared reason and stage is there, even at zero.
    for reason in ("overload", "blocked", "static", "bogus", "country", "conn_source",
                   "conn_prefix", "rate_source", "rate_prefix", "attack"):
        assert value(before, "mxguard_refusals_total", reason=reason) == 0, reason
    assert value(before, "mxguard_listen_backlog", listener=lst) > 0
    assert value(before, "mxguard_listen_queue", listener=lst) == 0
    assert value(before, "mxguard_store_info", backend="lmdb") == 1

    for i in range(3):
        send_one(mx, postfix, "metrics%d" % i)
    after = m.scrape()
    assert value(after, "mxguard_connections_accepted_total", listener=lst) == 3
    assert value(after, "mxguard_connections_passed_total", listener=lst) == 3
    assert value(after, "mxguard_connections_refused_total", listener=lst) == 0
    assert value(after, "mxguard_backend_latency_seconds_count") == 3
    assert 0 < value(after, "mxguard_backend_latency_seconds_sum") < 30
    assert value(after, "mxguard_scrapes_total") == value(before, "mxguard_scrapes_total") + 2


def test_process_metrics(mxguard, postfix):
    """process_* as dashboards expect them: memory, descriptors (they follow
    the clients), CPU, start time."""
    mx, m = start(mxguard, postfix, default_action="inspect")
    before = m.scrape()
    rss = value(before, "process_resident_memory_bytes")
    assert rss is not None and 1 << 20 < rss < 1 << 30, rss
    assert value(before, "process_virtual_memory_bytes") >= rss
    assert value(before, "process_cpu_seconds_total") >= 0
    assert value(before, "process_start_time_seconds") == value(
        before, "mxguard_start_time_seconds")
    fds = value(before, "process_open_fds")
    assert fds >= 3, fds
    assert value(before, "process_max_fds") >= fds
    held = []
    try:
        for i in range(20):
            s = RawSMTP(mx.port, source_ip="127.0.3.%d" % (i + 1))
            assert s.read_reply().code == 220
            held.append(s)
        after = m.scrape()
        assert value(after, "process_open_fds") >= fds + 20, (fds, after)
        assert value(after, "process_cpu_seconds_total") >= value(
            before, "process_cpu_seconds_total")
    finally:
        for s in held:
            s.close()


ALERTS = REPO_ROOT / "contrib" / "prometheus" / "mxguard-alerts.yml"
ALERT_TESTS = REPO_ROOT / "tests" / "contrib" / "mxguard-alerts.test.yml"
DASHBOARD = REPO_ROOT / "contrib" / "grafana" / "mxguard-dashboard.json"
# Not mxguard's: Prometheus makes `up` itself for every target.
PROMETHEUS_OWN = {"up"}


def _queries():
    """Every PromQL expression of the shipped dashboard and alert rules."""
    exprs = []
    # The rules file: expr values, on one line or folded (">-", then the
    # lines indented deeper than "expr:").
    lines = ALERTS.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s+)expr: (.*)$", line)
        if not m:
            continue
        if m.group(2) != ">-":
            exprs.append(m.group(2))
            continue
        folded = []
        for more in lines[i + 1:]:
            if len(more) - len(more.lstrip()) <= len(m.group(1)):
                break
            folded.append(more.strip())
        exprs.append(" ".join(folded))
    dash = json.loads(DASHBOARD.read_text())
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            exprs.append(t["expr"])
    for var in dash["templating"]["list"]:
        if var.get("type") == "query":
            exprs.append(var["definition"])
    return exprs


def test_alert_rules_check_and_fire():
    """contrib/prometheus: promtool accepts the rules, and each alert fires
    on the series that should fire it and not on a healthy host."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; scripts/deps.sh test)")
    for args in (["check", "rules", str(ALERTS)], ["test", "rules", ALERT_TESTS.name]):
        r = subprocess.run([promtool] + args, cwd=ALERT_TESTS.parent, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_dashboard_and_alerts_name_only_exported_metrics(mxguard, postfix):
    """The Grafana dashboard and the alert rules query only families this
    daemon exports, and group by labels those families carry."""
    mx, m = start(mxguard, postfix, default_action="inspect")
    text = m.text()
    samples = parse_exposition(text)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    labels = {}
    for name, lbls in samples:
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == "histogram":
                family = name[:-len(suffix)]
        labels.setdefault(name, set()).update(k for k, _ in lbls)
        labels.setdefault(family, set()).update(k for k, _ in lbls)
    exprs = _queries()
    assert len(exprs) > 20, exprs
    for expr in exprs:
        names = set(re.findall(r"\b((?:mxguard|process)_[a-z0-9_]+)\b", expr))
        names |= {n for n in PROMETHEUS_OWN if re.search(r"\b%s\{" % n, expr)}
        assert names, "no metric in %r" % expr
        known = set()
        for n in names - PROMETHEUS_OWN:
            assert n in labels, "%s (in %r) is not exported" % (n, expr)
            known |= labels[n]
        # Labels that Prometheus adds, and the histogram's own.
        known |= {"instance", "job", "le"}
        for grp in re.findall(r"\bby \(([^)]*)\)", expr):
            for lbl in (x.strip() for x in grp.split(",")):
                assert lbl in known, "by (%s): %s has no such label (%r)" % (lbl, names, expr)
        for sel in re.findall(r"\{([^}]*)\}", expr):
            for lbl in re.findall(r"([a-z_]+)\s*=~?", sel):
                assert lbl in known, "{%s}: %s has no label %s" % (sel, names, lbl)


def test_overload_refusal_is_counted(mxguard, postfix):
    mx, m = start(mxguard, postfix, default_action="pass", max_connections="1")
    lst = "127.0.0.1:%d" % mx.port
    first = RawSMTP(mx.port)
    assert first.read_reply(strict=False).code == 220
    second = RawSMTP(mx.port)
    r = second.read_reply(strict=False)
    assert r.code == 421, r
    second.close()
    s = m.scrape()
    # Refused at accept: not taken into service, so not in accepted.
    assert value(s, "mxguard_connections_accepted_total", listener=lst) == 1
    assert value(s, "mxguard_connections_refused_total", listener=lst) == 1
    assert value(s, "mxguard_refusals_total", reason="overload") == 1
    first.close()


def test_tarpit_drop_moves_counters_and_histogram(mxguard, postfix):
    mx, m = start(mxguard, postfix, default_action="inspect", client_lists="",
                  tarpit_delay="2s")
    lst = "127.0.0.1:%d" % mx.port
    c = RawSMTP(mx.port, source_ip=BOT, timeout=10)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO bot.test").code == 250
    assert c.cmd("MAIL FROM:<sender@client.test>").code == 250
    c.send("RCPT TO:<user@example.test>\r\n")
    mx.wait_for_log(r"tarpit start client=127\.10\.0\.7 ", timeout=5)
    held = m.scrape()
    assert value(held, "mxguard_connections_held") == 1
    assert value(held, "mxguard_connections", stage="tarpit") == 1
    assert value(held, "mxguard_verdicts_total", verdict="suspect") == 1
    assert value(held, "mxguard_listener_verdicts_total", listener=lst, verdict="suspect") == 1
    assert value(held, "mxguard_tarpit_drops_total") == 0
    # Give up after about 1.2 s of the 2 s: a drop in the le="2" bucket.
    time.sleep(1.2)
    c.close()
    line = mx.wait_for_log(r"tarpit drop client=127\.10\.0\.7 .* after=(\d+\.\d)s").group(0)
    waited = float(re.search(r"after=(\d+\.\d)s", line).group(1))
    s = m.scrape()
    assert value(s, "mxguard_tarpit_drops_total") == 1
    assert value(s, "mxguard_tarpit_survivals_total") == 0
    assert value(s, "mxguard_connections_held") == 0
    assert value(s, "mxguard_tarpit_drop_seconds_count") == 1
    assert value(s, "mxguard_tarpit_drop_seconds_sum") == pytest.approx(waited, abs=0.051)
    # Held at least the 1.2 s slept, and under the 2 s delay or it had survived.
    assert 1.2 <= waited <= 2.0, line
    assert value(s, "mxguard_tarpit_drop_seconds_bucket", le="1") == 0
    assert value(s, "mxguard_tarpit_drop_seconds_bucket", le="2") == 1
    # The verified name took a PTR and a forward query from the test dnsmasq.
    assert value(s, "mxguard_dns_latency_seconds_count") >= 2
    # The bot's retry is greylisted: a deferral, and still one verdict per connection.
    c = RawSMTP(mx.port, source_ip=BOT, timeout=10)
    assert c.read_reply(strict=False).code == 220
    assert c.cmd("EHLO bot.test").code == 250
    assert c.cmd("MAIL FROM:<sender@client.test>").code == 250
    assert c.cmd("RCPT TO:<user@example.test>").code == 450
    assert c.cmd("RCPT TO:<user2@example.test>").code == 450
    c.close()
    s = m.scrape()
    assert value(s, "mxguard_greylist_total", outcome="defer") == 2
    assert value(s, "mxguard_greylist_total", outcome="pass") == 0
    assert value(s, "mxguard_verdicts_total", verdict="suspect") == 2
    assert value(s, "mxguard_connections_passed_total", listener=lst) == 0


def http_raw(port, data, timeout=10):
    """Send raw bytes, return everything the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sk:
        sk.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sk.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def test_bad_requests(mxguard, postfix):
    mx, m = start(mxguard, postfix)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://127.0.0.1:%d/nope" % m.port, timeout=10)
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(m.url, data=b"x", method="POST"),
                               timeout=10)
    assert e.value.code == 405
    assert http_raw(m.port, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # A query string is fine: the path is what counts.
    with urllib.request.urlopen(m.url + "?name[]=x", timeout=10) as r:
        assert r.status == 200
    parse_exposition(m.text())
    # A scrape still pending at SIGTERM does not hold the exit up, and is
    # freed (the ASan build checks for leaks at exit).
    with socket.create_connection(("127.0.0.1", m.port), timeout=10) as sk:
        sk.sendall(b"GET /metrics HTTP/1.1\r\n")
        time.sleep(0.2)
        assert mx.stop(timeout=10) == 0
        assert not mx.killed


def test_endless_header_is_cut_off(mxguard, postfix):
    mx, m = start(mxguard, postfix)
    sk = socket.create_connection(("127.0.0.1", m.port), timeout=10)
    sent, answer = 0, b""
    sk.sendall(b"GET /metrics HTTP/1.1\r\n")
    deadline = time.monotonic() + 10
    try:
        # At most 4 MB and 10 s: the daemon must stop us long before.
        while sent < 4 << 20 and time.monotonic() < deadline:
            sk.sendall(b"X-Filler: " + b"a" * 1000 + b"\r\n")
            sent += 1012
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        pass
    try:
        while time.monotonic() < deadline:
            chunk = sk.recv(65536)
            if not chunk:
                break
            answer += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    sk.close()
    assert time.monotonic() < deadline, "still connected after 10 s"
    # Either the 431 arrived, or the reset after it overtook it; never a 200.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert sent < 4 << 20, "the server read 4 MB of headers"

    # A client that trickles its headers is cut off at the 5 s deadline.
    sk = socket.create_connection(("127.0.0.1", m.port), timeout=10)
    t0 = time.monotonic()
    sk.sendall(b"GET /metrics HTTP/1.1\r\n")
    closed = False
    try:
        for _ in range(40):
            sk.sendall(b"X: y\r\n")
            sk.settimeout(0.25)
            try:
                if sk.recv(100) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    took = time.monotonic() - t0
    sk.close()
    assert closed and 4.5 <= took < 7, (closed, took)

    # The daemon keeps serving: a scrape and an SMTP session.
    parse_exposition(m.text())
    c = RawSMTP(mx.port)
    assert c.read_reply(strict=False).code == 220
    c.close()
    assert mx.alive()


def test_parser_rejects_broken_expositions():
    """The checker itself can fail: each of these breaks one rule."""
    good = ("# HELP mxguard_x_seconds h\n# TYPE mxguard_x_seconds histogram\n"
            'mxguard_x_seconds_bucket{le="1"} 1\nmxguard_x_seconds_bucket{le="+Inf"} 2\n'
            "mxguard_x_seconds_sum 1.5\nmxguard_x_seconds_count 2\n")
    parse_exposition(good)
    broken = [
        good.replace('{le="+Inf"} 2', '{le="+Inf"} 3'),             # +Inf != _count
        good.replace('{le="1"} 1', '{le="1"} 5'),                     # not cumulative
        good.replace("# TYPE mxguard_x_seconds histogram\n", ""),     # no TYPE
        good + 'mxguard_x_seconds_count 2\n',                         # duplicate
        good + '# HELP mxguard_y h\n# TYPE mxguard_y gauge\nmxguard_y{a="b\\q"} 1\n',
        good + '# HELP mxguard_y h\n# TYPE mxguard_y gauge\nmxguard_y{a="b} 1\n',
        good.rstrip("\n"),
    ]
    for text in broken:
        with pytest.raises((AssertionError, ValueError)):
            parse_exposition(text)
