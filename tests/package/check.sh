#!/bin/sh
# check.sh - install the Debian package built by `make deb` (dist/) on this
# machine with dpkg -i, check what it installed, start the installed daemon
# once on a loopback port, then dpkg -r and dpkg -P and check what each
# leaves. CI runs it after `make deb`; it runs alone too (as root).
#
# It refuses to run where mxguard is already installed (package or
# `make install`: /var/lib/mxguard exists), since the purge removes
# /var/lib/mxguard and the user mxguard. A user mxguard that existed before
# (scripts/deps.sh creates it for the tests) is created again at the end.
set -eu
cd "$(dirname "$0")/../.."

fail() {
    echo "package check: FAIL: $*" >&2
    exit 1
}
ok() {
    echo "package check: ok: $*"
}

[ "$(id -u)" = 0 ] || fail "must run as root (dpkg -i)"
deb=$(ls dist/mxguard_*.deb 2>/dev/null | sort | tail -n 1)
[ -n "$deb" ] || fail "no dist/mxguard_*.deb: run make deb first"
if dpkg-query -W -f='${Status}' mxguard 2>/dev/null | grep -q "ok installed"; then
    fail "the mxguard package is already installed here; not touching it"
fi
[ ! -e /var/lib/mxguard ] || fail "/var/lib/mxguard exists (make install?); the purge would remove it"
[ ! -e /etc/mxguard ] || fail "/etc/mxguard exists (make install?); not mixing it with the package"

user_before=0
getent passwd mxguard >/dev/null && user_before=1
tmp=$(mktemp -d)
mx_pid=""
cleanup() {
    [ -n "$mx_pid" ] && kill "$mx_pid" 2>/dev/null || true
    if dpkg-query -W -f='${Status}' mxguard 2>/dev/null | grep -q "installed\|config-files"; then
        echo "package check: purging after a failure"
        dpkg -P mxguard >/dev/null 2>&1 || true
    fi
    if [ "$user_before" = 1 ] && ! getent passwd mxguard >/dev/null; then
        # As scripts/deps.sh creates it, for the tests that drop to it.
        useradd --system --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin mxguard
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "package check: dpkg -i $deb"
if ! dpkg -i "$deb"; then
    echo "package check: dpkg -i failed: apt-get install -f for missing dependencies"
    DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq --no-install-recommends
fi
dpkg-query -W -f='${Status}' mxguard | grep -q "install ok installed" ||
    fail "mxguard not installed: $(dpkg-query -W -f='${Status}' mxguard)"
ok "installed $(dpkg-query -W -f='${Version}' mxguard)"

/usr/sbin/mxguard -n -a >"$tmp/n.out" 2>&1 || fail "mxguard -n -a: $(cat "$tmp/n.out")"
grep -q '^state_dir = /var/lib/mxguard$' "$tmp/n.out" || fail "mxguard -n: no state_dir line"
ok "/usr/sbin/mxguard -n exits 0 with the packaged /etc/mxguard/mxguard.conf"

# classify reads the packaged configuration and its lists (the shipped
# whitelist names Google's pool); no daemon needed.
/usr/sbin/mxguardctl classify mail-gx0-f21.google.com mx.example.com unknown \
    >"$tmp/c.out" 2>&1 || fail "mxguardctl classify: $(cat "$tmp/c.out")"
ok "mxguardctl classify: $(head -n 1 "$tmp/c.out")"

getent passwd mxguard >/dev/null || fail "no user mxguard"
st=$(stat -c '%U:%a' /var/lib/mxguard) || fail "no /var/lib/mxguard"
[ "$st" = "mxguard:750" ] || fail "/var/lib/mxguard is $st, not mxguard:750"
ok "/var/lib/mxguard is mxguard, 0750"
for f in /lib/systemd/system/mxguard.service /usr/lib/tmpfiles.d/mxguard.conf \
    /etc/mxguard/whitelist_clients.regexp /etc/mxguard/local_clients.regexp \
    /usr/share/man/man8/mxguard.8.gz /usr/share/man/man5/mxguard.conf.5.gz; do
    [ -f "$f" ] || fail "missing $f"
done
grep -q '^ExecStart=/usr/sbin/mxguard -c /etc/mxguard/mxguard.conf$' \
    /lib/systemd/system/mxguard.service || fail "unit ExecStart is not /usr/sbin/mxguard"
[ ! -e /etc/systemd/system/multi-user.target.wants/mxguard.service ] ||
    fail "the unit was enabled at install (see debian/README.Debian)"
ok "unit installed, not enabled"

# The installed daemon, as root dropping to mxguard, on a free loopback port
# with the packaged state directory and control socket: it must start
# without chowning anything and answer on its control socket.
if [ -d /run/mxguard ]; then
    ok "/run/mxguard made by tmpfiles: $(stat -c '%U:%a' /run/mxguard)"
else
    echo "package check: no /run/mxguard (no systemd-tmpfiles here): mxguard creates it"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/mxguard -o "smtp_listen=127.0.0.1:$port" -o metrics_listen= \
    -o backend=127.0.0.1:9 >"$tmp/mx.log" 2>&1 &
mx_pid=$!
i=0
until grep -q "info: ready" "$tmp/mx.log"; do
    i=$((i + 1))
    [ $i -le 100 ] || fail "installed mxguard not ready in 10 s: $(cat "$tmp/mx.log")"
    kill -0 "$mx_pid" 2>/dev/null || fail "installed mxguard exited: $(cat "$tmp/mx.log")"
    sleep 0.1
done
/usr/sbin/mxguardctl status >"$tmp/s.out" 2>&1 || fail "mxguardctl status: $(cat "$tmp/s.out")"
st=$(stat -c '%U:%a' /var/lib/mxguard)
[ "$st" = "mxguard:750" ] || fail "/var/lib/mxguard became $st after start"
kill -TERM "$mx_pid"
wait "$mx_pid" || fail "installed mxguard exit status $? after SIGTERM: $(cat "$tmp/mx.log")"
mx_pid=""
ok "installed mxguard started, answered mxguardctl status, stopped"

dpkg -r mxguard
[ ! -e /usr/sbin/mxguard ] && [ ! -e /usr/sbin/mxguardctl ] || fail "binaries left after dpkg -r"
[ -f /etc/mxguard/mxguard.conf ] || fail "dpkg -r removed the conffile"
[ -d /var/lib/mxguard ] || fail "dpkg -r removed /var/lib/mxguard"
ok "dpkg -r: programs gone, configuration and state kept"

dpkg -P mxguard
[ ! -e /etc/mxguard ] || fail "/etc/mxguard left after dpkg -P"
[ ! -e /var/lib/mxguard ] || fail "/var/lib/mxguard left after dpkg -P"
! getent passwd mxguard >/dev/null || fail "user mxguard left after dpkg -P"
ok "dpkg -P: configuration, state and user gone"
echo "package check: all passed"
