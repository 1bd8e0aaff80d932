"""Client-side helpers shared by the mxguard integration tests.

Everything here talks to loopback addresses only.  Each test client gets its
own 127.x.y.z source address (see next_client_ip) so that the backend's log
can be matched against the real client address.
"""

import itertools
import json
import os
import re
import smtplib
import socket
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def mxguard_bin():
    """The binary under test: $MXGUARD_BIN (default build/mxguard), relative
    paths taken from the repository root."""
    p = Path(os.environ.get("MXGUARD_BIN", "build/mxguard"))
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p

# ---------------------------------------------------------------------------
# addresses and ports

_ip_lock = threading.Lock()
# The second octet depends on the pid so that two runs close together do not
# reuse the same source addresses (makes stale maillog lines harmless too).
_SECOND_OCTET = 20 + (os.getpid() % 100)
_ip_counter = itertools.count(1)


def next_client_ip():
    """A fresh 127.S.x.y address (S fixed per test run), never 127.0.0.1."""
    with _ip_lock:
        n = next(_ip_counter)
    if n >= 250 * 250:
        raise RuntimeError("client address space exhausted")
    return "127.%d.%d.%d" % (_SECOND_OCTET, n // 250, n % 250 + 1)


def client_ip_block(count):
    """`count` fresh distinct client addresses."""
    return [next_client_ip() for _ in range(count)]


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening_sockets(path="/proc/net/tcp"):
    """(hex address, port, inode) of every listening TCP socket."""
    out = []
    try:
        with open(path) as f:
            next(f)
            for line in f:
                parts = line.split()
                if len(parts) < 10 or parts[3] != "0A":  # TCP_LISTEN
                    continue
                addr, port = parts[1].split(":")
                out.append((addr, int(port, 16), parts[9]))
    except FileNotFoundError:
        pass
    return out


def _socket_inodes(pid):
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return inodes
    for n in names:
        try:
            target = os.readlink(os.path.join(fd_dir, n))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def is_listening(port, host="127.0.0.1", pid=None):
    """True when a socket listens on host:port (checked via /proc/net/tcp,
    so that no connection is made and no session is logged).  With pid,
    the listening socket must belong to that process."""
    want = socket.inet_aton(host)[::-1].hex().upper()  # little-endian hex
    for addr, p, inode in _listening_sockets():
        if p == port and addr in (want, "00000000"):
            if pid is None or inode in _socket_inodes(pid):
                return True
    return False


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value (returned) or the
    timeout expires (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------------------------
# messages

def new_message_id(tag="t"):
    return "<%s.%s@mxguard-test.example>" % (tag, uuid.uuid4().hex)


def make_message(message_id, subject="mxguard test", body=None, sender="sender@client.test",
                 rcpt="user@example.test"):
    """A small RFC 5322 message as bytes with CRLF line ends."""
    if body is None:
        body = "Hello from the mxguard integration tests.\r\nid %s\r\n" % message_id
    if isinstance(body, str):
        body = body.encode()
    head = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: %s\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n" % (sender, rcpt, subject, message_id))
    return head.encode() + body


def split_message(raw):
    """(headers, body) of a stored message: LF or CRLF line ends."""
    raw = raw.replace(b"\r\n", b"\n")
    idx = raw.find(b"\n\n")
    if idx < 0:
        return raw, b""
    return raw[:idx + 1], raw[idx + 2:]


def header_values(headers, name):
    """All values of header `name` (unfolded) from header bytes."""
    out = []
    cur = None
    for line in headers.split(b"\n"):
        if line[:1] in (b" ", b"\t") and cur is not None:
            cur += b" " + line.strip()
            continue
        if cur is not None:
            out.append(cur)
            cur = None
        m = re.match(rb"([!-9;-~]+):\s*(.*)", line)
        if m and m.group(1).lower() == name.lower().encode():
            cur = m.group(2)
    if cur is not None:
        out.append(cur)
    return [v.decode("latin-1") for v in out]


# ---------------------------------------------------------------------------
# SMTP clients

def smtp_client(port, source_ip=None, timeout=20, host="127.0.0.1", local_hostname="client.test"):
    """smtplib.SMTP connected to host:port from source_ip (a fresh address
    when None).  Returns (smtp, greeting_code, greeting_text, source_ip)."""
    if source_ip is None:
        source_ip = next_client_ip()
    s = smtplib.SMTP(local_hostname=local_hostname, timeout=timeout,
                     source_address=(source_ip, 0))
    s._host = "backend.mxguard.test"  # SNI for starttls(); never verified
    code, msg = s.connect(host, port)
    return s, code, msg, source_ip


class SMTPReply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines  # list of str, without the "NNN-" prefix

    @property
    def text(self):
        return "\n".join(self.lines)

    raw = ()

    def __repr__(self):
        return "SMTPReply(%r, %r)" % (self.code, list(self.raw) or self.lines)


class ConnectionClosed(Exception):
    pass


class RawSMTP:
    """A byte-level SMTP client: send exactly what the test wants, read
    replies with explicit time bounds."""

    def __init__(self, port, source_ip=None, timeout=10.0, host="127.0.0.1", connect=True):
        self.source_ip = source_ip or next_client_ip()
        self.port = port
        self.host = host
        self.timeout = timeout
        self.buf = b""
        self.raw_in = b""
        self.bytes_sent = 0
        self.sock = None
        if connect:
            self.connect()

    def connect(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((self.source_ip, 0))
        self.sock.settimeout(self.timeout)
        self.sock.connect((self.host, self.port))
        self._local = self.sock.getsockname()
        return self

    @property
    def local_port(self):
        return self._local[1]

    @property
    def client_id(self):
        """"ADDR:PORT" of the client side, as mxguard logs it."""
        return "%s:%d" % self._local

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)
        self.bytes_sent += len(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no complete reply before deadline")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosed("connection closed by peer; partial=%r" % self.buf)
        self.buf += chunk
        self.raw_in += chunk

    def read_line(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise AssertionError("reply line longer than 1 MiB")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def read_reply(self, timeout=None, strict=True):
        """Read one complete (possibly multi-line) reply.  strict=False
        accepts a code change between lines (e.g. "220-" greeting line
        followed by "421 ..."): the code of the last line counts, and
        `raw` holds every full line."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        lines = []
        raw = []
        code = None
        for _ in range(1000):
            line = self.read_line(max(0.0, deadline - time.monotonic()) or 0.001)
            line = line.rstrip(b"\r").decode("utf-8", "replace")
            m = re.match(r"(\d{3})([ -]?)(.*)", line)
            if not m:
                raise AssertionError("malformed reply line %r (so far %r)" % (line, raw))
            if strict and code is not None and int(m.group(1)) != code:
                raise AssertionError("reply code changed within reply: %r after %r" % (line, raw))
            code = int(m.group(1))
            lines.append(m.group(3))
            raw.append(line)
            if m.group(2) != "-":
                r = SMTPReply(code, lines)
                r.raw = raw
                return r
        raise AssertionError("reply with more than 1000 lines")

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.read_reply(timeout)

    def read_all_replies_until_close(self, timeout=10.0):
        """Replies received until the peer closes; AssertionError when the
        connection is still open at the deadline."""
        deadline = time.monotonic() + timeout
        replies = []
        for _ in range(100):
            try:
                replies.append(self.read_reply(max(0.001, deadline - time.monotonic()), strict=False))
            except ConnectionClosed:
                if self.buf.strip():
                    raise AssertionError("partial reply before close: %r" % self.buf)
                return replies
            except ConnectionResetError:
                return replies
            except socket.timeout:
                raise AssertionError("connection still open after %.1fs; replies %r" % (timeout, replies))
        raise AssertionError("too many replies")

    def is_closed(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within timeout without
        sending anything more."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def send_message_data(self, message):
        """DATA payload with dot-stuffing and the final dot."""
        if isinstance(message, str):
            message = message.encode()
        message = re.sub(rb"(?<!\r)\n", b"\r\n", message)
        if not message.endswith(b"\r\n"):
            message += b"\r\n"
        message = re.sub(rb"(?m)^\.", b"..", message)
        self.send(message + b".\r\n")

    def reset(self):
        """Close with a TCP RST."""
        import struct
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def ehlo_keywords(reply):
    """Upper-case EHLO keywords (first word of every line after the first)."""
    return [l.split()[0].upper() for l in reply.lines[1:] if l.strip()]


def full_session(port, source_ip=None, message_id=None, helo="client.test", rcpt="user@example.test",
                 timeout=20):
    """One plain session through port: greeting, EHLO, MAIL, RCPT, DATA,
    QUIT, checking each reply code.  Returns (message_id, source_ip, replies)."""
    message_id = message_id or new_message_id("full")
    c = RawSMTP(port, source_ip=source_ip, timeout=timeout)
    replies = {}
    try:
        replies["greeting"] = g = c.read_reply()
        assert g.code == 220, g
        replies["ehlo"] = r = c.cmd("EHLO " + helo)
        assert r.code == 250, r
        replies["mail"] = r = c.cmd("MAIL FROM:<sender@client.test>")
        assert r.code == 250, r
        replies["rcpt"] = r = c.cmd("RCPT TO:<%s>" % rcpt)
        assert r.code == 250, r
        replies["data"] = r = c.cmd("DATA")
        assert r.code == 354, r
        c.send_message_data(make_message(message_id, rcpt=rcpt))
        replies["dot"] = r = c.read_reply()
        assert r.code == 250, r
        replies["quit"] = r = c.cmd("QUIT")
        assert r.code == 221, r
    finally:
        c.close()
    return message_id, c.source_ip, replies


# ---------------------------------------------------------------------------
# PROXY protocol headers (for the harness self-test against Postfix)

def proxy_v1_header(src, sport, dst, dport):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, dst, sport, dport)).encode()


def proxy_v2_header(src, sport, dst, dport):
    import struct
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addr)) + addr


# ---------------------------------------------------------------------------
# scripted fake backends


class FakeBackend:
    """A scripted TCP "MTA" on a free 127.0.0.1 port.

    mode "silent":          accept and never send a byte
    mode "die_after_mail":  220 greeting, answer EHLO/HELO/NOOP with 250,
                            then at MAIL close abruptly (how="rst": TCP RST,
                            how="fin": normal close)
    Every loop is bounded by a stop flag and a hard deadline."""

    LIFETIME = 120.0

    def __init__(self, mode, how="rst"):
        self.mode = mode
        self.how = how
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.accepted = 0
        self.received = []  # bytes received per connection
        self._stop = threading.Event()
        self._deadline = time.monotonic() + self.LIFETIME
        self._threads = []
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)

    def _running(self):
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _accept_loop(self):
        while self._running() and self.accepted < 100:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            idx = len(self.received)
            self.received.append(b"")
            t = threading.Thread(target=self._serve, args=(conn, idx), daemon=True)
            t.start()
            self._threads.append(t)

    def _recv(self, conn, idx):
        try:
            data = conn.recv(65536)
        except socket.timeout:
            return None
        except OSError:
            return b""
        self.received[idx] += data
        return data

    def _serve(self, conn, idx):
        import struct
        conn.settimeout(0.1)
        try:
            if self.mode == "silent":
                while self._running():
                    if self._recv(conn, idx) == b"":
                        return
                return
            conn.sendall(b"220 fake.backend.test ESMTP fake\r\n")
            buf = b""
            while self._running():
                data = self._recv(conn, idx)
                if data == b"":
                    return
                if data is None:
                    continue
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    verb = line.strip().split(b" ")[0].upper()
                    if verb == b"EHLO":
                        conn.sendall(b"250-fake.backend.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                    elif verb in (b"HELO", b"NOOP", b"RSET"):
                        conn.sendall(b"250 ok\r\n")
                    elif verb == b"MAIL":
                        if self.how == "rst":
                            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                            struct.pack("ii", 1, 0))
                        conn.close()
                        return
                    else:
                        conn.sendall(b"502 5.5.2 fake: not here\r\n")
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def close(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for t in self._threads:
            t.join(2)


_held_ports = []


def unused_port():
    """A loopback port where connections are refused, for the rest of the
    run: a socket is bound to it but never listens, so no other program of
    the run can take the port meanwhile (a released port can be reused at
    once, and a test expecting "refused" would then talk to a stranger)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    _held_ports.append(s)
    return s.getsockname()[1]


# ---------------------------------------------------------------------------
# Raw connections for the shield's tests, and the kernel's counters


def probe(port, source_ip, timeout=3.0, send=None, host="127.0.0.1"):
    """Connect from source_ip to host:port, optionally send bytes, and read
    one line: ("data", bytes), ("reset", b""), ("eof", b"") or ("timeout",
    bytes read so far)."""
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    try:
        try:
            s.connect((host, port))
            if send:
                s.sendall(send)
        except ConnectionResetError:
            # On loopback the reset can come before connect() returns.
            return ("reset", b"")
        data = b""
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                return ("reset", data)
            except socket.timeout:
                return ("timeout" if not data else "data", data)
            if not chunk:
                return ("eof" if not data else "data", data)
            data += chunk
            if data.endswith(b"\r\n"):
                return ("data", data)
    finally:
        s.close()


def smtp_first_line(port, source_ip):
    """The first line a client from source_ip gets on port (empty if none)."""
    kind, data = probe(port, source_ip)
    return data.split(b"\r\n")[0].decode(errors="replace")


def netstat():
    """The TcpExt counters of /proc/net/netstat, by name."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    out = {}
    for names, values in zip(lines[0::2], lines[1::2]):
        n, v = names.split(), values.split()
        if n[0] == "TcpExt:":
            out.update(zip(n[1:], (int(x) for x in v[1:])))
    return out


def control(mx, line, timeout=10):
    """One request on mx's control socket; the parsed JSON answer."""
    path = os.path.join(mx.params["state_dir"], "control.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return json.loads(data.decode())
