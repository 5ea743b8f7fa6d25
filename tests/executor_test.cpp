// SPDX-License-Identifier: MIT
// tests/executor_test.cpp - tests for spindle::ThreadPoolExecutor.
#include <spindle/executor.hpp>

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"
#include "support/thread_state.hpp"

#include <spindle/event.hpp>
#include <spindle/future.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <latch>
#include <list>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <pthread.h>
#include <sched.h>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using spindle::Future;
using spindle::ThreadPoolExecutor;

namespace {

// ThreadSanitizer makes thread creation and atomics ~10x slower: loops that
// create many pools or tasks scale down under it to stay within the time
// budget (see each test for the numbers).
constexpr int sanitizer_divisor = spindle_test::tsan_divisor(10);

struct HandlerGuard {
  ~HandlerGuard() { spindle::set_callback_exception_handler(nullptr); }
};

}  // namespace

TEST_CASE("A submitted call's value reaches result()", "[executor]") {
  ThreadPoolExecutor pool(2);
  auto sum = pool.submit([](int a, int b) { return a + b; }, 2, 3);
  auto text = pool.submit([](std::string s) { return s + "!"; }, std::string("spam"));
  std::atomic<int> touched{0};
  Future<void> nothing = pool.submit([&touched] { touched = 1; });
  REQUIRE(sum.result() == 5);
  REQUIRE(text.result() == "spam!");
  nothing.result();
  REQUIRE(touched == 1);
  REQUIRE(sum.done());
  REQUIRE_FALSE(sum.running());
}

TEST_CASE("Move-only arguments and results pass through submit", "[executor]") {
  ThreadPoolExecutor pool(1);
  auto f = pool.submit([](std::unique_ptr<int> p) { return std::make_unique<int>(*p * 2); },
                       std::make_unique<int>(21));
  REQUIRE(*f.result() == 42);
  int x = 1;
  pool.submit([](int& r) { r = 7; }, std::ref(x)).result();
  REQUIRE(x == 7);
}

TEST_CASE("A task's exception is rethrown by result() unchanged and returned by exception()",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  struct Custom : std::runtime_error {
    explicit Custom(int v) : std::runtime_error("custom"), value(v) {}
    int value;
  };
  auto f = pool.submit([]() -> int { throw Custom(17); });
  try {
    (void)f.result();
    FAIL("no exception");
  } catch (const Custom& e) {
    REQUIRE(e.value == 17);
  }
  auto e1 = f.exception();
  REQUIRE(e1 != nullptr);
  REQUIRE(e1 == f.exception());  // the same stored exception, every time
  auto g = pool.submit([] { return 1; });
  REQUIRE(g.exception() == nullptr);
}

// Effective Python, Item 59: an I/O error raised inside game_logic reaches
// the caller of result().
TEST_CASE("Item 59: an I/O error raised inside game_logic reaches the caller of result()",
          "[executor]") {
  constexpr char alive = '*';
  auto game_logic = [](char state, int neighbors) -> char {
    (void)state;
    (void)neighbors;
    // Do some blocking input/output in here ... which fails:
    throw std::system_error(EIO, std::generic_category(), "Problem with I/O");
  };
  ThreadPoolExecutor pool(10);
  auto task = pool.submit(game_logic, alive, 3);
  try {
    (void)task.result();
    FAIL("no exception");
  } catch (const std::system_error& e) {
    REQUIRE(e.code() == std::errc::io_error);
    REQUIRE(std::string(e.what()).find("Problem with I/O") != std::string::npos);
  }
}

// Fluent Python, Example 17-4 (flags_threadpool_ac.py): submit + as_completed
// with 3 workers and 5 countries; results arrive out of submission order.
// The "downloads" finish in an order the test controls with gates, so the
// check is deterministic.
TEST_CASE("Fluent Python 17-4: as_completed yields results out of submission order",
          "[executor]") {
  const std::vector<std::string> cc_list{"BR", "CN", "ID", "IN", "US"};  // sorted
  const std::vector<std::string> finish_order{"CN", "ID", "BR", "US", "IN"};
  std::vector<spindle::Event> gates(cc_list.size());
  std::latch three_running(3);
  auto index_of = [&](const std::string& cc) {
    return static_cast<std::size_t>(std::find(cc_list.begin(), cc_list.end(), cc) -
                                    cc_list.begin());
  };
  auto download_one = [&](std::string cc) {
    if (index_of(cc) < 3) three_running.count_down();
    gates[index_of(cc)].wait();
    return cc;
  };
  std::vector<std::string> results;
  bool pending_while_three_run = false;
  {
    ThreadPoolExecutor executor(3);
    std::vector<Future<std::string>> to_do;
    for (const auto& cc : cc_list) to_do.push_back(executor.submit(download_one, cc));
    three_running.wait();
    // Three workers are busy, so the last two are still pending, as the
    // book's "Scheduled for IN: <Future state=pending>" shows.
    pending_while_three_run = !to_do[3].running() && !to_do[4].running() && to_do[0].running();
    gates[index_of(finish_order[0])].set();
    for (auto& future : spindle::as_completed(to_do)) {
      results.push_back(future.result());
      if (results.size() < finish_order.size())
        gates[index_of(finish_order[results.size()])].set();
    }
  }
  REQUIRE(pending_while_three_run);
  REQUIRE(results == finish_order);
  REQUIRE(results != cc_list);
}

// Effective Python, Item 64: gcd over pool.map, same answers as serial map.
TEST_CASE("Item 64: gcd over map gives the serial answers in input order", "[executor]") {
  auto gcd = [](std::pair<long, long> pair) {
    auto [a, b] = pair;
    for (long i = std::min(a, b); i > 0; --i)
      if (a % i == 0 && b % i == 0) return i;
    throw std::logic_error("Not reachable");
  };
  const std::vector<std::pair<long, long>> numbers{
      {1963309, 2265973}, {2030677, 3814172}, {1551645, 2229620}, {2039045, 2020802},
      {1823712, 1924928}, {2293129, 1020491}, {1281238, 2273782}, {3823812, 4237281},
      {3812741, 4729139}, {1292391, 2123811}};
  std::vector<long> serial;
  for (auto pair : numbers) serial.push_back(std::gcd(pair.first, pair.second));
  ThreadPoolExecutor pool(2);
  std::vector<long> results;
  for (long r : pool.map(gcd, numbers)) results.push_back(r);
  REQUIRE(results == serial);
}

TEST_CASE("cancel() succeeds only on pending work, and cancelled work never runs",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  spindle::Event started;
  spindle::Event release;
  std::atomic<int> second_ran{0};
  auto first = pool.submit([&] {
    started.set();
    release.wait();
    return 1;
  });
  auto second = pool.submit([&] { second_ran = 1; });
  started.wait();
  REQUIRE(first.running());
  REQUIRE_FALSE(first.cancel());  // running: too late
  REQUIRE(second.cancel());       // pending: cancelled
  REQUIRE(second.cancelled());
  release.set();
  REQUIRE(first.result() == 1);
  pool.wait_for_all();
  REQUIRE(second_ran == 0);
  REQUIRE_THROWS_AS(second.result(), spindle::CancelledError);
  REQUIRE_FALSE(first.cancel());  // finished: too late as well
}

TEST_CASE("shutdown(cancel_futures=true) cancels every pending future", "[executor]") {
  auto wait_flag = GENERATE(false, true);
  ThreadPoolExecutor pool(2);
  spindle::Event release;
  std::latch both_started(2);
  std::atomic<int> ran{0};
  std::vector<Future<void>> blockers;
  for (int i = 0; i < 2; ++i)
    blockers.push_back(pool.submit([&] {
      both_started.count_down();
      release.wait();
    }));
  both_started.wait();
  std::vector<Future<void>> pending;
  for (int i = 0; i < 100; ++i) pending.push_back(pool.submit([&] { ran.fetch_add(1); }));
  std::thread shutter;
  if (wait_flag) {
    // shutdown(true, true) blocks until the running blockers finish.
    shutter = std::thread([&] { pool.shutdown(true, true); });
    for (auto& f : pending) f.wait();  // cancellation completes them without running
    release.set();
    shutter.join();
  } else {
    pool.shutdown(false, true);
    release.set();
  }
  int cancelled = 0;
  for (auto& f : pending) cancelled += f.cancelled() ? 1 : 0;
  for (auto& f : blockers) f.result();
  REQUIRE(cancelled == 100);
  REQUIRE(ran == 0);
  REQUIRE_THROWS_AS(pool.submit([] {}), spindle::ExecutorShutdown);
}

TEST_CASE("submit after shutdown throws ExecutorShutdown", "[executor]") {
  ThreadPoolExecutor pool(2);
  REQUIRE(pool.submit([] { return 1; }).result() == 1);
  pool.shutdown();
  REQUIRE_THROWS_AS(pool.submit([] { return 1; }), spindle::ExecutorShutdown);
  REQUIRE_THROWS_AS(pool.map([](int x) { return x; }, std::vector{1}), spindle::ExecutorShutdown);
  pool.shutdown();  // idempotent
  pool.shutdown(false, true);
}

TEST_CASE("The destructor waits for work already submitted", "[executor]") {
  std::atomic<int> done{0};
  std::vector<Future<int>> futures;
  {
    ThreadPoolExecutor pool(2);
    for (int i = 0; i < 40; ++i)
      futures.push_back(pool.submit([&done, i] {
        std::this_thread::sleep_for(1ms);  // simulated work
        done.fetch_add(1);
        return i;
      }));
  }
  REQUIRE(done == 40);
  for (int i = 0; i < 40; ++i) REQUIRE(futures[static_cast<std::size_t>(i)].done());
}

TEST_CASE("shutdown(wait=false) returns at once and the work still completes", "[executor]") {
  spindle::Event release;
  ThreadPoolExecutor pool(1);
  auto f = pool.submit([&] {
    release.wait();
    return 3;
  });
  pool.shutdown(false);
  REQUIRE_FALSE(f.done());
  release.set();
  REQUIRE(f.result() == 3);
}

TEST_CASE("map keeps input order whatever order the calls finish in", "[executor]") {
  ThreadPoolExecutor pool(4);
  std::vector<int> inputs(20);
  std::iota(inputs.begin(), inputs.end(), 0);
  std::vector<int> out;
  for (int v : pool.map(
           [](int x) {
             // Simulated work, shorter for later inputs, so they tend to finish first.
             std::this_thread::sleep_for(std::chrono::microseconds(200 * (20 - x)));
             return x * x;
           },
           inputs))
    out.push_back(v);
  std::vector<int> expected;
  for (int x : inputs) expected.push_back(x * x);
  REQUIRE(out == expected);
}

TEST_CASE("map is lazy: the first result is available before the last call finishes",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  spindle::Event release_last;
  auto results = pool.map(
      [&](int x) {
        if (x == 2) release_last.wait();
        return x;
      },
      std::vector{0, 1, 2});
  auto it = results.begin();
  REQUIRE(*it == 0);  // does not wait for the blocked third call
  ++it;
  REQUIRE(*it == 1);
  ++it;
  release_last.set();
  REQUIRE(*it == 2);
  ++it;
  REQUIRE(it == results.end());
}

TEST_CASE("map rethrows a call's exception at that call's position", "[executor]") {
  ThreadPoolExecutor pool(3);
  auto results = pool.map(
      [](int x) {
        if (x == 2) throw std::runtime_error("bad input 2");
        return x * 10;
      },
      std::vector{0, 1, 2, 3});
  std::vector<int> before;
  auto it = results.begin();
  before.push_back(*it);
  ++it;
  before.push_back(*it);
  ++it;
  REQUIRE(before == std::vector<int>{0, 10});
  REQUIRE_THROWS_WITH(*it, "bad input 2");
  ++it;  // the iteration may go on past the failed position
  REQUIRE(*it == 30);
}

TEST_CASE("map's timeout throws TimeoutError at an unfinished position", "[executor][timing]") {
  ThreadPoolExecutor pool(2);
  spindle::Event release;
  const auto start = Clock::now();
  {
    auto results = pool.map(
        [&](int x) {
          if (x == 1) release.wait();
          return x;
        },
        std::vector{0, 1}, 100ms);
    auto it = results.begin();
    REQUIRE(*it == 0);
    ++it;
    REQUIRE_THROWS_AS(*it, spindle::TimeoutError);
    REQUIRE(Clock::now() - start >= 100ms);
    release.set();
  }
  REQUIRE(Clock::now() - start < 20s);
}

TEST_CASE("Destroying a started map's results cancels the calls that have not started",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  spindle::Event started;
  spindle::Event release;
  std::atomic<int> ran{0};
  {
    auto results = pool.map(
        [&](int x) {
          if (x == 0) {
            started.set();
            release.wait();
          }
          ran.fetch_add(1);
          return x;
        },
        std::vector{0, 1, 2, 3});
    (void)results.begin();  // the iteration started (Python: next() on the generator)
    started.wait();
  }
  release.set();
  pool.wait_for_all();
  REQUIRE(ran == 1);  // only the call that was running
}

TEST_CASE("Dropping a map's results without iterating leaves every call to run, as Python",
          "[executor]") {
  std::atomic<int> ran{0};
  {
    ThreadPoolExecutor pool(1);
    spindle::Event release;
    auto blocker = pool.submit([&] { release.wait(); });
    (void)pool.map([&](int x) { return ran.fetch_add(1) + x; }, std::vector{0, 1, 2, 3});
    release.set();
    pool.shutdown();
  }
  REQUIRE(ran == 4);
}

TEST_CASE("result() on a future of the same pool inside a worker does not deadlock",
          "[executor]") {
  auto workers = GENERATE(1, 2);
  ThreadPoolExecutor pool(static_cast<std::size_t>(workers));
  auto outer = pool.submit([&pool] {
    std::vector<Future<int>> inner;
    for (int i = 0; i < 50; ++i) inner.push_back(pool.submit([i] { return i; }));
    int sum = 0;
    for (auto& f : inner) sum += f.result();  // the worker runs the inner tasks itself
    return sum;
  });
  REQUIRE(outer.result(60s) == 1225);
}

TEST_CASE("as_completed and wait inside a one-worker pool run the pool's work meanwhile",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  auto outer = pool.submit([&pool] {
    std::vector<Future<int>> inner;
    for (int i = 0; i < 20; ++i) inner.push_back(pool.submit([i] { return i; }));
    int sum = 0;
    for (auto& f : spindle::as_completed(inner)) sum += f.result();
    std::vector<Future<int>> more;
    for (int i = 0; i < 5; ++i) more.push_back(pool.submit([i] { return i; }));
    auto r = spindle::wait(more);
    return sum + static_cast<int>(r.done.size());
  });
  REQUIRE(outer.result(60s) == 190 + 5);
}

TEST_CASE("When every worker waits on a future, a waiting worker runs queued work",
          "[executor]") {
  // The last resort that keeps a full pool from deadlocking: the only
  // worker waits on a promise that only a task queued behind it can set.
  ThreadPoolExecutor pool(1);
  spindle::Promise<int> p;
  auto pf = p.get_future();
  spindle::Event waiting;
  auto outer = pool.submit([&] {
    waiting.set();
    return pf.result() + 1;
  });
  waiting.wait();
  pool.submit([&p] { p.set_result(41); });
  REQUIRE(outer.result(60s) == 42);
}

TEST_CASE("A worker waiting on a promise leaves queued work to a free worker", "[executor]") {
  ThreadPoolExecutor pool(2);
  spindle::Promise<int> p;
  auto pf = p.get_future();
  std::atomic<pthread_t> outer_thread{};
  std::atomic<pthread_t> setter_thread{};
  spindle::Event waiting;
  auto outer = pool.submit([&] {
    outer_thread = pthread_self();
    waiting.set();
    return pf.result() + 1;
  });
  waiting.wait();
  pool.submit([&] {
    setter_thread = pthread_self();
    p.set_result(41);
  });
  REQUIRE(outer.result(60s) == 42);
  pool.wait_for_all();
  REQUIRE_FALSE(pthread_equal(outer_thread.load(), setter_thread.load()));
}

TEST_CASE("Shutting down while a task waits on a promise that a queued task sets completes",
          "[executor]") {
  // The setter may be queued when shutdown stops new threads: the waiting
  // worker is then all there is, and must run it.
  auto workers = GENERATE(1, 2, 3, 8);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> got{0};
    {
      ThreadPoolExecutor pool(static_cast<std::size_t>(workers));
      auto p = std::make_shared<spindle::Promise<int>>();
      auto f = p->get_future();
      pool.submit([f, &got] { got = f.result(); });
      pool.submit([p] { p->set_result(7); });
    }  // the destructor waits for both
    REQUIRE(got.load() == 7);
  }
}

TEST_CASE("A worker running a task inside a wait is not counted as waiting", "[executor]") {
  // Both workers wait on promises, so task X runs nested inside one of those
  // waits (the last resort) and waits itself. Then the other worker is freed
  // and kept busy (blocked on an Event, not on a future): only one worker
  // waits now, so a new task Y must go to the busy worker once it is free,
  // never nest inside X's wait.
  ThreadPoolExecutor pool(2);
  spindle::Promise<void> pa, pb, px;
  auto fa = pa.get_future(), fb = pb.get_future(), fx = px.get_future();
  std::atomic<pthread_t> thread_a{}, thread_b{}, thread_x{}, thread_y{};
  std::atomic<int> waiting{0};
  std::atomic<bool> busy{false};
  spindle::Event x_waits, keep_busy;
  auto wait_then_busy = [&](std::atomic<pthread_t>* me, Future<void> f) {
    *me = pthread_self();
    ++waiting;
    f.result();
    busy = true;
    keep_busy.wait();
  };
  auto a = pool.submit(wait_then_busy, &thread_a, fa);
  auto b = pool.submit(wait_then_busy, &thread_b, fb);
  REQUIRE(spindle_test::spin_until([&] { return waiting.load() == 2; }));
  auto x = pool.submit([&] {
    thread_x = pthread_self();
    x_waits.set();
    fx.result();
  });
  REQUIRE(x_waits.wait(30s));
  const bool x_on_a = pthread_equal(thread_x.load(), thread_a.load()) != 0;
  (x_on_a ? pb : pa).set_result();  // the other worker leaves its wait, then blocks on keep_busy
  REQUIRE(spindle_test::spin_until([&] { return busy.load(); }));
  auto y = pool.submit([&] { thread_y = pthread_self(); });
  keep_busy.set();
  REQUIRE(y.wait(30s));
  REQUIRE_FALSE(pthread_equal(thread_y.load(), thread_x.load()));
  px.set_result();
  (x_on_a ? pa : pb).set_result();
  x.result();
  a.result();
  b.result();
}

TEST_CASE("A waiting worker runs the task it waits for, not unrelated queued work",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  std::atomic<bool> unrelated_ran_inside{false};
  std::atomic<bool> waiting{false};
  auto outer = pool.submit([&] {
    // Queued behind us on the only worker: unrelated work, then our inner task.
    auto unrelated = pool.submit([&] {
      if (waiting.load()) unrelated_ran_inside = true;
    });
    auto inner = pool.submit([] { return 7; });
    waiting = true;
    const int v = inner.result();  // runs `inner` here, and only it
    waiting = false;
    return v;
  });
  REQUIRE(outer.result(60s) == 7);
  pool.wait_for_all();
  REQUIRE_FALSE(unrelated_ran_inside.load());
}

TEST_CASE("A timed wait inside a worker keeps its timeout", "[executor][timing]") {
  ThreadPoolExecutor pool(1);
  spindle::Event release;
  auto outer = pool.submit([&] {
    // The only worker is ours: the inner task cannot start, and a timed wait
    // must not run it here (it would block on `release` past the timeout).
    auto inner = pool.submit([&] {
      release.wait();
      return 1;
    });
    const auto start = Clock::now();
    try {
      (void)inner.result(50ms);
      return std::string("returned a value");
    } catch (const spindle::TimeoutError&) {
      return std::string(Clock::now() - start < 30s ? "timed out" : "timed out late");
    }
  });
  REQUIRE(outer.result(60s) == "timed out");
  release.set();
  pool.wait_for_all();
}

TEST_CASE("Waits nested 1000 deep inside a worker throw RecursionError", "[executor]") {
  ThreadPoolExecutor pool(1);
  std::function<int(int)> chain = [&](int n) -> int {
    if (n == 0) return 0;
    return pool.submit(chain, n - 1).result() + 1;  // each wait runs the next link inline
  };
  REQUIRE(pool.submit(chain, 500).result(60s) == 500);
  REQUIRE_THROWS_AS(pool.submit(chain, 5000).result(60s), spindle::RecursionError);
  REQUIRE(pool.submit(chain, 10).result(60s) == 10);  // the pool is still fine
}

TEST_CASE("Recursive fib with nested submits completes on pools of 1, 2 and 6 workers",
          "[executor]") {
  // Each wait runs the awaited call itself if no worker has started it
  // (before, a waiting worker ran any queued task and overflowed its stack).
  auto workers = GENERATE(1, 2, 6);
  ThreadPoolExecutor pool(static_cast<std::size_t>(workers));
  std::function<long(int)> fib = [&](int n) -> long {
    if (n < 2) return n;
    auto a = pool.submit(fib, n - 1);
    auto b = pool.submit(fib, n - 2);
    return a.result() + b.result();
  };
  REQUIRE(pool.submit(fib, 18).result(60s) == 2584);
}

TEST_CASE("max_workers that is negative or absurd is rejected", "[executor]") {
  REQUIRE_THROWS_AS(ThreadPoolExecutor(static_cast<std::size_t>(-1)), std::invalid_argument);
  REQUIRE_THROWS_AS(ThreadPoolExecutor(ThreadPoolExecutor::max_max_workers + 1),
                    std::invalid_argument);
  REQUIRE_THROWS_WITH(ThreadPoolExecutor(static_cast<std::size_t>(-1)),
                      Catch::Contains("-1 as a signed number"));
}

// 100,000 cycles in the dev build; ThreadSanitizer makes each cycle ~10x
// slower, so it runs 10,000 there (sanitizer_divisor) to stay in budget.
TEST_CASE("Creating and destroying a pool 100,000 times never hangs", "[executor][stress]") {
  const int cycles = 100000 / sanitizer_divisor;
  int completed = 0;
  for (int i = 0; i < cycles; ++i) {
    ThreadPoolExecutor pool(2);
    ++completed;
  }
  // Every 100th pool also runs a task, which starts a worker thread.
  int ran = 0;
  for (int i = 0; i < cycles / 100; ++i) {
    ThreadPoolExecutor pool(2);
    ran += pool.submit([] { return 1; }).result();
  }
  REQUIRE(completed == cycles);
  REQUIRE(ran == cycles / 100);
}

TEST_CASE("Destroying a pool with work pending never hangs and runs the work",
          "[executor][stress]") {
  const int cycles = 2000 / sanitizer_divisor;
  std::atomic<int> ran{0};
  std::mt19937 rng(11);
  int submitted = 0;
  for (int i = 0; i < cycles; ++i) {
    const auto workers = static_cast<std::size_t>(1 + rng() % 3);
    const int tasks = static_cast<int>(rng() % 20);
    ThreadPoolExecutor pool(workers);
    for (int k = 0; k < tasks; ++k) pool.submit([&ran] { ran.fetch_add(1); });
    submitted += tasks;
  }
  REQUIRE(ran == submitted);
}

TEST_CASE("wait_for_all waits for every submitted task and leaves the pool usable",
          "[executor]") {
  ThreadPoolExecutor pool(3);
  std::atomic<int> done{0};
  for (int i = 0; i < 200; ++i)
    pool.submit([&] {
      if (done.load() % 50 == 0) std::this_thread::sleep_for(100us);  // simulated work
      done.fetch_add(1);
    });
  pool.wait_for_all();
  REQUIRE(done == 200);
  // Nested submissions count as well.
  pool.submit([&] {
    for (int i = 0; i < 10; ++i) pool.submit([&] { done.fetch_add(1); });
  });
  pool.wait_for_all();
  REQUIRE(done == 210);
  REQUIRE(pool.submit([] { return 5; }).result() == 5);  // still usable
}

TEST_CASE("wait_for_all(timeout) reports whether the pool went idle", "[executor][timing]") {
  ThreadPoolExecutor pool(1);
  spindle::Event release;
  pool.submit([&] { release.wait(); });
  const auto start = Clock::now();
  REQUIRE_FALSE(pool.wait_for_all(50ms));
  REQUIRE(Clock::now() - start >= 50ms);
  REQUIRE_FALSE(pool.wait_for_all(-1s));
  release.set();
  REQUIRE(pool.wait_for_all(60s));
}

TEST_CASE("max_workers == 0 is rejected with invalid_argument", "[executor]") {
  REQUIRE_THROWS_AS(ThreadPoolExecutor(0), std::invalid_argument);
  REQUIRE_THROWS_WITH(ThreadPoolExecutor(0), Catch::Contains("max_workers"));
}

TEST_CASE("The default max_workers follows Python: min(32, cores + 4)", "[executor]") {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  const auto cores = static_cast<std::size_t>(CPU_COUNT(&set));
  ThreadPoolExecutor pool;
  REQUIRE(pool.max_workers() == std::min<std::size_t>(32, cores + 4));
  ThreadPoolExecutor three(3);
  REQUIRE(three.max_workers() == 3);
}

TEST_CASE("A negative timeout on a pool future acts as zero", "[executor][timing]") {
  ThreadPoolExecutor pool(1);
  spindle::Event release;
  auto f = pool.submit([&] {
    release.wait();
    return 1;
  });
  const auto start = Clock::now();
  REQUIRE_THROWS_AS(f.result(-10s), spindle::TimeoutError);
  REQUIRE(Clock::now() - start < 5s);
  release.set();
  f.wait();
  REQUIRE(f.result(-10s) == 1);
}

TEST_CASE("The initializer runs once in each worker, and workers carry the name prefix",
          "[executor]") {
  std::atomic<int> initialized{0};
  std::mutex m;
  std::set<std::string> names;
  {
    ThreadPoolExecutor pool(
        3, {.initializer = [&] { initialized.fetch_add(1); }, .thread_name_prefix = "crawler"});
    std::latch all_busy(3);
    std::vector<Future<void>> fs;
    for (int i = 0; i < 3; ++i)
      fs.push_back(pool.submit([&] {
        all_busy.arrive_and_wait();  // forces three distinct workers
        char buf[16] = {};
        pthread_getname_np(pthread_self(), buf, sizeof buf);
        std::lock_guard lock(m);
        names.insert(buf);
      }));
    for (auto& f : fs) f.result();
  }
  REQUIRE(initialized == 3);
  REQUIRE(names == std::set<std::string>{"crawler_0", "crawler_1", "crawler_2"});
}

TEST_CASE("A failing initializer breaks the pool: work fails with BrokenExecutor",
          "[executor]") {
  ThreadPoolExecutor pool(1, {.initializer = [] { throw std::runtime_error("no database"); }});
  auto f = pool.submit([] { return 1; });
  REQUIRE_THROWS_AS(f.result(60s), spindle::BrokenExecutor);
  REQUIRE_THROWS_WITH(f.result(), Catch::Contains("no database"));
  REQUIRE_THROWS_AS(pool.submit([] { return 2; }), spindle::BrokenExecutor);
}

TEST_CASE("An exception from a done-callback on a worker goes to the handler, not the worker",
          "[executor]") {
  HandlerGuard guard;
  std::atomic<int> reported{0};
  spindle::set_callback_exception_handler([&](std::exception_ptr) { reported.fetch_add(1); });
  ThreadPoolExecutor pool(1);
  spindle::Event release;
  auto f = pool.submit([&] { release.wait(); });
  f.add_done_callback([](const Future<void>&) { throw std::runtime_error("callback bug"); });
  release.set();
  f.result();
  // The same (only) worker keeps running work after the callback threw.
  REQUIRE(pool.submit([] { return 8; }).result() == 8);
  pool.wait_for_all();
  REQUIRE(reported == 1);
}

TEST_CASE("Exceptions of tasks whose futures were dropped are not lost to the process",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  for (int i = 0; i < 100; ++i) pool.submit([]() -> int { throw std::runtime_error("ignored"); });
  pool.wait_for_all();
  REQUIRE(pool.submit([] { return 1; }).result() == 1);
}

TEST_CASE("shutdown(wait=true) and wait_for_all() from a pool's own worker are refused",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  auto a = pool.submit([&pool] { pool.shutdown(true); });
  REQUIRE_THROWS_AS(a.result(), std::logic_error);
  auto b = pool.submit([&pool] { pool.wait_for_all(); });
  REQUIRE_THROWS_AS(b.result(), std::logic_error);
}

TEST_CASE("Many threads submitting, cancelling and waiting at once lose no task",
          "[executor][stress]") {
  constexpr int threads = 8;
  const int per_thread = 4000 / sanitizer_divisor;
  ThreadPoolExecutor pool(4);
  std::atomic<int> ran{0};
  std::vector<int> cancelled(threads, 0);
  std::vector<int> finished(threads, 0);
  std::vector<int> wrong(threads, 0);
  std::latch go(threads);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      go.arrive_and_wait();
      std::vector<Future<int>> mine;
      for (int i = 0; i < per_thread; ++i) {
        if (rng() % 4 == 0) {
          // A task that fans out inside the pool.
          mine.push_back(pool.submit([&pool, &ran, i] {
            ran.fetch_add(1);
            auto inner = pool.submit([&ran, i] {
              ran.fetch_add(1);
              return i;
            });
            return inner.result();
          }));
        } else {
          mine.push_back(pool.submit([&ran, i] {
            ran.fetch_add(1);
            return i;
          }));
        }
        if (rng() % 8 == 0) mine[rng() % mine.size()].cancel();
      }
      for (int i = 0; i < per_thread; ++i) {
        auto& f = mine[static_cast<std::size_t>(i)];
        if (f.cancelled()) {
          ++cancelled[static_cast<std::size_t>(t)];
        } else if (f.result(60s) == i) {
          ++finished[static_cast<std::size_t>(t)];
        } else {
          ++wrong[static_cast<std::size_t>(t)];
        }
      }
    });
  for (auto& th : ts) th.join();
  pool.wait_for_all();
  const int total_cancelled = std::accumulate(cancelled.begin(), cancelled.end(), 0);
  const int total_finished = std::accumulate(finished.begin(), finished.end(), 0);
  REQUIRE(std::accumulate(wrong.begin(), wrong.end(), 0) == 0);
  REQUIRE(total_cancelled + total_finished == threads * per_thread);
  REQUIRE(ran >= total_finished);
}

TEST_CASE("shutdown racing submit, cancel and result leaves every accepted future done",
          "[executor][stress]") {
  const int rounds = 200 / sanitizer_divisor;
  int accepted_total = 0;
  int rejected_total = 0;
  int not_done_total = 0;
  int bad_total = 0;
  for (int round = 0; round < rounds; ++round) {
    constexpr int submitters = 4;
    auto pool = std::make_unique<ThreadPoolExecutor>(2);
    std::vector<std::vector<Future<int>>> accepted(submitters);
    std::vector<int> rejected(submitters, 0);
    std::latch go(submitters + 1);
    std::vector<std::thread> ts;
    for (int t = 0; t < submitters; ++t)
      ts.emplace_back([&, t] {
        go.arrive_and_wait();
        for (int i = 0; i < 200; ++i) {
          try {
            accepted[static_cast<std::size_t>(t)].push_back(pool->submit([i] { return i; }));
            if (i % 7 == 0) accepted[static_cast<std::size_t>(t)].back().cancel();
            if (i % 11 == 0) (void)accepted[static_cast<std::size_t>(t)].back().wait(1ms);
          } catch (const spindle::ExecutorShutdown&) {
            ++rejected[static_cast<std::size_t>(t)];
          }
        }
      });
    go.arrive_and_wait();
    pool->shutdown(true, round % 2 == 0);
    for (auto& th : ts) th.join();
    pool.reset();
    for (int t = 0; t < submitters; ++t) {
      rejected_total += rejected[static_cast<std::size_t>(t)];
      for (auto& f : accepted[static_cast<std::size_t>(t)]) {
        ++accepted_total;
        if (!f.done()) {
          ++not_done_total;
        } else if (!f.cancelled() && f.exception() != nullptr) {
          ++bad_total;
        }
      }
    }
  }
  REQUIRE(not_done_total == 0);
  REQUIRE(bad_total == 0);
  REQUIRE(accepted_total + rejected_total == rounds * 4 * 200);
}

// ---------------------------------------------------------------------------
// Issue 9.

TEST_CASE("result() on a temporary future returns the value, not a dangling reference",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  // Before: a const T& into the temporary's state, freed at the end of the
  // statement (heap-use-after-free under ASan).
  const auto& text = pool.submit([] { return std::string(100, 'x'); }).result();
  REQUIRE(text == std::string(100, 'x'));
  const auto& timed = pool.submit([] { return std::vector<int>(50, 3); }).result(60s);
  REQUIRE(timed.size() == 50);
  REQUIRE(timed[49] == 3);
  // A copy keeps working: the temporary copied, it did not move from the shared state.
  auto f = pool.submit([] { return std::string("shared"); });
  std::string copy = Future<std::string>(f).result();
  REQUIRE(copy == "shared");
  REQUIRE(f.result() == "shared");
}

TEST_CASE("A move-only result can be moved out of a future", "[executor]") {
  ThreadPoolExecutor pool(1);
  std::unique_ptr<int> p = pool.submit([] { return std::make_unique<int>(42); }).result();
  REQUIRE(*p == 42);
  auto f = pool.submit([] { return std::make_unique<int>(7); });
  auto g = f;
  std::unique_ptr<int> q = f.take_result();
  REQUIRE(*q == 7);
  REQUIRE(f.done());
  REQUIRE_THROWS_AS(g.result(), std::logic_error);
  REQUIRE_THROWS_AS(g.take_result(), std::logic_error);
  REQUIRE(g.exception() == nullptr);
}

TEST_CASE("map zips several input ranges and stops at the shortest", "[executor]") {
  ThreadPoolExecutor pool(2);
  std::vector<int> xs{1, 2, 3, 4};
  std::list<std::string> ys{"a", "b", "c"};
  std::vector<std::string> out;
  for (auto& s : pool.map([](int x, const std::string& y) { return y + std::to_string(x); }, xs,
                          ys))
    out.push_back(s);
  REQUIRE(out == std::vector<std::string>{"a1", "b2", "c3"});
  std::vector<int> sums;
  for (int v : pool.map([](int a, int b, int c) { return a + b + c; }, xs, xs,
                        std::vector{10, 20}, {.chunksize = 3}))
    sums.push_back(v);
  REQUIRE(sums == std::vector{12, 24});
}

TEST_CASE("A chunked map keeps input order and rethrows each exception at its own position",
          "[executor]") {
  ThreadPoolExecutor pool(3);
  auto chunksize = GENERATE(as<std::size_t>{}, 1, 2, 7, 64, 1000);
  std::vector<int> inputs(200);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto results = pool.map(
      [](int x) {
        if (x % 17 == 5) throw std::runtime_error("bad " + std::to_string(x));
        return x * 3;
      },
      inputs, {.chunksize = chunksize});
  int pos = 0;
  int failures = 0;
  for (auto it = results.begin(); it != results.end(); ++it, ++pos) {
    if (pos % 17 == 5) {
      REQUIRE_THROWS_WITH(*it, "bad " + std::to_string(pos));
      ++failures;
    } else {
      REQUIRE(*it == pos * 3);
    }
  }
  REQUIRE(pos == 200);
  REQUIRE(failures == 12);
}

namespace {
// An endless input range: 0, 1, 2, ... (std::views::iota(0) works with g++,
// but clang 14 cannot compile libstdc++ 12's iota_view).
template <class N>
struct Naturals {
  struct iterator {
    using value_type = N;
    using difference_type = std::ptrdiff_t;
    N v = 0;
    N operator*() const { return v; }
    iterator& operator++() {
      ++v;
      return *this;
    }
    void operator++(int) { ++v; }
  };
  iterator begin() const { return {}; }
  std::unreachable_sentinel_t end() const { return {}; }
};
}  // namespace

TEST_CASE("map with a buffersize over an endless input yields the first results and stops",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  std::atomic<int> calls{0};
  const std::size_t buffersize = GENERATE(as<std::size_t>{}, 1, 4);
  const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 8);
  std::vector<long> got;
  {
    auto results = pool.map(
        [&](long x) {
          calls.fetch_add(1);
          return x * x;
        },
        Naturals<long>{}, {.chunksize = chunksize, .buffersize = buffersize});
    REQUIRE(calls.load() <= static_cast<int>(buffersize * chunksize));
    for (long v : results) {
      got.push_back(v);
      // Never more than buffersize + 1 tasks ahead of the consumer.
      REQUIRE(static_cast<std::size_t>(calls.load()) <=
              got.size() + (buffersize + 1) * chunksize);
      if (got.size() == 50) break;
    }
  }
  pool.wait_for_all();
  REQUIRE(got.size() == 50);
  for (std::size_t i = 0; i < got.size(); ++i)
    REQUIRE(got[i] == static_cast<long>(i * i));
  REQUIRE(static_cast<std::size_t>(calls.load()) <= 50 + (buffersize + 2) * chunksize);
}

TEST_CASE("A buffered map stops submitting once the pool is shut down", "[executor]") {
  ThreadPoolExecutor pool(1);
  auto results = pool.map([](int x) { return x; }, Naturals<int>{}, {.buffersize = 2});
  auto it = results.begin();
  REQUIRE(*it == 0);
  pool.shutdown();
  ++it;
  REQUIRE_THROWS_AS(*it, spindle::ExecutorShutdown);  // Python: RuntimeError from submit
  REQUIRE(*it == 1);  // what was submitted still comes back
}

TEST_CASE("map rejects a chunksize or buffersize of 0", "[executor]") {
  ThreadPoolExecutor pool(1);
  auto f = [](int x) { return x; };
  REQUIRE_THROWS_AS(pool.map(f, std::vector{1}, {.chunksize = 0}), std::invalid_argument);
  REQUIRE_THROWS_AS(pool.map(f, std::vector{1}, {.buffersize = 0}), std::invalid_argument);
}

TEST_CASE("map and submit take void functions and move-only callables", "[executor]") {
  ThreadPoolExecutor pool(2);
  std::atomic<int> sum{0};
  int n = 0;
  for (std::monostate none : pool.map([&](int x) { sum.fetch_add(x); }, std::vector{1, 2, 3})) {
    (void)none;
    ++n;
  }
  REQUIRE(n == 3);
  REQUIRE(sum == 6);
  auto owned = std::make_unique<int>(10);
  auto move_only = [p = std::move(owned)](int x) { return *p + x; };
  std::vector<int> out;
  for (int v : pool.map(std::move(move_only), std::vector{1, 2, 3}, {.chunksize = 2}))
    out.push_back(v);
  REQUIRE(out == std::vector{11, 12, 13});
  auto task = [p = std::make_unique<int>(5)] { return *p; };
  REQUIRE(pool.submit(std::move(task)).result() == 5);
  pool.submit([p = std::make_unique<int>(1)] { (void)p; }).result();
}

namespace {
// One link of a chain whose frames hold 16 KiB each (the volatile writes
// keep the buffer from being optimized out).
int big_frame_chain(ThreadPoolExecutor& pool, int n) {
  volatile char buffer[16 * 1024];
  for (std::size_t i = 0; i < sizeof buffer; i += 512) buffer[i] = static_cast<char>(n);
  if (n == 0) return buffer[0];
  const int r = pool.submit([&pool, n] { return big_frame_chain(pool, n - 1); }).result() + 1;
  return r + buffer[512] - static_cast<char>(n);
}
}  // namespace

TEST_CASE("Waits nested until the stack runs short throw RecursionError, not a crash",
          "[executor]") {
  // Before: a one-worker chain with 16 KiB frames overflowed the 8 MiB
  // stack around depth 500 (the count limit is 1000).
  ThreadPoolExecutor pool(1);
  REQUIRE_THROWS_AS(pool.submit([&] { return big_frame_chain(pool, 900); }).result(60s),
                    spindle::RecursionError);
  REQUIRE(pool.submit([&] { return big_frame_chain(pool, 20); }).result(60s) == 20);
}

TEST_CASE("ThreadPoolOptions::stack_size sets the workers' stack size", "[executor]") {
  constexpr std::size_t size = std::size_t{64} << 20;
  ThreadPoolExecutor pool(1, {.stack_size = size});
  const std::size_t seen = pool.submit([] {
                                 pthread_attr_t attr;
                                 std::size_t bytes = 0;
                                 if (pthread_getattr_np(pthread_self(), &attr) == 0) {
                                   pthread_attr_getstacksize(&attr, &bytes);
                                   pthread_attr_destroy(&attr);
                                 }
                                 return bytes;
                               }).result();
  REQUIRE(seen >= size);
  // The deeper chain that ran out of the default stack fits now.
  REQUIRE(pool.submit([&] { return big_frame_chain(pool, 900); }).result(60s) == 900);
  REQUIRE_THROWS_AS(ThreadPoolExecutor(1, {.stack_size = 1}), std::invalid_argument);
}

TEST_CASE("The default max_workers counts the CPUs the thread may run on", "[executor]") {
  // Affinity is per thread and inherited: restrict a fresh thread to one CPU.
  std::size_t restricted = 0;
  std::size_t count = 0;
  int rc = -1;
  std::thread t([&] {
    cpu_set_t current;
    CPU_ZERO(&current);
    if (sched_getaffinity(0, sizeof current, &current) != 0) return;
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &current)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    rc = sched_setaffinity(0, sizeof one, &one);
    count = spindle::detail::process_cpu_count();
    restricted = ThreadPoolExecutor().max_workers();
  });
  t.join();
  REQUIRE(rc == 0);
  REQUIRE(count == 1);
  REQUIRE(restricted == 5);  // min(32, 1 + 4)
}

// ---------------------------------------------------------------------------
// map's claimed-chunk path (no buffersize, called from outside the pool) and
// its fallback to one task per chunk (called from inside the pool).

namespace {
// Counts live objects, to check that map destroys each result exactly once.
struct Counted {
  static inline std::atomic<int> live{0};
  int v = 0;
  explicit Counted(int x) : v(x) { live.fetch_add(1); }
  Counted(const Counted& o) : v(o.v) { live.fetch_add(1); }
  Counted(Counted&& o) noexcept : v(o.v) { live.fetch_add(1); }
  Counted& operator=(const Counted&) = default;
  Counted& operator=(Counted&&) = default;
  ~Counted() { live.fetch_sub(1); }
};

// A single-pass input range with no size: 0, 1, ..., n - 1.
struct CountTo {
  int n = 0;
  struct iterator {
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    int v = 0;
    int operator*() const { return v; }
    iterator& operator++() {
      ++v;
      return *this;
    }
    void operator++(int) { ++v; }
  };
  struct sentinel {
    int n = 0;
    friend bool operator==(const iterator& it, sentinel s) { return it.v == s.n; }
  };
  iterator begin() const { return {}; }
  sentinel end() const { return {n}; }
};
static_assert(std::ranges::input_range<CountTo> && !std::ranges::sized_range<CountTo>);

// An unsized range of bools (clang 14 cannot compile libstdc++ 12's
// views over CountTo): true, false, true, false.
struct EvenBits {
  CountTo counts{4};
  struct iterator {
    using value_type = bool;
    using difference_type = std::ptrdiff_t;
    CountTo::iterator it;
    bool operator*() const { return *it % 2 == 0; }
    iterator& operator++() {
      ++it;
      return *this;
    }
    void operator++(int) { ++it; }
    friend bool operator==(const iterator& i, CountTo::sentinel s) { return i.it == s; }
  };
  iterator begin() const { return {counts.begin()}; }
  CountTo::sentinel end() const { return counts.end(); }
};
static_assert(std::ranges::input_range<EvenBits> && !std::ranges::sized_range<EvenBits>);
}  // namespace

TEST_CASE("map over an empty input yields nothing, chunked or not", "[executor]") {
  ThreadPoolExecutor pool(2);
  const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 16);
  int n = 0;
  for (int v : pool.map([](int x) { return x; }, std::vector<int>{}, {.chunksize = chunksize})) {
    (void)v;
    ++n;
  }
  REQUIRE(n == 0);
  for (int v : pool.map([](int x) { return x; }, CountTo{0}, {.chunksize = chunksize})) {
    (void)v;
    ++n;
  }
  REQUIRE(n == 0);
  pool.shutdown();
  // Nothing to submit: no ExecutorShutdown (Python submits nothing either).
  REQUIRE_NOTHROW(pool.map([](int x) { return x; }, std::vector<int>{}));
  REQUIRE_THROWS_AS(pool.map([](int x) { return x; }, std::vector{1}), spindle::ExecutorShutdown);
}

TEST_CASE("A chunksize above the input count runs one chunk and keeps order", "[executor]") {
  ThreadPoolExecutor pool(2);
  std::vector<int> out;
  for (int v : pool.map([](int x) { return x * 2; }, std::vector{1, 2, 3}, {.chunksize = 1000}))
    out.push_back(v);
  REQUIRE(out == std::vector{2, 4, 6});
  out.clear();
  for (int v : pool.map([](int x) { return x; }, std::vector{7}, {.chunksize = SIZE_MAX}))
    out.push_back(v);
  REQUIRE(out == std::vector{7});
}

TEST_CASE("map reads unsized and single-pass inputs, and takes over an rvalue vector",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 3);
  std::vector<int> out;
  for (int v : pool.map([](int x, int y) { return x * 10 + y; }, CountTo{5}, std::vector{1, 2, 3},
                        {.chunksize = chunksize}))
    out.push_back(v);
  REQUIRE(out == std::vector{1, 12, 23});
  // Move-only elements come out of an rvalue vector (taken over whole, cut
  // to the shortest input).
  std::vector<std::unique_ptr<int>> owned;
  for (int i = 0; i < 4; ++i) owned.push_back(std::make_unique<int>(i));
  out.clear();
  for (int v : pool.map([](std::unique_ptr<int> p, int k) { return *p + k; }, std::move(owned),
                        std::vector{100, 200, 300}, {.chunksize = chunksize}))
    out.push_back(v);
  REQUIRE(out == std::vector{100, 201, 302});
  // Inputs are copies: changing the source after map returns changes nothing.
  std::vector<std::string> words{"a", "b", "c"};
  auto results = pool.map([](const std::string& s) { return s + "!"; }, words,
                          {.chunksize = chunksize});
  words.assign({"x", "y", "z"});
  std::vector<std::string> got;
  for (auto& s : results) got.push_back(std::move(s));
  REQUIRE(got == std::vector<std::string>{"a!", "b!", "c!"});
}

TEST_CASE("Exceptions in the middle of a chunk come back at their positions, the rest intact",
          "[executor]") {
  ThreadPoolExecutor pool(2);
  const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 5, 64);
  const int before = Counted::live.load();
  {
    auto results = pool.map(
        [](int x) {
          if (x % 7 == 3) throw std::out_of_range("bad " + std::to_string(x));
          return Counted(x);
        },
        CountTo{100}, {.chunksize = chunksize});
    int pos = 0;
    for (auto it = results.begin(); it != results.end(); ++it, ++pos) {
      if (pos % 7 == 3) {
        REQUIRE_THROWS_AS(*it, std::out_of_range);
        REQUIRE_THROWS_WITH(*it, "bad " + std::to_string(pos));  // again: still there
      } else {
        REQUIRE(it->v == pos);
        REQUIRE((*it).v == pos);
      }
    }
    REQUIRE(pos == 100);
  }
  REQUIRE(Counted::live.load() == before);  // each result destroyed once
}

TEST_CASE("Skipping positions without reading them, then stopping early, leaks nothing",
          "[executor]") {
  const int before = Counted::live.load();
  {
    ThreadPoolExecutor pool(2);
    const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 8);
    std::vector<int> inputs(300);
    std::iota(inputs.begin(), inputs.end(), 0);
    auto results = pool.map([](int x) { return Counted(x); }, inputs, {.chunksize = chunksize});
    auto it = results.begin();
    for (int i = 0; i < 50; ++i) ++it;  // never dereferenced
    REQUIRE(it->v == 50);
    ++it;
    REQUIRE(it->v == 51);
  }  // destroyed mid-way: calls not started are cancelled, values freed
  REQUIRE(Counted::live.load() == before);
}

TEST_CASE("A chunked map's timeout counts from the map call", "[executor][timing]") {
  ThreadPoolExecutor pool(2);
  spindle::Event release;
  const auto start = Clock::now();
  {
    auto results = pool.map(
        [&](int x) {
          if (x == 9) release.wait();
          return x;
        },
        CountTo{12}, {.chunksize = 4, .timeout = 100ms});
    auto it = results.begin();
    for (int i = 0; i < 8; ++i, ++it) REQUIRE(*it == i);
    REQUIRE_THROWS_AS(*it, spindle::TimeoutError);  // position 8 waits with 9 in its chunk
    REQUIRE(Clock::now() - start >= 100ms);
    release.set();
    pool.wait_for_all();
    REQUIRE(*it == 8);  // the position is still there once done
  }
  REQUIRE(Clock::now() - start < 20s);
}

TEST_CASE("Destroying a started chunked map cancels the chunks no thread has claimed",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  spindle::Event started;
  spindle::Event release;
  std::atomic<int> ran{0};
  {
    // With a timeout the iterating thread runs no chunks itself.
    auto results = pool.map(
        [&](int x) {
          if (x == 0) {
            started.set();
            release.wait();
          }
          ran.fetch_add(1);
          return x;
        },
        std::vector{0, 1, 2, 3, 4, 5, 6, 7}, {.chunksize = 2, .timeout = 60s});
    (void)results.begin();
    started.wait();
  }
  release.set();
  pool.wait_for_all();
  REQUIRE(ran == 2);  // the chunk that was running finishes; no other starts
}

TEST_CASE("shutdown(cancel_futures) while mapping cancels the chunks not claimed", "[executor]") {
  ThreadPoolExecutor pool(1);
  spindle::Event release;
  auto blocker = pool.submit([&] { release.wait(); });  // the map's task stays queued
  auto results = pool.map([](int x) { return x; }, std::vector{1, 2, 3}, {.timeout = 60s});
  pool.shutdown(false, true);
  release.set();
  auto it = results.begin();
  REQUIRE_THROWS_AS(*it, spindle::CancelledError);
  ++it;
  REQUIRE_THROWS_AS(*it, spindle::CancelledError);
  ++it;
  ++it;
  REQUIRE(it == results.end());
  pool.shutdown();
}

TEST_CASE("A map on a broken pool fails its positions with BrokenExecutor", "[executor]") {
  ThreadPoolExecutor pool(1, {.initializer = [] { throw std::runtime_error("no database"); }});
  std::optional<spindle::MapResult<int>> results;
  try {
    results.emplace(pool.map([](int x) { return x; }, std::vector{1, 2}, {.chunksize = 2}));
  } catch (const spindle::BrokenExecutor&) {
    SUCCEED("the pool broke before map submitted");
    return;
  }
  REQUIRE_THROWS_AS(*results->begin(), spindle::BrokenExecutor);
}

TEST_CASE("A map iterated inside a task of the same pool completes, even with one worker",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 4);
  auto total = pool.submit([&] {
    int sum = 0;
    for (int v : pool.map([](int x) { return x * x; }, CountTo{10}, {.chunksize = chunksize}))
      sum += v;
    return sum;
  });
  REQUIRE(total.result(60s) == 285);
}

TEST_CASE("Many maps at once from several threads, broken off at random, stay correct",
          "[executor][stress]") {
  ThreadPoolExecutor pool(3);
  const int rounds = 400 / sanitizer_divisor + 10;
  std::atomic<int> wrong{0};
  const int before = Counted::live.load();
  auto driver = [&](unsigned seed) {
    std::mt19937 rng(seed);
    for (int r = 0; r < rounds; ++r) {
      const int n = static_cast<int>(rng() % 200);
      const std::size_t chunksize = 1 + rng() % 40;
      const int stop_at = static_cast<int>(rng() % 250);
      const bool fail = rng() % 4 == 0;
      std::vector<int> in(static_cast<std::size_t>(n));
      std::iota(in.begin(), in.end(), 0);
      auto results = pool.map(
          [fail](int x) {
            if (fail && x % 13 == 0) throw std::runtime_error("13");
            return Counted(x * 2);
          },
          in, {.chunksize = chunksize});
      int pos = 0;
      for (auto it = results.begin(); it != results.end() && pos < stop_at; ++it, ++pos) {
        try {
          if (it->v != pos * 2) wrong.fetch_add(1);
          if (fail && pos % 13 == 0) wrong.fetch_add(1);
        } catch (const std::runtime_error&) {
          if (!(fail && pos % 13 == 0)) wrong.fetch_add(1);
        }
      }
      if (pos != (std::min)(n, stop_at)) wrong.fetch_add(1);
    }
  };
  std::thread a(driver, 1u);
  std::thread b(driver, 2u);
  driver(3u);
  a.join();
  b.join();
  pool.wait_for_all();
  REQUIRE(wrong == 0);
  REQUIRE(Counted::live.load() == before);
}

TEST_CASE("A map made outside the pool and iterated in one of its tasks does not deadlock",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 3);
  spindle::Event release;
  auto blocker = pool.submit([&] { release.wait(); });  // keeps the claimer queued
  auto results = pool.map([](int x) { return x + 1; }, std::vector{1, 2, 3, 4},
                          {.chunksize = chunksize});
  // Queued behind the claimer; it runs on the only worker and must run the
  // chunks itself if the claimer has not started.
  auto total = pool.submit([&] {
    int sum = 0;
    for (int v : results) sum += v;
    return sum;
  });
  release.set();
  REQUIRE(total.result(60s) == 14);
}

TEST_CASE("shutdown(cancel_futures) stops a running map from starting more chunks",
          "[executor]") {
  ThreadPoolExecutor pool(1);
  spindle::Event started;
  spindle::Event release;
  std::atomic<int> ran{0};
  auto results = pool.map(
      [&](int x) {
        if (x == 0) {
          started.set();
          release.wait();
        }
        ran.fetch_add(1);
        return x;
      },
      std::vector{0, 1, 2, 3}, {.timeout = 60s});
  started.wait();
  pool.shutdown(false, true);  // the claimer runs call 0; calls 1-3 have not started
  release.set();
  auto it = results.begin();
  REQUIRE(*it == 0);
  for (int i = 1; i < 4; ++i) {
    ++it;
    REQUIRE_THROWS_AS(*it, spindle::CancelledError);
  }
  pool.shutdown();
  REQUIRE(ran == 1);
}

TEST_CASE("map takes std::vector<bool> inputs, sized or not, lvalue or rvalue", "[executor]") {
  ThreadPoolExecutor pool(2);
  const std::size_t chunksize = GENERATE(as<std::size_t>{}, 1, 2);
  auto count = [&](auto&& bits) {
    int n = 0;
    for (int v : pool.map([](bool b, int x) { return b ? x : 0; },
                          std::forward<decltype(bits)>(bits), std::vector{1, 2, 3, 4},
                          {.chunksize = chunksize}))
      n += v;
    return n;
  };
  std::vector<bool> bits{true, false, true, true, false};
  REQUIRE(count(bits) == 8);
  REQUIRE(count(std::vector<bool>(bits)) == 8);
  EvenBits even;
  REQUIRE(count(even) == 4);  // positions 0 and 2
}
