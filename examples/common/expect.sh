#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/common/expect.sh - run a command and check its exit status and
# output: expect.sh STATUS [REGEX...] -- COMMAND [ARGS...]
# Passes only if COMMAND exits with exactly STATUS and every extended REGEX
# matches a line of its combined stdout+stderr (which is echoed for the log).
set -u
want=$1
shift
regexes=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  regexes="$regexes$1
"
  shift
done
[ $# -gt 0 ] || { echo "expect.sh: missing -- COMMAND" >&2; exit 99; }
shift
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$status" -ne "$want" ]; then
  echo "expect.sh: exit status $status, expected $want" >&2
  exit 1
fi
printf '%s' "$regexes" | while IFS= read -r re; do
  if ! printf '%s\n' "$out" | grep -Eq -- "$re"; then
    echo "expect.sh: no output line matches /$re/" >&2
    exit 1
  fi
done
