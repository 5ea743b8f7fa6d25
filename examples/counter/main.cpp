// SPDX-License-Identifier: MIT
// examples/counter/main.cpp - Effective Python Item 54: five workers increment
// a shared counter; without a lock updates get lost, with a lock none do.
#include <atomic>
#include <cstdio>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include <spindle/threading.hpp>

#include "cli.hpp"

namespace {

constexpr const char* usage_text = R"(Usage: counter [options]

Effective Python Item 54: worker threads each increment a shared counter
how_many times. The book's Counter does `self.count += offset`, a read and a
write that another thread can slip between: updates get lost. Here Counter
does the same in C++ without undefined behaviour (an atomic load, then a
separate atomic store of value + 1: no data race, yet not one atomic step),
so you see the lost updates while ThreadSanitizer stays quiet. LockingCounter
holds a lock around the read and the write and always gets the total: run
once with std::mutex and once with spindle::Lock (Python's threading.Lock).
Lost updates are likely but not guaranteed in a given run (with one core, or
if the threads happen not to overlap, none are lost).

Options:
  --workers N      worker threads (default 5, as in the book)
  --how-many N     increments per worker (default 100000, the book's 10**5)
  --help           show this help and exit
)";

struct Options {
  long workers = 5;
  long how_many = 100'000;
};

// The book's Counter: `self.count += offset` as two steps. Each step is
// atomic (relaxed: only the value matters, nothing else is published through
// it), but another thread's increment can land between the load and the
// store, and the store then overwrites it.
class Counter {
public:
  void increment(long offset) {
    const long value = count_.load(std::memory_order_relaxed);
    count_.store(value + offset, std::memory_order_relaxed);
  }
  long count() const { return count_.load(std::memory_order_relaxed); }

private:
  std::atomic<long> count_{0};
};

// The book's LockingCounter: `with self.lock: self.count += offset`, over
// std::mutex or spindle::Lock (both work with std::lock_guard).
template <class Mutex>
class LockingCounter {
public:
  void increment(long offset) {
    std::lock_guard lock(m_);
    count_ += offset;
  }
  long count() const {
    std::lock_guard lock(m_);
    return count_;
  }

private:
  mutable Mutex m_;
  long count_ = 0;  // guarded by m_
};

// The book's worker: read from the sensor (elided), then count the reading.
template <class C>
void worker(long how_many, C& counter, std::latch& start) {
  start.arrive_and_wait();  // all workers begin together, to overlap as much as they can
  for (long i = 0; i < how_many; ++i) counter.increment(1);
}

template <class C>
long run_workers(const Options& o, C& counter) {
  std::latch start(o.workers);
  std::vector<std::thread> threads;
  for (long i = 0; i < o.workers; ++i)
    threads.emplace_back([&] { worker(o.how_many, counter, start); });
  for (auto& t : threads) t.join();
  return counter.count();
}

// Runs the workers over a LockingCounter and reports; returns the count.
template <class C>
long run_locking(const Options& o, C& counter, const char* lock_name) {
  const long expected = o.how_many * o.workers;
  std::printf("LockingCounter (%s), %ld workers x %ld:\n", lock_name, o.workers, o.how_many);
  const long found = run_workers(o, counter);
  std::printf("LockingCounter should be %ld, got %ld\n", expected, found);
  std::printf("  %ld updates lost\n", expected - found);
  return found;
}

int run(const Options& o) {
  const long expected = o.how_many * o.workers;
  Counter counter;
  std::printf("Counter (atomic load, then atomic store: not one step), %ld workers x %ld:\n",
              o.workers, o.how_many);
  const long found = run_workers(o, counter);
  std::printf("Counter should be %ld, got %ld\n", expected, found);
  std::printf("  %ld updates lost\n\n", expected - found);

  LockingCounter<std::mutex> with_std;
  const long locked = run_locking(o, with_std, "std::mutex around the read and the write");
  std::printf("\n");
  LockingCounter<spindle::Lock> with_spindle;
  const long spindle_locked = run_locking(o, with_spindle, "spindle::Lock, Python's threading.Lock");
  return locked == expected && spindle_locked == expected ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "counter", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto v = args.value("--workers"))
        o.workers = cli::parse_int(args.name(), *v, 1, 256);
      else if (auto h = args.value("--how-many"))
        o.how_many = cli::parse_int(args.name(), *h, 1, 10'000'000);
      else
        args.unknown();
    }
    return run(o);
  });
}
