#!/bin/sh
# SPDX-License-Identifier: MIT
# examples/game_of_life/check_modes.sh - run game_of_life in every mode with
# the same arguments and check each prints exactly what serial prints:
# check_modes.sh PROGRAM [ARGS...]
set -u
prog=$1
shift
serial=$("$prog" --mode serial "$@") || { echo "check_modes.sh: serial failed" >&2; exit 1; }
printf '%s\n' "$serial"
[ -n "$serial" ] || { echo "check_modes.sh: serial printed nothing" >&2; exit 1; }
for mode in threads queue queue2 pool coroutine; do
  out=$("$prog" --mode "$mode" "$@") || { echo "check_modes.sh: $mode failed" >&2; exit 1; }
  if [ "$out" != "$serial" ]; then
    echo "check_modes.sh: $mode differs from serial:" >&2
    printf '%s\n' "$out" >&2
    exit 1
  fi
  echo "check_modes.sh: $mode matches serial"
done
