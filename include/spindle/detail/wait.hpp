// SPDX-License-Identifier: MIT
// spindle/detail/wait.hpp - futex waits and an event count for blocking code.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>
#include <thread>

#include "atomic.hpp"

namespace spindle::detail {

using Clock = std::chrono::steady_clock;

/// The deadline `timeout` from now. Negative timeouts act as zero (as in
/// Python); huge ones saturate instead of overflowing.
template <class Rep, class Period>
Clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept {
  if (timeout <= timeout.zero()) return Clock::now();
  const auto now = Clock::now();
  const auto max_left = std::chrono::duration_cast<std::chrono::duration<double>>(
      (Clock::time_point::max)() - now);
  if (std::chrono::duration<double>(timeout) >= max_left) return (Clock::time_point::max)();
  return now + std::chrono::ceil<Clock::duration>(timeout);
}

/// One CPU relax hint for spin loops.
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// futex_wait and futex_wake live in atomic.hpp (model-checked builds swap them).

/// An event count: lets threads sleep until a condition that lives in other
/// atomics may have changed, with no lock and no system call for a notifier
/// when nobody sleeps.
///
/// Waiter protocol:
/// ```
///   for (;;) {
///     if (condition()) break;
///     auto key = ec.prepare_wait();
///     if (condition()) { ec.cancel_wait(); break; }
///     ec.wait(key, deadline);            // may wake spuriously
///   }
/// ```
/// Notifiers change the condition first, then call `notify_one/all`.
///
/// Memory ordering: `prepare_wait` increments the waiter count and then
/// issues a seq_cst fence; `notify_*` issues a seq_cst fence before reading
/// the count. Either the notifier sees the waiter (and bumps the sequence,
/// which makes the futex wait return at once), or the waiter's second
/// condition check sees the notifier's change. No wake-up is lost.
class EventCount {
public:
  /// Registers the caller as a waiter and returns the key to wait on.
  std::uint32_t prepare_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    atomic_thread_fence(std::memory_order_seq_cst);
    return seq_.load(std::memory_order_seq_cst);
  }

  /// Undoes `prepare_wait` when the condition turned true in between.
  void cancel_wait() noexcept { waiters_.fetch_sub(1, std::memory_order_relaxed); }

  /// Sleeps until notified after `prepare_wait` returned `key`, or until the
  /// deadline. Returns false if the deadline passed. Ends the registration.
  bool wait(std::uint32_t key, std::optional<Clock::time_point> deadline = std::nullopt) noexcept {
    bool in_time = true;
    while (seq_.load(std::memory_order_acquire) == key) {
      if (deadline && Clock::now() >= *deadline) {
        in_time = false;
        break;
      }
      if (!futex_wait(seq_, key, deadline)) {
        in_time = seq_.load(std::memory_order_acquire) != key;
        break;
      }
    }
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return in_time;
  }

  /// Wakes one waiter, if any sleeps. Costs one fence and a load otherwise.
  void notify_one() noexcept { notify(1); }

  /// Wakes every waiter.
  void notify_all() noexcept { notify(INT_MAX); }

  /// True if some thread is between `prepare_wait` and the end of `wait`.
  bool has_waiters() const noexcept { return waiters_.load(std::memory_order_relaxed) != 0; }

private:
  void notify(int count) noexcept {
    atomic_thread_fence(std::memory_order_seq_cst);
    if (waiters_.load(std::memory_order_relaxed) == 0) return;
    seq_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(seq_, count);
  }

  // Separate cache lines: waiters_ is written by sleepers, seq_ by notifiers.
  alignas(64) atomic<std::uint32_t> seq_{0};
  alignas(64) atomic<std::uint32_t> waiters_{0};
};

/// Spins, then yields, before a caller falls back to sleeping: on an idle
/// core a hand-off arrives within a few microseconds, far less than the
/// ~20 µs a sleep/wake pair costs.
class Backoff {
public:
  /// One step; returns false when the caller should go to sleep instead.
  bool step() noexcept {
    if (step_ < spin_limit) {
      for (unsigned i = 0; i < (1u << (step_ < 6 ? step_ : 6)); ++i) spin_pause();
    } else if (step_ < yield_limit) {
      yield_now();
    } else {
      return false;
    }
    ++step_;
    return true;
  }

  /// A short pause for a lock-free retry after a lost race, or while another
  /// thread finishes an operation it has claimed. Never sleeps, but yields
  /// after a few rounds: with more threads than cores, the thread we wait
  /// for may be preempted and needs our core.
  void spin() noexcept {
    if (step_ < spin_retry_limit) {
      for (unsigned i = 0; i < (1u << step_); ++i) spin_pause();
      ++step_;
    } else {
      yield_now();
    }
  }

  void reset() noexcept { step_ = 0; }

private:
  // About 5 µs of spinning (191 pauses of ~26 ns), then 4 yields, then
  // sleep: spinning longer than a sleep/wake pair costs (~20 µs here) only
  // steals the core from the thread that would end the wait. Measured with
  // benchmarks/queue_bench.cpp: 24 spin steps gave a third of the bounded
  // throughput of 8 on 2 oversubscribed cores.
  static constexpr unsigned spin_limit = 8;
  static constexpr unsigned yield_limit = 12;
  static constexpr unsigned spin_retry_limit = 4;
  unsigned step_ = 0;
};

}  // namespace spindle::detail
