// SPDX-License-Identifier: MIT
// tests/thread_test.cpp - Thread, Timer and the excepthook (threading.Thread, Timer, excepthook).
#include <spindle/thread.hpp>

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "support/thread_state.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int divisor = spindle_test::tsan_divisor(4);

// Installs a recording excepthook for one test and restores the previous.
class RecordingHook {
public:
  RecordingHook() {
    previous_ = spindle::set_excepthook([this](const spindle::ExceptHookArgs& args) {
      std::lock_guard lock(m_);
      calls_.push_back(args);
    });
  }
  ~RecordingHook() { spindle::set_excepthook(previous_); }
  std::vector<spindle::ExceptHookArgs> calls() {
    std::lock_guard lock(m_);
    return calls_;
  }

private:
  std::mutex m_;
  std::vector<spindle::ExceptHookArgs> calls_;  // guarded by m_
  spindle::ExceptHook previous_;
};

// Sends what is written to stderr during its lifetime to a file it returns.
class CaptureStderr {
public:
  CaptureStderr() {
    std::fflush(stderr);
    saved_ = ::dup(2);
    char path[] = "/tmp/spindle-thread-test-XXXXXX";
    fd_ = ::mkstemp(path);
    path_ = path;
    ::dup2(fd_, 2);
  }
  std::string finish() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    ::close(fd_);
    std::ifstream in(path_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ::unlink(path_.c_str());
    return text;
  }

private:
  int saved_ = -1, fd_ = -1;
  std::string path_;
};

// "Thread-N", N a positive decimal number (std::regex trips a false
// -Wmaybe-uninitialized in g++ 12's <regex> under the asan build).
bool is_default_name(const std::string& name) {
  const std::string prefix = "Thread-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return false;
  for (std::size_t i = prefix.size(); i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return name[prefix.size()] != '0';
}

std::string os_thread_name(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace

// ---------------------------------------------------------------------------
// Thread

TEST_CASE("A Thread runs its function with decay-copied arguments once started",
          "[thread]") {
  std::atomic<int> result{0};
  std::string text = "abc";
  spindle::Thread t([&](int a, std::string s) { result = a + static_cast<int>(s.size()); }, 40,
                    text);
  text = "changed after construction";  // the thread has its own copy
  REQUIRE_FALSE(t.is_alive());
  REQUIRE_FALSE(t.native_id().has_value());
  t.start();
  t.join();
  REQUIRE(result.load() == 43);
  REQUIRE_FALSE(t.is_alive());
  t.join();  // joining again is fine (Python allows it)
}

TEST_CASE("A Thread takes move-only functions and arguments", "[thread]") {
  auto box = std::make_unique<int>(7);
  int seen = 0;
  spindle::Thread t([&seen, own = std::make_unique<int>(5)](std::unique_ptr<int> p) {
    seen = *own + *p;
  }, std::move(box));
  t.start();
  t.join();
  REQUIRE(seen == 12);
}

TEST_CASE("A Thread's name defaults to Thread-N, can be chosen and names the OS thread",
          "[thread]") {
  spindle::Thread a([] {});
  spindle::Thread b([] {});
  REQUIRE(is_default_name(a.name()));
  REQUIRE(a.name() != b.name());
  std::atomic<pid_t> inner{0};
  spindle::Event go;
  spindle::Thread named([&](int) { inner = spindle_test::current_tid(); go.wait(); }, 1,
                        {.name = "a-rather-long-worker-name"});
  REQUIRE(named.name() == "a-rather-long-worker-name");
  named.start();
  // start() returns once the thread runs, with native_id set.
  REQUIRE(named.native_id().has_value());
  REQUIRE(spindle_test::spin_until([&] { return inner.load() != 0; }));
  REQUIRE(*named.native_id() == inner.load());
  REQUIRE(os_thread_name(inner.load()) == "a-rather-long-w");  // the kernel keeps 15 bytes
  REQUIRE(named.is_alive());
  go.set();
  named.join();
  spindle::Thread opts_only([] {}, {.name = "x"});
  REQUIRE(opts_only.name() == "x");
  spindle::Thread four([](int, int, int, int) {}, 1, 2, 3, 4, {.name = "four"});
  REQUIRE(four.name() == "four");
}

TEST_CASE("Thread misuse: start twice, join before start or from itself, empty handle",
          "[thread]") {
  spindle::Thread t([] {});
  REQUIRE_THROWS_AS(t.join(), std::logic_error);
  REQUIRE_THROWS_AS(t.join(1ms), std::logic_error);
  t.start();
  REQUIRE_THROWS_AS(t.start(), std::logic_error);
  t.join();
  REQUIRE_THROWS_AS(t.start(), std::logic_error);

  spindle::Thread* self = nullptr;
  std::latch ready(1);
  bool threw = false;
  spindle::Thread joiner([&] {
    ready.wait();
    try {
      self->join();
    } catch (const std::logic_error&) {
      threw = true;
    }
  });
  self = &joiner;
  joiner.start();
  ready.count_down();
  joiner.join();
  REQUIRE(threw);

  spindle::Thread empty;
  REQUIRE_THROWS_AS(empty.start(), std::logic_error);
  REQUIRE(empty.name().empty());
  REQUIRE_FALSE(empty.is_alive());
}

TEST_CASE("Thread::join(timeout) returns false while the thread runs, true once it ended",
          "[thread][timing]") {
  spindle::Event release;
  spindle::Thread t([&] { release.wait(); });
  t.start();
  const auto start = Clock::now();
  REQUIRE_FALSE(t.join(50ms));
  const auto took = Clock::now() - start;
  REQUIRE(took >= 50ms);
  REQUIRE(took < 50ms + 10s);
  REQUIRE(t.is_alive());
  REQUIRE_FALSE(t.join(0s));
  release.set();
  REQUIRE(t.join(1h));
  REQUIRE_FALSE(t.is_alive());
}

TEST_CASE("Several threads may join one Thread at once", "[thread]") {
  spindle::Event release;
  spindle::Thread t([&] { release.wait(); });
  t.start();
  std::vector<std::thread> joiners;
  std::atomic<int> joined{0};
  for (int i = 0; i < 4; ++i) {
    joiners.emplace_back([&, i] {
      if (i % 2) {
        t.join();
      } else {
        while (!t.join(1ms)) {
        }
      }
      joined.fetch_add(1);
    });
  }
  release.set();
  for (auto& j : joiners) j.join();
  REQUIRE(joined.load() == 4);
}

TEST_CASE("An exception escaping a Thread goes to the excepthook, not std::terminate",
          "[thread][excepthook]") {
  RecordingHook hook;
  std::atomic<bool> after{false};
  spindle::Thread t([] { throw std::out_of_range("index 7 of 3"); }, {.name = "thrower"});
  t.start();
  t.join();
  spindle::Thread odd([] { throw 42; });
  odd.start();
  odd.join();
  after = true;  // still running: nothing terminated the process
  const auto calls = hook.calls();
  REQUIRE(calls.size() == 2);
  REQUIRE(calls[0].thread_name == "thrower");
  REQUIRE(calls[0].exc_type == "std::out_of_range");
  REQUIRE(calls[0].message == "index 7 of 3");
  REQUIRE_THROWS_AS(std::rethrow_exception(calls[0].exc_value), std::out_of_range);
  REQUIRE(calls[1].exc_type == "int");
  REQUIRE(calls[1].message.empty());
  REQUIRE(after.load());
}

TEST_CASE("The default excepthook prints the thread's name and the exception to stderr",
          "[thread][excepthook]") {
  CaptureStderr capture;
  spindle::Thread t([] { throw std::runtime_error("it broke"); }, {.name = "worker-3"});
  t.start();
  t.join();
  const std::string text = capture.finish();
  REQUIRE(text == "Exception in thread worker-3:\nstd::runtime_error: it broke\n");
}

TEST_CASE("A throwing excepthook is reported by the default hook; an empty hook restores it",
          "[thread][excepthook]") {
  auto previous = spindle::set_excepthook([](const spindle::ExceptHookArgs&) {
    throw std::logic_error("hook failed");
  });
  CaptureStderr capture;
  spindle::Thread t([] { throw std::runtime_error("first"); }, {.name = "w"});
  t.start();
  t.join();
  const auto old = spindle::set_excepthook({});  // back to the default
  REQUIRE(static_cast<bool>(old));
  spindle::Thread u([] { throw std::runtime_error("second"); }, {.name = "v"});
  u.start();
  u.join();
  const std::string text = capture.finish();
  spindle::set_excepthook(previous);
  REQUIRE(text ==
          "Exception in thread w (in excepthook):\nstd::logic_error: hook failed\n"
          "Exception in thread v:\nstd::runtime_error: second\n");
}

TEST_CASE("The Thread destructor joins a started thread", "[thread]") {
  std::atomic<bool> finished{false};
  spindle::Event go;
  std::thread releaser;
  {
    spindle::Thread t([&] {
      go.wait();
      finished = true;
    });
    t.start();
    releaser = std::thread([&] { go.set(); });
  }  // blocks here until the function returned
  REQUIRE(finished.load());
  releaser.join();
  { spindle::Thread never_started([] {}); }  // nothing to join
}

TEST_CASE("Threads are movable: a vector of them, and move assignment joins the old one",
          "[thread]") {
  std::atomic<int> ran{0};
  std::vector<spindle::Thread> threads;
  for (int i = 0; i < 16; ++i) threads.emplace_back([&] { ran.fetch_add(1); });
  for (auto& t : threads) t.start();
  for (auto& t : threads) t.join();
  REQUIRE(ran.load() == 16);
  std::atomic<bool> old_done{false};
  spindle::Thread a([&] { old_done = true; });
  a.start();
  a = spindle::Thread([] {});  // joins the first before taking the new one
  REQUIRE(old_done.load());
  REQUIRE_FALSE(a.is_alive());
  spindle::Thread moved = std::move(a);
  REQUIRE(a.name().empty());
}

TEST_CASE("A Thread handle destroyed from its own thread does not deadlock", "[thread]") {
  spindle::Event done;
  auto* handle = new spindle::Thread();
  std::latch ready(1);
  *handle = spindle::Thread([&] {
    ready.wait();
    delete handle;  // the destructor sees its own thread: detaches
    done.set();
  });
  handle->start();
  ready.count_down();
  REQUIRE(done.wait(60s));
}

// ---------------------------------------------------------------------------
// Timer

TEST_CASE("A Timer calls its function after the interval", "[timer][timing]") {
  std::atomic<int> calls{0};
  Clock::time_point fired{};
  const auto start = Clock::now();
  spindle::Timer t(50ms, [&](int n) {
    fired = Clock::now();
    calls.fetch_add(n);
  }, 1);
  REQUIRE(is_default_name(t.name()));
  t.start();
  t.join();
  REQUIRE(calls.load() == 1);
  REQUIRE(fired - start >= 50ms);
  REQUIRE(fired - start < 50ms + 10s);
  REQUIRE_FALSE(t.cancel());  // too late: it ran
}

TEST_CASE("A cancelled Timer never calls its function", "[timer]") {
  std::atomic<bool> called{false};
  {
    spindle::Timer t(1h, [&] { called = true; });
    t.start();
    REQUIRE(t.cancel());
    REQUIRE(t.cancel());  // still true: it will not run
    REQUIRE(t.join(60s));  // cancel wakes the countdown at once
  }
  spindle::Timer before_start(0s, [&] { called = true; });
  REQUIRE(before_start.cancel());
  before_start.start();
  before_start.join();
  REQUIRE_FALSE(called.load());
  { spindle::Timer never_started(1h, [&] { called = true; }); }
  { spindle::Timer destroyed_running(1h, [&] { called = true; }); destroyed_running.start(); }
  REQUIRE_FALSE(called.load());
}

TEST_CASE("Timer cancel racing the expiry: fn runs exactly when cancel() said it would",
          "[timer][stress]") {
  const int timers = 400 / divisor;
  std::mt19937 rng(5);
  int ran_count = 0, stopped_count = 0;
  for (int i = 0; i < timers; ++i) {
    std::atomic<int> ran{0};
    spindle::Timer t(std::chrono::microseconds(rng() % 300), [&] { ran.fetch_add(1); });
    t.start();
    for (unsigned spin = rng() % 3000; spin > 0; --spin) std::this_thread::yield();
    const bool stopped = t.cancel();
    t.join();
    REQUIRE(ran.load() == (stopped ? 0 : 1));
    ++(stopped ? stopped_count : ran_count);
  }
  INFO("stopped " << stopped_count << ", ran " << ran_count);
  REQUIRE(stopped_count + ran_count == timers);
}

TEST_CASE("An exception from a Timer's function goes to the excepthook", "[timer][excepthook]") {
  RecordingHook hook;
  spindle::Timer t(0s, [] { throw std::runtime_error("late failure"); });
  t.start();
  t.join();
  const auto calls = hook.calls();
  REQUIRE(calls.size() == 1);
  REQUIRE(calls[0].message == "late failure");
  REQUIRE(calls[0].thread_name == t.name());
}
