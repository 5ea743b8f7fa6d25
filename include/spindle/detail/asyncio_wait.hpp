// SPDX-License-Identifier: MIT
// spindle/detail/asyncio_wait.hpp - FIFO wait lists of parked tasks, for the asyncio primitives.
#pragma once

#include <coroutine>
#include <cstddef>
#include <string>
#include <utility>

#include "asyncio_loop.hpp"

namespace spindle::asyncio::detail {

class WaitList;

// One parked task in a primitive's FIFO (what Python keeps as a future in
// a `_waiters` deque). It lives in the awaiter, that is in the coroutine
// frame, so parking never allocates.
//
// States: idle -> waiting (parked) -> woken (the primitive chose it) or
// cancelled (the task was cancelled while parked; it left the list).
// A waiter destroyed while waiting (its task's frame was destroyed) leaves
// the list by itself.
class Waiter : public Suspension {
public:
  enum class State : unsigned char { idle, waiting, woken, cancelled };

  Waiter() noexcept = default;
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  ~Waiter();

  // Parks the running task at the back of `list`; `h` resumes when woken
  // or cancelled. `what` names the operation for the error thrown when
  // no task runs.
  void park(WaitList& list, std::coroutine_handle<> h, const char* what);

  // After the task resumed: returns if woken. If the task was cancelled
  // (while parked, or after it was woken but before it ran), throws
  // CancelledError; in the second case `pass_on()` runs first, so a wake-up
  // the task will not use goes to the next waiter (Python's
  // `_wake_up_first()` in the `except CancelledError` branch). `pass_on`
  // is `void()`.
  template <class PassOn>
  void resume(PassOn&& pass_on) {
    if (state_ == State::cancelled) throw task_->deliver_cancel();
    if (task_ && task_->take_must_cancel()) {
      pass_on();
      throw task_->cancelled_error();
    }
  }
  void resume() {
    resume([] {});
  }

  State state() const noexcept { return state_; }
  TaskCore* task() const noexcept { return task_; }

private:
  friend class WaitList;
  bool cancel_wait(const std::string&) noexcept override;

  Waiter* prev_ = nullptr;
  Waiter* next_ = nullptr;
  WaitList* list_ = nullptr;
  TaskCore* task_ = nullptr;
  State state_ = State::idle;
};

// A FIFO of waiters. Loop thread only.
class WaitList {
public:
  WaitList() noexcept = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  Waiter* front() const noexcept { return head_; }

  // Wakes the first waiter (it leaves the list, its task is scheduled);
  // false if there is none.
  bool wake_one() noexcept {
    Waiter* w = head_;
    if (!w) return false;
    remove(w);
    w->state_ = Waiter::State::woken;
    w->task_->wake();
    return true;
  }
  // Wakes every waiter, in FIFO order.
  void wake_all() noexcept {
    while (wake_one()) {
    }
  }

private:
  friend class Waiter;
  void push_back(Waiter* w) noexcept {
    w->prev_ = tail_;
    w->next_ = nullptr;
    (tail_ ? tail_->next_ : head_) = w;
    tail_ = w;
    w->list_ = this;
    ++size_;
  }
  void remove(Waiter* w) noexcept {
    (w->prev_ ? w->prev_->next_ : head_) = w->next_;
    (w->next_ ? w->next_->prev_ : tail_) = w->prev_;
    w->prev_ = w->next_ = nullptr;
    w->list_ = nullptr;
    --size_;
  }

  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

inline Waiter::~Waiter() {
  if (state_ == State::waiting && list_) list_->remove(this);
}

inline void Waiter::park(WaitList& list, std::coroutine_handle<> h, const char* what) {
  task_ = &running_task(what);
  list.push_back(this);
  state_ = State::waiting;
  task_->suspend_on(h, this);
}

inline bool Waiter::cancel_wait(const std::string&) noexcept {
  if (state_ != State::waiting) return false;
  list_->remove(this);
  state_ = State::cancelled;
  task_->wake();
  return true;
}

}  // namespace spindle::asyncio::detail
