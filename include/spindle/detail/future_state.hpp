// SPDX-License-Identifier: MIT
// spindle/detail/future_state.hpp - the shared state behind Future, Promise and executor tasks.
#pragma once

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include <pthread.h>

#include "../errors.hpp"
#include "spin_lock.hpp"
#include "wait.hpp"

namespace spindle::detail {

// The status word of a shared state. The low two bits hold the state; the
// others are flags that tell the completing thread whether it has work to
// do beyond storing the new state, so that a completion nobody waits for
// costs a single atomic exchange.
inline constexpr std::uint32_t st_pending = 0;
inline constexpr std::uint32_t st_running = 1;
inline constexpr std::uint32_t st_finished = 2;
inline constexpr std::uint32_t st_cancelled = 3;
inline constexpr std::uint32_t st_mask = 3;
// Some thread sleeps in futex_wait on the status word.
inline constexpr std::uint32_t sleepers_bit = 4;
// Some waiter node or callback was linked (under lock_) while pending.
inline constexpr std::uint32_t listeners_bit = 8;

constexpr bool is_done_status(std::uint32_t s) noexcept {
  return (s & st_mask) == st_finished || (s & st_mask) == st_cancelled;
}

class StateBase;

/// An internal waiter (as_completed, wait, a worker helping while it
/// waits). `notify` runs in the completing thread while it holds the state's
/// lock, which is what lets `remove_waiter` guarantee that after it returns
/// no notification is still running on the node. So `notify` must be short
/// and must not touch the state's lock.
struct WaitNode {
  WaitNode* next = nullptr;
  void (*notify)(WaitNode* self, StateBase& state) noexcept = nullptr;
};

/// A user's done-callback, owned by the state until it has run.
struct CallbackNode {
  CallbackNode* next = nullptr;
  virtual ~CallbackNode() = default;
  /// Runs the user's callback; never throws (exceptions go to the handler).
  virtual void invoke(StateBase& state) noexcept = 0;
};

/// Something that can make progress on other work while a thread waits: an
/// executor's worker, which as a last resort runs its pool's queued tasks
/// while it waits on a future (see PoolCore::should_help).
class Helper {
public:
  /// Waits until `ready(ctx)` is true, running other work meanwhile if that
  /// is the only way forward. Whoever makes `ready` true must call `wake()`
  /// afterwards. (Only untimed waits help, so there is no deadline.)
  virtual void help_until(bool (*ready)(const void*), const void* ctx) noexcept = 0;
  /// Wakes the helping thread if it sleeps. Any thread may call it.
  virtual void wake() noexcept = 0;

protected:
  ~Helper() = default;
};

/// The helper of the current thread: set for the lifetime of an executor's
/// worker threads, null elsewhere.
inline thread_local Helper* tl_helper = nullptr;

/// The executor pool the current thread is a worker of (its PoolCore), or
/// null: set for the lifetime of an executor's worker threads.
inline thread_local const void* tl_pool = nullptr;

/// How many tasks this thread is running inline, one inside another.
inline thread_local unsigned tl_inline_depth = 0;

/// The lowest stack address at which this thread may still start a nested
/// task inline (the stack's low end plus a safety margin), or 0 if unknown
/// (not a pool worker). Set once at the start of each worker thread.
inline thread_local std::uintptr_t tl_stack_floor = 0;

/// How much stack must be left for a nested task to run inline: 64 KiB or a
/// sixteenth of the stack, whichever is more (512 KiB of glibc's default
/// 8 MiB). It has to hold the nested task's frames up to the next wait.
constexpr std::size_t inline_stack_margin(std::size_t stack_size) noexcept {
  constexpr std::size_t min_margin = std::size_t{64} * 1024;
  return stack_size / 16 > min_margin ? stack_size / 16 : min_margin;
}

/// Records the calling thread's stack bounds (pthread_getattr_np) for
/// check_inline_depth. Leaves the floor unset if the bounds are unknown.
inline void record_stack_bounds() noexcept {
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* low = nullptr;
  std::size_t size = 0;
  if (pthread_attr_getstack(&attr, &low, &size) == 0 && low != nullptr)
    tl_stack_floor = reinterpret_cast<std::uintptr_t>(low) + inline_stack_margin(size);
  pthread_attr_destroy(&attr);
}

/// Throws `RecursionError` if this thread already runs 1000 tasks inline,
/// one inside another (Python's default recursion limit), or if less stack
/// is left than `inline_stack_margin` (tasks with big frames overflow the
/// stack long before 1000 levels), instead of growing the stack until it
/// overflows.
inline void check_inline_depth() {
  constexpr unsigned max_depth = 1000;
  if (tl_inline_depth >= max_depth)
    throw RecursionError("a pool worker waited on futures nested " + std::to_string(max_depth) +
                         " deep (each wait runs the awaited task on the waiting thread); "
                         "let tasks wait on fewer levels of tasks they submit");
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  if (here < tl_stack_floor)
    throw RecursionError("a pool worker waited on futures nested " +
                         std::to_string(tl_inline_depth) +
                         " deep and its stack is nearly used up (each wait runs the awaited task "
                         "on the waiting thread); let tasks wait on fewer levels of tasks they "
                         "submit, or give the workers more stack (ThreadPoolOptions::stack_size)");
}

/// Counts one task run inline on this thread for as long as it lives.
class InlineDepth {
public:
  InlineDepth() noexcept { ++tl_inline_depth; }
  ~InlineDepth() { --tl_inline_depth; }
  InlineDepth(const InlineDepth&) = delete;
  InlineDepth& operator=(const InlineDepth&) = delete;
};

// ---------------------------------------------------------------------------
// Done-callback exception handler.

using CallbackExceptionHandlerFn = std::function<void(std::exception_ptr)>;

struct CallbackHandlerSlot {
  std::mutex m;
  CallbackExceptionHandlerFn handler;  // guarded by m
};

inline CallbackHandlerSlot& callback_handler_slot() {
  static CallbackHandlerSlot slot;
  return slot;
}

inline void print_callback_exception(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "spindle: exception in a Future done-callback: %s\n", ex.what());
  } catch (...) {
    std::fprintf(stderr, "spindle: exception in a Future done-callback (not a std::exception)\n");
  }
}

/// Hands an exception thrown by a done-callback to the installed handler;
/// the default prints it to stderr (as Python's logs "exception calling
/// callback for <Future>"). A handler that throws is reported the same way,
/// so nothing escapes into the completing thread.
inline void report_callback_exception(std::exception_ptr e) noexcept {
  CallbackExceptionHandlerFn handler;
  try {
    auto& slot = callback_handler_slot();
    std::lock_guard lock(slot.m);
    handler = slot.handler;
  } catch (...) {  // copying the std::function failed (bad_alloc)
  }
  if (handler) {
    try {
      handler(e);
      return;
    } catch (...) {
      print_callback_exception(std::current_exception());
    }
  }
  print_callback_exception(e);
}

// ---------------------------------------------------------------------------

/// The reference-counted state a Future shares with whoever completes it.
///
/// Memory ordering: the value or exception is written before the release
/// exchange/CAS that stores a done status; readers load the status with
/// acquire before they read the value.
class StateBase {
public:
  explicit StateBase(std::uint32_t initial_refs) noexcept : refs_(initial_refs) {}
  StateBase(const StateBase&) = delete;
  StateBase& operator=(const StateBase&) = delete;
  virtual ~StateBase() {
    // Callbacks never run (the state was abandoned while pending) are freed.
    for (CallbackNode* c = callbacks_; c != nullptr;) {
      CallbackNode* next = c->next;
      delete c;
      c = next;
    }
  }

  /// For executor tasks: runs the task (or skips it if cancelled or already
  /// run inline) and drops the queue's reference. Plain states have nothing
  /// to run.
  virtual void execute() noexcept { release(); }

  /// For executor tasks: runs the task on the calling thread if no thread
  /// has started it; the queue keeps its reference (its later `execute` is
  /// a no-op). False if it was not pending, or is a plain state.
  virtual bool run_inline() noexcept { return false; }

  /// The pool a task was submitted to (set before it is queued), or null.
  const void* pool_ = nullptr;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::uint32_t status() const noexcept { return status_.load(std::memory_order_acquire) & st_mask; }
  bool done() const noexcept { return is_done_status(status_.load(std::memory_order_acquire)); }

  /// pending -> running. False if the state was cancelled (or is no longer
  /// pending), in which case the work must not run.
  bool try_start() noexcept {
    std::uint32_t s = status_.load(std::memory_order_relaxed);
    for (;;) {
      if ((s & st_mask) != st_pending) return false;
      if (status_.compare_exchange_weak(s, (s & ~st_mask) | st_running, std::memory_order_acquire,
                                        std::memory_order_relaxed))
        return true;
    }
  }

  /// pending -> cancelled; true also if it already was cancelled (Python).
  bool cancel() noexcept {
    std::uint32_t s = status_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint32_t st = s & st_mask;
      if (st == st_cancelled) return true;
      if (st != st_pending) return false;
      if (status_.compare_exchange_weak(s, st_cancelled, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
        after_completion(s);
        return true;
      }
    }
  }

  /// running -> finished, for the one thread that ran the work. The value or
  /// error_ must be stored before.
  void finish_running() noexcept {
    after_completion(status_.exchange(st_finished, std::memory_order_acq_rel));
  }

  /// pending/running -> finished for a Promise. False if it was cancelled.
  bool try_finish() noexcept {
    std::uint32_t s = status_.load(std::memory_order_relaxed);
    for (;;) {
      if (is_done_status(s)) return false;
      if (status_.compare_exchange_weak(s, st_finished, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
        after_completion(s);
        return true;
      }
    }
  }

  /// Python's `set_running_or_notify_cancel` for a Promise: pending ->
  /// running (true); false if cancelled (waiters and callbacks were already
  /// woken by the cancel). Throws `std::logic_error` if running or finished.
  bool set_running_or_notify_cancel() {
    if (try_start()) return true;
    switch (status()) {
      case st_cancelled: return false;
      case st_running:
        throw std::logic_error("spindle::Promise::set_running_or_notify_cancel: already running");
      default:
        throw std::logic_error("spindle::Promise::set_running_or_notify_cancel: already done");
    }
  }

  /// The number of handles and queue entries sharing this state. Exact only
  /// when 1 is read by a holder (nobody else can then make a new one).
  std::uint32_t refs() const noexcept { return refs_.load(std::memory_order_acquire); }

  /// Claims the right to set a Promise's result; only the first caller wins.
  bool claim() noexcept { return !claimed_.exchange(true, std::memory_order_acq_rel); }

  /// Blocks until done or until `deadline`; true if done. On a worker of
  /// the pool this task was submitted to, an untimed wait runs the task
  /// itself if no worker has started it (see `try_run_here`).
  /// Throws: `RecursionError` (see check_inline_depth).
  bool wait_until(std::optional<Clock::time_point> deadline) {
    if (done()) return true;
    if (deadline && Clock::now() >= *deadline) return false;
    if (!deadline) {
      if (try_run_here()) return true;
      if (Helper* h = tl_helper) {
        help_until(*h);
        return true;
      }
    }
    return block_until(deadline);
  }

  /// An untimed wait on an executor's worker: sleeps where the pool can
  /// wake it to run queued work if every worker waits (see
  /// PoolCore::should_help); a waiter node wakes it when this state
  /// completes. Returns once done. Throws: `RecursionError` (see
  /// check_inline_depth).
  void help_until(Helper& helper) {
    struct Node : WaitNode {
      Helper* helper = nullptr;
    };
    Node node;
    node.helper = &helper;
    node.notify = [](WaitNode* w, StateBase&) noexcept { static_cast<Node*>(w)->helper->wake(); };
    check_inline_depth();
    if (!add_waiter(node)) return;
    const InlineDepth depth;
    helper.help_until([](const void* s) { return static_cast<const StateBase*>(s)->done(); },
                      this);
    remove_waiter(node);
  }

  /// Runs this task on the calling thread if it is a worker of the task's
  /// pool and the task has not started: how a task that submits work and
  /// waits for it cannot deadlock its pool, whatever the number of workers,
  /// without running unrelated work inside the wait. True if it ran here.
  /// Throws: `RecursionError` (see check_inline_depth).
  bool try_run_here() {
    if (pool_ == nullptr || pool_ != tl_pool || status() != st_pending) return false;
    check_inline_depth();
    const InlineDepth depth;
    return run_inline();
  }

  /// Blocks (spins briefly, then sleeps on the status word) without helping.
  bool block_until(std::optional<Clock::time_point> deadline) noexcept {
    Backoff backoff;
    while (backoff.step())
      if (done()) return true;
    std::uint32_t s = status_.load(std::memory_order_acquire);
    for (;;) {
      if (is_done_status(s)) return true;
      if (deadline && Clock::now() >= *deadline) return false;
      // Announce a sleeper so the completer knows to make the wake-up call.
      if (!(s & sleepers_bit) &&
          !status_.compare_exchange_weak(s, s | sleepers_bit, std::memory_order_acquire))
        continue;
      futex_wait(status_, s | sleepers_bit, deadline);
      s = status_.load(std::memory_order_acquire);
    }
  }

  /// Links `node`; returns false (and links nothing) if already done.
  bool add_waiter(WaitNode& node) noexcept {
    std::lock_guard lock(lock_);
    // Setting listeners_bit under lock_: a completer whose exchange comes
    // later sees the bit and takes lock_ (so it sees the node); one whose
    // exchange came earlier is seen here as a done status.
    if (is_done_status(status_.fetch_or(listeners_bit, std::memory_order_acq_rel))) return false;
    node.next = waiters_;
    waiters_ = &node;
    return true;
  }

  /// Unlinks `node` if it is still linked. After this returns, no notify
  /// is running on the node (notifications run under lock_).
  void remove_waiter(WaitNode& node) noexcept {
    std::lock_guard lock(lock_);
    for (WaitNode** p = &waiters_; *p != nullptr; p = &(*p)->next) {
      if (*p == &node) {
        *p = node.next;
        return;
      }
    }
  }

  /// Takes ownership of `node` and runs it once done: at once, in the
  /// calling thread, if already done.
  void add_callback(CallbackNode* node) noexcept {
    {
      std::lock_guard lock(lock_);
      if (!is_done_status(status_.fetch_or(listeners_bit, std::memory_order_acq_rel))) {
        node->next = callbacks_;
        callbacks_ = node;
        return;
      }
    }
    node->invoke(*this);
    delete node;
  }

  // Intrusive link for the executor's task queues (the state is the task).
  StateBase* next_task_ = nullptr;
  // The task's exception; written before completion, read after.
  std::exception_ptr error_;

private:
  void after_completion(std::uint32_t old) noexcept {
    if (old & sleepers_bit) futex_wake(status_, INT_MAX);
    if (!(old & listeners_bit)) return;
    CallbackNode* callbacks = nullptr;
    {
      std::lock_guard lock(lock_);
      for (WaitNode* w = waiters_; w != nullptr;) {
        WaitNode* next = w->next;  // read before notify: the node may go away after
        w->notify(w, *this);
        w = next;
      }
      waiters_ = nullptr;
      callbacks = callbacks_;
      callbacks_ = nullptr;
    }
    // Callbacks were pushed at the head; run them in the order they were added.
    CallbackNode* ordered = nullptr;
    while (callbacks != nullptr) {
      CallbackNode* next = callbacks->next;
      callbacks->next = ordered;
      ordered = callbacks;
      callbacks = next;
    }
    while (ordered != nullptr) {
      CallbackNode* next = ordered->next;
      ordered->invoke(*this);
      delete ordered;
      ordered = next;
    }
  }

  atomic<std::uint32_t> status_{st_pending};
  atomic<std::uint32_t> refs_;
  atomic<bool> claimed_{false};
  SpinLock lock_;
  WaitNode* waiters_ = nullptr;        // guarded by lock_
  CallbackNode* callbacks_ = nullptr;  // guarded by lock_
};

/// A state that carries a value of type T once finished.
template <class T>
class ResultState : public StateBase {
public:
  using StateBase::StateBase;
  // Engaged once finished without an exception; written before completion.
  std::optional<T> value_;
  // Set by Future::take_result (and result() on a temporary of a move-only
  // T): the value was moved out; later reads throw std::logic_error.
  std::atomic<bool> taken_{false};
};

template <>
class ResultState<void> : public StateBase {
public:
  using StateBase::StateBase;
};

/// An executor task: the callable lives inside the shared state, so a
/// submit costs one allocation (this object) and nothing else.
template <class T, class Fn>
class TaskState final : public ResultState<T> {
public:
  template <class G>
  explicit TaskState(G&& fn) : ResultState<T>(2) {  // one for the Future, one for the queue
    ::new (static_cast<void*>(&fn_)) Fn(std::forward<G>(fn));
  }
  ~TaskState() override {
    if (!fn_destroyed_) fn_.~Fn();
  }

  void execute() noexcept override {
    if (this->try_start()) {
      run_started();
    } else {
      // Cancelled, or failed by a broken pool, without running: the
      // function is ours to drop. Running means another thread runs it
      // inline and drops it; finished by that thread, it is gone already
      // (read after the acquire of the done status, so no race).
      const std::uint32_t st = this->status();
      if (st == st_cancelled || (st == st_finished && !fn_destroyed_)) destroy_fn();
    }
    this->release();
  }

  bool run_inline() noexcept override {
    if (!this->try_start()) return false;
    run_started();
    return true;
  }

private:
  // Runs the function of a state this thread has just started.
  void run_started() noexcept {
    try {
      if constexpr (std::is_void_v<T>) {
        fn_();
      } else {
        this->value_.emplace(fn_());
      }
    } catch (...) {
      this->error_ = std::current_exception();
    }
    // Drop captured arguments before waking waiters, as Python drops the
    // work item: whoever sees the future done may rely on them being gone.
    destroy_fn();
    this->finish_running();
  }

  void destroy_fn() noexcept {
    fn_.~Fn();
    fn_destroyed_ = true;
  }

  union {
    Fn fn_;
  };
  bool fn_destroyed_ = false;
};

}  // namespace spindle::detail
