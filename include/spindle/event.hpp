// SPDX-License-Identifier: MIT
// spindle/event.hpp - Event, a flag threads can wait for (threading.Event).
#pragma once

#include <atomic>
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

  /// Sets the flag and wakes every waiting thread. Thread-safe. Never blocks.
  void set() noexcept {
    if (state_.exchange(set_, std::memory_order_acq_rel) == unset_with_waiters_)
      detail::futex_wake(state_, INT_MAX);
  }

  /// Resets the flag so that later `wait()` calls block. Thread-safe.
  void clear() noexcept {
    std::uint32_t expected = set_;
    state_.compare_exchange_strong(expected, unset_, std::memory_order_relaxed);
  }

  /// True if the flag is set. Thread-safe. Never blocks.
  bool is_set() const noexcept { return state_.load(std::memory_order_acquire) == set_; }

  /// Blocks until the flag is set. Returns at once if it already is.
  /// Blocks: until `set()`. Thread-safe.
  void wait() const noexcept { (void)wait_until(std::nullopt); }

  /// Blocks until the flag is set or `timeout` passes; returns true if set
  /// (as Python's `Event.wait(timeout)`). A zero or negative timeout only
  /// checks the flag. Blocks: at most about `timeout`. Thread-safe.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const noexcept {
    return wait_until(detail::deadline_after(timeout));
  }

private:
  bool wait_until(std::optional<detail::Clock::time_point> deadline) const noexcept {
    for (;;) {
      std::uint32_t s = state_.load(std::memory_order_acquire);
      if (s == set_) return true;
      if (deadline && detail::Clock::now() >= *deadline) return false;
      // Announce a sleeper so set() knows to make the wake-up system call.
      if (s == unset_ &&
          !state_.compare_exchange_weak(s, unset_with_waiters_, std::memory_order_acquire))
        continue;
      detail::futex_wait(state_, unset_with_waiters_, deadline);
    }
  }

  static constexpr std::uint32_t unset_ = 0;
  static constexpr std::uint32_t set_ = 1;
  static constexpr std::uint32_t unset_with_waiters_ = 2;
  // The flag and the "someone sleeps" bit in one futex word.
  mutable std::atomic<std::uint32_t> state_{unset_};
};

}  // namespace spindle
