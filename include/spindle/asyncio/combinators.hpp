// SPDX-License-Identifier: MIT
// spindle/asyncio/combinators.hpp - gather, shield, wait_for, timeout, wait, as_completed.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../detail/asyncio_wait.hpp"
#include "../errors.hpp"
#include "../future.hpp"
#include "coroutine.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace spindle::asyncio {

/// A value or the exception that took its place: one element of
/// `gather(return_exceptions, ...)`'s result (Python puts the exception
/// object itself in the list). `void` results are `Outcome<std::monostate>`.
template <class T>
class Outcome {
public:
  explicit Outcome(T value) : value_(std::move(value)) {}
  explicit Outcome(std::exception_ptr error) noexcept : error_(std::move(error)) {}

  /// True if there is a value (no exception).
  bool has_value() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return has_value(); }
  /// The value. Throws: the exception, if there is one.
  T& value() & {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  const T& value() const& {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  T&& value() && {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  /// The exception, or null. A cancelled child gives its CancelledError.
  const std::exception_ptr& exception() const noexcept { return error_; }

private:
  std::optional<T> value_;
  std::exception_ptr error_;
};

/// Tag for `gather(return_exceptions, aws...)`: Python's
/// `gather(..., return_exceptions=True)`.
struct ReturnExceptions {
  explicit ReturnExceptions() = default;
};
inline constexpr ReturnExceptions return_exceptions{};

namespace detail {

// A task's value as gather stores it (void becomes std::monostate).
template <class T>
using gathered_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class A>
struct awaited_type;
template <class T>
struct awaited_type<Coroutine<T>> {
  using type = T;
};
template <class T>
struct awaited_type<Task<T>> {
  using type = T;
};
template <class A>
using awaited_t = typename awaited_type<std::remove_cvref_t<A>>::type;

// Python's ensure_future: a coroutine becomes a task on the running loop,
// a task stays itself.
template <class T>
Task<T> ensure_task(Coroutine<T>&& c) {
  return create_task(std::move(c));
}
template <class T>
Task<T> ensure_task(Coroutine<T>& c) {
  return create_task(std::move(c));
}
template <class T>
Task<T> ensure_task(const Task<T>& t) {
  return t;
}

// A leaf that watches several tasks and parks the running task until
// `ready()` says so (or, with a deadline, until it passes). Each watched
// task gets a DoneNode; they are unlinked when the watch ends.
class DoneWatch : protected Suspension, TimerNode {
public:
  explicit DoneWatch(std::vector<TaskCore*> tasks) : tasks_(std::move(tasks)) {
    nodes_.reserve(tasks_.size());
    for (std::size_t i = 0; i < tasks_.size(); ++i) nodes_.emplace_back(this, i);
  }
  DoneWatch(const DoneWatch&) = delete;
  DoneWatch& operator=(const DoneWatch&) = delete;
  virtual ~DoneWatch() { detach(); }

  void set_deadline(Clock::time_point due) noexcept {
    has_deadline_ = true;
    this->when = due;
  }
  bool timed_out() const noexcept { return timed_out_; }
  TaskCore* parked_task() const noexcept { return task_; }

  bool await_ready() { return has_deadline_ ? ready() || expired_now() : ready(); }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = &running_task(what());
    for (std::size_t i = 0; i < tasks_.size(); ++i)
      if (!tasks_[i]->done()) tasks_[i]->add_done(&nodes_[i]);
    if (has_deadline_) task_->loop()->add_timer(this);
    parked_ = true;
    task_->suspend_on(h, this);
  }
  // Call from await_resume of the derived class: unlinks, then throws
  // CancelledError if the task was cancelled while parked.
  void finish_wait() {
    detach();
    if (cancelled_) throw task_->deliver_cancel();
    if (task_) task_->throw_if_must_cancel();
  }

protected:
  // True when the parked task should resume.
  virtual bool ready() = 0;
  // A watched task finished (before ready() is asked).
  virtual void child_done(std::size_t) {}
  virtual const char* what() const noexcept = 0;
  // The parked task is cancelled: the default leaves the watched tasks
  // alone and resumes with CancelledError (wait, as_completed).
  bool cancel_wait(const std::string&) noexcept override {
    detach();
    cancelled_ = true;
    wake();
    return true;
  }
  void wake() noexcept {
    if (!parked_) return;
    parked_ = false;
    task_->wake();
  }
  void detach() noexcept {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].linked) tasks_[i]->remove_done(&nodes_[i]);
    if (queued() && task_) task_->loop()->remove_timer(this);
  }

  std::vector<TaskCore*> tasks_;
  bool parked_ = false;
  bool cancelled_ = false;

private:
  struct Node final : DoneNode {
    Node(DoneWatch* o, std::size_t i) noexcept : owner(o), index(i) {}
    void on_done(TaskCore&) noexcept override {
      owner->child_done(index);
      if (owner->parked_ && owner->ready()) owner->wake();
    }
    DoneWatch* owner;
    std::size_t index;
  };
  void fire() noexcept override {
    timed_out_ = true;
    wake();
  }
  bool expired_now() {
    if (Clock::now() >= this->when) timed_out_ = true;
    return timed_out_;
  }

  std::vector<Node> nodes_;
  TaskCore* task_ = nullptr;
  bool has_deadline_ = false;
  bool timed_out_ = false;
};

// gather's wait: all children done, or (without return_exceptions) the
// first failure. Cancelling it cancels every child, as Python's
// _GatheringFuture.cancel().
class GatherWatch final : public DoneWatch {
public:
  GatherWatch(std::vector<TaskCore*> tasks, bool return_exceptions)
      : DoneWatch(std::move(tasks)), return_exceptions_(return_exceptions) {
    for (TaskCore* t : tasks_) {
      if (t->done()) {
        ++finished_;
        note_failure(t);
      }
    }
  }
  // Throws the first failure (in completion order), or CancelledError if
  // the gather was cancelled.
  void await_resume() {
    bool must_cancel = parked_task() && parked_task()->take_must_cancel();
    detach();
    if (first_failure_) {
      quiet_rest();
      std::rethrow_exception(first_failure_->error());
    }
    if (cancel_requested_ || must_cancel) throw parked_task()->deliver_cancel();
  }

private:
  bool ready() override { return first_failure_ || finished_ == tasks_.size(); }
  void child_done(std::size_t i) override {
    ++finished_;
    note_failure(tasks_[i]);
  }
  const char* what() const noexcept override { return "gather"; }
  void note_failure(TaskCore* t) noexcept {
    if (!return_exceptions_ && !first_failure_ && t->error()) {
      first_failure_ = t;
      t->mark_retrieved();
    }
  }
  // Python marks the exceptions of the other children retrieved once the
  // gather has failed.
  void quiet_rest() noexcept {
    for (TaskCore* t : tasks_) {
      if (t->done())
        t->mark_retrieved();
      else
        t->set_quiet();
    }
  }
  bool cancel_wait(const std::string& message) noexcept override {
    bool any = false;
    for (TaskCore* t : tasks_) {
      try {
        if (t->cancel(message)) any = true;
      } catch (...) {
      }
    }
    if (any) cancel_requested_ = true;
    return any;
  }

  bool return_exceptions_;
  std::size_t finished_ = 0;
  TaskCore* first_failure_ = nullptr;
  bool cancel_requested_ = false;
};

template <class T>
gathered_t<T> gathered_value(TaskCore& t) {
  if constexpr (std::is_void_v<T>) {
    task_outcome<void>(t);
    return {};
  } else {
    return task_outcome<T>(t);
  }
}
template <class T>
Outcome<gathered_t<T>> gathered_outcome(TaskCore& t) {
  t.mark_retrieved();
  if (t.error()) return Outcome<gathered_t<T>>(t.error());
  return Outcome<gathered_t<T>>(gathered_value<T>(t));
}

template <class... T, std::size_t... I>
std::tuple<gathered_t<T>...> gathered_tuple(const std::tuple<Task<T>...>& tasks,
                                           std::index_sequence<I...>) {
  return {gathered_value<T>(*TaskAccess::core(std::get<I>(tasks)))...};
}
template <class... T, std::size_t... I>
std::tuple<Outcome<gathered_t<T>>...> outcome_tuple(const std::tuple<Task<T>...>& tasks,
                                                   std::index_sequence<I...>) {
  return {gathered_outcome<T>(*TaskAccess::core(std::get<I>(tasks)))...};
}

template <class... T>
std::vector<TaskCore*> cores_of(const std::tuple<Task<T>...>& tasks) {
  return std::apply([](const auto&... t) { return std::vector<TaskCore*>{TaskAccess::core(t)...}; },
                    tasks);
}
template <class T>
std::vector<TaskCore*> cores_of(const std::vector<Task<T>>& tasks) {
  std::vector<TaskCore*> out;
  out.reserve(tasks.size());
  for (const auto& t : tasks) out.push_back(TaskAccess::core(t));
  return out;
}

template <class... T>
Coroutine<std::tuple<gathered_t<T>...>> gather_tuple(std::tuple<Task<T>...> tasks) {
  co_await GatherWatch(cores_of(tasks), false);
  co_return gathered_tuple(tasks, std::index_sequence_for<T...>{});
}
template <class... T>
Coroutine<std::tuple<Outcome<gathered_t<T>>...>> gather_outcomes(std::tuple<Task<T>...> tasks) {
  co_await GatherWatch(cores_of(tasks), true);
  co_return outcome_tuple(tasks, std::index_sequence_for<T...>{});
}
template <class T>
Coroutine<std::vector<gathered_t<T>>> gather_vector(std::vector<Task<T>> tasks) {
  co_await GatherWatch(cores_of(tasks), false);
  std::vector<gathered_t<T>> out;
  out.reserve(tasks.size());
  for (auto& t : tasks) out.push_back(gathered_value<T>(*TaskAccess::core(t)));
  co_return out;
}
template <class T>
Coroutine<std::vector<Outcome<gathered_t<T>>>> gather_outcome_vector(std::vector<Task<T>> tasks) {
  co_await GatherWatch(cores_of(tasks), true);
  std::vector<Outcome<gathered_t<T>>> out;
  out.reserve(tasks.size());
  for (auto& t : tasks) out.push_back(gathered_outcome<T>(*TaskAccess::core(t)));
  co_return out;
}

// gather's outer task starts at once, parked on its children, so that
// cancelling it (before anybody awaits it) cancels them.
template <class R>
Task<R> start_gather(Coroutine<R> body) {
  EventLoop& loop = get_running_loop();
  auto handle = CoroutineAccess::release(body);
  TaskCore* core;
  try {
    core = new TaskCore(detail::core(loop), handle, handle.promise(), "gather");
  } catch (...) {
    handle.destroy();
    throw;
  }
  core->add_ref();
  Task<R> outer = TaskAccess::adopt<R>(core);
  core->start_now();
  return outer;
}

template <class R>
concept TaskRange = requires(R& r) {
  std::begin(r);
  std::end(r);
  typename awaited_type<std::remove_cvref_t<decltype(*std::begin(r))>>::type;
};
}  // namespace detail

/// Runs awaitables concurrently and waits for all of them: Python's
/// `asyncio.gather(*aws)`. Each `Coroutine` becomes a task at once (they
/// start at the loop's next pass, whether or not the result is awaited);
/// `Task`s are used as they are. Returns a `Task` of a tuple of the results
/// in argument order (a `void` result is `std::monostate`).
///
/// The first exception (in completion order) becomes the gather's, and the
/// other children keep running, as in Python. Cancelling the gather task
/// (or a task awaiting it) cancels every child still running; a child that
/// ends cancelled makes the gather throw `CancelledError`.
/// Throws: `std::logic_error` without a running loop.
template <class... A>
  requires(sizeof...(A) > 0)
auto gather(A&&... aws) {
  auto tasks = std::make_tuple(detail::ensure_task(std::forward<A>(aws))...);
  return detail::start_gather(detail::gather_tuple(std::move(tasks)));
}

/// `gather(return_exceptions, aws...)`: Python's `return_exceptions=True`.
/// Waits for every child; each result is an `Outcome` holding the value or
/// the exception (a cancelled child's `CancelledError` too).
template <class... A>
  requires(sizeof...(A) > 0)
auto gather(ReturnExceptions, A&&... aws) {
  auto tasks = std::make_tuple(detail::ensure_task(std::forward<A>(aws))...);
  return detail::start_gather(detail::gather_outcomes(std::move(tasks)));
}

/// `gather` over a range of `Coroutine<T>` (moved from) or `Task<T>`:
/// returns a `Task<std::vector<T>>` in input order. An empty range gives an
/// empty vector. Python's `gather(*list_of_aws)`.
template <detail::TaskRange R>
auto gather(R&& aws) {
  using T = detail::awaited_t<decltype(*std::begin(aws))>;
  std::vector<Task<T>> tasks;
  for (auto&& a : aws) tasks.push_back(detail::ensure_task(a));
  return detail::start_gather(detail::gather_vector<T>(std::move(tasks)));
}

/// `gather(return_exceptions, range)`: a vector of `Outcome`s.
template <detail::TaskRange R>
auto gather(ReturnExceptions, R&& aws) {
  using T = detail::awaited_t<decltype(*std::begin(aws))>;
  std::vector<Task<T>> tasks;
  for (auto&& a : aws) tasks.push_back(detail::ensure_task(a));
  return detail::start_gather(detail::gather_outcome_vector<T>(std::move(tasks)));
}

namespace detail {
// shield's awaiter: waits for the inner task, but a cancellation of the
// awaiting task stops only the waiting, never the inner task.
template <class T>
class ShieldAwaiter final : Suspension, DoneNode {
public:
  explicit ShieldAwaiter(Task<T> inner) : inner_(std::move(inner)) {}
  ShieldAwaiter(ShieldAwaiter&& o) noexcept : inner_(std::move(o.inner_)) {}
  ~ShieldAwaiter() {
    if (linked) core()->remove_done(this);
  }
  bool await_ready() const { return core()->done(); }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = &running_task("shield");
    core()->add_done(this);
    task_->suspend_on(h, this);
  }
  T await_resume() {
    if (linked) core()->remove_done(this);
    if (cancelled_) throw task_->deliver_cancel();
    if (task_) task_->throw_if_must_cancel();
    return task_outcome<T>(*core());
  }
  /// The inner task (Python keeps it referenced through the outer future).
  const Task<T>& inner() const noexcept { return inner_; }

private:
  TaskCore* core() const noexcept { return TaskAccess::core(inner_); }
  void on_done(TaskCore&) noexcept override { task_->wake(); }
  bool cancel_wait(const std::string&) noexcept override {
    core()->remove_done(this);
    core()->set_quiet();  // Python marks the inner result retrieved
    cancelled_ = true;
    task_->wake();
    return true;
  }
  Task<T> inner_;
  TaskCore* task_ = nullptr;
  bool cancelled_ = false;
};
}  // namespace detail

/// Protects an awaitable from cancellation: Python's `asyncio.shield(aw)`.
/// A `Coroutine` becomes a task at once. Awaiting the result waits for that
/// task; if the awaiting task is cancelled, the await throws
/// `CancelledError` at once but the inner task keeps running (and its
/// exception is not reported as never retrieved). Cancelling the inner
/// task itself still cancels it.
template <class A>
auto shield(A&& aw) {
  return detail::ShieldAwaiter<detail::awaited_t<A>>(detail::ensure_task(std::forward<A>(aw)));
}

/// A deadline for a block of awaits: Python 3.11's `asyncio.Timeout`, as
/// made by `timeout()` and `timeout_at()`.
///
/// C++ has no `async with`, so the block is an awaitable handed to `run`:
///
/// ```
/// auto cm = asyncio::timeout(100ms);           // async with asyncio.timeout(0.1) as cm:
/// co_await cm.run(fetch());                    //     await fetch()
/// co_await cm.run([&]() -> Coroutine<void> {   // or a whole block, as a lambda coroutine
///   co_await step1(); cm.reschedule(...); co_await step2(); }());
/// ```
///
/// `run` awaits the block inline in the running task. When the deadline
/// passes, the task is cancelled (CancelledError is thrown at its current
/// `co_await`); once the block has unwound, `run` turns that
/// cancellation into `spindle::TimeoutError`. A cancellation from anybody
/// else stays a CancelledError. One `Timeout` runs one block.
/// Not thread-safe: loop thread only.
class Timeout final {
public:
  /// A deadline at `when`, or none (`std::nullopt`: never expires).
  explicit Timeout(std::optional<std::chrono::steady_clock::time_point> when) noexcept
      : deadline_(when), timer_(this) {}
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;
  ~Timeout() { disarm(); }

  /// The deadline, or none: Python's `when()`.
  std::optional<std::chrono::steady_clock::time_point> when() const noexcept { return deadline_; }
  /// Moves the deadline (none: never): Python's `reschedule()`.
  /// Throws: `std::logic_error` once the block has expired or finished.
  void reschedule(std::optional<std::chrono::steady_clock::time_point> when) {
    if (state_ == State::expiring || state_ == State::expired || state_ == State::finished)
      throw std::logic_error("spindle::asyncio::Timeout::reschedule: the timeout has expired or finished");
    deadline_ = when;
    if (state_ == State::entered) arm();
  }
  /// True if the deadline passed while the block ran: Python's `expired()`.
  bool expired() const noexcept { return state_ == State::expiring || state_ == State::expired; }

  /// Awaits `aw` (a `Coroutine` or a `Task`) under this deadline and
  /// returns its result. Where it throws: `spindle::TimeoutError` if the
  /// deadline passed; `CancelledError` if the task was cancelled by
  /// anybody else; whatever `aw` throws. Resumes on the loop's thread.
  /// Throws: `std::logic_error` if this Timeout already ran a block.
  template <class A>
  Coroutine<detail::awaited_t<A>> run(A aw) {
    using T = detail::awaited_t<A>;
    enter();
    std::exception_ptr error;
    bool was_cancel = false;
    std::optional<detail::gathered_t<T>> value;
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(aw);
        value.emplace();
      } else {
        value.emplace(co_await std::move(aw));
      }
    } catch (const CancelledError&) {
      error = std::current_exception();
      was_cancel = true;
    } catch (...) {
      error = std::current_exception();
    }
    exit(error, was_cancel);
    if constexpr (!std::is_void_v<T>) co_return std::move(*value);
  }

private:
  enum class State : unsigned char { created, entered, expiring, expired, finished };

  void enter() {
    if (state_ != State::created)
      throw std::logic_error("spindle::asyncio::Timeout::run: a Timeout runs one block only");
    task_ = &detail::running_task("timeout");
    cancelling_ = task_->cancelling();
    state_ = State::entered;
    arm();
  }
  void arm() {
    disarm();
    if (!deadline_) return;
    if (*deadline_ <= detail::Clock::now()) {
      expire();
      return;
    }
    timer_.when = *deadline_;
    task_->loop()->add_timer(&timer_);
  }
  void disarm() noexcept {
    if (timer_.queued() && task_ && task_->loop()) task_->loop()->remove_timer(&timer_);
  }
  void expire() noexcept {
    state_ = State::expiring;
    try {
      task_->cancel({});
    } catch (...) {
    }
  }
  void exit(const std::exception_ptr& error, bool was_cancel) {
    disarm();
    if (state_ == State::expiring) {
      state_ = State::expired;
      if (task_->uncancel() <= cancelling_ && was_cancel)
        throw TimeoutError("asyncio::timeout: the deadline passed");
    } else {
      state_ = State::finished;
    }
    if (error) std::rethrow_exception(error);
  }

  struct Timer final : detail::TimerNode {
    explicit Timer(Timeout* o) noexcept : owner(o) {}
    void fire() noexcept override { owner->expire(); }
    Timeout* owner;
  };

  std::optional<std::chrono::steady_clock::time_point> deadline_;
  Timer timer_;
  detail::TaskCore* task_ = nullptr;
  unsigned cancelling_ = 0;
  State state_ = State::created;
};

/// A `Timeout` `delay` from now: Python's `asyncio.timeout(delay)`. (Named
/// in parentheses in this header because curses defines a `timeout()`
/// macro; callers write `asyncio::timeout(100ms)` as usual.)
template <class Rep, class Period>
Timeout(timeout)(std::chrono::duration<Rep, Period> delay) {
  return Timeout(detail::Clock::now() + std::chrono::ceil<detail::Clock::duration>(delay));
}
/// A `Timeout` with no deadline (`timeout(None)`), to be rescheduled.
inline Timeout(timeout)(std::nullopt_t) { return Timeout(std::nullopt); }
/// A `Timeout` at `when`: Python's `asyncio.timeout_at(when)`.
inline Timeout timeout_at(std::chrono::steady_clock::time_point when) { return Timeout(when); }

/// When `wait` returns: Python's FIRST_COMPLETED, FIRST_EXCEPTION and
/// ALL_COMPLETED (the same enum as `spindle::wait` for thread futures).
using spindle::ReturnWhen;

/// The two sets `wait` returns, each in input order.
template <class T>
struct WaitResult {
  std::vector<Task<T>> done;
  std::vector<Task<T>> pending;
};

namespace detail {
class WaitWatch final : public DoneWatch {
public:
  WaitWatch(std::vector<TaskCore*> tasks, ReturnWhen return_when)
      : DoneWatch(std::move(tasks)), when_(return_when) {
    for (std::size_t i = 0; i < tasks_.size(); ++i)
      if (tasks_[i]->done()) child_done(i);
  }
  void await_resume() { finish_wait(); }

private:
  // Counted as the tasks finish, so the whole wait costs O(n).
  void child_done(std::size_t i) override {
    ++done_;
    if (!tasks_[i]->cancelled() && tasks_[i]->error()) failed_ = true;
  }
  bool ready() override {
    if (done_ == tasks_.size()) return true;
    if (when_ == ReturnWhen::first_completed) return done_ > 0;
    if (when_ == ReturnWhen::first_exception) return failed_;
    return false;
  }
  const char* what() const noexcept override { return "wait"; }
  ReturnWhen when_;
  std::size_t done_ = 0;
  bool failed_ = false;
};

template <class T>
Coroutine<WaitResult<T>> wait_impl(std::vector<Task<T>> tasks, ReturnWhen when,
                                   std::optional<Clock::time_point> deadline) {
  if (tasks.empty()) throw std::invalid_argument("spindle::asyncio::wait: the set of tasks is empty");
  WaitWatch watch(cores_of(tasks), when);
  if (deadline) watch.set_deadline(*deadline);
  co_await watch;
  WaitResult<T> out;
  for (auto& t : tasks) (TaskAccess::core(t)->done() ? out.done : out.pending).push_back(t);
  co_return out;
}
}  // namespace detail

/// Waits until `tasks` reach `return_when`: Python's `asyncio.wait`.
/// Returns `{done, pending}`; never cancels anything, never throws the
/// tasks' exceptions. Where it throws `CancelledError`: if the awaiting
/// task is cancelled (the tasks keep running).
/// Throws: `std::invalid_argument` for an empty set.
template <class T>
Coroutine<WaitResult<T>> wait(std::vector<Task<T>> tasks,
                              ReturnWhen return_when = ReturnWhen::all_completed) {
  return detail::wait_impl(std::move(tasks), return_when, std::nullopt);
}
/// As `wait`, returning when `timeout` passes at the latest (Python's
/// `timeout=`: no TimeoutError, the unfinished tasks are in `pending`).
template <class T, class Rep, class Period>
Coroutine<WaitResult<T>> wait(std::vector<Task<T>> tasks, ReturnWhen return_when,
                              std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_impl(std::move(tasks), return_when,
                           detail::Clock::now() + std::chrono::ceil<detail::Clock::duration>(timeout));
}

namespace detail {
template <class A, class T = awaited_t<A>>
Coroutine<T> wait_for_now(A aw) {
  // Python's wait_for with timeout <= 0: run it as a task, cancel it, and
  // wait for the cancellation to land.
  Task<T> task = ensure_task(std::move(aw));
  if (!TaskAccess::core(task)->done()) {
    task.cancel();
    // Waits without taking the outcome; a cancellation of ours propagates.
    WaitWatch watch({TaskAccess::core(task)}, ReturnWhen::all_completed);
    co_await watch;
  }
  try {
    co_return task_outcome<T>(*TaskAccess::core(task));
  } catch (const CancelledError&) {
    throw TimeoutError("asyncio::wait_for: timed out (timeout <= 0)");
  }
}

template <class A, class T = awaited_t<A>>
Coroutine<T> wait_for_impl(A aw, Clock::time_point deadline, double seconds) {
  Timeout scope(deadline);
  try {
    co_return co_await scope.run(std::move(aw));
  } catch (const TimeoutError&) {
    throw TimeoutError("asyncio::wait_for: timed out after " + spindle::detail::seconds_text(seconds) +
                       " s");
  }
}
}  // namespace detail

/// Awaits `aw` for at most `timeout`: Python's `asyncio.wait_for(aw,
/// timeout)` (3.12 semantics). If time runs out, `aw` is cancelled (a
/// coroutine receives `CancelledError` at its current `co_await`; a task is
/// cancelled), its cancellation is waited for, and `spindle::TimeoutError`
/// is thrown. A zero or negative timeout runs `aw` as a task and cancels it
/// at once (it still wins if it is already done or ignores the cancel).
/// Where it throws `CancelledError`: if the awaiting task is cancelled.
template <class A, class Rep, class Period>
Coroutine<detail::awaited_t<A>> wait_for(A aw, std::chrono::duration<Rep, Period> timeout) {
  if (timeout <= timeout.zero()) return detail::wait_for_now(std::move(aw));
  return detail::wait_for_impl(
      std::move(aw), detail::Clock::now() + std::chrono::ceil<detail::Clock::duration>(timeout),
      std::chrono::duration<double>(timeout).count());
}

/// The tasks of `as_completed`, in the order they finish: Python 3.13's
/// `asyncio.as_completed` iterator. `co_await next()` returns the next task
/// to finish (already done: `co_await` it or call `result()` for its
/// value), or `std::nullopt` once every task was returned. Costs O(n) in
/// all: each task, when done, is queued once.
///
/// ```
/// auto finished = asyncio::as_completed(tasks, 5s);
/// while (auto t = co_await finished.next()) use(co_await *t);
/// ```
///
/// Not movable (the tasks point at it); not thread-safe.
template <class T>
class AsCompleted {
public:
  AsCompleted(std::vector<Task<T>> tasks, std::optional<std::chrono::steady_clock::time_point> deadline)
      : tasks_(std::move(tasks)), deadline_(deadline) {
    nodes_.reserve(tasks_.size());
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      nodes_.emplace_back(this, i);
      auto* core = detail::TaskAccess::core(tasks_[i]);
      if (core->done())
        finished_.push_back(i);
      else
        core->add_done(&nodes_[i]);
    }
  }
  AsCompleted(const AsCompleted&) = delete;
  AsCompleted& operator=(const AsCompleted&) = delete;
  ~AsCompleted() {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (nodes_[i].linked) detail::TaskAccess::core(tasks_[i])->remove_done(&nodes_[i]);
  }

  /// How many tasks have not been returned yet.
  std::size_t remaining() const noexcept { return tasks_.size() - returned_; }

  /// Awaits the next task to finish. Where it throws: `spindle::TimeoutError`
  /// once the deadline has passed with tasks unfinished (Python raises it
  /// from the iteration); `CancelledError` if the awaiting task is cancelled.
  /// Resumes on the loop's thread.
  auto next() { return NextAwaiter{this}; }

private:
  struct Node final : detail::DoneNode {
    Node(AsCompleted* o, std::size_t i) noexcept : owner(o), index(i) {}
    void on_done(detail::TaskCore&) noexcept override {
      owner->finished_.push_back(index);
      owner->waiters_.wake_one();
    }
    AsCompleted* owner;
    std::size_t index;
  };

  struct NextAwaiter final : detail::TimerNode {
    AsCompleted* self;
    detail::Waiter waiter;
    detail::LoopCore* loop = nullptr;
    explicit NextAwaiter(AsCompleted* s) noexcept : self(s) {}
    NextAwaiter(NextAwaiter&& o) noexcept : self(o.self) {}
    ~NextAwaiter() {
      if (queued()) loop->remove_timer(this);
    }
    bool await_ready() const noexcept {
      return !self->finished_.empty() || self->remaining() == 0 || self->expired();
    }
    void await_suspend(std::coroutine_handle<> h) {
      waiter.park(self->waiters_, h, "as_completed");
      if (self->deadline_ && waiter.state() == detail::Waiter::State::waiting) {
        this->when = *self->deadline_;
        loop = waiter.task()->loop();
        loop->add_timer(this);
      }
    }
    std::optional<Task<T>> await_resume() {
      if (queued()) loop->remove_timer(this);
      waiter.resume([this] {
        if (!self->finished_.empty()) self->waiters_.wake_one();
      });
      if (!self->finished_.empty()) {
        const std::size_t i = self->finished_.front();
        self->finished_.pop_front();
        ++self->returned_;
        return self->tasks_[i];
      }
      if (self->remaining() == 0) return std::nullopt;
      throw TimeoutError("asyncio::as_completed: the deadline passed with " +
                         std::to_string(self->remaining()) + " task(s) unfinished");
    }
    void fire() noexcept override { self->waiters_.wake_all(); }
  };

  bool expired() const noexcept { return deadline_ && detail::Clock::now() >= *deadline_; }

  std::vector<Task<T>> tasks_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::vector<Node> nodes_;
  std::deque<std::size_t> finished_;
  std::size_t returned_ = 0;
  detail::WaitList waiters_;
};

/// `as_completed(tasks)`: see `AsCompleted`.
template <class T>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks) {
  return AsCompleted<T>(std::move(tasks), std::nullopt);
}
/// `as_completed(tasks, timeout)`: the whole iteration must end within
/// `timeout`, else `next()` throws `spindle::TimeoutError`.
template <class T, class Rep, class Period>
AsCompleted<T> as_completed(std::vector<Task<T>> tasks, std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<T>(std::move(tasks),
                        detail::Clock::now() + std::chrono::ceil<detail::Clock::duration>(timeout));
}

}  // namespace spindle::asyncio
