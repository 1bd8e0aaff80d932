"""Integration test harness for mxguard.

* `postfix` (session scope): a real Postfix 3.7 instance with its own
  configuration directory under /tmp (mode 0755 so that Postfix's
  unprivileged processes can enter it).  Three smtpd services on free
  loopback ports:
      proxy   -o smtpd_upstream_proxy_protocol=haproxy (PROXY v1 and v2)
      xclient plain smtpd; 127.0.0.1 is an authorized XCLIENT host
      plain   plain smtpd
  Mail for @example.test is delivered by virtual(8) into one Maildir
  (`postfix.maildir`), the log goes to `postfix.maillog` through postlogd.
  Outbound mail is impossible: default/relay/local transports are error:.

* `mxguard` (function scope): a factory; `mxguard(**params)` writes a
  config file, starts MXGUARD_BIN -c FILE, waits until the listener is up.
  At teardown every instance is stopped, and the test fails if the daemon's
  log shows an AddressSanitizer or UBSan report.

Environment:
  MXGUARD_BIN        binary under test (default build/mxguard, relative to
                     the repository root)
  MXGUARD_TEST_KEEP  keep the Postfix directory under /tmp after the run
"""

import os
import pwd
import grp
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mxgtest import (free_port, is_listening, wait_until, split_message, header_values, mxguard_bin)



def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def pytest_configure(config):
    # Children (mxguard, Postfix) inherit this.
    _raise_nofile()


# ---------------------------------------------------------------------------
# Postfix


# The internal services every test Postfix instance needs (no chroot:
# column 5 is n). Each instance adds its own listeners and delivery agents.
POSTFIX_INTERNAL_SERVICES = """\
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixError(Exception):
    pass


def _run(cmd, timeout=60, env=None, check=False):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env=env)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise PostfixError("%s -> exit %d\n%s" % (" ".join(map(str, cmd)), p.returncode, out))
    return p.returncode, out


class Postfix:
    """One private Postfix instance."""

    SERVICES = ("proxy", "xclient", "plain")

    def __init__(self, base):
        self.base = Path(base)
        self.config_dir = self.base / "etc"
        self.queue_dir = self.base / "spool"
        self.data_dir = self.base / "data"
        self.mail_base = self.base / "mail"
        self.maildir = self.mail_base / "inbox"
        self.maillog = self.base / "maillog"
        self.tls_dir = self.base / "tls"
        self.cert_file = self.tls_dir / "cert.pem"
        self.key_file = self.tls_dir / "key.pem"
        self.hostname = "backend.mxguard.test"
        self.banner = "%s ESMTP Postfix (mxguard-test)" % self.hostname
        self.ports = {}
        self.master_pid = None
        self._index = {}  # maildir file path -> Message-ID (or None)

    # -- set-up ----------------------------------------------------------

    @property
    def proxy_port(self):
        return self.ports["proxy"]

    @property
    def xclient_port(self):
        return self.ports["xclient"]

    @property
    def plain_port(self):
        return self.ports["plain"]

    def backend_for(self, protocol):
        """backend = value suited for a backend_protocol."""
        service = {"proxy2": "proxy", "proxy1": "proxy", "xclient": "xclient",
                   "none": "plain"}[protocol]
        return "127.0.0.1:%d" % self.ports[service]

    def _postconf_env(self):
        env = dict(os.environ)
        env["MAIL_CONFIG"] = str(self.config_dir)
        return env

    def _make_cert(self):
        self.tls_dir.mkdir(mode=0o755)
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
              "-subj", "/CN=%s" % self.hostname,
              "-addext", "subjectAltName=DNS:%s" % self.hostname,
              "-keyout", str(self.key_file), "-out", str(self.cert_file)], check=True)
        os.chmod(self.key_file, 0o600)
        os.chmod(self.cert_file, 0o644)

    def write_config(self):
        pw = pwd.getpwnam("postfix")
        uid, gid = pw.pw_uid, pw.pw_gid
        grp.getgrnam("postdrop")  # must exist: setgid_group
        for d in (self.config_dir, self.queue_dir):
            d.mkdir(mode=0o755)
        self.mail_base.mkdir(mode=0o755)
        os.chown(self.mail_base, uid, gid)
        self._make_cert()
        for name in self.SERVICES:
            self.ports[name] = free_port()
        b = self.base
        main_cf = f"""\
# generated by mxguard tests/integration/conftest.py
compatibility_level = 3.6
queue_directory = {self.queue_dir}
data_directory = {self.data_dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = {self.hostname}
mydomain = mxguard.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = {self.banner}
smtpd_peername_lookup = no
maillog_file = {self.maillog}
maillog_file_prefixes = {b}
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
# No mail may ever leave this instance.
default_transport = error:5.7.1 outbound mail disabled (mxguard test instance)
relay_transport = error:5.7.1 outbound mail disabled (mxguard test instance)
local_transport = error:5.7.1 local delivery disabled (mxguard test instance)
smtp_dns_support_level = disabled
notify_classes =
biff = no
virtual_mailbox_domains = example.test
virtual_mailbox_base = {self.mail_base}
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = {min(uid, 100)}
virtual_mailbox_limit = 0
mailbox_size_limit = 0
message_size_limit = 100000000
smtpd_authorized_xclient_hosts = 127.0.0.1
smtpd_tls_security_level = may
smtpd_tls_cert_file = {self.cert_file}
smtpd_tls_key_file = {self.key_file}
smtpd_tls_loglevel = 1
# master(8) listens with backlog max(service maxproc, default_process_limit):
# 1000 gives the smtpd services an accept queue for the 1,000-session test
# while their own maxproc stays 300 (master.cf).
default_process_limit = 1000
in_flow_delay = 0s
smtpd_error_sleep_time = 0s
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_upstream_proxy_timeout = 10s
delay_warning_time = 0h
# A killed smtpd (test_backend_failure) makes master(8) throttle the whole
# service ("bad command startup -- throttling") for service_throttle_time
# (default 60s): keep that short so later tests are not affected.
service_throttle_time = 1s
"""
        # No chroot anywhere (column 5 = n).
        master_cf = f"""\
# generated by mxguard tests/integration/conftest.py
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{self.ports['proxy']} inet n - n - 300 smtpd
  -o syslog_name=postfix/proxy
  -o smtpd_upstream_proxy_protocol=haproxy
127.0.0.1:{self.ports['xclient']} inet n - n - 300 smtpd
  -o syslog_name=postfix/xclient
127.0.0.1:{self.ports['plain']} inet n - n - 300 smtpd
  -o syslog_name=postfix/plain
virtual   unix  -       n       n       -       100     virtual
""" + POSTFIX_INTERNAL_SERVICES
        (self.config_dir / "main.cf").write_text(main_cf)
        (self.config_dir / "master.cf").write_text(master_cf)

    def postfix_cmd(self, *args, timeout=60):
        return _run(["postfix", "-c", str(self.config_dir)] + list(args), timeout=timeout,
                    env=self._postconf_env())

    def start(self):
        self.write_config()
        rc, check_out = self.postfix_cmd("check")
        if rc != 0:
            raise PostfixError("postfix check failed (exit %d):\n%s" % (rc, check_out))
        rc, out = self.postfix_cmd("start")
        if rc != 0:
            raise PostfixError("postfix start failed (exit %d):\n%s\n--- postfix check:\n%s\n"
                               "--- maillog:\n%s" % (rc, out, check_out, self.maillog_text()))
        pidfile = self.queue_dir / "pid" / "master.pid"
        try:
            wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 15,
                       what="Postfix master.pid")
            self.master_pid = int(pidfile.read_text().strip())
            wait_until(lambda: all(is_listening(p) for p in self.ports.values()), 15,
                       what="Postfix smtpd listeners %r" % self.ports)
        except AssertionError as e:
            self.stop()
            raise PostfixError("%s\n--- postfix start:\n%s\n--- postfix check:\n%s\n--- maillog:\n%s"
                               % (e, out, check_out, self.maillog_text()))

    def _session_pids(self):
        """Processes in the master's session (master runs setsid)."""
        pids = []
        if not self.master_pid:
            return pids
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % d) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            # fields[0] = state, [1] = ppid, [2] = pgrp, [3] = session
            if int(fields[3]) == self.master_pid:
                pids.append(int(d))
        return pids

    def stop(self):
        try:
            self.postfix_cmd("stop", timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            wait_until(lambda: not self._session_pids(), 10, what="Postfix processes to exit")
        except AssertionError:
            for pid in self._session_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                wait_until(lambda: not self._session_pids(), 5, what="Postfix processes to die")
            except AssertionError:
                pass

    # -- the log ---------------------------------------------------------

    def maillog_text(self):
        try:
            return self.maillog.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def maillog_tail(self, n=60):
        return "\n".join(self.maillog_text().splitlines()[-n:])

    def wait_for_log(self, pattern, timeout=10):
        """First match of regex `pattern` in the maillog (waits, bounded)."""
        rx = re.compile(pattern)

        def find():
            return rx.search(self.maillog_text())
        try:
            return wait_until(find, timeout, interval=0.1, what="maillog /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s\n--- maillog tail:\n%s" % (e, self.maillog_tail()))

    def queue_id_for(self, message_id, timeout=10):
        m = self.wait_for_log(r"cleanup\[\d+\]: ([0-9A-F]+): message-id=%s" % re.escape(message_id),
                              timeout)
        return m.group(1)

    def smtpd_client_for(self, message_id, timeout=10):
        """(service, 'name[addr]', addr) from the smtpd line `QID: client=...`
        of the message with this Message-ID."""
        qid = self.queue_id_for(message_id, timeout)
        m = self.wait_for_log(r"postfix/(\w+)/smtpd\[\d+\]: %s: client=([^\[\s]*)\[([^\]]*)\]" % qid,
                              timeout)
        return m.group(1), "%s[%s]" % (m.group(2), m.group(3)), m.group(3)

    # -- the Maildir ------------------------------------------------------

    def message_files(self):
        files = []
        for sub in ("new", "cur"):
            d = self.maildir / sub
            try:
                files.extend(str(d / n) for n in os.listdir(d))
            except FileNotFoundError:
                pass
        return files

    def _message_id_of(self, path):
        if path in self._index:
            return self._index[path]
        try:
            with open(path, "rb") as f:
                head = f.read(256 * 1024)
        except FileNotFoundError:
            return None
        idx = head.find(b"\n\n")
        headers = head if idx < 0 else head[:idx + 1]
        vals = header_values(headers, "Message-ID")
        mid = vals[0].strip() if vals else None
        self._index[path] = mid
        return mid

    def messages_by_id(self):
        out = {}
        for p in self.message_files():
            mid = self._message_id_of(p)
            out.setdefault(mid, []).append(p)
        return out

    def wait_for_messages(self, count, timeout=30):
        """Wait until the Maildir holds at least `count` messages; return all
        message file paths."""
        return wait_until(lambda: (lambda f: f if len(f) >= count else None)(self.message_files()),
                          timeout, interval=0.1, what="%d messages in %s" % (count, self.maildir))

    def wait_for_message_ids(self, message_ids, timeout=30):
        """Wait until every Message-ID is delivered; return {id: [paths]}."""
        want = set(message_ids)

        def check():
            by_id = self.messages_by_id()
            if want <= set(by_id):
                return {m: by_id[m] for m in want}
            return None
        try:
            return wait_until(check, timeout, interval=0.1,
                              what="%d messages delivered" % len(want))
        except AssertionError as e:
            missing = want - set(self.messages_by_id())
            raise AssertionError("%s; %d missing, e.g. %s\n--- maillog tail:\n%s"
                                 % (e, len(missing), sorted(missing)[:3], self.maillog_tail()))

    def wait_for_message(self, message_id, timeout=30):
        """(headers, body) of the single delivered message with this id."""
        paths = self.wait_for_message_ids([message_id], timeout)[message_id]
        assert len(paths) == 1, "message %s delivered %d times" % (message_id, len(paths))
        with open(paths[0], "rb") as f:
            return split_message(f.read())

    def wait_service_ok(self, service="proxy", timeout=15):
        """Wait until a service answers a session again (after a throttle)."""
        from mxgtest import RawSMTP, proxy_v2_header

        def ok():
            try:
                with RawSMTP(self.ports[service], source_ip="127.0.0.1", timeout=3) as c:
                    if service == "proxy":
                        c.send(proxy_v2_header("127.0.0.1", 1, "127.0.0.1", self.ports[service]))
                    if c.read_reply().code != 220:
                        return False
                    c.cmd("QUIT")
                    return True
            except (OSError, AssertionError, Exception):
                return False
        wait_until(ok, timeout, interval=0.2, what="Postfix %s service to answer" % service)

    def ehlo_keywords(self, service="plain"):
        """The EHLO keywords this Postfix offers to 127.0.0.1 on a service."""
        from mxgtest import RawSMTP, ehlo_keywords
        with RawSMTP(self.ports[service], source_ip="127.0.0.1") as c:
            assert c.read_reply().code == 220
            r = c.cmd("EHLO probe.test")
            c.cmd("QUIT")
        return ehlo_keywords(r)


@pytest.fixture(scope="session")
def postfix():
    # Up to three attempts: free_port() can race with another process
    # taking the port before master(8) binds it.
    for attempt in range(3):
        base = tempfile.mkdtemp(prefix="mxguard-it-", dir="/tmp")
        os.chmod(base, 0o755)
        pf = Postfix(base)
        try:
            pf.start()
            break
        except Exception as e:
            if not os.environ.get("MXGUARD_TEST_KEEP"):
                shutil.rmtree(base, ignore_errors=True)
            if attempt == 2 or "already in use" not in str(e):
                raise
    try:
        yield pf
    finally:
        pf.stop()
        if os.environ.get("MXGUARD_TEST_KEEP"):
            print("\nPostfix test instance kept in %s" % base)
        else:
            shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------
# mxguard

SANITIZER_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


class MxguardStartError(Exception):
    pass


class Mxguard:
    def __init__(self, workdir, params, extra_args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.params = dict(params)
        self.config_file = self.workdir / "mxguard.conf"
        self.log_file = self.workdir / "mxguard.log"
        self.extra_args = list(extra_args)
        # RLIMIT_NOFILE (soft and hard) for the daemon, when a test sets it.
        self.nofile = None
        self.proc = None
        self._logf = None
        self.killed = False

    @property
    def port(self):
        return int(self.params["smtp_listen"].rsplit(":", 1)[1])

    @property
    def myhostname(self):
        return self.params.get("myhostname")

    @property
    def pid(self):
        return self.proc.pid

    def write_config(self):
        lines = ["# generated by mxguard integration tests"]
        for k, v in self.params.items():
            lines.append("%s = %s" % (k, v))
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self, timeout=10):
        self.write_config()
        self._logf = open(self.log_file, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        nofile = self.nofile
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) \
            if nofile else None
        self.proc = subprocess.Popen([str(mxguard_bin()), "-c", str(self.config_file)] + self.extra_args,
                                     stdin=subprocess.DEVNULL, stdout=self._logf, stderr=self._logf,
                                     env=env, preexec_fn=limit)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MxguardStartError("mxguard exited with %s during start-up\n--- log:\n%s"
                                        % (self.proc.returncode, self.log()))
            if is_listening(self.port, pid=self.proc.pid) and self._control_ready():
                return self
            time.sleep(0.02)
        raise MxguardStartError("mxguard not listening on %s after %ss\n--- log:\n%s"
                                % (self.params["smtp_listen"], timeout, self.log()))

    def _control_ready(self):
        """The control socket takes connections too (it is opened after the
        SMTP listeners: a test that asks it at once must not race it)."""
        path = self.params.get("control_socket", "control.sock")
        # With command-line arguments the paths may be others (-c, -o): not known here.
        if not path or "state_dir" not in self.params or self.extra_args:
            return True
        if not os.path.isabs(path):
            path = os.path.join(self.params["state_dir"], path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            try:
                s.connect(path)
            except OSError:
                return False
        return True

    def log(self):
        try:
            return self.log_file.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_bytes(self):
        try:
            return self.log_file.read_bytes()
        except FileNotFoundError:
            return b""

    def close_lines(self):
        return [l for l in self.log().splitlines() if " close client=" in l]

    def wait_for_log(self, pattern, timeout=10):
        rx = re.compile(pattern)
        try:
            return wait_until(lambda: rx.search(self.log()), timeout, interval=0.05,
                              what="mxguard log /%s/" % pattern)
        except AssertionError as e:
            raise AssertionError("%s\n--- mxguard log:\n%s" % (e, self.log()[-4000:]))

    def close_line_for(self, client_id, timeout=10):
        """The `close client=ADDR:PORT ...` line for one client connection."""
        m = self.wait_for_log(r"(?m)^.* close client=%s .*$" % re.escape(client_id), timeout)
        return m.group(0)

    def set(self, **params):
        self.params.update({k: str(v) for k, v in params.items()})
        self.write_config()

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def terminate(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout=None):
        """SIGTERM and wait; returns the exit status (SIGKILL after timeout)."""
        if self.proc is None:
            return None
        if timeout is None:
            timeout = _seconds(self.params.get("shutdown_timeout", "30s")) + 10
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.killed = True
            self.proc.kill()
            self.proc.wait(10)
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.proc.returncode

    def sanitizer_report(self):
        text = self.log()
        for marker in SANITIZER_MARKERS:
            if marker in text:
                return text
        return None


def _seconds(v):
    m = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", str(v))
    if not m:
        return 30
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


# ---------------------------------------------------------------------------
# DNS: one dnsmasq on loopback for the whole run. mxguard never asks the
# machine's resolver (not on loopback): every instance gets dns_resolvers.

# Test sources of the taRgrey engine, 127.10.0.0/16 (never handed out by
# next_client_ip): verified names (PTR and A agree), a forged PTR, none.
DNS_HOSTS = {
    "127.10.0.1": "mx1.relay.example.test",        # clean server name
    "127.10.0.2": "a1-2-3.dyn.example.test",       # S25R r1: suspect
    "127.10.0.6": "p12-34.dyn.example.test",       # S25R r1: suspect
    "127.10.0.7": "q56-78.dyn.example.test",       # S25R r1: suspect
    "127.10.0.8": "r90-12.dyn.example.test",       # S25R r1: suspect
    "127.10.1.1": "mta1-23.out.bigsender.test",    # a pool, first /24
    "127.10.2.1": "mta4-56.out.bigsender.test",    # the same pool, another /24
}
DNS_FORGED = {"127.10.0.3": "forged.example.test"}  # PTR whose A points elsewhere
# DNSBL/DNSWL zones (A records only): 127.10.3.1 listed in bl (127.0.0.2)
# and in bl2 (127.0.0.3), 127.10.3.2 listed in wl (127.0.0.5), 127.10.3.3
# listed in bl with a code the tests filter out (127.0.0.99).
# NS records of sender domains (sender_ns_lists).
DNS_NS = {"spamco.test": "ns1.bulkdns.test", "goodco.test": "ns1.goodco.test"}


def _wire_name(name):
    """A domain name in DNS wire format, as hex (for dnsmasq --dns-rr)."""
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return (out + b"\0").hex()


DNS_ADDRESSES = {
    "1.3.10.127.bl.example.test": "127.0.0.2",
    "1.3.10.127.bl2.example.test": "127.0.0.3",
    "2.3.10.127.wl.example.test": "127.0.0.5",
    "3.3.10.127.bl.example.test": "127.0.0.99",
}
# 127.10.0.4, 127.10.0.5 and everything else in 127.10/16: no PTR (unknown).


class DnsMasq:
    def __init__(self, base):
        self.base = Path(base)
        self.port = free_port()
        self.proc = None

    def start(self):
        args = ["/usr/sbin/dnsmasq", "--no-daemon", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--user=root", "--pid-file=", "--local-ttl=600",
                # Unknown names get NXDOMAIN (not REFUSED): "no name", not "DNS down".
                "--local=/test/", "--local=/in-addr.arpa/", "--log-queries",
                "--log-facility=%s" % (self.base / "dnsmasq.log")]
        for ip, name in DNS_HOSTS.items():
            args.append("--host-record=%s,%s" % (name, ip))
        for name, ip in DNS_ADDRESSES.items():
            args.append("--address=/%s/%s" % (name, ip))
        for domain, ns in DNS_NS.items():
            args.append("--dns-rr=%s,2,%s" % (domain, _wire_name(ns)))
        for ip, name in DNS_FORGED.items():
            rev = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
            args.append("--ptr-record=%s,%s" % (rev, name))
            args.append("--host-record=%s,127.10.99.99" % name)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # Ready when it answers on TCP (it serves TCP and UDP alike).
        try:
            wait_until(lambda: self.proc.poll() is not None or is_listening(self.port), 10,
                       what="dnsmasq listening")
        except AssertionError:
            pass
        if self.proc.poll() is not None or not is_listening(self.port):
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
            raise RuntimeError("dnsmasq did not start on 127.0.0.1:%d: %s" % (self.port, err))
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="session")
def dnsmasq(tmp_path_factory):
    d = DnsMasq(tmp_path_factory.mktemp("dnsmasq")).start()
    yield d
    d.stop()


def _loopback_white(tmp_path):
    path = tmp_path / "loopback.cidr"
    if not path.exists():
        path.write_text("127.0.0.0/8 OK\n")
    return path


@pytest.fixture
def mxguard_workdir(tmp_path):
    return tmp_path


@pytest.fixture
def mxguard(tmp_path, request, dnsmasq):
    """Factory: mxguard(**params) -> running Mxguard.

    Always set: run_as = (empty), state_dir (temp dir), smtp_listen (a free
    127.0.0.1 port), log_target = stderr, myhostname = mxguard.test,
    shutdown_timeout = 3s, dns_resolvers = the session's dnsmasq, and
    client_lists whitelisting 127.0.0.0/8 so that tests of the foundation
    are not tarpitted (taRgrey tests set client_lists = ), and
    allow_clients = 127.0.0.0/8 so that the shield neither limits nor
    blocks them (shield tests narrow it); keyword
    arguments override/add parameters.
    extra_args=[...] adds command-line arguments."""
    if not mxguard_bin().exists():
        pytest.fail("mxguard binary %s does not exist (set MXGUARD_BIN)" % mxguard_bin())
    started = []

    def factory(extra_args=(), start=True, **params):
        n = len(started)
        workdir = tmp_path / ("mxguard%d" % n)
        workdir.mkdir()
        base = {
            "myhostname": "mxguard.test",
            "smtp_listen": "127.0.0.1:%d" % free_port(),
            "state_dir": str(workdir / "state"),
            "run_as": "",
            "log_target": "stderr",
            "shutdown_timeout": "3s",
            "dns_resolvers": "127.0.0.1:%d" % dnsmasq.port,
            "client_lists": "cidr:%s" % _loopback_white(tmp_path),
            "allow_clients": "127.0.0.0/8",
        }
        base.update({k: str(v) for k, v in params.items()})
        mx = Mxguard(workdir, base, extra_args)
        started.append(mx)
        if start:
            for attempt in range(3):
                try:
                    mx.start()
                    break
                except MxguardStartError as e:
                    # The free port was taken meanwhile: retry on another,
                    # unless the test chose the address itself.
                    if attempt == 2 or "smtp_listen" in params or "in use" not in str(e):
                        raise
                    mx.stop()
                    mx.params["smtp_listen"] = "127.0.0.1:%d" % free_port()
        return mx

    yield factory

    problems = []
    for mx in started:
        if mx.proc is None:
            continue
        rc = mx.stop()
        report = mx.sanitizer_report()
        if report:
            problems.append("sanitizer report in mxguard log (%s):\n%s" % (mx.log_file, report[-8000:]))
        if mx.killed:
            problems.append("mxguard did not exit after SIGTERM (killed)\n--- log:\n%s" % mx.log()[-4000:])
        elif rc is not None and rc < 0:
            problems.append("mxguard died with signal %d\n--- log:\n%s" % (-rc, mx.log()[-4000:]))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def client_ip():
    from mxgtest import next_client_ip
    return next_client_ip()


# ---------------------------------------------------------------------------
# A second Postfix as a real sending MTA (relays everything to mxguard)


class PostfixSender(Postfix):
    """A private Postfix that only sends: no smtpd listener at all, every
    message is relayed to `relayhost = [127.0.0.1]:PORT` from the source
    address `smtp_bind_address`.  Mail is injected with sendmail(1) -C DIR.

    Reuses Postfix's start/stop/log helpers; only the configuration differs.
    `main_cf` adds or overrides main.cf parameters (e.g. smtp_rcpt_timeout)."""

    SERVICES = ()

    def __init__(self, base, relay_port, source_ip, helo_name=None, main_cf=None):
        super().__init__(base)
        self.relay_port = int(relay_port)
        self.source_ip = source_ip
        self.hostname = "pfsender.client.test"
        self.helo_name = helo_name or self.hostname
        self.main_cf_extra = {k: str(v) for k, v in (main_cf or {}).items()}

    def write_config(self):
        grp.getgrnam("postdrop")  # must exist: setgid_group
        for d in (self.config_dir, self.queue_dir):
            d.mkdir(mode=0o755)
        b = self.base
        params = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": "client.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(b),
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relayhost": "[127.0.0.1]:%d" % self.relay_port,
            # Bounces (to the test senders' domain) never leave the instance.
            "transport_maps": "inline:{client.test=discard}",
            "local_transport": "discard",
            "smtp_bind_address": self.source_ip,
            "smtp_helo_name": self.helo_name,
            "smtp_tls_security_level": "none",
            "smtp_dns_support_level": "disabled",
            # One connection per delivery attempt: every retry is a new session.
            "smtp_connection_cache_on_demand": "no",
            "notify_classes": "",
            "biff": "no",
            "delay_warning_time": "0h",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
            "service_throttle_time": "1s",
            "message_size_limit": "100000000",
        }
        params.update(self.main_cf_extra)
        main_cf = "# generated by mxguard tests/integration/conftest.py (sending MTA)\n" + \
            "".join("%s = %s\n" % kv for kv in params.items())
        # No inet service at all: this instance only sends.  No chroot.
        master_cf = """\
# generated by mxguard tests/integration/conftest.py (sending MTA)
# service type  private unpriv  chroot  wakeup  maxproc command + args
pickup    unix  n       -       n       60      1       pickup
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
""" + POSTFIX_INTERNAL_SERVICES
        (self.config_dir / "main.cf").write_text(main_cf)
        (self.config_dir / "master.cf").write_text(master_cf)

    def start(self):
        super().start()
        # Ready for sendmail(1) when pickup's and qmgr's sockets exist.
        try:
            wait_until(lambda: (self.queue_dir / "public" / "pickup").exists()
                       and (self.queue_dir / "public" / "qmgr").exists(), 15,
                       what="Postfix sender pickup/qmgr sockets")
        except AssertionError as e:
            self.stop()
            raise PostfixError("%s\n--- maillog:\n%s" % (e, self.maillog_text()))
        return self

    def send(self, message, sender="sender@client.test", rcpts=("rcpt@example.test",),
             timeout=30):
        """Inject a message (bytes) with sendmail(1) -C DIR -f SENDER RCPT...;
        returns sendmail's output (raises on a non-zero exit)."""
        p = subprocess.run(["/usr/sbin/sendmail", "-C", str(self.config_dir), "-i",
                            "-f", sender, "--"] + list(rcpts),
                           input=message, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=self._postconf_env())
        out = p.stdout.decode("utf-8", "replace")
        if p.returncode != 0:
            raise PostfixError("sendmail exit %d: %s\n--- maillog:\n%s"
                               % (p.returncode, out, self.maillog_tail()))
        return out

    def deliveries(self, queue_id):
        """The smtp(8) delivery lines of one queue file, in log order."""
        rx = re.compile(r"(?m)^.*postfix/(?:smtp|relay)\[\d+\]: %s: to=<[^>]*>.*"
                        r"status=(\w+).*$" % re.escape(queue_id))
        return [(m.group(1), m.group(0)) for m in rx.finditer(self.maillog_text())]

    def wait_for_status(self, queue_id, status="sent", timeout=30):
        """Wait (bounded) for a `QID: to=<...> ... status=STATUS` line; returns
        every delivery line of that queue file as (status, line)."""
        def check():
            d = self.deliveries(queue_id)
            return d if any(s == status for s, _ in d) else None
        try:
            return wait_until(check, timeout, interval=0.1,
                              what="sender %s status=%s" % (queue_id, status))
        except AssertionError as e:
            raise AssertionError("%s\n--- sender maillog tail:\n%s" % (e, self.maillog_tail(80)))

    def queue_empty(self):
        rc, out = _run(["postqueue", "-c", str(self.config_dir), "-j"], timeout=20,
                       env=self._postconf_env())
        return rc == 0 and not out.strip()


@pytest.fixture
def postfix_sender():
    """Factory: postfix_sender(relay_port, source_ip, helo_name=None,
    **main_cf) -> a started PostfixSender relaying to [127.0.0.1]:relay_port
    from source_ip.  Every instance is stopped (its whole session killed if
    needed) and its directory removed at teardown (kept with
    MXGUARD_TEST_KEEP)."""
    started = []

    def factory(relay_port, source_ip, helo_name=None, **main_cf):
        base = tempfile.mkdtemp(prefix="mxguard-sender-", dir="/tmp")
        os.chmod(base, 0o755)
        pf = PostfixSender(base, relay_port, source_ip, helo_name, main_cf)
        started.append(pf)
        pf.start()
        return pf

    yield factory

    for pf in started:
        pf.stop()
        if os.environ.get("MXGUARD_TEST_KEEP"):
            print("\nPostfix sender instance kept in %s" % pf.base)
        else:
            shutil.rmtree(pf.base, ignore_errors=True)
