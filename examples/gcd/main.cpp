// SPDX-License-Identifier: MIT
// examples/gcd/main.cpp - Effective Python Item 64: a slow gcd mapped over the
// book's ten pairs, serially and with ThreadPoolExecutor::map. C++ threads
// have no GIL, so the pool does here what only ProcessPoolExecutor did there.
#include <spindle/executor.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cli.hpp"
#include "timing.hpp"

namespace {

constexpr const char* usage_text = R"(Usage: gcd [options]

Effective Python Item 64: gcd(pair) counts down from the smaller number to
the first common divisor, a stand-in for heavy computation. It is mapped over
the book's ten NUMBERS pairs first with a plain loop (run_serial.py), then
with spindle::ThreadPoolExecutor::map (run_threads.py). Prints the results and
the time of each run. In Python the thread pool is slower than serial (the
GIL) and only ProcessPoolExecutor helps; C++ threads run in parallel.

Options:
  --workers N      the pool's max_workers (default 2, as in the book)
  --repeat N       map over the ten pairs repeated N times, for longer and
                   steadier timings (default 1)
  --help           show this help and exit
)";

struct Options {
  long workers = 2;
  long repeat = 1;
};

using Pair = std::pair<std::uint64_t, std::uint64_t>;

// The book's NUMBERS.
const std::vector<Pair> book_numbers{
    {1963309, 2265973}, {2030677, 3814172}, {1551645, 2229620}, {2039045, 2020802},
    {1823712, 1924928}, {2293129, 1020491}, {1281238, 2273782}, {3823812, 4237281},
    {3812741, 4729139}, {1292391, 2123811},
};

// The book's my_module.gcd: the slow way on purpose.
std::uint64_t gcd(Pair pair) {
  const auto [a, b] = pair;
  for (std::uint64_t i = std::min(a, b); i > 0; --i)
    if (a % i == 0 && b % i == 0) return i;
  throw std::logic_error("not reachable");
}

using timing::Clock;
using timing::seconds_since;
using timing::cpu_seconds;

void print_took(double wall, double cpu) {
  std::printf("Took %.3f seconds  (CPU %.3f s, %.1f cores busy)\n\n", wall, cpu,
              wall > 0 ? cpu / wall : 0.0);
}

void print_results(const std::vector<std::uint64_t>& results, std::size_t shown) {
  std::string list;
  for (std::size_t i = 0; i < shown; ++i)
    list += (i ? ", " : "") + std::to_string(results[i]);
  std::printf("results: [%s]%s\n", list.c_str(),
              results.size() > shown
                  ? (" (the first " + std::to_string(shown) + " of " +
                     std::to_string(results.size()) + ")").c_str()
                  : "");
}

int run(const Options& o) {
  std::vector<Pair> numbers;
  for (long r = 0; r < o.repeat; ++r)
    numbers.insert(numbers.end(), book_numbers.begin(), book_numbers.end());

  std::printf("Serial: results = list(map(gcd, NUMBERS)), %zu pairs\n", numbers.size());
  auto start = Clock::now();
  double cpu0 = cpu_seconds();
  std::vector<std::uint64_t> serial;
  for (const Pair& p : numbers) serial.push_back(gcd(p));
  const double serial_s = seconds_since(start);
  print_results(serial, book_numbers.size());
  print_took(serial_s, cpu_seconds() - cpu0);

  std::printf("Threads: pool = ThreadPoolExecutor(max_workers=%ld); "
              "results = list(pool.map(gcd, NUMBERS))\n",
              o.workers);
  std::fflush(stdout);
  start = Clock::now();
  cpu0 = cpu_seconds();
  std::vector<std::uint64_t> pooled;
  {
    spindle::ThreadPoolExecutor pool(static_cast<std::size_t>(o.workers));
    for (std::uint64_t g : pool.map(gcd, numbers)) pooled.push_back(g);
  }  // the pool's threads are joined here, inside the timing, as Python's
     // interpreter waits for them at exit
  const double pooled_s = seconds_since(start);
  print_results(pooled, book_numbers.size());
  print_took(pooled_s, cpu_seconds() - cpu0);
  if (pooled != serial) throw std::logic_error("the pool computed different results");
  std::printf("The pool of %ld ran %.2fx as fast as serial.\n", o.workers,
              pooled_s > 0 ? serial_s / pooled_s : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "gcd", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto v = args.value("--workers"))
        o.workers = cli::parse_int(args.name(), *v, 1, 256);
      else if (auto r = args.value("--repeat"))
        o.repeat = cli::parse_int(args.name(), *r, 1, 100'000);
      else
        args.unknown();
    }
    return run(o);
  });
}
