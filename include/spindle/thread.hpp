// SPDX-License-Identifier: MIT
// spindle/thread.hpp - Thread and Timer (Python's threading.Thread, Timer, excepthook).
#pragma once

// Part of Python's `threading`, in a header of its own so that neither this
// one nor threading.hpp (the locks, which includes this) passes ~800 lines.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include <cxxabi.h>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include "detail/thread_impl.hpp"
#include "errors.hpp"
#include "event.hpp"

namespace spindle {

/// What `excepthook` receives about an exception that escaped a Thread's
/// function: Python's `threading.ExceptHookArgs`.
struct ExceptHookArgs {
  /// The exception (rethrow it to inspect it).
  std::exception_ptr exc_value;
  /// Its type, demangled (`std::runtime_error`, `spindle::TimeoutError`).
  std::string exc_type;
  /// `what()` of a `std::exception`, else empty.
  std::string message;
  /// The name of the thread it escaped from.
  std::string thread_name;
};

/// A function called with every exception that escapes a Thread.
using ExceptHook = std::function<void(const ExceptHookArgs&)>;

/// The default excepthook: writes `Exception in thread NAME:` and then
/// `TYPE: MESSAGE` to stderr in one write (Python prints the traceback).
inline void default_excepthook(const ExceptHookArgs& args) noexcept {
  try {
    std::string text = "Exception in thread " + args.thread_name + ":\n" + args.exc_type;
    if (!args.message.empty()) text += ": " + args.message;
    text += "\n";
    (void)std::fwrite(text.data(), 1, text.size(), stderr);
    (void)std::fflush(stderr);
  } catch (...) {  // out of memory: nothing more to say
  }
}

namespace detail {

struct ExceptHookSlot {
  std::mutex m;
  ExceptHook hook;  // guarded by m; empty means default_excepthook
};

inline ExceptHookSlot& excepthook_slot() noexcept {
  static ExceptHookSlot slot;
  return slot;
}

// The arguments for the exception being handled (call inside a catch).
inline ExceptHookArgs current_exception_args(std::string thread_name) {
  ExceptHookArgs args;
  args.exc_value = std::current_exception();
  args.thread_name = std::move(thread_name);
  const std::type_info* type = abi::__cxa_current_exception_type();
  args.exc_type = type ? demangle(type->name()) : "unknown exception";
  try {
    throw;
  } catch (const std::exception& e) {
    args.message = e.what();
  } catch (...) {
  }
  return args;
}

/// Called in a catch(...) block of a thread: hands the current exception to
/// the excepthook. Nothing escapes: a hook that throws is reported by the
/// default hook (as Python falls back to sys.excepthook).
inline void report_thread_exception(const std::string& thread_name) noexcept {
  try {
    const ExceptHookArgs args = current_exception_args(thread_name);
    ExceptHook hook;
    {
      auto& slot = excepthook_slot();
      std::lock_guard lock(slot.m);
      hook = slot.hook;
    }
    if (!hook) {
      default_excepthook(args);
      return;
    }
    try {
      hook(args);
    } catch (...) {
      default_excepthook(current_exception_args(thread_name + " (in excepthook)"));
    }
  } catch (...) {  // out of memory while reporting
  }
}

}  // namespace detail

/// Sets the function called with every exception that escapes a
/// `spindle::Thread` (or a Timer's function): Python's
/// `threading.excepthook = hook`. An empty function restores the default
/// (`default_excepthook`). Returns the previous hook (empty if it was the
/// default). Thread-safe; the hook runs on the thread the exception escaped.
inline ExceptHook set_excepthook(ExceptHook hook) {
  auto& slot = detail::excepthook_slot();
  std::lock_guard lock(slot.m);
  std::swap(slot.hook, hook);
  return hook;
}

/// Keyword arguments of `Thread`: `Thread(fn, arg, {.name = "worker"})`.
struct ThreadOptions {
  /// The thread's name; empty picks `Thread-N` (N counts from 1 per
  /// process, as Python's). The first 15 bytes also name the OS thread
  /// (`pthread_setname_np`; seen in `top -H`, gdb and /proc).
  std::string name;
};

namespace detail {

// True if the last of Args is a ThreadOptions (those calls go to the
// constructors that take options).
template <class... Args>
struct last_is_thread_options : std::false_type {};
template <class A>
struct last_is_thread_options<A> : std::is_same<std::remove_cvref_t<A>, ThreadOptions> {};
template <class A, class B, class... Rest>
struct last_is_thread_options<A, B, Rest...> : last_is_thread_options<B, Rest...> {};

// fn and args decay-copied into one call, as std::thread makes it.
template <class F, class... Args>
ThreadBody make_thread_body(F&& fn, Args&&... args) {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                "spindle::Thread/Timer: the function cannot be called with these arguments");
  return ThreadBody([f = std::decay_t<F>(std::forward<F>(fn)),
                     tup = std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)]() mutable {
    std::apply([&](auto&... a) { std::invoke(std::move(f), std::move(a)...); }, tup);
  });
}

}  // namespace detail

/// A thread of control: Python's `threading.Thread`.
///
/// Made with a function and its arguments (decay-copied, as `std::thread`
/// does) and started with `start()`. Unlike `std::thread`:
/// - an exception escaping the function does not call `std::terminate`: it
///   goes to the excepthook (`set_excepthook`; the default prints
///   `Exception in thread NAME:` and the message to stderr) and the thread
///   ends normally;
/// - `join(timeout)` waits a bounded time; `join` may be called from several
///   threads, and more than once;
/// - the destructor joins a started thread (Python's non-daemon threads keep
///   the program alive), instead of terminating the program.
///
/// Movable, not copyable; a moved-from Thread is empty. All members are
/// thread-safe except assignment. Everything the thread did happens-before
/// the return of a `join` that returns true.
///
/// ```
/// spindle::Thread t([](int n) { work(n); }, 42, {.name = "worker"});
/// t.start();
/// if (!t.join(5s)) std::cerr << t.name() << " is still running\n";
/// ```
class Thread {
public:
  /// An empty handle: `start()` on it is a `std::logic_error`.
  Thread() noexcept = default;

  /// A thread that will call `fn(args...)`; not started yet.
  template <class F, class... Args>
    requires(!std::is_same_v<std::remove_cvref_t<F>, Thread> &&
             !std::is_same_v<std::remove_cvref_t<F>, ThreadOptions> &&
             !detail::last_is_thread_options<Args...>::value)
  explicit Thread(F&& fn, Args&&... args)
      : Thread(ThreadOptions{}, detail::make_thread_body(std::forward<F>(fn), std::forward<Args>(args)...)) {}

  /// As above, with options: `Thread(fn, a, b, {.name = "worker"})` (up to
  /// four arguments before the options).
  template <class F>
  Thread(F&& fn, ThreadOptions options)
      : Thread(std::move(options), detail::make_thread_body(std::forward<F>(fn))) {}
  template <class F, class A1>
  Thread(F&& fn, A1&& a1, ThreadOptions options)
      : Thread(std::move(options), detail::make_thread_body(std::forward<F>(fn), std::forward<A1>(a1))) {}
  template <class F, class A1, class A2>
  Thread(F&& fn, A1&& a1, A2&& a2, ThreadOptions options)
      : Thread(std::move(options),
               detail::make_thread_body(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2))) {}
  template <class F, class A1, class A2, class A3>
  Thread(F&& fn, A1&& a1, A2&& a2, A3&& a3, ThreadOptions options)
      : Thread(std::move(options), detail::make_thread_body(std::forward<F>(fn), std::forward<A1>(a1),
                                             std::forward<A2>(a2), std::forward<A3>(a3))) {}
  template <class F, class A1, class A2, class A3, class A4>
  Thread(F&& fn, A1&& a1, A2&& a2, A3&& a3, A4&& a4, ThreadOptions options)
      : Thread(std::move(options),
               detail::make_thread_body(std::forward<F>(fn), std::forward<A1>(a1), std::forward<A2>(a2),
                         std::forward<A3>(a3), std::forward<A4>(a4))) {}

  Thread(Thread&&) noexcept = default;
  /// Joins the thread this handle had (if started), then takes `other`'s.
  Thread& operator=(Thread&& other) noexcept {
    if (this != &other) {
      finish();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Thread(const Thread&) = delete;
  Thread& operator=(const Thread&) = delete;

  /// Joins the thread if it was started (unless called on the thread itself,
  /// which then runs on, detached).
  ~Thread() { finish(); }

  /// Starts the thread; returns once it runs (so `native_id()` is set).
  /// Throws: `std::logic_error` if already started or empty (Python's
  /// RuntimeError); `spindle::OSError` if the system cannot make a thread.
  void start();

  /// Waits until the thread's function has returned (or thrown).
  /// Blocks: as long as the thread runs. Throws: `std::logic_error` if not
  /// started, or called from the thread itself.
  void join() {
    check_joinable("join");
    state_->finished.wait();
    reap();
  }

  /// As `join()`, giving up after `timeout`; true if the thread finished.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    check_joinable("join");
    if (!state_->finished.wait(timeout)) return false;
    reap();
    return true;
  }

  /// True from `start()` until the function returns or throws. Never blocks.
  bool is_alive() const noexcept {
    return state_ && state_->started.load(std::memory_order_acquire) &&
           !state_->finished.is_set();
  }

  /// The thread's name (empty for an empty handle).
  const std::string& name() const noexcept {
    static const std::string none;
    return state_ ? state_->name : none;
  }

  /// The kernel's id of the thread (`gettid()`), once started; empty before.
  std::optional<pid_t> native_id() const noexcept {
    if (!state_) return std::nullopt;
    const pid_t id = state_->native_id.load(std::memory_order_acquire);
    return id != 0 ? std::optional<pid_t>(id) : std::nullopt;
  }

private:
  Thread(ThreadOptions options, detail::ThreadBody body)
      : state_(std::make_shared<detail::ThreadState>()) {
    state_->name = options.name.empty() ? detail::next_thread_name() : std::move(options.name);
    state_->body = std::move(body);
  }

  bool on_own_thread() const noexcept {
    return state_->native_id.load(std::memory_order_acquire) == static_cast<pid_t>(::gettid());
  }

  void check_joinable(const char* what) const {
    if (!state_ || !state_->started.load(std::memory_order_acquire))
      throw std::logic_error(std::string("spindle::Thread::") + what +
                             ": the thread was not started");
    if (on_own_thread())
      throw std::logic_error(std::string("spindle::Thread::") + what +
                             ": a thread cannot join itself");
  }

  // After `finished`: reaps the std::thread once, whoever calls first.
  void reap() noexcept {
    std::lock_guard lock(state_->join_m);
    if (state_->thread.joinable()) state_->thread.join();
  }

  void finish() noexcept {
    if (!state_ || !state_->started.load(std::memory_order_acquire)) return;
    if (on_own_thread()) {
      std::lock_guard lock(state_->join_m);
      if (state_->thread.joinable()) state_->thread.detach();
      return;
    }
    state_->finished.wait();
    reap();
  }

  std::shared_ptr<detail::ThreadState> state_;
};

inline void Thread::start() {
  if (!state_) throw std::logic_error("spindle::Thread::start: empty Thread (no function)");
  if (state_->started.exchange(true, std::memory_order_acq_rel))
    throw std::logic_error("spindle::Thread::start: threads can only be started once (" +
                           state_->name + ")");
  try {
    std::lock_guard lock(state_->join_m);
    state_->thread = std::thread([st = state_]() noexcept {
      st->native_id.store(static_cast<pid_t>(::gettid()), std::memory_order_release);
      const std::string os_name = st->name.substr(0, 15);  // the kernel's limit (16 with NUL)
      pthread_setname_np(pthread_self(), os_name.c_str());
      st->running.set();
      try {
        st->body();
      } catch (...) {
        detail::report_thread_exception(st->name);
      }
      // Free what the body holds now, not when the handle goes (as Python
      // drops a Thread's target once it ran).
      st->body.reset();
      st->finished.set();
    });
  } catch (const std::system_error& e) {
    state_->started.store(false, std::memory_order_release);
    throw OSError("spindle::Thread::start: cannot start thread " + state_->name,
                  e.code().value());
  }
  state_->running.wait();
}

/// Calls a function once, after a delay, on its own thread, unless
/// cancelled first: Python's `threading.Timer`.
///
/// `cancel()` before the function starts guarantees it never runs (a
/// cancelled timer never calls `fn`, even if the delay has just passed);
/// once it runs, `cancel()` changes nothing. An exception from `fn` goes to
/// the excepthook, as from any Thread. The destructor cancels and joins.
/// Thread-safe.
///
/// ```
/// spindle::Timer t(2s, [] { std::puts("ding"); });
/// t.start();
/// ```
class Timer {
public:
  /// A timer that calls `fn(args...)` (decay-copied) `interval` after
  /// `start()`; a zero or negative interval calls it at once.
  template <class Rep, class Period, class F, class... Args>
  Timer(std::chrono::duration<Rep, Period> interval, F&& fn, Args&&... args)
      : state_(std::make_shared<State>(
            std::chrono::duration<double>(interval),
            detail::make_thread_body(std::forward<F>(fn), std::forward<Args>(args)...))),
        thread_([st = state_] { st->run(); }) {}
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  /// Cancels and joins (if started).
  ~Timer() { (void)cancel(); }

  /// Starts the countdown. Throws: as `Thread::start()`.
  void start() { thread_.start(); }

  /// Stops the timer if its function has not started: then it never runs.
  /// Returns true if the function will not run (this call or an earlier one
  /// stopped it), false if it already started (Python returns None).
  /// Never blocks. Thread-safe; may be called before `start()`.
  bool cancel() noexcept {
    int phase = waiting;
    const bool stopped =
        state_->phase.compare_exchange_strong(phase, cancelled, std::memory_order_acq_rel) ||
        phase == cancelled;
    state_->cancel_event.set();
    return stopped;
  }

  /// Waits for the timer's thread to end (after a cancel, at once).
  /// Throws: `std::logic_error` if not started.
  void join() { thread_.join(); }
  /// As `join()` with a timeout; true if the thread ended.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return thread_.join(timeout);
  }

  /// True while the timer waits or runs its function.
  bool is_alive() const noexcept { return thread_.is_alive(); }
  /// The name of the timer's thread (`Thread-N`).
  const std::string& name() const noexcept { return thread_.name(); }

private:
  static constexpr int waiting = 0;
  static constexpr int fired = 1;
  static constexpr int cancelled = 2;

  struct State {
    State(std::chrono::duration<double> i, detail::ThreadBody f)
        : interval(i), fn(std::move(f)) {}
    void run() {
      if (cancel_event.wait(interval)) return;
      // The CAS decides the race with cancel(): exactly one of them wins.
      int p = waiting;
      if (phase.compare_exchange_strong(p, fired, std::memory_order_acq_rel)) fn();
    }
    const std::chrono::duration<double> interval;
    detail::ThreadBody fn;
    std::atomic<int> phase{waiting};
    Event cancel_event;
  };

  std::shared_ptr<State> state_;
  Thread thread_;
};

}  // namespace spindle
