// SPDX-License-Identifier: MIT
// tests/threading_test.cpp - Lock, RLock, Condition, Semaphore, BoundedSemaphore, Barrier.
#include <spindle/threading.hpp>

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/thread_state.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int divisor = spindle_test::tsan_divisor(4);

// Timed calls: never before the timeout; a generous bound above it, so a
// loaded CI machine does not fail a correct build.
constexpr auto short_timeout = 50ms;
constexpr auto generous = 10s;

template <class F>
Clock::duration timed(F&& f) {
  const auto start = Clock::now();
  f();
  return Clock::now() - start;
}

// Threads whose kernel ids a test can watch until they sleep.
struct Tids {
  explicit Tids(std::size_t n) : ids(n) {}
  void publish(std::size_t i) { ids[i].store(spindle_test::current_tid()); }
  bool all_sleeping() {
    for (auto& id : ids) {
      if (!spindle_test::spin_until([&] { return id.load() != 0; })) return false;
      if (!spindle_test::wait_until_sleeping(id.load())) return false;
    }
    return true;
  }
  std::vector<std::atomic<pid_t>> ids;
};

}  // namespace

// ---------------------------------------------------------------------------
// Lock

TEST_CASE("A Lock is free, held after acquire and free after release", "[threading][lock]") {
  spindle::Lock lock;
  REQUIRE_FALSE(lock.locked());
  lock.acquire();
  REQUIRE(lock.locked());
  REQUIRE_FALSE(lock.try_acquire());
  lock.release();
  REQUIRE_FALSE(lock.locked());
  REQUIRE(lock.try_acquire());
  lock.release();
  {
    std::lock_guard hold(lock);
    REQUIRE(lock.locked());
  }
  REQUIRE_FALSE(lock.locked());
}

TEST_CASE("Releasing a Lock that is not held is a logic_error", "[threading][lock]") {
  spindle::Lock lock;
  REQUIRE_THROWS_AS(lock.release(), std::logic_error);
  lock.acquire();
  lock.release();
  REQUIRE_THROWS_AS(lock.release(), std::logic_error);
  REQUIRE_FALSE(lock.locked());  // the failed release changed nothing
  REQUIRE(lock.try_acquire());
  lock.release();
}

TEST_CASE("A Lock may be released by a thread other than the one that acquired it",
          "[threading][lock]") {
  spindle::Lock lock;
  lock.acquire();
  std::thread other([&] { lock.release(); });
  other.join();
  REQUIRE_FALSE(lock.locked());
}

TEST_CASE("A timed Lock acquire gives up after the timeout, not before", "[threading][lock][timing]") {
  spindle::Lock lock;
  lock.acquire();
  bool got = true;
  std::thread other([&] {
    const auto took = timed([&] { got = lock.acquire(short_timeout); });
    CHECK(took >= short_timeout);
    CHECK(took < short_timeout + generous);
  });
  other.join();
  REQUIRE_FALSE(got);
  REQUIRE(lock.locked());
  lock.release();
  // Zero and negative timeouts only try.
  REQUIRE(lock.acquire(0s));
  REQUIRE_FALSE(lock.acquire(-5s));
  REQUIRE_FALSE(lock.try_lock_for(1ms));
  lock.release();
  REQUIRE(lock.try_lock_until(Clock::now() + 1s));
  lock.release();
}

TEST_CASE("A blocked Lock acquire returns when the holder releases", "[threading][lock]") {
  spindle::Lock lock;
  lock.acquire();
  Tids tids(2);
  std::atomic<int> got{0};
  std::thread untimed([&] {
    tids.publish(0);
    lock.acquire();
    got.fetch_add(1);
    lock.release();
  });
  std::thread timed_waiter([&] {
    tids.publish(1);
    if (lock.acquire(1h)) {
      got.fetch_add(1);
      lock.release();
    }
  });
  REQUIRE(tids.all_sleeping());
  REQUIRE(got.load() == 0);
  lock.release();
  untimed.join();
  timed_waiter.join();
  REQUIRE(got.load() == 2);
}

TEST_CASE("A Lock keeps a counter exact under many threads", "[threading][lock][stress]") {
  spindle::Lock lock;
  const int threads = 8;
  const int per_thread = 100000 / divisor;
  long counter = 0;  // guarded by lock
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < per_thread; ++i) {
        switch (rng() % 3) {
          case 0: {
            std::lock_guard hold(lock);
            ++counter;
            break;
          }
          case 1:
            while (!lock.try_acquire()) std::this_thread::yield();
            ++counter;
            lock.release();
            break;
          default:
            while (!lock.acquire(std::chrono::microseconds(rng() % 50))) {
            }
            ++counter;
            lock.release();
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  REQUIRE(counter == long{threads} * per_thread);
  REQUIRE_FALSE(lock.locked());
}

// ---------------------------------------------------------------------------
// RLock

TEST_CASE("An RLock can be acquired again by its owner and frees after as many releases",
          "[threading][rlock]") {
  spindle::RLock lock;
  REQUIRE_FALSE(lock.locked());
  lock.acquire();
  lock.acquire();
  REQUIRE(lock.try_acquire());
  REQUIRE(lock.acquire(0s));
  REQUIRE(lock.is_owned());
  bool other_got = true;
  std::thread other([&] { other_got = lock.try_acquire(); });
  other.join();
  REQUIRE_FALSE(other_got);
  for (int i = 0; i < 3; ++i) {
    lock.release();
    REQUIRE(lock.locked());
  }
  lock.release();
  REQUIRE_FALSE(lock.locked());
  REQUIRE_FALSE(lock.is_owned());
  std::thread again([&] {
    other_got = lock.try_acquire();
    if (other_got) lock.release();
  });
  again.join();
  REQUIRE(other_got);
}

TEST_CASE("Releasing an RLock owned by another thread, or by nobody, is a logic_error",
          "[threading][rlock]") {
  spindle::RLock lock;
  REQUIRE_THROWS_AS(lock.release(), std::logic_error);
  lock.acquire();
  bool threw = false;
  std::thread other([&] {
    try {
      lock.release();
    } catch (const std::logic_error&) {
      threw = true;
    }
  });
  other.join();
  REQUIRE(threw);
  REQUIRE(lock.is_owned());  // still ours, depth unchanged
  lock.release();
  REQUIRE_FALSE(lock.locked());
}

TEST_CASE("A timed RLock acquire gives up after the timeout while another thread owns it",
          "[threading][rlock][timing]") {
  spindle::RLock lock;
  std::lock_guard hold(lock);
  bool got = true;
  Clock::duration took{};
  std::thread other([&] { took = timed([&] { got = lock.acquire(short_timeout); }); });
  other.join();
  REQUIRE_FALSE(got);
  REQUIRE(took >= short_timeout);
  REQUIRE(took < short_timeout + generous);
}

TEST_CASE("Nested RLock acquires keep a counter exact under many threads",
          "[threading][rlock][stress]") {
  spindle::RLock lock;
  const int threads = 6;
  const int per_thread = 40000 / divisor;
  long counter = 0;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        std::lock_guard outer(lock);
        std::lock_guard inner(lock);
        ++counter;
      }
    });
  }
  for (auto& t : pool) t.join();
  REQUIRE(counter == long{threads} * per_thread);
  REQUIRE_FALSE(lock.locked());
}

// ---------------------------------------------------------------------------
// Condition

TEST_CASE("Condition calls without the lock held are a logic_error", "[threading][condition]") {
  spindle::Condition cv;
  REQUIRE_THROWS_AS(cv.wait(), std::logic_error);
  REQUIRE_THROWS_AS(cv.wait(1ms), std::logic_error);
  REQUIRE_THROWS_AS(cv.wait_for([] { return true; }), std::logic_error);
  REQUIRE_THROWS_AS(cv.wait_for([] { return true; }, 1ms), std::logic_error);
  REQUIRE_THROWS_AS(cv.notify(), std::logic_error);
  REQUIRE_THROWS_AS(cv.notify_all(), std::logic_error);

  spindle::RLock rlock;
  spindle::Condition over_rlock(rlock);
  std::thread other([&] { rlock.acquire(); });  // owned by a thread that ends
  other.join();
  REQUIRE_THROWS_AS(over_rlock.notify(), std::logic_error);  // held, but not by us
}

TEST_CASE("A Condition wait times out after the timeout and holds the lock again",
          "[threading][condition][timing]") {
  spindle::Lock lock;
  spindle::Condition cv(lock);
  std::unique_lock hold(cv);
  bool notified = true;
  const auto took = timed([&] { notified = cv.wait(short_timeout); });
  REQUIRE_FALSE(notified);
  REQUIRE(took >= short_timeout);
  REQUIRE(took < short_timeout + generous);
  REQUIRE(lock.locked());
  // wait_for with a predicate that never holds returns false after the timeout.
  int calls = 0;
  const auto took2 = timed([&] {
    notified = cv.wait_for([&] { return ++calls < 0; }, short_timeout);
  });
  REQUIRE_FALSE(notified);
  REQUIRE(calls >= 1);
  REQUIRE(took2 >= short_timeout);
  REQUIRE(took2 < short_timeout + generous);
  // A predicate that already holds returns at once, without waiting.
  REQUIRE(cv.wait_for([] { return true; }, 1h));
}

TEST_CASE("Condition::wait_for returns once the predicate holds after notifications",
          "[threading][condition]") {
  spindle::Condition cv;
  int value = 0;  // guarded by cv
  std::thread producer([&] {
    for (int i = 1; i <= 5; ++i) {
      std::lock_guard hold(cv);
      value = i;
      cv.notify_all();
    }
  });
  {
    std::unique_lock hold(cv);
    REQUIRE(cv.wait_for([&] { return value == 5; }));
    REQUIRE(value == 5);
  }
  producer.join();
  std::unique_lock hold(cv);
  REQUIRE(cv.wait_for([&] { return value == 5; }, 10ms));
}

TEST_CASE("notify(n) wakes exactly n waiters, first come first served", "[threading][condition]") {
  constexpr std::size_t waiters = 5;
  spindle::Condition cv;
  std::size_t entered = 0;        // guarded by cv
  std::vector<int> woke_order;    // guarded by cv
  std::vector<int> results(waiters, -1);
  Tids tids(waiters);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < waiters; ++i) {
    threads.emplace_back([&, i] {
      tids.publish(i);
      std::unique_lock hold(cv);
      ++entered;
      // Half wait with a (long) timeout: a notified timed wait returns true.
      const bool ok = (i % 2 == 0) ? (cv.wait(), true) : cv.wait(1h);
      results[i] = ok ? 1 : 0;
      woke_order.push_back(static_cast<int>(i));
    });
    // Each waiter enters before the next starts, so the FIFO order is i.
    REQUIRE(spindle_test::spin_until([&] {
      std::lock_guard hold(cv);
      return entered == i + 1;
    }));
  }
  // With the lock held and every waiter counted, all are inside wait().
  {
    std::lock_guard hold(cv);
    cv.notify(2);
  }
  REQUIRE(spindle_test::spin_until([&] {
    std::lock_guard hold(cv);
    return woke_order.size() == 2;
  }));
  // The other three are asleep again (or still): nothing else woke.
  for (std::size_t i = 2; i < waiters; ++i)
    REQUIRE(spindle_test::wait_until_sleeping(tids.ids[i].load()));
  {
    std::lock_guard hold(cv);
    // The first two (woken together, they race for the lock: either order).
    REQUIRE(std::set<int>(woke_order.begin(), woke_order.end()) == std::set<int>{0, 1});
    cv.notify(1);
  }
  REQUIRE(spindle_test::spin_until([&] {
    std::lock_guard hold(cv);
    return woke_order.size() == 3;
  }));
  {
    std::lock_guard hold(cv);
    REQUIRE(woke_order.size() == 3);
    REQUIRE(woke_order[2] == 2);
    cv.notify(10);  // more than wait: wakes the two left
  }
  for (auto& t : threads) t.join();
  // Woken together, 3 and 4 race for the lock: either order.
  REQUIRE(woke_order.size() == 5);
  REQUIRE(std::set<int>(woke_order.begin() + 3, woke_order.end()) == std::set<int>{3, 4});
  REQUIRE(std::all_of(results.begin(), results.end(), [](int r) { return r == 1; }));
  std::lock_guard hold(cv);
  cv.notify_all();  // nobody waits: harmless
}

TEST_CASE("A Condition over an RLock releases every level while waiting and restores them",
          "[threading][condition][rlock]") {
  spindle::RLock lock;
  spindle::Condition cv(lock);
  bool ready = false;
  lock.acquire();
  lock.acquire();  // depth 2
  std::thread other([&] {
    std::lock_guard hold(lock);  // possible only if the waiter released both levels
    ready = true;
    cv.notify();
  });
  REQUIRE(cv.wait_for([&] { return ready; }, generous));
  REQUIRE(lock.is_owned());
  lock.release();
  REQUIRE(lock.is_owned());  // depth 2 was restored
  lock.release();
  REQUIRE_FALSE(lock.locked());
  other.join();
}

TEST_CASE("Condition producer/consumer (Beazley) moves every item exactly once under stress",
          "[threading][condition][stress]") {
  spindle::Condition cv;
  std::deque<int> items;  // guarded by cv
  bool done = false;      // guarded by cv
  const int producers = 3, consumers = 4;
  const int per_producer = 20000 / divisor;
  std::atomic<long> sum{0};
  std::atomic<int> count{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 rng(static_cast<unsigned>(c));
      for (;;) {
        std::unique_lock hold(cv);
        if (rng() % 4 == 0) {
          // A timed wait that may time out must not lose a notification.
          while (items.empty() && !done) (void)cv.wait(std::chrono::microseconds(rng() % 200));
        } else {
          cv.wait_for([&] { return !items.empty() || done; });
        }
        if (items.empty()) return;
        sum.fetch_add(items.front());
        items.pop_front();
        count.fetch_add(1);
      }
    });
  }
  std::vector<std::thread> makers;
  for (int p = 0; p < producers; ++p) {
    makers.emplace_back([&] {
      for (int i = 1; i <= per_producer; ++i) {
        std::lock_guard hold(cv);
        items.push_back(i);
        cv.notify();
      }
    });
  }
  for (auto& t : makers) t.join();
  {
    std::lock_guard hold(cv);
    done = true;
    cv.notify_all();
  }
  for (auto& t : threads) t.join();
  REQUIRE(count.load() == producers * per_producer);
  REQUIRE(sum.load() == long{producers} * per_producer * (per_producer + 1) / 2);
}

TEST_CASE("A timed wait returns true exactly when a notify happened while it waited",
          "[threading][condition][stress]") {
  // One waiter with tiny timeouts, one notifier: a notify that found the
  // waiter (it is the only one) must make its wait return true even when
  // the timeout expires at the same moment; a wait with no notify in it
  // must return false (no spurious wake-ups).
  spindle::Condition cv;
  long notifies = 0;  // guarded by cv
  std::atomic<bool> stop{false};
  const int waits = 3000 / divisor;
  int mismatches = 0, notified = 0, timed_out = 0;
  std::thread waiter([&] {
    std::mt19937 rng(7);
    for (int i = 0; i < waits; ++i) {
      std::unique_lock hold(cv);
      const long before = notifies;
      const bool r = cv.wait(std::chrono::microseconds(rng() % 300));
      const bool happened = notifies != before;
      if (r != happened) ++mismatches;
      ++(r ? notified : timed_out);
    }
    stop.store(true);
  });
  std::thread notifier([&] {
    std::mt19937 rng(8);
    while (!stop.load()) {
      {
        std::lock_guard hold(cv);
        ++notifies;
        cv.notify();
      }
      for (unsigned spin = rng() % 2000; spin > 0; --spin) std::this_thread::yield();
    }
  });
  waiter.join();
  notifier.join();
  INFO("notified " << notified << ", timed out " << timed_out);
  REQUIRE(mismatches == 0);
  REQUIRE(notified + timed_out == waits);
}

// ---------------------------------------------------------------------------
// Semaphore, BoundedSemaphore

TEST_CASE("A Semaphore counts permits; acquire blocks at zero until a release",
          "[threading][semaphore]") {
  spindle::Semaphore sem(2);
  REQUIRE(sem.value() == 2);
  REQUIRE(sem.try_acquire());
  sem.acquire();
  REQUIRE(sem.value() == 0);
  REQUIRE_FALSE(sem.try_acquire());
  Tids tids(1);
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    tids.publish(0);
    sem.acquire();
    got.store(true);
  });
  REQUIRE(tids.all_sleeping());
  REQUIRE_FALSE(got.load());
  sem.release();
  waiter.join();
  REQUIRE(got.load());
  REQUIRE(sem.value() == 0);
  spindle::Semaphore zero(0);
  REQUIRE_FALSE(zero.try_acquire());
  spindle::Semaphore dflt;
  REQUIRE(dflt.value() == 1);
}

TEST_CASE("release(n) wakes n blocked acquirers", "[threading][semaphore]") {
  spindle::Semaphore sem(0);
  constexpr std::size_t waiters = 4;
  Tids tids(waiters);
  std::atomic<int> got{0};
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < waiters; ++i) {
    threads.emplace_back([&, i] {
      tids.publish(i);
      if (i % 2 == 0) {
        sem.acquire();
      } else {
        REQUIRE(sem.acquire(1h));
      }
      got.fetch_add(1);
    });
  }
  REQUIRE(tids.all_sleeping());
  sem.release(3);
  REQUIRE(spindle_test::spin_until([&] { return got.load() == 3; }));
  REQUIRE(sem.value() == 0);
  sem.release();
  for (auto& t : threads) t.join();
  REQUIRE(got.load() == 4);
}

TEST_CASE("A timed Semaphore acquire gives up after the timeout", "[threading][semaphore][timing]") {
  spindle::Semaphore sem(0);
  bool got = true;
  const auto took = timed([&] { got = sem.acquire(short_timeout); });
  REQUIRE_FALSE(got);
  REQUIRE(took >= short_timeout);
  REQUIRE(took < short_timeout + generous);
  REQUIRE_FALSE(sem.acquire(0s));
  sem.release();
  REQUIRE(sem.acquire(0s));
}

TEST_CASE("Semaphore misuse: negative value, release(0), overflow", "[threading][semaphore]") {
  REQUIRE_THROWS_AS(spindle::Semaphore(-1), std::invalid_argument);
  REQUIRE_THROWS_AS(spindle::BoundedSemaphore(-1), std::invalid_argument);
  spindle::Semaphore sem(0);
  REQUIRE_THROWS_AS(sem.release(0), std::invalid_argument);
  REQUIRE_THROWS_AS(sem.release(-2), std::invalid_argument);
  spindle::Semaphore big(4294967295);
  REQUIRE_THROWS_AS(big.release(), std::overflow_error);
  REQUIRE(big.value() == 4294967295u);
}

TEST_CASE("Releasing a BoundedSemaphore above its initial value is a logic_error",
          "[threading][semaphore]") {
  spindle::BoundedSemaphore sem(2);
  REQUIRE_THROWS_AS(sem.release(), std::logic_error);
  REQUIRE(sem.value() == 2);
  sem.acquire();
  REQUIRE_THROWS_AS(sem.release(2), std::logic_error);  // 1 + 2 > 2: nothing changes
  REQUIRE(sem.value() == 1);
  sem.release();
  REQUIRE(sem.value() == 2);
  spindle::Semaphore& as_base = sem;  // a BoundedSemaphore is a Semaphore
  REQUIRE_THROWS_AS(as_base.release(), std::logic_error);
}

TEST_CASE("A Semaphore bounds concurrent work under stress", "[threading][semaphore][stress]") {
  constexpr int limit = 3;
  spindle::BoundedSemaphore sem(limit);
  std::atomic<int> inside{0}, most{0};
  std::atomic<long> done{0};
  const int threads = 8, per_thread = 20000 / divisor;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < per_thread; ++i) {
        if (rng() % 3 == 0) {
          while (!sem.acquire(std::chrono::microseconds(rng() % 100))) {
          }
        } else {
          sem.acquire();
        }
        const int now = inside.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        if (rng() % 16 == 0) std::this_thread::yield();
        inside.fetch_sub(1);
        done.fetch_add(1);
        sem.release();
      }
    });
  }
  for (auto& t : pool) t.join();
  REQUIRE(most.load() <= limit);
  REQUIRE(most.load() >= 1);
  REQUIRE(done.load() == long{threads} * per_thread);
  REQUIRE(sem.value() == static_cast<std::size_t>(limit));
}

// ---------------------------------------------------------------------------
// Barrier

TEST_CASE("Barrier: parties must be at least one; one party passes at once",
          "[threading][barrier]") {
  REQUIRE_THROWS_AS(spindle::Barrier(0), std::invalid_argument);
  int actions = 0;
  spindle::Barrier one(1, [&] { ++actions; });
  REQUIRE(one.parties() == 1);
  REQUIRE(one.wait() == 0);
  REQUIRE(one.wait() == 0);
  REQUIRE(actions == 2);
}

TEST_CASE("Barrier: arrival indices are 0..parties-1 and the action runs before any release",
          "[threading][barrier]") {
  constexpr std::size_t parties = 4;
  constexpr int rounds = 50;
  std::atomic<int> actions{0};
  spindle::Barrier barrier(parties, [&] { actions.fetch_add(1); });
  REQUIRE(barrier.parties() == parties);
  std::vector<std::vector<std::size_t>> indices(parties);
  std::vector<std::vector<int>> seen_actions(parties);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < parties; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < rounds; ++r) {
        indices[t].push_back(barrier.wait());
        seen_actions[t].push_back(actions.load());
      }
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(actions.load() == rounds);
  for (int r = 0; r < rounds; ++r) {
    std::set<std::size_t> round_indices;
    for (std::size_t t = 0; t < parties; ++t) {
      round_indices.insert(indices[t][static_cast<std::size_t>(r)]);
      // Released after round r's action and before round r+1's could run.
      REQUIRE(seen_actions[t][static_cast<std::size_t>(r)] == r + 1);
    }
    REQUIRE(round_indices == std::set<std::size_t>{0, 1, 2, 3});
  }
  REQUIRE(barrier.n_waiting() == 0);
  REQUIRE_FALSE(barrier.broken());
}

TEST_CASE("Barrier: a wait timeout breaks it for every waiter until reset",
          "[threading][barrier][timing]") {
  spindle::Barrier barrier(3);
  Tids tids(1);
  bool other_broken = false;
  std::thread other([&] {
    tids.publish(0);
    try {
      barrier.wait();
    } catch (const spindle::BrokenBarrierError&) {
      other_broken = true;
    }
  });
  REQUIRE(spindle_test::spin_until([&] { return barrier.n_waiting() == 1; }));
  Clock::duration took{};
  bool threw = false;
  took = timed([&] {
    try {
      barrier.wait(short_timeout);
    } catch (const spindle::BrokenBarrierError&) {
      threw = true;
    }
  });
  other.join();
  REQUIRE(threw);
  REQUIRE(other_broken);
  REQUIRE(took >= short_timeout);
  REQUIRE(took < short_timeout + generous);
  REQUIRE(barrier.broken());
  REQUIRE_THROWS_AS(barrier.wait(), spindle::BrokenBarrierError);  // later waits too
  barrier.reset();
  REQUIRE_FALSE(barrier.broken());
  REQUIRE(barrier.n_waiting() == 0);
  // Usable again for a full round.
  spindle::Barrier& b = barrier;
  std::thread t1([&] { b.wait(); });
  std::thread t2([&] { b.wait(); });
  b.wait();
  t1.join();
  t2.join();
}

TEST_CASE("Barrier: the constructor's timeout applies to every wait",
          "[threading][barrier][timing]") {
  spindle::Barrier barrier(2, {}, short_timeout);
  const auto took = timed([&] { REQUIRE_THROWS_AS(barrier.wait(), spindle::BrokenBarrierError); });
  REQUIRE(took >= short_timeout);
  REQUIRE(barrier.broken());
}

TEST_CASE("Barrier: abort() breaks it for present and future waiters", "[threading][barrier]") {
  spindle::Barrier barrier(4);
  std::atomic<int> broken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&] {
      try {
        barrier.wait();
      } catch (const spindle::BrokenBarrierError&) {
        broken.fetch_add(1);
      }
    });
  }
  REQUIRE(spindle_test::spin_until([&] { return barrier.n_waiting() == 3; }));
  barrier.abort();
  for (auto& t : threads) t.join();
  REQUIRE(broken.load() == 3);
  REQUIRE(barrier.broken());
  REQUIRE_THROWS_AS(barrier.wait(1h), spindle::BrokenBarrierError);
  barrier.reset();
  REQUIRE_FALSE(barrier.broken());
}

TEST_CASE("Barrier: reset() during a wait breaks the waiters; the barrier then works",
          "[threading][barrier]") {
  spindle::Barrier barrier(3);
  std::atomic<int> broken{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      try {
        barrier.wait();
      } catch (const spindle::BrokenBarrierError&) {
        broken.fetch_add(1);
      }
    });
  }
  REQUIRE(spindle_test::spin_until([&] { return barrier.n_waiting() == 2; }));
  barrier.reset();
  for (auto& t : threads) t.join();
  REQUIRE(broken.load() == 2);
  REQUIRE_FALSE(barrier.broken());
  std::vector<std::size_t> got(3);
  threads.clear();
  for (std::size_t i = 0; i < 2; ++i) threads.emplace_back([&, i] { got[i] = barrier.wait(); });
  got[2] = barrier.wait();
  for (auto& t : threads) t.join();
  std::sort(got.begin(), got.end());
  REQUIRE(got == std::vector<std::size_t>{0, 1, 2});
}

TEST_CASE("Barrier: a throwing action breaks the barrier; its thread gets the exception",
          "[threading][barrier]") {
  spindle::Barrier barrier(2, [] { throw std::runtime_error("action failed"); });
  bool other_broken = false;
  std::thread other([&] {
    try {
      barrier.wait();
    } catch (const spindle::BrokenBarrierError&) {
      other_broken = true;
    } catch (const std::runtime_error&) {
      // This thread arrived last and ran the action: then the main thread
      // is the broken one.
    }
  });
  bool main_broken = false, main_action = false;
  try {
    barrier.wait();
  } catch (const spindle::BrokenBarrierError&) {
    main_broken = true;
  } catch (const std::runtime_error& e) {
    main_action = std::string(e.what()) == "action failed";
  }
  other.join();
  REQUIRE(barrier.broken());
  REQUIRE(main_broken != main_action);   // exactly one of the two kinds here
  REQUIRE(other_broken == main_action);  // and the other kind in the other thread
}

TEST_CASE("Barrier: the action may abort the round; wait from the action is a logic_error",
          "[threading][barrier]") {
  spindle::Barrier* self = nullptr;
  bool wait_threw = false;
  spindle::Barrier barrier(1, [&] {
    try {
      self->wait();
    } catch (const std::logic_error&) {
      wait_threw = true;
    }
    self->abort();
  });
  self = &barrier;
  REQUIRE_THROWS_AS(barrier.wait(), spindle::BrokenBarrierError);
  REQUIRE(wait_threw);
  REQUIRE(barrier.broken());
}

TEST_CASE("Barrier: abort and reset racing waiters never hang or mix up rounds",
          "[threading][barrier][stress]") {
  constexpr std::size_t parties = 4;
  std::atomic<int> action_rounds{0};
  spindle::Barrier barrier(parties, [&] { action_rounds.fetch_add(1); });
  std::atomic<bool> stop{false};
  // (action round seen after return, index) per successful wait.
  std::vector<std::vector<std::pair<int, std::size_t>>> passed(parties);
  std::vector<int> broken(parties, 0);
  std::atomic<std::size_t> exited{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < parties; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t + 1));
      while (!stop.load()) {
        try {
          std::size_t index = 0;
          if (rng() % 2) {
            index = barrier.wait();
          } else {
            index = barrier.wait(std::chrono::microseconds(100 + rng() % 2000));
          }
          passed[t].emplace_back(action_rounds.load(), index);
        } catch (const spindle::BrokenBarrierError&) {
          ++broken[t];
          // Whoever sees it broken may reset it, racing the others.
          if (rng() % 2) barrier.reset();
        }
      }
      exited.fetch_add(1);
    });
  }
  std::thread chaos([&] {
    std::mt19937 rng(99);
    const int events = 300 / divisor;
    for (int i = 0; i < events; ++i) {
      for (unsigned spin = rng() % 20000; spin > 0; --spin) std::this_thread::yield();
      if (rng() % 2) {
        barrier.abort();
      } else {
        barrier.reset();
      }
    }
    stop.store(true);
  });
  chaos.join();
  // Keep breaking until every worker noticed the stop and left.
  while (exited.load() < parties) {
    barrier.abort();
    std::this_thread::yield();
  }
  for (auto& t : threads) t.join();
  // Every round that passed was passed by all parties with indices 0..3.
  std::map<int, std::multiset<std::size_t>> rounds;
  for (auto& per_thread : passed)
    for (auto& [round, index] : per_thread) rounds[round].insert(index);
  for (auto& [round, idx] : rounds) {
    INFO("round " << round);
    REQUIRE(idx == std::multiset<std::size_t>{0, 1, 2, 3});
  }
  REQUIRE(rounds.size() == static_cast<std::size_t>(action_rounds.load()));
  // And a clean round still works after all that.
  barrier.reset();
  std::vector<std::thread> last;
  for (std::size_t i = 0; i + 1 < parties; ++i) last.emplace_back([&] { barrier.wait(); });
  barrier.wait();
  for (auto& t : last) t.join();
}

TEST_CASE("The locks work with std::unique_lock, std::scoped_lock and timed try_lock",
          "[threading][lock]") {
  spindle::Lock a;
  spindle::RLock b;
  spindle::Semaphore s(1);
  spindle::Condition cv;
  {
    std::scoped_lock both(a, b);  // std::lock's deadlock avoidance uses try_lock
    REQUIRE(a.locked());
    REQUIRE(b.is_owned());
  }
  REQUIRE_FALSE(a.locked());
  REQUIRE_FALSE(b.locked());
  std::unique_lock ua(a, std::defer_lock);
  REQUIRE(ua.try_lock_for(1ms));
  std::unique_lock us(s, std::defer_lock);
  REQUIRE(us.try_lock_until(Clock::now() + 1s));
  REQUIRE(s.value() == 0);
  us.unlock();
  REQUIRE(s.value() == 1);
  std::unique_lock uc(cv, std::defer_lock);
  REQUIRE(uc.try_lock_for(0s));
  bool other_got_a = true;
  std::thread other([&] { other_got_a = a.try_lock(); });  // held by the main thread
  other.join();
  REQUIRE(ua.owns_lock());
  REQUIRE_FALSE(other_got_a);
}

TEST_CASE("Barrier: an action that resets the barrier breaks its round but leaves it usable",
          "[threading][barrier]") {
  spindle::Barrier* self = nullptr;
  int actions = 0;
  spindle::Barrier barrier(2, [&] {
    if (++actions == 1) self->reset();  // only the first round resets itself
  });
  self = &barrier;
  bool other_broken = false;
  std::thread other([&] {
    try {
      barrier.wait();
    } catch (const spindle::BrokenBarrierError&) {
      other_broken = true;
    }
  });
  bool main_broken = false;
  try {
    barrier.wait();
  } catch (const spindle::BrokenBarrierError&) {
    main_broken = true;
  }
  other.join();
  REQUIRE(other_broken);  // the waiter of the reset round, and
  REQUIRE(main_broken);   // the thread that ran the action
  REQUIRE_FALSE(barrier.broken());  // reset, not abort: ready for the next round
  std::thread again([&] { barrier.wait(); });
  REQUIRE(barrier.wait() < 2);
  again.join();
  REQUIRE(actions == 2);
}
