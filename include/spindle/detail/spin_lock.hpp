// SPDX-License-Identifier: MIT
// spindle/detail/spin_lock.hpp - a tiny lock for critical sections of a few instructions.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "wait.hpp"

namespace spindle::detail {

/// A test-and-test-and-set lock for critical sections of a few loads and
/// stores (linking a node into a list). Meets BasicLockable, so it works with
/// `std::lock_guard`.
///
/// Why not `std::mutex`: it is one byte, and an uncontended lock/unlock pair
/// is one exchange and one store. Why it still yields: with more threads than
/// cores (8 workers on 2 cores) the holder can be preempted inside its few
/// instructions, and pure spinning would then burn the rest of a time slice.
class SpinLock {
public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      unsigned spins = 0;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 64) {
          spin_pause();
        } else {
          yield_now();
          spins = 0;
        }
      }
    }
  }

  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }

  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
  atomic<bool> locked_{false};
};

}  // namespace spindle::detail
