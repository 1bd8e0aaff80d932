"""Hostile configuration, lists and store records (issue 11): what an
operator's typo, a planted list entry or a record written into the shared
store by somebody else does to mxguard. Each case gets a clear error or a
logged skip, never a crash; the daemon keeps serving.

* `mxguardctl add white 1.<51 digits>` (a stack overflow in rules_cidr
  before: abort under _FORTIFY_SOURCE, silent stack corruption without);
* the same entry, and records that are not records at all, planted in
  Redis and in the LMDB file: mxguard starts, logs the skips (escaped),
  serves, and keeps the good records.
"""
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import MxguardStartError
from mxgtest import free_port, is_listening, mxguard_bin
from test_control import ctl
from test_redis import REDIS_CLI, REDIS_SERVER, Redis

LONG_PREFIX = "1." + "1" * 51


def greeting(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.settimeout(10)
        data = b""
        while b"\r\n" not in data and len(data) < 1000:
            chunk = s.recv(1000)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n")[0].decode("ascii", "replace")


def assert_serves(mx):
    assert mx.alive(), mx.log()[-3000:]
    line = greeting(mx.port)
    assert line.startswith("220"), line
    rc, out, err = ctl(mx, "ping")
    assert rc == 0, (out, err)


def test_add_white_long_postgrey_prefix_is_refused(mxguard):
    mx = mxguard()
    rc, out, err = ctl(mx, "add", "white", LONG_PREFIX)
    assert rc == 1, (rc, out, err)
    assert "bad IPv4 address" in err, err
    assert_serves(mx)
    # A sound entry still works after it.
    rc, out, err = ctl(mx, "add", "white", "192.0.2")
    assert rc == 0, (out, err)
    rc, out, err = ctl(mx, "list", "white")
    assert "192.0.2" in out and LONG_PREFIX not in out, out


def mdb_load(env_file, subdb, pairs):
    """Write raw key/value pairs (bytes) into one named database of an LMDB
    environment file, with mdb_load (Debian lmdb-utils)."""
    lines = ["VERSION=3", "format=bytevalue", "type=btree", "HEADER=END"]
    for k, v in pairs:
        lines.append(" " + k.hex())
        lines.append(" " + v.hex())
    lines.append("DATA=END")
    p = subprocess.run(["mdb_load", "-n", "-s", subdb, str(env_file)],
                       input=("\n".join(lines) + "\n").encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    assert p.returncode == 0, p.stderr


def lmdb_value(first, last, expires, count):
    """store_lmdb.c's layout: version 1, three little-endian int64, one uint32."""
    return (bytes([1]) + first.to_bytes(8, "little", signed=True)
            + last.to_bytes(8, "little", signed=True)
            + expires.to_bytes(8, "little", signed=True) + count.to_bytes(4, "little"))


@pytest.mark.skipif(not shutil.which("mdb_load"),
                    reason="mdb_load is not installed (Debian package lmdb-utils)")
def test_bad_records_planted_in_lmdb_are_skipped(mxguard):
    mx = mxguard()
    rc, out, err = ctl(mx, "add", "white", "198.51.100")
    assert rc == 0, (out, err)
    assert mx.stop() == 0
    env = os.path.join(mx.params["state_dir"], "store.lmdb")
    now = int(time.time())
    forever = (1 << 63) - 1
    mdb_load(env, "white", [
        (LONG_PREFIX.encode(), lmdb_value(now, now, forever, 0)),
        (b"bad\x00key", lmdb_value(now, now, forever, 0)),
        (b"evil verdict=clean\x1b[31m", lmdb_value(now, now, forever, 0)),
        (b"203.0.113", lmdb_value(-5, now, forever, 0)),
        (b"x verdict=clean", lmdb_value(now, now, forever, 0)),
    ])
    mdb_load(env, "block", [
        (b"not-an-address", lmdb_value(now, now + 600, now + 3600, 1)),
        (b"192.0.2.7", lmdb_value(now, now + 10 * 365 * 86400, forever, 1)),
    ])
    mx.start()
    assert_serves(mx)
    log = mx.log()
    assert re.search(r'store: white entry "1\.1{51}" ignored: bad IPv4 address', log), log
    assert 'store: bad white record skipped: key="bad\\x7fkey"' in log, log
    assert 'store: bad white record skipped: key="203.0.113" first=-5' in log, log
    assert 'store: bad white record skipped: key="evil verdict=clean\\x1b[31m"' in log, log
    assert 'store: white entry "x verdict=clean" ignored: expected an address' in log, log
    assert 'blocks: bad record in the store skipped: key="not-an-address"' in log, log
    assert 'blocks: bad record in the store skipped: key="192.0.2.7"' in log, log
    assert "\x1b" not in log and " verdict=clean\n" not in log
    # The good record is still there and in force.
    rc, out, err = ctl(mx, "list", "white")
    assert "198.51.100" in out, out
    assert "203.0.113" not in out, out


@pytest.mark.skipif(not (shutil.which(REDIS_SERVER) and shutil.which(REDIS_CLI)),
                    reason="redis-server or redis-cli is not installed (Debian packages "
                    "redis-server, redis-tools)")
def test_bad_records_planted_in_redis_are_skipped(mxguard, tmp_path):
    redis = Redis(tmp_path)
    redis.start()
    try:
        now = int(time.time())
        redis.cli("SET", "mxg:white:" + LONG_PREFIX, "1 %d %d 9223372036854775807 0" % (now, now))
        redis.cli("SET", "mxg:white:198.51.100", "1 %d %d 9223372036854775807 0" % (now, now))
        redis.cli("SET", "mxg:white:" + "x" * 600, "1 %d %d 9223372036854775807 0" % (now, now))
        redis.cli("SET", "mxg:white:203.0.113", "garbage")
        redis.cli("SET", "mxg:block:10.0.0.1", "1 %d %d %d 1" % (now, now + 20 * 365 * 86400,
                                                                 now + 21 * 365 * 86400))
        mx = mxguard(store=redis.spec)
        assert_serves(mx)
        log = mx.log()
        assert re.search(r'store: white entry "1\.1{51}" ignored: bad IPv4 address', log), log
        assert 'store: bad white record skipped: key="xxxx' in log, log
        assert 'blocks: bad record in the store skipped: key="10.0.0.1"' in log, log
        rc, out, err = ctl(mx, "list", "white")
        assert "198.51.100" in out, out
        # A second farm member starts just as well.
        mx2 = mxguard(store=redis.spec)
        assert_serves(mx2)
    finally:
        redis.kill()


def check_config(tmp_path, text):
    """`mxguard -n` on a config file: (exit status, stdout, stderr)."""
    conf = tmp_path / "check.conf"
    conf.write_text(text)
    p = subprocess.run([str(mxguard_bin()), "-n", "-c", str(conf)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_long_myhostname_is_refused(mxguard, tmp_path):
    # 253 bytes: the longest DNS name, accepted.
    name = ".".join(["a" * 62] * 4) + "bc"
    assert len(name) == 253
    rc, out, err = check_config(tmp_path, "myhostname = %s\n" % name)
    assert rc == 0 and "myhostname = %s\n" % name in out, err
    # One more: refused by -n and at start, with the reason.
    rc, out, err = check_config(tmp_path, "myhostname = %sc\n" % name)
    assert rc == 1 and "myhostname" in err and "at most 253" in err, (rc, err)
    mx = mxguard(start=False, myhostname="x" * 1000)
    with pytest.raises(MxguardStartError) as e:
        mx.start()
    assert "1000 bytes long (at most 253)" in str(e.value)


def test_backend_that_is_our_own_listener_is_refused(mxguard, tmp_path):
    rc, out, err = check_config(tmp_path, "smtp_listen = 127.0.0.1:2525\n"
                                "backend = 127.0.0.1:2525\n")
    assert rc == 1 and "own listener 127.0.0.1:2525" in err, err
    rc, out, err = check_config(tmp_path, "smtp_listen = 0.0.0.0:2525\nbackend = 127.0.0.9:2525\n")
    assert rc == 1 and "own listener 0.0.0.0:2525" in err, err
    rc, out, err = check_config(tmp_path, "service_x = listen=127.0.0.1:1143 "
                                "backend=127.0.0.1:1143\n")
    assert rc == 1 and "service_x: backend 127.0.0.1:1143 is mxguard's own listener" in err, err
    # Another port, or [::] (IPV6_V6ONLY) with an IPv4 backend: no loop.
    rc, out, err = check_config(tmp_path, "smtp_listen = [::]:2525\nbackend = 127.0.0.1:2525\n")
    assert rc == 0, err
    mx = mxguard(start=False)
    mx.params["backend"] = mx.params["smtp_listen"]
    with pytest.raises(MxguardStartError) as e:
        mx.start()
    assert "is mxguard's own listener" in str(e.value)
    assert not is_listening(mx.port, pid=mx.proc.pid)


def test_backend_protocol_none_is_warned_about(mxguard, tmp_path):
    rc, out, err = check_config(tmp_path, "backend_protocol = none\n")
    assert rc == 0 and "warning: backend_protocol = none" in err and "mynetworks" in err, err
    rc, out, err = check_config(tmp_path, "backend_protocol = proxy2\n")
    assert rc == 0 and "warning" not in err, err
    mx = mxguard(backend_protocol="none")
    mx.wait_for_log(r"warning: backend_protocol = none: the backend sees mxguard's own address")
    assert mx.log().count("backend_protocol = none") == 1


def test_reload_of_an_empty_config_is_refused(mxguard):
    mx = mxguard(myhostname="kept.example.test")
    assert "kept.example.test" in greeting(mx.port)
    text = mx.config_file.read_text()
    for content in ("", "# only a comment, as a truncated file may be\n\n"):
        mx.config_file.write_text(content)
        before = mx.log().count("reload refused")
        mx.reload()
        mx.wait_for_log(r"(?s)(reload refused.*){%d}" % (before + 1))
        assert "sets no parameter (empty or truncated?)" in mx.log()
        assert mx.alive()
        # The running settings are kept: the name in the greeting, the listener.
        assert "kept.example.test" in greeting(mx.port)
    assert "reloaded configuration" not in mx.log()
    # A sound file reloads as before.
    mx.config_file.write_text(text.replace("kept.example.test", "new.example.test"))
    mx.reload()
    mx.wait_for_log(r"reloaded configuration from")
    assert "new.example.test" in greeting(mx.port)


def _open_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change another process' limit")
def test_out_of_descriptors_on_metrics_and_control_pauses(mxguard):
    mport = free_port()
    mx = mxguard(metrics_listen="127.0.0.1:%d" % mport)
    url = "http://127.0.0.1:%d/metrics" % mport
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
    sock_path = str(mx.workdir / "state" / "control.sock")
    old = resource.prlimit(mx.pid, resource.RLIMIT_NOFILE)
    held = []
    try:
        # Every descriptor in use: the next accept() fails with EMFILE.
        n = _open_fds(mx.pid)
        resource.prlimit(mx.pid, resource.RLIMIT_NOFILE, (n, old[1]))
        lines_before = len(mx.log().splitlines())
        # A scrape and a control client wait in the accept queues.
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", mport))
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        held.append(s)
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.settimeout(5)
        u.connect(sock_path)
        u.sendall(b"ping\n")
        held.append(u)
        t0 = time.monotonic()
        cpu0 = _cpu_seconds(mx.pid)
        time.sleep(3)
        cpu = _cpu_seconds(mx.pid) - cpu0
        took = time.monotonic() - t0
        lines = mx.log().splitlines()[lines_before:]
        assert mx.alive()
        assert len(lines) < 100, (len(lines), lines[:5])
        assert any("metrics 127.0.0.1:%d: accept" % mport in l for l in lines), lines[:5]
        assert any("control %s: accept" % sock_path in l for l in lines), lines[:5]
        # Paused, not spinning (generous: the loop spun at 50-100 % before).
        assert cpu < 0.5 * took, (cpu, took)
    finally:
        resource.prlimit(mx.pid, resource.RLIMIT_NOFILE, old)
    # Descriptors again: the waiting clients are served, and new ones too.
    s = held[0]
    data = b""
    while len(data) < 100000:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    assert data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200"), data[:100]
    for h in held:
        h.close()
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
    rc, out, err = ctl(mx, "ping")
    assert rc == 0, err


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("strace"),
                    reason="needs root (run_as) and strace")
def test_control_socket_is_not_chmodded_by_path(tmp_path):
    """The socket is created 0660 run_as:run_as by bind itself: no chmod or
    chown by path (run_as owns the directory and could swap a symlink in)."""
    try:
        pw = pwd.getpwnam("mxguard")
    except KeyError:
        pytest.skip("system user mxguard missing: make deps creates it")
    top = tempfile.mkdtemp(prefix="mxguard-ctl-")
    os.chmod(top, 0o755)
    try:
        state = os.path.join(top, "state")
        sock = os.path.join(state, "control.sock")
        port = free_port()
        conf = os.path.join(top, "mxguard.conf")
        with open(conf, "w") as f:
            f.write("smtp_listen = 127.0.0.1:%d\nstate_dir = %s\nrun_as = mxguard\n"
                    "log_target = stderr\nmyhostname = mxguard.test\nclient_lists =\n"
                    "shutdown_timeout = 1s\n" % (port, state))
        trace = os.path.join(top, "trace")
        with open(os.path.join(top, "log"), "wb") as log:
            p = subprocess.Popen(["strace", "-f", "-o", trace, "-e",
                                  "trace=chmod,fchmodat,chown,fchownat,lchown,bind",
                                  str(mxguard_bin()), "-c", conf],
                                 stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and not is_listening(port):
                    assert p.poll() is None, open(os.path.join(top, "log")).read()
                    time.sleep(0.05)
                st = os.stat(sock)
                assert stat.S_ISSOCK(st.st_mode)
                assert stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
                assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid)
            finally:
                # SIGTERM to mxguard itself (strace's child); strace then exits.
                children = open("/proc/%d/task/%d/children" % (p.pid, p.pid)).read().split()
                for child in children:
                    os.kill(int(child), signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    for child in children:
                        os.kill(int(child), signal.SIGKILL)
                    p.kill()
                    p.wait(10)
                    raise
        calls = open(trace).read()
        assert 'bind(' in calls and sock in calls, calls[-2000:]
        by_path = [l for l in calls.splitlines()
                   if sock in l and re.search(r"\b(chmod|fchmodat|chown|fchownat|lchown)\(", l)]
        assert by_path == [], by_path
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_client_cannot_plant_log_fields(mxguard, postfix):
    """from=<...> and to=<...> are one word each: spaces and angle brackets
    inside them are escaped, so `verdict=clean` never stands as a field."""
    from test_targrey import BOT, engine, to_rcpt
    mx = engine(mxguard, postfix, tarpit_delay="1s")
    c, r, took = to_rcpt(mx, BOT, sender="a verdict=clean b@x", rcpt="u x verdict=white@example.test")
    c.close()
    line = mx.wait_for_log(r"(?m)^.*tarpit start client=127\.10\.0\.2 .*$").group(0)
    assert r"from=<a\x20verdict=clean\x20b@x>" in line, line
    assert r"to=<u\x20x\x20verdict=white@example.test>" in line, line
    fields = line.split(" info: ", 1)[1].split()
    assert "verdict=clean" not in fields and "verdict=white@example.test>" not in fields, fields
