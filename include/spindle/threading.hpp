// SPDX-License-Identifier: MIT
// spindle/threading.hpp - Python's threading: Lock, RLock, Condition, Semaphore, Barrier (+ thread.hpp).
#pragma once

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "detail/lock_core.hpp"
#include "detail/wait.hpp"
#include "errors.hpp"
#include "thread.hpp"

namespace spindle {

// Timeouts everywhere in this header: a zero or negative duration only tries
// once (Python rejects negative timeouts with ValueError; here they act as
// zero, as everywhere in spindle); a huge one waits as long as it takes.

namespace detail {

/// The standard library's lock vocabulary (`lock`, `try_lock`, `unlock`,
/// `try_lock_for`, `try_lock_until`) over Python's (`acquire`,
/// `try_acquire`, `release`, `acquire(timeout)`), so that `std::lock_guard`,
/// `std::unique_lock` and `std::scoped_lock` work with each primitive.
template <class Derived>
class LockableNames {
public:
  void lock() noexcept { self().acquire(); }
  bool try_lock() noexcept { return self().try_acquire(); }
  void unlock() { self().release(); }
  template <class Rep, class Period>
  bool try_lock_for(std::chrono::duration<Rep, Period> timeout) noexcept {
    return self().acquire(timeout);
  }
  template <class C, class Duration>
  bool try_lock_until(std::chrono::time_point<C, Duration> when) noexcept {
    return self().acquire(when - C::now());
  }

private:
  Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

}  // namespace detail

/// A mutual-exclusion lock: Python's `threading.Lock`.
///
/// Not owned by a thread: any thread may release it (as in Python), but
/// releasing it while it is not held is a `std::logic_error` (Python's
/// RuntimeError). Meets *TimedLockable*, so `std::lock_guard`,
/// `std::unique_lock` and `std::scoped_lock` work with it. Not recursive:
/// acquiring it twice on one thread deadlocks (use `RLock`).
///
/// Thread-safe. Acquire has acquire semantics and release has release
/// semantics: what one holder wrote is visible to the next. Uncontended,
/// acquire/release is one CAS and one exchange and never enters the kernel.
///
/// ```
/// spindle::Lock lock;
/// { std::lock_guard hold(lock); ++counter; }
/// ```
class Lock : public detail::LockableNames<Lock> {
public:
  Lock() noexcept = default;
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

  /// Blocks until the lock is held by the caller's side.
  /// Blocks: while another holder has it. Thread-safe.
  void acquire() noexcept { core_.lock(); }

  /// As `acquire()`, giving up after `timeout`; true if acquired.
  /// Blocks: at most about `timeout`. Thread-safe.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    return core_.try_lock() || core_.lock_until(detail::deadline_after(timeout));
  }

  /// Takes the lock only if it is free: Python's `acquire(blocking=False)`.
  /// Never blocks. Thread-safe.
  bool try_acquire() noexcept { return core_.try_lock(); }

  /// Frees the lock, waking one waiter if any.
  /// Throws: `std::logic_error` if the lock is not held. Thread-safe.
  void release() {
    if (!core_.unlock()) throw std::logic_error("spindle::Lock::release: the lock is not held");
  }

  /// True if some thread holds the lock (a snapshot). Never blocks.
  bool locked() const noexcept { return core_.locked(); }

private:
  friend class Condition;
  friend class Barrier;
  detail::FutexMutex core_;
};

/// A reentrant lock: Python's `threading.RLock`. The owning thread may
/// acquire it again; it is free once every acquire is matched by a release.
///
/// Releasing it from a thread that does not own it (or when nobody does) is
/// a `std::logic_error` (Python's RuntimeError). Meets *TimedLockable*.
/// Thread-safe, with the memory ordering of `Lock`. A nested acquire by the
/// owner is a load and an increment.
class RLock : public detail::LockableNames<RLock> {
public:
  RLock() noexcept = default;
  RLock(const RLock&) = delete;
  RLock& operator=(const RLock&) = delete;

  /// Blocks until the caller owns the lock (at once if it already does).
  /// Blocks: while another thread owns it. Thread-safe.
  void acquire() noexcept {
    const auto me = detail::this_thread_token();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++depth_;
      return;
    }
    core_.lock();
    own(me, 1);
  }

  /// As `acquire()`, giving up after `timeout`; true if acquired.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    const auto me = detail::this_thread_token();
    if (owner_.load(std::memory_order_relaxed) == me) {
      ++depth_;
      return true;
    }
    if (!core_.try_lock() && !core_.lock_until(detail::deadline_after(timeout))) return false;
    own(me, 1);
    return true;
  }

  /// Acquires only if free or already owned by the caller. Never blocks.
  bool try_acquire() noexcept { return acquire(std::chrono::seconds(0)); }

  /// Undoes one acquire; the last one frees the lock.
  /// Throws: `std::logic_error` if the caller does not own the lock.
  void release() {
    if (!is_owned())
      throw std::logic_error("spindle::RLock::release: the lock is not owned by this thread");
    if (--depth_ == 0) {
      owner_.store(0, std::memory_order_relaxed);
      (void)core_.unlock();
    }
  }

  /// True if some thread owns the lock (a snapshot). Never blocks.
  bool locked() const noexcept { return core_.locked(); }

  /// True if the calling thread owns the lock. Never blocks.
  bool is_owned() const noexcept {
    return owner_.load(std::memory_order_relaxed) == detail::this_thread_token();
  }

private:
  friend class Condition;

  void own(std::uintptr_t me, std::size_t depth) noexcept {
    owner_.store(me, std::memory_order_relaxed);
    depth_ = depth;
  }

  // Releases every level (Condition::wait); returns the depth to restore.
  std::size_t release_all() noexcept {
    const std::size_t depth = depth_;
    depth_ = 0;
    owner_.store(0, std::memory_order_relaxed);
    (void)core_.unlock();
    return depth;
  }

  void reacquire(std::size_t depth) noexcept {
    core_.lock();
    own(detail::this_thread_token(), depth);
  }

  detail::FutexMutex core_;
  // Other threads only compare owner_ with their own token, which it can
  // hold only if they stored it: relaxed is enough. Written under core_.
  detail::atomic<std::uintptr_t> owner_{0};
  std::size_t depth_ = 0;  // guarded by core_ (touched only by the owner)
};

/// A condition variable bound to a lock: Python's `threading.Condition`.
///
/// `Condition()` makes its own Lock; `Condition(lock)` shares a `Lock` or
/// `RLock` (an RLock is released fully while waiting and restored to its
/// depth after). The condition is itself a lock (`acquire`/`release`,
/// `lock`/`unlock`) over that lock. Waiting, notifying and `wait_for` need
/// the lock held: calling them without it is a `std::logic_error` (Python's
/// RuntimeError; as in Python, for a `Lock` this checks that it is held,
/// not by whom).
///
/// Waiters are served first come, first served; `notify(n)` wakes exactly
/// `min(n, waiting)` of them, each of which returns true. Spurious wake-ups
/// do not happen: `wait()` returns only when notified (or timed out).
/// Thread-safe.
///
/// ```
/// spindle::Condition cv;
/// { std::lock_guard hold(cv); ready = true; cv.notify(); }
/// { std::unique_lock hold(cv); cv.wait_for([&] { return ready; }); }
/// ```
class Condition : public detail::LockableNames<Condition> {
public:
  /// A condition over its own `Lock`.
  Condition() noexcept : lock_(&own_) {}
  /// A condition over `lock`, which must outlive it.
  explicit Condition(Lock& lock) noexcept : lock_(&lock) {}
  /// A condition over `lock`, which must outlive it.
  explicit Condition(RLock& lock) noexcept : rlock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  /// Acquires the underlying lock. Blocks: while another thread holds it.
  void acquire() noexcept {
    if (rlock_) {
      rlock_->acquire();
    } else {
      lock_->acquire();
    }
  }
  /// As `acquire()` with a timeout; true if acquired.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    return rlock_ ? rlock_->acquire(timeout) : lock_->acquire(timeout);
  }
  /// Acquires the underlying lock only if that does not block.
  bool try_acquire() noexcept { return rlock_ ? rlock_->try_acquire() : lock_->try_acquire(); }
  /// Releases the underlying lock. Throws: as its `release()`.
  void release() {
    if (rlock_) {
      rlock_->release();
    } else {
      lock_->release();
    }
  }
  /// Releases the lock, sleeps until notified, and reacquires the lock.
  /// Blocks: until `notify`/`notify_all` picks this waiter.
  /// Throws: `std::logic_error` if the lock is not held.
  void wait() { (void)wait_until(std::nullopt, "wait"); }

  /// As `wait()`, giving up after `timeout`; returns false if it timed out
  /// (the lock is reacquired either way).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout), "wait");
  }

  /// Waits until `pred()` is true; returns its last value (true).
  /// `pred` runs with the lock held. Python's `wait_for(predicate)`.
  template <class Pred>
  bool wait_for(Pred pred) {
    check_owned("wait_for");
    while (!pred()) (void)wait_until(std::nullopt, "wait_for");
    return true;
  }

  /// Waits until `pred()` is true or `timeout` passed; returns the last
  /// value of `pred()`. Python's `wait_for(predicate, timeout)`.
  template <class Pred, class Rep, class Period>
  bool wait_for(Pred pred, std::chrono::duration<Rep, Period> timeout) {
    check_owned("wait_for");
    const auto deadline = detail::deadline_after(timeout);
    bool result = pred();
    while (!result) {
      if (detail::Clock::now() >= deadline) break;
      (void)wait_until(deadline, "wait_for");
      result = pred();
    }
    return result;
  }

  /// Wakes the first `n` waiters (fewer if fewer wait).
  /// Throws: `std::logic_error` if the lock is not held. Never blocks.
  void notify(std::size_t n = 1) {
    check_owned("notify");
    while (n != 0 && head_ != nullptr) {
      Waiter* w = head_;
      unlink(w);
      // The waiter cannot return before it reacquires the lock we hold, so
      // *w stays alive until the end of this call.
      if (w->state.exchange(signaled, std::memory_order_release) == sleeping)
        detail::futex_wake(w->state, 1);
      --n;
    }
  }

  /// Wakes every waiter. Throws: `std::logic_error` if the lock is not held.
  void notify_all() { notify(static_cast<std::size_t>(-1)); }

private:
  static constexpr std::uint32_t waiting = 0;   // spinning, not yet asleep
  static constexpr std::uint32_t sleeping = 1;  // in futex_wait (or about to be)
  static constexpr std::uint32_t signaled = 2;

  // One per waiting thread, on its stack, linked in FIFO order.
  struct Waiter {
    detail::atomic<std::uint32_t> state{waiting};
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
  };

  void check_owned(const char* what) const {
    const bool owned = rlock_ ? rlock_->is_owned() : lock_->locked();
    if (!owned)
      throw std::logic_error(std::string("spindle::Condition::") + what +
                             ": the lock is not held (acquire it first)");
  }

  bool wait_until(std::optional<detail::Clock::time_point> deadline, const char* what) {
    check_owned(what);
    Waiter self;
    link(&self);  // guarded by the lock, which we hold
    std::size_t depth = 0;
    if (rlock_) {
      depth = rlock_->release_all();
    } else {
      (void)lock_->core_.unlock();
    }
    bool notified = sleep(self, deadline);
    if (rlock_) {
      rlock_->reacquire(depth);
    } else {
      lock_->core_.lock();
    }
    if (!notified) {
      // A notify may have picked us between the deadline and now: then it
      // counts (it was meant for one waiter, and we are that waiter).
      if (self.state.load(std::memory_order_acquire) == signaled) {
        notified = true;
      } else {
        unlink(&self);
      }
    }
    return notified;
  }

  static bool sleep(Waiter& self, std::optional<detail::Clock::time_point> deadline) noexcept {
    detail::HandoffBackoff backoff;
    while (backoff.step()) {
      if (self.state.load(std::memory_order_acquire) == signaled) return true;
    }
    std::uint32_t s = waiting;
    if (!self.state.compare_exchange_strong(s, sleeping, std::memory_order_acquire,
                                            std::memory_order_acquire))
      return true;  // signaled meanwhile
    for (;;) {
      if (self.state.load(std::memory_order_acquire) == signaled) return true;
      if (deadline && detail::Clock::now() >= *deadline) return false;
      detail::futex_wait(self.state, sleeping, deadline);
    }
  }

  void link(Waiter* w) noexcept {
    w->prev = tail_;
    if (tail_) {
      tail_->next = w;
    } else {
      head_ = w;
    }
    tail_ = w;
  }

  void unlink(Waiter* w) noexcept {
    (w->prev ? w->prev->next : head_) = w->next;
    (w->next ? w->next->prev : tail_) = w->prev;
    w->prev = w->next = nullptr;
  }

  Lock own_;
  Lock* lock_ = nullptr;
  RLock* rlock_ = nullptr;
  Waiter* head_ = nullptr;  // guarded by the lock
  Waiter* tail_ = nullptr;  // guarded by the lock
};

/// A counter of permits: Python's `threading.Semaphore`. `acquire` takes a
/// permit, waiting while there is none; `release(n)` returns `n`.
///
/// Thread-safe; release happens-before the acquire that takes its permit.
/// Neither call enters the kernel unless a thread has to sleep. The value
/// is held in 32 bits: a release past 4,294,967,295 permits throws
/// `std::overflow_error` (Python's is unbounded).
class Semaphore : public detail::LockableNames<Semaphore> {
public:
  /// Throws: `std::invalid_argument` if `value` is negative or over the maximum.
  explicit Semaphore(std::ptrdiff_t value = 1)
      : max_(UINT32_MAX), core_(checked(value, "Semaphore")) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes a permit. Blocks: while none is available. Thread-safe.
  void acquire() noexcept { (void)core_.acquire_until(std::nullopt); }

  /// As `acquire()`, giving up after `timeout`; true if a permit was taken.
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) noexcept {
    return core_.try_acquire() || core_.acquire_until(detail::deadline_after(timeout));
  }

  /// Takes a permit only if one is available. Never blocks.
  bool try_acquire() noexcept { return core_.try_acquire(); }

  /// Returns `n` permits, waking up to `n` waiters. Never blocks.
  /// Throws: `std::invalid_argument` if `n` < 1 (Python's ValueError);
  /// `std::logic_error` for a BoundedSemaphore pushed past its initial value;
  /// `std::overflow_error` past the 32-bit maximum.
  void release(std::ptrdiff_t n = 1) {
    if (n < 1) throw std::invalid_argument("spindle::Semaphore::release: n must be one or more");
    if (n > static_cast<std::ptrdiff_t>(max_) || !core_.release(static_cast<std::uint32_t>(n), max_)) {
      if (bounded_)
        throw std::logic_error("spindle::BoundedSemaphore::release: released too many times (value " +
                               std::to_string(core_.value()) + " + " + std::to_string(n) +
                               " > initial value " + std::to_string(max_) + ")");
      throw std::overflow_error("spindle::Semaphore::release: the value would pass 4294967295");
    }
  }

  /// The permits available now (a snapshot; Python's `_value`).
  std::size_t value() const noexcept { return core_.value(); }

protected:
  Semaphore(std::ptrdiff_t value, bool bounded)
      : max_(static_cast<std::uint32_t>(checked(value, "BoundedSemaphore"))),
        bounded_(bounded),
        core_(max_) {}

private:
  static std::uint32_t checked(std::ptrdiff_t value, const char* who) {
    if (value < 0 || static_cast<std::uint64_t>(value) > UINT32_MAX)
      throw std::invalid_argument(std::string("spindle::") + who + ": initial value " +
                                  std::to_string(value) + " is not in 0..4294967295");
    return static_cast<std::uint32_t>(value);
  }

  // The bound first, the counter on a cache line of its own: a release reads
  // max_, and sharing the counter's line would make every release fetch the
  // line once to read and again to write (measured: 0.4x std's throughput
  // with 4 threads and 2 permits, before this).
  const std::uint32_t max_;
  const bool bounded_ = false;
  alignas(64) detail::SemaphoreCore core_;
};

/// A Semaphore that may not be released above its initial value: Python's
/// `threading.BoundedSemaphore`. Such a release throws `std::logic_error`
/// (Python's ValueError) and changes nothing: it catches a release without
/// a matching acquire.
class BoundedSemaphore : public Semaphore {
public:
  /// Throws: `std::invalid_argument` if `value` is negative or over the maximum.
  explicit BoundedSemaphore(std::ptrdiff_t value = 1) : Semaphore(value, true) {}
};

/// A rendezvous of a fixed number of threads: Python's `threading.Barrier`.
///
/// `wait()` blocks until `parties` threads are waiting, then releases them
/// all, and the barrier is ready for the next round. Each `wait` returns
/// its arrival index, 0 for the first to arrive up to `parties - 1` for the
/// last. Before any is released, the last to arrive runs `action` (if any).
///
/// Broken state: a `wait` timeout, `abort()`, `reset()` while threads wait,
/// or an `action` that throws breaks the barrier: every thread waiting in
/// that round throws `BrokenBarrierError`, and so does every later `wait`
/// until `reset()` (a throwing action's exception goes to the thread that
/// ran it). Thread-safe; what every party wrote before `wait` is visible to
/// every party after it.
///
/// Differences from Python: calling `wait` from inside the action is a
/// `std::logic_error` (in Python it stalls until a timeout breaks the
/// barrier); an action that calls `abort()` breaks that round.
class Barrier {
public:
  /// Throws: `std::invalid_argument` if `parties` is 0 (Python's ValueError).
  explicit Barrier(std::size_t parties, std::function<void()> action = {},
                   std::optional<std::chrono::nanoseconds> timeout = std::nullopt)
      : parties_(parties), action_(std::move(action)), timeout_(timeout) {
    if (parties == 0) throw std::invalid_argument("spindle::Barrier: parties must be >= 1");
  }
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;

  /// Waits for the round to fill (the constructor's timeout, if any);
  /// returns the arrival index. Blocks: until `parties` threads wait.
  /// Throws: `BrokenBarrierError` as above; whatever `action` throws (in
  /// the thread that ran it).
  std::size_t wait() {
    return wait_until(timeout_ ? std::optional(detail::deadline_after(*timeout_)) : std::nullopt);
  }

  /// As `wait()` with a timeout for this call; when it passes, the barrier
  /// breaks and this call throws `BrokenBarrierError`.
  template <class Rep, class Period>
  std::size_t wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::deadline_after(timeout));
  }

  /// Returns the barrier to its empty, unbroken state; threads waiting now
  /// throw `BrokenBarrierError`. Never blocks (beyond the internal lock).
  void reset();

  /// Breaks the barrier: threads waiting now and later throw
  /// `BrokenBarrierError` until `reset()`.
  void abort();

  /// True if the barrier is broken. Never blocks.
  bool broken() const noexcept { return broken_.load(std::memory_order_acquire); }

  /// The number of threads needed to trip the barrier.
  std::size_t parties() const noexcept { return parties_; }

  /// The number of threads waiting in the current round (a snapshot).
  std::size_t n_waiting() const noexcept { return waiting_.load(std::memory_order_relaxed); }

private:
  enum class Outcome : std::uint8_t { pending, passed, broken };
  struct Waiter {
    Outcome outcome = Outcome::pending;  // guarded by lock_; read after round_ changes
    Waiter* next = nullptr;
  };

  std::size_t wait_until(std::optional<detail::Clock::time_point> deadline);
  void trip(Outcome outcome) noexcept;  // lock_ held: ends the round
  // Waits until round_ != round; false if the deadline passed first.
  bool sleep_past(std::uint32_t round, std::optional<detail::Clock::time_point> deadline) noexcept;

  const std::size_t parties_;
  const std::function<void()> action_;
  const std::optional<std::chrono::nanoseconds> timeout_;
  // A reentrant lock so that the action may call abort() or reset().
  RLock lock_;
  Waiter* waiters_ = nullptr;  // guarded by lock_
  std::size_t count_ = 0;      // guarded by lock_
  bool in_action_ = false;     // guarded by lock_
  detail::atomic<std::size_t> waiting_{0};  // count_, readable without the lock
  detail::atomic<bool> broken_{false};      // written under lock_
  // Bumped (under lock_) when a round ends; waiters spin, then futex-wait on it.
  detail::atomic<std::uint32_t> round_{0};
  detail::atomic<std::uint32_t> sleepers_{0};
};

inline std::size_t Barrier::wait_until(std::optional<detail::Clock::time_point> deadline) {
  Waiter self;
  std::size_t index = 0;
  std::uint32_t round = 0;
  {
    std::lock_guard hold(lock_);
    if (in_action_)
      throw std::logic_error("spindle::Barrier::wait: called from the barrier's action");
    if (broken_.load(std::memory_order_relaxed))
      throw BrokenBarrierError("spindle::Barrier::wait: the barrier is broken");
    index = count_++;
    if (count_ == parties_) {
      if (action_) {
        in_action_ = true;
        try {
          action_();
        } catch (...) {
          in_action_ = false;
          trip(Outcome::broken);
          throw;
        }
        in_action_ = false;
        // The action aborted or reset the barrier: this round did not pass.
        if (broken_.load(std::memory_order_relaxed) || count_ != parties_)
          throw BrokenBarrierError("spindle::Barrier::wait: the barrier was broken by its action");
      }
      trip(Outcome::passed);
      return index;
    }
    waiting_.store(count_, std::memory_order_relaxed);
    self.next = waiters_;
    waiters_ = &self;
    round = round_.load(std::memory_order_relaxed);
  }
  // If round_ moves on, trip() wrote our outcome before it did (and the
  // acquire load in sleep_past makes that visible); otherwise the deadline
  // passed and we look under the lock.
  if (!sleep_past(round, deadline)) {
    std::lock_guard hold(lock_);
    if (self.outcome == Outcome::pending) {
      trip(Outcome::broken);  // the timeout breaks the round
      throw BrokenBarrierError("spindle::Barrier::wait: timed out; the barrier is now broken");
    }
  }
  if (self.outcome == Outcome::broken)
    throw BrokenBarrierError(
        "spindle::Barrier::wait: the barrier was broken (abort, reset, timeout or a throwing "
        "action)");
  return index;
}

inline void Barrier::trip(Outcome outcome) noexcept {
  for (Waiter* w = waiters_; w != nullptr; w = w->next) w->outcome = outcome;
  waiters_ = nullptr;
  count_ = 0;
  waiting_.store(0, std::memory_order_relaxed);
  if (outcome == Outcome::broken) broken_.store(true, std::memory_order_release);
  // After this store no waiter's node is touched again (they may return).
  round_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) != 0) detail::futex_wake(round_, INT_MAX);
}

inline bool Barrier::sleep_past(std::uint32_t round,
                                std::optional<detail::Clock::time_point> deadline) noexcept {
  detail::HandoffBackoff backoff;
  while (backoff.step()) {
    if (round_.load(std::memory_order_acquire) != round) return true;
  }
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  bool passed = true;
  while (round_.load(std::memory_order_seq_cst) == round) {
    if (deadline && detail::Clock::now() >= *deadline) {
      passed = false;
      break;
    }
    detail::futex_wait(round_, round, deadline);
  }
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return passed;
}

inline void Barrier::reset() {
  std::lock_guard hold(lock_);
  if (waiters_ != nullptr || count_ != 0) trip(Outcome::broken);
  broken_.store(false, std::memory_order_release);
}

inline void Barrier::abort() {
  std::lock_guard hold(lock_);
  trip(Outcome::broken);
}

}  // namespace spindle
