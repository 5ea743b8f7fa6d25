// SPDX-License-Identifier: MIT
// tests/package/consumer.cpp - a program that uses spindle as a dependency.
// tests/package/run also compiles it through a plain -I with
// -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror at -O2, under g++ and
// clang++, so it instantiates a little of every public header: a warning in
// spindle's templates is the user's build failure.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "consumer: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  using namespace std::chrono_literals;

  spindle::ClosableQueue<int> queue(4);
  std::thread producer([&] {
    for (int i = 1; i <= 10; ++i) queue.put(i);
    queue.close();
  });
  int sum = 0;
  for (int item : queue) sum += item;
  producer.join();
  if (sum != 55) return fail("queue sum");

  // clang++ 14 cannot compile libstdc++ 12's range adaptors at all (even
  // `std::vector<int>{} | std::views::take(1)` fails), so only g++ and newer
  // clangs try this.
#if !defined(__clang__) || __clang_major__ >= 15
  spindle::ClosableQueue<std::unique_ptr<int>> boxes;
  for (int i = 0; i < 3; ++i) boxes.put(std::make_unique<int>(i));
  int taken = 0;
  for (const auto& box : boxes | std::views::take(3)) taken += *box;  // must not wait for a 4th
  if (taken != 3) return fail("take(3)");
#endif

  spindle::LifoQueue<std::string> lifo;
  lifo.put("a");
  lifo.put("b");
  if (lifo.get() != "b") return fail("LifoQueue");
  spindle::PriorityQueue<int> prio;
  prio.put(3);
  prio.put(1);
  if (prio.get_nowait() != 1) return fail("PriorityQueue");

  spindle::Event done;
  std::thread setter([&] { done.set(); });
  done.wait();
  setter.join();
  if (!done.wait(1ms)) return fail("Event");

  spindle::ClosableQueue<int> in, out;
  {
    spindle::Pipeline pipeline;
    pipeline.stage(in, out, 2, [](int x) { return x * 2; });
    for (int i = 0; i < 100; ++i) in.put(i);
    in.close();
    pipeline.join();
  }
  long doubled = 0;
  while (auto x = out.try_get()) doubled += *x;
  if (doubled != 9900) return fail("Pipeline");

  spindle::ThreadPoolExecutor pool(2);
  std::vector<spindle::Future<long>> futures;
  for (long i = 0; i < 10; ++i) futures.push_back(pool.submit([i] { return i * i; }));
  long squares = 0;
  for (auto& f : spindle::as_completed(futures)) squares += f.result();
  if (squares != 285) return fail("as_completed");
  std::vector<int> numbers{1, 2, 3};
  long mapped = 0;
  for (long v : pool.map([](int x) { return long{x} + 1; }, numbers)) mapped += v;
  if (mapped != 9) return fail("map");
  auto [finished, pending] = spindle::wait(futures, spindle::ReturnWhen::all_completed, 1s);
  if (finished.size() != 10 || !pending.empty()) return fail("wait");
  spindle::Promise<std::string> promise;
  auto later = promise.get_future();
  promise.set_result("ok");
  if (later.result(1s) != "ok") return fail("Promise");

  auto r = spindle::subprocess::run({"echo", "hi"}, {.capture_output = true, .check = true});
  if (r.out != "hi\n") return fail("subprocess");

  std::printf("sum %d\n", sum);
  return 0;
}
