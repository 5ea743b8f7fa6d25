// SPDX-License-Identifier: MIT
// benchmarks/cpu_bound_bench.cpp - Effective Python's CPU-bound stories,
// serial against threads and ThreadPoolExecutor: Item 53's naive factorize
// of four numbers and Item 64's gcd of ten pairs. In Python the GIL makes
// threads no faster than serial code here; in C++ they scale with the cores.
#include <spindle/executor.hpp>
#include <spindle/future.hpp>

#include <benchmark/benchmark.h>

#include "../examples/factorize/factorize.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace {

bool smoke_mode() { return std::getenv("SPINDLE_BENCH_SMOKE") != nullptr; }

std::size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// Item 53: "a naive number factorization algorithm" (every i in 1..number),
// the example's own code.
using item53::factorize;

// The book's four numbers (smoke: a thousandth of each).
std::vector<std::int64_t> factor_inputs() {
  if (smoke_mode()) return {2139, 1214, 1516, 1852};
  return {2139079, 1214759, 1516637, 1852285};
}

// Item 64's gcd: count down from the smaller number to the first common
// divisor (deliberately slow, as in the book).
std::int64_t gcd(std::pair<std::int64_t, std::int64_t> pair) {
  const auto [a, b] = pair;
  for (std::int64_t i = std::min(a, b); i > 0; --i)
    if (a % i == 0 && b % i == 0) return i;
  throw std::logic_error("gcd: not reachable");
}

// The book's ten pairs (smoke: a thousandth of each).
std::vector<std::pair<std::int64_t, std::int64_t>> gcd_inputs() {
  std::vector<std::pair<std::int64_t, std::int64_t>> pairs{
      {1963309, 2265973}, {2030677, 3814172}, {1551645, 2229620}, {2039045, 2020802},
      {1823712, 1924928}, {2293129, 1020491}, {1281238, 2273782}, {3823812, 4237281},
      {3812741, 4729139}, {1292391, 2123811}};
  if (smoke_mode())
    for (auto& [a, b] : pairs) a /= 1000, b /= 1000;
  return pairs;
}

// --- factorize --------------------------------------------------------------

void BM_Factorize_Serial(benchmark::State& state) {
  const auto numbers = factor_inputs();
  std::size_t found = 0;
  for (auto _ : state)
    for (auto n : numbers) found += factorize(n).size();
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(numbers.size()));
}

// Item 53's FactorizeThread: one new thread per number.
void BM_Factorize_ThreadPerNumber(benchmark::State& state) {
  const auto numbers = factor_inputs();
  std::vector<std::size_t> found(numbers.size());
  std::vector<std::thread> threads;
  for (auto _ : state) {
    for (std::size_t i = 0; i < numbers.size(); ++i)
      threads.emplace_back([&, i] { found[i] += factorize(numbers[i]).size(); });
    for (auto& t : threads) t.join();
    threads.clear();
  }
  benchmark::DoNotOptimize(found.data());
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(numbers.size()));
}

// One pool.submit per number on a pool with a worker per core.
void BM_Factorize_Pool(benchmark::State& state) {
  const auto numbers = factor_inputs();
  spindle::ThreadPoolExecutor pool(cores());
  std::vector<spindle::Future<item53::Factors>> futures;
  std::size_t found = 0;
  for (auto _ : state) {
    for (auto n : numbers) futures.push_back(pool.submit(factorize, n));
    for (auto& f : futures) found += f.result().size();
    futures.clear();
  }
  benchmark::DoNotOptimize(found);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(numbers.size()));
}

// --- gcd --------------------------------------------------------------------

// Item 64's run_serial.py: list(map(gcd, NUMBERS)).
void BM_Gcd_Serial(benchmark::State& state) {
  const auto pairs = gcd_inputs();
  std::int64_t sum = 0;
  for (auto _ : state)
    for (const auto& p : pairs) sum += gcd(p);
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(pairs.size()));
}

// Item 64's run_threads.py / run_parallel.py: pool.map(gcd, NUMBERS) on a
// ThreadPoolExecutor with a worker per core (the book uses max_workers=2).
void BM_Gcd_PoolMap(benchmark::State& state) {
  const auto pairs = gcd_inputs();
  spindle::ThreadPoolExecutor pool(cores());
  std::int64_t sum = 0;
  for (auto _ : state)
    for (std::int64_t g : pool.map(gcd, pairs)) sum += g;
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(pairs.size()));
}

// --- what the two cores give ------------------------------------------------

// A pointer chase around a random cycle of 24 KiB (one step per 64-byte
// line): it fits a core's 32 KiB L1 data cache, and each step waits for the
// previous load, so it uses almost nothing of the core but its L1. Two
// copies on two real cores run at 2.00x one; if the two vCPUs are
// hyperthreads of one host core (the guest cannot see this: lscpu says one
// thread per core), their 48 KiB no longer fits the shared L1 and the pair
// runs well below 2x. Read the Game of Life and factorize speedups beside it.
class L1Chase {
public:
  explicit L1Chase(unsigned seed) : next_(kLines * kStride) {
    std::vector<std::uint32_t> order(kLines);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin() + 1, order.end(), std::mt19937(seed));
    for (std::size_t i = 0; i < kLines; ++i)
      next_[order[i] * kStride] = order[(i + 1) % kLines] * kStride;
  }

  std::uint32_t run(std::int64_t steps) const {
    std::uint32_t at = 0;
    for (std::int64_t i = 0; i < steps; ++i) at = next_[at];
    return at;
  }

private:
  static constexpr std::size_t kLines = 24 * 1024 / 64;
  static constexpr std::size_t kStride = 64 / sizeof(std::uint32_t);
  std::vector<std::uint32_t> next_;
};

std::int64_t chase_steps() { return smoke_mode() ? 20'000 : 4'000'000; }

void BM_L1Chase_Serial(benchmark::State& state) {
  const L1Chase chase(1);
  for (auto _ : state) benchmark::DoNotOptimize(chase.run(chase_steps()));
  state.SetItemsProcessed(state.iterations() * chase_steps());
}

// Two threads, each around its own cycle; items/s against serial's is the
// speedup the two vCPUs give to code that lives in L1.
void BM_L1Chase_TwoSerialCopies(benchmark::State& state) {
  const L1Chase chases[2] = {L1Chase(1), L1Chase(2)};
  for (auto _ : state) {
    std::uint32_t other_end = 0;
    std::thread other([&] { other_end = chases[1].run(chase_steps()); });
    benchmark::DoNotOptimize(chases[0].run(chase_steps()));
    other.join();
    benchmark::DoNotOptimize(other_end);
  }
  state.SetItemsProcessed(state.iterations() * 2 * chase_steps());
}

BENCHMARK(BM_Factorize_Serial)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Factorize_ThreadPerNumber)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Factorize_Pool)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gcd_Serial)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Gcd_PoolMap)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_L1Chase_Serial)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_L1Chase_TwoSerialCopies)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
