// SPDX-License-Identifier: MIT
// examples/primes/main.cpp - Fluent Python ch. 19's sequential.py and procs.py:
// primality checks of large numbers, sequential and by N worker threads over
// a job queue and a result queue, ended by poison pills or by close().
#include <spindle/queue.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "timing.hpp"
#include "primes.hpp"

namespace {

constexpr const char* usage_text = R"(Usage: primes [options]

Fluent Python ch. 19: check the book's 20 large numbers (primes.py NUMBERS)
for primality by trial division. Prints each number, P for a prime, and the
time its check took, then the total time:
  sequential  sequential.py: one check after another
  pills       procs.py with threads: a job queue and a result queue; each
              worker stops at a 0 "poison pill" and answers with a 0 result
  close       the same with spindle::ClosableQueue::close(): the job queue
              is closed after the numbers, workers stop when it is drained,
              and the last worker out closes the result queue
In C++ the workers are threads running in parallel (no GIL): the queued runs
take about the sequential time divided by the cores.

Options:
  --workers N      worker threads (default: the number of cores)
  --count K        check only the first K of the book's numbers (1-20)
  --numbers A,B,.. check these numbers instead (each at least 1)
  --run LIST       which runs, comma-separated, of sequential, pills, close
                   (default sequential,pills,close)
  --help           show this help and exit
)";

struct Options {
  std::vector<std::uint64_t> numbers{examples::primes::numbers.begin(),
                                     examples::primes::numbers.end()};
  long workers = std::max(1U, std::thread::hardware_concurrency());
  bool sequential = true, pills = true, close = true;
};

using timing::Clock;
using timing::seconds_since;

// The book's PrimeResult; n == 0 is the "worker done" answer to a pill.
struct PrimeResult {
  std::uint64_t n = 0;
  bool prime = false;
  double elapsed = 0;
};

PrimeResult check(std::uint64_t n) {
  const auto t0 = Clock::now();
  const bool prime = examples::primes::is_prime(n);
  return {n, prime, seconds_since(t0)};
}

void print_result(const PrimeResult& r) {
  std::printf("%16llu  %c %9.6fs\n", static_cast<unsigned long long>(r.n), r.prime ? 'P' : ' ',
              r.elapsed);
  std::fflush(stdout);
}

// Every number must come back exactly once, whatever the order.
void verify(const Options& o, std::vector<std::uint64_t> seen, const char* run) {
  auto want = o.numbers;
  std::sort(want.begin(), want.end());
  std::sort(seen.begin(), seen.end());
  if (seen != want) throw std::logic_error(std::string(run) + ": results do not match the jobs");
}

void run_sequential(const Options& o) {
  std::printf("Sequential (sequential.py): %zu numbers\n", o.numbers.size());
  const auto t0 = Clock::now();
  for (std::uint64_t n : o.numbers) print_result(check(n));
  std::printf("Total time: %.2fs\n", seconds_since(t0));
}

// procs.py: 0 is the poison pill in the job queue and the "done" result.
void run_pills(const Options& o) {
  std::printf("Checking %zu numbers with %ld threads (poison pills, as procs.py):\n",
              o.numbers.size(), o.workers);
  const auto t0 = Clock::now();
  spindle::ClosableQueue<std::uint64_t> jobs;
  spindle::ClosableQueue<PrimeResult> results;
  auto worker = [&] {
    while (const std::uint64_t n = jobs.get()) results.put(check(n));
    results.put(PrimeResult{});  // this worker is done
  };
  // start_jobs: the numbers first, then a pill after starting each worker.
  for (std::uint64_t n : o.numbers) jobs.put(n);
  std::vector<std::thread> threads;
  for (long i = 0; i < o.workers; ++i) {
    threads.emplace_back(worker);
    jobs.put(0);
  }
  // report: until every worker has answered its pill.
  std::vector<std::uint64_t> checked;
  for (long done = 0; done < o.workers;) {
    const PrimeResult r = results.get();
    if (r.n == 0) {
      ++done;
    } else {
      checked.push_back(r.n);
      print_result(r);
    }
  }
  for (auto& t : threads) t.join();
  std::printf("%zu checks in %.2fs\n", checked.size(), seconds_since(t0));
  verify(o, checked, "pills");
}

// The same with close(): no sentinel values, so 0 could be a job too.
void run_close(const Options& o) {
  std::printf("Checking %zu numbers with %ld threads (ClosableQueue::close, no pills):\n",
              o.numbers.size(), o.workers);
  const auto t0 = Clock::now();
  spindle::ClosableQueue<std::uint64_t> jobs;
  spindle::ClosableQueue<PrimeResult> results;
  std::atomic<long> running{o.workers};
  auto worker = [&] {
    for (std::uint64_t n : jobs) results.put(check(n));  // ends once jobs is closed and drained
    // acq_rel: every worker's puts happen-before the last worker's close().
    if (running.fetch_sub(1, std::memory_order_acq_rel) == 1) results.close();
  };
  for (std::uint64_t n : o.numbers) jobs.put(n);
  jobs.close();
  std::vector<std::thread> threads;
  for (long i = 0; i < o.workers; ++i) threads.emplace_back(worker);
  std::vector<std::uint64_t> checked;
  for (const PrimeResult& r : results) {  // ends once the last worker closes results
    checked.push_back(r.n);
    print_result(r);
  }
  for (auto& t : threads) t.join();
  std::printf("%zu checks in %.2fs\n", checked.size(), seconds_since(t0));
  verify(o, checked, "close");
}

int run(const Options& o) {
  const char* gap = "";
  if (o.sequential) run_sequential(o), gap = "\n";
  if (o.pills) std::printf("%s", gap), run_pills(o), gap = "\n";
  if (o.close) std::printf("%s", gap), run_close(o);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "primes", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto v = args.value("--workers")) {
        o.workers = cli::parse_int(args.name(), *v, 1, 256);
      } else if (auto c = args.value("--count")) {
        const auto k = cli::parse_int(args.name(), *c, 1, examples::primes::numbers.size());
        o.numbers.assign(examples::primes::numbers.begin(),
                         examples::primes::numbers.begin() + k);
      } else if (auto list = args.value("--numbers")) {
        o.numbers.clear();
        for (auto part : cli::split(*list))
          o.numbers.push_back(static_cast<std::uint64_t>(
              cli::parse_int("--numbers", part, 1, 9'223'372'036'854'775'807)));
      } else if (auto runs = args.value("--run")) {
        o.sequential = o.pills = o.close = false;
        for (auto name : cli::split(*runs)) {
          if (name == "sequential") o.sequential = true;
          else if (name == "pills") o.pills = true;
          else if (name == "close") o.close = true;
          else
            throw cli::UsageError("--run expects sequential, pills or close, got '" +
                                  std::string(name) + "'");
        }
      } else {
        args.unknown();
      }
    }
    return run(o);
  });
}
