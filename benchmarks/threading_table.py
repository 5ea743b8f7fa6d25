#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# benchmarks/threading_table.py - turn threading_bench's JSON output into the
# README's table: median M operations/s of each spindle primitive beside the
# std one, per thread count, and their ratio (issue 10 targets >= 1.0 in
# every row).
# Usage: threading_table.py threading_bench.json
#
# Reads the "median" aggregates when the run had repetitions, plain runs
# otherwise (then the median of the runs that share a name).
import json
import re
import statistics
import sys

PAIRS = [
    ("Mutex", "spindle::Lock", "std::mutex"),
    ("Recursive", "spindle::RLock", "std::recursive_mutex"),
    ("Semaphore", "spindle::Semaphore", "std::counting_semaphore"),
    ("Condition", "spindle::Condition", "std::condition_variable"),
    ("Barrier", "spindle::Barrier", "std::barrier"),
]
NAME = re.compile(r"^BM_(\w+)_(.+?)/real_time/threads:(\d+)(?:_(\w+))?$")


def load(path):
    with open(path) as f:
        data = json.load(f)
    aggregated = any(b.get("run_type") == "aggregate" for b in data["benchmarks"])
    rates = {}
    errors = {}
    for b in data["benchmarks"]:
        m = NAME.match(b["name"])
        if not m:
            continue
        scenario, contender, threads, aggregate = m.groups()
        key = (scenario, contender, int(threads))
        if b.get("error_occurred"):
            errors[key] = b.get("error_message", "error")
            continue
        if aggregated and aggregate != "median":
            continue
        rates.setdefault(key, []).append(b["items_per_second"] / 1e6)
    return {k: statistics.median(v) for k, v in rates.items()}, errors


def main():
    rates, errors = load(sys.argv[1])
    print("| primitive | std peer | threads | spindle M ops/s | std M ops/s | ratio |")
    print("|---|---|---|---|---|---|")
    worst = None
    failed = False
    for scenario, ours, theirs in PAIRS:
        for threads in (1, 2, 4, 8):
            a = rates.get((scenario, ours, threads))
            b = rates.get((scenario, theirs, threads))
            for who in (ours, theirs):
                if (scenario, who, threads) in errors:
                    print(f"ERROR {scenario} {who} threads:{threads}: "
                          f"{errors[(scenario, who, threads)]}")
                    failed = True
            if a is None or b is None:
                continue
            ratio = a / b
            worst = ratio if worst is None else min(worst, ratio)
            print(f"| `{ours}` | `{theirs}` | {threads} | {a:.3f} | {b:.3f} | {ratio:.2f}× |")
    if worst is not None:
        print(f"\nlowest ratio: {worst:.2f}× (target: >= 1.0 in every row)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
