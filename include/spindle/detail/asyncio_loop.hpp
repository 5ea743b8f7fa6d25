// SPDX-License-Identifier: MIT
// spindle/detail/asyncio_loop.hpp - the event loop's state, callbacks and tasks (not API).
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
#include <vector>

#include "../asyncio/coroutine.hpp"
#include "../errors.hpp"
#include "asyncio_core.hpp"

namespace spindle::asyncio {

/// What the loop reports to its exception handler: Python's `context` dict
/// of `loop.call_exception_handler` (`message`, `exception`, `task`).
struct ExceptionContext {
  std::string message;              ///< what happened, e.g. "Task exception was never retrieved"
  std::exception_ptr exception;     ///< the exception, if there is one
  std::string task_name;            ///< the task involved, if any
};

/// Receives everything the loop reports (see `EventLoop::set_exception_handler`).
using ExceptionHandler = std::function<void(const ExceptionContext&)>;

namespace detail {

class TaskCore;
class LoopCore;

// The running loop of this thread (Python's _get_running_loop()).
inline thread_local LoopCore* running_loop_slot = nullptr;

// A leaf suspension: an awaitable of spindle's that parks a task until
// something happens (a timer, a queue item, another task finishing).
// `cancel_wait` is Python's `task._fut_waiter.cancel()`: the task is being
// cancelled while parked here; return true if the cancellation took effect
// (the leaf will resume the task with CancelledError, or, for an awaited
// task, passes the cancellation on), false if it cannot (the task then
// gets CancelledError at its next resumption instead).
struct Suspension {
  virtual bool cancel_wait(const std::string& message) noexcept = 0;

protected:
  ~Suspension() = default;
};

// A waiter for a task's completion: an awaiting task's awaiter, a gather,
// a user's done-callback. Intrusive: awaiters live in coroutine frames.
struct DoneNode {
  DoneNode* prev = nullptr;
  DoneNode* next = nullptr;
  bool linked = false;
  // Runs on the loop thread once the task is done; may delete this node.
  virtual void on_done(TaskCore& task) noexcept = 0;
  // The loop closed with the task still pending; the node is unlinked.
  virtual void on_abandoned() noexcept {}

protected:
  ~DoneNode() = default;
};

class DoneList {
public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push_back(DoneNode* n) noexcept {
    n->prev = tail_;
    n->next = nullptr;
    if (tail_)
      tail_->next = n;
    else
      head_ = n;
    tail_ = n;
    n->linked = true;
  }
  void remove(DoneNode* n) noexcept {
    if (!n->linked) return;
    (n->prev ? n->prev->next : head_) = n->next;
    (n->next ? n->next->prev : tail_) = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
  }
  DoneNode* pop_front() noexcept {
    DoneNode* n = head_;
    remove(n);
    return n;
  }

private:
  DoneNode* head_ = nullptr;
  DoneNode* tail_ = nullptr;
};

// A callback the loop runs: what call_soon / call_later / add_reader hold.
// Reference-counted: one reference per Handle, one while queued (in the
// ready queue, the timer heap, or as an fd's reader or writer).
class CallbackCore : public Runnable, public TimerNode {
public:
  explicit CallbackCore(LoopCore& loop) noexcept : loop_(&loop) {}
  virtual ~CallbackCore() = default;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  void cancel() noexcept;
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_acquire); }

  void run() override;   // from the ready queue: invoke unless cancelled, drop the queue's ref
  void drop() noexcept override {
    in_ready = false;
    if (!persistent) release();
  }
  std::string describe() const override { return "<Handle callback>"; }
  void fire() override;  // a due timer: into the ready queue
  virtual void invoke() = 0;

  bool persistent = false;   // an fd watcher: stays registered after running
  bool in_ready = false;     // in the ready queue now
  LoopCore* loop_;

private:
  std::atomic<std::uint32_t> refs_{1};
  std::atomic<bool> cancelled_{false};
};

template <class F>
class CallbackImpl final : public CallbackCore {
public:
  template <class G>
  CallbackImpl(LoopCore& loop, G&& g) : CallbackCore(loop), fn_(std::forward<G>(g)) {}
  void invoke() override { fn_(); }

private:
  F fn_;
};

// The loop's state. EventLoop is its public face; the awaitables in the
// other asyncio headers use it directly. Loop thread only, unless a member
// says otherwise.
class LoopCore {
public:
  LoopCore() : inbox_(std::make_shared<Inbox>()) {
    epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (epoll_.get() < 0) throw_errno("creating the event loop's epoll instance");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = inbox_->wake_fd();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, inbox_->wake_fd(), &ev) != 0)
      throw_errno("registering the event loop's eventfd");
  }
  LoopCore(const LoopCore&) = delete;
  LoopCore& operator=(const LoopCore&) = delete;

  void schedule(Runnable* r) noexcept { ready_.push(r); }

  void add_timer(TimerNode* t) { timers_.push(t); }
  void remove_timer(TimerNode* t) noexcept {
    if (t->queued()) timers_.remove(t);
  }

  TaskCore* current_task() const noexcept { return current_task_; }

  // Reports to the exception handler; never throws.
  void report(const ExceptionContext& context) noexcept;
  static void print_report(const ExceptionContext& context) noexcept;

  void check_thread(const char* what) const {
    if (debug_ && running_ && owner_ != std::this_thread::get_id())
      throw std::logic_error(std::string("spindle::asyncio::EventLoop::") + what +
                             ": called from a thread other than the loop's (use "
                             "call_soon_threadsafe)");
  }
  void check_open(const char* what) const {
    if (closed_)
      throw EventLoopClosed(std::string("spindle::asyncio::EventLoop::") + what +
                            ": the event loop is closed");
  }

  // One pass of the loop (Python's _run_once).
  void run_once();
  void run_ready(std::size_t count);
  void drop_ready() noexcept;
  void close_down() noexcept;  // close(): see EventLoop::close
  void drain_inbox() noexcept;
  void watch(int fd, bool reader, CallbackCore* cb);
  bool unwatch(int fd, bool reader) noexcept;

  // Tasks: every live TaskCore of this loop is on this list.
  void link_task(TaskCore* t) noexcept;
  void unlink_task(TaskCore* t) noexcept;
  TaskCore* first_task() const noexcept { return tasks_; }

  ReadyQueue ready_;
  TimerHeap timers_;
  TaskCore* current_task_ = nullptr;
  TaskCore* tasks_ = nullptr;
  std::shared_ptr<Inbox> inbox_;
  UniqueFd epoll_;
  struct Watch {
    CallbackCore* reader = nullptr;
    CallbackCore* writer = nullptr;
  };
  std::unordered_map<int, Watch> watches_;
  bool debug_ = false;
  Clock::duration slow_callback_ = std::chrono::milliseconds(100);
  ExceptionHandler handler_;
  bool running_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  std::thread::id owner_{};
  std::uint64_t next_task_id_ = 1;
  // The default executor (a ThreadPoolExecutor, made by asyncio/threads.hpp
  // on first use) and how to shut it down, type-erased so this header does
  // not need executor.hpp.
  std::shared_ptr<void> default_executor_;
  void (*shutdown_executor_)(void*) = nullptr;
};

inline LoopCore& running_loop(const char* what) {
  if (LoopCore* l = running_loop_slot) return *l;
  throw std::logic_error(std::string("spindle::asyncio::") + what + ": no running event loop");
}

// Handles returned to users hold a CallbackCore reference.
class HandleRef {
public:
  HandleRef() noexcept = default;
  explicit HandleRef(CallbackCore* c) noexcept : core_(c) {}  // adopts a reference
  HandleRef(const HandleRef& o) noexcept : core_(o.core_) {
    if (core_) core_->add_ref();
  }
  HandleRef(HandleRef&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  HandleRef& operator=(HandleRef o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~HandleRef() {
    if (core_) core_->release();
  }
  CallbackCore* get() const noexcept { return core_; }

private:
  CallbackCore* core_ = nullptr;
};

template <class F>
CallbackCore* make_callback(LoopCore& loop, F&& f) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "a loop callback takes no arguments");
  auto* cb = new CallbackImpl<std::decay_t<F>>(loop, std::forward<F>(f));
  cb->add_ref();  // one for the Handle, one for the queue
  return cb;
}

// A task's state: Python's `asyncio.Task` minus the result, which stays in
// the root coroutine's promise (the frame lives as long as the task).
//
// Reference-counted (not atomically: loop thread only): one reference per
// Task handle, one held by the task itself while it is pending, one by a
// running step. Every live task is on its loop's task list.
//
// Cancellation follows Python's Task.cancel(): if the task is parked on a
// leaf (`waiter_`), the leaf is asked to cancel (`Suspension::cancel_wait`);
// otherwise (it is in the ready queue, or running) `must_cancel_` makes the
// next resumption of a leaf throw CancelledError.
class TaskCore final : public Runnable {
public:
  enum class Status : std::uint8_t { pending, finished, cancelled };

  TaskCore(LoopCore& loop, std::coroutine_handle<> root, PromiseBase& promise, std::string name)
      : loop_(&loop), root_(root), promise_(&promise), resume_(root), id_(loop.next_task_id_++) {
    if (!name.empty()) name_ = std::make_unique<std::string>(std::move(name));
    loop.link_task(this);
  }
  TaskCore(const TaskCore&) = delete;
  TaskCore& operator=(const TaskCore&) = delete;

  void add_ref() noexcept { ++refs_; }
  void release() noexcept {
    if (--refs_ == 0) delete this;
  }

  Status status() const noexcept { return status_; }
  bool done() const noexcept { return status_ != Status::pending; }
  bool cancelled() const noexcept { return status_ == Status::cancelled; }
  LoopCore* loop() const noexcept { return loop_; }
  PromiseBase& promise() const noexcept { return *promise_; }
  std::uint64_t id() const noexcept { return id_; }
  std::string name() const { return name_ ? *name_ : "Task-" + std::to_string(id_); }
  void set_name(std::string name) { name_ = std::make_unique<std::string>(std::move(name)); }

  // Python's Task.cancel(msg).
  bool cancel(const std::string& message) {
    if (done()) return false;
    ++cancel_requests_;
    set_cancel_message(message);
    if (waiter_ && waiter_->cancel_wait(message)) return true;
    must_cancel_ = true;
    return true;
  }
  unsigned cancelling() const noexcept { return cancel_requests_; }
  unsigned uncancel() noexcept {
    if (cancel_requests_ > 0 && --cancel_requests_ == 0) must_cancel_ = false;
    return cancel_requests_;
  }
  std::string cancel_message() const { return cancel_message_ ? *cancel_message_ : std::string(); }
  CancelledError cancelled_error() const { return CancelledError(cancel_message()); }

  // --- for leaves (awaitables that park the task) ---------------------------
  // Parks the task on `s`; `h` is resumed by the next step. If a cancel
  // came while the task ran, it is passed to the leaf now.
  void suspend_on(std::coroutine_handle<> h, Suspension* s) noexcept {
    resume_ = h;
    waiter_ = s;
    if (must_cancel_ && s->cancel_wait(cancel_message())) must_cancel_ = false;
  }
  // Puts the task at the back of the ready queue (`sleep(0)`).
  void yield_to_loop(std::coroutine_handle<> h) noexcept {
    resume_ = h;
    loop_->schedule(this);
  }
  // The leaf the task is parked on is done: run the task's next step.
  void wake() noexcept {
    waiter_ = nullptr;
    loop_->schedule(this);
  }
  // A leaf resumes: a cancel that arrived after the wake-up (or while
  // the task was queued) is thrown here.
  bool take_must_cancel() noexcept { return std::exchange(must_cancel_, false); }
  // The CancelledError a leaf throws into the task: it answers every
  // cancel requested so far, so a pending one is consumed (Python's step
  // throws one CancelledError and clears _must_cancel).
  CancelledError deliver_cancel() {
    must_cancel_ = false;
    return cancelled_error();
  }
  void throw_if_must_cancel() {
    if (take_must_cancel()) throw cancelled_error();
  }

  // --- completion -----------------------------------------------------------
  // The exception the task ended with (the CancelledError if cancelled).
  const std::exception_ptr& error() const noexcept { return error_; }
  void mark_retrieved() noexcept { log_error_ = false; }
  // Its exception will never be reported as "never retrieved" (a gather
  // that already failed, a shield whose awaiter was cancelled: Python marks
  // those retrieved).
  void set_quiet() noexcept {
    quiet_ = true;
    log_error_ = false;
  }
  bool taken() const noexcept { return taken_; }
  void set_taken() noexcept { taken_ = true; }
  void add_done(DoneNode* n) noexcept { done_.push_back(n); }
  void remove_done(DoneNode* n) noexcept { done_.remove(n); }

  void run() override;  // one step
  // Runs the first step now, nested in the running task's step, instead of
  // from the ready queue (for gather's outer task, which must be parked on
  // its children before anybody can cancel it). The task must be new and
  // not scheduled.
  void start_now() noexcept {
    LoopCore& loop = *loop_;
    TaskCore* outer = std::exchange(loop.current_task_, nullptr);
    started_ = true;
    run_step(loop);
    loop.current_task_ = outer;
  }
  void drop() noexcept override {}
  std::string describe() const override { return "<Task name='" + name() + "'>"; }
  void abandon() noexcept;  // the loop closes with this task pending

  TaskCore* prev_task = nullptr;  // the loop's task list
  TaskCore* next_task = nullptr;

private:
  ~TaskCore();
  void run_step(LoopCore& loop) noexcept;
  void finish() noexcept;
  void complete() noexcept;
  void set_cancel_message(const std::string& m) {
    if (m.empty() && !cancel_message_) return;
    cancel_message_ = std::make_unique<std::string>(m);
  }

  LoopCore* loop_;  // null once the loop closed
  std::coroutine_handle<> root_;
  PromiseBase* promise_;
  std::coroutine_handle<> resume_;
  Suspension* waiter_ = nullptr;
  DoneList done_;
  std::exception_ptr error_;
  std::unique_ptr<std::string> name_;            // null: "Task-<id>"
  std::unique_ptr<std::string> cancel_message_;  // null: no message
  std::uint64_t id_;
  std::uint32_t refs_ = 1;  // the pending task's own reference
  std::uint32_t cancel_requests_ = 0;
  Status status_ = Status::pending;
  bool started_ = false;
  bool must_cancel_ = false;
  bool log_error_ = false;  // finished with an exception nobody asked for
  bool taken_ = false;      // a move-only value was moved out
  bool quiet_ = false;      // see set_quiet()
};

// The task running now on this thread's loop.
inline TaskCore& running_task(const char* what) {
  LoopCore* loop = running_loop_slot;
  if (loop && loop->current_task_) return *loop->current_task_;
  throw std::logic_error(std::string("spindle::asyncio::") + what +
                         ": awaited outside a task (no event loop runs a task on this thread)");
}

// ---------------------------------------------------------------------------
// Implementation.


// A callback posted to a loop's inbox: puts the callback into the ready
// queue when the loop drains the inbox (or, at close, runs it right there).
struct PostedCallback final : Inbox::Item {
  explicit PostedCallback(CallbackCore* callback) noexcept : cb(callback) {}
  ~PostedCallback() override {
    if (cb) cb->release();
  }
  void invoke() override {
    CallbackCore* c = std::exchange(cb, nullptr);
    c->in_ready = true;
    c->loop_->schedule(c);
  }
  CallbackCore* cb;
};

inline void CallbackCore::cancel() noexcept {
  cancelled_.store(true, std::memory_order_release);
  // A pending timer leaves the heap at once (loop thread only, see
  // TimerHandle); the heap held a reference.
  if (queued() && running_loop_slot == loop_) {
    loop_->remove_timer(this);
    release();
  }
}

inline void CallbackCore::run() {
  in_ready = false;
  if (!cancelled()) {
    try {
      invoke();
    } catch (...) {
      loop_->report({"Exception in callback", std::current_exception(), {}});
    }
  }
  if (!persistent) release();
}

inline void CallbackCore::fire() {
  if (cancelled()) {
    release();
    return;
  }
  in_ready = true;
  loop_->schedule(this);
}

inline void LoopCore::print_report(const ExceptionContext& context) noexcept {
  try {
    std::string text = context.message;
    if (!context.task_name.empty()) text += "\ntask: <Task name='" + context.task_name + "'>";
    if (context.exception) {
      try {
        std::rethrow_exception(context.exception);
      } catch (const std::exception& e) {
        text += "\n" + std::string(e.what());
      } catch (...) {
        text += "\n(an exception not derived from std::exception)";
      }
    }
    text += "\n";
    std::fputs(text.c_str(), stderr);
  } catch (...) {
    std::fputs("spindle::asyncio: an error report failed\n", stderr);
  }
}

inline void LoopCore::report(const ExceptionContext& context) noexcept {
  if (!handler_) {
    print_report(context);
    return;
  }
  try {
    handler_(context);
  } catch (...) {
    print_report({"Unhandled error in exception handler", std::current_exception(), {}});
  }
}

inline void LoopCore::drain_inbox() noexcept {
  Inbox::Item* items = inbox_->take_all();
  while (items) {
    Inbox::Item* next = items->next;
    try {
      items->invoke();
    } catch (...) {
      report({"Exception in a callback posted from another thread", std::current_exception(), {}});
    }
    delete items;
    items = next;
  }
}

inline void LoopCore::watch(int fd, bool reader, CallbackCore* cb) {
  auto [it, inserted] = watches_.try_emplace(fd);
  Watch& w = it->second;
  CallbackCore*& slot = reader ? w.reader : w.writer;
  epoll_event ev{};
  ev.events = ((reader || w.reader) ? EPOLLIN : 0u) | ((!reader || w.writer) ? EPOLLOUT : 0u);
  ev.data.fd = fd;
  const bool had_any = w.reader || w.writer;
  if (::epoll_ctl(epoll_.get(), had_any ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int e = errno;
    if (!had_any) watches_.erase(it);
    spindle::detail::throw_os_error(reader ? "add_reader: epoll_ctl" : "add_writer: epoll_ctl", e);
  }
  if (slot) {
    slot->cancel();
    slot->persistent = false;
    if (!slot->in_ready) slot->release();  // else run() drops it
  }
  slot = cb;
}

inline bool LoopCore::unwatch(int fd, bool reader) noexcept {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return false;
  Watch& w = it->second;
  CallbackCore*& slot = reader ? w.reader : w.writer;
  if (!slot) return false;
  CallbackCore* old = std::exchange(slot, nullptr);
  old->cancel();
  old->persistent = false;
  if (!old->in_ready) old->release();
  if (!w.reader && !w.writer) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);  // EBADF if already closed: fine
    watches_.erase(it);
  } else {
    epoll_event ev{};
    ev.events = (w.reader ? EPOLLIN : 0u) | (w.writer ? EPOLLOUT : 0u);
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  }
  return true;
}

inline void LoopCore::run_once() {
  if (inbox_->pending()) drain_inbox();

  // Wait for I/O only when nothing is ready; with something ready, look at
  // the fds (without waiting) only when some are watched.
  const bool must_poll = ready_.empty() && !stopping_;
  if (must_poll || !watches_.empty()) {
    std::optional<Clock::duration> timeout = Clock::duration::zero();
    if (must_poll && !timers_.empty()) timeout = timers_.top()->when - Clock::now();
    if (must_poll && timers_.empty()) timeout = std::nullopt;
    epoll_event events[64];
    const int n = epoll_wait_for(epoll_.get(), events, 64, timeout);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == inbox_->wake_fd()) {
        inbox_->clear_signal();
        drain_inbox();
        continue;
      }
      auto it = watches_.find(fd);
      if (it == watches_.end()) continue;
      const std::uint32_t e = events[i].events;
      const bool hup = (e & (EPOLLHUP | EPOLLERR)) != 0;
      for (CallbackCore* cb : {(e & EPOLLIN) || hup ? it->second.reader : nullptr,
                               (e & EPOLLOUT) || hup ? it->second.writer : nullptr})
        if (cb && !cb->in_ready && !cb->cancelled()) {
          cb->in_ready = true;
          schedule(cb);
        }
    }
  }

  if (!timers_.empty()) {
    const Clock::time_point now = Clock::now();
    while (!timers_.empty() && timers_.top()->when <= now) timers_.pop()->fire();
  }
  run_ready(ready_.size());
}


inline void LoopCore::link_task(TaskCore* t) noexcept {
  t->next_task = tasks_;
  if (tasks_) tasks_->prev_task = t;
  tasks_ = t;
}

inline void LoopCore::unlink_task(TaskCore* t) noexcept {
  (t->prev_task ? t->prev_task->next_task : tasks_) = t->next_task;
  if (t->next_task) t->next_task->prev_task = t->prev_task;
  t->prev_task = t->next_task = nullptr;
}

inline void LoopCore::run_ready(std::size_t count) {
  for (; count > 0 && !ready_.empty(); --count) {
    Runnable* r = ready_.pop();
    if (!debug_) {
      r->run();
      continue;
    }
    // Debug mode: time the step (Python's slow_callback_duration warning).
    std::string what = r->describe();
    const Clock::time_point start = Clock::now();
    r->run();
    const Clock::duration took = Clock::now() - start;
    if (took >= slow_callback_) {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%.3f",
                    std::chrono::duration<double>(took).count());
      report({"Executing " + what + " took " + seconds + " seconds", nullptr, {}});
    }
  }
}

inline void LoopCore::drop_ready() noexcept {
  while (!ready_.empty()) ready_.pop()->drop();
}

inline void LoopCore::close_down() noexcept {
  closed_ = true;
  inbox_->close();
  // Python clears the ready queue; the callbacks other threads posted still
  // run (their posts were accepted), with this loop as the running one.
  drop_ready();
  LoopCore* outer = std::exchange(running_loop_slot, this);
  drain_inbox();
  try {
    run_ready(ready_.size());
  } catch (...) {
  }
  drop_ready();
  running_loop_slot = outer;

  // Tasks: pending ones are destroyed (reported), finished ones forget the
  // loop. Hold a reference to each while doing it: destroying one frame
  // can drop another task's last handle.
  std::vector<TaskCore*> tasks;
  for (TaskCore* t = tasks_; t; t = t->next_task) tasks.push_back(t);
  for (TaskCore* t : tasks) t->add_ref();
  for (TaskCore* t : tasks) t->abandon();
  drop_ready();
  for (TaskCore* t : tasks) t->release();
  tasks_ = nullptr;

  while (!timers_.empty()) {
    TimerNode* n = timers_.pop();
    if (auto* cb = dynamic_cast<CallbackCore*>(n)) cb->release();
  }
  for (auto& [fd, w] : watches_) {
    for (CallbackCore* cb : {w.reader, w.writer})
      if (cb) {
        cb->cancel();
        cb->release();
      }
  }
  watches_.clear();
  if (shutdown_executor_ && default_executor_) shutdown_executor_(default_executor_.get());
  default_executor_.reset();
}

inline TaskCore::~TaskCore() {
  if (log_error_) {
    ExceptionContext context{"Task exception was never retrieved", error_, name()};
    if (loop_)
      loop_->report(context);
    else
      LoopCore::print_report(context);
  }
  if (root_) root_.destroy();
  if (loop_) loop_->unlink_task(this);
}

inline void TaskCore::run() {
  LoopCore& loop = *loop_;
  if (!started_) {
    started_ = true;
    if (must_cancel_) {  // cancelled before it ever ran: the body never runs
      must_cancel_ = false;
      status_ = Status::cancelled;
      error_ = std::make_exception_ptr(cancelled_error());
      complete();
      return;
    }
  }
  run_step(loop);
}

inline void TaskCore::run_step(LoopCore& loop) noexcept {
  ++refs_;  // a done callback may drop the last handle during the step
  loop.current_task_ = this;
  drive(resume_);
  loop.current_task_ = nullptr;
  if (root_.done()) finish();
  release();
}

inline void TaskCore::finish() noexcept {
  error_ = std::move(promise_->error);
  promise_->error = nullptr;
  if (error_) {
    try {
      std::rethrow_exception(error_);
    } catch (const CancelledError&) {
      status_ = Status::cancelled;
    } catch (...) {
      status_ = Status::finished;
      log_error_ = !quiet_;
    }
  } else if (must_cancel_) {
    // Cancelled while running, and it returned before reaching another
    // suspension: cancelled all the same, as in Python.
    must_cancel_ = false;
    status_ = Status::cancelled;
    try {
      error_ = std::make_exception_ptr(cancelled_error());
    } catch (...) {
      error_ = std::current_exception();
    }
  } else {
    status_ = Status::finished;
  }
  complete();
}

inline void TaskCore::complete() noexcept {
  waiter_ = nullptr;
  while (!done_.empty()) done_.pop_front()->on_done(*this);
  release();  // the pending task's own reference
}

inline void TaskCore::abandon() noexcept {
  if (done()) {
    if (loop_) loop_->unlink_task(this);
    loop_ = nullptr;
    return;
  }
  loop_->report({"Task was destroyed but it is pending!", nullptr, name()});
  while (!done_.empty()) done_.pop_front()->on_abandoned();
  waiter_ = nullptr;
  // The frame's destructors run now, while the loop still exists (an
  // awaiter in the frame unlinks itself from a timer heap or wait list).
  if (root_) std::exchange(root_, {}).destroy();
  promise_ = nullptr;
  status_ = Status::cancelled;
  try {
    error_ = std::make_exception_ptr(
        CancelledError("the event loop closed while the task was pending"));
  } catch (...) {
    error_ = std::current_exception();
  }
  loop_->unlink_task(this);
  loop_ = nullptr;
  release();  // the pending task's own reference
}
}  // namespace detail
}  // namespace spindle::asyncio
