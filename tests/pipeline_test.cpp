// SPDX-License-Identifier: MIT
// tests/pipeline_test.cpp - tests for spindle/pipeline.hpp (Pipeline stages).
#include <spindle/pipeline.hpp>

#include <spindle/event.hpp>
#include <spindle/queue.hpp>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <pthread.h>

#include "support/thread_state.hpp"

using namespace std::chrono_literals;
using spindle::ClosableQueue;
using spindle::Pipeline;
using spindle::QueueClosed;

namespace {

// Records, in order, the first close() of each RecordingQueue and how many
// puts had succeeded on that queue at that moment.
struct CloseLog {
  std::mutex m;
  std::vector<std::pair<std::string, std::size_t>> entries;  // guarded by m
  void add(std::string name, std::size_t puts) {
    std::lock_guard lock(m);
    entries.emplace_back(std::move(name), puts);
  }
};

// A ClosableQueue that logs its first close() and counts successful puts.
// The pipeline calls close()/put() on the static type it is given, so the
// hiding members below are the ones it uses.
template <class T>
class RecordingQueue : public ClosableQueue<T> {
public:
  RecordingQueue(std::string name, CloseLog& log, std::size_t maxsize = 0)
      : ClosableQueue<T>(maxsize), name_(std::move(name)), log_(&log) {}
  void put(T item) {
    ClosableQueue<T>::put(std::move(item));
    puts_.fetch_add(1);
  }
  void close() noexcept {
    if (!logged_.exchange(true)) log_->add(name_, puts_.load());
    ClosableQueue<T>::close();
  }
  std::size_t puts() const { return puts_.load(); }

private:
  std::string name_;
  CloseLog* log_;
  std::atomic<std::size_t> puts_{0};
  std::atomic<bool> logged_{false};
};

// Takes everything left in a closed queue.
template <class Q>
auto drain(Q& q) {
  std::vector<typename Q::value_type> items;
  while (auto item = q.try_get()) items.push_back(std::move(*item));
  return items;
}

// Keeps the maximum of the values offered to it.
struct MaxTracker {
  std::atomic<long> value{0};
  void offer(long v) {
    long cur = value.load();
    while (v > cur && !value.compare_exchange_weak(cur, v)) {
    }
  }
};

// Puts 0, 1, 2, ... on `q` until a put throws QueueClosed (or `limit` items).
struct Producer {
  std::atomic<bool> got_closed{false};
  std::atomic<long> put_count{0};
  std::atomic<pid_t> tid{0};
  std::thread thread;

  template <class Q>
  void start(Q& q, long limit = 1L << 40) {
    thread = std::thread([this, &q, limit] {
      tid.store(spindle_test::current_tid());
      try {
        for (long i = 0; i < limit; ++i) {
          q.put(static_cast<typename Q::value_type>(i));
          put_count.fetch_add(1);
        }
      } catch (const QueueClosed&) {
        got_closed.store(true);
      }
    });
  }
  void join() {
    if (thread.joinable()) thread.join();
  }
  ~Producer() { join(); }
};

}  // namespace

TEST_CASE("closing the first queue shuts every stage down in order", "[pipeline]") {
  constexpr std::size_t n = 500;
  CloseLog log;
  RecordingQueue<int> q0("download", log), q1("resize", log, 3), q2("upload", log, 3),
      q3("done", log);
  Pipeline pipeline;
  pipeline.stage(q0, q1, 3, [](int x) { return x + 1; })
      .stage(q1, q2, 4, [](int x) { return x * 2; })
      .stage(q2, q3, 5, [](int x) { return x - 1; });
  for (std::size_t i = 0; i < n; ++i) q0.put(static_cast<int>(i));
  q0.close();
  pipeline.join();

  std::vector<std::pair<std::string, std::size_t>> expected{
      {"download", n}, {"resize", n}, {"upload", n}, {"done", n}};
  REQUIRE(log.entries == expected);  // each output closed once, after its last put
  REQUIRE(q3.closed());
  auto out = drain(q3);
  std::sort(out.begin(), out.end());
  REQUIRE(out.size() == n);
  for (std::size_t i = 0; i < n; ++i) REQUIRE(out[i] == static_cast<int>((i + 1) * 2 - 1));
}

TEST_CASE("each stage marks its input items done so queue.join() works as in the book",
          "[pipeline]") {
  constexpr int n = 300;
  ClosableQueue<int> download_q, resize_q, upload_q, done_q;
  std::atomic<int> uploads{0};
  Pipeline pipeline;
  pipeline.stage(download_q, resize_q, 3, [](int x) { return x; })
      .stage(resize_q, upload_q, 4, [](int x) { return x; })
      .stage(upload_q, done_q, 5, [&](int x) {
        uploads.fetch_add(1);
        return x;
      });
  for (int i = 0; i < n; ++i) download_q.put(i);
  // Item 55's order: join each phase's input before closing the next; with
  // no task_done from the workers these joins would never return.
  download_q.join();
  resize_q.join();
  upload_q.join();
  REQUIRE(uploads.load() == n);
  REQUIRE(done_q.qsize() == static_cast<std::size_t>(n));
  REQUIRE_FALSE(done_q.closed());  // nothing closed the first queue yet
  download_q.close();
  pipeline.join();
  REQUIRE(done_q.closed());
}

TEST_CASE("a bounded queue holds back a fast stage: backlog stays within bound plus workers",
          "[pipeline]") {
  constexpr long n = 400;
  constexpr long bound = 4, fast_workers = 3, slow_workers = 2;
  ClosableQueue<long> input(2), middle(static_cast<std::size_t>(bound));
  std::atomic<long> produced{0}, consumed{0};
  MaxTracker max_backlog, max_qsize;
  spindle::Event saturated;  // the fast stage has filled the queue and its hands
  Pipeline pipeline;
  pipeline
      .stage(input, middle, static_cast<std::size_t>(fast_workers),
             [&](long x) {
               const long p = produced.fetch_add(1) + 1;
               max_backlog.offer(p - consumed.load());
               max_qsize.offer(static_cast<long>(middle.qsize()));
               if (p >= bound + fast_workers) saturated.set();
               return x;
             })
      .stage(middle, static_cast<std::size_t>(slow_workers), [&](long) {
        consumed.fetch_add(1);
        max_qsize.offer(static_cast<long>(middle.qsize()));
        saturated.wait();  // the slow stage holds back until the fast one is stuck
      });
  for (long i = 0; i < n; ++i) input.put(i);  // bounded too: the producer is held back
  input.close();
  pipeline.join();

  REQUIRE(produced.load() == n);
  REQUIRE(consumed.load() == n);
  REQUIRE(saturated.is_set());
  // Items past the fast stage's function but not yet in the slow stage's:
  // at most the queue's bound, one in each fast worker's hands (blocked in
  // put) and one in each slow worker's hands between get and the call.
  REQUIRE(max_backlog.value.load() <= bound + fast_workers + slow_workers);
  REQUIRE(max_backlog.value.load() >= bound);
  REQUIRE(max_qsize.value.load() <= bound);
}

TEST_CASE("without a bound the fast stage runs ahead of a held-back stage", "[pipeline]") {
  constexpr long n = 400;
  ClosableQueue<long> input, middle;  // unbounded: no backpressure
  std::atomic<long> produced{0}, consumed{0};
  MaxTracker max_backlog;
  spindle::Event all_produced;
  Pipeline pipeline;
  pipeline
      .stage(input, middle, 3,
             [&](long x) {
               const long p = produced.fetch_add(1) + 1;
               max_backlog.offer(p - consumed.load());
               if (p == n) all_produced.set();
               return x;
             })
      .stage(middle, 2, [&](long) {
        all_produced.wait();
        consumed.fetch_add(1);
      });
  for (long i = 0; i < n; ++i) input.put(i);
  input.close();
  pipeline.join();
  REQUIRE(consumed.load() == n);
  REQUIRE(max_backlog.value.load() == n);  // contrast with the bounded test above
}

TEST_CASE("a stage with several workers processes every item exactly once on several threads",
          "[pipeline]") {
  constexpr int n = 400;
  constexpr int workers = 4;
  ClosableQueue<int> in, out;
  std::mutex m;
  std::set<std::thread::id> threads;  // guarded by m
  std::atomic<int> in_flight{0}, calls{0};
  std::atomic<bool> overlap_timed_out{false};
  spindle::Event all_busy;
  Pipeline pipeline;
  pipeline.stage(in, out, workers, [&](int x) {
    {
      std::lock_guard lock(m);
      threads.insert(std::this_thread::get_id());
    }
    // The first `workers` calls block until all of them run at once: only
    // possible if the stage really has that many threads.
    if (calls.fetch_add(1) < workers) {
      if (in_flight.fetch_add(1) + 1 == workers) all_busy.set();
      if (!all_busy.wait(30s)) overlap_timed_out.store(true);
    }
    return x;
  });
  for (int i = 0; i < n; ++i) in.put(i);
  in.close();
  pipeline.join();

  REQUIRE_FALSE(overlap_timed_out.load());
  REQUIRE(threads.size() == static_cast<std::size_t>(workers));
  auto items = drain(out);
  std::sort(items.begin(), items.end());
  REQUIRE(items.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) REQUIRE(items[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("an exception in any stage reaches join and wakes every blocked thread",
          "[pipeline]") {
  const int failing = GENERATE(0, 1, 2);
  CAPTURE(failing);
  ClosableQueue<int> q0(2), q1(2), q2(2), q3(2);
  Producer producer;  // puts forever: it can only end by QueueClosed
  std::atomic<bool> triggered{false}, producer_parked{false};
  spindle::Event release;
  // In the failing stage, every item from 50 on is held back, so the bounded
  // queues fill up and the producer blocks in put; the first such item then
  // waits until the producer is asleep in the kernel, and throws.
  auto fn_for = [&](int stage) {
    return [&, stage](int x) {
      if (stage == failing && x >= 50) {
        if (!triggered.exchange(true)) {
          producer_parked.store(spindle_test::wait_until_sleeping(producer.tid.load()));
          release.set();
          throw std::runtime_error("boom in stage " + std::to_string(stage));
        }
        release.wait();
      }
      return x;
    };
  };
  std::atomic<bool> consumer_got_closed{false};
  Pipeline pipeline;
  pipeline.stage(q0, q1, 3, fn_for(0)).stage(q1, q2, 2, fn_for(1)).stage(q2, q3, 2, fn_for(2));
  producer.start(q0);
  std::thread consumer([&] {
    try {
      for (;;) (void)q3.get();
    } catch (const QueueClosed&) {
      consumer_got_closed.store(true);
    }
  });

  REQUIRE_THROWS_WITH(pipeline.join(), "boom in stage " + std::to_string(failing));
  // join returned: every worker ended. Every queue is closed, so the
  // producer, which was blocked in put on a full queue, and the consumer
  // were woken.
  producer.join();
  consumer.join();
  REQUIRE(producer_parked.load());
  REQUIRE(producer.got_closed.load());
  REQUIRE(consumer_got_closed.load());
  REQUIRE(q0.closed());
  REQUIRE(q1.closed());
  REQUIRE(q2.closed());
  REQUIRE(q3.closed());
  REQUIRE(pipeline.stopped());
  // Asked again, join reports the same exception.
  REQUIRE_THROWS_WITH(pipeline.join(), "boom in stage " + std::to_string(failing));
}

TEST_CASE("a failure wakes a stage's workers blocked in put on a full queue", "[pipeline]") {
  constexpr int bound = 2, upstream_workers = 3;
  ClosableQueue<int> in, middle(bound);
  std::atomic<int> produced{0};
  std::atomic<pid_t> up_tids[upstream_workers] = {};
  std::atomic<int> tid_slots{0};
  spindle::Event upstream_stuck;
  Pipeline pipeline;
  pipeline.stage(in, middle, upstream_workers, [&](int x) {
    thread_local bool registered = false;
    if (!registered) {
      registered = true;
      up_tids[tid_slots.fetch_add(1)].store(spindle_test::current_tid());
    }
    // Queue full (bound) + one held by the downstream worker + one in each
    // upstream worker's hands: after that every upstream worker is in put.
    if (produced.fetch_add(1) + 1 == bound + 1 + upstream_workers) upstream_stuck.set();
    return x;
  });
  std::atomic<bool> all_parked{false};
  pipeline.stage(middle, 1, [&](int) {
    upstream_stuck.wait();
    bool parked = tid_slots.load() == upstream_workers;
    for (auto& tid : up_tids)
      parked = parked && spindle_test::wait_until_sleeping(tid.load());
    all_parked.store(parked);
    throw std::runtime_error("downstream failed");
  });
  for (int i = 0; i < 100; ++i) in.put(i);
  // The first queue stays open: only the failure can end this pipeline.
  REQUIRE_THROWS_WITH(pipeline.join(), "downstream failed");
  REQUIRE(all_parked.load());  // the upstream workers were blocked in put
  REQUIRE(produced.load() == bound + 1 + upstream_workers);
  REQUIRE(in.closed());
  REQUIRE(middle.closed());
  // The items left in the input were drained and marked done.
  REQUIRE(in.join(0s));
  REQUIRE(in.qsize() == 0);
}

TEST_CASE("join reports the first exception, not one thrown later", "[pipeline]") {
  ClosableQueue<int> a, b, never_fed, sink_out;
  spindle::Event b_running;
  Pipeline pipeline;
  pipeline.stage(never_fed, sink_out, 1, [](int x) { return x; });
  pipeline.stage(b, 1, [&](int) {
    b_running.set();
    try {
      (void)never_fed.get();  // returns only when stop() closes it
    } catch (const QueueClosed&) {
    }
    throw std::runtime_error("second");
  });
  pipeline.stage(a, 1, [&](int) {
    b_running.wait();
    throw std::runtime_error("first");
  });
  b.put(1);
  a.put(1);
  REQUIRE_THROWS_WITH(pipeline.join(), "first");
}

TEST_CASE("an exception escaping a sink stage is rethrown as its own type", "[pipeline]") {
  struct Custom : std::exception {
    int code = 7;
  };
  ClosableQueue<int> in;
  Pipeline pipeline;
  pipeline.stage(in, 2, [](int x) {
    if (x == 3) throw Custom{};
  });
  for (int i = 0; i < 10; ++i) in.put(i);
  in.close();
  int code = 0;
  try {
    pipeline.join();
  } catch (const Custom& e) {
    code = e.code;
  }
  REQUIRE(code == 7);
}

TEST_CASE("the destructor without join stops the pipeline and wakes everyone", "[pipeline]") {
  constexpr int bound = 2, last_workers = 2;
  ClosableQueue<int> q0(bound), q1(bound), q2(bound);  // nobody reads q2
  Producer producer;
  std::atomic<int> last_calls{0};
  spindle::Event stuck;
  {
    Pipeline pipeline;
    pipeline.stage(q0, q1, 2, [](int x) { return x; }).stage(q1, q2, last_workers, [&](int x) {
      if (last_calls.fetch_add(1) + 1 == bound + last_workers) stuck.set();
      return x;
    });
    producer.start(q0);
    stuck.wait();  // q2 is full and each last worker holds an item: all blocked
    REQUIRE(spindle_test::wait_until_sleeping(producer.tid.load()));
  }  // ~Pipeline: no join, no close by the test
  producer.join();
  REQUIRE(producer.got_closed.load());
  REQUIRE(q0.closed());
  REQUIRE(q1.closed());
  REQUIRE(q2.closed());
  REQUIRE(q2.qsize() == static_cast<std::size_t>(bound));  // results that made it stay
  REQUIRE(last_calls.load() == bound + last_workers);
}

TEST_CASE("the destructor swallows a stage's exception instead of terminating", "[pipeline]") {
  ClosableQueue<int> in;
  spindle::Event thrown;
  {
    Pipeline pipeline;
    pipeline.stage(in, 1, [&](int) {
      thrown.set();
      throw std::runtime_error("never joined");
    });
    in.put(1);
    thrown.wait();
  }
  REQUIRE(in.closed());
}

TEST_CASE("the destructor of an idle pipeline closes its open first queue", "[pipeline]") {
  ClosableQueue<int> in, out;
  {
    Pipeline pipeline;
    pipeline.stage(in, out, 3, [](int x) { return x; });
  }
  REQUIRE(in.closed());
  REQUIRE(out.closed());
}

TEST_CASE("after join the queues may be destroyed before the pipeline", "[pipeline]") {
  Pipeline pipeline;  // declared before its queues, against the advice
  {
    ClosableQueue<int> in, out;
    pipeline.stage(in, out, 2, [](int x) { return x + 1; });
    in.put(41);
    in.close();
    pipeline.join();
    REQUIRE(out.get() == 42);
  }
  // ~Pipeline must not touch the destroyed queues (ASan checks this).
}

TEST_CASE("stop() cancels a running pipeline: join returns normally and queue joins return",
          "[pipeline]") {
  ClosableQueue<int> q0(4), q1(4), q2;
  Producer producer;
  std::atomic<int> seen{0};
  spindle::Event flowing;
  Pipeline pipeline;
  pipeline.stage(q0, q1, 2, [](int x) { return x; }).stage(q1, q2, 2, [&](int x) {
    if (seen.fetch_add(1) == 20) flowing.set();
    return x;
  });
  producer.start(q0);
  flowing.wait();
  pipeline.stop();
  REQUIRE(pipeline.stopped());
  REQUIRE_NOTHROW(pipeline.join());
  producer.join();
  REQUIRE(producer.got_closed.load());
  // Items left inside were dropped and marked done, so these return.
  REQUIRE(q0.join(10s));
  REQUIRE(q1.join(10s));
  REQUIRE(q0.qsize() == 0);
  REQUIRE(q1.qsize() == 0);
  REQUIRE(q2.closed());
}

// The pipeline a SIGINT handler stops (set before the handler is installed).
std::atomic<Pipeline*> sigint_pipeline{nullptr};
extern "C" void stop_pipeline_on_signal(int) {
  if (Pipeline* p = sigint_pipeline.load()) p->request_stop();
}

// Installs `stop_pipeline_on_signal` for SIGINT for the scope's duration.
struct SigintHandler {
  struct sigaction old {};
  SigintHandler() {
    struct sigaction sa {};
    sa.sa_handler = stop_pipeline_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
  }
  ~SigintHandler() { sigaction(SIGINT, &old, nullptr); }
};

TEST_CASE("request_stop() from a SIGINT handler stops a pipeline whose input nobody closes",
          "[pipeline][signal]") {
  ClosableQueue<int> q0, q1, q2;
  std::atomic<int> processed{0};
  spindle::Event flowing;
  Pipeline pipeline;
  pipeline.stage(q0, q1, 2, [](int x) { return x; }).stage(q1, q2, 2, [&](int x) {
    if (processed.fetch_add(1) == 9) flowing.set();
    return x;
  });
  for (int i = 0; i < 10; ++i) q0.put(i);
  flowing.wait();  // every worker now waits on an open, empty queue
  sigint_pipeline.store(&pipeline);
  SigintHandler handler;
  SECTION("raised in the test thread") { REQUIRE(std::raise(SIGINT) == 0); }
  SECTION("sent to a thread blocked in a queue") {
    std::thread blocked([&] { (void)q0.try_get(60s); });
    // pthread_kill, since blocked's handle is all we have; the handler may
    // run on it while it sleeps in the futex (EINTR is a spurious wake-up).
    REQUIRE(pthread_kill(blocked.native_handle(), SIGINT) == 0);
    blocked.join();  // ends once the watcher closed q0
  }
  REQUIRE_NOTHROW(pipeline.join());  // returns: the request stopped it
  sigint_pipeline.store(nullptr);
  REQUIRE(pipeline.stop_requested());
  REQUIRE(pipeline.stopped());
  REQUIRE(q0.closed());
  REQUIRE(q1.closed());
  REQUIRE(q2.closed());
  REQUIRE(q2.qsize() == 10);  // what got through before the stop is kept
  REQUIRE(q0.join(10s));
}

TEST_CASE("request_stop() from another thread, and before the first stage, stops the pipeline",
          "[pipeline][signal]") {
  SECTION("from another thread while running") {
    ClosableQueue<int> in, out;
    Pipeline pipeline;
    pipeline.stage(in, out, 3, [](int x) { return x; });
    std::thread([&] { pipeline.request_stop(); }).join();
    REQUIRE_NOTHROW(pipeline.join());
    REQUIRE(in.closed());
    REQUIRE(out.closed());
    pipeline.request_stop();  // idempotent
  }
  SECTION("before any stage: the first stage is stopped at once") {
    ClosableQueue<int> in, out;
    Pipeline pipeline;
    pipeline.request_stop();
    REQUIRE(pipeline.stop_requested());
    pipeline.stage(in, out, 2, [](int x) { return x; });
    REQUIRE_NOTHROW(pipeline.join());
    REQUIRE(in.closed());
    REQUIRE(out.closed());
  }
  SECTION("never requested: a finished pipeline ends its watcher quietly") {
    ClosableQueue<int> in, out;
    {
      Pipeline pipeline;
      pipeline.stage(in, out, 1, [](int x) { return x * 2; });
      in.put(21);
      in.close();
      pipeline.join();
      REQUIRE_FALSE(pipeline.stop_requested());
    }
    REQUIRE(out.get() == 42);
  }
}

TEST_CASE("a sink stage and a filtering stage returning std::optional", "[pipeline]") {
  ClosableQueue<int> numbers, evens;
  std::atomic<long> sum{0}, count{0};
  Pipeline pipeline;
  pipeline
      .stage(numbers, evens, 3,
             [](int x) -> std::optional<int> {
               if (x % 2 != 0) return std::nullopt;
               return x;
             })
      .stage(evens, 2, [&](int x) {
        sum.fetch_add(x);
        count.fetch_add(1);
      });
  for (int i = 0; i < 1000; ++i) numbers.put(i);
  numbers.close();
  pipeline.join();
  REQUIRE(count.load() == 500);
  REQUIRE(sum.load() == 249500);  // 0 + 2 + ... + 998
  REQUIRE(evens.closed());
}

TEST_CASE("a queue of std::optional receives the std::optional results unfiltered",
          "[pipeline]") {
  ClosableQueue<int> in;
  ClosableQueue<std::optional<int>> out;
  Pipeline pipeline;
  pipeline.stage(in, out, 1, [](int x) -> std::optional<int> {
    if (x == 1) return std::nullopt;
    return x;
  });
  for (int i = 0; i < 3; ++i) in.put(i);
  in.close();
  pipeline.join();
  auto items = drain(out);
  REQUIRE(items.size() == 3);
  REQUIRE(std::count(items.begin(), items.end(), std::nullopt) == 1);
}

TEST_CASE("move-only items flow through the stages", "[pipeline]") {
  ClosableQueue<std::unique_ptr<int>> in, mid, out;
  Pipeline pipeline;
  pipeline
      .stage(in, mid, 2,
             [](std::unique_ptr<int> p) {
               *p += 1;
               return p;
             })
      .stage(mid, out, 2, [](std::unique_ptr<int>&& p) {
        *p *= 10;
        return std::move(p);
      });
  for (int i = 0; i < 100; ++i) in.put(std::make_unique<int>(i));
  in.close();
  pipeline.join();
  auto items = drain(out);
  REQUIRE(items.size() == 100);
  long total = 0;
  for (auto& p : items) total += *p;
  REQUIRE(total == 10 * (4950 + 100));
}

TEST_CASE("stages work over LifoQueue and PriorityQueue too", "[pipeline]") {
  spindle::PriorityQueue<int> in;
  spindle::LifoQueue<int> out;
  for (int i = 9; i >= 0; --i) in.put(i);
  in.close();
  Pipeline pipeline;  // one worker: the priority order is kept
  pipeline.stage(in, out, 1, [](int x) { return x * x; });
  pipeline.join();
  std::vector<int> items;
  while (auto x = out.try_get()) items.push_back(*x);  // last in, first out
  REQUIRE(items == std::vector<int>{81, 64, 49, 36, 25, 16, 9, 4, 1, 0});
}

TEST_CASE("closing an output queue from outside is reported as QueueClosed", "[pipeline]") {
  ClosableQueue<int> in, out;
  Pipeline pipeline;
  pipeline.stage(in, out, 2, [](int x) { return x; });
  out.close();
  in.put(1);
  REQUIRE_THROWS_AS(pipeline.join(), QueueClosed);
  REQUIRE(in.closed());
}

TEST_CASE("bad arguments and misuse get clear exceptions", "[pipeline]") {
  ClosableQueue<int> in, out;
  Pipeline pipeline;
  REQUIRE_THROWS_AS(pipeline.stage(in, out, 0, [](int x) { return x; }),
                    std::invalid_argument);
  REQUIRE_THROWS_WITH(pipeline.stage(in, 0, [](int) {}), Catch::Contains("at least 1"));

  SECTION("join from one of the pipeline's own workers throws std::logic_error") {
    std::atomic<bool> got_logic_error{false};
    pipeline.stage(in, 1, [&](int) {
      try {
        pipeline.join();
      } catch (const std::logic_error&) {
        got_logic_error.store(true);
      }
    });
    in.put(1);
    in.close();
    pipeline.join();
    REQUIRE(got_logic_error.load());
  }
  SECTION("a stage added after stop() has its queues closed at once") {
    pipeline.stop();
    ClosableQueue<int> late_in, late_out;
    pipeline.stage(late_in, late_out, 2, [](int x) { return x; });
    REQUIRE(late_in.closed());
    REQUIRE(late_out.closed());
    REQUIRE_THROWS_AS(late_in.put(1), QueueClosed);
    REQUIRE_NOTHROW(pipeline.join());
  }
}

TEST_CASE("join with a timeout waits at least the timeout while stages run",
          "[pipeline][timing]") {
  ClosableQueue<int> in, out;
  Pipeline pipeline;
  pipeline.stage(in, out, 2, [](int x) { return x; });
  const auto start = std::chrono::steady_clock::now();
  const bool finished = pipeline.join(50ms);
  const auto waited = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(finished);
  REQUIRE(waited >= 50ms);
  REQUIRE(waited < 10s);
  REQUIRE_FALSE(pipeline.join(0s));
  REQUIRE_FALSE(pipeline.join(-5ms));
  in.close();
  REQUIRE(pipeline.join(30s));
  REQUIRE(out.closed());
}

namespace {

// Per-item work of random length: a short spin, a yield or nothing.
void random_work(unsigned seed) {
  switch (seed % 4) {
    case 0:
      for (unsigned i = 0; i < (seed % 2000); ++i) spindle::detail::spin_pause();
      break;
    case 1:
      std::this_thread::yield();
      break;
    case 2:
      std::this_thread::sleep_for(std::chrono::microseconds(seed % 50));  // simulated work
      break;
    default:
      break;
  }
}

}  // namespace

TEST_CASE("stress: random stages, workers, bounds and per-item work deliver every item once",
          "[pipeline][stress]") {
  std::mt19937 rng(Catch::rngSeed() + 12345);
  for (int round = 0; round < 12; ++round) {
    const int stages = std::uniform_int_distribution<int>(1, 4)(rng);
    const int n = std::uniform_int_distribution<int>(100, 600)(rng);
    std::vector<std::unique_ptr<ClosableQueue<long>>> queues;
    for (int s = 0; s <= stages; ++s)
      queues.push_back(std::make_unique<ClosableQueue<long>>(
          static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 3)(rng))));
    Pipeline pipeline;
    for (int s = 0; s < stages; ++s) {
      const auto workers = static_cast<std::size_t>(std::uniform_int_distribution<int>(1, 4)(rng));
      const unsigned salt = static_cast<unsigned>(rng());
      pipeline.stage(*queues[static_cast<std::size_t>(s)], *queues[static_cast<std::size_t>(s) + 1],
                     workers, [salt](long x) {
                       random_work(static_cast<unsigned>(x) * 2654435761u ^ salt);
                       return x + 1000000;
                     });
    }
    auto& first = *queues.front();
    auto& last = *queues.back();
    // The last queue may be bounded: read it concurrently.
    std::vector<long> out;
    std::thread reader([&] {
      for (long x : last) out.push_back(x);
    });
    for (long i = 0; i < n; ++i) first.put(i);
    first.close();
    pipeline.join();
    reader.join();
    std::sort(out.begin(), out.end());
    REQUIRE(out.size() == static_cast<std::size_t>(n));
    for (long i = 0; i < n; ++i)
      REQUIRE(out[static_cast<std::size_t>(i)] == i + 1000000L * stages);
    for (auto& q : queues) REQUIRE(q->closed());
  }
}

TEST_CASE("stress: failures and stop() racing the flow leave no thread blocked",
          "[pipeline][stress]") {
  std::mt19937 rng(Catch::rngSeed() + 777);
  for (int round = 0; round < 20; ++round) {
    const int stages = std::uniform_int_distribution<int>(1, 3)(rng);
    const int fail_stage = std::uniform_int_distribution<int>(-1, stages - 1)(rng);  // -1: none
    const long fail_at = std::uniform_int_distribution<long>(0, 300)(rng);
    const bool stop_too = std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    std::vector<std::unique_ptr<ClosableQueue<long>>> queues;
    for (int s = 0; s <= stages; ++s)
      queues.push_back(std::make_unique<ClosableQueue<long>>(
          static_cast<std::size_t>(std::uniform_int_distribution<int>(1, 3)(rng))));
    std::atomic<long> reached{0};
    spindle::Event halfway;
    Pipeline pipeline;
    for (int s = 0; s < stages; ++s) {
      const auto workers = static_cast<std::size_t>(std::uniform_int_distribution<int>(1, 3)(rng));
      pipeline.stage(*queues[static_cast<std::size_t>(s)], *queues[static_cast<std::size_t>(s) + 1],
                     workers, [&, s](long x) {
                       random_work(static_cast<unsigned>(x * 7 + s));
                       if (s == stages - 1 && reached.fetch_add(1) == 150) halfway.set();
                       if (s == fail_stage && x == fail_at) {
                         halfway.set();  // let the stopper race the failure
                         throw std::runtime_error("injected");
                       }
                       return x;
                     });
    }
    Producer producer;  // unlimited: it must be stopped by QueueClosed
    producer.start(*queues.front());
    std::atomic<bool> reader_done{false};
    std::thread reader([&] {
      for (long x : *queues.back()) (void)x;
      reader_done.store(true);
    });
    std::thread stopper;
    if (stop_too || fail_stage < 0)
      stopper = std::thread([&] {
        halfway.wait();
        pipeline.stop();
      });
    bool threw = false;
    try {
      pipeline.join();
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "injected";
    }
    if (stopper.joinable()) stopper.join();
    producer.join();
    reader.join();
    CAPTURE(round, stages, fail_stage, fail_at, stop_too);
    REQUIRE(producer.got_closed.load());
    REQUIRE(reader_done.load());
    for (auto& q : queues) REQUIRE(q->closed());
    if (fail_stage < 0) REQUIRE_FALSE(threw);
    if (fail_stage >= 0 && !stop_too) REQUIRE(threw);
  }
}

TEST_CASE("stress: closing the first queue while producers put delivers every accepted item",
          "[pipeline][stress]") {
  std::mt19937 rng(Catch::rngSeed() + 4242);
  for (int round = 0; round < 20; ++round) {
    const auto bound = static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 4)(rng));
    const int close_after = std::uniform_int_distribution<int>(0, 400)(rng);
    ClosableQueue<long> q0(bound), q1(bound), q2;
    std::atomic<long> seen{0};
    spindle::Event close_now;
    Pipeline pipeline;
    pipeline
        .stage(q0, q1, 3,
               [&](long x) {
                 if (seen.fetch_add(1) == close_after) close_now.set();
                 return x;
               })
        .stage(q1, q2, 2, [](long x) { return -x; });
    // Two producers put distinct numbers until the queue is closed under them.
    std::vector<long> accepted[2];
    std::thread producers[2];
    for (int p = 0; p < 2; ++p)
      producers[p] = std::thread([&, p] {
        try {
          for (long i = p;; i += 2) {
            q0.put(i);
            accepted[p].push_back(i);
          }
        } catch (const QueueClosed&) {
        }
      });
    close_now.wait();
    q0.close();  // races the producers' puts
    for (auto& t : producers) t.join();
    pipeline.join();
    std::vector<long> expected;
    for (auto& a : accepted) expected.insert(expected.end(), a.begin(), a.end());
    std::vector<long> out;
    for (long x : drain(q2)) out.push_back(-x);
    std::sort(expected.begin(), expected.end());
    std::sort(out.begin(), out.end());
    CAPTURE(round, bound, close_after);
    REQUIRE(out == expected);
  }
}
