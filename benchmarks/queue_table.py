#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# benchmarks/queue_table.py - turn queue_bench's JSON output into the markdown
# table of issue 2 (median Mitems/s, ping-pong µs with its min-max, idle CPU),
# issue 9's oversubscribed batch rows, and the ratios both target.
# Usage: queue_table.py queue_bench.json
#
# Reads the "median" aggregates when the run had repetitions, plain runs
# otherwise (then the median of whatever runs share a name).
import json
import statistics
import sys

CONTENDERS = [
    ("ClosableQueueBounded", "spindle ClosableQueue, bounded (1024)"),
    ("ClosableQueueUnbounded", "spindle ClosableQueue, unbounded"),
    ("Baseline", "mutex + condvar + deque baseline, bounded (1024)"),
    ("BaselineUnbounded", "mutex + condvar + deque baseline, unbounded"),
    ("TbbBoundedQueue", "oneTBB concurrent_bounded_queue (1024)"),
    ("BoostSyncBoundedQueue", "Boost.Thread sync_bounded_queue (1024, closable)"),
    ("BoostFiberChannel", "Boost.Fiber buffered_channel (1024, closable)"),
    ("Moodycamel", "moodycamel BlockingConcurrentQueue (unbounded, no close)"),
    ("MoodycamelTokens", "the same with producer/consumer tokens"),
]
SHAPES = ["1p1c", "2p2c", "4p4c"]
# Issue 9: more threads than cores, threads started per batch of items.
BATCH_SHAPES = ["Batch1p4c", "Batch4p4c", "Batch8p8c"]
BATCH_CONTENDERS = ["ClosableQueueBounded", "BoostFiberChannel", "Baseline"]
IDLE_CPU_LIMIT_US = 1000.0  # "burns no CPU after a short spin": < 2% of a 50 ms wait


def load(path):
    with open(path) as f:
        data = json.load(f)
    runs = {}  # (contender, scenario) -> list of result dicts
    cvs = {}   # (contender, scenario) -> list of "cv" aggregates
    extremes = {}  # (contender, scenario, "min"/"max") -> list of result dicts
    errors = {}
    has_aggregates = any(b.get("run_type") == "aggregate" for b in data["benchmarks"])
    for b in data["benchmarks"]:
        if b.get("error_occurred"):
            name = b["name"].split("/")[0]
            errors[name] = b.get("error_message", "error")
            continue
        if has_aggregates and b.get("aggregate_name") == "cv":
            name = b.get("run_name", b["name"]).split("/")[0]
            contender, _, scenario = name[3:].rpartition("_")
            cvs.setdefault((contender, scenario), []).append(b)
            continue
        if has_aggregates and b.get("aggregate_name") in ("min", "max"):
            name = b.get("run_name", b["name"]).split("/")[0]
            contender, _, scenario = name[3:].rpartition("_")
            extremes.setdefault((contender, scenario, b["aggregate_name"]), []).append(b)
            continue
        if has_aggregates and b.get("aggregate_name") != "median":
            continue
        if not has_aggregates and b.get("run_type") == "aggregate":
            continue
        name = b.get("run_name", b["name"]).split("/")[0]
        if not name.startswith("BM_"):
            continue
        contender, _, scenario = name[3:].rpartition("_")
        runs.setdefault((contender, scenario), []).append(b)
    return data.get("context", {}), runs, cvs, extremes, errors


def value(runs, contender, scenario, key, scale=1.0):
    found = runs.get((contender, scenario))
    if not found:
        return None
    values = [b[key] for b in found if key in b]
    return statistics.median(values) * scale if values else None


def spread(cvs, contender, scenario, key):
    """Coefficient of variation (%) across the repetitions, if known."""
    found = cvs.get((contender, scenario))
    if not found:
        return None
    values = [b[key] for b in found if key in b]
    return statistics.median(values) * 100 if values else None


def extreme(extremes, contender, which):
    """The min or max ping-pong round trip across the repetitions, if known."""
    found = extremes.get((contender, "Ping", which))
    if not found:
        return None
    values = [b["rt_us"] for b in found if "rt_us" in b]
    return (min if which == "min" else max)(values) if values else None


def fmt(x, digits=1):
    return "–" if x is None else f"{x:.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: queue_table.py queue_bench.json")
    context, runs, cvs, extremes, errors = load(sys.argv[1])
    repetitions = max((b.get("repetitions", 0) for v in runs.values() for b in v), default=0)
    mitems = lambda c, s: value(runs, c, s, "items_per_second", 1e-6)
    ping = lambda c: value(runs, c, "Ping", "rt_us")
    idle = lambda c: value(runs, c, "Idle", "idle_cpu_us")

    print(f"Median of {context.get('executable', 'queue_bench')} runs on "
          f"{context.get('num_cpus', '?')} CPUs, {context.get('date', '')}; "
          "Mitems/s moving uint64_t items, higher is better.")
    load_avg = context.get("load_avg")
    if load_avg:
        print("Load average when the run started (1, 5, 15 min): "
              + ", ".join(f"{x:.2f}" for x in load_avg)
              + f" on {context.get('num_cpus', '?')} CPUs.")
    print()
    print("| queue | 1p1c | 2p2c | 4p4c | 4p4c/2p2c | ping-pong round trip, median (min–max) | "
          "idle consumer CPU per 50 ms wait |")
    print("|---|---|---|---|---|---|---|")
    for key, label in CONTENDERS:
        if not any(k[0] == key for k in runs):
            continue
        cells = [fmt(mitems(key, s)) for s in SHAPES]
        scale = ratio(mitems(key, "4p4c"), mitems(key, "2p2c"))
        p = ping(key)
        i = idle(key)
        ping_cell = "–"
        if p is not None:
            lo = extreme(extremes, key, "min")
            hi = extreme(extremes, key, "max")
            ping_cell = f"{fmt(p, 2)} µs"
            if lo is not None and hi is not None:
                ping_cell += f" ({fmt(lo, 2)}–{fmt(hi, 2)})"
        print(f"| {label} | {' | '.join(cells)} | {fmt(scale, 2)} | {ping_cell} | "
              f"{fmt(i, 0) + ' µs' if i is not None else '–'} |")
    if repetitions:
        print(f"\nPing-pong: median, minimum and maximum of {repetitions} repetitions.")
    if any((k, s) in runs for k in BATCH_CONTENDERS for s in BATCH_SHAPES):
        print("\nMore threads than cores, threads started per batch of 120,000 items, "
              "each consumer taking a fixed share (bounded, 1024), Mitems/s:\n")
        print("| queue | 1p4c | 4p4c | 8p8c |")
        print("|---|---|---|---|")
        for key, label in CONTENDERS:
            if key not in BATCH_CONTENDERS or not any((key, s) in runs for s in BATCH_SHAPES):
                continue
            cells = [fmt(mitems(key, s)) for s in BATCH_SHAPES]
            print(f"| {label} | {' | '.join(cells)} |")
    if cvs:
        print("\nSpread across repetitions (coefficient of variation, %):\n")
        print("| queue | 1p1c | 2p2c | 4p4c | ping-pong |")
        print("|---|---|---|---|---|")
        for key, label in CONTENDERS:
            if not any(k[0] == key for k in runs):
                continue
            cells = [fmt(spread(cvs, key, s, "items_per_second"), 0) for s in SHAPES]
            cells.append(fmt(spread(cvs, key, "Ping", "rt_us"), 0))
            print(f"| {label} | {' | '.join(cells)} |")
    for name, message in sorted(errors.items()):
        print(f"\nFAILED {name}: {message}")

    targets = []
    for s in ("2p2c", "4p4c"):
        targets.append((f"bounded ClosableQueue / Boost.Fiber buffered_channel, {s}",
                        ratio(mitems("ClosableQueueBounded", s), mitems("BoostFiberChannel", s)),
                        ">= 1.0", lambda r: r >= 1.0))
    for s in BATCH_SHAPES:
        targets.append((f"bounded ClosableQueue / Boost.Fiber buffered_channel, "
                        f"{s[5:]} started per batch (issue 9)",
                        ratio(mitems("ClosableQueueBounded", s), mitems("BoostFiberChannel", s)),
                        ">= 1.0", lambda r: r >= 1.0))
    for s in ("2p2c", "4p4c"):
        targets.append((f"bounded ClosableQueue / baseline, {s}",
                        ratio(mitems("ClosableQueueBounded", s), mitems("Baseline", s)),
                        ">= 7", lambda r: r >= 7.0))
    for s in ("2p2c", "4p4c"):
        targets.append((f"unbounded ClosableQueue / moodycamel (no tokens), {s}",
                        ratio(mitems("ClosableQueueUnbounded", s), mitems("Moodycamel", s)),
                        ">= 1.0", lambda r: r >= 1.0))
    for key, label in (("ClosableQueueBounded", "bounded"), ("ClosableQueueUnbounded", "unbounded")):
        targets.append((f"{label} ClosableQueue 4p4c / its 2p2c",
                        ratio(mitems(key, "4p4c"), mitems(key, "2p2c")),
                        ">= 0.75", lambda r: r >= 0.75))
    for key, label in (("ClosableQueueBounded", "bounded"), ("ClosableQueueUnbounded", "unbounded")):
        targets.append((f"{label} ClosableQueue ping-pong round trip, µs", ping(key),
                        "<= 1", lambda r: r <= 1.0))
    for key, label in (("ClosableQueueBounded", "bounded"), ("ClosableQueueUnbounded", "unbounded")):
        targets.append((f"{label} ClosableQueue idle consumer CPU per 50 ms wait, µs", idle(key),
                        f"<= {IDLE_CPU_LIMIT_US:.0f}", lambda r: r <= IDLE_CPU_LIMIT_US))

    put_get = value(runs, "ClosableQueue", "PutGet", "real_time")
    put_get_timed = value(runs, "ClosableQueue", "PutGetTimed", "real_time")
    if put_get is not None and put_get_timed is not None:
        print(f"\nOne thread, put then get: {put_get:.1f} ns untimed, {put_get_timed:.1f} ns "
              f"with a timeout ({ratio(put_get_timed, put_get):.2f}x).")

    print("\n| issue 2 target | measured | goal | |")
    print("|---|---|---|---|")
    for label, measured, goal, ok in targets:
        verdict = "–" if measured is None else ("met" if ok(measured) else "MISSED")
        print(f"| {label} | {fmt(measured, 2)} | {goal} | {verdict} |")


if __name__ == "__main__":
    main()
