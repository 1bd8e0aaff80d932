#!/bin/sh
# cfgcheck.sh DIR MXGUARD - run `MXGUARD -n -a -c X.conf` (every parameter)
# for every X.conf in DIR and compare stdout+stderr and the exit status with
# X.ref; where X.set.ref exists, also `MXGUARD -n -c X.conf` (only the
# parameters set, as postconf -n) against it. Paths in messages are shown
# relative to DIR so the .ref files are portable. run_as is overridden to
# empty so that the result does not depend on the machine's users.
set -u
dir=$1
bin=$2
fail=0
n=0
check() { # check NAME REF [OPTION]
    n=$((n + 1))
    got=$(cd "$dir" && "$bin" -n $3 -c "$1.conf" -o myhostname=test.example -o run_as= 2>&1
          echo "exit $?")
    if [ "$got" != "$(cat "$dir/$2")" ]; then
        echo "FAIL $2"
        printf '%s\n' "$got" | diff -u "$dir/$2" - || true
        fail=$((fail + 1))
    fi
}
for conf in "$dir"/*.conf; do
    name=$(basename "$conf" .conf)
    check "$name" "$name.ref" -a
    [ ! -e "$dir/$name.set.ref" ] || check "$name" "$name.set.ref" ""
done
echo "config: $n checks, $fail failed"
[ "$fail" = 0 ]
