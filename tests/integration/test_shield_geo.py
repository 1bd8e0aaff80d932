"""The shield's country filters, end to end.

A small country database in the tor-geoipdb format (written by the test:
some 127.x.0.0/16 ranges are DE, others FR, ::1 is DE in the geoip6 file)
drives the listeners' filters: countries=DE admits a DE source to the
backend and resets an FR source (logged reason=country), countries=!FR
the other way round; SMTP has no filter by default, smtp_countries=DE
refuses the FR source with the smtp_refuse_perm line. With the real
Debian files (the default geo_database) the daemon loads them all and
loopback, in no range, is "??". A damaged database stops the start with
PATH:LINE; a bad country code is a configuration error.
"""
import os
import re
import socket
import subprocess
import time

import pytest

from mxgtest import free_port, mxguard_bin, probe, smtp_first_line, wait_until

# The DE and FR /16s of the test database, and what is in no range.
DE_NETS = ("127.200", "127.202")
FR_NETS = ("127.201", "127.203")
UNKNOWN_LISTED = "127.204"  # a "??" line: checked, then dropped
UNKNOWN_ABSENT = "127.205"  # no line at all
REFUSE_PERM = "554 5.7.1 Not accepted from your country (test)"


def ip2int(ip):
    return int.from_bytes(socket.inet_aton(ip), "big")


def net16(prefix):
    """(low, high) of a /16 as the decimal bounds of a tor geoip line."""
    lo = ip2int(prefix + ".0.0")
    return lo, lo + 65535


def write_geo(tmp_path):
    """The test database: (ipv4 file, ipv6 file)."""
    ranges = [(net16(p), "DE") for p in DE_NETS] + [(net16(p), "FR") for p in FR_NETS]
    ranges.append((net16(UNKNOWN_LISTED), "??"))
    ranges.sort()
    v4 = tmp_path / "geoip"
    v4.write_text("# tor geoip format: low,high,CC (test data, not real)\n"
                  + "".join("%d,%d,%s\n" % (lo, hi, cc) for (lo, hi), cc in ranges))
    v6 = tmp_path / "geoip6"
    v6.write_text("# tor geoip6 format (test data)\n"
                  "::1,::1,DE\n"
                  "2001:db8::,2001:db8::ffff,FR\n")
    return v4, v6


def backend_greeting(postfix):
    # The plain smtpd's own banner: proof that the client reached the backend.
    return ("220 %s" % postfix.banner).encode()


def free_port6():
    with socket.socket(socket.AF_INET6) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_country_filters_on_services_and_smtp(postfix, mxguard, tmp_path):
    v4, v6 = write_geo(tmp_path)
    de, de2 = DE_NETS[0] + ".7.1", DE_NETS[1] + ".9.2"
    fr, fr2 = FR_NETS[0] + ".7.1", FR_NETS[1] + ".9.2"
    listed_unknown, absent = UNKNOWN_LISTED + ".1.1", UNKNOWN_ABSENT + ".1.1"
    p_de, p_notfr = free_port(), free_port()
    backend = postfix.backend_for("none")
    params = dict(
        backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
        allow_clients="127.0.0.1", geo_database="%s %s" % (v4, v6),
        service_onlyde="listen=127.0.0.1:%d backend=%s proxy=none countries=DE"
        % (p_de, backend),
        service_notfr="listen=127.0.0.1:%d backend=%s proxy=none countries=!FR"
        % (p_notfr, backend))
    v6ok = ipv6_loopback()
    if v6ok:
        p6_de, p6_notde = free_port6(), free_port6()
        params["service_v6de"] = ("listen=[::1]:%d backend=%s proxy=none countries=DE"
                                  % (p6_de, backend))
        params["service_v6notde"] = ("listen=[::1]:%d backend=%s proxy=none countries=!DE"
                                     % (p6_notde, backend))
    else:
        print("IPv6 part skipped: ::1 is not available here")
    mx = mxguard(**params)
    # Five ranges kept: the "??" line is dropped; plus ::1 and the 2001:db8 range.
    mx.wait_for_log(r"countries: 6 ranges from %s %s" % (re.escape(str(v4)), re.escape(str(v6))))
    greeting = backend_greeting(postfix)

    # countries=DE: both DE /16s reach the backend, FR and unknown are reset.
    for ip in (de, de2):
        kind, data = probe(p_de, ip)
        assert data.startswith(greeting), (ip, kind, data)
    for ip in (fr, fr2, listed_unknown, absent):
        kind, data = probe(p_de, ip)
        assert (kind, data) == ("reset", b""), (ip, kind, data)
        mx.wait_for_log(r"refuse client=%s listener=127\.0\.0\.1:%d service=onlyde reason=country"
                        % (re.escape(ip), p_de))
    # countries=!FR: everything but FR, the unknown sources too.
    for ip in (de, de2, listed_unknown, absent):
        kind, data = probe(p_notfr, ip)
        assert data.startswith(greeting), (ip, kind, data)
    for ip in (fr, fr2):
        kind, data = probe(p_notfr, ip)
        assert (kind, data) == ("reset", b""), (ip, kind, data)
        mx.wait_for_log(r"refuse client=%s listener=127\.0\.0\.1:%d service=notfr reason=country"
                        % (re.escape(ip), p_notfr))
    # The admitted ones were never refused.
    for ip in (de, de2):
        assert "refuse client=%s " % ip not in mx.log()
    # SMTP has no country filter by default: mail from anywhere.
    for ip in (fr, de, absent):
        line = smtp_first_line(mx.port, ip)
        assert line.startswith("220"), (ip, line)
    assert not re.search(r"refuse client=\S+ listener=127\.0\.0\.1:%d " % mx.port, mx.log())

    if v6ok:
        # ::1 is DE only in the geoip6 file: found there, it is admitted by DE, refused by !DE.
        kind, data = probe(p6_de, "::1", host="::1")
        assert data.startswith(greeting), (kind, data)
        kind, data = probe(p6_notde, "::1", host="::1")
        assert (kind, data) == ("reset", b""), (kind, data)
        mx.wait_for_log(r"refuse client=::1 listener=\[?::1\]?:%d service=v6notde reason=country"
                        % p6_notde)


def test_smtp_countries_refuses_with_the_permanent_reply(postfix, mxguard, tmp_path):
    v4, v6 = write_geo(tmp_path)
    de, fr = DE_NETS[0] + ".8.1", FR_NETS[0] + ".8.1"
    mx = mxguard(backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 allow_clients="127.0.0.1", geo_database="%s %s" % (v4, v6),
                 smtp_countries="DE", smtp_refuse_perm=REFUSE_PERM)
    t0 = time.monotonic()
    kind, data = probe(mx.port, fr)
    assert data == (REFUSE_PERM + "\r\n").encode(), (kind, data)
    # One line and close, no waiting.
    assert time.monotonic() - t0 < 1.0
    mx.wait_for_log(r"refuse client=%s listener=127\.0\.0\.1:%d service=smtp reason=country"
                    % (re.escape(fr), mx.port))
    line = smtp_first_line(mx.port, de)
    assert line.startswith("220"), line
    assert "refuse client=%s " % de not in mx.log()
    # The allow list comes first: 127.0.0.1 is in no range, yet admitted.
    assert smtp_first_line(mx.port, "127.0.0.1").startswith("220")


def test_real_debian_database(postfix, mxguard):
    files = ["/usr/share/tor/geoip", "/usr/share/tor/geoip6"]
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        pytest.skip("the Debian tor-geoipdb files are not installed: %s" % " ".join(missing))
    src = "127.206.3.4"
    p_unknown, p_known = free_port(), free_port()
    backend = postfix.backend_for("none")
    t0 = time.monotonic()
    # geo_database is not set: its default names the two Debian files.
    mx = mxguard(allow_clients="127.0.0.1",
                 backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 service_unknown="listen=127.0.0.1:%d backend=%s proxy=none countries=??"
                 % (p_unknown, backend),
                 service_known="listen=127.0.0.1:%d backend=%s proxy=none countries=!??"
                 % (p_known, backend))
    m = mx.wait_for_log(r"countries: (\d+) ranges from /usr/share/tor/geoip /usr/share/tor/geoip6")
    # The sockets listen before the database is read: "ready" comes after it.
    mx.wait_for_log(r"info: ready: ")
    started = time.monotonic() - t0
    n = int(m.group(1))
    print("real database: %d ranges, start-up to ready %.2fs, RSS %d kB"
          % (n, started, mx.rss_kb()))
    assert n > 600000, n
    # Loopback is in no range of the real database: "??".
    kind, data = probe(p_unknown, src)
    assert data.startswith(backend_greeting(postfix)), (kind, data)
    kind, data = probe(p_known, src)
    assert (kind, data) == ("reset", b""), (kind, data)
    mx.wait_for_log(r"refuse client=%s listener=127\.0\.0\.1:%d service=known reason=country"
                    % (re.escape(src), p_known))


# Damaged databases: (file name, content, line, message).
BROKEN = [
    ("geoip", "# comment\n2143813632,2143879167,DE\n2143879168,21438x,FR\n", 3,
     "bad IPv4 number '21438x'"),
    ("geoip", "2143879168,2143944703,FR\n2143813632,2143879167,DE\n", 2,
     "ranges not sorted: starts before the range of line 1"),
    ("geoip", "2143813632,2143879167,DE\n2143879000,2143944703,FR\n", 2,
     "range overlaps the range of line 1"),
    ("geoip", "2143813632,2143879167,D1\n", 1, "bad country code 'D1'"),
    ("geoip", "2143813632,2143879167\n", 1, "expected low,high,CC, got '2143813632,2143879167'"),
    ("geoip6", "::1,::1,DE\n2001:db8::,2001:zz8::,FR\n", 2, "bad IPv6 address '2001:zz8::'"),
]


@pytest.mark.parametrize("name,content,line,message", BROKEN,
                         ids=["number", "unsorted", "overlap", "code", "fields", "ipv6"])
def test_broken_database_stops_the_start(mxguard, tmp_path, name, content, line, message):
    bad = tmp_path / name
    bad.write_text(content)
    svc = free_port()
    mx = mxguard(start=False, allow_clients="127.0.0.1", geo_database=str(bad),
                 service_x="listen=127.0.0.1:%d backend=127.0.0.1:%d proxy=none countries=DE"
                 % (svc, free_port()))
    mx.write_config()
    p = subprocess.run([str(mxguard_bin()), "-c", str(mx.config_file)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    want = "geo_database (needed by a country filter): %s:%d: %s" % (bad, line, message)
    assert want in p.stderr, p.stderr
    assert "ready:" not in p.stderr


def test_empty_database_stops_the_start(mxguard, tmp_path):
    empty = tmp_path / "geoip"
    empty.write_text("# only a comment: a failed download\n")
    mx = mxguard(start=False, allow_clients="127.0.0.1", geo_database=str(empty),
                 smtp_countries="!FR")
    mx.write_config()
    p = subprocess.run([str(mxguard_bin()), "-c", str(mx.config_file)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "%s: no address ranges" % empty in p.stderr, p.stderr


def test_no_filter_no_database(mxguard, tmp_path):
    """Without a country filter the database is not even opened."""
    mx = mxguard(allow_clients="127.0.0.1", geo_database=str(tmp_path / "does-not-exist"))
    assert "countries:" not in mx.log()
    assert mx.alive()


def test_reload_adds_a_filter_and_opens_the_database(postfix, mxguard, tmp_path):
    """No filter at start: the database is opened by the reload that adds
    one (smtp_countries; service_* need a restart); a damaged database
    fails that part of the reload, with PATH:LINE, and the old policy stays."""
    v4, v6 = write_geo(tmp_path)
    good = v4.read_text()
    v4.write_text(good + "1,2,DE\n")  # out of order at the last line
    last = len(good.splitlines()) + 1
    fr, de = FR_NETS[0] + ".9.9", DE_NETS[0] + ".9.9"
    mx = mxguard(allow_clients="127.0.0.1", geo_database="%s %s" % (v4, v6),
                 backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 smtp_refuse_perm=REFUSE_PERM)
    assert smtp_first_line(mx.port, fr).startswith("220")
    mx.set(smtp_countries="DE")
    mx.reload()
    # Today: "reload: the shield keeps its lists: ..." (the rest of the
    # configuration is reloaded); either wording names the file and line.
    mx.wait_for_log(r"(reload failed, keeping the running configuration|reload: the shield keeps "
                    r"its lists): geo_database \(needed by a country filter\): %s:%d: ranges "
                    r"not sorted" % (re.escape(str(v4)), last))
    assert mx.alive()
    assert smtp_first_line(mx.port, fr).startswith("220")  # the old policy: no filter
    v4.write_text(good)
    mx.reload()
    wait_until(lambda: smtp_first_line(mx.port, fr) == REFUSE_PERM, 5, interval=0.2,
               what="the filter after the second reload")
    assert smtp_first_line(mx.port, de).startswith("220")
    mx.wait_for_log(r"refuse client=%s .*service=smtp reason=country" % re.escape(fr))


@pytest.mark.parametrize("param,value,shown", [
    ("service_x", "listen=127.0.0.1:%d backend=127.0.0.1:25 proxy=none countries=XYZ",
     "service_x: countries: country filter: bad entry 'XYZ'"),
    ("service_x", "listen=127.0.0.1:%d backend=127.0.0.1:25 proxy=none countries=DE,!F",
     "service_x: countries: country filter: bad entry '!F'"),
    ("smtp_countries", "DE 12", "smtp_countries: country filter: bad entry '12'"),
])
def test_bad_country_code_is_a_config_error(param, value, shown):
    if "%d" in value:
        value = value % free_port()
    cmd = [str(mxguard_bin()), "-n", "-o", "run_as=", "-o", "%s=%s" % (param, value)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert shown in r.stderr, r.stderr
    # The same with a good code passes the check.
    good = value.replace("XYZ", "DE").replace("!F", "!FR").replace(" 12", " ??")
    r = subprocess.run([str(mxguard_bin()), "-n", "-o", "run_as=", "-o", "%s=%s" % (param, good)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, (good, r.stderr)


# ---------------------------------------------------------------------------
# A MaxMind-format database (.mmdb), written by the test: no such file is
# installed, and the format is small enough to build for a handful of
# prefixes (https://maxmind.github.io/MaxMind-DB/: a binary trie of 24-bit
# records, 16 zero bytes, a data section, then the metadata).


def _mm_ctrl(typ, size):
    assert size < 29
    if typ <= 7:
        return bytes([(typ << 5) | size])
    return bytes([size, typ - 7])  # extended type


def _mm(v):
    """One value in the MaxMind DB data format."""
    if isinstance(v, str):
        b = v.encode()
        return _mm_ctrl(2, len(b)) + b
    if isinstance(v, dict):
        return _mm_ctrl(7, len(v)) + b"".join(_mm(k) + _mm(x) for k, x in v.items())
    if isinstance(v, list):
        return _mm_ctrl(11, len(v)) + b"".join(_mm(x) for x in v)
    typ, n = v  # ("u16"|"u32"|"u64", number)
    b = n.to_bytes(8, "big").lstrip(b"\0")
    return _mm_ctrl({"u16": 5, "u32": 6, "u64": 9}[typ], len(b)) + b


def write_mmdb(path, prefixes):
    """An IPv4 database: prefixes is [("a.b.c.d/len", record dict)]."""
    data, offsets = b"", []
    for _, rec in prefixes:
        offsets.append(len(data))
        data += _mm(rec)
    # The trie: node 0 is the root; a child is a node number, "empty" or data.
    nodes = [[None, None]]
    for i, (net, _) in enumerate(prefixes):
        addr, plen = net.split("/")
        bits = int.from_bytes(socket.inet_aton(addr), "big")
        node = 0
        for depth in range(int(plen)):
            bit = (bits >> (31 - depth)) & 1
            if depth == int(plen) - 1:
                nodes[node][bit] = ("data", i)
            else:
                if nodes[node][bit] is None:
                    nodes.append([None, None])
                    nodes[node][bit] = len(nodes) - 1
                node = nodes[node][bit]
    count = len(nodes)

    def rec(r):
        if r is None:
            return count  # no data
        if isinstance(r, tuple):
            return count + 16 + offsets[r[1]]
        return r
    tree = b"".join(rec(l).to_bytes(3, "big") + rec(r).to_bytes(3, "big") for l, r in nodes)
    meta = _mm({"node_count": ("u32", count), "record_size": ("u16", 24),
                "ip_version": ("u16", 4), "database_type": "mxguard-test",
                "languages": ["en"], "binary_format_major_version": ("u16", 2),
                "binary_format_minor_version": ("u16", 0),
                "build_epoch": ("u64", int(time.time())),
                "description": {"en": "mxguard test data"}})
    path.write_bytes(tree + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + meta)


def test_mmdb_database(postfix, mxguard, tmp_path):
    db = tmp_path / "countries.mmdb"
    write_mmdb(db, [("127.200.0.0/16", {"country": {"iso_code": "DE"}}),
                    ("127.201.0.0/16", {"country": {"iso_code": "FR"}}),
                    # No country, only where it is registered (anycast and the like).
                    ("127.202.0.0/16", {"registered_country": {"iso_code": "DE"}})])
    de, fr, reg, absent = "127.200.5.1", "127.201.5.1", "127.202.5.1", "127.205.5.1"
    p_de = free_port()
    mx = mxguard(allow_clients="127.0.0.1", geo_database=str(db),
                 backend=postfix.backend_for("proxy2"), backend_protocol="proxy2",
                 service_onlyde="listen=127.0.0.1:%d backend=%s proxy=none countries=DE"
                 % (p_de, postfix.backend_for("none")))
    mx.wait_for_log(r"countries: 0 ranges from %s" % re.escape(str(db)))
    for ip in (de, reg):
        kind, data = probe(p_de, ip)
        assert data.startswith(backend_greeting(postfix)), (ip, kind, data)
    for ip in (fr, absent):
        kind, data = probe(p_de, ip)
        assert (kind, data) == ("reset", b""), (ip, kind, data)
        mx.wait_for_log(r"refuse client=%s .*service=onlyde reason=country" % re.escape(ip))


def test_bad_mmdb_stops_the_start(mxguard, tmp_path):
    db = tmp_path / "broken.mmdb"
    db.write_text("2143813632,2143879167,DE\n")  # a tor file under a .mmdb name
    mx = mxguard(start=False, allow_clients="127.0.0.1", geo_database=str(db),
                 smtp_countries="DE")
    mx.write_config()
    p = subprocess.run([str(mxguard_bin()), "-c", str(mx.config_file)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "geo_database (needed by a country filter): %s: " % db in p.stderr, p.stderr
    # A .mmdb database cannot be combined with other files.
    good = tmp_path / "good.mmdb"
    write_mmdb(good, [("127.200.0.0/16", {"country": {"iso_code": "DE"}})])
    mx.params["geo_database"] = "%s %s" % (good, good)
    mx.write_config()
    p = subprocess.run([str(mxguard_bin()), "-c", str(mx.config_file)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "%s: a .mmdb database must be the only file" % good in p.stderr, p.stderr
