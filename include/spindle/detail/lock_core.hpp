// SPDX-License-Identifier: MIT
// spindle/detail/lock_core.hpp - the futex words under Lock, RLock and Semaphore.
#pragma once

#include <climits>
#include <cstdint>
#include <optional>

#include "atomic.hpp"
#include "wait.hpp"

namespace spindle::detail {

/// A spin-then-yield policy for waits whose other side may need our core:
/// `spins` rounds of doubling pause loops, then `yields` yields, then the
/// caller sleeps. (`Backoff` spins about 5 µs first, which is right for a
/// queue hand-off between two running threads but, with more threads than
/// cores, keeps the thread being waited for off the CPU.)
template <unsigned spins, unsigned yields>
class SpinThenYield {
public:
  bool step() noexcept {
    if (step_ < spins) {
      for (unsigned i = 0; i < (1u << step_); ++i) spin_pause();
    } else if (step_ < spins + yields) {
      yield_now();
    } else {
      return false;
    }
    ++step_;
    return true;
  }

private:
  unsigned step_ = 0;
};

/// How Condition and Barrier waiters wait before they sleep: 3 pauses, then
/// up to 16 yields. Chosen with benchmarks/threading_bench.cpp on 2 cores
/// from 0-8 spin rounds x 4-64 yields: with 4 or 8 threads, Barrier rounds
/// took 1.0-1.2 µs with this and 6-7 µs with `Backoff` (std::barrier: 1.4-1.6
/// µs), and the Condition token ring 3-7 µs per pass against 20-39 µs.
using HandoffBackoff = SpinThenYield<2, 16>;

/// How Lock and Semaphore waiters spin before they sleep: 15 pauses, then
/// up to 8 yields. Measured against `Backoff` and `HandoffBackoff` in the same
/// benchmark (2/4/8 threads, tiny critical sections): the three were within
/// the noise of a loaded 2-core machine, this one ahead in more rows.
using LockBackoff = SpinThenYield<4, 8>;

/// Exponential backoff after a CAS lost to another thread (contention, not
/// scarcity): 1, 2, 4 ... 128 pauses. Retrying at once on a contended cache
/// line only takes it away from the thread that would succeed.
class ContentionBackoff {
public:
  void pause() noexcept {
    for (unsigned i = 0; i < (1u << shift_); ++i) spin_pause();
    if (shift_ < 7) ++shift_;
  }

private:
  unsigned shift_ = 0;
};

/// A mutex in one 32-bit futex word, after Drepper's "Futexes Are Tricky"
/// (mutex 2) with a short spin in front: 0 free, 1 held, 2 held and some
/// thread may sleep in `futex_wait`. Not owner-bound (Python's Lock may be
/// released by any thread).
///
/// Why it is at least as fast as `std::mutex`: the uncontended pair is one
/// inlined CAS and one exchange (glibc's pthread_mutex_lock is an out-of-line
/// call that checks the mutex kind first); under contention a waiter spins
/// and yields briefly before it sleeps (glibc's default mutex sleeps at once), and
/// `unlock` makes a system call only when the word says someone may sleep.
///
/// Memory ordering: acquire on every successful lock, release on unlock.
class FutexMutex {
public:
  bool try_lock() noexcept {
    std::uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void lock() noexcept {
    if (!try_lock()) (void)lock_slow(std::nullopt);
  }

  /// Locks by `deadline`; false if it passed first (then nothing is held).
  bool lock_until(std::optional<Clock::time_point> deadline) noexcept {
    return try_lock() || lock_slow(deadline);
  }

  /// Unlocks; returns false (and changes nothing) if it was not locked.
  bool unlock() noexcept {
    const std::uint32_t prev = state_.exchange(0, std::memory_order_release);
    if (prev == 2) futex_wake(state_, 1);
    return prev != 0;
  }

  bool locked() const noexcept { return state_.load(std::memory_order_relaxed) != 0; }

private:
  bool lock_slow(std::optional<Clock::time_point> deadline) noexcept {
    // Spin on a plain load (no cache-line ping-pong) while the holder is
    // likely running; take the lock the moment it is free.
    LockBackoff backoff;
    while (backoff.step()) {
      if (state_.load(std::memory_order_relaxed) == 0 && try_lock()) return true;
    }
    // Sleep. Setting 2 tells unlock to wake us; a thread that takes the lock
    // here keeps the 2 (it cannot know whether others still sleep), which
    // costs at most one futex_wake that wakes nobody.
    while (state_.exchange(2, std::memory_order_acquire) != 0) {
      if (deadline && Clock::now() >= *deadline) return false;
      futex_wait(state_, 2, deadline);
    }
    return true;
  }

  atomic<std::uint32_t> state_{0};
};

/// The counter of a Semaphore in one futex word, with a count of sleepers
/// beside it so that `release` makes a system call only when a thread
/// sleeps. `max` caps the value (the initial value for a BoundedSemaphore).
///
/// Wake-up protocol: a sleeper increments `sleepers_` and then re-reads the
/// count (both seq_cst); `release` adds to the count and then reads
/// `sleepers_` (both seq_cst). One of the two sees the other's write, and
/// `futex_wait` re-checks the count in the kernel, so a release never goes
/// unseen. A woken waiter that finds the count at 0 lost the permit to a
/// thread that took it without sleeping, and sleeps again; a waiter whose
/// deadline passes tries once more before it gives up, so it never leaves a
/// wake-up meant for it unused while permits remain.
class SemaphoreCore {
public:
  explicit SemaphoreCore(std::uint32_t value) noexcept : count_(value) {}

  // Takes a permit if there is one. A CAS that fails because another thread
  // changed the count first backs off before the retry (in a standalone loop
  // of 4 threads, 2 permits, 2 cores: 31 ns per acquire/release retrying at
  // once, 15-16 ns with exponential backoff; threading_bench's 4- and 8-thread
  // rows still trail std::counting_semaphore, see README).
  // `order` is the ordering of the reads and the successful CAS: acquire
  // for a plain take, seq_cst for a registered sleeper (its half of the
  // wake-up protocol above).
  bool try_acquire(std::memory_order order = std::memory_order_acquire) noexcept {
    const auto read = order == std::memory_order_seq_cst ? order : std::memory_order_relaxed;
    ContentionBackoff contention;
    std::uint32_t c = count_.load(read);
    while (c != 0) {
      if (count_.compare_exchange_weak(c, c - 1, order, read)) return true;
      contention.pause();
      c = count_.load(read);
    }
    return false;
  }

  bool acquire_until(std::optional<Clock::time_point> deadline) noexcept {
    LockBackoff backoff;
    ContentionBackoff contention;
    for (;;) {
      std::uint32_t c = count_.load(std::memory_order_relaxed);
      if (c != 0) {
        if (count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire,
                                         std::memory_order_relaxed))
          return true;
        contention.pause();  // contention, not scarcity: not a step towards sleeping
        continue;
      }
      if (!backoff.step()) break;
    }
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    bool got = false;
    for (;;) {
      if (try_acquire(std::memory_order_seq_cst)) {
        got = true;
        break;
      }
      if (deadline && Clock::now() >= *deadline) break;
      futex_wait(count_, 0, deadline);
    }
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    return got;
  }

  /// Adds `n` permits, failing (changing nothing) if the value would pass
  /// `max`. Wakes up to `n` sleepers.
  bool release(std::uint32_t n, std::uint32_t max) noexcept {
    ContentionBackoff contention;
    std::uint32_t c = count_.load(std::memory_order_relaxed);
    for (;;) {
      if (n > max - c) return false;
      if (count_.compare_exchange_weak(c, c + n, std::memory_order_seq_cst,
                                       std::memory_order_relaxed))
        break;
      contention.pause();
      c = count_.load(std::memory_order_relaxed);
    }
    if (sleepers_.load(std::memory_order_seq_cst) != 0)
      futex_wake(count_, n > INT_MAX ? INT_MAX : static_cast<int>(n));
    return true;
  }

  std::uint32_t value() const noexcept { return count_.load(std::memory_order_relaxed); }

private:
  atomic<std::uint32_t> count_;
  atomic<std::uint32_t> sleepers_{0};
};

/// An id for the calling thread that is cheap to read (the address of a
/// thread-local), never 0. Used to tell an RLock's owner.
inline std::uintptr_t this_thread_token() noexcept {
  thread_local const char marker = 0;
  return reinterpret_cast<std::uintptr_t>(&marker);
}

}  // namespace spindle::detail
