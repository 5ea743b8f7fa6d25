// SPDX-License-Identifier: MIT
// spindle/detail/fifo_storage.hpp - the storage behind ClosableQueue.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <type_traits>

#include "queue_storage.hpp"
#include "ring_buffer.hpp"
#include "segmented_list.hpp"

namespace spindle::detail {

/// FIFO storage for ClosableQueue, chosen by the bound:
/// - unbounded: a SegmentedList (lock-free, grows by blocks of 31 slots);
/// - bounded up to `ring_limit`: a RingBuffer of exactly `capacity` slots,
///   allocated up front (lock-free, no allocation per item);
/// - a larger bound: a SegmentedList plus a counter of reserved places, so a
///   huge maxsize (as Python users write `Queue(maxsize=10**7)` as a safety
///   cap) does not allocate gigabytes up front.
/// Thread-safe.
template <class T>
class LockFreeFifoStorage {
public:
  /// Bounds above this use the list with a counter instead of a ring.
  static constexpr std::size_t ring_limit = std::size_t{1} << 16;

  explicit LockFreeFifoStorage(std::size_t capacity) : capacity_(capacity) {
    if (capacity != 0 && capacity <= ring_limit)
      ring_ = std::make_unique<RingBuffer<T>>(capacity);
  }

  PushResult try_push(T& item) {
    if (ring_) return ring_->try_push(item);
    if (capacity_ == 0) return list_.try_push(item);
    // Reserve a place first; give it back if the push does not happen.
    if (list_.is_closed()) return PushResult::closed;
    if (reserved_.fetch_add(1, std::memory_order_acq_rel) >= capacity_) {
      reserved_.fetch_sub(1, std::memory_order_acq_rel);
      return list_.is_closed() ? PushResult::closed : PushResult::full;
    }
    const PushResult result = list_.try_push(item);
    if (result != PushResult::ok) reserved_.fetch_sub(1, std::memory_order_acq_rel);
    return result;
  }

  PopResult try_pop(std::optional<T>& out) {
    if (ring_) return ring_->try_pop(out);
    const PopResult result = list_.try_pop(out);
    if (result == PopResult::ok && capacity_ != 0)
      reserved_.fetch_sub(1, std::memory_order_acq_rel);
    return result;
  }

  bool close() noexcept { return ring_ ? ring_->close() : list_.close(); }
  bool is_closed() const noexcept { return ring_ ? ring_->is_closed() : list_.is_closed(); }
  std::size_t size() const noexcept { return ring_ ? ring_->size() : list_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t pushed() const noexcept { return ring_ ? ring_->pushed() : list_.pushed(); }

private:
  const std::size_t capacity_;
  std::unique_ptr<RingBuffer<T>> ring_;  // set for bounds up to ring_limit
  SegmentedList<T> list_;                // used otherwise
  atomic<std::size_t> reserved_{0};  // places taken, for large bounds
};

/// The lock-free storages move an item after claiming its slot, when there
/// is no way back; a type whose move may throw gets a locked deque instead.
template <class T>
using FifoStorage = std::conditional_t<std::is_nothrow_move_constructible_v<T>,
                                       LockFreeFifoStorage<T>,
                                       LockedStorage<T, std::deque<T>, FifoPolicy>>;

}  // namespace spindle::detail
