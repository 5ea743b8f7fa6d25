// SPDX-License-Identifier: MIT
// spindle/asyncio/loop.hpp - EventLoop, Handle, TimerHandle, get_running_loop.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "../detail/asyncio_loop.hpp"
#include "../errors.hpp"
#include "coroutine.hpp"

namespace spindle::asyncio {

class EventLoop;
template <class T>
class Task;
class TaskBase;

/// A scheduled callback: Python's `asyncio.Handle`, returned by `call_soon`
/// and `call_soon_threadsafe`. Copyable; copies refer to one callback.
class Handle {
public:
  Handle() noexcept = default;
  /// Cancels the callback: it will not run if it has not run yet. Python's
  /// `Handle.cancel()`. Never blocks. Thread-safe for a callback that is
  /// not a timer (`TimerHandle::cancel` is loop-thread-only).
  void cancel() noexcept {
    if (ref_.get()) ref_.get()->cancel();
  }
  /// True once `cancel()` was called. Thread-safe.
  bool cancelled() const noexcept { return ref_.get() && ref_.get()->cancelled(); }

protected:
  friend class EventLoop;
  explicit Handle(detail::CallbackCore* core) noexcept : ref_(core) {}
  detail::HandleRef ref_;
};

/// A callback scheduled for a time: Python's `asyncio.TimerHandle`, returned
/// by `call_later` and `call_at`. `cancel()` removes it from the loop's
/// timer heap at once (O(log n)); call it on the loop's thread.
class TimerHandle : public Handle {
public:
  TimerHandle() noexcept = default;
  /// When the callback is due, on the loop's clock. Python's `when()`.
  std::chrono::steady_clock::time_point when() const noexcept {
    return ref_.get() ? ref_.get()->when : std::chrono::steady_clock::time_point{};
  }

private:
  friend class EventLoop;
  explicit TimerHandle(detail::CallbackCore* core) noexcept : Handle(core) {}
};

/// Options of `asyncio::run` (Python's keyword arguments).
struct RunOptions {
  /// Debug mode (Python's `debug=True`): steps slower than
  /// `slow_callback_duration` (100 ms) are reported with the task's name,
  /// and loop methods called from a foreign thread throw.
  bool debug = false;
};

/// Options of `create_task`.
struct TaskOptions {
  /// The task's name (Python's `name=`); empty gives "Task-<n>".
  std::string name;
};

namespace detail {
LoopCore& core(EventLoop& loop) noexcept;
EventLoop& loop_of(LoopCore& core) noexcept;
template <class F>
Handle post_to(const std::shared_ptr<Inbox>& inbox, LoopCore& loop, F&& fn);
}  // namespace detail

/// An event loop: Python's `asyncio` event loop, on Linux epoll.
///
/// Single-threaded, as Python's: one thread runs it (`run_forever`,
/// `run_until_complete`, or `asyncio::run`, which makes one), and the loop
/// runs that thread's tasks and callbacks one at a time. Any number of
/// threads may each run their own loop. Other threads talk to a loop only
/// through `call_soon_threadsafe` and `run_coroutine_threadsafe`.
///
/// Each pass of the loop: takes the callbacks other threads posted, waits
/// in epoll for file descriptors (not at all when something is ready to
/// run, and, when no file descriptor is watched, without a system call),
/// moves due timers to the ready queue, then runs what was ready when the
/// pass began, in FIFO order. Timers due at the same instant run in the
/// order they were scheduled. A timer never fires early (the epoll timeout
/// is rounded up to whole milliseconds).
///
/// The clock is `std::chrono::steady_clock`.
///
/// Not thread-safe except where a member says so.
class EventLoop : private detail::LoopCore {
public:
  using clock = std::chrono::steady_clock;

  /// A new loop, not running. Python's `asyncio.new_event_loop()`.
  /// Throws: `spindle::OSError` if epoll or eventfd cannot be created.
  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  /// Closes the loop (see `close()`). Must not be destroyed while it runs.
  ~EventLoop() {
    if (!closed_) close_down();
  }

  /// Runs until `stop()` is called: Python's `run_forever()`.
  /// Throws: `std::logic_error` if this or another loop already runs on
  /// this thread; `EventLoopClosed` if closed.
  void run_forever();

  /// Runs the loop until `aw` is done and returns its result (or rethrows
  /// its exception): Python's `run_until_complete`. `aw` is a
  /// `Coroutine<T>` (wrapped in a task) or a `Task<T>`. Defined in
  /// asyncio/task.hpp.
  /// Throws: what `aw` throws; `std::logic_error` as `run_forever`, or if
  /// the loop was stopped before `aw` finished.
  template <class A>
  auto run_until_complete(A&& aw);

  /// Stops the loop after the pass it is in: Python's `stop()`.
  void stop() noexcept { stopping_ = true; }
  /// True while `run_forever` runs. Python's `is_running()`.
  bool is_running() const noexcept { return running_; }
  /// True after `close()`. Python's `is_closed()`.
  bool is_closed() const noexcept { return closed_; }

  /// Closes the loop: Python's `close()`. Refuses every later
  /// `call_soon_threadsafe` (they throw `EventLoopClosed`) and runs the
  /// callbacks other threads had already posted, so each posted callback
  /// runs exactly once or its post throws. Then drops what is still
  /// scheduled, as Python does: pending callbacks and timers are
  /// discarded; a task still pending is reported ("Task was destroyed but
  /// it is pending!"), its coroutine frame destroyed (its destructors run)
  /// and the task marked cancelled. Closing twice does nothing.
  /// Throws: `std::logic_error` if the loop is running.
  void close();

  /// Schedules `fn()` for the next pass: Python's `call_soon`. Callbacks
  /// run in the order they were scheduled; an exception from one goes to
  /// the exception handler. Throws: `EventLoopClosed` if closed.
  template <class F>
  Handle call_soon(F&& fn) {
    check_open("call_soon");
    check_thread("call_soon");
    auto* cb = detail::make_callback(*this, std::forward<F>(fn));
    queue_ready(cb);
    return Handle(cb);
  }

  /// Schedules `fn()` from any thread: Python's `call_soon_threadsafe`.
  /// Wakes the loop if it sleeps. Thread-safe.
  /// Throws: `EventLoopClosed` if the loop is closed (the callback will
  /// never run); a callback accepted here always runs, at the latest when
  /// the loop closes.
  template <class F>
  Handle call_soon_threadsafe(F&& fn) {
    return post(inbox_, *this, std::forward<F>(fn));
  }

  /// Schedules `fn()` to run after `delay`: Python's `call_later`. A zero
  /// or negative delay means the next pass. Throws: `EventLoopClosed`.
  template <class Rep, class Period, class F>
  TimerHandle call_later(std::chrono::duration<Rep, Period> delay, F&& fn) {
    return call_at(clock::now() + std::chrono::ceil<clock::duration>(delay), std::forward<F>(fn));
  }

  /// Schedules `fn()` to run at `when` (this loop's clock): Python's
  /// `call_at`. Throws: `EventLoopClosed`.
  template <class F>
  TimerHandle call_at(clock::time_point when, F&& fn) {
    check_open("call_at");
    check_thread("call_at");
    auto* cb = detail::make_callback(*this, std::forward<F>(fn));
    cb->when = when;
    try {
      add_timer(cb);
    } catch (...) {
      cb->release();
      cb->release();
      throw;
    }
    return TimerHandle(cb);
  }

  /// The loop's current time: Python's `time()` (a time point here).
  clock::time_point time() const noexcept { return clock::now(); }

  /// Calls `fn()` each time `fd` is readable, until `remove_reader(fd)`:
  /// Python's `add_reader`. Replaces an earlier reader of `fd`.
  /// Throws: `spindle::OSError` if epoll refuses the fd (EPERM for a
  /// regular file, EBADF); `EventLoopClosed`.
  template <class F>
  void add_reader(int fd, F&& fn) {
    add_watch("add_reader", fd, true, std::forward<F>(fn));
  }
  /// Stops watching `fd` for reading; true if it was watched. Python's
  /// `remove_reader`.
  bool remove_reader(int fd) noexcept { return unwatch(fd, true); }
  /// As `add_reader`, for writability: Python's `add_writer`.
  template <class F>
  void add_writer(int fd, F&& fn) {
    add_watch("add_writer", fd, false, std::forward<F>(fn));
  }
  /// Stops watching `fd` for writing; true if it was watched.
  bool remove_writer(int fd) noexcept { return unwatch(fd, false); }

  /// Debug mode on or off: Python's `set_debug`. In debug mode a callback
  /// or task step slower than `slow_callback_duration()` is reported to the
  /// exception handler ("Executing <Task name='...'> took 0.250 seconds"),
  /// and loop methods called from a foreign thread throw `std::logic_error`.
  void set_debug(bool enabled) noexcept { debug_ = enabled; }
  bool get_debug() const noexcept { return debug_; }
  /// Python's `slow_callback_duration` (default 100 ms).
  clock::duration slow_callback_duration() const noexcept { return slow_callback_; }
  void set_slow_callback_duration(clock::duration d) noexcept { slow_callback_ = d; }

  /// Sets the function that receives the loop's reports (exceptions from
  /// callbacks, "Task exception was never retrieved", slow steps in debug
  /// mode): Python's `set_exception_handler`. An empty function restores
  /// the default, which prints the message and the exception to stderr.
  /// The handler must not throw (what it throws is printed and dropped).
  void set_exception_handler(ExceptionHandler handler) { handler_ = std::move(handler); }
  /// Passes `context` to the handler: Python's `call_exception_handler`.
  void call_exception_handler(const ExceptionContext& context) noexcept { report(context); }
  /// Prints `context` to stderr: Python's `default_exception_handler`.
  static void default_exception_handler(const ExceptionContext& context) noexcept {
    print_report(context);
  }

  /// Wraps `coro` in a task scheduled on this loop: Python's
  /// `loop.create_task`. Defined in asyncio/task.hpp.
  template <class T>
  Task<T> create_task(Coroutine<T> coro, TaskOptions options);
  /// `create_task(coro)` with a default name (see asyncio::create_task for
  /// why this is an overload).
  template <class T>
  Task<T> create_task(Coroutine<T> coro);

  /// Runs `fn(args...)` on `executor` (anything with a spindle-style
  /// `submit` returning `spindle::Future`) and returns an awaitable for its
  /// result: Python's `run_in_executor`. Defined in asyncio/threads.hpp.
  template <class Executor, class F, class... Args>
  auto run_in_executor(Executor& executor, F&& fn, Args&&... args);

private:
  friend detail::LoopCore& detail::core(EventLoop& loop) noexcept;
  friend EventLoop& detail::loop_of(detail::LoopCore& core) noexcept;
  template <class F>
  friend Handle detail::post_to(const std::shared_ptr<detail::Inbox>&, detail::LoopCore&, F&&);

  void queue_ready(detail::CallbackCore* cb) noexcept {
    cb->in_ready = true;
    schedule(cb);
  }

  template <class F>
  static Handle post(const std::shared_ptr<detail::Inbox>& inbox, detail::LoopCore& loop, F&& fn);

  template <class F>
  void add_watch(const char* what, int fd, bool reader, F&& fn) {
    check_open(what);
    check_thread(what);
    auto* cb = detail::make_callback(*this, std::forward<F>(fn));
    cb->release();  // no Handle: the watch holds the only reference
    cb->persistent = true;
    try {
      watch(fd, reader, cb);
    } catch (...) {
      cb->release();
      throw;
    }
  }
};

/// The loop running on this thread: Python's `asyncio.get_running_loop()`.
/// Throws: `std::logic_error` if no loop runs on this thread.
inline EventLoop& get_running_loop() {
  return detail::loop_of(detail::running_loop("get_running_loop"));
}

namespace detail {
inline LoopCore& core(EventLoop& loop) noexcept { return loop; }
inline EventLoop& loop_of(LoopCore& core) noexcept { return static_cast<EventLoop&>(core); }
// The inbox of `loop`, for posting to it from other threads later.
inline std::shared_ptr<Inbox> inbox_of(EventLoop& loop) { return core(loop).inbox_; }
template <class F>
Handle post_to(const std::shared_ptr<Inbox>& inbox, LoopCore& loop, F&& fn) {
  return EventLoop::post(inbox, loop, std::forward<F>(fn));
}
}  // namespace detail

inline void EventLoop::run_forever() {
  check_open("run_forever");
  if (running_) throw std::logic_error("spindle::asyncio::EventLoop::run_forever: the loop is already running");
  if (detail::running_loop_slot)
    throw std::logic_error(
        "spindle::asyncio::EventLoop::run_forever: another event loop is running on this thread");
  struct Running {
    EventLoop& loop;
    explicit Running(EventLoop& l) : loop(l) {
      loop.running_ = true;
      loop.owner_ = std::this_thread::get_id();
      detail::running_loop_slot = &loop;
    }
    ~Running() {
      loop.running_ = false;
      loop.stopping_ = false;
      detail::running_loop_slot = nullptr;
    }
  } running(*this);
  for (;;) {
    run_once();
    if (stopping_) break;
  }
}

inline void EventLoop::close() {
  if (running_) throw std::logic_error("spindle::asyncio::EventLoop::close: the loop is running");
  if (closed_) return;
  close_down();
}

template <class F>
Handle EventLoop::post(const std::shared_ptr<detail::Inbox>& inbox, detail::LoopCore& loop,
                       F&& fn) {
  auto* cb = detail::make_callback(loop, std::forward<F>(fn));
  detail::PostedCallback* item;
  try {
    item = new detail::PostedCallback(cb);
  } catch (...) {
    cb->release();
    cb->release();
    throw;
  }
  if (!inbox->post(item)) {
    delete item;
    cb->release();
    throw EventLoopClosed("spindle::asyncio::EventLoop::call_soon_threadsafe: the event loop is "
                          "closed; the callback will not run");
  }
  return Handle(cb);
}

}  // namespace spindle::asyncio
