// SPDX-License-Identifier: MIT
// benchmarks/game_of_life_bench.cpp - Effective Python Items 56-59's Game of
// Life, serial against threads, queues and ThreadPoolExecutor: CPU-bound on
// large grids (how the work is cut up matters), and I/O-bound on the book's
// 45 cells with simulated network latency (measured against the physics).
//
// The grid, the rules and the book's simulate functions are the example's
// (examples/game_of_life/life.hpp), so the benchmark measures the code the
// example runs.
#include "../examples/game_of_life/life.hpp"

#include <spindle/executor.hpp>
#include <spindle/future.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

bool smoke_mode() { return std::getenv("SPINDLE_BENCH_SMOKE") != nullptr; }

std::size_t cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// ---------------------------------------------------------------------------
// CPU-bound: no I/O, every cell is a little arithmetic.

// A reproducible soup, about a third alive (mt19937's output is fixed by the
// standard).
life::Grid soup(int n) {
  std::mt19937 rng(56);
  life::Grid grid(n, n);
  for (int y = 0; y < n; ++y)
    for (int x = 0; x < n; ++x)
      if (rng() % 3 == 0) grid.set(y, x, life::alive);
  return grid;
}

// Rows [first, last) of the next generation. Threads writing disjoint rows of
// one plain Grid do not race: distinct chars are distinct memory locations,
// and the previous generation is only read.
void step_rows(const life::Game& game, const life::Grid& grid, life::Grid& next, int first,
               int last) {
  const life::GridReader get{&grid};
  const auto set = [&next](int y, int x, char s) { next.set(y, x, s); };
  for (int y = first; y < last; ++y)
    for (int x = 0; x < grid.width(); ++x) game.step_cell(y, x, get, set);
}

// Runs `generation(grid) -> next grid` once per iteration, always from the
// same soup, and reports cells per second. The time per generation depends
// on the population (count_neighbors branches on live cells), so letting the
// grid evolve would give each variant, running a different number of
// iterations, a different workload: every variant computes the very same
// generation instead, and `population` (of that next generation) shows it.
template <class Generation>
void run_generations(benchmark::State& state, Generation&& generation) {
  const int n = static_cast<int>(state.range(0));
  const life::Grid grid = soup(n);
  life::Grid next = generation(grid);  // warm-up: the pool starts its workers lazily
  for (auto _ : state) {
    next = generation(grid);
    benchmark::DoNotOptimize(next);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(grid.cells()));
  state.counters["population"] = static_cast<double>(next.population());
}

// Item 56's simulate, as the example runs it.
void BM_Life_Serial(benchmark::State& state) {
  const life::Game game;
  run_generations(state, [&](const life::Grid& grid) { return life::simulate(grid, game); });
}

// One pool task per row: enough work per task to drown the submit cost.
void BM_Life_PoolPerRow(benchmark::State& state) {
  const life::Game game;
  spindle::ThreadPoolExecutor pool(cores());
  std::vector<spindle::Future<void>> futures;
  run_generations(state, [&](const life::Grid& grid) {
    life::Grid next(grid.height(), grid.width());
    for (int y = 0; y < grid.height(); ++y)
      futures.push_back(pool.submit([&, y] { step_rows(game, grid, next, y, y + 1); }));
    for (auto& f : futures) f.result();
    futures.clear();
    return next;
  });
}

// One pool task per cell: the book's simulate_pool on a CPU-bound grid. Each
// task is a few nanoseconds of work behind a submit and a future, so the
// bookkeeping dominates: granularity matters.
void BM_Life_PoolPerCell(benchmark::State& state) {
  const life::Game game;
  spindle::ThreadPoolExecutor pool(cores());
  run_generations(state, [&](const life::Grid& grid) { return life::simulate_pool(pool, grid, game); });
}

// Four pool tasks per worker, each a contiguous chunk of rows: big enough
// to make the submit cost negligible, small enough that a worker which falls
// behind (its core taken by another process) leaves chunks to the others.
void BM_Life_PoolPerChunk(benchmark::State& state) {
  const life::Game game;
  const std::size_t workers = cores();
  spindle::ThreadPoolExecutor pool(workers);
  std::vector<spindle::Future<void>> futures;
  run_generations(state, [&](const life::Grid& grid) {
    life::Grid next(grid.height(), grid.width());
    const int h = grid.height(), chunks = static_cast<int>(4 * workers);
    for (int c = 0; c < chunks; ++c)
      futures.push_back(pool.submit(
          [&, c] { step_rows(game, grid, next, h * c / chunks, h * (c + 1) / chunks); }));
    for (auto& f : futures) f.result();
    futures.clear();
    return next;
  });
}

// The baseline for the pool: a new std::thread per chunk of rows, per
// generation (Item 57's approach with a sensible number of threads).
void BM_Life_ThreadPerChunk(benchmark::State& state) {
  const life::Game game;
  const int chunks = static_cast<int>(cores());
  std::vector<std::thread> threads;
  run_generations(state, [&](const life::Grid& grid) {
    life::Grid next(grid.height(), grid.width());
    const int h = grid.height();
    for (int c = 0; c < chunks; ++c)
      threads.emplace_back(
          [&, c] { step_rows(game, grid, next, h * c / chunks, h * (c + 1) / chunks); });
    for (auto& t : threads) t.join();
    threads.clear();
    return next;
  });
}

// The machine's ceiling for this code: two threads each computing the whole
// generation at once, on their own output grids. Nothing is shared but the
// (read-only) previous generation, so no split of one generation can beat
// this; its items/s over serial's is the most two cores give the per-cell
// code in this run. (On a VM whose two vCPUs are at times hyperthreads of
// one host core, or share it with another guest, it falls well below 2.)
void BM_Life_TwoSerialCopies(benchmark::State& state) {
  const life::Game game;
  const int n = static_cast<int>(state.range(0));
  const life::Grid grid = soup(n);
  life::Grid next[2] = {life::simulate(grid, game), life::simulate(grid, game)};
  for (auto _ : state) {
    std::thread other([&] { next[1] = life::simulate(grid, game); });
    next[0] = life::simulate(grid, game);
    other.join();
    benchmark::DoNotOptimize(next);
  }
  // Two generations per iteration: compare items/s, not time, with serial.
  state.SetItemsProcessed(state.iterations() * 2 * static_cast<std::int64_t>(grid.cells()));
  state.counters["population"] = static_cast<double>(next[0].population());
}

void cpu_sizes(benchmark::internal::Benchmark* b) {
  if (smoke_mode()) {
    b->Arg(32)->Arg(64);
  } else {
    b->Arg(256)->Arg(1024);
  }
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_Life_Serial)->Apply(cpu_sizes);
BENCHMARK(BM_Life_PoolPerRow)->Apply(cpu_sizes);
BENCHMARK(BM_Life_PoolPerCell)->Apply(cpu_sizes);
BENCHMARK(BM_Life_PoolPerChunk)->Apply(cpu_sizes);
BENCHMARK(BM_Life_ThreadPerChunk)->Apply(cpu_sizes);
BENCHMARK(BM_Life_TwoSerialCopies)->Apply(cpu_sizes);

// ---------------------------------------------------------------------------
// I/O-bound: the book's 45-cell glider, game_logic blocking for L per call.

// The book's 100 ms round trip. The fixed costs (starting 45 threads takes
// about 2 ms here, each sleep overshoots by tens of microseconds) are then
// the small part they are in the book's story; with a 5 ms latency they made
// a thread per cell look 40% slower than its physics.
std::chrono::microseconds io_latency() {
  return smoke_mode() ? std::chrono::microseconds(1000) : std::chrono::microseconds(100'000);
}

// One generation per iteration; reports the mean time per generation against
// what the physics predicts (counter physics_ratio = measured / predicted).
template <class Generation>
void run_io(benchmark::State& state, life::Strategy strategy, std::size_t workers,
            Generation&& generation) {
  life::Grid grid = life::glider();
  // Warm-up for the pool and the queue workers, which start lazily; serial
  // takes 4.5 s a generation and has nothing to warm up.
  if (strategy != life::Strategy::serial) grid = generation(grid);
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    grid = generation(grid);
    benchmark::DoNotOptimize(grid);
  }
  const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
  const double measured = elapsed.count() / static_cast<double>(state.iterations());
  const double predicted =
      life::physics(strategy, grid.cells(), workers,
                    std::chrono::duration<double, std::milli>(io_latency()))
          .count();
  state.counters["predicted_ms"] = predicted;
  state.counters["physics_ratio"] = measured / predicted;
  state.counters["latency_ms"] = std::chrono::duration<double, std::milli>(io_latency()).count();
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(grid.cells()));
}

life::Game io_game() {
  life::Game game;
  game.net.latency = io_latency();
  return game;
}

void BM_LifeIo_Serial(benchmark::State& state) {
  const life::Game game = io_game();
  run_io(state, life::Strategy::serial, 1,
         [&](const life::Grid& grid) { return life::simulate(grid, game); });
}

void BM_LifeIo_ThreadPerCell(benchmark::State& state) {
  const life::Game game = io_game();
  run_io(state, life::Strategy::threads, 1,
         [&](const life::Grid& grid) { return life::simulate_threaded(grid, game); });
}

void BM_LifeIo_Queue(benchmark::State& state) {
  const life::Game game = io_game();
  const auto workers = static_cast<std::size_t>(state.range(0));
  life::QueueSimulator queues(game, workers, false);
  run_io(state, life::Strategy::queue, workers,
         [&](const life::Grid& grid) { return queues.simulate(grid); });
}

void BM_LifeIo_Pool(benchmark::State& state) {
  const life::Game game = io_game();
  const auto workers = static_cast<std::size_t>(state.range(0));
  spindle::ThreadPoolExecutor pool(workers);
  run_io(state, life::Strategy::pool, workers,
         [&](const life::Grid& grid) { return life::simulate_pool(pool, grid, game); });
}

void io_setup(benchmark::internal::Benchmark* b) {
  b->UseRealTime()->Unit(benchmark::kMillisecond);
  if (smoke_mode()) b->Iterations(2);
}

BENCHMARK(BM_LifeIo_Serial)->Apply(io_setup);
BENCHMARK(BM_LifeIo_ThreadPerCell)->Apply(io_setup);
BENCHMARK(BM_LifeIo_Queue)->Arg(5)->Apply(io_setup);
BENCHMARK(BM_LifeIo_Pool)->Arg(10)->Apply(io_setup);

}  // namespace

BENCHMARK_MAIN();
