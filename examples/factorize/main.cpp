// SPDX-License-Identifier: MIT
// examples/factorize/main.cpp - Effective Python Item 53: naive factorization
// serial, one std::thread per number, and on a ThreadPoolExecutor. In C++
// there is no GIL: the threads really run CPU work in parallel.
#include <spindle/executor.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "factorize.hpp"
#include "timing.hpp"

namespace {

constexpr const char* usage_text = R"(Usage: factorize [options]

Effective Python Item 53: factorize 2139079, 1214759, 1516637 and 1852285 by
trial division (the book's naive factorize), first in serial, then with one
std::thread per number, then on a spindle::ThreadPoolExecutor. Prints each
number's factors, the time of each run and its speedup over the serial run.
Python's threads are slower than serial here (the GIL); C++ threads are not.

Options:
  --repeat N       factorize each number N times per run, to make the runs
                   longer and the timings steadier (default 1)
  --numbers A,B,.. the numbers to factorize (default the book's four)
  --workers N      the pool's max_workers (default: the number of cores)
  --help           show this help and exit
)";

struct Options {
  std::vector<std::uint64_t> numbers{2139079, 1214759, 1516637, 1852285};
  long repeat = 1;
  std::size_t workers = std::max(1U, std::thread::hardware_concurrency());
};

using item53::Factors;
using item53::factorize;

// One unit of work: factorize `number` `repeat` times (the result of each
// repetition is the same; keeping the last one makes the work observable).
Factors factorize_repeatedly(std::uint64_t number, long repeat) {
  Factors factors;
  for (long r = 0; r < repeat; ++r) factors = factorize(number);
  return factors;
}

using timing::Clock;
using timing::seconds_since;
using timing::cpu_seconds;

std::vector<Factors> run_serial(const Options& o) {
  std::vector<Factors> results;
  for (std::uint64_t n : o.numbers) results.push_back(factorize_repeatedly(n, o.repeat));
  return results;
}

// The book's FactorizeThread: one thread per number, each writing only its
// own slot; join() makes the slots visible to the main thread.
std::vector<Factors> run_threads(const Options& o) {
  std::vector<Factors> results(o.numbers.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < o.numbers.size(); ++i)
    threads.emplace_back([&, i] { results[i] = factorize_repeatedly(o.numbers[i], o.repeat); });
  for (auto& t : threads) t.join();
  return results;
}

std::vector<Factors> run_pool(const Options& o) {
  spindle::ThreadPoolExecutor pool(o.workers);
  std::vector<spindle::Future<Factors>> futures;
  for (std::uint64_t n : o.numbers)
    futures.push_back(pool.submit(factorize_repeatedly, n, o.repeat));
  std::vector<Factors> results;
  for (auto& f : futures) results.push_back(f.result());
  return results;
}

std::string join(const Factors& factors) {
  std::string s;
  for (std::uint64_t f : factors) s += (s.empty() ? "" : ", ") + std::to_string(f);
  return s;
}

int run(const Options& o) {
  std::printf("Factorizing %zu numbers by trial division, %ld time(s) each, on %u core(s)\n",
              o.numbers.size(), o.repeat, std::thread::hardware_concurrency());
  auto start = Clock::now();
  double cpu0 = cpu_seconds();
  const auto serial = run_serial(o);
  const double serial_s = seconds_since(start);
  const double serial_cpu = cpu_seconds() - cpu0;
  for (std::size_t i = 0; i < o.numbers.size(); ++i)
    std::printf("factorize(%llu) = [%s]\n", static_cast<unsigned long long>(o.numbers[i]),
                join(serial[i]).c_str());

  auto cores = [](double cpu, double wall) { return wall > 0 ? cpu / wall : 0.0; };
  std::printf("%-36s took %.3f seconds  (CPU %.3f s, %.1f cores busy)\n", "serial", serial_s,
              serial_cpu, cores(serial_cpu, serial_s));
  std::fflush(stdout);
  auto report = [&](const std::string& name, const std::vector<Factors>& results, double s,
                    double cpu) {
    if (results != serial) throw std::logic_error(name + " computed different factors");
    std::printf("%-36s took %.3f seconds  (CPU %.3f s, %.1f cores busy)  %.2fx serial\n",
                name.c_str(), s, cpu, cores(cpu, s), s > 0 ? serial_s / s : 0.0);
    std::fflush(stdout);
  };
  start = Clock::now();
  cpu0 = cpu_seconds();
  const auto threaded = run_threads(o);
  report("one std::thread per number (" + std::to_string(o.numbers.size()) + ")", threaded,
         seconds_since(start), cpu_seconds() - cpu0);
  start = Clock::now();
  cpu0 = cpu_seconds();
  const auto pooled = run_pool(o);
  report("ThreadPoolExecutor(" + std::to_string(o.workers) + ")", pooled, seconds_since(start),
         cpu_seconds() - cpu0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "factorize", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto v = args.value("--repeat"))
        o.repeat = cli::parse_int(args.name(), *v, 1, 1'000'000);
      else if (auto w = args.value("--workers"))
        o.workers = static_cast<std::size_t>(cli::parse_int(args.name(), *w, 1, 256));
      else if (auto list = args.value("--numbers")) {
        o.numbers.clear();
        for (auto part : cli::split(*list))
          o.numbers.push_back(
              static_cast<std::uint64_t>(cli::parse_int("--numbers", part, 1, 1'000'000'000)));
      } else
        args.unknown();
    }
    return run(o);
  });
}
