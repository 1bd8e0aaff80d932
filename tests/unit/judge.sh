#!/bin/sh
# judge.sh DIR TEST_JUDGE - run TEST_JUDGE on DIR/cases.in and compare its
# output with DIR/cases.ref.
set -u
# Run inside DIR: the reasons name the list files relative to it.
bin=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
got=$(cd "$1" && "$bin" . cases.in 2>&1; echo "exit $?")
if [ "$got" != "$(cat "$1/cases.ref")" ]; then
    printf '%s\n' "$got" | diff -u "$1/cases.ref" -
    exit 1
fi
echo "judge: ok"
