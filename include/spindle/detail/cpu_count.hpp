// SPDX-License-Identifier: MIT
// spindle/detail/cpu_count.hpp - the CPUs this process may run on (os.process_cpu_count).
#pragma once

#include <cerrno>
#include <cstddef>
#include <thread>

#include <sched.h>

namespace spindle::detail {

/// The number of CPUs the calling thread may run on: Python 3.13's
/// `os.process_cpu_count()`, i.e. the CPUs of `sched_getaffinity` (so
/// `taskset`, cgroup cpusets and `sched_setaffinity` count), not every CPU
/// of the machine. Falls back to `std::thread::hardware_concurrency()` if
/// the affinity cannot be read; at least 1.
///
/// Affinity is per thread on Linux (inherited by new threads), so this is
/// the calling thread's view. The CPU set grows until the kernel accepts it,
/// so machines with more than CPU_SETSIZE (1024) CPUs are counted too.
/// Never blocks. Thread-safe.
inline std::size_t process_cpu_count() noexcept {
  for (std::size_t cpus = 1024; cpus <= (std::size_t{1} << 20); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) break;
    const std::size_t bytes = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(bytes, set);
    if (sched_getaffinity(0, bytes, set) == 0) {
      const int n = CPU_COUNT_S(bytes, set);
      CPU_FREE(set);
      if (n > 0) return static_cast<std::size_t>(n);
      break;
    }
    const int error = errno;
    CPU_FREE(set);
    // EINVAL: the kernel's mask is bigger than ours; try a bigger one.
    if (error != EINVAL) break;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : hw;
}

}  // namespace spindle::detail
