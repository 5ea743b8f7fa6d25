// SPDX-License-Identifier: MIT
// spindle/detail/task_queue.hpp - an intrusive FIFO of executor tasks.
#pragma once

#include <cstddef>
#include <utility>

#include "future_state.hpp"

namespace spindle::detail {

/// A FIFO of tasks linked through `StateBase::next_task_`: pushing and
/// popping never allocate, which is what keeps a submit at one allocation
/// (the shared state that is also the task). Not thread-safe: every
/// instance is guarded by a lock of its owner.
class TaskList {
public:
  TaskList() noexcept = default;
  TaskList(TaskList&& other) noexcept
      : head_(std::exchange(other.head_, nullptr)), tail_(std::exchange(other.tail_, nullptr)),
        size_(std::exchange(other.size_, 0)) {}
  TaskList& operator=(TaskList&& other) noexcept {
    head_ = std::exchange(other.head_, nullptr);
    tail_ = std::exchange(other.tail_, nullptr);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }
  TaskList(const TaskList&) = delete;
  TaskList& operator=(const TaskList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

  void push(StateBase* task) noexcept {
    task->next_task_ = nullptr;
    if (tail_ != nullptr)
      tail_->next_task_ = task;
    else
      head_ = task;
    tail_ = task;
    ++size_;
  }

  /// The oldest task, or null.
  StateBase* pop() noexcept {
    StateBase* task = head_;
    if (task == nullptr) return nullptr;
    head_ = task->next_task_;
    if (head_ == nullptr) tail_ = nullptr;
    task->next_task_ = nullptr;
    --size_;
    return task;
  }

  /// Removes and returns the oldest `n` tasks (all if fewer), in order.
  TaskList pop_front(std::size_t n) noexcept {
    TaskList out;
    if (n == 0 || head_ == nullptr) return out;
    if (n >= size_) return std::move(*this);
    StateBase* last = head_;
    for (std::size_t i = 1; i < n; ++i) last = last->next_task_;
    out.head_ = head_;
    out.tail_ = last;
    out.size_ = n;
    head_ = last->next_task_;
    last->next_task_ = nullptr;
    size_ -= n;
    return out;
  }

  /// Appends all of `other` (which ends up empty) after this list's tasks.
  void append(TaskList&& other) noexcept {
    if (other.head_ == nullptr) return;
    if (tail_ != nullptr)
      tail_->next_task_ = other.head_;
    else
      head_ = other.head_;
    tail_ = other.tail_;
    size_ += other.size_;
    other.head_ = other.tail_ = nullptr;
    other.size_ = 0;
  }

private:
  StateBase* head_ = nullptr;
  StateBase* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace spindle::detail
