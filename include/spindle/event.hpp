// SPDX-License-Identifier: MIT
// spindle/event.hpp - Event, a flag threads can wait for (threading.Event).
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>

#include "detail/wait.hpp"

namespace spindle {

/// A flag that threads can wait for: Python's `threading.Event`.
///
/// `set()` wakes every waiter; `clear()` makes later waits block again.
/// Thread-safe. `set()` happens-before the return of every `wait` that sees
/// it (release/acquire), so data written before `set()` is visible to woken
/// waiters. `set()` and `clear()` never block; `set()` makes a system call
/// only when some thread sleeps on the event.
///
/// ```
/// spindle::Event done;
/// std::thread t([&] { work(); done.set(); });
/// done.wait();
/// ```
class Event {
public:
  Event() noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Sets the flag and wakes every waiting thread. Every thread that was
  /// waiting returns true, even if `clear()` follows at once (as Python
  /// guarantees). Thread-safe. Never blocks.
  ///
  /// Async-signal-safe (in practice, on Linux): it is a CAS loop on a
  /// lock-free 32-bit atomic plus, when someone sleeps, one `futex` system
  /// call through `syscall()`; no lock, no allocation, and errno is
  /// preserved. So a signal handler may call `set()` (and `is_set()`); the
  /// other members are for normal threads. (`syscall()` is not on POSIX's
  /// list of async-signal-safe functions, but glibc's is a plain system
  /// call that only touches errno.)
  void set() noexcept {
    std::uint32_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (s & set_bit_) return;
      // A new generation, the flag on, the waiters bit off.
      const std::uint32_t next = ((s & ~low_bits_) + generation_one_) | set_bit_;
      if (state_.compare_exchange_weak(s, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed))
        break;
    }
    if (s & waiters_bit_) {
      const int saved_errno = errno;  // a signal handler must not change it
      detail::futex_wake(state_, INT_MAX);
      errno = saved_errno;
    }
  }

  /// Resets the flag so that later `wait()` calls block. Thread-safe.
  void clear() noexcept { state_.fetch_and(~set_bit_, std::memory_order_relaxed); }

  /// True if the flag is set. Thread-safe. Never blocks.
  bool is_set() const noexcept { return (state_.load(std::memory_order_acquire) & set_bit_) != 0; }

  /// Blocks until the flag is set. Returns at once if it already is.
  /// Blocks: until `set()`. Thread-safe.
  void wait() const noexcept { (void)wait_until(std::nullopt); }

  /// Blocks until the flag is set or `timeout` passes; returns true if it
  /// was set before or during the wait (as Python's `Event.wait(timeout)`).
  /// A zero or negative timeout only checks the flag.
  /// Blocks: at most about `timeout`. Thread-safe.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const noexcept {
    // Set already: no clock read (a timed wait in a hot loop stays cheap).
    if (is_set()) return true;
    return wait_until(detail::deadline_after(timeout));
  }

private:
  bool wait_until(std::optional<detail::Clock::time_point> deadline) const noexcept {
    std::uint32_t s = state_.load(std::memory_order_acquire);
    const std::uint32_t generation = s & ~low_bits_;
    for (;;) {
      // Set now, or set (and perhaps cleared again) since we started.
      if ((s & set_bit_) || (s & ~low_bits_) != generation) return true;
      if (deadline && detail::Clock::now() >= *deadline) return false;
      // Announce a sleeper so set() knows to make the wake-up system call.
      if (!(s & waiters_bit_) &&
          !state_.compare_exchange_weak(s, s | waiters_bit_, std::memory_order_acquire))
        continue;
      detail::futex_wait(state_, s | waiters_bit_, deadline);
      s = state_.load(std::memory_order_acquire);
    }
  }

  // One futex word: bit 0 the flag, bit 1 "someone sleeps", bits 2.. count
  // the set() calls, so a waiter can tell that a set() happened even if a
  // clear() came right after it.
  static constexpr std::uint32_t set_bit_ = 1;
  static constexpr std::uint32_t waiters_bit_ = 2;
  static constexpr std::uint32_t low_bits_ = 3;
  static constexpr std::uint32_t generation_one_ = 4;
  mutable detail::atomic<std::uint32_t> state_{0};  // std::atomic outside model-checking builds
};

}  // namespace spindle
