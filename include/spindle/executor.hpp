// SPDX-License-Identifier: MIT
// spindle/executor.hpp - ThreadPoolExecutor (concurrent.futures.ThreadPoolExecutor).
#pragma once

#include <algorithm>
#include <chrono>
#include <climits>
#include <deque>
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
#include <variant>
#include <vector>

#include <pthread.h>

#include "detail/cpu_count.hpp"
#include "detail/future_state.hpp"
#include "detail/map_job.hpp"
#include "detail/map_tasks.hpp"
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
  /// Stack size of each worker thread in bytes (`pthread_attr_setstacksize`;
  /// no Python counterpart but `threading.stack_size()`); 0 means the
  /// system's default (glibc: `ulimit -s`, usually 8 MiB). Deep chains of
  /// waits run tasks inline on a worker's stack (see "Waiting inside the
  /// pool"): more stack lets them nest deeper before `RecursionError`.
  /// Throws: `std::invalid_argument` from the constructor below
  /// PTHREAD_STACK_MIN; a size pthread_create refuses otherwise fails the
  /// thread start, as any failure to start a worker does.
  std::size_t stack_size = 0;
};

/// Keyword arguments of `ThreadPoolExecutor::map` (Python's `timeout=`,
/// `chunksize=` and 3.14's `buffersize=`):
/// `pool.map(f, items, {.chunksize = 64, .timeout = 5s})`.
struct MapOptions {
  /// Inputs per chunk: the calls of a chunk run in a row on one thread,
  /// which is what makes a map over many tiny calls fast. Python's
  /// ThreadPoolExecutor ignores `chunksize` (only its ProcessPoolExecutor
  /// uses it); here it groups thread-pool calls too. Results and
  /// exceptions still come back one per input, in order. With 1 (the
  /// default) every call is started on its own, as in Python.
  /// Deviation: with `chunksize` > 1, no timeout and no pool initializer,
  /// the iterating thread, while the chunk it waits for is not done, runs
  /// chunks no thread has started yet itself (as `tbb::parallel_for`'s
  /// caller takes part) instead of sleeping until a worker gets to them;
  /// Python runs every call on a worker.
  /// Throws: `std::invalid_argument` from `map` if 0 (Python: ValueError).
  std::size_t chunksize = 1;
  /// Deadline for the results, counted from the `map` call (negative acts as
  /// zero); none by default.
  std::optional<std::chrono::duration<double>> timeout = std::nullopt;
  /// At most this many tasks (chunks) are submitted ahead of the iteration
  /// (Python 3.14's `buffersize`): `map` submits the first `buffersize`, and
  /// each position the iteration reaches submits one more, so an endless
  /// input (`std::views::iota(0)`) is read only as fast as results are
  /// consumed. None (the default) submits every input before `map` returns,
  /// which never returns for an endless input.
  /// Throws: `std::invalid_argument` from `map` if 0 (Python: ValueError).
  std::optional<std::size_t> buffersize = std::nullopt;
};

/// The lazy, ordered results of `ThreadPoolExecutor::map` (Python's
/// `Executor.map` generator). `T` is the function's result type
/// (`std::monostate`, Python's None, for a function returning void).
///
/// Without a `buffersize`, every input was read and every call queued when
/// `map` returned; with one, at most that many tasks run ahead of the
/// iteration. Iterating takes the results in input order, waiting for each
/// as its position is reached (at most one futex wait per chunk; a result
/// that is ready is read in place, with no call into the map). A call's
/// exception is rethrown when its position is dereferenced (the iteration
/// may go on past it), chunked or not. With a timeout, the deadline counts
/// from the `map` call and an unfinished position throws `TimeoutError`.
///
/// Destroying the range after `begin()` was called cancels the calls that
/// have not started (Python cancels them when a started generator is
/// closed; chunked, a chunk that started runs to its end); destroying it
/// before leaves every call to run, as an un-iterated Python generator
/// does (its cleanup never runs). Inputs not yet submitted (with
/// `buffersize`) are never submitted. Results are destroyed as the
/// iteration moves past their chunk, the rest with the range.
/// Single pass; move-only; one thread.
template <class T>
class MapResult {
public:
  explicit MapResult(std::unique_ptr<detail::MapSource<T>> source) noexcept
      : source_(std::move(source)) {}
  MapResult(MapResult&&) noexcept = default;
  MapResult& operator=(MapResult&& other) noexcept {
    if (this != &other) {
      close();
      source_ = std::move(other.source_);
      started_ = other.started_;
    }
    return *this;
  }
  MapResult(const MapResult&) = delete;
  MapResult& operator=(const MapResult&) = delete;
  ~MapResult() { close(); }

  struct sentinel {};

  /// Input iterator over the results. Reading a run of results that are
  /// ready costs no call into the map's machinery: the iterator keeps a
  /// pointer to them and asks again only when the run ends.
  class iterator {
  public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    /// The result at this position (the range owns it; it may be moved
    /// from). Blocks: until that call is done. Throws: the call's
    /// exception; `CancelledError`; `TimeoutError` past the deadline; with
    /// `buffersize`, what submitting the next input throws
    /// (`ExecutorShutdown` once the pool is shut down).
    T& operator*() const {
      if (cur_ == end_) [[unlikely]]
        fill();
      return *cur_;
    }
    T* operator->() const { return &**this; }
    /// Moves on. Never waits; with `buffersize` it may submit the next
    /// input (and throw as `submit`) if the position was not dereferenced.
    iterator& operator++() {
      if (cur_ != end_) [[likely]] {
        ++cur_;
      } else {
        const std::size_t pos = position();
        owner_->source_->skip(pos);
        cur_ = end_ = first_ = nullptr;
        first_pos_ = pos + 1;
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, sentinel) noexcept {
      return it.cur_ == it.end_ && it.at_end();
    }

  private:
    friend class MapResult;
    explicit iterator(MapResult* owner) noexcept : owner_(owner) {}
    // The position: first_pos_ plus how far cur_ moved in the run.
    std::size_t position() const noexcept {
      return first_pos_ + static_cast<std::size_t>(cur_ - first_);
    }
    bool at_end() const noexcept { return owner_->source_->at_end(position()); }
    void fill() const {
      const std::size_t pos = position();
      const detail::MapSpan<T> run = owner_->source_->load(pos);
      first_ = cur_ = run.first;
      end_ = run.first + run.count;
      first_pos_ = pos;
    }
    MapResult* owner_ = nullptr;
    // [cur_, end_): results readable without asking the source, at
    // positions first_pos_ + (cur_ - first_) on; empty when cur_ == end_.
    mutable T* cur_ = nullptr;
    mutable T* end_ = nullptr;
    mutable T* first_ = nullptr;
    mutable std::size_t first_pos_ = 0;
  };

  /// Starts the iteration (from then on, destroying the range cancels the
  /// calls not started). Never blocks.
  iterator begin() noexcept {
    started_ = true;
    return iterator(this);
  }
  sentinel end() const noexcept { return {}; }

private:
  void close() noexcept {
    if (source_) source_->close(started_);
  }

  std::unique_ptr<detail::MapSource<T>> source_;
  bool started_ = false;  // begin() was called
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
/// - Tasks run inside waits 1000 deep (Python's recursion limit), or with
///   less than max(64 KiB, stack size / 16) of the worker's stack left
///   (read with pthread_getattr_np when the worker starts), throw
///   `RecursionError` from the wait instead of overflowing the stack. The
///   margin must hold the nested task's frames up to its next wait: a task
///   with bigger frames than that can still overflow. More stack:
///   `ThreadPoolOptions::stack_size`.
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
  /// Python 3.13's default: min(32, process_cpu_count() + 4), counting the
  /// CPUs the calling thread may run on (`sched_getaffinity`, as Python's
  /// `os.process_cpu_count()`), not every CPU of the machine.
  static std::size_t default_max_workers() noexcept {
    return (std::min)(std::size_t{32}, detail::process_cpu_count() + 4);
  }

  /// The largest `max_workers` accepted (a slot per possible worker is
  /// allocated up front).
  static constexpr std::size_t max_max_workers = 65536;

  /// A pool of at most `max_workers` threads (started lazily).
  /// Throws: `std::invalid_argument` if `max_workers` is 0 (Python raises
  /// `ValueError`) or above `max_max_workers` (e.g. a negative number
  /// converted to std::size_t), or for a `stack_size` below PTHREAD_STACK_MIN.
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
  ~ThreadPoolExecutor() {
    // The core may outlive this handle for a moment, while a map with a
    // buffersize submits its next input (it holds a weak reference).
    core_->shutdown(true, false);
  }

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
    return detail::submit_to(*core_, std::forward<F>(fn), std::forward<Args>(args)...);
  }

  /// Calls `fn(x, y, ...)` for the elements of `inputs...` taken in step
  /// (zipped, stopping at the shortest) and returns the results in input
  /// order, lazily: Python's `map(fn, *iterables)`. Every input is read
  /// and every call queued before this returns; see `MapResult` for how
  /// results and exceptions come back, and the overload with `MapOptions`
  /// for chunks and a bound on the calls in flight.
  ///
  /// Elements are copied (moved from ranges passed as rvalues; an rvalue
  /// `std::vector` is taken over whole) and passed to `fn` as rvalues; `fn`
  /// is copied into each task if it is copyable, else moved once into the
  /// map and shared, so that its calls run concurrently on one object, as
  /// Python's do. A `fn` returning void yields `std::monostate` per input
  /// (Python: None).
  ///
  /// How (no part of the contract): called from outside the pool and
  /// without a `buffersize`, `map` copies the inputs into one block and
  /// queues one task per worker (at most one per chunk); those tasks claim
  /// chunks in input order with an atomic counter and write the results
  /// into an array that the iteration reads in place, so a call costs no
  /// task, future or allocation of its own. Calls start in input order on
  /// up to `max_workers` threads, as with Python's one future per call;
  /// work submitted after the map starts once every chunk is claimed. The
  /// pool keeps the block for its next map (see detail/block_cache.hpp).
  /// Called from one of the pool's workers, or with a `buffersize`, `map`
  /// submits a task per call (or per chunk), so that waits on them are
  /// waits on futures (see "Waiting inside the pool").
  /// Throws: as `submit` (calls queued before the failure still run), or
  /// what copying an input throws (calls of chunks read before still run).
  template <class F, std::ranges::input_range R, std::ranges::input_range... Rs>
    requires std::invocable<std::decay_t<F>&, std::ranges::range_value_t<R>,
                            std::ranges::range_value_t<Rs>...>
  auto map(F&& fn, R&& inputs, Rs&&... more) {
    return map_impl(std::forward<F>(fn), MapOptions{}, std::forward<R>(inputs),
                    std::forward<Rs>(more)...);
  }

  /// As `map(fn, inputs)`; a result not ready `timeout` after this call
  /// throws `TimeoutError` from the iteration (negative acts as zero).
  template <class F, std::ranges::input_range R, class Rep, class Period>
    requires std::invocable<std::decay_t<F>&, std::ranges::range_value_t<R>>
  auto map(F&& fn, R&& inputs, std::chrono::duration<Rep, Period> timeout) {
    return map_impl(std::forward<F>(fn), MapOptions{.timeout = timeout}, std::forward<R>(inputs));
  }

  /// As `map(fn, inputs...)` with Python's keyword arguments (one to three
  /// input ranges): `map(f, xs, {.chunksize = 64, .buffersize = 4})`. See
  /// `MapOptions`. With a `buffersize`, `map` reads and submits only the
  /// first `buffersize` tasks' inputs; the iteration submits the rest (and
  /// stops doing so once the pool is destroyed, as Python's does once the
  /// executor is gone); the input ranges passed as lvalues must then
  /// outlive the iteration.
  /// Throws: `std::invalid_argument` for a chunksize or buffersize of 0;
  /// as `submit`.
  template <class F, std::ranges::input_range R>
    requires std::invocable<std::decay_t<F>&, std::ranges::range_value_t<R>>
  auto map(F&& fn, R&& inputs, MapOptions options) {
    return map_impl(std::forward<F>(fn), std::move(options), std::forward<R>(inputs));
  }
  template <class F, std::ranges::input_range R1, std::ranges::input_range R2>
    requires std::invocable<std::decay_t<F>&, std::ranges::range_value_t<R1>,
                            std::ranges::range_value_t<R2>>
  auto map(F&& fn, R1&& xs, R2&& ys, MapOptions options) {
    return map_impl(std::forward<F>(fn), std::move(options), std::forward<R1>(xs),
                    std::forward<R2>(ys));
  }
  template <class F, std::ranges::input_range R1, std::ranges::input_range R2,
            std::ranges::input_range R3>
    requires std::invocable<std::decay_t<F>&, std::ranges::range_value_t<R1>,
                            std::ranges::range_value_t<R2>, std::ranges::range_value_t<R3>>
  auto map(F&& fn, R1&& xs, R2&& ys, R3&& zs, MapOptions options) {
    return map_impl(std::forward<F>(fn), std::move(options), std::forward<R1>(xs),
                    std::forward<R2>(ys), std::forward<R3>(zs));
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
  static std::shared_ptr<detail::PoolCore> make_core(std::size_t max_workers,
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
    const auto stack_min = static_cast<std::size_t>(PTHREAD_STACK_MIN);
    if (options.stack_size != 0 && options.stack_size < stack_min)
      throw std::invalid_argument("ThreadPoolExecutor: stack_size " +
                                  std::to_string(options.stack_size) + " is below the minimum " +
                                  std::to_string(stack_min));
    return std::make_shared<detail::PoolCore>(max_workers, std::move(options.initializer),
                                              std::move(options.thread_name_prefix),
                                              options.stack_size);
  }

  template <class F, class... Rs>
  auto map_impl(F&& fn, MapOptions options, Rs&&... inputs) {
    using Fn = std::decay_t<F>;
    using V = detail::map_value_t<Fn, std::ranges::range_value_t<Rs>...>;
    if (options.chunksize == 0)
      throw std::invalid_argument("ThreadPoolExecutor::map: chunksize must be >= 1");
    if (options.buffersize && *options.buffersize == 0)
      throw std::invalid_argument("ThreadPoolExecutor::map: buffersize must be >= 1");
    std::optional<detail::Clock::time_point> deadline;
    if (options.timeout) deadline = detail::deadline_after(*options.timeout);
    const bool caller_runs = options.chunksize > 1 && !core_->has_initializer();
    if (options.buffersize || detail::tl_helper != nullptr) {
      // One task per call or chunk: inputs read lazily (buffersize), or
      // waits that a worker must see as waits on futures (see
      // detail/map.hpp).
      auto source = std::make_unique<detail::MapTasks<V>>(
          std::make_unique<detail::MapFeedImpl<V, Fn, Rs...>>(
              core_, std::forward<F>(fn), options.chunksize, std::forward<Rs>(inputs)...),
          deadline, caller_runs);
      source->start(options.buffersize);
      return MapResult<V>(std::move(source));
    }
    auto job = detail::make_map_job<V, Fn>(blocks_, std::forward<F>(fn), options.chunksize,
                                           std::forward<Rs>(inputs)...);
    auto source = std::make_unique<detail::MapJobSource<V, Fn, detail::map_elem_t<Rs>...>>(
        job, deadline, caller_runs && !deadline);
    // Claimers first: workers wake while the inputs are copied, and start
    // on the chunks copied so far.
    source->start(core_);
    try {
      detail::fill_map_job(*job, std::forward<Rs>(inputs)...);
    } catch (...) {
      source->inputs_failed();
      throw;
    }
    return MapResult<V>(std::move(source));
  }

  std::shared_ptr<detail::PoolCore> core_;
  // Blocks kept for the next map's results and inputs (see BlockCache).
  std::shared_ptr<detail::BlockCache> blocks_ = std::make_shared<detail::BlockCache>();
};

}  // namespace spindle
