// SPDX-License-Identifier: MIT
// tests/support/thread_state.hpp - observe whether a test's thread is asleep.
//
// Tests that must prove "close() wakes a *blocked* consumer" need the consumer
// to be blocked first. Sleeping for a while and hoping is not synchronization,
// so instead the thread publishes its kernel thread id and the test polls
// /proc/self/task/<tid>/stat until the kernel reports the thread as sleeping
// ('S'), yielding between polls. A thread whose next and only blocking point
// is the call under test is then known to be parked inside that call.
#pragma once

#include <atomic>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <sched.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace spindle_test {

/// The calling thread's kernel thread id.
inline pid_t current_tid() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// The one-letter scheduler state of thread `tid` of this process ('R', 'S',
/// 'D', ...), or '?' if it cannot be read (e.g. the thread has exited).
inline char thread_state(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return '?';
  // "tid (comm) S ...": comm may hold spaces or parentheses, so look after
  // the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return '?';
  return line[close + 2];
}

/// Polls until thread `tid` is asleep in the kernel, yielding in between.
/// Returns false if that did not happen within `limit` (a generous bound
/// that only turns a bug into a failure instead of a hang).
inline bool wait_until_sleeping(pid_t tid,
                                std::chrono::steady_clock::duration limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (thread_state(tid) == 'S') return true;
    std::this_thread::yield();
  }
  return false;
}

/// Yields until `pred()` holds; false if it did not within `limit`.
template <class Pred>
bool spin_until(Pred pred, std::chrono::steady_clock::duration limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

/// Makes a thread woken by the constructing thread unable to run before the
/// constructing thread blocks or yields: the constructing thread is pinned
/// to one CPU (restored on destruction), and a thread calling
/// `become_background()` pins itself to the same CPU and switches to
/// SCHED_IDLE, which never preempts a normal thread on wake-up. Unprivileged
/// and harmless where it fails (`active()` then says so).
class SameCpuBackground {
public:
  SameCpuBackground() {
    CPU_ZERO(&original_);
    if (::sched_getaffinity(0, sizeof original_, &original_) != 0) return;
    const int cpu = ::sched_getcpu();
    if (cpu < 0 || !CPU_ISSET(cpu, &original_)) return;
    cpu_ = cpu;
    pinned_ = pin(cpu_);
  }
  SameCpuBackground(const SameCpuBackground&) = delete;
  SameCpuBackground& operator=(const SameCpuBackground&) = delete;
  ~SameCpuBackground() {
    if (pinned_) ::sched_setaffinity(0, sizeof original_, &original_);
  }

  /// Called by another thread: share the constructing thread's CPU at idle
  /// priority. Returns true if both took effect.
  bool become_background() const {
    if (!pinned_ || !pin(cpu_)) return false;
    sched_param param{};
    param.sched_priority = 0;
    return ::sched_setscheduler(0, SCHED_IDLE, &param) == 0;
  }
  /// True if the constructing thread is pinned.
  bool active() const { return pinned_; }

private:
  static bool pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return ::sched_setaffinity(0, sizeof set, &set) == 0;
  }

  cpu_set_t original_;
  int cpu_ = -1;
  bool pinned_ = false;
};

}  // namespace spindle_test
