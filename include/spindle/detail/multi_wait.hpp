// SPDX-License-Identifier: MIT
// spindle/detail/multi_wait.hpp - waits on many futures at once (as_completed, wait).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "future_state.hpp"
#include "spin_lock.hpp"
#include "wait.hpp"

namespace spindle::detail {

/// Collects the indices of futures in the order they complete.
///
/// One waiter node per watched future; a completing thread appends the
/// node's index under a spin lock and wakes the single consumer only if it
/// sleeps. Each completion costs O(1), so watching n futures is O(n)
/// overall: no polling.
///
/// Single consumer (the thread that owns this object); any number of
/// completing threads. The destructor unlinks every node that has not fired,
/// and remove_waiter guarantees no notification is still running after it.
class MultiWait {
public:
  /// Room for `n` futures. `deadline` is the one every `pop` will be given:
  /// on an executor's worker, an untimed wait runs the watched tasks of its
  /// own pool that no worker has started (see StateBase::try_run_here); a
  /// timed one only blocks.
  MultiWait(std::size_t n, const std::optional<Clock::time_point>& deadline)
      : helper_(deadline ? nullptr : tl_helper),
        nodes_(std::make_unique<Node[]>(n)),
        ready_(std::make_unique<std::uint32_t[]>(n)) {}
  MultiWait(const MultiWait&) = delete;
  MultiWait& operator=(const MultiWait&) = delete;
  ~MultiWait() {
    for (std::size_t i = 0; i < watched_; ++i) {
      Node& node = nodes_[i];
      node.state->remove_waiter(node);
      node.state->release();
    }
  }

  /// Starts watching `state` under `index`. Returns false if it is already
  /// done (nothing is watched then; the caller treats it as completed).
  bool watch(StateBase& state, std::uint32_t index) noexcept {
    Node& node = nodes_[watched_];
    node.owner = this;
    node.index = index;
    node.state = &state;
    node.notify = &MultiWait::on_done;
    if (!state.add_waiter(node)) return false;
    state.add_ref();  // a watched state stays alive until we unlink from it
    ++watched_;
    return true;
  }

  /// Number of futures watched so far.
  std::size_t watched() const noexcept { return watched_; }

  /// The next completed index, or nothing if `deadline` passed first.
  /// Throws: `RecursionError` (see check_inline_depth).
  std::optional<std::uint32_t> pop(std::optional<Clock::time_point> deadline) {
    Backoff backoff;
    for (;;) {
      const std::uint32_t published = published_.load(std::memory_order_acquire);
      if (read_ < published) return ready_[read_++];
      if (deadline && Clock::now() >= *deadline) return std::nullopt;
      if (helper_ != nullptr) {
        // On an executor's worker, untimed: run a watched task of the pool
        // that nobody started, or wait where the pool can wake us to run
        // queued work if every worker waits (see should_help).
        if (run_one_here()) continue;
        check_inline_depth();
        const InlineDepth depth;
        helper_->help_until(
            [](const void* self) {
              auto* me = static_cast<const MultiWait*>(self);
              return me->read_ < me->published_.load(std::memory_order_acquire);
            },
            this);
        continue;
      }
      if (backoff.step()) continue;
      // Dekker with on_done: announce the sleeper, then re-check the count.
      sleeping_.store(1, std::memory_order_seq_cst);
      if (published_.load(std::memory_order_seq_cst) == published)
        futex_wait(published_, published, deadline);
      sleeping_.store(0, std::memory_order_relaxed);
    }
  }

private:
  // Runs one watched task that no worker has started, here; false if none
  // is left. Each node is looked at once: a task that is not pending now
  // never will be again, so the scan costs O(n) over the whole wait.
  bool run_one_here() {
    while (run_next_ < watched_)
      if (nodes_[run_next_++].state->try_run_here()) return true;
    return false;
  }

  struct Node : WaitNode {
    MultiWait* owner = nullptr;
    StateBase* state = nullptr;
    std::uint32_t index = 0;
  };

  static void on_done(WaitNode* w, StateBase&) noexcept {
    auto* node = static_cast<Node*>(w);
    MultiWait& self = *node->owner;
    {
      std::lock_guard lock(self.lock_);
      self.ready_[self.written_] = node->index;
      ++self.written_;
      self.published_.store(self.written_, std::memory_order_seq_cst);
    }
    if (self.helper_ != nullptr)
      self.helper_->wake();
    else if (self.sleeping_.load(std::memory_order_seq_cst) != 0)
      futex_wake(self.published_, 1);
  }

  // The consumer's executor worker when it waits without a deadline (see
  // the constructor), else null.
  Helper* const helper_;
  std::size_t run_next_ = 0;  // consumer only: next node run_one_here looks at
  std::unique_ptr<Node[]> nodes_;
  std::unique_ptr<std::uint32_t[]> ready_;  // slots [0, written_) guarded by lock_
  std::size_t watched_ = 0;                 // consumer only
  std::uint32_t read_ = 0;                  // consumer only
  SpinLock lock_;
  std::uint32_t written_ = 0;  // guarded by lock_
  std::atomic<std::uint32_t> published_{0};
  std::atomic<std::uint32_t> sleeping_{0};
};

}  // namespace spindle::detail
