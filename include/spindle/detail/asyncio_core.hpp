// SPDX-License-Identifier: MIT
// spindle/detail/asyncio_core.hpp - the event loop's parts: ready queue, timer heap, inbox, epoll.
#pragma once

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"

namespace spindle::asyncio::detail {

using Clock = std::chrono::steady_clock;

// Something the loop runs once it reaches it in the ready queue: a task's
// next step or a callback. Intrusive (the queue links the objects
// themselves), so scheduling never allocates. An object is in the queue at
// most once at a time.
struct Runnable {
  Runnable* next_ready = nullptr;
  virtual void run() = 0;
  // Taken off the queue without running (the loop closes).
  virtual void drop() noexcept = 0;
  // For debug-mode reports: "<Task name='...'>".
  virtual std::string describe() const = 0;

protected:
  ~Runnable() = default;
};

// FIFO of Runnables (Python's loop._ready deque). Loop thread only.
class ReadyQueue {
public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  void push(Runnable* r) noexcept {
    r->next_ready = nullptr;
    if (tail_)
      tail_->next_ready = r;
    else
      head_ = r;
    tail_ = r;
    ++size_;
  }
  Runnable* pop() noexcept {
    Runnable* r = head_;
    head_ = r->next_ready;
    if (!head_) tail_ = nullptr;
    r->next_ready = nullptr;
    --size_;
    return r;
  }

private:
  Runnable* head_ = nullptr;
  Runnable* tail_ = nullptr;
  std::size_t size_ = 0;
};

// A point in time the loop waits for. `fire()` runs when it is due, after
// the node left the heap.
struct TimerNode {
  static constexpr std::size_t not_queued = static_cast<std::size_t>(-1);
  Clock::time_point when{};
  std::uint64_t seq = 0;  // insertion order: equal deadlines fire FIFO
  std::size_t heap_index = not_queued;
  virtual void fire() = 0;
  bool queued() const noexcept { return heap_index != not_queued; }

protected:
  ~TimerNode() = default;
};

// A binary min-heap of timers that knows each node's position, so a
// cancelled timer leaves in O(log n) at once (Python instead leaves
// cancelled handles in its heap and sweeps them later). Loop thread only.
class TimerHeap {
public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  TimerNode* top() const noexcept { return heap_.front(); }

  void push(TimerNode* n) {
    n->seq = next_seq_++;
    heap_.push_back(n);
    n->heap_index = heap_.size() - 1;
    sift_up(n->heap_index);
  }

  void remove(TimerNode* n) noexcept {
    const std::size_t i = n->heap_index;
    n->heap_index = TimerNode::not_queued;
    TimerNode* last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    heap_[i] = last;
    last->heap_index = i;
    sift_up(i);
    sift_down(last->heap_index);
  }

  TimerNode* pop() noexcept {
    TimerNode* n = heap_.front();
    remove(n);
    return n;
  }

private:
  static bool earlier(const TimerNode* a, const TimerNode* b) noexcept {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
  }
  void place(std::size_t i, TimerNode* n) noexcept {
    heap_[i] = n;
    n->heap_index = i;
  }
  void sift_up(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!earlier(n, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, n);
  }
  void sift_down(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    const std::size_t size = heap_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && earlier(heap_[child + 1], heap_[child])) ++child;
      if (!earlier(heap_[child], n)) break;
      place(i, heap_[child]);
      i = child;
    }
    place(i, n);
  }

  std::vector<TimerNode*> heap_;
  std::uint64_t next_seq_ = 0;
};

[[noreturn]] inline void throw_errno(const char* what) { spindle::detail::throw_os_error(what, errno); }

// An fd closed on destruction.
class UniqueFd {
public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_;
};

// Work handed to a loop from other threads (call_soon_threadsafe,
// run_coroutine_threadsafe). Shared by the loop and by everything that may
// post to it, so a thread posting after the loop is gone gets a clear
// error instead of touching freed memory.
//
// Exactly once: a post either is accepted (and then runs, at the latest
// when the loop closes) or throws EventLoopClosed. Thread-safe.
class Inbox {
public:
  // A posted callback. Owned by the inbox until taken.
  struct Item {
    Item* next = nullptr;
    virtual void invoke() = 0;
    virtual ~Item() = default;
  };

  Inbox() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (wake_fd_.get() < 0) throw_errno("creating the event loop's eventfd");
  }
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;
  ~Inbox() { delete_list(take_all()); }

  int wake_fd() const noexcept { return wake_fd_.get(); }

  // Takes ownership of `item`; false (item deleted by the caller) if closed.
  bool post(Item* item) {
    bool was_empty;
    {
      std::lock_guard lock(m_);
      if (closed_) return false;
      was_empty = head_ == nullptr;
      item->next = nullptr;
      if (tail_)
        tail_->next = item;
      else
        head_ = item;
      tail_ = item;
      pending_.store(true, std::memory_order_release);
    }
    // One wake-up per batch: a post to a non-empty inbox finds the eventfd
    // already signalled (or the loop about to drain the batch it joins).
    if (was_empty) signal();
    return true;
  }

  // Cheap check the loop makes every iteration.
  bool pending() const noexcept { return pending_.load(std::memory_order_acquire); }

  // The items posted so far, in order (the caller owns them).
  Item* take_all() noexcept {
    std::lock_guard lock(m_);
    Item* all = head_;
    head_ = tail_ = nullptr;
    pending_.store(false, std::memory_order_relaxed);
    return all;
  }

  // Refuses every later post. Items already accepted stay to be taken.
  void close() noexcept {
    std::lock_guard lock(m_);
    closed_ = true;
  }
  bool closed() const noexcept {
    std::lock_guard lock(m_);
    return closed_;
  }

  // Wakes the loop's epoll_wait.
  void signal() const noexcept {
    const std::uint64_t one = 1;
    ssize_t r;
    do {
      r = ::write(wake_fd_.get(), &one, sizeof one);
    } while (r < 0 && errno == EINTR);
    // EAGAIN: the counter is saturated, the loop is woken anyway.
  }
  // Clears the eventfd after a wake-up.
  void clear_signal() const noexcept {
    std::uint64_t value;
    ssize_t r;
    do {
      r = ::read(wake_fd_.get(), &value, sizeof value);
    } while (r < 0 && errno == EINTR);
  }

  static void delete_list(Item* item) noexcept {
    while (item) delete std::exchange(item, item->next);
  }

private:
  mutable std::mutex m_;
  Item* head_ = nullptr;  // guarded by m_
  Item* tail_ = nullptr;  // guarded by m_
  bool closed_ = false;   // guarded by m_
  std::atomic<bool> pending_{false};
  UniqueFd wake_fd_;
};

// Waits in epoll_wait for at most `timeout` (none: forever), rounding a
// timeout up to whole milliseconds so a timer never fires early.
inline int epoll_wait_for(int epfd, epoll_event* events, int max,
                          std::optional<Clock::duration> timeout) {
  int ms = -1;
  if (timeout) {
    if (*timeout <= Clock::duration::zero()) {
      ms = 0;
    } else {
      const auto whole = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
      ms = whole > 86'400'000 ? 86'400'000 : static_cast<int>(whole);
    }
  }
  for (;;) {
    const int n = ::epoll_wait(epfd, events, max, ms);
    if (n >= 0) return n;
    if (errno != EINTR) throw_errno("epoll_wait in the event loop");
    if (ms != 0) return 0;  // a signal: go round the loop and recompute the timeout
  }
}

}  // namespace spindle::asyncio::detail
