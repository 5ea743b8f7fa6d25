// SPDX-License-Identifier: MIT
// spindle/asyncio/coroutine.hpp - Coroutine<T>, the lazy coroutine object, and CancelledError.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "../errors.hpp"

namespace spindle::asyncio {

/// The exception `Task::cancel()` throws into a task at the `co_await` where
/// it is suspended: Python's `asyncio.CancelledError`.
///
/// Deliberately **not** a `spindle::Error` (Python 3.8 made it a
/// `BaseException`): `catch (const spindle::Error&)` does not swallow a
/// cancellation. Catch it to clean up, then rethrow (`throw;`); a task that
/// catches it and returns normally is not cancelled.
class CancelledError : public std::exception {
public:
  /// `message` is the `msg` given to `cancel(msg)` (empty by default).
  explicit CancelledError(std::string message = {}) : message_(std::move(message)) {}
  /// The message given to `cancel()`, or "cancelled" when there was none.
  const char* what() const noexcept override {
    return message_.empty() ? "cancelled" : message_.c_str();
  }
  /// The message given to `cancel()` (Python's `args[0]`), possibly empty.
  const std::string& message() const noexcept { return message_; }

private:
  std::string message_;
};

/// An operation found a task in the wrong state, e.g. `result()` of a task
/// that is not done: Python's `asyncio.InvalidStateError`.
class InvalidStateError : public Error {
public:
  using Error::Error;
};

/// A callback or coroutine was handed to a loop that is closed (or closing):
/// Python's `RuntimeError('Event loop is closed')`.
class EventLoopClosed : public Error {
public:
  EventLoopClosed() : Error("the event loop is closed") {}
  using Error::Error;
};

template <class T = void>
class Coroutine;

namespace detail {

// How one coroutine hands control to another.
//
// With symmetric transfer `await_suspend` returns the next handle and the
// compiler tail-calls it, so a million nested `co_await`s use no stack.
// Clang guarantees that tail call at every optimization level; g++ 12 does
// not (at -O0, -O1 and under ASan it emits a real call, and a deep chain
// overflows the stack). On g++ the transfer therefore goes through a
// trampoline instead: `await_suspend` stores the next handle in a
// thread-local slot and returns, and `drive()` (the task step, the only
// place that resumes a spindle coroutine) resumes whatever is stored.
// Both keep the stack flat; the trampoline costs a few nanoseconds more.
#if defined(__clang__)
inline constexpr bool symmetric_transfer = true;
using Transfer = std::coroutine_handle<>;
inline Transfer transfer_to(std::coroutine_handle<> next) noexcept { return next; }
inline Transfer transfer_to_resumer() noexcept { return std::noop_coroutine(); }
inline void drive(std::coroutine_handle<> h) { h.resume(); }
#else
inline constexpr bool symmetric_transfer = false;
using Transfer = void;
inline thread_local std::coroutine_handle<> trampoline_next{};
inline Transfer transfer_to(std::coroutine_handle<> next) noexcept { trampoline_next = next; }
inline Transfer transfer_to_resumer() noexcept {}
inline void drive(std::coroutine_handle<> h) {
  for (;;) {
    h.resume();
    if (!trampoline_next) return;
    h = std::exchange(trampoline_next, std::coroutine_handle<>{});
  }
}
#endif

// Coroutine frames come from a small per-thread cache of freed frames
// (size classes of 64 bytes up to 1 KiB, at most 256 frames each), so a
// loop of short coroutines does not pay malloc and free each time. Frames
// freed on another thread go to that thread's cache. Under AddressSanitizer
// the cache is off, so use-after-free of a frame is still caught.
#if defined(__SANITIZE_ADDRESS__)
#define SPINDLE_DETAIL_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPINDLE_DETAIL_FRAME_CACHE 0
#endif
#endif
#ifndef SPINDLE_DETAIL_FRAME_CACHE
#define SPINDLE_DETAIL_FRAME_CACHE 1
#endif

class FrameCache {
public:
  static constexpr std::size_t granule = 64;
  static constexpr std::size_t classes = 16;  // up to 1 KiB
  static constexpr std::size_t per_class = 256;

  static void* allocate(std::size_t size) {
#if SPINDLE_DETAIL_FRAME_CACHE
    const std::size_t c = (size - 1) / granule;
    if (c < classes) {
      FrameCache& cache = local();
      if (Block* b = cache.free_[c]) {
        cache.free_[c] = b->next;
        --cache.count_[c];
        return b;
      }
      return ::operator new((c + 1) * granule);
    }
#endif
    return ::operator new(size);
  }

  static void deallocate(void* p, std::size_t size) noexcept {
#if SPINDLE_DETAIL_FRAME_CACHE
    const std::size_t c = (size - 1) / granule;
    if (c < classes) {
      FrameCache& cache = local();
      if (cache.count_[c] < per_class) {
        auto* b = static_cast<Block*>(p);
        b->next = cache.free_[c];
        cache.free_[c] = b;
        ++cache.count_[c];
        return;
      }
      ::operator delete(p);
      return;
    }
#endif
    (void)size;
    ::operator delete(p);
  }

  ~FrameCache() {
    for (std::size_t c = 0; c < classes; ++c)
      while (Block* b = free_[c]) {
        free_[c] = b->next;
        ::operator delete(b);
      }
  }

private:
  struct Block {
    Block* next;
  };
  static FrameCache& local() noexcept {
    thread_local FrameCache cache;
    return cache;
  }
  Block* free_[classes] = {};
  std::size_t count_[classes] = {};
};

// What every spindle coroutine's promise has: the continuation (the
// coroutine awaiting this one, or none for a task's root) and the error.
struct PromiseBase {
  std::coroutine_handle<> continuation{};
  std::exception_ptr error;
  bool started = false;  // awaited or handed to a task

  static void* operator new(std::size_t size) { return FrameCache::allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept {
    FrameCache::deallocate(p, size);
  }

  std::suspend_always initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    Transfer await_suspend(std::coroutine_handle<P> self) const noexcept {
      std::coroutine_handle<> next = self.promise().continuation;
      if (next) return transfer_to(next);
      return transfer_to_resumer();
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct Promise : PromiseBase {
  std::optional<T> value;

  Coroutine<T> get_return_object() noexcept;
  template <class U = T>
    requires std::is_constructible_v<T, U&&>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  // Rethrows the coroutine's exception or moves its value out.
  T take() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct Promise<void> : PromiseBase {
  Coroutine<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void take() const {
    if (error) std::rethrow_exception(error);
  }
};

struct CoroutineAccess;

[[noreturn]] inline void throw_awaited_twice() {
  throw std::logic_error(
      "spindle::asyncio::Coroutine: awaited twice (or awaited after being wrapped in a task); a "
      "coroutine object runs once");
}
}  // namespace detail

/// What a coroutine function returns: Python's coroutine object.
///
/// Lazy: nothing runs until it is awaited (`co_await coro()`, which runs it
/// inline in the awaiting task, as Python's `await coro()`) or wrapped in a
/// task (`create_task`, `gather`, `run`). Move-only. Awaiting it twice (or
/// after giving it to a task) throws `std::logic_error`. Destroying one that
/// was never awaited destroys its frame: nothing runs, nothing leaks.
///
/// A coroutine function is any function returning `Coroutine<T>` whose body
/// uses `co_await` or `co_return`; `T` may be `void`, a reference-free
/// move-only type, anything constructible.
///
/// Awaiting a `Coroutine` costs no allocation beyond the frame and no
/// loop round trip; chains of any depth use constant stack (see
/// `detail::Transfer`).
///
/// Not thread-safe: a coroutine runs on its task's loop thread.
///
/// ```
/// asyncio::Coroutine<int> answer() { co_return 42; }
/// asyncio::Coroutine<void> main_() { int x = co_await answer(); }
/// ```
template <class T>
class [[nodiscard]] Coroutine {
public:
  static_assert(!std::is_reference_v<T>, "Coroutine<T&> is not supported; use a pointer");
  using promise_type = detail::Promise<T>;
  using value_type = T;

  Coroutine(Coroutine&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Coroutine& operator=(Coroutine&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Coroutine(const Coroutine&) = delete;
  Coroutine& operator=(const Coroutine&) = delete;
  ~Coroutine() {
    if (handle_) handle_.destroy();
  }

  /// True if this object still holds a coroutine (not moved from).
  bool valid() const noexcept { return static_cast<bool>(handle_); }

  /// The awaiter `co_await` uses: runs the coroutine inline, resumes the
  /// awaiter with its value or rethrows its exception. Where it may throw
  /// `CancelledError`: wherever the coroutine itself does. Resumes on the
  /// same thread (the loop's).
  struct Awaiter {
    std::coroutine_handle<promise_type> handle;
    bool await_ready() const noexcept { return false; }
    detail::Transfer await_suspend(std::coroutine_handle<> awaiting) const noexcept {
      handle.promise().continuation = awaiting;
      return detail::transfer_to(handle);
    }
    T await_resume() const { return handle.promise().take(); }
  };

  /// Throws: `std::logic_error` if awaited before or moved from.
  Awaiter operator co_await() & { return Awaiter{claim()}; }
  Awaiter operator co_await() && { return Awaiter{claim()}; }

private:
  friend struct detail::Promise<T>;
  friend struct detail::CoroutineAccess;
  explicit Coroutine(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}

  std::coroutine_handle<promise_type> claim() const {
    if (!handle_ || handle_.promise().started) detail::throw_awaited_twice();
    handle_.promise().started = true;
    return handle_;
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {
template <class T>
Coroutine<T> Promise<T>::get_return_object() noexcept {
  return Coroutine<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Coroutine<void> Promise<void>::get_return_object() noexcept {
  return Coroutine<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// Lets the task machinery take a coroutine's frame.
struct CoroutineAccess {
  template <class T>
  static std::coroutine_handle<Promise<T>> release(Coroutine<T>& c) {
    auto h = c.claim();
    c.handle_ = {};
    return h;
  }
};

template <class A>
struct is_coroutine : std::false_type {};
template <class T>
struct is_coroutine<Coroutine<T>> : std::true_type {};
}  // namespace detail

}  // namespace spindle::asyncio
