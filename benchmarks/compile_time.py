#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# benchmarks/compile_time.py - what including spindle costs a translation
# unit, beside what including Boost.Asio costs, measured in one run.
#
#   python3 benchmarks/compile_time.py              # 7 interleaved rounds, g++ -O2
#   python3 benchmarks/compile_time.py --cxx clang++ --rounds 11
#   python3 benchmarks/compile_time.py --include-dir /some/older/spindle/include
#
# Each round compiles every TU once (`CXX -std=c++20 -O2 -c`, output thrown
# away) in a freshly shuffled order, so a burst of load on a shared machine
# hits every contender alike. Prints each TU's median, min and max wall time,
# its preprocessed line count and macro count, and the ratios to Boost.Asio
# and to an empty TU. The claim is the ratio; absolute seconds vary.
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description="compile time of spindle beside Boost.Asio")
    ap.add_argument("--cxx", default="g++")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--include-dir", default=os.path.join(HERE, "..", "include"))
    ap.add_argument("--flags", default="-std=c++20 -O2")
    args = ap.parse_args()

    tus = {
        "empty TU": "",
        "spindle/spindle.hpp": "#include <spindle/spindle.hpp>\n",
        "spindle/queue.hpp": "#include <spindle/queue.hpp>\n",
        "spindle/executor.hpp": "#include <spindle/executor.hpp>\n",
        "boost/asio.hpp": "#include <boost/asio.hpp>\n",
    }
    if not os.path.exists("/usr/include/boost/asio.hpp"):
        sys.exit("compile_time.py: <boost/asio.hpp> not found (apt-get install libboost1.81-dev)")
    work = tempfile.mkdtemp(prefix="spindle-compile-time-")
    paths = {}
    for i, (name, text) in enumerate(tus.items()):
        paths[name] = os.path.join(work, f"tu{i}.cpp")
        with open(paths[name], "w") as f:
            f.write(text)
    base = [args.cxx, *args.flags.split(), "-I", os.path.abspath(args.include_dir)]

    def size(name):
        pre = subprocess.run(base + ["-E", paths[name]], check=True,
                             capture_output=True, text=True).stdout
        macros = subprocess.run(base + ["-E", "-dM", paths[name]], check=True,
                                capture_output=True, text=True).stdout
        return pre.count("\n"), macros.count("\n")

    sizes = {name: size(name) for name in tus}
    times = {name: [] for name in tus}
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[0]
    for _ in range(args.rounds):
        order = list(tus)
        random.shuffle(order)
        for name in order:
            start = time.perf_counter()
            subprocess.run(base + ["-c", paths[name], "-o", os.devnull], check=True)
            times[name].append(time.perf_counter() - start)
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[0]

    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"$ {' '.join(base)} -c TU  ({args.rounds} interleaved rounds, "
          f"load average {load_before} -> {load_after})\n")
    print("| translation unit | median s | min s | max s | preprocessed lines | macros "
          "| vs Boost.Asio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in tus:
        lines, macros = sizes[name]
        print(f"| `{name}` | {med[name]:.2f} | {min(times[name]):.2f} | "
              f"{max(times[name]):.2f} | {lines} | {macros} | "
              f"{med[name] / med['boost/asio.hpp']:.2f}x |")
    asio_net = med["boost/asio.hpp"] - med["empty TU"]
    spindle_net = med["spindle/spindle.hpp"] - med["empty TU"]
    print(f"\nspindle.hpp / asio.hpp: {med['spindle/spindle.hpp'] / med['boost/asio.hpp']:.2f}x "
          f"(over an empty TU: {spindle_net / asio_net:.2f}x)")


if __name__ == "__main__":
    main()
