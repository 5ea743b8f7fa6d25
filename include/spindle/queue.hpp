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
#include "detail/queue_iteration.hpp"
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
///   range-for marks each item done as the loop moves past it, unless the
///   body marked it with `task_done()` (see `task_done`), so
///   `for (T x : q) { work(x); q.task_done(); }` counts each item once.
/// - Range-for takes items lazily, so `q | std::views::take(n)` takes
///   exactly n items.
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
  ///
  /// Inside a range-for body: the first `task_done()` the iterating thread
  /// calls on this queue during an iteration marks the loop's current item
  /// (the innermost loop's, if loops over one queue nest), and the loop then
  /// does not mark it again. So both `for (T x : q) work(x);` and the
  /// Python port `for (T x : q) { work(x); q.task_done(); }` count each
  /// item once, and `join()` cannot return while `work(x)` runs. Further
  /// calls in the same iteration count as usual (e.g. for items the body
  /// took with `get()`: call task_done once for the loop's item and once
  /// for each of those). Only the iterating thread's own calls are matched
  /// to its loop: a call from any other thread counts as usual, so handing
  /// a loop's item to another thread to mark done counts it twice (use
  /// `get()` for hand-offs).
  ///
  /// Never blocks. Throws: `std::logic_error` if called more times than
  /// items were put (Python's ValueError). Thread-safe.
  void task_done() {
    detail::IterationFrame* loop = detail::innermost_frame(this);
    if (!release_task())
      throw std::logic_error("spindle queue: task_done() called more times than items were put (" +
                             std::to_string(storage_.pushed()) + " put, all of them done)");
    if (loop != nullptr) loop->marked = true;
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
  /// loop moves past it, also when the body breaks or throws; a body that
  /// calls `task_done()` itself for the item is not counted twice (see
  /// `task_done`). The iterator yields `T&&`, so move-only items work
  /// (`for (auto&& x : q)` too).
  ///
  /// The iterator is lazy: it takes an item when it is looked at (`*it`, or
  /// `it == end()`), never in `++`, so range adaptors take only what they
  /// yield: `q | std::views::take(n)` takes n items and leaves the rest.
  /// An iterator is a single-thread object: the thread that took its item
  /// moves past it (do not move an iterator holding an item to another
  /// thread).
  /// Blocks: in `it == end()` (and in `*it` when not compared first) while
  /// the queue is empty and open; never in `begin()` or `++it` after `*it`.
  Iterator begin() noexcept { return Iterator(*this); }

  /// The end of iteration: reached once the queue is closed and drained.
  std::default_sentinel_t end() const noexcept { return {}; }

protected:
  template <class... StorageArgs>
  explicit BasicQueue(std::size_t maxsize, StorageArgs&&... args)
      : storage_(checked(maxsize), std::forward<StorageArgs>(args)...) {}

private:
  using Deadline = std::optional<detail::Clock::time_point>;

  // The iterator behind range-for. Move-only: it owns the current item and
  // the duty to mark it done. Lazy: it takes an item from the queue only
  // when the item is looked at (`*it`, or `it == end`, which must know
  // whether there is one), never in `++`, so a range adaptor that stops
  // after n items (`std::views::take(n)`) takes exactly n.
  class Iterator {
  public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = T&&;
    using iterator_concept = std::input_iterator_tag;

    explicit Iterator(BasicQueue& queue) noexcept : queue_(&queue) {}
    Iterator(Iterator&& other) noexcept { take_over(other); }
    Iterator& operator=(Iterator&& other) noexcept {
      if (this != &other) {
        finish_item();
        take_over(other);
      }
      return *this;
    }
    ~Iterator() { finish_item(); }

    // Takes the next item first if none is held. Throws QueueClosed at the
    // end (closed and drained), where a standard iterator would be UB.
    T&& operator*() const {
      if (state_ == State::pending) fetch();
      if (state_ != State::holding)
        throw QueueClosed("dereferenced a queue iterator at the end (the queue is closed and drained)");
      return std::move(*item_);
    }
    // Moves past the current item, marking it done. With no item held yet
    // (`++` without looking), takes one and moves past it: `++` skips one
    // item, as for any input iterator.
    Iterator& operator++() {
      if (state_ == State::pending) fetch();
      finish_item();
      return *this;
    }
    void operator++(int) { ++*this; }
    // Blocks while the queue is empty and open: whether the iteration ended
    // is only known once an item arrives or the queue is closed.
    friend bool operator==(const Iterator& it, std::default_sentinel_t) {
      if (it.state_ == State::pending) it.fetch();
      return it.state_ == State::ended;
    }

  private:
    enum class State : unsigned char { pending, holding, ended };

    void fetch() const {
      if (queue_->pop_until(item_, std::nullopt) == detail::PopResult::ok) {
        state_ = State::holding;
        detail::link_frame(frame_, queue_);
      } else {
        state_ = State::ended;
      }
    }

    // The loop moved past the item (or left the loop): it is done, unless
    // the body already marked it with task_done() (see BasicQueue's
    // task_done). Never throws: if release_task() finds every item already
    // done (the program called task_done() too often for other items), the
    // count is left as it is, since a destructor cannot report it.
    // The queue_ check is redundant with state_ but keeps g++ 12 at -O2 from
    // warning (-Wstringop-overflow) about a moved-from iterator's null queue
    // inside views::take.
    void finish_item() noexcept {
      if (state_ != State::holding || queue_ == nullptr) return;
      detail::unlink_frame(frame_);
      item_.reset();
      state_ = State::pending;
      if (!frame_.marked) (void)queue_->release_task();
    }

    void take_over(Iterator& other) noexcept {
      queue_ = std::exchange(other.queue_, nullptr);
      state_ = std::exchange(other.state_, State::ended);
      if (state_ == State::holding) {
        item_ = std::move(other.item_);
        detail::move_frame(other.frame_, frame_);
      }
      other.item_.reset();
    }

    BasicQueue* queue_ = nullptr;
    mutable std::optional<T> item_;
    mutable State state_ = State::pending;
    // Linked into the taking thread's list while holding (see
    // detail/queue_iteration.hpp).
    mutable detail::IterationFrame frame_;
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

/// An unbounded closable FIFO queue without task accounting: Python's
/// `queue.SimpleQueue`, plus `close()` as every spindle queue has.
///
/// Semantics: as `ClosableQueue` with maxsize 0, minus `task_done()`,
/// `join()`, `full()` and `maxsize()` (Python's SimpleQueue has none of
/// them). `put` never blocks (the queue is unbounded); it throws only
/// `QueueClosed` (and `std::bad_alloc`). `put(item, timeout)` and
/// `put_nowait(item)` exist for code written against `ClosableQueue`, as
/// Python keeps `block` and `timeout` on SimpleQueue.put; they never wait.
/// Gets, `try_get`, `close()`, `closed()`, `qsize()`, `empty()` and
/// range-for behave as `ClosableQueue`'s (range-for ends once the queue is
/// closed and drained), so a SimpleQueue can feed a `Pipeline` stage.
///
/// Not async-signal-safe, unlike Python's claim of reentrancy for
/// SimpleQueue.put (which holds for Python-level signal handlers, which run
/// between bytecodes, not inside a C signal handler): a put allocates a new
/// 31-slot block every 31 items (malloc is not async-signal-safe), and a
/// put in a handler that interrupted a put on the same thread while that
/// put was installing a block would wait for it forever. From a signal
/// handler, set a `std::atomic<bool>` or an `Event` (`Event::set` is
/// async-signal-safe, see event.hpp), or call `Pipeline::request_stop()`,
/// and let a normal thread put.
///
/// Thread-safe: every member may be called from any number of threads at
/// once; a successful put happens-before the get that returns its item.
///
/// ```
/// spindle::SimpleQueue<std::string> log;
/// std::thread writer([&] { for (std::string line : log) std::puts(line.c_str()); });
/// log.put("started");   // never blocks
/// log.close();          // the writer's loop ends once the queue is drained
/// writer.join();
/// ```
template <class T>
class SimpleQueue : private BasicQueue<T, detail::FifoStorage<T>> {
  using Base = BasicQueue<T, detail::FifoStorage<T>>;

public:
  using typename Base::size_type;
  using typename Base::value_type;

  /// An empty, open, unbounded queue. Never blocks.
  SimpleQueue() : Base(0) {}

  /// Puts `item`: Python's `SimpleQueue.put(item)`. Never blocks.
  /// Throws: `QueueClosed` if the queue is closed (the item is destroyed
  /// with the exception; use `try_put` to keep it). Thread-safe.
  void put(T item) { Base::put_nowait(std::move(item)); }

  /// As `put(item)`; the timeout is ignored since a put never waits (as
  /// Python's `SimpleQueue.put(item, timeout=...)`). Thread-safe.
  template <class Rep, class Period>
  void put(T item, std::chrono::duration<Rep, Period>) {
    Base::put_nowait(std::move(item));
  }

  /// As `put(item)`: Python's `SimpleQueue.put_nowait(item)`. Never blocks.
  void put_nowait(T item) { Base::put_nowait(std::move(item)); }

  /// Puts `item` unless the queue is closed; false then, leaving `item`
  /// untouched with the caller. Never blocks. Thread-safe.
  bool try_put(T&& item) { return Base::try_put(std::move(item)); }
  /// Copies `item` in unless the queue is closed; false then.
  bool try_put(const T& item) { return Base::try_put(item); }

  using Base::begin;
  using Base::close;
  using Base::closed;
  using Base::empty;
  using Base::end;
  using Base::get;
  using Base::get_nowait;
  using Base::qsize;
  using Base::try_get;
};

}  // namespace spindle
