// SPDX-License-Identifier: MIT
// tests/subprocess_test.cpp - run, Popen, communicate, pipelines, timeouts, signals.
#include <spindle/subprocess.hpp>

#include <spindle/executor.hpp>

#include <catch2/catch.hpp>

#include "support/sanitizers.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SPINDLE_TEST_CHILD
#error "SPINDLE_TEST_CHILD (path of tests/children/spindle_child) must be defined by CMake"
#endif

using namespace std::chrono_literals;
namespace sp = spindle::subprocess;

namespace {

const std::string child = SPINDLE_TEST_CHILD;

using spindle_test::sanitized;

/// Bytes that are not all alike, so a reordering or a lost chunk shows.
std::string pattern(std::size_t n, unsigned seed = 1) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

/// True if this process has no child at all, running or zombie: waits for
/// the background reaper to finish first.
bool no_children_left() {
  if (!spindle::detail::subproc::Reaper::instance().wait_idle(20s)) return false;
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD;
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string p = path;
  std::size_t start = 0;
  while (start <= p.size()) {
    const auto end = std::min(p.find(':', start), p.size());
    const std::string candidate = p.substr(start, end - start) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------
// Effective Python, Item 52, as tests.

TEST_CASE("echo's output is captured by communicate, as in Effective Python", "[subprocess]") {
  sp::Popen proc({"echo", "Hello from the child!"}, {.out = sp::PIPE});
  auto [out, err] = proc.communicate();
  REQUIRE(out == "Hello from the child!\n");
  REQUIRE(err.empty());
  REQUIRE(proc.returncode() == 0);
}

TEST_CASE("run captures output and returns a CompletedProcess", "[subprocess]") {
  const auto r = sp::run({child, "args", "one", "two words"}, {.capture_output = true});
  REQUIRE(r.returncode == 0);
  REQUIRE(r.out == "one\ntwo words\n");
  REQUIRE(r.err.empty());
  REQUIRE(r.args == std::vector<std::string>{child, "args", "one", "two words"});
  REQUIRE_NOTHROW(r.check_returncode());
}

TEST_CASE("a sleeping child is polled with poll() while the parent works", "[subprocess][timing]") {
  const auto t0 = std::chrono::steady_clock::now();
  sp::Popen proc({"sleep", "0.3"});
  int working = 0;
  while (!proc.poll()) {
    ++working;
    std::this_thread::sleep_for(10ms);  // "some time-consuming work here"
  }
  REQUIRE(seconds_since(t0) >= 0.3);
  REQUIRE(working >= 5);
  REQUIRE(proc.poll() == 0);
  REQUIRE(proc.returncode() == 0);
}

TEST_CASE("ten children of sleep 0.1 run in parallel and finish in about 0.1 s",
          "[subprocess][timing]") {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<sp::Popen> procs;
  for (int i = 0; i < 10; ++i) procs.emplace_back(std::vector<std::string>{"sleep", "0.1"});
  for (auto& p : procs) p.communicate();
  const double elapsed = seconds_since(t0);
  for (auto& p : procs) REQUIRE(p.returncode() == 0);
  REQUIRE(elapsed >= 0.1);
  REQUIRE(elapsed < 0.6);  // in sequence it would be 1 s
}

TEST_CASE("three encrypt-then-hash pipelines run like UNIX pipes", "[subprocess]") {
  const bool openssl = on_path("openssl");
  // openssl with a fixed salt is deterministic, so the pipeline's digest can
  // be checked against the same two steps run one after the other.
  const std::vector<std::string> enc =
      openssl ? std::vector<std::string>{"openssl", "enc", "-des3", "-pass", "env:password", "-S",
                                         "0102030405060708"}
              : std::vector<std::string>{child, "xor", "secret-key"};
  const std::vector<std::string> hash =
      openssl ? std::vector<std::string>{"openssl", "dgst", "-md5"}
              : std::vector<std::string>{child, "fnv"};
  const sp::Environment password{{"password", "\xe2" "4U\n\xd0Ql3S\x11"}};

  std::vector<std::string> inputs;
  std::vector<sp::Popen> input_procs;
  std::vector<sp::Popen> hash_procs;
  for (unsigned i = 0; i < 3; ++i) {
    inputs.push_back(pattern(1000 + i, i + 7));
    sp::Popen& p = input_procs.emplace_back(
        enc, sp::PopenOptions{.in = sp::PIPE, .out = sp::PIPE, .err = sp::DEVNULL,
                              .extra_env = password});
    p.in().write(inputs.back());
    p.in().flush();
    hash_procs.emplace_back(hash, sp::PopenOptions{.in = p.out(), .out = sp::PIPE});
    REQUIRE_FALSE(p.out().is_open());  // the parent's copy of the connecting pipe is closed
  }
  for (auto& p : input_procs) p.communicate();
  std::vector<std::string> digests;
  for (auto& p : hash_procs) digests.push_back(p.communicate().out);

  for (unsigned i = 0; i < 3; ++i) {
    REQUIRE(input_procs[i].returncode() == 0);
    REQUIRE(hash_procs[i].returncode() == 0);
    const auto cipher =
        sp::run(enc, {.capture_output = true, .input = inputs[i], .check = true, .extra_env = password});
    REQUIRE(cipher.out != inputs[i]);
    const auto expected = sp::run(hash, {.capture_output = true, .input = cipher.out, .check = true});
    REQUIRE(digests[i] == expected.out);
    REQUIRE(digests[i].size() >= 17);
  }
  REQUIRE(digests[0] != digests[1]);
  REQUIRE(no_children_left());
}

TEST_CASE("communicate with a timeout on sleep 10, then terminate and wait gives -15",
          "[subprocess][timing]") {
  sp::Popen proc({"sleep", "10"});
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_AS(proc.communicate(0.1s), sp::TimeoutExpired);
  REQUIRE(seconds_since(t0) >= 0.1);
  proc.terminate();
  REQUIRE(proc.wait() == -15);
  REQUIRE(proc.poll() == -15);
  REQUIRE(seconds_since(t0) < 5.0);
}

// ---------------------------------------------------------------------------
// Gate 1: no deadlock, however much data flows.

TEST_CASE("communicate moves 10 MB in and 10 MB out through a child without deadlock",
          "[subprocess][stress]") {
  const std::string data = pattern(10'000'000);
  sp::Popen proc({child, "cat"}, {.in = sp::PIPE, .out = sp::PIPE});
  auto [out, err] = proc.communicate(data);
  REQUIRE(out.size() == data.size());
  REQUIRE(out == data);
  REQUIRE(proc.returncode() == 0);
}

TEST_CASE("communicate streams far more than the pipe buffers in three directions at once",
          "[subprocess][stress]") {
  const std::string data = pattern(10'000'000, 3);
  SECTION("without a timeout") {
    sp::Popen proc({child, "tee2"}, {.in = sp::PIPE, .out = sp::PIPE, .err = sp::PIPE});
    auto [out, err] = proc.communicate(data);
    REQUIRE(out == data);
    REQUIRE(err == data);
  }
  SECTION("with a timeout (the poll loop)") {
    sp::Popen proc({child, "tee2"}, {.in = sp::PIPE, .out = sp::PIPE, .err = sp::PIPE});
    auto [out, err] = proc.communicate(data, 120s);
    REQUIRE(out == data);
    REQUIRE(err == data);
  }
  SECTION("small input below the writer-thread threshold") {
    const std::string small = pattern(100'000, 4);
    sp::Popen proc({child, "tee2"}, {.in = sp::PIPE, .out = sp::PIPE, .err = sp::PIPE});
    auto [out, err] = proc.communicate(small);
    REQUIRE(out == small);
    REQUIRE(err == small);
  }
  SECTION("a child that writes 10 MB to each of stdout and stderr without reading") {
    sp::Popen proc({child, "produce", "10000000", "both"},
                   {.in = sp::PIPE, .out = sp::PIPE, .err = sp::PIPE});
    auto [out, err] = proc.communicate();
    REQUIRE(out.size() == 10'000'000);
    REQUIRE(err == out);
  }
  REQUIRE(no_children_left());
}

TEST_CASE("pipe ends can be written and read by the caller while the child streams",
          "[subprocess][stress]") {
  const std::string data = pattern(5'000'000, 5);
  sp::Popen proc({child, "cat"}, {.in = sp::PIPE, .out = sp::PIPE});
  std::error_code write_error;
  std::thread writer([&] {
    proc.in().write(data, write_error);
    proc.in().close();
  });
  std::string got = proc.out().read();
  writer.join();
  REQUIRE_FALSE(write_error);
  REQUIRE(got == data);
  REQUIRE(proc.wait() == 0);
}

TEST_CASE("readline reads a child's output line by line", "[subprocess]") {
  sp::Popen proc({child, "args", "alpha", "beta", "gamma"}, {.out = sp::PIPE});
  std::vector<std::string> lines;
  while (auto line = proc.out().readline()) lines.push_back(*line);
  REQUIRE(lines == std::vector<std::string>{"alpha\n", "beta\n", "gamma\n"});
  REQUIRE(proc.wait() == 0);
}

// ---------------------------------------------------------------------------
// Gate 2: spawn failures are exceptions in the parent.

TEST_CASE("a missing program throws SpawnError with ENOENT and the program name",
          "[subprocess]") {
  for (const std::string program : {"/nonexistent/spindle-no-such-program",
                                    "spindle-no-such-program-on-path"}) {
    try {
      sp::Popen proc({program, "x"});
      FAIL("no exception for " << program);
    } catch (const sp::SpawnError& e) {
      REQUIRE(e.errno_value() == ENOENT);
      REQUIRE(e.code() == std::errc::no_such_file_or_directory);
      REQUIRE(e.program() == program);
      REQUIRE(std::string(e.what()).find(program) != std::string::npos);
    }
  }
  REQUIRE_THROWS_AS(sp::run({"spindle-no-such-program-on-path"}), sp::SubprocessError);
  REQUIRE(no_children_left());
}

TEST_CASE("a program that is not executable throws SpawnError with EACCES", "[subprocess]") {
  char path[] = "/tmp/spindle-not-executable-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "#!/bin/sh\nexit 0\n", 17) == 17);
  ::close(fd);
  REQUIRE(::chmod(path, 0644) == 0);
  try {
    sp::run({path});
    ::unlink(path);
    FAIL("no exception");
  } catch (const sp::SpawnError& e) {
    ::unlink(path);
    REQUIRE(e.errno_value() == EACCES);
    REQUIRE(e.program() == path);
  }
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// Gate 3: the child gets no descriptor it was not given.

TEST_CASE("a child sees only descriptors 0, 1 and 2, even ones not marked close-on-exec",
          "[subprocess]") {
  const int leaky = ::open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
  REQUIRE(leaky >= 3);
  const auto r = sp::run({child, "fds"}, {.capture_output = true, .input = "x"});
  ::close(leaky);
  REQUIRE(r.out == "0 1 2\n");
}

TEST_CASE("children spawned by 8 threads at once see only their own 0, 1 and 2",
          "[subprocess][stress]") {
  constexpr int threads = 8;
  const int per_thread = sanitized ? 8 : 25;
  std::vector<std::vector<std::string>> seen(threads);
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        try {
          sp::Popen p({child, "fds"}, {.in = sp::PIPE, .out = sp::PIPE, .err = sp::PIPE});
          seen[t].push_back(p.communicate().out);
        } catch (const std::exception& e) {
          seen[t].push_back(e.what());
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  for (const auto& outputs : seen) {
    REQUIRE(outputs.size() == static_cast<std::size_t>(per_thread));
    for (const auto& o : outputs) REQUIRE(o == "0 1 2\n");
  }
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// Gate 4: no zombies after any path.

TEST_CASE("no zombie is left after a normal exit, a timeout, a failure or an exception",
          "[subprocess]") {
  SECTION("normal exit") {
    REQUIRE(sp::run({child, "exit", "0"}).returncode == 0);
  }
  SECTION("run's timeout kills and reaps") {
    REQUIRE_THROWS_AS(sp::run({child, "sleep", "10"}, {.timeout = 50ms}), sp::TimeoutExpired);
  }
  SECTION("check raises after reaping") {
    REQUIRE_THROWS_AS(sp::run({child, "exit", "3"}, {.check = true}), sp::CalledProcessError);
  }
  SECTION("an exception thrown while a Popen runs") {
    REQUIRE_THROWS_AS(
        [] {
          sp::Popen p({child, "wait_eof"}, {.in = sp::PIPE, .out = sp::DEVNULL});
          throw std::runtime_error("user code failed");
        }(),
        std::runtime_error);
  }
  REQUIRE(no_children_left());
}

TEST_CASE("destroying a Popen whose child runs neither kills it nor leaves a zombie",
          "[subprocess]") {
  // The child waits for EOF on stdin and then reports the bytes it read:
  // destruction closes our end, so it ends by itself, not by a signal.
  std::string report_path = "/tmp/spindle-reaper-XXXXXX";
  const int fd = ::mkstemp(report_path.data());
  REQUIRE(fd >= 0);
  pid_t pid = -1;
  {
    sp::Popen p({child, "wait_eof"}, {.in = sp::PIPE, .out = fd});
    pid = p.pid();
    p.in().write("12345");
    REQUIRE_FALSE(p.poll().has_value());
  }  // destroyed while running
  REQUIRE(spindle::detail::subproc::Reaper::instance().wait_idle(20s));
  siginfo_t info{};
  REQUIRE(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) == -1);
  REQUIRE(errno == ECHILD);
  char buf[32] = {};
  REQUIRE(::pread(fd, buf, sizeof buf - 1, 0) > 0);
  ::close(fd);
  ::unlink(report_path.c_str());
  REQUIRE(std::string(buf) == "5\n");  // it ran to completion: not killed
  {
    sp::Popen sleeper({child, "sleep", "0.1"});
  }
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// Gate 5: returncodes as Python reports them.

TEST_CASE("terminate gives -15, kill gives -9 and exit(15) gives 15", "[subprocess]") {
  sp::Popen a({child, "sleep", "10"});
  a.terminate();
  REQUIRE(a.wait() == -15);
  sp::Popen b({child, "sleep", "10"});
  b.kill();
  REQUIRE(b.wait() == -9);
  REQUIRE(b.returncode() == -9);
  b.kill();  // after reaping: a no-op, never a recycled pid
  REQUIRE(sp::run({child, "exit", "15"}).returncode == 15);
  REQUIRE(sp::run({child, "signal", "6"}).returncode == -6);
  try {
    sp::run({child, "exit", "15"}, {.capture_output = true, .check = true});
    FAIL("no CalledProcessError");
  } catch (const sp::CalledProcessError& e) {
    REQUIRE(e.returncode() == 15);
    REQUIRE(e.args().at(1) == "exit");
  }
}

// ---------------------------------------------------------------------------
// Gate 6: timed waits, no SIGCHLD handler, no busy loop, partial output kept.

TEST_CASE("wait with a timeout expires close to the timeout without burning CPU",
          "[subprocess][timing]") {
  struct sigaction before{};
  REQUIRE(::sigaction(SIGCHLD, nullptr, &before) == 0);
  sp::Popen proc({child, "sleep", "10"});
  const double cpu0 = thread_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_AS(proc.wait(300ms), sp::TimeoutExpired);
  const double elapsed = seconds_since(t0);
  const double cpu = thread_cpu_seconds() - cpu0;
  REQUIRE(elapsed >= 0.3);
  REQUIRE(elapsed < 2.0);
  REQUIRE(cpu < 0.05);  // slept in ppoll on a pidfd, did not spin
  struct sigaction after{};
  REQUIRE(::sigaction(SIGCHLD, nullptr, &after) == 0);
  REQUIRE(after.sa_handler == before.sa_handler);
  REQUIRE(after.sa_handler == SIG_DFL);
  REQUIRE_FALSE(proc.poll().has_value());
  proc.kill();
  REQUIRE(proc.wait(10s) == -9);
}

TEST_CASE("communicate's timeout keeps the partial output in the exception and afterwards",
          "[subprocess][timing]") {
  sp::Popen proc({child, "print_sleep", "partial output", "10"},
                 {.in = sp::PIPE, .out = sp::PIPE, .err = sp::PIPE});
  const auto t0 = std::chrono::steady_clock::now();
  try {
    proc.communicate("ignored input", 300ms);
    FAIL("no TimeoutExpired");
  } catch (const sp::TimeoutExpired& e) {
    const double elapsed = seconds_since(t0);
    REQUIRE(elapsed >= 0.3);
    REQUIRE(elapsed < 2.0);
    REQUIRE(e.out() == "partial output");
    REQUIRE(e.err().empty());
    REQUIRE(e.timeout().count() == Approx(0.3));
  }
  proc.kill();
  auto [out, err] = proc.communicate();
  REQUIRE(out == "partial output");
  REQUIRE(proc.returncode() == -9);

  // run() with a timeout: killed, reaped, partial output carried.
  try {
    sp::run({child, "print_sleep", "from run", "10"}, {.capture_output = true, .timeout = 200ms});
    FAIL("no TimeoutExpired");
  } catch (const sp::TimeoutExpired& e) {
    REQUIRE(e.out() == "from run");
  }
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// Gate 7: a child that does not read its input does not kill the parent.

TEST_CASE("the parent survives a child that exits without reading its input",
          "[subprocess]") {
  struct sigaction before{};
  REQUIRE(::sigaction(SIGPIPE, nullptr, &before) == 0);
  REQUIRE(before.sa_handler == SIG_DFL);  // not ignored process-wide
  const std::string data = pattern(10'000'000, 9);
  SECTION("communicate ignores EPIPE") {
    sp::Popen proc({child, "exit", "0"}, {.in = sp::PIPE, .out = sp::PIPE});
    auto [out, err] = proc.communicate(data);
    REQUIRE(out.empty());
    REQUIRE(proc.returncode() == 0);
  }
  SECTION("communicate with a timeout ignores EPIPE") {
    sp::Popen proc({child, "exit", "4"}, {.in = sp::PIPE});
    proc.communicate(data, 30s);
    REQUIRE(proc.returncode() == 4);
  }
  SECTION("a direct write after the child exited throws BrokenPipeError") {
    sp::Popen proc({child, "exit", "0"}, {.in = sp::PIPE});
    REQUIRE(proc.wait() == 0);
    bool caught = false;
    try {
      proc.in().write(data);
    } catch (const spindle::Error& e) {  // the library's root catches it
      caught = true;
      const auto* broken = dynamic_cast<const spindle::BrokenPipeError*>(&e);
      REQUIRE(broken != nullptr);
      REQUIRE(broken->errno_value() == EPIPE);
      REQUIRE(broken->code() == std::errc::broken_pipe);
      REQUIRE_THAT(e.what(), Catch::Matchers::Contains("Broken pipe"));
    }
    REQUIRE(caught);
  }
  SECTION("the error_code overload reports EPIPE without throwing") {
    sp::Popen proc({child, "exit", "0"}, {.in = sp::PIPE});
    REQUIRE(proc.wait() == 0);
    std::error_code ec;
    proc.in().write(data, ec);
    REQUIRE(ec == std::errc::broken_pipe);
  }
  SECTION("a write on a closed end throws an OSError with EBADF") {
    sp::Popen proc({child, "wait_eof"}, {.in = sp::PIPE, .out = sp::DEVNULL});
    proc.in().close();
    try {
      proc.in().write("x");
      FAIL("no error");
    } catch (const spindle::OSError& e) {
      REQUIRE(e.errno_value() == EBADF);
      REQUIRE_FALSE(dynamic_cast<const spindle::ConnectionError*>(&e));
    }
    REQUIRE(proc.wait() == 0);
  }
  struct sigaction after{};
  REQUIRE(::sigaction(SIGPIPE, nullptr, &after) == 0);
  REQUIRE(after.sa_handler == SIG_DFL);
  sigset_t pending;
  sigemptyset(&pending);
  REQUIRE(::sigpending(&pending) == 0);
  REQUIRE(sigismember(&pending, SIGPIPE) == 0);  // the SIGPIPE we raised was consumed
}

// ---------------------------------------------------------------------------
// Gate 8: a signal storm loses nothing.

namespace {
std::atomic<long> alarms{0};
extern "C" void count_alarm(int) { alarms.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

TEST_CASE("a storm of SIGALRM without SA_RESTART loses no data and raises no error",
          "[subprocess][stress]") {
  struct sigaction storm{};
  storm.sa_handler = count_alarm;
  sigemptyset(&storm.sa_mask);
  storm.sa_flags = 0;  // no SA_RESTART: every blocking call sees EINTR
  struct sigaction old_action{};
  REQUIRE(::sigaction(SIGALRM, &storm, &old_action) == 0);
  itimerval every_ms{{0, 1000}, {0, 1000}};
  itimerval old_timer{};
  REQUIRE(::setitimer(ITIMER_REAL, &every_ms, &old_timer) == 0);
  alarms = 0;

  std::vector<std::string> failures;
  const std::string data = pattern(sanitized ? 4'000'000 : 10'000'000, 11);
  try {
    for (int round = 0; round < 3; ++round) {
      sp::Popen cat({child, "cat"}, {.in = sp::PIPE, .out = sp::PIPE});
      if (cat.communicate(data).out != data) failures.push_back("cat lost data");
      sp::Popen tee({child, "tee2"}, {.in = sp::PIPE, .out = sp::PIPE, .err = sp::PIPE});
      auto [out, err] = tee.communicate(std::string_view(data).substr(0, 1'000'000), 120s);
      if (out != data.substr(0, 1'000'000) || err != out) failures.push_back("tee2 lost data");
      for (int i = 0; i < 10; ++i) {
        const auto r = sp::run({child, "args", "storm", std::to_string(i)}, {.capture_output = true});
        if (r.out != "storm\n" + std::to_string(i) + "\n") failures.push_back("args lost data");
      }
      sp::Popen sleeper({child, "sleep", "0.05"});
      if (sleeper.wait(30s) != 0) failures.push_back("sleeper failed");
      sp::Popen longer({child, "sleep", "10"});
      try {
        longer.wait(50ms);
        failures.push_back("wait(50ms) did not time out");
      } catch (const sp::TimeoutExpired&) {
      }
      longer.kill();
      if (longer.wait() != -9) failures.push_back("kill not reported");
    }
  } catch (const std::exception& e) {
    failures.push_back(e.what());
  }

  ::setitimer(ITIMER_REAL, &old_timer, nullptr);
  ::sigaction(SIGALRM, &old_action, nullptr);
  REQUIRE(failures.empty());
  REQUIRE(alarms.load() > 20);  // the storm really happened
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// Gate 9: many threads at once.

TEST_CASE("many threads run children concurrently and each gets its own output",
          "[subprocess][stress]") {
  constexpr int threads = 8;
  const int per_thread = sanitized ? 6 : 15;
  std::vector<int> ok(threads, 0);
  std::vector<std::string> errors(threads);
  std::latch start(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) {
        try {
          const std::string data = pattern(static_cast<std::size_t>(1000 + 50'000 * i), t * 100 + i);
          const auto r = sp::run({child, "cat"}, {.capture_output = true, .input = data, .check = true});
          if (r.out == data) ++ok[t];
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) {
    REQUIRE(errors[t].empty());
    REQUIRE(ok[t] == per_thread);
  }
  REQUIRE(no_children_left());
}

TEST_CASE("children run from a ThreadPoolExecutor's workers, as in Effective Python",
          "[subprocess][stress]") {
  const int jobs = sanitized ? 16 : 48;
  std::vector<spindle::Future<std::string>> futures;
  {
    spindle::ThreadPoolExecutor pool(8);
    for (int i = 0; i < jobs; ++i) {
      futures.push_back(pool.submit([i] {
        sp::Popen p({child, "cat"}, {.in = sp::PIPE, .out = sp::PIPE});
        return p.communicate(pattern(300'000, static_cast<unsigned>(i)), 60s).out;
      }));
    }
    for (int i = 0; i < jobs; ++i)
      REQUIRE(futures[static_cast<std::size_t>(i)].result() == pattern(300'000, static_cast<unsigned>(i)));
  }
  REQUIRE(no_children_left());
}

TEST_CASE("one Popen is waited, polled and signalled from several threads at once",
          "[subprocess][stress]") {
  sp::Popen proc({child, "sleep", "10"});
  constexpr int waiters = 6;
  std::vector<int> codes(waiters, 12345);
  std::latch ready(waiters + 1);
  std::vector<std::thread> pool;
  for (int t = 0; t < waiters; ++t) {
    pool.emplace_back([&, t] {
      ready.arrive_and_wait();
      if (t % 3 == 0) {
        codes[t] = proc.wait();
      } else if (t % 3 == 1) {
        for (;;) {
          try {
            codes[t] = proc.wait(5ms);
            break;
          } catch (const sp::TimeoutExpired&) {
          }
        }
      } else {
        std::optional<int> rc;
        while (!(rc = proc.poll())) std::this_thread::yield();
        codes[t] = *rc;
      }
    });
  }
  ready.arrive_and_wait();
  proc.kill();
  for (auto& th : pool) th.join();
  for (int c : codes) REQUIRE(c == -9);
}

// ---------------------------------------------------------------------------
// Gate 10: bad input gets a clear exception.

TEST_CASE("bad arguments throw clear exceptions before anything runs", "[subprocess]") {
  REQUIRE_THROWS_AS(sp::Popen({}), std::invalid_argument);
  REQUIRE_THROWS_AS(sp::run({}), std::invalid_argument);
  REQUIRE_THROWS_AS(sp::run({child, std::string("a\0b", 3)}), std::invalid_argument);
  REQUIRE_THROWS_AS(sp::run({child, "cwd"}, {.cwd = std::string("/tmp\0x", 6)}),
                    std::invalid_argument);
  REQUIRE_THROWS_AS(sp::run({child, "cwd"}, {.env = sp::Environment{{"A=B", "c"}}}),
                    std::invalid_argument);
  REQUIRE_THROWS_AS(sp::run({child, "cwd"}, {.extra_env = {{"", "c"}}}), std::invalid_argument);
  REQUIRE_THROWS_AS(sp::run({child, "cat"}, {.input = "x", .in = sp::DEVNULL}),
                    std::invalid_argument);
  REQUIRE_THROWS_AS(sp::run({child, "cat"}, {.capture_output = true, .out = sp::DEVNULL}),
                    std::invalid_argument);
  REQUIRE_THROWS_AS(sp::Popen({child, "cat"}, {.out = sp::STDOUT}), std::invalid_argument);
  REQUIRE_THROWS_AS(sp::Popen({child, "cat"}, {.in = -3}), std::invalid_argument);
  sp::Popen no_pipe({child, "exit", "0"});
  REQUIRE_THROWS_AS(no_pipe.communicate("input but no stdin pipe"), std::invalid_argument);
  REQUIRE_THROWS_AS(sp::Popen({child, "cat"}, {.in = no_pipe.out()}), std::invalid_argument);
  no_pipe.wait();

  try {
    sp::run({child, "cwd"}, {.cwd = "/nonexistent/spindle-dir"});
    FAIL("no SpawnError");
  } catch (const sp::SpawnError& e) {
    REQUIRE(e.errno_value() == ENOENT);
    REQUIRE(std::string(e.what()).find("chdir") != std::string::npos);
    REQUIRE(std::string(e.what()).find("/nonexistent/spindle-dir") != std::string::npos);
  }
  const int closed_fd = ::dup(0);
  REQUIRE(closed_fd >= 0);
  ::close(closed_fd);
  try {
    sp::run({child, "cat"}, {.in = closed_fd});
    FAIL("no SpawnError");
  } catch (const sp::SpawnError& e) {
    REQUIRE(e.errno_value() == EBADF);
    REQUIRE(std::string(e.what()).find(std::to_string(closed_fd)) != std::string::npos);
  }
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// The other options.

TEST_CASE("env replaces the environment and extra_env extends it", "[subprocess]") {
  const auto replaced =
      sp::run({child, "env", "HOME"}, {.capture_output = true, .env = sp::Environment{{"ONLY", "1"}}});
  REQUIRE(replaced.out == "<unset>\n");
  const auto only = sp::run({child, "env", "ONLY"},
                            {.capture_output = true, .env = sp::Environment{{"ONLY", "1"}}});
  REQUIRE(only.out == "1\n");
  ::setenv("SPINDLE_TEST_INHERITED", "yes", 1);
  const auto extended = sp::run({child, "env", "SPINDLE_TEST_INHERITED"},
                                {.capture_output = true, .extra_env = {{"EXTRA", "2"}}});
  REQUIRE(extended.out == "yes\n");
  const auto extra =
      sp::run({child, "env", "EXTRA"}, {.capture_output = true, .extra_env = {{"EXTRA", "2"}}});
  REQUIRE(extra.out == "2\n");
  REQUIRE(sp::current_environment().at("SPINDLE_TEST_INHERITED") == "yes");
  // A replaced environment's PATH is the one searched, as in Python.
  REQUIRE_THROWS_AS(sp::run({"echo"}, {.env = sp::Environment{{"PATH", "/nonexistent"}}}),
                    sp::SpawnError);
}

TEST_CASE("env takes a braced list, and options follow DESIGN.md's order", "[subprocess]") {
  // Python's env={'ONLY': '1'}; fields in the declared order capture_output,
  // input, timeout, check, env, cwd (a designated initializer must follow it).
  const auto r = sp::run({child, "env", "ONLY"}, {.capture_output = true,
                                                  .timeout = std::chrono::seconds(30),
                                                  .check = true,
                                                  .env = {{"ONLY", "1"}},
                                                  .cwd = "/"});
  REQUIRE(r.out == "1\n");
  sp::Popen p({child, "cwd"}, {.out = sp::PIPE, .env = {{"ONLY", "1"}}, .cwd = "/"});
  REQUIRE(p.communicate().out == "/\n");
  REQUIRE(p.wait() == 0);
}

TEST_CASE("cwd runs the child in another directory", "[subprocess]") {
  const auto r = sp::run({child, "cwd"}, {.capture_output = true, .cwd = "/"});
  REQUIRE(r.out == "/\n");
}

TEST_CASE("err = STDOUT merges, DEVNULL discards and an fd redirects", "[subprocess]") {
  const auto merged = sp::run({child, "produce", "10", "both"}, {.out = sp::PIPE, .err = sp::STDOUT});
  REQUIRE(merged.out == "abcdefghijabcdefghij");
  const auto discarded =
      sp::run({child, "produce", "1000", "both"}, {.out = sp::DEVNULL, .err = sp::DEVNULL});
  REQUIRE(discarded.returncode == 0);
  REQUIRE(discarded.out.empty());

  char path[] = "/tmp/spindle-redirect-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(sp::run({child, "args", "to a file"}, {.out = fd}).returncode == 0);
  char buf[64] = {};
  REQUIRE(::pread(fd, buf, sizeof buf - 1, 0) == 10);
  ::close(fd);
  ::unlink(path);
  REQUIRE(std::string(buf) == "to a file\n");

  // The parent's own descriptors stay as they were.
  REQUIRE(::fcntl(1, F_GETFD) >= 0);
}

TEST_CASE("a child's stdout can feed another child's stdin pipe end", "[subprocess]") {
  sp::Popen sink({child, "cat"}, {.in = sp::PIPE, .out = sp::PIPE});
  sp::Popen source({child, "args", "through", "two"}, {.out = sink.in()});
  REQUIRE_FALSE(sink.in().is_open());
  REQUIRE(source.wait() == 0);
  REQUIRE(sink.communicate().out == "through\ntwo\n");
}

TEST_CASE("a moved Popen keeps its child and pipe ends", "[subprocess]") {
  sp::Popen a({child, "cat"}, {.in = sp::PIPE, .out = sp::PIPE});
  sp::PipeReader* reader = &a.out();
  sp::Popen b = std::move(a);
  REQUIRE(&b.out() == reader);
  REQUIRE_THROWS_AS(a.pid(), std::logic_error);
  REQUIRE(b.communicate("moved").out == "moved");
  sp::Popen c({child, "exit", "7"});
  c = std::move(b);
  REQUIRE(c.returncode() == 0);
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// env = {} is an empty environment (issue 9, item 1).

namespace {
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto nl = text.find('\n', start);
    out.push_back(text.substr(start, nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}
}  // namespace

TEST_CASE("env = {} gives the child an empty environment, as Python's env={}",
          "[subprocess][env]") {
  ::setenv("SPINDLE_TEST_SECRET", "hunter2", 1);
  SECTION("run") {
    const auto r = sp::run({child, "environ"}, {.capture_output = true, .env = {}});
    REQUIRE(r.returncode == 0);
    REQUIRE(r.out.empty());
  }
  SECTION("Popen") {
    sp::Popen p({child, "environ"}, {.out = sp::PIPE, .env = {}});
    REQUIRE(p.communicate().out.empty());
    REQUIRE(p.wait() == 0);
  }
  SECTION("an empty map and an assigned {} are empty too") {
    REQUIRE(sp::run({child, "environ"}, {.capture_output = true, .env = sp::Environment{}})
                .out.empty());
    sp::RunOptions options{.capture_output = true};
    options.env = {};
    REQUIRE(sp::run({child, "environ"}, std::move(options)).out.empty());
  }
  SECTION("extra_env on top of an empty env gives exactly those variables") {
    const auto r = sp::run({child, "environ"},
                           {.capture_output = true, .env = {}, .extra_env = {{"ONLY", "1"}}});
    REQUIRE(r.out == "ONLY=1\n");
  }
  SECTION("a program without a slash is still found, in Python's os.defpath") {
    REQUIRE(sp::run({"sh", "-c", "exit 3"}, {.env = {}}).returncode == 3);
  }
  ::unsetenv("SPINDLE_TEST_SECRET");
}

TEST_CASE("env left unset, or set to std::nullopt, inherits the parent's environment",
          "[subprocess][env]") {
  ::setenv("SPINDLE_TEST_INHERITED2", "yes", 1);
  const sp::RunOptions defaults{};
  REQUIRE_FALSE(defaults.env.has_value());
  const auto unset = sp::run({child, "environ"}, {.capture_output = true});
  REQUIRE(unset.returncode == 0);
  const auto entries = lines_of(unset.out);
  REQUIRE(std::find(entries.begin(), entries.end(), "SPINDLE_TEST_INHERITED2=yes") !=
          entries.end());
  REQUIRE(entries.size() == sp::current_environment().size());
  const auto nullopt = sp::run({child, "env", "SPINDLE_TEST_INHERITED2"},
                               {.capture_output = true, .env = std::nullopt});
  REQUIRE(nullopt.out == "yes\n");
  sp::Popen p({child, "env", "SPINDLE_TEST_INHERITED2"}, {.out = sp::PIPE});
  REQUIRE(p.communicate().out == "yes\n");
  ::unsetenv("SPINDLE_TEST_INHERITED2");
}

// ---------------------------------------------------------------------------
// restore_signals (issue 9, item 3).

namespace {
/// Sets SIGPIPE to SIG_IGN for its lifetime, then restores the disposition.
struct IgnoreSigpipe {
  struct sigaction saved {};
  IgnoreSigpipe() {
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, &saved);
  }
  ~IgnoreSigpipe() { ::sigaction(SIGPIPE, &saved, nullptr); }
  IgnoreSigpipe(const IgnoreSigpipe&) = delete;
  IgnoreSigpipe& operator=(const IgnoreSigpipe&) = delete;
};

/// `yes | head -c 10` with this process as `head`: reads 10 bytes of the
/// writer's output, closes the pipe, and returns the writer's returncode.
int yes_head(bool restore_signals, std::string& err) {
  sp::Popen yes({child, "yes"},
                {.out = sp::PIPE, .err = sp::PIPE, .restore_signals = restore_signals});
  std::string got;
  while (got.size() < 10) {
    const std::string chunk = yes.out().read_some(10 - got.size());
    if (chunk.empty()) break;
    got += chunk;
  }
  yes.out().close();
  err = yes.err().read();
  return yes.wait();
}
}  // namespace

TEST_CASE("a parent ignoring SIGPIPE starts children with SIGPIPE at its default, as Python",
          "[subprocess][signals]") {
  IgnoreSigpipe ignoring;
  SECTION("the writer of yes | head dies of SIGPIPE (-13)") {
    std::string err;
    REQUIRE(yes_head(true, err) == -SIGPIPE);
    REQUIRE(err.empty());
  }
  SECTION("the child sees SIGPIPE at SIG_DFL") {
    REQUIRE(sp::run({child, "sigpipe_disposition"}, {.capture_output = true}).out ==
            "default\n");
  }
  SECTION("restore_signals = false keeps it ignored: the writer sees EPIPE and exits 1") {
    std::string err;
    REQUIRE(yes_head(false, err) == 1);
    REQUIRE(err == "yes: Broken pipe\n");
    REQUIRE(sp::run({child, "sigpipe_disposition"},
                    {.capture_output = true, .restore_signals = false})
                .out == "ignored\n");
  }
}

TEST_CASE("SIGPIPE stays at its default in the child when the parent does not ignore it",
          "[subprocess][signals]") {
  std::string err;
  REQUIRE(yes_head(true, err) == -SIGPIPE);
  REQUIRE(yes_head(false, err) == -SIGPIPE);
}

// ---------------------------------------------------------------------------
// Process groups (issue 9, item 4).

namespace {
/// True once `pid` is gone: no such process, or a zombie waiting for init
/// to reap it (it no longer runs). Polls up to `limit`: a bounded wait on a
/// condition, not a sleep standing in for synchronization.
bool gone_within(pid_t pid, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren != std::string::npos && paren + 2 < text.size() &&
        (text[paren + 2] == 'Z' || text[paren + 2] == 'X'))
      return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
}

pid_t parse_pid(const std::string& line) { return static_cast<pid_t>(std::stol(line)); }
}  // namespace

TEST_CASE("start_new_session makes the child a session and group leader", "[subprocess][pgroup]") {
  sp::Popen p({child, "sleep", "30"}, {.start_new_session = true});
  REQUIRE(::getsid(p.pid()) == p.pid());
  REQUIRE(::getpgid(p.pid()) == p.pid());
  REQUIRE(p.process_group() == p.pid());
  p.kill();
  REQUIRE(p.wait() == -SIGKILL);
  sp::Popen plain({child, "exit", "0"});
  REQUIRE_FALSE(plain.process_group().has_value());
  REQUIRE(plain.wait() == 0);
}

TEST_CASE("process_group = 0 makes a new group; a positive id joins that group",
          "[subprocess][pgroup]") {
  sp::Popen leader({child, "sleep", "30"}, {.process_group = 0});
  REQUIRE(::getpgid(leader.pid()) == leader.pid());
  REQUIRE(::getsid(leader.pid()) == ::getsid(0));  // same session, new group
  REQUIRE(leader.process_group() == leader.pid());
  sp::Popen member({child, "sleep", "30"}, {.process_group = leader.pid()});
  REQUIRE(::getpgid(member.pid()) == leader.pid());
  REQUIRE(member.process_group() == leader.pid());
  leader.kill_group();
  REQUIRE(leader.wait() == -SIGKILL);
  REQUIRE(member.wait() == -SIGKILL);
  // A group that does not exist: setpgid fails in the child, SpawnError here.
  REQUIRE_THROWS_AS(sp::Popen({child, "exit", "0"}, {.process_group = leader.pid()}),
                    sp::SpawnError);
  REQUIRE_THROWS_AS(sp::Popen({child, "exit", "0"}, {.process_group = -2}),
                    std::invalid_argument);
  REQUIRE(no_children_left());
}

TEST_CASE("kill_group takes the child's own children down too", "[subprocess][pgroup]") {
  for (const bool session : {true, false}) {
    CAPTURE(session);
    sp::PopenOptions options{.out = sp::PIPE};
    if (session)
      options.start_new_session = true;
    else
      options.process_group = 0;
    sp::Popen p({child, "grandchild", "100"}, std::move(options));
    const pid_t grandchild = parse_pid(p.out().readline().value());
    REQUIRE(::getpgid(grandchild) == p.pid());
    p.kill_group();
    REQUIRE(p.wait() == -SIGKILL);
    const bool gone = gone_within(grandchild, 20s);
    if (!gone) ::kill(grandchild, SIGKILL);
    REQUIRE(gone);
    // The group is empty now: signalling it again is not an error.
    p.send_signal_group(SIGTERM);
  }
}

TEST_CASE("kill alone leaves the grandchild running, as in Python", "[subprocess][pgroup]") {
  sp::Popen p({child, "grandchild", "100"}, {.out = sp::PIPE, .process_group = 0});
  const pid_t grandchild = parse_pid(p.out().readline().value());
  p.kill();
  REQUIRE(p.wait() == -SIGKILL);
  REQUIRE(::kill(grandchild, 0) == 0);
  p.kill_group();  // after the leader has been reaped: the group still exists
  REQUIRE(gone_within(grandchild, 20s));
}

TEST_CASE("send_signal_group refuses a child that shares the parent's group",
          "[subprocess][pgroup]") {
  sp::Popen p({child, "sleep", "30"});
  REQUIRE_THROWS_AS(p.kill_group(), std::logic_error);
  p.kill();
  REQUIRE(p.wait() == -SIGKILL);
}

TEST_CASE("run's timeout kills the whole group of a child that leads its own",
          "[subprocess][pgroup][timing]") {
  for (const bool session : {true, false}) {
    CAPTURE(session);
    sp::RunOptions options{.capture_output = true, .timeout = 300ms};
    if (session)
      options.start_new_session = true;
    else
      options.process_group = 0;
    pid_t grandchild = -1;
    try {
      sp::run({child, "grandchild", "100"}, std::move(options));
      FAIL("no timeout");
    } catch (const sp::TimeoutExpired& e) {
      REQUIRE_FALSE(e.out().empty());
      grandchild = parse_pid(e.out());
    }
    const bool gone = gone_within(grandchild, 20s);
    if (!gone) ::kill(grandchild, SIGKILL);
    REQUIRE(gone);
  }
  REQUIRE(no_children_left());
}

// ---------------------------------------------------------------------------
// check_output and shell (issue 9, item 5).

TEST_CASE("check_output returns stdout and throws CalledProcessError with it on failure",
          "[subprocess]") {
  REQUIRE(sp::check_output({child, "args", "a", "b"}) == "a\nb\n");
  REQUIRE(sp::check_output({child, "cat"}, {.input = "fed"}) == "fed");
  try {
    sp::check_output({child, "exit", "3"});
    FAIL("no CalledProcessError");
  } catch (const sp::CalledProcessError& e) {
    REQUIRE(e.returncode() == 3);
    REQUIRE(e.args() == std::vector<std::string>{child, "exit", "3"});
  }
  try {
    sp::check_output(sp::shell("echo out; echo err >&2; exit 3"), {.err = sp::PIPE});
    FAIL("no CalledProcessError");
  } catch (const sp::CalledProcessError& e) {
    REQUIRE(e.returncode() == 3);
    REQUIRE(e.out() == "out\n");  // the output travels with the error
    REQUIRE(e.err() == "err\n");
  }
  REQUIRE(sp::check_output(sp::shell("echo out; echo err >&2"), {.err = sp::STDOUT}) ==
          "out\nerr\n");
  REQUIRE_THROWS_AS(sp::check_output({child, "exit", "0"}, {.capture_output = true}),
                    std::invalid_argument);
  REQUIRE_THROWS_AS(sp::check_output({child, "exit", "0"}, {.out = sp::DEVNULL}),
                    std::invalid_argument);
  REQUIRE_THROWS_AS(sp::check_output({child, "sleep", "10"}, {.timeout = 100ms}),
                    sp::TimeoutExpired);
  REQUIRE(no_children_left());
}

TEST_CASE("shell runs a command line with /bin/sh -c, as Python's shell=True",
          "[subprocess]") {
  REQUIRE(sp::shell("exit 3") == std::vector<std::string>{"/bin/sh", "-c", "exit 3"});
  REQUIRE(sp::run(sp::shell("exit 3")).returncode == 3);
  const auto r = sp::run(sp::shell("printf '%s|' a b | tr '|' ' '"), {.capture_output = true});
  REQUIRE(r.out == "a b ");
  REQUIRE(sp::check_output(sp::shell("echo \"$X\""), {.extra_env = {{"X", "from env"}}}) ==
          "from env\n");
  sp::Popen p(sp::shell("cat"), {.in = sp::PIPE, .out = sp::PIPE});
  REQUIRE(p.communicate("through sh").out == "through sh");
}
