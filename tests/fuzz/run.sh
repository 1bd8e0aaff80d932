#!/bin/sh
# run.sh BUILDDIR RUNS - run every fuzz target for RUNS inputs, starting from
# its checked-in seeds (copied: libFuzzer writes new inputs into its corpus).
set -eu
build=$1
runs=$2
here=$(dirname "$0")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
n=0
for seeds in "$here"/seeds/*; do
    name=$(basename "$seeds")
    n=$((n + 1))
    mkdir -p "$work/$name"
    cp "$seeds"/* "$work/$name"/
    if "$build/tests/fuzz/fuzz_$name" -runs="$runs" -max_len=4096 -max_total_time=60 \
        "$work/$name" >"$work/$name.log" 2>&1; then
        echo "fuzz_$name: ok ($(grep -o 'Done [0-9]* runs' "$work/$name.log" || echo 'done'))"
    else
        echo "fuzz_$name: FAILED"; tail -40 "$work/$name.log"; fail=$((fail + 1))
    fi
done
echo "fuzz: $n targets, $fail failed"
[ "$fail" = 0 ]
