// SPDX-License-Identifier: MIT
// examples/slow_syscalls/main.cpp - Effective Python Item 53: blocking select()
// calls take calls x timeout in serial, but about one timeout in threads,
// while the main thread keeps computing.
#include <sys/select.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <system_error>
#include <thread>
#include <vector>

#include "cli.hpp"
#include "timing.hpp"

namespace {

constexpr const char* usage_text = R"(Usage: slow_syscalls [options]

Effective Python Item 53: slow_systemcall() blocks in select() for 0.1 s, a
stand-in for talking to a helicopter over a serial port. Five calls in serial
take about 0.5 s; in five threads they take about 0.1 s, and meanwhile the
main thread computes the helicopter's next locations.

Options:
  --calls N        how many slow system calls (default 5)
  --seconds S      how long each select() blocks (default 0.1)
  --check          exit 1 unless the timings obey the physics: serial at
                   least calls x seconds, threads at least one timeout and
                   faster than serial
  --help           show this help and exit
)";

struct Options {
  long calls = 5;
  double seconds = 0.1;
  bool check = false;
};

using timing::Clock;
using timing::seconds_since;

// The book's slow_systemcall: select() with no descriptors only waits. Linux
// updates the timeval to the time left, so an EINTR just resumes the wait.
void slow_systemcall(double seconds) {
  const auto usec = static_cast<long>(std::llround(seconds * 1e6));
  timeval tv{usec / 1'000'000, usec % 1'000'000};
  while (::select(0, nullptr, nullptr, nullptr, &tv) < 0)
    if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "select");
}

// The book leaves compute_helicopter_location as "...": here, a short
// numeric integration of a circular flight path, real work for the main
// thread while the system calls block in the others.
struct Location {
  double x, y;
};
Location compute_helicopter_location(int index) {
  double x = 0, y = 0;
  constexpr int steps = 20'000;
  for (int s = 0; s < steps; ++s) {
    const double t = (index + static_cast<double>(s) / steps) * 0.1;
    x += std::cos(t) / steps;
    y += std::sin(t) / steps;
  }
  return {x, y};
}

int run(const Options& o) {
  std::printf("Serial: %ld slow_systemcall()s, select() blocking %.3f s each\n", o.calls,
              o.seconds);
  auto start = Clock::now();
  for (long i = 0; i < o.calls; ++i) slow_systemcall(o.seconds);
  const double serial = seconds_since(start);
  std::printf("Took %.3f seconds\n\n", serial);

  std::printf("Threads: %ld slow_systemcall()s in %ld threads, while the main thread computes\n",
              o.calls, o.calls);
  std::fflush(stdout);
  start = Clock::now();
  std::vector<std::thread> threads;
  for (long i = 0; i < o.calls; ++i) threads.emplace_back(slow_systemcall, o.seconds);
  std::vector<Location> locations;
  for (int i = 0; i < 5; ++i) locations.push_back(compute_helicopter_location(i));
  const double computed = seconds_since(start);
  for (auto& t : threads) t.join();
  const double threaded = seconds_since(start);
  for (std::size_t i = 0; i < locations.size(); ++i)
    std::printf("  helicopter location %zu: (%.4f, %.4f)\n", i, locations[i].x, locations[i].y);
  std::printf("  (computed in %.3f seconds while the threads were blocked)\n", computed);
  std::printf("Took %.3f seconds\n\n", threaded);
  std::printf("Threads were %.1fx faster than serial (ideal: %ldx)\n",
              threaded > 0 ? serial / threaded : 0.0, o.calls);

  if (o.check) {
    // select() never returns early, so these lower bounds are physics; the
    // one upper bound (threads beat serial) is generous.
    const double total = static_cast<double>(o.calls) * o.seconds;
    bool ok = true;
    if (serial < total) {
      std::printf("check failed: serial took %.3f s < %.3f s\n", serial, total);
      ok = false;
    }
    if (threaded < o.seconds) {
      std::printf("check failed: threads took %.3f s < one timeout %.3f s\n", threaded, o.seconds);
      ok = false;
    }
    if (o.calls > 1 && threaded >= serial) {
      std::printf("check failed: threads (%.3f s) were not faster than serial (%.3f s)\n",
                  threaded, serial);
      ok = false;
    }
    if (!ok) return 1;
    std::printf("check passed: serial >= %.3f s, %.3f s <= threads < serial\n", total, o.seconds);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "slow_syscalls", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto v = args.value("--calls"))
        o.calls = cli::parse_int(args.name(), *v, 1, 1000);
      else if (auto s = args.value("--seconds"))
        o.seconds = cli::parse_double(args.name(), *s, 0, 10);
      else if (args.flag("--check"))
        o.check = true;
      else
        args.unknown();
    }
    return run(o);
  });
}
