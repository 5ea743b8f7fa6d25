// SPDX-License-Identifier: MIT
// benchmarks/pipeline_bench.cpp - three-stage spindle::Pipeline throughput
// against a serial loop doing the same work (the baseline).
//
// Two kinds of per-item work:
// - Trivial: a few multiply-adds per stage. Measures the pipeline's own
//   cost per item (three queue hand-offs and the worker loop); a serial loop
//   is expected to win by far, which is the point: a pipeline pays off only
//   when an item's work outweighs a hand-off.
// - Work: about a thousand dependent multiply-adds per stage (a few µs),
//   where the stages' threads can run in parallel.
//
// Each pipeline iteration builds the queues and the pipeline, puts the items,
// closes the first queue and joins, so thread start-up (a few µs per worker)
// is included, amortized over the items. SPINDLE_BENCH_SMOKE=1 shrinks the
// problem so a smoke run takes a moment.
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

std::int64_t items() { return smoke() ? 2'000 : 200'000; }

// One stage's work: `rounds` dependent steps of a 64-bit LCG, so the
// compiler can neither skip nor vectorize it.
std::uint64_t work(std::uint64_t x, int rounds) {
  for (int i = 0; i < rounds; ++i) x = x * 6364136223846793005ULL + 1442695040888963407ULL;
  return x;
}

constexpr int trivial_rounds = 4;
int heavy_rounds() { return smoke() ? 50 : 1'000; }

void serial(benchmark::State& state, int rounds) {
  const std::int64_t n = items();
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
  const std::int64_t n = items();
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

BENCHMARK(BM_Serial_ThreeStageTrivial)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_ThreeStageTrivial)->Apply(pipeline_args);
BENCHMARK(BM_Serial_ThreeStageWork)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Pipeline_ThreeStageWork)->Apply(pipeline_args);

BENCHMARK_MAIN();
