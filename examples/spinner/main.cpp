// SPDX-License-Identifier: MIT
// examples/spinner/main.cpp - Fluent Python ch. 19's spinner_thread.py and
// spinner_async.py: a thread (stopped by a spindle::Event) or an asyncio task
// (stopped by cancelling it) animates \|/- while something slow runs.
#include <spindle/asyncio.hpp>
#include <spindle/event.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>

#include "../primes/primes.hpp"
#include "cli.hpp"

namespace {

constexpr const char* usage_text = R"(Usage: spinner [options]

Fluent Python ch. 19, spinner_thread.py: a spinner thread animates \|/- and a
message on one terminal line while the main thread blocks in slow(); then the
main thread sets a spindle::Event, the spinner wakes from done.wait(0.1 s)
(the book's `done.wait(.1)`: the timeout is the frame rate), clears its line
and exits, and the answer is printed. When stdout is not a terminal the
spinner prints one plain line instead of animating, and the program reports
how many frames it went through.

--mode async is spinner_async.py: spin() and slow() are coroutines on one
event loop (spindle::asyncio::run), the spinner is a task that awaits
asyncio::sleep(0.1 s) between frames, and supervisor() cancels it when slow()
returns; the spinner catches CancelledError, clears its line and ends. With
--prime, slow() computes without awaiting: it blocks the event loop, so the
spinner task never runs at all (a blocking call in a coroutine stalls every
task on its loop).

Options:
  --mode MODE      thread (spinner_thread.py; the default) or async
                   (spinner_async.py)
  --seconds S      how long slow() sleeps (default 3, the book's time.sleep(3))
  --prime N        make slow() check N for primality instead of sleeping, as
                   the book's CPU-bound variant (e.g. 5000111000222021)
  --message TEXT   the spinner's message (default "thinking!")
  --animate WHEN   auto (only on a terminal; the default), always, never
  --help           show this help and exit
)";

enum class Animate { auto_, always, never };

namespace asyncio = spindle::asyncio;

struct Options {
  bool async = false;  // --mode async
  double seconds = 3.0;
  std::uint64_t prime = 0;  // 0: sleep instead
  std::string message = "thinking!";
  Animate animate = Animate::auto_;
};

// The book's spin(): draw a frame, then wait up to 0.1 s for `done`; a set
// event ends the loop at once instead of after a full sleep.
long spin(const std::string& msg, const spindle::Event& done, bool animate) {
  using namespace std::chrono_literals;
  static constexpr char chars[] = {'\\', '|', '/', '-'};
  long frames = 0;
  std::string status;
  for (std::size_t i = 0;; i = (i + 1) % 4) {
    status = std::string(1, chars[i]) + ' ' + msg;
    if (animate) {
      std::printf("\r%s", status.c_str());  // the carriage-return trick
      std::fflush(stdout);
    } else if (frames == 0) {
      std::printf("%s\n", status.c_str());
      std::fflush(stdout);
    }
    ++frames;
    if (done.wait(100ms)) break;
  }
  if (animate) {
    const std::string blanks(status.size(), ' ');
    std::printf("\r%s\r", blanks.c_str());  // clear the status line
    std::fflush(stdout);
  }
  return frames;
}

// The book's slow(): blocks the main thread (sleeping, or computing).
std::string slow(const Options& o) {
  if (o.prime != 0) return examples::primes::is_prime(o.prime) ? "True" : "False";
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  return "42";
}

// spinner_async.py's spin(): the same frames, but the pause between them is
// `co_await asyncio::sleep(0.1 s)`, and the way out is the CancelledError
// that supervisor()'s `spinner.cancel()` throws in at that await.
asyncio::Coroutine<void> spin_async(std::string msg, bool animate, long& frames) {
  using namespace std::chrono_literals;
  static constexpr char chars[] = {'\\', '|', '/', '-'};
  std::string status;
  for (std::size_t i = 0;; i = (i + 1) % 4) {
    status = std::string(1, chars[i]) + ' ' + msg;
    if (animate) {
      std::printf("\r%s", status.c_str());
      std::fflush(stdout);
    } else if (frames == 0) {
      std::printf("%s\n", status.c_str());
      std::fflush(stdout);
    }
    ++frames;
    try {
      co_await asyncio::sleep(100ms);  // a non-blocking pause: the loop runs slow()
    } catch (const asyncio::CancelledError&) {
      break;
    }
  }
  if (animate) {
    const std::string blanks(status.size(), ' ');
    std::printf("\r%s\r", blanks.c_str());
    std::fflush(stdout);
  }
}

// spinner_async.py's slow(): `await asyncio.sleep(3)`, which lets the loop
// run the spinner meanwhile. --prime computes instead and never awaits, so
// the loop (and the spinner task) waits until it is done.
asyncio::Coroutine<std::string> slow_async(const Options& o) {
  if (o.prime != 0) co_return examples::primes::is_prime(o.prime) ? "True" : "False";
  co_await asyncio::sleep(std::chrono::duration<double>(o.seconds));
  co_return "42";
}

// Python's Task repr, minus the source position: <Task pending name='Task-2'
// coro=<spin("thinking!")>>.
std::string describe(const asyncio::TaskBase& task, const std::string& msg) {
  const char* state = !task.done() ? "pending" : task.cancelled() ? "cancelled" : "finished";
  return std::string("<Task ") + state + " name='" + task.get_name() + "' coro=<spin(\"" + msg +
         "\")>>";
}

struct AsyncRun {
  long frames = 0;
  double took = 0;
};

// spinner_async.py's supervisor(): start the spinner task, await slow(),
// cancel the spinner and return (asyncio::run then lets the cancelled
// spinner finish, as Python's asyncio.run does, before it returns).
asyncio::Coroutine<std::string> supervisor(const Options& o, bool animate, AsyncRun& stats) {
  asyncio::Task<void> spinner = asyncio::create_task(spin_async(o.message, animate, stats.frames));
  std::printf("spinner object: %s\n", describe(spinner, o.message).c_str());
  std::fflush(stdout);
  const auto t0 = std::chrono::steady_clock::now();
  std::string result = co_await slow_async(o);
  stats.took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spinner.cancel();
  co_return result;
}

int run_async(const Options& o, bool animate) {
  AsyncRun stats;
  const std::string result = asyncio::run(supervisor(o, animate, stats));
  std::printf("Answer: %s\n", result.c_str());
  if (!animate) {
    std::printf("(the spinner task went through %ld frames while slow() took %.2f s)\n",
                stats.frames, stats.took);
    if (stats.frames == 0)
      std::printf("(slow() never awaited: it blocked the event loop, so the spinner task never "
                  "ran)\n");
  }
  return 0;
}

int run(const Options& o) {
  const bool animate =
      o.animate == Animate::always || (o.animate == Animate::auto_ && ::isatty(STDOUT_FILENO));
  if (o.async) return run_async(o, animate);
  // supervisor(): start the spinner, run slow(), signal, join.
  spindle::Event done;
  long frames = 0;
  // As the book, describe the spinner before it starts (a std::thread starts
  // when constructed), so its first frame comes after this line.
  std::printf("spinner object: <std::thread spin(\"%s\"), initial>\n", o.message.c_str());
  std::fflush(stdout);
  std::thread spinner([&] { frames = spin(o.message, done, animate); });
  const auto t0 = std::chrono::steady_clock::now();
  const std::string result = slow(o);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  done.set();
  spinner.join();  // after join, `frames` is the spinner's final count
  std::printf("Answer: %s\n", result.c_str());
  if (!animate)
    std::printf("(the spinner thread went through %ld frames while slow() took %.2f s)\n",
                frames, took);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "spinner", usage_text, [&](cli::Args& args) {
    Options o;
    while (args.next()) {
      if (auto mode = args.value("--mode")) {
        if (*mode == "thread") o.async = false;
        else if (*mode == "async") o.async = true;
        else
          throw cli::UsageError("--mode expects thread or async, got '" + std::string(*mode) + "'");
      } else if (auto v = args.value("--seconds")) {
        o.seconds = cli::parse_double(args.name(), *v, 0, 3600);
      } else if (auto p = args.value("--prime")) {
        o.prime = static_cast<std::uint64_t>(
            cli::parse_int(args.name(), *p, 1, 9'223'372'036'854'775'807));
      } else if (auto m = args.value("--message")) {
        o.message = std::string(*m);
      } else if (auto a = args.value("--animate")) {
        if (*a == "auto") o.animate = Animate::auto_;
        else if (*a == "always") o.animate = Animate::always;
        else if (*a == "never") o.animate = Animate::never;
        else
          throw cli::UsageError("--animate expects auto, always or never, got '" +
                                std::string(*a) + "'");
      } else {
        args.unknown();
      }
    }
    return run(o);
  });
}
