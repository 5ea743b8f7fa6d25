// SPDX-License-Identifier: MIT
// tests/relacy/event_count_model.cpp - EventCount's wait/notify protocol under Relacy.
//
// The condition lives in a separate atomic accessed with RELAXED operations,
// the weakest the protocol allows: only EventCount's own fences order it
// against the waiter count. A lost wake-up leaves a waiter parked in the
// modelled futex forever, which Relacy reports as a deadlock.
#include "model.hpp"

#include <chrono>
#include <cstring>
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

// Takes one token from `tokens` if there is one.
inline bool take_token(atomic<unsigned>& tokens) {
  unsigned n = tokens.load(std::memory_order_relaxed);
  while (n != 0)
    if (tokens.compare_exchange_strong(n, n - 1, std::memory_order_acquire,
                                     std::memory_order_relaxed))
      return true;
  return false;
}

// Queue's timed get: waits for `ready` until one wait times out (the model
// futex may time out at any point), then checks `ready` once more.
template <class Ready>
bool wait_for_timed(EventCount& ec, Ready ready) {
  const auto deadline = spindle::detail::Clock::now() + std::chrono::hours(1);
  bool expired = false;
  for (;;) {
    if (ready()) return true;
    if (expired) return false;
    const auto key = ec.prepare_wait();
    if (ready()) {
      ec.cancel_wait();
      return true;
    }
    if (!ec.wait(key, deadline)) expired = true;
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

// Two notifiers at once (two producers' puts), two token takers: the
// notifies race each other's CAS, bump and futex_wake.
struct TokensTwoNotifiers : EcTest<TokensTwoNotifiers, 4> {
  void thread(unsigned t) {
    if (t < 2) {
      wait_for(ec, [&] { return take_token(flag); });
    } else {
      flag.fetch_add(1, std::memory_order_release);
      ec.notify_one();
    }
  }
  void after() {
    RL_ASSERT(flag.load(std::memory_order_relaxed) == 0);
    RL_ASSERT(!ec.has_waiters());
  }
};

// Three takers, three tokens, one notifier (four threads, random search):
// a taker that finds the token gone sleeps with a newer key than one that
// slept earlier, and the futex may dequeue either for one wake.
struct ThreeTakers : EcTest<ThreeTakers, 4> {
  void thread(unsigned t) {
    if (t < 3) {
      wait_for(ec, [&] { return take_token(flag); });
    } else {
      for (int i = 0; i < 3; ++i) {
        flag.fetch_add(1, std::memory_order_release);
        ec.notify_one();
      }
    }
  }
  void after() {
    RL_ASSERT(flag.load(std::memory_order_relaxed) == 0);
    RL_ASSERT(!ec.has_waiters());
  }
};

// A timed taker (gives up after one timed-out wait, as Queue's timed get
// does, trying once more first) beside an untimed one; two tokens, two
// notify_one. The untimed taker must get a token whatever the timed one
// does: a timeout racing a notify must not strand the signal.
struct TimedTokens : EcTest<TimedTokens, 3> {
  bool timed_got = false;
  void thread(unsigned t) {
    if (t == 0) {
      timed_got = wait_for_timed(ec, [&] { return take_token(flag); });
    } else if (t == 1) {
      wait_for(ec, [&] { return take_token(flag); });
    } else {
      flag.fetch_add(1, std::memory_order_release);
      ec.notify_one();
      flag.fetch_add(1, std::memory_order_release);
      ec.notify_one();
    }
  }
  void after() {
    RL_ASSERT(flag.load(std::memory_order_relaxed) == (timed_got ? 0u : 1u));
    RL_ASSERT(!ec.has_waiters());
  }
};

// Two timed takers and an untimed one (four threads, random search) with
// three tokens: every token not taken belongs to a taker that timed out.
struct TimedTokensMany : EcTest<TimedTokensMany, 4> {
  bool timed_got[2] = {false, false};
  void thread(unsigned t) {
    if (t < 2) {
      timed_got[t] = wait_for_timed(ec, [&] { return take_token(flag); });
    } else if (t == 2) {
      wait_for(ec, [&] { return take_token(flag); });
    } else {
      for (int i = 0; i < 3; ++i) {
        flag.fetch_add(1, std::memory_order_release);
        ec.notify_one();
      }
    }
  }
  void after() {
    const unsigned gave_up = (timed_got[0] ? 0u : 1u) + (timed_got[1] ? 0u : 1u);
    RL_ASSERT(flag.load(std::memory_order_relaxed) == gave_up);
    RL_ASSERT(!ec.has_waiters());
  }
};

// Registrations that end in cancel_wait race the notifies: thread 0
// registers and cancels twice (a caller whose second check succeeded on
// something else), then takes a token; thread 1 takes a token.
struct CancelRacesNotify : EcTest<CancelRacesNotify, 3> {
  void thread(unsigned t) {
    if (t == 0) {
      for (int i = 0; i < 2; ++i) {
        (void)ec.prepare_wait();
        ec.cancel_wait();
      }
      wait_for(ec, [&] { return take_token(flag); });
    } else if (t == 1) {
      wait_for(ec, [&] { return take_token(flag); });
    } else {
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

// notify_one then notify_all, as a put then close(): two takers wait for a
// token or the close; one gets the token, the other must see the close even
// if notify_all finds the one signal already granted.
struct NotifyOneThenAll : EcTest<NotifyOneThenAll, 3> {
  atomic<unsigned> closed{0};
  bool got[2] = {false, false};
  void thread(unsigned t) {
    if (t < 2) {
      wait_for(ec, [&] {
        if (take_token(flag)) return got[t] = true;
        return closed.load(std::memory_order_relaxed) != 0;
      });
    } else {
      flag.fetch_add(1, std::memory_order_release);
      ec.notify_one();
      closed.store(1, std::memory_order_relaxed);
      ec.notify_all();
    }
  }
  void after() {
    RL_ASSERT(flag.load(std::memory_order_relaxed) + (got[0] ? 1u : 0u) + (got[1] ? 1u : 0u) == 1);
    RL_ASSERT(!ec.has_waiters());
  }
};

// notify_all and notify_one from two threads at once, a timed waiter among
// the two takers (four threads, random search).
struct NotifyAllRacesOne : EcTest<NotifyAllRacesOne, 4> {
  atomic<unsigned> closed{0};
  void thread(unsigned t) {
    if (t == 0) {
      (void)wait_for_timed(ec, [&] {
        return take_token(flag) || closed.load(std::memory_order_relaxed) != 0;
      });
    } else if (t == 1) {
      wait_for(ec, [&] {
        return take_token(flag) || closed.load(std::memory_order_relaxed) != 0;
      });
    } else if (t == 2) {
      flag.fetch_add(1, std::memory_order_release);
      ec.notify_one();
    } else {
      closed.store(1, std::memory_order_relaxed);
      ec.notify_all();
    }
  }
  void after() { RL_ASSERT(!ec.has_waiters()); }
};

}  // namespace

// With an argument, runs only the tests whose name contains it.
int main(int argc, char** argv) {
  const char* only = argc > 1 ? argv[1] : nullptr;
  int failed = 0;
  auto run = [&]<class Test>(const char* name, model::Search search) {
    if (only == nullptr || std::strstr(name, only) != nullptr) failed += model::run<Test>(name, search);
  };
  run.operator()<OneWaiter>("event count: one waiter, notify_one", {rl::sched_full, 0, 0});
  run.operator()<TwoWaitersNotifyAll>("event count: two waiters, notify_all",
                                      {rl::sched_bound, 0, 3});
  run.operator()<TokensNotifyOne>("event count: two tokens, two notify_one",
                                  {rl::sched_bound, 0, 3});
  run.operator()<TimedTokens>("event count: a timed and an untimed taker, two notify_one",
                              {rl::sched_bound, 0, 2});
  run.operator()<CancelRacesNotify>("event count: cancel_wait races two notify_one",
                                    {rl::sched_bound, 0, 3});
  run.operator()<NotifyOneThenAll>("event count: notify_one then notify_all (put, close)",
                                   {rl::sched_bound, 0, 2});
  run.operator()<TokensTwoNotifiers>("event count: two takers, two notifiers",
                                     {rl::sched_random, 1000000, 0});
  run.operator()<ThreeTakers>("event count: three takers, three tokens",
                              {rl::sched_random, 1000000, 0});
  run.operator()<TimedTokensMany>("event count: two timed takers, one untimed, three tokens",
                                  {rl::sched_random, 1000000, 0});
  run.operator()<NotifyAllRacesOne>("event count: notify_all races notify_one",
                                    {rl::sched_random, 1000000, 0});
  return failed == 0 ? 0 : 1;
}
