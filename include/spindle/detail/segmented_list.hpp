// SPDX-License-Identifier: MIT
// spindle/detail/segmented_list.hpp - unbounded lock-free MPMC queue with close.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>

#include "queue_storage.hpp"
#include "wait.hpp"

namespace spindle::detail {

/// An unbounded multi-producer multi-consumer queue: a linked list of blocks
/// of 31 slots (the design of crossbeam's list channel).
///
/// `head_.index` and `tail_.index` count slots, shifted left by one bit. In
/// the tail the low bit is the close bit; in the head it records that the
/// head block already has a successor (so pops need not look at the tail).
/// Index values whose slot offset is 31 are never used: they mark "a new
/// block is being installed", and threads that see one wait for it.
///
/// A push claims a slot with one CAS on the tail index, writes the value and
/// sets the slot's WRITE bit (release). A pop claims with one CAS on the head
/// index, waits for WRITE (acquire), moves the value out and sets READ. A
/// block is freed by whoever finishes last with it: the reader of the last
/// slot walks the others, setting DESTROY on any not yet READ, and a reader
/// that finds DESTROY set continues the walk. No hazard pointers needed.
///
/// Close sets the tail's close bit (fetch_or), so every later push fails its
/// CAS and sees it, while pushes that claimed a slot before still complete.
/// Thread-safe. Never blocks; may spin while another thread completes a
/// push it has claimed or installs the next block.
template <class T>
class SegmentedList {
public:
  SegmentedList() = default;
  SegmentedList(const SegmentedList&) = delete;
  SegmentedList& operator=(const SegmentedList&) = delete;

  ~SegmentedList() {
    // No other thread can touch the list now: destroy values, free blocks.
    std::size_t head = head_.index.load(std::memory_order_relaxed) & ~low_bits;
    const std::size_t tail = tail_.index.load(std::memory_order_relaxed) & ~low_bits;
    Block* block = head_.block.load(std::memory_order_relaxed);
    while (head != tail) {
      const std::size_t offset = (head >> shift) % lap;
      if (offset < block_capacity) {
        block->cells[offset].value()->~T();
      } else {
        Block* next = block->next.load(std::memory_order_relaxed);
        delete block;
        block = next;
      }
      head += 1 << shift;
    }
    delete block;
  }

  PushResult try_push(T& item) {
    Backoff backoff;
    std::size_t tail = tail_.index.load(std::memory_order_acquire);
    Block* block = tail_.block.load(std::memory_order_acquire);
    std::unique_ptr<Block> next_block;
    for (;;) {
      if (tail & mark_bit) return PushResult::closed;
      const std::size_t offset = (tail >> shift) % lap;
      if (offset == block_capacity) {
        // Another producer is installing the next block.
        backoff.spin();
        tail = tail_.index.load(std::memory_order_acquire);
        block = tail_.block.load(std::memory_order_acquire);
        continue;
      }
      // About to fill the last slot: allocate the successor before the CAS
      // so that the window in which others wait for it stays short.
      if (offset + 1 == block_capacity && !next_block) next_block = std::make_unique<Block>();
      if (block == nullptr) {
        // The very first push installs the first block.
        auto first = std::make_unique<Block>();
        Block* expected = nullptr;
        if (tail_.block.compare_exchange_strong(expected, first.get(), std::memory_order_release,
                                                std::memory_order_relaxed)) {
          block = first.release();
          head_.block.store(block, std::memory_order_release);
        } else {
          next_block = std::move(first);
          tail = tail_.index.load(std::memory_order_acquire);
          block = tail_.block.load(std::memory_order_acquire);
          continue;
        }
      }
      const std::size_t new_tail = tail + (1 << shift);
      if (tail_.index.compare_exchange_weak(tail, new_tail, std::memory_order_seq_cst,
                                            std::memory_order_acquire)) {
        if (offset + 1 == block_capacity) {
          // We took the block's last slot: install the next block.
          Block* next = next_block.release();
          tail_.block.store(next, std::memory_order_release);
          tail_.index.fetch_add(1 << shift, std::memory_order_release);
          block->next.store(next, std::memory_order_release);
        }
        Slot& slot = block->cells[offset];
        ::new (slot.storage) T(std::move(item));
        slot.state.fetch_or(write_bit, std::memory_order_release);
        return PushResult::ok;
      }
      block = tail_.block.load(std::memory_order_acquire);
      backoff.spin();
    }
  }

  PopResult try_pop(std::optional<T>& out) {
    Backoff backoff;
    std::size_t head = head_.index.load(std::memory_order_acquire);
    Block* block = head_.block.load(std::memory_order_acquire);
    for (;;) {
      const std::size_t offset = (head >> shift) % lap;
      if (offset == block_capacity) {
        // Another consumer is moving the head to the next block.
        backoff.spin();
        head = head_.index.load(std::memory_order_acquire);
        block = head_.block.load(std::memory_order_acquire);
        continue;
      }
      std::size_t new_head = head + (1 << shift);
      if ((new_head & mark_bit) == 0) {
        // Not known to have a successor block: compare with the tail. The
        // fence orders our head read before the tail read (see push's CAS);
        // acquire makes a close() we see happen-before the `closed` we return.
        atomic_thread_fence(std::memory_order_seq_cst);
        const std::size_t tail = tail_.index.load(std::memory_order_acquire);
        if ((head >> shift) == (tail >> shift))
          return (tail & mark_bit) ? PopResult::closed : PopResult::empty;
        if ((head >> shift) / lap != (tail >> shift) / lap) new_head |= mark_bit;
      }
      if (block == nullptr) {
        // The first push claimed its slot but has not installed the block yet.
        backoff.spin();
        head = head_.index.load(std::memory_order_acquire);
        block = head_.block.load(std::memory_order_acquire);
        continue;
      }
      if (head_.index.compare_exchange_weak(head, new_head, std::memory_order_seq_cst,
                                            std::memory_order_acquire)) {
        if (offset + 1 == block_capacity) {
          // We took the block's last slot: move the head to the next block.
          Block* next = block->wait_next();
          std::size_t next_index = (new_head & ~mark_bit) + (1 << shift);
          if (next->next.load(std::memory_order_relaxed) != nullptr) next_index |= mark_bit;
          head_.block.store(next, std::memory_order_release);
          head_.index.store(next_index, std::memory_order_release);
        }
        Slot& slot = block->cells[offset];
        slot.wait_write();
        T* value = slot.value();
        out.emplace(std::move(*value));
        value->~T();
        // Whoever is last with the block frees it (see the class comment).
        if (offset + 1 == block_capacity)
          Block::destroy(block, 0);
        else if (slot.state.fetch_or(read_bit, std::memory_order_acq_rel) & destroy_bit)
          Block::destroy(block, offset + 1);
        return PopResult::ok;
      }
      block = head_.block.load(std::memory_order_acquire);
      backoff.spin();
    }
  }

  bool close() noexcept {
    return (tail_.index.fetch_or(mark_bit, std::memory_order_seq_cst) & mark_bit) == 0;
  }

  bool is_closed() const noexcept {
    return (tail_.index.load(std::memory_order_seq_cst) & mark_bit) != 0;
  }

  std::size_t size() const noexcept {
    for (;;) {
      std::size_t tail = tail_.index.load(std::memory_order_seq_cst);
      std::size_t head = head_.index.load(std::memory_order_seq_cst);
      if (tail_.index.load(std::memory_order_seq_cst) != tail) continue;  // a consistent pair
      tail &= ~low_bits;
      head &= ~low_bits;
      // An index at the unused last offset stands for the next block's first.
      if (((tail >> shift) & (lap - 1)) == lap - 1) tail += 1 << shift;
      if (((head >> shift) & (lap - 1)) == lap - 1) head += 1 << shift;
      // Rebase both to the head's block so that the division below counts
      // only the unused offsets between them.
      const std::size_t base = ((head >> shift) / lap) * lap;
      tail = (tail >> shift) - base;
      head = (head >> shift) - base;
      return tail - head - tail / lap;
    }
  }

  std::size_t capacity() const noexcept { return 0; }

  /// How many pushes have claimed a slot, ever: the tail's slot count less
  /// the one unused offset per block passed. Counted before a pop can see it.
  std::size_t pushed() const noexcept {
    const std::size_t used = tail_.index.load(std::memory_order_seq_cst) >> shift;
    return used - used / lap;
  }

private:
  static constexpr std::size_t write_bit = 1;
  static constexpr std::size_t read_bit = 2;
  static constexpr std::size_t destroy_bit = 4;
  static constexpr std::size_t lap = 32;
  static constexpr std::size_t block_capacity = lap - 1;
  static constexpr std::size_t shift = 1;
  static constexpr std::size_t mark_bit = 1;
  static constexpr std::size_t low_bits = (std::size_t{1} << shift) - 1;

  struct Slot {
    alignas(T) unsigned char storage[sizeof(T)];
    atomic<std::size_t> state{0};

    T* value() noexcept { return std::launder(reinterpret_cast<T*>(storage)); }

    void wait_write() const noexcept {
      Backoff backoff;
      while ((state.load(std::memory_order_acquire) & write_bit) == 0)
        if (!backoff.step()) yield_now();
    }
  };

  struct Block {
    atomic<Block*> next{nullptr};
    Slot cells[block_capacity];

    Block* wait_next() const noexcept {
      Backoff backoff;
      for (;;) {
        if (Block* n = next.load(std::memory_order_acquire)) return n;
        if (!backoff.step()) yield_now();
      }
    }

    // Frees `block` unless a reader of one of the slots from `start` on has
    // not finished yet; that reader then continues from its own slot.
    static void destroy(Block* block, std::size_t start) noexcept {
      // The last slot need not be marked: its reader started this walk.
      for (std::size_t i = start; i + 1 < block_capacity; ++i) {
        Slot& slot = block->cells[i];
        if ((slot.state.load(std::memory_order_acquire) & read_bit) == 0 &&
            (slot.state.fetch_or(destroy_bit, std::memory_order_acq_rel) & read_bit) == 0)
          return;
      }
      delete block;
    }
  };

  struct Position {
    atomic<std::size_t> index{0};
    atomic<Block*> block{nullptr};
  };

  // Producers and consumers hammer different positions: keep them apart.
  alignas(64) Position head_;
  alignas(64) Position tail_;
};

}  // namespace spindle::detail
