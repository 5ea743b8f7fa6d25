// SPDX-License-Identifier: MIT
// spindle/executor.hpp - ThreadPoolExecutor (concurrent.futures.ThreadPoolExecutor).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/future_state.hpp"
#include "detail/thread_pool.hpp"
#include "detail/wait.hpp"
#include "errors.hpp"
#include "future.hpp"

namespace spindle {

/// Keyword arguments of `ThreadPoolExecutor` (Python's `initializer=`,
/// `initargs=` and `thread_name_prefix=`), for designated initializers:
/// `ThreadPoolExecutor pool(4, {.thread_name_prefix = "io"});`
struct ThreadPoolOptions {
  /// Runs once at the start of each worker thread (bind Python's `initargs`
  /// into it). If it throws, the pool becomes broken: queued and later work
  /// fails with `BrokenExecutor`, as Python's `BrokenThreadPool`.
  std::function<void()> initializer = {};
  /// Worker threads are named `<prefix>_<n>` (cut to the kernel's 15
  /// characters); empty means "spindle-pool".
  std::string thread_name_prefix = {};
};

/// The lazy, ordered results of `ThreadPoolExecutor::map` (Python's
/// `Executor.map` generator).
///
/// Every call was submitted when `map` returned; iterating takes the
/// results in input order, waiting for each as its position is reached. A
/// task's exception is rethrown when its position is dereferenced (the
/// iteration may go on past it). With a timeout, the deadline counts from
/// the `map` call and an unfinished position throws `TimeoutError`.
/// Destroying the range cancels the tasks that have not started, as Python
/// does when its generator is closed. Single pass; move-only; one thread.
template <class T>
class MapResult {
public:
  static_assert(!std::is_void_v<T>, "map needs a function that returns a value; use submit");

  MapResult(std::vector<Future<T>> futures, std::optional<detail::Clock::time_point> deadline)
      : futures_(std::move(futures)), deadline_(deadline) {}
  MapResult(MapResult&&) noexcept = default;
  MapResult& operator=(MapResult&&) noexcept = default;
  MapResult(const MapResult&) = delete;
  MapResult& operator=(const MapResult&) = delete;
  ~MapResult() {
    for (std::size_t i = pos_; i < futures_.size(); ++i)
      if (futures_[i].valid()) futures_[i].cancel();
  }

  struct sentinel {};

  /// Input iterator over the results.
  class iterator {
  public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    /// The result at this position, moved out of the task's state.
    /// Blocks: until that task is done. Throws: the task's exception;
    /// `CancelledError`; `TimeoutError` past the deadline.
    T& operator*() const { return owner_->load(); }
    T* operator->() const { return &owner_->load(); }
    iterator& operator++() {
      owner_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, sentinel) noexcept { return it.at_end(); }

  private:
    friend class MapResult;
    bool at_end() const noexcept { return owner_->pos_ == owner_->futures_.size(); }
    explicit iterator(MapResult* owner) noexcept : owner_(owner) {}
    MapResult* owner_ = nullptr;
  };

  iterator begin() noexcept { return iterator(this); }
  sentinel end() const noexcept { return {}; }
  /// Number of inputs (results, once iterated).
  std::size_t size() const noexcept { return futures_.size(); }

private:
  T& load() {
    if (!current_) {
      Future<T>& f = futures_[pos_];
      auto* s = detail::FutureAccess::state(f);
      if (!s->wait_until(deadline_))
        throw TimeoutError("ThreadPoolExecutor::map: result " + std::to_string(pos_) + " (of " +
                           std::to_string(futures_.size()) + ") not done within the timeout");
      if (s->status() == detail::st_cancelled) throw CancelledError();
      if (s->error_) std::rethrow_exception(s->error_);
      // This range holds the only handle, so the value can be moved out.
      current_.emplace(std::move(*s->value_));
    }
    return *current_;
  }

  void next() {
    current_.reset();
    futures_[pos_] = Future<T>();  // release the state as the iteration moves on
    ++pos_;
  }

  std::vector<Future<T>> futures_;
  std::optional<detail::Clock::time_point> deadline_;
  std::size_t pos_ = 0;
  std::optional<T> current_;
};

/// A pool of worker threads that runs submitted calls and hands back
/// futures: Python's `concurrent.futures.ThreadPoolExecutor`.
///
/// Workers start lazily (as in Python): a submit starts one when none is
/// idle, up to `max_workers`. Work submitted from outside goes to a shared
/// queue; work a task submits goes to its worker's own queue; idle workers
/// take batches and steal from each other. A submit costs one allocation
/// (the future's state, which also holds the callable) and wakes a worker
/// only if one sleeps.
///
/// **Waiting inside the pool.** A task may wait on futures of the same pool
/// (`Future::result`, `exception`, `wait`, and `as_completed` / `wait` over
/// futures) without deadlocking it, even with one worker:
/// - If no worker has started an awaited task yet, the waiting worker runs
///   *that task* itself, on its own stack. So fan-out/fan-in from inside a
///   task, or recursion such as fib(n) submitting fib(n-1) and fib(n-2),
///   completes whatever the number of workers.
/// - Otherwise the worker waits, and queued work goes to an idle worker or
///   a newly started one, as in Python; a waiting worker does not run
///   unrelated work while any other worker could (it might re-enter a lock
///   the waiting task holds).
/// - Only when every worker the pool may start is waiting on a future does
///   a waiting worker run queued work, nested on its stack, as the last
///   resort against a deadlock (e.g. the only worker waits on a Promise
///   that a task queued behind it sets).
/// - A timed wait (`result(timeout)`, ...) only blocks, so its timeout
///   holds: it times out if the awaited task cannot start meanwhile.
/// - Tasks run inside waits 1000 deep (Python's recursion limit) throw
///   `RecursionError` from the wait instead of overflowing the stack.
/// A wait outside futures (an Event, a queue) is not seen by the pool and
/// blocks its worker, as in Python.
///
/// Thread-safe: every member may be called from any thread, concurrently
/// with each other, except the destructor.
///
/// ```
/// spindle::ThreadPoolExecutor pool(4);
/// auto f = pool.submit([](int a, int b) { return a + b; }, 2, 3);
/// for (int sq : pool.map([](int x) { return x * x; }, std::vector{1, 2, 3})) use(sq);
/// ```
class ThreadPoolExecutor {
public:
  /// Python's default: min(32, number of cores + 4).
  static std::size_t default_max_workers() noexcept {
    const unsigned cores = std::thread::hardware_concurrency();
    return std::min<std::size_t>(32, (cores == 0 ? 1 : cores) + 4);
  }

  /// The largest `max_workers` accepted (a slot per possible worker is
  /// allocated up front).
  static constexpr std::size_t max_max_workers = 65536;

  /// A pool of at most `max_workers` threads (started lazily).
  /// Throws: `std::invalid_argument` if `max_workers` is 0 (Python raises
  /// `ValueError`) or above `max_max_workers` (e.g. a negative number
  /// converted to std::size_t).
  explicit ThreadPoolExecutor(std::size_t max_workers = default_max_workers(),
                              ThreadPoolOptions options = {})
      : core_(make_core(max_workers, std::move(options))) {}

  /// A pool of the default size with `options`.
  explicit ThreadPoolExecutor(ThreadPoolOptions options)
      : ThreadPoolExecutor(default_max_workers(), std::move(options)) {}

  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  /// `shutdown(true)`: runs the work already submitted, then joins the
  /// workers (Python's `with ThreadPoolExecutor() as pool:` exit).
  /// Blocks: until queued work is done. Must not run on one of the pool's
  /// own workers.
  ~ThreadPoolExecutor() = default;

  /// The most threads this pool runs.
  std::size_t max_workers() const noexcept { return core_->max_workers(); }

  /// Schedules `fn(args...)` and returns a future of its result: Python's
  /// `submit(fn, *args)`. `fn` and `args` are decay-copied (moved when
  /// rvalues) into the future's state and invoked once, as rvalues; wrap
  /// references in `std::ref`. Never blocks (may start a worker thread).
  /// Throws: `ExecutorShutdown` after `shutdown`; `BrokenExecutor` if the
  /// pool is broken; `std::bad_alloc`. Thread-safe.
  template <class F, class... Args>
    requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
  auto submit(F&& fn, Args&&... args) {
    using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
    using T = std::conditional_t<std::is_void_v<R>, void, std::remove_cvref_t<R>>;
    auto call = [f = std::forward<F>(fn), ... a = std::forward<Args>(args)]() mutable -> R {
      return std::invoke(std::move(f), std::move(a)...);
    };
    auto* task = new detail::TaskState<T, decltype(call)>(std::move(call));
    try {
      core_->push(task);
    } catch (...) {
      delete task;  // not queued: nobody else has seen it
      throw;
    }
    return detail::FutureAccess::adopt<T>(task);
  }

  /// Calls `fn(x)` for every element of `inputs` and returns the results in
  /// input order, lazily: Python's `map(fn, iterable)`. Every call is
  /// submitted before this returns (each gets a copy of `fn`); see
  /// `MapResult` for how results and exceptions come back.
  /// Throws: as `submit` (calls submitted before the failure still run).
  template <class F, std::ranges::input_range R>
    requires std::invocable<std::decay_t<F>&, std::ranges::range_value_t<R>>
  auto map(F&& fn, R&& inputs) {
    return map_until(fn, std::forward<R>(inputs), std::nullopt);
  }

  /// As `map(fn, inputs)`; a result not ready `timeout` after this call
  /// throws `TimeoutError` from the iteration (negative acts as zero).
  template <class F, std::ranges::input_range R, class Rep, class Period>
    requires std::invocable<std::decay_t<F>&, std::ranges::range_value_t<R>>
  auto map(F&& fn, R&& inputs, std::chrono::duration<Rep, Period> timeout) {
    return map_until(fn, std::forward<R>(inputs), detail::deadline_after(timeout));
  }

  /// Stops accepting work: Python's `shutdown(wait, cancel_futures)`.
  /// Work already queued still runs unless `cancel_futures`, which cancels
  /// every future that has not started. With `wait`, returns once all
  /// running and queued work is done and the workers have exited.
  /// Idempotent; later `submit`s throw `ExecutorShutdown`.
  /// Blocks: with `wait`, until the workers exit.
  /// Throws: `std::logic_error` for `wait` on one of the pool's own workers
  /// (it would wait for itself). Thread-safe.
  void shutdown(bool wait = true, bool cancel_futures = false) {
    core_->shutdown(wait, cancel_futures);
  }

  /// Blocks until all work submitted so far has finished (including work
  /// that tasks submitted), leaving the pool running for more: the pool's
  /// `Queue.join()`. Blocks: until idle.
  /// Throws: `std::logic_error` on one of the pool's own workers.
  void wait_for_all() { core_->wait_idle(std::nullopt); }

  /// As `wait_for_all()`, for at most `timeout`; true if the pool went idle.
  /// Blocks: at most about `timeout`.
  template <class Rep, class Period>
  bool wait_for_all(std::chrono::duration<Rep, Period> timeout) {
    return core_->wait_idle(detail::deadline_after(timeout));
  }

private:
  static std::unique_ptr<detail::PoolCore> make_core(std::size_t max_workers,
                                                     ThreadPoolOptions options) {
    if (max_workers == 0)
      throw std::invalid_argument("ThreadPoolExecutor: max_workers must be greater than 0");
    // Each possible worker gets a slot up front; a negative count converted
    // to std::size_t would otherwise ask for an absurd allocation.
    if (max_workers > max_max_workers)
      throw std::invalid_argument(
          "ThreadPoolExecutor: max_workers " + std::to_string(max_workers) + " (" +
          std::to_string(static_cast<std::ptrdiff_t>(max_workers)) +
          " as a signed number) is negative or absurdly large; the limit is " +
          std::to_string(max_max_workers));
    return std::make_unique<detail::PoolCore>(max_workers, std::move(options.initializer),
                                              std::move(options.thread_name_prefix));
  }

  template <class F, class R>
  auto map_until(F& fn, R&& inputs, std::optional<detail::Clock::time_point> deadline) {
    using Result = std::remove_cvref_t<
        std::invoke_result_t<std::decay_t<F>&, std::ranges::range_value_t<R>>>;
    std::vector<Future<Result>> futures;
    if constexpr (std::ranges::sized_range<R>) futures.reserve(std::ranges::size(inputs));
    for (auto&& x : inputs)
      futures.push_back(submit(
          [f = std::decay_t<F>(fn)](auto&& v) mutable -> Result { return f(std::move(v)); },
          std::forward<decltype(x)>(x)));
    return MapResult<Result>(std::move(futures), deadline);
  }

  std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace spindle
