#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# benchmarks/subprocess_python.py - Python's subprocess against os.posix_spawn,
# interleaved (ABBA) like subprocess_bench's BM_Compare_*, so its ratios can be
# set beside spindle's: both are "x raw posix_spawn" measured under one load.
#   python3 benchmarks/subprocess_python.py [spawns] [MiB]
import os
import statistics
import subprocess
import sys
import time

spawns = int(sys.argv[1]) if len(sys.argv) > 1 else 400
mib = int(sys.argv[2]) if len(sys.argv) > 2 else 16


def raw():
    pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
    os.waitpid(pid, 0)


def python():
    subprocess.Popen(["/bin/true"]).wait()


def interleave(a, b, n):
    ta, tb = [], []
    for i in range(n):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        t0 = time.perf_counter()
        first()
        t1 = time.perf_counter()
        second()
        t2 = time.perf_counter()
        (ta if first is a else tb).append(t1 - t0)
        (tb if first is a else ta).append(t2 - t1)
    return statistics.median(ta), statistics.median(tb)


base, py = interleave(raw, python, spawns)
print(f"spawn+wait /bin/true: os.posix_spawn {base*1e6:.0f} us, subprocess.Popen {py*1e6:.0f} us, "
      f"ratio {py/base:.3f}")

data = bytes(range(256)) * (mib * 4096)
times = []
for _ in range(10):
    t0 = time.perf_counter()
    out, _ = subprocess.Popen(["/bin/cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE).communicate(data)
    times.append(time.perf_counter() - t0)
    assert len(out) == len(data)
print(f"communicate {mib} MiB through cat: {len(data)/statistics.median(times)/1e9:.3f} GB/s")
