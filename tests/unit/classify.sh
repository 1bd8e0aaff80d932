#!/bin/sh
# classify.sh DIR MXGUARDCTL - for every X.in in DIR, run
# `mxguardctl classify -c X.conf` on its lines (NAME [ADDR]; # comments)
# and compare output, diagnostics and exit status with X.ref.
set -u
dir=$1
bin=$2
fail=0
n=0
for in in "$dir"/*.in; do
    name=$(basename "$in" .in)
    n=$((n + 1))
    args=$(grep -v '^#' "$in" | tr '\n' ' ')
    # shellcheck disable=SC2086 # one word per name or address
    got=$(cd "$dir" && "$bin" classify -c "$name.conf" $args 2>&1; echo "exit $?")
    if [ "$got" != "$(cat "$dir/$name.ref")" ]; then
        echo "FAIL $name"
        printf '%s\n' "$got" | diff -u "$dir/$name.ref" - || true
        fail=$((fail + 1))
    fi
done
echo "classify: $n cases, $fail failed"
[ "$fail" = 0 ]
