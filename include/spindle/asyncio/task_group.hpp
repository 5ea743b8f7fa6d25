// SPDX-License-Identifier: MIT
// spindle/asyncio/task_group.hpp - TaskGroup (Python 3.11's structured concurrency).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <list>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "coroutine.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace spindle::asyncio {

template <class F>
auto task_group(F&& body);

/// Tasks that live and die together: Python 3.11's `asyncio.TaskGroup`.
///
/// C++ has no `async with`, so a group exists for the run of a body, a
/// coroutine that receives the group:
///
/// ```
/// co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> asyncio::Coroutine<void> {
///   tg.create_task(fetch("a"));                 // async with asyncio.TaskGroup() as tg:
///   tg.create_task(fetch("b"));                 //     tg.create_task(fetch("a")) ...
///   co_return;
/// });                                           // waits here for every task
/// ```
///
/// `task_group(body)` awaits the body inline, then waits for every task
/// the group created. The first task to fail (with anything but
/// CancelledError) cancels all the others and the body (which receives
/// CancelledError at its current `co_await`); once everything has
/// finished, `task_group` throws `spindle::ExceptionGroup` carrying every
/// exception, the tasks' in the order they failed and then the body's.
/// A cancellation of the task running the group from outside cancels the
/// group's tasks and is passed on as CancelledError once they have
/// finished. `task_group` returns the body's value when nothing failed.
///
/// Not thread-safe: loop thread only.
class TaskGroup {
public:
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  ~TaskGroup() {
    for (Member& m : members_)
      if (m.linked) detail::TaskAccess::core(m.task)->remove_done(&m);
  }

  /// Creates a task in the group: Python's `TaskGroup.create_task`.
  /// Throws: `std::logic_error` once the group has finished, or while it
  /// is shutting down after a failure (the coroutine is destroyed
  /// unstarted, as in Python 3.13).
  template <class T>
  Task<T> create_task(Coroutine<T> coro) {
    return create_task(std::move(coro), TaskOptions());
  }
  /// As `create_task(coro)`, with a name.
  template <class T>
  Task<T> create_task(Coroutine<T> coro, TaskOptions options) {
    if (finished_) throw std::logic_error("spindle::asyncio::TaskGroup::create_task: the TaskGroup is finished");
    if (aborting_)
      throw std::logic_error("spindle::asyncio::TaskGroup::create_task: the TaskGroup is shutting down");
    Task<T> task = asyncio::create_task(std::move(coro), std::move(options));
    Member& m = members_.emplace_back(this, task);
    detail::TaskAccess::core(task)->add_done(&m);
    ++pending_;
    return task;
  }

private:
  template <class F>
  friend auto task_group(F&& body);

  TaskGroup() : parent_(&detail::running_task("TaskGroup")) {}

  struct Member final : detail::DoneNode {
    Member(TaskGroup* g, TaskBase t) : group(g), task(std::move(t)) {}
    void on_done(detail::TaskCore& core) noexcept override { group->on_task_done(core); }
    TaskGroup* group;
    TaskBase task;
  };

  void on_task_done(detail::TaskCore& core) noexcept {
    --pending_;
    if (exiting_ && pending_ == 0 && exit_waiter_) exit_waiter_->wake();
    if (core.cancelled() || !core.error()) return;
    core.mark_retrieved();
    try {
      errors_.push_back(core.error());
    } catch (...) {
    }
    if (!aborting_ && !parent_cancel_requested_) {
      // Cancel the others and whatever the body is awaiting right now.
      abort();
      parent_cancel_requested_ = true;
      try {
        parent_->cancel({});
      } catch (...) {
      }
    }
  }

  void abort() noexcept {
    aborting_ = true;
    for (Member& m : members_) {
      auto* core = detail::TaskAccess::core(m.task);
      if (!core->done()) {
        try {
          core->cancel({});
        } catch (...) {
        }
      }
    }
  }

  // Python's __aexit__: waits until every task is done. A cancellation
  // that arrives meanwhile cancels the tasks (once) and is remembered.
  struct ExitAwaiter final : detail::Suspension {
    TaskGroup* group;
    detail::TaskCore* task = nullptr;
    bool parked = false;
    explicit ExitAwaiter(TaskGroup* g) noexcept : group(g) {}
    ~ExitAwaiter() {
      if (parked) group->exit_waiter_ = nullptr;
    }
    bool await_ready() const noexcept { return group->pending_ == 0; }
    void await_suspend(std::coroutine_handle<> h) {
      task = &detail::running_task("TaskGroup");
      parked = true;
      group->exit_waiter_ = this;
      task->suspend_on(h, this);
    }
    void await_resume() {
      if (task && task->take_must_cancel()) group->absorb_cancel();
    }
    bool cancel_wait(const std::string&) noexcept override {
      group->absorb_cancel();
      return true;  // the task stays parked until the group is empty
    }
    void wake() noexcept {
      if (!parked) return;
      parked = false;
      group->exit_waiter_ = nullptr;
      task->wake();
    }
  };

  void absorb_cancel() noexcept {
    if (!aborting_) {
      propagate_cancel_ = true;
      abort();
    }
  }

  // The rest of __aexit__, once every task is done: what to throw.
  void finish(std::exception_ptr body_error, bool body_cancelled) {
    finished_ = true;
    if (parent_cancel_requested_ && parent_->uncancel() == 0) propagate_cancel_ = false;
    if (propagate_cancel_ && errors_.empty()) {
      if (body_cancelled) std::rethrow_exception(body_error);
      throw parent_->cancelled_error();
    }
    if (body_error && !body_cancelled) errors_.push_back(body_error);
    if (!errors_.empty())
      throw ExceptionGroup("unhandled errors in a TaskGroup", std::move(errors_));
  }

  detail::TaskCore* parent_;
  std::list<Member> members_;  // stable addresses: the tasks point at them
  std::vector<std::exception_ptr> errors_;
  std::size_t pending_ = 0;
  ExitAwaiter* exit_waiter_ = nullptr;
  bool aborting_ = false;
  bool exiting_ = false;
  bool finished_ = false;
  bool parent_cancel_requested_ = false;
  bool propagate_cancel_ = false;
};

/// Runs `body(group)` with a new `TaskGroup` and waits for all of its
/// tasks: Python's `async with asyncio.TaskGroup() as tg: ...` (see
/// `TaskGroup`). `body` is a callable taking `TaskGroup&` and returning a
/// `Coroutine<R>`; `task_group` returns a `Coroutine<R>` with the body's
/// value.
/// Where it throws: `spindle::ExceptionGroup` if any task or the body
/// failed; `CancelledError` if the running task was cancelled from
/// outside; resumes on the loop's thread.
template <class F>
auto task_group(F&& body) {
  using Body = std::invoke_result_t<F&, TaskGroup&>;
  using R = typename Body::value_type;
  return [](std::decay_t<F> fn) -> Coroutine<R> {
    TaskGroup group;
    std::exception_ptr body_error;
    bool body_cancelled = false;
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
    try {
      if constexpr (std::is_void_v<R>) {
        co_await fn(group);
        value.emplace(true);
      } else {
        value.emplace(co_await fn(group));
      }
    } catch (const CancelledError&) {
      body_error = std::current_exception();
      body_cancelled = true;
    } catch (...) {
      body_error = std::current_exception();
    }
    group.exiting_ = true;
    group.propagate_cancel_ = body_cancelled;
    if (body_error && !group.aborting_) group.abort();
    while (group.pending_ > 0) co_await TaskGroup::ExitAwaiter(&group);
    group.finish(body_error, body_cancelled);
    if constexpr (!std::is_void_v<R>) co_return std::move(*value);
  }(std::forward<F>(body));
}

}  // namespace spindle::asyncio
