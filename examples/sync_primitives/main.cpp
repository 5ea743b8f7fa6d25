// SPDX-License-Identifier: MIT
// examples/sync_primitives/main.cpp - Beazley's concurrency tutorial, parts 3-4,
// run as a program: an RLock monitor, a Semaphore limiting downloads, a
// Semaphore(0) signal, and the Condition producer/consumer.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include <spindle/threading.hpp>

#include "cli.hpp"

using namespace std::chrono_literals;

namespace {

constexpr const char* usage_text = R"(Usage: sync_primitives [options] [rlock|semaphore|signal|condition]...

David Beazley's "An Introduction to Python Concurrency", parts 3-4, with
spindle's threading primitives (Python's threading module in C++). With no
section named, runs all four:

  rlock      the RLock "monitor" class: Foo.spam() holds the class lock and
             calls Foo.bar(), which takes it again; many threads call both,
             and only one thread is ever inside
  semaphore  Semaphore(5) limits concurrent "downloads": many threads call
             fetch_page(url), at most --limit of them at once
  signal     Semaphore(0) as a signal: thread 2 waits in acquire() until
             thread 1 has done its statements and calls release()
  condition  the producer/consumer with a Condition: the producer appends
             and notifies, the consumer waits while the list is empty

Options:
  --threads N     threads for rlock and semaphore (default 8)
  --calls N       spam() calls per thread in rlock (default 1000)
  --urls N        pages to fetch in semaphore (default 20)
  --limit N       the Semaphore's value: downloads at once (default 5)
  --fetch-ms N    how long one simulated download takes (default 20)
  --items N       items the producer makes in condition (default 10)
  --help          show this help and exit
)";

struct Options {
  long threads = 8;
  long calls = 1000;
  long urls = 20;
  long limit = 5;
  long fetch_ms = 20;
  long items = 10;
  std::vector<std::string> sections;
};

// Tracks how many threads are inside a region at once, and the most seen.
class Occupancy {
public:
  void enter() {
    const int now = inside_.fetch_add(1) + 1;
    int seen = most_.load();
    while (now > seen && !most_.compare_exchange_weak(seen, now)) {
    }
  }
  void leave() { inside_.fetch_sub(1); }
  int most() const { return most_.load(); }

private:
  std::atomic<int> inside_{0};
  std::atomic<int> most_{0};
};

// --- rlock: "Implementing a kind of monitor object" --------------------------
// class Foo:
//     lock = threading.RLock()
//     def bar(self):  with Foo.lock: ...
//     def spam(self): with Foo.lock: ...; self.bar(); ...
class Foo {
public:
  void bar() {
    std::lock_guard hold(lock);
    inside.enter();
    ++bar_calls;
    inside.leave();
  }
  void spam() {
    std::lock_guard hold(lock);
    inside.enter();
    ++spam_calls;
    inside.leave();
    bar();  // takes the lock again on this thread: fine with an RLock
  }

  static inline spindle::RLock lock;
  static inline Occupancy inside;
  static inline long spam_calls = 0;  // guarded by lock
  static inline long bar_calls = 0;   // guarded by lock
};

bool run_rlock(const Options& o) {
  std::vector<spindle::Thread> threads;
  for (long t = 0; t < o.threads; ++t) {
    threads.emplace_back([&o] {
      Foo foo;
      for (long i = 0; i < o.calls; ++i) {
        if (i % 2) {
          foo.spam();
        } else {
          foo.bar();
        }
      }
    });
  }
  for (auto& t : threads) t.start();
  for (auto& t : threads) t.join();
  std::lock_guard hold(Foo::lock);
  const long total = Foo::spam_calls + Foo::bar_calls;
  std::printf("rlock: %ld threads called Foo methods %ld times (%ld spam() calls, each calling "
              "bar() under the same lock)\n",
              o.threads, total, Foo::spam_calls);
  std::printf("rlock: at most %d thread inside Foo at once\n", Foo::inside.most());
  const long expected_spam = o.threads * (o.calls / 2);
  return Foo::inside.most() == 1 && Foo::spam_calls == expected_spam &&
         Foo::bar_calls == o.threads * o.calls;
}

// --- semaphore: "Using a semaphore to limit resources" ----------------------
// sema = threading.Semaphore(5)
// def fetch_page(url):
//     sema.acquire()
//     try: return urllib.urlopen(url).read()
//     finally: sema.release()
bool run_semaphore(const Options& o) {
  // A BoundedSemaphore: a release without an acquire would throw, not
  // silently raise the limit.
  spindle::BoundedSemaphore sema(o.limit);
  Occupancy downloading;
  std::atomic<long> fetched{0};
  auto fetch_page = [&](long url) {
    std::lock_guard hold(sema);  // acquire ... finally: release
    downloading.enter();
    // The "download": a blocking call that takes a while (as a network read
    // would); the thread sleeps in it, holding one of the semaphore's slots.
    std::this_thread::sleep_for(std::chrono::milliseconds(o.fetch_ms));
    downloading.leave();
    fetched.fetch_add(1);
    return "page " + std::to_string(url);
  };
  std::vector<spindle::Thread> threads;
  std::atomic<long> next{0};
  for (long t = 0; t < o.threads; ++t) {
    threads.emplace_back([&] {
      for (long url = next++; url < o.urls; url = next++) (void)fetch_page(url);
    });
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto& t : threads) t.start();
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("semaphore: Semaphore(%ld): %ld pages fetched by %ld threads in %.2f s, at most %d "
              "at once\n",
              o.limit, fetched.load(), o.threads, secs, downloading.most());
  return fetched.load() == o.urls && downloading.most() <= o.limit && sema.value() ==
         static_cast<std::size_t>(o.limit);
}

// --- signal: "Using a semaphore to signal" ----------------------------------
// done = threading.Semaphore(0)
// Thread 1: statements...; done.release()    Thread 2: done.acquire(); statements...
bool run_signal() {
  spindle::Semaphore done(0);
  std::atomic<bool> thread1_finished{false};
  bool thread2_saw_it = false;
  spindle::Thread thread1([&] {
    std::printf("signal: thread 1 runs its statements\n");
    thread1_finished = true;
    done.release();
  }, {.name = "thread-1"});
  spindle::Thread thread2([&] {
    done.acquire();  // returns only after thread 1's release()
    thread2_saw_it = thread1_finished.load();
    std::printf("signal: thread 2 continues after acquire(): thread 1 %s\n",
                thread2_saw_it ? "had finished" : "had NOT finished");
  }, {.name = "thread-2"});
  thread2.start();  // the waiter first, to show it really waits
  thread1.start();
  thread1.join();
  thread2.join();
  return thread2_saw_it;
}

// --- condition: "Common Use: Producer/Consumer patterns" --------------------
// items = []; items_cv = threading.Condition()
// producer: with items_cv: items.append(item); items_cv.notify()
// consumer: with items_cv: while not items: items_cv.wait(); x = items.pop(0)
bool run_condition(const Options& o) {
  std::deque<long> items;  // guarded by items_cv
  spindle::Condition items_cv;
  std::vector<long> consumed;
  spindle::Thread consumer([&] {
    for (long n = 0; n < o.items; ++n) {
      long x = 0;
      {
        std::unique_lock hold(items_cv);
        while (items.empty()) items_cv.wait();  // always re-check: the while loop
        x = items.front();
        items.pop_front();
      }
      consumed.push_back(x);  // "do something with x", outside the lock
    }
  }, {.name = "consumer"});
  spindle::Thread producer([&] {
    for (long item = 0; item < o.items; ++item) {
      std::lock_guard hold(items_cv);
      items.push_back(item * item);
      items_cv.notify();
    }
  }, {.name = "producer"});
  consumer.start();
  producer.start();
  producer.join();
  consumer.join();
  std::printf("condition: the consumer got %zu items in order:", consumed.size());
  bool in_order = consumed.size() == static_cast<std::size_t>(o.items);
  for (std::size_t i = 0; i < consumed.size(); ++i) {
    std::printf(" %ld", consumed[i]);
    in_order = in_order && consumed[i] == static_cast<long>(i * i);
  }
  std::printf("\n");
  return in_order;
}

int run(const Options& o) {
  auto wanted = [&](const char* name) {
    if (o.sections.empty()) return true;
    for (const auto& s : o.sections)
      if (s == name) return true;
    return false;
  };
  bool ok = true;
  if (wanted("rlock")) ok = run_rlock(o) && ok;
  if (wanted("semaphore")) ok = run_semaphore(o) && ok;
  if (wanted("signal")) ok = run_signal() && ok;
  if (wanted("condition")) ok = run_condition(o) && ok;
  if (!ok) std::printf("sync_primitives: a check failed (see above)\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "sync_primitives", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto v = args.value("--threads"))
        o.threads = cli::parse_int(args.name(), *v, 1, 256);
      else if (auto c = args.value("--calls"))
        o.calls = cli::parse_int(args.name(), *c, 1, 10'000'000);
      else if (auto u = args.value("--urls"))
        o.urls = cli::parse_int(args.name(), *u, 0, 100'000);
      else if (auto l = args.value("--limit"))
        o.limit = cli::parse_int(args.name(), *l, 1, 1000);
      else if (auto f = args.value("--fetch-ms"))
        o.fetch_ms = cli::parse_int(args.name(), *f, 0, 10'000);
      else if (auto i = args.value("--items"))
        o.items = cli::parse_int(args.name(), *i, 0, 1'000'000);
      else if (auto p = args.positional()) {
        const std::string s(*p);
        if (s != "rlock" && s != "semaphore" && s != "signal" && s != "condition")
          throw cli::UsageError("unknown section '" + s +
                                "' (rlock, semaphore, signal or condition)");
        o.sections.push_back(s);
      } else {
        args.unknown();
      }
    }
    return run(o);
  });
}
