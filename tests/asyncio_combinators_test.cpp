// SPDX-License-Identifier: MIT
// Tests for spindle/asyncio/{combinators,task_group}.hpp: gather, shield, wait_for,
// timeout scopes, wait, as_completed, TaskGroup.
#include <spindle/asyncio.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

namespace asyncio = spindle::asyncio;
using asyncio::Coroutine;
using asyncio::Task;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

Coroutine<int> sleepy(std::chrono::milliseconds d, int v) {
  co_await asyncio::sleep(d);
  co_return v;
}

Coroutine<void> nap(std::chrono::milliseconds d) { co_await asyncio::sleep(d); }

Coroutine<void> fail_after(std::chrono::milliseconds d, std::string what) {
  co_await asyncio::sleep(d);
  throw std::runtime_error(what);
}

// Sleeps `d`; records whether it was cancelled.
Coroutine<int> watched(std::chrono::milliseconds d, bool& cancelled, int v = 0) {
  try {
    co_await asyncio::sleep(d);
  } catch (const asyncio::CancelledError&) {
    cancelled = true;
    throw;
  }
  co_return v;
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

}  // namespace

// --- gather ------------------------------------------------------------------

TEST_CASE("gather returns results in argument order, whatever order they finish in", "[asyncio][gather]") {
  asyncio::run([]() -> Coroutine<void> {
    auto [a, b, c] = co_await asyncio::gather(sleepy(30ms, 1), sleepy(10ms, 2), sleepy(20ms, 3));
    CHECK(a == 1);
    CHECK(b == 2);
    CHECK(c == 3);
    auto [v, n] = co_await asyncio::gather(nap(1ms), sleepy(1ms, 9));
    STATIC_REQUIRE(std::is_same_v<decltype(v), std::monostate>);
    CHECK(n == 9);
  }());
}

TEST_CASE("gather over a range returns a vector in input order; an empty range gives an empty one", "[asyncio][gather]") {
  asyncio::run([]() -> Coroutine<void> {
    std::vector<Coroutine<int>> coros;
    for (int i = 0; i < 50; ++i) coros.push_back(sleepy(std::chrono::milliseconds(50 - i), i));
    std::vector<int> out = co_await asyncio::gather(coros);
    REQUIRE(out.size() == 50);
    for (int i = 0; i < 50; ++i) CHECK(out[static_cast<std::size_t>(i)] == i);
    std::vector<Task<int>> none;
    auto awaited1 = co_await asyncio::gather(none);
    CHECK(awaited1.empty());
  }());
}

TEST_CASE("gather starts its children at once, before it is awaited", "[asyncio][gather]") {
  asyncio::run([]() -> Coroutine<void> {
    int started = 0;
    auto child = [&]() -> Coroutine<void> {
      ++started;
      co_return;
    };
    Task<std::tuple<std::monostate, std::monostate>> g = asyncio::gather(child(), child());
    co_await asyncio::sleep(1ms);
    CHECK(started == 2);
    CHECK(g.done());
  }());
}

TEST_CASE("gather's first exception propagates while the other children keep running", "[asyncio][gather]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<int> slow = asyncio::create_task(sleepy(30ms, 5));
    CHECK_THROWS_WITH(co_await asyncio::gather(fail_after(1ms, "first"), slow), "first");
    CHECK_FALSE(slow.done());
    auto awaited2 = co_await slow;
    CHECK(awaited2 == 5);
  }());
}

TEST_CASE("gather with return_exceptions gives every outcome, values and exceptions", "[asyncio][gather]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<int> cancelled_child = asyncio::create_task(sleepy(10s, 0));
    auto g = asyncio::gather(asyncio::return_exceptions, sleepy(1ms, 4), fail_after(1ms, "bad"),
                             cancelled_child);
    co_await asyncio::sleep(0s);
    cancelled_child.cancel();
    auto [a, b, c] = co_await g;
    REQUIRE(a.has_value());
    CHECK(a.value() == 4);
    REQUIRE_FALSE(b.has_value());
    CHECK(message_of(b.exception()) == "bad");
    REQUIRE_FALSE(c.has_value());
    CHECK_THROWS_AS(std::rethrow_exception(c.exception()), asyncio::CancelledError);
  }());
}

TEST_CASE("a child cancelled on its own makes gather throw CancelledError", "[asyncio][gather][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<int> child = asyncio::create_task(sleepy(10s, 0));
    auto g = asyncio::gather(child, sleepy(10s, 1));
    co_await asyncio::sleep(0s);
    child.cancel();
    CHECK_THROWS_AS(co_await g, asyncio::CancelledError);
    g.cancel();  // clean up the other child
  }());
}

TEST_CASE("cancelling gather cancels every child", "[asyncio][gather][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    bool c1 = false, c2 = false;
    auto g = asyncio::gather(watched(10s, c1), watched(10s, c2));
    CHECK(g.cancel());  // before anybody awaited it, before the children ran
    CHECK_THROWS_AS(co_await g, asyncio::CancelledError);
    CHECK(g.cancelled());
  }());
}

TEST_CASE("cancelling a task that awaits gather cancels the children", "[asyncio][gather][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    bool c1 = false, c2 = false;
    auto parent_body = [&]() -> Coroutine<void> {
      co_await asyncio::gather(watched(10s, c1), watched(10s, c2));
    };
    Task<void> parent = asyncio::create_task(parent_body());
    co_await asyncio::sleep(1ms);
    parent.cancel();
    CHECK_THROWS_AS(co_await parent, asyncio::CancelledError);
    CHECK(c1);
    CHECK(c2);
  }());
}

// --- shield ------------------------------------------------------------------

TEST_CASE("shield stops the waiting but not the inner task", "[asyncio][shield][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    Task<int> inner = asyncio::create_task(sleepy(20ms, 8));
    auto waiter_body = [&]() -> Coroutine<int> { co_return co_await asyncio::shield(inner); };
    Task<int> waiter = asyncio::create_task(waiter_body());
    co_await asyncio::sleep(1ms);
    waiter.cancel();
    CHECK_THROWS_AS(co_await waiter, asyncio::CancelledError);
    CHECK_FALSE(inner.done());
    auto awaited3 = co_await inner;
    CHECK(awaited3 == 8);
    auto awaited4 = co_await asyncio::shield(sleepy(1ms, 2));
    CHECK(awaited4 == 2);
  }());
}

// --- wait_for and timeout scopes ----------------------------------------------

TEST_CASE("wait_for returns the value when the awaitable is in time", "[asyncio][timeout]") {
  asyncio::run([]() -> Coroutine<void> {
    auto awaited5 = co_await asyncio::wait_for(sleepy(1ms, 3), 5s);
    CHECK(awaited5 == 3);
    Task<int> t = asyncio::create_task(sleepy(1ms, 4));
    auto awaited6 = co_await asyncio::wait_for(t, 5s);
    CHECK(awaited6 == 4);
  }());
}

TEST_CASE("wait_for cancels the awaitable, waits for it, then throws TimeoutError", "[asyncio][timeout][timing]") {
  asyncio::run([]() -> Coroutine<void> {
    bool inner_cancelled = false;
    const auto start = Clock::now();
    CHECK_THROWS_AS(co_await asyncio::wait_for(watched(10s, inner_cancelled), 50ms), spindle::TimeoutError);
    const auto took = Clock::now() - start;
    CHECK(inner_cancelled);
    CHECK(took >= 50ms);
    CHECK(took < 5s);

    bool task_cancelled = false;
    Task<int> t = asyncio::create_task(watched(10s, task_cancelled));
    CHECK_THROWS_AS(co_await asyncio::wait_for(t, 10ms), spindle::TimeoutError);
    CHECK(t.cancelled());
    CHECK(task_cancelled);
  }());
}

TEST_CASE("wait_for with a zero timeout cancels at once unless the task is done", "[asyncio][timeout]") {
  asyncio::run([]() -> Coroutine<void> {
    bool c = false;
    CHECK_THROWS_AS(co_await asyncio::wait_for(watched(10s, c), 0s), spindle::TimeoutError);
    Task<int> done = asyncio::create_task(sleepy(0ms, 6));
    co_await asyncio::sleep(1ms);
    auto awaited7 = co_await asyncio::wait_for(done, 0s);
    CHECK(awaited7 == 6);
  }());
}

TEST_CASE("a cancellation from outside stays CancelledError inside wait_for", "[asyncio][timeout][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    bool inner = false;
    auto body = [&]() -> Coroutine<int> { co_return co_await asyncio::wait_for(watched(10s, inner), 5s); };
    Task<int> t = asyncio::create_task(body());
    co_await asyncio::sleep(1ms);
    t.cancel();
    CHECK_THROWS_AS(co_await t, asyncio::CancelledError);
    CHECK(inner);
  }());
}

TEST_CASE("a timeout scope turns its expiry into TimeoutError and says it expired", "[asyncio][timeout][timing]") {
  asyncio::run([]() -> Coroutine<void> {
    auto cm = asyncio::timeout(30ms);
    const auto start = Clock::now();
    int reached = 0;
    CHECK_THROWS_AS(co_await cm.run([&]() -> Coroutine<void> {
      ++reached;
      co_await asyncio::sleep(10s);
      ++reached;
    }()),
                    spindle::TimeoutError);
    CHECK(Clock::now() - start >= 30ms);
    CHECK(reached == 1);
    CHECK(cm.expired());
    CHECK(asyncio::current_task().cancelling() == 0);  // the scope withdrew its cancel

    auto fine = asyncio::timeout(5s);
    auto awaited8 = co_await fine.run(sleepy(1ms, 1));
    CHECK(awaited8 == 1);
    CHECK_FALSE(fine.expired());
    CHECK_THROWS_AS(co_await fine.run(sleepy(1ms, 1)), std::logic_error);  // one block per Timeout
  }());
}

TEST_CASE("reschedule moves a timeout's deadline, and nested timeouts expire separately", "[asyncio][timeout]") {
  asyncio::run([]() -> Coroutine<void> {
    auto cm = asyncio::timeout(std::nullopt);
    CHECK_FALSE(cm.when());
    int v = co_await cm.run([&]() -> Coroutine<int> {
      cm.reschedule(Clock::now() + 5s);
      co_await asyncio::sleep(1ms);
      cm.reschedule(std::nullopt);
      co_return 3;
    }());
    CHECK(v == 3);

    auto outer = asyncio::timeout_at(Clock::now() + 10s);
    bool inner_timed_out = false;
    co_await outer.run([&]() -> Coroutine<void> {
      auto inner = asyncio::timeout(10ms);
      try {
        co_await inner.run(nap(10s));
      } catch (const spindle::TimeoutError&) {
        inner_timed_out = true;
      }
      co_await asyncio::sleep(1ms);  // the outer scope still runs normally
    }());
    CHECK(inner_timed_out);
    CHECK_FALSE(outer.expired());
  }());
}

// --- wait and as_completed -------------------------------------------------------

TEST_CASE("wait returns done and pending sets for each ReturnWhen", "[asyncio][wait]") {
  asyncio::run([]() -> Coroutine<void> {
    std::vector<Task<int>> tasks{asyncio::create_task(sleepy(1ms, 1)), asyncio::create_task(sleepy(200ms, 2))};
    auto first = co_await asyncio::wait(tasks, spindle::ReturnWhen::first_completed);
    CHECK(first.done.size() == 1);
    CHECK(first.pending.size() == 1);
    CHECK(first.done[0] == tasks[0]);

    std::vector<Task<void>> mixed{asyncio::create_task(fail_after(1ms, "x")), asyncio::create_task(nap(10s))};
    auto exc = co_await asyncio::wait(mixed, spindle::ReturnWhen::first_exception);
    CHECK(exc.done.size() == 1);
    CHECK(exc.pending.size() == 1);
    mixed[1].cancel();
    (void)mixed[0].exception();

    auto all = co_await asyncio::wait(tasks);
    CHECK(all.done.size() == 2);
    CHECK(all.pending.empty());
  }());
}

TEST_CASE("wait with a timeout returns what is done, without raising or cancelling", "[asyncio][wait][timing]") {
  asyncio::run([]() -> Coroutine<void> {
    std::vector<Task<int>> tasks{asyncio::create_task(sleepy(1ms, 1)), asyncio::create_task(sleepy(10s, 2))};
    const auto start = Clock::now();
    auto r = co_await asyncio::wait(tasks, spindle::ReturnWhen::all_completed, 30ms);
    CHECK(Clock::now() - start >= 30ms);
    CHECK(r.done.size() == 1);
    CHECK(r.pending.size() == 1);
    CHECK_FALSE(tasks[1].cancelled());
    tasks[1].cancel();
    std::vector<Task<int>> none;
    CHECK_THROWS_AS(co_await asyncio::wait(none), std::invalid_argument);
  }());
}

TEST_CASE("as_completed yields tasks in completion order", "[asyncio][as_completed]") {
  asyncio::run([]() -> Coroutine<void> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(asyncio::create_task(sleepy(std::chrono::milliseconds(50 - 10 * i), i)));
    std::vector<int> order;
    auto finished = asyncio::as_completed(tasks);
    while (auto t = co_await finished.next()) order.push_back(co_await *t);
    CHECK(order == std::vector<int>{4, 3, 2, 1, 0});
    CHECK(finished.remaining() == 0);
  }());
}

TEST_CASE("as_completed with a timeout throws TimeoutError from the iteration", "[asyncio][as_completed][timing]") {
  asyncio::run([]() -> Coroutine<void> {
    std::vector<Task<int>> tasks{asyncio::create_task(sleepy(1ms, 1)), asyncio::create_task(sleepy(10s, 2))};
    auto finished = asyncio::as_completed(tasks, 30ms);
    auto first = co_await finished.next();
    REQUIRE(first);
    auto awaited9 = co_await *first;
    CHECK(awaited9 == 1);
    const auto start = Clock::now();
    CHECK_THROWS_AS(co_await finished.next(), spindle::TimeoutError);
    CHECK(Clock::now() - start < 5s);
    tasks[1].cancel();
  }());
}

// --- TaskGroup -----------------------------------------------------------------

TEST_CASE("a task group waits for all its tasks and returns the body's value", "[asyncio][task_group]") {
  asyncio::run([]() -> Coroutine<void> {
    std::vector<Task<int>> made;
    int v = co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> Coroutine<int> {
      for (int i = 0; i < 5; ++i) made.push_back(tg.create_task(sleepy(std::chrono::milliseconds(i), i)));
      co_return 99;
    });
    CHECK(v == 99);
    for (int i = 0; i < 5; ++i) {
      CHECK(made[static_cast<std::size_t>(i)].done());
      CHECK(made[static_cast<std::size_t>(i)].result() == i);
    }
  }());
}

TEST_CASE("the first failure in a task group cancels the others and the body", "[asyncio][task_group][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    bool sibling_cancelled = false;
    bool body_cancelled = false;
    try {
      co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> Coroutine<void> {
        tg.create_task(fail_after(5ms, "one failed"));
        tg.create_task(watched(10s, sibling_cancelled));
        try {
          co_await asyncio::sleep(10s);
        } catch (const asyncio::CancelledError&) {
          body_cancelled = true;
          throw;
        }
      });
      FAIL("task_group did not throw");
    } catch (const spindle::ExceptionGroup& e) {
      REQUIRE(e.exceptions().size() == 1);
      CHECK(message_of(e.exceptions()[0]) == "one failed");
    }
    CHECK(sibling_cancelled);
    CHECK(body_cancelled);
    CHECK(asyncio::current_task().cancelling() == 0);
  }());
}

TEST_CASE("a task group's ExceptionGroup carries every exception and the body's", "[asyncio][task_group]") {
  asyncio::run([]() -> Coroutine<void> {
    try {
      co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> Coroutine<void> {
        tg.create_task(fail_after(5ms, "a"));
        tg.create_task(fail_after(5ms, "b"));
        co_await asyncio::sleep(0s);
        throw std::runtime_error("body");
      });
      FAIL("task_group did not throw");
    } catch (const spindle::ExceptionGroup& e) {
      // The body's exception cancels both tasks before they fail: only it remains.
      REQUIRE(e.exceptions().size() == 1);
      CHECK(message_of(e.exceptions()[0]) == "body");
    }
    try {
      co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> Coroutine<void> {
        auto two = [](std::string m) -> Coroutine<void> {
          try {
            co_await asyncio::sleep(10s);
          } catch (const asyncio::CancelledError&) {
            throw std::runtime_error(m);  // fails while being cancelled
          }
        };
        tg.create_task(fail_after(1ms, "first"));
        tg.create_task(two("second"));
        co_return;
      });
      FAIL("task_group did not throw");
    } catch (const spindle::ExceptionGroup& e) {
      REQUIRE(e.exceptions().size() == 2);
      CHECK(message_of(e.exceptions()[0]) == "first");
      CHECK(message_of(e.exceptions()[1]) == "second");
    }
  }());
}

TEST_CASE("cancelling the task that runs a task group cancels its tasks and stays a cancellation", "[asyncio][task_group][cancel]") {
  asyncio::run([]() -> Coroutine<void> {
    bool c1 = false, c2 = false;
    asyncio::TaskGroup* seen = nullptr;
    auto body = [&]() -> Coroutine<void> {
      co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> Coroutine<void> {
        seen = &tg;
        tg.create_task(watched(10s, c1));
        tg.create_task(watched(10s, c2));
        co_return;  // the group now waits for both
      });
    };
    Task<void> t = asyncio::create_task(body());
    co_await asyncio::sleep(1ms);
    REQUIRE(seen);
    t.cancel();
    CHECK_THROWS_AS(co_await t, asyncio::CancelledError);
    CHECK(c1);
    CHECK(c2);
  }());
}

TEST_CASE("a task group that is shutting down refuses new tasks", "[asyncio][task_group]") {
  asyncio::run([]() -> Coroutine<void> {
    try {
      co_await asyncio::task_group([&](asyncio::TaskGroup& tg) -> Coroutine<void> {
        tg.create_task(fail_after(0ms, "x"));
        try {
          co_await asyncio::sleep(10s);
        } catch (const asyncio::CancelledError&) {
        }
        CHECK_THROWS_AS(tg.create_task(sleepy(1ms, 1)), std::logic_error);
      });
    } catch (const spindle::ExceptionGroup& e) {
      CHECK(e.exceptions().size() == 1);
    }
  }());
}

