// SPDX-License-Identifier: MIT
// spindle/detail/subprocess_reaper.hpp - reaps children whose Popen was destroyed first.
#pragma once

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spindle/detail/subprocess_sys.hpp>

namespace spindle::detail::subproc {

/// A process-wide background reaper, the prompt form of Python's `_active`
/// list: a `Popen` destroyed while its child runs hands the child here and
/// returns at once; one thread waits on the children's pidfds and reaps each
/// as it exits, so no zombie is left and nothing is killed. Started on first
/// use, never destroyed (a running child must not make exit() hang), and it
/// blocks every signal so it never takes the application's signals.
///
/// Kernels without pidfd_open (< 5.3) get one detached thread per orphan
/// blocked in waitpid instead.
///
/// Thread-safe.
class Reaper {
public:
  static Reaper& instance() {
    // Leaked on purpose: the thread may outlive static destruction.
    static Reaper* const reaper = new Reaper();
    return *reaper;
  }

  /// Takes over reaping `pid` (a child of this process, not yet reaped).
  /// `pidfd` is an open pidfd for it, or -1. Never throws, never blocks for
  /// long; if even a thread cannot be started the child is left to the
  /// caller's process exit.
  void adopt(pid_t pid, int pidfd) noexcept {
    if (pidfd < 0) pidfd = pidfd_open(pid);
    try {
      std::unique_lock lock(m_);
      if (pidfd >= 0 && ensure_thread_locked()) {
        orphans_.push_back({pid, pidfd});
        lock.unlock();
        const std::uint64_t one = 1;
        while (::write(wake_.get(), &one, sizeof one) < 0 && errno == EINTR) {
        }
        return;
      }
      ++detached_;
      lock.unlock();
      if (pidfd >= 0) ::close(pidfd);
      std::thread([this, pid] {
        block_all_signals();
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        std::lock_guard g(m_);
        --detached_;
        idle_cv_.notify_all();
      }).detach();
    } catch (...) {
      // No memory or no thread: the child stays a zombie until we exit.
    }
  }

  /// Blocks until every adopted child has been reaped, or the timeout.
  /// Returns true if none is pending. For tests and orderly shutdown.
  template <class Rep, class Period>
  bool wait_idle(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(m_);
    return idle_cv_.wait_for(lock, timeout, [&] { return orphans_.empty() && detached_ == 0; });
  }

  /// Number of adopted children not yet reaped.
  std::size_t pending() const {
    std::lock_guard g(m_);
    return orphans_.size() + detached_;
  }

private:
  struct Orphan {
    pid_t pid;
    int pidfd;
  };

  Reaper() = default;

  static void block_all_signals() noexcept {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, nullptr);
  }

  bool ensure_thread_locked() {
    if (started_) return true;
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_.valid()) return false;
    std::thread(&Reaper::run, this).detach();
    started_ = true;
    return true;
  }

  void run() noexcept {
    block_all_signals();
    std::vector<pollfd> fds;
    std::vector<Orphan> watched;
    for (;;) {
      {
        std::lock_guard g(m_);
        watched = orphans_;
      }
      fds.assign(1, pollfd{wake_.get(), POLLIN, 0});
      for (const Orphan& o : watched) fds.push_back(pollfd{o.pidfd, POLLIN, 0});
      if (poll_until(fds.data(), fds.size(), std::nullopt) < 0) continue;
      if (fds[0].revents != 0) {
        std::uint64_t count = 0;
        while (::read(wake_.get(), &count, sizeof count) < 0 && errno == EINTR) {
        }
      }
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        const Orphan o = watched[i - 1];
        int status = 0;
        pid_t r;
        do {
          r = ::waitpid(o.pid, &status, WNOHANG);
        } while (r < 0 && errno == EINTR);
        if (r == 0) continue;  // not exited after all
        std::lock_guard g(m_);
        for (auto it = orphans_.begin(); it != orphans_.end(); ++it) {
          if (it->pid == o.pid) {
            ::close(it->pidfd);
            orphans_.erase(it);
            break;
          }
        }
        idle_cv_.notify_all();
      }
    }
  }

  mutable std::mutex m_;
  std::condition_variable idle_cv_;
  std::vector<Orphan> orphans_;  // guarded by m_
  std::size_t detached_ = 0;     // guarded by m_
  bool started_ = false;         // guarded by m_
  UniqueFd wake_;                // set once under m_ before the thread starts
};

}  // namespace spindle::detail::subproc
