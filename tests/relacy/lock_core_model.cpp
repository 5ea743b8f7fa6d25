// SPDX-License-Identifier: MIT
// tests/relacy/lock_core_model.cpp - Lock's futex mutex, Semaphore's counter and
// Condition's wait/notify hand-off under Relacy.
//
// Critical sections write an rl::var, so Relacy reports a data race if two
// threads are ever inside together (or if a release/acquire pair is missing);
// a lost wake-up leaves a thread parked in the modelled futex, which Relacy
// reports as a deadlock. Checked by breaking the code on purpose: without
// the futex_wake in FutexMutex::unlock or SemaphoreCore::release the mutex
// and semaphore tests fail (DEADLOCK) within a few thousand executions;
// without Condition::notify's futex_wake, "two waiters, two notifiers" fails
// (DEADLOCK at execution 57,973; the model futex leaves sleepers that no
// wake dequeued asleep, as the kernel does).
#include "model.hpp"

#include <spindle/detail/lock_core.hpp>
#include <spindle/threading.hpp>

namespace {

using spindle::detail::FutexMutex;
using spindle::detail::SemaphoreCore;

// Three threads, two lock/unlock rounds each: mutual exclusion and no
// sleeper left behind by the 0/1/2 states.
struct MutexExclusion : rl::test_suite<MutexExclusion, 3> {
  spindle::detail::ModelFutexes futexes;
  FutexMutex m;
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned) {
    for (int i = 0; i < 2; ++i) {
      m.lock();
      counter($) = counter($) + 1;
      RL_ASSERT(m.unlock());
    }
  }
  void after() {
    RL_ASSERT(counter($) == 6);
    RL_ASSERT(!m.locked());
  }
};

// A binary semaphore as a lock among three threads.
struct SemaphoreExclusion : rl::test_suite<SemaphoreExclusion, 3> {
  spindle::detail::ModelFutexes futexes;
  SemaphoreCore sem{1};
  rl::var<int> counter;
  void before() { counter($) = 0; }
  void thread(unsigned) {
    for (int i = 0; i < 2; ++i) {
      RL_ASSERT(sem.acquire_until(std::nullopt));
      counter($) = counter($) + 1;
      RL_ASSERT(sem.release(1, 1));
    }
  }
  void after() {
    RL_ASSERT(counter($) == 6);
    RL_ASSERT(sem.value() == 1);
  }
};

// Two waiters on an empty semaphore, one release(2): both wake (release(n)
// wakes n), and what the releaser wrote is visible to each.
struct SemaphoreReleaseN : rl::test_suite<SemaphoreReleaseN, 3> {
  spindle::detail::ModelFutexes futexes;
  SemaphoreCore sem{0};
  rl::var<int> data;
  void thread(unsigned t) {
    if (t < 2) {
      RL_ASSERT(sem.acquire_until(std::nullopt));
      RL_ASSERT(data($) == 42);
    } else {
      data($) = 42;
      RL_ASSERT(sem.release(2, UINT32_MAX));
    }
  }
  void after() { RL_ASSERT(sem.value() == 0); }
};

// Condition over a Lock: a consumer waits for a flag with the while-loop,
// the producer sets it and notifies under the lock.
struct ConditionHandoff : rl::test_suite<ConditionHandoff, 2> {
  spindle::detail::ModelFutexes futexes;
  spindle::Lock lock;
  spindle::Condition cv{lock};
  rl::var<int> ready;
  void before() { ready($) = 0; }
  void thread(unsigned t) {
    if (t == 0) {
      lock.acquire();
      while (ready($) == 0) cv.wait();
      lock.release();
    } else {
      lock.acquire();
      ready($) = 1;
      cv.notify();
      lock.release();
    }
  }
};

// Two waiters, notify(1) twice from two notifiers: both waiters wake, none
// is left asleep on its per-waiter word.
struct ConditionTwoNotifies : rl::test_suite<ConditionTwoNotifies, 4> {
  spindle::detail::ModelFutexes futexes;
  spindle::Lock lock;
  spindle::Condition cv{lock};
  rl::var<int> tokens;
  void before() { tokens($) = 0; }
  void thread(unsigned t) {
    lock.acquire();
    if (t < 2) {
      while (tokens($) == 0) cv.wait();
      tokens($) = tokens($) - 1;
    } else {
      tokens($) = tokens($) + 1;
      cv.notify();
    }
    lock.release();
  }
  void after() { RL_ASSERT(tokens($) == 0); }
};

}  // namespace

int main() {
  int failed = 0;
  // The spin-then-yield loops in front of every sleep make the full state
  // space too large for a bounded search of 3-4 threads (over 10 minutes
  // without finishing the first): random samples instead.
  failed += model::run<MutexExclusion>("lock core: futex mutex, 3 threads x 2",
                                       {rl::sched_random, 100000, 0});
  failed += model::run<SemaphoreExclusion>("lock core: binary semaphore, 3 threads x 2",
                                           {rl::sched_random, 100000, 0});
  failed += model::run<SemaphoreReleaseN>("lock core: release(2) wakes two waiters",
                                          {rl::sched_random, 100000, 0});
  failed += model::run<ConditionHandoff>("condition: one waiter, one notify",
                                         {rl::sched_random, 100000, 0});
  failed += model::run<ConditionTwoNotifies>("condition: two waiters, two notifiers",
                                             {rl::sched_random, 100000, 0});
  return failed == 0 ? 0 : 1;
}
