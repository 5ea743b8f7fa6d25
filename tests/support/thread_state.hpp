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

}  // namespace spindle_test
