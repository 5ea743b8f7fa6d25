// SPDX-License-Identifier: MIT
// spindle/detail/subprocess_sys.hpp - file descriptors, EINTR-safe waits and SIGPIPE blocking.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <optional>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spindle/detail/wait.hpp>

namespace spindle::detail::subproc {

/// An owned file descriptor, closed on destruction. Not thread-safe.
class UniqueFd {
public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    // close() is never retried: on Linux the descriptor is gone even when
    // close reports EINTR, and a retry could close someone else's new fd.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

/// A close-on-exec pipe: {read end, write end}. Returns errno (0 on success).
/// Both ends are created O_CLOEXEC atomically, so a child spawned by another
/// thread at the same moment never inherits them.
inline int make_pipe(UniqueFd& read_end, UniqueFd& write_end) noexcept {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
  return 0;
}

/// Moves `fd` to a number >= 3 (close-on-exec) if it sits on 0, 1 or 2, so
/// the child's dup2 onto its standard streams can never overwrite it.
/// Returns errno (0 on success).
inline int lift_above_stdio(UniqueFd& fd) noexcept {
  if (fd.get() < 0 || fd.get() > 2) return 0;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return errno;
  fd.reset(moved);
  return 0;
}

/// Converts a wait status into Python's returncode: the exit status, or -N
/// for death by signal N.
inline int decode_status(int status) noexcept {
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return status;  // not reached: stopped children are not reported without WUNTRACED
}

/// pidfd_open(2), or -1 with errno = ENOSYS when the kernel (< 5.3) or the
/// headers lack it.
inline int pidfd_open(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

/// The time left until `deadline` as a timespec (zero if it has passed).
inline timespec time_left(Clock::time_point deadline) noexcept {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return timespec{0, 0};
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(left);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(left - secs);
  timespec ts{};
  // Saturate absurdly long timeouts rather than overflowing time_t.
  ts.tv_sec = static_cast<time_t>(std::min<long long>(secs.count(), 1LL << 40));
  ts.tv_nsec = static_cast<long>(nanos.count());
  return ts;
}

/// ppoll(2) that restarts on EINTR with the time recomputed from an absolute
/// deadline, so a storm of signals neither shortens nor stretches the wait.
/// Returns the number of ready descriptors, 0 on timeout, -1 on a real error.
inline int poll_until(pollfd* fds, nfds_t count, std::optional<Clock::time_point> deadline) noexcept {
  for (;;) {
    timespec ts{};
    timespec* tsp = nullptr;
    if (deadline && *deadline != (Clock::time_point::max)()) {
      ts = time_left(*deadline);
      tsp = &ts;
    }
    const int n = ::ppoll(fds, count, tsp, nullptr);
    if (n >= 0 || errno != EINTR) return n;
  }
}

/// Blocks until `fd` is readable (for a pidfd: the process has exited) or
/// the deadline passes. Returns false on timeout.
inline bool wait_readable(int fd, std::optional<Clock::time_point> deadline) noexcept {
  pollfd p{fd, POLLIN, 0};
  return poll_until(&p, 1, deadline) != 0;
}

/// Blocks SIGPIPE in the calling thread for its lifetime, so a write to a
/// pipe whose reader has gone fails with EPIPE instead of killing the
/// process; SIGPIPE stays at its default disposition process-wide. A
/// SIGPIPE that our own write raised (and that was not already pending
/// before) is consumed with sigtimedwait before the old mask comes back.
class SigpipeBlock {
public:
  SigpipeBlock() noexcept {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    was_pending_ = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_mask_);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  ~SigpipeBlock() {
    if (saw_epipe_ && !was_pending_) {
      const timespec zero{0, 0};
      while (::sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }

  /// Records that a write in this scope failed with EPIPE.
  void saw_epipe() noexcept { saw_epipe_ = true; }

private:
  sigset_t pipe_set_;
  sigset_t old_mask_;
  bool was_pending_ = false;
  bool saw_epipe_ = false;
};

/// write(2) until all of `data` is written, the reader goes away (EPIPE),
/// or another error. Handles EINTR and a non-blocking descriptor (EAGAIN:
/// waits with poll). Returns 0 or errno. The caller blocks SIGPIPE.
inline int write_all(int fd, const char* data, std::size_t size, std::size_t& written) noexcept {
  written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, data + written, size - written);
    if (n >= 0) {
      written += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (poll_until(&p, 1, std::nullopt) < 0) return errno;
      continue;
    }
    return errno;
  }
  return 0;
}

}  // namespace spindle::detail::subproc
