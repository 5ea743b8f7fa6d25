// SPDX-License-Identifier: MIT
// examples/pipeline/main.cpp - Effective Python Item 55: a download -> resize ->
// upload pipeline on blocking ClosableQueues, beside the book's busy-polling
// MyQueue, with the CPU time each one burns.
#include <spindle/pipeline.hpp>
#include <spindle/queue.hpp>

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "timing.hpp"

namespace {

// ---------------------------------------------------------------------------
// Options.

struct Options {
  long items = 1000;
  std::array<std::size_t, 3> workers{3, 4, 5};
  std::array<double, 3> work_ms{1.0, 1.0, 1.0};  // download, resize, upload
  std::size_t queue_bound = 0;                    // 0: unbounded, as in the book
  double poll_ms = 10.0;                          // the book's time.sleep(0.01)
  bool polling = true;
  bool until_signal = false;
};

constexpr const char* usage_text = R"(Usage: pipeline [options]

Effective Python Item 55: a three-stage pipeline (download -> resize ->
upload, each simulated by sleeping) run twice: on spindle::Pipeline with
blocking ClosableQueues, then on the book's busy-polling MyQueue workers.
Prints the items finished, the polls wasted, and the CPU time of each.

Options:
  --items N          items to push through the pipeline (default 1000)
  --workers A,B,C    workers for download, resize, upload (default 3,4,5);
                     a single number gives every stage that many
  --download-ms MS   simulated work per item in each stage, in milliseconds
  --resize-ms MS     (decimals allowed; default 1 each)
  --upload-ms MS
  --queue-bound N    bound of the blocking pipeline's queues; 0 = unbounded
                     (default 0, as in the book)
  --poll-ms MS       how long a polling worker sleeps when its queue is
                     empty (default 10, the book's time.sleep(0.01));
                     0 spins without sleeping
  --no-polling       run only the blocking pipeline
  --until-signal     feed the blocking pipeline without end until SIGINT
                     (Ctrl-C): the handler calls Pipeline::request_stop(),
                     the only async-signal-safe member; prints the items
                     finished and exits 0 (queues bounded at 64 unless
                     --queue-bound says otherwise)
  --help             show this help and exit
)";

// A command-line mistake: reported with the usage hint, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

long parse_count(std::string_view option, std::string_view text, long min, long max) {
  long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw UsageError(std::string(option) + " expects a whole number, got '" + std::string(text) +
                     "'");
  if (value < min || value > max)
    throw UsageError(std::string(option) + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + ", got " + std::to_string(value));
  return value;
}

double parse_ms(std::string_view option, std::string_view text) {
  const std::string s(text);
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(value))
    throw UsageError(std::string(option) + " expects milliseconds (e.g. 2 or 0.5), got '" + s +
                     "'");
  if (value < 0 || value > 60000)
    throw UsageError(std::string(option) + " must be between 0 and 60000 ms, got " + s);
  return value;
}

std::array<std::size_t, 3> parse_workers(std::string_view text) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto comma = text.find(',', start);
    parts.push_back(text.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (parts.size() != 1 && parts.size() != 3)
    throw UsageError("--workers expects one number or three separated by commas (e.g. 3,4,5), "
                     "got '" + std::string(text) + "'");
  std::array<std::size_t, 3> workers{};
  for (std::size_t i = 0; i < 3; ++i)
    workers[i] = static_cast<std::size_t>(
        parse_count("--workers", parts[parts.size() == 1 ? 0 : i], 1, 256));
  return workers;
}

// Returns the options, or std::nullopt if --help was given.
std::optional<Options> parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::nullopt;
    if (arg == "--no-polling") {
      options.polling = false;
      continue;
    }
    if (arg == "--until-signal") {
      options.until_signal = true;
      continue;
    }
    // Both "--name value" and "--name=value".
    std::string_view name = arg, value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    static constexpr std::string_view valued[] = {"--items",     "--workers",     "--download-ms",
                                                  "--resize-ms", "--upload-ms",   "--queue-bound",
                                                  "--poll-ms"};
    bool known = false;
    for (auto v : valued) known = known || name == v;
    if (!known) throw UsageError("unknown option '" + std::string(arg) + "'");
    if (!has_value) {
      if (i + 1 >= argc) throw UsageError(std::string(name) + " needs a value");
      value = argv[++i];
    }
    if (name == "--items")
      options.items = parse_count(name, value, 0, 100'000'000);
    else if (name == "--workers")
      options.workers = parse_workers(value);
    else if (name == "--download-ms")
      options.work_ms[0] = parse_ms(name, value);
    else if (name == "--resize-ms")
      options.work_ms[1] = parse_ms(name, value);
    else if (name == "--upload-ms")
      options.work_ms[2] = parse_ms(name, value);
    else if (name == "--queue-bound")
      options.queue_bound = static_cast<std::size_t>(parse_count(name, value, 0, 1'000'000'000));
    else
      options.poll_ms = parse_ms(name, value);
  }
  return options;
}

// ---------------------------------------------------------------------------
// The work: three phases, each simulated by sleeping (blocking I/O, the kind
// of work Item 55 says threads are good for).

struct Photo {
  long id = 0;
  int phases_done = 0;
};

void simulate(double ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

// Process CPU time (all threads) and wall time, to compare the two versions.
struct Clocks {
  double cpu0 = timing::cpu_seconds();
  timing::Clock::time_point wall0 = timing::Clock::now();
  double cpu() const { return timing::cpu_seconds() - cpu0; }
  double wall() const { return timing::seconds_since(wall0); }
};

struct Result {
  std::size_t finished = 0;
  long polled = 0;
  double wall = 0;
  double cpu = 0;
};

// ---------------------------------------------------------------------------
// The book's final version, with spindle: ClosableQueue + Pipeline.

// The largest value offered: the deepest backlog a stage's workers saw.
struct Peak {
  std::atomic<std::size_t> value{0};
  void offer(std::size_t v) {
    std::size_t cur = value.load(std::memory_order_relaxed);
    while (v > cur && !value.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
  }
};

Result run_blocking(const Options& o, std::array<std::size_t, 3>& peaks) {
  Clocks clocks;
  spindle::ClosableQueue<Photo> download_q(o.queue_bound), resize_q(o.queue_bound),
      upload_q(o.queue_bound), done_q;
  std::array<Peak, 3> peak;
  // A phase: note how many items wait in its input queue, then do the work.
  auto phase = [](double ms, const spindle::ClosableQueue<Photo>& in, Peak& seen) {
    return [ms, &in, &seen](Photo p) {
      seen.offer(in.qsize());
      simulate(ms);
      ++p.phases_done;
      return p;
    };
  };
  auto download = phase(o.work_ms[0], download_q, peak[0]);
  auto resize = phase(o.work_ms[1], resize_q, peak[1]);
  auto upload = phase(o.work_ms[2], upload_q, peak[2]);

  // Item 55's start_threads / stop_threads, as a library:
  spindle::Pipeline pipeline;
  pipeline.stage(download_q, resize_q, o.workers[0], download)
      .stage(resize_q, upload_q, o.workers[1], resize)
      .stage(upload_q, done_q, o.workers[2], upload);
  for (long i = 0; i < o.items; ++i) download_q.put(Photo{i});
  download_q.close();  // no more input: the stages finish in order
  pipeline.join();     // rethrows an exception from any stage

  Result r;
  r.finished = done_q.qsize();
  for (const Photo& p : done_q)
    if (p.phases_done != 3) throw std::logic_error("a photo skipped a phase");
  r.wall = clocks.wall();
  r.cpu = clocks.cpu();
  for (std::size_t i = 0; i < 3; ++i) peaks[i] = peak[i].value.load();
  return r;
}

std::string workers_text(const Options& o) {
  return std::to_string(o.workers[0]) + "/" + std::to_string(o.workers[1]) + "/" +
         std::to_string(o.workers[2]);
}

// ---------------------------------------------------------------------------
// --until-signal: an endless producer, stopped by Ctrl-C. A signal handler
// may only make async-signal-safe calls: Pipeline::request_stop() is one (an
// atomic flag and a futex wake); stop(), join(), put() and printf are not.

std::atomic<spindle::Pipeline*> sigint_pipeline{nullptr};

extern "C" void on_sigint(int) {
  if (spindle::Pipeline* p = sigint_pipeline.load()) p->request_stop();
}

int run_until_signal(const Options& o) {
  const std::size_t bound = o.queue_bound == 0 ? 64 : o.queue_bound;
  spindle::ClosableQueue<Photo> download_q(bound), resize_q(bound), upload_q(bound), done_q;
  auto phase = [](double ms) {
    return [ms](Photo p) {
      simulate(ms);
      ++p.phases_done;
      return p;
    };
  };
  spindle::Pipeline pipeline;
  pipeline.stage(download_q, resize_q, o.workers[0], phase(o.work_ms[0]))
      .stage(resize_q, upload_q, o.workers[1], phase(o.work_ms[1]))
      .stage(upload_q, done_q, o.workers[2], phase(o.work_ms[2]));

  sigint_pipeline.store(&pipeline);
  struct sigaction sa {}, old {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGINT, &sa, &old) != 0)
    throw std::system_error(errno, std::generic_category(), "sigaction");

  // The producer puts until stop() closes download_q (backpressure keeps
  // the queues at their bound meanwhile).
  long produced = 0;
  std::thread producer([&] {
    try {
      for (;; ++produced) download_q.put(Photo{produced});
    } catch (const spindle::QueueClosed&) {
    }
  });
  std::printf("Running until SIGINT (Ctrl-C): %s workers, queues bounded at %zu\n",
              workers_text(o).c_str(), bound);
  std::fflush(stdout);
  pipeline.join();  // returns once the handler's request has stopped every stage
  producer.join();
  sigaction(SIGINT, &old, nullptr);
  sigint_pipeline.store(nullptr);

  std::size_t finished = 0;
  for (const Photo& p : done_q) {
    if (p.phases_done != 3) throw std::logic_error("a photo skipped a phase");
    ++finished;
  }
  std::printf("Stopped by SIGINT: %zu items finished, %ld put, the rest dropped\n", finished,
              produced);
  return 0;
}

// ---------------------------------------------------------------------------
// The book's first version: a deque behind a lock, and workers that poll it.

// Item 55's MyQueue: get() on an empty queue raises (IndexError in Python).
template <class T>
class MyQueue {
public:
  void put(T item) {
    std::lock_guard lock(m_);
    items_.push_back(std::move(item));
  }
  T get() {
    std::lock_guard lock(m_);
    if (items_.empty()) throw std::out_of_range("pop from an empty deque");
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  std::size_t size() const {
    std::lock_guard lock(m_);
    return items_.size();
  }

private:
  mutable std::mutex m_;
  std::deque<T> items_;  // guarded by m_
};

// Item 55's polling Worker. The book's run() loops forever; `stop` lets the
// program end (one of the problems the book lists: no way to tell it to exit).
class PollingWorker {
public:
  PollingWorker(std::function<Photo(Photo)> func, MyQueue<Photo>& in, MyQueue<Photo>& out,
                double poll_ms, const std::atomic<bool>& stop)
      : func_(std::move(func)), in_(in), out_(out), poll_ms_(poll_ms), stop_(stop) {}

  void start() { thread_ = std::thread([this] { run(); }); }
  void join() { thread_.join(); }
  long polled_count() const { return polled_count_; }
  long work_done() const { return work_done_; }

private:
  void run() {
    while (!stop_.load(std::memory_order_relaxed)) {
      ++polled_count_;
      Photo item;
      try {
        item = in_.get();
      } catch (const std::out_of_range&) {
        simulate(poll_ms_);  // No work to do
        continue;
      }
      out_.put(func_(std::move(item)));
      ++work_done_;
    }
  }

  std::function<Photo(Photo)> func_;
  MyQueue<Photo>& in_;
  MyQueue<Photo>& out_;
  double poll_ms_;
  const std::atomic<bool>& stop_;
  long polled_count_ = 0;  // read only after join()
  long work_done_ = 0;     // read only after join()
  std::thread thread_;
};

Result run_polling(const Options& o) {
  Clocks clocks;
  auto phase = [](double ms) {
    return [ms](Photo p) { simulate(ms); ++p.phases_done; return p; };
  };
  MyQueue<Photo> download_queue, resize_queue, upload_queue, done_queue;
  std::atomic<bool> stop{false};
  std::vector<std::unique_ptr<PollingWorker>> threads;
  const std::array<std::function<Photo(Photo)>, 3> funcs{phase(o.work_ms[0]),
                                                         phase(o.work_ms[1]),
                                                         phase(o.work_ms[2])};
  MyQueue<Photo>* queues[] = {&download_queue, &resize_queue, &upload_queue, &done_queue};
  for (std::size_t s = 0; s < 3; ++s)
    for (std::size_t w = 0; w < o.workers[s]; ++w)
      threads.push_back(std::make_unique<PollingWorker>(funcs[s], *queues[s], *queues[s + 1],
                                                        o.poll_ms, stop));
  for (auto& t : threads) t->start();
  for (long i = 0; i < o.items; ++i) download_queue.put(Photo{i});
  // The book's busy wait for the last phase ("Do something useful while
  // waiting"): poll done_queue at the workers' interval.
  while (done_queue.size() < static_cast<std::size_t>(o.items)) simulate(o.poll_ms);
  stop.store(true);
  Result r;
  long work_done = 0;
  for (auto& t : threads) {
    t->join();
    r.polled += t->polled_count();
    work_done += t->work_done();
  }
  r.finished = done_queue.size();
  if (work_done != 3 * o.items) throw std::logic_error("the polling workers lost work");
  r.wall = clocks.wall();
  r.cpu = clocks.cpu();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> parsed;
  try {
    parsed = parse_options(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "pipeline: " << e.what() << "\nTry 'pipeline --help' for the options.\n";
    return 2;
  }
  if (!parsed) {
    std::cout << usage_text;
    return 0;
  }
  const Options& o = *parsed;
  try {
    if (o.until_signal) return run_until_signal(o);
    const std::string queues = o.queue_bound == 0
                                   ? std::string("unbounded queues")
                                   : "queues bounded at " + std::to_string(o.queue_bound);
    std::printf("Blocking pipeline: spindle::Pipeline over ClosableQueue, %s workers, %s, "
                "%g/%g/%g ms per item\n",
                workers_text(o).c_str(), queues.c_str(), o.work_ms[0], o.work_ms[1],
                o.work_ms[2]);
    std::fflush(stdout);
    std::array<std::size_t, 3> peaks{};
    const Result blocking = run_blocking(o, peaks);
    std::printf("%zu items finished\n", blocking.finished);
    std::printf("  wall %.3f s, CPU %.3f s\n", blocking.wall, blocking.cpu);
    std::printf("  deepest backlog a worker saw: download_q %zu, resize_q %zu, upload_q %zu\n",
                peaks[0], peaks[1], peaks[2]);
    if (!o.polling) return 0;

    std::printf("\nBusy polling: the book's MyQueue + polling Worker, %s workers, sleeping %g ms "
                "per empty poll\n",
                workers_text(o).c_str(), o.poll_ms);
    std::fflush(stdout);
    const Result polling = run_polling(o);
    std::printf("Processed %zu items after polling %ld times\n", polling.finished, polling.polled);
    std::printf("  wall %.3f s, CPU %.3f s\n", polling.wall, polling.cpu);
    if (blocking.cpu > 0)
      std::printf("\nBusy polling used %.1fx the CPU time of the blocking pipeline.\n",
                  polling.cpu / blocking.cpu);
  } catch (const std::exception& e) {
    std::cerr << "pipeline: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
