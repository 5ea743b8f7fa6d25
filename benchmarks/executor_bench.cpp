// SPDX-License-Identifier: MIT
// benchmarks/executor_bench.cpp - ThreadPoolExecutor against a std::thread
// baseline pool and the peers issue 3 names (oneTBB, Boost.Asio).
//
// Scenarios (each pool runs the same templated driver):
//   _SubmitResult/W    submit 64 tiny tasks, then result() each; W workers.
//                      items_per_second = submit+future+result throughput.
//   _FireAndForget/W   submit 1000 tiny tasks dropping the futures (TBB and
//                      Asio: enqueue/post without a future), then wait until
//                      a shared counter shows all ran. items_per_second.
//   _FanOutFanIn/W     one round = submit 1000 tiny tasks, then result() each
//                      in order; time per iteration = µs per round.
//   BM_AsCompleted_Finished vs BM_ResultLoop_Finished: iterate 1000 futures
//                      that are already finished, with as_completed or a
//                      plain loop of result().
//   _Factorize/W       Effective Python Item 53's naive factorization of
//                      2139079, 1214759, 1516637, 1852285, the list repeated
//                      8 times, one task per number; BM_Serial_Factorize is
//                      the same loop on one thread.
//   BM_ThreadPoolExecutor_Map/C  map over 100,000 tiny calls with chunksize C
//                      (2 workers), summing the results in order on this
//                      thread; BM_TBB_ParallelFor is tbb::parallel_for over
//                      the same calls (a 2-thread arena, automatic
//                      partitioner) writing a result vector, then the same
//                      sum. items_per_second = calls per second.
//                      map(tiny_call, ...) calls through a function pointer,
//                      which the compiler cannot inline into the pool's
//                      loop, while parallel_for's lambda inlines tiny_call:
//                      _MapLambda/C passes a lambda instead (inlined like
//                      parallel_for's), and BM_TBB_ParallelForFnPtr calls
//                      through a function pointer too (like map's).
// SPINDLE_BENCH_SMOKE=1 shrinks every size so the binary runs in seconds.
//
// Every pool benchmark measures wall time (UseRealTime): the work happens on
// other threads. Compare ratios from one run, e.g.
//   executor_bench --benchmark_repetitions=5
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include "../examples/factorize/factorize.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spindle/executor.hpp>
#include <spindle/future.hpp>

#ifdef SPINDLE_BENCH_HAVE_TBB
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#endif
#ifdef SPINDLE_BENCH_HAVE_BOOST
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#endif

namespace {

bool smoke_mode() { return std::getenv("SPINDLE_BENCH_SMOKE") != nullptr; }

std::size_t fan_size() { return smoke_mode() ? 100 : 1000; }

// ---------------------------------------------------------------------------
// The pools, behind one small adapter each: submit(f) -> a future with
// get(future); post(f) runs f with no future.

struct SpindlePool {
  explicit SpindlePool(int workers) : pool(static_cast<std::size_t>(workers)) {}
  template <class F>
  auto submit(F f) {
    return pool.submit(std::move(f));
  }
  template <class F>
  void post(F f) {
    (void)pool.submit(std::move(f));
  }
  template <class Fut>
  static decltype(auto) get(Fut& f) {
    return f.result();
  }
  spindle::ThreadPoolExecutor pool;
};

// The baseline: what a careful user writes with the standard library alone.
// std::thread workers, one mutex, one condition variable notified on every
// submit, a deque of std::packaged_task<void()>.
class BaselinePool {
public:
  explicit BaselinePool(int workers) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }
  BaselinePool(const BaselinePool&) = delete;
  BaselinePool& operator=(const BaselinePool&) = delete;
  ~BaselinePool() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  template <class F>
  auto submit(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    push(std::packaged_task<void()>(std::move(task)));
    return fut;
  }
  template <class F>
  void post(F f) {
    push(std::packaged_task<void()>(std::move(f)));
  }
  template <class Fut>
  static decltype(auto) get(Fut& f) {
    return f.get();
  }

private:
  void push(std::packaged_task<void()> task) {
    {
      std::lock_guard lock(m_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }
  void work() {
    for (;;) {
      std::packaged_task<void()> task;
      {
        std::unique_lock lock(m_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> queue_;  // guarded by m_
  bool stop_ = false;                             // guarded by m_
  std::vector<std::thread> threads_;
};

#ifdef SPINDLE_BENCH_HAVE_TBB
// oneTBB: a task_arena with W worker slots (none reserved for this thread),
// enqueue, and a std::promise for the result.
struct TbbPool {
  explicit TbbPool(int workers)
      : control(tbb::global_control::max_allowed_parallelism,
                static_cast<std::size_t>(workers) + 1),
        arena(workers, 0) {}
  // TBB calls enqueued functors as const: the promise is a mutable member.
  template <class F>
  struct Job {
    mutable std::promise<decltype(std::declval<F&>()())> p;
    F f;
    void operator()() const { p.set_value(f()); }
  };
  template <class F>
  auto submit(F f) {
    Job<F> job{{}, std::move(f)};
    auto fut = job.p.get_future();
    arena.enqueue(std::move(job));
    return fut;
  }
  template <class F>
  void post(F f) {
    arena.enqueue(std::move(f));
  }
  template <class Fut>
  static decltype(auto) get(Fut& f) {
    return f.get();
  }
  tbb::global_control control;
  tbb::task_arena arena;
};
#endif

#ifdef SPINDLE_BENCH_HAVE_BOOST
// Boost.Asio's thread_pool with std::packaged_task for the future.
struct AsioPool {
  explicit AsioPool(int workers) : pool(static_cast<std::size_t>(workers)) {}
  ~AsioPool() { pool.join(); }
  template <class F>
  auto submit(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    boost::asio::post(pool, std::move(task));
    return fut;
  }
  template <class F>
  void post(F f) {
    boost::asio::post(pool, std::move(f));
  }
  template <class Fut>
  static decltype(auto) get(Fut& f) {
    return f.get();
  }
  boost::asio::thread_pool pool;
};
#endif

// ---------------------------------------------------------------------------
// Drivers.

template <class Pool>
void submit_result(benchmark::State& state) {
  Pool pool(static_cast<int>(state.range(0)));
  constexpr int batch = 64;
  using Fut = decltype(pool.submit([] { return 0; }));
  std::vector<Fut> futures;
  futures.reserve(batch);
  std::int64_t sum = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) futures.push_back(pool.submit([i] { return i; }));
    for (auto& f : futures) sum += Pool::get(f);
    futures.clear();
  }
  if (sum != static_cast<std::int64_t>(state.iterations()) * (batch * (batch - 1) / 2))
    state.SkipWithError("wrong sum");
  state.SetItemsProcessed(state.iterations() * batch);
}

template <class Pool>
void fire_and_forget(benchmark::State& state) {
  Pool pool(static_cast<int>(state.range(0)));
  const auto n = static_cast<std::int64_t>(fan_size());
  std::atomic<std::int64_t> ran{0};
  std::int64_t expected = 0;
  for (auto _ : state) {
    for (std::int64_t i = 0; i < n; ++i)
      pool.post([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
    expected += n;
    while (ran.load(std::memory_order_acquire) != expected) std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations() * n);
}

template <class Pool>
void fan_out_fan_in(benchmark::State& state) {
  Pool pool(static_cast<int>(state.range(0)));
  const std::size_t n = fan_size();
  using Fut = decltype(pool.submit([] { return 0; }));
  std::vector<Fut> futures;
  futures.reserve(n);
  std::int64_t sum = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < n; ++i)
      futures.push_back(pool.submit([i] { return static_cast<int>(i & 7); }));
    for (auto& f : futures) sum += Pool::get(f);
    futures.clear();
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

// Item 53: "a naive number factorization algorithm as a proxy" for CPU work
// (the factorize example's own code).
using item53::factorize;

std::vector<std::int64_t> factor_inputs() {
  const std::vector<std::int64_t> numbers{2139079, 1214759, 1516637, 1852285};
  if (smoke_mode()) return {2139, 1214, 1516, 1852};
  std::vector<std::int64_t> out;
  for (int r = 0; r < 8; ++r) out.insert(out.end(), numbers.begin(), numbers.end());
  return out;
}

void BM_Serial_Factorize(benchmark::State& state) {
  const auto inputs = factor_inputs();
  std::size_t count = 0;
  for (auto _ : state)
    for (auto n : inputs) count += factorize(n).size();
  benchmark::DoNotOptimize(count);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(inputs.size()));
}

template <class Pool>
void factorize_pool(benchmark::State& state) {
  Pool pool(static_cast<int>(state.range(0)));
  const auto inputs = factor_inputs();
  using Fut = decltype(pool.submit([] { return factorize(1); }));
  std::vector<Fut> futures;
  std::size_t count = 0;
  for (auto _ : state) {
    for (auto n : inputs) futures.push_back(pool.submit([n] { return factorize(n); }));
    for (auto& f : futures) count += Pool::get(f).size();
    futures.clear();
  }
  benchmark::DoNotOptimize(count);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(inputs.size()));
}

// as_completed over futures that are all finished, against the plain loop.
std::vector<spindle::Future<int>> finished_futures(std::size_t n) {
  std::vector<spindle::Future<int>> out;
  for (std::size_t i = 0; i < n; ++i) {
    spindle::Promise<int> p;
    out.push_back(p.get_future());
    p.set_result(static_cast<int>(i));
  }
  return out;
}

void BM_ResultLoop_Finished(benchmark::State& state) {
  auto futures = finished_futures(fan_size());
  std::int64_t sum = 0;
  for (auto _ : state) {
    for (auto& f : futures) sum += f.result();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(futures.size()));
}

void BM_AsCompleted_Finished(benchmark::State& state) {
  auto futures = finished_futures(fan_size());
  std::int64_t sum = 0;
  for (auto _ : state) {
    for (auto& f : spindle::as_completed(futures)) sum += f.result();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(futures.size()));
}

// ---------------------------------------------------------------------------
// map over many tiny calls: chunked spindle map vs tbb::parallel_for.

std::size_t map_size() { return smoke_mode() ? 1000 : 100000; }

std::uint64_t tiny_call(std::uint64_t x) noexcept { return (x * 2654435761u) ^ (x >> 7); }

std::vector<std::uint64_t> map_inputs() {
  std::vector<std::uint64_t> in(map_size());
  std::iota(in.begin(), in.end(), std::uint64_t{1});
  return in;
}

void BM_ThreadPoolExecutor_Map(benchmark::State& state) {
  const auto chunksize = static_cast<std::size_t>(state.range(0));
  spindle::ThreadPoolExecutor pool(2);
  const std::vector<std::uint64_t> in = map_inputs();
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (std::uint64_t r : pool.map(tiny_call, in, {.chunksize = chunksize})) sum += r;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(in.size()));
}

void BM_ThreadPoolExecutor_MapLambda(benchmark::State& state) {
  const auto chunksize = static_cast<std::size_t>(state.range(0));
  spindle::ThreadPoolExecutor pool(2);
  const std::vector<std::uint64_t> in = map_inputs();
  for (auto _ : state) {
    std::uint64_t sum = 0;
    for (std::uint64_t r :
         pool.map([](std::uint64_t x) noexcept { return tiny_call(x); }, in, {.chunksize = chunksize}))
      sum += r;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(in.size()));
}

#ifdef SPINDLE_BENCH_HAVE_TBB
// An opaque pointer to tiny_call, so that parallel_for calls it indirectly.
std::uint64_t (*volatile tiny_call_ptr)(std::uint64_t) noexcept = tiny_call;

void BM_TBB_ParallelForFnPtr(benchmark::State& state) {
  tbb::global_control control(tbb::global_control::max_allowed_parallelism, 2);
  tbb::task_arena arena(2);
  const std::vector<std::uint64_t> in = map_inputs();
  std::vector<std::uint64_t> out(in.size());
  for (auto _ : state) {
    auto* const f = tiny_call_ptr;
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, in.size()),
                        [&](const tbb::blocked_range<std::size_t>& r) {
                          for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = f(in[i]);
                        });
    });
    std::uint64_t sum = 0;
    for (std::uint64_t r : out) sum += r;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(in.size()));
}

void BM_TBB_ParallelFor(benchmark::State& state) {
  tbb::global_control control(tbb::global_control::max_allowed_parallelism, 2);
  tbb::task_arena arena(2);
  const std::vector<std::uint64_t> in = map_inputs();
  std::vector<std::uint64_t> out(in.size());
  for (auto _ : state) {
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, in.size()),
                        [&](const tbb::blocked_range<std::size_t>& r) {
                          for (std::size_t i = r.begin(); i != r.end(); ++i)
                            out[i] = tiny_call(in[i]);
                        });
    });
    std::uint64_t sum = 0;
    for (std::uint64_t r : out) sum += r;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(in.size()));
}
#endif

template <class Pool>
void register_pool(const std::string& name) {
  benchmark::RegisterBenchmark(("BM_" + name + "_SubmitResult").c_str(), &submit_result<Pool>)
      ->Arg(2)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_" + name + "_FireAndForget").c_str(), &fire_and_forget<Pool>)
      ->Arg(2)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("BM_" + name + "_FanOutFanIn").c_str(), &fan_out_fan_in<Pool>)
      ->Arg(2)
      ->Arg(8)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark(("BM_" + name + "_Factorize").c_str(), &factorize_pool<Pool>)
      ->Arg(2)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  register_pool<SpindlePool>("ThreadPoolExecutor");
  register_pool<BaselinePool>("BaselinePool");
#ifdef SPINDLE_BENCH_HAVE_TBB
  register_pool<TbbPool>("TBB");
#endif
#ifdef SPINDLE_BENCH_HAVE_BOOST
  register_pool<AsioPool>("AsioThreadPool");
#endif
  benchmark::RegisterBenchmark("BM_ThreadPoolExecutor_Map", &BM_ThreadPoolExecutor_Map)
      ->Arg(1)
      ->Arg(64)
      ->Arg(1024)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_ThreadPoolExecutor_MapLambda", &BM_ThreadPoolExecutor_MapLambda)
      ->Arg(64)
      ->Arg(1024)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
#ifdef SPINDLE_BENCH_HAVE_TBB
  benchmark::RegisterBenchmark("BM_TBB_ParallelFor", &BM_TBB_ParallelFor)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_TBB_ParallelForFnPtr", &BM_TBB_ParallelForFnPtr)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
#endif
  benchmark::RegisterBenchmark("BM_Serial_Factorize", &BM_Serial_Factorize)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("BM_ResultLoop_Finished", &BM_ResultLoop_Finished)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_AsCompleted_Finished", &BM_AsCompleted_Finished)
      ->Unit(benchmark::kMicrosecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
