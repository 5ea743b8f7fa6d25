// SPDX-License-Identifier: MIT
// benchmarks/threading_bench.cpp - spindle's threading primitives beside the std ones.
//
// Every scenario runs once per contender, with 1 ("uncontended"), 2, 4 and 8
// threads on one shared object; items_per_second counts operations of all
// threads together (real time):
//   BM_Mutex_<C>/threads:N      lock; ++counter; unlock    Lock vs std::mutex
//   BM_Recursive_<C>/threads:N  lock; lock; ++; unlock x2  RLock vs std::recursive_mutex
//   BM_Semaphore_<C>/threads:N  acquire; ++; release, with max(1, N/2)
//                               permits                    Semaphore vs std::counting_semaphore
//   BM_Condition_<C>/threads:N  a token passed around a ring of N threads
//                               (wait until my turn, pass it, notify_all);
//                               N = 1 is notify with nobody waiting
//                                                          Condition vs std::condition_variable
//   BM_Barrier_<C>/threads:N    one round of an N-party barrier per iteration
//                                                          Barrier vs std::barrier
// The counter each scenario bumps is checked at the end: a broken primitive
// fails the run instead of reporting a number.
//
// benchmarks/threading_table.py runs it (3 repetitions) and prints the
// spindle/std ratio of every row.

#include <benchmark/benchmark.h>

#include <spindle/threading.hpp>

#include <barrier>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>

namespace {

bool smoke_mode() { return std::getenv("SPINDLE_BENCH_SMOKE") != nullptr; }

// State shared by the threads of one benchmark run: made by thread 0 before
// the timing loop (Google Benchmark starts every thread's loop together) and
// checked and freed by thread 0 after it.
template <class T>
struct Shared {
  static inline std::unique_ptr<T> value;
};

// After the timing loop (which ends for all threads together, each having
// run the same number of iterations): did every operation of every thread
// count once?
void check(benchmark::State& state, std::int64_t counted) {
  const std::int64_t expected = static_cast<std::int64_t>(state.iterations()) * state.threads();
  if (counted != expected)
    state.SkipWithError(("counted " + std::to_string(counted) + ", expected " +
                         std::to_string(expected))
                            .c_str());
}

// ---------------------------------------------------------------------------
// Mutexes

template <class M>
struct MutexCase {
  M m;
  std::int64_t counter = 0;  // guarded by m
};

template <class M>
void BM_Mutex(benchmark::State& state) {
  auto& shared = Shared<MutexCase<M>>::value;
  if (state.thread_index() == 0) shared = std::make_unique<MutexCase<M>>();
  for (auto _ : state) {
    shared->m.lock();
    ++shared->counter;
    shared->m.unlock();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    check(state, shared->counter);
    shared.reset();
  }
}

template <class M>
void BM_Recursive(benchmark::State& state) {
  auto& shared = Shared<MutexCase<M>>::value;
  if (state.thread_index() == 0) shared = std::make_unique<MutexCase<M>>();
  for (auto _ : state) {
    shared->m.lock();
    shared->m.lock();
    ++shared->counter;
    shared->m.unlock();
    shared->m.unlock();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    check(state, shared->counter);
    shared.reset();
  }
}

// ---------------------------------------------------------------------------
// Semaphores

struct StdSemaphore {
  explicit StdSemaphore(std::ptrdiff_t n) : s(n) {}
  void acquire() { s.acquire(); }
  void release() { s.release(); }
  std::counting_semaphore<> s;
};

struct SpindleSemaphore {
  explicit SpindleSemaphore(std::ptrdiff_t n) : s(n) {}
  void acquire() { s.acquire(); }
  void release() { s.release(); }
  spindle::Semaphore s;
};

template <class S>
struct SemaphoreCase {
  explicit SemaphoreCase(std::ptrdiff_t n) : sem(n) {}
  S sem;
  // Its own cache line, for both contenders: the count must not slow down
  // (or hide) the semaphore's own cache-line traffic.
  alignas(64) std::atomic<std::int64_t> counter{0};
};

template <class S>
void BM_Semaphore(benchmark::State& state) {
  auto& shared = Shared<SemaphoreCase<S>>::value;
  const std::ptrdiff_t permits = state.threads() < 2 ? 1 : state.threads() / 2;
  if (state.thread_index() == 0) shared = std::make_unique<SemaphoreCase<S>>(permits);
  for (auto _ : state) {
    shared->sem.acquire();
    shared->counter.fetch_add(1, std::memory_order_relaxed);
    shared->sem.release();
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    check(state, shared->counter.load());
    shared.reset();
  }
}

// ---------------------------------------------------------------------------
// Condition variables: a token ring.

struct StdCondition {
  std::mutex m;
  std::condition_variable cv;
  using Hold = std::unique_lock<std::mutex>;
  Hold hold() { return Hold(m); }
  template <class P>
  void wait_for(Hold& h, P pred) {
    cv.wait(h, pred);
  }
  void notify_all() { cv.notify_all(); }
};

struct SpindleCondition {
  spindle::Condition cv;
  using Hold = std::unique_lock<spindle::Condition>;
  Hold hold() { return Hold(cv); }
  template <class P>
  void wait_for(Hold&, P pred) {
    cv.wait_for(pred);
  }
  void notify_all() { cv.notify_all(); }
};

template <class C>
struct ConditionCase {
  C c;
  int turn = 0;             // guarded by c's lock
  std::int64_t passes = 0;  // guarded by c's lock
};

template <class C>
void BM_Condition(benchmark::State& state) {
  auto& shared = Shared<ConditionCase<C>>::value;
  if (state.thread_index() == 0) shared = std::make_unique<ConditionCase<C>>();
  const int me = state.thread_index();
  const int n = state.threads();
  for (auto _ : state) {
    auto hold = shared->c.hold();
    if (n > 1) shared->c.wait_for(hold, [&] { return shared->turn == me; });
    shared->turn = (me + 1) % n;
    ++shared->passes;
    shared->c.notify_all();
  }
  state.SetItemsProcessed(state.iterations());
  if (me == 0) {
    check(state, shared->passes);
    shared.reset();
  }
}

// ---------------------------------------------------------------------------
// Barriers

// Both count completed rounds in their completion step (std::barrier's
// completion function, spindle::Barrier's action), each run once per round.
struct Rounds {
  std::int64_t n = 0;
  void operator()() noexcept { ++n; }
};

struct StdBarrier {
  struct Completion {
    Rounds* r;
    void operator()() noexcept { (*r)(); }
  };
  explicit StdBarrier(std::ptrdiff_t n) : b(n, Completion{&rounds}) {}
  void wait() { b.arrive_and_wait(); }
  Rounds rounds;
  std::barrier<Completion> b;
};

struct SpindleBarrier {
  explicit SpindleBarrier(std::ptrdiff_t n)
      : b(static_cast<std::size_t>(n), [this] { rounds(); }) {}
  void wait() { (void)b.wait(); }
  Rounds rounds;
  spindle::Barrier b;
};

template <class B>
void BM_Barrier(benchmark::State& state) {
  auto& shared = Shared<B>::value;
  if (state.thread_index() == 0) shared = std::make_unique<B>(state.threads());
  for (auto _ : state) shared->wait();
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    // One round per iteration: rounds * threads == iterations * threads.
    check(state, shared->rounds.n * state.threads());
    shared.reset();
  }
}

template <class F>
void add(const std::string& name, F fn) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
  b->UseRealTime();
  for (int t : {1, 2, 4, 8}) b->Threads(t);
  if (smoke_mode()) b->Iterations(200);
}

}  // namespace

int main(int argc, char** argv) {
  add("BM_Mutex_spindle::Lock", &BM_Mutex<spindle::Lock>);
  add("BM_Mutex_std::mutex", &BM_Mutex<std::mutex>);
  add("BM_Recursive_spindle::RLock", &BM_Recursive<spindle::RLock>);
  add("BM_Recursive_std::recursive_mutex", &BM_Recursive<std::recursive_mutex>);
  add("BM_Semaphore_spindle::Semaphore", &BM_Semaphore<SpindleSemaphore>);
  add("BM_Semaphore_std::counting_semaphore", &BM_Semaphore<StdSemaphore>);
  add("BM_Condition_spindle::Condition", &BM_Condition<SpindleCondition>);
  add("BM_Condition_std::condition_variable", &BM_Condition<StdCondition>);
  add("BM_Barrier_spindle::Barrier", &BM_Barrier<SpindleBarrier>);
  add("BM_Barrier_std::barrier", &BM_Barrier<StdBarrier>);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
