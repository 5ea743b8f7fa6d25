// SPDX-License-Identifier: MIT
// spindle/detail/queue_storage.hpp - what every queue storage returns, and the
// locked storages behind LifoQueue and PriorityQueue.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "atomic.hpp"

namespace spindle::detail {

/// Outcome of a non-blocking push.
enum class PushResult { ok, full, closed };
/// Outcome of a non-blocking pop.
enum class PopResult { ok, empty, closed };

// A storage is what a queue front end (BasicQueue) blocks on. It offers:
//   PushResult try_push(T& item);              // moves from item only on ok
//   PopResult  try_pop(std::optional<T>& out); // fills out only on ok
//   bool close() noexcept;                     // true if this call closed it
//   bool is_closed() const noexcept;
//   std::size_t size() const noexcept;
//   std::size_t capacity() const noexcept;     // 0 = unbounded
//   std::size_t pushed() const noexcept;       // successful pushes, ever
// Every operation is thread-safe and never blocks for long (the lock-free
// storages may spin while another thread finishes a push it has claimed).
// After close(), pushes fail with `closed`; pops still return the items that
// were pushed before, then `closed`.

/// A mutex-guarded container with a bound and a closed flag: the storage of
/// LifoQueue (a vector used as a stack) and PriorityQueue (a binary heap).
/// A lock is fine here: these queues are about ordering, not throughput, and
/// Python's versions take a lock too.
///
/// The size, the push count and the closed flag are mirrored in atomics
/// (written under the lock), so a waiter retrying an empty or full queue,
/// and `qsize()`, `closed()` and task_done's count, read them without taking
/// the lock from the threads doing the work. A push or pop that sees the
/// queue empty (full) through the mirror is as good as one that took the
/// lock: the front end re-checks after announcing a sleeper, and the fences
/// of its event counts order that check against the other side's update.
template <class T, class Container, class Policy>
class LockedStorage {
public:
  explicit LockedStorage(std::size_t capacity, Policy policy = Policy())
      : policy_(std::move(policy)), capacity_(capacity) {}

  PushResult try_push(T& item) {
    if (capacity_ != 0 && size_.load(std::memory_order_acquire) >= capacity_ &&
        !closed_.load(std::memory_order_acquire))
      return PushResult::full;
    std::lock_guard lock(m_);
    if (closed_.load(std::memory_order_relaxed)) return PushResult::closed;
    if (capacity_ != 0 && items_.size() >= capacity_) return PushResult::full;
    policy_.push(items_, std::move(item));
    size_.store(items_.size(), std::memory_order_release);
    pushed_.store(pushed_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    return PushResult::ok;
  }

  PopResult try_pop(std::optional<T>& out) {
    if (size_.load(std::memory_order_acquire) == 0 && !closed_.load(std::memory_order_acquire))
      return PopResult::empty;
    std::lock_guard lock(m_);
    if (items_.empty())
      return closed_.load(std::memory_order_relaxed) ? PopResult::closed : PopResult::empty;
    out.emplace(policy_.pop(items_));
    size_.store(items_.size(), std::memory_order_release);
    return PopResult::ok;
  }

  bool close() noexcept {
    std::lock_guard lock(m_);
    return !closed_.exchange(true, std::memory_order_acq_rel);
  }

  bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  std::size_t size() const noexcept { return size_.load(std::memory_order_acquire); }

  std::size_t capacity() const noexcept { return capacity_; }

  std::size_t pushed() const noexcept { return pushed_.load(std::memory_order_acquire); }

private:
  mutable std::mutex m_;
  Container items_;  // guarded by m_
  // Mirrors, written under m_ and read without it.
  atomic<std::size_t> size_{0};
  atomic<std::size_t> pushed_{0};
  atomic<bool> closed_{false};
  Policy policy_;
  const std::size_t capacity_;
};

/// Last in, first out.
struct StackPolicy {
  template <class Vec, class U>
  void push(Vec& items, U&& item) {
    items.push_back(std::forward<U>(item));
  }
  template <class Vec>
  typename Vec::value_type pop(Vec& items) {
    typename Vec::value_type top = std::move(items.back());
    items.pop_back();
    return top;
  }
};

/// First in, first out: the locked fallback for types whose moves may throw.
struct FifoPolicy {
  template <class Deque, class U>
  void push(Deque& items, U&& item) {
    items.push_back(std::forward<U>(item));
  }
  template <class Deque>
  typename Deque::value_type pop(Deque& items) {
    typename Deque::value_type front = std::move(items.front());
    items.pop_front();
    return front;
  }
};

/// Lowest first (as Python's heapq): a heap ordered by the inverse of
/// `Compare`, so `Compare = std::less` pops the smallest item.
template <class Compare>
struct HeapPolicy {
  Compare less;

  template <class Vec, class U>
  void push(Vec& items, U&& item) {
    items.push_back(std::forward<U>(item));
    std::push_heap(items.begin(), items.end(), greater());
  }
  template <class Vec>
  typename Vec::value_type pop(Vec& items) {
    std::pop_heap(items.begin(), items.end(), greater());
    typename Vec::value_type top = std::move(items.back());
    items.pop_back();
    return top;
  }

private:
  auto greater() const {
    return [this](const auto& a, const auto& b) { return less(b, a); };
  }
};

}  // namespace spindle::detail
