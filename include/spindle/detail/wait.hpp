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
/// when nobody sleeps, nor when every sleeper already has a wake-up coming.
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
/// State. `seq_` is the futex word: every notify that wakes bumps it, and a
/// waiter sleeps only while it still holds the `key` it read in
/// `prepare_wait`. `state_` packs two counts: `waiters` (threads between
/// `prepare_wait` and the end of `wait`/`cancel_wait`) and `signals` (wakes
/// granted by notifiers and not yet used up by a waiter leaving). A notify
/// grants a signal (CAS `signals + 1`, only while `signals < waiters`), then
/// bumps `seq_`, then calls `futex_wake`; when `signals == waiters` it does
/// nothing at all. Every waiter that leaves (returning from `wait` for any
/// reason, or `cancel_wait`) removes itself and one signal if there is any,
/// in one CAS: `waiters - 1, signals - (signals != 0)`, so `signals <=
/// waiters` always.
///
/// Invariant. Call a registered waiter *bound* if it will leave without any
/// further notify: the futex has dequeued it (woken it; `wait` then leaves
/// whatever `seq_` holds), or it is not queued in the futex and its key is
/// stale (`seq_ != key`: its own check, or the kernel's in `futex_wait`,
/// sends it out), or it has timed out or is cancelling. Every signal of a
/// notify that has finished its `futex_wake` is matched to a distinct bound
/// waiter. Hence `signals == waiters` (once the notifies in flight have
/// finished) means every registered waiter is on its way out, and a notify
/// may skip its wake: each of those waiters leaves with a CAS on `state_`
/// ordered after the skipping notifier's load, and re-registers (a seq_cst
/// fence) before it re-checks the condition, so it sees the change.
///
/// Why it holds (argued here, and checked by tests/relacy/event_count_model.cpp,
/// whose model futex, like the kernel, leaves un-dequeued sleepers asleep):
/// - A waiter reads its key *before* it registers. A notify whose CAS counts
///   a waiter (reads a state that includes its registration) therefore bumps
///   `seq_` after that waiter read its key (bump, key load, registration and
///   CAS are seq_cst; the other order is a cycle in the single total order).
///   After that bump the counted waiter is bound unless it is queued in the
///   futex. (Reading the key after registering breaks this: a counted waiter
///   can read the bumped key, find the condition already consumed by a
///   thread that never slept, and sleep on the new key with its signal
///   spent; Relacy finds that lost wake-up in 'two tokens, two notify_one'.)
/// - So when a notify reaches `futex_wake` with its waiter still unbound, the
///   futex queue is not empty and `futex_wake(1)` dequeues someone, who is
///   bound from then on: the signal goes to that thread (swapping with the
///   signal in flight matched to it, if any). The thread dequeued may have
///   a newer key than the one the notifier counted, so `wait` must not go
///   back to sleep when the futex returns with `seq_ == key`: it leaves and
///   hands the signal back (sleeping on would strand it: Relacy's 'three
///   takers' deadlocks).
/// - Leaving removes a signal whenever there is one, whoever was woken: a
///   waiter that times out, cancels or returns spuriously while a wake is
///   still to be sent takes a signal, and the thread the futex wakes later
///   holds it; the count never claims more wakes than are coming. (Leaving
///   without taking one, e.g. on a timeout or in `cancel_wait`, would strand
///   a signal.)
/// - `notify_all` sets `signals = waiters`, bumps, and wakes every sleeper:
///   each waiter registered before its CAS read an older key, so it is
///   bound once the futex has dequeued every sleeper.
/// - A spurious futex return (EINTR) ends the wait like a wake; the caller
///   re-checks and re-registers. A 32-bit `seq_` wraps after 2^32 wakes; a
///   waiter that slept through exactly that many would sleep on: ignored.
///
/// Memory ordering: `prepare_wait` reads `seq_`, registers with a seq_cst
/// RMW on `state_` and issues a seq_cst fence; `notify_*` issues a seq_cst
/// fence before it reads `state_`. Either the notifier sees the waiter, or
/// the waiter's second condition check sees the notifier's change. A waiter
/// woken by a bump it reads (acquire) sees every change made before it.
class EventCount {
public:
  /// Registers the caller as a waiter and returns the key to wait on.
  std::uint32_t prepare_wait() noexcept {
    const std::uint32_t key = seq_.load(std::memory_order_seq_cst);
    state_.fetch_add(one_waiter, std::memory_order_seq_cst);
    atomic_thread_fence(std::memory_order_seq_cst);
    return key;
  }

  /// Undoes `prepare_wait` when the condition turned true in between.
  void cancel_wait() noexcept { leave(); }

  /// Sleeps until notified after `prepare_wait` returned `key`, or until the
  /// deadline. Returns false if the deadline passed. Ends the registration.
  /// Any return from the futex ends the wait, even with `seq_` unchanged:
  /// the futex may have dequeued this thread for a wake a notifier meant for
  /// another sleeper (one with an older key), and only by leaving does this
  /// thread hand that wake's signal back.
  bool wait(std::uint32_t key, std::optional<Clock::time_point> deadline = std::nullopt) noexcept {
    bool in_time = true;
    if (seq_.load(std::memory_order_acquire) == key) {
      if (deadline && Clock::now() >= *deadline)
        in_time = false;
      else if (!futex_wait(seq_, key, deadline))
        in_time = seq_.load(std::memory_order_acquire) != key;
    }
    leave();
    return in_time;
  }

  /// Wakes one waiter, if any sleeps without a wake-up already coming.
  /// Costs one fence and a load otherwise.
  void notify_one() noexcept {
    atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint64_t state = state_.load(std::memory_order_relaxed);
    if (signals_of(state) < waiters_of(state)) wake(state, false);
  }

  /// Wakes every waiter (that has no wake-up coming already).
  void notify_all() noexcept {
    atomic_thread_fence(std::memory_order_seq_cst);
    const std::uint64_t state = state_.load(std::memory_order_relaxed);
    if (signals_of(state) < waiters_of(state)) wake(state, true);
  }

  /// True if some thread is between `prepare_wait` and the end of `wait`.
  bool has_waiters() const noexcept {
    return waiters_of(state_.load(std::memory_order_relaxed)) != 0;
  }

private:
  // state_: waiters in the low 32 bits, signals in the high 32 bits.
  static constexpr std::uint64_t one_waiter = 1;
  static constexpr std::uint64_t one_signal = std::uint64_t{1} << 32;
  static constexpr std::uint32_t waiters_of(std::uint64_t state) noexcept {
    return static_cast<std::uint32_t>(state);
  }
  static constexpr std::uint32_t signals_of(std::uint64_t state) noexcept {
    return static_cast<std::uint32_t>(state >> 32);
  }
  static constexpr std::uint64_t pack(std::uint32_t waiters, std::uint32_t signals) noexcept {
    return (std::uint64_t{signals} << 32) | waiters;
  }

  // The rest of notify_one/all, out of line: grants the signal(s) while
  // some waiter has none, then bumps and wakes.
  void wake(std::uint64_t state, bool all) noexcept {
    do {
      if (signals_of(state) >= waiters_of(state)) return;
    } while (!state_.compare_exchange_strong(
        state, all ? pack(waiters_of(state), waiters_of(state)) : state + one_signal,
        std::memory_order_seq_cst, std::memory_order_relaxed));
    seq_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(seq_, all ? INT_MAX : 1);
  }

  // Ends a registration: one waiter less, and one signal less if any.
  // (Strong CASes: the same instruction on x86, and a weak one's spurious
  // failures would only multiply the Relacy model's executions.)
  void leave() noexcept {
    std::uint64_t state = state_.load(std::memory_order_relaxed);
    while (!state_.compare_exchange_strong(
        state, state - one_waiter - (signals_of(state) != 0 ? one_signal : 0),
        std::memory_order_relaxed, std::memory_order_relaxed)) {
    }
  }

  // Separate cache lines: state_ is written by sleepers and waking
  // notifiers, seq_ only by waking notifiers.
  alignas(64) atomic<std::uint32_t> seq_{0};
  alignas(64) atomic<std::uint64_t> state_{0};
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
