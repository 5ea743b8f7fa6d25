// SPDX-License-Identifier: MIT
// tests/future_test.cpp - tests for spindle::Future, Promise, as_completed and wait.
#include <spindle/future.hpp>

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"

#include <spindle/event.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <latch>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <list>
#include <vector>

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int sanitizer_divisor = spindle_test::tsan_divisor(10);

// Restores the default callback exception handler when a test ends.
struct HandlerGuard {
  ~HandlerGuard() { spindle::set_callback_exception_handler(nullptr); }
};

std::vector<spindle::Future<int>> futures_of(std::vector<spindle::Promise<int>>& promises) {
  std::vector<spindle::Future<int>> out;
  for (auto& p : promises) out.push_back(p.get_future());
  return out;
}

}  // namespace

TEST_CASE("A promise's value reaches result() of every copy of its future", "[future]") {
  spindle::Promise<std::string> p;
  spindle::Future<std::string> f = p.get_future();
  spindle::Future<std::string> copy = f;
  REQUIRE_FALSE(f.done());
  REQUIRE_FALSE(f.running());
  REQUIRE_FALSE(f.cancelled());
  std::thread t([&p] { p.set_result("spam"); });
  REQUIRE(f.result() == "spam");
  t.join();
  REQUIRE(copy.result() == "spam");
  REQUIRE(f.done());
  REQUIRE(f.exception() == nullptr);
  REQUIRE(f == copy);
}

TEST_CASE("An exception set on a promise is rethrown by result() unchanged", "[future]") {
  spindle::Promise<int> p;
  auto f = p.get_future();
  auto error = std::make_exception_ptr(std::system_error(EIO, std::generic_category(), "disk"));
  p.set_exception(error);
  REQUIRE(f.exception() == error);  // the very same exception object
  try {
    (void)f.result();
    FAIL("result() did not throw");
  } catch (const std::system_error& e) {
    REQUIRE(e.code().value() == EIO);
    REQUIRE(std::string(e.what()).find("disk") != std::string::npos);
  }
  REQUIRE_THROWS_AS(p.set_exception(nullptr), std::invalid_argument);
}

TEST_CASE("Future<void> completes without a value and rethrows errors", "[future]") {
  spindle::Promise<void> ok;
  auto f = ok.get_future();
  REQUIRE(ok.set_result());
  f.result();
  REQUIRE(f.done());
  spindle::Promise<void> bad;
  auto g = bad.get_future();
  bad.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  REQUIRE_THROWS_WITH(g.result(), "boom");
}

TEST_CASE("result(timeout) throws TimeoutError when the future is not done in time",
          "[future][timing]") {
  spindle::Promise<int> p;
  auto f = p.get_future();
  const auto start = Clock::now();
  REQUIRE_THROWS_AS(f.result(50ms), spindle::TimeoutError);
  const auto waited = Clock::now() - start;
  REQUIRE(waited >= 50ms);
  REQUIRE(waited < 5s);
  REQUIRE_THROWS_AS(f.exception(10ms), spindle::TimeoutError);
  REQUIRE_FALSE(f.wait(10ms));
  p.set_result(3);
  REQUIRE(f.result(10ms) == 3);
  REQUIRE(f.wait(0s));
}

TEST_CASE("A negative timeout acts as zero, as in Python", "[future][timing]") {
  spindle::Promise<int> p;
  auto f = p.get_future();
  const auto start = Clock::now();
  REQUIRE_THROWS_AS(f.result(-5s), spindle::TimeoutError);
  REQUIRE_THROWS_AS(f.result(std::chrono::milliseconds::min()), spindle::TimeoutError);
  REQUIRE(Clock::now() - start < 2s);
  p.set_result(9);
  REQUIRE(f.result(-1s) == 9);
  REQUIRE(f.exception(-1s) == nullptr);
}

TEST_CASE("A result(timeout) that is woken in time returns the value", "[future][timing]") {
  spindle::Promise<int> p;
  auto f = p.get_future();
  std::latch waiting(1);
  std::thread t([&] {
    waiting.wait();
    p.set_result(11);
  });
  waiting.count_down();
  REQUIRE(f.result(30s) == 11);
  t.join();
}

TEST_CASE("Every member of a default-constructed future throws a clear logic_error",
          "[future]") {
  spindle::Future<int> f;
  REQUIRE_FALSE(f.valid());
  REQUIRE_THROWS_AS(f.result(), std::logic_error);
  REQUIRE_THROWS_WITH(f.result(), Catch::Contains("no shared state"));
  REQUIRE_THROWS_AS(f.result(1s), std::logic_error);
  REQUIRE_THROWS_AS(f.exception(), std::logic_error);
  REQUIRE_THROWS_AS(f.done(), std::logic_error);
  REQUIRE_THROWS_AS(f.cancel(), std::logic_error);
  REQUIRE_THROWS_AS(f.add_done_callback([](const spindle::Future<int>&) {}), std::logic_error);
  spindle::Future<void> v;
  REQUIRE_THROWS_AS(v.result(), std::logic_error);
  std::vector<spindle::Future<int>> fs(1);
  REQUIRE_THROWS_AS(spindle::wait(fs), std::logic_error);
  REQUIRE_THROWS_AS(spindle::as_completed(fs).begin(), std::logic_error);
}

TEST_CASE("cancel() succeeds only on a pending future", "[future]") {
  spindle::Promise<int> p;
  auto f = p.get_future();
  REQUIRE(f.cancel());
  REQUIRE(f.cancelled());
  REQUIRE(f.done());
  REQUIRE(f.cancel());  // already cancelled: still true, as in Python
  REQUIRE_THROWS_AS(f.result(), spindle::CancelledError);
  REQUIRE_THROWS_AS(f.exception(), spindle::CancelledError);
  REQUIRE_FALSE(p.set_result(1));  // too late: the value is dropped

  spindle::Promise<int> q;
  auto g = q.get_future();
  q.set_result(2);
  REQUIRE_FALSE(g.cancel());
  REQUIRE_FALSE(g.cancelled());
  REQUIRE(g.result() == 2);
}

TEST_CASE("Setting a promise twice is a logic error", "[future]") {
  spindle::Promise<int> p;
  p.set_result(1);
  REQUIRE_THROWS_AS(p.set_result(2), std::logic_error);
  REQUIRE_THROWS_AS(p.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
                    std::logic_error);
  REQUIRE(p.get_future().result() == 1);
}

TEST_CASE("A promise destroyed without a result breaks its future instead of hanging it",
          "[future]") {
  spindle::Future<int> f;
  {
    spindle::Promise<int> p;
    f = p.get_future();
  }
  REQUIRE(f.done());
  REQUIRE_THROWS_AS(f.result(), spindle::Error);
  REQUIRE_THROWS_WITH(f.result(), Catch::Contains("broken promise"));
}

TEST_CASE("Move-only values travel through a promise", "[future]") {
  spindle::Promise<std::unique_ptr<int>> p;
  auto f = p.get_future();
  p.set_result(std::make_unique<int>(5));
  REQUIRE(*f.result() == 5);
}

TEST_CASE("Done-callbacks run once, in the order added, at once if already done", "[future]") {
  spindle::Promise<int> p;
  auto f = p.get_future();
  std::vector<int> seen;
  f.add_done_callback([&](const spindle::Future<int>& x) { seen.push_back(x.result()); });
  f.add_done_callback([&](const spindle::Future<int>& x) { seen.push_back(x.result() * 10); });
  REQUIRE(seen.empty());
  std::thread t([&] { p.set_result(4); });
  t.join();
  REQUIRE(seen == std::vector<int>{4, 40});
  f.add_done_callback([&](const spindle::Future<int>&) { seen.push_back(-1); });
  REQUIRE(seen == std::vector<int>{4, 40, -1});
}

TEST_CASE("Done-callbacks also run when the future is cancelled", "[future]") {
  spindle::Promise<int> p;
  auto f = p.get_future();
  bool saw_cancelled = false;
  f.add_done_callback([&](const spindle::Future<int>& x) { saw_cancelled = x.cancelled(); });
  REQUIRE(f.cancel());
  REQUIRE(saw_cancelled);
}

TEST_CASE("A callback's exception goes to the installed handler and the next callback runs",
          "[future]") {
  HandlerGuard guard;
  std::vector<std::string> reported;
  auto previous = spindle::set_callback_exception_handler([&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      reported.emplace_back(ex.what());
    }
  });
  REQUIRE_FALSE(previous);  // the default is represented by an empty handler
  spindle::Promise<int> p;
  auto f = p.get_future();
  bool second_ran = false;
  f.add_done_callback([](const spindle::Future<int>&) { throw std::runtime_error("cb failed"); });
  f.add_done_callback([&](const spindle::Future<int>&) { second_ran = true; });
  REQUIRE(p.set_result(1));
  REQUIRE(reported == std::vector<std::string>{"cb failed"});
  REQUIRE(second_ran);
  REQUIRE(f.result() == 1);
}

TEST_CASE("A throwing handler and the default handler never let a callback's exception escape",
          "[future]") {
  HandlerGuard guard;
  spindle::set_callback_exception_handler([](std::exception_ptr) { throw 42; });
  spindle::Promise<int> p;
  auto f = p.get_future();
  int ran = 0;
  f.add_done_callback([&](const spindle::Future<int>&) {
    ++ran;
    throw std::runtime_error("first");
  });
  REQUIRE_NOTHROW(p.set_result(1));
  spindle::set_callback_exception_handler(nullptr);  // back to the default (stderr)
  REQUIRE_NOTHROW(f.add_done_callback([&](const spindle::Future<int>&) {
    ++ran;
    throw std::runtime_error("second (expected on stderr)");
  }));
  REQUIRE(ran == 2);
}

TEST_CASE("as_completed yields futures in the order they complete", "[future]") {
  constexpr int n = 6;
  std::vector<spindle::Promise<int>> promises(n);
  auto futures = futures_of(promises);
  const std::vector<int> order{3, 1, 5, 0, 4, 2};
  // The setter completes the next future only after the consumer received
  // the previous one, so completion order is fixed and observable.
  std::vector<spindle::Event> received(n);
  std::thread setter([&] {
    for (int k = 0; k < n; ++k) {
      if (k > 0) received[static_cast<std::size_t>(k - 1)].wait();
      promises[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])].set_result(
          order[static_cast<std::size_t>(k)]);
    }
  });
  std::vector<int> seen;
  int not_done_when_yielded = 0;
  for (auto& f : spindle::as_completed(futures)) {
    if (!f.done()) ++not_done_when_yielded;
    seen.push_back(f.result());
    received[seen.size() - 1].set();
  }
  setter.join();
  REQUIRE(not_done_when_yielded == 0);
  REQUIRE(seen == order);
}

TEST_CASE("as_completed yields already finished futures first, then the rest", "[future]") {
  std::vector<spindle::Promise<int>> promises(4);
  auto futures = futures_of(promises);
  promises[2].set_result(2);
  promises[0].set_result(0);
  std::vector<int> seen;
  auto range = spindle::as_completed(futures);
  auto it = range.begin();
  seen.push_back(it->result());
  ++it;
  seen.push_back(it->result());
  REQUIRE(seen == std::vector<int>{0, 2});
  promises[3].set_result(3);
  ++it;
  REQUIRE(it->result() == 3);
  promises[1].set_result(1);
  ++it;
  REQUIRE(it->result() == 1);
  ++it;
  REQUIRE(it == range.end());
}

TEST_CASE("as_completed takes ownership of an rvalue range of futures", "[future]") {
  std::vector<spindle::Promise<int>> promises(3);
  for (int i = 0; i < 3; ++i) promises[static_cast<std::size_t>(i)].set_result(i);
  int sum = 0;
  for (auto& f : spindle::as_completed(futures_of(promises))) sum += f.result();
  REQUIRE(sum == 3);
  std::vector<spindle::Future<int>> none;
  int count = 0;
  for (auto& f : spindle::as_completed(none)) count += f.result();
  REQUIRE(count == 0);
}

TEST_CASE("as_completed and wait accept const and non-contiguous ranges of futures", "[future]") {
  std::vector<spindle::Promise<int>> promises(3);
  std::deque<spindle::Future<int>> deque;
  for (auto& p : promises) deque.push_back(p.get_future());
  const std::vector<spindle::Future<int>> fixed(deque.begin(), deque.end());
  std::thread t([&] {
    for (int i = 2; i >= 0; --i) promises[static_cast<std::size_t>(i)].set_result(i);
  });
  int sum_deque = 0;
  for (auto& f : spindle::as_completed(deque)) sum_deque += f.result();
  int sum_const = 0;
  for (const auto& f : spindle::as_completed(fixed)) sum_const += f.result();
  t.join();
  REQUIRE(sum_deque == 3);
  REQUIRE(sum_const == 3);
  REQUIRE(spindle::wait(fixed).done.size() == 3);
}

TEST_CASE("as_completed's timeout throws TimeoutError from the iteration", "[future][timing]") {
  std::vector<spindle::Promise<int>> promises(3);
  auto futures = futures_of(promises);
  promises[1].set_result(1);
  const auto start = Clock::now();
  auto range = spindle::as_completed(futures, 100ms);
  auto it = range.begin();  // the finished one comes at once
  REQUIRE(it->result() == 1);
  try {
    ++it;
    FAIL("no TimeoutError");
  } catch (const spindle::TimeoutError& e) {
    REQUIRE(std::string(e.what()) == "2 (of 3) futures unfinished");
  }
  const auto waited = Clock::now() - start;
  REQUIRE(waited >= 100ms);
  REQUIRE(waited < 10s);
}

TEST_CASE("as_completed with a negative timeout yields only finished futures", "[future][timing]") {
  std::vector<spindle::Promise<int>> promises(2);
  auto futures = futures_of(promises);
  promises[0].set_result(0);
  auto range = spindle::as_completed(futures, -1s);
  auto it = range.begin();
  REQUIRE(it->result() == 0);
  REQUIRE_THROWS_AS(++it, spindle::TimeoutError);
}

TEST_CASE("as_completed over many futures completed by many threads yields each exactly once",
          "[future][stress]") {
  const int n = 20000 / sanitizer_divisor;
  constexpr int setters = 4;
  std::vector<spindle::Promise<int>> promises(static_cast<std::size_t>(n));
  auto futures = futures_of(promises);
  std::vector<int> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(7));
  std::latch go(setters + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < setters; ++t)
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      for (int k = t; k < n; k += setters) {
        const int i = order[static_cast<std::size_t>(k)];
        promises[static_cast<std::size_t>(i)].set_result(i);
      }
    });
  std::vector<int> count(static_cast<std::size_t>(n), 0);
  int not_done_when_yielded = 0;
  auto range = spindle::as_completed(futures, 60s);
  go.arrive_and_wait();
  for (auto& f : range) {
    if (!f.done()) ++not_done_when_yielded;
    ++count[static_cast<std::size_t>(f.result())];
  }
  for (auto& t : threads) t.join();
  REQUIRE(not_done_when_yielded == 0);
  REQUIRE(std::all_of(count.begin(), count.end(), [](int c) { return c == 1; }));
}

TEST_CASE("Abandoning an as_completed iteration midway unregisters its waiters", "[future]") {
  std::vector<spindle::Promise<int>> promises(50);
  auto futures = futures_of(promises);
  promises[10].set_result(10);
  {
    auto range = spindle::as_completed(futures);
    REQUIRE(range.begin()->result() == 10);
    // range destroyed here with 49 pending futures still watched
  }
  for (int i = 0; i < 50; ++i)
    if (i != 10) promises[static_cast<std::size_t>(i)].set_result(i);  // must not touch freed memory
  REQUIRE(futures[49].result() == 49);
}

TEST_CASE("wait(first_completed) returns once any future is done", "[future]") {
  std::vector<spindle::Promise<int>> promises(3);
  auto futures = futures_of(promises);
  std::thread t([&] { promises[1].set_result(1); });
  auto [done, not_done] = spindle::wait(futures, spindle::ReturnWhen::first_completed);
  t.join();
  REQUIRE(done.size() >= 1);
  REQUIRE(done.size() + not_done.size() == 3);
  REQUIRE(std::find(done.begin(), done.end(), futures[1]) != done.end());
  REQUIRE(not_done.size() == 2);
}

TEST_CASE("wait(first_exception) returns at the first failure, else when all are done",
          "[future]") {
  std::vector<spindle::Promise<int>> promises(3);
  auto futures = futures_of(promises);
  promises[0].set_result(0);
  std::thread t([&] { promises[2].set_exception(std::make_exception_ptr(std::runtime_error("x"))); });
  auto r = spindle::wait(futures, spindle::ReturnWhen::first_exception);
  t.join();
  REQUIRE(r.done.size() == 2);
  REQUIRE(r.not_done.size() == 1);
  REQUIRE(r.not_done[0] == futures[1]);

  std::vector<spindle::Promise<int>> fine(2);
  auto ok = futures_of(fine);
  std::thread t2([&] {
    fine[0].set_result(0);
    fine[1].set_result(1);
  });
  auto all = spindle::wait(ok, spindle::ReturnWhen::first_exception);
  t2.join();
  REQUIRE(all.done.size() == 2);  // no failure: behaves as all_completed
  REQUIRE(all.not_done.empty());
}

TEST_CASE("wait(all_completed) returns when every future is done, cancelled ones included",
          "[future]") {
  std::vector<spindle::Promise<int>> promises(4);
  auto futures = futures_of(promises);
  futures[3].cancel();
  std::thread t([&] {
    for (int i = 0; i < 3; ++i) promises[static_cast<std::size_t>(i)].set_result(i);
  });
  auto r = spindle::wait(futures);
  t.join();
  REQUIRE(r.done.size() == 4);
  REQUIRE(r.not_done.empty());
  REQUIRE(r.done[3].cancelled());
}

TEST_CASE("wait with a timeout returns what is done when time runs out", "[future][timing]") {
  std::vector<spindle::Promise<int>> promises(3);
  auto futures = futures_of(promises);
  promises[0].set_result(0);
  for (auto when : {spindle::ReturnWhen::all_completed, spindle::ReturnWhen::first_exception}) {
    const auto start = Clock::now();
    auto r = spindle::wait(futures, when, 50ms);
    const auto waited = Clock::now() - start;
    REQUIRE(waited >= 50ms);
    REQUIRE(waited < 10s);
    REQUIRE(r.done.size() == 1);
    REQUIRE(r.not_done.size() == 2);
  }
  std::vector<spindle::Promise<int>> pending(2);
  auto none_done = futures_of(pending);
  auto r = spindle::wait(none_done, spindle::ReturnWhen::first_completed, -1s);
  REQUIRE(r.done.empty());
  REQUIRE(r.not_done.size() == 2);
  std::thread t([&] { pending[1].set_result(1); });
  auto r2 = spindle::wait(none_done, spindle::ReturnWhen::first_completed, 30s);
  t.join();
  REQUIRE(r2.done.size() == 1);
  REQUIRE(r2.done[0] == none_done[1]);
}

TEST_CASE("wait(futures, timeout) waits for all of them, as Python's default", "[future][timing]") {
  std::vector<spindle::Promise<int>> promises(2);
  auto futures = futures_of(promises);
  promises[0].set_result(0);
  auto r = spindle::wait(futures, 20ms);  // one still pending: times out
  REQUIRE(r.done.size() == 1);
  REQUIRE(r.not_done.size() == 1);
  std::thread t([&] { promises[1].set_result(1); });
  auto all = spindle::wait(futures, 30s);  // returns once both are done
  t.join();
  REQUIRE(all.done.size() == 2);
  REQUIRE(all.not_done.empty());
}

TEST_CASE("Completing, cancelling, waiting and adding callbacks race safely", "[future][stress]") {
  const int rounds = 2000 / sanitizer_divisor;
  int callbacks_total = 0;
  int expected_callbacks = 0;
  for (int round = 0; round < rounds; ++round) {
    spindle::Promise<int> p;
    auto f = p.get_future();
    std::atomic<int> callbacks{0};
    std::latch go(4);
    int set_ok = 0;
    int cancel_ok = 0;
    int waited_done = 0;
    std::thread setter([&] {
      go.arrive_and_wait();
      set_ok = p.set_result(round) ? 1 : 0;
    });
    std::thread canceller([&] {
      go.arrive_and_wait();
      cancel_ok = f.cancel() ? 1 : 0;
    });
    std::thread adder([&] {
      go.arrive_and_wait();
      for (int i = 0; i < 3; ++i)
        f.add_done_callback([&](const spindle::Future<int>&) { callbacks.fetch_add(1); });
    });
    go.arrive_and_wait();
    waited_done = f.wait(30s) ? 1 : 0;
    setter.join();
    canceller.join();
    adder.join();
    REQUIRE(waited_done == 1);
    REQUIRE(set_ok + cancel_ok == 1);  // exactly one of them decided the outcome
    REQUIRE(f.cancelled() == (cancel_ok == 1));
    if (set_ok) REQUIRE(f.result() == round);
    callbacks_total += callbacks.load();
    expected_callbacks += 3;
  }
  REQUIRE(callbacks_total == expected_callbacks);
}

TEST_CASE("as_completed and wait take braced lists and non-indexable ranges", "[future]") {
  std::vector<spindle::Promise<int>> promises(3);
  auto futures = futures_of(promises);
  promises[1].set_result(1);
  std::list<spindle::Future<int>> listed(futures.begin(), futures.end());
  auto r = spindle::wait(listed, spindle::ReturnWhen::first_completed);
  REQUIRE(r.done.size() == 1);
  REQUIRE(r.done[0] == futures[1]);
  auto braced = spindle::wait({futures[0], futures[1]}, 10ms);
  REQUIRE(braced.done.size() == 1);
  REQUIRE(braced.not_done.size() == 1);
  promises[0].set_result(0);
  promises[2].set_result(2);
  int sum = 0;
  for (auto& f : spindle::as_completed(listed)) sum += f.result();
  REQUIRE(sum == 3);
  sum = 0;
  for (auto& f : spindle::as_completed({futures[0], futures[2]}, 30s)) sum += f.result();
  REQUIRE(sum == 2);
}

TEST_CASE("set_running_or_notify_cancel reports a cancel and blocks later cancels", "[future]") {
  spindle::Promise<int> cancelled;
  auto f = cancelled.get_future();
  REQUIRE(f.cancel());
  REQUIRE_FALSE(cancelled.set_running_or_notify_cancel());  // Python: False after cancel()
  REQUIRE(f.cancelled());

  spindle::Promise<int> p;
  auto g = p.get_future();
  REQUIRE(p.set_running_or_notify_cancel());
  REQUIRE(g.running());
  REQUIRE_FALSE(g.cancel());  // running work cannot be cancelled
  REQUIRE_THROWS_AS(p.set_running_or_notify_cancel(), std::logic_error);  // already running
  REQUIRE(p.set_result(3));
  REQUIRE(g.result() == 3);
  REQUIRE_THROWS_AS(p.set_running_or_notify_cancel(), std::logic_error);  // already done
}

TEST_CASE("result() on a temporary future returns a value that outlives the future", "[future]") {
  spindle::Promise<std::string> p;
  p.set_result(std::string(64, 'q'));
  const auto& v = p.get_future().result();  // before: a reference into the freed state
  REQUIRE(v == std::string(64, 'q'));
  REQUIRE(p.get_future().result() == std::string(64, 'q'));  // copied: others still see it
}

TEST_CASE("take_result moves a move-only value out once", "[future]") {
  spindle::Promise<std::unique_ptr<int>> p;
  auto f = p.get_future();
  auto copy = f;
  p.set_result(std::make_unique<int>(9));
  std::unique_ptr<int> v = f.take_result();
  REQUIRE(*v == 9);
  REQUIRE_THROWS_AS(copy.take_result(), std::logic_error);
  REQUIRE_THROWS_AS(copy.result(), std::logic_error);
  REQUIRE(copy.done());
  spindle::Promise<std::unique_ptr<int>> q;
  q.set_result(std::make_unique<int>(4));
  std::unique_ptr<int> w = q.get_future().result();  // a temporary of a move-only type
  REQUIRE(*w == 4);
}
