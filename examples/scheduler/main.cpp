// SPDX-License-Identifier: MIT
// examples/scheduler/main.cpp - David Beazley's generator task scheduler
// ("An Introduction to Python Concurrency", part 11) as spindle::asyncio
// coroutines: countdown (and countup) tasks that print a number and yield,
// interleaved by the event loop as the slides' deque scheduler does.
#include <spindle/asyncio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"

namespace asyncio = spindle::asyncio;
using namespace std::chrono_literals;

namespace {

constexpr const char* usage_text = R"(Usage: scheduler [options]

David Beazley's task scheduler from "An Introduction to Python Concurrency"
(part 11, coroutines): each task prints a number and yields control, and a
scheduler cycles between the tasks. The slides' tasks are generators and the
scheduler is a deque (pop a task, run it to its next yield, append it again);
here each task is a spindle::asyncio coroutine, the yield is
`co_await asyncio::sleep(0s)` (Python's `await asyncio.sleep(0)`), and the
event loop's ready queue is the deque. The output order is the slides':
5 10 15 4 9 14 3 8 13 ...

Options:
  --countdown N    a countdown_task(N): prints N, N-1, ..., 1 (repeatable)
  --countup N      a countup_task(N): prints 0, 1, ..., N-1 (repeatable)
                   (tasks start in the order given; with none, the slides'
                   countdown_task(5), countdown_task(10), countdown_task(15))
  --label          prefix each line with the task's name
  --help           show this help and exit
)";

struct Spec {
  bool up = false;
  long n = 0;
};

struct Options {
  std::vector<Spec> tasks;
  bool label = false;
};

// The line a task prints: the number, after the task's name with --label.
void say(bool label, long n) {
  if (label)
    std::printf("%s: %ld\n", asyncio::current_task().get_name().c_str(), n);
  else
    std::printf("%ld\n", n);
}

// The slides' countdown_task: `while n > 0: print n; yield; n -= 1`.
asyncio::Coroutine<void> countdown_task(long n, bool label) {
  while (n > 0) {
    say(label, n);
    co_await asyncio::sleep(0s);  // yield: back of the ready queue
    n -= 1;
  }
}

// Its mirror image, counting up from 0 to n - 1.
asyncio::Coroutine<void> countup_task(long n, bool label) {
  for (long x = 0; x < n; ++x) {
    say(label, x);
    co_await asyncio::sleep(0s);
  }
}

// The slides' `scheduler(tasks)`: here the loop schedules, and main only
// creates the tasks (in order: each starts at the loop's next pass) and
// waits for every one of them.
asyncio::Coroutine<void> main_(const Options& o) {
  std::vector<asyncio::Task<void>> tasks;
  for (const Spec& s : o.tasks) {
    const std::string name =
        std::string(s.up ? "countup_task(" : "countdown_task(") + std::to_string(s.n) + ")";
    tasks.push_back(asyncio::create_task(s.up ? countup_task(s.n, o.label)
                                              : countdown_task(s.n, o.label),
                                         {.name = name}));
  }
  for (auto& t : tasks) co_await t;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "scheduler", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto v = args.value("--countdown"))
        o.tasks.push_back({false, cli::parse_int(args.name(), *v, 0, 1'000'000)});
      else if (auto u = args.value("--countup"))
        o.tasks.push_back({true, cli::parse_int(args.name(), *u, 0, 1'000'000)});
      else if (args.flag("--label"))
        o.label = true;
      else
        args.unknown();
    }
    if (o.tasks.empty()) o.tasks = {{false, 5}, {false, 10}, {false, 15}};
    asyncio::run(main_(o));
    std::fflush(stdout);
    return 0;
  });
}
