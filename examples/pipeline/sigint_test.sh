#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/pipeline/sigint_test.sh - CTest check of `pipeline --until-signal`:
# start it, wait until it reports its SIGINT handler installed, send
# SIGINT with kill -INT, and require exit status 0 and the stop message.
# Usage: sigint_test.sh PIPELINE_PROGRAM [ARGS...]
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" --until-signal >"$out" 2>&1 &
pid=$!
# The "Running" line is printed after the handler is installed. Poll for it
# (up to 60 s; sanitizer builds start slowly).
i=0
until grep -q '^Running until SIGINT' "$out"; do
  i=$((i + 1))
  if [ "$i" -gt 600 ] || ! kill -0 "$pid" 2>/dev/null; then
    cat "$out"
    echo "sigint_test.sh: the program never reported it was running" >&2
    kill -KILL "$pid" 2>/dev/null
    exit 1
  fi
  sleep 0.1
done
kill -INT "$pid"
wait "$pid"
status=$?
cat "$out"
if [ "$status" -ne 0 ]; then
  echo "sigint_test.sh: exit status $status after SIGINT, expected 0" >&2
  exit 1
fi
if ! grep -Eq '^Stopped by SIGINT: [0-9]+ items finished, [0-9]+ put' "$out"; then
  echo "sigint_test.sh: no 'Stopped by SIGINT' line" >&2
  exit 1
fi
