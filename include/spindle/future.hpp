// SPDX-License-Identifier: MIT
// spindle/future.hpp - Future, Promise, as_completed and wait (concurrent.futures).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/future_state.hpp"
#include "detail/multi_wait.hpp"
#include "detail/wait.hpp"
#include "errors.hpp"

namespace spindle {

template <class T>
class Future;
template <class T>
class Promise;

namespace detail {
// Lets the library build futures from states and reach a future's state.
struct FutureAccess {
  template <class T>
  static Future<T> adopt(ResultState<T>* state) noexcept {
    return Future<T>(state);
  }
  template <class T>
  static ResultState<T>* state(const Future<T>& f) noexcept {
    return f.state_;
  }
};

[[noreturn]] inline void throw_no_state(const char* what) {
  throw std::logic_error(std::string("spindle::Future::") + what +
                         ": the future has no shared state (default-constructed or moved-from)");
}
}  // namespace detail

/// The function that receives every exception a done-callback throws.
using CallbackExceptionHandler = std::function<void(std::exception_ptr)>;

/// Installs `handler` to receive exceptions thrown by done-callbacks
/// (`Future::add_done_callback`) and returns the previous one. An empty
/// handler restores the default, which prints the exception's `what()` to
/// stderr (Python logs "exception calling callback for <Future>").
///
/// The handler runs in the thread that ran the callback (often a worker);
/// whatever it throws is printed to stderr and dropped, so a callback can
/// never kill a worker or the program. Thread-safe.
inline CallbackExceptionHandler set_callback_exception_handler(CallbackExceptionHandler handler) {
  auto& slot = detail::callback_handler_slot();
  std::lock_guard lock(slot.m);
  std::swap(slot.handler, handler);
  return handler;
}

/// A handle to a result that will exist later: Python's
/// `concurrent.futures.Future`.
///
/// Copyable; copies share one state (like `std::shared_future`). Made by
/// `ThreadPoolExecutor::submit` or `Promise::get_future`. A default-
/// constructed future has no state: every member except `valid()`, copy,
/// move and destruction throws `std::logic_error` on it.
///
/// States: pending -> running -> finished, or pending -> cancelled. A
/// future is done once finished or cancelled.
///
/// Memory ordering: everything the task did happens-before the return of
/// any call that observes the future done (`result`, `done`, `wait`, ...).
/// Thread-safe (all members, on one handle or on copies).
///
/// ```
/// spindle::ThreadPoolExecutor pool(4);
/// spindle::Future<int> f = pool.submit([] { return 6 * 7; });
/// int answer = f.result();   // 42
/// ```
template <class T>
class Future {
public:
  static_assert(!std::is_reference_v<T>, "Future<T&> is not supported; use a pointer");
  using value_type = T;

  /// A future with no shared state (`valid()` is false).
  Future() noexcept = default;
  Future(const Future& other) noexcept : state_(other.state_) {
    if (state_) state_->add_ref();
  }
  Future(Future&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Future& operator=(Future other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~Future() {
    if (state_) state_->release();
  }

  /// True if the future has a shared state. Never blocks.
  bool valid() const noexcept { return state_ != nullptr; }

  /// True if finished or cancelled: Python's `done()`. Never blocks.
  /// Throws: `std::logic_error` without a state. Thread-safe.
  bool done() const { return checked("done")->done(); }

  /// True while the work runs: Python's `running()`. Never blocks.
  /// Throws: `std::logic_error` without a state. Thread-safe.
  bool running() const { return checked("running")->status() == detail::st_running; }

  /// True if cancelled: Python's `cancelled()`. Never blocks.
  /// Throws: `std::logic_error` without a state. Thread-safe.
  bool cancelled() const { return checked("cancelled")->status() == detail::st_cancelled; }

  /// Cancels the work if it has not started: Python's `cancel()`. Returns
  /// true if the future is (now or already) cancelled, false if it runs or
  /// finished. Cancelled work never runs; waiters and callbacks are woken.
  /// Never blocks (runs the done-callbacks if it cancels).
  /// Throws: `std::logic_error` without a state. Thread-safe.
  bool cancel() { return checked("cancel")->cancel(); }

  /// The result, waiting as long as it takes: Python's `result()`. On a
  /// named future (an lvalue) returns a reference into the shared state
  /// (void for `Future<void>`), valid as long as some copy of the future
  /// lives.
  /// Blocks: until done. On a `ThreadPoolExecutor` worker, a task of the
  /// same pool that no worker has started runs right here (see "Waiting
  /// inside the pool" in executor.hpp).
  /// Throws: the task's own exception, unchanged; `CancelledError` if
  /// cancelled; `RecursionError` if such runs nest 1000 deep or the stack
  /// runs short; `std::logic_error` without a state or after
  /// `take_result()`. Thread-safe.
  decltype(auto) result() const& {
    auto* s = checked("result");
    s->wait_until(std::nullopt);
    return get(s);
  }

  /// `result()` on a temporary (`pool.submit(f).result()`): returns the
  /// value itself, `T` by value, so nothing dangles once the temporary is
  /// gone. The value is moved out if this handle is the only one left (no
  /// copy can see it), copied if other copies share the state; a move-only
  /// `T` is always moved out, as by `take_result()`, so other copies then
  /// throw `std::logic_error` from `result()`. Blocks and throws as
  /// `result()`.
  auto result() && {
    auto* s = checked("result");
    s->wait_until(std::nullopt);
    return take_or_copy(s);
  }

  /// As `result()`, waiting at most `timeout`: Python's `result(timeout)`.
  /// A zero or negative timeout only checks. Blocks: at most about `timeout`.
  /// Throws: `TimeoutError` if not done in time, and as `result()`.
  template <class Rep, class Period>
  decltype(auto) result(std::chrono::duration<Rep, Period> timeout) const& {
    return get(wait_for_result(timeout));
  }

  /// As `result() &&`, waiting at most `timeout`.
  template <class Rep, class Period>
  auto result(std::chrono::duration<Rep, Period> timeout) && {
    return take_or_copy(wait_for_result(timeout));
  }

  /// Moves the value out of the shared state and returns it: how a
  /// move-only result (a `std::unique_ptr`) leaves a future. No Python
  /// counterpart (Python shares objects). Afterwards `result()` and
  /// `take_result()` on this future and on every copy throw
  /// `std::logic_error`; `done()`, `exception()` and the rest still work.
  /// Blocks: until done, as `result()`.
  /// Throws: as `result()`; `std::logic_error` if already taken (exactly one
  /// caller wins). Thread-safe against other takers, but a `result()`
  /// reference obtained earlier on a copy then refers to a moved-from value.
  T take_result() requires(!std::is_void_v<T>)
  {
    auto* s = checked("take_result");
    s->wait_until(std::nullopt);
    return take(s);
  }

  /// The task's exception, or a null pointer if it succeeded: Python's
  /// `exception()`. Blocks: until done.
  /// Throws: `CancelledError` if cancelled; `std::logic_error` without a state.
  std::exception_ptr exception() const {
    auto* s = checked("exception");
    s->wait_until(std::nullopt);
    return get_exception(s);
  }

  /// As `exception()`, waiting at most `timeout` (negative acts as zero).
  /// Blocks: at most about `timeout`.
  /// Throws: `TimeoutError` if not done in time, and as `exception()`.
  template <class Rep, class Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const {
    auto* s = checked("exception");
    if (!s->done() && !s->wait_until(detail::deadline_after(timeout)))
      throw TimeoutError("Future::exception: not done after " +
                         detail::seconds_text(seconds(timeout)) + " s");
    return get_exception(s);
  }

  /// Blocks until done, without returning or throwing the result.
  /// Blocks: until done. Throws: `std::logic_error` without a state.
  void wait() const { checked("wait")->wait_until(std::nullopt); }

  /// Blocks until done or `timeout` passes; true if done.
  /// Blocks: at most about `timeout`. Throws: `std::logic_error` without a state.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    auto* s = checked("wait");
    return s->done() || s->wait_until(detail::deadline_after(timeout));
  }

  /// Calls `fn(future)` once the future is done (finished or cancelled):
  /// Python's `add_done_callback`. Runs at once in the calling thread if the
  /// future is already done, else in the thread that completes it (a worker,
  /// or whoever calls `cancel`/`set_result`). Callbacks run in the order they
  /// were added. `fn` takes `const Future<T>&` (or `Future<T>`).
  ///
  /// An exception thrown by `fn` is passed to the handler installed with
  /// `set_callback_exception_handler` (default: printed to stderr); it never
  /// reaches the worker or terminates the program.
  /// Throws: `std::logic_error` without a state; `std::bad_alloc`.
  /// Thread-safe.
  template <class F>
    requires std::invocable<F&, const Future<T>&>
  void add_done_callback(F&& fn) {
    auto* s = checked("add_done_callback");
    s->add_callback(new CallbackNode<std::decay_t<F>>(std::forward<F>(fn)));
  }

  /// True if both handles share one state (or both have none).
  friend bool operator==(const Future& a, const Future& b) noexcept {
    return a.state_ == b.state_;
  }

private:
  friend struct detail::FutureAccess;
  friend class Promise<T>;

  explicit Future(detail::ResultState<T>* state) noexcept : state_(state) {}

  template <class Rep, class Period>
  static double seconds(std::chrono::duration<Rep, Period> d) noexcept {
    return std::chrono::duration<double>(d).count();
  }

  template <class F>
  struct CallbackNode final : detail::CallbackNode {
    template <class G>
    explicit CallbackNode(G&& g) : fn(std::forward<G>(g)) {}
    void invoke(detail::StateBase& state) noexcept override {
      try {
        state.add_ref();
        const Future<T> self(static_cast<detail::ResultState<T>*>(&state));
        fn(self);
      } catch (...) {
        detail::report_callback_exception(std::current_exception());
      }
    }
    F fn;
  };

  detail::ResultState<T>* checked(const char* what) const {
    if (!state_) detail::throw_no_state(what);
    return state_;
  }

  template <class Rep, class Period>
  detail::ResultState<T>* wait_for_result(std::chrono::duration<Rep, Period> timeout) const {
    auto* s = checked("result");
    if (!s->done() && !s->wait_until(detail::deadline_after(timeout)))
      throw TimeoutError("Future::result: not done after " + detail::seconds_text(seconds(timeout)) +
                         " s");
    return s;
  }

  static void check_outcome(detail::ResultState<T>* s) {
    if (s->status() == detail::st_cancelled) throw CancelledError();
    if (s->error_) std::rethrow_exception(s->error_);
    if constexpr (!std::is_void_v<T>) {
      if (s->taken_.load(std::memory_order_acquire))
        throw std::logic_error(
            "spindle::Future::result: the value was moved out by take_result() (or by result() "
            "on a temporary future of a move-only type)");
    }
  }

  static decltype(auto) get(detail::ResultState<T>* s) {
    check_outcome(s);
    if constexpr (std::is_void_v<T>) {
      return;
    } else {
      return static_cast<const T&>(*s->value_);
    }
  }

  static T take(detail::ResultState<T>* s) {
    if (s->status() == detail::st_cancelled) throw CancelledError();
    if (s->error_) std::rethrow_exception(s->error_);
    if (s->taken_.exchange(true, std::memory_order_acq_rel))
      throw std::logic_error("spindle::Future::take_result: the value was already moved out");
    return std::move(*s->value_);
  }

  // result() on a temporary: see its comment.
  T take_or_copy(detail::ResultState<T>* s) const {
    if constexpr (std::is_void_v<T>) {
      check_outcome(s);
    } else if constexpr (!std::is_copy_constructible_v<T>) {
      return take(s);
    } else {
      check_outcome(s);
      // refs() == 1 read by this holder: no other handle exists or can
      // appear, so nobody can observe the move.
      if (s->refs() == 1) return std::move(*s->value_);
      return *s->value_;
    }
  }

  static std::exception_ptr get_exception(detail::ResultState<T>* s) {
    if (s->status() == detail::st_cancelled) throw CancelledError();
    return s->error_;
  }

  detail::ResultState<T>* state_ = nullptr;
};

/// The producer side of a Future, for work not run by an executor (an
/// event loop, a callback API, a thread you manage): what Python code does
/// with a bare `Future()` plus `set_result`/`set_exception`.
///
/// Move-only. A Promise destroyed before it set anything completes its
/// future with a `spindle::Error` ("broken promise"), so waiters never hang.
/// Thread-safe.
///
/// ```
/// spindle::Promise<std::string> p;
/// auto f = p.get_future();
/// std::thread t([p = std::move(p)]() mutable { p.set_result("done"); });
/// f.result();  // "done"
/// ```
template <class T>
class Promise {
public:
  /// A promise with a fresh pending state. Throws: `std::bad_alloc`.
  Promise() : state_(new detail::ResultState<T>(1)) {}
  Promise(Promise&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      abandon();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  ~Promise() { abandon(); }

  /// A future sharing this promise's state (may be called many times).
  /// Throws: `std::logic_error` on a moved-from promise.
  Future<T> get_future() const {
    checked();
    state_->add_ref();
    return Future<T>(state_);
  }

  /// Stores the value and completes the future: Python's `set_result`.
  /// Returns false (dropping the value) if the future was cancelled first.
  /// Throws: `std::logic_error` if a result or exception was already set, or
  /// on a moved-from promise. Thread-safe. Runs the done-callbacks.
  template <class... Args>
  bool set_result(Args&&... args) {
    checked();
    claim();
    if constexpr (std::is_void_v<T>) {
      static_assert(sizeof...(Args) == 0, "Promise<void>::set_result takes no value");
    } else {
      try {
        state_->value_.emplace(std::forward<Args>(args)...);
      } catch (...) {
        state_->error_ = std::current_exception();
      }
    }
    return state_->try_finish();
  }

  /// Marks the future running, or reports that it was cancelled: Python's
  /// `Future.set_running_or_notify_cancel()`. Call it before starting the
  /// work: true means the future is now running (`cancel()` returns false
  /// from then on), false means it was cancelled first (the work should not
  /// run; waiters and callbacks were already woken by the cancel).
  /// It lives on Promise, not on Future, because only the producer may
  /// change the state (Python has one object for both roles).
  /// Throws: `std::logic_error` if already running or done (a result or
  /// exception was set), or on a moved-from promise. Never blocks.
  /// Thread-safe.
  bool set_running_or_notify_cancel() {
    checked();
    return state_->set_running_or_notify_cancel();
  }

  /// Stores an exception for `result()` to rethrow: Python's
  /// `set_exception`. Returns false if the future was cancelled first.
  /// Throws: `std::invalid_argument` for a null pointer; `std::logic_error`
  /// if a result or exception was already set. Thread-safe.
  bool set_exception(std::exception_ptr error) {
    checked();
    if (!error) throw std::invalid_argument("Promise::set_exception: null exception_ptr");
    claim();
    state_->error_ = std::move(error);
    return state_->try_finish();
  }

private:
  void checked() const {
    if (!state_) throw std::logic_error("spindle::Promise: moved-from promise");
  }
  void claim() {
    if (!state_->claim())
      throw std::logic_error("spindle::Promise: a result or exception was already set");
  }
  void abandon() noexcept {
    if (!state_) return;
    if (state_->claim()) {
      try {
        state_->error_ = std::make_exception_ptr(
            Error("broken promise: the Promise was destroyed without setting a result"));
      } catch (...) {
        state_->error_ = std::current_exception();
      }
      state_->try_finish();
    }
    state_->release();
    state_ = nullptr;
  }

  detail::ResultState<T>* state_;
};

namespace detail {
template <class R>
concept FutureRange =
    std::ranges::random_access_range<R> && std::ranges::sized_range<R> &&
    requires(std::ranges::range_reference_t<R> f) { FutureAccess::state(f); };

template <class R>
using future_value_t = typename std::remove_cvref_t<std::ranges::range_reference_t<R>>::value_type;

/// Any other range of futures (a std::list, a filtered view, ...): copied
/// into a vector first, since the waits index their futures.
template <class R>
concept OtherFutureRange =
    std::ranges::input_range<R> && !FutureRange<R> &&
    requires(std::ranges::range_reference_t<R> f) { FutureAccess::state(f); };

template <class R>
auto to_future_vector(R&& futures) {
  using F = std::remove_cvref_t<std::ranges::range_reference_t<R>>;
  std::vector<F> out;
  for (auto&& f : futures) out.push_back(f);
  return out;
}

// What as_completed keeps of its argument: a pointer to an lvalue range,
// the moved-in range for an rvalue. (Not std::views::all: clang 14 cannot
// compile libstdc++ 12's ref_view.)
template <class R>
class RangeHolder {
public:
  explicit RangeHolder(R&& r) : r_(std::move(r)) {}
  R& get() noexcept { return r_; }

private:
  R r_;
};

template <class R>
class RangeHolder<R&> {
public:
  explicit RangeHolder(R& r) noexcept : r_(&r) {}
  R& get() noexcept { return *r_; }

private:
  R* r_;
};
}  // namespace detail

/// The range `as_completed` returns (`R` is the argument's type, a
/// reference for lvalues): yields each future of the underlying
/// range once, in the order they complete. Single pass; move-only.
///
/// Futures already done when the iteration reaches them come first (in
/// range order), then the rest as they complete; each is yielded as a
/// reference into the range (which an lvalue argument must outlive).
/// Cost: O(n) overall — one waiter per pending future, no polling.
///
/// Each element is yielded once, so a future listed twice is yielded twice.
/// (Python's as_completed makes a set of its argument first; here that
/// would cost a hash of every future on every call, for a mistake rarely
/// made. Deduplicate the range first if it may hold repeats.)
template <class R>
class AsCompleted {
  using Range = std::remove_reference_t<R>;
  using Base = std::ranges::iterator_t<Range&>;

public:
  using future_type = std::remove_reference_t<std::ranges::range_reference_t<Range&>>;

  AsCompleted(R&& futures, std::optional<detail::Clock::time_point> deadline)
      : futures_(std::forward<R>(futures)), n_(std::ranges::size(futures_.get())),
        deadline_(deadline) {}
  AsCompleted(AsCompleted&&) noexcept = default;
  AsCompleted& operator=(AsCompleted&&) noexcept = default;

  struct sentinel {};

  /// Input iterator over the completed futures.
  class iterator {
  public:
    using iterator_concept = std::input_iterator_tag;
    using value_type = std::remove_cv_t<future_type>;
    using difference_type = std::ptrdiff_t;

    iterator() = default;
    /// The current future (done).
    future_type& operator*() const noexcept { return *cur_; }
    future_type* operator->() const noexcept { return cur_; }
    /// Advances to the next future to complete.
    /// Blocks: until one completes. Throws: `TimeoutError` past the deadline.
    iterator& operator++() {
      // The leading run of done futures is walked here, in the iterator
      // (registers), checking each future just before the caller reads it:
      // as cheap as a plain loop over result().
      if (lead_) {
        if (++pos_ < end_) {
          future_type& f = base_[static_cast<std::ptrdiff_t>(pos_)];
          auto* s = detail::FutureAccess::state(f);
          if (s != nullptr && s->done()) {
            cur_ = &f;
            return *this;
          }
        }
        lead_ = false;
        owner_->end_lead(pos_);
      }
      cur_ = owner_->advance_slow();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, sentinel) noexcept { return it.cur_ == nullptr; }

  private:
    friend class AsCompleted;
    iterator(AsCompleted* owner, Base base, std::size_t end, future_type* cur, bool lead) noexcept
        : owner_(owner), base_(base), end_(end), cur_(cur), lead_(lead) {}
    AsCompleted* owner_ = nullptr;
    Base base_{};
    std::size_t pos_ = 0;
    std::size_t end_ = 0;
    future_type* cur_ = nullptr;
    bool lead_ = false;  // still in the leading run of done futures
  };

  /// Starts the iteration and waits for the first future.
  /// Blocks: until one is done. Throws: `TimeoutError` past the deadline.
  iterator begin() {
    Base base = std::ranges::begin(futures_.get());
    if (n_ > 0) {
      auto* s = detail::FutureAccess::state(base[0]);
      if (s != nullptr && s->done()) return iterator(this, base, n_, &base[0], true);
    }
    return iterator(this, base, n_, advance_slow(), false);
  }
  sentinel end() const noexcept { return {}; }

private:
  // The iterator's leading run of done futures ended before index `pos`.
  void end_lead(std::size_t pos) noexcept {
    scan_ = pos;
    yielded_ = pos;
  }

  future_type& at(std::size_t i) {
    return std::ranges::begin(futures_.get())[static_cast<std::ptrdiff_t>(i)];
  }

  // The next future to yield after the leading run, or null at the end.
  future_type* advance_slow() {
    // Phase 1: walk the rest of the range; done futures are yielded at
    // once, pending ones get a waiter.
    while (scan_ < n_) {
      const std::size_t i = scan_++;
      future_type& f = at(i);
      auto* s = detail::FutureAccess::state(f);
      if (!s) detail::throw_no_state("as_completed");
      if (s->done()) {
        ++yielded_;
        return &f;
      }
      if (!waiter_) waiter_ = std::make_unique<detail::MultiWait>(n_ - i, deadline_);
      if (!waiter_->watch(*s, static_cast<std::uint32_t>(i))) {
        ++yielded_;
        return &f;
      }
    }
    // Phase 2: the pending ones, in completion order.
    if (yielded_ == n_) return nullptr;
    auto index = waiter_->pop(deadline_);
    if (!index)
      throw TimeoutError(std::to_string(n_ - yielded_) + " (of " + std::to_string(n_) +
                         ") futures unfinished");
    ++yielded_;
    return &at(*index);
  }

  detail::RangeHolder<R> futures_;
  std::size_t n_;
  std::optional<detail::Clock::time_point> deadline_;
  std::size_t scan_ = 0;     // next index phase 1 looks at
  std::size_t yielded_ = 0;  // futures handed out (or counted by begin())
  std::unique_ptr<detail::MultiWait> waiter_;
};

/// Yields the futures of `futures` as they complete: Python's
/// `concurrent.futures.as_completed(fs)`. An lvalue range is referenced
/// (it must outlive the iteration); an rvalue one is moved in.
///
/// ```
/// for (auto& f : spindle::as_completed(futures)) use(f.result());
/// ```
/// Blocks: in `begin()` and `++`, until the next future completes.
/// Throws: `std::logic_error` (from the iteration) on a future without state.
template <class R>
  requires detail::FutureRange<R>
AsCompleted<R> as_completed(R&& futures) {
  return AsCompleted<R>(std::forward<R>(futures), std::nullopt);
}

/// As `as_completed(futures)`, but the iteration throws `TimeoutError` once
/// `timeout` (counted from this call, as in Python) has passed with futures
/// still pending. A zero or negative timeout yields only finished futures.
template <class R, class Rep, class Period>
  requires detail::FutureRange<R>
AsCompleted<R> as_completed(R&& futures, std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<R>(std::forward<R>(futures), detail::deadline_after(timeout));
}

/// `as_completed` over a braced list (`as_completed({f, g})`) or any other
/// range of futures, such as a std::list: the futures are copied (copies
/// share their state) and the copies are yielded.
template <class T>
AsCompleted<std::vector<Future<T>>> as_completed(std::initializer_list<Future<T>> futures) {
  return as_completed(std::vector<Future<T>>(futures));
}
template <class T, class Rep, class Period>
AsCompleted<std::vector<Future<T>>> as_completed(std::initializer_list<Future<T>> futures,
                                                 std::chrono::duration<Rep, Period> timeout) {
  return as_completed(std::vector<Future<T>>(futures), timeout);
}
template <class R>
  requires detail::OtherFutureRange<R>
auto as_completed(R&& futures) {
  return as_completed(detail::to_future_vector(std::forward<R>(futures)));
}
template <class R, class Rep, class Period>
  requires detail::OtherFutureRange<R>
auto as_completed(R&& futures, std::chrono::duration<Rep, Period> timeout) {
  return as_completed(detail::to_future_vector(std::forward<R>(futures)), timeout);
}

/// When `wait` returns: Python's FIRST_COMPLETED, FIRST_EXCEPTION and
/// ALL_COMPLETED.
enum class ReturnWhen {
  first_completed,  ///< as soon as any future is done
  first_exception,  ///< as soon as any future fails, else when all are done
  all_completed,    ///< when every future is done
};

/// What `wait` returns: copies of the futures split by state at return time
/// (Python's `DoneAndNotDoneFutures`), each in input order.
template <class T>
struct WaitResult {
  std::vector<Future<T>> done;
  std::vector<Future<T>> not_done;
};

namespace detail {
template <class R>
auto wait_impl(R&& futures, ReturnWhen when, std::optional<Clock::time_point> deadline) {
  using T = future_value_t<R>;
  const std::size_t n = std::ranges::size(futures);
  auto it = std::ranges::begin(futures);
  auto failed = [](StateBase& s) { return s.status() == st_finished && s.error_ != nullptr; };
  auto satisfied = [&](std::size_t done, bool any_failed) {
    switch (when) {
      case ReturnWhen::first_completed: return done > 0 || n == 0;
      case ReturnWhen::first_exception: return any_failed || done == n;
      case ReturnWhen::all_completed: break;
    }
    return done == n;
  };
  std::size_t done = 0;
  bool any_failed = false;
  std::optional<MultiWait> waiter;
  for (std::size_t i = 0; i < n; ++i) {
    auto* s = FutureAccess::state(it[static_cast<std::ptrdiff_t>(i)]);
    if (!s) throw_no_state("wait");
    if (s->done()) {
      ++done;
      any_failed = any_failed || failed(*s);
      continue;
    }
    if (!waiter) waiter.emplace(n - i, deadline);
    if (!waiter->watch(*s, static_cast<std::uint32_t>(i))) {
      ++done;
      any_failed = any_failed || failed(*s);
    }
  }
  while (!satisfied(done, any_failed)) {
    auto index = waiter->pop(deadline);
    if (!index) break;
    ++done;
    auto* s = FutureAccess::state(it[static_cast<std::ptrdiff_t>(*index)]);
    any_failed = any_failed || failed(*s);
  }
  waiter.reset();
  WaitResult<T> out;
  out.done.reserve(done);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& f = it[static_cast<std::ptrdiff_t>(i)];
    (f.done() ? out.done : out.not_done).push_back(f);
  }
  return out;
}
}  // namespace detail

/// Waits until the futures satisfy `when`: Python's
/// `concurrent.futures.wait(fs, return_when=...)`. Returns `{done, not_done}`.
/// Blocks: until `when` holds. Throws: `std::logic_error` on a future
/// without state; `std::bad_alloc`.
template <class R>
  requires detail::FutureRange<R>
WaitResult<detail::future_value_t<R>> wait(R&& futures,
                                           ReturnWhen when = ReturnWhen::all_completed) {
  return detail::wait_impl(futures, when, std::nullopt);
}

/// As `wait(futures, when)`, returning after at most `timeout` (negative
/// acts as zero) with whatever is done by then; as in Python, running out
/// of time is not an error. Blocks: at most about `timeout`.
template <class R, class Rep, class Period>
  requires detail::FutureRange<R>
WaitResult<detail::future_value_t<R>> wait(R&& futures, ReturnWhen when,
                                           std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_impl(futures, when, detail::deadline_after(timeout));
}

/// `wait(futures, ReturnWhen::all_completed, timeout)`: Python's
/// `wait(fs, timeout=...)`, whose return_when defaults to ALL_COMPLETED.
template <class R, class Rep, class Period>
  requires detail::FutureRange<R>
WaitResult<detail::future_value_t<R>> wait(R&& futures,
                                           std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_impl(futures, ReturnWhen::all_completed, detail::deadline_after(timeout));
}

/// `wait` over a braced list (`wait({f, g})`) or any other range of
/// futures, such as a std::list, with the same arguments as above.
template <class T, class... Args>
WaitResult<T> wait(std::initializer_list<Future<T>> futures, Args... args) {
  return wait(std::vector<Future<T>>(futures), args...);
}
template <class R, class... Args>
  requires detail::OtherFutureRange<R>
auto wait(R&& futures, Args... args) {
  return wait(detail::to_future_vector(std::forward<R>(futures)), args...);
}

}  // namespace spindle
