"""Every `name = value` example in etc/mxguard.conf.example (set or
commented out) and in mxguard.conf(5) passes `mxguard -n`, and the example
configuration starts (with the harness's ports and paths)."""
import re
import subprocess
from pathlib import Path

import pytest

from mxgtest import mxguard_bin, free_port, smtp_first_line, next_client_ip

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "etc" / "mxguard.conf.example"
MAN5 = REPO / "man" / "mxguard.conf.5"
LIST_SPEC = re.compile(r"\b(regexp|cidr|postgrey):(/[^\s,]+)")


def _known():
    r = subprocess.run([str(mxguard_bin()), "-n", "-a", "-o", "run_as=", "-c", "/dev/null"],
                       capture_output=True, text=True, timeout=20)
    return set(re.findall(r"^(\w+) =", r.stdout, re.M))


def example_file_settings():
    """(line, name, value) of every setting in the example, commented or not,
    continuation lines joined."""
    out, lines = [], EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"(#?)([a-z_0-9]+) = ?(.*)", line)
        if not m:
            continue
        value = m.group(3)
        for nxt in lines[i + 1:]:
            c = re.fullmatch(re.escape(m.group(1)) + r"([ \t]+\S.*)", nxt)
            # A commented example goes on only after a comma (else: prose).
            if not c or (m.group(1) and not value.rstrip().endswith(",")):
                break
            value += " " + c.group(1).strip()
        out.append((i + 1, m.group(2), value.strip()))
    return out


def man_settings():
    """(line, name, value): `.B "name = value"` anywhere and the lines of
    the .nf blocks of EXAMPLES; groff escapes undone."""
    out, in_examples, in_nf = [], False, False
    lines = MAN5.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            in_examples = line.strip() == ".SH EXAMPLES"
        if line.startswith(".nf"):
            in_nf = True
            continue
        if line.startswith(".fi"):
            in_nf = False
        text = None
        m = re.match(r'\.BR? "([a-z_0-9]+ = ?[^"]*)"', line)
        if m:
            text = m.group(1)
        elif in_examples and in_nf and re.match(r"[a-z_0-9]+ = ", line + " "):
            text = line
            for nxt in lines[i + 1:]:
                if not re.match(r"[ \t]+\S", nxt):
                    break
                text += " " + nxt.strip()
        if text is None:
            continue
        name, value = [p.strip() for p in text.replace("\\-", "-").split("=", 1)]
        if name.startswith("smtpd_"):  # Postfix's own parameters, in the text
            continue
        out.append((i + 1, name, value))
    return out


def _lists_in_tmp(value, tmp_path):
    """List files the example names under /etc: the tree's copy when it
    ships one, else an empty file under tmp_path."""
    def repl(m):
        shipped = REPO / "etc" / Path(m.group(2)).name
        if m.group(1) == "regexp" and shipped.exists():
            return "%s:%s" % (m.group(1), shipped)
        f = tmp_path / m.group(2).lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()
        return "%s:%s" % (m.group(1), f)
    return LIST_SPEC.sub(repl, value)


CASES = [("example:%d" % n, name, value) for n, name, value in example_file_settings()] + \
        [("man5:%d" % n, name, value) for n, name, value in man_settings()]


@pytest.mark.parametrize("where,name,value", CASES, ids=["%s:%s" % (w, n) for w, n, _ in CASES])
def test_example_value_passes_check(tmp_path, where, name, value):
    if name not in KNOWN and not name.startswith("service_"):
        pytest.fail("%s: %s is no mxguard parameter" % (where, name))
    base = _lists_in_tmp("regexp:/etc/mxguard/local_clients.regexp, "
                         "regexp:/etc/mxguard/whitelist_clients.regexp", tmp_path)
    r = subprocess.run([str(mxguard_bin()), "-n", "-c", str(EXAMPLE), "-o", "run_as=",
                        "-o", "client_lists=%s" % base,
                        "-o", "%s=%s" % (name, _lists_in_tmp(value, tmp_path))],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, "%s: %s = %s: %s" % (where, name, value, r.stderr)


KNOWN = _known() if mxguard_bin().exists() else set()


def test_examples_were_found():
    names = [n for _, n, _ in CASES]
    assert len(CASES) > 80 and "dnsbl_sites" in names and "service_imap" in names, names


def test_example_configuration_starts(mxguard, tmp_path):
    """The example as shipped, with only the harness's ports, paths and
    user: it starts, answers a client, and stops with status 0."""
    lists = _lists_in_tmp("regexp:/etc/mxguard/local_clients.regexp, "
                          "regexp:/etc/mxguard/whitelist_clients.regexp", tmp_path)
    port = free_port()
    overrides = {"smtp_listen": "127.0.0.1:%d" % port, "backend": "127.0.0.1:%d" % free_port(),
                 "state_dir": str(tmp_path / "state"), "control_socket": "control.sock",
                 "run_as": "", "client_lists": lists, "log_target": "stderr",
                 "allow_clients": "127.0.0.0/8", "myhostname": "mxguard.test"}
    args = ["-c", str(EXAMPLE)]
    for k, v in overrides.items():
        args += ["-o", "%s=%s" % (k, v)]
    # The last -c wins: the fixture's own file is not read, the example is.
    mx = mxguard(extra_args=args, smtp_listen="127.0.0.1:%d" % port)
    mx.wait_for_log(r"ready: mxguard ")
    assert smtp_first_line(mx.port, next_client_ip()).startswith("220-mxguard.test ")
    assert mx.stop() == 0
