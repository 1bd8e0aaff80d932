#!/bin/bash
# run.sh - `make run`: mxguard in the foreground on its embedded defaults
# (SMTP on 127.0.0.1:2525, backend 127.0.0.1:25), but with its state under
# ./var (the embedded state_dir, /var/lib/mxguard, is the installed one).
#
# When nothing listens on the backend address, a Postfix smtp-sink is
# started there so that the whole path works out of the box; it accepts
# and discards mail, and is stopped when mxguard stops.
set -eu

bin=${1:-build/mxguard}
[ $# -gt 0 ] && shift
# Further arguments go to mxguard, e.g. -o default_action=inspect.
backend=$("$bin" -c /dev/null -o run_as= -n -a | sed -n 's/^backend = //p')
host=${backend%:*}
port=${backend##*:}
sink_pid=""
extra=""

cleanup() {
    [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
    echo "run: nothing listens on $backend: starting a local sink MTA (Postfix smtp-sink) there;"
    echo "run: it accepts and discards every message. Point 'backend' at your MTA to change that."
    user=""
    [ "$(id -u)" = 0 ] && user="-u postfix"
    /usr/sbin/smtp-sink $user "$host:$port" 256 &
    sink_pid=$!
    # smtp-sink reads no PROXY header: hand clients over without one.
    extra="-o backend_protocol=none"
    sleep 0.3
fi

echo "run: mxguard on 127.0.0.1:2525 (try: swaks --server 127.0.0.1:2525 --to you@example.org)"
# run_as = (empty) keeps the invoking user: fine for a trial, not for production.
# The shipped list of the big senders' pools, as the example configuration uses it.
root=$(cd "$(dirname "$0")/.." && pwd)
lists="regexp:$root/etc/whitelist_clients.regexp"
# State (and the control socket, state_dir/control.sock) in the tree, writable
# without root: `mxguardctl -s var/control.sock` reaches it.
"$bin" -c /dev/null -o run_as= -o "state_dir=$root/var" -o "client_lists=$lists" $extra "$@" &
mx_pid=$!
trap 'kill -TERM $mx_pid 2>/dev/null; wait $mx_pid; cleanup' INT TERM
wait $mx_pid
