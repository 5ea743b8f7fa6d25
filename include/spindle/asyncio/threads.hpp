// SPDX-License-Identifier: MIT
// spindle/asyncio/threads.hpp - to_thread, run_in_executor, wrap_future, run_coroutine_threadsafe.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "../errors.hpp"
#include "../executor.hpp"
#include "../future.hpp"
#include "coroutine.hpp"
#include "loop.hpp"
#include "task.hpp"

namespace spindle::asyncio {

namespace detail {

// What a thread future's done-callback needs to wake an awaiting task: the
// loop's inbox (shared, so a loop that is gone is detected) and, on the
// loop thread only, the awaiter if it still waits.
struct FutureLink {
  std::shared_ptr<Inbox> inbox;
  LoopCore* loop;
  struct Target {
    virtual void on_future_done() noexcept = 0;

  protected:
    ~Target() = default;
  };
  Target* target;  // loop thread only; null once the awaiter stopped waiting
};

// Awaiting a spindle::Future from a task: the task parks, the future's
// done-callback (in whatever thread completes it) posts a wake-up to the
// loop. The loop thread never blocks.
template <class T>
class FutureAwaiter final : Suspension, FutureLink::Target {
public:
  explicit FutureAwaiter(Future<T> future) : future_(std::move(future)) {
    if (!future_.valid())
      throw std::logic_error("spindle::asyncio::wrap_future: the future has no state");
  }
  FutureAwaiter(FutureAwaiter&& o) noexcept : future_(std::move(o.future_)) {}
  FutureAwaiter(const FutureAwaiter&) = delete;
  FutureAwaiter& operator=(const FutureAwaiter&) = delete;
  ~FutureAwaiter() {
    if (link_) link_->target = nullptr;
  }

  bool await_ready() const { return future_.done(); }
  void await_suspend(std::coroutine_handle<> h) {
    task_ = &running_task("wrap_future");
    LoopCore& loop = *task_->loop();
    link_ = std::make_shared<FutureLink>(FutureLink{loop.inbox_, &loop, this});
    task_->suspend_on(h, this);
    // Registered last: if the future is done already the callback runs
    // right here, and the wake-up still goes through the inbox.
    future_.add_done_callback([link = link_](const Future<T>&) {
      try {
        post_to(link->inbox, *link->loop, [link] {
          if (link->target) link->target->on_future_done();
        });
      } catch (const EventLoopClosed&) {
        // The loop closed first: nobody waits any more.
      }
    });
  }
  T await_resume() {
    if (link_) link_->target = nullptr;
    if (cancelled_) throw task_->deliver_cancel();
    if (task_) task_->throw_if_must_cancel();
    try {
      if constexpr (std::is_void_v<T>) {
        future_.result();
      } else {
        return std::move(future_).result();
      }
    } catch (const spindle::CancelledError&) {
      // The thread future was cancelled: to the coroutine that is an
      // asyncio cancellation, as in Python (one CancelledError there).
      throw CancelledError("the awaited spindle::Future was cancelled");
    }
  }

private:
  void on_future_done() noexcept override {
    link_->target = nullptr;
    task_->wake();
  }
  bool cancel_wait(const std::string&) noexcept override {
    // Python cancels the concurrent future (work not started never runs)
    // and the awaiting task stops waiting at once either way.
    try {
      future_.cancel();
    } catch (...) {
    }
    link_->target = nullptr;
    cancelled_ = true;
    task_->wake();
    return true;
  }

  Future<T> future_;
  std::shared_ptr<FutureLink> link_;
  TaskCore* task_ = nullptr;
  bool cancelled_ = false;
};

inline ThreadPoolExecutor& default_executor(LoopCore& loop) {
  if (!loop.default_executor_) {
    loop.default_executor_ = std::make_shared<ThreadPoolExecutor>(
        ThreadPoolOptions{.thread_name_prefix = "asyncio"});
    loop.shutdown_executor_ = [](void* p) {
      try {
        static_cast<ThreadPoolExecutor*>(p)->shutdown(true);
      } catch (...) {
      }
    };
  }
  return *static_cast<ThreadPoolExecutor*>(loop.default_executor_.get());
}
}  // namespace detail

/// Awaits a `spindle::Future` from a coroutine without blocking the loop:
/// Python's `asyncio.wrap_future`. (`co_await future` does the same.)
/// Returns the value (moved out when this is the only handle) or rethrows
/// the future's exception; a cancelled future throws
/// `asyncio::CancelledError`.
/// Where it throws `CancelledError`: if the awaiting task is cancelled, at
/// once; the future is cancelled too if its work has not started.
/// Resumes on the loop's thread.
template <class T>
detail::FutureAwaiter<T> wrap_future(Future<T> future) {
  return detail::FutureAwaiter<T>(std::move(future));
}

/// Runs `fn(args...)` on the loop's default executor (a
/// `spindle::ThreadPoolExecutor`, started on first use, shut down by `run()`
/// and `close()`) and awaits the result: Python's `asyncio.to_thread`.
/// The coroutine resumes on the loop's thread. Cancelling the awaiting task
/// stops the wait; a call already running in its thread finishes there.
template <class F, class... Args>
auto to_thread(F fn, Args... args) -> Coroutine<std::invoke_result_t<F&, Args&...>> {
  auto& executor = detail::default_executor(detail::running_loop("to_thread"));
  co_return co_await wrap_future(executor.submit(std::move(fn), std::move(args)...));
}

template <class Executor, class F, class... Args>
auto EventLoop::run_in_executor(Executor& executor, F&& fn, Args&&... args) {
  return wrap_future(executor.submit(std::forward<F>(fn), std::forward<Args>(args)...));
}

namespace detail {
// run_coroutine_threadsafe's state: the coroutine until the loop takes it,
// the promise of the thread future, and the task once it exists (loop
// thread only).
template <class T>
struct ThreadsafeRun {
  explicit ThreadsafeRun(Coroutine<T> c) : coro(std::move(c)) {}
  Coroutine<T> coro;
  Promise<T> promise;
  Task<T> task;  // loop thread only
};

template <class T>
struct ThreadsafeDone final : DoneNode {
  explicit ThreadsafeDone(std::shared_ptr<ThreadsafeRun<T>> s) noexcept : state(std::move(s)) {}
  void on_done(TaskCore& core) noexcept override {
    core.mark_retrieved();
    try {
      if (core.cancelled()) {
        state->promise.get_future().cancel();
      } else if (core.error()) {
        state->promise.set_exception(core.error());
      } else if constexpr (std::is_void_v<T>) {
        state->promise.set_result();
      } else {
        state->promise.set_result(state->task.take_result());
      }
    } catch (...) {
      try {
        state->promise.set_exception(std::current_exception());
      } catch (...) {
      }
    }
    finish();
  }
  void on_abandoned() noexcept override {
    try {
      state->promise.set_exception(std::make_exception_ptr(EventLoopClosed(
          "run_coroutine_threadsafe: the event loop closed before the coroutine finished")));
    } catch (...) {
    }
    finish();
  }
  void finish() noexcept {
    state->task = Task<T>();  // released on the loop thread
    delete this;
  }
  std::shared_ptr<ThreadsafeRun<T>> state;
};
}  // namespace detail

/// Submits `coro` to `loop` from any other thread and returns a
/// `spindle::Future` for its result: Python's
/// `asyncio.run_coroutine_threadsafe`. The coroutine becomes a task on the
/// loop's thread. Cancelling the future cancels the task. If the loop
/// closes before the task finishes, the future fails with
/// `EventLoopClosed`. Thread-safe.
/// Throws: `EventLoopClosed` if the loop is closed (the coroutine never
/// runs).
template <class T>
Future<T> run_coroutine_threadsafe(Coroutine<T> coro, EventLoop& loop) {
  auto state = std::make_shared<detail::ThreadsafeRun<T>>(std::move(coro));
  Future<T> future = state->promise.get_future();
  std::shared_ptr<detail::Inbox> inbox = detail::inbox_of(loop);
  detail::LoopCore* core = &detail::core(loop);
  loop.call_soon_threadsafe([state]() mutable {
    try {
      state->task = create_task(std::move(state->coro));
      detail::TaskAccess::core(state->task)->add_done(new detail::ThreadsafeDone<T>(state));
    } catch (...) {
      state->task = Task<T>();
      state->promise.set_exception(std::current_exception());
    }
  });
  // A cancel of the future (from any thread) cancels the task, on the loop.
  std::weak_ptr<detail::ThreadsafeRun<T>> weak = state;
  future.add_done_callback([weak, inbox, core](const Future<T>& f) {
    if (!f.cancelled()) return;
    try {
      detail::post_to(inbox, *core, [weak] {
        if (auto s = weak.lock())
          if (s->task.valid() && !s->task.done()) s->task.cancel();
      });
    } catch (const EventLoopClosed&) {
    }
  });
  return future;
}

}  // namespace spindle::asyncio

namespace spindle {
/// `co_await future` in a spindle::asyncio coroutine: `asyncio::wrap_future`.
template <class T>
asyncio::detail::FutureAwaiter<T> operator co_await(Future<T> future) {
  return asyncio::detail::FutureAwaiter<T>(std::move(future));
}
}  // namespace spindle
