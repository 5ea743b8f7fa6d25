// SPDX-License-Identifier: MIT
// spindle/asyncio/task.hpp - Task<T>, create_task, sleep, run, current_task.
#pragma once

#include <chrono>
#include <coroutine>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "coroutine.hpp"
#include "loop.hpp"

namespace spindle::asyncio {

namespace detail {
struct TaskAccess;
}

/// A task without its result type: what `current_task()` and `all_tasks()`
/// return, and the base of every `Task<T>`. Python's `asyncio.Task`
/// (the members that do not touch the result).
///
/// Copyable; copies refer to one task. A default-constructed handle has no
/// task (`valid()` is false; the other members throw `std::logic_error`).
/// Not thread-safe: use it on its loop's thread (from other threads, go
/// through `call_soon_threadsafe`).
class TaskBase {
public:
  TaskBase() noexcept = default;
  TaskBase(const TaskBase& o) noexcept : core_(o.core_) {
    if (core_) core_->add_ref();
  }
  TaskBase(TaskBase&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  TaskBase& operator=(TaskBase o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~TaskBase() {
    if (core_) core_->release();
  }

  /// True if this handle refers to a task.
  bool valid() const noexcept { return core_ != nullptr; }
  /// True once the task finished or was cancelled: Python's `done()`.
  bool done() const { return checked()->done(); }
  /// True if the task ended cancelled: Python's `cancelled()`.
  bool cancelled() const { return checked()->cancelled(); }

  /// Requests cancellation: Python's `cancel(msg)`. Returns false if the task
  /// is already done. Otherwise `CancelledError(message)` is thrown into the
  /// task at the `co_await` where it is suspended (or at its next one if it
  /// is running or about to run); if it awaits another task, that task is
  /// cancelled instead, as in Python. The task may catch the exception:
  /// then it is not cancelled. Never blocks.
  bool cancel(const std::string& message = {}) { return checked()->cancel(message); }

  /// How many cancellation requests are pending: Python 3.11's
  /// `cancelling()`.
  unsigned cancelling() const { return checked()->cancelling(); }
  /// Withdraws one cancellation request and returns how many remain:
  /// Python 3.11's `uncancel()`. At zero, a pending not-yet-delivered
  /// cancellation is forgotten.
  unsigned uncancel() { return checked()->uncancel(); }

  /// The task's name: Python's `get_name()` ("Task-<n>" unless named).
  std::string get_name() const { return checked()->name(); }
  /// Renames the task: Python's `set_name()`.
  void set_name(std::string name) { checked()->set_name(std::move(name)); }

  /// The task's exception, or null if it succeeded: Python's `exception()`.
  /// Marks it retrieved (no "never retrieved" report).
  /// Throws: `CancelledError` if cancelled; `InvalidStateError` if not done.
  std::exception_ptr exception() const {
    auto* c = finished_core("exception");
    c->mark_retrieved();
    return c->error();
  }

  /// True if both handles refer to one task.
  friend bool operator==(const TaskBase& a, const TaskBase& b) noexcept {
    return a.core_ == b.core_;
  }

protected:
  friend struct detail::TaskAccess;
  explicit TaskBase(detail::TaskCore* core) noexcept : core_(core) {}  // adopts a reference

  detail::TaskCore* checked() const {
    if (!core_)
      throw std::logic_error("spindle::asyncio::Task: the handle has no task (default-constructed or moved-from)");
    return core_;
  }
  // A done task, or InvalidStateError; a cancelled one throws its CancelledError.
  detail::TaskCore* finished_core(const char* what) const {
    auto* c = checked();
    if (!c->done())
      throw InvalidStateError(std::string("spindle::asyncio::Task::") + what +
                              ": the task is not done");
    if (c->cancelled()) std::rethrow_exception(c->error());
    return c;
  }

  detail::TaskCore* core_ = nullptr;
};

namespace detail {
struct TaskAccess {
  static TaskCore* core(const TaskBase& t) noexcept { return t.core_; }
  template <class T>
  static Task<T> adopt(TaskCore* core) noexcept {
    return Task<T>(core);
  }
};

// The outcome of a done task as the awaiter gets it: rethrows its
// exception (or its CancelledError), else copies the value out, or moves
// it when `T` cannot be copied.
template <class T>
T task_outcome(TaskCore& core) {
  core.mark_retrieved();
  if (core.error()) std::rethrow_exception(core.error());
  if constexpr (!std::is_void_v<T>) {
    auto& value = static_cast<Promise<T>&>(core.promise()).value;
    if constexpr (std::is_copy_constructible_v<T>) {
      return *value;
    } else {
      if (core.taken())
        throw std::logic_error(
            "spindle::asyncio::Task: the move-only result was already moved out by an earlier await "
            "or take_result()");
      core.set_taken();
      return std::move(*value);
    }
  }
}

// Awaiting a task: parks the awaiting task until `inner` is done. Cancelling
// the awaiting task cancels `inner` (Python's behaviour; see `shield`).
template <class T>
class TaskAwaiter final : Suspension, DoneNode {
public:
  explicit TaskAwaiter(TaskCore* inner) noexcept : inner_(inner) { inner_->add_ref(); }
  TaskAwaiter(TaskAwaiter&& o) noexcept : inner_(std::exchange(o.inner_, nullptr)) {}
  TaskAwaiter(const TaskAwaiter&) = delete;
  TaskAwaiter& operator=(const TaskAwaiter&) = delete;
  ~TaskAwaiter() {
    if (!inner_) return;
    if (linked) inner_->remove_done(this);
    inner_->release();
  }

  bool await_ready() const noexcept { return inner_->done(); }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = &running_task("co_await Task");
    if (task_ == inner_) throw std::logic_error("spindle::asyncio::Task: a task cannot await itself");
    inner_->add_done(this);
    task_->suspend_on(h, this);
  }
  T await_resume() {
    if (linked) inner_->remove_done(this);
    if (task_) task_->throw_if_must_cancel();
    return task_outcome<T>(*inner_);
  }

private:
  void on_done(TaskCore&) noexcept override { task_->wake(); }
  bool cancel_wait(const std::string& message) noexcept override {
    try {
      return inner_->cancel(message);
    } catch (...) {
      return false;
    }
  }

  TaskCore* inner_;
  TaskCore* task_ = nullptr;
};

// A user's done-callback: scheduled with call_soon once the task is done,
// as Python does, then forgotten.
template <class T, class F>
class CallbackDoneNode final : DoneNode {
public:
  template <class G>
  explicit CallbackDoneNode(G&& g) : fn_(std::forward<G>(g)) {}

  void on_done(TaskCore& task) noexcept override {
    try {
      task.add_ref();
      Task<T> handle = TaskAccess::adopt<T>(&task);
      auto* cb = make_callback(*task.loop(), [fn = std::move(fn_), handle]() mutable { fn(handle); });
      cb->release();  // no Handle
      cb->in_ready = true;
      task.loop()->schedule(cb);
    } catch (...) {
      task.loop()->report({"Exception scheduling a done callback", std::current_exception(), task.name()});
    }
    delete this;
  }
  void on_abandoned() noexcept override { delete this; }
  static void attach(TaskCore& task, F fn) {
    auto* node = new CallbackDoneNode(std::move(fn));
    task.add_done(node);
  }

private:
  ~CallbackDoneNode() = default;
  F fn_;
};
}  // namespace detail

/// A coroutine scheduled on a loop: Python's `asyncio.Task`.
///
/// Made by `create_task` (or `EventLoop::create_task`, `gather`,
/// `TaskGroup::create_task`). The task starts at the loop's next pass and
/// runs until its coroutine returns, whether or not anybody awaits it (the
/// loop keeps it alive while it is pending). `co_await task` waits for it
/// and returns its value (a copy; a move-only value is moved out once) or
/// rethrows its exception; a cancelled task throws `CancelledError`.
///
/// An exception nobody retrieved (by awaiting, `result()` or `exception()`)
/// is reported to the loop's exception handler when the last handle goes
/// ("Task exception was never retrieved"), never lost silently.
///
/// Copyable handle. Not thread-safe: loop thread only.
template <class T = void>
class Task : public TaskBase {
public:
  using value_type = T;
  Task() noexcept = default;

  /// The task's value: Python's `result()`. A copy, or, for a move-only
  /// `T`, see `take_result()`.
  /// Throws: the task's exception; `CancelledError` if cancelled;
  /// `InvalidStateError` if not done.
  T result() const requires(std::is_void_v<T> || std::is_copy_constructible_v<T>)
  {
    return detail::task_outcome<T>(*finished_core("result"));
  }
  /// Moves a value out of the task (once). Throws as `result()`, and
  /// `std::logic_error` if moved out before.
  T take_result() requires(!std::is_void_v<T>)
  {
    auto* c = finished_core("take_result");
    c->mark_retrieved();
    if (c->error()) std::rethrow_exception(c->error());
    if (c->taken()) throw std::logic_error("spindle::asyncio::Task::take_result: already taken");
    c->set_taken();
    return std::move(*static_cast<detail::Promise<T>&>(c->promise()).value);
  }

  /// Calls `fn(task)` once the task is done, from the loop (scheduled with
  /// `call_soon`, as Python's `add_done_callback`); at the next pass if it
  /// is done already. An exception from `fn` goes to the exception handler.
  template <class F>
    requires std::invocable<F&, Task<T>&>
  void add_done_callback(F&& fn) {
    auto* c = checked();
    if (!c->loop()) throw EventLoopClosed("spindle::asyncio::Task::add_done_callback: the loop is closed");
    if (c->done()) {
      Task<T> self = *this;
      detail::loop_of(*c->loop()).call_soon([fn = std::forward<F>(fn), self]() mutable { fn(self); });
      return;
    }
    detail::CallbackDoneNode<T, std::decay_t<F>>::attach(*c, std::forward<F>(fn));
  }

  /// Waits for the task. Where it may throw `CancelledError`: if the
  /// awaiting task is cancelled (this task is then cancelled too), or if
  /// this task ends cancelled. Resumes on the loop's thread.
  detail::TaskAwaiter<T> operator co_await() const { return detail::TaskAwaiter<T>(add_ref_core()); }

private:
  friend struct detail::TaskAccess;
  explicit Task(detail::TaskCore* core) noexcept : TaskBase(core) {}
  detail::TaskCore* add_ref_core() const { return checked(); }
};

template <class T>
Task<T> EventLoop::create_task(Coroutine<T> coro) {
  return create_task(std::move(coro), TaskOptions());
}

template <class T>
Task<T> EventLoop::create_task(Coroutine<T> coro, TaskOptions options) {
  check_open("create_task");
  check_thread("create_task");
  auto handle = detail::CoroutineAccess::release(coro);
  detail::TaskCore* core;
  try {
    core = new detail::TaskCore(*this, handle, handle.promise(), std::move(options.name));
  } catch (...) {
    handle.destroy();
    throw;
  }
  schedule(core);
  core->add_ref();
  return detail::TaskAccess::adopt<T>(core);
}

/// Schedules `coro` as a task on the running loop: Python's
/// `asyncio.create_task(coro, name=...)`.
/// Throws: `std::logic_error` if no loop runs on this thread or `coro` was
/// awaited already.
template <class T>
Task<T> create_task(Coroutine<T> coro, TaskOptions options) {
  return get_running_loop().create_task(std::move(coro), std::move(options));
}
/// `create_task(coro)` with a default name. (An overload rather than a
/// default argument: g++ 12 destroys an aggregate temporary such as a
/// defaulted `TaskOptions{}` twice when the call is the operand of
/// `co_await`, as in `co_await create_task(f())`. The same bug hits any
/// aggregate with a destructor written in a `co_await` expression, so with
/// g++ 12 write `auto t = create_task(f(), {.name = "n"}); co_await t;`.)
template <class T>
Task<T> create_task(Coroutine<T> coro) {
  return get_running_loop().create_task(std::move(coro), TaskOptions());
}

/// The task running now: Python's `asyncio.current_task()`; an empty
/// handle (`valid()` false) when called outside a task.
inline TaskBase current_task() {
  detail::LoopCore* loop = detail::running_loop_slot;
  if (!loop || !loop->current_task_) return {};
  loop->current_task_->add_ref();
  return detail::TaskAccess::adopt<void>(loop->current_task_);
}

/// Every task of the running loop not yet done: Python's `all_tasks()`.
/// Throws: `std::logic_error` without a running loop.
inline std::vector<TaskBase> all_tasks() {
  detail::LoopCore& loop = detail::running_loop("all_tasks");
  std::vector<TaskBase> out;
  for (detail::TaskCore* t = loop.first_task(); t; t = t->next_task)
    if (!t->done()) {
      t->add_ref();
      out.push_back(detail::TaskAccess::adopt<void>(t));
    }
  return out;
}

namespace detail {
// `sleep(d)`: parks the task on a timer; `sleep(0)` (or negative) yields.
class SleepAwaiter final : Suspension, TimerNode {
public:
  explicit SleepAwaiter(Clock::time_point due, bool yield) noexcept : yield_(yield) {
    this->when = due;
  }
  SleepAwaiter(SleepAwaiter&& o) noexcept : yield_(o.yield_) { when = o.when; }
  ~SleepAwaiter() {
    if (queued()) loop_->remove_timer(this);
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = &running_task("sleep");
    if (yield_) {
      task_->yield_to_loop(h);
      return;
    }
    loop_ = task_->loop();
    loop_->add_timer(this);
    task_->suspend_on(h, this);
  }
  void await_resume() {
    if (cancelled_) throw task_->deliver_cancel();
    task_->throw_if_must_cancel();
  }

private:
  void fire() noexcept override { task_->wake(); }
  bool cancel_wait(const std::string&) noexcept override {
    loop_->remove_timer(this);
    cancelled_ = true;
    task_->wake();
    return true;
  }

  TaskCore* task_ = nullptr;
  LoopCore* loop_ = nullptr;
  bool yield_;
  bool cancelled_ = false;
};
}  // namespace detail

/// Suspends the task for `delay`: Python's `asyncio.sleep(delay)`. A zero or
/// negative delay yields: the task goes to the back of the ready queue and
/// the loop runs everything else that is ready first (Python's `sleep(0)`).
/// Where it throws `CancelledError`: here, if the task is cancelled while
/// asleep (the timer is removed at once). Resumes on the loop's thread,
/// never before `delay` has passed.
template <class Rep, class Period>
detail::SleepAwaiter sleep(std::chrono::duration<Rep, Period> delay) {
  if (delay <= delay.zero()) return detail::SleepAwaiter({}, true);
  return detail::SleepAwaiter(
      detail::Clock::now() + std::chrono::ceil<detail::Clock::duration>(delay), false);
}

/// Suspends the task until `when` on the loop's clock (`sleep` to a
/// deadline). A time already passed yields, as `sleep(0)`.
inline detail::SleepAwaiter sleep_until(std::chrono::steady_clock::time_point when) {
  if (when <= detail::Clock::now()) return detail::SleepAwaiter({}, true);
  return detail::SleepAwaiter(when, false);
}

namespace detail {
// run_until_complete's stop: the loop stops after the pass in which the
// task finished.
struct StopWhenDone final : DoneNode {
  LoopCore* loop;
  explicit StopWhenDone(LoopCore* l) noexcept : loop(l) {}
  void on_done(TaskCore&) noexcept override { loop->stopping_ = true; }
  void on_abandoned() noexcept override {}
};

template <class A>
struct awaitable_result;
template <class T>
struct awaitable_result<Coroutine<T>> {
  using type = T;
};
template <class T>
struct awaitable_result<Task<T>> {
  using type = T;
};
}  // namespace detail

template <class A>
auto EventLoop::run_until_complete(A&& aw) {
  using Plain = std::remove_cvref_t<A>;
  using T = typename detail::awaitable_result<Plain>::type;
  Task<T> task;
  if constexpr (detail::is_coroutine<Plain>::value)
    task = create_task(std::move(aw));
  else
    task = aw;
  detail::TaskCore* core = detail::TaskAccess::core(task);
  detail::StopWhenDone stop(this);
  if (!core->done()) core->add_done(&stop);
  try {
    if (!core->done()) run_forever();
  } catch (...) {
    core->remove_done(&stop);
    throw;
  }
  core->remove_done(&stop);
  if (!core->done())
    throw std::logic_error(
        "spindle::asyncio::EventLoop::run_until_complete: the loop stopped before the task "
        "completed");
  if constexpr (std::is_void_v<T>) {
    detail::task_outcome<T>(*core);
  } else if constexpr (std::is_copy_constructible_v<T>) {
    return detail::task_outcome<T>(*core);
  } else {
    return task.take_result();
  }
}

namespace detail {
// asyncio.run's shutdown: cancel what is left and let it finish.
inline Coroutine<void> await_all_quietly(std::vector<Task<void>> tasks) {
  for (auto& t : tasks) {
    try {
      co_await t;
    } catch (...) {
    }
  }
}

inline void cancel_all_tasks(EventLoop& loop) {
  LoopCore& core = detail::core(loop);
  std::vector<Task<void>> left;
  for (TaskCore* t = core.first_task(); t; t = t->next_task)
    if (!t->done()) {
      t->add_ref();
      left.push_back(TaskAccess::adopt<void>(t));
    }
  if (left.empty()) return;
  for (auto& t : left) t.cancel();
  loop.run_until_complete(await_all_quietly(left));
  for (auto& t : left) {
    TaskCore* c = TaskAccess::core(t);
    if (!c->cancelled() && c->error()) {
      c->mark_retrieved();
      core.report({"unhandled exception during asyncio.run() shutdown", c->error(), c->name()});
    }
  }
}
}  // namespace detail

/// Runs `main` on a new event loop and returns its result: Python's
/// `asyncio.run(main, debug=...)`. When `main` returns (or throws), every
/// task still pending is cancelled and awaited, the default executor is
/// shut down (waiting for its threads) and the loop is closed.
/// Throws: what `main` throws; `std::logic_error` if a loop already runs on
/// this thread.
template <class T>
T run(Coroutine<T> main, RunOptions options = {}) {
  if (detail::running_loop_slot)
    throw std::logic_error(
        "spindle::asyncio::run: cannot be called from a running event loop (co_await the "
        "coroutine instead)");
  EventLoop loop;
  loop.set_debug(options.debug);
  struct Finish {
    EventLoop& loop;
    ~Finish() {
      try {
        detail::cancel_all_tasks(loop);
      } catch (...) {
        detail::LoopCore::print_report({"asyncio::run: error while cancelling the remaining tasks",
                                        std::current_exception(), {}});
      }
      loop.close();
    }
  } finish{loop};
  return loop.run_until_complete(std::move(main));
}

}  // namespace spindle::asyncio
