// SPDX-License-Identifier: MIT
// Tests for spindle/asyncio/{coroutine,task}.hpp: coroutines, tasks, sleep, cancellation.
#include <spindle/asyncio.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace asyncio = spindle::asyncio;
using asyncio::Coroutine;
using asyncio::Task;
using namespace std::chrono_literals;

namespace {

Coroutine<int> answer() { co_return 42; }

Coroutine<long> depth(long n) {
  if (n == 0) co_return 0;
  long below = co_await depth(n - 1);
  co_return below + 1;
}

Coroutine<long> many_ready(long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await answer();
  co_return sum;
}

Coroutine<std::unique_ptr<int>> boxed(int v) { co_return std::make_unique<int>(v); }

Coroutine<void> fail_after(std::chrono::milliseconds d, std::string what) {
  co_await asyncio::sleep(d);
  throw std::runtime_error(what);
}

Coroutine<int> sleepy(std::chrono::milliseconds d, int v) {
  co_await asyncio::sleep(d);
  co_return v;
}

}  // namespace

TEST_CASE("a coroutine runs nothing until it is awaited", "[asyncio][task]") {
  bool ran = false;
  auto body = [&]() -> Coroutine<void> {
    ran = true;
    co_return;
  };
  {
    Coroutine<void> c = body();
    CHECK_FALSE(ran);
  }
  CHECK_FALSE(ran);  // destroyed unawaited: never ran (asan checks the frame is freed)
  asyncio::run([&]() -> Coroutine<void> {
    Coroutine<void> c = body();
    CHECK_FALSE(ran);
    co_await c;
    CHECK(ran);
  }());
}

TEST_CASE("run returns the value of the main coroutine and rethrows its exception", "[asyncio][task]") {
  CHECK(asyncio::run(answer()) == 42);
  CHECK_THROWS_WITH(asyncio::run(fail_after(0ms, "main failed")), "main failed");
}

TEST_CASE("a move-only value travels through co_await, a task and run", "[asyncio][task]") {
  auto p = asyncio::run([]() -> Coroutine<std::unique_ptr<int>> {
    std::unique_ptr<int> a = co_await boxed(1);
    Task<std::unique_ptr<int>> t = asyncio::create_task(boxed(2));
    std::unique_ptr<int> b = co_await t;
    CHECK(*a == 1);
    CHECK(*b == 2);
    CHECK_THROWS_AS(co_await t, std::logic_error);  // moved out once
    co_return std::move(b);
  }());
  REQUIRE(p);
  CHECK(*p == 2);
}

TEST_CASE("awaiting a coroutine twice is a logic error", "[asyncio][task]") {
  asyncio::run([]() -> Coroutine<void> {
    Coroutine<int> c = answer();
    auto awaited1 = co_await c;
    CHECK(awaited1 == 42);
    CHECK_THROWS_AS(co_await c, std::logic_error);
    Coroutine<int> d = answer();
    Task<int> t = asyncio::create_task(std::move(d));
    CHECK_THROWS_AS(asyncio::create_task(std::move(d)), std::logic_error);
    auto awaited2 = co_await t;
    CHECK(awaited2 == 42);
  }());
}

TEST_CASE("a million nested awaits and ten million ready awaits use constant stack", "[asyncio][task][stress]") {
  CHECK(asyncio::run(depth(1'000'000)) == 1'000'000);
  CHECK(asyncio::run(many_ready(10'000'000)) == 420'000'000);
}

TEST_CASE("a task runs without being awaited and can be awaited later, many times", "[asyncio][task]") {
  asyncio::run([]() -> Coroutine<void> {
    int ran = 0;
    auto body = [&]() -> Coroutine<int> {
      ++ran;
      co_return 7;
    };
    Task<int> t = asyncio::create_task(body());
    CHECK_FALSE(t.done());
    CHECK_THROWS_AS(t.result(), asyncio::InvalidStateError);
    co_await asyncio::sleep(0s);
    CHECK(ran == 1);
    CHECK(t.done());
    CHECK(t.result() == 7);
    auto awaited3 = co_await t;
    CHECK(awaited3 == 7);
    auto awaited4 = co_await t;
    CHECK(awaited4 == 7);
    CHECK_FALSE(t.exception());
  }());
}

TEST_CASE("tasks get Python's default names or the one they are given", "[asyncio][task]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<int> a = asyncio::create_task(answer());
    Task<int> b = asyncio::create_task(answer(), {.name = "fetcher"});
    CHECK(a.get_name().rfind("Task-", 0) == 0);
    CHECK(b.get_name() == "fetcher");
    b.set_name("renamed");
    CHECK(b.get_name() == "renamed");
    CHECK(asyncio::current_task().valid());
    CHECK(asyncio::current_task().get_name().rfind("Task-", 0) == 0);
    CHECK(asyncio::all_tasks().size() == 3);
    co_await a;
    co_await b;
  }());
  CHECK_FALSE(asyncio::current_task().valid());
}

TEST_CASE("a task's exception reaches whoever awaits it, and exception() returns it", "[asyncio][task]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<void> t = asyncio::create_task(fail_after(1ms, "task failed"));
    CHECK_THROWS_WITH(co_await t, "task failed");
    REQUIRE(t.exception());
    CHECK_THROWS_WITH(std::rethrow_exception(t.exception()), "task failed");
    CHECK_FALSE(t.cancelled());
  }());
}

TEST_CASE("sleep(0) yields: ready tasks take turns", "[asyncio][task]") {
  std::vector<std::string> order;
  asyncio::run([&]() -> Coroutine<void> {
    auto worker = [&](std::string name) -> Coroutine<void> {
      for (int i = 0; i < 3; ++i) {
        order.push_back(name + std::to_string(i));
        co_await asyncio::sleep(0s);
      }
    };
    Task<void> a = asyncio::create_task(worker("a"));
    Task<void> b = asyncio::create_task(worker("b"));
    co_await a;
    co_await b;
  }());
  CHECK(order == std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"});
}

TEST_CASE("sleep never returns early and timers fire in deadline order", "[asyncio][task][timing]") {
  std::vector<int> order;
  const auto start = std::chrono::steady_clock::now();
  asyncio::run([&]() -> Coroutine<void> {
    auto s = [&](int ms) -> Coroutine<void> {
      co_await asyncio::sleep(std::chrono::milliseconds(ms));
      order.push_back(ms);
    };
    Task<void> a = asyncio::create_task(s(30));
    Task<void> b = asyncio::create_task(s(10));
    Task<void> c = asyncio::create_task(s(20));
    co_await a;
    co_await b;
    co_await c;
  }());
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(order == std::vector<int>{10, 20, 30});
  CHECK(took >= 30ms);
  CHECK(took < 5s);
}

TEST_CASE("cancel throws CancelledError at the await where the task sleeps", "[asyncio][task][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    bool cleaned = false;
    auto body = [&]() -> Coroutine<int> {
      try {
        co_await asyncio::sleep(10s);
      } catch (const asyncio::CancelledError& e) {
        cleaned = std::string(e.what()) == "stop now";
        throw;
      }
      co_return 1;
    };
    Task<int> t = asyncio::create_task(body());
    co_await asyncio::sleep(0s);  // let it reach the sleep
    const auto start = std::chrono::steady_clock::now();
    CHECK(t.cancel("stop now"));
    CHECK_FALSE(t.done());  // the CancelledError is delivered by the loop
    CHECK_THROWS_AS(co_await t, asyncio::CancelledError);
    CHECK(std::chrono::steady_clock::now() - start < 5s);  // the 10 s timer was removed
    CHECK(t.cancelled());
    CHECK(cleaned);
    CHECK_FALSE(t.cancel());  // finished tasks cannot be cancelled
    CHECK_THROWS_AS(t.result(), asyncio::CancelledError);
    CHECK_THROWS_AS(t.exception(), asyncio::CancelledError);
  }());
}

TEST_CASE("a task that catches CancelledError and returns is not cancelled", "[asyncio][task][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    auto stubborn = []() -> Coroutine<int> {
      try {
        co_await asyncio::sleep(10s);
      } catch (const asyncio::CancelledError&) {
        co_return -1;
      }
      co_return 1;
    };
    Task<int> t = asyncio::create_task(stubborn());
    co_await asyncio::sleep(0s);
    CHECK(t.cancel());
    CHECK(t.cancelling() == 1);
    auto awaited5 = co_await t;
    CHECK(awaited5 == -1);
    CHECK_FALSE(t.cancelled());
  }());
}

TEST_CASE("a task cancelled before it starts never runs its body", "[asyncio][task][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    bool ran = false;
    auto body = [&]() -> Coroutine<void> {
      ran = true;
      co_return;
    };
    Task<void> t = asyncio::create_task(body());
    CHECK(t.cancel());
    CHECK_THROWS_AS(co_await t, asyncio::CancelledError);
    CHECK(t.cancelled());
    CHECK_FALSE(ran);
  }());
}

TEST_CASE("CancelledError is not a spindle::Error", "[asyncio][task][cancel]") {
  STATIC_REQUIRE_FALSE(std::is_base_of_v<spindle::Error, asyncio::CancelledError>);
  asyncio::run([]() -> Coroutine<void> {
    bool swallowed = false;
    auto body = [&]() -> Coroutine<void> {
      try {
        co_await asyncio::sleep(10s);
      } catch (const spindle::Error&) {
        swallowed = true;
      }
    };
    Task<void> t = asyncio::create_task(body());
    co_await asyncio::sleep(0s);
    t.cancel();
    CHECK_THROWS_AS(co_await t, asyncio::CancelledError);
    CHECK_FALSE(swallowed);
  }());
}

TEST_CASE("cancelling a task that awaits another task cancels the inner one", "[asyncio][task][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<int> inner = asyncio::create_task(sleepy(10s, 1));
    auto outer_body = [&]() -> Coroutine<int> { co_return co_await inner; };
    Task<int> outer = asyncio::create_task(outer_body());
    co_await asyncio::sleep(0s);
    co_await asyncio::sleep(0s);
    outer.cancel();
    CHECK_THROWS_AS(co_await outer, asyncio::CancelledError);
    CHECK(inner.cancelled());
    CHECK(outer.cancelled());
  }());
}

TEST_CASE("a task that cancels itself gets CancelledError at its next suspension", "[asyncio][task][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    int steps = 0;
    auto body = [&]() -> Coroutine<void> {
      asyncio::current_task().cancel();
      ++steps;  // still running: nothing thrown yet
      co_await answer();  // a ready coroutine does not suspend: still nothing
      ++steps;
      co_await asyncio::sleep(0s);
      ++steps;  // never reached
    };
    Task<void> t = asyncio::create_task(body());
    CHECK_THROWS_AS(co_await t, asyncio::CancelledError);
    CHECK(steps == 2);
  }());
}

TEST_CASE("uncancel withdraws a pending cancellation", "[asyncio][task][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    auto body = []() -> Coroutine<int> {
      asyncio::TaskBase self = asyncio::current_task();
      self.cancel();
      CHECK(self.cancelling() == 1);
      CHECK(self.uncancel() == 0);
      co_await asyncio::sleep(1ms);  // not cancelled any more
      co_return 5;
    };
    auto awaited6 = co_await asyncio::create_task(body());
    CHECK(awaited6 == 5);
  }());
}

TEST_CASE("a task cannot await itself", "[asyncio][task]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<void> self;
    auto body = [&]() -> Coroutine<void> { co_await self; };
    self = asyncio::create_task(body());
    CHECK_THROWS_AS(co_await self, std::logic_error);
  }());
}

TEST_CASE("awaiting outside a running loop is a logic error", "[asyncio][task]") {
  CHECK_THROWS_AS(asyncio::get_running_loop(), std::logic_error);
  CHECK_THROWS_AS(asyncio::create_task(answer()), std::logic_error);
  asyncio::run([]() -> Coroutine<void> {
    CHECK_THROWS_AS(asyncio::run(answer()), std::logic_error);
    co_return;
  }());
}

TEST_CASE("add_done_callback runs from the loop once the task is done", "[asyncio][task]") {
  asyncio::run([]() -> Coroutine<void> {
    std::vector<int> seen;
    Task<int> t = asyncio::create_task(sleepy(1ms, 3));
    t.add_done_callback([&](Task<int>& done) { seen.push_back(done.result()); });
    co_await t;
    // Scheduled with call_soon when t finished, before this task's own
    // wake-up (registered later), as in Python.
    CHECK(seen == std::vector<int>{3});
    t.add_done_callback([&](Task<int>& done) { seen.push_back(done.result() * 10); });
    CHECK(seen.size() == 1);  // a done task's callback still goes through the loop
    co_await asyncio::sleep(0s);
    CHECK(seen == std::vector<int>{3, 30});
  }());
}

TEST_CASE("many tasks sleeping concurrently finish together", "[asyncio][task][timing]") {
  const auto start = std::chrono::steady_clock::now();
  long total = asyncio::run([]() -> Coroutine<long> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 10'000; ++i) tasks.push_back(asyncio::create_task(sleepy(50ms, 1)));
    long sum = 0;
    for (auto& t : tasks) sum += co_await t;
    co_return sum;
  }());
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(total == 10'000);
  CHECK(took >= 50ms);
  CHECK(took < 10s);
}


TEST_CASE("a task cancelled twice that catches the one CancelledError and returns is not cancelled", "[asyncio][task][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    auto stubborn = []() -> Coroutine<int> {
      try {
        co_await asyncio::sleep(10s);
      } catch (const asyncio::CancelledError&) {
        co_return -1;  // Python delivers one CancelledError for both requests
      }
      co_return 1;
    };
    Task<int> t = asyncio::create_task(stubborn());
    co_await asyncio::sleep(0s);
    CHECK(t.cancel());
    CHECK(t.cancel());
    int v = co_await t;
    CHECK(v == -1);
    CHECK_FALSE(t.cancelled());
  }());
}
