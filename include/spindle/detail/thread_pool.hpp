// SPDX-License-Identifier: MIT
// spindle/detail/thread_pool.hpp - the worker threads and queues behind ThreadPoolExecutor.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
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
/// Helper that lets a worker run queued work while it waits on a future,
/// when nothing else could (see PoolCore::should_help).
class WorkerContext final : public Helper {
public:
  WorkerContext(PoolCore& pool, std::size_t worker_index) noexcept
      : core(pool), index(worker_index) {}
  void help_until(bool (*ready)(const void*), const void* ctx) noexcept override;
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
/// Waking (the scheme Go's scheduler uses): a worker is running a task,
/// *searching* for one (awake, spinning briefly), or *sleeping* on its own
/// futex word, listed on an idle stack. A submit wakes a sleeper only when
/// no worker is searching: while workers are busy or one is already
/// searching, a submit costs two loads and no system call. A woken worker
/// counts as searching from the moment it is chosen (the waker hands it the
/// "token"), so a burst of submits wakes one worker, not one per submit;
/// when the last searcher finds a task and more are queued, it wakes the
/// next sleeper, so wake-ups fan out as fast as workers pick work up.
/// `pending_` counts queued tasks anywhere; a worker going to sleep lists
/// itself idle first and then re-checks `pending_` (seq_cst on both sides,
/// against the submit's increment and its loads), so no wake-up is lost.
///
/// Lock order: `global_lock_` before a slot's `lock`; never two slot locks;
/// `threads_mutex_` before `idle_lock_`, which is taken last of all.
class PoolCore {
public:
  PoolCore(std::size_t max_workers, std::function<void()> initializer, std::string name_prefix,
           std::size_t stack_size = 0)
      : max_workers_(max_workers), slots_(std::make_unique<Slot[]>(max_workers)),
        initializer_(std::move(initializer)), name_prefix_(std::move(name_prefix)),
        stack_size_(stack_size) {}
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  ~PoolCore() { shutdown(true, false); }

  std::size_t max_workers() const noexcept { return max_workers_; }
  /// Set by shutdown(cancel_futures = true): work that claims more work
  /// (map's claimers) stops claiming, as queued tasks are cancelled.
  bool cancelling() const noexcept { return cancelling_.load(std::memory_order_relaxed); }
  /// Whether workers run an initializer (then no other thread may run tasks).
  bool has_initializer() const noexcept { return static_cast<bool>(initializer_); }

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
      task->pool_ = this;
      slot.local.push(task);
      slot.hint.store(slot.local.size(), std::memory_order_relaxed);
      pending_.fetch_add(1, std::memory_order_seq_cst);
    } else {
      std::lock_guard lock(global_lock_);
      if (closed_) {
        undo_push();
        throw_closed();
      }
      task->pool_ = this;
      global_.push(task);
      // Inside the lock: a drain that takes this task decrements after us.
      pending_.fetch_add(1, std::memory_order_seq_cst);
    }
    if (!wake_one() && started_.load(std::memory_order_acquire) < max_workers_) spawn_worker();
  }

  /// See ThreadPoolExecutor::shutdown.
  void shutdown(bool wait, bool cancel_futures) {
    if (wait && owns_current_thread())
      throw std::logic_error(
          "ThreadPoolExecutor::shutdown(wait=true) called from one of the pool's own workers "
          "would wait for itself; use shutdown(false)");
    TaskList drained;
    if (cancel_futures) cancelling_.store(true, std::memory_order_relaxed);
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
    wake_all();
    std::unique_lock lock(threads_mutex_);
    // Work accepted before the close must still run even if no worker was
    // ever started (workers start lazily) or starting one failed.
    if (!joining_ && started_.load(std::memory_order_relaxed) == 0 &&
        pending_.load(std::memory_order_acquire) > 0)
      spawn_locked();
    if (!wait) return;
    if (joining_) {
      // Another shutdown(true) is joining: return once it has finished.
      joined_cv_.wait(lock, [this] { return joined_; });
      return;
    }
    // Join without holding threads_mutex_: a worker may need it to start
    // another worker while it drains the remaining work. joining_ stops
    // new threads, so slots_[0, n) are ours alone from here.
    joining_ = true;
    const std::size_t n = started_.load(std::memory_order_relaxed);
    // No thread starts any more: workers waiting on futures may now be all
    // there is to run the queued work (see should_help); let them re-check.
    stop_spawning(n);
    lock.unlock();
    for (std::size_t i = 0; i < n; ++i) {
      if (slots_[i].has_thread) {
        pthread_join(slots_[i].thread, nullptr);
        slots_[i].has_thread = false;
      }
    }
    lock.lock();
    joined_ = true;
    joined_cv_.notify_all();
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

  /// If no worker searches and one sleeps, wakes one and hands it the
  /// searching token. Never blocks. False only if no worker searches and
  /// none sleeps (all are busy): then only a new thread could help.
  bool wake_one() noexcept {
    if (searching_.load(std::memory_order_seq_cst) != 0) return true;
    if (sleeping_.load(std::memory_order_seq_cst) == 0) return false;
    std::size_t zero = 0;
    if (!searching_.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return true;
    std::size_t worker = 0;
    {
      std::lock_guard lock(idle_lock_);
      if (idle_top_ == 0 || (idle_top_ == idle_helpers_ && !should_help())) {
        // Nobody idle, or only workers waiting on futures while a new
        // thread could start or a running worker will get to the work: do
        // not nest it inside a wait (see should_help).
        worker = max_workers_;
      } else {
        worker = idle_stack_[--idle_top_];
        if (idle_top_ < idle_helpers_) idle_helpers_ = idle_top_;  // took a helper
        sleeping_.store(idle_top_, std::memory_order_seq_cst);
      }
    }
    if (worker == max_workers_) {
      searching_.fetch_sub(1, std::memory_order_seq_cst);
      return false;
    }
    post_wake(worker, token_bit);
    return true;
  }

  /// Lists worker `self` as idle and sleeps until a waker hands it the
  /// searching token, or (for a helping worker) until `ready`/new work.
  /// Returns true if the caller now holds a searching token (is counted in
  /// searching_), false if it woke without one (only with `ready`).
  bool sleep(std::size_t self, bool (*ready)(const void*), const void* ctx) noexcept {
    Slot& me = slots_[self];
    std::uint32_t word = me.wake_word.load(std::memory_order_seq_cst);
    const bool helper = ready != nullptr;
    {
      std::lock_guard lock(idle_lock_);
      if (helper) {
        // Waiting on a future: listed below the idle workers, so that new
        // work goes to an idle worker before it is nested inside a wait.
        for (std::size_t j = idle_top_; j > 0; --j) idle_stack_[j] = idle_stack_[j - 1];
        idle_stack_[0] = self;
        ++idle_helpers_;
      } else {
        idle_stack_[idle_top_] = self;
      }
      ++idle_top_;
      sleeping_.store(idle_top_, std::memory_order_seq_cst);
    }
    // Re-check after listing ourselves: a submit whose increment we miss
    // here sees us in sleeping_ and wakes us.
    // A helper ignores stopping_ (it waits for its future, not for work)
    // and queued work it should leave to others (see should_help).
    const bool go_on =
        helper ? ready(ctx) || (pending_.load(std::memory_order_seq_cst) > 0 && should_help())
               : pending_.load(std::memory_order_seq_cst) > 0 ||
                     stopping_.load(std::memory_order_seq_cst);
    if (!go_on) {
      const auto wanted = ready != nullptr ? (token_bit | helper_bit) : token_bit;
      while ((word & wanted) == 0) {
        futex_wait(me.wake_word, word);
        word = me.wake_word.load(std::memory_order_seq_cst);
      }
    }
    if (unlist_idle(self, helper)) {
      me.wake_word.fetch_and(~helper_bit, std::memory_order_relaxed);
      return false;
    }
    // A waker took us off the idle stack, so its token is ours: wait for
    // its post (it may not have arrived yet), then consume it.
    word = me.wake_word.load(std::memory_order_acquire);
    while ((word & token_bit) == 0) {
      futex_wait(me.wake_word, word);
      word = me.wake_word.load(std::memory_order_acquire);
    }
    me.wake_word.fetch_and(~(token_bit | helper_bit), std::memory_order_acq_rel);
    return true;
  }

  /// Whether a worker waiting on a future should run queued work meanwhile:
  /// only as a last resort, when every worker the pool may start is running
  /// and waits on a future too, so that nothing else could run the work.
  /// (The awaited task itself is run by the waiter directly, see
  /// StateBase::try_run_here.) Otherwise queued work waits for a free or a
  /// new worker, and is not nested inside a wait, where it would run on a
  /// stack that may hold the waiter's locks.
  bool should_help() const noexcept {
    const std::size_t started = started_.load(std::memory_order_seq_cst);
    return (started >= max_workers_ || no_spawn_.load(std::memory_order_seq_cst)) &&
           helpers_.load(std::memory_order_seq_cst) >= started;
  }

  /// Workers waiting on a future: inside WorkerContext::help_until and not
  /// running a task from there.
  std::atomic<std::size_t> helpers_{0};
  /// Set once no new worker can start (shutdown joins, or a thread failed
  /// to start): should_help then counts the workers there are.
  std::atomic<bool> no_spawn_{false};

  /// Wakes a helping worker (its awaited future completed). Any thread.
  void wake_helper(std::size_t worker) noexcept { post_wake(worker, helper_bit); }

  /// A searching worker found a task: stop searching, and if it was the
  /// last searcher and more work is queued, wake another worker for it.
  /// With no sleeper, it starts a new thread (up to max_workers), as Python
  /// starts one per submit while no thread is idle: work queued behind
  /// tasks that block must still start.
  void stop_searching() noexcept {
    if (searching_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        pending_.load(std::memory_order_seq_cst) > 0 && !wake_one() &&
        started_.load(std::memory_order_acquire) < max_workers_)
      spawn_worker();
  }

  std::atomic<std::size_t> searching_{0};  // workers awake and looking for work

private:
  static constexpr std::uint32_t token_bit = 1;   // woken by wake_one/wake_all
  static constexpr std::uint32_t helper_bit = 2;  // woken by wake_helper

  struct alignas(64) Slot {
    SpinLock lock;
    TaskList local;  // guarded by lock
    // The worker sleeps on this futex word; wakers set token_bit or helper_bit.
    std::atomic<std::uint32_t> wake_word{0};
    // local.size(), stored under lock; read without it as a hint, so idle
    // workers skip empty queues without taking their locks.
    std::atomic<std::size_t> hint{0};
    // The worker's thread (pthread, for the stack size), joinable if
    // has_thread. Guarded by PoolCore::threads_mutex_.
    pthread_t thread{};
    bool has_thread = false;
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
    // Every other started slot; max() because a new worker may run before
    // it sees started_ count itself.
    const std::size_t n = (std::max)(started_.load(std::memory_order_acquire), self + 1);
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

  void post_wake(std::size_t worker, std::uint32_t bit) noexcept {
    Slot& slot = slots_[worker];
    slot.wake_word.fetch_or(bit, std::memory_order_seq_cst);
    futex_wake(slot.wake_word, 1);
  }

  // Wakes every sleeper (shutdown), each with a token.
  void wake_all() noexcept {
    for (;;) {
      std::size_t worker = 0;
      {
        std::lock_guard lock(idle_lock_);
        if (idle_top_ == 0) return;
        worker = idle_stack_[--idle_top_];
        if (idle_top_ < idle_helpers_) idle_helpers_ = idle_top_;
        sleeping_.store(idle_top_, std::memory_order_seq_cst);
      }
      searching_.fetch_add(1, std::memory_order_seq_cst);
      post_wake(worker, token_bit);
    }
  }

  // Takes `self` (listed as a helper or not) off the idle stack; false if a
  // waker already did.
  bool unlist_idle(std::size_t self, bool helper) noexcept {
    std::lock_guard lock(idle_lock_);
    for (std::size_t i = idle_top_; i-- > 0;) {
      if (idle_stack_[i] == self) {
        for (std::size_t j = i; j + 1 < idle_top_; ++j) idle_stack_[j] = idle_stack_[j + 1];
        --idle_top_;
        if (helper) --idle_helpers_;
        sleeping_.store(idle_top_, std::memory_order_seq_cst);
        return true;
      }
    }
    return false;
  }

  // Starts a worker if work is queued and no worker searches or sleeps.
  // Every caller re-checks under the lock, so of racing callers (a submit, a
  // worker that just found work) one starts a thread and the others see it
  // searching; none is lost.
  void spawn_worker() noexcept {
    std::lock_guard lock(threads_mutex_);
    if (joining_ || searching_.load(std::memory_order_seq_cst) != 0 || idle_workers() != 0 ||
        pending_.load(std::memory_order_seq_cst) == 0)
      return;
    spawn_locked();
  }

  // Workers listed idle that are not waiting on a future.
  std::size_t idle_workers() noexcept {
    std::lock_guard lock(idle_lock_);
    return idle_top_ - idle_helpers_;
  }

  // From now on no worker starts beyond the `started` there are: wakes the
  // workers waiting on futures so they re-check should_help.
  void stop_spawning(std::size_t started) noexcept {
    no_spawn_.store(true, std::memory_order_seq_cst);
    for (std::size_t i = 0; i < started; ++i) post_wake(i, helper_bit);
  }

  // Caller holds threads_mutex_.
  void spawn_locked() noexcept {
    const std::size_t index = started_.load(std::memory_order_relaxed);
    if (index >= max_workers_) return;
    // The new worker starts out searching; counting it now keeps a burst of
    // submits from starting a thread each while it starts up.
    searching_.fetch_add(1, std::memory_order_seq_cst);
    // Counted before the thread runs, so that the workers already running
    // look into its queue when they steal.
    started_.store(index + 1, std::memory_order_release);
    try {
      start_thread(index);
    } catch (...) {
      started_.store(index, std::memory_order_release);
      searching_.fetch_sub(1, std::memory_order_seq_cst);
      stop_spawning(index);
      // With no worker at all nobody would ever run the queued work: fail
      // it (its futures get BrokenExecutor) instead of leaving it pending.
      if (index == 0) break_pool(std::current_exception());
    }
  }

  struct ThreadStart {
    PoolCore* core;
    std::size_t index;
  };

  // Starts worker `index` with pthread_create (std::thread cannot set a
  // stack size). Throws std::system_error if the thread does not start.
  void start_thread(std::size_t index) {
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_attr_init");
    struct AttrGuard {
      pthread_attr_t* a;
      ~AttrGuard() { pthread_attr_destroy(a); }
    } guard{&attr};
    if (stack_size_ != 0) {
      rc = pthread_attr_setstacksize(&attr, stack_size_);
      if (rc != 0)
        throw std::system_error(rc, std::generic_category(),
                                "ThreadPoolOptions::stack_size " + std::to_string(stack_size_));
    }
    auto start = std::make_unique<ThreadStart>(ThreadStart{this, index});
    rc = pthread_create(
        &slots_[index].thread, &attr,
        [](void* arg) -> void* {
          const std::unique_ptr<ThreadStart> s(static_cast<ThreadStart*>(arg));
          s->core->worker_main(s->index);
          return nullptr;
        },
        start.get());
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_create");
    (void)start.release();  // the thread owns it now
    slots_[index].has_thread = true;
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
    wake_all();
  }

  void worker_main(std::size_t index) noexcept {
    set_thread_name(index);
    record_stack_bounds();
    WorkerContext context(*this, index);
    tl_worker = &context;
    tl_helper = &context;
    tl_pool = this;
    bool ok = true;
    if (initializer_) {
      try {
        initializer_();
      } catch (...) {
        break_pool(std::current_exception());
        ok = false;
      }
    }
    if (ok)
      work_loop(index);
    else
      searching_.fetch_sub(1, std::memory_order_seq_cst);
    tl_pool = nullptr;
    tl_helper = nullptr;
    tl_worker = nullptr;
  }

  // Starts out searching (counted by spawn_locked).
  void work_loop(std::size_t self) noexcept {
    bool searching = true;
    Backoff backoff;
    for (;;) {
      if (StateBase* task = find_work(self)) {
        if (searching) {
          searching = false;
          stop_searching();
        }
        backoff.reset();
        run(task);
        continue;
      }
      // stopping_ first: a submit accepted before the close incremented
      // pending_ before stopping_ was set, so it is seen after it.
      if (stopping_.load(std::memory_order_acquire) &&
          pending_.load(std::memory_order_acquire) == 0)
        break;
      if (!searching) {
        searching = true;
        searching_.fetch_add(1, std::memory_order_seq_cst);
      }
      // Spin only as one of the first two searchers: with many workers on
      // few cores, more spinners would only take time from busy ones.
      if (searching_.load(std::memory_order_relaxed) <= 2 && backoff.step()) continue;
      searching = false;
      searching_.fetch_sub(1, std::memory_order_seq_cst);
      if (pending_.load(std::memory_order_seq_cst) > 0) {
        // Work exists but is in flight between two queues: search again.
        searching = true;
        searching_.fetch_add(1, std::memory_order_seq_cst);
        spin_pause();
        continue;
      }
      if (stopping_.load(std::memory_order_seq_cst)) continue;
      if (sleep(self, nullptr, nullptr)) searching = true;
      backoff.reset();
    }
    if (searching) searching_.fetch_sub(1, std::memory_order_seq_cst);
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
  const std::size_t stack_size_;  // 0: the system's default

  alignas(64) SpinLock global_lock_;
  TaskList global_;     // guarded by global_lock_
  bool closed_ = false;  // guarded by global_lock_

  alignas(64) std::atomic<std::size_t> unfinished_{0};  // submitted, not yet finished
  EventCount idle_ec_;
  std::atomic<std::size_t> sleeping_{0};  // == idle_top_, readable without the lock
  std::atomic<std::size_t> started_{0};   // slots_[0, started_) have threads
  std::atomic<bool> stopping_{false};
  std::atomic<bool> broken_{false};
  std::atomic<bool> cancelling_{false};

  SpinLock idle_lock_;
  std::unique_ptr<std::size_t[]> idle_stack_ = std::make_unique<std::size_t[]>(max_workers_);
  std::size_t idle_top_ = 0;  // guarded by idle_lock_ (with idle_stack_)
  // Of the listed, how many wait on a future (helpers): idle_stack_[0, this).
  std::size_t idle_helpers_ = 0;  // guarded by idle_lock_

  std::mutex threads_mutex_;
  std::condition_variable joined_cv_;  // signals joined_
  bool joining_ = false;               // guarded by threads_mutex_
  bool joined_ = false;                // guarded by threads_mutex_
};

inline void WorkerContext::help_until(bool (*ready)(const void*), const void* ctx) noexcept {
  // Sleeps listed as idle, so the sleep ends both when the awaited thing
  // happens (its notifier calls wake()) and when new work arrives that this
  // thread could run. A token received while helping is passed on when the
  // helper finds work or returns, like a searching worker's.
  bool searching = false;
  auto drop_token = [&] {
    if (searching) {
      searching = false;
      core.stop_searching();
    }
  };
  core.helpers_.fetch_add(1, std::memory_order_seq_cst);
  Backoff backoff;
  for (;;) {
    if (ready(ctx)) break;
    if (core.should_help()) {
      if (StateBase* task = core.find_work(index)) {
        drop_token();
        // Running, not waiting, while the task runs: a wait inside it
        // counts again, and should_help must not count this worker twice.
        core.helpers_.fetch_sub(1, std::memory_order_seq_cst);
        core.run(task);
        core.helpers_.fetch_add(1, std::memory_order_seq_cst);
        backoff.reset();
        continue;
      }
    }
    if (backoff.step()) continue;
    drop_token();
    if (core.pending_.load(std::memory_order_seq_cst) > 0 && core.should_help()) {
      spin_pause();  // work in flight between two queues
      continue;
    }
    searching = core.sleep(index, ready, ctx);
    backoff.reset();
  }
  drop_token();
  core.helpers_.fetch_sub(1, std::memory_order_seq_cst);
}

inline void WorkerContext::wake() noexcept { core.wake_helper(index); }

}  // namespace spindle::detail
