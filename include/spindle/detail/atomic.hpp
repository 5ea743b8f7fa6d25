// SPDX-License-Identifier: MIT
// spindle/detail/atomic.hpp - the atomics, fences, futex and yield the lock-free cores use.
#pragma once

// Every atomic, fence, futex call and spin-loop yield of the lock-free cores
// (ring_buffer, segmented_list, wait, future_state, spin_lock, ...) goes
// through this header, so that one switch can put them under a model
// checker:
//
// - SPINDLE_MODEL_CHECK (default 0): when 1, `atomic<T>`,
//   `atomic_thread_fence`, `futex_wait/futex_wake` and `yield_now` are
//   Relacy's (https://github.com/dvyukov/relacy, Debian's relacy-dev), for
//   the model-checking tests in tests/relacy/. Only for those tests: such a
//   build runs on Relacy's simulated threads and nothing else.
//
// By default everything here is exactly std:: (alias templates and the
// std functions themselves), so normal builds compile to the same code.

#ifndef SPINDLE_MODEL_CHECK
#define SPINDLE_MODEL_CHECK 0
#endif

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#if SPINDLE_MODEL_CHECK
// relacy.hpp itself would #define new, delete, errno and memory_order_*:
// take the parts without those macros (the list relacy.hpp includes).
#include <relacy/base.hpp>
#include <relacy/context.hpp>
#include <relacy/context_base_impl.hpp>
#include <relacy/backoff.hpp>
#include <relacy/atomic_fence.hpp>
#include <relacy/atomic.hpp>
#include <relacy/var.hpp>
#include <relacy/thread_local.hpp>
#include <relacy/test_suite.hpp>
#include <relacy/dyn_thread.hpp>
#include <relacy/stdlib/mutex.hpp>
#include <relacy/stdlib/condition_variable.hpp>
#include <relacy/stdlib/semaphore.hpp>
#include <relacy/stdlib/event.hpp>
#else
#include <cerrno>
#include <ctime>
#include <thread>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace spindle::detail {

#if !SPINDLE_MODEL_CHECK

template <class T>
using atomic = std::atomic<T>;

using std::atomic_thread_fence;

/// Yields the processor in a spin loop that has spun long enough.
inline void yield_now() noexcept { std::this_thread::yield(); }

/// Blocks while `word == expected`, until woken, until `deadline` (absolute,
/// steady clock) or spuriously. Returns false only if the deadline passed.
/// EINTR is a spurious wake-up: callers re-check their condition in a loop.
inline bool futex_wait(atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::optional<std::chrono::steady_clock::time_point> deadline =
                           std::nullopt) noexcept {
  static_assert(sizeof(atomic<std::uint32_t>) == sizeof(std::uint32_t));
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline && *deadline != (std::chrono::steady_clock::time_point::max)()) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, which is what
    // steady_clock reads on Linux; an absolute time survives EINTR restarts.
    const auto since_epoch = deadline->time_since_epoch();
    if (since_epoch.count() < 0) return false;
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
    ts.tv_sec = static_cast<time_t>(secs.count());
    ts.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - secs).count());
    tsp = &ts;
  }
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word),
                            FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp, nullptr,
                            FUTEX_BITSET_MATCH_ANY);
  return !(rc == -1 && errno == ETIMEDOUT);
}

/// Wakes up to `count` threads blocked in `futex_wait` on `word`. Returns
/// how many it woke (0 on error).
inline int futex_wake(atomic<std::uint32_t>& word, int count) noexcept {
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word),
                            FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, nullptr, nullptr, 0);
  return rc > 0 ? static_cast<int>(rc) : 0;
}

#else  // SPINDLE_MODEL_CHECK

// Relacy wants the caller's source position with every operation (its `$`
// macro) for its execution traces; a defaulted argument supplies it without
// touching the call sites. (__builtin_* rather than std::source_location:
// clang 14 with libstdc++ has no std::source_location.)
#define SPINDLE_DETAIL_RL_HERE                                                       \
  ::rl::debug_info info = ::rl::debug_info(__builtin_FUNCTION(), __builtin_FILE(), \
                                           static_cast<unsigned>(__builtin_LINE()))

constexpr rl::memory_order to_rl(std::memory_order mo) noexcept {
  switch (mo) {
    case std::memory_order_relaxed: return rl::mo_relaxed;
    case std::memory_order_consume: return rl::mo_consume;
    case std::memory_order_acquire: return rl::mo_acquire;
    case std::memory_order_release: return rl::mo_release;
    case std::memory_order_acq_rel: return rl::mo_acq_rel;
    default: return rl::mo_seq_cst;
  }
}

// The failure order std derives for a compare_exchange given one order.
constexpr std::memory_order cas_failure_order(std::memory_order mo) noexcept {
  if (mo == std::memory_order_acq_rel) return std::memory_order_acquire;
  if (mo == std::memory_order_release) return std::memory_order_relaxed;
  return mo;
}

/// std::atomic's interface (the members spindle uses) over rl::atomic.
template <class T>
class atomic {
public:
  atomic() noexcept : a_(T{}) {}  // C++20: std::atomic value-initializes
  atomic(T value) noexcept : a_(value) {}
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  T load(std::memory_order mo = std::memory_order_seq_cst, SPINDLE_DETAIL_RL_HERE) const noexcept {
    return a_.load(to_rl(mo), info);
  }
  void store(T value, std::memory_order mo = std::memory_order_seq_cst,
             SPINDLE_DETAIL_RL_HERE) noexcept {
    a_.store(value, to_rl(mo), info);
  }
  T exchange(T value, std::memory_order mo = std::memory_order_seq_cst,
             SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.exchange(value, to_rl(mo), info);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order success,
                             std::memory_order failure, SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.compare_exchange_weak(expected, desired, to_rl(success), info, to_rl(failure), info);
  }
  bool compare_exchange_weak(T& expected, T desired,
                             std::memory_order mo = std::memory_order_seq_cst,
                             SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.compare_exchange_weak(expected, desired, to_rl(mo), info,
                                    to_rl(cas_failure_order(mo)), info);
  }
  bool compare_exchange_strong(T& expected, T desired, std::memory_order success,
                               std::memory_order failure, SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.compare_exchange_strong(expected, desired, to_rl(success), info, to_rl(failure),
                                      info);
  }
  bool compare_exchange_strong(T& expected, T desired,
                               std::memory_order mo = std::memory_order_seq_cst,
                               SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.compare_exchange_strong(expected, desired, to_rl(mo), info,
                                      to_rl(cas_failure_order(mo)), info);
  }
  template <class U>
  T fetch_add(U value, std::memory_order mo = std::memory_order_seq_cst,
              SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.fetch_add(value, to_rl(mo), info);
  }
  template <class U>
  T fetch_sub(U value, std::memory_order mo = std::memory_order_seq_cst,
              SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.fetch_sub(value, to_rl(mo), info);
  }
  T fetch_or(T value, std::memory_order mo = std::memory_order_seq_cst,
             SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.fetch_or(value, to_rl(mo), info);
  }
  T fetch_and(T value, std::memory_order mo = std::memory_order_seq_cst,
              SPINDLE_DETAIL_RL_HERE) noexcept {
    return a_.fetch_and(value, to_rl(mo), info);
  }

private:
  mutable rl::atomic<T> a_;
};

// An object, not a function: an unqualified call must not also find
// std::atomic_thread_fence by argument-dependent lookup (on std::memory_order).
struct AtomicThreadFence {
  void operator()(std::memory_order mo, SPINDLE_DETAIL_RL_HERE) const noexcept {
    rl::atomic_thread_fence(to_rl(mo), info);
  }
};
inline constexpr AtomicThreadFence atomic_thread_fence{};

/// A spin loop's yield: tells Relacy's scheduler this thread waits for
/// another (so a spin loop is not explored as an endless execution).
inline void yield_now(SPINDLE_DETAIL_RL_HERE) noexcept { rl::yield(1, info); }

/// The futex under the model: one table of wait queues per test iteration,
/// which a test creates (ModelFutexes below) before any thread runs. Like
/// the kernel's hash buckets, one lock orders the waiter's value check
/// against the waker: a wake after the word changed cannot miss a waiter
/// that read the old value. Wake-ups may be spurious (Relacy injects them).
class ModelFutexes {
public:
  static constexpr int max_words = 8;
  ModelFutexes() noexcept { current() = this; }
  ~ModelFutexes() { current() = nullptr; }
  ModelFutexes(const ModelFutexes&) = delete;
  ModelFutexes& operator=(const ModelFutexes&) = delete;

  static ModelFutexes*& current() noexcept {
    static ModelFutexes* table = nullptr;
    return table;
  }

  // Relacy runs one simulated thread at a time and switches only at its own
  // operations, so this plain lookup is atomic in the model.
  rl::condition_variable& queue_of(const void* word) noexcept {
    for (int i = 0; i < used_; ++i)
      if (words_[i] == word) return queues_[i];
    RL_ASSERT(used_ < max_words);
    words_[used_] = word;
    return queues_[used_++];
  }

  rl::mutex lock;
  int parked = 0;  // how many futex_wait calls blocked, for tests' coverage counts

  // Which simulated threads sleep in futex_wait on word `i`, and which of
  // them a futex_wake has dequeued (the kernel's count of threads woken).
  static constexpr int max_threads = 8;
  bool asleep[max_words][max_threads] = {};
  bool woken[max_words][max_threads] = {};
  int index_of(const void* word) noexcept {
    queue_of(word);
    for (int i = 0; i < used_; ++i)
      if (words_[i] == word) return i;
    return 0;
  }

private:
  const void* words_[max_words] = {};
  rl::condition_variable queues_[max_words];
  int used_ = 0;
};

inline bool futex_wait(atomic<std::uint32_t>& word, std::uint32_t expected,
                       std::optional<std::chrono::steady_clock::time_point> deadline =
                           std::nullopt,
                       SPINDLE_DETAIL_RL_HERE) noexcept {
  ModelFutexes* table = ModelFutexes::current();
  RL_ASSERT(table != nullptr);
  table->lock.lock(info);
  bool in_time = true;
  if (word.load(std::memory_order_relaxed, info) == expected) {
    rl::condition_variable& queue = table->queue_of(&word);
    const int w = table->index_of(&word);
    const unsigned me = rl::thread_index();
    RL_ASSERT(me < ModelFutexes::max_threads);
    // A timed wait may time out at any point the scheduler chooses; a wait
    // may also return spuriously (Relacy injects that), as EINTR does.
    ++table->parked;
    table->asleep[w][me] = true;
    table->woken[w][me] = false;
    for (;;) {
      bool notified = true;
      if (deadline)
        notified = queue.wait_for(table->lock, 0, info);
      else
        queue.wait(table->lock, info);
      if (table->woken[w][me]) break;  // dequeued by a futex_wake
      if (!notified) {                 // timed out (or a spurious wake-up Relacy injects)
        in_time = false;
        break;
      }
      // A futex_wake dequeued another sleeper: the kernel leaves this one
      // asleep. Sleep on, or return spuriously (EINTR): the search tries both.
      if (rl::rand(2) == 0) break;
    }
    table->asleep[w][me] = false;
  }
  table->lock.unlock(info);
  return in_time;
}

// Returns how many sleepers it dequeued, as the kernel does: a sleeper
// counts once, even if it has not run since. All sleepers are notified; the
// ones not dequeued go back to sleep inside futex_wait, as in the kernel
// (which never wakes them), or return spuriously, as EINTR may: a protocol
// that relied on a wake of one sleeper reaching the others is caught.
inline int futex_wake(atomic<std::uint32_t>& word, int count, SPINDLE_DETAIL_RL_HERE) noexcept {
  ModelFutexes* table = ModelFutexes::current();
  RL_ASSERT(table != nullptr);
  table->lock.lock(info);
  rl::condition_variable& queue = table->queue_of(&word);
  const int w = table->index_of(&word);
  int woke = 0;
  for (int t = 0; t < ModelFutexes::max_threads && woke < count; ++t) {
    if (table->asleep[w][t] && !table->woken[w][t]) {
      table->woken[w][t] = true;
      ++woke;
    }
  }
  if (woke != 0) queue.notify_all(info);
  table->lock.unlock(info);
  return woke;
}

#undef SPINDLE_DETAIL_RL_HERE

#endif  // SPINDLE_MODEL_CHECK

}  // namespace spindle::detail
