// SPDX-License-Identifier: MIT
// spindle/detail/block_cache.hpp - big memory blocks a pool keeps for its next map.
#pragma once

#include <cstddef>
#include <mutex>
#include <new>

#include "spin_lock.hpp"

namespace spindle::detail {

/// A few large blocks kept between uses, for ThreadPoolExecutor::map's
/// results and input copies. Why: glibc returns a freed block of a few
/// hundred KiB to the kernel (heap trimming or munmap), so a program that
/// maps over 100,000 items again and again page-faults ~400 pages back in
/// per map, which cost more than the calls themselves (measured with
/// `perf stat`: 162 faults and ~0.4 ms of system time per map).
///
/// Blocks under `min_bytes` are not cached (malloc keeps those). At most
/// `max_blocks` blocks and `max_bytes` in all are kept; a cached block is
/// handed out only for a request of at least a quarter of its size.
/// Thread-safe; never blocks but on a short spin lock.
class BlockCache {
public:
  static constexpr std::size_t min_bytes = std::size_t{64} << 10;
  static constexpr std::size_t max_bytes = std::size_t{64} << 20;
  static constexpr std::size_t max_blocks = 4;
  static constexpr std::size_t alignment = 64;

  struct Block {
    void* p = nullptr;
    std::size_t size = 0;
  };

  BlockCache() = default;
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;
  ~BlockCache() {
    for (Block& b : blocks_) release(b);
  }

  /// A block of at least `bytes` bytes, 64-byte aligned. Throws: bad_alloc.
  Block take(std::size_t bytes) {
    if (bytes == 0) return {};
    if (bytes >= min_bytes) {
      std::lock_guard lock(lock_);
      Block* best = nullptr;
      for (Block& b : blocks_)
        if (b.p != nullptr && b.size >= bytes && b.size / 4 <= bytes &&
            (best == nullptr || b.size < best->size))
          best = &b;
      if (best != nullptr) {
        const Block out = *best;
        *best = {};
        kept_ -= out.size;
        return out;
      }
      // Round up, so that maps of about the same size reuse each other's.
      bytes = (bytes + min_bytes - 1) / min_bytes * min_bytes;
    }
    return {::operator new(bytes, std::align_val_t{alignment}), bytes};
  }

  /// Takes `b` back (from `take`), keeping it if there is room.
  void give(Block b) noexcept {
    if (b.p == nullptr) return;
    if (b.size >= min_bytes && b.size <= max_bytes) {
      std::lock_guard lock(lock_);
      Block* slot = nullptr;
      for (Block& s : blocks_)
        if (s.p == nullptr) slot = &s;
      // Full: make room by dropping smaller blocks (freed after the lock).
      Block* smallest = nullptr;
      if (slot == nullptr) {
        for (Block& s : blocks_)
          if (smallest == nullptr || s.size < smallest->size) smallest = &s;
        if (smallest->size < b.size) slot = smallest;
      }
      if (slot != nullptr && kept_ - slot->size + b.size <= max_bytes) {
        const Block old = *slot;
        kept_ = kept_ - old.size + b.size;
        *slot = b;
        b = old;
      }
    }
    release(b);
  }

private:
  static void release(Block& b) noexcept {
    // Unsized: clang enables sized deallocation only with -fsized-deallocation.
    if (b.p != nullptr) ::operator delete(b.p, std::align_val_t{alignment});
    b = {};
  }

  SpinLock lock_;
  Block blocks_[max_blocks];  // guarded by lock_; p == nullptr: empty
  std::size_t kept_ = 0;      // guarded by lock_; bytes in blocks_
};

}  // namespace spindle::detail
