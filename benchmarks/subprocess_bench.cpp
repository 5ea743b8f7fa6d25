// SPDX-License-Identifier: MIT
// benchmarks/subprocess_bench.cpp - spindle::subprocess against raw posix_spawn/vfork/fork.
//
// Baselines are written here in plain POSIX, the way a careful C programmer
// would: BM_Raw_* use posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)),
// vfork, or fork directly, with a writer thread and a reading main thread
// for the data benchmarks. Compare ratios within one run:
//   cmake --preset release -B /work/build/subproc-rel
//   cmake --build /work/build/subproc-rel --target subprocess_bench
//   /work/build/subproc-rel/benchmarks/subprocess_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true      (one command line)
// SPINDLE_BENCH_SMOKE=1 shrinks every size (CTest's smoke run).
#include <spindle/subprocess.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

namespace sp = spindle::subprocess;

bool smoke() {
  static const bool on = std::getenv("SPINDLE_BENCH_SMOKE") != nullptr;
  return on;
}

const char* const true_path = "/bin/true";
const char* const cat_path = "/bin/cat";

std::size_t io_bytes() { return smoke() ? (4u << 20) : (1u << 30); }
std::size_t pipeline_bytes() { return smoke() ? (4u << 20) : (256u << 20); }
std::size_t big_parent_bytes() { return smoke() ? (8u << 20) : (1u << 30); }

const std::string& io_data() {
  static const std::string data = [] {
    std::string s(io_bytes(), '\0');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 131 + (i >> 12));
    return s;
  }();
  return data;
}

// --- the 1 GiB resident parent -------------------------------------------

char* big_parent = nullptr;

void allocate_big_parent(const benchmark::State&) {
  const std::size_t n = big_parent_bytes();
  big_parent = static_cast<char*>(std::malloc(n));
  // Touch every page so it is resident: fork would have to copy its tables.
  for (std::size_t i = 0; i < n; i += 4096) big_parent[i] = static_cast<char>(i);
  benchmark::DoNotOptimize(big_parent);
}

void free_big_parent(const benchmark::State&) {
  std::free(big_parent);
  big_parent = nullptr;
}

// --- raw baselines ---------------------------------------------------------

pid_t raw_posix_spawn(const char* path, posix_spawn_file_actions_t* actions) {
  char* argv[] = {const_cast<char*>(path), nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, path, actions, nullptr, argv, environ) != 0) std::abort();
  return pid;
}

int raw_wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

pid_t raw_vfork(const char* path) {
  char* argv[] = {const_cast<char*>(path), nullptr};
  const pid_t pid = vfork();
  if (pid == 0) {
    execve(path, argv, environ);
    _exit(127);
  }
  if (pid < 0) std::abort();
  return pid;
}

pid_t raw_fork(const char* path) {
  char* argv[] = {const_cast<char*>(path), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    execve(path, argv, environ);
    _exit(127);
  }
  if (pid < 0) std::abort();
  return pid;
}

void write_all_raw(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// The C way to collect a stream: a malloc'd buffer grown with realloc, which
// for large blocks is mremap (no copy, no page touched twice). Returns the
// byte count; the data is discarded after the caller checks the size.
std::size_t read_all_raw(int fd) {
  std::size_t cap = 1 << 16, size = 0;
  char* buf = static_cast<char*>(std::malloc(cap));
  for (;;) {
    if (cap - size < 65536) {
      cap *= 2;
      buf = static_cast<char*>(std::realloc(buf, cap));
      if (buf == nullptr) std::abort();
    }
    const ssize_t n = ::read(fd, buf + size, cap - size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size += static_cast<std::size_t>(n);
  }
  benchmark::DoNotOptimize(buf[size / 2]);
  std::free(buf);
  return size;
}

// `cat` with stdin and stdout as pipes; returns the pid, our write end and read end.
struct RawCat {
  pid_t pid;
  int to_child;
  int from_child;
};

RawCat raw_cat(int stdin_fd = -1) {
  int in[2] = {-1, -1};
  int out[2];
  if (stdin_fd < 0 && pipe2(in, O_CLOEXEC) != 0) std::abort();
  if (pipe2(out, O_CLOEXEC) != 0) std::abort();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, stdin_fd < 0 ? in[0] : stdin_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  const pid_t pid = raw_posix_spawn(cat_path, &fa);
  posix_spawn_file_actions_destroy(&fa);
  if (stdin_fd < 0) ::close(in[0]);
  ::close(out[1]);
  return {pid, in[1], out[0]};
}

// --- spawn + wait ------------------------------------------------------------

void BM_Raw_PosixSpawnWait(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(raw_wait(raw_posix_spawn(true_path, nullptr)));
}

void BM_Raw_VforkWait(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(raw_wait(raw_vfork(true_path)));
}

void BM_Raw_ForkWait(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(raw_wait(raw_fork(true_path)));
}

void BM_Subprocess_SpawnWait(benchmark::State& state) {
  for (auto _ : state) {
    sp::Popen p({true_path});
    benchmark::DoNotOptimize(p.wait());
  }
}

void BM_Subprocess_Run(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(sp::run({true_path}).returncode);
}

// Spawn cost must not depend on RLIMIT_NOFILE (close_range, not a loop to
// the limit). Arg: the soft limit to set for the duration of the benchmark.
void BM_Subprocess_SpawnWait_NoFile(benchmark::State& state) {
  rlimit old{};
  getrlimit(RLIMIT_NOFILE, &old);
  rlimit want = old;
  want.rlim_cur = static_cast<rlim_t>(state.range(0));
  if (want.rlim_max < want.rlim_cur) want.rlim_max = want.rlim_cur;  // needs CAP_SYS_RESOURCE
  if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
    want.rlim_cur = want.rlim_max = old.rlim_max;
    setrlimit(RLIMIT_NOFILE, &want);
  }
  state.counters["nofile"] = static_cast<double>(want.rlim_cur);
  for (auto _ : state) {
    sp::Popen p({true_path});
    benchmark::DoNotOptimize(p.wait());
  }
  setrlimit(RLIMIT_NOFILE, &old);
}

// --- communicate throughput ----------------------------------------------------

void BM_Raw_Communicate_TwoThreads(benchmark::State& state) {
  const std::string& data = io_data();
  for (auto _ : state) {
    RawCat c = raw_cat();
    std::thread writer([&] {
      write_all_raw(c.to_child, data.data(), data.size());
      ::close(c.to_child);
    });
    const std::size_t out = read_all_raw(c.from_child);
    writer.join();
    ::close(c.from_child);
    raw_wait(c.pid);
    if (out != data.size()) state.SkipWithError("raw cat lost data");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

void BM_Subprocess_Communicate(benchmark::State& state) {
  const std::string& data = io_data();
  for (auto _ : state) {
    sp::Popen p({cat_path}, {.in = sp::PIPE, .out = sp::PIPE});
    auto [out, err] = p.communicate(data);
    if (out.size() != data.size()) state.SkipWithError("communicate lost data");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

// --- two-child pipeline cat | cat ----------------------------------------------

void BM_Raw_Pipeline_CatCat(benchmark::State& state) {
  const std::string data = io_data().substr(0, pipeline_bytes());
  for (auto _ : state) {
    RawCat first = raw_cat();
    RawCat second = raw_cat(first.from_child);
    ::close(first.from_child);
    std::thread writer([&] {
      write_all_raw(first.to_child, data.data(), data.size());
      ::close(first.to_child);
    });
    ::close(second.to_child);
    const std::size_t out = read_all_raw(second.from_child);
    writer.join();
    ::close(second.from_child);
    raw_wait(first.pid);
    raw_wait(second.pid);
    if (out != data.size()) state.SkipWithError("raw pipeline lost data");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

void BM_Subprocess_Pipeline_CatCat(benchmark::State& state) {
  const std::string data = io_data().substr(0, pipeline_bytes());
  for (auto _ : state) {
    sp::Popen first({cat_path}, {.in = sp::PIPE, .out = sp::PIPE});
    sp::Popen second({cat_path}, {.in = first.out(), .out = sp::PIPE});
    std::thread feeder([&] { first.communicate(data); });
    auto [out, err] = second.communicate();
    feeder.join();
    if (out.size() != data.size()) state.SkipWithError("pipeline lost data");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}

// --- ten sleeps in parallel ----------------------------------------------------

void BM_Subprocess_TenSleepsParallel(benchmark::State& state) {
  const std::string seconds = smoke() ? "0.01" : "0.2";
  for (auto _ : state) {
    std::vector<sp::Popen> procs;
    procs.reserve(10);
    for (int i = 0; i < 10; ++i) procs.emplace_back(std::vector<std::string>{"sleep", seconds});
    for (auto& p : procs) benchmark::DoNotOptimize(p.wait());
  }
}

// --- interleaved comparisons ----------------------------------------------------
// On a shared, loaded machine the time to spawn a child swings by 10x from
// one second to the next, so separate benchmarks compare different moments.
// These time the baseline and spindle alternately (ABBA order) inside one
// loop and report the median of each and their ratio as counters.

template <class Baseline, class Spindle>
void compare(benchmark::State& state, Baseline baseline, Spindle spindle,
             double bytes_per_call = 0) {
  using clock = std::chrono::steady_clock;
  std::vector<double> base_s, ours_s;
  bool base_first = true;
  for (auto _ : state) {
    const auto t0 = clock::now();
    if (base_first) baseline(); else spindle();
    const auto t1 = clock::now();
    if (base_first) spindle(); else baseline();
    const auto t2 = clock::now();
    const double first = std::chrono::duration<double>(t1 - t0).count();
    const double second = std::chrono::duration<double>(t2 - t1).count();
    base_s.push_back(base_first ? first : second);
    ours_s.push_back(base_first ? second : first);
    base_first = !base_first;
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  const double base = median(base_s), ours = median(ours_s);
  if (bytes_per_call > 0) {
    state.counters["base_GBps"] = bytes_per_call / base / 1e9;
    state.counters["spindle_GBps"] = bytes_per_call / ours / 1e9;
    state.counters["speed_ratio"] = base / ours;  // >= 0.8 is the target
  } else {
    state.counters["base_us"] = base * 1e6;
    state.counters["spindle_us"] = ours * 1e6;
    state.counters["time_ratio"] = ours / base;  // <= 1.05 is the target
  }
}

void spindle_true() {
  sp::Popen p({true_path});
  benchmark::DoNotOptimize(p.wait());
}

void BM_Compare_SpawnWait_vs_PosixSpawn(benchmark::State& state) {
  compare(state, [] { benchmark::DoNotOptimize(raw_wait(raw_posix_spawn(true_path, nullptr))); },
          spindle_true);
}

void BM_Compare_SpawnWait_vs_Vfork(benchmark::State& state) {
  compare(state, [] { benchmark::DoNotOptimize(raw_wait(raw_vfork(true_path))); }, spindle_true);
}

// Baseline: spindle with RLIMIT_NOFILE 1024; "spindle": with 65536 (or the
// hard limit if we may not raise it). time_ratio near 1.0 is the target.
void BM_Compare_SpawnWait_NoFile1024_vs_65536(benchmark::State& state) {
  rlimit old{};
  getrlimit(RLIMIT_NOFILE, &old);
  rlimit low = old, high = old;
  low.rlim_cur = 1024;
  high.rlim_cur = 65536;
  if (high.rlim_max < high.rlim_cur) high.rlim_max = high.rlim_cur;
  if (setrlimit(RLIMIT_NOFILE, &high) != 0) high.rlim_cur = high.rlim_max = old.rlim_max;
  state.counters["nofile_high"] = static_cast<double>(high.rlim_cur);
  compare(state,
          [&] {
            setrlimit(RLIMIT_NOFILE, &low);
            spindle_true();
          },
          [&] {
            setrlimit(RLIMIT_NOFILE, &high);
            spindle_true();
          });
  setrlimit(RLIMIT_NOFILE, &old);
}

void raw_communicate(const std::string& data) {
  RawCat c = raw_cat();
  std::thread writer([&] {
    write_all_raw(c.to_child, data.data(), data.size());
    ::close(c.to_child);
  });
  const std::size_t out = read_all_raw(c.from_child);
  writer.join();
  ::close(c.from_child);
  raw_wait(c.pid);
  if (out != data.size()) std::abort();
}

void spindle_communicate(const std::string& data) {
  sp::Popen p({cat_path}, {.in = sp::PIPE, .out = sp::PIPE});
  auto [out, err] = p.communicate(data);
  if (out.size() != data.size()) std::abort();
}

// Arg 0: the full size (1 GiB; every output buffer is fresh memory from
// mmap, so on a VM the page faults of filling it weigh as much as moving
// the data). Arg n: n MiB, small enough for malloc to reuse warm memory,
// which measures the pipes themselves.
void BM_Compare_Communicate_vs_TwoThreads(benchmark::State& state) {
  const std::string data =
      state.range(0) == 0 ? io_data() : io_data().substr(0, static_cast<std::size_t>(state.range(0)) << 20);
  compare(state, [&] { raw_communicate(data); }, [&] { spindle_communicate(data); },
          static_cast<double>(data.size()));
}

void raw_pipeline(const std::string& data) {
  RawCat first = raw_cat();
  RawCat second = raw_cat(first.from_child);
  ::close(first.from_child);
  std::thread writer([&] {
    write_all_raw(first.to_child, data.data(), data.size());
    ::close(first.to_child);
  });
  ::close(second.to_child);
  const std::size_t out = read_all_raw(second.from_child);
  writer.join();
  ::close(second.from_child);
  raw_wait(first.pid);
  raw_wait(second.pid);
  if (out != data.size()) std::abort();
}

void spindle_pipeline(const std::string& data) {
  sp::Popen first({cat_path}, {.in = sp::PIPE, .out = sp::PIPE});
  sp::Popen second({cat_path}, {.in = first.out(), .out = sp::PIPE});
  std::thread feeder([&] { first.communicate(data); });
  auto [out, err] = second.communicate();
  feeder.join();
  if (out.size() != data.size()) std::abort();
}

// Arg 0: pipeline_bytes() (256 MiB); arg n: n MiB (warm heap, as above).
void BM_Compare_Pipeline_CatCat_vs_Raw(benchmark::State& state) {
  const std::string data = io_data().substr(
      0, state.range(0) == 0 ? pipeline_bytes() : static_cast<std::size_t>(state.range(0)) << 20);
  compare(state, [&] { raw_pipeline(data); }, [&] { spindle_pipeline(data); },
          static_cast<double>(data.size()));
}

}  // namespace

BENCHMARK(BM_Compare_SpawnWait_vs_PosixSpawn)->Iterations(smoke() ? 20 : 400)->UseRealTime();
BENCHMARK(BM_Compare_SpawnWait_vs_Vfork)->Iterations(smoke() ? 20 : 400)->UseRealTime();
BENCHMARK(BM_Compare_SpawnWait_NoFile1024_vs_65536)->Iterations(smoke() ? 20 : 400)->UseRealTime();
BENCHMARK(BM_Compare_SpawnWait_vs_PosixSpawn)
    ->Name("BM_Compare_SpawnWait_vs_PosixSpawn_BigParent")
    ->Setup(allocate_big_parent)
    ->Teardown(free_big_parent)
    ->Iterations(smoke() ? 20 : 400)
    ->UseRealTime();
BENCHMARK(BM_Compare_Communicate_vs_TwoThreads)
    ->Arg(0)
    ->Iterations(smoke() ? 2 : 4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Compare_Communicate_vs_TwoThreads)
    ->Arg(smoke() ? 1 : 16)
    ->Iterations(smoke() ? 2 : 60)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Compare_Pipeline_CatCat_vs_Raw)
    ->Arg(0)
    ->Iterations(smoke() ? 2 : 6)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Compare_Pipeline_CatCat_vs_Raw)
    ->Arg(smoke() ? 1 : 16)
    ->Iterations(smoke() ? 2 : 60)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Raw_PosixSpawnWait)->UseRealTime();
BENCHMARK(BM_Raw_VforkWait)->UseRealTime();
BENCHMARK(BM_Raw_ForkWait)->UseRealTime();
BENCHMARK(BM_Subprocess_SpawnWait)->UseRealTime();
BENCHMARK(BM_Subprocess_Run)->UseRealTime();
BENCHMARK(BM_Subprocess_SpawnWait_NoFile)->Arg(1024)->Arg(65536)->UseRealTime();
BENCHMARK(BM_Raw_PosixSpawnWait)
    ->Name("BM_Raw_PosixSpawnWait_BigParent")
    ->Setup(allocate_big_parent)
    ->Teardown(free_big_parent)
    ->UseRealTime();
BENCHMARK(BM_Raw_VforkWait)
    ->Name("BM_Raw_VforkWait_BigParent")
    ->Setup(allocate_big_parent)
    ->Teardown(free_big_parent)
    ->UseRealTime();
BENCHMARK(BM_Raw_ForkWait)
    ->Name("BM_Raw_ForkWait_BigParent")
    ->Setup(allocate_big_parent)
    ->Teardown(free_big_parent)
    ->UseRealTime();
BENCHMARK(BM_Subprocess_SpawnWait)
    ->Name("BM_Subprocess_SpawnWait_BigParent")
    ->Setup(allocate_big_parent)
    ->Teardown(free_big_parent)
    ->UseRealTime();
BENCHMARK(BM_Raw_Communicate_TwoThreads)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Subprocess_Communicate)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Raw_Pipeline_CatCat)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Subprocess_Pipeline_CatCat)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Subprocess_TenSleepsParallel)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
