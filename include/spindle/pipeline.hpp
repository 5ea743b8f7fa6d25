// SPDX-License-Identifier: MIT
// spindle/pipeline.hpp - worker stages over ClosableQueues (Effective Python Item 55).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/wait.hpp"
#include "errors.hpp"
#include "event.hpp"
#include "queue.hpp"

namespace spindle {

namespace detail {

template <class T>
struct IsOptional : std::false_type {};
template <class U>
struct IsOptional<std::optional<U>> : std::true_type {};

/// A queue a stage can read: it can be closed, and a range-for over it takes
/// items until it is closed and drained, marking each one task_done.
template <class Q>
concept StageInput = requires(Q& q) {
  q.close();
  q.begin();
  q.end();
};

/// A queue a stage can write: it can be closed and it takes items by `put`.
template <class Q>
concept StageOutput = requires(Q& q) { q.close(); };

/// The argument a stage function receives: the queue's item as an rvalue.
template <class Q>
using StageArg = std::remove_cvref_t<decltype(*std::declval<Q&>().begin())>&&;

/// True if `out.put(r)` compiles for a result of type `R`.
template <class R, class Q>
concept PutsInto = requires(Q& q, R&& r) { q.put(std::forward<R>(r)); };

/// The output side of a sink stage: there is none.
struct NoOutput {};

/// State shared by the workers of one stage: the function, called by all of
/// them (as Python's StoppableWorkers share one func), and how many are left.
template <class F>
struct StageState {
  StageState(F f, std::size_t workers) : fn(std::move(f)), live(workers) {}
  F fn;
  std::atomic<std::size_t> live;
};

}  // namespace detail

/// Worker stages over queues: Effective Python Item 55's `StoppableWorker`,
/// `start_threads` and `stop_threads` as one object. Python has no single
/// counterpart; it is the pattern the book builds from `queue.Queue` and
/// `threading.Thread`.
///
/// A stage is N worker threads; each takes items from the stage's input
/// queue (a range-for, so every item taken is marked `task_done` and
/// `queue.join()` works as in the book), calls the stage's function on it and
/// puts the result on the stage's output queue. The seeds' three-stage
/// pipeline with 3, 4 and 5 workers:
///
/// ```
/// spindle::ClosableQueue<Photo> download_q, resize_q, upload_q, done_q;
/// spindle::Pipeline pipeline;                  // declare it after its queues
/// pipeline.stage(download_q, resize_q, 3, download)
///         .stage(resize_q, upload_q, 4, resize)
///         .stage(upload_q, done_q, 5, upload);
/// for (int i = 0; i < 1000; ++i) download_q.put(Photo{});
/// download_q.close();       // no more input: the stages finish in order
/// pipeline.join();          // waits for every worker; rethrows a stage's exception
/// std::cout << done_q.qsize() << " items finished\n";
/// ```
///
/// Decisions (where DESIGN.md is silent):
/// - **The caller owns the queues**; the pipeline keeps references. Declare
///   the queues before the pipeline so they outlive it. Any queue with
///   `close()`, `put()` and a closing range-for works: `ClosableQueue`,
///   `LifoQueue`, `PriorityQueue`.
/// - **Orderly shutdown**: close the first queue. When a stage's input is
///   closed and drained and its *last* worker ends, the stage closes its
///   output, which ends the next stage the same way. Bounded queues give
///   backpressure: a full queue blocks the workers putting into it. `join()`
///   does not close anything; like `Thread.join()` it waits, forever if no
///   one closes the first queue.
/// - **Failure**: the first exception thrown by a stage function (or by a
///   queue under it) stops the pipeline. `stop()` closes *every* queue of
///   every stage, which wakes every thread blocked in them: the stages' own
///   workers and your producers (their `put` throws `QueueClosed`) and
///   consumers. Workers then drain their input queues without processing the
///   items (still marking each task_done, like Python 3.13's
///   `Queue.shutdown(immediate=True)`), so `queue.join()` calls return too;
///   the last output queue keeps whatever reached it. `join()` rethrows the
///   first exception, every time it is called. A stage function that never
///   returns cannot be interrupted: stopping waits for it.
/// - **Ctrl-C**: a signal handler may call `request_stop()` (async-signal-
///   safe: an atomic flag and an `Event::set`); a watcher thread the
///   pipeline starts with its first stage, asleep until then, calls
///   `stop()`. No other member may be called from a signal handler.
/// - A stage's `put` that throws `QueueClosed` after `stop()` drops its item
///   quietly (that is what stopping means). Before `stop()`, it means someone
///   closed an output queue while the stage was still producing: that is a
///   failure, reported by `join()` as `QueueClosed`. To cancel, call `stop()`.
/// - **The destructor stops and joins**: it never throws, never calls
///   `std::terminate`, and returns once the workers' current calls return.
///   Call `join()` first to let the work finish and to see its exception.
///   After `join()` has returned, the destructor does not touch the queues.
/// - The function is shared by the stage's workers and called concurrently
///   by them, as in the book; it receives the item as an rvalue (take it by
///   value, `T&&` or `const T&`). A function returning `std::optional<U>` into
///   a queue of `U` drops the items it returns `std::nullopt` for (a filter).
///   A *sink* stage, `stage(in, workers, fn)`, has no output queue; what its
///   function returns, if anything, is discarded.
/// - One stage per output queue: a stage closes its output when it ends, so
///   two stages writing into one queue would cut each other off. Give one
///   stage more workers instead.
///
/// Thread-safe: `stage`, `stop` and `join` may be called from any thread.
/// Not copyable or movable (its workers refer to it). Memory ordering:
/// everything a stage function did happens-before `join()` returns (join
/// joins the worker threads); a stage's put of a result happens-before the
/// next stage's function receives it (the queue's guarantee).
class Pipeline {
public:
  /// An empty pipeline: add stages with `stage()`.
  Pipeline() = default;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Stops the pipeline (as `stop()`) if a worker is still running, and joins
  /// its workers. Exceptions from stages are not rethrown here: call `join()`
  /// to see them. Once every worker has ended (e.g. `join()` returned) the
  /// destructor no longer touches the queues.
  /// Blocks: until each worker's current call of its function returns.
  ~Pipeline() {
    bool running = false;
    {
      std::lock_guard lock(m_);
      running = live_ != 0;
    }
    // With no worker left every queue is closed already: each worker ends
    // only once its input is closed, and the last one closes the output.
    if (running) stop();
    join_threads();
    end_watcher();
  }

  /// Starts a stage of `workers` threads, each putting `fn(item)` on `out`
  /// for every item taken from `in` (Item 55's `start_threads(count, func,
  /// in_queue, out_queue)`). Closes `out` when `in` is closed and drained and
  /// the last of these workers ends. If `fn` returns `std::optional<U>` and
  /// `out` holds `U`, `std::nullopt` results are dropped. Returns `*this` so
  /// stages chain. A stage added to a stopped pipeline has its queues closed
  /// at once. Does not wait for the workers; it only starts them.
  /// Throws: `std::invalid_argument` if `workers` is 0; `std::system_error`
  /// if a thread cannot be started (the pipeline is then stopped).
  /// Thread-safe.
  template <detail::StageInput InQ, detail::StageOutput OutQ, class F>
  Pipeline& stage(InQ& in, OutQ& out, std::size_t workers, F&& fn) {
    using Fn = std::decay_t<F>;
    using Arg = detail::StageArg<InQ>;
    static_assert(std::is_invocable_v<Fn&, Arg>,
                  "spindle::Pipeline::stage: the function cannot be called with the input "
                  "queue's item as an rvalue (take it by value, T&& or const T&)");
    using R = std::invoke_result_t<Fn&, Arg>;
    static_assert(!std::is_void_v<R>,
                  "spindle::Pipeline::stage: a stage with an output queue needs a function "
                  "that returns the item to put; for a sink use stage(in, workers, fn)");
    if constexpr (!detail::PutsInto<R, OutQ>) {
      if constexpr (detail::IsOptional<std::remove_cvref_t<R>>::value)
        static_assert(
            detail::PutsInto<typename std::remove_cvref_t<R>::value_type, OutQ>,
            "spindle::Pipeline::stage: the value inside the function's std::optional result "
            "cannot be put on the output queue");
      else
        static_assert(detail::IsOptional<std::remove_cvref_t<R>>::value,
                      "spindle::Pipeline::stage: the function's result cannot be put on the "
                      "output queue");
    }
    add_stage<InQ, OutQ>(in, &out, workers, Fn(std::forward<F>(fn)));
    return *this;
  }

  /// Starts a sink stage: `workers` threads calling `fn(item)` for every item
  /// taken from `in`, with no output queue. Returns `*this`.
  /// Throws: as the other `stage`. Thread-safe.
  template <detail::StageInput InQ, class F>
  Pipeline& stage(InQ& in, std::size_t workers, F&& fn) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&, detail::StageArg<InQ>>,
                  "spindle::Pipeline::stage: the function cannot be called with the input "
                  "queue's item as an rvalue (take it by value, T&& or const T&)");
    add_stage<InQ, detail::NoOutput>(in, nullptr, workers, Fn(std::forward<F>(fn)));
    return *this;
  }

  /// Waits until every worker has ended, then rethrows the first exception a
  /// stage threw, if any (Item 55's `stop_threads` joins, minus the closing:
  /// close the first queue yourself, or call `stop()`). May be called again.
  /// Blocks: until every stage has finished (its input closed and drained)
  /// or the pipeline was stopped and each worker's current call returned.
  /// Throws: the first stage exception; `std::logic_error` when called from
  /// one of the pipeline's own workers (it would wait for itself).
  /// Thread-safe.
  void join() {
    check_not_worker();
    {
      std::unique_lock lock(m_);
      idle_.wait(lock, [&] { return live_ == 0; });
    }
    join_threads();
    rethrow_error();
  }

  /// As `join()`, giving up after `timeout`: returns false if some worker is
  /// still running then, true (or throws the stage exception) once all have
  /// ended. A zero or negative timeout only checks.
  /// Blocks: at most about `timeout`. Throws: as `join()`. Thread-safe.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    check_not_worker();
    const auto deadline = detail::deadline_after(timeout);
    {
      std::unique_lock lock(m_);
      const auto idle = [&] { return live_ == 0; };
      if (deadline == (detail::Clock::time_point::max)())
        idle_.wait(lock, idle);
      else if (!idle_.wait_until(lock, deadline, idle))
        return false;
    }
    join_threads();
    rethrow_error();
    return true;
  }

  /// Stops the pipeline: closes every queue of every stage, so every thread
  /// blocked in them wakes (producers' puts throw `QueueClosed`), and the
  /// workers drop the items left in their input queues (marking them
  /// task_done) and end. Idempotent. A stage function running now is not
  /// interrupted. Never blocks on the workers. Thread-safe.
  void stop() noexcept {
    std::lock_guard lock(m_);
    stopping_.store(true);
    for (const Closer& c : closers_) c.close(c.queue);
  }

  /// Asks for `stop()` from a signal handler (Ctrl-C): async-signal-safe.
  /// It only stores a lock-free atomic flag and sets an `Event` (a CAS on a
  /// lock-free atomic plus one `futex` wake system call; errno preserved);
  /// a watcher thread of the pipeline, asleep on that Event, then calls
  /// `stop()`: every queue is closed, the workers drop what is left and end,
  /// and `join()` returns (normally, unless a stage had failed).
  ///
  /// ```
  /// spindle::Pipeline* running = nullptr;  // set before installing the handler
  /// extern "C" void on_sigint(int) { running->request_stop(); }
  /// ```
  /// Async-signal-safe: only `request_stop()` and `stop_requested()`; every
  /// other member takes a lock or allocates. The pipeline must outlive the
  /// handler's use of it (restore the old handler before destroying it).
  /// A request before the first `stage()` stops the pipeline as that stage
  /// starts. Idempotent. Never blocks. Thread-safe (any thread may call it).
  void request_stop() noexcept {
    stop_requested_.store(true, std::memory_order_release);
    wake_watcher_.set();
  }

  /// True once `request_stop()` was called. Async-signal-safe, never blocks.
  bool stop_requested() const noexcept { return stop_requested_.load(std::memory_order_acquire); }

  /// True once `stop()` was called or a stage failed (or the watcher acted
  /// on `request_stop()`). Thread-safe. Never blocks.
  bool stopped() const noexcept { return stopping_.load(); }

private:
  // A type-erased `close()` on one queue, for `stop()`.
  struct Closer {
    void* queue;
    void (*close)(void*) noexcept;
  };

  template <class Q>
  static void close_queue(void* queue) noexcept {
    // A queue's close() takes its lock and wakes waiters; if that ever
    // threw, there is nothing better to do for a stopping pipeline than to
    // go on closing the others.
    try {
      static_cast<Q*>(queue)->close();
    } catch (...) {
    }
  }

  template <class InQ, class OutQ, class Fn>
  void add_stage(InQ& in, OutQ* out, std::size_t workers, Fn fn);

  template <class InQ, class OutQ, class Fn>
  void run_worker(detail::StageState<Fn>& state, InQ& in, OutQ* out) noexcept;

  template <class Fn, class Arg, class OutQ>
  void process(Fn& fn, Arg&& item, OutQ* out);

  template <class OutQ, class V>
  void put_result(OutQ& out, V&& value);

  // The thread that turns request_stop() into stop(): started with the
  // first stage (caller holds m_), ended by the destructor. It sleeps on
  // wake_watcher_, which only request_stop() and end_watcher() set.
  void start_watcher() {
    if (watcher_.joinable()) return;
    watcher_ = std::thread([this] {
      wake_watcher_.wait();
      if (stop_requested_.load(std::memory_order_acquire)) stop();
    });
  }

  void end_watcher() noexcept {
    if (!watcher_.joinable()) return;
    wake_watcher_.set();  // no-op if request_stop() set it already
    watcher_.join();
  }

  void fail(std::exception_ptr error) noexcept {
    {
      std::lock_guard lock(m_);
      if (!error_) error_ = std::move(error);
    }
    stop();
  }

  void worker_exited() noexcept {
    std::lock_guard lock(m_);
    // Notify under the lock: join() may return and the pipeline be destroyed
    // as soon as the lock is released, so nothing may touch idle_ after it.
    if (--live_ == 0) idle_.notify_all();
  }

  void check_not_worker() const {
    const auto self = std::this_thread::get_id();
    std::lock_guard lock(m_);
    for (const std::thread& t : threads_)
      if (t.get_id() == self)
        throw std::logic_error("spindle::Pipeline::join called from one of the pipeline's own "
                               "workers: it would wait for itself");
  }

  void join_threads() noexcept {
    // One joiner at a time: std::thread::join on one thread from two threads
    // at once is undefined.
    std::lock_guard join_lock(join_m_);
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(m_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }

  void rethrow_error() const {
    std::exception_ptr error;
    {
      std::lock_guard lock(m_);
      error = error_;
    }
    if (error) std::rethrow_exception(error);
  }

  // Lock order: join_m_ before m_; m_ before any queue's own lock (stop()
  // closes queues under m_; workers never hold a queue lock while taking m_).
  std::mutex join_m_;
  mutable std::mutex m_;
  std::condition_variable idle_;   // signalled when live_ drops to 0
  std::vector<std::thread> threads_;  // guarded by m_
  std::vector<Closer> closers_;       // guarded by m_
  std::exception_ptr error_;          // guarded by m_
  std::size_t live_ = 0;              // guarded by m_: workers not yet ended
  // Written under m_ but read lock-free by the workers for every item.
  // seq_cst: stop() stores it before closing the queues, so a worker whose
  // put fails because of that close (it synchronizes through the queue's
  // lock) is guaranteed to read true.
  std::atomic<bool> stopping_{false};
  // request_stop()'s flag and the watcher's wake-up: lock-free, so a signal
  // handler may touch them (static_assert below).
  std::atomic<bool> stop_requested_{false};
  Event wake_watcher_;
  std::thread watcher_;  // started under m_ by the first stage, joined by the destructor
  static_assert(std::atomic<bool>::is_always_lock_free);
};

// ---------------------------------------------------------------------------
// Implementation.

template <class InQ, class OutQ, class Fn>
void Pipeline::add_stage(InQ& in, OutQ* out, std::size_t workers, Fn fn) {
  if (workers == 0)
    throw std::invalid_argument("spindle::Pipeline::stage: workers must be at least 1, got 0");
  auto state = std::make_shared<detail::StageState<Fn>>(std::move(fn), workers);
  std::unique_lock lock(m_);
  start_watcher();
  closers_.reserve(closers_.size() + 2);
  closers_.push_back({static_cast<void*>(&in), &close_queue<InQ>});
  if constexpr (!std::is_same_v<OutQ, detail::NoOutput>)
    closers_.push_back({static_cast<void*>(out), &close_queue<OutQ>});
  if (stopping_.load()) {
    // Stopped before this stage was added (e.g. an earlier stage already
    // failed): its queues must not block anyone either.
    close_queue<InQ>(&in);
    if constexpr (!std::is_same_v<OutQ, detail::NoOutput>) close_queue<OutQ>(out);
  }
  threads_.reserve(threads_.size() + workers);
  for (std::size_t i = 0; i < workers; ++i) {
    ++live_;
    try {
      threads_.emplace_back(
          [this, state, &in, out] { run_worker<InQ, OutQ, Fn>(*state, in, out); });
    } catch (...) {
      --live_;
      // Workers i..workers-1 never started; the stage ends when the started
      // ones do (or now, if none did).
      if (state->live.fetch_sub(workers - i) == workers - i) {
        if constexpr (!std::is_same_v<OutQ, detail::NoOutput>) close_queue<OutQ>(out);
      }
      const bool idle = live_ == 0;
      lock.unlock();
      if (idle) idle_.notify_all();
      stop();
      throw;
    }
  }
}

template <class InQ, class OutQ, class Fn>
void Pipeline::run_worker(detail::StageState<Fn>& state, InQ& in, OutQ* out) noexcept {
  bool failed = false;
  for (;;) {
    try {
      // The range-for marks each item task_done as it moves past it, also
      // when the body throws, so queue.join() works as in the book.
      for (auto&& item : in) {
        // Stopped: drain the (closed) input without processing, so the
        // items are marked done and queue.join() callers are released.
        if (stopping_.load()) continue;
        process(state.fn, std::move(item), out);
      }
      break;  // closed and drained
    } catch (...) {
      fail(std::current_exception());
      // After a failure the pipeline is stopped and the loop above only
      // drains; if even that fails, give up draining rather than spin.
      if (failed) break;
      failed = true;
    }
  }
  if (state.live.fetch_sub(1) == 1) {
    // The last worker of the stage: nothing more will be put on the output.
    if constexpr (!std::is_same_v<OutQ, detail::NoOutput>) close_queue<OutQ>(out);
  }
  worker_exited();
}

template <class Fn, class Arg, class OutQ>
void Pipeline::process(Fn& fn, Arg&& item, OutQ* out) {
  if constexpr (std::is_same_v<OutQ, detail::NoOutput>) {
    (void)out;
    (void)std::invoke(fn, std::forward<Arg>(item));
  } else {
    using R = std::invoke_result_t<Fn&, Arg>;
    if constexpr (detail::PutsInto<R, OutQ>) {
      put_result(*out, std::invoke(fn, std::forward<Arg>(item)));
    } else {
      // A std::optional result into a queue of its value type: a filter.
      auto result = std::invoke(fn, std::forward<Arg>(item));
      if (result) put_result(*out, std::move(*result));
    }
  }
}

template <class OutQ, class V>
void Pipeline::put_result(OutQ& out, V&& value) {
  try {
    out.put(std::forward<V>(value));
  } catch (const QueueClosed&) {
    if (stopping_.load()) return;  // stop() closed it: dropping is the point
    throw QueueClosed(
        "spindle::Pipeline: a stage's output queue was closed from outside while the stage "
        "was still producing (call Pipeline::stop() to cancel a pipeline)");
  }
}

}  // namespace spindle
