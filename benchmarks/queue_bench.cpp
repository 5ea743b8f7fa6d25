// SPDX-License-Identifier: MIT
// benchmarks/queue_bench.cpp - ClosableQueue against a mutex+condvar baseline
// and the peers issue 2 names (oneTBB, Boost.Thread, Boost.Fiber, moodycamel).
//
// Scenarios, each run for every contender through one templated driver:
//   _1p1c, _2p2c, _4p4c  move N uint64_t items (10M; 20k with
//                        SPINDLE_BENCH_SMOKE set) from P producers to C
//                        consumers; items_per_second is the figure of merit.
//                        Every item is counted and summed on arrival: a lost
//                        or duplicated item fails the benchmark.
//   _Ping                one round trip per iteration between two threads
//                        over two queues; counter rt_us = µs per round trip.
//   _Batch1p4c, _Batch4p4c, _Batch8p8c
//                        (bounded contenders only) more threads than 2
//                        cores, started per batch of 120,000 items as a
//                        program would (20 batches; 2 x 5,000 in smoke
//                        mode), each consumer taking a fixed share.
//   _Idle                a consumer blocked ~50 ms on an empty queue; counter
//                        idle_cpu_us = its thread CPU time during that wait.
//
// Each contender is a small adapter: producer()/consumer() hand out
// per-thread handles (where moodycamel's tokens live), finish(consumers)
// ends the stream after the producers are done (close() where the queue has
// one, one sentinel per consumer where it does not), and drain_rest() picks up
// any item a sentinel overtook (moodycamel orders items per producer only).
//
// Run it with scripts/bench-queue, which repeats every benchmark, interleaved,
// and prints medians and the ratios issue 2 targets.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <latch>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spindle/errors.hpp>
#include <spindle/queue.hpp>

#ifdef SPINDLE_BENCH_HAVE_TBB
#include <oneapi/tbb/concurrent_queue.h>
#endif
#ifdef SPINDLE_BENCH_HAVE_BOOST
#include <boost/fiber/buffered_channel.hpp>
#include <boost/thread/sync_bounded_queue.hpp>
#endif
#ifdef SPINDLE_BENCH_HAVE_MOODYCAMEL
#include <concurrentqueue/blockingconcurrentqueue.h>
#endif

namespace {

using Item = std::uint64_t;

// Producers send 0..N-1, so this value never occurs as an item.
constexpr Item sentinel = std::numeric_limits<Item>::max();
constexpr std::size_t bounded_capacity = 1024;

bool smoke_mode() { return std::getenv("SPINDLE_BENCH_SMOKE") != nullptr; }

// Set when any benchmark saw a lost, duplicated or wrong item, so that the
// program (and CTest's smoke run) fails instead of only printing an error.
bool any_failed = false;

void fail(benchmark::State& state, const std::string& message) {
  any_failed = true;
  state.SkipWithError(message.c_str());
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// ---------------------------------------------------------------------------
// Baseline: what a careful user writes with the standard library alone.
// One mutex, two condition variables, a deque, and notify_one on every put
// and every get (outside the lock), whether or not anyone waits.

class BaselineQueue {
public:
  explicit BaselineQueue(std::size_t capacity) : capacity_(capacity) {}

  bool put(Item value) {
    {
      std::unique_lock lock(m_);
      not_full_.wait(lock, [&] { return closed_ || capacity_ == 0 || items_.size() < capacity_; });
      if (closed_) return false;
      items_.push_back(value);
    }
    not_empty_.notify_one();
    return true;
  }

  bool get(Item& value) {
    {
      std::unique_lock lock(m_);
      not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
      if (items_.empty()) return false;  // closed and drained
      value = items_.front();
      items_.pop_front();
    }
    not_full_.notify_one();
    return true;
  }

  void close() {
    {
      std::lock_guard lock(m_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }

private:
  std::mutex m_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Item> items_;  // guarded by m_
  bool closed_ = false;     // guarded by m_
  const std::size_t capacity_;
};

// ---------------------------------------------------------------------------
// Adapters. Each has: a constructor taking the capacity (0 = unbounded where
// the contender has a choice), producer() -> {put(Item)}, consumer() ->
// {bool get(Item&)} returning false at the end of the stream,
// finish(consumers) and drain_rest(on_item).

// Handles that only hold a pointer to the queue.
template <class Queue, class PutFn, class GetFn>
struct PlainHandles {
  struct Producer {
    Queue* q;
    void put(Item value) { PutFn{}(*q, value); }
  };
  struct Consumer {
    Queue* q;
    bool get(Item& value) { return GetFn{}(*q, value); }
  };
};

class SpindleAdapter {
  struct Put {
    void operator()(spindle::ClosableQueue<Item>& q, Item v) const { q.put(v); }
  };
  struct Get {
    bool operator()(spindle::ClosableQueue<Item>& q, Item& v) const {
      // The realistic consumer: blocking get() until the queue is closed and
      // drained. The exception is thrown once per consumer, at the end.
      try {
        v = q.get();
        return true;
      } catch (const spindle::QueueClosed&) {
        return false;
      }
    }
  };
  using Handles = PlainHandles<spindle::ClosableQueue<Item>, Put, Get>;

public:
  explicit SpindleAdapter(std::size_t capacity) : q_(capacity) {}
  Handles::Producer producer() { return {&q_}; }
  Handles::Consumer consumer() { return {&q_}; }
  void finish(std::size_t /*consumers*/) { q_.close(); }
  template <class F>
  void drain_rest(F&& /*on_item*/) {}

private:
  spindle::ClosableQueue<Item> q_;
};

class BaselineAdapter {
  struct Put {
    void operator()(BaselineQueue& q, Item v) const { q.put(v); }
  };
  struct Get {
    bool operator()(BaselineQueue& q, Item& v) const { return q.get(v); }
  };
  using Handles = PlainHandles<BaselineQueue, Put, Get>;

public:
  explicit BaselineAdapter(std::size_t capacity) : q_(capacity) {}
  Handles::Producer producer() { return {&q_}; }
  Handles::Consumer consumer() { return {&q_}; }
  void finish(std::size_t /*consumers*/) { q_.close(); }
  template <class F>
  void drain_rest(F&& /*on_item*/) {}

private:
  BaselineQueue q_;
};

#ifdef SPINDLE_BENCH_HAVE_TBB
// oneTBB's concurrent_bounded_queue has no close that keeps the items (abort()
// discards waiters' pops), so the stream ends with one sentinel per consumer.
// Its pops follow push order, so the sentinels come after every item.
class TbbAdapter {
  using Queue = tbb::concurrent_bounded_queue<Item>;
  struct Put {
    void operator()(Queue& q, Item v) const { q.push(v); }
  };
  struct Get {
    bool operator()(Queue& q, Item& v) const {
      q.pop(v);
      return v != sentinel;
    }
  };
  using Handles = PlainHandles<Queue, Put, Get>;

public:
  explicit TbbAdapter(std::size_t capacity) {
    if (capacity != 0) q_.set_capacity(static_cast<std::ptrdiff_t>(capacity));
  }
  Handles::Producer producer() { return {&q_}; }
  Handles::Consumer consumer() { return {&q_}; }
  void finish(std::size_t consumers) {
    for (std::size_t i = 0; i < consumers; ++i) q_.push(sentinel);
  }
  template <class F>
  void drain_rest(F&& on_item) {
    Item v = 0;
    while (q_.try_pop(v)) on_item(v);
  }

private:
  Queue q_;
};
#endif

#ifdef SPINDLE_BENCH_HAVE_BOOST
class BoostSyncQueueAdapter {
  using Queue = boost::sync_bounded_queue<Item>;
  struct Put {
    void operator()(Queue& q, Item v) const { q.push_back(v); }
  };
  struct Get {
    bool operator()(Queue& q, Item& v) const {
      return q.wait_pull_front(v) == boost::concurrent::queue_op_status::success;
    }
  };
  using Handles = PlainHandles<Queue, Put, Get>;

public:
  // sync_bounded_queue is bounded only; 0 is never passed.
  explicit BoostSyncQueueAdapter(std::size_t capacity) : q_(capacity) {}
  Handles::Producer producer() { return {&q_}; }
  Handles::Consumer consumer() { return {&q_}; }
  void finish(std::size_t /*consumers*/) { q_.close(); }
  template <class F>
  void drain_rest(F&& /*on_item*/) {}

private:
  Queue q_;
};

// Boost.Fiber's channel works between plain std::threads: a blocked thread's
// main fiber suspends and its scheduler sleeps on a condition variable.
// The capacity must be a power of two; the ring holds capacity - 1 items.
class BoostFiberChannelAdapter {
  using Queue = boost::fibers::buffered_channel<Item>;
  struct Put {
    void operator()(Queue& q, Item v) const { q.push(v); }
  };
  struct Get {
    bool operator()(Queue& q, Item& v) const {
      return q.pop(v) == boost::fibers::channel_op_status::success;
    }
  };
  using Handles = PlainHandles<Queue, Put, Get>;

public:
  explicit BoostFiberChannelAdapter(std::size_t capacity) : q_(capacity) {}
  Handles::Producer producer() { return {&q_}; }
  Handles::Consumer consumer() { return {&q_}; }
  void finish(std::size_t /*consumers*/) { q_.close(); }
  template <class F>
  void drain_rest(F&& /*on_item*/) {}

private:
  Queue q_;
};
#endif

#ifdef SPINDLE_BENCH_HAVE_MOODYCAMEL
using MoodyQueue = moodycamel::BlockingConcurrentQueue<Item>;

// Unbounded, no close: one sentinel per consumer. moodycamel keeps FIFO only
// per producer, so a consumer can meet a sentinel while another producer's
// items are still queued; drain_rest() collects those after the consumers
// stop, inside the timed region.
class MoodycamelAdapter {
  struct Put {
    void operator()(MoodyQueue& q, Item v) const { q.enqueue(v); }
  };
  struct Get {
    bool operator()(MoodyQueue& q, Item& v) const {
      q.wait_dequeue(v);
      return v != sentinel;
    }
  };
  using Handles = PlainHandles<MoodyQueue, Put, Get>;

public:
  explicit MoodycamelAdapter(std::size_t /*capacity: always unbounded*/) {}
  Handles::Producer producer() { return {&q_}; }
  Handles::Consumer consumer() { return {&q_}; }
  void finish(std::size_t consumers) {
    for (std::size_t i = 0; i < consumers; ++i) q_.enqueue(sentinel);
  }
  template <class F>
  void drain_rest(F&& on_item) {
    Item v = 0;
    while (q_.try_dequeue(v)) on_item(v);
  }

private:
  MoodyQueue q_;
};

// The same queue used as its author recommends for speed: every producer and
// consumer thread holds a token.
class MoodycamelTokensAdapter {
public:
  struct Producer {
    MoodyQueue* q;
    moodycamel::ProducerToken token;
    void put(Item value) { q->enqueue(token, value); }
  };
  struct Consumer {
    MoodyQueue* q;
    moodycamel::ConsumerToken token;
    bool get(Item& value) {
      q->wait_dequeue(token, value);
      return value != sentinel;
    }
  };

  explicit MoodycamelTokensAdapter(std::size_t /*capacity: always unbounded*/) {}
  Producer producer() { return {&q_, moodycamel::ProducerToken(q_)}; }
  Consumer consumer() { return {&q_, moodycamel::ConsumerToken(q_)}; }
  void finish(std::size_t consumers) {
    for (std::size_t i = 0; i < consumers; ++i) q_.enqueue(sentinel);
  }
  template <class F>
  void drain_rest(F&& on_item) {
    Item v = 0;
    while (q_.try_dequeue(v)) on_item(v);
  }

private:
  MoodyQueue q_;
};
#endif

// ---------------------------------------------------------------------------
// Drivers, shared by every contender.

struct Received {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  void add(Item v) {
    ++count;
    sum += v;
  }
};

// P producers send 0..n-1 (each a contiguous slice), C consumers take until
// the end of the stream; the main thread ends the stream once every producer
// returned. One iteration moves all n items.
template <class Adapter>
void run_mpmc(benchmark::State& state, std::size_t capacity, std::size_t producers,
              std::size_t consumers, std::uint64_t n) {
  const std::uint64_t expected_sum = n * (n - 1) / 2;
  for (auto _ : state) {
    Adapter queue(capacity);
    std::latch start(static_cast<std::ptrdiff_t>(producers + consumers + 1));
    std::vector<Received> received(consumers);
    std::vector<std::thread> producer_threads;
    std::vector<std::thread> consumer_threads;
    for (std::size_t c = 0; c < consumers; ++c) {
      consumer_threads.emplace_back([&queue, &start, &mine = received[c]] {
        auto handle = queue.consumer();
        Received local;
        start.arrive_and_wait();
        Item v = 0;
        while (handle.get(v)) local.add(v);
        mine = local;
      });
    }
    for (std::size_t p = 0; p < producers; ++p) {
      const std::uint64_t begin = n * p / producers;
      const std::uint64_t end = n * (p + 1) / producers;
      producer_threads.emplace_back([&queue, &start, begin, end] {
        auto handle = queue.producer();
        start.arrive_and_wait();
        for (std::uint64_t v = begin; v < end; ++v) handle.put(v);
      });
    }
    start.arrive_and_wait();
    for (auto& t : producer_threads) t.join();
    queue.finish(consumers);
    for (auto& t : consumer_threads) t.join();
    Received total;
    queue.drain_rest([&total](Item v) { total.add(v); });
    for (const auto& r : received) {
      total.count += r.count;
      total.sum += r.sum;
    }
    if (total.count != n || total.sum != expected_sum) {
      fail(state, "received " + std::to_string(total.count) + " items (sum " +
                      std::to_string(total.sum) + "), expected " + std::to_string(n) +
                      " (sum " + std::to_string(expected_sum) + ")");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// The oversubscribed shapes as a program would run them: the stream comes
// in batches of `batch` items and each batch starts its own threads (the
// consumers first, then the producers, no start barrier); every consumer
// takes a fixed share of the batch, so nothing needs closing between
// batches. One iteration moves batches * batch items through one queue.
template <class Adapter>
void run_batches(benchmark::State& state, std::size_t capacity, std::size_t producers,
                 std::size_t consumers, std::uint64_t batch, std::uint64_t batches) {
  const std::uint64_t n = batch * batches;
  const std::uint64_t expected_sum = n * (n - 1) / 2;
  for (auto _ : state) {
    Adapter queue(capacity);
    Received total;
    bool short_stream = false;
    for (std::uint64_t b = 0; b < batches; ++b) {
      const std::uint64_t base = b * batch;
      std::vector<Received> received(consumers);
      std::vector<char> complete(consumers, 0);
      std::vector<std::thread> threads;
      for (std::size_t c = 0; c < consumers; ++c) {
        const std::uint64_t share = batch * (c + 1) / consumers - batch * c / consumers;
        threads.emplace_back([&queue, share, &mine = received[c], &done = complete[c]] {
          auto handle = queue.consumer();
          Received local;
          Item v = 0;
          std::uint64_t k = 0;
          for (; k < share && handle.get(v); ++k) local.add(v);
          mine = local;
          done = k == share;
        });
      }
      for (std::size_t p = 0; p < producers; ++p) {
        const std::uint64_t begin = base + batch * p / producers;
        const std::uint64_t end = base + batch * (p + 1) / producers;
        threads.emplace_back([&queue, begin, end] {
          auto handle = queue.producer();
          for (std::uint64_t v = begin; v < end; ++v) handle.put(v);
        });
      }
      for (auto& t : threads) t.join();
      for (std::size_t c = 0; c < consumers; ++c) {
        total.count += received[c].count;
        total.sum += received[c].sum;
        short_stream = short_stream || !complete[c];
      }
    }
    if (short_stream || total.count != n || total.sum != expected_sum) {
      fail(state, "received " + std::to_string(total.count) + " items (sum " +
                      std::to_string(total.sum) + "), expected " + std::to_string(n) +
                      " (sum " + std::to_string(expected_sum) + ")");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

// One round trip per iteration: main puts i on `there`, an echo thread moves
// it to `back`, main takes it. rt_us is measured around the whole loop.
template <class Adapter>
void run_ping_pong(benchmark::State& state, std::size_t capacity) {
  Adapter there(capacity);
  Adapter back(capacity);
  std::thread echo([&] {
    auto in = there.consumer();
    auto out = back.producer();
    Item v = 0;
    while (in.get(v)) out.put(v);
  });
  auto out = there.producer();
  auto in = back.consumer();
  Item i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    out.put(i);
    Item v = 0;
    if (!in.get(v) || v != i) {
      fail(state, "round trip " + std::to_string(i) + " came back as " + std::to_string(v));
      break;
    }
    ++i;
  }
  const auto t1 = std::chrono::steady_clock::now();
  there.finish(1);
  echo.join();
  state.SetItemsProcessed(state.iterations());
  state.counters["rt_us"] = benchmark::Counter(
      std::chrono::duration<double, std::micro>(t1 - t0).count(),
      benchmark::Counter::kAvgIterations);
}

// A consumer blocks on an empty queue while the main thread idles for
// `idle`; the consumer's own CPU time across that get() is the cost of
// waiting. A queue that sleeps after a short spin shows a few µs; one that
// spins or polls shows most of `idle`.
template <class Adapter>
void run_idle(benchmark::State& state, std::size_t capacity, std::chrono::milliseconds idle) {
  double cpu_seconds = 0;
  double wall_seconds = 0;
  for (auto _ : state) {
    Adapter queue(capacity);
    std::latch ready(1);
    double cpu = 0;
    double wall = 0;
    Item got = 0;
    bool ok = false;
    std::thread consumer([&] {
      auto handle = queue.consumer();
      ready.count_down();
      const double c0 = thread_cpu_seconds();
      const auto w0 = std::chrono::steady_clock::now();
      ok = handle.get(got);
      wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
      cpu = thread_cpu_seconds() - c0;
    });
    ready.wait();
    // Not synchronisation: this is the idle period being measured. The item
    // is delivered whether or not the consumer has reached get() yet.
    std::this_thread::sleep_for(idle);
    {
      auto handle = queue.producer();
      handle.put(7);
    }
    consumer.join();
    queue.finish(0);
    if (!ok || got != 7) {
      fail(state, "the idle consumer did not receive the item");
      break;
    }
    cpu_seconds += cpu;
    wall_seconds += wall;
  }
  state.counters["idle_cpu_us"] =
      benchmark::Counter(cpu_seconds * 1e6, benchmark::Counter::kAvgIterations);
  state.counters["idle_wait_ms"] =
      benchmark::Counter(wall_seconds * 1e3, benchmark::Counter::kAvgIterations);
  state.counters["idle_cpu_pct"] =
      benchmark::Counter(wall_seconds > 0 ? 100.0 * cpu_seconds / wall_seconds : 0.0);
}

// Registers every scenario for one contender.
template <class Adapter>
void register_contender(const std::string& name, std::size_t capacity) {
  const bool smoke = smoke_mode();
  const std::uint64_t n = smoke ? 20'000 : 10'000'000;
  const auto idle = std::chrono::milliseconds(smoke ? 5 : 50);
  struct Shape {
    const char* label;
    std::size_t producers;
    std::size_t consumers;
  };
  for (const Shape shape : {Shape{"1p1c", 1, 1}, Shape{"2p2c", 2, 2}, Shape{"4p4c", 4, 4}}) {
    benchmark::RegisterBenchmark(("BM_" + name + "_" + shape.label).c_str(),
                                 [=](benchmark::State& state) {
                                   run_mpmc<Adapter>(state, capacity, shape.producers,
                                                     shape.consumers, n);
                                 })
        ->Iterations(1)  // one iteration already moves n items
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark(
      ("BM_" + name + "_Ping").c_str(),
      [=](benchmark::State& state) { run_ping_pong<Adapter>(state, capacity); })
      ->UseRealTime()
      // A busy machine spreads the round trip over two orders of magnitude:
      // the table shows min and max beside the median.
      ->ComputeStatistics("min",
                          [](const std::vector<double>& v) {
                            return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
                          })
      ->ComputeStatistics("max",
                          [](const std::vector<double>& v) {
                            return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end());
                          })
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(
      ("BM_" + name + "_Idle").c_str(),
      [=](benchmark::State& state) { run_idle<Adapter>(state, capacity, idle); })
      ->Iterations(smoke ? 1 : 5)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

// Registers the oversubscribed, batch-started shapes (issue 9): more threads
// than this machine's 2 cores, bounded queues only.
template <class Adapter>
void register_oversubscribed(const std::string& name, std::size_t capacity) {
  const bool smoke = smoke_mode();
  const std::uint64_t batch = smoke ? 5'000 : 120'000;
  const std::uint64_t batches = smoke ? 2 : 20;
  struct Shape {
    const char* label;
    std::size_t producers;
    std::size_t consumers;
  };
  for (const Shape shape :
       {Shape{"Batch1p4c", 1, 4}, Shape{"Batch4p4c", 4, 4}, Shape{"Batch8p8c", 8, 8}}) {
    benchmark::RegisterBenchmark(("BM_" + name + "_" + shape.label).c_str(),
                                 [=](benchmark::State& state) {
                                   run_batches<Adapter>(state, capacity, shape.producers,
                                                        shape.consumers, batch, batches);
                                 })
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
}

// One thread, a put then a get on a bounded ClosableQueue, with and without
// a timeout: a timed call on a queue that has room (an item) tries before it
// reads the clock, so it should cost what the untimed one does.
template <bool Timed>
void run_uncontended_put_get(benchmark::State& state) {
  spindle::ClosableQueue<std::uint64_t> q(bounded_capacity);
  std::uint64_t sum = 0;
  for (auto _ : state) {
    if constexpr (Timed) {
      q.put(1, std::chrono::seconds(1));
      sum += q.get(std::chrono::seconds(1));
    } else {
      q.put(1);
      sum += q.get();
    }
  }
  benchmark::DoNotOptimize(sum);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("BM_ClosableQueue_PutGet", run_uncontended_put_get<false>);
  benchmark::RegisterBenchmark("BM_ClosableQueue_PutGetTimed", run_uncontended_put_get<true>);
  register_contender<SpindleAdapter>("ClosableQueueBounded", bounded_capacity);
  register_contender<SpindleAdapter>("ClosableQueueUnbounded", 0);
  register_contender<BaselineAdapter>("Baseline", bounded_capacity);
  register_oversubscribed<SpindleAdapter>("ClosableQueueBounded", bounded_capacity);
  register_oversubscribed<BaselineAdapter>("Baseline", bounded_capacity);
  register_contender<BaselineAdapter>("BaselineUnbounded", 0);
#ifdef SPINDLE_BENCH_HAVE_TBB
  register_contender<TbbAdapter>("TbbBoundedQueue", bounded_capacity);
#endif
#ifdef SPINDLE_BENCH_HAVE_BOOST
  register_contender<BoostSyncQueueAdapter>("BoostSyncBoundedQueue", bounded_capacity);
  register_contender<BoostFiberChannelAdapter>("BoostFiberChannel", bounded_capacity);
  register_oversubscribed<BoostFiberChannelAdapter>("BoostFiberChannel", bounded_capacity);
#endif
#ifdef SPINDLE_BENCH_HAVE_MOODYCAMEL
  register_contender<MoodycamelAdapter>("Moodycamel", 0);
  register_contender<MoodycamelTokensAdapter>("MoodycamelTokens", 0);
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return any_failed ? 1 : 0;
}
