#!/bin/sh
# cfgcheck.sh DIR MXGUARD - run `MXGUARD -n -c X.conf` for every X.conf in
# DIR and compare stdout+stderr and the exit status with X.ref. Paths in
# messages are shown relative to DIR so the .ref files are portable.
set -u
dir=$1
bin=$2
fail=0
n=0
for conf in "$dir"/*.conf; do
    name=$(basename "$conf" .conf)
    n=$((n + 1))
    got=$(cd "$dir" && "$bin" -n -c "$name.conf" -o myhostname=test.example 2>&1; echo "exit $?")
    if [ "$got" != "$(cat "$dir/$name.ref")" ]; then
        echo "FAIL $name"
        printf '%s\n' "$got" | diff -u "$dir/$name.ref" - || true
        fail=$((fail + 1))
    fi
done
echo "config: $n files, $fail failed"
[ "$fail" = 0 ]
