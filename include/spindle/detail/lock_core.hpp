// SPDX-License-Identifier: MIT
// spindle/detail/lock_core.hpp - the futex words under Lock, RLock and Semaphore.
#pragma once

#include <climits>
#include <cstdint>
#include <optional>

#include "atomic.hpp"
#include "wait.hpp"

namespace spindle::detail {

/// A mutex in one 32-bit futex word, after Drepper's "Futexes Are Tricky"
/// (mutex 2) with a short spin in front: 0 free, 1 held, 2 held and some
/// thread may sleep in `futex_wait`. Not owner-bound (Python's Lock may be
/// released by any thread).
///
/// Why it is at least as fast as `std::mutex`: the uncontended pair is one
/// inlined CAS and one exchange (glibc's pthread_mutex_lock is an out-of-line
/// call that checks the mutex kind first); under contention a waiter spins
/// about 5 µs before it sleeps (glibc's default mutex sleeps at once), and
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
    Backoff backoff;
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

  bool try_acquire() noexcept {
    std::uint32_t c = count_.load(std::memory_order_relaxed);
    while (c != 0) {
      if (count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire,
                                       std::memory_order_relaxed))
        return true;
    }
    return false;
  }

  bool acquire_until(std::optional<Clock::time_point> deadline) noexcept {
    if (try_acquire()) return true;
    Backoff backoff;
    while (backoff.step()) {
      if (count_.load(std::memory_order_relaxed) != 0 && try_acquire()) return true;
    }
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    bool got = false;
    for (;;) {
      if (try_acquire_seq_cst()) {
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
    std::uint32_t c = count_.load(std::memory_order_relaxed);
    do {
      if (n > max - c) return false;
    } while (!count_.compare_exchange_weak(c, c + n, std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
    if (sleepers_.load(std::memory_order_seq_cst) != 0)
      futex_wake(count_, n > INT_MAX ? INT_MAX : static_cast<int>(n));
    return true;
  }

  std::uint32_t value() const noexcept { return count_.load(std::memory_order_relaxed); }

private:
  bool try_acquire_seq_cst() noexcept {
    std::uint32_t c = count_.load(std::memory_order_seq_cst);
    while (c != 0) {
      if (count_.compare_exchange_weak(c, c - 1, std::memory_order_seq_cst,
                                       std::memory_order_seq_cst))
        return true;
    }
    return false;
  }

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
