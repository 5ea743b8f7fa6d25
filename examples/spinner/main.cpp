// SPDX-License-Identifier: MIT
// examples/spinner/main.cpp - Fluent Python ch. 19's spinner_thread.py: a
// thread animates \|/- while the main thread runs something slow, and a
// spindle::Event tells the spinner to stop.
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

Options:
  --seconds S      how long slow() sleeps (default 3, the book's time.sleep(3))
  --prime N        make slow() check N for primality instead of sleeping, as
                   the book's CPU-bound variant (e.g. 5000111000222021)
  --message TEXT   the spinner's message (default "thinking!")
  --animate WHEN   auto (only on a terminal; the default), always, never
  --help           show this help and exit
)";

enum class Animate { auto_, always, never };

struct Options {
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

int run(const Options& o) {
  const bool animate =
      o.animate == Animate::always || (o.animate == Animate::auto_ && ::isatty(STDOUT_FILENO));
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
      if (auto v = args.value("--seconds")) {
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
