// SPDX-License-Identifier: MIT
// spindle/detail/ring_buffer.hpp - bounded lock-free MPMC ring with close.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>

#include "queue_storage.hpp"
#include "wait.hpp"

namespace spindle::detail {

/// A bounded multi-producer multi-consumer ring buffer (Vyukov's sequence
/// stamps, with a close bit in the tail as in crossbeam's array channel).
///
/// `head_` and `tail_` each hold {lap, close bit (tail only), index}. Slot i
/// carries a stamp: equal to the tail value that may write it, or to that
/// value + 1 once written and readable. Claiming a slot is one CAS on
/// head_/tail_; the stamp store (release) publishes the value to the reader
/// whose stamp load (acquire) sees it.
///
/// Close sets the bit in tail_ with one fetch_or, so every later push fails
/// its CAS and sees the bit, while a push that claimed its slot before the
/// close still completes: nothing is lost and nothing lands after close.
/// Thread-safe. Never blocks; may spin while another thread completes a
/// push or pop it has claimed.
template <class T>
class RingBuffer {
public:
  explicit RingBuffer(std::size_t capacity)
      : capacity_(capacity), mark_bit_(std::bit_ceil(capacity + 1)), one_lap_(mark_bit_ * 2),
        slots_(std::make_unique<Slot[]>(capacity)) {
    for (std::size_t i = 0; i < capacity_; ++i) slots_[i].stamp.store(i, std::memory_order_relaxed);
  }

  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;

  ~RingBuffer() {
    // No other thread can touch the ring now: destroy what is left.
    const std::size_t head = head_.load(std::memory_order_relaxed);
    const std::size_t first = head & (mark_bit_ - 1);
    const std::size_t count = size();
    for (std::size_t i = 0; i < count; ++i) {
      std::size_t index = first + i;
      if (index >= capacity_) index -= capacity_;
      slots_[index].value()->~T();
    }
  }

  PushResult try_push(T& item) {
    Backoff backoff;
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (tail & mark_bit_) return closed_for_push();
      const std::size_t index = tail & (mark_bit_ - 1);
      const std::size_t lap = tail & ~(one_lap_ - 1);
      const std::size_t new_tail = index + 1 < capacity_ ? tail + 1 : lap + one_lap_;
      Slot& slot = slots_[index];
      const std::size_t stamp = slot.stamp.load(std::memory_order_acquire);
      if (tail == stamp) {
        // The slot is free in this lap: claim it.
        if (tail_.compare_exchange_weak(tail, new_tail, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          ::new (slot.storage) T(std::move(item));
          slot.stamp.store(tail + 1, std::memory_order_release);
          return PushResult::ok;
        }
        backoff.spin();
      } else if (stamp + one_lap_ == tail + 1) {
        // The slot still holds last lap's value: full, unless a pop is just
        // completing. The fence orders our tail read before the head read.
        atomic_thread_fence(std::memory_order_seq_cst);
        const std::size_t head = head_.load(std::memory_order_relaxed);
        if (head + one_lap_ == tail) return PushResult::full;
        backoff.spin();
        tail = tail_.load(std::memory_order_relaxed);
      } else {
        // Another producer moved on; reload.
        backoff.spin();
        tail = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  PopResult try_pop(std::optional<T>& out) {
    Backoff backoff;
    std::size_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      const std::size_t index = head & (mark_bit_ - 1);
      const std::size_t lap = head & ~(one_lap_ - 1);
      Slot& slot = slots_[index];
      const std::size_t stamp = slot.stamp.load(std::memory_order_acquire);
      if (head + 1 == stamp) {
        // Written and unread: claim it.
        const std::size_t new_head = index + 1 < capacity_ ? head + 1 : lap + one_lap_;
        if (head_.compare_exchange_weak(head, new_head, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          T* value = slot.value();
          out.emplace(std::move(*value));
          value->~T();
          slot.stamp.store(head + one_lap_, std::memory_order_release);
          return PopResult::ok;
        }
        backoff.spin();
      } else if (stamp == head) {
        // Not written yet: empty, unless a push is just completing. The
        // fence orders our head read before the tail read; acquire makes a
        // close() we see happen-before the `closed` we return.
        atomic_thread_fence(std::memory_order_seq_cst);
        const std::size_t tail = tail_.load(std::memory_order_acquire);
        if ((tail & ~mark_bit_) == head)
          return (tail & mark_bit_) ? PopResult::closed : PopResult::empty;
        backoff.spin();
        head = head_.load(std::memory_order_relaxed);
      } else {
        backoff.spin();
        head = head_.load(std::memory_order_relaxed);
      }
    }
  }

  bool close() noexcept {
    return (tail_.fetch_or(mark_bit_, std::memory_order_seq_cst) & mark_bit_) == 0;
  }

  bool is_closed() const noexcept {
    return (tail_.load(std::memory_order_seq_cst) & mark_bit_) != 0;
  }

  std::size_t size() const noexcept {
    for (;;) {
      const std::size_t tail = tail_.load(std::memory_order_seq_cst);
      const std::size_t head = head_.load(std::memory_order_seq_cst);
      if (tail_.load(std::memory_order_seq_cst) != tail) continue;  // a consistent pair
      const std::size_t head_index = head & (mark_bit_ - 1);
      const std::size_t tail_index = tail & (mark_bit_ - 1);
      if (head_index < tail_index) return tail_index - head_index;
      if (head_index > tail_index) return capacity_ - head_index + tail_index;
      return (tail & ~mark_bit_) == head ? 0 : capacity_;
    }
  }

  std::size_t capacity() const noexcept { return capacity_; }

  /// How many pushes have claimed a slot, ever (laps times capacity plus
  /// the index). A claimed item is counted before any pop can see it.
  std::size_t pushed() const noexcept {
    const std::size_t tail = tail_.load(std::memory_order_seq_cst) & ~mark_bit_;
    return (tail / one_lap_) * capacity_ + (tail & (mark_bit_ - 1));
  }

private:
  // The close bit was seen in a relaxed load: an acquire load makes the
  // close() happen-before the QueueClosed the caller is about to throw.
  PushResult closed_for_push() const noexcept {
    (void)tail_.load(std::memory_order_acquire);
    return PushResult::closed;
  }

  struct Slot {
    atomic<std::size_t> stamp{0};
    alignas(T) unsigned char storage[sizeof(T)];
    T* value() noexcept { return std::launder(reinterpret_cast<T*>(storage)); }
  };

  const std::size_t capacity_;
  const std::size_t mark_bit_;  // the close bit; below it, the index
  const std::size_t one_lap_;   // above it, the lap count
  std::unique_ptr<Slot[]> slots_;
  // Producers and consumers hammer different counters: keep them apart.
  alignas(64) atomic<std::size_t> head_{0};
  alignas(64) atomic<std::size_t> tail_{0};
};

}  // namespace spindle::detail
