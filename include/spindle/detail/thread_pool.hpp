// SPDX-License-Identifier: MIT
// spindle/detail/thread_pool.hpp - the worker threads and queues behind ThreadPoolExecutor.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <pthread.h>

#include "../errors.hpp"
#include "future_state.hpp"
#include "spin_lock.hpp"
#include "task_queue.hpp"
#include "wait.hpp"

namespace spindle::detail {

class PoolCore;

/// Identifies the current thread as worker `index` of `core`; also the
/// Helper that lets a worker run pending work while it waits on a future.
class WorkerContext final : public Helper {
public:
  WorkerContext(PoolCore& core, std::size_t index) noexcept : core(core), index(index) {}
  bool help_until(bool (*ready)(const void*), const void* ctx,
                  std::optional<Clock::time_point> deadline) noexcept override;
  void wake() noexcept override;

  PoolCore& core;
  const std::size_t index;
};

/// The worker of the current thread, if it is one.
inline thread_local WorkerContext* tl_worker = nullptr;

/// The pool: a shared injection queue that outside threads submit to, one
/// queue per worker that its own submits (nested work) go to, and workers
/// that move work from the shared queue to their own in batches and steal
/// from each other when idle.
///
/// Why per-worker queues at all: a worker takes up to 32 tasks from the
/// shared queue under one lock, which is what makes small tasks cheap; the
/// batch sits in a queue other workers can steal from, so a long task at
/// the head of a batch never holds the rest hostage while workers idle.
///
/// Sleeping: workers spin briefly, then sleep on `work_ec_`. A submit
/// notifies it, which costs a fence and a load — no system call — while
/// every worker is busy. `pending_` counts queued tasks anywhere; it is the
/// condition workers sleep on.
///
/// Lock order: `global_lock_` before a slot's `lock`; never two slot locks.
class PoolCore {
public:
  PoolCore(std::size_t max_workers, std::function<void()> initializer, std::string name_prefix)
      : max_workers_(max_workers), slots_(std::make_unique<Slot[]>(max_workers)),
        initializer_(std::move(initializer)), name_prefix_(std::move(name_prefix)) {}
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  ~PoolCore() { shutdown(true, false); }

  std::size_t max_workers() const noexcept { return max_workers_; }

  /// Queues `task` (holding the queue's reference) and makes sure a worker
  /// will run it. Throws ExecutorShutdown/BrokenExecutor with nothing
  /// queued, so the caller still owns the task.
  void push(StateBase* task) {
    unfinished_.fetch_add(1, std::memory_order_relaxed);
    WorkerContext* w = tl_worker;
    if (w != nullptr && &w->core == this) {
      // Nested submit from one of our workers: its own queue, no shared lock.
      Slot& slot = slots_[w->index];
      std::lock_guard lock(slot.lock);
      if (stopping_.load(std::memory_order_acquire)) {
        undo_push();
        throw_closed();
      }
      slot.local.push(task);
      slot.hint.store(slot.local.size(), std::memory_order_relaxed);
      pending_.fetch_add(1, std::memory_order_seq_cst);
    } else {
      std::lock_guard lock(global_lock_);
      if (closed_) {
        undo_push();
        throw_closed();
      }
      global_.push(task);
      // Inside the lock: a drain that takes this task decrements after us.
      pending_.fetch_add(1, std::memory_order_seq_cst);
    }
    work_ec_.notify_one();
    if (started_.load(std::memory_order_acquire) < max_workers_ &&
        idle_.load(std::memory_order_relaxed) == 0)
      spawn_worker();
  }

  /// See ThreadPoolExecutor::shutdown.
  void shutdown(bool wait, bool cancel_futures) {
    if (wait && owns_current_thread())
      throw std::logic_error(
          "ThreadPoolExecutor::shutdown(wait=true) called from one of the pool's own workers "
          "would wait for itself; use shutdown(false)");
    TaskList drained;
    {
      std::lock_guard lock(global_lock_);
      closed_ = true;
      // Set under global_lock_ so that a push that saw it unset is already
      // queued (and counted) when a drain below looks.
      stopping_.store(true, std::memory_order_seq_cst);
      if (cancel_futures) drained = std::move(global_);
    }
    if (cancel_futures) {
      for (std::size_t i = 0; i < max_workers_; ++i) {
        std::lock_guard lock(slots_[i].lock);
        drained.append(std::move(slots_[i].local));
        slots_[i].hint.store(0, std::memory_order_relaxed);
      }
      while (StateBase* t = drained.pop()) {
        t->cancel();
        discard(t);
      }
    }
    work_ec_.notify_all();
    std::lock_guard lock(threads_mutex_);
    // Work accepted before the close must still run even if no worker was
    // ever started (workers start lazily) or starting one failed.
    if (started_.load(std::memory_order_relaxed) == 0 &&
        pending_.load(std::memory_order_acquire) > 0)
      spawn_locked();
    if (wait && !joined_) {
      const std::size_t n = started_.load(std::memory_order_relaxed);
      for (std::size_t i = 0; i < n; ++i)
        if (slots_[i].thread.joinable()) slots_[i].thread.join();
      joined_ = true;
    }
  }

  /// Blocks until every submitted task has finished (or was cancelled and
  /// dropped), or until `deadline`. True if idle.
  bool wait_idle(std::optional<Clock::time_point> deadline) {
    if (owns_current_thread())
      throw std::logic_error(
          "ThreadPoolExecutor::wait_for_all() called from one of the pool's own workers would "
          "wait for itself");
    Backoff backoff;
    for (;;) {
      if (unfinished_.load(std::memory_order_acquire) == 0) return true;
      if (deadline && Clock::now() >= *deadline) return false;
      if (backoff.step()) continue;
      const auto key = idle_ec_.prepare_wait();
      if (unfinished_.load(std::memory_order_acquire) == 0) {
        idle_ec_.cancel_wait();
        return true;
      }
      idle_ec_.wait(key, deadline);
    }
  }

  bool owns_current_thread() const noexcept {
    return tl_worker != nullptr && &tl_worker->core == this;
  }

  /// One task from this worker's queue, another worker's queue (taking
  /// half) or the shared queue (taking a batch), or null.
  ///
  /// Why steal before taking from the shared queue: tasks in workers' queues
  /// were taken from it earlier, so they are older. Taking the oldest first
  /// keeps tasks starting in about submission order, as with Python's single
  /// queue: with N workers, the first N tasks submitted run at once even if
  /// they block (e.g. on each other, or on an Event).
  StateBase* find_work(std::size_t self) noexcept {
    Slot& me = slots_[self];
    StateBase* task = nullptr;
    if (me.hint.load(std::memory_order_relaxed) != 0) {
      std::lock_guard lock(me.lock);
      task = me.local.pop();
      me.hint.store(me.local.size(), std::memory_order_relaxed);
    }
    if (task == nullptr && pending_.load(std::memory_order_acquire) > 0) task = steal(self);
    if (task == nullptr && pending_.load(std::memory_order_acquire) > 0)
      task = take_from_global(me);
    if (task != nullptr) pending_.fetch_sub(1, std::memory_order_relaxed);
    return task;
  }

  /// Runs a task taken by find_work.
  void run(StateBase* task) noexcept {
    task->execute();
    finished_one();
  }

  std::atomic<std::size_t> pending_{0};
  EventCount work_ec_;

private:
  struct alignas(64) Slot {
    SpinLock lock;
    TaskList local;  // guarded by lock
    // local.size(), stored under lock; read without it as a hint, so idle
    // workers skip empty queues without taking their locks.
    std::atomic<std::size_t> hint{0};
    std::thread thread;  // guarded by PoolCore::threads_mutex_
  };

  [[noreturn]] void throw_closed() {
    if (broken_.load(std::memory_order_acquire))
      throw BrokenExecutor(
          "a thread initializer failed or no worker could be started; the pool is not usable "
          "anymore");
    throw ExecutorShutdown();
  }

  void undo_push() noexcept { unfinished_.fetch_sub(1, std::memory_order_relaxed); }

  void finished_one() noexcept {
    // acq_rel: wait_idle's acquire load of 0 then sees every task's effects.
    if (unfinished_.fetch_sub(1, std::memory_order_acq_rel) == 1) idle_ec_.notify_all();
  }

  // A queued task that will not run: drop the queue's reference.
  void discard(StateBase* t) noexcept {
    pending_.fetch_sub(1, std::memory_order_relaxed);
    t->execute();  // cancelled or failed already, so this only frees the callable
    finished_one();
  }

  StateBase* take_from_global(Slot& me) noexcept {
    std::lock_guard lock(global_lock_);
    const std::size_t queued = global_.size();
    if (queued == 0) return nullptr;
    // Half a fair share for each worker, at most 32: big enough to amortize
    // the shared lock when much is queued, one task when little is (so a
    // worker never sits on work an idle worker could start).
    const std::size_t workers = std::max<std::size_t>(1, started_.load(std::memory_order_relaxed));
    const std::size_t n = std::clamp<std::size_t>(queued / (2 * workers), 1, 32);
    TaskList batch = global_.pop_front(n);
    StateBase* first = batch.pop();
    if (!batch.empty()) {
      std::lock_guard slot_lock(me.lock);  // order: global_lock_, then a slot lock
      me.local.append(std::move(batch));
      me.hint.store(me.local.size(), std::memory_order_relaxed);
    }
    return first;
  }

  StateBase* steal(std::size_t self) noexcept {
    const std::size_t n = started_.load(std::memory_order_acquire);
    for (std::size_t k = 1; k < n; ++k) {
      Slot& victim = slots_[(self + k) % n];
      if (victim.hint.load(std::memory_order_relaxed) == 0) continue;
      TaskList loot;
      {
        std::lock_guard lock(victim.lock);
        loot = victim.local.pop_front((victim.local.size() + 1) / 2);
        victim.hint.store(victim.local.size(), std::memory_order_relaxed);
      }
      StateBase* first = loot.pop();
      if (first == nullptr) continue;
      if (!loot.empty()) {
        Slot& me = slots_[self];
        std::lock_guard lock(me.lock);
        me.local.append(std::move(loot));
        me.hint.store(me.local.size(), std::memory_order_relaxed);
      }
      return first;
    }
    return nullptr;
  }

  void spawn_worker() noexcept {
    std::lock_guard lock(threads_mutex_);
    if (joined_ || started_.load(std::memory_order_relaxed) >= max_workers_) return;
    spawn_locked();
  }

  // Caller holds threads_mutex_.
  void spawn_locked() noexcept {
    const std::size_t index = started_.load(std::memory_order_relaxed);
    if (index >= max_workers_) return;
    try {
      slots_[index].thread = std::thread([this, index] { worker_main(index); });
    } catch (...) {
      // With no worker at all nobody would ever run the queued work: fail
      // it (its futures get BrokenExecutor) instead of leaving it pending.
      if (index == 0) break_pool(std::current_exception());
      return;
    }
    started_.store(index + 1, std::memory_order_release);
  }

  // The pool cannot run work: close it and fail everything queued, as
  // Python's BrokenThreadPool does after an initializer raised.
  void break_pool(std::exception_ptr cause) noexcept {
    std::exception_ptr error;
    try {
      std::string why = "unknown error";
      try {
        std::rethrow_exception(cause);
      } catch (const std::exception& e) {
        why = e.what();
      } catch (...) {
      }
      error = std::make_exception_ptr(BrokenExecutor(
          "a thread initializer failed or no worker could be started (" + why +
          "); the pool is not usable anymore"));
    } catch (...) {
      error = std::current_exception();
    }
    TaskList drained;
    {
      std::lock_guard lock(global_lock_);
      broken_.store(true, std::memory_order_release);
      closed_ = true;
      stopping_.store(true, std::memory_order_seq_cst);
      drained = std::move(global_);
    }
    for (std::size_t i = 0; i < max_workers_; ++i) {
      std::lock_guard lock(slots_[i].lock);
      drained.append(std::move(slots_[i].local));
      slots_[i].hint.store(0, std::memory_order_relaxed);
    }
    while (StateBase* t = drained.pop()) {
      if (t->try_start()) {
        t->error_ = error;
        t->finish_running();
      }
      discard(t);
    }
    work_ec_.notify_all();
  }

  void worker_main(std::size_t index) noexcept {
    set_thread_name(index);
    WorkerContext context(*this, index);
    tl_worker = &context;
    tl_helper = &context;
    bool ok = true;
    if (initializer_) {
      try {
        initializer_();
      } catch (...) {
        break_pool(std::current_exception());
        ok = false;
      }
    }
    if (ok) work_loop(index);
    tl_helper = nullptr;
    tl_worker = nullptr;
  }

  void work_loop(std::size_t self) noexcept {
    Backoff backoff;
    bool idle = false;
    for (;;) {
      if (StateBase* task = find_work(self)) {
        if (idle) {
          idle_.fetch_sub(1, std::memory_order_relaxed);
          idle = false;
        }
        backoff.reset();
        run(task);
        continue;
      }
      if (!idle) {
        idle_.fetch_add(1, std::memory_order_relaxed);
        idle = true;
      }
      if (pending_.load(std::memory_order_acquire) == 0 &&
          stopping_.load(std::memory_order_acquire))
        break;
      if (backoff.step()) continue;
      const auto key = work_ec_.prepare_wait();
      if (pending_.load(std::memory_order_seq_cst) > 0) {
        // Work exists but is in flight between two queues: retry soon.
        work_ec_.cancel_wait();
        std::this_thread::yield();
        continue;
      }
      if (stopping_.load(std::memory_order_seq_cst)) {
        work_ec_.cancel_wait();
        continue;
      }
      work_ec_.wait(key);
      backoff.reset();
    }
    if (idle) idle_.fetch_sub(1, std::memory_order_relaxed);
  }

  void set_thread_name(std::size_t index) noexcept {
    try {
      std::string name = (name_prefix_.empty() ? std::string("spindle-pool") : name_prefix_) +
                         "_" + std::to_string(index);
      if (name.size() > 15) name.resize(15);  // the kernel's limit (16 with the NUL)
      pthread_setname_np(pthread_self(), name.c_str());
    } catch (...) {  // a name is a nicety; bad_alloc must not kill the worker
    }
  }

  const std::size_t max_workers_;
  std::unique_ptr<Slot[]> slots_;
  const std::function<void()> initializer_;
  const std::string name_prefix_;

  alignas(64) SpinLock global_lock_;
  TaskList global_;     // guarded by global_lock_
  bool closed_ = false;  // guarded by global_lock_

  alignas(64) std::atomic<std::size_t> unfinished_{0};  // submitted, not yet finished
  EventCount idle_ec_;
  std::atomic<std::size_t> idle_{0};     // workers looking for work
  std::atomic<std::size_t> started_{0};  // slots_[0, started_) have threads
  std::atomic<bool> stopping_{false};
  std::atomic<bool> broken_{false};

  std::mutex threads_mutex_;
  bool joined_ = false;  // guarded by threads_mutex_
};

inline bool WorkerContext::help_until(bool (*ready)(const void*), const void* ctx,
                                      std::optional<Clock::time_point> deadline) noexcept {
  // Sleeps on the pool's event count, so the sleep ends both when the
  // awaited thing happens (its notifier calls wake()) and when new work
  // arrives that this thread could run.
  Backoff backoff;
  for (;;) {
    if (ready(ctx)) return true;
    if (StateBase* task = core.find_work(index)) {
      core.run(task);
      backoff.reset();
      continue;
    }
    if (deadline && Clock::now() >= *deadline) return ready(ctx);
    if (backoff.step()) continue;
    const auto key = core.work_ec_.prepare_wait();
    if (ready(ctx)) {
      core.work_ec_.cancel_wait();
      return true;
    }
    if (core.pending_.load(std::memory_order_seq_cst) > 0) {
      core.work_ec_.cancel_wait();
      std::this_thread::yield();
      continue;
    }
    core.work_ec_.wait(key, deadline);
  }
}

inline void WorkerContext::wake() noexcept { core.work_ec_.notify_all(); }

}  // namespace spindle::detail
