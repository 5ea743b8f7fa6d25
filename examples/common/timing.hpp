// SPDX-License-Identifier: MIT
// examples/common/timing.hpp - wall and CPU clocks shared by the examples.
#pragma once

#include <chrono>
#include <ctime>

namespace timing {

using Clock = std::chrono::steady_clock;

/// Wall-clock seconds since `start`.
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// CPU time of the whole process (all threads), in seconds. CPU / wall is
/// how many cores were busy on average: above 1 only if threads really ran
/// in parallel, which holds even when other programs slow the wall clock.
inline double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace timing
