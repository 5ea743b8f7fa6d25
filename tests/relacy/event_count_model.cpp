// SPDX-License-Identifier: MIT
// tests/relacy/event_count_model.cpp - EventCount's wait/notify protocol under Relacy.
//
// The condition lives in a separate atomic accessed with RELAXED operations,
// the weakest the protocol allows: only EventCount's own fences order it
// against the waiter count. A lost wake-up leaves a waiter parked in the
// modelled futex forever, which Relacy reports as a deadlock.
#include "model.hpp"

#include <memory>

#include <spindle/detail/wait.hpp>

namespace {

using spindle::detail::atomic;
using spindle::detail::EventCount;

// The waiter protocol of EventCount's comment, as Queue uses it.
template <class Ready>
void wait_for(EventCount& ec, Ready ready) {
  for (;;) {
    if (ready()) return;
    const auto key = ec.prepare_wait();
    if (ready()) {
      ec.cancel_wait();
      return;
    }
    ec.wait(key);
  }
}

template <class Derived, unsigned Threads>
struct EcTest : rl::test_suite<Derived, Threads> {
  spindle::detail::ModelFutexes futexes;
  // On the heap: EventCount is alignas(64) and Relacy mallocs the test.
  std::unique_ptr<EventCount> ec_ptr = std::make_unique<EventCount>();
  EventCount& ec = *ec_ptr;
  atomic<unsigned> flag{0};
  rl::var<int> data;  // written before the flag, read after it is seen
};

// One waiter, one notifier (notify_one): no lost wake-up.
struct OneWaiter : EcTest<OneWaiter, 2> {
  void thread(unsigned t) {
    if (t == 0) {
      wait_for(ec, [&] { return flag.load(std::memory_order_relaxed) != 0; });
    } else {
      flag.store(1, std::memory_order_relaxed);
      ec.notify_one();
    }
  }
  void after() { RL_ASSERT(!ec.has_waiters()); }
};

// Two waiters on one flag, one notify_all: both wake.
struct TwoWaitersNotifyAll : EcTest<TwoWaitersNotifyAll, 3> {
  void thread(unsigned t) {
    if (t < 2) {
      wait_for(ec, [&] { return flag.load(std::memory_order_relaxed) != 0; });
    } else {
      flag.store(1, std::memory_order_relaxed);
      ec.notify_all();
    }
  }
  void after() { RL_ASSERT(!ec.has_waiters()); }
};

// Two waiters each take one token; the notifier adds two tokens with a
// notify_one each (as two Queue puts wake two getters): nobody is left asleep.
struct TokensNotifyOne : EcTest<TokensNotifyOne, 3> {
  void thread(unsigned t) {
    if (t < 2) {
      wait_for(ec, [&] {
        unsigned n = flag.load(std::memory_order_relaxed);
        while (n != 0)
          if (flag.compare_exchange_weak(n, n - 1, std::memory_order_acquire,
                                         std::memory_order_relaxed))
            return true;
        return false;
      });
      RL_ASSERT(data($) == 7);  // the token's acquire saw the release below
    } else {
      data($) = 7;
      flag.fetch_add(1, std::memory_order_release);
      ec.notify_one();
      flag.fetch_add(1, std::memory_order_release);
      ec.notify_one();
    }
  }
  void after() {
    RL_ASSERT(flag.load(std::memory_order_relaxed) == 0);
    RL_ASSERT(!ec.has_waiters());
  }
};

}  // namespace

int main() {
  int failed = 0;
  failed += model::run<OneWaiter>("event count: one waiter, notify_one", {rl::sched_full, 0, 0});
  failed += model::run<TwoWaitersNotifyAll>("event count: two waiters, notify_all",
                                            {rl::sched_bound, 0, 3});
  failed += model::run<TokensNotifyOne>("event count: two tokens, two notify_one",
                                        {rl::sched_bound, 0, 3});
  return failed == 0 ? 0 : 1;
}
