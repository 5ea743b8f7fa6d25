// SPDX-License-Identifier: MIT
// spindle/queue.hpp - ClosableQueue, LifoQueue, PriorityQueue (Python's queue).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <functional>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "detail/fifo_storage.hpp"
#include "detail/queue_storage.hpp"
#include "detail/wait.hpp"
#include "errors.hpp"

namespace spindle {

/// The interface shared by `ClosableQueue`, `LifoQueue` and `PriorityQueue`:
/// Python's `queue.Queue` with a real `close()` (Python 3.13's `shutdown()`)
/// instead of a sentinel object. Use one of the three named queues; the
/// `Storage` parameter is an implementation detail.
///
/// Semantics:
/// - `put` blocks while the queue is full (backpressure); `get` blocks while
///   it is empty.
/// - `close()` makes every put fail with `QueueClosed`; gets keep returning
///   the items already in the queue, then throw `QueueClosed`. A put racing
///   `close()` either lands (and will be gotten) or throws: never lost.
/// - `task_done()` / `join()` count items as Python's do; iterating with
///   range-for marks each item done as the loop moves past it.
/// - Timeouts are `std::chrono` durations; a zero or negative timeout means
///   "do not wait" (Python treats a negative timeout as an error; C++ callers
///   compute timeouts as differences, so we clamp, as Abseil does).
///
/// Thread-safe: every member may be called from any number of threads at
/// once. A successful put happens-before the get that returns its item;
/// `close()` happens-before the `QueueClosed` it causes; the last
/// `task_done()` happens-before the return of `join()`.
///
/// Blocking waits spin briefly, then sleep on a futex; producers and
/// consumers make a system call only when the other side sleeps, and wake
/// one sleeper per item.
template <class T, class Storage>
class BasicQueue {
  class Iterator;

public:
  using value_type = T;
  using size_type = std::size_t;

  /// The largest `maxsize` accepted. Larger values, including negative
  /// numbers converted to `std::size_t`, throw `std::invalid_argument`.
  static constexpr std::size_t max_maxsize = std::size_t{1} << 48;

  BasicQueue(const BasicQueue&) = delete;
  BasicQueue& operator=(const BasicQueue&) = delete;

  /// Destroys the queue and any items still in it. No thread may be using
  /// the queue any more (close it and join your workers first).
  ~BasicQueue() = default;

  /// Puts `item`, blocking while the queue is full: Python's `put(item)`.
  /// Blocks: while full. Throws: `QueueClosed` if the queue is or becomes
  /// closed (the item is then destroyed with the exception; use `try_put`
  /// to keep it). Thread-safe.
  void put(T item) { raise(push_until(item, std::nullopt)); }

  /// Puts `item`, blocking at most `timeout` while the queue is full:
  /// Python's `put(item, timeout=...)`.
  /// Blocks: at most about `timeout`. Throws: `QueueFull` on timeout,
  /// `QueueClosed` if closed. Thread-safe.
  template <class Rep, class Period>
  void put(T item, std::chrono::duration<Rep, Period> timeout) {
    raise(push_for(item, timeout), timeout);
  }

  /// Puts `item` if there is room now: Python's `put_nowait(item)`.
  /// Never blocks. Throws: `QueueFull`, `QueueClosed`. Thread-safe.
  void put_nowait(T item) { raise(push_until(item, no_wait())); }

  /// Puts `item` if there is room now; returns false if the queue is full or
  /// closed, and then leaves `item` untouched with the caller.
  /// Never blocks. Never throws for full/closed. Thread-safe.
  bool try_put(T&& item) { return push_until(item, no_wait()) == detail::PushResult::ok; }

  /// Copies `item` in if there is room now; false if full or closed.
  bool try_put(const T& item) {
    T copy(item);
    return try_put(std::move(copy));
  }

  /// Puts `item`, waiting at most `timeout` for room; returns false on
  /// timeout or close, leaving `item` untouched with the caller.
  /// Blocks: at most about `timeout`. Thread-safe.
  template <class Rep, class Period>
  bool try_put(T&& item, std::chrono::duration<Rep, Period> timeout) {
    return push_for(item, timeout) == detail::PushResult::ok;
  }

  /// Copies `item` in, waiting at most `timeout` for room; false on timeout
  /// or close. Blocks: at most about `timeout`. Thread-safe.
  template <class Rep, class Period>
  bool try_put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    T copy(item);
    return try_put(std::move(copy), timeout);
  }

  /// Removes and returns the next item, blocking while the queue is empty:
  /// Python's `get()`.
  /// Blocks: while empty and open. Throws: `QueueClosed` once the queue is
  /// closed and drained. Thread-safe.
  T get() {
    std::optional<T> out;
    return take(pop_until(out, std::nullopt), out);
  }

  /// Removes and returns the next item, waiting at most `timeout`: Python's
  /// `get(timeout=...)`.
  /// Blocks: at most about `timeout`. Throws: `QueueEmpty` on timeout,
  /// `QueueClosed` if closed and drained. Thread-safe.
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    std::optional<T> out;
    return take(pop_for(out, timeout), out, timeout);
  }

  /// Removes and returns the next item if there is one now: Python's
  /// `get_nowait()`.
  /// Never blocks. Throws: `QueueEmpty`, or `QueueClosed` if closed and
  /// drained. Thread-safe.
  T get_nowait() {
    std::optional<T> out;
    return take(pop_until(out, no_wait()), out);
  }

  /// The next item if there is one now; `std::nullopt` if the queue is empty
  /// (open or closed). Never blocks. Never throws for empty/closed.
  std::optional<T> try_get() {
    std::optional<T> out;
    (void)pop_until(out, no_wait());
    return out;
  }

  /// The next item, waiting at most `timeout`; `std::nullopt` on timeout or
  /// once closed and drained. Blocks: at most about `timeout`. Thread-safe.
  template <class Rep, class Period>
  std::optional<T> try_get(std::chrono::duration<Rep, Period> timeout) {
    std::optional<T> out;
    (void)pop_for(out, timeout);
    return out;
  }

  /// Closes the queue: Python 3.13's `shutdown()` (without `immediate`).
  /// Later puts throw `QueueClosed`; gets drain what is left, then throw.
  /// Wakes every blocked producer and consumer. Idempotent. Never blocks.
  /// Thread-safe.
  void close() noexcept {
    storage_.close();
    // notify_all: every sleeper must see the close, not one per item.
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  /// True once `close()` has been called. Never blocks. Thread-safe.
  bool closed() const noexcept { return storage_.is_closed(); }

  /// Marks one item gotten from the queue as processed: Python's
  /// `task_done()`. When every item ever put is done, `join()` returns.
  /// Never blocks. Throws: `std::logic_error` if called more times than
  /// items were put (Python's ValueError). Thread-safe.
  void task_done() {
    if (!release_task())
      throw std::logic_error("spindle queue: task_done() called more times than items were put (" +
                             std::to_string(storage_.pushed()) + " put, all of them done)");
  }

  /// Blocks until every item ever put has been marked done: Python's
  /// `join()`. Independent of `close()`.
  /// Blocks: until the count of unfinished items is zero. Thread-safe.
  void join() const { (void)join_until(std::nullopt); }

  /// As `join()`, waiting at most `timeout`; returns true if every item is
  /// done. Blocks: at most about `timeout`. Thread-safe.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    return join_until(detail::deadline_after(timeout));
  }

  /// The number of items in the queue: Python's `qsize()`. A snapshot that
  /// may be stale by the time the caller looks at it. Never blocks.
  std::size_t qsize() const noexcept { return storage_.size(); }

  /// True if the queue holds no items (a snapshot). Never blocks.
  bool empty() const noexcept { return qsize() == 0; }

  /// True if the queue is bounded and holds `maxsize()` items (a snapshot).
  /// Never blocks.
  bool full() const noexcept { return maxsize() != 0 && qsize() >= maxsize(); }

  /// The bound given at construction; 0 means unbounded. Never blocks.
  std::size_t maxsize() const noexcept { return storage_.capacity(); }

  /// Range-for support: `for (T item : queue)` gets items until the queue is
  /// closed and drained, and marks each item done (`task_done()`) when the
  /// loop moves past it, also when the body breaks or throws. The iterator
  /// yields `T&&`, so move-only items work (`for (auto&& x : q)` too).
  /// Blocks: in `begin()` and `++` while the queue is empty and open.
  Iterator begin() { return Iterator(*this); }

  /// The end of iteration: reached once the queue is closed and drained.
  std::default_sentinel_t end() const noexcept { return {}; }

protected:
  template <class... StorageArgs>
  explicit BasicQueue(std::size_t maxsize, StorageArgs&&... args)
      : storage_(checked(maxsize), std::forward<StorageArgs>(args)...) {}

private:
  using Deadline = std::optional<detail::Clock::time_point>;

  // The iterator behind range-for. Move-only: it owns the current item and
  // the duty to mark it done.
  class Iterator {
  public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = T&&;
    using iterator_concept = std::input_iterator_tag;

    explicit Iterator(BasicQueue& queue) : queue_(&queue) { advance(); }
    Iterator(Iterator&& other) noexcept
        : queue_(std::exchange(other.queue_, nullptr)), item_(std::move(other.item_)) {
      other.item_.reset();
    }
    Iterator& operator=(Iterator&& other) noexcept {
      if (this != &other) {
        finish_item();
        queue_ = std::exchange(other.queue_, nullptr);
        item_ = std::move(other.item_);
        other.item_.reset();
      }
      return *this;
    }
    ~Iterator() { finish_item(); }

    T&& operator*() const { return std::move(*item_); }
    Iterator& operator++() {
      finish_item();
      advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const Iterator& it, std::default_sentinel_t) noexcept {
      return !it.item_.has_value();
    }

  private:
    void advance() {
      if (queue_ != nullptr) (void)queue_->pop_until(item_, std::nullopt);
    }
    // The loop moved past the item (or left the loop): it is done. Never
    // throws: if the caller already marked it done by hand, the count is
    // left alone rather than throwing from a destructor.
    void finish_item() noexcept {
      if (!item_) return;
      item_.reset();
      (void)queue_->release_task();
    }

    BasicQueue* queue_;
    mutable std::optional<T> item_;
  };

  static std::size_t checked(std::size_t maxsize) {
    if (maxsize > max_maxsize)
      throw std::invalid_argument("spindle queue: maxsize " + std::to_string(maxsize) + " (" +
                                  std::to_string(static_cast<std::ptrdiff_t>(maxsize)) +
                                  " as a signed number) is negative or absurdly large (the limit is " +
                                  std::to_string(max_maxsize) + "; 0 means unbounded)");
    return maxsize;
  }

  // A deadline in the past: try once, never wait.
  static Deadline no_wait() noexcept { return (detail::Clock::time_point::min)(); }

  static bool expired(const Deadline& deadline) noexcept {
    return deadline &&
           (*deadline == (detail::Clock::time_point::min)() || detail::Clock::now() >= *deadline);
  }

  // Python's messages, with the values that explain them. `timeout` is
  // empty for the nowait calls.
  using Seconds = std::optional<std::chrono::duration<double>>;

  void raise(detail::PushResult result, Seconds timeout = std::nullopt) const {
    if (result == detail::PushResult::closed) throw QueueClosed("put on a closed queue");
    if (result != detail::PushResult::full) return;
    const std::string bound = "(maxsize " + std::to_string(maxsize()) + ")";
    if (!timeout) throw QueueFull("put_nowait on a full queue " + bound);
    throw QueueFull("put timed out after " + seconds(*timeout) + ": the queue stayed full " +
                    bound);
  }

  // The item a get popped into `out`, or the exception its `result` means.
  T take(detail::PopResult result, std::optional<T>& out, Seconds timeout = std::nullopt) {
    switch (result) {
      case detail::PopResult::ok: return std::move(*out);
      case detail::PopResult::closed: throw QueueClosed("get on a closed and drained queue");
      case detail::PopResult::empty: break;
    }
    if (!timeout) throw QueueEmpty("get_nowait on an empty queue");
    throw QueueEmpty("get timed out after " + seconds(*timeout) + ": the queue stayed empty");
  }

  static std::string seconds(std::chrono::duration<double> d) {
    return detail::seconds_text(d.count()) + " s";
  }

  // The timed calls try once before reading the clock: when there is room
  // (an item) already, a timeout costs nothing.
  template <class Rep, class Period>
  detail::PushResult push_for(T& item, std::chrono::duration<Rep, Period> timeout) {
    const detail::PushResult result = push_until(item, no_wait());
    if (result != detail::PushResult::full) return result;
    return push_until(item, detail::deadline_after(timeout));
  }

  template <class Rep, class Period>
  detail::PopResult pop_for(std::optional<T>& out, std::chrono::duration<Rep, Period> timeout) {
    const detail::PopResult result = pop_until(out, no_wait());
    if (result != detail::PopResult::empty) return result;
    return pop_until(out, detail::deadline_after(timeout));
  }

  // Pushes `item` (moving from it only on success), waiting for room until
  // `deadline` (nullopt = forever).
  detail::PushResult push_until(T& item, Deadline deadline) {
    detail::PushResult result = push_wait(item, deadline);
    if (result == detail::PushResult::ok) not_empty_.notify_one();
    return result;
  }

  detail::PushResult push_wait(T& item, Deadline deadline) {
    detail::Backoff backoff;
    for (;;) {
      detail::PushResult result = storage_.try_push(item);
      if (result != detail::PushResult::full || expired(deadline)) return result;
      if (backoff.step()) continue;
      const auto key = not_full_.prepare_wait();
      result = storage_.try_push(item);
      if (result != detail::PushResult::full) {
        not_full_.cancel_wait();
        return result;
      }
      not_full_.wait(key, deadline);
    }
  }

  // Pops into `out`, waiting for an item until `deadline` (nullopt = forever).
  detail::PopResult pop_until(std::optional<T>& out, Deadline deadline) {
    detail::PopResult result = pop_wait(out, deadline);
    // Only a bounded queue has producers waiting for room.
    if (result == detail::PopResult::ok && storage_.capacity() != 0) not_full_.notify_one();
    return result;
  }

  detail::PopResult pop_wait(std::optional<T>& out, Deadline deadline) {
    detail::Backoff backoff;
    for (;;) {
      detail::PopResult result = storage_.try_pop(out);
      if (result != detail::PopResult::empty || expired(deadline)) return result;
      if (backoff.step()) continue;
      const auto key = not_empty_.prepare_wait();
      result = storage_.try_pop(out);
      if (result != detail::PopResult::empty) {
        not_empty_.cancel_wait();
        return result;
      }
      not_empty_.wait(key, deadline);
    }
  }

  // Counts one more item done; false (and no change) if every item put is
  // done already. Python's unfinished_tasks is pushed() - done_: the storage
  // counts a push when it claims a slot, before any consumer can get the
  // item, so producers pay nothing extra for task accounting.
  bool release_task() noexcept {
    std::size_t done = done_.load(std::memory_order_relaxed);
    do {
      if (done >= storage_.pushed()) return false;
    } while (!done_.compare_exchange_weak(done, done + 1, std::memory_order_acq_rel,
                                          std::memory_order_relaxed));
    if (done + 1 == storage_.pushed()) all_done_.notify_all();
    return true;
  }

  // Both counts only grow and done_ never passes pushed(): reading done_
  // first, equality means that at that moment every item was done.
  bool all_done() const noexcept {
    const std::size_t done = done_.load(std::memory_order_acquire);
    return done == storage_.pushed();
  }

  bool join_until(Deadline deadline) const {
    for (;;) {
      if (all_done()) return true;
      if (expired(deadline)) return false;
      const auto key = all_done_.prepare_wait();
      if (all_done()) {
        all_done_.cancel_wait();
        return true;
      }
      all_done_.wait(key, deadline);
    }
  }

  Storage storage_;
  detail::EventCount not_empty_;  // consumers sleep here
  detail::EventCount not_full_;   // producers of a bounded queue sleep here
  mutable detail::EventCount all_done_;  // join() sleeps here
  // Items marked done (by task_done or by range-for), ever.
  alignas(64) std::atomic<std::size_t> done_{0};
};

/// A blocking multi-producer multi-consumer FIFO queue that can be closed:
/// Python's `queue.Queue`, and Effective Python's ClosableQueue with a real
/// close instead of a sentinel object. See `BasicQueue` for the semantics.
///
/// Lock-free underneath: a ring buffer of exactly `maxsize` slots when
/// bounded (up to 65536; larger bounds use the unbounded list plus a
/// counter), a linked list of 31-slot blocks when unbounded. Types whose
/// move constructor may throw get a mutex-guarded deque instead, since a
/// lock-free slot cannot be un-claimed.
///
/// ```
/// spindle::ClosableQueue<std::string> lines(100);
/// std::thread reader([&] { for (std::string line : lines) print(line); });
/// lines.put("hello");
/// lines.close();  // the reader's loop ends once the queue is drained
/// reader.join();
/// ```
template <class T>
class ClosableQueue : public BasicQueue<T, detail::FifoStorage<T>> {
public:
  /// A queue holding at most `maxsize` items; 0 means unbounded.
  /// Throws: `std::invalid_argument` if `maxsize` is above `max_maxsize`
  /// (as a negative number converted to `std::size_t` is).
  explicit ClosableQueue(std::size_t maxsize = 0)
      : BasicQueue<T, detail::FifoStorage<T>>(maxsize) {}
};

/// A closable last-in, first-out queue: Python's `queue.LifoQueue`. Same
/// interface and semantics as `ClosableQueue` (see `BasicQueue`); guarded by
/// a mutex, since it is about ordering rather than throughput.
template <class T>
class LifoQueue
    : public BasicQueue<T, detail::LockedStorage<T, std::vector<T>, detail::StackPolicy>> {
public:
  /// A queue holding at most `maxsize` items; 0 means unbounded.
  /// Throws: `std::invalid_argument` as `ClosableQueue`'s constructor.
  explicit LifoQueue(std::size_t maxsize = 0)
      : BasicQueue<T, detail::LockedStorage<T, std::vector<T>, detail::StackPolicy>>(maxsize) {}
};

/// A closable priority queue returning the lowest item first (by `Compare`,
/// `std::less` by default): Python's `queue.PriorityQueue`. Items that
/// compare equal come out in no particular order (pair them with a sequence
/// number for FIFO ties, as Python's docs advise). Same interface and
/// semantics as `ClosableQueue` (see `BasicQueue`); guarded by a mutex.
template <class T, class Compare = std::less<T>>
class PriorityQueue
    : public BasicQueue<T, detail::LockedStorage<T, std::vector<T>, detail::HeapPolicy<Compare>>> {
  using Base = BasicQueue<T, detail::LockedStorage<T, std::vector<T>, detail::HeapPolicy<Compare>>>;

public:
  /// A queue holding at most `maxsize` items (0 = unbounded), ordered by
  /// `compare`. Throws: `std::invalid_argument` as `ClosableQueue`'s.
  explicit PriorityQueue(std::size_t maxsize = 0, Compare compare = Compare())
      : Base(maxsize, detail::HeapPolicy<Compare>{std::move(compare)}) {}
};

}  // namespace spindle
