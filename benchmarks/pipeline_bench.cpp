// SPDX-License-Identifier: MIT
// benchmarks/pipeline_bench.cpp - three-stage spindle::Pipeline throughput
// against a serial loop doing the same work (the baseline).
//
// Two kinds of per-item work:
// - Trivial: one round of a 64-bit mix per stage. Measures the pipeline's own
//   cost per item (three queue hand-offs and the worker loop); a serial loop
//   is expected to win by far, which is the point: a pipeline pays off only
//   when an item's work outweighs a hand-off.
// - Work: 3000 dependent rounds of the mix per stage (about 10 µs on the
//   development VM), where the stages' threads can run in parallel.
//
// Each pipeline iteration builds the queues and the pipeline, puts the items,
// closes the first queue and joins, so thread start-up (a few µs per worker)
// is included, amortized over the items. Every benchmark reports wall-clock
// (real) time, so the rates compare side by side. SPINDLE_BENCH_SMOKE=1
// shrinks the problem so a smoke run takes a moment.
#include <spindle/pipeline.hpp>
#include <spindle/queue.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>

#include <benchmark/benchmark.h>

namespace {

bool smoke() {
  static const bool on = std::getenv("SPINDLE_BENCH_SMOKE") != nullptr;
  return on;
}

// Items per iteration: many for trivial work, fewer for heavy work so an
// iteration stays near 0.1 s.
std::int64_t items(int rounds) {
  if (smoke()) return rounds > 16 ? 500 : 2'000;
  return rounds > 16 ? 4'000 : 200'000;
}

// One stage's work: `rounds` dependent steps of a non-linear 64-bit mix
// (splitmix64's finalizer), so the compiler can neither fold the stages
// together nor skip them.
std::uint64_t work(std::uint64_t x, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
  }
  return x;
}

constexpr int trivial_rounds = 1;
int heavy_rounds() { return smoke() ? 50 : 3'000; }

void serial(benchmark::State& state, int rounds) {
  const std::int64_t n = items(rounds);
  for (auto _ : state) {
    std::uint64_t sink = 0;
    for (std::int64_t i = 0; i < n; ++i)
      sink += work(work(work(static_cast<std::uint64_t>(i), rounds), rounds), rounds);
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(state.iterations() * n);
}

// Args: workers per stage, bound of every queue (0 = unbounded).
void pipeline(benchmark::State& state, int rounds) {
  const std::int64_t n = items(rounds);
  const auto workers = static_cast<std::size_t>(state.range(0));
  const auto bound = static_cast<std::size_t>(state.range(1));
  for (auto _ : state) {
    spindle::ClosableQueue<std::uint64_t> q0(bound), q1(bound), q2(bound);
    std::atomic<std::uint64_t> sink{0};
    spindle::Pipeline p;
    p.stage(q0, q1, workers, [rounds](std::uint64_t x) { return work(x, rounds); })
        .stage(q1, q2, workers, [rounds](std::uint64_t x) { return work(x, rounds); })
        .stage(q2, workers, [rounds, &sink](std::uint64_t x) {
          sink.fetch_add(work(x, rounds), std::memory_order_relaxed);
        });
    for (std::int64_t i = 0; i < n; ++i) q0.put(static_cast<std::uint64_t>(i));
    q0.close();
    p.join();
    benchmark::DoNotOptimize(sink.load());
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_Serial_ThreeStageTrivial(benchmark::State& state) { serial(state, trivial_rounds); }
void BM_Pipeline_ThreeStageTrivial(benchmark::State& state) { pipeline(state, trivial_rounds); }
void BM_Serial_ThreeStageWork(benchmark::State& state) { serial(state, heavy_rounds()); }
void BM_Pipeline_ThreeStageWork(benchmark::State& state) { pipeline(state, heavy_rounds()); }

void pipeline_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"workers", "bound"});
  b->Args({1, 0})->Args({1, 1024})->Args({2, 1024})->Args({4, 1024});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_Serial_ThreeStageTrivial)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_ThreeStageTrivial)->Apply(pipeline_args);
BENCHMARK(BM_Serial_ThreeStageWork)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_ThreeStageWork)->Apply(pipeline_args);

BENCHMARK_MAIN();
